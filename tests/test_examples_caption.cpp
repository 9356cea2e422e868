// A short run of examples/caption: the CNN + attention LSTM captioner learns one-shape
// scenes far above chance, greedy and beam search both decode, and the figures are
// well-formed SVG; bad flags are clean errors.
#include <doctest/doctest.h>

#include "test_support.h"

#include <filesystem>
#include <string>

namespace {

std::string out_dir(const std::string& name) {
  const std::string d = std::string(UNROLL_TEST_TMPDIR) + "/" + name;
  std::filesystem::remove_all(d);
  return d;
}

}  // namespace

// One shape a scene: 24 possible captions ("a <size> <colour> <shape>"), so guessing gets
// an exact caption 1/24 = 4.2% of the time and a colour 25%. Measured with these flags for
// --seed 1, 2, 3: exact captions 0.32-0.60 (greedy; beam 0.30-0.61), BLEU-4 0.49-0.77,
// colour 0.64-0.99, the loss falls from 2.7 to 0.14-0.33. The bars (exact > 3x chance,
// colour > 0.4, BLEU > 0.25, loss below a quarter) leave a margin of more than 2x below the
// worst seed while still proving that it learned to look at the image.
TEST_CASE("caption: a short run learns one-shape scenes; greedy and beam decode; figures are SVG") {
  const std::string dir = out_dir("caption");
  const example_test::Run r = example_test::run(
      "caption", "--max-shapes 1 --steps 600 --train 1000 --test 100 --beam 3 --figures 3 --seed 1 --json --out " + dir);
  REQUIRE(r.exit_code == 0);
  REQUIRE_FALSE(r.json.empty());
  INFO(r.json);
  const double chance = example_test::number(r.json, "chance_exact");
  CHECK(chance == doctest::Approx(1.0 / 24));
  CHECK(example_test::number(r.json, "test_exact_greedy") > 3 * chance);
  CHECK(example_test::number(r.json, "test_exact_beam") > 3 * chance);
  CHECK(example_test::number(r.json, "test_bleu_greedy") > 0.25);
  CHECK(example_test::number(r.json, "test_count") > 0.95);  // "a <size> <colour> <shape>", one shape
  CHECK(example_test::number(r.json, "test_colour") > 0.4);
  CHECK(example_test::number(r.json, "final_loss") < 0.25 * example_test::number(r.json, "first_loss"));
  std::string why;
  CHECK_MESSAGE(example_test::well_formed_svg(dir + "/attention.svg", {"<rect", "<text", "attention", "&lt;eos&gt;"}, &why),
                why);
  CHECK_MESSAGE(example_test::well_formed_svg(dir + "/loss.svg", {"<polyline", "teacher forcing"}, &why), why);
}

TEST_CASE("caption: bad flags are clean errors that write nothing") {
  const std::string dir = out_dir("caption_bad");
  CHECK(example_test::run("caption", "--hold-out 'purple blob' --out " + dir).exit_code == 1);
  CHECK(example_test::run("caption", "--beam 0 --out " + dir).exit_code == 1);
  CHECK(example_test::run("caption", "--size 10 --out " + dir).exit_code == 1);
  CHECK(example_test::run("caption", "--max-shapes 4 --out " + dir).exit_code == 1);
  CHECK_FALSE(std::filesystem::exists(dir));
  CHECK(example_test::run("caption", "--no-such-flag").exit_code == 2);
  CHECK(example_test::run("caption", "--steps 1.5").exit_code == 2);
}
