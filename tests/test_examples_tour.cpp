// The tour's examples (examples/adding.cpp, examples/gradient_flow.cpp, examples/demo.cpp)
// run with small flags: they must learn, measure what they claim, and write figures.
#include <doctest/doctest.h>

#include "example_runner.h"

#include <cmath>
#include <string>

using example_test::number;
using example_test::run;
using example_test::well_formed_svg;

namespace {
const double kBaseline = 1.0 / 6.0;  // MSE of always predicting the mean, 1.0
const std::string kTmp = UNROLL_TEST_TMPDIR;

void check_svg(const std::string& path) {
  std::string why;
  CHECK_MESSAGE(well_formed_svg(path, {"<polyline", "<text"}, &why), why);
}
}  // namespace

TEST_CASE("adding: on short sequences the LSTM and the GRU go far below the mean-prediction baseline") {
  const auto r = run("adding", "--T 10 --steps 600 --hidden 16 --test 200 --seed 1 --json --out " + kTmp + "/adding");
  REQUIRE(r.exit_code == 0);
  REQUIRE_FALSE(r.json.empty());
  CHECK(number(r.json, "baseline") == doctest::Approx(kBaseline));
  CHECK(number(r.json, "lstm_test_mse") < kBaseline / 5);
  CHECK(number(r.json, "gru_test_mse") < kBaseline / 5);
  CHECK(std::isfinite(number(r.json, "rnn_test_mse")));
  CHECK(r.out.find("baseline") != std::string::npos);
  check_svg(kTmp + "/adding/adding_loss.svg");
}

TEST_CASE("gradient_flow: hooks measure a vanishing tanh RNN gradient, an exploding one, and clipping") {
  const auto r = run("gradient_flow",
                     "--T 60 --hidden 32 --batch 8 --train-T 10 --train-steps 300 --clip-T 50 --clip-steps 60 "
                     "--seed 0 --json --out " + kTmp + "/flow");
  REQUIRE(r.exit_code == 0);
  REQUIRE_FALSE(r.json.empty());
  // Default init: the gradient reaching h_0 from the loss 60 steps later has all but vanished.
  const double rnn_init = number(r.json, "rnn_ratio_init");
  CHECK(rnn_init > 0);
  CHECK(rnn_init < 1e-6);
  for (const char* key : {"lstm_ratio_init", "gru_ratio_init", "rnn_ratio_trained", "lstm_ratio_trained",
                          "gru_ratio_trained"})
    CHECK_MESSAGE(std::isfinite(number(r.json, key)), key);
  // Orthogonal recurrent weights times 2: the gradient grows backwards in time.
  CHECK(number(r.json, "explode_ratio") > 10);
  // Plain SGD on that RNN blows up without clipping (a huge or NaN loss) and stays sane with it.
  const double unclipped = number(r.json, "unclipped_test_mse"), clipped = number(r.json, "clipped_test_mse");
  CHECK_FALSE(unclipped < 1e3);  // NaN (null in the JSON) also counts as blown up
  CHECK(std::isfinite(clipped));
  CHECK(clipped < 10);
  for (const char* f : {"gradient_flow.svg", "exploding.svg", "clipping_loss.svg", "clipping_grad_norm.svg"})
    check_svg(kTmp + "/flow/" + f);
}

TEST_CASE("demo --quick: gradcheck passes, the LSTM learns, both figures are written") {
  const auto r = run("demo", "--quick --json --out " + kTmp + "/demo");
  REQUIRE(r.exit_code == 0);
  REQUIRE_FALSE(r.json.empty());
  CHECK(number(r.json, "gradcheck_ok") == 1);
  CHECK(r.out.find("gradcheck (float64, central differences): passed") != std::string::npos);
  CHECK(number(r.json, "lstm_test_mse") < kBaseline / 5);
  CHECK(number(r.json, "rnn_ratio_init") > 0);
  check_svg(kTmp + "/demo/adding_loss.svg");
  check_svg(kTmp + "/demo/gradient_flow.svg");
  std::string why;
  CHECK_MESSAGE(well_formed_svg(kTmp + "/demo/gradient_flow.svg", {"stroke-dasharray"}, &why), why);
}

TEST_CASE("the tour's examples reject bad flags") {
  CHECK(run("adding", "--T 1").exit_code != 0);
  CHECK(run("demo", "--no-such-flag").exit_code == 2);
  CHECK(run("gradient_flow", "--help").exit_code == 0);
}
