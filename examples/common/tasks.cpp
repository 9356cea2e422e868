#include "common/tasks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace unroll::examples {

AddingBatch adding_batch(int64_t T, int64_t B, Generator& gen) {
  UNROLL_CHECK(T >= 2 && B >= 1, "adding_batch: needs T >= 2 and B >= 1, got T={} B={}", T, B);
  std::vector<double> x(static_cast<size_t>(T * B * 2), 0.0), y(static_cast<size_t>(B));
  auto at = [&](int64_t t, int64_t b, int64_t k) -> double& { return x[static_cast<size_t>((t * B + b) * 2 + k)]; };
  const int64_t half = T / 2;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) at(t, b, 0) = gen.uniform();
    const int64_t first = gen.randint(0, half), second = gen.randint(half, T);
    at(first, b, 1) = 1.0;
    at(second, b, 1) = 1.0;
    y[static_cast<size_t>(b)] = at(first, b, 0) + at(second, b, 0);
  }
  return {tensor(x, {T, B, 2}), tensor(y, {B, 1})};
}

const char* cell_kind_name(CellKind kind) {
  switch (kind) {
    case CellKind::Rnn: return "tanh RNN";
    case CellKind::Lstm: return "LSTM";
    case CellKind::Gru: return "GRU";
  }
  return "?";
}

static std::shared_ptr<RecurrentCell> make_cell(CellKind kind, int64_t I, int64_t H) {
  switch (kind) {
    case CellKind::Rnn: return std::make_shared<RNNCell>(I, H);
    case CellKind::Lstm: return std::make_shared<LSTMCell>(I, H);
    case CellKind::Gru: return std::make_shared<GRUCell>(I, H);
  }
  return nullptr;
}

LastStepRegressor::LastStepRegressor(CellKind kind, int64_t input_size, int64_t hidden_size)
    : kind_(kind),
      cell_(register_module("cell", make_cell(kind, input_size, hidden_size))),
      head_(register_module("head", std::make_shared<Linear>(hidden_size, 1))) {}

Variable LastStepRegressor::forward(const Variable& x, std::vector<Variable>* hs) {
  const int64_t T = x.size(0);
  State state;  // empty: the cell's zero state
  for (int64_t t = 0; t < T; ++t) {
    StepScope step(static_cast<int>(t));
    Variable x_t = squeeze(narrow(x, 0, t, 1), 0);  // [B,I]
    state = cell_->forward(x_t, state);             // state[0] = h_t [B,H]
    if (hs) hs->push_back(state[0]);
  }
  return head_->forward(state[0]);  // [B,1]
}

double evaluate(LastStepRegressor& model, const AddingBatch& batch) {
  NoGradGuard no_grad;
  return mse_loss(model.forward(Variable(batch.x)), batch.y).item();
}

TrainLog train_adding(LastStepRegressor& model, const AddingConfig& cfg, const std::string& label) {
  UNROLL_CHECK(cfg.steps >= 1 && cfg.log_every >= 1, "train_adding: steps {} and log_every {} must be >= 1",
               cfg.steps, cfg.log_every);
  Generator data_gen(cfg.seed), test_gen(cfg.seed + 1);
  const AddingBatch test = adding_batch(cfg.T, cfg.test_size, test_gen);
  const std::vector<Variable> params = model.parameters();
  std::unique_ptr<optim::Optimizer> opt;
  if (cfg.optim == OptimKind::Adam) opt = std::make_unique<optim::Adam>(params, cfg.lr);
  else opt = std::make_unique<optim::SGD>(params, cfg.lr);

  TrainLog log;
  log.params = model.num_parameters();
  Progress progress(label, cfg.steps, cfg.progress);
  double window = 0;
  int64_t in_window = 0;
  for (int64_t step = 1; step <= cfg.steps; ++step) {
    const AddingBatch batch = adding_batch(cfg.T, cfg.batch, data_gen);
    opt->zero_grad();
    Variable loss = mse_loss(model.forward(Variable(batch.x)), batch.y);  // forward: T steps recorded
    loss.backward();                                                      // BPTT
    const double max_norm = cfg.clip > 0 ? cfg.clip : std::numeric_limits<double>::infinity();
    log.grad_norm.push_back(clip_grad_norm(params, max_norm));            // the norm before clipping
    opt->step();

    log.step_loss.push_back(loss.item());
    window += loss.item();
    ++in_window;
    if (step % cfg.log_every == 0 || step == cfg.steps) {
      log.step.push_back(static_cast<double>(step));
      log.loss.push_back(window / static_cast<double>(in_window));
      window = 0;
      in_window = 0;
    }
    progress.update(step, loss.item());
  }
  progress.finish();
  log.test_mse = evaluate(model, test);
  if (!std::isfinite(log.test_mse)) log.test_mse = std::numeric_limits<double>::quiet_NaN();
  log.seconds = progress.seconds();
  return log;
}

std::vector<double> hidden_grad_norms(LastStepRegressor& model, const AddingBatch& batch) {
  const DType dtype = model.parameters().front().dtype();
  model.to(DType::F64);  // vanished gradients reach 1e-60 and below: past float32's range
  std::vector<Variable> hs;
  Variable loss = mse_loss(model.forward(Variable(batch.x.to(DType::F64)), &hs), batch.y.to(DType::F64));
  std::vector<double> norms(hs.size(), 0.0);
  for (size_t t = 0; t < hs.size(); ++t)
    hs[t].register_hook([&norms, t](const Tensor& g) { norms[t] = std::sqrt(sum(g * g).item()); });
  loss.backward();
  model.zero_grad();
  model.to(dtype);
  return norms;
}

std::vector<double> iota_x(size_t n) {
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<double>(i);
  return x;
}

const char* cell_key(CellKind kind) {
  switch (kind) {
    case CellKind::Rnn: return "rnn";
    case CellKind::Lstm: return "lstm";
    case CellKind::Gru: return "gru";
  }
  return "?";
}

double first_to_last(const std::vector<double>& norms) {
  return norms.empty() ? std::numeric_limits<double>::quiet_NaN() : norms.front() / norms.back();
}

std::vector<CellRun> train_all_cells(const AddingConfig& cfg, const AddingBatch* probe) {
  std::vector<CellRun> runs;
  for (CellKind kind : kAllCells) {
    manual_seed(cfg.seed);
    CellRun r{kind, std::make_unique<LastStepRegressor>(kind, 2, cfg.hidden), {}, {}, {}};
    if (probe) r.grad_init = hidden_grad_norms(*r.model, *probe);
    r.log = train_adding(*r.model, cfg, cell_kind_name(kind));
    if (probe) r.grad_trained = hidden_grad_norms(*r.model, *probe);
    runs.push_back(std::move(r));
  }
  return runs;
}

void print_adding_table(const std::vector<CellRun>& runs) {
  fmt::print("{:<10} {:>8} {:>12} {:>13} {:>9}\n", "model", "params", "test MSE", "baseline/MSE", "time");
  for (const CellRun& r : runs)
    fmt::print("{:<10} {:>8} {:>12.5f} {:>12.1f}x {:>8.1f}s\n", cell_kind_name(r.kind), r.log.params,
               r.log.test_mse, kAddingBaseline / r.log.test_mse, r.log.seconds);
  fmt::print("{:<10} {:>8} {:>12.5f} {:>12.1f}x\n", "baseline", "-", kAddingBaseline, 1.0);
}

static const char* cell_colour(CellKind kind) {
  switch (kind) {
    case CellKind::Rnn: return "#d62728";
    case CellKind::Lstm: return "#1f77b4";
    case CellKind::Gru: return "#2ca02c";
  }
  return "#000000";
}

plot::LinePlot adding_loss_plot(const std::vector<CellRun>& runs, const AddingConfig& cfg) {
  plot::LinePlot p;
  p.title = fmt::format("adding problem, T = {}: train MSE (mean of {} steps)", cfg.T, cfg.log_every);
  p.xlabel = "training step";
  p.ylabel = "MSE";
  p.log_y = true;
  for (const CellRun& r : runs) {
    p.add(cell_kind_name(r.kind), r.log.step, r.log.loss);
    p.series.back().color = cell_colour(r.kind);
  }
  p.add("baseline 1/6", {0.0, static_cast<double>(cfg.steps)}, {kAddingBaseline, kAddingBaseline}, true);
  p.series.back().color = "#555555";
  return p;
}

plot::LinePlot gradient_flow_plot(const std::vector<CellRun>& runs) {
  plot::LinePlot p;
  const size_t T = runs.empty() ? 0 : std::max(runs.front().grad_init.size(), runs.front().grad_trained.size());
  p.title = fmt::format("gradient reaching step t from the loss at step {}", T > 0 ? T - 1 : 0);
  p.xlabel = "time step t";
  p.ylabel = "||dL/dh_t|| / ||dL/dh_T-1||";
  p.log_y = true;
  auto relative = [](std::vector<double> v) {
    const double last = v.back();
    for (double& x : v) x /= last;
    return v;
  };
  for (const CellRun& r : runs) {
    if (!r.grad_trained.empty()) {
      p.add(fmt::format("{} trained", cell_kind_name(r.kind)), iota_x(r.grad_trained.size()), relative(r.grad_trained));
      p.series.back().color = cell_colour(r.kind);
    }
    if (!r.grad_init.empty()) {
      p.add(fmt::format("{} at init", cell_kind_name(r.kind)), iota_x(r.grad_init.size()), relative(r.grad_init), true);
      p.series.back().color = cell_colour(r.kind);
    }
  }
  return p;
}

void print_gradient_ratios(const std::vector<CellRun>& runs) {
  const size_t T = runs.empty() ? 0 : runs.front().grad_init.size();
  fmt::print("||dL/dh_0|| / ||dL/dh_{}||: the share of the gradient that reaches the first step\n", T > 0 ? T - 1 : 0);
  fmt::print("{:<10} {:>12} {:>12}\n", "model", "at init", "trained");
  for (const CellRun& r : runs)
    fmt::print("{:<10} {:>12.3e} {:>12.3e}\n", cell_kind_name(r.kind), first_to_last(r.grad_init),
               first_to_last(r.grad_trained));
}

void add_metrics(JsonLine& json, const std::vector<CellRun>& runs) {
  for (const CellRun& r : runs) {
    const std::string key = cell_key(r.kind);
    json.add(key + "_test_mse", r.log.test_mse).add(key + "_seconds", r.log.seconds);
    if (!r.grad_init.empty()) json.add(key + "_ratio_init", first_to_last(r.grad_init));
    if (!r.grad_trained.empty()) json.add(key + "_ratio_trained", first_to_last(r.grad_trained));
  }
}

}  // namespace unroll::examples
