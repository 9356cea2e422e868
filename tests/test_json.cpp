// core/json: the string writer every JSON producer uses, read back by the strict reader.
#include <doctest/doctest.h>

#include "core/json.h"

#include <random>
#include <string>

using namespace unroll;

namespace {
std::string read_back(const std::string& quoted) {
  JsonReader r(quoted, "test");
  std::string s = r.string();
  r.expect_end();
  return s;
}
}  // namespace

TEST_CASE("json_quote escapes what JSON requires and nothing else") {
  CHECK(json_quote("plain") == "\"plain\"");
  CHECK(json_quote("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(json_quote("\n\t\r\b\f") == "\"\\n\\t\\r\\b\\f\"");
  CHECK(json_quote(std::string("\x01\x1f", 2)) == "\"\\u0001\\u001f\"");
  CHECK(json_quote("h\xC3\xA9llo") == "\"h\xC3\xA9llo\"");  // UTF-8 kept as it is
  // A byte that is not UTF-8 becomes U+FFFD instead of making invalid JSON.
  CHECK(json_quote("a\xFF" "b") == "\"a\xEF\xBF\xBD" "b\"");
  CHECK(json_quote("\xC3") == "\"\xEF\xBF\xBD\"");  // truncated sequence
}

TEST_CASE("json_quote round-trips through JsonReader for every valid UTF-8 string") {
  std::mt19937 gen(7);
  const std::string alphabet[] = {"a", "\"", "\\", "\n", "\x01", "\x7f", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "/"};
  for (int trial = 0; trial < 500; ++trial) {
    std::string s;
    const int n = static_cast<int>(gen() % 12);
    for (int i = 0; i < n; ++i) s += alphabet[gen() % std::size(alphabet)];
    REQUIRE(valid_utf8(s));
    CHECK(read_back(json_quote(s)) == s);
  }
}

TEST_CASE("JsonReader errors name the context and the byte offset") {
  JsonReader r("{\"a\": tru}", "config 'x.json':", "document");
  CHECK_THROWS_WITH_AS(r.object("at the top", [&](std::string) { r.skip_value(1); }),
                       doctest::Contains("config 'x.json': byte 6: expected a JSON value"), Error);
  JsonReader end("\"open", "ctx");
  CHECK_THROWS_WITH_AS(end.string(), doctest::Contains("ctx byte 5: unterminated string"), Error);
  const std::string brackets(100, '[');  // the reader views the text: it must outlive the reader
  JsonReader deep(brackets, "ctx", "document");
  CHECK_THROWS_WITH_AS(deep.skip_value(0), doctest::Contains("nested deeper than 64 levels"), Error);
}
