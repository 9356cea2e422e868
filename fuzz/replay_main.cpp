// A main() for the fuzz targets outside libFuzzer: runs LLVMFuzzerTestOneInput once on every
// file of the directories (or files) named on the command line. The ordinary test build links
// each fuzz/fuzz_<name>.cpp with it and replays fuzz/corpus/fuzz_<name>/ as the ctest
// fuzz_<name>_corpus, so the targets compile with every build (not only under scripts/fuzz.sh)
// and every committed seed and regression input runs in every test run. A target signals a
// failure by trapping or aborting, which fails the test.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int replay(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "fuzz replay: cannot open %s\n", p.string().c_str());
    return 1;
  }
  const std::vector<char> bytes{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  int files = 0, errors = 0;
  for (int a = 1; a < argc; ++a) {
    const std::filesystem::path arg = argv[a];
    std::vector<std::filesystem::path> paths;
    if (std::filesystem::is_directory(arg)) {
      for (const auto& e : std::filesystem::directory_iterator(arg))
        if (e.is_regular_file()) paths.push_back(e.path());
    } else {
      paths.push_back(arg);
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) {
      errors += replay(p);
      ++files;
    }
  }
  if (files == 0) {
    std::fprintf(stderr, "fuzz replay: no input files under the given paths\n");
    return 1;
  }
  std::printf("fuzz replay: %d inputs ran, %d unreadable\n", files, errors);
  return errors == 0 ? 0 : 1;
}
