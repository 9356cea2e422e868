// examples/memory in a small configuration: the per-step bytes it reports follow from the
// shapes, truncation keeps one window's worth, and the figures and the named DOT are written.
#include <doctest/doctest.h>

#include "common/bars.h"
#include "test_support.h"

#include <unroll.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {
const std::string kTmp = UNROLL_TEST_TMPDIR;
double num(const example_test::Run& r, const std::string& key) { return example_test::number(r.json, key); }
}  // namespace

TEST_CASE("memory: full BPTT keeps T steps of state, truncated windows keep one window") {
  const std::string out = kTmp + "/small";
  const auto r = example_test::run("memory", "--T 12 --window 4 --hidden 8 --input 3 --batch 2 --json --out " + out);
  REQUIRE(r.exit_code == 0);
  REQUIRE(!r.json.empty());
  INFO(r.json);
  // Per step: h_t [2,8] float32 (64 B, kept by tanh and the next step's add_linear) and the
  // MSE's difference [2,1] (8 B, kept by its square); 8 ops: the cell's linear (x W_ih^T +
  // b_ih), add_linear (+ h W_hh^T + b_hh) and tanh, head linear, sub, mul, mean, and the
  // add into the running loss.
  CHECK(num(r, "step_bytes") == 64 + 8);
  CHECK(num(r, "step_nodes") == 8);
  CHECK(num(r, "full_nodes") == 12 * 8 - 1);       // step 0 has no add
  CHECK(num(r, "full_bytes") == 12 * (64 + 8) + 4);  // + the loss value held by its handle
  CHECK(num(r, "window_bytes_max") == 4 * (64 + 8) + 4);
  CHECK(num(r, "truncated_peak_bytes") < num(r, "full_peak_bytes"));
  std::string why;
  CHECK_MESSAGE(example_test::well_formed_svg(out + "/memory_per_step.svg", {"<rect", "saved by backward functions"}, &why),
                why);
  CHECK_MESSAGE(example_test::well_formed_svg(out + "/memory_truncation.svg", {"<rect", "truncated BPTT"}, &why), why);
  std::ifstream f(out + "/memory_graph.dot");
  std::stringstream dot;
  dot << f.rdbuf();
  CHECK(dot.str().find("rnn.weight_hh") != std::string::npos);
  CHECK(dot.str().find("head.bias") != std::string::npos);
}

TEST_CASE("memory: bad flags are a clear error") {
  CHECK(example_test::run("memory", "--window 0 --out " + kTmp + "/bad").exit_code == 2);
  CHECK(example_test::run("memory", "--T 5 --window 6 --out " + kTmp + "/bad").exit_code == 2);
}

TEST_CASE("BarChart: bars scale with the values, stack, and wrong sizes are named") {
  unroll::plot::BarChart c;
  c.categories = {"a", "b"};
  c.stacked = true;
  c.add("x", {1024, 2048}).add("y", {1024, 0});
  const std::string svg = c.svg();
  CHECK(svg.find("<title>b x: 2 KiB</title>") != std::string::npos);
  CHECK(svg.find("<title>b y:") == std::string::npos);  // a zero draws no bar
  CHECK(svg.find(">2 KiB</text>") != std::string::npos);  // ticks in the labels' unit
  CHECK_THROWS_WITH_AS(c.add("z", {1}), "BarChart::add: series 'z' has 1 values for 2 categories", unroll::Error);
  CHECK(unroll::plot::format_bytes(4) == "4 B");
  CHECK(unroll::plot::format_bytes(1536) == "1.5 KiB");
}
