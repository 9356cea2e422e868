#pragma once
// UTF-8 text as characters (Unicode code points), for the examples whose tokens are
// characters of any script (examples/dates.cpp reads English and Korean):
//
//   std::vector<std::string> cs = utf8_chars("1997년", "'dates.txt' line 3");  // "1","9","9","7","년"
//   char32_t c = utf8_code_point(cs[4]);                                       // 0xB144
//
// Decoding is strict (RFC 3629): a stray continuation byte, a truncated sequence, an
// overlong form, a surrogate (U+D800..U+DFFF) or a code point above U+10FFFF is an error
// naming the text and the byte offset, never a replacement character and never a crash.
#include "common/data.h"
#include "core/json.h"

#include <string>
#include <string_view>
#include <vector>

namespace unroll::examples {

/// The characters of `text`, each as its 1-4 UTF-8 bytes. Throws DataError
/// "<what>: invalid UTF-8 at byte N (0xNN): <reason>" on invalid input.
std::vector<std::string> utf8_chars(std::string_view text, const std::string& what);

/// The code point of one character as utf8_chars returns it (valid UTF-8 of one character).
char32_t utf8_code_point(std::string_view ch);

// utf8_encode(char32_t), the bytes of a code point, is core/json.h's.

/// "U+AC00".
std::string code_point_name(char32_t c);

}  // namespace unroll::examples
