// Writes the seed corpus of the fuzz targets: fuzz_make_seeds <dir> creates
// <dir>/fuzz_<target>/seed_* (small valid inputs; the checkpoints are written by the library
// itself). The committed fuzz/corpus/ is its output: `fuzz_make_seeds fuzz/corpus`.
#include <unroll.h>

#include "common/data.h"
#include "nn/checkpoint.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace unroll;
using namespace std::string_literals;

namespace {

void write(const std::filesystem::path& dir, const std::string& name, const std::string& bytes) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: fuzz_make_seeds <corpus dir>\n");
    return 2;
  }
  const std::filesystem::path root = argv[1];

  // fuzz_safetensors: checkpoints of a Linear(3, 2) (the model the target loads into) in
  // float32 and float64, one of every dtype and odd shape, and an empty one.
  const std::filesystem::path st = root / "fuzz_safetensors";
  std::filesystem::create_directories(st);
  manual_seed(1);
  Linear model(3, 2);
  save(model, (st / "seed_linear_f32.safetensors").string(), {{"format", "seed"}});
  model.to(DType::F64);
  save(model, (st / "seed_linear_f64.safetensors").string());
  StateDict mixed;
  mixed.insert("ids", indices({2, 0, 1, 3}, {2, 2}));
  mixed.insert("scalar", scalar_tensor(1.5));
  mixed.insert("empty", zeros({0, 3}));
  mixed.insert("bias", tensor({0.25}, DType::F64));
  save_safetensors((st / "seed_mixed.safetensors").string(), mixed, {{"note", "every dtype"}, {"", "\"quoted\"\n"}});
  save_safetensors((st / "seed_empty.safetensors").string(), StateDict{});

  // fuzz_char_lm_text: short texts.
  const std::filesystem::path txt = root / "fuzz_char_lm_text";
  write(txt, "seed_words.txt", "A loop with a memory.\nThe same weights at every step.\n");
  write(txt, "seed_bytes.txt", "tab\there, a NUL \0 and high bytes \xc3\xa9\xff"s);

  // fuzz_char_lm_metadata: key=value lines as char_lm writes them, and a bare vocabulary.
  const std::filesystem::path meta = root / "fuzz_char_lm_metadata";
  const examples::CharVocab vocab = examples::CharVocab::of_text("the cat sat.");
  write(meta, "seed_checkpoint.txt",
        fmt::format("format=unroll-char-lm-1\ncell=lstm\nembed=8\nhidden=16\nlayers=1\nvocab={}\nsteps=12\n"
                    "train_loss=2.5\n",
                    vocab.to_metadata()));
  write(meta, "seed_gru.txt", "format=unroll-char-lm-1\ncell=gru\nembed=4\nhidden=4\nlayers=2\nvocab=10,32,97\nsteps=0\n"
                              "train_loss=nan\n");
  write(meta, "seed_vocab.txt", vocab.to_metadata());

  // fuzz_classify_data: first byte 0 = tsv, 1 = sst.
  const std::filesystem::path cls = root / "fuzz_classify_data";
  write(cls, "seed_tsv.txt", std::string(1, '\0') + "positive\tthe film was good\nnegative\tthe plot was dull\r\n\n");
  write(cls, "seed_sst.txt", "\x01" "4 ||| a great film .\n0 ||| a bad film .\n");

  // fuzz_cli: NUL-separated arguments.
  const std::filesystem::path cli = root / "fuzz_cli";
  write(cli, "seed_flags.txt", "--steps\0" "12\0--lr=0.5\0--verbose\0--text\0hello \"world\"\n"s);
  write(cli, "seed_help.txt", "--help\0--seed\0" "7\0--json\0--batch=x"s);
  fmt::print("seeds written to {}\n", root.string());
  return 0;
}
