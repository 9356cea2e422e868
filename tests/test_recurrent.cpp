// Recurrent layers: cells against the published equations, run_cell over variable-length
// batches, the PyTorch-compatible sequence modules, float64 gradient checks of unrolled
// graphs, errors, and truncated BPTT.
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/recurrent.h"

#include <cmath>
#include <string>
#include <vector>

using namespace unroll;

namespace {

// A fixed, irregular pattern of small values (no random numbers: the golden tests depend on
// nothing but the equations).
Tensor pattern(const Shape& shape, double phase, double scale = 0.5) {
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (size_t k = 0; k < v.size(); ++k) v[k] = scale * std::sin(1.7 * static_cast<double>(k) + phase);
  return tensor(v, shape, DType::F64);
}

// Loads weight_ih/weight_hh/bias_ih/bias_hh of a cell with patterns; returns them as vectors.
struct Weights {
  std::vector<double> w_ih, w_hh, b_ih, b_hh;
};
Weights load_pattern(RecurrentCell& cell, int64_t G, int64_t I, int64_t H) {
  StateDict sd;
  sd.insert("weight_ih", pattern({G * H, I}, 0.1));
  sd.insert("weight_hh", pattern({G * H, H}, 0.7));
  sd.insert("bias_ih", pattern({G * H}, 1.3, 0.3));
  sd.insert("bias_hh", pattern({G * H}, 2.9, 0.3));
  cell.to(DType::F64);
  cell.load_state_dict(sd);
  return {sd.at("weight_ih").to_vector(), sd.at("weight_hh").to_vector(), sd.at("bias_ih").to_vector(),
          sd.at("bias_hh").to_vector()};
}

// y = W v + b for rows [row0, row0 + n) of W [rows, cols]
std::vector<double> affine(const std::vector<double>& W, const std::vector<double>& b, const std::vector<double>& v,
                           size_t row0, size_t n) {
  const size_t cols = v.size();
  std::vector<double> y(n);
  for (size_t r = 0; r < n; ++r) {
    double acc = b[row0 + r];
    for (size_t c = 0; c < cols; ++c) acc += W[(row0 + r) * cols + c] * v[c];
    y[r] = acc;
  }
  return y;
}
double sigm(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// One step of each cell for one batch element, from the published equations.
std::vector<double> ref_rnn(const Weights& w, const std::vector<double>& x, const std::vector<double>& h, bool relu) {
  const size_t H = h.size();
  auto a = affine(w.w_ih, w.b_ih, x, 0, H), b = affine(w.w_hh, w.b_hh, h, 0, H);
  std::vector<double> out(H);
  for (size_t j = 0; j < H; ++j) out[j] = relu ? std::max(0.0, a[j] + b[j]) : std::tanh(a[j] + b[j]);
  return out;
}
void ref_lstm(const Weights& w, const std::vector<double>& x, std::vector<double>& h, std::vector<double>& c) {
  const size_t H = h.size();
  std::vector<double> pre(4 * H);
  auto a = affine(w.w_ih, w.b_ih, x, 0, 4 * H), b = affine(w.w_hh, w.b_hh, h, 0, 4 * H);
  for (size_t j = 0; j < 4 * H; ++j) pre[j] = a[j] + b[j];
  for (size_t j = 0; j < H; ++j) {
    const double i = sigm(pre[j]), f = sigm(pre[H + j]), g = std::tanh(pre[2 * H + j]), o = sigm(pre[3 * H + j]);
    c[j] = f * c[j] + i * g;
    h[j] = o * std::tanh(c[j]);
  }
}
std::vector<double> ref_gru(const Weights& w, const std::vector<double>& x, const std::vector<double>& h) {
  const size_t H = h.size();
  auto gi = affine(w.w_ih, w.b_ih, x, 0, 3 * H), gh = affine(w.w_hh, w.b_hh, h, 0, 3 * H);
  std::vector<double> out(H);
  for (size_t j = 0; j < H; ++j) {
    const double r = sigm(gi[j] + gh[j]), z = sigm(gi[H + j] + gh[H + j]);
    const double n = std::tanh(gi[2 * H + j] + r * gh[2 * H + j]);
    out[j] = (1 - z) * n + z * h[j];
  }
  return out;
}

// Row b of a [B,N] tensor, or x[t, b, :] of a [T,B,N] tensor.
std::vector<double> row(const Tensor& x, int64_t b) {
  const int64_t N = x.size(-1);
  std::vector<double> all = x.to_vector();
  return {all.begin() + b * N, all.begin() + (b + 1) * N};
}
std::vector<double> step_row(const Tensor& x, int64_t t, int64_t b) {
  return row(x.reshape({x.size(0) * x.size(1), x.size(2)}), t * x.size(1) + b);
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (size_t k = 0; k < got.size(); ++k) CHECK_MESSAGE(std::abs(got[k] - want[k]) <= tol, got[k] << " vs " << want[k]);
}

Variable leaf(const Shape& shape, Generator& gen) { return Variable(randn(shape, gen, DType::F64), true); }

std::vector<Variable> operator+(std::vector<Variable> a, const std::vector<Variable>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// x[:, b] of [T,B,N] restricted to its first len steps: [len,1,N]
Variable one_sequence(const Variable& x, int64_t b, int64_t len) { return narrow(narrow(x, 1, b, 1), 0, 0, len); }

}  // namespace

// ---- golden values ----------------------------------------------------------------------------

TEST_CASE("RNNCell (tanh and relu) matches h' = act(W_ih x + b_ih + W_hh h + b_hh) over 3 steps") {
  const int64_t T = 3, B = 2, I = 3, H = 4;
  for (Nonlinearity nl : {Nonlinearity::Tanh, Nonlinearity::Relu}) {
    RNNCell cell(I, H, true, nl);
    Weights w = load_pattern(cell, 1, I, H);
    Variable x(pattern({T, B, I}, 0.4, 1.0)), h0(pattern({B, H}, 5.0));
    SequenceResult r = run_cell(cell, x, {h0});
    CHECK(r.output.shape() == Shape{T, B, H});
    for (int64_t b = 0; b < B; ++b) {
      std::vector<double> h = row(h0.data(), b);
      for (int64_t t = 0; t < T; ++t) {
        h = ref_rnn(w, step_row(x.data(), t, b), h, nl == Nonlinearity::Relu);
        check_close(step_row(r.output.data(), t, b), h);
      }
      check_close(row(r.final_state[0].data(), b), h);
    }
  }
}

TEST_CASE("LSTMCell matches the i,f,g,o equations over 3 steps") {
  const int64_t T = 3, B = 2, I = 3, H = 2;
  LSTMCell cell(I, H);
  Weights w = load_pattern(cell, 4, I, H);
  Variable x(pattern({T, B, I}, 0.4, 1.0)), h0(pattern({B, H}, 5.0)), c0(pattern({B, H}, 6.0, 1.0));
  SequenceResult r = run_cell(cell, x, {h0, c0});
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> h = row(h0.data(), b), c = row(c0.data(), b);
    for (int64_t t = 0; t < T; ++t) {
      ref_lstm(w, step_row(x.data(), t, b), h, c);
      check_close(step_row(r.output.data(), t, b), h);
    }
    check_close(row(r.final_state[0].data(), b), h);
    check_close(row(r.final_state[1].data(), b), c);
  }
  // The pair convenience is the same step.
  auto [h1, c1] = cell.forward(reshape(narrow(x, 0, 0, 1), {B, I}), h0, c0);
  CHECK(allclose(h1.data(), narrow(r.output.data(), 0, 0, 1).reshape({B, H}), 0, 0));
}

TEST_CASE("GRUCell matches the r,z,n equations (n = tanh(W_in x + b_in + r * (W_hn h + b_hn))) over 3 steps") {
  const int64_t T = 3, B = 2, I = 3, H = 3;
  GRUCell cell(I, H);
  Weights w = load_pattern(cell, 3, I, H);
  Variable x(pattern({T, B, I}, 0.4, 1.0)), h0(pattern({B, H}, 5.0));
  SequenceResult r = run_cell(cell, x, {h0});
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> h = row(h0.data(), b);
    for (int64_t t = 0; t < T; ++t) {
      h = ref_gru(w, step_row(x.data(), t, b), h);
      check_close(step_row(r.output.data(), t, b), h);
    }
    check_close(row(r.final_state[0].data(), b), h);
  }
  CHECK(allclose(cell.forward(reshape(narrow(x, 0, 0, 1), {B, I}), h0).data(),
                 narrow(r.output.data(), 0, 0, 1).reshape({B, H}), 0, 0));
}

TEST_CASE("cells: PyTorch's parameter names, shapes, default init U(-1/sqrt(H), 1/sqrt(H)), bias=false") {
  manual_seed(1);
  LSTMCell lstm(5, 16);
  const auto named = lstm.named_parameters();
  REQUIRE(named.size() == 4);
  CHECK(named[0].first == "weight_ih");
  CHECK(named[0].second.shape() == Shape{64, 5});
  CHECK(named[1].first == "weight_hh");
  CHECK(named[1].second.shape() == Shape{64, 16});
  CHECK(named[2].first == "bias_ih");
  CHECK(named[2].second.shape() == Shape{64});
  CHECK(named[3].first == "bias_hh");
  CHECK(named[0].second.dtype() == DType::F32);
  for (const Variable& p : lstm.parameters()) {
    CHECK(max(abs(p.data())).item() <= 0.25);  // 1/sqrt(16)
    CHECK(max(abs(p.data())).item() > 0.2);    // and actually spread over the range
  }
  CHECK(GRUCell(5, 16).weight_ih.shape() == Shape{48, 5});
  CHECK(RNNCell(5, 16).weight_hh.shape() == Shape{16, 16});
  GRUCell no_bias(3, 2, false);
  CHECK(no_bias.parameters().size() == 2);
  CHECK_FALSE(no_bias.bias_ih.defined());
  no_bias.to(DType::F64);
  CHECK(no_bias.forward(Variable(zeros({1, 3}, DType::F64)), Variable(zeros({1, 2}, DType::F64))).data().to_vector() ==
        std::vector<double>{0, 0});  // n = tanh(0) = 0, z = 1/2: h' = 0
}

// ---- gradient checks of unrolled graphs ----------------------------------------------------

TEST_CASE("gradcheck: every cell over a 4-step unroll (BPTT through run_cell)") {
  manual_seed(2);
  Generator gen(7);
  const int64_t T = 4, B = 2, I = 3, H = 2;
  Variable x = leaf({T, B, I}, gen);
  SUBCASE("RNNCell tanh") {
    RNNCell cell(I, H);
    cell.to(DType::F64);
    Variable h0 = leaf({B, H}, gen);
    auto r = gradcheck([&] { return run_cell(cell, x, {h0}).output; }, cell.parameters() + std::vector{x, h0});
    CHECK_MESSAGE(r.ok, r.summary());
  }
  SUBCASE("RNNCell relu") {
    RNNCell cell(I, H, true, Nonlinearity::Relu);
    cell.to(DType::F64);
    Variable h0 = leaf({B, H}, gen);
    auto r = gradcheck([&] { return run_cell(cell, x, {h0}).output; }, cell.parameters() + std::vector{x, h0});
    CHECK_MESSAGE(r.ok, r.summary());
  }
  SUBCASE("LSTMCell, through h and c") {
    LSTMCell cell(I, H);
    cell.to(DType::F64);
    Variable h0 = leaf({B, H}, gen), c0 = leaf({B, H}, gen);
    auto f = [&] {
      SequenceResult s = run_cell(cell, x, {h0, c0});
      return concat({reshape(s.output, {-1}), reshape(s.final_state[1], {-1})}, 0);
    };
    auto r = gradcheck(f, cell.parameters() + std::vector{x, h0, c0});
    CHECK_MESSAGE(r.ok, r.summary());
  }
  SUBCASE("GRUCell, with lengths, reverse") {
    GRUCell cell(I, H);
    cell.to(DType::F64);
    Variable h0 = leaf({B, H}, gen);
    auto f = [&] { return run_cell(cell, x, {h0}, {2, 4}, Direction::Reverse).output; };
    auto r = gradcheck(f, cell.parameters() + std::vector{x, h0});
    CHECK_MESSAGE(r.ok, r.summary());
  }
}

TEST_CASE("gradcheck: RNN, LSTM, GRU modules, 2 layers, bidirectional, with and without lengths") {
  manual_seed(3);
  Generator gen(8);
  const int64_t T = 4, B = 2, I = 3, H = 2, LD = 4;
  Variable x = leaf({T, B, I}, gen), h0 = leaf({LD, B, H}, gen), c0 = leaf({LD, B, H}, gen);
  for (bool with_lengths : {false, true}) {
    CAPTURE(with_lengths);
    const std::vector<int64_t> lengths = with_lengths ? std::vector<int64_t>{2, 4} : std::vector<int64_t>{};
    {
      RNN rnn({.input_size = I, .hidden_size = H, .num_layers = 2, .bidirectional = true});
      rnn.to(DType::F64);
      auto f = [&] {
        RecurrentOutput o = rnn(x, h0, lengths);
        return concat({reshape(o.output, {-1}), reshape(o.h_n(), {-1})}, 0);
      };
      auto r = gradcheck(f, rnn.parameters() + std::vector{x, h0});
      CHECK_MESSAGE(r.ok, "RNN: " << r.summary());
    }
    {
      LSTM lstm({.input_size = I, .hidden_size = H, .num_layers = 2, .bidirectional = true});
      lstm.to(DType::F64);
      auto f = [&] {
        RecurrentOutput o = lstm(x, {h0, c0}, lengths);
        return concat({reshape(o.output, {-1}), reshape(o.h_n(), {-1}), reshape(o.c_n(), {-1})}, 0);
      };
      auto r = gradcheck(f, lstm.parameters() + std::vector{x, h0, c0});
      CHECK_MESSAGE(r.ok, "LSTM: " << r.summary());
    }
    {
      GRU gru({.input_size = I, .hidden_size = H, .num_layers = 2, .bidirectional = true});
      gru.to(DType::F64);
      auto f = [&] {
        RecurrentOutput o = gru(x, h0, lengths);
        return concat({reshape(o.output, {-1}), reshape(o.h_n(), {-1})}, 0);
      };
      auto r = gradcheck(f, gru.parameters() + std::vector{x, h0});
      CHECK_MESSAGE(r.ok, "GRU: " << r.summary());
    }
  }
}

// ---- sequence modules -------------------------------------------------------------------------

TEST_CASE("LSTM(num_layers=2, bidirectional=true): state_dict names, shapes and order as in PyTorch") {
  LSTM lstm({.input_size = 8, .hidden_size = 16, .num_layers = 2, .batch_first = false, .dropout = 0.1,
             .bidirectional = true});
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"weight_ih_l0", {64, 8}},          {"weight_hh_l0", {64, 16}},          {"bias_ih_l0", {64}},
      {"bias_hh_l0", {64}},               {"weight_ih_l0_reverse", {64, 8}},   {"weight_hh_l0_reverse", {64, 16}},
      {"bias_ih_l0_reverse", {64}},       {"bias_hh_l0_reverse", {64}},        {"weight_ih_l1", {64, 32}},
      {"weight_hh_l1", {64, 16}},         {"bias_ih_l1", {64}},                {"bias_hh_l1", {64}},
      {"weight_ih_l1_reverse", {64, 32}}, {"weight_hh_l1_reverse", {64, 16}}, {"bias_ih_l1_reverse", {64}},
      {"bias_hh_l1_reverse", {64}}};
  const StateDict sd = lstm.state_dict();
  REQUIRE(sd.size() == expected.size());
  size_t k = 0;
  for (const auto& [name, value] : sd) {
    CHECK(name == expected[k].first);
    CHECK(value.shape() == expected[k].second);
    ++k;
  }
  CHECK(lstm.num_parameters() == 2 * (64 * 8 + 64 * 16 + 128) + 2 * (64 * 32 + 64 * 16 + 128));
  // The cells share the module's parameters: loading the module changes what the cell computes.
  CHECK(lstm.cell(1, 1).parameters()[0].data().same_storage(sd.at("weight_ih_l1_reverse")));

  GRU gru({.input_size = 3, .hidden_size = 5, .bias = false});
  const StateDict g = gru.state_dict();
  REQUIRE(g.size() == 2);
  CHECK(g.at("weight_ih_l0").shape() == Shape{15, 3});
  CHECK(g.at("weight_hh_l0").shape() == Shape{15, 5});
  RNN rnn({.input_size = 3, .hidden_size = 5, .nonlinearity = Nonlinearity::Relu});
  CHECK(rnn.state_dict().at("weight_ih_l0").shape() == Shape{5, 3});
  CHECK(rnn.options.nonlinearity == Nonlinearity::Relu);
}

TEST_CASE("a one-layer module is run_cell over its cell; layer 2 reads both directions of layer 1") {
  manual_seed(4);
  Generator gen(9);
  const int64_t T = 5, B = 3, I = 4, H = 3;
  Variable x(randn({T, B, I}, gen));
  LSTM one({.input_size = I, .hidden_size = H});
  RecurrentOutput o = one(x);
  SequenceResult r = run_cell(one.cell(0), x);
  CHECK(equal(o.output.data(), r.output.data()));
  CHECK(o.h_n().shape() == Shape{1, B, H});
  CHECK(equal(o.h_n().data().reshape({B, H}), r.final_state[0].data()));
  CHECK(equal(o.c_n().data().reshape({B, H}), r.final_state[1].data()));

  GRU two({.input_size = I, .hidden_size = H, .num_layers = 2, .bidirectional = true});
  RecurrentOutput g = two(x);
  CHECK(g.output.shape() == Shape{T, B, 2 * H});
  CHECK(g.h_n().shape() == Shape{4, B, H});
  SequenceResult f0 = run_cell(two.cell(0, 0), x), r0 = run_cell(two.cell(0, 1), x, {}, {}, Direction::Reverse);
  Variable layer1 = concat({f0.output, r0.output}, 2);  // [T,B,2H]
  SequenceResult f1 = run_cell(two.cell(1, 0), layer1), r1 = run_cell(two.cell(1, 1), layer1, {}, {}, Direction::Reverse);
  CHECK(allclose(g.output.data(), concat({f1.output.data(), r1.output.data()}, 2), 1e-6, 1e-7));
  const Tensor h_n = stack({f0.final_state[0].data(), r0.final_state[0].data(), f1.final_state[0].data(),
                            r1.final_state[0].data()}, 0);
  CHECK(allclose(g.h_n().data(), h_n, 1e-6, 1e-7));
  // The reverse direction reads the sequence backwards: its h at t=0 is its final state.
  CHECK(equal(narrow(r0.output.data(), 0, 0, 1).reshape({B, H}), r0.final_state[0].data()));
}

TEST_CASE("batch_first: [B,T,I] in, [B,T,D*H] out, states stay [L*D,B,H]") {
  manual_seed(5);
  Generator gen(10);
  RNN seq({.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true});
  RNN bf({.input_size = 2, .hidden_size = 3, .num_layers = 2, .batch_first = true, .bidirectional = true});
  bf.load_state_dict(seq.state_dict());
  Variable x(randn({4, 5, 2}, gen));  // [T,B,I]
  RecurrentOutput a = seq(x, Variable(), {4, 1, 2, 3, 4});
  RecurrentOutput b = bf(transpose(x, 0, 1), Variable(), {4, 1, 2, 3, 4});
  CHECK(b.output.shape() == Shape{5, 4, 6});
  CHECK(equal(b.output.data(), transpose(a.output.data(), 0, 1)));
  CHECK(b.h_n().shape() == Shape{4, 5, 3});
  CHECK(equal(b.h_n().data(), a.h_n().data()));
}

TEST_CASE("dropout between layers: training mode only, never after the last layer") {
  manual_seed(6);
  Generator gen(11);
  Variable x(randn({3, 2, 4}, gen));
  LSTM deep({.input_size = 4, .hidden_size = 8, .num_layers = 2, .dropout = 0.5});
  deep.eval();
  const Tensor eval_out = deep(x).output.data();
  deep.train();
  const Tensor train_out = deep(x).output.data();
  CHECK_FALSE(allclose(eval_out, train_out));
  deep.eval();
  CHECK(equal(deep(x).output.data(), eval_out));

  LSTM shallow({.input_size = 4, .hidden_size = 8, .num_layers = 1, .dropout = 0.5});
  shallow.train();
  const Tensor a = shallow(x).output.data();
  shallow.eval();
  CHECK(equal(a, shallow(x).output.data()));
}

// ---- variable-length batches ------------------------------------------------------------------

TEST_CASE("run_cell with lengths: zeros at padded steps, final state = each sequence's last valid step") {
  manual_seed(7);
  Generator gen(12);
  const int64_t T = 5, B = 3, I = 2, H = 3;
  const std::vector<int64_t> lengths = {3, 5, 1};  // unsorted
  LSTMCell cell(I, H);
  cell.to(DType::F64);
  Variable x(randn({T, B, I}, gen, DType::F64)), h0(randn({B, H}, gen, DType::F64)), c0(randn({B, H}, gen, DType::F64));
  for (Direction dir : {Direction::Forward, Direction::Reverse}) {
    CAPTURE(dir == Direction::Reverse);
    SequenceResult r = run_cell(cell, x, {h0, c0}, lengths, dir);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t L = lengths[static_cast<size_t>(b)];
      // The same sequence alone, unpadded (for Reverse: read backwards from its own end).
      Variable xb = one_sequence(x, b, L);
      SequenceResult alone = run_cell(cell, xb, {narrow(h0, 0, b, 1), narrow(c0, 0, b, 1)}, {}, dir);
      const Tensor out_b = narrow(r.output.data(), 1, b, 1);  // [T,1,H]
      CHECK(allclose(narrow(out_b, 0, 0, L), alone.output.data(), 1e-12, 1e-12));
      if (L < T) CHECK(equal(narrow(out_b, 0, L, T - L), zeros({T - L, 1, H}, DType::F64)));
      for (size_t k = 0; k < 2; ++k)
        CHECK(allclose(narrow(r.final_state[k].data(), 0, b, 1), alone.final_state[k].data(), 1e-12, 1e-12));
      if (dir == Direction::Reverse) {
        // Reverse = the forward recurrence over the sequence flipped within its own length.
        std::vector<int64_t> flip;
        for (int64_t t = L - 1; t >= 0; --t) flip.push_back(t);
        SequenceResult fwd = run_cell(cell, index_select(xb, 0, indices(flip)), {narrow(h0, 0, b, 1), narrow(c0, 0, b, 1)});
        CHECK(allclose(index_select(fwd.output.data(), 0, indices(flip)), narrow(out_b, 0, 0, L), 1e-12, 1e-12));
        CHECK(allclose(fwd.final_state[1].data(), narrow(r.final_state[1].data(), 0, b, 1), 1e-12, 1e-12));
      }
    }
  }
  // Lengths that cover every step change nothing.
  CHECK(equal(run_cell(cell, x, {h0, c0}, {5, 5, 5}).output.data(), run_cell(cell, x, {h0, c0}).output.data()));
}

TEST_CASE("modules with lengths: each sequence (both directions, 2 layers) as if run alone") {
  manual_seed(8);
  Generator gen(13);
  const int64_t T = 5, B = 3, I = 2, H = 2;
  const std::vector<int64_t> lengths = {2, 5, 4};
  Variable x(randn({T, B, I}, gen, DType::F64));
  Variable h0(randn({4, B, H}, gen, DType::F64)), c0(randn({4, B, H}, gen, DType::F64));
  LSTM lstm({.input_size = I, .hidden_size = H, .num_layers = 2, .bidirectional = true});
  lstm.to(DType::F64);
  RecurrentOutput o = lstm(x, {h0, c0}, lengths);
  CHECK(o.output.shape() == Shape{T, B, 2 * H});
  for (int64_t b = 0; b < B; ++b) {
    CAPTURE(b);
    const int64_t L = lengths[static_cast<size_t>(b)];
    RecurrentOutput alone = lstm(one_sequence(x, b, L), {narrow(h0, 1, b, 1), narrow(c0, 1, b, 1)});
    const Tensor out_b = narrow(o.output.data(), 1, b, 1);
    CHECK(allclose(narrow(out_b, 0, 0, L), alone.output.data(), 1e-12, 1e-12));
    if (L < T) CHECK(equal(narrow(out_b, 0, L, T - L), zeros({T - L, 1, 2 * H}, DType::F64)));
    CHECK(allclose(narrow(o.h_n().data(), 1, b, 1), alone.h_n().data(), 1e-12, 1e-12));
    CHECK(allclose(narrow(o.c_n().data(), 1, b, 1), alone.c_n().data(), 1e-12, 1e-12));
  }
  // And the gradient reaches no padded input: padded steps do not influence anything.
  Variable xg(x.data().clone(), true);
  sum(lstm(xg, {h0, c0}, lengths).output).backward();
  const Tensor g0 = narrow(xg.grad(), 1, 0, 1);  // sequence 0 has 2 valid steps
  CHECK(equal(narrow(g0, 0, 2, 3), zeros({3, 1, I}, DType::F64)));
  CHECK(max(abs(narrow(g0, 0, 0, 2))).item() > 0);
}

TEST_CASE("length_mask: [T,B] of 1/0 that keeps padded steps out of a loss") {
  const Tensor m = length_mask({3, 1}, 3, DType::F64);
  CHECK(m.shape() == Shape{3, 2});
  CHECK(m.to_vector() == std::vector<double>{1, 1, 1, 0, 1, 0});
  CHECK(length_mask({2}, 4).dtype() == DType::F32);

  // A masked mean over valid steps: padded outputs with a wrong target cost nothing.
  Variable per_step(tensor({0.5, 0.2, 0.5, 9.0, 0.5, 9.0}, {3, 2}, DType::F64), true);
  Variable loss = sum(per_step * Variable(m)) / 4.0;
  CHECK(loss.item() == doctest::Approx((0.5 * 3 + 0.2) / 4));
  loss.backward();
  CHECK(per_step.grad().to_vector() == std::vector<double>{0.25, 0.25, 0.25, 0, 0.25, 0});
}

// ---- steps are labelled ------------------------------------------------------------------------

TEST_CASE("each step runs under StepScope(t): graph exports cluster by step, anomalies name the step") {
  manual_seed(9);
  GRUCell cell(2, 3);
  Variable x(zeros({4, 1, 2}));
  const std::string dot = to_dot(sum(run_cell(cell, x).output));
  for (int t = 0; t < 4; ++t) CHECK(dot.find(fmt::format("label=\"step {}\"", t)) != std::string::npos);
  CHECK(dot.find("label=\"step 4\"") == std::string::npos);

  Tensor bad = zeros({4, 1, 2});
  bad.data<float>()[2 * 2] = std::nanf("");  // t = 2
  AnomalyModeGuard anomaly;
  CHECK_THROWS_WITH_AS(run_cell(cell, Variable(bad)), doctest::Contains("step 2"), Error);
}

// ---- errors -----------------------------------------------------------------------------------

TEST_CASE("cells and run_cell reject bad shapes with messages that name them") {
  LSTMCell lstm(5, 3);
  CHECK_THROWS_WITH_AS(lstm(Variable(zeros({4, 7})), {}), "LSTMCell: input [4,7] has 7 features, expected 5", Error);
  CHECK_THROWS_WITH_AS(lstm(Variable(zeros({2, 4, 5})), {}), doctest::Contains("must be 2-D [B,I]"), Error);
  CHECK_THROWS_WITH_AS(lstm(Variable(zeros({4, 5})), {Variable(zeros({4, 3}))}),
                       "LSTMCell: state has 1 tensors, expected 2", Error);
  CHECK_THROWS_WITH_AS(lstm(Variable(zeros({4, 5})), {Variable(zeros({4, 3})), Variable(zeros({4, 2}))}),
                       "LSTMCell: state[1] [4,2] must be [B,H] with H = 3", Error);
  CHECK_THROWS_WITH_AS(lstm(Variable(zeros({4, 5})), {Variable(zeros({2, 3})), Variable(zeros({2, 3}))}),
                       "LSTMCell: state[0] [2,3] has batch 2 but the input [4,5] has batch 4", Error);
  CHECK_THROWS_WITH_AS(lstm(Variable(zeros({4, 5}, DType::F64)), {}), doctest::Contains("input is float64 but the "
                       "parameters are float32"), Error);
  GRUCell gru(2, 3);
  CHECK_THROWS_WITH_AS(gru.forward(Variable(zeros({1, 2})), Variable(zeros({1, 4}))),
                       "GRUCell: state[0] [1,4] must be [B,H] with H = 3", Error);
  CHECK_THROWS_WITH_AS(RNNCell(0, 3), doctest::Contains("RNNCell: sizes must be positive"), Error);

  CHECK_THROWS_WITH_AS(run_cell(gru, Variable(zeros({3, 2}))), "run_cell: input [3,2] must be 3-D [T,B,I]", Error);
  Variable x(zeros({3, 2, 2}));
  CHECK_THROWS_WITH_AS(run_cell(gru, x, {}, {3}), "run_cell: 1 lengths given for a batch of 2", Error);
  CHECK_THROWS_WITH_AS(run_cell(gru, x, {}, {3, 0}), "run_cell: lengths[1] = 0 is outside 1..T = 1..3", Error);
  CHECK_THROWS_WITH_AS(run_cell(gru, x, {}, {4, 1}), "run_cell: lengths[0] = 4 is outside 1..T = 1..3", Error);
  CHECK_THROWS_WITH_AS(run_cell(gru, x, {Variable(zeros({1, 3}))}),
                       "run_cell: initial state[0] is [1,3], expected [2,3] for a batch of 2", Error);
  CHECK_THROWS_WITH_AS(run_cell(gru, x, {Variable(zeros({2, 3})), Variable(zeros({2, 3}))}),
                       "run_cell: initial state has 2 tensors, the cell's state has 1", Error);
  CHECK_THROWS_WITH_AS(length_mask({1, 2}, 1), doctest::Contains("lengths[1] = 2 is outside"), Error);
  CHECK_THROWS_WITH_AS(run_cell_steps(gru, {Variable(zeros({2, 2})), Variable(zeros({3, 2}))}),
                       "run_cell: step 1 input is [3,2], expected 2-D [B,I] like step 0 [2,2]", Error);
  CHECK_THROWS_WITH_AS(run_cell_steps(gru, {}), "run_cell: no time steps given", Error);
}

TEST_CASE("run_cell_steps: the same recurrence on a list of steps, outputs unstacked") {
  manual_seed(12);
  Generator gen(16);
  RNNCell cell(2, 3);
  Variable x(randn({4, 2, 2}, gen));
  std::vector<Variable> xs;
  for (int64_t t = 0; t < 4; ++t) xs.push_back(reshape(narrow(x, 0, t, 1), {2, 2}));
  StepsResult s = run_cell_steps(cell, xs, {}, {4, 2}, Direction::Reverse);
  SequenceResult r = run_cell(cell, x, {}, {4, 2}, Direction::Reverse);
  REQUIRE(s.outputs.size() == 4);
  CHECK(equal(stack(std::span<const Variable>(s.outputs), 0).data(), r.output.data()));
  CHECK(equal(s.final_state[0].data(), r.final_state[0].data()));
}

namespace {
// Counts the nodes of one op recorded while it lives.
struct OpCounter : detail::GraphObserver {
  explicit OpCounter(std::string op) : op_(std::move(op)) { detail::graph_observer() = this; }
  ~OpCounter() override { detail::graph_observer() = prev_; }
  OpCounter(const OpCounter&) = delete;
  OpCounter& operator=(const OpCounter&) = delete;
  void on_record(const Node* n) override { count += n->op && op_ == n->op; }
  void on_backward_start(const Node*) override {}
  void on_grad(const Node*, const Tensor&) override {}
  int count = 0;

private:
  std::string op_;
  detail::GraphObserver* prev_ = detail::graph_observer();
};
}  // namespace

TEST_CASE("input projections: run_cell projects blocks of steps in one product, same values and gradients as stepping") {
  // B = 40, T = 30: 1200 rows, more than one block (Note [input projections]): blocks of
  // 25 steps (1000 rows), then 5.
  manual_seed(21);
  Generator gen(22);
  const int64_t T = 30, B = 40, I = 3, H = 4;
  std::vector<int64_t> lengths(B, T);
  for (int64_t b = 0; b < B; ++b) lengths[static_cast<size_t>(b)] = 1 + (b * 7) % T;
  // per_step: the linears a step records itself (GRU: h W_hh^T + b_hh, kept apart for r *).
  auto check_cell = [&](RecurrentCell& cell, Direction d, int per_step) {
    cell.to(DType::F64);
    Variable x(randn({T, B, I}, gen, DType::F64), true);
    SequenceResult r;
    {
      OpCounter linears("linear");
      r = run_cell(cell, x, {}, lengths, d);
      CHECK(linears.count == 2 + per_step * T);  // one projection per block, none per step
    }
    // By hand: forward() per step (each projects its own x_t), the padding done as run_cell does.
    State s = cell.initial_state(B, DType::F64);
    std::vector<Variable> hs(static_cast<size_t>(T));
    const Tensor mask = length_mask(lengths, T, DType::F64);
    for (int64_t k = 0; k < T; ++k) {
      const int64_t t = d == Direction::Forward ? k : T - 1 - k;
      State next = cell.forward(reshape(narrow(x, 0, t, 1), {B, I}), s);
      const Tensor v = narrow(mask, 0, t, 1).reshape({B, 1});
      for (size_t j = 0; j < next.size(); ++j) next[j] = next[j] * Variable(v) + s[j] * Variable(rsub(1.0, v));
      hs[static_cast<size_t>(t)] = next[0] * Variable(v);
      s = next;
    }
    const Variable want = stack(std::span<const Variable>(hs), 0);
    CHECK(allclose(r.output.data(), want.data(), 1e-12, 1e-14));
    const Tensor g = randn({T, B, H}, gen, DType::F64);
    std::vector<Variable> wrt = cell.parameters();
    wrt.push_back(x);
    const std::vector<Variable> got = grad(sum(r.output * Variable(g)), wrt);
    const std::vector<Variable> expected = grad(sum(want * Variable(g)), wrt);
    for (size_t k = 0; k < wrt.size(); ++k) CHECK(allclose(got[k].data(), expected[k].data(), 1e-11, 1e-13));
  };
  SUBCASE("LSTMCell") {
    LSTMCell cell(I, H);
    check_cell(cell, Direction::Forward, 0);
  }
  SUBCASE("GRUCell, reverse") {
    GRUCell cell(I, H);
    check_cell(cell, Direction::Reverse, 1);
  }
  SUBCASE("RNNCell relu") {
    RNNCell cell(I, H, true, Nonlinearity::Relu);
    check_cell(cell, Direction::Forward, 0);
  }
}

TEST_CASE("input projections: errors name the cell and the shapes") {
  LSTMCell lstm(5, 3);
  CHECK_THROWS_WITH_AS(lstm.forward_projected(Variable(zeros({4, 7})), {}),
                       "LSTMCell: projected input [4,7] has 7 features, expected 12", Error);
  CHECK_THROWS_WITH_AS(lstm.forward_projected(Variable(zeros({4, 12})), {Variable(zeros({2, 3})), Variable(zeros({2, 3}))}),
                       "LSTMCell: state[0] [2,3] has batch 2 but the projected input [4,12] has batch 4", Error);
  CHECK_THROWS_WITH_AS(add_linear(Variable(zeros({4, 6})), Variable(zeros({4, 3})), Variable(zeros({5, 3}))),
                       "add_linear: base [4,6] must be [N,O] = [4,5] for input [4,3] and weight [5,3]", Error);
  CHECK_THROWS_WITH_AS(add_linear(Variable(zeros({4, 5})), Variable(zeros({4, 2})), Variable(zeros({5, 3}))),
                       "add_linear: input [4,2] and weight [5,3] must be [N,I] and [O,I]", Error);
  // A cell that does not project: run_cell steps it; forward_projected says what to call.
  struct Plain : RecurrentCell {
    State initial_state(int64_t B, DType dtype) const override { return {Variable(zeros({B, 2}, dtype))}; }
    State forward(const Variable& x, const State& s) override { return {tanh(x + s[0])}; }
    int64_t hidden_size() const override { return 2; }
  } plain;
  CHECK(run_cell(plain, Variable(ones({3, 1, 2}))).output.shape() == Shape{3, 1, 2});
  CHECK_THROWS_WITH_AS(plain.forward_projected(Variable(zeros({1, 2})), {}),
                       doctest::Contains("forward_projected: this cell does not project its inputs"), Error);
  // A projection with the wrong number of rows is caught by run_cell.
  struct Bad : Plain {
    Variable project_inputs(const Variable& x) override { return narrow(x, 0, 0, 1); }
  } bad;
  CHECK_THROWS_WITH_AS(run_cell(bad, Variable(ones({3, 2, 2}))),
                       "run_cell: the cell's project_inputs returned [1,2] for 6 rows, expected 2-D [6,P]", Error);
}

TEST_CASE("sequence modules reject bad inputs, states and options") {
  LSTM lstm({.input_size = 3, .hidden_size = 2, .num_layers = 2});
  CHECK_THROWS_WITH_AS(lstm(Variable(zeros({4, 3}))), "LSTM: input [4,3] must be 3-D [T,B,I]", Error);
  CHECK_THROWS_WITH_AS(lstm(Variable(zeros({4, 2, 5}))), "LSTM: input [4,2,5] has 5 features, expected 3", Error);
  Variable x(zeros({4, 2, 3}));
  CHECK_THROWS_WITH_AS(lstm(x, {Variable(zeros({1, 2, 2})), Variable(zeros({1, 2, 2}))}),
                       "LSTM: initial state 0 is [1,2,2], expected [L*D,B,H] = [2,2,2]", Error);
  CHECK_THROWS_WITH_AS(lstm(x, {Variable(zeros({2, 2, 2}))}), doctest::Contains("{h_0, c_0}"), Error);
  CHECK_THROWS_WITH_AS(lstm(x, {}, {1, 5}), "LSTM: lengths[1] = 5 is outside 1..T = 1..4", Error);
  GRU bf({.input_size = 3, .hidden_size = 2, .batch_first = true});
  CHECK_THROWS_WITH_AS(bf(Variable(zeros({2, 3}))), doctest::Contains("[B,T,I] (batch_first)"), Error);
  CHECK_THROWS_WITH_AS(RNN({.input_size = 3, .hidden_size = 2, .num_layers = 0}),
                       "RNN: num_layers must be at least 1, got 0", Error);
  CHECK_THROWS_WITH_AS(GRU({.input_size = 3, .hidden_size = 2, .dropout = 1.5}),
                       "GRU: dropout must be in [0, 1], got 1.5", Error);
  CHECK_THROWS_WITH_AS(lstm.cell(2, 0), doctest::Contains("no cell for layer 2"), Error);
}

// ---- truncated BPTT ----------------------------------------------------------------------------

TEST_CASE("truncated BPTT: detach() between chunks keeps the graph from growing") {
  manual_seed(10);
  Generator gen(14);
  const int64_t T = 4, B = 2, I = 3, H = 5;
  LSTMCell cell(I, H);
  std::vector<int64_t> sizes, alive;
  State state;
  for (int chunk = 0; chunk < 5; ++chunk) {
    {
      Variable x(randn({T, B, I}, gen));
      SequenceResult r = run_cell(cell, x, state);
      Variable loss = mean(r.output * r.output);
      sizes.push_back(graph_size(loss));
      loss.backward();
      state = detach(r.final_state);
    }
    alive.push_back(live_nodes());
  }
  for (size_t k = 1; k < sizes.size(); ++k) {
    CHECK(sizes[k] == sizes[0]);
    CHECK(alive[k] == alive[0]);
  }
  CHECK_FALSE(state[0].requires_grad());
  CHECK(max(abs(cell.weight_hh.grad())).item() > 0);
}

TEST_CASE("truncated BPTT: forgetting detach() grows the graph and the second backward says why") {
  manual_seed(11);
  Generator gen(15);
  GRU gru({.input_size = 3, .hidden_size = 4});
  Variable h;
  Variable x1(randn({4, 2, 3}, gen)), x2(randn({4, 2, 3}, gen));
  RecurrentOutput first = gru(x1, h);
  Variable loss1 = mean(first.output);
  const int64_t size1 = graph_size(loss1);
  loss1.backward();
  RecurrentOutput second = gru(x2, first.h_n());  // no detach: chunk 2 reaches back into chunk 1
  Variable loss2 = mean(second.output);
  CHECK(graph_size(loss2) > size1);
  CHECK_THROWS_WITH_AS(loss2.backward(), doctest::Contains("already freed"), Error);
  CHECK_THROWS_WITH_AS(loss2.backward(), doctest::Contains("retain_graph"), Error);
  CHECK_THROWS_WITH_AS(loss2.backward(), doctest::Contains("detach()"), Error);

  // The same with the state detached works.
  Variable loss3 = mean(gru(x2, first.h_n().detach()).output);
  gru.zero_grad();
  loss3.backward();
  REQUIRE(gru.parameters()[1].grad().defined());  // weight_hh_l0
  CHECK(max(abs(gru.parameters()[1].grad())).item() > 0);
}

// Options in PyTorch's argument order compile for all three sequence modules (a designated
// initialiser must follow declaration order, so this test is a compile-time one too).
template <typename Module, typename Options>
std::vector<std::string> built_with_pytorch_order() {
  Module m(Options{.input_size = 3, .hidden_size = 4, .num_layers = 2, .bias = false, .batch_first = true,
                   .dropout = 0.25, .bidirectional = true});
  std::vector<std::string> names;
  for (const auto& [n, p] : m.named_parameters()) names.push_back(n);
  return names;
}

TEST_CASE("RNNOptions, LSTMOptions and GRUOptions share PyTorch's field order") {
  const std::vector<std::string> want = {"weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse",
                                         "weight_ih_l1", "weight_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse"};
  CHECK(built_with_pytorch_order<RNN, RNNOptions>() == want);
  CHECK(built_with_pytorch_order<LSTM, LSTMOptions>() == want);
  CHECK(built_with_pytorch_order<GRU, GRUOptions>() == want);
  // torch.nn.RNN(input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout, bidirectional)
  RNN relu({.input_size = 3, .hidden_size = 4, .num_layers = 1, .nonlinearity = Nonlinearity::Relu, .bias = true,
            .batch_first = false, .dropout = 0.0, .bidirectional = false});
  CHECK(relu.named_parameters().size() == 4);
}

TEST_CASE("RNN, LSTM and GRU run through one RecurrentStack interface; the state goes straight back in") {
  Generator gen(3);
  const Tensor x1 = randn({4, 2, 3}, gen), x2 = randn({5, 2, 3}, gen), x12 = concat({x1, x2}, 0);
  manual_seed(5);
  RNN rnn(RNNOptions{.input_size = 3, .hidden_size = 4, .num_layers = 2});
  LSTM lstm(LSTMOptions{.input_size = 3, .hidden_size = 4, .num_layers = 2});
  GRU gru(GRUOptions{.input_size = 3, .hidden_size = 4, .num_layers = 2});
  RecurrentStack* stacks[] = {&rnn, &lstm, &gru};
  for (RecurrentStack* s : stacks) {
    CAPTURE(s->state_size());
    // Two chunks with the state carried over equal one run over both.
    RecurrentOutput a = (*s)(Variable(x1));
    RecurrentOutput b = s->forward(Variable(x2), a.state);
    RecurrentOutput whole = (*s)(Variable(x12));
    REQUIRE(b.state.size() == s->state_size());
    for (size_t k = 0; k < b.state.size(); ++k) {
      CHECK(b.state[k].shape() == Shape{2, 2, 4});
      CHECK(allclose(b.state[k].data(), whole.state[k].data(), 1e-5, 1e-6));
    }
    CHECK(allclose(b.output.data(), narrow(whole.output.data(), 0, 4, 5), 1e-5, 1e-6));
    CHECK(equal(b.h_n().data(), b.state[0].data()));
    // A state of the wrong kind is refused by name.
    const State wrong = s->state_size() == 2 ? State{a.state[0]} : State{a.state[0], a.state[0]};
    CHECK_THROWS_WITH_AS(s->forward(Variable(x2), wrong), doctest::Contains("initial state must be"), Error);
  }
  CHECK(equal(lstm(Variable(x1)).c_n().data(), lstm(Variable(x1)).state[1].data()));
  CHECK_THROWS_WITH_AS(rnn(Variable(x1)).c_n(), doctest::Contains("only an LSTM has a cell state"), Error);
}
