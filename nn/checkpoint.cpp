#include "nn/checkpoint.h"

#include <fmt/ranges.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <set>
#include <string_view>
#include <system_error>
#include <vector>

namespace unroll {

// The byte buffer is copied as is: safetensors data is little-endian.
static_assert(std::endian::native == std::endian::little, "checkpoint: big-endian hosts are not supported");

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit
constexpr int kMaxJsonDepth = 64;
constexpr uint64_t kMaxInt64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

std::atomic<int64_t> g_write_fault{-1};

std::string errno_text() { return std::system_category().message(errno); }

// ---- UTF-8 and names in messages ---------------------------------------------------------

/// Length of the well-formed UTF-8 sequence starting at s[i] (1-4), or 0 if it is not one
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
    if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  if (n < s.size()) out += "...";
  return out + "'";
}

// ---- dtypes --------------------------------------------------------------------------------

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::Bool: return "BOOL";
  }
  fail("save_safetensors: unknown dtype {}", static_cast<int>(t));
}

/// The other dtypes of the safetensors format: valid files, but not loadable here.
bool is_other_safetensors_dtype(std::string_view s) {
  static constexpr std::string_view kOthers[] = {"U8",      "I8",      "I16",     "U16",     "F16",
                                                 "BF16", "I32",     "U32",     "U64",     "F8_E5M2", "F8_E4M3",
                                                 "C64",  "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"};
  return std::find(std::begin(kOthers), std::end(kOthers), s) != std::end(kOthers);
}

// ---- the header reader ----------------------------------------------------------------------

struct Entry {
  std::string name;
  std::string dtype_text;
  std::vector<uint64_t> shape;
  std::vector<uint64_t> offsets;
  bool has_dtype = false, has_shape = false, has_offsets = false;
  DType dtype = DType::F32;
  uint64_t nbytes = 0;
};

/// A strict JSON reader (RFC 8259) for the safetensors header: recursion is bounded by
/// kMaxJsonDepth, every read is bounds-checked, errors name the byte offset in the header.
class HeaderReader {
public:
  HeaderReader(std::string_view text, const std::string& what) : s_(text), what_(what) {}

  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> f, Args&&... args) const {
    fail("safetensors '{}': header byte {}: {}", what_, pos_, fmt::format(f, std::forward<Args>(args)...));
  }

  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  /// The next non-whitespace character, or '\0' at the end.
  char peek() {
    skip_ws();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  bool consume(char c) {
    if (peek() != c || pos_ >= s_.size()) return false;
    ++pos_;
    return true;
  }
  void expect(char c, std::string_view where) {
    if (!consume(c)) error("expected '{}' {}, found {}", c, where, found());
  }
  /// Only whitespace may follow the top-level object (the padding).
  void expect_end() {
    skip_ws();
    if (pos_ != s_.size()) error("trailing garbage {} after the JSON object", found());
  }

  /// An object: calls member(key) with the reader at the member's value, which it must consume.
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

  std::string string() {
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

  /// A non-negative JSON integer (no fraction, no exponent) that fits in 64 bits.
  uint64_t integer(std::string_view field) {
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

  /// An array of at most max_count non-negative integers.
  std::vector<uint64_t> integer_array(std::string_view field, size_t max_count) {
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

  /// Validates and discards any JSON value nested `depth` levels deep.
  void skip_value(int depth) {
    if (depth > kMaxJsonDepth) error("JSON nested deeper than {} levels", kMaxJsonDepth);
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

private:
  /// What is at the current position, for messages.
  std::string found() const {
    if (pos_ >= s_.size()) return "the end of the header";
    const auto c = static_cast<uint8_t>(s_[pos_]);
    if (c >= 0x20 && c < 0x7F) return fmt::format("'{}'", static_cast<char>(c));
    return fmt::format("byte 0x{:02x}", c);
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool digit() const { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; }

  /// Consumes a number with JSON's grammar -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?;
  /// returns whether it is negative.
  bool scan_number() {
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

  uint32_t hex4() {
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

  /// Decodes one escape sequence (the reader is at the backslash) and appends it as UTF-8.
  void escape(std::string& out) {
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
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string_view s_;
  const std::string& what_;
  size_t pos_ = 0;
};

/// One tensor entry {"dtype": ..., "shape": [...], "data_offsets": [b, e]}; other fields are
/// validated and ignored.
Entry read_entry(HeaderReader& r, std::string name) {
  Entry e;
  e.name = std::move(name);
  const std::string who = "tensor " + printable(e.name);
  if (r.peek() != '{') r.error("{}: the entry must be an object", who);
  r.object(fmt::format("in the entry of {}", who), [&](std::string field) {
    auto once = [&](bool& seen) {
      if (seen) r.error("{}: duplicate field \"{}\"", who, field);
      seen = true;
    };
    if (field == "dtype") {
      once(e.has_dtype);
      if (r.peek() != '"') r.error("{}: \"dtype\" must be a string", who);
      e.dtype_text = r.string();
    } else if (field == "shape") {
      once(e.has_shape);
      e.shape = r.integer_array(fmt::format("{}: \"shape\"", who), kMaxDims);
    } else if (field == "data_offsets") {
      once(e.has_offsets);
      e.offsets = r.integer_array(fmt::format("{}: \"data_offsets\"", who), 2);
    } else {
      r.skip_value(2);
    }
  });
  if (!e.has_dtype) r.error("{}: missing field \"dtype\"", who);
  if (!e.has_shape) r.error("{}: missing field \"shape\"", who);
  if (!e.has_offsets) r.error("{}: missing field \"data_offsets\"", who);
  return e;
}

/// Checks an entry's dtype, shape and byte count against the buffer (semantic checks after
/// the JSON is known to be well formed).
void check_entry(Entry& e, uint64_t buffer_bytes, const std::string& what) {
  const std::string who = fmt::format("safetensors '{}': tensor {}", what, printable(e.name));
  if (e.dtype_text == "F32") e.dtype = DType::F32;
  else if (e.dtype_text == "F64") e.dtype = DType::F64;
  else if (e.dtype_text == "I64") e.dtype = DType::I64;
  else if (e.dtype_text == "BOOL") e.dtype = DType::Bool;
  else if (is_other_safetensors_dtype(e.dtype_text))
    fail("{}: unsupported dtype {} (unroll reads F32, F64, I64 and BOOL)", who, printable(e.dtype_text));
  else fail("{}: unknown dtype {}", who, printable(e.dtype_text));

  uint64_t numel = 1;
  for (uint64_t d : e.shape) {
    if (d > kMaxInt64 || __builtin_mul_overflow(numel, d, &numel) || numel > kMaxInt64)
      fail("{}: shape [{}] overflows: its element count does not fit in 64 bits", who, fmt::join(e.shape, ","));
  }
  if (__builtin_mul_overflow(numel, dtype_size(e.dtype), &e.nbytes) || e.nbytes > kMaxInt64)
    fail("{}: shape [{}] overflows: its byte count does not fit in 64 bits", who, fmt::join(e.shape, ","));

  if (e.offsets.size() != 2)
    fail("{}: \"data_offsets\" must be two integers [begin, end], got {}", who, e.offsets.size());
  const uint64_t begin = e.offsets[0], end = e.offsets[1];
  if (begin > end) fail("{}: data_offsets [{}, {}] begin after they end", who, begin, end);
  if (end > buffer_bytes)
    fail("{}: data_offsets [{}, {}] reach beyond the end of the {}-byte data buffer", who, begin, end, buffer_bytes);
  if (end - begin != e.nbytes)
    fail("{}: shape [{}] of {} needs {} bytes but data_offsets [{}, {}] hold {}", who, fmt::join(e.shape, ","),
         e.dtype_text, e.nbytes, begin, end, end - begin);
}

/// The spec: tensors cover the byte buffer exactly, without overlaps or holes.
void check_coverage(const std::vector<Entry>& entries, uint64_t buffer_bytes, const std::string& what) {
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return entries[a].offsets < entries[b].offsets; });
  uint64_t cursor = 0;
  const Entry* previous = nullptr;
  for (size_t i : order) {
    const Entry& e = entries[i];
    const uint64_t begin = e.offsets[0];
    if (begin < cursor)
      fail("safetensors '{}': tensors {} [{}, {}] and {} [{}, {}] overlap", what, printable(previous->name),
           previous->offsets[0], previous->offsets[1], printable(e.name), begin, e.offsets[1]);
    if (begin > cursor)
      fail("safetensors '{}': bytes [{}, {}) of the data buffer belong to no tensor (the spec forbids holes)", what,
           cursor, begin);
    previous = &e;
    cursor = e.offsets[1];
  }
  if (cursor != buffer_bytes)
    fail("safetensors '{}': the last {} bytes of the data buffer belong to no tensor", what, buffer_bytes - cursor);
}

// ---- the writer ------------------------------------------------------------------------------

/// s as a JSON string literal: quotes, backslashes and control characters escaped, other
/// characters (UTF-8, checked) kept as they are.
std::string json_string(std::string_view s, std::string_view role) {
  UNROLL_CHECK(valid_utf8(s), "save_safetensors: {} {} is not valid UTF-8", role, printable(s));
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<uint8_t>(ch);
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
        else out += ch;
    }
  }
  return out + "\"";
}

/// The header JSON, padded with spaces so that the data starts at a multiple of 8.
std::string make_header(const StateDict& tensors, const Metadata& metadata) {
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) h += ',';
      first = false;
      h += json_string(k, "metadata key") + ':' + json_string(v, "metadata value");
    }
    h += '}';
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    UNROLL_CHECK(name != "__metadata__", "save_safetensors: '__metadata__' is reserved and cannot name a tensor");
    UNROLL_CHECK(t.defined(), "save_safetensors: tensor '{}' is undefined", name);
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    if (h.size() > 1) h += ',';
    h += fmt::format("{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", json_string(name, "tensor name"),
                     safetensors_dtype(t.dtype()), fmt::join(t.shape(), ","), offset, offset + nbytes);
    offset += nbytes;
  }
  h += '}';
  while ((8 + h.size()) % 8 != 0) h += ' ';
  return h;
}

// Note [crash-safe save]
//   A save must leave nothing behind, even when the process is killed (kill -9, OOM,
//   power loss) at any instruction. On Linux the data goes into an anonymous file
//   (open(dir, O_TMPFILE)), which the kernel frees if the process dies; only when it is
//   complete and synced is it given a name, `<path>.tmp-<pid>-<n>` (linkat), and renamed
//   over `<path>` (rename is atomic). A crash can leave a named temporary only in the few
//   microseconds between linkat and rename. Where O_TMPFILE is unsupported (other file
//   systems or kernels) the data is written to `<path>.tmp-<pid>-<n>` directly, as before;
//   a crash then leaves that file.
//   Either way the next save to `<path>` removes the temporaries of dead writers: a
//   writer holds an exclusive flock on its temporary for its whole life (the kernel
//   drops it when the process dies), so a temporary is stale only if its flock can be
//   taken *and* the pid in its name is not a live process (the pid check covers the
//   instant between creating the file and locking it, and files written by versions
//   that did not lock). A live writer's file, in this or another process, is never
//   touched; a stale file whose pid has been reused by another process is left for a
//   later save.

std::atomic<bool> g_use_tmpfile{true};
std::atomic<uint64_t> g_save_counter{0};

std::string parent_directory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

/// `<base>.tmp-<pid>` or `<base>.tmp-<pid>-<n>`: the pid, else -1.
int64_t temporary_pid(std::string_view entry, std::string_view base) {
  const std::string prefix = fmt::format("{}.tmp-", base);
  if (entry.size() <= prefix.size() || entry.substr(0, prefix.size()) != prefix) return -1;
  std::string_view rest = entry.substr(prefix.size());
  const size_t dash = rest.find('-');
  std::string_view pid = rest.substr(0, dash);
  auto digits = [](std::string_view d) {
    return !d.empty() && d.size() <= 18 && std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(pid)) return -1;
  if (dash != std::string_view::npos && !digits(rest.substr(dash + 1))) return -1;
  return std::stoll(std::string(pid));
}

/// Removes the temporaries of dead writers beside `path` (Note [crash-safe save]). Best
/// effort: anything it cannot open, lock or remove is left alone.
void remove_stale_temporaries(const std::string& path) {
  const std::string dir = parent_directory(path);
  const std::string base = std::filesystem::path(path).filename().string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  DIR* d = ::fdopendir(dfd);
  if (d == nullptr) {
    ::close(dfd);
    return;
  }
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    const int64_t pid = temporary_pid(e->d_name, base);
    if (pid <= 0 || pid == ::getpid() || pid > std::numeric_limits<pid_t>::max()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to probe)
    const int fd = ::openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_EX | LOCK_NB) == 0) stale.emplace_back(e->d_name);
    ::close(fd);  // drops the lock; the writer is dead, nobody else creates this name
  }
  for (const std::string& name : stale) (void)::unlinkat(dfd, name.c_str(), 0);
  ::closedir(d);  // closes dfd
}

/// The file being written by an atomic save: anonymous (O_TMPFILE) where the system
/// supports it, else a named temporary; either way removed unless committed.
class TempFile {
public:
  TempFile(const std::string& target, int64_t fault, bool anonymous)
      : name_(fmt::format("{}.tmp-{}-{}", target, ::getpid(), g_save_counter.fetch_add(1))), fault_(fault) {
#ifdef O_TMPFILE
    if (anonymous) {
      fd_ = ::open(parent_directory(target).c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
      anonymous_ = fd_ >= 0;
    }
#else
    (void)anonymous;
#endif
    if (fd_ < 0) {
      fd_ = ::open(name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      UNROLL_CHECK(fd_ >= 0, "save_safetensors: cannot create '{}': {}", name_, errno_text());
      named_ = true;
    }
    (void)::flock(fd_, LOCK_EX | LOCK_NB);  // marks the file live (Note [crash-safe save])
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (named_ && !committed_) ::unlink(name_.c_str());
  }

  bool anonymous() const { return anonymous_; }

  void write(const void* data, size_t n) {
    auto p = static_cast<const char*>(data);
    size_t allowed = n;
    if (fault_ >= 0) allowed = std::min<uint64_t>(n, static_cast<uint64_t>(std::max<int64_t>(fault_ - written_, 0)));
    while (allowed > 0) {
      const ssize_t w = ::write(fd_, p, allowed);
      if (w < 0 && errno == EINTR) continue;
      UNROLL_CHECK(w > 0, "save_safetensors: cannot write '{}': {}", what(), errno_text());
      p += w;
      allowed -= static_cast<size_t>(w);
      n -= static_cast<size_t>(w);
      written_ += w;
    }
    UNROLL_CHECK(n == 0, "save_safetensors: cannot write '{}': simulated fault after {} bytes (unroll::testing)",
                 what(), written_);
  }

  /// fsync, name (if anonymous), close and rename over `target`; from here on the
  /// temporary is the file.
  void commit(const std::string& target) {
    UNROLL_CHECK(::fsync(fd_) == 0, "save_safetensors: cannot sync '{}': {}", what(), errno_text());
    if (anonymous_) link_anonymous();
    const int fd = fd_;
    fd_ = -1;
    UNROLL_CHECK(::close(fd) == 0, "save_safetensors: cannot close '{}': {}", name_, errno_text());
    UNROLL_CHECK(::rename(name_.c_str(), target.c_str()) == 0, "save_safetensors: cannot rename '{}' to '{}': {}",
                 name_, target, errno_text());
    committed_ = true;
  }

private:
  std::string what() const { return anonymous_ ? fmt::format("{} (anonymous)", name_) : name_; }

  /// Gives the anonymous file its temporary name: linkat(AT_EMPTY_PATH) needs
  /// CAP_DAC_READ_SEARCH, the /proc/self/fd link works for everyone with /proc.
  void link_anonymous() {
    int rc = ::linkat(fd_, "", AT_FDCWD, name_.c_str(), AT_EMPTY_PATH);
    if (rc != 0) {
      const std::string proc = fmt::format("/proc/self/fd/{}", fd_);
      rc = ::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, name_.c_str(), AT_SYMLINK_FOLLOW);
    }
    UNROLL_CHECK(rc == 0, "save_safetensors: cannot link the written file as '{}': {}", name_, errno_text());
    named_ = true;
  }

  std::string name_;
  int fd_ = -1;
  int64_t fault_;
  int64_t written_ = 0;
  bool anonymous_ = false;
  bool named_ = false;
  bool committed_ = false;
};

/// Makes a completed rename durable. Best effort: the new file is already in place, so a
/// directory that cannot be synced is not an error of the save.
void sync_parent_directory(const std::string& path) {
  const int fd = ::open(parent_directory(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

// ---- public API ------------------------------------------------------------------------------

void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata) {
  const int64_t fault = g_write_fault.exchange(-1);
  const std::string header = make_header(tensors, metadata);
  uint8_t length[8];
  const uint64_t n = header.size();
  std::memcpy(length, &n, 8);

  remove_stale_temporaries(path);
  TempFile tmp(path, fault, g_use_tmpfile.load());
  tmp.write(length, 8);
  tmp.write(header.data(), header.size());
  for (const auto& [name, t] : tensors) tmp.write(t.raw_data(), static_cast<size_t>(t.numel()) * dtype_size(t.dtype()));
  tmp.commit(path);
  sync_parent_directory(path);
}

bool checkpoint_writes_anonymously(const std::string& directory) {
#ifdef O_TMPFILE
  const int fd = ::open(directory.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  ::close(fd);
  return true;
#else
  (void)directory;
  return false;
#endif
}

SafetensorsFile parse_safetensors(std::span<const uint8_t> bytes, const std::string& what) {
  UNROLL_CHECK(bytes.size() >= 8, "safetensors '{}': the file has {} bytes, shorter than the 8-byte header length",
               what, bytes.size());
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  UNROLL_CHECK(n <= kMaxHeaderBytes, "safetensors '{}': header length {} is absurd (the limit is {} bytes)", what, n,
               kMaxHeaderBytes);
  UNROLL_CHECK(n <= bytes.size() - 8, "safetensors '{}': header length {} reaches beyond the end of the {}-byte file",
               what, n, bytes.size());
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), static_cast<size_t>(n));
  const std::span<const uint8_t> buffer = bytes.subspan(8 + static_cast<size_t>(n));

  HeaderReader r(text, what);
  if (text.empty() || text[0] != '{') r.error("the header must be a JSON object beginning with '{{'");
  SafetensorsFile out;
  std::vector<Entry> entries;
  std::set<std::string> names;
  bool seen_metadata = false;
  r.object("in the header", [&](std::string key) {
    if (key == "__metadata__") {
      if (seen_metadata) r.error("duplicate key \"__metadata__\"");
      seen_metadata = true;
      if (r.peek() != '{') r.error("\"__metadata__\" must be an object of strings");
      r.object("in \"__metadata__\"", [&](std::string mkey) {
        if (r.peek() != '"') r.error("metadata value of {} must be a string", printable(mkey));
        std::string value = r.string();
        if (!out.metadata.emplace(mkey, std::move(value)).second) r.error("duplicate metadata key {}", printable(mkey));
      });
      return;
    }
    if (!names.insert(key).second) r.error("duplicate tensor name {}", printable(key));
    entries.push_back(read_entry(r, std::move(key)));
  });
  r.expect_end();

  for (Entry& e : entries) check_entry(e, buffer.size(), what);
  check_coverage(entries, buffer.size(), what);

  for (const Entry& e : entries) {
    std::vector<int64_t> dims(e.shape.begin(), e.shape.end());
    Tensor t = Tensor::empty(Shape(std::span<const int64_t>(dims)), e.dtype);
    if (e.nbytes > 0) {
      const uint8_t* src = reinterpret_cast<const uint8_t*>(buffer.data()) + e.offsets[0];
      // A BOOL byte other than 0 or 1 is no bool (reading it as one is undefined behaviour).
      if (e.dtype == DType::Bool)
        for (uint64_t i = 0; i < e.nbytes; ++i)
          if (src[i] > 1)
            fail("safetensors '{}': tensor {}: BOOL element {} holds byte {}, not 0 or 1", what, printable(e.name), i,
                 src[i]);
      std::memcpy(t.raw_data(), src, static_cast<size_t>(e.nbytes));
    }
    out.tensors.insert(e.name, std::move(t));
  }
  return out;
}

SafetensorsFile load_safetensors(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  UNROLL_CHECK(fd >= 0, "load_safetensors: cannot open '{}': {}", path, errno_text());
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  UNROLL_CHECK(::fstat(fd, &st) == 0, "load_safetensors: cannot stat '{}': {}", path, errno_text());
  UNROLL_CHECK(S_ISREG(st.st_mode), "load_safetensors: '{}' is not a regular file", path);
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    UNROLL_CHECK(got >= 0, "load_safetensors: cannot read '{}': {}", path, errno_text());
    UNROLL_CHECK(got > 0, "load_safetensors: '{}' shrank while being read", path);
    done += static_cast<size_t>(got);
  }
  return parse_safetensors(bytes, path);
}

void save(const Module& m, const std::string& path, const Metadata& metadata) {
  save_safetensors(path, m.state_dict(), metadata);
}

Metadata load(Module& m, const std::string& path, bool strict) {
  SafetensorsFile file = load_safetensors(path);
  try {
    m.load_state_dict(file.tensors, strict);
  } catch (const Error& e) {
    fail("load '{}': {}", path, e.what());
  }
  return std::move(file.metadata);
}

}  // namespace unroll

namespace unroll::testing {

void set_checkpoint_write_fault(int64_t fail_after_bytes) { unroll::g_write_fault.store(fail_after_bytes); }

void set_checkpoint_anonymous_writes(bool enabled) { unroll::g_use_tmpfile.store(enabled); }

}  // namespace unroll::testing
