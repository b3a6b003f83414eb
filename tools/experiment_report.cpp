#include "tools/experiment_report.h"

#include <rapidjson/document.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "algorithms/checkable_tasks.h"
#include "io/atomic_file.h"
#include "io/jsonl.h"
#include "io/run_report.h"
#include "io/svg_chart.h"

namespace rlaif::cli {
namespace {

namespace fs = std::filesystem;

double number(const rapidjson::Value& doc, const char* key) {
  return doc.IsObject() && doc.HasMember(key) && doc[key].IsNumber() ? doc[key].GetDouble()
                                                                     : std::nan("");
}
int64_t count(const rapidjson::Value& doc, const char* key) {
  const double v = number(doc, key);
  return std::isfinite(v) ? static_cast<int64_t>(v) : 0;
}

rapidjson::Document parse(const std::map<std::string, std::string>& summaries,
                          const std::string& stage) {
  rapidjson::Document doc;
  auto it = summaries.find(stage);
  doc.Parse<rapidjson::kParseIterativeFlag>(it == summaries.end() ? "{}" : it->second.c_str());
  if (doc.HasParseError()) doc.Parse<rapidjson::kParseIterativeFlag>("{}");
  return doc;
}

std::string percent(double v, double se) {
  if (!std::isfinite(v)) return "–";
  char buf[64];
  if (std::isfinite(se)) {
    std::snprintf(buf, sizeof buf, "%.1f ± %.1f", 100 * v, 100 * se);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f", 100 * v);
  }
  return buf;
}

// "64.3 of 70": a share in percent and how many items it is of ("–" when unmeasured).
std::string checked(double share, int64_t of) {
  if (!std::isfinite(share)) return "–";
  return percent(share, std::nan("")) + " of " + std::to_string(of);
}

std::string escape(const std::string& s) {
  return xml_escape(s);
}

// Up to `limit` held-out prompts with the reference and every arm's answer.
std::string answers_html(const ExperimentResults& results, const std::string& out_dir,
                         size_t limit) {
  struct Row {
    std::string prompt, reference;
    std::vector<std::pair<std::string, int>> answers;  // text, exact (1/0) or -1 unknown
  };
  std::vector<Row> rows;
  for (size_t a = 0; a < results.arms.size(); ++a) {
    const std::string path =
        (fs::path(out_dir) / "eval" / (results.arms[a].arm + ".jsonl")).string();
    if (!fs::exists(path)) continue;
    size_t i = 0;
    read_jsonl(path, [&](const rapidjson::Value& r, int64_t) {
      if (i >= limit) return;
      if (rows.size() <= i)
        rows.push_back({r["prompt"].GetString(), r["reference"].GetString(), {}});
      rows[i].answers.resize(results.arms.size(), {"", -1});
      const int exact = r.HasMember("exact_match") && r["exact_match"].IsBool()
                            ? (r["exact_match"].GetBool() ? 1 : 0)
                            : -1;
      rows[i].answers[a] = {r["output"].GetString(), exact};
      ++i;
    });
  }
  std::ostringstream html;
  html << "<h2>Answers to held-out prompts</h2>\n<table>\n<tr><th>prompt</th><th>reference</th>";
  for (const ArmResult& arm : results.arms) html << "<th>" << escape(arm.arm) << "</th>";
  html << "</tr>\n";
  for (const Row& row : rows) {
    html << "<tr><td>" << escape(row.prompt) << "</td><td>" << escape(row.reference) << "</td>";
    for (const auto& [text, exact] : row.answers) {
      const char* mark = exact == 1 ? " ✓" : exact == 0 ? " ✗" : "";
      html << "<td>" << escape(text) << mark << "</td>";
    }
    html << "</tr>\n";
  }
  html << "</table>\n";
  return html.str();
}

// The right answer of each train prompt that carries one ({"prompt", "answer"}, as `rlaif tasks`
// writes them); empty when none does.
std::map<std::string, std::string> train_answers(const std::string& path) {
  std::map<std::string, std::string> answers;
  if (path.empty() || !fs::exists(path)) return answers;
  try {
    read_jsonl(path, [&](const rapidjson::Value& r, int64_t) {
      if (r.IsObject() && r.HasMember("prompt") && r["prompt"].IsString() &&
          r.HasMember("answer") && r["answer"].IsString()) {
        answers[r["prompt"].GetString()] = r["answer"].GetString();
      }
    });
  } catch (const std::exception&) {
    answers.clear();  // a JSON array or another format: nothing to check against
  }
  return answers;
}

const std::string* answer_of(const std::map<std::string, std::string>& answers,
                             const rapidjson::Value& r) {
  if (!r.IsObject() || !r.HasMember("prompt") || !r["prompt"].IsString()) return nullptr;
  auto it = answers.find(r["prompt"].GetString());
  return it == answers.end() ? nullptr : &it->second;
}

std::string text_of(const rapidjson::Value& r, const char* key) {
  return r.HasMember(key) && r[key].IsString() ? r[key].GetString() : "";
}

// The teacher's kept answers that the checker finds right, from the SFT file the distill stage's
// summary names ("out").
void check_teacher(const std::map<std::string, std::string>& answers,
                   const rapidjson::Value& distill, ArmResult& r) {
  const std::string sft_file = text_of(distill, "out");
  if (answers.empty() || sft_file.empty() || !fs::exists(sft_file)) return;
  int64_t right = 0;
  read_jsonl(sft_file, [&](const rapidjson::Value& rec, int64_t) {
    const std::string* answer = answer_of(answers, rec);
    if (answer == nullptr) return;
    ++r.teacher_checked;
    right += exact_match(text_of(rec, "completion"), *answer);
  });
  if (r.teacher_checked > 0) r.teacher_accuracy = static_cast<double>(right) / r.teacher_checked;
}

// The critic's labels on decisive pairs: the kept pairs and the excluded ones, from the files the
// label stage's summary names ("out" and "excluded").
void check_critic(const std::map<std::string, std::string>& answers, const rapidjson::Value& label,
                  ArmResult& r) {
  const std::string prefs = text_of(label, "out"), excluded = text_of(label, "excluded");
  if (answers.empty() || prefs.empty() || !fs::exists(prefs)) return;
  int64_t right = 0;
  read_jsonl(prefs, [&](const rapidjson::Value& rec, int64_t) {
    const std::string* answer = answer_of(answers, rec);
    if (answer == nullptr) return;
    const bool chosen = exact_match(text_of(rec, "chosen"), *answer);
    const bool rejected = exact_match(text_of(rec, "rejected"), *answer);
    if (chosen == rejected) return;
    ++r.critic_decisive;
    right += chosen;
  });
  if (!excluded.empty() && fs::exists(excluded)) {
    read_jsonl(excluded, [&](const rapidjson::Value& rec, int64_t) {
      const std::string* answer = answer_of(answers, rec);
      if (answer == nullptr || !rec.HasMember("completions") || !rec["completions"].IsArray() ||
          rec["completions"].Size() < 2) {
        return;
      }
      const auto& c = rec["completions"];
      if (!c[0].IsString() || !c[1].IsString()) return;
      if (exact_match(c[0].GetString(), *answer) != exact_match(c[1].GetString(), *answer))
        ++r.critic_decisive;
    });
  }
  if (r.critic_decisive > 0) r.critic_accuracy = static_cast<double>(right) / r.critic_decisive;
}

}  // namespace

ExperimentResults collect_results(const ExperimentConfig& config, const std::string& out_dir,
                                  const std::map<std::string, std::string>& summaries) {
  ExperimentResults results{config.path, config.judge.describe(), {}};
  const std::map<std::string, std::string> answers = config.exact_match
                                                         ? train_answers(config.train_prompts)
                                                         : std::map<std::string, std::string>{};
  for (const std::string& arm : config.arms) {
    ArmResult r;
    r.arm = arm;
    r.teacher_accuracy = r.critic_accuracy = std::nan("");
    const bool strong = arm.starts_with("sft_strong");
    r.teacher = (strong ? config.strong_teacher : config.weak_teacher).describe();
    const rapidjson::Document distill =
        parse(summaries, strong ? "distill_strong" : "distill_weak");
    const rapidjson::Document eval = parse(summaries, "eval_" + arm);
    r.sft_examples = count(distill, "written");
    check_teacher(answers, distill, r);
    auto add_cost = [&](const rapidjson::Document& d) {
      r.requests += count(d, "requests_sent") + count(d, "cached");
      r.tokens += count(d, "prompt_tokens") + count(d, "completion_tokens");
    };
    add_cost(distill);
    if (arm.ends_with("_dpo")) {
      r.critic = config.critic.describe();
      const rapidjson::Document label = parse(summaries, "label_" + arm);
      r.preference_pairs = count(label, "written");
      check_critic(answers, label, r);
      add_cost(label);
    }
    add_cost(eval);
    r.win_rate = number(eval, "win_rate");
    r.win_rate_stderr = number(eval, "stderr");
    r.accuracy = number(eval, "accuracy");
    r.accuracy_stderr = number(eval, "accuracy_stderr");
    r.judged = count(eval, "judged");
    r.judge_agreement = std::nan("");
    const std::string records = (fs::path(out_dir) / "eval" / (arm + ".jsonl")).string();
    if (fs::exists(records)) {
      int64_t agreed = 0;
      read_jsonl(records, [&](const rapidjson::Value& rec, int64_t) {
        if (!rec.HasMember("exact_match") || !rec["exact_match"].IsBool() ||
            rec["exact_match"].GetBool() || !rec.HasMember("outcome") ||
            !rec["outcome"].IsString()) {
          return;
        }
        const std::string outcome = rec["outcome"].GetString();
        if (outcome != "win" && outcome != "loss" && outcome != "tie") return;
        ++r.wrong_judged;
        agreed += outcome == "loss";
      });
      if (r.wrong_judged > 0) {
        r.judge_agreement = static_cast<double>(agreed) / static_cast<double>(r.wrong_judged);
      }
    }
    results.arms.push_back(r);
  }
  std::set<std::string> api_stages;
  for (const std::string& arm : config.arms) {
    api_stages.insert(arm.starts_with("sft_strong") ? "distill_strong" : "distill_weak");
    if (arm.ends_with("_dpo")) api_stages.insert("label_" + arm);
    api_stages.insert("eval_" + arm);
  }
  for (const std::string& name : api_stages) {
    const rapidjson::Document d = parse(summaries, name);
    results.requests += count(d, "requests_sent") + count(d, "cached");
    results.tokens += count(d, "prompt_tokens") + count(d, "completion_tokens");
  }
  return results;
}

std::string results_markdown(const ExperimentResults& results) {
  std::ostringstream md;
  md << "| arm | teacher | teacher right (%) | critic | critic right (%) | SFT examples "
        "| preference pairs | win rate vs reference (%) | exact-match accuracy (%) "
        "| judge agrees on wrong answers (%) | requests | tokens |\n"
     << "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const ArmResult& r : results.arms) {
    md << "| " << r.arm << " | " << r.teacher << " | "
       << checked(r.teacher_accuracy, r.teacher_checked) << " | "
       << (r.critic.empty() ? "–" : r.critic) << " | "
       << (r.critic.empty() ? "–" : checked(r.critic_accuracy, r.critic_decisive)) << " | "
       << r.sft_examples << " | " << (r.critic.empty() ? "–" : std::to_string(r.preference_pairs))
       << " | " << percent(r.win_rate, r.win_rate_stderr) << " | "
       << percent(r.accuracy, r.accuracy_stderr) << " | "
       << checked(r.judge_agreement, r.wrong_judged) << " | " << r.requests << " | " << r.tokens
       << " |\n";
  }
  md << "\nWin rates are judged by " << results.judge
     << " in both orders (a tie when the two orders disagree), ± one standard error. An answer\n"
        "identical to the reference can at best tie with it, so a perfect arm scores 50%. The\n"
        "judge agrees with the checker on a wrong answer when it prefers the reference in both\n"
        "orders. Where the train prompts carry their right answers, \"teacher right\" is the "
        "share\n"
        "of the teacher's kept answers that are right, and \"critic right\" the share of the "
        "pairs\n"
        "with exactly one right sample in which the critic preferred that one in both orders.\n"
     << "\nAPI cost of the whole experiment (each stage once; arms share their teacher's answers): "
     << results.requests << " requests, " << results.tokens << " tokens.\n";
  return md.str();
}

void write_results(const ExperimentResults& results, const std::string& out_dir) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("config", rapidjson::Value(results.config_path.c_str(), a), a);
  doc.AddMember("judge", rapidjson::Value(results.judge.c_str(), a), a);
  rapidjson::Value arms(rapidjson::kArrayType);
  auto num = [](double v) { return std::isfinite(v) ? rapidjson::Value(v) : rapidjson::Value(); };
  for (const ArmResult& r : results.arms) {
    rapidjson::Value o(rapidjson::kObjectType);
    o.AddMember("arm", rapidjson::Value(r.arm.c_str(), a), a);
    o.AddMember("teacher", rapidjson::Value(r.teacher.c_str(), a), a);
    o.AddMember("critic",
                r.critic.empty() ? rapidjson::Value() : rapidjson::Value(r.critic.c_str(), a), a);
    o.AddMember("sft_examples", r.sft_examples, a);
    o.AddMember("preference_pairs", r.preference_pairs, a);
    o.AddMember("win_rate", num(r.win_rate), a);
    o.AddMember("win_rate_stderr", num(r.win_rate_stderr), a);
    o.AddMember("accuracy", num(r.accuracy), a);
    o.AddMember("accuracy_stderr", num(r.accuracy_stderr), a);
    o.AddMember("judged", r.judged, a);
    o.AddMember("judge_agreement", num(r.judge_agreement), a);
    o.AddMember("wrong_judged", r.wrong_judged, a);
    o.AddMember("teacher_accuracy", num(r.teacher_accuracy), a);
    o.AddMember("teacher_checked", r.teacher_checked, a);
    o.AddMember("critic_accuracy", num(r.critic_accuracy), a);
    o.AddMember("critic_decisive", r.critic_decisive, a);
    o.AddMember("requests", r.requests, a);
    o.AddMember("tokens", r.tokens, a);
    arms.PushBack(o, a);
  }
  doc.AddMember("arms", arms, a);
  doc.AddMember("requests", results.requests, a);
  doc.AddMember("tokens", results.tokens, a);
  const fs::path out(out_dir);
  write_file_atomically((out / "results.json").string(), to_json_line(doc) + "\n");
  const std::string md = results_markdown(results);
  write_file_atomically((out / "results.md").string(), md);

  std::ostringstream body;
  body << "<p class=\"meta\">" << escape(results.config_path)
       << " · judge: " << escape(results.judge)
       << "</p>\n<h2>Results</h2>\n<table>\n<tr><th>arm</th><th>teacher</th><th>critic</th><th>SFT "
          "examples</th><th>preference pairs</th><th>win rate vs reference (%)</th><th>exact-match "
          "accuracy (%)</th><th>judge agrees on wrong answers (%)</th><th>requests</th>"
          "<th>tokens</th></tr>\n";
  for (const ArmResult& r : results.arms) {
    body << "<tr><td>" << escape(r.arm) << "</td><td>" << escape(r.teacher) << "<br>"
         << checked(r.teacher_accuracy, r.teacher_checked) << " right</td><td>"
         << escape(r.critic.empty() ? "–" : r.critic)
         << (r.critic.empty() ? ""
                              : "<br>" + checked(r.critic_accuracy, r.critic_decisive) + " right")
         << "</td><td>" << r.sft_examples << "</td><td>"
         << (r.critic.empty() ? "–" : std::to_string(r.preference_pairs)) << "</td><td>"
         << percent(r.win_rate, r.win_rate_stderr) << "</td><td>"
         << percent(r.accuracy, r.accuracy_stderr) << "</td><td>"
         << checked(r.judge_agreement, r.wrong_judged) << "</td><td>" << r.requests << "</td><td>"
         << r.tokens << "</td></tr>\n";
  }
  body << "</table>\n<p class=\"note\">Win rates judged in both orders (a tie when they disagree); "
          "error bars are one standard error.</p>\n<div class=\"charts\">\n";
  std::vector<ChartBar> win, accuracy;
  for (const ArmResult& r : results.arms) {
    win.push_back({r.arm, std::isfinite(r.win_rate) ? r.win_rate : 0.0,
                   std::isfinite(r.win_rate_stderr) ? r.win_rate_stderr : 0.0});
    if (std::isfinite(r.accuracy)) {
      accuracy.push_back(
          {r.arm, r.accuracy, std::isfinite(r.accuracy_stderr) ? r.accuracy_stderr : 0.0});
    }
  }
  ChartOptions options;
  options.title = "win rate against the reference answers";
  options.y_label = "win rate";
  body << "<div class=\"chart-box\">" << bar_chart_svg(win, options) << "</div>\n";
  if (!accuracy.empty()) {
    options.title = "exact-match accuracy";
    options.y_label = "accuracy";
    body << "<div class=\"chart-box\">" << bar_chart_svg(accuracy, options) << "</div>\n";
  }
  body << "</div>\n";
  std::vector<RunMetrics> runs;
  for (const ArmResult& r : results.arms) {
    const std::string dir = (out / "arms" / r.arm).string();
    if (fs::exists(fs::path(dir) / "metrics.jsonl")) runs.push_back(read_run_metrics(dir, r.arm));
  }
  if (!runs.empty()) body << training_curves_html(runs, 0.6);
  body << answers_html(results, out_dir, 12);
  write_file_atomically((out / "report.html").string(),
                        html_page("Experiment: SFT on teachers vs. RLAIF", body.str()));
}

}  // namespace rlaif::cli
