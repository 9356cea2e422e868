// examples/jacobian in a tiny configuration (a few seconds): the tanh RNN's Jacobian obeys
// the weight bound and vanishes when sigma_max(W_hh) < 1, the incremental product of step
// Jacobians equals a direct jacobian of the unrolled function, the sharpness (Lanczos on
// Hessian-vector products) equals the full Hessian's top eigenvalue, and the figures are written.
#include <doctest/doctest.h>

#include "test_support.h"

#include <cmath>
#include <string>

namespace {

const std::string kTmp = UNROLL_TEST_TMPDIR;

void check_svg(const std::string& path, const std::vector<std::string>& must_contain) {
  std::string why;
  CHECK_MESSAGE(example_test::well_formed_svg(path, must_contain, &why), why);
}

double num(const example_test::Run& r, const std::string& key) { return example_test::number(r.json, key); }

}  // namespace

TEST_CASE("jacobian: sigma_max(W_hh) = 0.9 forces the tanh RNN's dh_T/dh_0 to vanish, under the bound at every T") {
  const std::string out = kTmp + "/tiny";
  const auto r = example_test::run("jacobian", "--T 50 --hidden 8 --seeds 2 --train-T 10 --train-steps 40 --batch 8 "
                                               "--test 50 --sharp-every 0 --check-T 5 --rnn-norm 0.9 "
                                               "--seed 3 --json --out " + out);
  REQUIRE(r.exit_code == 0);
  REQUIRE(!r.json.empty());
  INFO(r.json);
  CHECK(num(r, "seeds") == 2);
  CHECK(num(r, "rnn_init_whh_norm") == doctest::Approx(0.9).epsilon(1e-6));
  // The bound sigma_max(dh_T/dh_0) <= sigma_max(W_hh)^T, checked by the program at every T,
  // every seed, at init and trained (it is a theorem; a violation would be a wrong Jacobian).
  CHECK(num(r, "rnn_bound_ratio_max") > 0);
  CHECK(num(r, "rnn_bound_ratio_max") <= 1.0 + 1e-12);
  // Vanishing: below 0.9^T, and shrinking with T.
  CHECK(num(r, "rnn_init_s50") <= std::pow(0.9, 50));
  CHECK(num(r, "rnn_init_s50_max") <= std::pow(0.9, 50));
  CHECK(num(r, "rnn_init_s50") < num(r, "rnn_init_s10"));
  CHECK(num(r, "rnn_init_s10") < num(r, "rnn_init_s1"));
  CHECK(num(r, "rnn_init_bound10") == doctest::Approx(std::pow(0.9, 10)).epsilon(1e-6));
  // The incremental product J_T ... J_1 against functional::jacobian of the T-step function.
  CHECK(num(r, "direct_check_error") < 1e-10);
  for (const char* cell : {"lstm", "gru"}) {
    CAPTURE(cell);
    const double s1 = num(r, std::string(cell) + "_init_s1"), s50 = num(r, std::string(cell) + "_init_s50");
    CHECK(std::isfinite(s1));
    CHECK(s1 > 0);
    CHECK(s50 > 0);
  }
  check_svg(out + "/jacobian_init.svg", {"<polyline", "bound ||W_hh||^T", "LSTM", "GRU"});
  check_svg(out + "/jacobian_trained.svg", {"<polyline", "tanh RNN"});
}

TEST_CASE("jacobian: sharpness (Lanczos on hvp, i.e. grad with create_graph) equals the full Hessian's top eigenvalue") {
  // hidden 4: 37 (RNN) to 133 (LSTM) parameters, so the program also builds the full Hessian
  // (one hvp per parameter) at the first and last measurements and diagonalises it (eigh).
  const std::string out = kTmp + "/sharp";
  const auto r = example_test::run("jacobian", "--T 20 --hidden 4 --seeds 2 --train-T 10 --train-steps 40 --batch 8 "
                                               "--test 20 --sharp-every 20 --hvps 30 --hessian-check 400 --check-T 0 "
                                               "--seed 3 --json --out " + out);
  REQUIRE(r.exit_code == 0);
  INFO(r.json);
  for (const char* cell : {"rnn", "lstm", "gru"}) {
    CAPTURE(cell);
    const std::string key(cell);
    const double init = num(r, key + "_sharp_init"), mid = num(r, key + "_sharp_mid"),
                 end = num(r, key + "_sharp_end"), peak = num(r, key + "_sharp_peak");
    CHECK(std::isfinite(init));
    CHECK(std::isfinite(end));
    CHECK(init > 0);  // lambda_max of an MSE Hessian on a generic model: positive
    CHECK(mid > 0);
    CHECK(end > 0);
    CHECK(num(r, key + "_sharp_init_min") <= init);
    CHECK(num(r, key + "_sharp_init_max") >= init);
    CHECK(peak >= init);
    CHECK(peak >= end);
    // The estimate from 30 Hessian-vector products against eigh of the full Hessian, and
    // against 60 products: a wrong hvp or a wrong Lanczos step would be far off.
    CHECK(num(r, key + "_full_hessian_rel_err") < 1e-6);
    CHECK(num(r, key + "_lanczos_rel_change") < 1e-6);
    CHECK(num(r, key + "_power_rel_err") >= 0);
  }
  check_svg(out + "/sharpness.svg", {"<polyline", "tanh RNN", "LSTM", "GRU", "2 / lr"});
}

TEST_CASE("jacobian: bad flags are a clear error, not an abort") {
  const std::string out = kTmp + "/bad";
  CHECK(example_test::run("jacobian", "--hidden 0 --out " + out).exit_code == 2);
  CHECK(example_test::run("jacobian", "--no-such-flag 1 --out " + out).exit_code == 2);
  CHECK(example_test::run("jacobian", "--hvps 0 --out " + out).exit_code == 2);
}
