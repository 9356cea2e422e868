// examples/dates (English and Korean dates to ISO 8601) run small: it learns far above
// chance, in both languages, its attention heatmaps are well-formed SVG with the Korean
// characters in them, --input lines are translated, and bad input is a clean error. Also
// the strict UTF-8 decoder of examples/common/utf8.h it reads text with.
#include <doctest/doctest.h>

#include "common/utf8.h"
#include "test_support.h"

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>

using namespace unroll::examples;
using unroll::utf8_encode;

namespace {

std::string out_dir(const std::string& name) {
  const std::string d = std::string(UNROLL_TEST_TMPDIR) + "/" + name;
  std::filesystem::remove_all(d);
  return d;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// Runs the example with stderr merged into the output.
test_support::ProgramRun run_merged(const std::string& args) {
  return test_support::run_program(std::string(UNROLL_EXAMPLES_DIR) + "/dates", args, true);
}

const char* kSmall = "--steps 300 --batch 32 --hidden 48 --embed 16 --test-dates 40 --eval-every 150 ";

}  // namespace

TEST_CASE("utf8_chars: ASCII, Korean and 4-byte characters; every kind of invalid sequence is an error") {
  const std::vector<std::string> cs = utf8_chars("a1 년\xF0\x9F\x98\x80", "t");
  REQUIRE(cs.size() == 5);
  CHECK(cs[3] == "년");
  CHECK(utf8_code_point(cs[0]) == U'a');
  CHECK(utf8_code_point(cs[3]) == 0xB144);
  CHECK(utf8_code_point(cs[4]) == 0x1F600);
  for (char32_t c : {char32_t{0x41}, char32_t{0xE9}, char32_t{0xB144}, char32_t{0x1F600}, char32_t{0x10FFFF}})
    CHECK(utf8_code_point(utf8_encode(c)) == c);
  CHECK(code_point_name(0xB144) == "U+B144");
  CHECK(utf8_chars("", "t").empty());
  const std::array<std::pair<const char*, const char*>, 7> bad = {{
      {"ab\xFF", "at byte 2 (0xff)"},         // never a UTF-8 byte
      {"\x80", "continuation byte without"},  // stray continuation byte
      {"x\xEB\x85", "cut off"},               // truncated 3-byte sequence
      {"\xEB\x41\x84", "at byte 0 (0xeb): byte 1 (0x41)"},  // a non-continuation byte inside
      {"\xC0\xAF", "overlong"},               // '/' in two bytes
      {"\xED\xA0\x80", "surrogate"},          // U+D800
      {"\xF4\x90\x80\x80", "beyond U+10FFFF"},
  }};
  for (const auto& [text, why] : bad) {
    INFO(why);
    CHECK_THROWS_WITH_AS(utf8_chars(text, "'f' line 3"), doctest::Contains(why), DataError);
    CHECK_THROWS_WITH_AS(utf8_chars(text, "'f' line 3"), doctest::Contains("'f' line 3: invalid UTF-8"), DataError);
  }
}

// Measured with these flags (300 steps, H=48, 14 formats): seeds 1..4 reach 76-88% exact
// match on the 40 held-out dates x 14 formats (English 79-88%, Korean 71-89%, characters
// 96-98%); a random date would match with probability 1/36525. The bars (50% overall, 40%
// in each language) leave a wide margin and still prove the model reads both scripts.
TEST_CASE("dates: a short run learns English and Korean formats; figures are well-formed") {
  const std::string dir = out_dir("dates_learn");
  std::filesystem::create_directories(dir);
  write(dir + "/in.txt", "March 3, 1997\r\n\n1997년 3월 3일\n천구백구십칠년 삼월 삼일\n");
  const example_test::Run r = example_test::run(
      "dates", std::string(kSmall) + "--heatmaps 3 --seed 1 --json --input " + dir + "/in.txt --out " + dir);
  REQUIRE(r.exit_code == 0);
  REQUIRE_FALSE(r.json.empty());
  const double chance = example_test::number(r.json, "chance_exact_match");
  CHECK(chance < 1e-4);
  CHECK(example_test::number(r.json, "exact_match") > 0.5);
  CHECK(example_test::number(r.json, "exact_match_ko") > 0.4);
  CHECK(example_test::number(r.json, "exact_match_en") > 0.4);
  CHECK(example_test::number(r.json, "token_accuracy") > 0.8);
  CHECK(example_test::number(r.json, "test_strings") == 14 * 40);
  CHECK(example_test::number(r.json, "final_loss") < 0.25 * example_test::number(r.json, "initial_loss"));
  // per-format scores are in the JSON, one per format
  CHECK(r.json.find("\"ko_words\": ") != std::string::npos);
  CHECK(r.json.find("\"en_us_numeric\": ") != std::string::npos);
  // the --input lines are printed with their translation (Korean printed as UTF-8)
  CHECK(r.out.find("  March 3, 1997 -> ") != std::string::npos);
  CHECK(r.out.find("  1997년 3월 3일 -> ") != std::string::npos);
  CHECK(r.out.find("  천구백구십칠년 삼월 삼일 -> ") != std::string::npos);
  std::string why;
  // the Korean heatmap has the Korean characters as tick labels (and in its title)
  CHECK_MESSAGE(example_test::well_formed_svg(dir + "/attention_ko_words.svg", {"<rect", ">년</text>", "attention"}, &why),
                why);
  CHECK_MESSAGE(example_test::well_formed_svg(dir + "/attention_en_words.svg", {"<rect", ">t</text>"}, &why), why);
  CHECK_MESSAGE(example_test::well_formed_svg(dir + "/attention_en_eu_numeric.svg", {"<rect", "<text"}, &why), why);
  CHECK_MESSAGE(example_test::well_formed_svg(dir + "/attention_input_1.svg", {"<rect", ">월</text>"}, &why), why);
  CHECK_MESSAGE(example_test::well_formed_svg(dir + "/per_format.svg", {"<rect", "2004년 11월 7일"}, &why), why);
  CHECK_MESSAGE(example_test::well_formed_svg(dir + "/learning.svg", {"<rect", "이천사년 십일월 칠일"}, &why), why);
  CHECK_MESSAGE(example_test::well_formed_svg(dir + "/loss.svg", {"<polyline", "<text"}, &why), why);
  CHECK_MESSAGE(example_test::well_formed_svg(dir + "/accuracy.svg", {"<polyline", "Korean formats"}, &why), why);
}

// Measured with these flags: seeds 2..6 reach 52.5%, 100%, 96%, 100%, 100% exact match;
// the bar is 30%.
TEST_CASE("dates: dot attention and a subset of formats also learn") {
  const std::string dir = out_dir("dates_dot");
  const example_test::Run r = example_test::run(
      "dates", std::string(kSmall) + "--attention dot --formats ko_ymd,en_mdy,ko_words --heatmaps 1 --seed 3 --json --out " + dir);
  REQUIRE(r.exit_code == 0);
  CHECK(example_test::number(r.json, "formats") == 3);
  CHECK(example_test::number(r.json, "exact_match") > 0.3);
  std::string why;
  CHECK_MESSAGE(example_test::well_formed_svg(dir + "/attention_ko_words.svg", {"<rect", "dot attention"}, &why), why);
}

TEST_CASE("dates: bad flags and bad input files are clear errors with a nonzero exit, before any training") {
  const std::string dir = out_dir("dates_bad");
  std::filesystem::create_directories(dir);
  test_support::ProgramRun r = run_merged("--attention cosine --steps 1 --out " + dir);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("dates: --attention must be additive, general or dot, got 'cosine'") != std::string::npos);
  r = run_merged("--formats en_mdy,klingon --steps 1 --out " + dir);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("unknown format 'klingon'") != std::string::npos);
  CHECK(run_merged("--no-such-flag").exit_code == 2);
  CHECK(run_merged("--steps many").exit_code == 2);

  write(dir + "/latin1.txt", "March 3, 1997\n3 M\xE4rz 1997\n");  // ISO-8859-1, not UTF-8
  r = run_merged("--steps 1 --input " + dir + "/latin1.txt --out " + dir);
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("latin1.txt' line 2: invalid UTF-8 at byte 3 (0xe4)") != std::string::npos);
  CHECK(r.out.find("parameters") == std::string::npos);  // failed before the model was built

  write(dir + "/unknown.txt", "1997年3月3日\n");  // Chinese 年 is not a character of the formats
  r = run_merged("--steps 1 --input " + dir + "/unknown.txt --out " + dir);
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("character '年' (U+5E74) is not in the vocabulary") != std::string::npos);

  write(dir + "/empty.txt", "\n  \n");
  r = run_merged("--steps 1 --input " + dir + "/empty.txt --out " + dir);
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("has no line to translate") != std::string::npos);

  r = run_merged("--steps 1 --input " + dir + "/missing.txt --out " + dir);
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("cannot open --input") != std::string::npos);
}
