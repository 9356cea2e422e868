// Numerics at the edges: losses, activations, softmax, attention, LayerNorm, recurrent cells,
// Adam and gradient clipping fed huge, tiny, infinite and degenerate inputs, in float32 and
// float64. Where the true result is representable, the value and the gradient must be finite
// (and correct where known); where it is not (exp(89) in float32, log(0)), the result is the
// IEEE one PyTorch gives, and the test says so.
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/attention.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/recurrent.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace unroll;

namespace {

using Vec = std::vector<double>;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kFltMax = std::numeric_limits<float>::max();
constexpr double kFltDenorm = std::numeric_limits<float>::denorm_min();
constexpr double kDblDenorm = std::numeric_limits<double>::denorm_min();

constexpr DType kBoth[] = {DType::F32, DType::F64};

bool finite(const Tensor& t) {
  if (!t.defined()) return false;
  for (double v : t.to_vector())
    if (!std::isfinite(v)) return false;
  return true;
}

Variable leaf(const Vec& v, const Shape& s, DType dtype) { return Variable(tensor(v, s, dtype), true); }

/// Relative tolerance of a dtype for values computed by a few ops.
double tol(DType dtype) { return dtype == DType::F32 ? 1e-6 : 1e-12; }

void check_close(const Tensor& got, const Vec& expected, double eps) {
  const Vec v = got.to_vector();
  REQUIRE(v.size() == expected.size());
  for (size_t i = 0; i < v.size(); ++i) {
    CAPTURE(i);
    CHECK(v[i] == doctest::Approx(expected[i]).epsilon(eps));
  }
}

}  // namespace

// ---- losses -----------------------------------------------------------------------------------

TEST_CASE("cross_entropy with logits of +-1e30: exact losses and softmax - onehot gradients") {
  // +-1e4 is in tests/test_loss.cpp; 1e30 is still a float32 value, and its differences
  // (2e30) are too. Row 0 picks its maximum (loss 0), row 1 a logit 2e30 below it.
  for (DType dtype : kBoth) {
    CAPTURE(std::string(dtype_name(dtype)));
    Variable logits = leaf({1e30, -1e30, 0.0, -1e30, 1e30, 0.0}, {2, 3}, dtype);
    Variable loss = cross_entropy(logits, indices({0, 0}), -100, Reduction::Sum);
    CHECK(loss.item() == doctest::Approx(2e30).epsilon(tol(dtype)));
    loss.backward();
    REQUIRE(finite(logits.grad()));
    CHECK(logits.grad().to_vector() == Vec{0, 0, 0, -1, 1, 0});

    // Mean divides the same by the number of targets.
    logits.zero_grad();
    Variable mean_loss = cross_entropy(logits, indices({0, 0}));
    CHECK(mean_loss.item() == doctest::Approx(1e30).epsilon(tol(dtype)));
    mean_loss.backward();
    CHECK(logits.grad().to_vector() == Vec{0, 0, 0, -0.5, 0.5, 0});
  }
  // float32 near its largest value: the target is the maximum, so the loss is 0 even though
  // the logit difference (6e38) is not a float; the gradient is finite.
  Variable top = leaf({3e38, -3e38}, {1, 2}, DType::F32);
  Variable loss = cross_entropy(top, indices({0}));
  CHECK(loss.item() == 0.0);
  loss.backward();
  CHECK(top.grad().to_vector() == Vec{0, 0});
}

TEST_CASE("cross_entropy with label smoothing at +-1e4, and with -inf logits of other classes") {
  for (DType dtype : kBoth) {
    CAPTURE(std::string(dtype_name(dtype)));
    // log_softmax = [0, -2e4, -1e4]; loss = 0.9 * 0 - 0.1/3 * (0 - 2e4 - 1e4) = 1000;
    // gradient = softmax - (0.9 onehot + 0.1/3) = [1 - 0.9 - 0.1/3, -0.1/3, -0.1/3].
    Variable logits = leaf({1e4, -1e4, 0.0}, {1, 3}, dtype);
    Variable loss = cross_entropy(logits, indices({0}), -100, Reduction::Mean, 0.1);
    CHECK(loss.item() == doctest::Approx(1000.0).epsilon(tol(dtype)));
    loss.backward();
    REQUIRE(finite(logits.grad()));
    check_close(logits.grad(), {0.1 - 0.1 / 3, -0.1 / 3, -0.1 / 3}, 1e-5);

    // A class ruled out by a logit of -inf has probability 0 and gets gradient 0; the loss
    // of the other two (equal) classes is ln 2.
    Variable ruled_out = leaf({0.0, -kInf, 0.0}, {1, 3}, dtype);
    Variable l2 = cross_entropy(ruled_out, indices({0}));
    CHECK(l2.item() == doctest::Approx(std::log(2.0)).epsilon(tol(dtype)));
    l2.backward();
    REQUIRE(finite(ruled_out.grad()));
    check_close(ruled_out.grad(), {-0.5, 0.0, 0.5}, tol(dtype));
  }
}

TEST_CASE("cross_entropy: an ignored target contributes exactly 0 even when its row's logits are -inf") {
  // Class 0 ruled out everywhere (e.g. a padding token masked to -inf) and the padded
  // position ignored: its loss is 0, not inf * 0 = NaN, with and without label smoothing.
  for (DType dtype : kBoth) {
    for (double smoothing : {0.0, 0.2}) {
      CAPTURE(std::string(dtype_name(dtype)));
      CAPTURE(smoothing);
      Variable logits = leaf({-kInf, 1.0, 1.0, -kInf, 2.0, -1.0}, {2, 3}, dtype);
      const Tensor targets = indices({1, -100});
      Variable per = cross_entropy(logits, targets, -100, Reduction::None, smoothing);
      CHECK(per.data().at({1}) == 0.0);
      // Row 0: log_softmax = [-inf, -ln 2, -ln 2]; with smoothing e the uniform part sees the
      // -inf, so only the unsmoothed loss ln 2 is finite.
      CHECK((smoothing > 0.0 ? std::isinf(per.data().at({0}))
                             : per.data().at({0}) == doctest::Approx(std::log(2.0)).epsilon(tol(dtype))));
      Variable mean_loss = cross_entropy(logits, targets, -100, Reduction::Mean, 0.0);
      CHECK(mean_loss.item() == doctest::Approx(std::log(2.0)).epsilon(tol(dtype)));
      mean_loss.backward();
      REQUIRE(finite(logits.grad()));
      check_close(logits.grad(), {0.0, -0.5, 0.5, 0.0, 0.0, 0.0}, tol(dtype));
    }
  }
}

TEST_CASE("mse_loss at 1e15 (float32) and 1e150 (float64): finite squares and gradients 2(x - y)/N") {
  for (DType dtype : kBoth) {
    CAPTURE(std::string(dtype_name(dtype)));
    const double big = dtype == DType::F32 ? 1e15 : 1e150;  // big^2 is representable
    Variable x = leaf({big, -big, 0.0, kFltDenorm}, {4}, dtype);
    Variable loss = mse_loss(x, zeros({4}, dtype), Reduction::Sum);
    CHECK(loss.item() == doctest::Approx(2 * big * big).epsilon(tol(dtype)));
    loss.backward();
    REQUIRE(finite(x.grad()));
    check_close(x.grad(), {2 * big, -2 * big, 0.0, 2 * kFltDenorm}, tol(dtype));
  }
}

TEST_CASE("binary_cross_entropy_with_logits at +-1e30 and at denormal logits") {
  for (DType dtype : kBoth) {
    CAPTURE(std::string(dtype_name(dtype)));
    const double tiny = dtype == DType::F32 ? kFltDenorm : kDblDenorm;
    Variable x = leaf({1e30, -1e30, 1e30, -1e30, tiny, -tiny}, {6}, dtype);
    const Tensor y = tensor({1, 0, 0, 1, 1, 0}, {6}, dtype);
    Variable loss = binary_cross_entropy_with_logits(x, y, Reduction::None);
    // Confident and right: 0; confident and wrong: |x|; at x ~ 0: ln 2.
    check_close(loss.data(), {0, 0, 1e30, 1e30, std::log(2.0), std::log(2.0)}, tol(dtype));
    sum(loss).backward();
    REQUIRE(finite(x.grad()));
    check_close(x.grad(), {0, 0, 1, -1, -0.5, 0.5}, tol(dtype));  // sigmoid(x) - y
  }
}

// ---- activations ------------------------------------------------------------------------------

TEST_CASE("sigmoid and tanh saturate to exact 0, 1, +-1 with zero gradients at +-88, +-1e4, +-inf") {
  for (DType dtype : kBoth) {
    CAPTURE(std::string(dtype_name(dtype)));
    const Vec xs{88, -88, 1e4, -1e4, kInf, -kInf};
    Variable x = leaf(xs, {6}, dtype);
    Variable s = sigmoid(x), t = tanh(x);
    const Vec sv = s.data().to_vector(), tv = t.data().to_vector();
    for (size_t i = 0; i < xs.size(); ++i) {
      CAPTURE(xs[i]);
      CHECK(tv[i] == (xs[i] > 0 ? 1.0 : -1.0));
      // sigmoid(x <= -88) = e^x < 1e-38 (float32 gives 0 past its normal range)
      CHECK((xs[i] > 0 ? sv[i] == 1.0 : sv[i] >= 0.0 && sv[i] < 1e-38));
    }
    sum(s + t).backward();
    REQUIRE(finite(x.grad()));
    for (double g : x.grad().to_vector()) CHECK((g >= 0.0 && g < 1e-38));
  }
  // float64 near the end of exp's range: sigmoid(-700) = e^-700 / (1 + e^-700) ~ e^-700
  // (a normal double), sigmoid(-710) underflows to the subnormal e^-710 or 0, never NaN.
  Variable x = leaf({-700, -710, 710}, {3}, DType::F64);
  Variable s = sigmoid(x);
  CHECK(s.data().at({0}) == doctest::Approx(std::exp(-700.0)).epsilon(1e-12));
  CHECK((s.data().at({1}) >= 0.0 && s.data().at({1}) <= 1e-300));
  CHECK(s.data().at({2}) == 1.0);
  sum(s).backward();
  REQUIRE(finite(x.grad()));
  CHECK(x.grad().at({0}) == doctest::Approx(std::exp(-700.0)).epsilon(1e-12));
}

TEST_CASE("tanh and sigmoid of denormals and zeros: tanh(x) = x, sigmoid = 1/2, gradients 1 and 1/4") {
  for (DType dtype : kBoth) {
    CAPTURE(std::string(dtype_name(dtype)));
    const double tiny = dtype == DType::F32 ? kFltDenorm : kDblDenorm;
    Variable x = leaf({tiny, -tiny, 0.0, -0.0}, {4}, dtype);
    Variable t = tanh(x);
    CHECK(t.data().to_vector() == Vec{tiny, -tiny, 0.0, 0.0});
    CHECK(sigmoid(x).data().to_vector() == Vec{0.5, 0.5, 0.5, 0.5});
    sum(t).backward();
    CHECK(x.grad().to_vector() == Vec{1, 1, 1, 1});
    x.zero_grad();
    sum(sigmoid(x)).backward();
    CHECK(x.grad().to_vector() == Vec{0.25, 0.25, 0.25, 0.25});
  }
}

TEST_CASE("exp at the ends of its range: finite up to the largest representable result, then inf") {
  struct Case {
    DType dtype;
    double largest_ok, overflows, subnormal, underflows;
  };
  // float32: e^88 = 1.65e38 < FLT_MAX, e^89 is not a float; e^-88 is subnormal, e^-110 is 0.
  // float64: e^709 = 8.2e307, e^710 overflows; e^-710 is subnormal, e^-750 is 0.
  for (const Case& c : {Case{DType::F32, 88, 89, -88, -110}, Case{DType::F64, 709, 710, -710, -750}}) {
    CAPTURE(std::string(dtype_name(c.dtype)));
    Variable x = leaf({c.largest_ok, c.subnormal, c.underflows, 0.0}, {4}, c.dtype);
    Variable y = exp(x);
    REQUIRE(finite(y.data()));
    CHECK(y.data().at({0}) == doctest::Approx(std::exp(c.largest_ok)).epsilon(tol(c.dtype)));
    CHECK(y.data().at({1}) > 0.0);
    CHECK(y.data().at({2}) == 0.0);
    CHECK(y.data().at({3}) == 1.0);
    y.backward(ones({4}, c.dtype));
    REQUIRE(finite(x.grad()));
    CHECK(equal(x.grad(), y.data()));  // d e^x / dx = e^x, bit for bit
    // Past the range the value is inf, as in PyTorch (anomaly mode reports it, see below).
    CHECK(std::isinf(exp(tensor({c.overflows}, {1}, c.dtype)).item()));
  }
}

TEST_CASE("log at 0, at denormals and at the largest value; log(0) = -inf is documented IEEE behaviour") {
  for (DType dtype : kBoth) {
    CAPTURE(std::string(dtype_name(dtype)));
    const double tiny = dtype == DType::F32 ? kFltDenorm : kDblDenorm;
    const double huge = dtype == DType::F32 ? kFltMax : std::numeric_limits<double>::max();
    Variable x = leaf({tiny, huge, 1e-30}, {3}, dtype);
    Variable y = log(x);
    REQUIRE(finite(y.data()));
    check_close(y.data(), {std::log(tiny), std::log(huge), std::log(1e-30)}, tol(dtype));
    y.backward(tensor({0.0, 1.0, 1.0}, {3}, dtype));
    REQUIRE(finite(x.grad()));
    check_close(x.grad(), {0.0, 1.0 / huge, 1e30}, tol(dtype));  // 1/x, finite away from 0

    // log(0) = -inf and its gradient 1/0 = +inf (PyTorch gives the same); anomaly mode
    // turns the -inf into an error that names the op.
    Variable z = leaf({0.0}, {1}, dtype);
    Variable lz = log(z);
    CHECK(lz.item() == -kInf);
    lz.backward();
    CHECK(z.grad().item() == kInf);
    AnomalyModeGuard anomaly;
    CHECK_THROWS_WITH_AS(log(z), doctest::Contains("forward of 'log'"), Error);
  }
}

// ---- softmax ----------------------------------------------------------------------------------

TEST_CASE("log_softmax and softmax of huge logits and of rows with -inf: exact values, finite gradients") {
  for (DType dtype : kBoth) {
    CAPTURE(std::string(dtype_name(dtype)));
    // Row 0: huge logits; row 1: a ruled-out class; row 2: float32's largest values.
    Variable x = leaf({1e4, 0.0, -1e4, -kInf, 1.0, 1.0, 3e38, -3e38, 3e38}, {3, 3}, dtype);
    Variable ls = log_softmax(x, 1);
    const Vec v = ls.data().to_vector();
    CHECK(v[0] == 0.0);
    CHECK(v[1] == -1e4);
    CHECK(v[2] == -2e4);
    CHECK(v[3] == -kInf);
    CHECK(v[4] == doctest::Approx(-std::log(2.0)).epsilon(tol(dtype)));
    CHECK(v[6] == doctest::Approx(-std::log(2.0)).epsilon(tol(dtype)));
    // 6e38 below the maximum: -inf in float32 (not a float), -6e38 in float64; both mean
    // probability 0.
    CHECK((dtype == DType::F32 ? v[7] == -kInf : v[7] == doctest::Approx(-6e38)));
    // Weighted sum over the finite entries: dx = w - softmax * sum(w).
    const Tensor w = tensor({1, 2, 3, 0, 1, 0, 1, 0, 0}, {3, 3}, dtype);
    ls.backward(w);
    REQUIRE(finite(x.grad()));
    check_close(x.grad(), {1 - 6, 2, 3, 0, 1 - 0.5, -0.5, 1 - 0.5, 0, -0.5}, tol(dtype));

    x.zero_grad();
    Variable s = softmax(x, 1);
    check_close(s.data(), {1, 0, 0, 0, 0.5, 0.5, 0.5, 0, 0.5}, tol(dtype));
    s.backward(w);  // dx = s * (w - sum(w * s))
    REQUIRE(finite(x.grad()));
    check_close(x.grad(), {0, 0, 0, 0, 0.25, -0.25, 0.25, 0, -0.25}, tol(dtype));
  }
}

TEST_CASE("log_softmax keeps log(sum) next to a huge maximum: equal logits of 1e4, 1e8, 1e30 give -ln 2") {
  // log_softmax = (x - max) - log(sum e^(x - max)). Computed as x - (max + log(sum)), the
  // log 2 would be rounded into max: -0.69336 instead of -0.693147 at 1e4 in float32, and 0
  // (a loss of 0 and a zero gradient for a coin flip) at 1e30.
  for (DType dtype : kBoth) {
    for (double big : {1e4, 1e8, 1e30}) {
      CAPTURE(std::string(dtype_name(dtype)));
      CAPTURE(big);
      Variable z = leaf({big, big, -big, big, big, big}, {2, 3}, dtype);
      const Tensor ls = log_softmax(z.data(), 1);
      check_close(ls, {-std::log(2.0), -std::log(2.0), -2 * big - std::log(2.0), -std::log(3.0), -std::log(3.0), -std::log(3.0)},
                  tol(dtype));
      Variable loss = cross_entropy(z, indices({0, 2}), -100, Reduction::Sum);
      CHECK(loss.item() == doctest::Approx(std::log(2.0) + std::log(3.0)).epsilon(tol(dtype)));
      loss.backward();
      check_close(z.grad(), {-0.5, 0.5, 0.0, 1.0 / 3, 1.0 / 3, -2.0 / 3}, tol(dtype));
    }
  }
}

TEST_CASE("masked_softmax and attention: fully masked rows and extreme scores stay finite, no NaN anywhere") {
  for (DType dtype : kBoth) {
    CAPTURE(std::string(dtype_name(dtype)));
    // Row 0: huge unmasked scores; row 1: fully masked (with inf and NaN in it); row 2: a
    // single unmasked position.
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Variable scores = leaf({1e4, -1e4, 5.0, kInf, nan, -kInf, -1e4, 3.0, 1e4}, {3, 3}, dtype);
    const Tensor mask = tensor({1, 1, 0, 0, 0, 0, 1, 0, 0}, {3, 3});
    Variable w = masked_softmax(scores, mask);
    CHECK(w.data().to_vector() == Vec{1, 0, 0, 0, 0, 0, 1, 0, 0});
    w.backward(tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3}, dtype));
    REQUIRE(finite(scores.grad()));
    CHECK(scores.grad().to_vector() == Vec{0, 0, 0, 0, 0, 0, 0, 0, 0});  // saturated or masked

    // Attention with large queries (scores ~1e4) and a fully masked batch element, under
    // anomaly mode: no intermediate value or gradient is NaN or inf.
    Generator gen(3);
    Variable q(mul(randn({2, 3, 4}, gen, dtype), 5e3), true);
    Variable k(randn({2, 5, 4}, gen, dtype), true), v(randn({2, 5, 3}, gen, dtype), true);
    const Tensor key_mask = tensor({1, 1, 0, 1, 0, 0, 0, 0, 0, 0}, {2, 5});
    AnomalyModeGuard anomaly;
    AttentionResult r = scaled_dot_product_attention(q, k, v, key_mask);
    REQUIRE(finite(r.weights.data()));
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 5; ++j) CHECK(r.weights.data().at({1, i, j}) == 0.0);
    sum(r.context * r.context).backward();
    for (const Variable* p : {&q, &k, &v}) CHECK(finite(p->grad()));
    for (int64_t c = 0; c < 4; ++c) CHECK(q.grad().at({1, 0, c}) == 0.0);
  }
}

// ---- LayerNorm and recurrent cells ------------------------------------------------------------

TEST_CASE("LayerNorm of a constant vector: zeros, and the finite gradient (g - mean g) / sqrt(eps)") {
  for (DType dtype : kBoth) {
    for (double c : {0.0, 7.5, -1e4}) {
      CAPTURE(std::string(dtype_name(dtype)));
      CAPTURE(c);
      LayerNorm ln(4);
      ln.to(dtype);
      Variable x = leaf({c, c, c, c}, {1, 4}, dtype);
      Variable y = ln(x);
      CHECK(y.data().to_vector() == Vec{0, 0, 0, 0});
      // With zero variance the normalisation is a division by sqrt(eps): the gradient of
      // sum(g * y) is (g - mean(g)) / sqrt(eps) (the variance term is multiplied by x - mean = 0).
      const Tensor g = tensor({1, 2, 3, 6}, {1, 4}, dtype);
      y.backward(g);
      REQUIRE(finite(x.grad()));
      const double s = 1.0 / std::sqrt(1e-5);
      const Vec expected{-2 * s, -1 * s, 0, 3 * s};
      const Vec got = x.grad().to_vector();
      for (size_t i = 0; i < 4; ++i) CHECK(std::abs(got[i] - expected[i]) <= (dtype == DType::F32 ? 1e-5 : 1e-12) * s);
      CHECK(finite(ln.weight.grad()));
      CHECK(ln.weight.grad().to_vector() == Vec{0, 0, 0, 0});
      CHECK(ln.bias.grad().to_vector() == Vec{1, 2, 3, 6});
    }
  }
}

TEST_CASE("saturated recurrent cells (inputs +-1e4): outputs in [-1, 1], finite gradients, no NaN under anomaly mode") {
  for (DType dtype : kBoth) {
    CAPTURE(std::string(dtype_name(dtype)));
    manual_seed(21);
    RNNCell rnn(3, 4);
    LSTMCell lstm(3, 4);
    GRUCell gru(3, 4);
    for (RecurrentCell* cell : {static_cast<RecurrentCell*>(&rnn), static_cast<RecurrentCell*>(&lstm),
                                static_cast<RecurrentCell*>(&gru)}) {
      cell->to(dtype);
      cell->zero_grad();
      Generator gen(5);
      Variable x(mul(sign(randn({6, 2, 3}, gen, dtype)), 1e4), true);  // [T,B,I] of +-1e4
      AnomalyModeGuard anomaly;
      SequenceResult r = run_cell(*cell, x);
      REQUIRE(finite(r.output.data()));
      for (double h : r.output.data().to_vector()) CHECK(std::abs(h) <= 1.0);
      sum(r.output).backward();
      CHECK(finite(x.grad()));
      for (const Variable& p : cell->parameters()) CHECK(finite(p.grad()));
    }
  }
}

// ---- optimizers and clipping ------------------------------------------------------------------

TEST_CASE("Adam: zero gradients leave parameters unchanged and state finite; huge and tiny gradients give finite steps") {
  for (DType dtype : kBoth) {
    CAPTURE(std::string(dtype_name(dtype)));
    Variable p = leaf({1.0, -2.0, 3.0}, {3}, dtype);
    optim::Adam opt({p}, {.lr = 0.1});
    for (int i = 0; i < 3; ++i) {
      p.set_grad(zeros({3}, dtype));
      opt.step();
    }
    CHECK(p.data().to_vector() == Vec{1.0, -2.0, 3.0});  // m = 0, so the step is 0 / (0 + eps) = 0
    // After zeros, a real gradient still moves each parameter by about lr (bias-corrected):
    // m_hat = g (1 - b1) / (1 - b1^4), v_hat = g^2 (1 - b2) / (1 - b2^4), step lr m_hat / sqrt(v_hat).
    const double big = dtype == DType::F32 ? 1e19 : 1e150, small = dtype == DType::F32 ? 1e-30 : 1e-200;
    p.set_grad(tensor({big, -1.0, small}, {3}, dtype));
    opt.step();
    REQUIRE(finite(p.data()));
    const double m_hat = 0.1 / (1 - std::pow(0.9, 4)), v_hat_sqrt = std::sqrt(0.001 / (1 - std::pow(0.999, 4)));
    const double step = 0.1 * m_hat / v_hat_sqrt;
    CHECK(p.data().at({0}) == doctest::Approx(1.0 - step).epsilon(1e-5));
    CHECK(p.data().at({1}) == doctest::Approx(-2.0 + step).epsilon(1e-5));
    // A gradient far below eps barely moves the parameter (as in PyTorch): finite, < 1e-10.
    CHECK(std::abs(p.data().at({2}) - 3.0) < 1e-10);
  }
}

TEST_CASE("clip_grad_norm with zero, huge, infinite and NaN norms") {
  for (DType dtype : kBoth) {
    CAPTURE(std::string(dtype_name(dtype)));
    Variable a = leaf({0, 0}, {2}, dtype), b = leaf({0}, {1}, dtype);
    // Zero norm: returns 0, gradients stay exactly zero (max_norm / (0 + 1e-6) >= 1).
    a.set_grad(zeros({2}, dtype));
    b.set_grad(zeros({1}, dtype));
    CHECK(clip_grad_norm({a, b}, 1.0) == 0.0);
    CHECK(a.grad().to_vector() == Vec{0, 0});
    CHECK(clip_grad_norm({a, b}, 0.0) == 0.0);  // max_norm 0 scales by 0: still zeros
    CHECK(finite(a.grad()));

    // Huge but finite gradients whose squares fit a double (the norm is accumulated in double,
    // so float32 gradients of 1e30, whose squares are not floats, work too).
    const double big = dtype == DType::F32 ? 1e30 : 1e150;
    a.set_grad(tensor({3 * big, 4 * big}, {2}, dtype));
    b.set_grad(zeros({1}, dtype));
    CHECK(clip_grad_norm({a, b}, 1.0) == doctest::Approx(5 * big).epsilon(tol(dtype)));
    REQUIRE(finite(a.grad()));
    check_close(a.grad(), {0.6, 0.8}, tol(dtype));
    CHECK(clip_grad_norm({a, b}, 1.0, INFINITY) == doctest::Approx(0.8).epsilon(tol(dtype)));  // already clipped

    // An infinite gradient: the norm is inf and the scale max_norm / inf = 0 turns finite
    // entries into 0 and the inf into NaN, as torch.nn.utils.clip_grad_norm_ does
    // (error_if_nonfinite=False). A NaN gradient makes the norm and every gradient NaN.
    a.set_grad(tensor({kInf, 1.0}, {2}, dtype));
    b.set_grad(tensor({2.0}, {1}, dtype));
    CHECK(std::isinf(clip_grad_norm({a, b}, 1.0)));
    CHECK(std::isnan(a.grad().at({0})));
    CHECK(a.grad().at({1}) == 0.0);
    CHECK(b.grad().item() == 0.0);
    a.set_grad(tensor({std::nan(""), 1.0}, {2}, dtype));
    b.set_grad(tensor({2.0}, {1}, dtype));
    CHECK(std::isnan(clip_grad_norm({a, b}, 1.0)));
    CHECK(std::isnan(b.grad().item()));
  }
}
