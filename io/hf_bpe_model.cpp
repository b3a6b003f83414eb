#include "io/hf_bpe_model.h"

#include <rapidjson/document.h>

#include <cstdio>
#include <queue>

#include "io/compressed_text.h"
#include "io/hf_text.h"
#include "runtime/error.h"

namespace rlaif::hf {

namespace {

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

BpeModel::BpeModel(TokenMap vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                   BpeOptions options, std::string origin)
    : vocab_(std::move(vocab)), options_(std::move(options)), origin_(std::move(origin)) {
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab_) {
    RLAIF_CHECK(id >= 0, origin_, ": token '", token, "' has a negative id ", id);
    max_id = std::max(max_id, id);
  }
  // Ids index a table of tokens: a small file declaring a huge id must not allocate gigabytes.
  RLAIF_CHECK(int64_t{max_id} < static_cast<int64_t>(vocab_.size()) + kMaxUnusedIds, origin_,
              ": the largest token id is ", max_id, " but the vocabulary holds ", vocab_.size(),
              " tokens; more than ", kMaxUnusedIds, " unused ids is refused (a corrupt file?)");
  tokens_.resize(static_cast<size_t>(max_id + 1));
  has_token_.assign(tokens_.size(), false);
  for (const auto& [token, id] : vocab_) {
    tokens_[static_cast<size_t>(id)] = token;
    has_token_[static_cast<size_t>(id)] = true;
  }
  const size_t prefix_len = options_.continuing_subword_prefix.size();
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const auto ia = token_to_id(a), ib = token_to_id(b);
    RLAIF_CHECK(ia && ib, origin_, ": merge ", rank, " ('", a, "' '", b,
                "') uses a token missing from the vocabulary");
    RLAIF_CHECK(b.size() >= prefix_len, origin_, ": merge ", rank, " ('", a, "' '", b,
                "') lacks the continuing_subword_prefix");
    const std::string merged = a + b.substr(prefix_len);
    const auto im = token_to_id(merged);
    RLAIF_CHECK(im.has_value(), origin_, ": merge ", rank, " makes '", merged,
                "', which is missing from the vocabulary");
    merges_.insert_or_assign(pair_key(*ia, *ib), Merge{static_cast<int32_t>(rank), *im});
  }
  if (!options_.unk_token.empty()) unk_id_ = token_to_id(options_.unk_token).value_or(-1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_ids_[static_cast<size_t>(b)] = token_to_id(name).value_or(-1);
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size() || !has_token_[static_cast<size_t>(id)]) {
    return nullptr;
  }
  return &tokens_[static_cast<size_t>(id)];
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  const bool cacheable = word.size() <= kCacheWordBytes;
  CacheShard& shard = cache_[StringHash{}(word) % kCacheShards];
  if (cacheable) {
    std::lock_guard lock(shard.mutex);
    auto it = shard.map.find(word);
    if (it != shard.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  if (options_.ignore_merges) {
    if (auto id = token_to_id(word)) ids.push_back(*id);
  }
  if (ids.empty()) merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard lock(shard.mutex);
    if (shard.map.size() >= kCacheShardEntries) shard.map.clear();
    shard.map.emplace(std::string(word), std::move(ids));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  // Initial symbols: one per character, or its fallback bytes, or (fused) unk.
  std::vector<int32_t> ids;
  ids.reserve(word.size());
  int32_t pending_unk = -1;  // an unk not yet emitted, so a following one can fuse into it
  size_t pos = 0;
  std::string piece;
  while (pos < word.size()) {
    const size_t begin = pos;
    utf8_next(word, pos);
    piece.assign(word.substr(begin, pos - begin));
    if (begin > 0) piece.insert(0, options_.continuing_subword_prefix);
    if (pos == word.size()) piece += options_.end_of_word_suffix;
    if (auto id = token_to_id(piece)) {
      if (pending_unk >= 0) ids.push_back(pending_unk), pending_unk = -1;
      ids.push_back(*id);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (size_t i = begin; i < pos; ++i)
        all = all && byte_ids_[static_cast<uint8_t>(word[i])] >= 0;
      if (all) {
        if (pending_unk >= 0) ids.push_back(pending_unk), pending_unk = -1;
        for (size_t i = begin; i < pos; ++i)
          ids.push_back(byte_ids_[static_cast<uint8_t>(word[i])]);
        continue;
      }
    }
    if (!options_.unk_token.empty()) {
      RLAIF_CHECK(unk_id_ >= 0, origin_, ": unk_token '", options_.unk_token,
                  "' is not in the vocabulary");
      if (pending_unk >= 0 && !options_.fuse_unk) ids.push_back(pending_unk);
      pending_unk = unk_id_;
    }
    // With no unk_token an unknown character is dropped, as the Rust crate does.
  }
  if (pending_unk >= 0) ids.push_back(pending_unk);

  const int n = static_cast<int>(ids.size());
  if (n < 2) {
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  std::vector<bool> alive(static_cast<size_t>(n), true);
  for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;

  struct Candidate {
    int32_t rank;
    int pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push_pair = [&](int left) {
    const int right = next[static_cast<size_t>(left)];
    if (right < 0) return;
    auto it =
        merges_.find(pair_key(ids[static_cast<size_t>(left)], ids[static_cast<size_t>(right)]));
    if (it != merges_.end()) heap.push({it->second.rank, left, it->second.new_id});
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    const auto p = static_cast<size_t>(top.pos);
    if (!alive[p] || next[p] < 0) continue;
    const auto r = static_cast<size_t>(next[p]);
    auto it = merges_.find(pair_key(ids[p], ids[r]));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;  // stale
    ids[p] = top.new_id;
    alive[r] = false;
    next[p] = next[r];
    if (next[r] >= 0) prev[static_cast<size_t>(next[r])] = top.pos;
    if (prev[p] >= 0) push_pair(prev[p]);
    push_pair(top.pos);
  }
  for (int i = 0; i >= 0; i = next[static_cast<size_t>(i)])
    out.push_back(ids[static_cast<size_t>(i)]);
}

// ---- loading ----

namespace {

TokenMap vocab_of(const Json& vocab, const std::string& origin) {
  RLAIF_CHECK(vocab.IsObject(), origin, ": \"vocab\" must be an object of token -> id");
  TokenMap map;
  map.reserve(vocab.MemberCount());
  for (const auto& m : vocab.GetObject()) {
    RLAIF_CHECK(m.value.IsInt(), origin, ": vocab entry '", m.name.GetString(),
                "' must have an integer id");
    map.emplace(std::string(m.name.GetString(), m.name.GetStringLength()), m.value.GetInt());
  }
  return map;
}

}  // namespace

std::unique_ptr<BpeModel> BpeModel::from_json(const Json& model, const std::string& file) {
  const std::string origin = component_origin(file, "model", model);
  const std::string type = type_of(model, origin);
  RLAIF_CHECK(type == "BPE", origin, ": unsupported model type \"", type,
              "\" (only BPE is supported)");
  if (const Json* dropout = member(model, "dropout")) {
    throw Error(origin, ": dropout ", dropout->IsNumber() ? dropout->GetDouble() : -1.0,
                " is not supported (must be null)");
  }
  const Json* vocab = member(model, "vocab");
  RLAIF_CHECK(vocab != nullptr, origin, ": missing \"vocab\"");
  std::vector<std::pair<std::string, std::string>> merges;
  if (const Json* list = member(model, "merges")) {
    RLAIF_CHECK(list->IsArray(), origin, ": \"merges\" must be a list");
    merges.reserve(list->Size());
    for (const Json& m : list->GetArray()) {
      if (m.IsString()) {
        const std::string_view s(m.GetString(), m.GetStringLength());
        const size_t space = s.find(' ');
        RLAIF_CHECK(space != std::string_view::npos, origin, ": merge \"", s,
                    "\" is not two tokens separated by a space");
        merges.emplace_back(std::string(s.substr(0, space)), std::string(s.substr(space + 1)));
      } else {
        RLAIF_CHECK(m.IsArray() && m.Size() == 2 && m[0].IsString() && m[1].IsString(), origin,
                    ": a merge must be \"a b\" or [\"a\", \"b\"]");
        merges.emplace_back(std::string(m[0].GetString(), m[0].GetStringLength()),
                            std::string(m[1].GetString(), m[1].GetStringLength()));
      }
    }
  }
  BpeOptions options;
  options.unk_token = string_member(model, "unk_token", origin);
  options.fuse_unk = bool_member(model, "fuse_unk", origin, false);
  options.byte_fallback = bool_member(model, "byte_fallback", origin, false);
  options.ignore_merges = bool_member(model, "ignore_merges", origin, false);
  options.continuing_subword_prefix = string_member(model, "continuing_subword_prefix", origin);
  options.end_of_word_suffix = string_member(model, "end_of_word_suffix", origin);
  return std::make_unique<BpeModel>(vocab_of(*vocab, origin), merges, std::move(options), file);
}

std::unique_ptr<BpeModel> BpeModel::from_files(const std::string& vocab_path,
                                               const std::string& merges_path) {
  const std::string vocab_text = read_maybe_compressed(vocab_path);
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(vocab_text.data(), vocab_text.size());
  RLAIF_CHECK(!doc.HasParseError(), vocab_path, ": not valid JSON (offset ", doc.GetErrorOffset(),
              ")");
  TokenMap vocab = vocab_of(doc, vocab_path);

  const std::string merges_text = read_maybe_compressed(merges_path);
  std::vector<std::pair<std::string, std::string>> merges;
  size_t pos = 0, line_no = 0;
  while (pos < merges_text.size()) {
    size_t end = merges_text.find('\n', pos);
    if (end == std::string::npos) end = merges_text.size();
    std::string_view line(merges_text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t space = line.find(' ');
    RLAIF_CHECK(space != std::string_view::npos, merges_path, ": line ", line_no,
                " is not two tokens separated by a space");
    merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
  }
  return std::make_unique<BpeModel>(std::move(vocab), merges, BpeOptions{}, merges_path);
}

}  // namespace rlaif::hf
