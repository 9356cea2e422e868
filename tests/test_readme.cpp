// The README's example is this file's code: it is compiled and run here, and the README's
// copy is compared with it, so the two cannot drift apart.
#include <doctest/doctest.h>

#include <unroll.h>

#include <fstream>
#include <sstream>

namespace {

std::string read(const std::string& path) {
  std::ifstream f(path);
  REQUIRE_MESSAGE(f.good(), "cannot open " << path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool run_example() {
#include "readme_example.inc"
  return check.ok && w.grad().defined();
}

}  // namespace

TEST_CASE("the README example runs and its gradcheck passes") { CHECK(run_example()); }

TEST_CASE("the README shows exactly tests/readme_example.inc") {
  const std::string readme = read(UNROLL_SOURCE_DIR "/README.md");
  const std::string example = read(UNROLL_SOURCE_DIR "/tests/readme_example.inc");
  const std::string marker = "<!-- example: tests/readme_example.inc -->\n```cpp\n";
  const size_t at = readme.find(marker);
  REQUIRE_MESSAGE(at != std::string::npos, "README.md lacks the marker " << marker);
  const size_t begin = at + marker.size();
  const size_t end = readme.find("```", begin);
  REQUIRE(end != std::string::npos);
  CHECK(readme.substr(begin, end - begin) == example);
}
