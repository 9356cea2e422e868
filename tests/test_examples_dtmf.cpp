// A short run of examples/dtmf (keypad tones from raw samples): every classifier must be far
// above chance (1/16), the frame tagger's loss must fall, the figures must be well-formed
// SVG, and bad flags must give a nonzero exit. Thresholds are about half of what this seeded
// run measured (MLP 0.95, CNN 0.54, GRU 0.94, frames 0.68, tagger loss 2.73 -> 0.99).
#include <doctest/doctest.h>

#include "test_support.h"

#include <string>

TEST_CASE("dtmf: MLP, 1-D CNN and GRU learn the keys; the frame tagger learns; figures are written") {
  const std::string out = std::string(UNROLL_TEST_TMPDIR) + "/dtmf";
  const auto r = example_test::run("dtmf", "--seeds 1 --steps 100 --seq-steps 100 --test 400 --seq-test 40 --seed 0 "
                                           "--json --out " + out);
  REQUIRE(r.exit_code == 0);
  INFO(r.out);
  CHECK(example_test::number(r.json, "chance_accuracy") == doctest::Approx(1.0 / 16));
  CHECK(example_test::number(r.json, "mlp_accuracy") > 0.5);
  CHECK(example_test::number(r.json, "gru_accuracy") > 0.5);
  CHECK(example_test::number(r.json, "cnn_accuracy") > 0.25);
  CHECK(example_test::number(r.json, "frame_accuracy") > 0.35);
  CHECK(example_test::number(r.json, "tagger_final_loss") < 0.6 * example_test::number(r.json, "tagger_initial_loss"));
  std::string why;
  CHECK_MESSAGE(example_test::well_formed_svg(out + "/dialled_0.svg", {"<polyline", "dialled", "decoded"}, &why), why);
  CHECK_MESSAGE(example_test::well_formed_svg(out + "/accuracy.svg", {"<polyline"}, &why), why);
  CHECK_MESSAGE(example_test::well_formed_svg(out + "/posteriors_0.svg", {"<text"}, &why), why);
}

TEST_CASE("dtmf: bad flags give a clear error and a nonzero exit") {
  const std::string out = std::string(UNROLL_TEST_TMPDIR) + "/dtmf_bad";
  CHECK(example_test::run("dtmf", "--window 0 --out " + out).exit_code != 0);
  CHECK(example_test::run("dtmf", "--bogus --out " + out).exit_code == 2);
  CHECK(example_test::run("dtmf", "--seeds 0 --out " + out).exit_code != 0);
}
