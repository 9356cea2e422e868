#pragma once
// What every example shares: flags with --help, a live progress line, a final JSON line,
// and where figures go.
//
//   Cli cli(argc, argv, "adding problem: RNN vs LSTM vs GRU");
//   int64_t steps = cli.get_int("steps", 2000, "training steps per model");
//   cli.done();                      // handles --help, rejects unknown flags
//
// and the try/catch around it, in main:
//
//   int main(int argc, char** argv) { return guarded_main("adding", argc, argv, run); }
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <string>
#include <vector>

namespace unroll::examples {

class Cli {
public:
  Cli(int argc, char** argv, std::string description);
  int64_t get_int(const std::string& name, int64_t def, const std::string& help);
  double get_double(const std::string& name, double def, const std::string& help);
  std::string get_string(const std::string& name, const std::string& def, const std::string& help);
  bool get_flag(const std::string& name, const std::string& help);  ///< present or not
  /// The common flags: --seed, --json, --out (default: <binary dir>/out/<program>).
  uint64_t seed();
  bool json();
  std::string out_dir();  ///< created if missing
  std::string out_path();  ///< the same folder, not created (for a program that may write nothing)
  /// Prints usage and exits 0 on --help; exits 2 naming any unknown or malformed flag.
  void done();
  const std::string& program() const { return program_; }

private:
  const std::string* find(const std::string& name);
  std::string program_, dir_, description_;
  std::map<std::string, std::string> given_;
  std::vector<std::string> used_, usage_;
  bool help_ = false;
  std::vector<std::string> errors_;
};

/// One line on stderr, rewritten in place: step/total, loss, steps/s, ETA. Rate-limited.
class Progress {
public:
  Progress(std::string label, int64_t total, bool enabled = true);
  void update(int64_t step, double loss, const std::string& extra = "");
  void finish();  ///< ends the line
  double seconds() const;  ///< since construction
private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_;
  bool printed_ = false;
};

/// Builds the final one-line JSON object printed with --json.
class JsonLine {
public:
  JsonLine& add(const std::string& key, double value);
  JsonLine& add(const std::string& key, const std::string& value);
  JsonLine& add_raw(const std::string& key, const std::string& json);  ///< a nested object/array
  std::string str() const;
private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// ---- main: errors become a message and an exit code ----------------------------------------

/// How guarded_main words an error on stderr: "<prefix><message>".
enum class ErrorPrefix {
  program_error,  ///< "<program>: error: "
  program,        ///< "<program>: "
  argv0,          ///< "<argv[0]>: " (the path the program was started by)
  none,           ///< nothing: the message names the program or the op already
};

/// A rule of guarded_main: an exception of type E is printed with `prefix`, and main
/// returns `exit_code`.
template <typename E>
struct OnError {
  ErrorPrefix prefix;
  int exit_code;
};
template <typename E>
OnError<E> on_error(ErrorPrefix prefix, int exit_code) {
  return {prefix, exit_code};
}

/// Prints "<prefix><message>" on stderr; returns exit_code.
int report_error(const char* program, const char* argv0, ErrorPrefix prefix, int exit_code, const char* message);

namespace detail {
// The exception being handled, reported by the first rule that matches it, else as any
// std::exception (anything else propagates).
inline int report_current(const char* program, const char* argv0) {
  try {
    throw;
  } catch (const std::exception& e) {
    return report_error(program, argv0, ErrorPrefix::program_error, 1, e.what());
  }
}
template <typename E, typename... Rest>
int report_current(const char* program, const char* argv0, OnError<E> rule, OnError<Rest>... rest) {
  try {
    throw;
  } catch (const E& e) {
    return report_error(program, argv0, rule.prefix, rule.exit_code, e.what());
  } catch (...) {
    return report_current(program, argv0, rest...);
  }
}
}  // namespace detail

/// An example's main: returns body(argc, argv). An exception escaping it is printed on
/// stderr and main returns an exit code, as the first of `rules` whose type it has says,
/// else (any std::exception) as "<program>: error: <message>" with exit code 1:
///
///   return guarded_main("char_lm", argc, argv, run, on_error<UsageError>(ErrorPrefix::program, 2));
template <typename... E>
int guarded_main(const char* program, int argc, char** argv, int (*body)(int, char**), OnError<E>... rules) {
  try {
    return body(argc, argv);
  } catch (...) {
    return detail::report_current(program, argc > 0 ? argv[0] : program, rules...);
  }
}

}  // namespace unroll::examples
