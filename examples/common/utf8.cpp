#include "common/utf8.h"

#include "core/error.h"

#include <fmt/format.h>

namespace unroll::examples {

std::vector<std::string> utf8_chars(std::string_view text, const std::string& what) {
  std::vector<std::string> out;
  size_t i = 0;
  auto bad = [&](size_t at, const char* reason) {
    throw DataError(fmt::format("{}: invalid UTF-8 at byte {} (0x{:02x}): {}", what, at,
                                static_cast<unsigned>(static_cast<unsigned char>(text[at])), reason));
  };
  while (i < text.size()) {
    const unsigned char lead = static_cast<unsigned char>(text[i]);
    size_t n;
    char32_t c;
    if (lead < 0x80) n = 1, c = lead;
    else if (lead < 0xC0) bad(i, "a continuation byte without a lead byte"), n = 0, c = 0;
    else if (lead < 0xE0) n = 2, c = lead & 0x1F;
    else if (lead < 0xF0) n = 3, c = lead & 0x0F;
    else if (lead < 0xF8) n = 4, c = lead & 0x07;
    else bad(i, "not a lead byte (0xf8..0xff never occur in UTF-8)"), n = 0, c = 0;
    if (i + n > text.size()) bad(i, "the sequence is cut off by the end of the text");
    for (size_t k = 1; k < n; ++k) {
      const unsigned char b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xC0) != 0x80)
        throw DataError(fmt::format("{}: invalid UTF-8 at byte {} (0x{:02x}): byte {} (0x{:02x}) should be a "
                                    "continuation byte (0x80..0xbf)",
                                    what, i, static_cast<unsigned>(lead), i + k, static_cast<unsigned>(b)));
      c = (c << 6) | (b & 0x3F);
    }
    static constexpr char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < kMin[n]) bad(i, "an overlong encoding");
    if (c >= 0xD800 && c <= 0xDFFF) bad(i, "a UTF-16 surrogate (U+D800..U+DFFF) is not a character");
    if (c > 0x10FFFF) bad(i, "beyond U+10FFFF");
    out.emplace_back(text.substr(i, n));
    i += n;
  }
  return out;
}

char32_t utf8_code_point(std::string_view ch) {
  UNROLL_CHECK(!ch.empty(), "utf8_code_point: empty string");
  const unsigned char lead = static_cast<unsigned char>(ch[0]);
  const size_t n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
  UNROLL_CHECK(ch.size() == n, "utf8_code_point: '{}' is not one UTF-8 character", ch);
  char32_t c = n == 1 ? lead : n == 2 ? (lead & 0x1F) : n == 3 ? (lead & 0x0F) : (lead & 0x07);
  for (size_t k = 1; k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(ch[k]) & 0x3F);
  return c;
}

std::string code_point_name(char32_t c) { return fmt::format("U+{:04X}", static_cast<uint32_t>(c)); }

}  // namespace unroll::examples
