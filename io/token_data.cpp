#include "io/token_data.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/atomic_file.h"
#include "runtime/error.h"
#include "runtime/fnv1a.h"

namespace rlaif {

bool is_token_shard(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  int32_t magic = 0;
  in.read(reinterpret_cast<char*>(&magic), sizeof magic);
  return in.gcount() == sizeof magic && magic == kTokenShardMagic;
}

std::vector<int32_t> read_token_shard(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RLAIF_CHECK(in.good(), "cannot open token shard ", path);
  int32_t header[256] = {};
  in.read(reinterpret_cast<char*>(header), sizeof header);
  RLAIF_CHECK(in.gcount() == sizeof header, path, ": shorter than the 1024-byte shard header");
  RLAIF_CHECK(header[0] == kTokenShardMagic, path, ": bad magic ", header[0], " (expected ",
              kTokenShardMagic, ")");
  RLAIF_CHECK(header[1] == kTokenShardVersion, path, ": unsupported shard version ", header[1]);
  RLAIF_CHECK(header[2] >= 0, path, ": negative token count ", header[2]);
  // The count is checked against the file before anything is allocated for it.
  std::error_code ec;
  const uintmax_t file_bytes = std::filesystem::file_size(path, ec);
  RLAIF_CHECK(!ec, "cannot read the size of token shard ", path, ": ", ec.message());
  const uintmax_t promised = sizeof header + 2 * static_cast<uintmax_t>(header[2]);
  RLAIF_CHECK(file_bytes >= promised, path, ": header promises ", header[2],
              " tokens but the file holds ", (file_bytes - sizeof header) / 2);
  std::vector<uint16_t> raw(static_cast<size_t>(header[2]));
  in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size() * 2));
  RLAIF_CHECK(static_cast<size_t>(in.gcount()) == raw.size() * 2, path, ": header promises ",
              header[2], " tokens but the file holds ", in.gcount() / 2);
  return std::vector<int32_t>(raw.begin(), raw.end());
}

void write_token_shard(const std::string& path, const std::vector<int32_t>& tokens) {
  RLAIF_CHECK(tokens.size() <= static_cast<size_t>(INT32_MAX), path,
              ": too many tokens for one shard");
  int32_t header[256] = {};
  header[0] = kTokenShardMagic;
  header[1] = kTokenShardVersion;
  header[2] = static_cast<int32_t>(tokens.size());
  std::vector<uint16_t> raw(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    RLAIF_CHECK(tokens[i] >= 0 && tokens[i] <= 65535, path, ": token ", tokens[i], " at position ",
                i, " does not fit the shard's uint16");
    raw[i] = static_cast<uint16_t>(tokens[i]);
  }
  AtomicFileWriter out(path);
  out.write(header, sizeof header);
  out.write(raw.data(), raw.size() * 2);
  out.commit();
}

std::vector<int32_t> load_tokens(const std::string& path, const Tokenizer* tokenizer) {
  if (is_token_shard(path)) return read_token_shard(path);
  std::ifstream in(path, std::ios::binary);
  RLAIF_CHECK(in.good(), "cannot open data file ", path);
  RLAIF_CHECK(tokenizer != nullptr, path, " is text and no tokenizer was given to tokenize it");
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::vector<int32_t> tokens;
  if (tokenizer->bos_id() >= 0) tokens.push_back(tokenizer->bos_id());
  std::vector<int32_t> body = tokenizer->encode(buffer.str());
  tokens.insert(tokens.end(), body.begin(), body.end());
  return tokens;
}

namespace {

// FNV-1a (runtime/fnv1a.h) over the bytes of a file: cheap, stable across runs and machines.
uint64_t file_hash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RLAIF_CHECK(in.good(), "cannot read ", path);
  Fnv1a64 h;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    h.add_bytes(buf, static_cast<size_t>(in.gcount()));
  }
  return h.value();
}

}  // namespace

std::vector<int32_t> load_tokens_cached(const std::string& path, const Tokenizer& tokenizer) {
  namespace fs = std::filesystem;
  if (is_token_shard(path)) return read_token_shard(path);
  RLAIF_CHECK(fs::exists(path), "data file ", path, " does not exist");
  uint64_t key = file_hash(tokenizer.path()) ^ (static_cast<uint64_t>(fs::file_size(path)) * 31) ^
                 static_cast<uint64_t>(fs::last_write_time(path).time_since_epoch().count());
  char suffix[40];
  std::snprintf(suffix, sizeof suffix, ".tokens-%016llx.bin", static_cast<unsigned long long>(key));
  std::string cache = path + suffix;
  if (fs::exists(cache)) {
    try {
      return read_token_shard(cache);
    } catch (const Error&) {
      // A damaged cache is rebuilt below.
    }
  }
  std::vector<int32_t> tokens = load_tokens(path, &tokenizer);
  if (tokenizer.vocab_size() <= 65536) {
    // Temporaries of any key that a killed process left beside the text (the key changes with
    // the text and the tokenizer, so the writer below would never meet them).
    const std::string stem = fs::path(path).filename().string() + ".tokens-";
    remove_stale_temporaries(fs::path(path).parent_path().string(), [&stem](const std::string& n) {
      return n.size() == stem.size() + 20 && n.compare(0, stem.size(), stem) == 0 &&
             n.compare(n.size() - 4, 4, ".bin") == 0;
    });
    try {
      write_token_shard(cache, tokens);
    } catch (const Error&) {
      // Read-only folder: tokenizing again next time is the only cost.
    }
  }
  return tokens;
}

}  // namespace rlaif
