// The char_lm example under the reliability lens: the same seed gives the same run (every
// metric and every checkpoint byte), --resume restores the weights exactly, a resumed run is
// itself reproducible, and a run of N steps resumed after K retraces the uninterrupted run's
// losses bit for bit (Note [exact resume] in examples/char_lm.cpp: the checkpoint holds
// Adam's state, the data position and generator, the carried LSTM state and the dropout
// generators next to the weights).
#include <doctest/doctest.h>
#include <unroll.h>

#include "test_support.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using example_test::number;
using example_test::run;

namespace {

const std::string kTmp = std::string(UNROLL_TEST_TMPDIR) + "/examples_reliability";

// Small settings (a few seconds per run).
const std::string kLm = " --hidden 32 --embed 16 --batch 8 --seq 32 --seed 5 --sample-len 40 --eval-every 10 --json";

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

/// Bit-for-bit equality of the tensors (names, shapes, dtypes, values) and metadata of two files.
bool same_checkpoint(const std::string& a, const std::string& b, bool compare_metadata = true) {
  const unroll::SafetensorsFile fa = unroll::load_safetensors(a), fb = unroll::load_safetensors(b);
  if (fa.tensors.size() != fb.tensors.size()) return false;
  for (const auto& [name, t] : fa.tensors) {
    const unroll::Tensor* u = fb.tensors.find(name);
    if (u == nullptr || !unroll::equal(t, *u)) return false;
  }
  return !compare_metadata || fa.metadata == fb.metadata;
}

/// The lines of a --trace file ("train|val <step> <loss>") whose step is above `after`.
std::vector<std::string> trace_after(const std::string& path, int64_t after) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) {
    std::istringstream in(line);
    std::string kind;
    int64_t step = -1;
    in >> kind >> step;
    if (step > after) out.push_back(line);
  }
  return out;
}

}  // namespace

TEST_CASE("char_lm: the same seed gives the same run: every metric, the sample and the checkpoint") {
  const auto a = run("char_lm", "--steps 25 --out " + kTmp + "/a" + kLm);
  const auto b = run("char_lm", "--steps 25 --out " + kTmp + "/b" + kLm);
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  // The JSON prints shortest round-trip doubles, so equal text is equal bits.
  for (const char* key : {"initial_loss", "initial_val_loss", "final_train_loss", "val_loss", "best_val_loss"}) {
    CAPTURE(key);
    CHECK(std::isfinite(number(a.json, key)));
    CHECK(number(a.json, key) == number(b.json, key));
  }
  CHECK(string_value(a.json, "sample") == string_value(b.json, "sample"));
  CHECK(same_checkpoint(kTmp + "/a/char_lm.safetensors", kTmp + "/b/char_lm.safetensors"));

  // A different seed is a different run (the comparison above can fail).
  const auto c = run("char_lm", "--steps 25 --out " + kTmp + "/c" + kLm + " --seed 6");
  REQUIRE(c.exit_code == 0);
  CHECK(number(c.json, "final_train_loss") != number(a.json, "final_train_loss"));
}

TEST_CASE("char_lm: --resume restores the weights exactly, and a resumed run is reproducible") {
  const std::string out = kTmp + "/resume";
  const std::string ck = out + "/char_lm.safetensors";
  const auto first = run("char_lm", "--steps 20 --out " + out + kLm);
  REQUIRE(first.exit_code == 0);

  // Resuming for 0 steps re-evaluates the held-out loss with the loaded weights: exactly the
  // value the first run ended with; saving again writes the very same tensors.
  const std::string again = out + "/again.safetensors";
  const auto zero = run("char_lm", "--steps 0 --out " + out + " --resume " + ck + " --save " + again + kLm);
  REQUIRE(zero.exit_code == 0);
  CHECK(number(zero.json, "initial_val_loss") == number(first.json, "val_loss"));
  CHECK(same_checkpoint(ck, again, false));
  CHECK(unroll::load_safetensors(again).metadata.at("steps") == "20");

  // Two runs resumed from the same checkpoint with the same seed agree bit for bit.
  const auto r1 = run("char_lm", "--steps 10 --out " + out + " --resume " + ck + " --save " + out + "/r1.safetensors" + kLm);
  const auto r2 = run("char_lm", "--steps 10 --out " + out + " --resume " + ck + " --save " + out + "/r2.safetensors" + kLm);
  REQUIRE(r1.exit_code == 0);
  REQUIRE(r2.exit_code == 0);
  CHECK(number(r1.json, "steps") == 30);
  CHECK(number(r1.json, "initial_loss") == number(r2.json, "initial_loss"));
  CHECK(number(r1.json, "final_train_loss") == number(r2.json, "final_train_loss"));
  CHECK(same_checkpoint(out + "/r1.safetensors", out + "/r2.safetensors"));
  CHECK_FALSE(same_checkpoint(ck, out + "/r1.safetensors", false));  // it did train
}

TEST_CASE("char_lm: 20 steps, save, resume to 60 retraces the uninterrupted 60 steps bit for bit") {
  // Two layers and dropout, so both dropout generators (between the layers, on the output) matter.
  const std::string out = kTmp + "/exact";
  const std::string flags = " --layers 2 --dropout 0.3 --out " + out + kLm;
  const auto full = run("char_lm", "--steps 60 --trace " + out + "/full.txt --save " + out + "/full.st" + flags);
  const auto first = run("char_lm", "--steps 20 --trace " + out + "/first.txt --save " + out + "/a.st" + flags);
  REQUIRE(full.exit_code == 0);
  REQUIRE(first.exit_code == 0);
  const auto second = run("char_lm", "--steps 40 --resume " + out + "/a.st --trace " + out + "/second.txt --save " +
                                         out + "/b.st" + flags);
  REQUIRE(second.exit_code == 0);
  CHECK(number(second.json, "steps") == 60);

  // Every training loss (steps 21..60) and validation loss (30, 40, .., 60) after the resume
  // point, printed with 17 significant digits: equal text is equal bits. Step 20 is in the
  // middle of a pass over the streams, so the carried LSTM state matters too.
  const std::vector<std::string> expected = trace_after(out + "/full.txt", 20);
  const std::vector<std::string> resumed = trace_after(out + "/second.txt", 20);
  REQUIRE(expected.size() == 40 + 4);
  REQUIRE(resumed.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    CHECK(resumed[i] == expected[i]);
  }
  // The resumed run starts by evaluating the loaded weights: the first run's last value.
  CHECK(trace_after(out + "/second.txt", 19).front() == trace_after(out + "/first.txt", 19).back());
  CHECK(trace_after(out + "/first.txt", 19).back().rfind("val 20 ", 0) == 0);
  // And it ends where the uninterrupted run ended: weights, Adam's moments, generators and
  // the carried state, tensor for tensor.
  CHECK(same_checkpoint(out + "/full.st", out + "/b.st", false));
  CHECK(unroll::load_safetensors(out + "/b.st").tensors.contains("optim.state.0.exp_avg"));

  // An older checkpoint (weights and settings only) still resumes, says the continuation is
  // not exact, and then it is not: a fresh Adam and data order give other losses.
  unroll::SafetensorsFile old = unroll::load_safetensors(out + "/a.st");
  unroll::StateDict weights;
  for (const auto& [name, t] : old.tensors)
    if (name.rfind("optim.", 0) != 0 && name.rfind("rng.", 0) != 0 && name.rfind("state.", 0) != 0)
      weights.insert(name, t);
  for (const char* key : {"data_pos", "batch", "seq", "train_chars"}) old.metadata.erase(key);
  unroll::save_safetensors(out + "/old.st", weights, old.metadata);
  const auto from_old = run("char_lm", "--steps 40 --resume " + out + "/old.st --trace " + out + "/old.txt --save " +
                                           out + "/c.st" + flags);
  REQUIRE(from_old.exit_code == 0);
  CHECK(from_old.out.find("not as an exact continuation") != std::string::npos);
  CHECK(second.out.find("not as an exact continuation") == std::string::npos);
  const std::vector<std::string> inexact = trace_after(out + "/old.txt", 20);
  REQUIRE(inexact.size() == expected.size());
  CHECK(inexact.front() != expected.front());
}
