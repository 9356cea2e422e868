#include "nn/recurrent.h"

#include "autograd/ops.h"
#include "nn/init.h"
#include "nn/layers.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace unroll {

State detach(const State& state) {
  State out;
  out.reserve(state.size());
  for (const Variable& s : state) out.push_back(s.detach());
  return out;
}

namespace {

// Registers weight_ih [G*H, I], weight_hh [G*H, H] and (if bias) bias_ih, bias_hh [G*H],
// all U(-1/sqrt(H), 1/sqrt(H)) in this order, as PyTorch's RNNCellBase does.
struct CellParams {
  Variable weight_ih, weight_hh, bias_ih, bias_hh;
};

template <typename Register>
CellParams make_cell_params(const char* cell, int64_t I, int64_t H, int64_t G, bool bias, Register reg) {
  UNROLL_CHECK(I > 0 && H > 0, "{}: sizes must be positive, got input_size={} hidden_size={}", cell, I, H);
  const double bound = 1.0 / std::sqrt(static_cast<double>(H));
  CellParams p;
  p.weight_ih = reg("weight_ih", zeros({G * H, I}));
  p.weight_hh = reg("weight_hh", zeros({G * H, H}));
  if (bias) {
    p.bias_ih = reg("bias_ih", zeros({G * H}));
    p.bias_hh = reg("bias_hh", zeros({G * H}));
  }
  for (Variable* v : {&p.weight_ih, &p.weight_hh, &p.bias_ih, &p.bias_hh})
    if (v->defined()) init::uniform_(*v, -bound, bound);
  return p;
}

// Validates one step's input and state of a built-in cell: x [B,I], n_state tensors [B,H],
// all of the parameters' dtype.
// `what` is "input" (x [B,I]) or "projected input" (p [B,G*H], I = G*H).
void check_step(const char* cell, const char* what, const Variable& x, const State& state, size_t n_state, int64_t I,
                int64_t H, DType param_dtype) {
  UNROLL_CHECK(x.defined(), "{}: {} is undefined", cell, what);
  UNROLL_CHECK(x.ndim() == 2, "{}: {} {} must be 2-D [B,I] (one time step; use run_cell or a sequence module "
               "for [T,B,I])", cell, what, x.shape());
  UNROLL_CHECK(x.size(1) == I, "{}: {} {} has {} features, expected {}", cell, what, x.shape(), x.size(1), I);
  UNROLL_CHECK(x.dtype() == param_dtype, "{}: {} is {} but the parameters are {} (convert with module.to())",
               cell, what, x.dtype(), param_dtype);
  UNROLL_CHECK(state.size() == n_state, "{}: state has {} tensors, expected {}", cell, state.size(), n_state);
  const int64_t B = x.size(0);
  for (size_t k = 0; k < state.size(); ++k) {
    const Variable& s = state[k];
    UNROLL_CHECK(s.defined(), "{}: state[{}] is undefined", cell, k);
    UNROLL_CHECK(s.ndim() == 2 && s.size(1) == H, "{}: state[{}] {} must be [B,H] with H = {}", cell, k, s.shape(),
                 H);
    UNROLL_CHECK(s.size(0) == B, "{}: state[{}] {} has batch {} but the {} {} has batch {}", cell, k, s.shape(),
                 s.size(0), what, x.shape(), B);
    UNROLL_CHECK(s.dtype() == param_dtype, "{}: state[{}] is {} but the parameters are {}", cell, k, s.dtype(),
                 param_dtype);
  }
}

State zero_state(size_t n, int64_t B, int64_t H, DType dtype) {
  State s;
  for (size_t k = 0; k < n; ++k) s.emplace_back(zeros({B, H}, dtype));
  return s;
}

void check_lengths(const char* who, const std::vector<int64_t>& lengths, int64_t T, int64_t B) {
  if (lengths.empty()) return;
  UNROLL_CHECK(static_cast<int64_t>(lengths.size()) == B, "{}: {} lengths given for a batch of {}", who,
               lengths.size(), B);
  for (size_t b = 0; b < lengths.size(); ++b)
    UNROLL_CHECK(lengths[b] >= 1 && lengths[b] <= T, "{}: lengths[{}] = {} is outside 1..T = 1..{}", who, b,
                 lengths[b], T);
}

}  // namespace

// ---- cells ---------------------------------------------------------------------------------

Variable RecurrentCell::project_inputs(const Variable&) { return Variable(); }

State RecurrentCell::forward_projected(const Variable& p, const State&) {
  fail("forward_projected: this cell does not project its inputs (its project_inputs returns undefined); call "
       "forward(x, state) instead (got a projected input {})",
       p.defined() ? p.shape().str() : std::string("(undefined)"));
}

RNNCellBase::RNNCellBase(const char* name, int64_t input_size, int64_t hidden_size, int64_t gates,
                         size_t state_size, bool bias)
    : name_(name), input_size_(input_size), hidden_size_(hidden_size), gates_(gates), state_size_(state_size) {
  auto reg = [this](const char* n, Tensor t) { return register_parameter(n, std::move(t)); };
  CellParams p = make_cell_params(name, input_size, hidden_size, gates, bias, reg);
  weight_ih = p.weight_ih, weight_hh = p.weight_hh, bias_ih = p.bias_ih, bias_hh = p.bias_hh;
}

State RNNCellBase::initial_state(int64_t batch, DType dtype) const {
  return zero_state(state_size_, batch, hidden_size_, dtype);
}

State RNNCellBase::step_state(const Variable& x, const State& state, bool projected) const {
  State s = state.empty() && x.defined() ? initial_state(x.ndim() == 2 ? x.size(0) : 0, x.dtype()) : state;
  check_step(name_, projected ? "projected input" : "input", x, s, state_size_,
             projected ? gates_ * hidden_size_ : input_size_, hidden_size_, weight_ih.dtype());
  return s;
}

void RNNCellBase::check_rows(const Variable& x) const {
  check_step(name_, "input", x, {}, 0, input_size_, hidden_size_, weight_ih.dtype());
}

RNNCell::RNNCell(int64_t input_size, int64_t hidden_size, bool bias, Nonlinearity nl)
    : RNNCellBase("RNNCell", input_size, hidden_size, 1, 1, bias), nonlinearity(nl) {}

State RNNCell::forward(const Variable& x, const State& state) {
  const State s = step_state(x, state);  // checks x and the state first, with their names
  return forward_projected(project_inputs(x), s);
}

Variable RNNCell::project_inputs(const Variable& x) {
  check_rows(x);
  return linear(x, weight_ih, bias_ih);  // [N,H]
}

State RNNCell::forward_projected(const Variable& p, const State& state) {
  const State s = step_state(p, state, /*projected=*/true);
  Variable pre = add_linear(p, s[0], weight_hh, bias_hh);  // x W_ih^T + b_ih + h W_hh^T + b_hh: [B,H]
  return {nonlinearity == Nonlinearity::Tanh ? tanh(pre) : relu(pre)};
}

Variable RNNCell::forward(const Variable& x, const Variable& h) { return forward(x, State{h})[0]; }

LSTMCell::LSTMCell(int64_t input_size, int64_t hidden_size, bool bias)
    : RNNCellBase("LSTMCell", input_size, hidden_size, 4, 2, bias) {}

State LSTMCell::forward(const Variable& x, const State& state) {
  const State s = step_state(x, state);  // checks x and the state first, with their names
  return forward_projected(project_inputs(x), s);
}

Variable LSTMCell::project_inputs(const Variable& x) {
  check_rows(x);
  return linear(x, weight_ih, bias_ih);  // [N,4H]
}

State LSTMCell::forward_projected(const Variable& p, const State& state) {
  const State s = step_state(p, state, /*projected=*/true);
  const Variable &h = s[0], &c = s[1];
  Variable gates = add_linear(p, h, weight_hh, bias_hh);  // x W_ih^T + b_ih + h W_hh^T + b_hh: [B,4H]
  std::vector<Variable> ifgo = chunk(gates, 4, 1);                                 // 4 x [B,H]
  Variable i = sigmoid(ifgo[0]), f = sigmoid(ifgo[1]), g = tanh(ifgo[2]), o = sigmoid(ifgo[3]);
  Variable c_next = f * c + i * g;
  Variable h_next = o * tanh(c_next);
  return {h_next, c_next};
}

std::pair<Variable, Variable> LSTMCell::forward(const Variable& x, const Variable& h, const Variable& c) {
  State s = forward(x, State{h, c});
  return {s[0], s[1]};
}

GRUCell::GRUCell(int64_t input_size, int64_t hidden_size, bool bias)
    : RNNCellBase("GRUCell", input_size, hidden_size, 3, 1, bias) {}

State GRUCell::forward(const Variable& x, const State& state) {
  const State s = step_state(x, state);  // checks x and the state first, with their names
  return forward_projected(project_inputs(x), s);
}

Variable GRUCell::project_inputs(const Variable& x) {
  check_rows(x);
  return linear(x, weight_ih, bias_ih);  // [N,3H]
}

State GRUCell::forward_projected(const Variable& p, const State& state) {
  const State s = step_state(p, state, /*projected=*/true);
  const Variable& h = s[0];
  std::vector<Variable> gi = chunk(p, 3, 1);  // W_ir x + b_ir, W_iz x + b_iz, W_in x + b_in
  std::vector<Variable> gh = chunk(linear(h, weight_hh, bias_hh), 3, 1);  // W_hr h + b_hr, W_hz h + b_hz, W_hn h + b_hn
  Variable r = sigmoid(gi[0] + gh[0]);
  Variable z = sigmoid(gi[1] + gh[1]);
  Variable n = tanh(gi[2] + r * gh[2]);
  return {(1.0 - z) * n + z * h};
}

Variable GRUCell::forward(const Variable& x, const Variable& h) { return forward(x, State{h})[0]; }

// ---- run_cell ------------------------------------------------------------------------------

Tensor length_mask(const std::vector<int64_t>& lengths, int64_t T, DType dtype) {
  UNROLL_CHECK(T >= 1, "length_mask: T must be positive, got {}", T);
  const auto B = static_cast<int64_t>(lengths.size());
  check_lengths("length_mask", lengths, T, B);
  Tensor m = zeros({T, B}, DType::F64);
  double* d = m.data<double>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) d[t * B + b] = t < lengths[static_cast<size_t>(b)] ? 1.0 : 0.0;
  return m.to(dtype);
}

namespace {

// Rows a projection block holds at most (Note [input projections] in nn/recurrent.h):
// deep enough for the GEMM to run at full rate, small enough that a long sequence's
// projection is never held at once.
constexpr int64_t kProjectRows = 1024;

// Where a run's step inputs come from: a [T,B,I] tensor, or a list of T steps [B,I].
struct StepSource {
  Variable x;                    // [T,B,I], or undefined
  const std::vector<Variable>* xs = nullptr;  // T x [B,I] when x is undefined
  int64_t T = 0, B = 0;

  /// x_t [B,I]
  Variable step(int64_t t) const {
    if (xs) return (*xs)[static_cast<size_t>(t)];
    return reshape(narrow(x, 0, t, 1), {B, x.size(2)});
  }
  /// the rows of steps t0 .. t0+n-1, [n*B, I]
  Variable rows(int64_t t0, int64_t n) const {
    if (!xs) return reshape(narrow(x, 0, t0, n), {n * B, x.size(2)});
    if (n == 1) return (*xs)[static_cast<size_t>(t0)];
    return concat(std::span<const Variable>(xs->data() + t0, static_cast<size_t>(n)), 0);
  }
};

StepSource source_of(const char* who, const Variable& x) {
  UNROLL_CHECK(x.defined() && x.ndim() == 3, "{}: input {} must be 3-D [T,B,I]", who,
               x.defined() ? x.shape().str() : std::string("(undefined)"));
  UNROLL_CHECK(x.size(0) >= 1 && x.size(1) >= 1, "{}: input {} has no time steps or no batch", who, x.shape());
  return {x, nullptr, x.size(0), x.size(1)};
}

StepSource source_of(const std::vector<Variable>& xs) {
  UNROLL_CHECK(!xs.empty(), "run_cell: no time steps given");
  for (size_t t = 0; t < xs.size(); ++t)
    UNROLL_CHECK(xs[t].defined() && xs[t].ndim() == 2 && xs[t].shape() == xs[0].shape(),
                 "run_cell: step {} input is {}, expected 2-D [B,I] like step 0 {}", t,
                 xs[t].defined() ? xs[t].shape().str() : std::string("undefined"), xs[0].shape());
  return {Variable(), &xs, static_cast<int64_t>(xs.size()), xs[0].size(0)};
}

// Feeds a cell its steps: forward(x_t, state), or, for a cell that projects its inputs,
// forward_projected(p_t, state) with p_t the rows of a block projection made when the
// block's first step (in the run's order) comes up; one block is held at a time.
class StepRunner {
public:
  StepRunner(RecurrentCell& cell, const StepSource& src)
      : cell_(cell), src_(src), block_steps_(std::max<int64_t>(1, kProjectRows / src.B)), projects_(!anomaly_mode()) {}

  State operator()(int64_t t, const State& state) {
    if (projects_ && (t < first_ || t >= first_ + count_)) project_block(t);
    if (!projects_) return cell_.forward(src_.step(t), state);
    return cell_.forward_projected(narrow(block_, 0, (t - first_) * src_.B, src_.B), state);  // p_t [B,P]
  }

private:
  void project_block(int64_t t) {
    first_ = t / block_steps_ * block_steps_;
    count_ = std::min(block_steps_, src_.T - first_);
    block_ = cell_.project_inputs(src_.rows(first_, count_));
    if (!block_.defined()) {  // the cell runs step by step
      projects_ = false;
      return;
    }
    UNROLL_CHECK(block_.ndim() == 2 && block_.size(0) == count_ * src_.B,
                 "run_cell: the cell's project_inputs returned {} for {} rows, expected 2-D [{},P]", block_.shape(),
                 count_ * src_.B, count_ * src_.B);
  }

  RecurrentCell& cell_;
  const StepSource& src_;
  const int64_t block_steps_;
  bool projects_;             // until project_inputs says otherwise; never in anomaly mode
  int64_t first_ = 0, count_ = 0;  // the steps block_ holds
  Variable block_;            // [count_*B, P]
};

StepsResult run_steps(RecurrentCell& cell, const StepSource& src, DType dtype, const State& initial,
                      const std::vector<int64_t>& lengths, Direction direction) {
  const int64_t T = src.T, B = src.B, H = cell.hidden_size();
  check_lengths("run_cell", lengths, T, B);

  State state = cell.initial_state(B, dtype);
  if (!initial.empty()) {
    UNROLL_CHECK(initial.size() == state.size(), "run_cell: initial state has {} tensors, the cell's state has {}",
                 initial.size(), state.size());
    for (size_t k = 0; k < state.size(); ++k)
      UNROLL_CHECK(initial[k].defined() && initial[k].shape() == state[k].shape(),
                   "run_cell: initial state[{}] is {}, expected {} for a batch of {}", k,
                   initial[k].defined() ? initial[k].shape().str() : std::string("undefined"), state[k].shape(), B);
    state = initial;
  }

  // valid[t]: [B,1] of 1 where step t is part of sequence b; left undefined when every
  // sequence covers step t (then no masking ops are recorded).
  std::vector<Tensor> valid(static_cast<size_t>(T)), padded(static_cast<size_t>(T));
  if (!lengths.empty()) {
    const Tensor mask = length_mask(lengths, T, dtype);  // [T,B]
    for (int64_t t = 0; t < T; ++t) {
      bool all_valid = true;
      for (int64_t len : lengths) all_valid = all_valid && t < len;
      if (all_valid) continue;
      valid[static_cast<size_t>(t)] = narrow(mask, 0, t, 1).reshape({B, 1});
      padded[static_cast<size_t>(t)] = rsub(1.0, valid[static_cast<size_t>(t)]);
    }
  }

  StepRunner run_step(cell, src);
  std::vector<Variable> outputs(static_cast<size_t>(T));  // each [B,H]
  for (int64_t k = 0; k < T; ++k) {
    const int64_t t = direction == Direction::Forward ? k : T - 1 - k;
    StepScope step(static_cast<int>(t));
    State next = run_step(t, state);
    UNROLL_CHECK(next.size() == state.size(), "run_cell: step {}: the cell returned {} state tensors, expected {}", t,
                 next.size(), state.size());
    UNROLL_CHECK(next[0].ndim() == 2 && next[0].size(0) == B && next[0].size(1) == H,
                 "run_cell: step {}: the cell's output state[0] is {}, expected [B,H] = [{},{}]", t, next[0].shape(), B,
                 H);
    Variable h_t = next[0];
    const Tensor& v = valid[static_cast<size_t>(t)];
    if (v.defined()) {
      // Padded step: keep the old state, emit zeros.
      for (size_t j = 0; j < next.size(); ++j) {
        Shape mask_shape{B};
        for (int d = 1; d < next[j].ndim(); ++d) mask_shape.push_back(1);
        next[j] = where(v.reshape(mask_shape), next[j], state[j]);
      }
      h_t = masked_fill(h_t, padded[static_cast<size_t>(t)], 0.0);
    }
    outputs[static_cast<size_t>(t)] = h_t;
    state = std::move(next);
  }
  return {std::move(outputs), std::move(state)};
}

}  // namespace

StepsResult run_cell_steps(RecurrentCell& cell, const std::vector<Variable>& xs, const State& initial,
                           const std::vector<int64_t>& lengths, Direction direction) {
  const StepSource src = source_of(xs);
  return run_steps(cell, src, xs[0].dtype(), initial, lengths, direction);
}

SequenceResult run_cell(RecurrentCell& cell, const Variable& x, const State& initial,
                        const std::vector<int64_t>& lengths, Direction direction) {
  const StepSource src = source_of("run_cell", x);
  StepsResult r = run_steps(cell, src, x.dtype(), initial, lengths, direction);
  return {stack(std::span<const Variable>(r.outputs), 0), std::move(r.final_state)};  // [T,B,H]
}

// ---- sequence modules ----------------------------------------------------------------------

RecurrentStack::RecurrentStack(const Config& c,
                               const std::function<std::shared_ptr<RecurrentCell>(int64_t)>& make_cell)
    : name_(c.name),
      state_size_(c.state_size),
      input_size_(c.input_size),
      hidden_size_(c.hidden_size),
      num_layers_(c.num_layers),
      bidirectional_(c.bidirectional),
      dropout_(c.dropout),
      batch_first_(c.batch_first),
      gen_(default_generator().next_u64()) {
  UNROLL_CHECK(c.input_size > 0 && c.hidden_size > 0, "{}: sizes must be positive, got input_size={} hidden_size={}",
               c.name, c.input_size, c.hidden_size);
  UNROLL_CHECK(c.num_layers >= 1, "{}: num_layers must be at least 1, got {}", c.name, c.num_layers);
  UNROLL_CHECK(c.dropout >= 0.0 && c.dropout <= 1.0, "{}: dropout must be in [0, 1], got {}", c.name, c.dropout);
  const int64_t D = num_directions();
  for (int64_t layer = 0; layer < num_layers_; ++layer) {
    for (int64_t dir = 0; dir < D; ++dir) {
      std::shared_ptr<RecurrentCell> cell = make_cell(layer == 0 ? input_size_ : D * hidden_size_);
      const std::string suffix = fmt::format("_l{}{}", layer, dir == 1 ? "_reverse" : "");
      for (auto& [name, p] : cell->named_parameters()) register_parameter(name + suffix, p);
      cells_.push_back(std::move(cell));
    }
  }
}

RecurrentCell& RecurrentStack::cell(int64_t layer, int64_t direction) {
  UNROLL_CHECK(layer >= 0 && layer < num_layers_ && direction >= 0 && direction < num_directions(),
               "{}: no cell for layer {} direction {} ({} layers, {} directions)", name_, layer, direction,
               num_layers_, num_directions());
  return *cells_[static_cast<size_t>(layer * num_directions() + direction)];
}

RecurrentOutput RecurrentStack::forward(const Variable& input, const State& initial,
                                        const std::vector<int64_t>& lengths) {
  UNROLL_CHECK(initial.empty() || initial.size() == state_size_,
               "{}: initial state must be {} (or empty), got {} tensors", name_,
               state_size_ == 2 ? "{h_0, c_0}" : "{h_0}", initial.size());
  UNROLL_CHECK(input.defined() && input.ndim() == 3, "{}: input {} must be 3-D {}", name_,
               input.defined() ? input.shape().str() : std::string("(undefined)"),
               batch_first_ ? "[B,T,I] (batch_first)" : "[T,B,I]");
  UNROLL_CHECK(input.size(2) == input_size_, "{}: input {} has {} features, expected {}", name_, input.shape(),
               input.size(2), input_size_);
  Variable x = batch_first_ ? transpose(input, 0, 1) : input;  // [T,B,I]
  const int64_t T = x.size(0), B = x.size(1), D = num_directions(), H = hidden_size_;
  check_lengths(name_, lengths, T, B);
  const Shape state_shape{num_layers_ * D, B, H};
  for (size_t k = 0; k < initial.size(); ++k)
    UNROLL_CHECK(initial[k].defined() && initial[k].shape() == state_shape,
                 "{}: initial state {} is {}, expected [L*D,B,H] = {}", name_, k,
                 initial[k].defined() ? initial[k].shape().str() : std::string("undefined"), state_shape);

  // Layer 0 reads x; the layers above read the per-step list of the layer below (so no
  // [T,B,D*H] tensor is built only to be sliced again).
  std::vector<State> finals;       // [layer * D + direction]
  std::vector<Variable> steps;     // T x [B,D*H]: the outputs of the layer below
  for (int64_t layer = 0; layer < num_layers_; ++layer) {
    const StepSource src = layer == 0 ? source_of(name_, x) : source_of(steps);
    std::vector<std::vector<Variable>> outputs;  // D x T x [B,H]
    for (int64_t dir = 0; dir < D; ++dir) {
      const int64_t idx = layer * D + dir;
      State start;
      for (const Variable& s : initial) start.push_back(reshape(narrow(s, 0, idx, 1), {B, H}));
      StepsResult r = run_steps(cell(layer, dir), src, x.dtype(), start, lengths,
                                dir == 0 ? Direction::Forward : Direction::Reverse);
      outputs.push_back(std::move(r.outputs));
      finals.push_back(std::move(r.final_state));
    }
    const bool drop = is_training() && dropout_ > 0.0 && layer + 1 < num_layers_;
    steps.resize(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
      StepScope step(static_cast<int>(t));
      const auto ti = static_cast<size_t>(t);
      Variable out = D == 1 ? outputs[0][ti] : concat({outputs[0][ti], outputs[1][ti]}, 1);  // [B,D*H]
      if (drop) out = out * Variable(dropout_mask(out.shape(), dropout_, out.dtype(), gen_));
      steps[ti] = out;
    }
  }

  State final_state;  // one [L*D,B,H] per state component
  for (size_t k = 0; k < finals[0].size(); ++k) {
    std::vector<Variable> parts;
    for (const State& f : finals) parts.push_back(f[k]);
    final_state.push_back(stack(std::span<const Variable>(parts), 0));
  }
  Variable output = stack(std::span<const Variable>(steps), 0);  // [T,B,D*H]
  if (batch_first_) output = transpose(output, 0, 1);
  return {output, final_state};
}

RNN::RNN(const RNNOptions& opts)
    : RecurrentStack({.name = "RNN",
                      .state_size = 1,
                      .input_size = opts.input_size,
                      .hidden_size = opts.hidden_size,
                      .num_layers = opts.num_layers,
                      .bidirectional = opts.bidirectional,
                      .dropout = opts.dropout,
                      .batch_first = opts.batch_first},
                     [&opts](int64_t in) {
                       return std::make_shared<RNNCell>(in, opts.hidden_size, opts.bias, opts.nonlinearity);
                     }),
      options(opts) {}

RecurrentOutput RNN::forward(const Variable& x, const Variable& h_0, const std::vector<int64_t>& lengths) {
  return RecurrentStack::forward(x, h_0.defined() ? State{h_0} : State{}, lengths);
}

LSTM::LSTM(const LSTMOptions& opts)
    : RecurrentStack({.name = "LSTM",
                      .state_size = 2,
                      .input_size = opts.input_size,
                      .hidden_size = opts.hidden_size,
                      .num_layers = opts.num_layers,
                      .bidirectional = opts.bidirectional,
                      .dropout = opts.dropout,
                      .batch_first = opts.batch_first},
                     [&opts](int64_t in) { return std::make_shared<LSTMCell>(in, opts.hidden_size, opts.bias); }),
      options(opts) {}

GRU::GRU(const GRUOptions& opts)
    : RecurrentStack({.name = "GRU",
                      .state_size = 1,
                      .input_size = opts.input_size,
                      .hidden_size = opts.hidden_size,
                      .num_layers = opts.num_layers,
                      .bidirectional = opts.bidirectional,
                      .dropout = opts.dropout,
                      .batch_first = opts.batch_first},
                     [&opts](int64_t in) { return std::make_shared<GRUCell>(in, opts.hidden_size, opts.bias); }),
      options(opts) {}

RecurrentOutput GRU::forward(const Variable& x, const Variable& h_0, const std::vector<int64_t>& lengths) {
  return RecurrentStack::forward(x, h_0.defined() ? State{h_0} : State{}, lengths);
}

}  // namespace unroll
