// autograd/functional: jacobian, hessian, vjp, jvp, hvp and the Hessian power iteration,
// each against float64 central finite differences of the function itself.
#include <doctest/doctest.h>
#include <unroll.h>

#include <cmath>
#include <vector>

using namespace unroll;
namespace fn = unroll::functional;

namespace {

using Vars = std::vector<Variable>;

double max_abs(const Tensor& t) { return max(abs(t)).item(); }

Tensor perturbed(const Tensor& x, int64_t k, double d) {
  Tensor y = x.clone();
  y.data<double>()[k] += d;
  return y;
}

Vars with(const Vars& xs, size_t i, const Tensor& xi) {
  Vars v;
  for (const Variable& x : xs) v.emplace_back(x.data());
  v[i] = Variable(xi);
  return v;
}

// d f / d x_i by central differences: [f.numel(), x_i.numel()], column k from x_i +- eps e_k.
Tensor fd_jacobian(const fn::Fn& f, const Vars& xs, size_t i, double eps = 1e-6) {
  NoGradGuard no_grad;
  const int64_t n_out = f(with(xs, i, xs[i].data())).numel(), n_in = xs[i].numel();
  Tensor J = zeros({n_out, n_in}, DType::F64);
  for (int64_t k = 0; k < n_in; ++k) {
    const std::vector<double> hi = f(with(xs, i, perturbed(xs[i].data(), k, eps))).data().to_vector();
    const std::vector<double> lo = f(with(xs, i, perturbed(xs[i].data(), k, -eps))).data().to_vector();
    for (int64_t o = 0; o < n_out; ++o) J.data<double>()[o * n_in + k] = (hi[o] - lo[o]) / (2 * eps);
  }
  return J;
}

// d^2 f / d x_i[k] d x_j[l] by the four-point central difference of a one-element f:
// [x_i.numel(), x_j.numel()].
Tensor fd_hessian(const fn::Fn& f, const Vars& xs, size_t i, size_t j, double h = 1e-4) {
  NoGradGuard no_grad;
  const int64_t ni = xs[i].numel(), nj = xs[j].numel();
  Tensor H = zeros({ni, nj}, DType::F64);
  auto value = [&](int64_t k, double dk, int64_t l, double dl) {
    Vars v;
    for (const Variable& x : xs) v.emplace_back(x.data().clone());
    v[i].data().data<double>()[k] += dk;
    v[j].data().data<double>()[l] += dl;
    return f(v).item();
  };
  for (int64_t k = 0; k < ni; ++k)
    for (int64_t l = 0; l < nj; ++l)
      H.data<double>()[k * nj + l] =
          (value(k, h, l, h) - value(k, h, l, -h) - value(k, -h, l, h) + value(k, -h, l, -h)) / (4 * h * h);
  return H;
}

Tensor as_matrix(const Variable& v, int64_t rows) { return v.data().reshape({rows, v.numel() / rows}); }

Variable randv(const Shape& s, Generator& g) { return Variable(randn(s, g, DType::F64)); }

// f(x, w) = tanh(x w) * sigmoid(sum x): [2,4] from x [2,3], w [3,4], non-linear in both.
Variable two_input(const Vars& x) { return tanh(matmul(x[0], x[1])) * sigmoid(sum(x[0])); }

// A one-element function with mixed second derivatives.
Variable scalar_fn(const Vars& x) {
  return sum(exp(x[0] * 0.5) * pow(x[1], 2.0)) + sum(log(x[1] * x[1] + 1.0)) + sum(tanh(matmul(x[0], x[0], false, true)));
}

}  // namespace

TEST_CASE("jacobian: of two matrix inputs matches finite differences, with PyTorch's shapes") {
  Generator g(1);
  const Vars xs{randv({2, 3}, g), randv({3, 4}, g)};
  const Vars J = fn::jacobian(two_input, xs);
  REQUIRE(J.size() == 2);
  CHECK(J[0].shape() == Shape({2, 4, 2, 3}));
  CHECK(J[1].shape() == Shape({2, 4, 3, 4}));
  for (size_t i = 0; i < 2; ++i) {
    CAPTURE(i);
    CHECK(max_abs(as_matrix(J[i], 8) - fd_jacobian(two_input, xs, i)) < 1e-8);
    CHECK(!J[i].requires_grad());  // no create_graph: plain values
  }
}

TEST_CASE("jacobian: elementwise tanh is diag(1 - y^2); a scalar output gives the gradient's shape") {
  const Variable x(tensor({0.3, -1.2, 2.0}, {3}, DType::F64));
  const Variable J = fn::jacobian([](const Variable& v) { return tanh(v); }, x);
  REQUIRE(J.shape() == Shape({3, 3}));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      const double y = std::tanh(x.data().at({i}));
      CHECK(J.data().at({i, j}) == doctest::Approx(i == j ? 1 - y * y : 0.0).epsilon(1e-15));
    }
  const Variable G = fn::jacobian([](const Variable& v) { return sum(v * v); }, Variable(ones({2, 2}, DType::F64)));
  CHECK(G.shape() == Shape({2, 2}));
  CHECK(max_abs(G.data() - full({2, 2}, 2.0, DType::F64)) == 0);
}

TEST_CASE("jacobian: one recurrent step of each cell w.r.t. its state, against finite differences") {
  manual_seed(4);
  Generator g(2);
  RNNCell rnn(3, 5);
  LSTMCell lstm(3, 5);
  GRUCell gru(3, 5);
  rnn.to(DType::F64), lstm.to(DType::F64), gru.to(DType::F64);
  const Variable x = randv({1, 3}, g);
  const fn::Fn rnn_step = [&](const Vars& s) { return rnn.forward(x, s[0]); };
  const fn::Fn gru_step = [&](const Vars& s) { return gru.forward(x, s[0]); };
  const fn::Fn lstm_step = [&](const Vars& s) {  // (h, c) -> [h', c'] as one [1, 2H] output
    auto [h, c] = lstm.forward(x, s[0], s[1]);
    return concat({h, c}, 1);
  };
  const Vars h{randv({1, 5}, g) * 0.5}, hc{randv({1, 5}, g) * 0.5, randv({1, 5}, g)};
  CHECK(max_abs(as_matrix(fn::jacobian(rnn_step, h)[0], 5) - fd_jacobian(rnn_step, h, 0)) < 1e-8);
  CHECK(max_abs(as_matrix(fn::jacobian(gru_step, h)[0], 5) - fd_jacobian(gru_step, h, 0)) < 1e-8);
  const Vars J = fn::jacobian(lstm_step, hc);
  CHECK(J[0].shape() == Shape({1, 10, 1, 5}));
  CHECK(max_abs(as_matrix(J[0], 10) - fd_jacobian(lstm_step, hc, 0)) < 1e-8);
  CHECK(max_abs(as_matrix(J[1], 10) - fd_jacobian(lstm_step, hc, 1)) < 1e-8);
  // The RNN step's Jacobian is diag(1 - h'^2) W_hh, exactly.
  const Tensor h1 = rnn.forward(x, h[0]).data().reshape({5, 1});
  const Tensor expected = (1.0 - h1 * h1) * rnn.weight_hh.data();
  CHECK(max_abs(as_matrix(fn::jacobian(rnn_step, h)[0], 5) - expected) < 1e-14);
  // The weights are constants of f: nothing accumulated into their .grad.
  CHECK(!rnn.weight_hh.grad().defined());
  CHECK(!lstm.weight_ih.grad().defined());
}

TEST_CASE("jacobian: an input f does not use gets zeros; grad mode is on inside even under NoGradGuard") {
  Generator g(3);
  const Vars xs{randv({2}, g), randv({3}, g)};
  const fn::Fn f = [](const Vars& x) { return exp(x[0]); };
  NoGradGuard no_grad;
  const Vars J = fn::jacobian(f, xs);
  CHECK(J[1].shape() == Shape({2, 3}));
  CHECK(max_abs(J[1].data()) == 0);
  CHECK(max_abs(as_matrix(J[0], 2) - fd_jacobian(f, xs, 0)) < 1e-8);
  CHECK(!grad_enabled());  // restored
}

TEST_CASE("vjp: v^T J against finite differences; v omitted for a one-element f") {
  Generator g(5);
  const Vars xs{randv({2, 3}, g), randv({3, 4}, g)};
  const Variable v = randv({2, 4}, g);
  const fn::OutputAndDerivatives r = fn::vjp(two_input, xs, v);
  CHECK(max_abs(r.output.data() - two_input(xs).data()) == 0);
  for (size_t i = 0; i < 2; ++i) {
    CAPTURE(i);
    REQUIRE(r.derivatives[i].shape() == xs[i].shape());
    const Tensor expected = matmul(v.data().reshape({1, 8}), fd_jacobian(two_input, xs, i)).reshape(xs[i].shape());
    CHECK(max_abs(r.derivatives[i].data() - expected) < 1e-8);
  }
  const fn::OutputAndDerivatives s = fn::vjp(scalar_fn, {randv({2, 3}, g), randv({2, 3}, g)});
  CHECK(s.output.numel() == 1);
  CHECK(s.derivatives[0].shape() == Shape({2, 3}));
}

TEST_CASE("functional: bad calls are clear errors") {
  Generator g(6);
  const Vars xs{randv({2, 3}, g), randv({3, 4}, g)};
  CHECK_THROWS_WITH_AS(fn::vjp(two_input, xs, randv({3}, g)),
                       "vjp: v ([3] float64) must match f's output ([2,4] float64)", Error);
  CHECK_THROWS_WITH_AS(fn::vjp(two_input, xs),
                       "vjp: v may be omitted only when f returns one element; f returned shape [2,4]", Error);
  CHECK_THROWS_WITH_AS(fn::jacobian(two_input, Vars{}), "jacobian: no inputs given", Error);
  CHECK_THROWS_WITH_AS(fn::jacobian([](const Variable& x) { return x; }, Variable(indices({1, 2}))),
                       "jacobian: input 0 is int64 [2]; derivatives need a floating input", Error);
  CHECK_THROWS_WITH_AS(fn::jacobian([](const Variable&) { return Variable(); }, xs[0]),
                       "jacobian: f returned an undefined Variable", Error);
  CHECK_THROWS_WITH_AS(fn::hessian(two_input, xs), "hessian: f must return a one-element Variable, got shape [2,4]",
                       Error);
  CHECK_THROWS_WITH_AS(fn::hvp(two_input, xs, xs), "hvp: f must return a one-element Variable, got shape [2,4]", Error);
  CHECK_THROWS_WITH_AS(fn::hvp(scalar_fn, {randv({2, 3}, g), randv({2, 3}, g)}, {randv({2, 3}, g)}),
                       "hvp: 2 inputs but 1 vectors v", Error);
}

// ---- second order: these differentiate a backward pass (create_graph) ----------------------

TEST_CASE("hessian: of a two-input scalar function matches four-point finite differences, blocks symmetric") {
  Generator g(7);
  const Vars xs{randv({2, 3}, g) * 0.5, randv({2, 3}, g)};
  const std::vector<Vars> H = fn::hessian(scalar_fn, xs);
  REQUIRE(H.size() == 2);
  for (size_t i = 0; i < 2; ++i)
    for (size_t j = 0; j < 2; ++j) {
      CAPTURE(i);
      CAPTURE(j);
      REQUIRE(H[i][j].shape() == Shape({2, 3, 2, 3}));
      CHECK(max_abs(as_matrix(H[i][j], 6) - fd_hessian(scalar_fn, xs, i, j)) < 1e-6);
      CHECK(max_abs(as_matrix(H[i][j], 6) - transpose(as_matrix(H[j][i], 6), 0, 1)) < 1e-12);
    }
}

TEST_CASE("hessian: of x^T A x / 2 is (A + A^T)/2; of a linear function it is zero") {
  Generator g(8);
  const Tensor A = randn({4, 4}, g, DType::F64);
  const Variable H = fn::hessian(
      [&](const Variable& x) { return sum(matmul(reshape(x, {1, 4}), matmul(Variable(A), reshape(x, {4, 1})))) * 0.5; },
      randv({4}, g));
  CHECK(max_abs(H.data() - (A + transpose(A, 0, 1)) * 0.5) < 1e-14);
  const Variable Z = fn::hessian([](const Variable& x) { return sum(x * 3.0); }, randv({3}, g));
  CHECK(max_abs(Z.data()) == 0);
}

TEST_CASE("hvp: H v against finite differences of the Hessian; equals hessian times v") {
  Generator g(9);
  const Vars xs{randv({2, 3}, g) * 0.5, randv({2, 3}, g)};
  const Vars v{randv({2, 3}, g), randv({2, 3}, g)};
  const fn::OutputAndDerivatives r = fn::hvp(scalar_fn, xs, v);
  CHECK(r.output.item() == doctest::Approx(scalar_fn(xs).item()).epsilon(1e-15));
  for (size_t i = 0; i < 2; ++i) {
    CAPTURE(i);
    Tensor expected = zeros({6, 1}, DType::F64);
    for (size_t j = 0; j < 2; ++j) expected = expected + matmul(fd_hessian(scalar_fn, xs, i, j), v[j].data().reshape({6, 1}));
    CHECK(max_abs(r.derivatives[i].data().reshape({6, 1}) - expected) < 1e-6);
  }
  const std::vector<Vars> H = fn::hessian(scalar_fn, xs);
  Tensor hv0 = matmul(as_matrix(H[0][0], 6), v[0].data().reshape({6, 1})) + matmul(as_matrix(H[0][1], 6), v[1].data().reshape({6, 1}));
  CHECK(max_abs(hv0.reshape({2, 3}) - r.derivatives[0].data()) < 1e-12);
}

TEST_CASE("jvp: J v by the double-vjp trick against finite differences along v") {
  Generator g(10);
  const Vars xs{randv({2, 3}, g), randv({3, 4}, g)};
  const Vars v{randv({2, 3}, g), randv({3, 4}, g)};
  const fn::OutputAndDerivative r = fn::jvp(two_input, xs, v);
  REQUIRE(r.derivative.shape() == Shape({2, 4}));
  // (f(x + eps v) - f(x - eps v)) / 2 eps
  const double eps = 1e-6;
  Vars hi, lo;
  for (size_t i = 0; i < 2; ++i) {
    hi.emplace_back(xs[i].data() + v[i].data() * eps);
    lo.emplace_back(xs[i].data() - v[i].data() * eps);
  }
  const Tensor fd = (two_input(hi).data() - two_input(lo).data()) / (2 * eps);
  CHECK(max_abs(r.derivative.data() - fd) < 1e-8);
  // And J v = jacobian . v exactly (up to rounding).
  const Vars J = fn::jacobian(two_input, xs);
  const Tensor jv = matmul(as_matrix(J[0], 8), v[0].data().reshape({6, 1})) + matmul(as_matrix(J[1], 8), v[1].data().reshape({12, 1}));
  CHECK(max_abs(jv.reshape({2, 4}) - r.derivative.data()) < 1e-12);
}

TEST_CASE("create_graph: the jacobian of the gradient is the hessian; a third derivative of sum(x^4)") {
  Generator g(11);
  const Variable x = randv({3}, g);
  const fn::Fn1 f = [](const Variable& v) { return sum(exp(v * 0.5) * tanh(v)) + sum(v) * sum(v * v); };
  const Variable gradient_jac = fn::jacobian(
      [&](const Variable& v) { return fn::jacobian(f, v, {.create_graph = true}); }, x);
  CHECK(max_abs(gradient_jac.data() - fn::hessian(f, x).data()) < 1e-12);
  // d^3/dx_i dx_j dx_k sum(x^4) = 24 x_i when i = j = k, else 0.
  const Variable T3 = fn::jacobian(
      [](const Variable& v) { return fn::hessian([](const Variable& u) { return sum(pow(u, 4.0)); }, v, {.create_graph = true}); },
      x);
  REQUIRE(T3.shape() == Shape({3, 3, 3}));  // [out 3, 3] x [in 3]
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 3; ++k)
        CHECK(T3.data().at({i, j, k}) == doctest::Approx(i == j && j == k ? 24 * x.data().at({i}) : 0.0).epsilon(1e-12));
  // A create_graph result depends on an input that requires grad: backward reaches it.
  Variable leaf(x.data().clone(), true);
  const fn::OutputAndDerivative r = fn::vjp(f, leaf, Variable(), {.create_graph = true});
  REQUIRE(r.derivative.requires_grad());
  sum(r.derivative).backward();  // d/dx sum(grad f) = H 1
  const Tensor h1 = matmul(fn::hessian(f, x).data(), ones({3, 1}, DType::F64)).reshape({3});
  CHECK(max_abs(leaf.grad() - h1) < 1e-12);
}

TEST_CASE("HessianVectorProduct and top_hessian_eigenvalue on a model's parameters") {
  manual_seed(12);
  Generator g(12);
  Linear fc(3, 2);
  fc.to(DType::F64);
  const Variable x = randv({5, 3}, g), y = randv({5, 2}, g);
  // A quadratic loss: H is (block) 2 X^T X / N per output, exactly known.
  const Variable loss = mse_loss(fc.forward(x), y);
  const fn::HessianVectorProduct H(loss, {fc.weight});
  const Tensor XtX = matmul(x.data(), x.data(), true, false) * (2.0 / 10.0);  // mean over 5 x 2 elements
  const Tensor v = randn({2, 3}, g, DType::F64);
  CHECK(max_abs(H.apply({v})[0] - matmul(v, XtX)) < 1e-13);
  CHECK(max_abs(H.apply({v})[0] - matmul(v, XtX)) < 1e-13);  // the graph is retained: apply again
  CHECK(!fc.weight.grad().defined());  // nothing accumulated into the parameters
  const double top = linalg::eigh(XtX).values.to_vector().back();
  CHECK(fn::top_hessian_eigenvalue(loss, {fc.weight}, 100) == doctest::Approx(top).epsilon(1e-8));
  // A non-quadratic loss: the power iteration agrees with eigh of the full Hessian.
  const fn::Fn loss_of = [&](const Vars& w) { return mean(tanh(matmul(x, w[0], false, true)) * Variable(y.data())); };
  const Variable w(fc.weight.data());
  const Tensor full_h = as_matrix(fn::hessian(loss_of, {w})[0][0], 6);
  const std::vector<double> ev = linalg::eigh(full_h).values.to_vector();
  const double largest = std::abs(ev.front()) > std::abs(ev.back()) ? ev.front() : ev.back();
  Variable wl(w.data().clone(), true);
  CHECK(fn::top_hessian_eigenvalue(loss_of({wl}), {wl}, 300) == doctest::Approx(largest).epsilon(1e-6));
}
