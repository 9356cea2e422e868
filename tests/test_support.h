#pragma once
// The tests' shared scaffolding: scratch directories and file bytes (test_support::), and
// for the tests that run the example programs (tests/test_examples*.cpp): run one with
// flags, read the JSON line it ends with, and check that a figure is well-formed SVG
// (example_test::).
#include <array>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <limits>
#include <sys/wait.h>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace test_support {

/// A fresh, empty scratch directory for one test, inside the test's private
/// UNROLL_TEST_TMPDIR (set by tests/CMakeLists.txt).
inline std::filesystem::path scratch(const std::string& name) {
  std::filesystem::path dir = std::filesystem::path(UNROLL_TEST_TMPDIR) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// The whole file (empty if it cannot be read).
inline std::vector<uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct ProgramRun {
  int exit_code = -1;  ///< -1 if it could not be started or did not exit normally
  std::string out;     ///< stdout
};

/// Runs the program at `path` with `args` through the shell; stderr is discarded, or with
/// merge_stderr part of `out`.
inline ProgramRun run_program(const std::string& path, const std::string& args, bool merge_stderr = false) {
  ProgramRun r;
  const std::string cmd = path + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace test_support

#ifdef UNROLL_EXAMPLES_DIR
namespace example_test {

struct Run {
  int exit_code = -1;
  std::string out;   ///< stdout
  std::string json;  ///< the last line of stdout that starts with '{'
};

/// Runs UNROLL_EXAMPLES_DIR/<name> with `args` (stderr discarded).
inline Run run(const std::string& name, const std::string& args) {
  test_support::ProgramRun p = test_support::run_program(std::string(UNROLL_EXAMPLES_DIR) + "/" + name, args);
  Run r{p.exit_code, std::move(p.out), ""};
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') r.json = line;
  return r;
}

/// The number after "key": in a flat JSON line (NaN if absent or not a number).
inline double number(const std::string& json, const std::string& key) {
  const std::string pat = "\"" + key + "\": ";
  const size_t at = json.find(pat);
  if (at == std::string::npos) return std::numeric_limits<double>::quiet_NaN();
  try {
    return std::stod(json.substr(at + pat.size()));
  } catch (...) {
    return std::numeric_limits<double>::quiet_NaN();
  }
}

/// True when path holds an SVG document whose tags nest properly and that contains every
/// string in `must_contain` (e.g. "<polyline", "<text").
inline bool well_formed_svg(const std::string& path, const std::vector<std::string>& must_contain, std::string* why = nullptr) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string s = ss.str();
  auto bad = [&](const std::string& m) {
    if (why) *why = path + ": " + m;
    return false;
  };
  if (s.rfind("<svg", 0) != 0) return bad("does not start with <svg");
  for (const std::string& m : must_contain)
    if (s.find(m) == std::string::npos) return bad("lacks " + m);
  std::vector<std::string> stack;
  for (size_t i = s.find('<'); i != std::string::npos; i = s.find('<', i + 1)) {
    const size_t end = s.find('>', i);
    if (end == std::string::npos) return bad("unterminated tag");
    std::string tag = s.substr(i + 1, end - i - 1);
    if (tag.empty()) return bad("empty tag");
    if (tag.back() == '/') continue;  // self-closing
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) return bad("mismatched </" + name + ">");
      stack.pop_back();
    } else {
      stack.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
    }
  }
  if (!stack.empty()) return bad("unclosed <" + stack.back() + ">");
  return true;
}

}  // namespace example_test
#endif  // UNROLL_EXAMPLES_DIR
