// Writing your own recurrent cell: a minimal gated unit in about 20 lines of ops, run over
// sequences by run_cell, proven by gradcheck, and trained on a small task; and the same
// unit opting into run_cell's input projections.
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/layers.h"
#include "nn/recurrent.h"

#include <cmath>
#include <vector>

using namespace unroll;

namespace {

// A minimal gated unit (MGU, Zhou et al. 2016): one forget gate does the work of both
// the reset and the update gate of a GRU.
//   f  = sigmoid(W_f [x, h] + b_f)
//   h~ = tanh(W_h [x, f * h] + b_h)
//   h' = (1 - f) * h + f * h~
class MGUCell : public RecurrentCell {
public:
  MGUCell(int64_t input_size, int64_t hidden_size) : H_(hidden_size) {
    const double a = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    auto u = [&](const Shape& s) { return uniform(s, -a, a, default_generator()); };
    w_f = register_parameter("w_f", u({hidden_size, input_size + hidden_size}));
    b_f = register_parameter("b_f", u({hidden_size}));
    w_h = register_parameter("w_h", u({hidden_size, input_size + hidden_size}));
    b_h = register_parameter("b_h", u({hidden_size}));
  }
  State initial_state(int64_t B, DType dtype) const override { return {Variable(zeros({B, H_}, dtype))}; }
  int64_t hidden_size() const override { return H_; }

  State forward(const Variable& x, const State& state) override {
    const Variable& h = state[0];                                        // [B,H]
    Variable f = sigmoid(linear(concat({x, h}, 1), w_f, b_f));           // [B,H]
    Variable h_tilde = tanh(linear(concat({x, f * h}, 1), w_h, b_h));    // [B,H]
    return {(1.0 - f) * h + f * h_tilde};
  }
  Variable w_f, b_f, w_h, b_h;

private:
  int64_t H_;
};

// The same unit, written to project its inputs (Note [input projections]): the x halves of
// both gates are one product over many steps' rows, each step adds its h terms.
//   [p_f, p_h] = x W_x^T + b          (project_inputs: W_x [2H,I], b [2H])
//   f  = sigmoid(p_f + h W_fh^T);   h~ = tanh(p_h + (f * h) W_hh^T);   h' = (1 - f) * h + f * h~
class ProjectedMGUCell : public RecurrentCell {
public:
  ProjectedMGUCell(int64_t input_size, int64_t hidden_size) : H_(hidden_size) {
    const double a = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    auto u = [&](const Shape& s) { return uniform(s, -a, a, default_generator()); };
    w_x = register_parameter("w_x", u({2 * hidden_size, input_size}));
    b = register_parameter("b", u({2 * hidden_size}));
    w_fh = register_parameter("w_fh", u({hidden_size, hidden_size}));
    w_hh = register_parameter("w_hh", u({hidden_size, hidden_size}));
  }
  State initial_state(int64_t B, DType dtype) const override { return {Variable(zeros({B, H_}, dtype))}; }
  int64_t hidden_size() const override { return H_; }

  Variable project_inputs(const Variable& x) override { return linear(x, w_x, b); }  // [N,2H]
  State forward_projected(const Variable& p, const State& state) override {
    const Variable& h = state[0];
    std::vector<Variable> ph = chunk(p, 2, 1);                      // p_f, p_h: [B,H]
    Variable f = sigmoid(add_linear(ph[0], h, w_fh));               // [B,H]
    Variable h_tilde = tanh(add_linear(ph[1], f * h, w_hh));        // [B,H]
    return {(1.0 - f) * h + f * h_tilde};
  }
  State forward(const Variable& x, const State& state) override { return forward_projected(project_inputs(x), state); }
  Variable w_x, b, w_fh, w_hh;

private:
  int64_t H_;
};

}  // namespace

TEST_CASE("a custom cell that projects its inputs: gradcheck through run_cell, and the same values as stepping it") {
  manual_seed(7);
  ProjectedMGUCell cell(2, 3);
  cell.to(DType::F64);
  Generator gen(8);
  Variable x(randn({5, 2, 2}, gen, DType::F64), true), h0(randn({2, 3}, gen, DType::F64), true);
  std::vector<Variable> inputs = cell.parameters();
  inputs.push_back(x);
  inputs.push_back(h0);
  for (Direction d : {Direction::Forward, Direction::Reverse}) {
    auto r = gradcheck([&] { return run_cell(cell, x, {h0}, {5, 3}, d).output; }, inputs);
    CHECK_MESSAGE(r.ok, r.summary());
  }
  // run_cell projects all steps in one product; stepping forward() by hand projects each
  // step alone. The two agree (float64, up to rounding order).
  State s{h0};
  std::vector<Variable> hs;
  for (int64_t t = 0; t < 5; ++t) {
    s = cell.forward(reshape(narrow(x, 0, t, 1), {2, 2}), s);
    hs.push_back(s[0]);
  }
  CHECK(allclose(run_cell(cell, x, {h0}).output.data(), stack(std::span<const Variable>(hs), 0).data(), 1e-12, 1e-14));
}

TEST_CASE("a custom cell runs through run_cell: shapes, names, equations, variable lengths") {
  manual_seed(1);
  MGUCell cell(2, 3);
  CHECK(cell.num_parameters() == 2 * (3 * 5 + 3));
  CHECK(cell.named_parameters()[2].first == "w_h");

  Generator gen(2);
  Variable x(randn({4, 2, 2}, gen));  // [T,B,I]
  SequenceResult r = run_cell(cell, x);
  CHECK(r.output.shape() == Shape{4, 2, 3});
  CHECK(r.final_state.size() == 1);

  // Step 0 by hand from h = 0: f = sigmoid(W_f [x, 0] + b_f), h' = f * tanh(W_h [x, 0] + b_h).
  const Tensor x0 = narrow(x.data(), 0, 0, 1).reshape({2, 2});
  const Tensor x0h = concat({x0, zeros({2, 3})}, 1);
  const Tensor f = sigmoid(matmul(x0h, cell.w_f.data(), false, true) + cell.b_f.data());
  const Tensor h1 = f * tanh(matmul(x0h, cell.w_h.data(), false, true) + cell.b_h.data());
  CHECK(allclose(narrow(r.output.data(), 0, 0, 1).reshape({2, 3}), h1, 1e-6, 1e-7));

  // Padded steps keep the state and emit zeros, as for the built-in cells.
  SequenceResult p = run_cell(cell, x, {}, {4, 2});
  CHECK(equal(narrow(narrow(p.output.data(), 1, 1, 1), 0, 2, 2), zeros({2, 1, 3})));
  CHECK(equal(narrow(p.final_state[0].data(), 0, 1, 1), narrow(narrow(p.output.data(), 1, 1, 1), 0, 1, 1).reshape({1, 3})));
}

TEST_CASE("a custom cell passes a float64 gradcheck over a 4-step unroll, with lengths") {
  manual_seed(3);
  MGUCell cell(2, 3);
  cell.to(DType::F64);
  Generator gen(4);
  Variable x(randn({4, 2, 2}, gen, DType::F64), true), h0(randn({2, 3}, gen, DType::F64), true);
  std::vector<Variable> inputs = cell.parameters();
  inputs.push_back(x);
  inputs.push_back(h0);
  auto r = gradcheck([&] { return run_cell(cell, x, {h0}, {4, 3}).output; }, inputs);
  CHECK_MESSAGE(r.ok, r.summary());
}

TEST_CASE("a custom cell learns: the running sum of a sequence, with a Linear head and plain SGD") {
  manual_seed(5);
  Generator gen(6);
  const int64_t T = 6, B = 32, H = 8;
  MGUCell cell(1, H);
  Linear head(H, 1);
  std::vector<Variable> params = cell.parameters();
  for (const Variable& p : head.parameters()) params.push_back(p);

  // x ~ U(-1, 1); the target at step t is x_0 + ... + x_t.
  const Tensor x = uniform({T, B, 1}, -1.0, 1.0, gen);
  Tensor y = x.clone();
  float* yd = y.data<float>();
  for (int64_t t = 1; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) yd[t * B + b] += yd[(t - 1) * B + b];

  auto loss_fn = [&] {
    Variable pred = head(run_cell(cell, Variable(x)).output);  // [T,B,1]
    return mean(pow(pred - Variable(y), 2.0));
  };
  const double lr = 0.5;
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    Variable loss = loss_fn();
    if (step == 0) first = loss.item();
    last = loss.item();
    for (Variable& p : params) p.zero_grad();
    loss.backward();
    NoGradGuard no_grad;
    for (Variable& p : params) add_(p.data(), p.grad(), -lr);
  }
  MESSAGE("running-sum MSE: " << first << " -> " << last);
  CHECK(last < 0.2 * first);
}
