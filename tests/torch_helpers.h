#pragma once
// Helpers for the optional cross-checks with PyTorch (tests/test_torch_*.cpp): find a Python
// that can import torch (the test is skipped where there is none; torch is never required),
// run the test's script of tests/ with it, and compare tensors.
//
//   const std::string py = torch_test::python_or_skip();
//   if (py.empty()) return;
//   REQUIRE(torch_test::run_script(py, "torch_interop.py", "export " + path));
#include <doctest/doctest.h>

#include <unroll.h>

#include <cstdlib>
#include <string>

namespace torch_test {

/// The first interpreter that can import torch, or "" (the Debian one is /usr/bin/python3).
/// Looked for once per test program.
inline const std::string& python() {
  static const std::string found = [] {
    for (const char* py : {"python3", "/usr/bin/python3"})
      if (std::system((std::string(py) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0) return std::string(py);
    return std::string();
  }();
  return found;
}

/// python() in a test case: when it is "", the test case also says that it is skipped.
inline std::string python_or_skip() {
  const std::string& py = python();
  if (py.empty()) MESSAGE("skipped: no Python interpreter here can import torch");
  return py;
}

/// Runs `py tests/<script> <args>` through the shell (args may redirect); true on exit 0.
inline bool run_script(const std::string& py, const std::string& script, const std::string& args) {
  const std::string cmd = "OPENBLAS_CORETYPE=Cooperlake " + py + " " UNROLL_SOURCE_DIR "/tests/" + script + " " + args;
  return std::system(cmd.c_str()) == 0;
}

/// max |a - b| over all elements, in float64; a and b must have the same shape.
inline double max_diff(const unroll::Tensor& a, const unroll::Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  return unroll::max(unroll::abs(a.to(unroll::DType::F64) - b.to(unroll::DType::F64))).item();
}

}  // namespace torch_test
