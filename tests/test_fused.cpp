// The ops added for speed: linear2 (two-input affine map), addmm/addmm_ (GEMM with the bias
// or destination as the accumulator), the one-pass tanh/sigmoid backward helpers, the
// vectorised float tanh/sigmoid/erf/GELU, thread-count determinism, and the tensor memory
// counters.
#include <doctest/doctest.h>

#include <unroll.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <thread>
#include <vector>

using namespace unroll;

namespace {

Variable leaf(const Shape& s, Generator& gen) { return Variable(randn(s, gen, DType::F64), true); }

/// Distance in float ulps between got and the float nearest to want.
double ulps(float got, double want) {
  const auto w = static_cast<float>(want);
  if (got == w) return 0;
  const double u = std::nextafter(std::fabs(w), std::numeric_limits<float>::infinity()) - std::fabs(w);
  return std::fabs(static_cast<double>(got) - want) / u;
}

}  // namespace

TEST_CASE("linear2 passes gradcheck with both, one or no biases, and an input used twice") {
  Generator gen(3);
  Variable x1 = leaf({3, 4}, gen), w1 = leaf({5, 4}, gen), x2 = leaf({3, 2}, gen), w2 = leaf({5, 2}, gen);
  Variable b1 = leaf({5}, gen), b2 = leaf({5}, gen);
  auto check = [](const std::function<Variable()>& f, const std::vector<Variable>& in) {
    GradcheckResult r = gradcheck(f, in);
    INFO(r.summary());
    CHECK(r.ok);
  };
  check([&] { return linear2(x1, w1, x2, w2, b1, b2); }, {x1, w1, x2, w2, b1, b2});
  check([&] { return linear2(x1, w1, x2, w2, b1); }, {x1, w1, x2, w2, b1});
  check([&] { return linear2(x1, w1, x2, w2, Variable(), b2); }, {x1, w1, x2, w2, b2});
  check([&] { return linear2(x1, w1, x2, w2); }, {x1, w1, x2, w2});
  Variable h = leaf({3, 5}, gen), wh = leaf({5, 5}, gen);
  check([&] { return tanh(linear2(h, wh, h, wh, b1, b1)); }, {h, wh, b1});  // every input used twice
}

TEST_CASE("the transposed-operand cache: same bits, copies on the second sighting, never a stale weight") {
  clear_operand_cache();
  Generator gen(12);
  const Variable x(randn({32, 256}, gen)), h(randn({32, 192}, gen));
  Variable w(randn({512, 256}, gen), true), wh(randn({512, 192}, gen), true), b(randn({512}, gen), true);
  const Tensor first = linear(x, w, b).data();  // first sighting: packed W^T, no copy
  CHECK(operand_cache_stats().copies == 0);
  const Tensor second = linear(x, w, b).data();  // second sighting: W^T copied, read in place
  CHECK(operand_cache_stats().copies == 1);
  const Tensor third = linear(x, w, b).data();  // a hit
  CHECK(operand_cache_stats().hits == 1);
  CHECK(equal(first, second));
  CHECK(equal(first, third));
  const Tensor pair1 = linear2(x, w, h, wh, b, b).data(), pair2 = linear2(x, w, h, wh, b, b).data();
  CHECK(equal(pair1, pair2));
  CHECK(operand_cache_stats().entries == 2);  // w and wh
  // A different weight of the same shape is not mistaken for w.
  Variable other(randn({512, 256}, gen), true);
  for (int i = 0; i < 3; ++i) CHECK_FALSE(equal(linear(x, other, b).data(), first));
  // An in-place update (an optimizer step) gives w a new stamp: never served stale, and the
  // copy of the old value is dropped as soon as w is seen again.
  const int64_t entries = operand_cache_stats().entries;
  add_(w.data(), ones({512, 256}));
  const Tensor updated = linear(x, w, b).data();
  CHECK_FALSE(equal(updated, first));
  CHECK(operand_cache_stats().entries == entries - 1);
  CHECK(equal(linear(x, w, b).data(), updated));
  CHECK(equal(linear(x, w, b).data(), updated));
  CHECK(operand_cache_stats().entries == entries);
  clear_operand_cache();
  CHECK(operand_cache_stats().entries == 0);
  CHECK(operand_cache_stats().bytes == 0);
}

TEST_CASE("the transposed-operand cache: a freed weight's block reused by another is not mistaken for it") {
  clear_operand_cache();
  Generator gen(3);
  const Tensor x = randn({8, 128}, gen);
  const void* id = nullptr;
  Tensor before;
  {
    const Tensor w = randn({256, 128}, gen);
    id = w.storage_id();
    for (int i = 0; i < 3; ++i) before = matmul(x, w, false, true);
  }
  const Tensor w2 = randn({256, 128}, gen);  // the pool hands back the same block
  CHECK(w2.storage_id() == id);
  Tensor after;
  for (int i = 0; i < 3; ++i) after = matmul(x, w2, false, true);
  CHECK(equal(after, matmul(x, w2.clone(), false, true)));
  CHECK_FALSE(equal(after, before));
}

TEST_CASE("the transposed-operand cache: bounded, and used by a hand-written loop and by every recurrent module") {
  clear_operand_cache();
  Generator gen(5);
  const Tensor x = randn({4, 128}, gen);
  std::vector<Tensor> ws;
  for (int i = 0; i < 24; ++i) ws.push_back(randn({128, 128}, gen));
  for (int round = 0; round < 2; ++round)
    for (const Tensor& w : ws) (void)matmul(x, w, false, true);
  CHECK(operand_cache_stats().copies == 24);
  CHECK(operand_cache_stats().entries == 16);  // the least recently used are evicted
  CHECK(operand_cache_stats().bytes == 16 * 128 * 128 * 4);
  // Outside the covered shapes nothing is remembered or copied: one row (the GEMV path),
  // more than 64 rows, a narrow K.
  clear_operand_cache();
  for (int i = 0; i < 3; ++i) {
    (void)matmul(randn({1, 128}, gen), ws[0], false, true);
    (void)matmul(randn({65, 128}, gen), ws[0], false, true);
    (void)matmul(randn({4, 64}, gen), randn({512, 64}, gen), false, true);
  }
  CHECK(operand_cache_stats().copies == 0);

  // A time loop written by hand, as DESIGN.md teaches: steps 3.. read the copy.
  clear_operand_cache();
  Variable wx(randn({512, 128}, gen), true), whh(randn({512, 128}, gen), true), bias(zeros({512}), true);
  Variable hs(zeros({4, 128}));
  for (int t = 0; t < 10; ++t) hs = narrow(tanh(linear2(Variable(x), wx, hs, whh, bias)), 1, 0, 128);
  CHECK(operand_cache_stats().hits == 2 * 8);  // wx and whh, at steps 3..10
  // An LSTM over 8 steps (no scope, no rule): W_hh [512,128] is copied once, read 6 times.
  clear_operand_cache();
  LSTM lstm({.input_size = 32, .hidden_size = 128});
  const auto out = lstm.forward(Variable(randn({8, 4, 32}, gen)));
  CHECK(operand_cache_stats().copies == 1);
  CHECK(operand_cache_stats().hits == 6);
  sum(out.output).backward();
  clear_operand_cache();
}

TEST_CASE("linear2 equals linear + linear, and checks its shapes") {
  Generator gen(4);
  Variable x1 = leaf({3, 4}, gen), w1 = leaf({5, 4}, gen), x2 = leaf({3, 2}, gen), w2 = leaf({5, 2}, gen);
  Variable b1 = leaf({5}, gen), b2 = leaf({5}, gen);
  CHECK(allclose(linear2(x1, w1, x2, w2, b1, b2).data(), (linear(x1, w1, b1) + linear(x2, w2, b2)).data(), 1e-12,
                 1e-12));
  CHECK_THROWS_WITH_AS(linear2(x1, w1, x2, w1), "linear2: input 2 [3,2] has 2 features but weight 2 [5,4] expects 4",
                       Error);
  CHECK_THROWS_WITH_AS(linear2(x1, w1, x2, leaf({6, 2}, gen)),
                       "linear2: weights [5,4] and [6,2] have different output sizes", Error);
  CHECK_THROWS_WITH_AS(linear2(x1, w1, leaf({2, 2}, gen), w2), "linear2: inputs [3,4] and [2,2] have different row counts",
                       Error);
}

TEST_CASE("addmm and addmm_ accumulate onto the bias and the destination") {
  Generator gen(5);
  const Tensor a = randn({3, 4}, gen, DType::F64), b = randn({5, 4}, gen, DType::F64), bias = randn({5}, gen, DType::F64);
  CHECK(allclose(addmm(bias, a, b, false, true), add(matmul(a, b, false, true), bias), 1e-12, 1e-12));
  Tensor c = randn({3, 5}, gen, DType::F64);
  const Tensor expected = add(c, matmul(a, b, false, true));
  addmm_(c, a, b, false, true);
  CHECK(allclose(c, expected, 1e-12, 1e-12));
  CHECK_THROWS_WITH_AS(addmm(randn({4}, gen, DType::F64), a, b, false, true),
                       "addmm: bias [4] does not match the product's 5 columns", Error);
  CHECK_THROWS_WITH_AS(addmm_(c, a, b), "addmm_: [3,4] x [5,4]: inner dimensions 4 and 5 differ", Error);
}

TEST_CASE("tanh_backward and sigmoid_backward match their formulas bit for bit") {
  Generator gen(6);
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor dy = randn({7, 9}, gen, dt), y = tanh(randn({7, 9}, gen, dt)), s = sigmoid(randn({7, 9}, gen, dt));
    CHECK(equal(tanh_backward(dy, y), dy * (1.0 - y * y)));
    CHECK(equal(sigmoid_backward(dy, s), dy * s * (1.0 - s)));
  }
  CHECK_THROWS_WITH_AS(tanh_backward(zeros({2}), zeros({3})),
                       "tanh_backward: gradient [2] and output [3] differ in shape", Error);
}

TEST_CASE("softmax_backward and log_softmax_backward match their formulas along any axis") {
  Generator gen(8);
  for (int axis : {0, 1, 2, -1}) {
    const Tensor x = randn({3, 5, 37}, gen, DType::F64), dy = randn({3, 5, 37}, gen, DType::F64);
    const Tensor p = softmax(x, axis), lp = log_softmax(x, axis);
    CHECK(allclose(softmax_backward(dy, p, axis), p * (dy - sum(dy * p, axis, true)), 1e-14, 1e-14));
    CHECK(allclose(log_softmax_backward(dy, lp, axis), dy - exp(lp) * sum(dy, axis, true), 1e-14, 1e-14));
    // float32: the contiguous last axis takes the vectorised exp (Note [fast float transcendentals])
    const Tensor x32 = x.to(DType::F32), dy32 = dy.to(DType::F32), lp32 = log_softmax(x32, axis);
    const Tensor ref = dy - exp(lp32.to(DType::F64)) * sum(dy, axis, true);
    CHECK(allclose(log_softmax_backward(dy32, lp32, axis).to(DType::F64), ref, 1e-5, 1e-5));
  }
  // Rows with -inf (masked) log-probabilities and a NaN keep their meaning.
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  const Tensor lp = tensor({0.0, -inf, -1e30, -100.0, -0.5, nan}, {1, 6});
  const Tensor g = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {1, 6});
  const std::vector<double> d = log_softmax_backward(g, lp, 1).to_vector();  // float32
  CHECK(d[0] == doctest::Approx(1.0 - 21.0));
  CHECK(d[1] == 2.0);
  CHECK(d[2] == 3.0);
  CHECK(d[3] == 4.0);  // e^-100 * 21 is below float resolution of 4
  CHECK(d[4] == doctest::Approx(5.0 - std::exp(-0.5) * 21.0));
  CHECK(std::isnan(d[5]));
  CHECK_THROWS_WITH_AS(log_softmax_backward(zeros({2, 3}), zeros({3, 2}), 1),
                       "log_softmax_backward: gradient [2,3] and output [3,2] differ in shape", Error);
  CHECK_THROWS_WITH_AS(softmax_backward(zeros({2, 3}), zeros({2, 3}, DType::F64), 1), doctest::Contains("softmax_backward"),
                       Error);
}

TEST_CASE("float softmax rows: the vectorised maximum finds the largest entry anywhere, and NaN anywhere gives NaN") {
  for (int64_t at : {0, 5, 15, 16, 33, 39}) {
    std::vector<double> row(40);
    for (size_t k = 0; k < row.size(); ++k) row[k] = -0.25 * static_cast<double>(k % 7);
    row[static_cast<size_t>(at)] = 100.0;  // e^100 overflows float: a wrong maximum shows
    const Tensor x = tensor(row, {1, 40});
    CHECK(allclose(log_softmax(x, 1).to(DType::F64), log_softmax(x.to(DType::F64), 1), 1e-5, 1e-5));
    row[static_cast<size_t>(at)] = std::nan("");
    const std::vector<double> y = softmax(tensor(row, {1, 40}), 1).to_vector();
    CHECK(std::all_of(y.begin(), y.end(), [](double v) { return std::isnan(v); }));
  }
}

TEST_CASE("float tanh and sigmoid are within a few ulp of double precision, saturate, and keep NaN") {
  std::vector<double> xs;
  for (double x = -30; x <= 30; x += 0.00731) xs.push_back(x);
  for (double x : {0.0, -0.0, 1e-30, -1e-20, 0.4999, 0.5, 0.5001, 8.99, 9.0, 9.01, 87.0, -87.0, -87.3, -88.0})
    xs.push_back(x);
  const Tensor x32 = tensor(xs, {static_cast<int64_t>(xs.size())});
  const Tensor t = tanh(x32), s = sigmoid(x32);
  double worst_t = 0, worst_s = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = static_cast<double>(x32.data<float>()[i]);
    worst_t = std::max(worst_t, ulps(t.data<float>()[i], std::tanh(x)));
    const double sx = 1.0 / (1.0 + std::exp(-x));
    if (sx >= static_cast<double>(std::numeric_limits<float>::min())) worst_s = std::max(worst_s, ulps(s.data<float>()[i], sx));
  }
  CHECK(worst_t <= 4.0);
  CHECK(worst_s <= 4.0);
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  const Tensor special = tensor({inf, -inf, nan, 1000, -1000});
  const Tensor ts = tanh(special), ss = sigmoid(special);
  CHECK(ts.at({0}) == 1.0);
  CHECK(ts.at({1}) == -1.0);
  CHECK(std::isnan(ts.at({2})));
  CHECK(ts.at({3}) == 1.0);
  CHECK(ts.at({4}) == -1.0);
  CHECK(ss.at({0}) == 1.0);
  CHECK(ss.at({1}) == 0.0);
  CHECK(std::isnan(ss.at({2})));
  CHECK(ss.at({3}) == 1.0);
  CHECK(ss.at({4}) == 0.0);
}

TEST_CASE("float erf, GELU and their backward kernels over a sweep of all floats: the ulp bounds, saturation, NaN") {
  // Every 1021st float bit pattern of each sign (tiny, subnormal and huge ones included),
  // against the double-precision libm result. Measured worst cases (Note [fast float
  // transcendentals]): erf 2.4 ulp, GELU 6.5 ulp where |y| >= FLT_MIN (below, it is off by at
  // most 2 subnormal steps), erf' 2.4 ulp, GELU' 3.0 ulp of Phi(x) + |x| phi(x).
  std::vector<double> xs;
  for (uint32_t bits = 0; bits < 0x7f800000u; bits += 1021) {
    const auto f = static_cast<double>(std::bit_cast<float>(bits));
    xs.push_back(f);
    xs.push_back(-f);
  }
  const auto n = static_cast<int64_t>(xs.size());
  Variable x(tensor(xs, {n}), true);
  const Tensor e = erf(x).data(), g = gelu(x).data();
  sum(erf(x)).backward();
  const Tensor de = x.grad();
  x.zero_grad();
  sum(gelu(x)).backward();
  const Tensor dg = x.grad();
  constexpr double kMin = std::numeric_limits<float>::min(), kStep = std::numeric_limits<float>::denorm_min();
  const double sqrt2 = std::numbers::sqrt2, inv_sqrt2pi = std::numbers::inv_sqrtpi / sqrt2;
  double worst_e = 0, worst_g = 0, worst_g_tiny = 0, worst_de = 0, worst_de_tiny = 0, worst_dg = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = xs[static_cast<size_t>(i)];
    worst_e = std::max(worst_e, ulps(e.data<float>()[i], std::erf(v)));
    const double y = 0.5 * v * std::erfc(-v / sqrt2);  // erfc: no cancellation in 1 + erf for v < 0
    if (std::fabs(y) >= kMin) worst_g = std::max(worst_g, ulps(g.data<float>()[i], y));
    else worst_g_tiny = std::max(worst_g_tiny, std::fabs(g.data<float>()[i] - y) / kStep);
    const double s = 2.0 * std::numbers::inv_sqrtpi * std::exp(-v * v);
    if (s >= kMin) worst_de = std::max(worst_de, ulps(de.data<float>()[i], s));
    else worst_de_tiny = std::max(worst_de_tiny, std::fabs(de.data<float>()[i] - s) / kStep);
    // Phi(x) + x phi(x) cancels near its zero at x = -0.75: measured in ulps of the sum of
    // the two terms' magnitudes (the condition of the sum).
    const double cdf = 0.5 * std::erfc(-v / sqrt2), xphi = v * inv_sqrt2pi * std::exp(-0.5 * v * v);
    const double scale = cdf + std::fabs(xphi);
    if (scale >= kMin) {
      const double err = std::fabs(dg.data<float>()[i] - (cdf + xphi));
      const auto sf = static_cast<float>(scale);
      worst_dg = std::max(worst_dg, err / (std::nextafter(sf, std::numeric_limits<float>::infinity()) - sf));
    }
  }
  MESSAGE("worst: erf " << worst_e << " ulp, gelu " << worst_g << " ulp (" << worst_g_tiny
                        << " subnormal steps where tiny), erf' " << worst_de << " ulp (" << worst_de_tiny
                        << " steps), gelu' " << worst_dg << " ulp of Phi + |x| phi; " << n << " floats");
  CHECK(worst_e <= 4.0);
  CHECK(worst_g <= 8.0);
  CHECK(worst_g_tiny <= 2.0);
  CHECK(worst_de <= 4.0);
  CHECK(worst_de_tiny <= 2.0);
  CHECK(worst_dg <= 4.0);

  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  Variable sp(tensor({inf, -inf, nan, 4.0, -4.0, 1e30, -1e30, -0.0, 10.0, -20.0}), true);
  const Tensor es = erf(sp).data(), gs = gelu(sp).data();
  const std::vector<double> saturated = {1, -1, nan, 1, -1, 1, -1, -0.0, 1, -1};  // exactly +-1
  for (int64_t i = 0; i < 10; ++i)
    if (i != 2) CHECK(es.at({i}) == saturated[static_cast<size_t>(i)]);
  CHECK(std::isnan(es.at({2})));
  CHECK(std::signbit(es.at({7})));  // erf(-0) = -0
  CHECK(gs.at({0}) == inf);
  CHECK(gs.at({1}) == 0.0);
  CHECK(std::isnan(gs.at({2})));
  CHECK(gs.at({5}) == 1e30f);
  CHECK(gs.at({8}) == 10.0);  // Phi(10) rounds to 1
  CHECK(gs.at({9}) == 0.0);
  sum(erf(sp)).backward();
  const std::vector<double> des = sp.grad().to_vector();
  sp.zero_grad();
  sum(gelu(sp)).backward();
  const std::vector<double> dgs = sp.grad().to_vector();
  CHECK(des[0] == 0.0);
  CHECK(des[1] == 0.0);
  CHECK(std::isnan(des[2]));
  CHECK(dgs[0] == 1.0);  // the limits of Phi(x) + x phi(x)
  CHECK(dgs[1] == 0.0);
  CHECK(std::isnan(dgs[2]));
  CHECK(dgs[5] == 1.0);
}

TEST_CASE("matmul gives the same bits with 1 and 2 threads, and set_num_threads validates") {
  Generator gen(7);
  const Tensor a = randn({64, 300}, gen), b = randn({700, 300}, gen), c = randn({300, 64}, gen);
  REQUIRE(num_threads() == 1);
  const Tensor one_nt = matmul(a, b, false, true), one_tn = matmul(b, c, false, false);
  set_num_threads(2);
  CHECK(num_threads() == 2);
  const Tensor two_nt = matmul(a, b, false, true), two_tn = matmul(b, c, false, false);
  set_num_threads(1);
  CHECK(equal(one_nt, two_nt));
  CHECK(equal(one_tn, two_tn));
  CHECK_THROWS_WITH_AS(set_num_threads(0), "set_num_threads: the thread count must be at least 1, got 0", Error);
}

TEST_CASE("back-to-back threaded products, with pauses that let the pool fall asleep, give 1-thread bits") {
  // Note [gemm threads]: workers spin, then sleep; the caller claims pieces a late worker
  // has not taken. Exercise every hand-over: products right after each other, and after
  // pauses longer than the spin.
  Generator gen(9);
  const Tensor a = randn({32, 256}, gen), b = randn({1024, 256}, gen);
  const Tensor expected = matmul(a, b, false, true);
  set_num_threads(2);
  int mismatches = 0;
  for (int i = 0; i < 300; ++i) {
    if (i % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (!equal(matmul(a, b, false, true), expected)) ++mismatches;
  }
  set_num_threads(1);
  CHECK(mismatches == 0);
}

TEST_CASE("memory_stats counts live tensor bytes and the peak") {
  const int64_t before = memory_stats().live_bytes;
  reset_peak_memory();
  {
    Tensor t = zeros({1000}, DType::F64);  // 8,000 bytes
    CHECK(memory_stats().live_bytes - before == 8000);
  }
  CHECK(memory_stats().live_bytes == before);
  CHECK(memory_stats().peak_bytes - before == 8000);
  reset_peak_memory();
  CHECK(memory_stats().peak_bytes == before);
}
