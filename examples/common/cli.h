#pragma once
// What every example shares: flags with --help, a live progress line, a final JSON line,
// and where figures go.
//
//   Cli cli(argc, argv, "adding problem: RNN vs LSTM vs GRU");
//   int64_t steps = cli.get_int("steps", 2000, "training steps per model");
//   cli.done();                      // handles --help, rejects unknown flags
#include <chrono>
#include <cstdint>
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

std::string json_escape(const std::string& s);

}  // namespace unroll::examples
