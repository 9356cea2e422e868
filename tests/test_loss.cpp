// Losses: values against plain double math, every reduction, ignore_index, label
// smoothing, float64 gradchecks, extreme logits and argument errors.
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/loss.h"

#include <cmath>
#include <limits>
#include <vector>

using namespace unroll;

namespace {

Variable param(std::initializer_list<double> v, const Shape& s) { return Variable(tensor(v, s, DType::F64), true); }
Variable random_param(const Shape& s, Generator& gen) { return Variable(randn(s, gen, DType::F64), true); }

// log(sum_c e^x_c) in plain double math
double logsumexp(const std::vector<double>& x) {
  double m = x[0];
  for (double v : x) m = std::max(m, v);
  double s = 0;
  for (double v : x) s += std::exp(v - m);
  return m + std::log(s);
}

std::vector<double> row(const std::vector<double>& flat, size_t r, size_t C) {
  return {flat.begin() + static_cast<std::ptrdiff_t>(r * C), flat.begin() + static_cast<std::ptrdiff_t>((r + 1) * C)};
}

void check_values(const Variable& got, const std::vector<double>& expected, double eps = 1e-12) {
  const std::vector<double> v = got.data().to_vector();
  REQUIRE(v.size() == expected.size());
  for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == doctest::Approx(expected[i]).epsilon(eps));
}

void check_grad(const std::function<Variable()>& f, const std::vector<Variable>& inputs) {
  const GradcheckResult r = gradcheck(f, inputs);
  INFO(r.summary());
  CHECK(r.ok);
}

}  // namespace

TEST_CASE("mse_loss and l1_loss: every reduction, Variable and Tensor targets") {
  const std::vector<double> x{1, 2, 3, 4, -1, 0.5};
  const std::vector<double> y{0.5, 2, 5, 3.5, 1, -0.25};
  Variable input(tensor(x, {2, 3}, DType::F64), true);
  const Tensor target = tensor(y, {2, 3}, DType::F64);
  std::vector<double> sq, ab;
  double sq_sum = 0, ab_sum = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sq.push_back((x[i] - y[i]) * (x[i] - y[i]));
    ab.push_back(std::abs(x[i] - y[i]));
    sq_sum += sq.back();
    ab_sum += ab.back();
  }
  // by hand: squares 0.25 0 4 0.25 4 0.5625 -> 9.0625; absolutes 0.5 0 2 0.5 2 0.75 -> 5.75
  CHECK(sq_sum == doctest::Approx(9.0625));
  CHECK(ab_sum == doctest::Approx(5.75));

  check_values(mse_loss(input, target, Reduction::None), sq);
  check_values(mse_loss(input, target, Reduction::Sum), {sq_sum});
  check_values(mse_loss(input, target), {sq_sum / 6});
  check_values(mse_loss(input, Variable(target)), {sq_sum / 6});
  CHECK(mse_loss(input, target, Reduction::None).shape() == Shape{2, 3});
  check_values(l1_loss(input, target, Reduction::None), ab);
  check_values(l1_loss(input, target, Reduction::Sum), {ab_sum});
  check_values(l1_loss(input, target), {ab_sum / 6});

  // d mean((x-y)^2) / dx = 2 (x - y) / n;  d mean|x-y| / dx = sign(x - y) / n (0 where equal)
  mse_loss(input, target).backward();
  for (size_t i = 0; i < x.size(); ++i) CHECK(input.grad().to_vector()[i] == doctest::Approx(2 * (x[i] - y[i]) / 6));
  input.zero_grad();
  l1_loss(input, target).backward();
  CHECK(input.grad().to_vector() == std::vector<double>{1.0 / 6, 0, -1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6});
}

TEST_CASE("cross_entropy matches log-sum-exp minus the target logit, for every reduction") {
  const std::vector<double> x{1.0, 2.0, 0.5, -1.0,  //
                              0.0, 0.0, 0.0, 0.0,   //
                              3.0, -2.0, 1.5, 0.25};
  const std::vector<int64_t> t{2, 0, 3};
  Variable logits(tensor(x, {3, 4}, DType::F64), true);
  std::vector<double> per;
  for (size_t n = 0; n < 3; ++n) per.push_back(logsumexp(row(x, n, 4)) - x[n * 4 + static_cast<size_t>(t[n])]);
  CHECK(per[1] == doctest::Approx(std::log(4.0)));  // uniform logits: log C

  check_values(cross_entropy(logits, indices(t), -100, Reduction::None), per);
  check_values(cross_entropy(logits, indices(t), -100, Reduction::Sum), {per[0] + per[1] + per[2]});
  check_values(cross_entropy(logits, indices(t)), {(per[0] + per[1] + per[2]) / 3});

  // d mean / d logits = (softmax - onehot) / N
  cross_entropy(logits, indices(t)).backward();
  const std::vector<double> g = logits.grad().to_vector();
  for (size_t n = 0; n < 3; ++n) {
    const double lse = logsumexp(row(x, n, 4));
    for (size_t c = 0; c < 4; ++c) {
      const double expected = (std::exp(x[n * 4 + c] - lse) - (static_cast<int64_t>(c) == t[n] ? 1.0 : 0.0)) / 3;
      CHECK(g[n * 4 + c] == doctest::Approx(expected).epsilon(1e-12));
    }
  }

  // nll_loss of log-probabilities (any values: it only picks and negates)
  Variable lp(tensor(x, {3, 4}, DType::F64), true);
  check_values(nll_loss(lp, indices(t), -100, Reduction::None), {-0.5, -0.0, -0.25});
  check_values(nll_loss(lp, indices(t)), {(-0.5 - 0.0 - 0.25) / 3});
  check_values(nll_loss(lp, indices(t), -100, Reduction::Sum), {-0.75});
}

TEST_CASE("cross_entropy: ignore_index drops targets from the loss and from the mean's count") {
  const std::vector<double> x{1.0, 2.0, 0.5, -1.0, 0.3, 0.7, -0.2, 0.1, 3.0, -2.0, 1.5, 0.25};
  Variable logits(tensor(x, {3, 4}, DType::F64), true);
  const double l0 = logsumexp(row(x, 0, 4)) - x[2];
  const double l2 = logsumexp(row(x, 2, 4)) - x[11];

  check_values(cross_entropy(logits, indices({2, -100, 3}), -100, Reduction::None), {l0, 0.0, l2});
  check_values(cross_entropy(logits, indices({2, -100, 3}), -100, Reduction::Sum), {l0 + l2});
  check_values(cross_entropy(logits, indices({2, -100, 3})), {(l0 + l2) / 2});  // mean over 2, not 3
  // a custom ignore_index that is also a valid class
  check_values(cross_entropy(logits, indices({2, 1, 3}), 1), {(l0 + l2) / 2});

  // the ignored row gets no gradient
  cross_entropy(logits, indices({2, -100, 3})).backward();
  const std::vector<double> g = logits.grad().to_vector();
  for (size_t c = 4; c < 8; ++c) CHECK(g[c] == 0.0);
  CHECK(g[2] == doctest::Approx((std::exp(x[2] - logsumexp(row(x, 0, 4))) - 1) / 2).epsilon(1e-12));

  // all ignored: NaN like PyTorch, with a zero (not NaN) gradient
  logits.zero_grad();
  Variable all_ignored = cross_entropy(logits, indices({-100, -100, -100}));
  CHECK(std::isnan(all_ignored.item()));
  all_ignored.backward();
  for (double v : logits.grad().to_vector()) CHECK(v == 0.0);
  CHECK(cross_entropy(logits, indices({-100, -100, -100}), -100, Reduction::Sum).item() == 0.0);
}

TEST_CASE("cross_entropy: label smoothing mixes in the uniform distribution") {
  const std::vector<double> x{1.0, 2.0, 0.5, 0.3, 0.7, -0.2, 3.0, -2.0, 1.5};
  const std::vector<int64_t> t{1, -100, 0};
  const double e = 0.2;
  Variable logits(tensor(x, {3, 3}, DType::F64), true);
  std::vector<double> per;
  for (size_t n = 0; n < 3; ++n) {
    if (t[n] == -100) {
      per.push_back(0.0);
      continue;
    }
    const double lse = logsumexp(row(x, n, 3));
    double uniform = 0;  // -(1/C) sum_c log p_c
    for (size_t c = 0; c < 3; ++c) uniform += (lse - x[n * 3 + c]) / 3;
    per.push_back((1 - e) * (lse - x[n * 3 + static_cast<size_t>(t[n])]) + e * uniform);
  }
  check_values(cross_entropy(logits, indices(t), -100, Reduction::None, e), per);
  check_values(cross_entropy(logits, indices(t), -100, Reduction::Mean, e), {(per[0] + per[2]) / 2});
  check_values(cross_entropy(logits, indices(t), -100, Reduction::Sum, e), {per[0] + per[2]});
  // smoothing 1: the target no longer matters
  CHECK(cross_entropy(logits, indices({0, 1, 2}), -100, Reduction::Mean, 1.0).item() ==
        doctest::Approx(cross_entropy(logits, indices({2, 0, 1}), -100, Reduction::Mean, 1.0).item()).epsilon(1e-12));
}

TEST_CASE("cross_entropy over [N,C,d] logits with [N,d] targets") {
  // logits[n, c, d] = v[(n*3 + c)*2 + d]
  const std::vector<double> v{0.1, 1.2, -0.4, 0.3, 2.0, -1.0, 0.5, 0.5, -0.3, 0.8, 1.1, -2.0};
  const std::vector<int64_t> t{2, 0, 1, -100};  // targets[n, d] = t[n*2 + d]
  Variable logits(tensor(v, {2, 3, 2}, DType::F64), true);
  std::vector<double> per;
  for (size_t n = 0; n < 2; ++n) {
    for (size_t d = 0; d < 2; ++d) {
      const int64_t target = t[n * 2 + d];
      if (target == -100) {
        per.push_back(0.0);
        continue;
      }
      std::vector<double> scores;
      for (size_t c = 0; c < 3; ++c) scores.push_back(v[(n * 3 + c) * 2 + d]);
      per.push_back(logsumexp(scores) - scores[static_cast<size_t>(target)]);
    }
  }
  Variable none = cross_entropy(logits, indices(t, {2, 2}), -100, Reduction::None);
  CHECK(none.shape() == Shape{2, 2});
  check_values(none, per);
  check_values(cross_entropy(logits, indices(t, {2, 2})), {(per[0] + per[1] + per[2]) / 3});
  GradcheckResult r = gradcheck([&] { return cross_entropy(logits, indices(t, {2, 2})); }, {logits});
  INFO(r.summary());
  CHECK(r.ok);
}

TEST_CASE("binary_cross_entropy_with_logits matches -[y log s + (1-y) log(1-s)], with pos_weight") {
  const std::vector<double> x{-2.0, -0.5, 0.0, 1.5, 3.0, 0.25};
  const std::vector<double> y{0.0, 1.0, 0.3, 1.0, 0.0, 0.6};
  const std::vector<double> pw{2.0, 0.5, 1.5};  // per column of [2,3]
  Variable logits(tensor(x, {2, 3}, DType::F64), true);
  const Tensor targets = tensor(y, {2, 3}, DType::F64);
  std::vector<double> plain, weighted;
  for (size_t i = 0; i < x.size(); ++i) {
    const double s = 1 / (1 + std::exp(-x[i]));
    plain.push_back(-(y[i] * std::log(s) + (1 - y[i]) * std::log(1 - s)));
    weighted.push_back(-(pw[i % 3] * y[i] * std::log(s) + (1 - y[i]) * std::log(1 - s)));
  }
  CHECK(plain[2] == doctest::Approx(std::log(2.0)));  // x = 0: log 2 for any y

  check_values(binary_cross_entropy_with_logits(logits, targets, Reduction::None), plain, 1e-10);
  double sum_plain = 0, sum_weighted = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sum_plain += plain[i];
    sum_weighted += weighted[i];
  }
  check_values(binary_cross_entropy_with_logits(logits, targets, Reduction::Sum), {sum_plain}, 1e-10);
  check_values(binary_cross_entropy_with_logits(logits, targets), {sum_plain / 6}, 1e-10);
  const Tensor pos_weight = tensor(pw, {3}, DType::F64);
  check_values(binary_cross_entropy_with_logits(logits, targets, Reduction::None, pos_weight), weighted, 1e-10);
  check_values(binary_cross_entropy_with_logits(logits, Variable(targets), Reduction::Mean, pos_weight),
               {sum_weighted / 6}, 1e-10);

  // gradient sigmoid(x) - y, exactly right at the kink x = 0
  binary_cross_entropy_with_logits(logits, targets, Reduction::Sum).backward();
  const std::vector<double> g = logits.grad().to_vector();
  for (size_t i = 0; i < x.size(); ++i) CHECK(g[i] == doctest::Approx(1 / (1 + std::exp(-x[i])) - y[i]).epsilon(1e-12));
  CHECK(g[2] == doctest::Approx(0.5 - 0.3).epsilon(1e-14));
}

TEST_CASE("float64 gradcheck of every loss") {
  Generator gen(7);
  SUBCASE("mse_loss and l1_loss, gradients to input and target") {
    Variable a = random_param({3, 4}, gen);
    Variable b = random_param({3, 4}, gen);
    for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
      check_grad([&] { return mse_loss(a, b, r); }, {a, b});
      check_grad([&] { return l1_loss(a, b, r); }, {a, b});
    }
  }
  SUBCASE("cross_entropy and nll_loss, with ignore_index and label smoothing") {
    Variable logits = random_param({4, 5}, gen);
    const Tensor t = indices({3, 0, -100, 4});
    for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
      check_grad([&] { return cross_entropy(logits, indices({3, 0, 1, 4}), -100, r); }, {logits});
      check_grad([&] { return cross_entropy(logits, t, -100, r); }, {logits});
      check_grad([&] { return cross_entropy(logits, t, -100, r, 0.1); }, {logits});
      check_grad([&] { return nll_loss(log_softmax(logits, 1), t, -100, r); }, {logits});
    }
    check_grad([&] { return nll_loss(logits, t); }, {logits});  // plain picking, no normalisation
  }
  SUBCASE("binary_cross_entropy_with_logits, gradients to logits and targets, with pos_weight") {
    Variable logits = random_param({3, 4}, gen);
    Variable targets(rand({3, 4}, gen, DType::F64), true);
    const Tensor pos_weight = uniform({4}, 0.5, 3.0, gen, DType::F64);
    for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
      check_grad([&] { return binary_cross_entropy_with_logits(logits, targets, r); }, {logits, targets});
      check_grad([&] { return binary_cross_entropy_with_logits(logits, targets, r, pos_weight); }, {logits, targets});
    }
  }
}

TEST_CASE("extreme logits (+-1e4) give finite losses and gradients") {
  for (DType dtype : {DType::F64, DType::F32}) {
    CAPTURE(dtype_name(dtype));
    Variable logits(tensor({1e4, -1e4, 0.0, -1e4, 1e4, 0.0}, {2, 3}, dtype), true);
    Variable ce = cross_entropy(logits, indices({0, 0}), -100, Reduction::Sum);
    // row 0 picks its maximum: loss 0; row 1 picks a logit 2e4 below the maximum: loss 2e4
    CHECK(ce.item() == doctest::Approx(2e4));
    ce.backward();
    const std::vector<double> g = logits.grad().to_vector();
    const std::vector<double> expected{0, 0, 0, -1, 1, 0};  // softmax - onehot
    for (size_t i = 0; i < g.size(); ++i) {
      CHECK(std::isfinite(g[i]));
      CHECK(g[i] == doctest::Approx(expected[i]));
    }

    Variable x(tensor({1e4, -1e4, 1e4, -1e4}, {4}, dtype), true);
    Variable bce = binary_cross_entropy_with_logits(x, tensor({1, 0, 0, 1}, {4}, dtype), Reduction::None);
    CHECK(bce.data().to_vector() == std::vector<double>{0, 0, 1e4, 1e4});
    sum(bce).backward();
    CHECK(x.grad().to_vector() == std::vector<double>{0, 0, 1, -1});  // sigmoid(x) - y
    x.zero_grad();
    Variable weighted = binary_cross_entropy_with_logits(x, tensor({1, 0, 0, 1}, {4}, dtype), Reduction::Sum,
                                                         tensor({3.0}, {1}, dtype));
    CHECK(weighted.item() == doctest::Approx(1e4 + 3e4));
    weighted.backward();
    for (double v : x.grad().to_vector()) CHECK(std::isfinite(v));
  }
}

TEST_CASE("loss argument errors name the op and the values") {
  Variable a = param({1, 2, 3}, {3, 1});
  CHECK_THROWS_WITH_AS(mse_loss(a, zeros({3}, DType::F64)), doctest::Contains("mse_loss: input [3,1] and target [3]"),
                       Error);
  CHECK_THROWS_WITH_AS(l1_loss(a, zeros({1, 3}, DType::F64)), doctest::Contains("do not broadcast"), Error);
  CHECK_THROWS_WITH_AS(mse_loss(a, zeros({3, 1}, DType::F32)), doctest::Contains("target is float32"), Error);
  CHECK_THROWS_WITH_AS(mse_loss(a, Variable()), doctest::Contains("mse_loss: target must be defined"), Error);

  Variable logits = param({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
  CHECK_THROWS_WITH_AS(cross_entropy(logits, indices({1, 5})),
                       doctest::Contains("cross_entropy: target 5 at position [1] is out of range for C = 4"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, indices({-3, 0})), doctest::Contains("target -3 at position [0]"), Error);
  CHECK_THROWS_WITH_AS(nll_loss(logits, indices({0, 4})), doctest::Contains("nll_loss: target 4 at position [1]"),
                       Error);
  CHECK_THROWS_WITH_AS(cross_entropy(param({1, 2, 3, 4, 5, 6}, {1, 3, 2}), indices(std::vector<int64_t>{0, 3}, {1, 2})),
                       doctest::Contains("target 3 at position [0,1]"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, tensor({1, 0}, {2}, DType::F64)), doctest::Contains("int64"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, indices({1, 0, 2})),
                       doctest::Contains("input [2,4] needs targets of shape [2], got [3]"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(param({1, 2}, {2}), indices({1})), doctest::Contains("must be [N,C]"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, indices({1, 0}), -100, Reduction::Mean, 1.5),
                       doctest::Contains("label_smoothing must be in [0, 1], got 1.5"), Error);
  CHECK_THROWS_WITH_AS(binary_cross_entropy_with_logits(logits, zeros({2, 4}, DType::F64), Reduction::Mean,
                                                        ones({3}, DType::F64)),
                       doctest::Contains("binary_cross_entropy_with_logits"), Error);
  CHECK_THROWS_WITH_AS(binary_cross_entropy_with_logits(logits, zeros({8}, DType::F64)),
                       doctest::Contains("input [2,4] and target [8]"), Error);
}
