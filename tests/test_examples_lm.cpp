// The character language model (char_lm) and the one-to-many generator (one_to_many),
// run with small settings: they learn, char_lm's checkpoints resume and sample, and bad
// input gives a clear error and a non-zero exit code instead of a crash.
#include <doctest/doctest.h>
#include <unroll.h>

#include "test_support.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using example_test::number;
using example_test::run;
using example_test::well_formed_svg;

namespace {

const std::string kTmp = std::string(UNROLL_TEST_TMPDIR) + "/examples_lm";

/// A run whose stderr is kept (example_test::run discards it): stderr goes to a file.
struct RunWithErr {
  int exit_code = -1;
  std::string out, err;
};

RunWithErr run_capturing(const std::string& name, const std::string& args) {
  std::filesystem::create_directories(kTmp);
  const std::string err_path = kTmp + "/stderr.txt";
  const std::string cmd = std::string(UNROLL_EXAMPLES_DIR) + "/" + name + " " + args + " 2>" + err_path;
  RunWithErr r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream f(err_path);
  std::stringstream ss;
  ss << f.rdbuf();
  r.err = ss.str();
  return r;
}

/// The string value of "key" in a flat JSON line (no unescaping beyond \" and \\).
std::string string_value(const std::string& json, const std::string& key) {
  const std::string pat = "\"" + key + "\": \"";
  const size_t at = json.find(pat);
  if (at == std::string::npos) return "";
  std::string s;
  for (size_t i = at + pat.size(); i < json.size() && json[i] != '"'; ++i) {
    if (json[i] == '\\' && i + 1 < json.size()) ++i;
    s += json[i];
  }
  return s;
}

// Small settings shared by the char_lm runs (and required again by --resume).
const std::string kLmModel = " --hidden 32 --embed 16 --batch 8 --seq 32 --seed 1 --sample-len 40";

}  // namespace

TEST_CASE("char_lm: the loss starts at ln|V| and falls well below it; checkpoint resumes and samples") {
  const std::string out = kTmp + "/train";
  const std::string ckpt = out + "/char_lm.safetensors";
  const auto r = run("char_lm", "--steps 300 --eval-every 100 --json --out " + out + kLmModel);
  REQUIRE(r.exit_code == 0);
  REQUIRE_FALSE(r.json.empty());
  const double ln_v = number(r.json, "ln_vocab");
  const double initial = number(r.json, "initial_loss"), final_train = number(r.json, "final_train_loss");
  CHECK(number(r.json, "vocab") > 30);
  CHECK(std::abs(initial - ln_v) < 0.3);  // an untrained model guesses nearly uniformly
  CHECK(final_train < 0.7 * ln_v);
  CHECK(number(r.json, "val_loss") < 0.8 * ln_v);  // it generalises to the held-out tail
  CHECK(std::abs(number(r.json, "train_bpc") - final_train / std::log(2.0)) < 1e-9);
  std::string why;
  CHECK_MESSAGE(well_formed_svg(out + "/char_lm_loss.svg", {"<polyline", "<text", "validation", "log2|V|", "bits per character"}, &why), why);
  REQUIRE(std::filesystem::exists(ckpt));

  // The checkpoint carries the vocabulary and settings: a tensor file PyTorch can read.
  const unroll::SafetensorsFile file = unroll::load_safetensors(ckpt);
  CHECK(file.metadata.at("cell") == "lstm");
  CHECK(file.metadata.at("hidden") == "32");
  CHECK(file.metadata.at("steps") == "300");
  CHECK(file.tensors.contains("rnn.weight_ih_l0"));
  CHECK(file.tensors.at("embed.weight").size(0) == static_cast<int64_t>(number(r.json, "vocab")));

  // --resume continues from the saved loss level, not from ln|V|.
  const std::string resumed = out + "/resumed.safetensors";
  const auto rr = run("char_lm", "--steps 30 --eval-every 10 --json --out " + out + " --resume " + ckpt + " --save " +
                                     resumed + kLmModel);
  REQUIRE(rr.exit_code == 0);
  const double resumed_initial = number(rr.json, "initial_loss");
  CHECK(resumed_initial < 0.75 * ln_v);
  CHECK(std::abs(resumed_initial - final_train) < 0.4);
  CHECK(number(rr.json, "initial_val_loss") == doctest::Approx(number(r.json, "val_loss")).epsilon(1e-6));
  CHECK(number(rr.json, "steps") == 330);
  CHECK(std::filesystem::exists(resumed));

  // --sample-only loads and writes text (prime + 60 characters), no training.
  const auto rs = run("char_lm", "--sample-only " + ckpt + " --prime \"The \" --sample-len 60 --temperature 0.5 --json");
  REQUIRE(rs.exit_code == 0);
  const std::string text = string_value(rs.json, "sample");
  CHECK(text.size() == 4 + 60);
  CHECK(text.rfind("The ", 0) == 0);
  // Same seed, same sample.
  const auto rs2 = run("char_lm", "--sample-only " + ckpt + " --prime \"The \" --sample-len 60 --temperature 0.5 --json");
  CHECK(string_value(rs2.json, "sample") == text);
}

TEST_CASE("char_lm --valid FILE: the loss on another file, characters outside the vocabulary skipped and counted") {
  const std::string out = kTmp + "/valid";
  std::filesystem::create_directories(out);
  const std::string file = out + "/other.txt";
  {
    std::ofstream f(file);
    f << "A recurrent network reads a sequence one element at a time, and it writes a summary.~\n";  // '~' is not in the essay
  }
  const auto r = run("char_lm", "--steps 20 --eval-every 10 --valid " + file + " --json --out " + out + kLmModel);
  REQUIRE(r.exit_code == 0);
  CHECK(number(r.json, "valid_file_skipped") == 1);
  CHECK(number(r.json, "valid_file_chars") == 85);
  const double bpc = number(r.json, "valid_file_bpc");
  CHECK(std::isfinite(bpc));
  CHECK(bpc == doctest::Approx(number(r.json, "valid_file_loss") / std::log(2.0)));
  CHECK(bpc < number(r.json, "ln_vocab") / std::log(2.0) + 0.5);
  CHECK(r.out.find("the last 10% of the same file") != std::string::npos);
  CHECK(run("char_lm", "--steps 1 --valid " + out + "/missing.txt --out " + out + kLmModel).exit_code != 0);
}

TEST_CASE("char_lm: bad input gives a clear error and a non-zero exit code") {
  const std::string out = kTmp + "/errors";
  const std::string ckpt = out + "/char_lm.safetensors";
  REQUIRE(run("char_lm", "--steps 2 --out " + out + kLmModel).exit_code == 0);
  REQUIRE(std::filesystem::exists(ckpt));

  // A truncated checkpoint.
  const std::string corrupt = out + "/corrupt.safetensors";
  {
    std::ifstream in(ckpt, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream o(corrupt, std::ios::binary);
    o << bytes.substr(0, bytes.size() / 2);
  }
  auto r = run_capturing("char_lm", "--sample-only " + corrupt);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("char_lm: error:") != std::string::npos);
  CHECK(r.err.find(corrupt) != std::string::npos);
  r = run_capturing("char_lm", "--steps 2 --resume " + corrupt + " --out " + out + kLmModel);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find(corrupt) != std::string::npos);

  // A missing and an empty text file.
  r = run_capturing("char_lm", "--text " + out + "/no_such_file.txt --out " + out);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("cannot open text file") != std::string::npos);
  const std::string empty = out + "/empty.txt";
  std::ofstream(empty).close();
  r = run_capturing("char_lm", "--text " + empty + " --out " + out);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("is empty") != std::string::npos);

  // Resuming on a text with characters the checkpoint's vocabulary lacks.
  const std::string other = out + "/other.txt";
  std::ofstream(other) << std::string(2000, '#') << "@@@";
  r = run_capturing("char_lm", "--steps 2 --text " + other + " --resume " + ckpt + " --out " + out + kLmModel);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("vocabulary mismatch") != std::string::npos);
  CHECK(r.err.find("'#'") != std::string::npos);

  // Resuming with settings that differ from the checkpoint's.
  r = run_capturing("char_lm", "--steps 2 --resume " + ckpt + " --out " + out + " --hidden 24 --embed 16");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--hidden 32") != std::string::npos);
  CHECK(r.err.find("pass the same settings") != std::string::npos);
}

TEST_CASE("one_to_many: the generated waves of held-out inputs approach the true ones") {
  const std::string out = kTmp + "/one_to_many";
  const auto r = run("one_to_many", "--steps 300 --hidden 16 --mlp 32 --seq 20 --train 128 --test 32 --batch 16 "
                                    "--eval-every 50 --seed 3 --json --out " + out);
  REQUIRE(r.exit_code == 0);
  REQUIRE_FALSE(r.json.empty());
  const double untrained = number(r.json, "untrained_test_mse"), test_mse = number(r.json, "test_mse");
  CHECK(untrained > 0.2);
  CHECK(test_mse < 0.15 * untrained);
  CHECK(test_mse < 0.15 * number(r.json, "zero_mse"));  // far better than predicting 0
  std::string why;
  CHECK_MESSAGE(well_formed_svg(out + "/one_to_many_loss.svg", {"<polyline", "test (held-out)"}, &why), why);
  CHECK_MESSAGE(well_formed_svg(out + "/one_to_many_waves.svg", {"<polyline", "generated", "phi="}, &why), why);

  // The autoregressive decoder (fed its own previous output) learns too.
  const auto rp = run("one_to_many", "--feed prev --cell gru --steps 300 --hidden 16 --mlp 32 --seq 20 --train 128 "
                                     "--test 32 --batch 16 --seed 3 --json --out " + out + "/prev");
  REQUIRE(rp.exit_code == 0);
  CHECK(number(rp.json, "test_mse") < 0.3 * number(rp.json, "untrained_test_mse"));

  // Flags that make no sense are rejected with exit code 2.
  CHECK(run("one_to_many", "--teacher-forcing --out " + out).exit_code == 2);
  CHECK(run("one_to_many", "--cell tanh --out " + out).exit_code == 2);
}
