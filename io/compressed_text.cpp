#include "io/compressed_text.h"

#include <lzma.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/error.h"

namespace rlaif {

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RLAIF_CHECK(in.good(), "'", path, "': cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string xz_decompress(const std::string& data, const std::string& path) {
  lzma_stream stream = LZMA_STREAM_INIT;
  RLAIF_CHECK(lzma_stream_decoder(&stream, UINT64_MAX, 0) == LZMA_OK, "'", path,
              "': cannot start the xz decoder");
  std::string out;
  std::string chunk(1 << 20, '\0');
  stream.next_in = reinterpret_cast<const uint8_t*>(data.data());
  stream.avail_in = data.size();
  lzma_ret ret = LZMA_OK;
  while (ret == LZMA_OK) {
    stream.next_out = reinterpret_cast<uint8_t*>(chunk.data());
    stream.avail_out = chunk.size();
    ret = lzma_code(&stream, LZMA_FINISH);
    out.append(chunk.data(), chunk.size() - stream.avail_out);
  }
  lzma_end(&stream);
  RLAIF_CHECK(ret == LZMA_STREAM_END, "'", path, "': corrupt xz data (liblzma error ", ret, ")");
  return out;
}

}  // namespace

std::string read_maybe_compressed(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return read_all(path);
  const std::string xz = path + ".xz";
  RLAIF_CHECK(std::filesystem::is_regular_file(xz, ec), "'", path, "': no such file (nor ", xz,
              ")");
  return xz_decompress(read_all(xz), xz);
}

bool exists_maybe_compressed(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec) ||
         std::filesystem::is_regular_file(path + ".xz", ec);
}

}  // namespace rlaif
