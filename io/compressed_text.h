// Reads a text file that may be stored xz-compressed: large tokenizer files ship as
// tokenizer.json.xz and are read as if they were plain.
#pragma once

#include <string>

namespace rlaif {

// The contents of `path` if it exists, else of `path`.xz decompressed (liblzma); Error naming the
// path when neither exists or the .xz stream is corrupt.
std::string read_maybe_compressed(const std::string& path);
// Whether `path` or `path`.xz exists.
bool exists_maybe_compressed(const std::string& path);

}  // namespace rlaif
