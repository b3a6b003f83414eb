// What the chat-template golden tests share: where the goldens are, and the moment
// tools/golden/make_chat_template_goldens.py froze strftime_now at (2024-07-26 12:00 local time).
#pragma once

#include <ctime>
#include <string>

#include "tests/io/io_test_util.h"

namespace rlaif::test {

inline std::string chat_template_data_dir() {
  return source_dir() + "/tests/data/chat_templates/";
}

inline std::time_t chat_template_golden_time() {
  std::tm t{};
  t.tm_year = 2024 - 1900;
  t.tm_mon = 6;
  t.tm_mday = 26;
  t.tm_hour = 12;
  t.tm_isdst = -1;
  return std::mktime(&t);
}

}  // namespace rlaif::test
