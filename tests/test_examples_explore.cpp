// A short run of examples/explore: every page it announces is written, self-contained (no
// external script or stylesheet) and carries the graph or hidden-state data.
#include <doctest/doctest.h>

#include "test_support.h"

#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("explore: writes the graph pages of three cells and two hidden-state pages") {
  const std::string out = std::string(UNROLL_TEST_TMPDIR) + "/explore";
  const auto r = example_test::run("explore", "--T 8 --hidden 4 --steps 30 --lm-steps 30 --lm-show 120 --out " + out);
  REQUIRE(r.exit_code == 0);
  INFO(r.out);
  for (const char* cell : {"rnn", "lstm", "gru"})
    for (const char* when : {"untrained", "trained"}) {
      const std::string page = slurp(out + "/graph_" + cell + "_" + when + ".html");
      CAPTURE(cell);
      CAPTURE(when);
      CHECK(page.find("<script>") != std::string::npos);
      CHECK(page.find("<script src") == std::string::npos);  // nothing fetched: works from file://
      CHECK(page.find("\"id\":") != std::string::npos);
    }
  for (const char* name : {"states_lstm_adding.html", "states_char_lm.html"}) {
    CAPTURE(name);
    const std::string page = slurp(out + "/" + name);
    CHECK(page.size() > 1000);
    CHECK(page.find("<script>") != std::string::npos);
  }
  CHECK(r.out.find("hidden states of a character LM") != std::string::npos);
  CHECK(example_test::run("explore", "--lm-hidden 0 --out " + out).exit_code != 0);
}
