// The tour: what the engine is (a loop recorded, backward, gradcheck), then what it is
// for: the adding problem, where a tanh RNN cannot learn a dependency across T steps and an
// LSTM or a GRU can, and the measured reason: how much gradient reaches the early steps.
//
//   ./scripts/dev.sh demo              # ~35 s of compute on one core
//   build/examples/demo --quick        # a few seconds (T=10, few steps)
//   build/examples/demo --T 50 --steps 2000
#include "common/cli.h"
#include "common/plot.h"
#include "common/tasks.h"

#include <fmt/format.h>

#include <unroll.h>

using namespace unroll;
using namespace unroll::examples;

// Part 1, the core idea: a 5-step tanh RNN is an ordinary loop; backward() through it is
// BPTT; gradcheck compares that gradient with central differences in float64.
static bool core_idea(const std::string& out) {
  Generator gen(0);
  Variable w_ih(randn({3, 1}, gen) * 0.5, true), w_hh(randn({3, 3}, gen) * 0.5, true), b(zeros({3}), true);
  w_hh.set_name("weight_hh");
  const Tensor xs = tensor({0.5, -1.0, 0.25, 0.8, -0.3}, {5, 1, 1});  // [T,B,I]
  auto rnn_loss = [&](const std::vector<Variable>& p) {
    Variable h(zeros({1, 3}, p[0].dtype()));
    for (int t = 0; t < 5; ++t) {  // forward: a plain loop, every op recorded
      StepScope step(t);
      Variable x(narrow(xs, 0, t, 1).reshape({1, 1}).to(p[0].dtype()));
      h = tanh(linear(x, p[0]) + linear(h, p[1], p[2]));  // h_t = tanh(x W_ih^T + h W_hh^T + b)
    }
    return sum(h * h);
  };
  Variable loss = rnn_loss({w_ih, w_hh, b});
  const std::string dot = out + "/rnn_graph.dot";
  write_dot(loss, dot, {.cluster_steps = true, .title = "5-step tanh RNN"});
  fmt::print("1. the core idea: a 5-step tanh RNN, hidden 3, written as a loop -> a graph of {} nodes\n",
             graph_size(loss));
  loss.backward();  // BPTT: one reverse walk of the unrolled graph
  fmt::print("   loss {:.6f}; backward() gives dloss/dW_hh, e.g. [0,0] = {:.6f}\n", loss.item(), w_hh.grad().at({0, 0}));
  const GradcheckResult check = gradcheck(rnn_loss, {w_ih.data(), w_hh.data(), b.data()});
  double worst = 0;
  for (const GradcheckInput& in : check.inputs) worst = std::max(worst, in.max_abs_error);
  fmt::print("   gradcheck (float64, central differences): {}, max abs error {:.1e}\n   graph: {} "
             "(dot -Tsvg {} -o rnn_graph.svg)\n\n",
             check.ok ? "passed" : "FAILED", worst, dot, dot);
  return check.ok;
}

static int run(int argc, char** argv) {
  Cli cli(argc, argv,
          "the unroll tour: a recorded loop, BPTT and gradcheck; then the adding problem, tanh RNN vs LSTM vs GRU, "
          "and the gradient flow that explains the result");
  const bool quick = cli.get_flag("quick", "a few seconds: T=10, hidden 16, 800 steps (for tests)");
  AddingConfig cfg;
  cfg.T = cli.get_int("T", quick ? 10 : 100, "sequence length of the adding problem");
  cfg.hidden = cli.get_int("hidden", quick ? 16 : 32, "hidden size of every cell");
  cfg.batch = cli.get_int("batch", 32, "sequences per training step");
  cfg.steps = cli.get_int("steps", quick ? 800 : 4000, "Adam steps per model");
  cfg.lr = cli.get_double("lr", 3e-3, "Adam learning rate");
  cfg.clip = cli.get_double("clip", 1.0, "clip_grad_norm max norm");
  cfg.test_size = cli.get_int("test", quick ? 200 : 1000, "held-out sequences");
  cfg.log_every = cli.get_int("log-every", quick ? 10 : 50, "steps per point of the loss curve");
  cfg.forget_bias = parse_forget_bias(cli.get_string(
      "forget-bias", "2", "LSTM forget-gate bias at init (Jozefowicz et al. 2015 use 1; 2 solves T=200 on 5/5 seeds, 1 on 2/5); 'pytorch': LSTMCell's PyTorch init"));
  cfg.cells = parse_cells(cli.get_string("cells", "rnn,lstm,gru", "which cells to train (comma-separated)"));
  cfg.seed = cli.seed();
  const bool json = cli.json();
  const std::string out = cli.out_dir();
  cli.done();
  UNROLL_CHECK(cfg.T >= 2 && cfg.hidden >= 1 && cfg.batch >= 1 && cfg.steps >= 1 && cfg.test_size >= 1 &&
                   cfg.log_every >= 1,
               "demo: need T >= 2 and positive hidden, batch, steps, test, log-every");
  plot::make_dirs(out);

  const bool core_ok = core_idea(out);

  // Part 2, the adding problem: data, the three models, the same training loop.
  fmt::print("2. the adding problem: T={} steps of (value ~ U[0,1], marker); the target is the sum of the two\n"
             "   marked values (one in each half). Predicting the mean 1.0 scores MSE {:.4f} (the baseline).\n"
             "   tanh RNN, LSTM, GRU: hidden {}, batch {}, {} Adam steps (lr {}), clip_grad_norm {};\n"
             "   LSTM forget-gate bias at init: {}\n\n",
             cfg.T, kAddingBaseline, cfg.hidden, cfg.batch, cfg.steps, cfg.lr, cfg.clip, forget_bias_text(cfg.forget_bias));
  Generator probe_gen(cfg.seed + 7);
  const AddingBatch probe = adding_batch(cfg.T, 32, probe_gen);  // for the gradient measurements
  const std::vector<CellRun> runs = train_all_cells(cfg, &probe);
  fmt::print("\n");
  print_adding_table(runs);

  // Part 3, why: ||dL/dh_t|| through hooks on each h_t, before and after training.
  fmt::print("\n3. why: the gradient of the loss at the last step with respect to each h_t (hooks on h_t)\n");
  print_gradient_ratios(runs);

  // Figures.
  const std::string loss_path = out + "/adding_loss.svg", flow_path = out + "/gradient_flow.svg";
  adding_loss_plot(runs, cfg).save(loss_path);
  gradient_flow_plot(runs).save(flow_path);
  double total = 0;
  for (const CellRun& r : runs) total += r.log.seconds;
  fmt::print("\ntraining time {:.1f}s\nfigures:\n  {}\n  {}\n", total, loss_path, flow_path);
  fmt::print("more: build/examples/adding, build/examples/gradient_flow (exploding gradients, clipping); docs/story.md\n");
  fmt::print("see BPTT happen: build/examples/explore --out {} writes interactive pages ({}/graph_rnn_trained.html, "
             "graph_lstm_trained.html, ...; open from file://, docs/story.md 'Reading the graph pages')\n", out, out);

  JsonLine result;
  result.add("gradcheck_ok", core_ok ? 1.0 : 0.0).add("T", static_cast<double>(cfg.T)).add("baseline", kAddingBaseline);
  add_metrics(result, runs);
  result.add("seconds", total).add("figure_loss", loss_path).add("figure_flow", flow_path);
  if (json) fmt::print("{}\n", result.str());
  return core_ok ? 0 : 1;
}

int main(int argc, char** argv) {
  return guarded_main("demo", argc, argv, run, on_error<unroll::Error>(ErrorPrefix::argv0, 2));  // bad flag values
}
