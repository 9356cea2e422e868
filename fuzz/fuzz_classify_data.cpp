// Fuzz target: classify's data files (examples/common/data.h): `label<TAB>text` lines and
// SST `label ||| text` lines. The first byte picks the format; the rest is the file. The
// parser must throw unroll::Error or return examples with a non-empty label and no line
// break inside.
#include "common/data.h"

#include <cstdint>
#include <sstream>
#include <string>

using namespace unroll;
using namespace unroll::examples;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string format = data[0] % 2 == 0 ? "tsv" : "sst";
  std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  try {
    for (const TextExample& e : parse_text_examples(in, "fuzz", format)) {
      if (e.label.empty()) __builtin_trap();
      if (e.label.find('\n') != std::string::npos || e.text.find('\n') != std::string::npos) __builtin_trap();
    }
  } catch (const Error&) {
  }
  return 0;
}
