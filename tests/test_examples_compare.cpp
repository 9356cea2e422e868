// Short runs of examples/compare (FCN vs TCN vs RNNs on Bai et al.'s tasks) with small flags
// and fixed seeds: the TCN must really learn the copy-memory and adding tasks, every model
// must learn sequential digits (when the data file is there), the figures must be
// well-formed SVG, and bad flags must give a clear error and a nonzero exit.
#include <doctest/doctest.h>

#include "test_support.h"

#include <cmath>
#include <fstream>
#include <string>

namespace {

const std::string kTmp = UNROLL_TEST_TMPDIR;

void check_svg(const std::string& path, const std::vector<std::string>& must_contain) {
  std::string why;
  CHECK_MESSAGE(example_test::well_formed_svg(path, must_contain, &why), why);
}

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

}  // namespace

TEST_CASE("compare: on copy memory the TCN recalls the symbols, far below the memoryless baseline") {
  const std::string out = kTmp + "/compare_copy";
  const auto r = example_test::run("compare", "--task copy --copy-T 10 --steps 400 --test 200 --seed 0 --json --out " + out);
  REQUIRE(r.exit_code == 0);
  INFO(r.out);
  const double baseline = 10 * std::log(8.0) / 30;  // 10 ln 8 / (T + 20)
  CHECK(example_test::number(r.json, "copy_tcn") < 0.3 * baseline);
  for (const char* k : {"copy_mlp", "copy_rnn", "copy_lstm", "copy_gru"}) {
    CAPTURE(k);
    CHECK(std::isfinite(example_test::number(r.json, k)));
  }
  CHECK(example_test::number(r.json, "copy_tcn_params") > 0);
  CHECK(r.out.find("Bai et al. 2018, Table 1") != std::string::npos);
  check_svg(out + "/compare_copy.svg", {"<polyline", "TCN", "LSTM", "memoryless baseline"});
}

TEST_CASE("compare: on the adding problem the TCN learns; the MLP cannot run at another length") {
  const std::string out = kTmp + "/compare_adding";
  const auto r = example_test::run("compare", "--task adding --T 20 --steps 400 --test 200 --seed 0 --json --out " + out);
  REQUIRE(r.exit_code == 0);
  INFO(r.out);
  CHECK(example_test::number(r.json, "adding_tcn") < 0.3 / 6);  // baseline 1/6
  CHECK(std::isfinite(example_test::number(r.json, "adding_tcn_other_T")));
  CHECK(std::isnan(example_test::number(r.json, "adding_mlp_other_T")));  // fixed input size: not evaluated
  CHECK(r.out.find("n/a (fixed input size)") != std::string::npos);
  CHECK(std::isnan(example_test::number(r.json, "copy_tcn")));  // --task adding runs only adding
  check_svg(out + "/compare_adding.svg", {"<polyline", "GRU", "memoryless baseline"});
}

TEST_CASE("compare: every family learns sequential digits read row by row") {
  const std::string data = UNROLL_SOURCE_DIR "/../shared/data/digits/digits.csv";
  if (!file_exists(data)) {
    MESSAGE("skipped: " << data << " is not here (the data is never part of the project)");
    return;
  }
  const std::string out = kTmp + "/compare_digits";
  const auto r = example_test::run("compare", "--task digits_rows --steps 300 --seed 0 --json --digits " + data + " --out " + out);
  REQUIRE(r.exit_code == 0);
  INFO(r.out);
  for (const char* k : {"digits_rows_mlp", "digits_rows_tcn", "digits_rows_rnn", "digits_rows_lstm", "digits_rows_gru"}) {
    CAPTURE(k);
    CHECK(example_test::number(r.json, k) > 70.0);  // chance is 10%
  }
  check_svg(out + "/compare_digits_rows.svg", {"<polyline", "MLP"});
}

TEST_CASE("compare: bad flags and a missing data file give a clear error and a nonzero exit") {
  const std::string out = kTmp + "/compare_bad";
  CHECK(example_test::run("compare", "--task nope --out " + out).exit_code == 2);
  CHECK(example_test::run("compare", "--seeds 0 --out " + out).exit_code == 2);
  CHECK(example_test::run("compare", "--kernel 1 --out " + out).exit_code == 2);
  const auto missing = example_test::run("compare", "--task digits_rows --digits " + kTmp + "/no_such.csv --out " + out);
  CHECK(missing.exit_code == 1);
  CHECK(!file_exists(out + "/compare_digits_rows.svg"));
}
