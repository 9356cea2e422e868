// The digits reader shared by the image and sequence examples (examples/common/data.h):
// the fixed split, scaling, and a clear DataError for every kind of bad line.
#include <doctest/doctest.h>

#include "common/data.h"

#include <sstream>
#include <string>

using namespace unroll::examples;

namespace {
std::string image_line(int fill, int label) {
  std::string s;
  for (int i = 0; i < 64; ++i) s += std::to_string((fill + i) % 17) + ",";
  return s + std::to_string(label);
}
DigitsSplit parse(const std::string& text) {
  std::istringstream in(text);
  return parse_digits(in, "t.csv");
}
}  // namespace

TEST_CASE("parse_digits: every 5th image is test, pixels scaled by 1/16") {
  std::string text;
  for (int i = 0; i < 12; ++i) text += image_line(i, i % 10) + (i == 3 ? "\r\n\n" : "\n");
  DigitsSplit d = parse(text);
  REQUIRE(d.train.size() == 10);
  REQUIRE(d.test.size() == 2);  // images 4 and 9 (0-based)
  CHECK(d.test.labels[0] == 4);
  CHECK(d.test.labels[1] == 9);
  CHECK(d.train.labels[4] == 5);
  CHECK(d.train.pixels.size() == 640);
  CHECK(d.test.pixels[1] == doctest::Approx(5.0 / 16.0));  // image 4, pixel 1: (4+1)%17
}

TEST_CASE("parse_digits: bad lines name the file, the line and the problem") {
  CHECK_THROWS_WITH_AS(parse(""), "digits: 't.csv' holds no images", DataError);
  CHECK_THROWS_WITH_AS(parse(image_line(0, 1) + ",3\n"), "digits: t.csv:1: more than 65 fields", DataError);
  CHECK_THROWS_WITH_AS(parse("1,2,3\n"), "digits: t.csv:1: 3 fields, expected 65 (64 pixels and a label)", DataError);
  CHECK_THROWS_WITH_AS(parse(image_line(0, 10)), "digits: t.csv:1: label 10 is outside 0..9", DataError);
  std::string bad = image_line(0, 1);
  bad.replace(0, 1, "17");
  CHECK_THROWS_WITH_AS(parse(bad), "digits: t.csv:1: pixel 0 is 17, outside 0..16", DataError);
  bad = image_line(0, 1);
  bad.replace(0, 1, "-1");
  CHECK_THROWS_WITH_AS(parse(bad), "digits: t.csv:1: field 1 is '-1', not a small non-negative integer", DataError);
  CHECK_THROWS_AS(read_digits("/nonexistent/digits.csv"), DataError);
}

TEST_CASE("find_shared_data finds the real digits beside the project, or says there are none") {
  const std::string p = find_shared_data("digits/digits.csv");
  if (p.empty()) {
    MESSAGE("shared/data/digits/digits.csv not found beside the project: the real-file check is skipped");
    return;
  }
  DigitsSplit d = read_digits(p);
  CHECK(d.train.size() + d.test.size() == 1797);
  CHECK(d.test.size() == 359);
  CHECK(find_shared_data("digits/no-such-file.csv").empty());
}
