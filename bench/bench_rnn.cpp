// Recurrent training benchmarks: whole train steps (forward, backward, clip_grad_norm 1.0,
// Adam step) of small language models built from the public nn modules, measured the same
// way as bench/reference.py measures PyTorch (nn.LSTM/GRU/RNN), so bench/run_all.sh can
// print side-by-side ratios.
//
//   build/bench/bench_rnn [--json] [--quick] [--workload PREFIX] [--threads N]
//                         [--steps N] [--text ../shared/data/ptb/valid.txt]
//
// Workloads (names; "ms/step" is the best step of several, words/s the mean over a fixed
// set of minibatches):
//   charlm_{lstm,gru,rnn}_b32_h256   char-LM: V 65, embedding 64, hidden 256, B 32, T 64
//   charlm_{lstm,gru,rnn}_b1_h64     the same at B 1, hidden 64, T 100
//   wordlm_mb{64,16,1}               word LM like DyNet's rnnlm-batch: embedding 128, LSTM
//                                    256, Adam 1e-3, length-sorted minibatches, padding
//                                    masked (lengths + ignore_index), words per second
//   scaling_lstm_t{100,1000,10000}   char-LM LSTM, B 8, hidden 128: ms/step, and the peak
//                                    tensor bytes per time step vs what backward needs
//   threads_lstm_b32_h512_t{1,2}     char-LM LSTM, B 32, hidden 512: 1 vs 2 threads
//
// Every char-LM workload also reports its matrix FLOP per train step (<name>_gflop), the
// rate the whole step achieves (<name>_gflops: those FLOP over the step's time, so every
// non-GEMM cost counts against it) and that rate as a fraction of one core's FMA peak
// (<name>_peak_fraction; fma_peak is measured once, by bench/fma_peak.h's loop).
#include <unroll.h>

#include "fma_peak.h"
#include "lm.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace unroll;
using optim::Adam;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  bool json = false;
  bool quick = false;
  std::string workload;  // prefix filter; empty: all
  std::string text;      // word-LM corpus; empty: generated
  int threads = 1;
  int steps = 0;  // timed steps per recurrent workload; 0: the default (5, or 2 with --quick)
};

void report(const Args& a, const std::string& name, double value, const char* unit) {
  if (a.json) fmt::print("{{\"name\": \"{}\", \"value\": {:.4f}, \"unit\": \"{}\"}}\n", name, value, unit);
  else fmt::print("{:<36} {:>12.3f} {}\n", name, value, unit);
  std::fflush(stdout);
}

bool selected(const Args& a, const std::string& name) {
  return a.workload.empty() || a.workload == "all" || name.rfind(a.workload, 0) == 0;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

using unroll_bench::Kind;
using unroll_bench::kind_name;
using unroll_bench::LanguageModel;

/// One train step: forward, cross-entropy, backward, clip_grad_norm 1.0, Adam.
void train_step(LanguageModel& model, Adam& opt, const Tensor& idx, const Tensor& targets,
                const std::vector<int64_t>& lengths = {}) {
  opt.zero_grad();
  Variable loss = cross_entropy(model.forward(idx, lengths), targets);
  loss.backward();
  clip_grad_norm(model.parameters(), 1.0);
  opt.step();
}

/// Random char-LM batch: idx [T,B] and targets [T*B] in 0..V-1.
std::pair<Tensor, Tensor> char_batch(int64_t T, int64_t B, int64_t V, Generator& gen) {
  std::vector<int64_t> ids(static_cast<size_t>(T * B)), tg(static_cast<size_t>(T * B));
  for (auto& v : ids) v = gen.randint(0, V);
  for (auto& v : tg) v = gen.randint(0, V);
  return {indices(ids, {T, B}), indices(tg, {T * B})};
}

/// Matrix FLOP of one char-LM train step (V 65, E 64): the forward's products, x W_ih^T and
/// h W_hh^T for the G gate blocks of every step and the [T*B,H] x [H,V] head, each 2 m n k;
/// backward does two products of the same size per forward product (dX and dW), so the
/// step is 3x the forward. The embedding lookup, elementwise work, clipping and Adam add
/// time but no matrix FLOP.
double charlm_flop(Kind kind, int64_t B, int64_t H, int64_t T) {
  const double G = kind == Kind::Lstm ? 4 : kind == Kind::Gru ? 3 : 1, E = 64, V = 65;
  const double rows = static_cast<double>(T * B), h = static_cast<double>(H);
  const double forward = 2 * rows * (E + h) * G * h + 2 * rows * h * V;
  return 3 * forward;
}

/// Best ms per train step of the char-LM over `steps` steps (after one warm-up step).
double charlm_ms(Kind kind, int64_t B, int64_t H, int64_t T, int steps) {
  manual_seed(0);
  LanguageModel model(kind, 65, 64, H);
  Adam opt(model.parameters(), 1e-3);
  Generator gen(1);
  auto [idx, targets] = char_batch(T, B, 65, gen);
  return unroll_bench::best_ms(steps, [&] { train_step(model, opt, idx, targets); });
}

// ---- word LM ---------------------------------------------------------------------------------

using Sentence = std::vector<std::string>;

/// The corpus: one sentence per non-empty line of `path`, or, without a path, 2,000
/// sentences of 5..40 words "w0".."w4999" from a 64-bit LCG (reference.py makes the same).
std::vector<Sentence> load_corpus(const std::string& path) {
  std::vector<Sentence> out;
  if (!path.empty()) {
    std::ifstream in(path);
    UNROLL_CHECK(in.good(), "bench_rnn: cannot open '{}'", path);
    std::string line, w;
    while (std::getline(in, line)) {
      std::istringstream ss(line);
      Sentence s;
      while (ss >> w) s.push_back(w);
      if (!s.empty()) out.push_back(std::move(s));
    }
    return out;
  }
  uint64_t x = 12345;
  auto next = [&x] {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x >> 33;
  };
  for (int i = 0; i < 2000; ++i) {
    Sentence s;
    const auto len = static_cast<int>(5 + next() % 36);
    for (int k = 0; k < len; ++k) s.push_back(fmt::format("w{}", next() % 5000));
    out.push_back(std::move(s));
  }
  return out;
}

struct WordData {
  std::vector<std::vector<int64_t>> sents;  // <s> w1 .. wn </s>, sorted by length (stable)
  int64_t vocab = 0;
};

/// Vocabulary in order of first appearance after <s> = 0 and </s> = 1.
WordData prepare_words(const std::vector<Sentence>& corpus) {
  std::map<std::string, int64_t> ids{{"<s>", 0}, {"</s>", 1}};
  WordData d;
  int64_t next_id = 2;
  for (const Sentence& s : corpus) {
    std::vector<int64_t> v{0};
    for (const std::string& w : s) {
      auto [it, fresh] = ids.try_emplace(w, next_id);
      if (fresh) ++next_id;
      v.push_back(it->second);
    }
    v.push_back(1);
    d.sents.push_back(std::move(v));
  }
  d.vocab = next_id;
  std::stable_sort(d.sents.begin(), d.sents.end(),
                   [](const auto& a, const auto& b) { return a.size() < b.size(); });
  return d;
}

/// Minibatch i of `count` picked evenly from the length-sorted minibatches of size mb:
/// idx [T,B] (inputs w_0..w_{n-1}, padded with 1), targets [T*B] (w_1..w_n, -100 at padding),
/// lengths [B]; returns the number of target words.
int64_t word_batch(const WordData& d, int64_t mb, int i, int count, Tensor& idx, Tensor& targets,
                   std::vector<int64_t>& lengths) {
  const int64_t n_batches = static_cast<int64_t>(d.sents.size()) / mb;
  const int64_t first = (static_cast<int64_t>(i) * n_batches / count) * mb;
  int64_t T = 0;
  for (int64_t b = 0; b < mb; ++b) T = std::max<int64_t>(T, static_cast<int64_t>(d.sents[static_cast<size_t>(first + b)].size()) - 1);
  std::vector<int64_t> in(static_cast<size_t>(T * mb), 1), tg(static_cast<size_t>(T * mb), -100);
  lengths.assign(static_cast<size_t>(mb), 0);
  int64_t words = 0;
  for (int64_t b = 0; b < mb; ++b) {
    const auto& s = d.sents[static_cast<size_t>(first + b)];
    const auto n = static_cast<int64_t>(s.size()) - 1;
    lengths[static_cast<size_t>(b)] = n;
    for (int64_t t = 0; t < n; ++t) {
      in[static_cast<size_t>(t * mb + b)] = s[static_cast<size_t>(t)];
      tg[static_cast<size_t>(t * mb + b)] = s[static_cast<size_t>(t + 1)];
    }
    words += n;
  }
  idx = indices(in, {T, mb});
  targets = indices(tg, {T * mb});
  return words;
}

double wordlm_words_per_s(const WordData& d, int64_t mb, int count) {
  manual_seed(0);
  LanguageModel model(Kind::Lstm, d.vocab, 128, 256);
  Adam opt(model.parameters(), 1e-3);
  Tensor idx, targets;
  std::vector<int64_t> lengths;
  word_batch(d, mb, 0, count, idx, targets, lengths);
  train_step(model, opt, idx, targets, lengths);  // warm-up
  int64_t words = 0;
  double secs = 0;
  for (int i = 0; i < count; ++i) {
    words += word_batch(d, mb, i, count, idx, targets, lengths);
    const auto t0 = Clock::now();
    train_step(model, opt, idx, targets, lengths);
    secs += seconds_since(t0);
  }
  return static_cast<double>(words) / secs;
}

// ---- scaling ---------------------------------------------------------------------------------

/// One char-LM LSTM step at B 8, H 128: {ms, peak tensor bytes above the resting state}.
std::pair<double, double> scaling_step(int64_t T, int reps) {
  manual_seed(0);
  LanguageModel model(Kind::Lstm, 65, 64, 128);
  Adam opt(model.parameters(), 1e-3);
  Generator gen(1);
  auto [idx, targets] = char_batch(T, 8, 65, gen);
  train_step(model, opt, idx, targets);
  double best = 1e30, peak = 0;
  for (int r = 0; r < reps; ++r) {
    const int64_t resting = memory_stats().live_bytes;
    reset_peak_memory();
    const auto t0 = Clock::now();
    train_step(model, opt, idx, targets);
    best = std::min(best, seconds_since(t0) * 1e3);
    peak = static_cast<double>(memory_stats().peak_bytes - resting);
  }
  return {best, peak};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") a.json = true;
    else if (arg == "--quick") a.quick = true;
    else if (arg == "--workload" && i + 1 < argc) a.workload = argv[++i];
    else if (arg == "--text" && i + 1 < argc) a.text = argv[++i];
    else if (arg == "--threads" && i + 1 < argc) a.threads = std::stoi(argv[++i]);
    else if (arg == "--steps" && i + 1 < argc) a.steps = std::stoi(argv[++i]);
    else if (arg == "--help") {
      fmt::print("usage: bench_rnn [--json] [--quick] [--workload PREFIX] [--threads N] [--steps N] [--text FILE]\n"
                 "  train-step benchmarks of char-level and word-level RNN/LSTM/GRU language models\n"
                 "  (see the top of bench/bench_rnn.cpp for the workloads)\n");
      return 0;
    } else {
      fmt::print(stderr, "bench_rnn: unknown argument '{}' (try --help)\n", arg);
      return 2;
    }
  }
  set_num_threads(a.threads);
  const int steps = a.steps > 0 ? a.steps : a.quick ? 2 : 5;

  double fma_peak = 0;  // GFLOP/s of one core's FMA loop, measured once if a char-LM workload runs
  auto charlm = [&](const std::string& name, Kind k, int64_t B, int64_t H, int64_t T, int n) {
    const double ms = charlm_ms(k, B, H, T, n);
    report(a, name, ms, "ms/step");
    if (fma_peak == 0) {
      fma_peak = unroll_bench::measure_peak(10);  // best of 10: a busy core reads low
      report(a, "fma_peak", fma_peak, "GFLOP/s");
    }
    const double flop = charlm_flop(k, B, H, T), rate = flop / (ms * 1e-3) * 1e-9;
    report(a, name + "_gflop", flop * 1e-9, "GFLOP");
    report(a, name + "_gflops", rate, "GFLOP/s");
    if (fma_peak > 0) report(a, name + "_peak_fraction", rate / (fma_peak * num_threads()), "x");
  };
  for (Kind k : {Kind::Lstm, Kind::Gru, Kind::Rnn}) {
    const std::string name = fmt::format("charlm_{}_b32_h256", kind_name(k));
    if (selected(a, name)) charlm(name, k, 32, 256, 64, steps);
  }
  for (Kind k : {Kind::Lstm, Kind::Gru, Kind::Rnn}) {
    const std::string name = fmt::format("charlm_{}_b1_h64", kind_name(k));
    if (selected(a, name)) charlm(name, k, 1, 64, 100, steps * 4);
  }

  if (selected(a, "wordlm_mb64") || selected(a, "wordlm_mb16") || selected(a, "wordlm_mb1")) {
    const WordData d = prepare_words(load_corpus(a.text));
    for (int64_t mb : {64, 16, 1}) {
      const std::string name = fmt::format("wordlm_mb{}", mb);
      if (!selected(a, name)) continue;
      const int count = mb == 64 ? (a.quick ? 2 : 6) : mb == 16 ? (a.quick ? 4 : 16) : (a.quick ? 30 : 150);
      report(a, name, wordlm_words_per_s(d, mb, count), "words/s");
    }
  }

  for (int64_t T : {100, 1000, 10000}) {
    const std::string name = fmt::format("scaling_lstm_t{}", T);
    if (!selected(a, name)) continue;
    auto [ms, peak] = scaling_step(T, T >= 10000 ? 1 : a.quick ? 1 : 3);
    report(a, name, ms, "ms/step");
    report(a, fmt::format("{}_peak_bytes_per_t", name), peak / static_cast<double>(T), "bytes");
    // What backward must keep per time step of this model (float32, B 8, E 64, H 128,
    // V 65): the step's input x_t [B,E], h_{t-1} and c_{t-1} [B,H], the four gate
    // activations [B,4H], tanh(c_t) [B,H], and the log-softmax row block [B,V].
    const double needed = 8.0 * (64 + 128 + 128 + 4 * 128 + 128 + 65) * 4.0;
    report(a, fmt::format("{}_peak_over_needed", name), peak / static_cast<double>(T) / needed, "x");
  }

  for (int t : {1, 2}) {
    const std::string name = fmt::format("threads_lstm_b32_h512_t{}", t);
    if (!selected(a, name)) continue;
    set_num_threads(t);
    charlm(name, Kind::Lstm, 32, 512, 64, steps);
    set_num_threads(a.threads);
  }
  return 0;
}
