// Fuzz target: char_lm's text handling (examples/common/data.h) on arbitrary bytes: the
// vocabulary of a text, encoding it, the vocabulary's metadata form and back, and encoding
// with a smaller vocabulary (which must throw DataError naming the missing characters).
#include "common/data.h"

#include <cstdint>
#include <string>
#include <vector>

using namespace unroll::examples;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const CharVocab vocab = CharVocab::of_text(text);
  const std::vector<int64_t> ids = vocab.encode(text, "fuzz");
  if (ids.size() != text.size()) __builtin_trap();
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab.size() || vocab.chars[static_cast<size_t>(ids[i])] != static_cast<unsigned char>(text[i]))
      __builtin_trap();
  if (text.empty()) return 0;
  const CharVocab back = CharVocab::from_metadata(vocab.to_metadata(), "fuzz");
  if (back.chars != vocab.chars) __builtin_trap();
  // Without its last character the vocabulary cannot encode the text.
  std::vector<unsigned char> fewer(vocab.chars.begin(), vocab.chars.end() - 1);
  if (fewer.empty()) return 0;
  try {
    CharVocab(fewer).encode(text, "fuzz");
    __builtin_trap();
  } catch (const DataError&) {
  }
  return 0;
}
