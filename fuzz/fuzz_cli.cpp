// Fuzz target: the examples' command-line flags (examples/common/cli.h). The input is split
// at NUL bytes into arguments; the flags are read as integers, numbers, strings and
// switches like the examples do (Cli::done() is not called: it exits on bad flags), and
// every string value goes through json_quote (core/json.h), whose output must be a valid JSON string.
#include "common/cli.h"
#include "core/json.h"

#include <cstdint>
#include <string>
#include <vector>

using namespace unroll::examples;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args = {"fuzz_cli"};
  std::string cur;
  for (size_t i = 0; i < size && args.size() < 64; ++i) {
    if (data[i] == 0) {
      args.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(data[i]));
    }
  }
  args.push_back(cur);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  Cli cli(static_cast<int>(args.size()), argv.data(), "fuzz");
  cli.get_int("steps", 10, "an integer");
  cli.get_int("batch", 4, "an integer");
  cli.get_double("lr", 1e-3, "a number");
  cli.get_double("dropout", 0.5, "a number");
  cli.get_flag("verbose", "a switch");
  cli.seed();
  cli.json();
  const std::string s = cli.get_string("text", "", "a string");
  const std::string j = unroll::json_quote(s);
  if (j.size() < 2 || j.front() != '"' || j.back() != '"') __builtin_trap();
  for (size_t i = 1; i + 1 < j.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(j[i]);
    if (c < 0x20) __builtin_trap();                        // control characters are escaped
    if (c == '\\') ++i;                                    // an escape: skip what it escapes
    else if (c == '"') __builtin_trap();                   // an unescaped quote inside
  }
  return 0;
}
