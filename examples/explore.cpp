// Writes the interactive pages of autograd's write_html for a tanh RNN, an LSTM and a GRU
// on a short adding problem, untrained and trained, and a hidden-state page (write_state_html)
// of the trained LSTM. Open them from file:// in a browser; docs/story.md says how to read them.
//
//   build/examples/explore                  # T=20, hidden 8, 600 training steps each, a few seconds
#include "common/cli.h"
#include "common/tasks.h"

#include <fmt/format.h>

#include <unroll.h>

using namespace unroll;
using namespace unroll::examples;

// The graph of the MSE on `probe`, recorded under a GraphTrace, backward run, page written.
static std::string page(LastStepRegressor& model, const AddingBatch& probe, const std::string& path,
                        const std::string& title) {
  GraphTrace trace;
  model.zero_grad();
  Variable loss = mse_loss(model.forward(Variable(probe.x)), probe.y);
  loss.set_name("loss");
  loss.backward();
  write_html(loss, path, {.title = title});
  model.zero_grad();
  return fmt::format("{} ({} nodes, loss {:.4f})", path, graph_size(loss), loss.item());
}

static int run(int argc, char** argv) {
  Cli cli(argc, argv, "explore: interactive HTML pages of the unrolled graph (tanh RNN / LSTM / GRU, adding problem)");
  AddingConfig cfg;
  cfg.T = cli.get_int("T", 20, "sequence length");
  cfg.hidden = cli.get_int("hidden", 8, "hidden size");
  cfg.steps = cli.get_int("steps", 600, "training steps per model");
  cfg.seed = cli.seed();
  const std::string out = cli.out_dir();
  cli.done();
  cfg.test_size = 200;
  cfg.progress = false;
  Generator probe_gen(cfg.seed + 7);
  const AddingBatch probe = adding_batch(cfg.T, 2, probe_gen);
  for (CellKind kind : kAllCells) {
    manual_seed(cfg.seed);
    LastStepRegressor model(kind, 2, cfg.hidden);
    const std::string key = cell_key(kind), name = cell_kind_name(kind);
    fmt::print("{} untrained: {}\n", name, page(model, probe, out + "/graph_" + key + "_untrained.html", name + ", untrained"));
    const TrainLog log = train_adding(model, cfg, name);
    fmt::print("{} trained ({} steps, held-out MSE {:.4f}, baseline {:.4f}): {}\n", name, cfg.steps, log.test_mse,
               kAddingBaseline, page(model, probe, out + "/graph_" + key + "_trained.html", name + ", trained"));
    if (kind == CellKind::Lstm) {
      NoGradGuard no_grad;
      std::vector<Variable> hs;
      Generator g(cfg.seed + 9);
      const AddingBatch one = adding_batch(cfg.T, 1, g);
      model.forward(Variable(one.x), &hs);
      std::vector<Tensor> rows;
      std::vector<std::string> tokens;
      for (int64_t t = 0; t < cfg.T; ++t) {
        rows.push_back(hs[static_cast<size_t>(t)].data());
        const Tensor xt = one.x.to(DType::F64);
        const double v = xt.data<double>()[t * 2], m = xt.data<double>()[t * 2 + 1];
        tokens.push_back(m > 0.5 ? fmt::format("*{:.1f}", v) : ".");
      }
      const std::string path = out + "/states_lstm_adding.html";
      write_state_html(path, tokens, concat(rows, 0), "LSTM hidden states on one adding sequence (* = marked value)");
      fmt::print("hidden states: {}\n", path);
    }
  }
  return 0;
}

int main(int argc, char** argv) { return guarded_main("explore", argc, argv, run); }
