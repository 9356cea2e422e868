// The strict JSON reader and the JSON string writer (core/json.h).
#include "core/json.h"

#include <algorithm>
#include <limits>

namespace unroll {

// Length of the well-formed UTF-8 sequence starting at s[i] (1-4), or 0 if it is not one
/// (overlong forms, surrogates and code points above U+10FFFF are rejected).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  auto cont = [&](size_t k, uint8_t lo = 0x80, uint8_t hi = 0xBF) {
    return k < s.size() && byte(k) >= lo && byte(k) <= hi;
  };
  const uint8_t c = byte(i);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c == 0xE0) return cont(i + 1, 0xA0) && cont(i + 2) ? 3 : 0;
  if (c == 0xED) return cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;
  if (c >= 0xE1 && c <= 0xEF) return cont(i + 1) && cont(i + 2) ? 3 : 0;
  if (c == 0xF0) return cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c == 0xF4) return cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  return 0;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

/// A name from an untrusted file, fit for an error message: quoted, control bytes as \xNN,
/// cut after 64 bytes.
std::string printable(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string out = "'";
  size_t n = std::min(s.size(), kMax);
  while (n < s.size() && n > 0 && (static_cast<uint8_t>(s[n]) & 0xC0) == 0x80) --n;  // whole characters
  for (size_t i = 0; i < n; ++i) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  if (n < s.size()) out += "...";
  return out + "'";
}

std::string utf8_encode(char32_t c) {
  UNROLL_CHECK(c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF), "utf8_encode: U+{:04X} is not a character",
               static_cast<uint32_t>(c));
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (c >> 18));
    s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

// ---- the writer ------------------------------------------------------------------------

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c >= 0x80) {
      const size_t n = utf8_sequence_length(s, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD, the replacement character
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += static_cast<char>(c);
    }
    ++i;
  }
  return out + "\"";
}

// ---- the reader ------------------------------------------------------------------------

void JsonReader::skip_ws() {
  while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
}

char JsonReader::peek() {
  skip_ws();
  return pos_ < s_.size() ? s_[pos_] : '\0';
}

bool JsonReader::consume(char c) {
  if (peek() != c || pos_ >= s_.size()) return false;
  ++pos_;
  return true;
}

void JsonReader::expect(char c, std::string_view where) {
  if (!consume(c)) error("expected '{}' {}, found {}", c, where, found());
}

void JsonReader::expect_end() {
  skip_ws();
  if (pos_ != s_.size()) error("trailing garbage {} after the JSON object", found());
}

std::string JsonReader::string() {
  if (!consume('"')) error("expected a string, found {}", found());
  std::string out;
  for (;;) {
    if (pos_ >= s_.size()) error("unterminated string");
    const auto c = static_cast<uint8_t>(s_[pos_]);
    if (c == '"') {
      ++pos_;
      return out;
    }
    if (c < 0x20) error("control character 0x{:02x} in a string must be escaped", c);
    if (c == '\\') {
      escape(out);
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++pos_;
    } else {
      size_t n = utf8_sequence_length(s_, pos_);
      if (n == 0) error("invalid UTF-8 in a string");
      out.append(s_.substr(pos_, n));
      pos_ += n;
    }
  }
}

uint64_t JsonReader::integer(std::string_view field) {
  skip_ws();
  const size_t start = pos_;
  char c = peek();
  if (c != '-' && (c < '0' || c > '9')) error("{} must hold integers, found {}", field, found());
  const bool negative = scan_number();
  std::string_view token = s_.substr(start, pos_ - start);
  pos_ = start;  // errors below point at the number
  if (negative) error("{} holds a negative number {}", field, token);
  if (token.find_first_of(".eE") != std::string_view::npos) error("{} holds a non-integer {}", field, token);
  uint64_t v = 0;
  for (char d : token) {
    if (v > (std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(d - '0')) / 10)
      error("{} holds {}, which does not fit in 64 bits", field, token);
    v = v * 10 + static_cast<uint64_t>(d - '0');
  }
  pos_ = start + token.size();
  return v;
}

std::vector<uint64_t> JsonReader::integer_array(std::string_view field, size_t max_count) {
  if (peek() != '[') error("{} must be an array of integers, found {}", field, found());
  ++pos_;
  std::vector<uint64_t> out;
  if (consume(']')) return out;
  for (;;) {
    if (out.size() == max_count) error("{} has more than {} entries", field, max_count);
    out.push_back(integer(field));
    if (consume(',')) continue;
    if (consume(']')) return out;
    error("expected ',' or ']' in {}, found {}", field, found());
  }
}

void JsonReader::skip_value(int depth) {
  if (depth > kMaxDepth) error("JSON nested deeper than {} levels", kMaxDepth);
  const char c = peek();
  if (c == '{') {
    object("in an object", [&](std::string) { skip_value(depth + 1); });
  } else if (c == '[') {
    ++pos_;
    if (consume(']')) return;
    for (;;) {
      skip_value(depth + 1);
      if (consume(',')) continue;
      if (consume(']')) return;
      error("expected ',' or ']' in an array, found {}", found());
    }
  } else if (c == '"') {
    string();
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    scan_number();
  } else if (!literal("true") && !literal("false") && !literal("null")) {
    error("expected a JSON value, found {}", found());
  }
}

std::string JsonReader::found() const {
  if (pos_ >= s_.size()) return "the end of the " + document_;
  const auto c = static_cast<uint8_t>(s_[pos_]);
  if (c >= 0x20 && c < 0x7F) return fmt::format("'{}'", static_cast<char>(c));
  return fmt::format("byte 0x{:02x}", c);
}

bool JsonReader::literal(std::string_view word) {
  if (s_.substr(pos_, word.size()) != word) return false;
  pos_ += word.size();
  return true;
}

bool JsonReader::scan_number() {
  const bool negative = pos_ < s_.size() && s_[pos_] == '-';
  if (negative) ++pos_;
  if (!digit()) error("invalid number: expected a digit, found {}", found());
  if (s_[pos_] == '0') {
    ++pos_;
    if (digit()) error("invalid number: leading zeros are not allowed");
  } else {
    while (digit()) ++pos_;
  }
  if (pos_ < s_.size() && s_[pos_] == '.') {
    ++pos_;
    if (!digit()) error("invalid number: expected a digit after '.', found {}", found());
    while (digit()) ++pos_;
  }
  if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
    ++pos_;
    if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
    if (!digit()) error("invalid number: expected a digit in the exponent, found {}", found());
    while (digit()) ++pos_;
  }
  return negative;
}

uint32_t JsonReader::hex4() {
  if (pos_ + 4 > s_.size()) error("truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    const char h = s_[pos_];
    uint32_t d;
    if (h >= '0' && h <= '9') d = static_cast<uint32_t>(h - '0');
    else if (h >= 'a' && h <= 'f') d = static_cast<uint32_t>(h - 'a' + 10);
    else if (h >= 'A' && h <= 'F') d = static_cast<uint32_t>(h - 'A' + 10);
    else error("invalid hex digit {} in a \\u escape", found());
    v = v * 16 + d;
    ++pos_;
  }
  return v;
}

void JsonReader::escape(std::string& out) {
  ++pos_;
  if (pos_ >= s_.size()) error("unterminated escape sequence");
  const char e = s_[pos_];
  const char* simple = nullptr;
  switch (e) {
    case '"': simple = "\""; break;
    case '\\': simple = "\\"; break;
    case '/': simple = "/"; break;
    case 'b': simple = "\b"; break;
    case 'f': simple = "\f"; break;
    case 'n': simple = "\n"; break;
    case 'r': simple = "\r"; break;
    case 't': simple = "\t"; break;
    case 'u': break;
    default: error("invalid escape sequence \\{}", found());
  }
  ++pos_;
  if (simple) {
    out += simple;
    return;
  }
  uint32_t cp = hex4();
  if (cp >= 0xDC00 && cp <= 0xDFFF) error("lone low surrogate \\u{:04x}", cp);
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (s_.substr(pos_, 2) != "\\u") error("high surrogate \\u{:04x} is not followed by a low surrogate", cp);
    pos_ += 2;
    const uint32_t lo = hex4();
    if (lo < 0xDC00 || lo > 0xDFFF) error("high surrogate \\u{:04x} is followed by \\u{:04x}", cp, lo);
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  out += utf8_encode(cp);
}

}  // namespace unroll
