// Short runs of examples/transformer (RNN vs Transformer: reversal and a character LM) and
// examples/bert_toy (masked-token pretraining, then fine-tuning): both learn, and their
// figures are well-formed.
#include <doctest/doctest.h>
#include <unroll.h>

#include "test_support.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

namespace {

std::string out_dir(const std::string& name) {
  const std::string d = std::string(UNROLL_TEST_TMPDIR) + "/" + name;
  std::filesystem::remove_all(d);
  return d;
}

void check_svg(const std::string& path, const std::vector<std::string>& must_contain) {
  std::string why;
  CHECK_MESSAGE(example_test::well_formed_svg(path, must_contain, &why), why);
}

}  // namespace

// Reversal of length-4 strings over 8 symbols (guessing: 8^-4 = 2.4e-4 per string) and a
// character LM on the built-in essay, with a one-layer, two-head Transformer of width 32.
// Measured with these flags, seeds 1..4: both reversal models reach 100% sequence accuracy
// within 150 steps, the Transformer's most mirror-like head puts 99.8% of its attention on
// the mirrored position (uniform: 16%), and after 150 LM steps the validation loss is
// 2.61-2.63 nats (Transformer) and 2.68-2.76 (LSTM) against ln|V| = 3.89. The bars below
// leave 20 points of accuracy and 0.4 nats of loss to spare.
TEST_CASE("transformer: both models learn reversal and the character LM; figures are well-formed") {
  const std::string dir = out_dir("transformer");
  const example_test::Run r = example_test::run(
      "transformer",
      "--len 4 --symbols 8 --rev-steps 150 --test 200 --rev-eval-every 50 --lm-steps 150 --lm-batch 16 "
      "--lm-seq 32 --eval-every 50 --d-model 32 --heads 2 --layers 1 --ff 64 --rnn-hidden 32 "
      "--rnn-embed 16 --seed 1 --json --out " +
          dir);
  REQUIRE(r.exit_code == 0);
  REQUIRE_FALSE(r.json.empty());
  using example_test::number;
  // (a) reversal: far above chance for both; the Transformer found the mirror.
  CHECK(number(r.json, "chance_sequence_accuracy") < 1e-3);
  CHECK(number(r.json, "rev_tf_sequence_accuracy") > 0.8);
  CHECK(number(r.json, "rev_tf_token_accuracy") > 0.9);
  CHECK(number(r.json, "rev_lstm_sequence_accuracy") > 0.5);
  CHECK(number(r.json, "rev_tf_final_loss") < 0.1 * number(r.json, "rev_tf_initial_loss"));
  CHECK(number(r.json, "rev_tf_mirror_attention") > 0.5);
  CHECK(number(r.json, "rev_tf_mirror_attention") > 3 * number(r.json, "uniform_mirror_attention"));
  CHECK(number(r.json, "rev_tf_sequences_per_s") > 0);
  // (b) character LM: both start near ln|V| (a uniform guess) and end well below it.
  const double ln_v = number(r.json, "lm_ln_vocab");
  CHECK(ln_v == doctest::Approx(std::log(number(r.json, "lm_vocab"))));
  for (const std::string m : {"lm_tf", "lm_lstm"}) {
    CAPTURE(m);
    CHECK(std::abs(number(r.json, m + "_initial_val_loss") - ln_v) < 0.5);
    CHECK(number(r.json, m + "_val_loss") < 0.8 * ln_v);
    CHECK(number(r.json, m + "_val_bpc") == doctest::Approx(number(r.json, m + "_val_loss") / std::log(2.0)));
    CHECK(number(r.json, m + "_chars_per_s") > 0);
  }
  // The LSTM's hidden size was chosen to match the Transformer's parameter count (within 5%).
  CHECK(std::abs(number(r.json, "lm_lstm_params") / number(r.json, "lm_tf_params") - 1) < 0.05);
  // Figures: loss curves of both models, the accuracy curves, one heatmap per head.
  check_svg(dir + "/reversal_loss.svg", {"<polyline", "LSTM train", "Transformer train"});
  check_svg(dir + "/reversal_accuracy.svg", {"<polyline", "sequence accuracy"});
  check_svg(dir + "/lm_loss.svg", {"<polyline", "LSTM validation", "Transformer validation", "log2|V|", "bits per character"});
  for (const std::string f : {"reversal_attention_l1_h1", "reversal_attention_l1_h2"})
    check_svg(dir + "/" + f + ".svg", {"<rect", "reversal, layer 1 head", "&lt;s&gt;"});
  for (const std::string f : {"lm_attention_l1_h1", "lm_attention_l1_h2"})
    check_svg(dir + "/" + f + ".svg", {"<rect", "char LM, layer 1 head"});
  CHECK_FALSE(std::filesystem::exists(dir + "/reversal_attention_l1_h3.svg"));  // two heads, two heatmaps
}

TEST_CASE("transformer: a width the heads do not divide is rejected") {
  const example_test::Run r =
      example_test::run("transformer", "--d-model 30 --heads 4 --out " + out_dir("transformer_bad"));
  CHECK(r.exit_code == 1);
  CHECK(r.json.empty());
}

// Pretraining on 3000 generated sentences, fine-tuning a two-layer encoder of width 32 on
// 1000 labelled toy sentences. Measured with these flags, seeds 1..3: the held-out
// masked-token loss falls from 3.98-4.03 to 1.90-1.97 nats, and the test accuracy after
// fine-tuning is 79-96% (pretrained) and 87-90% (scratch) against a majority class of
// 52-56%. The bars leave more than 10 points (accuracy) and 0.35 nats (loss) to spare.
TEST_CASE("bert_toy: the masked-token loss falls and fine-tuning beats the majority class") {
  const std::string dir = out_dir("bert_toy");
  const example_test::Run r = example_test::run(
      "bert_toy",
      "--corpus-size 3000 --pt-steps 200 --pt-batch 32 --labelled 1000 --ft-steps 300 --ft-lr 3e-3 "
      "--ft-dropout 0 --seeds 1 --eval-every 100 --d-model 32 --heads 2 --layers 2 --ff 64 --toy-test 200 "
      "--seed 1 --json --out " +
          dir);
  REQUIRE(r.exit_code == 0);
  REQUIRE_FALSE(r.json.empty());
  using example_test::number;
  // Pretraining: starts near a uniform guess over the words, learns most of the corpus.
  CHECK(std::abs(number(r.json, "pretrain_heldout_initial") - number(r.json, "ln_words")) < 0.6);
  CHECK(number(r.json, "pretrain_heldout_final") < 0.6 * number(r.json, "pretrain_heldout_initial"));
  CHECK(number(r.json, "pretrain_final_loss") < 0.65 * number(r.json, "pretrain_initial_loss"));
  // Fine-tuning: both starts classify far better than the majority class.
  const double majority = number(r.json, "majority");
  CHECK(majority < 0.6);
  CHECK(number(r.json, "pretrained_accuracy") > majority + 0.15);
  CHECK(number(r.json, "scratch_accuracy") > majority + 0.15);
  CHECK(number(r.json, "gain") ==
        doctest::Approx(number(r.json, "pretrained_accuracy") - number(r.json, "scratch_accuracy")));
  check_svg(dir + "/pretrain_loss.svg", {"<polyline", "held-out", "masked-token pretraining"});
  check_svg(dir + "/finetune_accuracy.svg", {"<polyline", "pretrained", "scratch", "majority class"});
}

// --runs N repeats the whole run (corpus, pool, pretraining) for --seed .. --seed+N-1: its
// summary must be made of exactly what the single runs give (a tiny, quick configuration;
// what it learns is not the point here).
TEST_CASE("bert_toy: --runs 2 summarises the runs --seed 1 and --seed 2 exactly") {
  const std::string dir = out_dir("bert_toy_runs");
  const std::string flags =
      "--corpus-size 400 --pt-steps 10 --pt-batch 16 --labelled 40 --ft-steps 10 --seeds 2 --eval-every 5 "
      "--d-model 16 --heads 2 --layers 1 --ff 32 --toy-test 60 --json --out " +
      dir;
  const example_test::Run a = example_test::run("bert_toy", flags + " --seed 1");
  const example_test::Run b = example_test::run("bert_toy", flags + " --seed 2");
  const example_test::Run r = example_test::run("bert_toy", flags + " --seed 1 --runs 2");
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  REQUIRE(r.exit_code == 0);
  REQUIRE_FALSE(r.json.empty());
  using example_test::number;
  for (const char* what : {"pretrained", "scratch"}) {
    const double x = number(a.json, std::string(what) + "_accuracy"), y = number(b.json, std::string(what) + "_accuracy");
    CHECK(number(r.json, std::string(what) + "_min") == doctest::Approx(std::min(x, y)));
    CHECK(number(r.json, std::string(what) + "_max") == doctest::Approx(std::max(x, y)));
    CHECK(number(r.json, std::string(what) + "_median") == doctest::Approx(0.5 * (x + y)));
  }
  const double ga = number(a.json, "gain"), gb = number(b.json, "gain");
  CHECK(number(r.json, "gain_min") == doctest::Approx(std::min(ga, gb)));
  CHECK(number(r.json, "gain_max") == doctest::Approx(std::max(ga, gb)));
  CHECK(number(r.json, "runs_with_gain") == (ga > 0) + (gb > 0));
  CHECK(number(r.json, "pairs") == 4);
  CHECK(number(r.json, "pairs_with_gain") ==
        number(a.json, "pretrained_wins") + number(b.json, "pretrained_wins"));
}

TEST_CASE("bert_toy: a missing SST folder is an error (exit 1, no result line)") {
  const std::string dir = out_dir("bert_toy_missing");
  const example_test::Run r = example_test::run("bert_toy", "--sst " + dir + "/nowhere --out " + dir);
  CHECK(r.exit_code == 1);
  CHECK(r.json.empty());
}
