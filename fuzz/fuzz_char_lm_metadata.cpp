// Fuzz target: char_lm's checkpoint metadata (examples/common/data.h). The input is read as
// `key=value` lines into a Metadata map and checked by parse_char_lm_metadata, and as a
// whole as a "vocab" value for CharVocab::from_metadata; both must throw DataError or
// return consistent values.
#include "common/data.h"

#include <cstdint>
#include <sstream>
#include <string>

using namespace unroll;
using namespace unroll::examples;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  Metadata metadata;
  std::istringstream lines(input);
  for (std::string line; std::getline(lines, line);) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) metadata.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  try {
    const CharLmMetadata m = parse_char_lm_metadata(metadata, "fuzz");
    if (m.embed < 0 || m.hidden < 0 || m.layers < 0 || m.steps < 0 || m.vocab.size() < 1 || m.vocab.size() > 256)
      __builtin_trap();
    if (m.cell != "lstm" && m.cell != "gru" && m.cell != "rnn") __builtin_trap();
  } catch (const DataError&) {
  }

  try {
    const CharVocab v = CharVocab::from_metadata(input, "fuzz");
    for (size_t i = 1; i < v.chars.size(); ++i)
      if (v.chars[i - 1] >= v.chars[i]) __builtin_trap();
    for (size_t i = 0; i < v.chars.size(); ++i)
      if (v.id[v.chars[i]] != static_cast<int64_t>(i)) __builtin_trap();
    if (CharVocab::from_metadata(v.to_metadata(), "fuzz").chars != v.chars) __builtin_trap();
  } catch (const DataError&) {
  }
  return 0;
}
