// docs/PORTING.md states how many primitives a port implements and names each of them: checked
// here against kernels/backend.h's list, so the porter's checklist cannot fall behind it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace rlaif {
namespace {

std::string read_porting_doc() {
  const char* root = std::getenv("RLAIF_SOURCE_DIR");
  const std::string path = std::string(root != nullptr ? root : ".") + "/docs/PORTING.md";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path << " (set RLAIF_SOURCE_DIR)";
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

#define RLAIF_PRIMITIVE_NAME(name, params, args) #name,
const std::vector<std::string> kPrimitiveNames = {
    RLAIF_BACKEND_PRIMITIVES(RLAIF_PRIMITIVE_NAME, RLAIF_PRIMITIVE_NAME)};
#undef RLAIF_PRIMITIVE_NAME

TEST(PortingDoc, CountsAndNamesMatchBackendH) {
  const std::string doc = read_porting_doc();
  ASSERT_FALSE(doc.empty());
  EXPECT_EQ(kRequiredPrimitives + kOptionalPrimitives, static_cast<int>(kPrimitiveNames.size()));
  const std::string required =
      "**" + std::to_string(kRequiredPrimitives) + " required primitives**";
  const std::string optional =
      "**" + std::to_string(kOptionalPrimitives) + " optional primitives**";
  EXPECT_NE(doc.find(required), std::string::npos)
      << "docs/PORTING.md must say " << required << " (kernels/backend.h's count)";
  EXPECT_NE(doc.find(optional), std::string::npos)
      << "docs/PORTING.md must say " << optional << " (kernels/backend.h's count)";
  EXPECT_NE(doc.find("### Required primitives (" + std::to_string(kRequiredPrimitives) + ")"),
            std::string::npos)
      << "the heading of the required list must give its count";
  EXPECT_NE(doc.find("(" + std::to_string(kOptionalPrimitives) + " primitives,"), std::string::npos)
      << "the heading of the optional list must give its count";
  for (const std::string& name : kPrimitiveNames) {
    EXPECT_NE(doc.find("`" + name + "`"), std::string::npos)
        << "docs/PORTING.md does not name the primitive `" << name << "`";
  }
}

}  // namespace
}  // namespace rlaif
