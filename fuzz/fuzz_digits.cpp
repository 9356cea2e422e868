// Fuzz target: the digits reader (examples/common/data.h, parse_digits). The parser must throw
// DataError or return images whose pixels lie in [0,1], labels in 0..9 and 64 pixels each.
#include "common/data.h"

#include <cstdint>
#include <sstream>
#include <string>

using namespace unroll::examples;

namespace {
void check(const DigitsSet& s) {
  if (s.pixels.size() != static_cast<size_t>(s.size()) * 64) __builtin_trap();
  for (float p : s.pixels)
    if (!(p >= 0.0f && p <= 1.0f)) __builtin_trap();
  for (int64_t l : s.labels)
    if (l < 0 || l > 9) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    DigitsSplit d = parse_digits(in, "fuzz");
    check(d.train);
    check(d.test);
  } catch (const DataError&) {
  }
  return 0;
}
