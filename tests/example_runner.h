#pragma once
// Helpers for tests that run the example programs (tests/test_examples*.cpp): run one with
// flags, read the JSON line it ends with, and check that a figure is well-formed SVG.
#include <array>
#include <limits>
#include <sys/wait.h>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace example_test {

struct Run {
  int exit_code = -1;
  std::string out;   ///< stdout
  std::string json;  ///< the last line of stdout that starts with '{'
};

/// Runs UNROLL_EXAMPLES_DIR/<name> with `args` (stderr discarded).
inline Run run(const std::string& name, const std::string& args) {
  Run r;
  const std::string cmd = std::string(UNROLL_EXAMPLES_DIR) + "/" + name + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
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
