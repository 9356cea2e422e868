#pragma once
// Soak runs: long training loops that watch memory. Shared by the `soak` program
// (tools/soak.cpp) and its CI-sized test (tests/test_soak.cpp), which runs them in-process.
//
//   char_lm  a character-level LSTM language model (Embedding -> LSTM -> Linear) trained
//            with truncated BPTT over B parallel streams of a text, for `steps` chunks
//   tbptt    one noisy two-tone sine of `length` steps, read once from start to end in
//            chunks of T with the LSTM state carried across (detach), predicting x_{t+1}
//
// Every `sample_every` steps (chunks) a sample records the resident set size (RSS, from
// /proc/self/statm), live_nodes() and memory_stats(). After the warm-up, a steady training
// loop must hold all three flat:
//   - live_nodes() and memory_stats().live_bytes are exact counts at step boundaries: any
//     growth at all is a leak (a graph kept alive, a tensor cached per step);
//   - RSS is noisy (malloc arenas, page-cache effects), so it may grow by at most
//     rss_tolerance_bytes (default 4 MiB) + rss_tolerance_fraction (default 2%) of the
//     first RSS after the warm-up.
#include <unroll.h>

#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/recurrent.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <numbers>
#include <numeric>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace unroll::soak {

/// Resident set size of this process in bytes (/proc/self/statm; 0 where unavailable).
inline int64_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<int64_t>(resident) * static_cast<int64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

struct Options {
  std::string mode = "char_lm";  ///< char_lm | tbptt
  int64_t steps = 10000;         ///< char_lm: training steps (chunks of B x T characters)
  int64_t length = 100000;       ///< tbptt: time steps of the sequence
  std::string text_path;         ///< char_lm: training text (default: a built-in paragraph)
  int64_t batch = 16;            ///< char_lm: parallel streams B (tbptt uses one stream)
  int64_t seq = 32;              ///< characters / time steps per chunk T
  int64_t embed = 16;            ///< char_lm: embedding size E
  int64_t hidden = 64;           ///< H
  double lr = 3e-3;              ///< Adam learning rate
  double clip = 1.0;             ///< gradient norm clipping
  int64_t sample_every = 100;    ///< steps (chunks) between memory samples
  int64_t warmup = -1;           ///< steps (chunks) before the flat-memory checks; -1: 10% (>= 2 samples)
  int64_t rss_tolerance_bytes = int64_t{4} << 20;
  double rss_tolerance_fraction = 0.02;
  uint64_t seed = 0;
};

struct Sample {
  int64_t step = 0;        ///< after this many steps (chunks)
  int64_t rss = 0;         ///< bytes
  int64_t live_nodes = 0;  ///< unroll::live_nodes()
  int64_t pool_live = 0;   ///< memory_stats().live_bytes
  double loss = 0;         ///< mean loss of the steps since the previous sample
};

struct Report {
  std::string mode;
  int64_t steps = 0;        ///< training steps (chunks) run
  int64_t time_steps = 0;   ///< recurrent time steps processed (steps x T, per stream)
  int64_t warmup = 0;       ///< steps before the checks
  double seconds = 0;
  double loss_start = NAN;  ///< mean loss of the first sample window
  double loss_end = NAN;    ///< mean loss of the last sample window
  int64_t rss_first = 0, rss_last = 0, rss_max = 0;  ///< after the warm-up
  int64_t rss_limit = 0;                             ///< rss_first + tolerance
  int64_t nodes_first = 0, nodes_last = 0, nodes_max = 0;
  int64_t pool_first = 0, pool_last = 0, pool_max = 0;
  int64_t pool_peak = 0;  ///< memory_stats().peak_bytes over the whole run
  std::vector<Sample> samples;

  bool rss_ok() const { return rss_max <= rss_limit; }
  bool nodes_ok() const { return nodes_max == nodes_first && nodes_last == nodes_first; }
  bool pool_ok() const { return pool_max == pool_first && pool_last == pool_first; }
  bool loss_ok() const { return loss_end < loss_start; }
  bool ok() const { return rss_ok() && nodes_ok() && pool_ok() && loss_ok(); }
};

/// Called after each sample (for a progress line).
using OnSample = std::function<void(const Sample&, const Options&)>;

namespace detail {

// An original paragraph, the corpus when no --text is given.
constexpr const char* kText =
    "A soak test runs the same loop for a long time and watches what it leaves behind. Every step of "
    "training builds a graph of a few thousand small nodes, walks it backwards, and lets it go. If one "
    "node in a thousand were kept by mistake, or one buffer per step were cached and never reused, the "
    "program would not fail at once: it would grow, slowly, until a long run on a small machine ran out "
    "of memory in the middle of the night. So we count. We count the nodes that are alive between "
    "steps, we count the bytes that tensors hold, and we ask the operating system how many pages the "
    "process owns. After a short warm-up, while the pools fill and the caches settle, all three numbers "
    "must stay flat for as long as the loop runs. The model itself is a small character model: it reads "
    "this paragraph again and again, one chunk at a time, carrying its memory from one chunk to the "
    "next and cutting the graph at every border, and it slowly learns to spell the words it reads.\n";

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(fmt::format("soak: cannot open text file '{}'", path));
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (s.empty()) throw Error(fmt::format("soak: text file '{}' is empty", path));
  return s;
}

/// Samples memory after `step`, and folds the samples into the report at the end.
class Monitor {
public:
  Monitor(const Options& opt, int64_t total, OnSample on_sample)
      : opt_(opt), on_sample_(std::move(on_sample)) {
    report_.mode = opt.mode;
    const int64_t every = std::max<int64_t>(1, opt.sample_every);
    report_.warmup = opt.warmup >= 0 ? opt.warmup : std::max<int64_t>(total / 10, every);
    reset_peak_memory();
  }
  void add_loss(double loss) {
    window_sum_ += loss;
    ++window_n_;
  }
  void sample(int64_t step) {
    Sample s{step, rss_bytes(), live_nodes(), memory_stats().live_bytes,
             window_n_ ? window_sum_ / static_cast<double>(window_n_) : NAN};
    window_sum_ = 0;
    window_n_ = 0;
    report_.samples.push_back(s);
    if (on_sample_) on_sample_(s, opt_);
  }
  Report finish(int64_t steps, int64_t time_steps, double seconds) {
    Report r = std::move(report_);
    r.steps = steps;
    r.time_steps = time_steps;
    r.seconds = seconds;
    r.pool_peak = memory_stats().peak_bytes;
    if (!r.samples.empty()) {
      r.loss_start = r.samples.front().loss;
      r.loss_end = r.samples.back().loss;
    }
    bool first = true;
    for (const Sample& s : r.samples) {
      if (s.step < r.warmup) continue;
      if (first) {
        r.rss_first = r.rss_max = s.rss;
        r.nodes_first = r.nodes_max = s.live_nodes;
        r.pool_first = r.pool_max = s.pool_live;
        first = false;
      }
      r.rss_max = std::max(r.rss_max, s.rss);
      r.nodes_max = std::max(r.nodes_max, s.live_nodes);
      r.pool_max = std::max(r.pool_max, s.pool_live);
      r.rss_last = s.rss;
      r.nodes_last = s.live_nodes;
      r.pool_last = s.pool_live;
    }
    r.rss_limit = r.rss_first + opt_.rss_tolerance_bytes +
                  static_cast<int64_t>(opt_.rss_tolerance_fraction * static_cast<double>(r.rss_first));
    return r;
  }

private:
  const Options& opt_;
  OnSample on_sample_;
  Report report_;
  double window_sum_ = 0;
  int64_t window_n_ = 0;
};

inline void check_options(const Options& o) {
  UNROLL_CHECK(o.steps > 0 && o.length > 1 && o.batch > 0 && o.seq > 0 && o.embed > 0 && o.hidden > 0,
               "soak: --steps, --length (> 1), --batch, --seq, --embed and --hidden must be positive");
  UNROLL_CHECK(o.lr > 0 && o.clip > 0 && o.sample_every > 0, "soak: --lr, --clip and --sample-every must be positive");
  UNROLL_CHECK(o.rss_tolerance_bytes >= 0 && o.rss_tolerance_fraction >= 0, "soak: RSS tolerances must be >= 0");
}

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace detail

/// Embedding -> LSTM -> Linear: ids [T,B] -> logits [T,B,V], the state carried between calls.
struct CharLSTM : Module {
  CharLSTM(int64_t V, int64_t E, int64_t H) {
    embed = register_module("embed", std::make_shared<Embedding>(V, E));
    lstm = register_module("lstm", std::make_shared<LSTM>(LSTMOptions{.input_size = E, .hidden_size = H}));
    head = register_module("head", std::make_shared<Linear>(H, V));
  }
  Variable forward(const Tensor& ids, State& state) {
    RecurrentOutput out = (*lstm)((*embed)(ids), state);  // [T,B,H]
    state = out.state;
    return (*head)(out.output);  // [T,B,V]
  }
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<LSTM> lstm;
  std::shared_ptr<Linear> head;
};

/// The char_lm soak: opt.steps truncated-BPTT steps of B x T characters.
inline Report run_char_lm(const Options& opt, const OnSample& on_sample = {}) {
  detail::check_options(opt);
  const std::string text = opt.text_path.empty() ? std::string(detail::kText) : detail::read_text(opt.text_path);
  std::vector<int64_t> id_of(256, -1), ids;
  int64_t V = 0;
  for (unsigned char ch : text) {
    if (id_of[ch] < 0) id_of[ch] = V++;
    ids.push_back(id_of[ch]);
  }
  const int64_t B = opt.batch, T = opt.seq;
  const int64_t L = (static_cast<int64_t>(ids.size()) - 1) / B;  // characters per stream
  UNROLL_CHECK(L >= T, "soak: the text has {} characters; {} streams of {} need at least {}", ids.size(), B, T,
               B * T + 1);
  const int64_t chunks = L / T;

  manual_seed(opt.seed);
  CharLSTM model(V, opt.embed, opt.hidden);
  optim::Adam adam(model.parameters(), {.lr = opt.lr});
  detail::Monitor monitor(opt, opt.steps, on_sample);
  State state;
  std::vector<int64_t> x(static_cast<size_t>(T * B)), y(x.size());
  const auto t0 = detail::Clock::now();
  for (int64_t step = 0; step < opt.steps; ++step) {
    const int64_t pos = (step % chunks) * T;
    if (pos == 0) state.clear();  // a new pass over the streams
    for (int64_t t = 0; t < T; ++t)
      for (int64_t b = 0; b < B; ++b) {
        x[static_cast<size_t>(t * B + b)] = ids[static_cast<size_t>(b * L + pos + t)];
        y[static_cast<size_t>(t * B + b)] = ids[static_cast<size_t>(b * L + pos + t + 1)];
      }
    {
      Variable logits = model.forward(indices(x, {T, B}), state);  // [T,B,V]
      Variable loss = cross_entropy(reshape(logits, {T * B, V}), indices(y, {T * B}));
      adam.zero_grad();
      loss.backward();
      clip_grad_norm(model.parameters(), opt.clip);
      adam.step();
      state = detach(state);
      monitor.add_loss(loss.item());
    }
    if ((step + 1) % opt.sample_every == 0 || step + 1 == opt.steps) monitor.sample(step + 1);
  }
  return monitor.finish(opt.steps, opt.steps * T, detail::seconds_since(t0));
}

/// x_t = 0.6 sin(2 pi t / 40) + 0.3 sin(2 pi t / 173) + 0.05 noise: smooth enough to predict,
/// with a slow tone that rewards memory beyond one chunk.
inline std::vector<double> two_tone_sine(int64_t length, uint64_t seed) {
  Generator gen(seed);
  std::vector<double> xs(static_cast<size_t>(length));
  const double two_pi = 2 * std::numbers::pi;
  for (int64_t t = 0; t < length; ++t) {
    const auto td = static_cast<double>(t);
    xs[static_cast<size_t>(t)] = 0.6 * std::sin(two_pi * td / 40.0) + 0.3 * std::sin(two_pi * td / 173.0) +
                                 0.05 * gen.normal();
  }
  return xs;
}

/// The tbptt soak: one pass over a sequence of opt.length steps in chunks of T (the last one
/// shorter if T does not divide length - 1), predicting x_{t+1} from x_0..x_t with an LSTM
/// (1 -> H) and a Linear (H -> 1), mean squared error.
inline Report run_tbptt(const Options& opt, const OnSample& on_sample = {}) {
  detail::check_options(opt);
  const std::vector<double> xs = two_tone_sine(opt.length, opt.seed + 1);
  const int64_t T = opt.seq, H = opt.hidden;
  const int64_t predictions = opt.length - 1;           // x_1 .. x_{length-1}
  const int64_t chunks = (predictions + T - 1) / T;     // the last one may be shorter

  manual_seed(opt.seed);
  LSTM lstm({.input_size = 1, .hidden_size = H});
  Linear head(H, 1);
  std::vector<Variable> params = lstm.parameters();
  for (const Variable& p : head.parameters()) params.push_back(p);
  optim::Adam adam(params, {.lr = opt.lr});
  detail::Monitor monitor(opt, chunks, on_sample);
  State state;
  std::vector<double> in, target;
  const auto t0 = detail::Clock::now();
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t start = c * T, len = std::min(T, predictions - start);
    in.resize(static_cast<size_t>(len));
    target.resize(static_cast<size_t>(len));
    for (int64_t t = 0; t < len; ++t) {
      in[static_cast<size_t>(t)] = xs[static_cast<size_t>(start + t)];
      target[static_cast<size_t>(t)] = xs[static_cast<size_t>(start + t + 1)];
    }
    {
      RecurrentOutput out = lstm(Variable(tensor(in, {len, 1, 1})), state);  // [len,1,H]
      Variable pred = head(out.output);                                 // [len,1,1]
      Variable loss = mse_loss(pred, tensor(target, {len, 1, 1}));
      adam.zero_grad();
      loss.backward();
      clip_grad_norm(params, opt.clip);
      adam.step();
      state = detach(out.state);
      monitor.add_loss(loss.item());
    }
    if ((c + 1) % opt.sample_every == 0 || c + 1 == chunks) monitor.sample(c + 1);
  }
  return monitor.finish(chunks, predictions, detail::seconds_since(t0));
}

/// Runs opt.mode.
inline Report run(const Options& opt, const OnSample& on_sample = {}) {
  if (opt.mode == "char_lm") return run_char_lm(opt, on_sample);
  if (opt.mode == "tbptt") return run_tbptt(opt, on_sample);
  throw Error(fmt::format("soak: unknown mode '{}' (expected char_lm or tbptt)", opt.mode));
}

}  // namespace unroll::soak
