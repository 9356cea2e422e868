// Vanishing and exploding gradients, measured: how much of the loss's gradient reaches each
// step of a long sequence, for a tanh RNN, an LSTM and a GRU.
//
// L is the MSE of the adding-problem prediction made after the last step. A hook on each
// hidden state h_t (Variable::register_hook) records ||dL/dh_t|| while backward() runs;
// the cells are the library's, unchanged. Two figures:
//   gradient_flow.svg  ||dL/dh_t|| relative to the last step, fresh (PyTorch default init)
//                      and after a short training on the adding problem: the tanh RNN's
//                      gradient dies within a few dozen steps; the trained LSTM/GRU's does not.
//   exploding.svg      a tanh RNN whose recurrent weights are orthogonal times a gain > 1:
//                      the gradient grows backwards in time instead.
//   clipping.svg       training that exploding RNN with plain SGD, with and without
//                      clip_grad_norm: the loss curves and the gradient norm per step.
//
//   build/examples/gradient_flow                     # ~1 minute on one core
//   build/examples/gradient_flow --T 200 --gain 3
#include "common/cli.h"
#include "common/plot.h"
#include "common/tasks.h"

#include <fmt/format.h>

#include <unroll.h>

#include <cmath>

using namespace unroll;
using namespace unroll::examples;

// A tanh RNN regressor whose recurrent weight matrix is orthogonal times gain.
static void scale_recurrent(LastStepRegressor& model, double gain, Generator& gen) {
  auto& cell = dynamic_cast<RNNCell&>(model.cell());
  init::orthogonal_(cell.weight_hh, gain, gen);
}

static plot::LinePlot log_plot(std::string title, std::string xlabel, std::string ylabel) {
  plot::LinePlot p;
  p.title = std::move(title);
  p.xlabel = std::move(xlabel);
  p.ylabel = std::move(ylabel);
  p.log_y = true;
  return p;
}

static int run(int argc, char** argv) {
  Cli cli(argc, argv, "vanishing and exploding gradients: ||dL/dh_t|| per time step, measured with hooks");
  const int64_t T = cli.get_int("T", 150, "length of the sequences the gradients are measured on");
  const int64_t hidden = cli.get_int("hidden", 32, "hidden size of every cell");
  const int64_t batch = cli.get_int("batch", 32, "sequences per gradient measurement");
  AddingConfig train_cfg;
  train_cfg.T = cli.get_int("train-T", 50, "sequence length of the short training on the adding problem");
  train_cfg.steps = cli.get_int("train-steps", 2000, "training steps per model on the adding problem");
  train_cfg.hidden = hidden;
  const double gain = cli.get_double("gain", 2.0, "recurrent gain of the exploding tanh RNN (orthogonal x gain)");
  AddingConfig clip_cfg;
  clip_cfg.T = cli.get_int("clip-T", 50, "sequence length of the clipping experiment");
  clip_cfg.steps = cli.get_int("clip-steps", 600, "SGD steps with and without clipping");
  clip_cfg.lr = cli.get_double("clip-lr", 0.05, "SGD learning rate of the clipping experiment");
  clip_cfg.clip = cli.get_double("clip", 1.0, "clip_grad_norm max norm of the clipped run");
  clip_cfg.hidden = hidden;
  clip_cfg.optim = OptimKind::Sgd;
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out = cli.out_dir();
  cli.done();
  UNROLL_CHECK(T >= 2 && hidden >= 1 && batch >= 1 && train_cfg.T >= 2 && train_cfg.steps >= 1 && clip_cfg.T >= 2 &&
                   clip_cfg.steps >= 1 && clip_cfg.clip > 0 && gain > 0,
               "gradient_flow: need T, train-T, clip-T >= 2 and positive hidden, batch, train-steps, clip-steps, "
               "clip, gain");
  plot::make_dirs(out);
  train_cfg.seed = clip_cfg.seed = seed;
  train_cfg.test_size = clip_cfg.test_size = 500;

  // Data: one fixed batch of long adding-problem sequences for every measurement.
  Generator data_gen(seed + 7);
  const AddingBatch probe = adding_batch(T, batch, data_gen);
  fmt::print("||dL/dh_t|| over T={} steps (batch {}), hidden {}; L = MSE at the last step\n\n", T, batch, hidden);

  // 1. Fresh and briefly trained RNN, LSTM, GRU: the gradient measured before and after.
  const std::vector<CellRun> runs = train_all_cells(train_cfg, &probe);
  JsonLine result;
  add_metrics(result, runs);

  // 2. An exploding tanh RNN: recurrent weights orthogonal x gain.
  plot::LinePlot explode = log_plot(fmt::format("tanh RNN, recurrent weights = orthogonal x gain (T = {})", T),
                                    "time step t", "||dL/dh_t||");
  std::vector<std::pair<double, double>> gain_ratios;
  for (double g : {0.5, 1.0, gain}) {
    manual_seed(seed);
    LastStepRegressor model(CellKind::Rnn, 2, hidden);
    Generator init_gen(seed + 3);
    scale_recurrent(model, g, init_gen);
    const std::vector<double> norms = hidden_grad_norms(model, probe);
    gain_ratios.emplace_back(g, norms.front() / norms.back());
    explode.add(fmt::format("gain {}", g), iota_x(norms.size()), norms);
  }
  {
    manual_seed(seed);
    LastStepRegressor model(CellKind::Rnn, 2, hidden);
    const std::vector<double> norms = hidden_grad_norms(model, probe);
    explode.add("default init", iota_x(norms.size()), norms, true);
  }

  // 3. Training the exploding RNN with SGD, with and without clip_grad_norm.
  plot::LinePlot clip_loss = log_plot(
      fmt::format("tanh RNN (gain {}), SGD lr {}, adding problem T = {}", gain, clip_cfg.lr, clip_cfg.T),
      "training step", "train MSE");
  plot::LinePlot clip_norm = log_plot(fmt::format("the same runs: gradient norm before clipping (gain {})", gain),
                                      "training step", "||grad||");
  double clipped_mse = NAN, unclipped_mse = NAN, clipped_max_norm = 0, unclipped_max_norm = 0;
  double clipped_nan_step = NAN, unclipped_nan_step = NAN;
  for (bool clipped : {false, true}) {
    AddingConfig c = clip_cfg;
    if (!clipped) c.clip = 0;
    manual_seed(seed);
    LastStepRegressor model(CellKind::Rnn, 2, hidden);
    Generator init_gen(seed + 3);
    scale_recurrent(model, gain, init_gen);
    const std::string name = clipped ? fmt::format("clip_grad_norm({})", clip_cfg.clip) : "no clip";
    const TrainLog log = train_adding(model, c, "SGD, " + name);
    // A diverged run's loss becomes inf, then NaN: draw it up to there and say where.
    size_t finite = 0;
    while (finite < log.grad_norm.size() && std::isfinite(log.grad_norm[finite])) ++finite;
    // (The loss can overflow to Inf a few steps before the gradient norm turns NaN: the
    // label gives the gradient's step, the figure marks where the loss itself leaves.)
    const std::string label =
        finite < log.grad_norm.size() ? fmt::format("{} (gradient NaN at step {})", name, finite + 1) : name;
    // The whole run: the figure marks where it turns NaN/Inf and clips the axis (y_max
    // below), so that the diverging run does not flatten the clipped one.
    const size_t shown = std::min(log.step_loss.size(), finite + 1);
    std::vector<double> loss(log.step_loss.begin(), log.step_loss.begin() + static_cast<std::ptrdiff_t>(shown));
    std::vector<double> xs(loss.size());
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<double>(i + 1);
    clip_loss.add(label, xs, loss);
    clip_loss.series.back().markers = loss.size() < 30;
    const std::vector<double> norms(log.grad_norm.begin(), log.grad_norm.begin() + static_cast<std::ptrdiff_t>(shown));
    clip_norm.add(label, xs, norms);
    clip_norm.series.back().markers = norms.size() < 30;
    double max_norm = 0;
    for (double n : log.grad_norm) max_norm = std::isfinite(n) ? std::max(max_norm, n) : INFINITY;
    (clipped ? clipped_mse : unclipped_mse) = log.test_mse;
    (clipped ? clipped_max_norm : unclipped_max_norm) = max_norm;
    (clipped ? clipped_nan_step : unclipped_nan_step) = finite < log.grad_norm.size() ? static_cast<double>(finite + 1) : NAN;
  }
  clip_loss.y_max = 100;  // MSE of targets in [0, 2]: far past anything a working run shows
  clip_norm.y_max = 1e6;
  clip_loss.add_reference("baseline (predict 1.0)", 0.0, static_cast<double>(clip_cfg.steps), kAddingBaseline);
  clip_norm.add_reference(fmt::format("max norm {}", clip_cfg.clip), 0.0, static_cast<double>(clip_cfg.steps),
                          clip_cfg.clip);

  // Evaluation: the share of the gradient that reaches the first step.
  fmt::print("\n");
  print_gradient_ratios(runs);
  for (const CellRun& r : runs)
    fmt::print("  {} trained {} steps on T={}: test MSE {:.5f} (baseline {:.4f})\n", cell_kind_name(r.kind),
               train_cfg.steps, train_cfg.T, r.log.test_mse, kAddingBaseline);
  fmt::print("\ntanh RNN with recurrent weights orthogonal x gain:\n");
  for (const auto& [g, ratio] : gain_ratios) fmt::print("  gain {:<4} {:>14.3e}\n", g, ratio);
  result.add("explode_ratio", gain_ratios.back().second);
  fmt::print("\nSGD on the exploding RNN (T={}, {} steps):\n", clip_cfg.T, clip_cfg.steps);
  auto nan_text = [](double step) {
    return std::isnan(step) ? std::string("gradient finite throughout") : fmt::format("gradient NaN at step {}", step);
  };
  fmt::print("  no clipping:        max gradient norm {:.3g}, {}, test MSE {:.4f}\n", unclipped_max_norm,
             nan_text(unclipped_nan_step), unclipped_mse);
  fmt::print("  clip_grad_norm({}): max gradient norm {:.3g} (before clipping), {}, test MSE {:.4f}\n", clip_cfg.clip,
             clipped_max_norm, nan_text(clipped_nan_step), clipped_mse);
  result.add("unclipped_test_mse", unclipped_mse).add("clipped_test_mse", clipped_mse);
  result.add("unclipped_max_grad_norm", unclipped_max_norm).add("unclipped_nan_step", unclipped_nan_step);

  // Figures.
  plot::LinePlot flow = gradient_flow_plot(runs);
  flow.title += fmt::format(" (trained {} steps at T = {})", train_cfg.steps, train_cfg.T);
  const std::string paths[] = {out + "/gradient_flow.svg", out + "/exploding.svg", out + "/clipping_loss.svg",
                               out + "/clipping_grad_norm.svg"};
  flow.save(paths[0]);
  explode.save(paths[1]);
  clip_loss.save(paths[2]);
  clip_norm.save(paths[3]);
  fmt::print("\nfigures:\n");
  for (const std::string& p : paths) fmt::print("  {}\n", p);
  result.add("figure_flow", paths[0]).add("figure_exploding", paths[1]);
  if (json) fmt::print("{}\n", result.str());
  return 0;
}

int main(int argc, char** argv) {
  return guarded_main("gradient_flow", argc, argv, run,
                      on_error<unroll::Error>(ErrorPrefix::argv0, 2));  // bad flag values
}
