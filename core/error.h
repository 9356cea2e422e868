#pragma once
// Errors: one exception type and one always-on check helper.
//
// Every op validates its arguments when it is called (never inside backward) and throws
// unroll::Error with a sentence that names the op and the offending shapes or values, e.g.
//   matmul: [32,64] x [128,256]: inner dimensions 64 and 128 differ
#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace unroll {

/// The one error type of the library (derives from std::runtime_error).
class Error : public std::runtime_error {
public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// Throws unroll::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace unroll

/// UNROLL_CHECK(cond, "op: {} ...", args...): always on, also in release builds.
#define UNROLL_CHECK(cond, ...)                         \
  do {                                                   \
    if (!(cond)) [[unlikely]] ::unroll::fail(__VA_ARGS__); \
  } while (0)
