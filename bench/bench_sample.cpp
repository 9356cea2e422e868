// Autoregressive sampling benchmark (issue #16): tokens per second of sampling from the
// char-LM LSTM with gradients off, one token at a time, the way a generator loop runs it.
//
//   build/bench/bench_sample [--json] [--quick] [--tokens N] [--threads N]
//
// Workloads (bench/reference.py --workload sample measures the same on PyTorch):
//   sample_lstm_b1_h64    V 65, E 64, H 64, B 1: embed one token, one LSTMCell step,
//   sample_lstm_b1_h256   linear head, softmax, draw the next token from a seeded Generator
// The value is the best of 3 runs of N tokens (default 2000; 500 with --quick), tokens/s.
#include <unroll.h>

#include <chrono>
#include <cstring>
#include <string>

using namespace unroll;
using Clock = std::chrono::steady_clock;

namespace {

/// One draw from the categorical distribution p (a [1,V] probability row) by inverting its CDF.
int64_t draw(const Tensor& p, Generator& gen) {
  const float* q = p.data<float>();
  const int64_t V = p.numel();
  const double u = gen.uniform();
  double acc = 0;
  for (int64_t i = 0; i < V; ++i) {
    acc += q[i];
    if (u < acc) return i;
  }
  return V - 1;
}

/// Tokens per second of sampling `tokens` characters, state carried from step to step.
double tokens_per_s(int64_t V, int64_t E, int64_t H, int64_t tokens) {
  manual_seed(0);
  Embedding emb(V, E);
  LSTMCell cell(E, H);
  Linear head(H, V);
  NoGradGuard no_grad;
  Generator gen(1234);
  Variable h(zeros({1, H})), c(zeros({1, H}));
  int64_t tok = 0, checksum = 0;
  const auto t0 = Clock::now();
  for (int64_t t = 0; t < tokens; ++t) {
    const Variable x = emb(indices({tok}));  // [1,E]
    std::tie(h, c) = cell.forward(x, h, c);
    const Variable probs = softmax(head(h), 1);  // [1,V]
    tok = draw(probs.data(), gen);
    checksum += tok;
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (checksum < 0) std::abort();  // keeps the loop observable
  return static_cast<double>(tokens) / s;
}

}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  int64_t tokens = 2000;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") json = true;
    else if (arg == "--quick") tokens = 500;
    else if (arg == "--tokens" && i + 1 < argc) tokens = std::stoll(argv[++i]);
    else if (arg == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else {
      fmt::print("usage: bench_sample [--json] [--quick] [--tokens N] [--threads N]\n"
                 "  tokens/s of autoregressive sampling from the char-LM LSTM at B=1 (no grad)\n");
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }
  set_num_threads(threads);
  for (const int64_t H : {int64_t{64}, int64_t{256}}) {
    double best = 0;
    tokens_per_s(65, 64, H, tokens / 10 + 1);  // warm-up: pools, caches
    for (int rep = 0; rep < 3; ++rep) best = std::max(best, tokens_per_s(65, 64, H, tokens));
    const std::string name = "sample_lstm_b1_h" + std::to_string(H);
    if (json) fmt::print("{{\"name\": \"{}\", \"value\": {:.4f}, \"unit\": \"tokens/s\"}}\n", name, best);
    else fmt::print("{:<36} {:>12.1f} tokens/s\n", name, best);
  }
  return 0;
}
