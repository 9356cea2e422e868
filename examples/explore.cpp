// Writes the interactive pages of autograd's write_html for a tanh RNN, an LSTM and a GRU
// on a short adding problem, untrained and trained, and two hidden-state pages
// (write_state_html): the adding LSTM's, and that of a small character-level LSTM language
// model trained on the embedded essay (which units switch on at spaces, quotes, line ends).
// Open them from file:// in a browser; docs/story.md says how to read them.
//
//   build/examples/explore                  # T=20, hidden 8, 600 training steps each; a few seconds
#include "common/cli.h"
#include "common/tasks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

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

/// A character LM: Embedding -> LSTM -> Linear, trained on random windows of `text` with
/// Adam, then run over the text's first `show` characters; its h_t go to a hidden-state page.
static std::string char_lm_states(const std::string& text, int64_t hidden, int64_t steps, int64_t show,
                                  uint64_t seed, const std::string& path) {
  std::vector<int64_t> id(256, -1);
  std::vector<int64_t> ids;
  int64_t V = 0;
  for (unsigned char c : text) {
    if (id[c] < 0) id[c] = V++;
    ids.push_back(id[c]);
  }
  manual_seed(seed);
  Embedding emb(V, 16);
  LSTM lstm(LSTMOptions{.input_size = 16, .hidden_size = hidden});
  Linear head(hidden, V);
  std::vector<Variable> params;
  for (Module* m : std::initializer_list<Module*>{&emb, &lstm, &head})
    for (const Variable& p : m->parameters()) params.push_back(p);
  optim::Adam opt(params, 3e-3);
  Generator gen(seed + 11);
  const int64_t T = 64, B = 16, N = static_cast<int64_t>(ids.size());
  double loss_value = 0;
  for (int64_t step = 0; step < steps; ++step) {  // random windows: x = chars t..t+T-1, y = the next ones
    std::vector<int64_t> x(static_cast<size_t>(T * B)), y(static_cast<size_t>(T * B));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t start = gen.randint(0, N - T - 1);
      for (int64_t t = 0; t < T; ++t) {
        x[static_cast<size_t>(t * B + b)] = ids[static_cast<size_t>(start + t)];
        y[static_cast<size_t>(t * B + b)] = ids[static_cast<size_t>(start + t + 1)];
      }
    }
    opt.zero_grad();
    Variable logits = head(lstm(emb(indices(x, {T, B}))).output);
    Variable loss = cross_entropy(reshape(logits, {T * B, V}), indices(y));
    loss.backward();
    clip_grad_norm(params, 1.0);
    opt.step();
    loss_value = loss.item();
  }
  NoGradGuard no_grad;
  const int64_t L = std::min<int64_t>(show, N);
  std::vector<int64_t> first(ids.begin(), ids.begin() + L);
  const Tensor h = lstm(emb(indices(first, {L, 1}))).output.data();  // [L, 1, H]
  std::vector<std::string> tokens;
  for (int64_t t = 0; t < L; ++t) tokens.emplace_back(1, text[static_cast<size_t>(t)]);
  write_state_html(path, tokens, h.reshape({L, hidden}),
                   fmt::format("character LSTM (H={}, {} Adam steps, last train loss {:.2f} nats/char) on the essay",
                               hidden, steps, loss_value));
  return fmt::format("{} (vocabulary {}, last train loss {:.2f} nats/char, ln V = {:.2f})", path, V, loss_value,
                     std::log(static_cast<double>(V)));
}

static int run(int argc, char** argv) {
  Cli cli(argc, argv, "explore: interactive HTML pages of the unrolled graph (tanh RNN / LSTM / GRU, adding problem)");
  AddingConfig cfg;
  cfg.T = cli.get_int("T", 20, "sequence length");
  cfg.hidden = cli.get_int("hidden", 8, "hidden size");
  cfg.steps = cli.get_int("steps", 600, "training steps per model");
  const int64_t lm_hidden = cli.get_int("lm-hidden", 32, "character LM: hidden size");
  const int64_t lm_steps = cli.get_int("lm-steps", 2000, "character LM: training steps (0: no char-LM page)");
  const int64_t lm_show = cli.get_int("lm-show", 400, "character LM: characters shown on its hidden-state page");
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
  UNROLL_CHECK(lm_steps >= 0 && lm_hidden >= 1 && lm_show >= 1, "explore: need lm-steps >= 0, lm-hidden >= 1, lm-show >= 1");
  if (lm_steps > 0)
    fmt::print("hidden states of a character LM: {}\n",
               char_lm_states(essay_text(), lm_hidden, lm_steps, lm_show, cfg.seed, out + "/states_char_lm.html"));
  return 0;
}

int main(int argc, char** argv) { return guarded_main("explore", argc, argv, run); }
