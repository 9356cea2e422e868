#pragma once
// JSON text, strictly: a reader for untrusted input (the safetensors header) and the one
// string quoting every writer uses (checkpoint headers, the examples' --json lines).
//
// The reader follows RFC 8259 and trusts nothing: every read is bounds-checked, nesting is
// bounded (kMaxDepth), strings must be valid UTF-8 with valid escapes (no lone
// surrogates), numbers follow the grammar exactly, and every error names the byte offset,
// e.g.  safetensors 'm.safetensors': header byte 3: trailing garbage ' ' ...
// It is a pull reader: the caller walks the structure it expects (object(), string(),
// integer(), ...) and skips what it does not know (skip_value()), so nothing untrusted is
// ever held as a tree.
#include "core/error.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace unroll {

// ---- UTF-8 ------------------------------------------------------------------------------

/// Length of the well-formed UTF-8 sequence starting at s[i] (1-4), or 0 if it is not one
/// (overlong forms, surrogates and code points above U+10FFFF are rejected).
size_t utf8_sequence_length(std::string_view s, size_t i);
bool valid_utf8(std::string_view s);
/// The UTF-8 bytes of a code point (U+0000..U+10FFFF, not a surrogate; else an error).
std::string utf8_encode(char32_t c);
/// A name from an untrusted source, fit for an error message: single-quoted, control
/// bytes as \xNN, cut after 64 bytes (at a character boundary) with "...".
std::string printable(std::string_view s);

// ---- writing ----------------------------------------------------------------------------

/// s as a JSON string literal: quotes, backslashes and control characters escaped, UTF-8
/// kept as it is; a byte that is not part of valid UTF-8 becomes U+FFFD (callers that
/// must not lose bytes check valid_utf8 first and report the error themselves).
std::string json_quote(std::string_view s);

// ---- reading ----------------------------------------------------------------------------

class JsonReader {
public:
  static constexpr int kMaxDepth = 64;

  /// Reads `text`, which it views (keep it alive while reading). Errors read
  /// "<context> byte <offset>: <problem>"; `document` names the text in messages ("the
  /// end of the <document>").
  JsonReader(std::string_view text, std::string context, std::string document = "header")
      : s_(text), context_(std::move(context)), document_(std::move(document)) {}

  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> f, Args&&... args) const {
    fail("{} byte {}: {}", context_, pos_, fmt::format(f, std::forward<Args>(args)...));
  }

  /// The next non-whitespace character, or '\0' at the end.
  char peek();
  bool consume(char c);
  void expect(char c, std::string_view where);
  /// Only whitespace may follow the top-level value.
  void expect_end();

  /// An object: calls member(key) with the reader at the member's value, which it must
  /// consume (read it or skip_value it).
  template <typename F>
  void object(std::string_view where, F&& member) {
    expect('{', where);
    if (consume('}')) return;
    for (;;) {
      if (peek() != '"') error("expected a string key {}, found {}", where, found());
      std::string key = string();
      expect(':', fmt::format("after key {}", printable(key)));
      member(std::move(key));
      if (consume(',')) continue;
      if (consume('}')) return;
      error("expected ',' or '}}' {}, found {}", where, found());
    }
  }

  std::string string();
  /// A non-negative JSON integer (no fraction, no exponent) that fits in 64 bits.
  uint64_t integer(std::string_view field);
  /// An array of at most max_count non-negative integers.
  std::vector<uint64_t> integer_array(std::string_view field, size_t max_count);
  /// Validates and discards any JSON value nested `depth` levels deep.
  void skip_value(int depth);

private:
  void skip_ws();
  std::string found() const;  ///< what is at the current position, for messages
  bool literal(std::string_view word);
  bool digit() const { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; }
  bool scan_number();  ///< consumes a number with JSON's grammar; returns whether it is negative
  uint32_t hex4();
  void escape(std::string& out);  ///< decodes one escape (at the backslash), appends UTF-8

  std::string_view s_;
  std::string context_, document_;
  size_t pos_ = 0;
};

}  // namespace unroll
