#pragma once
// Recurrent layers as plain compositions: cells, a generic sequence runner, and the
// multi-layer, bidirectional sequence modules RNN, LSTM and GRU.
//
// A cell maps one time step (x [B,I], state) to a new state; it is written with the ops of
// autograd/ops.h and contains no backward code. run_cell() is an ordinary loop over time
// that calls the cell once per step; every op it runs is recorded, so backward() through
// its output is back-propagation through time. Parameter names, shapes, gate order,
// equations and default initialisation match torch.nn.RNNCell/LSTMCell/GRUCell and
// torch.nn.RNN/LSTM/GRU, so state_dicts move between the two.
//
// Writing your own cell: derive from RecurrentCell, register its parameters, and return
// the new state from forward(); run_cell(), variable-length batches and gradcheck work
// with it unchanged (see tests/test_custom_cell.cpp).
//
// Note [input projections]
// Most cells start each step with an affine map of x_t alone (x_t W_ih^T + b_ih). Done per
// step, that product has B rows: at B = 32 and I = 64 it is a thin GEMM that runs at a
// fraction of the rate of a deep one, and at B = 1 a matrix-vector product. Nothing in it
// depends on the recurrence, so run_cell computes it for a block of steps in one product
// of up to kProjectRows rows and hands each step its rows. A cell opts in by splitting its
// step in two, each still its equations in ops:
//
//   Variable project_inputs(const Variable& x) override { return linear(x, w_ih, b_ih); }
//   State forward_projected(const Variable& p, const State& s) override {
//     return {tanh(add_linear(p, s[0], w_hh, b_hh))};  // p + h W_hh^T + b_hh
//   }
//   State forward(const Variable& x, const State& s) override {
//     return forward_projected(project_inputs(x), s);
//   }
//
// The graph records one linear over the block's rows, a narrow per step and the step's own
// ops, so backward needs no rule of its own: the narrows' gradients land in one [rows,P]
// buffer, and the projection's backward is one deep GEMM for dx and one for dW_ih. The
// block is bounded (not all T steps) so the projection of a 10,000-step sequence is not
// held at once; within a block, rows are the same products per-step calls would compute,
// up to the GEMM's rounding order. Under anomaly mode run_cell calls forward() per step
// instead, so a NaN in x_t is reported by step t's own op, not by a block's projection.
//
// Note [truncated BPTT]
// To train on a long stream in chunks, carry the final state into the next chunk with
// detach(): the values flow on, the graph stops at the chunk boundary, so memory and
// backward time stay constant per chunk.
//
//   State state;                                   // empty: zeros
//   for (const auto& [x, y] : chunks) {            // x [T,B,I], y [T,B,1]
//     SequenceResult r = run_cell(cell, x, state);
//     Variable loss = mean(pow(head(r.output) - y, 2.0));
//     loss.backward();                             // through this chunk only
//     optimizer.step();
//     state = detach(r.final_state);               // keep the values, cut the graph
//   }
//
// With a sequence module the same line is state = detach(out.state), passed as the next
// chunk's initial state (out = lstm(x, state)).
//
// Without the detach(), the second chunk's graph reaches back into the first one, whose
// saved tensors the first backward() already freed, and backward() throws an error saying
// so (pass retain_graph only if you really mean full BPTT over all chunks).
#include "autograd/ops.h"
#include "nn/module.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace unroll {

/// A recurrent state: RNN/GRU {h}, LSTM {h, c}; any cell: state[0] is the output h [B,H].
using State = std::vector<Variable>;

/// Each Variable of the state detached from the graph (truncated BPTT, see the note above).
State detach(const State& state);

/// One step of a recurrence: (x [B,I], state) -> new state. Built-in and user cells
/// derive from it; run_cell() drives any of them over a sequence.
class RecurrentCell : public Module {
public:
  /// The zero state for a batch of B.
  virtual State initial_state(int64_t batch, DType dtype) const = 0;
  /// x [B,I], state -> new state (state[0] is the new h [B,H]).
  virtual State forward(const Variable& x, const State& state) = 0;
  virtual int64_t hidden_size() const = 0;
  /// Same as forward(x, state).
  State operator()(const Variable& x, const State& state) { return forward(x, state); }

  /// Optional (Note [input projections]): the part of a step that reads x alone, for many
  /// rows at once: x [N,I] -> [N,P]. A cell that defines it also defines forward_projected,
  /// and its forward(x, state) is forward_projected(project_inputs(x), state); run_cell
  /// then projects the inputs of many time steps in one product. The default returns an
  /// undefined Variable: the cell is run one forward() per step.
  virtual Variable project_inputs(const Variable& x);
  /// One step from its projected input p [B,P] (rows of project_inputs); only called on a
  /// cell whose project_inputs is defined (the default throws).
  virtual State forward_projected(const Variable& p, const State& state);
};

enum class Nonlinearity { Tanh, Relu };

/// What the built-in cells share, like torch.nn.RNNCellBase: weight_ih [G*H,I],
/// weight_hh [G*H,H], bias_ih and bias_hh [G*H] (G gates; registered in this order, all
/// U(-1/sqrt(H), 1/sqrt(H))), a zero state of one or two [B,H] tensors, and the checks of
/// one step's input and state.
class RNNCellBase : public RecurrentCell {
public:
  State initial_state(int64_t batch, DType dtype) const override;  ///< zeros [B,H] per state tensor
  int64_t hidden_size() const override { return hidden_size_; }  ///< H
  int64_t input_size() const { return input_size_; }             ///< I
  Variable weight_ih, weight_hh, bias_ih, bias_hh;  // biases undefined when bias = false

protected:
  RNNCellBase(const char* name, int64_t input_size, int64_t hidden_size, int64_t gates, size_t state_size, bool bias);
  /// What a step starts from: `state`, or zeros when it is empty, checked against x
  /// (x [B,I], or with `projected` x's projection [B,G*H]; each state tensor [B,H]; all
  /// of the parameters' dtype).
  State step_state(const Variable& x, const State& state, bool projected = false) const;
  /// Checks the rows given to project_inputs: x [N,I] of the parameters' dtype.
  void check_rows(const Variable& x) const;

private:
  const char* name_;
  int64_t input_size_, hidden_size_, gates_;
  size_t state_size_;
};

/// h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act tanh or relu (torch.nn.RNNCell).
/// weight_ih [H,I], weight_hh [H,H], bias_ih [H], bias_hh [H].
class RNNCell : public RNNCellBase {
public:
  RNNCell(int64_t input_size, int64_t hidden_size, bool bias = true,
          Nonlinearity nonlinearity = Nonlinearity::Tanh);
  /// state {h}, or empty for zeros -> {h'}
  State forward(const Variable& x, const State& state) override;
  /// x [B,I], h [B,H] -> h' [B,H]
  Variable forward(const Variable& x, const Variable& h);
  Variable project_inputs(const Variable& x) override;  ///< x W_ih^T + b_ih: [N,H]
  State forward_projected(const Variable& p, const State& state) override;
  Nonlinearity nonlinearity;
};

/// torch.nn.LSTMCell, gates in the order i, f, g, o:
///   [i f g o] = x W_ih^T + b_ih + h W_hh^T + b_hh
///   c' = sigmoid(f) * c + sigmoid(i) * tanh(g);   h' = sigmoid(o) * tanh(c')
/// weight_ih [4H,I], weight_hh [4H,H], bias_ih [4H], bias_hh [4H].
class LSTMCell : public RNNCellBase {
public:
  LSTMCell(int64_t input_size, int64_t hidden_size, bool bias = true);
  /// state {h, c}, or empty for zeros -> {h', c'}
  State forward(const Variable& x, const State& state) override;
  /// x [B,I], h [B,H], c [B,H] -> (h', c')
  std::pair<Variable, Variable> forward(const Variable& x, const Variable& h, const Variable& c);
  Variable project_inputs(const Variable& x) override;  ///< x W_ih^T + b_ih: [N,4H]
  State forward_projected(const Variable& p, const State& state) override;
};

/// torch.nn.GRUCell, gates in the order r, z, n:
///   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr);   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
///   n = tanh(W_in x + b_in + r * (W_hn h + b_hn));   h' = (1 - z) * n + z * h
/// weight_ih [3H,I], weight_hh [3H,H], bias_ih [3H], bias_hh [3H].
class GRUCell : public RNNCellBase {
public:
  GRUCell(int64_t input_size, int64_t hidden_size, bool bias = true);
  /// state {h}, or empty for zeros -> {h'}
  State forward(const Variable& x, const State& state) override;
  /// x [B,I], h [B,H] -> h' [B,H]
  Variable forward(const Variable& x, const Variable& h);
  Variable project_inputs(const Variable& x) override;  ///< x W_ih^T + b_ih: [N,3H]
  State forward_projected(const Variable& p, const State& state) override;
};

// ---- running a cell over a sequence ------------------------------------------------------

enum class Direction { Forward, Reverse };

struct SequenceResult {
  Variable output;    ///< [T,B,H]: state[0] after each step (zero at padded steps)
  State final_state;  ///< the state after each sequence's last valid step
};

/// Runs `cell` over x [T,B,I] one step at a time (a plain loop: narrow out x_t, call the
/// cell, stack the h's), each step under StepScope(t). A cell that projects its inputs
/// (Note [input projections]) has x_t's projection computed for a block of steps at once
/// and gets forward_projected(p_t, state) instead of forward(x_t, state). `initial` empty means the cell's
/// zero state. `lengths` (one per batch element, each in 1..T, any order) marks the steps
/// t >= lengths[b] of sequence b as padding: there the state is carried unchanged
/// (state = where(valid_t, new, old)) and the output is zero, so final_state is each
/// sequence's own last valid step, like PyTorch's packed sequences. Direction::Reverse
/// walks t = T-1 .. 0; with lengths, each sequence is then read backwards from its own
/// last valid step (PyTorch's reverse direction on packed sequences).
SequenceResult run_cell(RecurrentCell& cell, const Variable& x, const State& initial = {},
                        const std::vector<int64_t>& lengths = {}, Direction direction = Direction::Forward);

struct StepsResult {
  std::vector<Variable> outputs;  ///< T x [B,H] (zero at padded steps)
  State final_state;
};

/// run_cell on a sequence given as T steps xs[t] [B,I] (e.g. produced one at a time), with
/// the same lengths and direction semantics; returns the T outputs [B,H] unstacked.
StepsResult run_cell_steps(RecurrentCell& cell, const std::vector<Variable>& xs, const State& initial = {},
                           const std::vector<int64_t>& lengths = {}, Direction direction = Direction::Forward);

/// [T,B] of 1 where t < lengths[b], else 0: multiply a per-step loss by it (and divide by
/// sum(lengths)) so padded steps do not count.
Tensor length_mask(const std::vector<int64_t>& lengths, int64_t T, DType dtype = DType::F32);

// ---- sequence modules ----------------------------------------------------------------------
//
// Options are written with designated initialisers, in the order the members are declared:
//   LSTM lstm({.input_size = 8, .hidden_size = 16, .num_layers = 2, .bidirectional = true,
//              .dropout = 0.1, .batch_first = false});
// Input x [T,B,I] ([B,T,I] if batch_first); output [T,B,D*H] ([B,T,D*H]), where D = 2 if
// bidirectional else 1; states h_0/h_n (and c_0/c_n) are [L*D,B,H] (never batch-first),
// indexed by layer * D + direction, like PyTorch. Parameters are named weight_ih_l{k},
// weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} (+ "_reverse" for the backward direction),
// registered per layer: forward direction first, then reverse.

// The options of RNN, LSTM and GRU list their fields in the order of PyTorch's constructor
// arguments (input_size, hidden_size, num_layers, [nonlinearity,] bias, batch_first,
// dropout, bidirectional), the same for all three, so a designated initialiser written in
// that order compiles for each (C++ requires declaration order).
struct RNNOptions {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 1;
  Nonlinearity nonlinearity = Nonlinearity::Tanh;  ///< RNN only (torch.nn.RNN's 4th argument)
  bool bias = true;
  bool batch_first = false;
  double dropout = 0.0;  ///< on each layer's output except the last, in training mode only
  bool bidirectional = false;
};

struct LSTMOptions {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;
  double dropout = 0.0;  ///< on each layer's output except the last, in training mode only
  bool bidirectional = false;
};

using GRUOptions = LSTMOptions;  ///< the same fields

/// What RNN, LSTM and GRU return: output [T,B,D*H] (or [B,T,D*H]) and the final state,
/// one [L*D,B,H] per state component ({h_n}, or {h_n, c_n} for the LSTM), so the state
/// passes straight back in as the next chunk's initial state.
struct RecurrentOutput {
  Variable output;
  State state;
  const Variable& h_n() const {
    UNROLL_CHECK(!state.empty(), "RecurrentOutput::h_n: the state is empty");
    return state[0];
  }
  const Variable& c_n() const {  ///< LSTM only
    UNROLL_CHECK(state.size() == 2, "RecurrentOutput::c_n: only an LSTM has a cell state (this state has {} tensor{})",
                 state.size(), state.size() == 1 ? "" : "s");
    return state[1];
  }
};

/// The machinery RNN, LSTM and GRU share: L layers x D directions of cells, each driven by
/// run_cell(); layer k > 0 reads the concatenated outputs of layer k-1. Any of the three
/// runs through forward(x, state), so a program can hold a RecurrentStack and not care
/// which cell it is.
class RecurrentStack : public Module {
public:
  /// x [T,B,I] (or [B,T,I]); initial: empty (zeros), or one [L*D,B,H] per state component;
  /// lengths: per sequence (empty: all T) -> {output, final state}
  RecurrentOutput forward(const Variable& x, const State& initial = {}, const std::vector<int64_t>& lengths = {});
  RecurrentOutput operator()(const Variable& x, const State& initial = {}, const std::vector<int64_t>& lengths = {}) {
    return forward(x, initial, lengths);
  }
  /// Tensors in the state: 1 (RNN, GRU) or 2 (LSTM).
  size_t state_size() const { return state_size_; }
  int64_t input_size() const { return input_size_; }           ///< I
  int64_t hidden_size() const { return hidden_size_; }         ///< H
  int64_t num_layers() const { return num_layers_; }           ///< L
  int64_t num_directions() const { return bidirectional_ ? 2 : 1; }  ///< D
  bool batch_first() const { return batch_first_; }
  double dropout() const { return dropout_; }
  /// The cell of one layer and direction (0 forward, 1 reverse); its parameters are the
  /// module's, so run_cell(stack.cell(k, 0), ...) uses the same weights.
  RecurrentCell& cell(int64_t layer, int64_t direction = 0);
  /// The generator of the between-layer dropout masks (see Generator::get_state).
  Generator& dropout_generator() { return gen_; }

protected:
  struct Config {
    const char* name;
    size_t state_size;
    int64_t input_size, hidden_size, num_layers;
    bool bidirectional;
    double dropout;
    bool batch_first;
  };
  /// make_cell(input size of the layer) builds one cell; it is called per layer and
  /// direction in PyTorch's parameter order.
  RecurrentStack(const Config& config, const std::function<std::shared_ptr<RecurrentCell>(int64_t)>& make_cell);

private:
  const char* name_;
  size_t state_size_;
  int64_t input_size_, hidden_size_, num_layers_;
  bool bidirectional_;
  double dropout_;
  bool batch_first_;
  std::vector<std::shared_ptr<RecurrentCell>> cells_;  // [layer * D + direction]
  Generator gen_;                                      // between-layer dropout masks
};

/// torch.nn.RNN: a stack of RNNCells.
class RNN : public RecurrentStack {
public:
  explicit RNN(const RNNOptions& options);
  using RecurrentStack::forward;
  using RecurrentStack::operator();
  /// x [T,B,I], h_0 [L*D,B,H] (undefined: zeros), lengths (empty: all T) -> {output, {h_n}}
  RecurrentOutput forward(const Variable& x, const Variable& h_0, const std::vector<int64_t>& lengths = {});
  RecurrentOutput operator()(const Variable& x, const Variable& h_0, const std::vector<int64_t>& lengths = {}) {
    return forward(x, h_0, lengths);
  }
  const RNNOptions options;
};

/// torch.nn.LSTM: a stack of LSTMCells; the state is {h, c}.
class LSTM : public RecurrentStack {
public:
  explicit LSTM(const LSTMOptions& options);
  const LSTMOptions options;
};

/// torch.nn.GRU: a stack of GRUCells.
class GRU : public RecurrentStack {
public:
  explicit GRU(const GRUOptions& options);
  using RecurrentStack::forward;
  using RecurrentStack::operator();
  /// x [T,B,I], h_0 [L*D,B,H] (undefined: zeros), lengths (empty: all T) -> {output, {h_n}}
  RecurrentOutput forward(const Variable& x, const Variable& h_0, const std::vector<int64_t>& lengths = {});
  RecurrentOutput operator()(const Variable& x, const Variable& h_0, const std::vector<int64_t>& lengths = {}) {
    return forward(x, h_0, lengths);
  }
  const GRUOptions options;
};

}  // namespace unroll
