#include "algorithms/prompt_columns.h"

#include <rapidjson/document.h>

#include <algorithm>

#include "runtime/error.h"

namespace rlaif {
namespace {

std::string shortened(const std::string& text, size_t max_chars = 80) {
  return text.size() > max_chars ? text.substr(0, max_chars) + "..." : text;
}

}  // namespace

std::optional<std::string> column_text(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError()) return std::nullopt;
  if (doc.IsString()) return std::string(doc.GetString(), doc.GetStringLength());
  if (doc.IsNumber()) return json;
  return std::nullopt;
}

PromptColumns::PromptColumns(const std::vector<PromptRecord>& records, const std::string& source,
                             const std::optional<std::vector<std::string>>& kept)
    : source_(source) {
  auto keep = [&](const std::string& column) {
    return !kept || std::find(kept->begin(), kept->end(), column) != kept->end();
  };
  for (const PromptRecord& r : records) {
    PromptRecord record{r.prompt, r.where, {}};
    for (const auto& [name, json] : r.columns) {
      if (keep(name)) record.columns.emplace(name, json);
    }
    auto [it, inserted] = index_.emplace(record.prompt, records_.size());
    if (inserted) {
      records_.push_back(std::move(record));
      continue;
    }
    const PromptRecord& first = records_[it->second];
    std::vector<std::string> names;
    for (const auto& [name, json] : first.columns) names.push_back(name);
    for (const auto& [name, json] : record.columns) names.push_back(name);
    for (const std::string& name : names) {
      auto value = [&](const PromptRecord& r) {
        auto it = r.columns.find(name);
        return it == r.columns.end() ? std::string("(none)") : it->second;
      };
      const std::string va = value(first), vb = value(record);
      RLAIF_CHECK(va == vb, first.where, " and ", record.where, " have the same prompt \"",
                  shortened(record.prompt), "\" but different \"", name,
                  "\" values: ", shortened(va), " and ", shortened(vb));
    }
  }
}

PromptColumns PromptColumns::load(const std::string& path,
                                  const std::optional<std::vector<std::string>>& kept) {
  return PromptColumns(load_prompt_records(path), path, kept);
}

const PromptRecord& PromptColumns::record(const std::string& prompt) const {
  auto it = index_.find(prompt);
  RLAIF_CHECK(it != index_.end(), source_, ": no record has the prompt \"", shortened(prompt),
              "\"");
  return records_[it->second];
}

std::string PromptColumns::text(const PromptRecord& record, const std::string& column) {
  auto it = record.columns.find(column);
  RLAIF_CHECK(it != record.columns.end(), record.where, ": no column \"", column, "\"");
  std::optional<std::string> text = column_text(it->second);
  RLAIF_CHECK(text.has_value(), record.where, ": column \"", column,
              "\" must be a string or a number, got ", shortened(it->second));
  return *text;
}

}  // namespace rlaif
