// The study note's three families side by side, on the tasks of Bai, Kolter and Koltun
// (2018), "An Empirical Evaluation of Generic Convolutional and Recurrent Networks for
// Sequence Modeling", Table 1, at toy scale: a fully connected net (MLP: the whole sequence
// flattened, no notion of order), a temporal ConvNet (TCN: causal dilated convolutions, a
// fixed window of the past) and three RNNs (tanh RNN, LSTM, GRU: a state carried through
// time). Same data, same optimizer (Adam, clip_grad_norm 1), same number of steps and batch
// size for every model; the TCN's and the MLP's widths are chosen so that their parameter
// counts come close to the LSTM's (the table prints them).
//
// Tasks:
//   adding       T steps of (value, marker); predict the sum of the two marked values
//                (MSE; always answering 1.0 scores 1/6). Also evaluated at --eval-T (a length
//                it was not trained on), where the MLP cannot run at all.
//   copy         the copy-memory task: 10 symbols from 1..8, a blank gap of T, a delimiter;
//                then reproduce the 10 symbols (cross-entropy per step; a model without
//                memory scores 10 ln 8 / (T + 20)).
//   digits_rows  the real 8x8 handwritten digits (../shared/data/digits/digits.csv) read one
//                row per step (8 steps of 8 pixels): a small sequential-MNIST.
//   digits_pixels  the same, one pixel per step (64 steps).
// The digits tasks are skipped, with a message, when the file is not found.
//
//   build/examples/compare                   # all tasks, about two minutes on one core
//   build/examples/compare --task adding --T 600 --steps 2000
//   build/examples/compare --seeds 3         # median [min, max] over seeds 0, 1, 2
#include "common/cli.h"
#include "common/data.h"
#include "common/plot.h"
#include "common/tasks.h"

#include <fmt/format.h>

#include <unroll.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace unroll;
using namespace unroll::examples;

namespace {

// ---- the models -------------------------------------------------------------------------

enum class Family { Mlp, Tcn, Rnn, Lstm, Gru };
constexpr Family kFamilies[] = {Family::Mlp, Family::Tcn, Family::Rnn, Family::Lstm, Family::Gru};

const char* family_name(Family f) {
  switch (f) {
    case Family::Mlp: return "MLP";
    case Family::Tcn: return "TCN";
    case Family::Rnn: return "tanh RNN";
    case Family::Lstm: return "LSTM";
    case Family::Gru: return "GRU";
  }
  return "?";
}

const char* family_key(Family f) {
  switch (f) {
    case Family::Mlp: return "mlp";
    case Family::Tcn: return "tcn";
    case Family::Rnn: return "rnn";
    case Family::Lstm: return "lstm";
    case Family::Gru: return "gru";
  }
  return "?";
}

/// What a task asks of a model: T steps of I features in, O outputs, either at the last
/// step only (many-to-one) or at every step (many-to-many).
struct Shape3 {
  int64_t T, I, O;
  bool every_step;
};

/// One model of any family behind one interface: x [T,B,I] -> [B,O] (last step) or
/// [T*B,O] (every step, time-major like the targets).
class SequenceModel : public Module {
public:
  SequenceModel(Family family, const Shape3& s, int64_t width, int64_t kernel) : family_(family), s_(s) {
    switch (family) {
      case Family::Mlp:  // the whole sequence at once: T*I inputs, one hidden layer
        fc1_ = register_module("fc1", std::make_shared<Linear>(s.T * s.I, width));
        fc2_ = register_module("fc2", std::make_shared<Linear>(width, s.every_step ? s.T * s.O : s.O));
        return;
      case Family::Tcn: {  // the fewest levels whose receptive field covers the T steps
        std::vector<int64_t> channels(1, width);
        while (1 + 2 * (kernel - 1) * ((int64_t{1} << channels.size()) - 1) < s.T) channels.push_back(width);
        tcn_ = register_module("tcn", std::make_shared<TCN>(s.I, channels, TCNOptions{.kernel_size = kernel}));
        break;
      }
      case Family::Rnn:
        rnn_ = register_module<RecurrentStack>(
            "rnn", std::make_shared<RNN>(RNNOptions{.input_size = s.I, .hidden_size = width}));
        break;
      case Family::Lstm:
        rnn_ = register_module<RecurrentStack>(
            "rnn", std::make_shared<LSTM>(LSTMOptions{.input_size = s.I, .hidden_size = width}));
        break;
      case Family::Gru:
        rnn_ = register_module<RecurrentStack>(
            "rnn", std::make_shared<GRU>(GRUOptions{.input_size = s.I, .hidden_size = width}));
        break;
    }
    head_ = register_module("head", std::make_shared<Linear>(width, s.O));
  }

  Variable forward(const Variable& x) {
    const int64_t T = x.shape()[0], B = x.shape()[1];
    if (family_ == Family::Mlp) {
      UNROLL_CHECK(T == s_.T, "compare: the MLP reads exactly {} steps (its input size), got {}", s_.T, T);
      Variable flat = reshape(permute(x, {1, 0, 2}), {B, T * s_.I});  // [B, T*I]: no notion of order
      Variable y = fc2_->forward(relu(fc1_->forward(flat)));
      if (!s_.every_step) return y;
      return reshape(permute(reshape(y, {B, T, s_.O}), {1, 0, 2}), {T * B, s_.O});
    }
    Variable h;  // [T, B, width]
    if (family_ == Family::Tcn)
      h = permute(tcn_->forward(permute(x, {1, 2, 0})), {2, 0, 1});  // TCN runs on [B, I, T]
    else
      h = rnn_->forward(x).output;  // RNN, LSTM or GRU
    if (s_.every_step) return head_->forward(reshape(h, {T * B, h.shape()[2]}));
    return head_->forward(reshape(narrow(h, 0, T - 1, 1), {B, h.shape()[2]}));
  }

  Family family() const { return family_; }
  /// How many past steps one output can see: all of them, except for the TCN.
  int64_t receptive_field() const { return tcn_ ? tcn_->receptive_field() : -1; }

private:
  Family family_;
  Shape3 s_;
  std::shared_ptr<Linear> fc1_, fc2_, head_;
  std::shared_ptr<TCN> tcn_;
  std::shared_ptr<RecurrentStack> rnn_;
};

// ---- the tasks --------------------------------------------------------------------------

/// A batch: x [T,B,I] and the targets: float [B,1] (adding) or int64 class indices, [B]
/// (digits) or [T*B] time-major (copy).
struct Batch {
  Tensor x, y;
};

enum class Loss { Mse, CrossEntropy };

struct Task {
  std::string key, title;
  Shape3 shape;
  Loss loss;
  double baseline;           ///< the memoryless / constant-answer score
  std::string metric;        ///< what the table reports: "MSE", "loss" or "accuracy %"
  std::function<Batch(int64_t B, Generator&)> train_batch;
  Batch test;                ///< the held-out set
  std::optional<Batch> test_other_length;  ///< adding only: held out at another T
  int64_t other_T = 0;
  double solved_below = std::nan("");  ///< a run "solves" the task below this score (NaN: not counted)
};

constexpr int64_t kCopySymbols = 10, kCopyClasses = 10;  // classes: 0 blank, 1..8 symbols, 9 delimiter

/// Bai et al.'s copy memory: length T + 20; steps 0..9 hold symbols from 1..8, then blanks,
/// then 11 delimiters (9) from step T + 9. The target is blank everywhere except the last 10
/// steps, which repeat the 10 symbols.
Batch copy_batch(int64_t T, int64_t B, Generator& gen) {
  const int64_t L = T + 2 * kCopySymbols;
  std::vector<double> x(static_cast<size_t>(L * B * kCopyClasses), 0.0);
  std::vector<int64_t> y(static_cast<size_t>(L * B), 0);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> in(static_cast<size_t>(L), 0);
    for (int64_t t = 0; t < kCopySymbols; ++t) {
      in[static_cast<size_t>(t)] = gen.randint(1, 9);
      y[static_cast<size_t>((L - kCopySymbols + t) * B + b)] = in[static_cast<size_t>(t)];
    }
    for (int64_t t = T + kCopySymbols - 1; t < L; ++t) in[static_cast<size_t>(t)] = 9;
    for (int64_t t = 0; t < L; ++t) x[static_cast<size_t>((t * B + b) * kCopyClasses + in[static_cast<size_t>(t)])] = 1.0;
  }
  return {tensor(x, {L, B, kCopyClasses}), indices(y, {L * B})};
}

/// Images idx of set as sequences: rows (8 steps x 8 pixels) or pixels (64 steps x 1).
Batch digits_batch(const DigitsSet& set, const std::vector<int64_t>& idx, bool pixels) {
  const int64_t B = static_cast<int64_t>(idx.size()), T = pixels ? 64 : 8, I = pixels ? 1 : 8;
  std::vector<double> x(static_cast<size_t>(T * B * I));
  std::vector<int64_t> y(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = idx[static_cast<size_t>(b)];
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < I; ++i)
        x[static_cast<size_t>((t * B + b) * I + i)] = set.pixels[static_cast<size_t>(n * 64 + t * I + i)];
    y[static_cast<size_t>(b)] = set.labels[static_cast<size_t>(n)];
  }
  return {tensor(x, {T, B, I}), indices(y)};
}

std::vector<int64_t> all_indices(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

// ---- training and evaluation ------------------------------------------------------------

Variable task_loss(const Task& task, const Variable& out, const Tensor& y) {
  return task.loss == Loss::Mse ? mse_loss(out, y) : cross_entropy(out, y);
}

/// The table's number for a model on a batch: MSE (adding), mean cross-entropy (copy) or
/// accuracy in % (digits); evaluated in chunks of 250 sequences without a graph.
double score(SequenceModel& model, const Task& task, const Batch& data) {
  NoGradGuard no_grad;
  const int64_t B = data.x.shape()[1], T = data.x.shape()[0];
  double total = 0;
  for (int64_t b0 = 0; b0 < B; b0 += 250) {
    const int64_t n = std::min<int64_t>(250, B - b0);
    const Tensor x = narrow(data.x, 1, b0, n);
    Variable out = model.forward(Variable(x));
    if (task.metric == "accuracy %") {
      const Tensor pred = argmax(out.data(), 1);
      const Tensor y = narrow(data.y, 0, b0, n);
      for (int64_t i = 0; i < n; ++i) total += pred.data<int64_t>()[i] == y.data<int64_t>()[i] ? 1.0 : 0.0;
    } else if (task.loss == Loss::Mse) {
      total += mse_loss(out, narrow(data.y, 0, b0, n)).item() * static_cast<double>(n);
    } else {  // copy: targets are time-major [T*B]; take this chunk's columns
      const Tensor y = narrow(data.y.reshape({T, B}), 1, b0, n).reshape({T * n});
      total += cross_entropy(out, y).item() * static_cast<double>(n);
    }
  }
  return (task.metric == "accuracy %" ? 100.0 : 1.0) * total / static_cast<double>(B);
}

struct Run {
  Family family;
  int64_t params = 0, width = 0, receptive_field = -1;
  std::vector<double> steps, loss;  ///< the loss curve (train loss, mean per log window)
  double test = 0, other_length = std::nan(""), seconds = 0;
};

struct Config {
  int64_t steps, batch, hidden, kernel, log_every;
  double lr;
  bool progress = true;
};

Run train(const Task& task, Family family, int64_t width, const Config& cfg, uint64_t seed) {
  manual_seed(seed);
  SequenceModel model(family, task.shape, width, cfg.kernel);
  Run run;
  run.family = family;
  run.params = model.num_parameters();
  run.width = width;
  run.receptive_field = model.receptive_field();
  Generator data(seed * 1000 + 17);
  const std::vector<Variable> params = model.parameters();
  optim::Adam opt(params, cfg.lr);
  Progress progress(fmt::format("{} {}", task.key, family_name(family)), cfg.steps, cfg.progress);
  double window = 0;
  int64_t in_window = 0;
  for (int64_t step = 1; step <= cfg.steps; ++step) {
    const Batch b = task.train_batch(cfg.batch, data);
    opt.zero_grad();
    Variable loss = task_loss(task, model.forward(Variable(b.x)), b.y);
    loss.backward();
    clip_grad_norm(params, 1.0);
    opt.step();
    window += loss.item();
    ++in_window;
    if (step % cfg.log_every == 0 || step == cfg.steps) {
      run.steps.push_back(static_cast<double>(step));
      run.loss.push_back(window / static_cast<double>(in_window));
      window = 0;
      in_window = 0;
    }
    progress.update(step, loss.item());
  }
  progress.finish();
  model.eval();
  run.test = score(model, task, task.test);
  if (task.test_other_length && family != Family::Mlp) run.other_length = score(model, task, *task.test_other_length);
  run.seconds = progress.seconds();
  return run;
}

/// The width of `family` whose parameter count comes closest to `target` from below (at
/// least `floor`): how the TCN's channels and the MLP's hidden units are chosen.
int64_t matched_width(Family family, const Shape3& s, int64_t kernel, int64_t target, int64_t floor) {
  int64_t best = floor;
  for (int64_t w = floor; w <= 512; ++w) {
    if (SequenceModel(family, s, w, kernel).num_parameters() > target) break;
    best = w;
  }
  return best;
}

// ---- reporting --------------------------------------------------------------------------

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// "0.0123" or, over several seeds, "0.0123 [0.0101, 0.0170]".
std::string summary(const std::vector<double>& v, bool percent) {
  auto one = [&](double x) {
    if (std::isnan(x)) return std::string("-");
    return percent ? fmt::format("{:.1f}", x) : fmt::format("{:.3g}", x);
  };
  if (v.size() == 1) return one(v[0]);
  return fmt::format("{} [{}, {}]", one(median(v)), one(*std::min_element(v.begin(), v.end())),
                     one(*std::max_element(v.begin(), v.end())));
}

/// Bai et al. (2018), Table 1, for the rows that have a counterpart here (their sizes:
/// adding T=600, copy memory T=1000, sequential MNIST 784 steps).
struct PaperRow {
  const char* task;
  const char* setting;
  double tcn, lstm, gru, rnn;
};
constexpr PaperRow kPaper[] = {
    {"adding", "T=600, MSE", 5.8e-5, 0.164, 5.3e-5, 0.177},
    {"copy", "T=1000, loss", 3.5e-5, 0.0204, 0.0197, 0.0202},
    {"digits_pixels", "seq. MNIST, acc %", 99.0, 87.2, 96.2, 21.5},
};

}  // namespace

static int run(int argc, char** argv) {
  Cli cli(argc, argv,
          "FCN vs CNN vs RNN (MLP, TCN, tanh RNN, LSTM, GRU) on the adding problem, copy memory and sequential digits");
  const std::string only = cli.get_string("task", "all", "adding, copy, digits_rows, digits_pixels or all");
  const int64_t T = cli.get_int("T", 200, "adding problem: sequence length");
  const int64_t eval_T = cli.get_int("eval-T", 0, "adding problem: also evaluate at this length (0: 2*T)");
  const int64_t copy_T = cli.get_int("copy-T", 50, "copy memory: length of the blank gap");
  Config cfg{};
  cfg.steps = cli.get_int("steps", 3000, "training steps per model and task");
  cfg.batch = cli.get_int("batch", 32, "sequences per step");
  cfg.hidden = cli.get_int("hidden", 32, "hidden size of the three RNNs (TCN and MLP widths follow the LSTM's size)");
  cfg.kernel = cli.get_int("kernel", 7, "TCN kernel size");
  cfg.lr = cli.get_double("lr", 2e-3, "Adam learning rate");
  cfg.log_every = cli.get_int("log-every", 20, "steps per point of the loss curves");
  const int64_t seeds = cli.get_int("seeds", 1, "seeds per model (the table shows median [min, max] when > 1)");
  const int64_t test_size = cli.get_int("test", 500, "held-out sequences for adding and copy");
  const std::string digits_flag = cli.get_string("digits", "", "digits.csv (default: ../shared/data/digits/digits.csv)");
  const uint64_t seed0 = cli.seed();
  const bool json = cli.json();
  const std::string out = cli.out_dir();
  cli.done();
  UNROLL_CHECK(only == "all" || only == "adding" || only == "copy" || only == "digits_rows" || only == "digits_pixels",
               "compare: --task must be adding, copy, digits_rows, digits_pixels or all, got '{}'", only);
  UNROLL_CHECK(T >= 2 && copy_T >= 1 && eval_T >= 0 && cfg.steps >= 1 && cfg.batch >= 1 && cfg.hidden >= 1 &&
                   cfg.kernel >= 2 && cfg.log_every >= 1 && seeds >= 1 && seeds <= 20 && test_size >= 1,
               "compare: need T >= 2, copy-T >= 1, kernel >= 2, 1 <= seeds <= 20 and positive steps, batch, hidden, "
               "log-every, test (got T={} copy-T={} kernel={} seeds={} steps={} batch={} hidden={} test={})",
               T, copy_T, cfg.kernel, seeds, cfg.steps, cfg.batch, cfg.hidden, test_size);
  plot::make_dirs(out);
  auto wanted = [&](const std::string& key) { return only == "all" || only == key; };

  // Data: the tasks, each with its held-out set.
  std::vector<Task> tasks;
  if (wanted("adding")) {
    const int64_t other = eval_T > 0 ? eval_T : 2 * T;
    Generator test_gen(seed0 + 1), other_gen(seed0 + 2);
    const AddingBatch t = adding_batch(T, test_size, test_gen), o = adding_batch(other, test_size, other_gen);
    tasks.push_back({.key = "adding",
                     .title = fmt::format("adding problem, T={} (test MSE; at T={} in the last column)", T, other),
                     .shape = {T, 2, 1, false},
                     .loss = Loss::Mse,
                     .baseline = kAddingBaseline,
                     .metric = "MSE",
                     .train_batch = [T](int64_t B, Generator& g) {
                       AddingBatch a = adding_batch(T, B, g);
                       return Batch{a.x, a.y};
                     },
                     .test = {t.x, t.y},
                     .test_other_length = Batch{o.x, o.y},
                     .other_T = other,
                     .solved_below = 0.01});
  }
  if (wanted("copy")) {
    Generator test_gen(seed0 + 3);
    tasks.push_back({.key = "copy",
                     .title = fmt::format("copy memory, gap T={} (test cross-entropy per step)", copy_T),
                     .shape = {copy_T + 2 * kCopySymbols, kCopyClasses, kCopyClasses, true},
                     .loss = Loss::CrossEntropy,
                     .baseline = 10.0 * std::log(8.0) / static_cast<double>(copy_T + 2 * kCopySymbols),
                     .metric = "loss",
                     .train_batch = [copy_T](int64_t B, Generator& g) { return copy_batch(copy_T, B, g); },
                     .test = copy_batch(copy_T, test_size, test_gen),
                     .test_other_length = std::nullopt,
                     .other_T = 0,
                     .solved_below = 0.1 * 10.0 * std::log(8.0) / static_cast<double>(copy_T + 2 * kCopySymbols)});
  }
  std::shared_ptr<DigitsSplit> digits;
  if (wanted("digits_rows") || wanted("digits_pixels")) {
    const std::string path = digits_flag.empty() ? find_shared_data("digits/digits.csv") : digits_flag;
    if (path.empty()) {
      fmt::print("digits: ../shared/data/digits/digits.csv not found (pass --digits FILE): the two digits tasks are "
                 "skipped\n");
    } else {
      digits = std::make_shared<DigitsSplit>(read_digits(path));
      fmt::print("digits: {} ({} train, {} test images)\n", path, digits->train.size(), digits->test.size());
      for (const bool pixels : {false, true}) {
        const std::string key = pixels ? "digits_pixels" : "digits_rows";
        if (!wanted(key)) continue;
        tasks.push_back({.key = key,
                         .title = pixels ? "sequential digits, one pixel per step (64 steps; test accuracy %)"
                                         : "sequential digits, one row per step (8 steps; test accuracy %)",
                         .shape = {pixels ? 64 : 8, pixels ? 1 : 8, 10, false},
                         .loss = Loss::CrossEntropy,
                         .baseline = 10.0,
                         .metric = "accuracy %",
                         .train_batch = [digits, pixels](int64_t B, Generator& g) {
                           std::vector<int64_t> idx(static_cast<size_t>(B));
                           for (auto& i : idx) i = g.randint(0, digits->train.size());
                           return digits_batch(digits->train, idx, pixels);
                         },
                         .test = digits_batch(digits->test, all_indices(digits->test.size()), pixels),
                         .test_other_length = std::nullopt,
                         .other_T = 0,
                         .solved_below = std::nan("")});
      }
    }
  }
  UNROLL_CHECK(!tasks.empty(), "compare: no task to run (the digits file was not found for --task {})", only);

  fmt::print("{} steps per model, batch {}, Adam lr {}, clip_grad_norm 1; RNN hidden {}, TCN kernel {}; seeds {}..{}\n\n",
             cfg.steps, cfg.batch, cfg.lr, cfg.hidden, cfg.kernel, seed0, seed0 + static_cast<uint64_t>(seeds) - 1);

  // Models and training: every family on every task, with the same seeds.
  JsonLine result;
  double total_seconds = 0;
  for (const Task& task : tasks) {
    const int64_t target = SequenceModel(Family::Lstm, task.shape, cfg.hidden, cfg.kernel).num_parameters();
    std::map<Family, int64_t> width = {{Family::Rnn, cfg.hidden}, {Family::Lstm, cfg.hidden}, {Family::Gru, cfg.hidden}};
    width[Family::Tcn] = matched_width(Family::Tcn, task.shape, cfg.kernel, target, 4);
    width[Family::Mlp] = matched_width(Family::Mlp, task.shape, cfg.kernel, target, 16);
    std::vector<std::vector<Run>> runs;  // [family][seed]
    for (Family f : kFamilies) {
      runs.emplace_back();
      for (int64_t s = 0; s < seeds; ++s) runs.back().push_back(train(task, f, width[f], cfg, seed0 + static_cast<uint64_t>(s)));
    }

    // Evaluation: one table per task.
    const bool pct = task.metric == "accuracy %";
    fmt::print("\n{}\n", task.title);
    const bool count_solved = seeds > 1 && !std::isnan(task.solved_below);
    fmt::print("  {:<9} {:>7} {:>6}  {:<26} {:<26} {:>7}{}\n", "model", "params", "window", task.metric,
               task.test_other_length ? fmt::format("at T={}", task.other_T) : "", "seconds",
               count_solved ? fmt::format("  solved (< {:.3g})", task.solved_below) : "");
    for (const auto& per_seed : runs) {
      const Run& r0 = per_seed.front();
      std::vector<double> test, other, secs;
      for (const Run& r : per_seed) {
        test.push_back(r.test);
        other.push_back(r.other_length);
        secs.push_back(r.seconds);
        total_seconds += r.seconds;
      }
      const std::string window = r0.family == Family::Mlp   ? "all"
                                 : r0.family == Family::Tcn ? fmt::format("{}", r0.receptive_field)
                                                            : "inf";
      std::string other_text;
      if (task.test_other_length) other_text = r0.family == Family::Mlp ? "n/a (fixed input size)" : summary(other, false);
      const auto solved = std::count_if(test.begin(), test.end(), [&](double v) { return v < task.solved_below; });
      fmt::print("  {:<9} {:>7} {:>6}  {:<26} {:<26} {:>7.1f}{}\n", family_name(r0.family), r0.params, window,
                 summary(test, pct), other_text, median(secs),
                 count_solved ? fmt::format("  {}/{}", solved, seeds) : "");
      const std::string key = fmt::format("{}_{}", task.key, family_key(r0.family));
      result.add(key, median(test)).add(key + "_params", static_cast<double>(r0.params));
      if (count_solved) result.add(key + "_solved", static_cast<double>(solved));
      if (task.test_other_length && r0.family != Family::Mlp) result.add(key + "_other_T", median(other));
    }
    fmt::print("  baseline  {}: {}\n", pct ? "chance" : "memoryless", pct ? "10.0" : fmt::format("{:.3g}", task.baseline));
    for (const PaperRow& p : kPaper)
      if (task.key == p.task)
        fmt::print("  Bai et al. 2018, Table 1 ({}): TCN {:.3g}, LSTM {:.3g}, GRU {:.3g}, tanh RNN {:.3g}\n", p.setting,
                   p.tcn, p.lstm, p.gru, p.rnn);

    // Figures: one loss curve per model (seed 0 of the run), the baseline dashed.
    plot::LinePlot plot;
    plot.title = task.title.substr(0, task.title.find(" (")) + fmt::format(": training loss, seed {}", seed0);
    plot.xlabel = "training step";
    plot.ylabel = task.loss == Loss::Mse ? "train MSE" : "train cross-entropy (nats)";
    plot.log_y = true;
    for (const auto& per_seed : runs) plot.add(family_name(per_seed.front().family), per_seed.front().steps, per_seed.front().loss);
    if (!pct) {
      const std::vector<double>& xs = runs.front().front().steps;
      plot.add_reference(pct ? "chance" : "memoryless baseline", xs.front(), xs.back(), task.baseline);
    }
    const std::string path = out + "/compare_" + task.key + ".svg";
    plot.save(path);
    fmt::print("  figure: {}\n", path);
    result.add(task.key + "_figure", path);
  }
  fmt::print("\ntotal training time {:.1f}s\n", total_seconds);
  result.add("seconds", total_seconds);
  if (json) fmt::print("{}\n", result.str());
  return 0;
}

int main(int argc, char** argv) {
  return guarded_main("compare", argc, argv, run, on_error<DataError>(ErrorPrefix::none, 1),
                      on_error<unroll::Error>(ErrorPrefix::argv0, 2));
}
