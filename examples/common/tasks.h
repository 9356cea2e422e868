#pragma once
// The task code the tour shares (examples/adding.cpp, examples/gradient_flow.cpp and
// examples/demo.cpp): the adding problem's data, a many-to-one recurrent regressor, one
// training loop, and dL/dh_t measured with gradient hooks.
//
//   AddingConfig cfg{.T = 50, .steps = 1500};
//   manual_seed(0);
//   LastStepRegressor model(CellKind::Lstm, 2, cfg.hidden);
//   TrainLog log = train_adding(model, cfg);        // log.test_mse, log.loss (curve)
//   std::vector<double> g = hidden_grad_norms(model, adding_batch(200, 32, gen));
#include "common/cli.h"
#include "common/data.h"
#include "common/plot.h"

#include <unroll.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace unroll::examples {

// ---- the adding problem (Hochreiter & Schmidhuber 1997; the form of Le et al. 2015) -----

/// The MSE of always predicting the mean 1.0: Var(u1 + u2) = 2/12 for u1, u2 ~ U[0,1].
inline constexpr double kAddingBaseline = 1.0 / 6.0;

struct AddingBatch {
  Tensor x;  ///< [T,B,2]: (value ~ U[0,1], marker in {0,1}) per step
  Tensor y;  ///< [B,1]: the sum of the two marked values
};

/// B sequences of length T >= 2: one marker uniformly in the first half (t < T/2), one
/// uniformly in the second half; the target is the sum of the two marked values.
AddingBatch adding_batch(int64_t T, int64_t B, Generator& gen);

// ---- the model --------------------------------------------------------------------------

enum class CellKind { Rnn, Lstm, Gru };
const char* cell_kind_name(CellKind kind);  ///< "tanh RNN", "LSTM", "GRU"
inline constexpr CellKind kAllCells[] = {CellKind::Rnn, CellKind::Lstm, CellKind::Gru};

/// Many-to-one: a cell reads x_0 .. x_{T-1}, a Linear head reads the last h.
///   h_t = cell(x_t, h_{t-1});   y = h_{T-1} W^T + b
/// Weights come from default_generator() (call manual_seed first for a reproducible model).
class LastStepRegressor : public Module {
public:
  LastStepRegressor(CellKind kind, int64_t input_size, int64_t hidden_size);
  /// x [T,B,I] -> [B,1]; if hs is given, it receives the T hidden states h_t [B,H].
  Variable forward(const Variable& x, std::vector<Variable>* hs = nullptr);
  CellKind kind() const { return kind_; }
  RecurrentCell& cell() { return *cell_; }

private:
  CellKind kind_;
  std::shared_ptr<RecurrentCell> cell_;
  std::shared_ptr<Linear> head_;
};

// ---- training ---------------------------------------------------------------------------

enum class OptimKind { Adam, Sgd };

struct AddingConfig {
  int64_t T = 50;           ///< sequence length
  int64_t batch = 32;
  int64_t hidden = 32;
  int64_t steps = 1500;
  double lr = 3e-3;
  double clip = 1.0;        ///< clip_grad_norm max norm; 0: no clipping
  OptimKind optim = OptimKind::Adam;
  int64_t log_every = 25;   ///< one point of the loss curve per this many steps (their mean)
  int64_t test_size = 1000; ///< held-out sequences (drawn from seed + 1)
  uint64_t seed = 0;        ///< training batches
  bool progress = true;     ///< live progress line on stderr
  /// If set, called after each optimizer step with the step number (1..steps), e.g. to
  /// measure the model during training (examples/jacobian.cpp measures the sharpness).
  std::function<void(int64_t step)> after_step;
  /// LSTM only: the forget gate's bias at init (Jozefowicz, Zaremba & Sutskever 2015:
  /// 1.0 keeps the cell state open from the first step). NaN: LSTMCell's own init,
  /// identical to PyTorch's (every bias U(-1/sqrt(H), 1/sqrt(H))).
  double forget_bias = std::numeric_limits<double>::quiet_NaN();
  std::vector<CellKind> cells{CellKind::Rnn, CellKind::Lstm, CellKind::Gru};  ///< train_all_cells trains these
};

/// Sets the forget gate's bias of an LSTM cell (gate order i, f, g, o: rows H..2H-1) to
/// value: bias_ih[H:2H] = value and bias_hh[H:2H] = 0, so the gate's total bias is value.
/// The other gates keep their init. Throws if the cell has no bias.
void set_forget_bias(LSTMCell& cell, double value);

/// "--forget-bias" as a flag value: a number, or "pytorch" for LSTMCell's own init (NaN).
double parse_forget_bias(const std::string& text);
/// "1" (fmt's shortest form) or "PyTorch's init (U(-1/sqrt(H), 1/sqrt(H)))" for NaN.
std::string forget_bias_text(double forget_bias);
/// "rnn,lstm,gru" (any non-empty subset, any order) -> the cells; throws naming a bad name.
std::vector<CellKind> parse_cells(const std::string& text);

struct TrainLog {
  std::vector<double> step, loss;   ///< the loss curve: mean train MSE over each log_every steps
  std::vector<double> step_loss;    ///< train MSE, every step
  std::vector<double> grad_norm;    ///< gradient norm before clipping, every step
  double test_mse = 0;              ///< on the held-out set after training (NaN if diverged)
  double seconds = 0;
  int64_t params = 0;
};

/// Trains model on fresh adding batches with Adam (or SGD) and clip_grad_norm, then
/// evaluates it on a held-out set under NoGradGuard.
TrainLog train_adding(LastStepRegressor& model, const AddingConfig& cfg, const std::string& label);

/// MSE of model on batch, without recording a graph.
double evaluate(LastStepRegressor& model, const AddingBatch& batch);

// ---- gradient flow ----------------------------------------------------------------------

/// ||dL/dh_t|| (Frobenius over the batch) for t = 0 .. T-1, with L the MSE of the
/// prediction read from the last step. Measured by a hook on each h_t; the cells are
/// unchanged. Computed in float64 (the model is converted and converted back), so that
/// gradients far below float32's range still show; parameter gradients are cleared.
std::vector<double> hidden_grad_norms(LastStepRegressor& model, const AddingBatch& batch);

/// x = 0, 1, ..., n-1 as doubles (for plots).
std::vector<double> iota_x(size_t n);

// ---- the comparison the tour runs: the three cells, same data, same seed ------------------

struct CellRun {
  CellKind kind;
  std::unique_ptr<LastStepRegressor> model;
  TrainLog log;
  std::vector<double> grad_init, grad_trained;  ///< hidden_grad_norms before and after training
};

/// Trains a tanh RNN, an LSTM and a GRU (input 2, hidden cfg.hidden; cfg.cells), each built right
/// after manual_seed(cfg.seed), the LSTM's forget bias set from cfg.forget_bias; if probe is given, measures hidden_grad_norms on it before
/// and after training.
std::vector<CellRun> train_all_cells(const AddingConfig& cfg, const AddingBatch* probe = nullptr);

/// The table: model, parameters, held-out MSE, baseline / MSE, wall time.
void print_adding_table(const std::vector<CellRun>& runs);
/// Train MSE per step for each cell, with the baseline dashed, log y.
plot::LinePlot adding_loss_plot(const std::vector<CellRun>& runs, const AddingConfig& cfg);
/// ||dL/dh_t|| / ||dL/dh_{T-1}|| per cell, at init (dashed) and trained (solid), log y.
plot::LinePlot gradient_flow_plot(const std::vector<CellRun>& runs);
/// ||dL/dh_0|| / ||dL/dh_{T-1}|| per cell at init and trained.
void print_gradient_ratios(const std::vector<CellRun>& runs);
/// A run "solves" the adding problem when its held-out MSE is below this (the baseline is 0.167).
inline constexpr double kAddingSolved = 0.01;
/// The held-out MSE of each cell over several seeds (mse[i] is seed i's).
struct SeedSweep {
  CellKind kind;
  std::vector<double> mse;
};
/// Median of v (NaN counts as +inf, i.e. as a failure); NaN if v is empty.
double median_of(std::vector<double> v);
/// Per cell: median, [min, max] and how many runs have MSE < kAddingSolved.
void print_seed_sweep(const std::vector<SeedSweep>& sweep, uint64_t first_seed);
/// Adds <key>_median, <key>_min, <key>_max, <key>_solved per cell.
void add_sweep_metrics(JsonLine& json, const std::vector<SeedSweep>& sweep);
/// "rnn", "lstm", "gru": JSON key prefixes.
const char* cell_key(CellKind kind);
/// Adds <key>_test_mse, <key>_seconds and (if measured) <key>_ratio_init/_trained per cell.
void add_metrics(JsonLine& json, const std::vector<CellRun>& runs);
/// norms.front() / norms.back() (NaN if empty).
double first_to_last(const std::vector<double>& norms);


// ---- text for the language examples (examples/transformer.cpp, examples/bert_toy.cpp) ----
// The built-in corpus of examples/char_lm.cpp and the generated sentiment set of
// examples/classify.cpp, here so that other examples train on the very same data.

/// An original short essay about recurrent networks (about 7 KB of English): char_lm's
/// built-in training text.
const std::string& essay_text();

/// The words of the toy sentiment set. A clause is "<subject> <verb> [negation] [intensifier]
/// <adjective>"; it is positive when its adjective is positive XOR it is negated.
struct ToyLexicon {
  std::vector<std::string> subjects, verbs, negations, intensifiers, positive, negative, openers;
};
const ToyLexicon& toy_lexicon();

/// classify's generated toy set ("positive" / "negative"): an optional opener, one clause,
/// and with probability 0.4 "but" and a second clause, which then decides the label.
/// Word ORDER matters ("was not good" vs "was good"). Same generator state, same sentences
/// as examples/classify.cpp.
std::vector<TextExample> toy_sentiment(int64_t n, Generator& gen);

}  // namespace unroll::examples
