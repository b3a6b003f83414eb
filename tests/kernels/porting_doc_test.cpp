// docs/PORTING.md leaves the list of primitives to kernels/backend.h (`rlaif version --primitives`
// prints it), so what it does say is checked here against the code: the files its family table
// names exist, and the optional primitives it describes are the optional entries of the list.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "kernels/backend.h"

namespace rlaif {
namespace {

std::string source_root() {
  const char* root = std::getenv("RLAIF_SOURCE_DIR");
  return root != nullptr ? root : ".";
}

std::string read_porting_doc() {
  const std::string path = source_root() + "/docs/PORTING.md";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path << " (set RLAIF_SOURCE_DIR)";
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The text from `heading` to the next heading of any level.
std::string section(const std::string& doc, const std::string& heading) {
  const size_t start = doc.find(heading);
  if (start == std::string::npos) return "";
  const size_t end = doc.find("\n#", start + heading.size());
  return doc.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

TEST(PortingDoc, ListIsBackendHsOwn) {
  std::set<std::string> names;
  int required = 0, optional = 0;
  for (const BackendPrimitive& p : kBackendPrimitives) {
    EXPECT_TRUE(names.insert(p.name).second) << "primitive listed twice: " << p.name;
    (p.optional ? optional : required) += 1;
  }
  EXPECT_EQ(required, kRequiredPrimitives);
  EXPECT_EQ(optional, kOptionalPrimitives);
  const std::string doc = read_porting_doc();
  EXPECT_NE(doc.find("rlaif version --primitives"), std::string::npos)
      << "docs/PORTING.md must point the porter to the printed list";
}

TEST(PortingDoc, FamilyTableNamesFilesThatExist) {
  const std::string table = section(read_porting_doc(), "### The required primitives, by family");
  ASSERT_FALSE(table.empty()) << "docs/PORTING.md lost its family table";
  const std::regex file(R"(`((cpu|cuda)_[a-z_]+\.(cpp|cu))`)");
  int files = 0;
  for (auto it = std::sregex_iterator(table.begin(), table.end(), file);
       it != std::sregex_iterator(); ++it, ++files) {
    const std::string name = (*it)[1];
    const std::string path = source_root() + "/kernels/" + (*it)[2].str() + "/" + name;
    EXPECT_TRUE(std::filesystem::exists(path))
        << "docs/PORTING.md names " << name << ", which is not at " << path;
  }
  EXPECT_GE(files, 26) << "the table names a CPU and a CUDA file per family";
}

TEST(PortingDoc, OptionalPrimitivesDescribedAreTheListsOptionalOnes) {
  const std::string optional =
      section(read_porting_doc(), "### The optional primitives and the queue methods");
  ASSERT_FALSE(optional.empty());
  std::set<std::string> optional_names;
  for (const BackendPrimitive& p : kBackendPrimitives) {
    if (p.optional) optional_names.insert(p.name);
  }
  const std::regex bullet(R"(\n- `([a-z_]+)(\(\))?`)");
  int described = 0;
  for (auto it = std::sregex_iterator(optional.begin(), optional.end(), bullet);
       it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1];
    if (name == "synchronize" || name == "mark") continue;
    ++described;
    EXPECT_TRUE(optional_names.count(name))
        << "docs/PORTING.md describes `" << name << "` as optional; kernels/backend.h does not";
  }
  EXPECT_GT(described, 0);
}

}  // namespace
}  // namespace rlaif
