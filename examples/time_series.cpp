// Time-series forecasting with a recurrent net: a noisy sine and a random-walk "price".
//
// Each series is generated (seeded), split into a training head and a held-out tail. A GRU
// (or LSTM) reads a sliding window of the series' increments x_t - x_{t-1} and predicts the
// next increment at every step (many-to-many). Working on increments keeps the inputs
// stationary: a random walk wanders out of the range seen in training, its steps do not.
//
// On the tail we forecast from every origin o: the 1-step forecast of x_{o+1}, and the
// k-step autoregressive forecast of x_{o+k}, made by feeding each predicted increment back
// in as the next input. Both are compared with the naive forecast x_{o+k} = x_o.
//
// What to expect: on the sine the net beats the naive forecast clearly at every horizon
// (the future is mostly determined by the phase it has seen). On the random walk the steps
// are independent, so nothing in the past predicts them: the last value is the optimal
// forecast and the best a model can do is to match it. The program says which happened.
//
//   ./time_series                      both series, GRU, about a minute on one core
//   ./time_series --series sine --steps 200 --hidden 16   a few seconds
#include <unroll.h>

#include "common/cli.h"
#include "common/plot.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

using namespace unroll;
using namespace unroll::examples;

namespace {

// ---- data ---------------------------------------------------------------------------------

/// x_t = sin(2 pi t / period) + noise N(0, sigma^2).
std::vector<double> noisy_sine(int64_t n, double period, double noise, Generator& gen) {
  std::vector<double> x(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t)
    x[static_cast<size_t>(t)] = std::sin(2 * M_PI * static_cast<double>(t) / period) + noise * gen.normal();
  return x;
}

/// A geometric random walk: p_t = 100 exp(sum of N(0, vol^2) log returns).
std::vector<double> random_walk_price(int64_t n, double vol, Generator& gen) {
  std::vector<double> p(static_cast<size_t>(n));
  double log_p = std::log(100.0);
  for (auto& v : p) {
    v = std::exp(log_p);
    log_p += vol * gen.normal();
  }
  return p;
}

// ---- model --------------------------------------------------------------------------------

/// A recurrent cell over scaled increments and a linear head predicting the next one.
struct Forecaster : Module {
  std::shared_ptr<RecurrentCell> cell;
  std::shared_ptr<Linear> head;
  Forecaster(const std::string& kind, int64_t hidden) {
    if (kind == "lstm") cell = register_module("cell", std::make_shared<LSTMCell>(1, hidden));
    else cell = register_module("cell", std::make_shared<GRUCell>(1, hidden));
    head = register_module("head", std::make_shared<Linear>(hidden, 1));
  }
  /// z [T,B,1], state -> predicted next increments [T,B,1] and the final state.
  std::pair<Variable, State> forward(const Variable& z, const State& state = {}) {
    SequenceResult r = run_cell(*cell, z, state);
    return {head->forward(r.output), r.final_state};  // [T,B,1]
  }
};

struct Options {
  std::string cell;
  int64_t hidden, window, batch, steps, horizon;
  double lr;
  bool progress;
};

struct SeriesResult {
  std::string name;
  std::vector<double> rmse, naive;  // per horizon k = 1..K
  std::vector<double> losses;       // training loss per step
  double seconds = 0;
};

// ---- one series: train, forecast, plot ---------------------------------------------------

/// noise_floor: the RMSE of a perfect forecast (the unpredictable noise), 0 if unknown.
SeriesResult run_series(const std::string& name, const std::vector<double>& x, double noise_floor, const Options& opt,
                        const std::string& out, std::vector<std::string>& figures) {
  SeriesResult res;
  res.name = name;
  const int64_t N = static_cast<int64_t>(x.size());
  const int64_t n_train = N * 4 / 5;  // x[0 .. n_train) trains, the tail is held out
  const int64_t W = opt.window, B = opt.batch, K = opt.horizon;
  UNROLL_CHECK(n_train > W + 2 && N - n_train > K + 1, "time_series: series of {} points is too short for window {} and horizon {}",
               N, W, K);

  // Increments z_t = (x_t - x_{t-1}) / s, scaled by their standard deviation in training.
  std::vector<double> z(static_cast<size_t>(N), 0.0);
  for (int64_t t = 1; t < N; ++t) z[static_cast<size_t>(t)] = x[static_cast<size_t>(t)] - x[static_cast<size_t>(t - 1)];
  double m2 = 0;
  for (int64_t t = 1; t < n_train; ++t) m2 += z[static_cast<size_t>(t)] * z[static_cast<size_t>(t)];
  const double s = std::sqrt(m2 / static_cast<double>(n_train - 1));
  for (double& v : z) v /= s;

  Forecaster model(opt.cell, opt.hidden);
  optim::Adam adam(model.parameters(), opt.lr);
  optim::CosineAnnealingLR schedule(adam, opt.steps, opt.lr * 0.05);
  Generator gen(default_generator().next_u64());

  // Training: random windows z[i .. i+W) as inputs, z[i+1 .. i+W] as targets, all inside the
  // training head. The first W/4 steps see little history and are not scored.
  const int64_t warm = W / 4;
  Progress progress(fmt::format("{} {}", name, opt.cell), opt.steps, opt.progress);
  for (int64_t step = 1; step <= opt.steps; ++step) {
    std::vector<double> in(static_cast<size_t>(W * B)), target(static_cast<size_t>(W * B));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t i = gen.randint(1, n_train - W);
      for (int64_t t = 0; t < W; ++t) {
        in[static_cast<size_t>(t * B + b)] = z[static_cast<size_t>(i + t)];
        target[static_cast<size_t>(t * B + b)] = z[static_cast<size_t>(i + t + 1)];
      }
    }
    Variable zin(tensor(in, {W, B, 1}));  // [T,B,1]
    const Tensor y = tensor(target, {W, B, 1});
    auto [pred, state] = model.forward(zin);
    Variable loss = mse_loss(narrow(pred, 0, warm, W - warm), narrow(y, 0, warm, W - warm));
    adam.zero_grad();
    loss.backward();
    clip_grad_norm(model.parameters(), 1.0);
    adam.step();
    schedule.step();
    res.losses.push_back(loss.item());
    progress.update(step, loss.item());
  }
  progress.finish();
  res.seconds = progress.seconds();

  // Forecasts from every origin o in the tail that has K true values after it. Context: the
  // W increments up to x_o (they may reach back into the training head; the targets never do).
  NoGradGuard no_grad;
  std::vector<int64_t> origins;
  for (int64_t o = n_train - 1; o + K < N; ++o) origins.push_back(o);
  const int64_t O = static_cast<int64_t>(origins.size());
  std::vector<double> ctx(static_cast<size_t>(W * O));
  for (int64_t j = 0; j < O; ++j)
    for (int64_t t = 0; t < W; ++t)
      ctx[static_cast<size_t>(t * O + j)] = z[static_cast<size_t>(origins[static_cast<size_t>(j)] - W + 1 + t)];
  auto [pred, state] = model.forward(Variable(tensor(ctx, {W, O, 1})));
  Variable next = narrow(pred, 0, W - 1, 1);  // [1,O,1]: predicted z_{o+1}
  // forecast[k-1][j]: x_{o+k} predicted from origin o = origins[j].
  std::vector<std::vector<double>> forecast(static_cast<size_t>(K), std::vector<double>(static_cast<size_t>(O)));
  std::vector<double> level(static_cast<size_t>(O));
  for (int64_t j = 0; j < O; ++j) level[static_cast<size_t>(j)] = x[static_cast<size_t>(origins[static_cast<size_t>(j)])];
  for (int64_t k = 1; k <= K; ++k) {
    const std::vector<double> dz = next.data().to_vector();
    for (int64_t j = 0; j < O; ++j) {
      level[static_cast<size_t>(j)] += s * dz[static_cast<size_t>(j)];
      forecast[static_cast<size_t>(k - 1)][static_cast<size_t>(j)] = level[static_cast<size_t>(j)];
    }
    if (k == K) break;
    std::tie(next, state) = model.forward(next, state);  // feed the prediction back in
  }

  for (int64_t k = 1; k <= K; ++k) {
    double se = 0, se_naive = 0;
    for (int64_t j = 0; j < O; ++j) {
      const int64_t o = origins[static_cast<size_t>(j)];
      const double truth = x[static_cast<size_t>(o + k)];
      se += std::pow(forecast[static_cast<size_t>(k - 1)][static_cast<size_t>(j)] - truth, 2);
      se_naive += std::pow(x[static_cast<size_t>(o)] - truth, 2);
    }
    res.rmse.push_back(std::sqrt(se / static_cast<double>(O)));
    res.naive.push_back(std::sqrt(se_naive / static_cast<double>(O)));
  }

  // Figure 1: the first part of the tail, truth against 1-step and k-step forecasts.
  const int64_t shown = std::min<int64_t>(O, 4 * K + 40);
  std::vector<double> ts, truth, one_step;
  for (int64_t j = 0; j < shown; ++j) {
    const int64_t o = origins[static_cast<size_t>(j)];
    ts.push_back(static_cast<double>(o + 1));
    truth.push_back(x[static_cast<size_t>(o + 1)]);
    one_step.push_back(forecast[0][static_cast<size_t>(j)]);
  }
  plot::LinePlot fig;
  fig.title = fmt::format("{}: held-out tail, {} forecasts", name, opt.cell);
  fig.xlabel = "t";
  fig.ylabel = name == "price" ? "price" : "x";
  fig.width = 900;
  fig.add("truth", ts, truth);
  fig.add("1-step forecast", ts, one_step, true);
  for (int64_t j = 10; j + K <= shown; j += K + K / 2) {
    std::vector<double> kt{static_cast<double>(origins[static_cast<size_t>(j)])}, kv{x[static_cast<size_t>(origins[static_cast<size_t>(j)])]};
    for (int64_t k = 1; k <= K; ++k) {
      kt.push_back(static_cast<double>(origins[static_cast<size_t>(j)] + k));
      kv.push_back(forecast[static_cast<size_t>(k - 1)][static_cast<size_t>(j)]);
    }
    fig.add(fmt::format("{}-step from t={}", K, origins[static_cast<size_t>(j)]), kt, kv, true);
  }
  figures.push_back(out + "/" + name + "_forecast.svg");
  fig.save(figures.back());

  // Figure 2: RMSE against horizon, model and naive.
  std::vector<double> ks;
  for (int64_t k = 1; k <= K; ++k) ks.push_back(static_cast<double>(k));
  plot::LinePlot err;
  err.title = fmt::format("{}: forecast error vs horizon ({} origins)", name, O);
  err.xlabel = "horizon k";
  err.ylabel = "RMSE";
  err.add(opt.cell + " (autoregressive)", ks, res.rmse);
  err.add("naive: last value", ks, res.naive, true);
  if (noise_floor > 0) err.add("noise floor", ks, std::vector<double>(ks.size(), noise_floor), true);
  figures.push_back(out + "/" + name + "_rmse.svg");
  err.save(figures.back());
  return res;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double e : v) s += e;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

std::string json_array(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += fmt::format("{}{:.6g}", i ? ", " : "", v[i]);
  return s + "]";
}

}  // namespace

int run(int argc, char** argv) {
  Cli cli(argc, argv,
          "time-series forecasting: a GRU/LSTM predicts the next value of a noisy sine and of a random-walk price,\n"
          "1-step and k-step autoregressive forecasts on a held-out tail, against the naive last-value forecast");
  const std::string which = cli.get_string("series", "both", "sine, price or both");
  Options opt;
  opt.cell = cli.get_string("cell", "gru", "gru or lstm");
  opt.hidden = cli.get_int("hidden", 16, "hidden size H");
  opt.window = cli.get_int("window", 48, "training and context window length T");
  opt.batch = cli.get_int("batch", 32, "windows per training step B");
  opt.steps = cli.get_int("steps", 1500, "training steps per series");
  opt.horizon = cli.get_int("horizon", 40, "largest forecast horizon K");
  opt.lr = cli.get_double("lr", 3e-3, "Adam learning rate (cosine-annealed to 5% of it)");
  const int64_t length = cli.get_int("length", 10000, "points per series (the last 20% are held out)");
  const double period = cli.get_double("period", 50, "sine period in steps");
  const double noise = cli.get_double("noise", 0.1, "sine noise standard deviation");
  const double vol = cli.get_double("vol", 0.01, "price: standard deviation of the log return per step");
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out = cli.out_dir();
  cli.done();
  UNROLL_CHECK(which == "sine" || which == "price" || which == "both", "time_series: --series must be sine, price or both, got '{}'", which);
  UNROLL_CHECK(opt.cell == "gru" || opt.cell == "lstm", "time_series: --cell must be gru or lstm, got '{}'", opt.cell);
  UNROLL_CHECK(opt.hidden > 0 && opt.window >= 4 && opt.batch > 0 && opt.steps > 0 && opt.horizon > 0,
               "time_series: sizes must be positive (window >= 4)");
  opt.progress = !json;
  plot::make_dirs(out);
  manual_seed(seed);
  Generator data_gen(seed + 1);

  std::vector<SeriesResult> results;
  std::vector<std::string> figures;
  if (which != "price") results.push_back(run_series("sine", noisy_sine(length, period, noise, data_gen), noise, opt, out, figures));
  if (which != "sine") results.push_back(run_series("price", random_walk_price(length, vol, data_gen), 0.0, opt, out, figures));

  plot::LinePlot loss_fig;
  loss_fig.title = "training loss (scaled increments)";
  loss_fig.xlabel = "step";
  loss_fig.ylabel = "MSE";
  for (const SeriesResult& r : results) loss_fig.add(r.name, r.losses);
  figures.push_back(out + "/loss.svg");
  loss_fig.save(figures.back());

  JsonLine line;
  double seconds = 0;
  for (const SeriesResult& r : results) {
    seconds += r.seconds;
    const size_t K = r.rmse.size();
    fmt::print("\n{} ({} H={}, {} steps, {:.1f}s): RMSE on the held-out tail\n", r.name, opt.cell, opt.hidden, opt.steps, r.seconds);
    fmt::print("  {:>8} {:>10} {:>10} {:>8}\n", "horizon", "model", "naive", "ratio");
    for (size_t k = 1; k <= K; ++k)
      if (k <= 3 || k % 10 == 0 || k == K)
        fmt::print("  {:>8} {:>10.4f} {:>10.4f} {:>8.3f}\n", k, r.rmse[k - 1], r.naive[k - 1], r.rmse[k - 1] / r.naive[k - 1]);
    const double ratio1 = r.rmse[0] / r.naive[0], ratio_mean = mean_of(r.rmse) / mean_of(r.naive);
    if (ratio1 < 0.97 && ratio_mean < 0.97)
      fmt::print("  the model beats the naive last-value forecast: {:.0f}% lower RMSE at k=1, {:.0f}% lower on average over k=1..{}\n",
                 100 * (1 - ratio1), 100 * (1 - ratio_mean), K);
    else {
      fmt::print("  the model does NOT beat the naive last-value forecast (RMSE ratio {:.3f} at k=1, {:.3f} on average).\n", ratio1,
                 ratio_mean);
      if (r.name == "price")
        fmt::print("  That is expected: the steps of a random walk are independent, so the last value is the\n"
                   "  optimal forecast; a model can at best match it.\n");
      else
        fmt::print("  Train longer (--steps) or with a larger --hidden.\n");
      if (ratio_mean > 1.03)
        fmt::print("  Here it does worse than the naive forecast: with nothing to learn, it has fit patterns in the\n"
                   "  training noise (overfitting); a smaller --hidden, fewer --steps or a longer --length bring the\n"
                   "  ratio towards 1.\n");
    }
    line.add(r.name + "_rmse_k1", r.rmse[0]).add(r.name + "_naive_k1", r.naive[0]);
    line.add(r.name + "_rmse_last", r.rmse[K - 1]).add(r.name + "_naive_last", r.naive[K - 1]);
    line.add(r.name + "_rmse_mean", mean_of(r.rmse)).add(r.name + "_naive_mean", mean_of(r.naive));
    line.add(r.name + "_first_loss", r.losses.front()).add(r.name + "_final_loss", mean_of(std::vector<double>(
        r.losses.end() - std::min<ptrdiff_t>(20, static_cast<ptrdiff_t>(r.losses.size())), r.losses.end())));
    line.add_raw(r.name + "_rmse", json_array(r.rmse)).add_raw(r.name + "_naive", json_array(r.naive));
  }
  line.add("horizon", static_cast<double>(opt.horizon)).add("seconds", seconds);
  fmt::print("\nfigures:\n");
  for (const std::string& f : figures) fmt::print("  {}\n", f);
  if (json) fmt::print("{}\n", line.str());
  return 0;
}

int main(int argc, char** argv) {
  return guarded_main("time_series", argc, argv, run);  // bad input or flag values: the message names them
}
