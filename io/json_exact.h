// JSON parsed with every number read exactly: integers as RapidJSON types them (int, unsigned,
// int64, uint64), any other number as the double nearest its decimal text, so that doubles
// written with shortest round-trip digits read back to the same bits.
//
// RapidJSON 1.1's own exact mode (kParseFullPrecisionFlag) misreads a zero significand with a
// large exponent: "0e40" becomes a huge number whose bits vary with the build. This parser has
// RapidJSON hand over numbers as text and converts them itself (std::from_chars, correctly
// rounded). It parses iteratively, like every JSON reader of rlaif (io/json_depth.h).
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/error/error.h>

#include <string_view>

namespace rlaif {

// Parses `text` into `doc` as RapidJSON's Document::Parse(text, length) would, numbers aside;
// the result says where the text is not JSON (`doc` is unspecified then).
rapidjson::ParseResult parse_json_exact(rapidjson::Document& doc, std::string_view text);

}  // namespace rlaif
