// Transformer LM train step vs an LSTM LM of equal width, measured the same way as
// bench/reference.py's `transformer` workload measures torch.nn.TransformerEncoder and
// nn.LSTM, so bench/run_all.sh can print side-by-side ratios.
//
//   build/bench/bench_transformer [--json] [--quick] [--threads N] [--steps N] [--batch B] [--seq T]
//
// The model is examples/transformer.cpp's character LM at its defaults: TransformerLM with
// V 49 (the example's vocabulary on its built-in essay), d_model 64, 4 heads, 2 layers,
// feed-forward 256, GELU, pre-norm, learned positions, final LayerNorm, dropout 0, causal
// mask, B 16 windows of T 64 characters. The LSTM of equal width: Embedding(V, 64) ->
// LSTM(64, 64) -> Linear(64, V) on the same B and T. One train step: forward,
// cross-entropy, backward, clip_grad_norm 1.0, Adam. Reported: the best ms/step of
// --steps steps (after one warm-up step), tokens/s = B T / that time, and the Transformer
// step over the LSTM step.
#include <unroll.h>

#include "lm.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace unroll;

namespace {

struct Args {
  bool json = false;
  int threads = 1;
  int steps = 10;
  int64_t batch = 16;
  int64_t seq = 64;
};

constexpr int64_t kVocab = 49, kWidth = 64;

void report(const Args& a, const std::string& name, double value, const char* unit) {
  if (a.json) fmt::print("{{\"name\": \"{}\", \"value\": {:.4f}, \"unit\": \"{}\"}}\n", name, value, unit);
  else fmt::print("{:<44} {:>12.3f} {}\n", name, value, unit);
  std::fflush(stdout);
}


using unroll_bench::best_ms;

Tensor random_tokens(const Shape& shape, Generator& gen) {
  std::vector<int64_t> ids(static_cast<size_t>(shape.numel()));
  for (auto& v : ids) v = gen.randint(0, kVocab);
  return indices(ids, shape);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") a.json = true;
    else if (arg == "--quick") a.steps = 3;
    else if (arg == "--threads" && i + 1 < argc) a.threads = std::stoi(argv[++i]);
    else if (arg == "--steps" && i + 1 < argc) a.steps = std::stoi(argv[++i]);
    else if (arg == "--batch" && i + 1 < argc) a.batch = std::stoll(argv[++i]);
    else if (arg == "--seq" && i + 1 < argc) a.seq = std::stoll(argv[++i]);
    else if (arg == "--help") {
      fmt::print("usage: bench_transformer [--json] [--quick] [--threads N] [--steps N] [--batch B] [--seq T]\n"
                 "  train step of the transformer example's char-LM vs an LSTM LM of equal width\n"
                 "  (see the top of bench/bench_transformer.cpp)\n");
      return 0;
    } else {
      fmt::print(stderr, "bench_transformer: unknown argument '{}' (try --help)\n", arg);
      return 2;
    }
  }
  UNROLL_CHECK(a.steps > 0 && a.batch > 0 && a.seq > 1, "bench_transformer: --steps, --batch, --seq must be positive");
  set_num_threads(a.threads);
  const int64_t B = a.batch, T = a.seq;
  const double tokens = static_cast<double>(B * T);
  Generator gen(1);

  manual_seed(0);
  TransformerLM tf({.vocab_size = kVocab,
                    .d_model = kWidth,
                    .nhead = 4,
                    .num_layers = 2,
                    .dim_feedforward = 256,
                    .max_len = T,
                    .dropout = 0.0,
                    .learned_positions = true});
  optim::Adam tf_opt(tf.parameters(), 5e-3);
  const Tensor x_bt = random_tokens({B, T}, gen), y_bt = random_tokens({B * T}, gen);
  const double tf_ms = best_ms(a.steps, [&] {
    tf_opt.zero_grad();
    Variable logits = tf(x_bt);  // [B,T,V]
    cross_entropy(reshape(logits, {-1, kVocab}), y_bt).backward();
    clip_grad_norm(tf.parameters(), 1.0);
    tf_opt.step();
  });

  manual_seed(0);
  unroll_bench::LanguageModel lstm(unroll_bench::Kind::Lstm, kVocab, kWidth, kWidth);
  optim::Adam lstm_opt(lstm.parameters(), 3e-3);
  const Tensor x_tb = random_tokens({T, B}, gen), y_tb = random_tokens({T * B}, gen);
  const double lstm_ms = best_ms(a.steps, [&] {
    lstm_opt.zero_grad();
    cross_entropy(lstm.forward(x_tb), y_tb).backward();
    clip_grad_norm(lstm.parameters(), 1.0);
    lstm_opt.step();
  });

  const std::string tf_name = fmt::format("transformer_lm_b{}_t{}", B, T);
  const std::string lstm_name = fmt::format("lstm_lm_h{}_b{}_t{}", kWidth, B, T);
  report(a, tf_name, tf_ms, "ms/step");
  report(a, tf_name + "_tokens_per_s", tokens / tf_ms * 1e3, "tokens/s");
  report(a, lstm_name, lstm_ms, "ms/step");
  report(a, lstm_name + "_tokens_per_s", tokens / lstm_ms * 1e3, "tokens/s");
  report(a, fmt::format("transformer_over_lstm_b{}_t{}", B, T), tf_ms / lstm_ms, "x");
  return 0;
}
