// The tour's examples (examples/adding.cpp, examples/gradient_flow.cpp, examples/demo.cpp)
// run with small flags: they must learn, measure what they claim, and write figures.
#include <doctest/doctest.h>

#include "test_support.h"

#include "common/tasks.h"

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

TEST_CASE("adding: --forget-bias sets the LSTM forget gate's bias slice, and only it") {
  using namespace unroll;
  using namespace unroll::examples;
  manual_seed(3);
  LSTMCell cell(2, 5);
  const std::vector<double> before_ih = cell.bias_ih.data().to_vector(), before_hh = cell.bias_hh.data().to_vector();
  set_forget_bias(cell, 1.0);
  const std::vector<double> ih = cell.bias_ih.data().to_vector(), hh = cell.bias_hh.data().to_vector();
  REQUIRE(ih.size() == 20);
  for (size_t j = 0; j < 20; ++j) {
    const bool forget = j >= 5 && j < 10;  // gate order i, f, g, o
    CHECK(ih[j] == (forget ? 1.0 : before_ih[j]));
    CHECK(hh[j] == (forget ? 0.0 : before_hh[j]));
  }
  // Through the regressor the tour trains: the LSTM's gate bias is set, other cells untouched.
  AddingConfig cfg;
  cfg.T = 4, cfg.steps = 1, cfg.test_size = 4, cfg.hidden = 3, cfg.progress = false, cfg.forget_bias = 2.0;
  cfg.cells = {CellKind::Lstm};
  const std::vector<CellRun> runs = train_all_cells(cfg);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0].kind == CellKind::Lstm);
  CHECK(std::isnan(parse_forget_bias("pytorch")));
  CHECK(parse_forget_bias("1.5") == 1.5);
  CHECK_THROWS_AS(parse_forget_bias("one"), unroll::Error);
  CHECK(parse_cells("gru,rnn") == std::vector<CellKind>{CellKind::Gru, CellKind::Rnn});
  CHECK_THROWS_AS(parse_cells("lstm,cnn"), unroll::Error);
  CHECK_THROWS_AS(parse_cells("lstm,lstm"), unroll::Error);
}

TEST_CASE("adding --seeds: median, range and solved count over seeds, for the cells asked") {
  const auto r = run("adding", "--T 10 --steps 300 --hidden 16 --test 200 --seeds 3 --cells lstm,gru --json --out " +
                                   kTmp + "/adding_seeds");
  REQUIRE(r.exit_code == 0);
  CHECK(std::isnan(number(r.json, "rnn_test_mse")));  // not trained
  const double lo = number(r.json, "lstm_min"), med = number(r.json, "lstm_median"), hi = number(r.json, "lstm_max");
  CHECK(lo <= med);
  CHECK(med <= hi);
  CHECK(number(r.json, "lstm_test_mse") >= lo);  // seed 0 is one of the three
  CHECK(number(r.json, "lstm_test_mse") <= hi);
  const double solved = number(r.json, "gru_solved");
  CHECK(solved >= 0);
  CHECK(solved <= 3);
  CHECK(r.out.find("held-out MSE over seeds 0..2") != std::string::npos);
  CHECK(r.out.find("LSTM forget-gate bias at init: 2") != std::string::npos);
  CHECK(run("adding", "--cells lstm,cnn --steps 1").exit_code == 2);
  CHECK(run("adding", "--forget-bias big --steps 1").exit_code == 2);
}
