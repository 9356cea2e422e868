// The adding problem: a long-term dependency that a tanh RNN cannot learn and an LSTM or
// GRU can (Hochreiter & Schmidhuber 1997, in the form of Le, Jaitly & Hinton 2015).
//
// Each sequence has T steps of (value ~ U[0,1], marker in {0,1}); exactly two steps are
// marked, one in each half. After reading the whole sequence the model must output the
// sum of the two marked values (many-to-one, MSE). Always answering the mean, 1.0, scores
// MSE 1/6 ~ 0.167: a model below that line has learned to carry a value across up to T
// steps. Same hidden size, optimizer, learning rate, clipping and data for all three cells.
//
//   build/examples/adding                      # T=100, ~35 s of compute on one core
//   build/examples/adding --T 50 --steps 2000  # ~6 s
//   build/examples/adding --seeds 5            # seeds 0-4: median, range, solved count
#include "common/cli.h"
#include "common/plot.h"
#include "common/tasks.h"

#include <fmt/format.h>

#include <unroll.h>

using namespace unroll;
using namespace unroll::examples;

static int run(int argc, char** argv) {
  Cli cli(argc, argv, "adding problem: tanh RNN vs LSTM vs GRU on a long-term dependency (many-to-one, MSE)");
  AddingConfig cfg;
  cfg.T = cli.get_int("T", 100, "sequence length (the two marked values are up to T-1 steps apart)");
  cfg.hidden = cli.get_int("hidden", 32, "hidden size of every cell");
  cfg.batch = cli.get_int("batch", 32, "sequences per training step");
  cfg.steps = cli.get_int("steps", 4000, "training steps per model");
  cfg.lr = cli.get_double("lr", 3e-3, "Adam learning rate");
  cfg.clip = cli.get_double("clip", 1.0, "clip_grad_norm max norm (0: no clipping)");
  cfg.test_size = cli.get_int("test", 1000, "held-out sequences for the final MSE");
  cfg.log_every = cli.get_int("log-every", 50, "steps per point of the loss curve");
  cfg.forget_bias = parse_forget_bias(cli.get_string(
      "forget-bias", "2", "LSTM forget-gate bias at init (Jozefowicz et al. 2015 use 1; 2 solves T=200 on 5/5 seeds, 1 on 2/5); 'pytorch': LSTMCell's PyTorch init"));
  cfg.cells = parse_cells(cli.get_string("cells", "rnn,lstm,gru", "which cells to train (comma-separated)"));
  cfg.seed = cli.seed();
  const int64_t seeds = cli.get_int("seeds", 1, "train with seeds seed .. seed+N-1 and print median, range and solved count");
  const bool json = cli.json();
  const std::string out = cli.out_dir();
  cli.done();
  UNROLL_CHECK(cfg.T >= 2 && cfg.hidden >= 1 && cfg.batch >= 1 && cfg.steps >= 1 && cfg.test_size >= 1 && seeds >= 1,
               "adding: need T >= 2 and positive hidden, batch, steps, test, seeds (got T={} hidden={} batch={} steps={} test={} seeds={})",
               cfg.T, cfg.hidden, cfg.batch, cfg.steps, cfg.test_size, seeds);
  plot::make_dirs(out);

  // Data: fresh random batches every step, a fixed held-out set; the baseline is the mean.
  fmt::print("adding problem: T={}, hidden {}, batch {}, {} Adam steps (lr {}), clip_grad_norm {}\n", cfg.T,
             cfg.hidden, cfg.batch, cfg.steps, cfg.lr, cfg.clip);
  fmt::print("LSTM forget-gate bias at init: {}\n", forget_bias_text(cfg.forget_bias));
  fmt::print("baseline (always predict 1.0): MSE {:.4f}\n\n", kAddingBaseline);

  // Models and training: the same loop for each cell, each model built from the same seed.
  const std::vector<CellRun> runs = train_all_cells(cfg);

  // Evaluation: the held-out MSE of each model next to the baseline.
  fmt::print("\n");
  print_adding_table(runs);
  double total = 0;
  for (const CellRun& r : runs) total += r.log.seconds;

  // More seeds: the same configuration, seeds seed+1 .. seed+N-1 (the figure shows the first).
  std::vector<SeedSweep> sweep;
  for (const CellRun& r : runs) sweep.push_back({r.kind, {r.log.test_mse}});
  for (int64_t k = 1; k < seeds; ++k) {
    AddingConfig c = cfg;
    c.seed = cfg.seed + static_cast<uint64_t>(k);
    fmt::print("\nseed {}\n", c.seed);
    const std::vector<CellRun> more = train_all_cells(c);
    for (size_t i = 0; i < more.size(); ++i) {
      sweep[i].mse.push_back(more[i].log.test_mse);
      total += more[i].log.seconds;
    }
  }
  if (seeds > 1) {
    fmt::print("\n");
    print_seed_sweep(sweep, cfg.seed);
  }

  // Figures.
  const std::string path = out + "/adding_loss.svg";
  adding_loss_plot(runs, cfg).save(path);
  fmt::print("\ntotal training time {:.1f}s\nfigure (seed {}): {}\n", total, cfg.seed, path);
  JsonLine result;
  result.add("T", static_cast<double>(cfg.T)).add("baseline", kAddingBaseline);
  add_metrics(result, runs);
  if (seeds > 1) add_sweep_metrics(result, sweep);
  result.add("seconds", total).add("figure", path);
  if (json) fmt::print("{}\n", result.str());
  return 0;
}

int main(int argc, char** argv) {
  return guarded_main("adding", argc, argv, run, on_error<unroll::Error>(ErrorPrefix::argv0, 2));  // bad flag values
}
