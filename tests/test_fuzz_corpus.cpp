// Replays the committed safetensors fuzz corpus (fuzz/corpus/fuzz_safetensors/: the seeds and
// any input that once crashed the fuzzer) through the checkpoint reader in the ordinary test
// build, so every CI run (and the ASan run) checks them without clang or libFuzzer. Each file
// must either parse into tensors whose bytes all came from the file or throw unroll::Error;
// what parses must load into a Linear(3, 2) or be rejected with an Error.
// The ctest fuzz_safetensors_corpus replays the same files through the fuzz target itself
// (its invariants, also via the file path); this test adds what a fuzz target cannot state:
// the committed seeds do parse, and the errors name the reader.
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/checkpoint.h"
#include "nn/layers.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace unroll;

namespace {

std::vector<uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("fuzz corpus: every safetensors seed and regression input parses or throws unroll::Error") {
  const std::filesystem::path dir = std::filesystem::path(UNROLL_SOURCE_DIR) / "fuzz" / "corpus" / "fuzz_safetensors";
  REQUIRE(std::filesystem::is_directory(dir));
  int files = 0, parsed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    INFO("file: " << entry.path().string());
    const std::vector<uint8_t> bytes = read_bytes(entry.path());
    try {
      const SafetensorsFile f = parse_safetensors(bytes, entry.path().string());
      ++parsed;
      uint64_t total = 0;
      for (const auto& [name, t] : f.tensors) total += static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
      CHECK(total <= bytes.size());
      Linear model(3, 2);
      try {
        model.load_state_dict(f.tensors, false);
      } catch (const Error& e) {
        CHECK(std::string(e.what()).find("load_state_dict") != std::string::npos);
      }
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("safetensors") != std::string::npos);
    }
  }
  MESSAGE(files, " corpus files, ", parsed, " parsed");
  CHECK(files >= 4);
  CHECK(parsed >= 4);  // the seeds written by fuzz/make_seeds.cpp are valid checkpoints
}
