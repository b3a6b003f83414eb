// The API key check of `rlaif serve` (io/openai_server.h): "Authorization: Bearer KEY", as
// OpenAI's API takes it.
#pragma once

#include <string>

namespace rlaif {

// Whether an Authorization header's value is "Bearer <key>" (the scheme in any case). The
// comparison takes time that depends only on the key's length, so that response times do not
// tell an attacker how much of a guess was right.
bool api_key_matches(const std::string& authorization, const std::string& key);

}  // namespace rlaif
