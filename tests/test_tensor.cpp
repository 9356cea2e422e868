// Tensor ops: forward values against known results, broadcasting, shape ops, printing,
// and the error message of every op family.
#include <doctest/doctest.h>

#include "core/tensor.h"

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

using namespace unroll;
using doctest::Contains;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// Values of t compared with `want` to ~1e-6 relative (float32) and shape checked.
void check_values(const Tensor& t, const Shape& shape, std::vector<double> want, double tol = 1e-5) {
  REQUIRE(t.defined());
  CHECK(t.shape() == shape);
  const std::vector<double> got = t.to_vector();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element ", i);
    if (std::isnan(want[i])) CHECK(std::isnan(got[i]));
    else if (std::isinf(want[i])) CHECK(got[i] == want[i]);
    else CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol));
  }
}

/// Reference matmul on 2-D tensors with the same transpose flags as matmul.
Tensor naive_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1);
  const int64_t N = tb ? b.size(0) : b.size(1);
  std::vector<double> out(static_cast<size_t>(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += (ta ? a.at({k, i}) : a.at({i, k})) * (tb ? b.at({j, k}) : b.at({k, j}));
      out[static_cast<size_t>(i * N + j)] = s;
    }
  return tensor(out, Shape{M, N}, DType::F64);
}

}  // namespace

// ---- elementwise ----------------------------------------------------------------------

TEST_CASE("unary ops") {
  const Tensor x = tensor({-2, -0.5, 0, 1, 3});
  check_values(neg(x), {5}, {2, 0.5, 0, -1, -3});
  check_values(-x, {5}, {2, 0.5, 0, -1, -3});
  check_values(exp(x), {5}, {std::exp(-2.0), std::exp(-0.5), 1, std::exp(1.0), std::exp(3.0)});
  check_values(tanh(x), {5}, {std::tanh(-2.0), std::tanh(-0.5), 0, std::tanh(1.0), std::tanh(3.0)});
  check_values(sigmoid(x), {5}, {1 / (1 + std::exp(2.0)), 1 / (1 + std::exp(0.5)), 0.5, 1 / (1 + std::exp(-1.0)),
                                 1 / (1 + std::exp(-3.0))});
  check_values(relu(x), {5}, {0, 0, 0, 1, 3});
  check_values(abs(x), {5}, {2, 0.5, 0, 1, 3});
  check_values(sign(x), {5}, {-1, -1, 0, 1, 1});
  check_values(pow(x, 2), {5}, {4, 0.25, 0, 1, 9});
  check_values(pow(x, 3), {5}, {-8, -0.125, 0, 1, 27});
  check_values(clamp(x, -1, 2), {5}, {-1, -0.5, 0, 1, 2});
  const Tensor p = tensor({1, 4, 9}, DType::F64);
  check_values(sqrt(p), {3}, {1, 2, 3});
  check_values(log(p), {3}, {0, std::log(4.0), std::log(9.0)});
  check_values(pow(p, 0.5), {3}, {1, 2, 3});
  CHECK(sqrt(p).dtype() == DType::F64);
  // sigmoid saturates without NaN; relu keeps NaN
  check_values(sigmoid(tensor({-1000, 1000})), {2}, {0, 1});
  CHECK(std::isnan(relu(tensor({NAN})).item()));
}

TEST_CASE("binary ops: same shape, scalars and operators") {
  const Tensor a = tensor({1, 2, 3, 4}, {2, 2});
  const Tensor b = tensor({10, 20, 30, 40}, {2, 2});
  check_values(add(a, b), {2, 2}, {11, 22, 33, 44});
  check_values(sub(a, b), {2, 2}, {-9, -18, -27, -36});
  check_values(mul(a, b), {2, 2}, {10, 40, 90, 160});
  check_values(div(b, a), {2, 2}, {10, 10, 10, 10});
  check_values(maximum(a, tensor({2, 1, 5, 0}, {2, 2})), {2, 2}, {2, 2, 5, 4});
  check_values(minimum(a, tensor({2, 1, 5, 0}, {2, 2})), {2, 2}, {1, 1, 3, 0});
  check_values(a + b, {2, 2}, {11, 22, 33, 44});
  check_values(a - b, {2, 2}, {-9, -18, -27, -36});
  check_values(a * b, {2, 2}, {10, 40, 90, 160});
  check_values(b / a, {2, 2}, {10, 10, 10, 10});
  check_values(a + 1.0, {2, 2}, {2, 3, 4, 5});
  check_values(a - 1.0, {2, 2}, {0, 1, 2, 3});
  check_values(a * 2.0, {2, 2}, {2, 4, 6, 8});
  check_values(a / 2.0, {2, 2}, {0.5, 1, 1.5, 2});
  check_values(1.0 + a, {2, 2}, {2, 3, 4, 5});
  check_values(1.0 - a, {2, 2}, {0, -1, -2, -3});
  check_values(2.0 * a, {2, 2}, {2, 4, 6, 8});
  check_values(12.0 / a, {2, 2}, {12, 6, 4, 3});
  check_values(rsub(1, a), {2, 2}, {0, -1, -2, -3});
  check_values(rdiv(12, a), {2, 2}, {12, 6, 4, 3});
  check_values(add(a, 1.0), {2, 2}, {2, 3, 4, 5});
  check_values(sub(a, 1.0), {2, 2}, {0, 1, 2, 3});
  check_values(mul(a, 3.0), {2, 2}, {3, 6, 9, 12});
  check_values(div(a, 4.0), {2, 2}, {0.25, 0.5, 0.75, 1});
  CHECK((a + b).dtype() == DType::F32);
  CHECK(add(a.to(DType::F64), b.to(DType::F64)).dtype() == DType::F64);
  // NaN propagates through maximum/minimum
  CHECK(std::isnan(maximum(tensor({NAN}), tensor({1})).item()));
  CHECK(std::isnan(minimum(tensor({1}), tensor({NAN})).item()));
}

TEST_CASE("binary ops: broadcasting") {
  const Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  SUBCASE("trailing [B,H] + [H]") {
    check_values(x + tensor({10, 20, 30}), {2, 3}, {11, 22, 33, 14, 25, 36});
    check_values(tensor({10, 20, 30}) - x, {2, 3}, {9, 18, 27, 6, 15, 24});
    check_values(x + tensor({10, 20, 30}, {1, 3}), {2, 3}, {11, 22, 33, 14, 25, 36});
  }
  SUBCASE("one element") {
    check_values(x * tensor({2}), {2, 3}, {2, 4, 6, 8, 10, 12});
    check_values(scalar_tensor(10) - x, {2, 3}, {9, 8, 7, 6, 5, 4});
    check_values(tensor({2}, {1, 1, 1}) * x, {1, 2, 3}, {2, 4, 6, 8, 10, 12});
  }
  SUBCASE("column [B,1]") {
    check_values(x - tensor({1, 4}, {2, 1}), {2, 3}, {0, 1, 2, 0, 1, 2});
    check_values(tensor({1, 4}, {2, 1}) * x, {2, 3}, {1, 2, 3, 16, 20, 24});
  }
  SUBCASE("outer product [3,1] x [1,2]") {
    check_values(tensor({1, 2, 3}, {3, 1}) * tensor({10, 100}, {1, 2}), {3, 2}, {10, 100, 20, 200, 30, 300});
  }
  SUBCASE("3-D middle dimension") {
    const Tensor y = arange(12).reshape({2, 3, 2});
    const Tensor z = tensor({100, 200}, {2, 1, 1});
    check_values(y + z, {2, 3, 2}, {100, 101, 102, 103, 104, 105, 206, 207, 208, 209, 210, 211});
    const Tensor w = tensor({0, 10, 20}, {3, 1});
    check_values(y + w, {2, 3, 2}, {0, 1, 12, 13, 24, 25, 6, 7, 18, 19, 30, 31});
  }
  SUBCASE("empty") {
    CHECK((zeros({0, 3}) + tensor({1, 2, 3})).shape() == Shape{0, 3});
  }
  CHECK(broadcast_shapes("op", {2, 1, 4}, {3, 1}) == Shape{2, 3, 4});
  CHECK(broadcast_shapes("op", {}, {5}) == Shape{5});
}

TEST_CASE("binary ops: broadcasting against a naive coordinate loop") {
  // every fast path and the general strided path give what coordinates say
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 3, 4}, {3, 1}},    {{4, 1, 3}, {1, 5, 1}}, {{1}, {2, 2}},       {{2, 1, 3, 1}, {4, 1, 5}},
      {{3, 4}, {3, 4}},       {{5, 4}, {4}},          {{4}, {5, 4}},       {{2, 3, 4}, {2, 1, 4}},
      {{1, 3, 1}, {2, 1, 4}}, {{}, {3}},              {{2, 1, 1}, {1, 1}}, {{6, 1}, {1, 7}}};
  Generator gen(11);
  for (const auto& pair : cases) {
    const Shape sa = pair.first, sb = pair.second;
    CAPTURE(sa);
    CAPTURE(sb);
    const Tensor a = randn(sa, gen, DType::F64), b = randn(sb, gen, DType::F64);
    const Tensor c = sub(a, b);
    const Shape os = broadcast_shapes("test", sa, sb);
    REQUIRE(c.shape() == os);
    const std::vector<double> va = a.to_vector(), vb = b.to_vector(), vc = c.to_vector();
    for (int64_t flat = 0; flat < os.numel(); ++flat) {
      int64_t rem = flat, ia = 0, ib = 0, ma = 1, mb = 1;
      for (int d = os.ndim() - 1; d >= 0; --d) {
        const int64_t coord = rem % os[d];
        rem /= os[d];
        const int da = d - (os.ndim() - sa.ndim()), db = d - (os.ndim() - sb.ndim());
        if (da >= 0) {
          ia += (sa[da] == 1 ? 0 : coord) * ma;
          ma *= sa[da];
        }
        if (db >= 0) {
          ib += (sb[db] == 1 ? 0 : coord) * mb;
          mb *= sb[db];
        }
      }
      CHECK(vc[static_cast<size_t>(flat)] == va[static_cast<size_t>(ia)] - vb[static_cast<size_t>(ib)]);
    }
    // and sum_to undoes broadcasting: sum_to(ones(os), sa) counts the repeats
    const Tensor counts = sum_to(ones(os, DType::F64), sa);
    CHECK(counts.shape() == sa);
    CHECK(allclose(counts, full(sa, static_cast<double>(os.numel() / std::max<int64_t>(sa.numel(), 1)), DType::F64)));
  }
}

TEST_CASE("comparisons") {
  const Tensor a = tensor({1, 2, 3});
  const Tensor b = tensor({2, 2, 2});
  check_values(gt(a, b), {3}, {0, 0, 1});
  check_values(ge(a, b), {3}, {0, 1, 1});
  check_values(eq(a, b), {3}, {0, 1, 0});
  check_values(gt(tensor({1, 2, 3, 4}, {2, 2}), tensor({2})), {2, 2}, {0, 0, 1, 1});
  CHECK(gt(a, b).dtype() == DType::Bool);
  CHECK(gt(a.to(DType::F64), b.to(DType::F64)).dtype() == DType::Bool);
  const Tensor e = eq(indices({1, 2, 3}), indices({1, 0, 3}));  // int64 is fine here
  CHECK(e.dtype() == DType::Bool);
  CHECK(e.to_vector() == std::vector<double>{1, 0, 1});
  check_values(lt(a, b), {3}, {1, 0, 0});
  check_values(le(a, b), {3}, {1, 1, 0});
  check_values(ne(a, b), {3}, {1, 0, 1});
  check_values(gt(a, 1.5), {3}, {0, 1, 1});
  check_values(eq(indices({4, 5}), 5.0), {2}, {0, 1});
}

TEST_CASE("Bool dtype: storage, conversion, logic, promotion, selection") {
  const Tensor m = gt(tensor({-1, 0, 2, 3}), 0.0);  // false false true true
  CHECK(m.dtype() == DType::Bool);
  CHECK(dtype_size(DType::Bool) == 1);
  CHECK(std::string(dtype_name(DType::Bool)) == "bool");
  CHECK_FALSE(m.is_floating());
  CHECK(m.data<bool>()[2]);
  // conversion: nonzero (and NaN) -> true; true -> 1
  const Tensor c = tensor({0, -2, 0.5, NAN}).to(DType::Bool);
  CHECK(c.to_vector() == std::vector<double>{0, 1, 1, 1});
  CHECK(equal(m.to(DType::I64), indices({0, 0, 1, 1})));
  CHECK(full({2}, 3.0, DType::Bool).to_vector() == std::vector<double>{1, 1});
  CHECK(zeros({2}, DType::Bool).to_vector() == std::vector<double>{0, 0});
  // logic
  const Tensor n = tensor({1, 0, 1, 0}).to(DType::Bool);
  check_values(logical_and(m, n), {4}, {0, 0, 1, 0});
  check_values(logical_or(m, n), {4}, {1, 0, 1, 1});
  check_values(logical_not(m), {4}, {1, 1, 0, 0});
  CHECK(any(m));
  CHECK_FALSE(all(m));
  CHECK(all(zeros({0}, DType::Bool)));
  CHECK(count_nonzero(m) == 2);
  CHECK(count_nonzero(tensor({0, 3, -1})) == 2);
  CHECK_THROWS_WITH_AS(logical_and(m, tensor({1, 0, 1, 0})), doctest::Contains("logical_and: expected a bool tensor"),
                       Error);
  // arithmetic promotes bool to the floating operand's dtype (torch's rule)
  const Tensor x = tensor({1, 2, 3, 4}, DType::F64);
  const Tensor y = x * m;
  CHECK(y.dtype() == DType::F64);
  CHECK(y.to_vector() == std::vector<double>{0, 0, 3, 4});
  CHECK((m + tensor({1, 1, 1, 1})).to_vector() == std::vector<double>{1, 1, 2, 2});
  CHECK_THROWS_WITH_AS(exp(m), doctest::Contains("exp: expected a floating tensor, got bool"), Error);
  // selection takes bool conditions
  check_values(where(m, tensor({1, 1, 1, 1}), tensor({5, 5, 5, 5})), {4}, {5, 5, 1, 1});
  check_values(masked_fill(tensor({1, 2, 3, 4}), m, -1.0), {4}, {1, 2, -1, -1});
  // shape ops move bool elements
  const Tensor t = m.reshape({2, 2});
  CHECK(transpose(t, 0, 1).to_vector() == std::vector<double>{0, 1, 0, 1});
  CHECK(concat({m, n}, 0).to_vector() == std::vector<double>{0, 0, 1, 1, 1, 0, 1, 0});
  CHECK(narrow(m, 0, 1, 2).to_vector() == std::vector<double>{0, 1});
  CHECK(fmt::format("{}", m).find("false, false,  true,  true") != std::string::npos);
  CHECK_THROWS_WITH_AS(rand({2}, default_generator(), DType::Bool), doctest::Contains("rand: dtype must be float32"),
                       Error);
}

TEST_CASE("sum_to and broadcast_to") {
  const Tensor x = arange(6).reshape({2, 3});
  check_values(sum_to(x, {3}), {3}, {3, 5, 7});
  check_values(sum_to(x, {1, 3}), {1, 3}, {3, 5, 7});
  check_values(sum_to(x, {2, 1}), {2, 1}, {3, 12});
  check_values(sum_to(x, {}), {}, {15});
  check_values(sum_to(x, {1, 1}), {1, 1}, {15});
  CHECK(sum_to(x, {2, 3}).same_storage(x));
  const Tensor y = arange(24).reshape({2, 3, 4});
  check_values(sum_to(y, {3, 1}), {3, 1}, {0 + 1 + 2 + 3 + 12 + 13 + 14 + 15, 4 + 5 + 6 + 7 + 16 + 17 + 18 + 19,
                                            8 + 9 + 10 + 11 + 20 + 21 + 22 + 23});
  check_values(sum_to(y, {2, 1, 4}), {2, 1, 4}, {12, 15, 18, 21, 48, 51, 54, 57});
  // the round trip: broadcast then sum_to multiplies by the repeat count
  const Tensor b = tensor({1, 2, 3});
  const Tensor big = broadcast_to(b, {4, 3});
  check_values(big, {4, 3}, {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3});
  check_values(sum_to(big, {3}), {3}, {4, 8, 12});
  check_values(broadcast_to(tensor({1, 2}, {2, 1}), {2, 3}), {2, 3}, {1, 1, 1, 2, 2, 2});
  check_values(broadcast_to(scalar_tensor(7), {2}), {2}, {7, 7});
  CHECK(broadcast_to(indices({4, 5}), {2, 2}).to_indices() == std::vector<int64_t>{4, 5, 4, 5});
}

TEST_CASE("in-place ops") {
  Tensor d = tensor({1, 2, 3});
  add_(d, tensor({1, 1, 1}));
  check_values(d, {3}, {2, 3, 4});
  add_(d, tensor({1, 2, 3}), -2.0);
  check_values(d, {3}, {0, -1, -2});
  mul_(d, 3);
  check_values(d, {3}, {0, -3, -6});
  fill_(d, 0.5);
  check_values(d, {3}, {0.5, 0.5, 0.5});
  copy_(d, tensor({7, 8, 9}));
  check_values(d, {3}, {7, 8, 9});
  Tensor i = indices({1, 2});
  fill_(i, 4);
  CHECK(i.to_indices() == std::vector<int64_t>{4, 4});
}

TEST_CASE("elementwise errors") {
  CHECK_THROWS_WITH_AS(add(zeros({2, 3}), zeros({4})), "add: shapes [2,3] and [4] cannot be broadcast (dimension 1: 3 vs 4)",
                       Error);
  CHECK_THROWS_WITH_AS(mul(zeros({2, 3}), zeros({3, 3})), Contains("dimension 0: 2 vs 3"), Error);
  CHECK_THROWS_WITH_AS(add(zeros({2}), zeros({2}, DType::F64)), Contains("add: dtypes float32 and float64 differ"), Error);
  CHECK_THROWS_WITH_AS(tanh(indices({1, 2})), "tanh: expected a floating tensor, got int64", Error);
  CHECK_THROWS_WITH_AS(add(indices({1}), indices({2})), "add: expected a floating tensor, got int64", Error);
  CHECK_THROWS_WITH_AS(exp(Tensor()), "exp: the tensor is undefined", Error);
  CHECK_THROWS_WITH_AS(clamp(zeros({2}), 1, 0), Contains("clamp: lower bound 1 is greater than upper bound 0"), Error);
  CHECK_THROWS_WITH_AS(sum_to(zeros({2, 3}), {4}), Contains("sum_to: cannot sum [2,3] down to [4]"), Error);
  CHECK_THROWS_WITH_AS(sum_to(zeros({3}), {2, 3}), Contains("sum_to: cannot sum [3] down to [2,3]"), Error);
  CHECK_THROWS_WITH_AS(broadcast_to(zeros({2, 3}), {3, 3}), "broadcast_to: [2,3] cannot be broadcast to [3,3]", Error);
  Tensor d = zeros({3});
  CHECK_THROWS_WITH_AS(add_(d, zeros({2})), "add_: shapes [3] and [2] differ", Error);
  CHECK_THROWS_WITH_AS(copy_(d, zeros({3}, DType::F64)), Contains("copy_: dtypes float32 and float64 differ"), Error);
  Tensor di = indices({1});
  CHECK_THROWS_WITH_AS(mul_(di, 2), "mul_: expected a floating tensor, got int64", Error);
}

TEST_CASE("Generator get_state / set_state resumes the stream bit for bit") {
  Generator a(42);
  a.normal();  // leaves a cached second normal in the state
  const Tensor saved = a.get_state();
  CHECK(saved.dtype() == DType::I64);
  CHECK(saved.shape() == Shape{7});
  std::vector<double> expected;
  for (int i = 0; i < 5; ++i) expected.push_back(a.normal());
  expected.push_back(static_cast<double>(a.randint(0, 1000)));

  Generator b(7);  // another seed: set_state must replace everything
  b.set_state(saved);
  CHECK(b.seed() == 42);
  std::vector<double> got;
  for (int i = 0; i < 5; ++i) got.push_back(b.normal());
  got.push_back(static_cast<double>(b.randint(0, 1000)));
  CHECK(got == expected);

  CHECK_THROWS_WITH_AS(b.set_state(zeros({7})), doctest::Contains("Generator::set_state"), Error);
  CHECK_THROWS_WITH_AS(b.set_state(indices({1, 2, 3})), doctest::Contains("[3]"), Error);
  CHECK_THROWS_WITH_AS(b.set_state(indices({0, 0, 0, 0, 1, 0, 0})), doctest::Contains("all zero"), Error);
  CHECK_THROWS_WITH_AS(b.set_state(indices({1, 2, 3, 4, 1, 5, 0})), doctest::Contains("has_spare"), Error);
}

// ---- matmul ---------------------------------------------------------------------------

TEST_CASE("matmul 2-D with every transpose combination against a naive loop") {
  Generator gen(7);
  const int64_t M = 5, K = 7, N = 3;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const Tensor a = randn(ta ? Shape{K, M} : Shape{M, K}, gen, DType::F64);
      const Tensor b = randn(tb ? Shape{N, K} : Shape{K, N}, gen, DType::F64);
      const Tensor c = matmul(a, b, ta, tb);
      CHECK(c.shape() == Shape{M, N});
      CHECK(allclose(c, naive_matmul(a, b, ta, tb), 1e-12, 1e-12));
      const Tensor c32 = matmul(a.to(DType::F32), b.to(DType::F32), ta, tb);
      CHECK(c32.dtype() == DType::F32);
      CHECK(allclose(c32.to(DType::F64), naive_matmul(a, b, ta, tb), 1e-4, 1e-5));
    }
  check_values(matmul(tensor({1, 2, 3, 4}, {2, 2}), tensor({5, 6, 7, 8}, {2, 2})), {2, 2}, {19, 22, 43, 50});
  check_values(matmul(zeros({2, 0}), zeros({0, 3})), {2, 3}, {0, 0, 0, 0, 0, 0});
}

TEST_CASE("matmul 3-D batched and 3-D x 2-D") {
  Generator gen(3);
  const int64_t B = 3, M = 4, K = 5, N = 2;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const Tensor a = randn(ta ? Shape{B, K, M} : Shape{B, M, K}, gen, DType::F64);
      const Tensor b3 = randn(tb ? Shape{B, N, K} : Shape{B, K, N}, gen, DType::F64);
      const Tensor b2 = randn(tb ? Shape{N, K} : Shape{K, N}, gen, DType::F64);
      const Tensor c3 = matmul(a, b3, ta, tb);
      const Tensor c2 = matmul(a, b2, ta, tb);
      CHECK(c3.shape() == Shape{B, M, N});
      CHECK(c2.shape() == Shape{B, M, N});
      for (int64_t i = 0; i < B; ++i) {
        const Tensor ai = squeeze(narrow(a, 0, i, 1), 0);
        CHECK(allclose(squeeze(narrow(c3, 0, i, 1), 0), naive_matmul(ai, squeeze(narrow(b3, 0, i, 1), 0), ta, tb),
                       1e-12, 1e-12));
        CHECK(allclose(squeeze(narrow(c2, 0, i, 1), 0), naive_matmul(ai, b2, ta, tb), 1e-12, 1e-12));
      }
    }
}

TEST_CASE("matmul errors") {
  CHECK_THROWS_WITH_AS(matmul(zeros({32, 64}), zeros({128, 256})),
                       "matmul: [32,64] x [128,256]: inner dimensions 64 and 128 differ", Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({32, 64}), zeros({256, 128}), false, true),
                       "matmul: [32,64] x [256,128]^T: inner dimensions 64 and 128 differ", Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({64, 32}), zeros({128, 256}), true, false),
                       Contains("matmul: [64,32]^T x [128,256]: inner dimensions 64 and 128 differ"), Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({4}), zeros({4, 2})), Contains("unsupported ranks 1 and 2"), Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3}), zeros({2, 3, 4})), Contains("unsupported ranks 2 and 3"), Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3, 4}), zeros({5, 4, 4})),
                       "matmul: [2,3,4] x [5,4,4]: batch sizes 2 and 5 differ", Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 2}), zeros({2, 2}, DType::F64)), Contains("dtypes float32 and float64 differ"),
                       Error);
  CHECK_THROWS_WITH_AS(matmul(indices({1}).reshape({1, 1}), indices({1}).reshape({1, 1})),
                       "matmul: expected a floating tensor, got int64", Error);
}

// ---- reductions -----------------------------------------------------------------------

TEST_CASE("sum and mean") {
  const Tensor x = arange(6).reshape({2, 3});
  check_values(sum(x), {}, {15});
  check_values(sum(x, 0), {3}, {3, 5, 7});
  check_values(sum(x, 1), {2}, {3, 12});
  check_values(sum(x, -1, true), {2, 1}, {3, 12});
  check_values(sum(x, 0, true), {1, 3}, {3, 5, 7});
  check_values(mean(x), {}, {2.5});
  check_values(mean(x, 0), {3}, {1.5, 2.5, 3.5});
  check_values(mean(x, -1, true), {2, 1}, {1, 4});
  const Tensor y = arange(24).reshape({2, 3, 4});
  check_values(sum(y, 1), {2, 4}, {12, 15, 18, 21, 48, 51, 54, 57});
  check_values(sum(arange(100, DType::F64)), {}, {4950});
  check_values(sum(zeros({0})), {}, {0});
  check_values(sum(zeros({2, 0}), 1), {2}, {0, 0});
}

TEST_CASE("max, min, argmax") {
  const Tensor x = tensor({1, 5, 3, 7, 2, 7}, {2, 3});
  check_values(max(x), {}, {7});
  check_values(max(x, 1), {2}, {5, 7});
  check_values(max(x, 0), {3}, {7, 5, 7});
  check_values(max(x, -1, true), {2, 1}, {5, 7});
  check_values(min(x, 1), {2}, {1, 2});
  check_values(min(x, 0, true), {1, 3}, {1, 2, 3});
  const Tensor am = argmax(x, 1);
  CHECK(am.dtype() == DType::I64);
  CHECK(am.to_indices() == std::vector<int64_t>{1, 0});  // first maximum of [7,2,7]
  CHECK(argmax(x, 0).to_indices() == std::vector<int64_t>{1, 0, 1});
  CHECK(argmax(x, -1, true).shape() == Shape{2, 1});
  const Tensor y = arange(24).reshape({2, 3, 4});
  check_values(max(y, 1), {2, 4}, {8, 9, 10, 11, 20, 21, 22, 23});
  CHECK(argmax(y, 1).to_indices() == std::vector<int64_t>{2, 2, 2, 2, 2, 2, 2, 2});
  check_values(max(tensor({-kInf, -3})), {}, {-3});
  CHECK(std::isnan(max(tensor({1, NAN, 3})).item()));
}

TEST_CASE("softmax and log_softmax") {
  Generator gen(1);
  const Tensor x = randn({4, 5}, gen, DType::F64);
  const Tensor s = softmax(x, 1);
  check_values(sum(s, 1), {4}, {1, 1, 1, 1}, 1e-12);
  CHECK(allclose(exp(log_softmax(x, 1)), s, 1e-12, 1e-14));
  const Tensor s0 = softmax(x, 0);
  check_values(sum(s0, 0), {5}, {1, 1, 1, 1, 1}, 1e-12);
  CHECK(allclose(softmax(x, -2), s0));
  check_values(softmax(tensor({1, 2, 3}), 0), {3},
               {std::exp(1.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(3.0)),
                std::exp(2.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(3.0)),
                std::exp(3.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(3.0))});
  // middle axis of a 3-D tensor
  const Tensor y = randn({2, 3, 4}, gen, DType::F64);
  check_values(sum(softmax(y, 1), 1), {2, 4}, std::vector<double>(8, 1.0), 1e-12);
  CHECK(allclose(log_softmax(y, 1), log(softmax(y, 1)), 1e-12, 1e-12));
  // large values stay finite
  check_values(log_softmax(tensor({1e4, 0}), 0), {2}, {0, -1e4});
  check_values(softmax(tensor({1e4, 0}), 0), {2}, {1, 0});
  // -inf entries get probability 0; a row of all -inf gives NaN (as in PyTorch)
  check_values(softmax(tensor({0, -kInf}), 0), {2}, {1, 0});
  check_values(softmax(tensor({-kInf, -kInf}), 0), {2}, {NAN, NAN});
}

TEST_CASE("reduction errors") {
  CHECK_THROWS_WITH_AS(sum(zeros({2, 3}), 2), "sum: axis 2 is out of range for a tensor of 2 dimensions", Error);
  CHECK_THROWS_WITH_AS(max(zeros({0, 3}), 0), "max: axis 0 of shape [0,3] is empty", Error);
  CHECK_THROWS_WITH_AS(max(zeros({0})), "max: the tensor of shape [0] is empty", Error);
  CHECK_THROWS_WITH_AS(argmax(zeros({2, 0}), -1), "argmax: axis -1 of shape [2,0] is empty", Error);
  CHECK_THROWS_WITH_AS(mean(zeros({0, 3})), "mean: the tensor of shape [0,3] is empty", Error);
  CHECK_THROWS_WITH_AS(mean(zeros({2, 0}), 1), "mean: axis 1 of shape [2,0] is empty", Error);
  CHECK_THROWS_WITH_AS(softmax(indices({1}), 0), "softmax: expected a floating tensor, got int64", Error);
  CHECK_THROWS_WITH_AS(log_softmax(zeros({2}), 1), Contains("log_softmax: axis 1 is out of range"), Error);
}

// ---- shape ops ------------------------------------------------------------------------

TEST_CASE("reshape, flatten, unsqueeze, squeeze") {
  const Tensor x = arange(6).reshape({2, 3});
  CHECK(reshape(x, {3, -1}).shape() == Shape{3, 2});
  CHECK(reshape(x, {3, 2}).same_storage(x));
  CHECK(flatten(x).shape() == Shape{6});
  CHECK(unsqueeze(x, 0).shape() == Shape{1, 2, 3});
  CHECK(unsqueeze(x, 1).shape() == Shape{2, 1, 3});
  CHECK(unsqueeze(x, -1).shape() == Shape{2, 3, 1});
  CHECK(unsqueeze(x, 2).shape() == Shape{2, 3, 1});
  CHECK(squeeze(unsqueeze(x, 1), 1).shape() == Shape{2, 3});
  CHECK(squeeze(unsqueeze(x, -1), -1).shape() == Shape{2, 3});
  CHECK_THROWS_WITH_AS(squeeze(x, 1), "squeeze: dimension 1 of shape [2,3] has size 3, not 1", Error);
  CHECK_THROWS_WITH_AS(unsqueeze(x, 3), Contains("unsqueeze: axis 3 is out of range"), Error);
  CHECK_THROWS_WITH_AS(reshape(x, {4, 2}), Contains("6 elements cannot become 8"), Error);
}

TEST_CASE("transpose and permute") {
  const Tensor x = arange(6).reshape({2, 3});
  check_values(transpose(x, 0, 1), {3, 2}, {0, 3, 1, 4, 2, 5});
  check_values(transpose(x, -1, -2), {3, 2}, {0, 3, 1, 4, 2, 5});
  const Tensor y = arange(24).reshape({2, 3, 4});
  const Tensor p = permute(y, {2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t k = 0; k < 3; ++k) CHECK(p.at({i, j, k}) == y.at({j, k, i}));
  const Tensor t = transpose(y, 0, 1);  // [3,2,4]: rows stay contiguous
  CHECK(t.shape() == Shape{3, 2, 4});
  CHECK(t.at({2, 1, 3}) == y.at({1, 2, 3}));
  check_values(permute(y, {0, 1, 2}), {2, 3, 4}, y.to_vector());
  CHECK(permute(indices({1, 2, 3, 4}).reshape({2, 2}), {1, 0}).to_indices() == std::vector<int64_t>{1, 3, 2, 4});
  CHECK_THROWS_WITH_AS(permute(y, {0, 0, 1}), "permute: [0,0,1] is not a permutation of the 3 dimensions of [2,3,4]",
                       Error);
  CHECK_THROWS_WITH_AS(permute(y, {0, 1}), Contains("[0,1] is not a permutation"), Error);
  CHECK_THROWS_WITH_AS(permute(y, {0, 1, 3}), Contains("[0,1,3] is not a permutation"), Error);
  CHECK_THROWS_WITH_AS(transpose(x, 0, 2), Contains("transpose: axis 2 is out of range"), Error);
}

TEST_CASE("narrow and slice") {
  const Tensor x = arange(12).reshape({3, 4});
  check_values(narrow(x, 1, 1, 2), {3, 2}, {1, 2, 5, 6, 9, 10});
  check_values(narrow(x, 0, 2, 1), {1, 4}, {8, 9, 10, 11});
  check_values(narrow(x, -1, 3, 1), {3, 1}, {3, 7, 11});
  CHECK(narrow(x, 1, 4, 0).shape() == Shape{3, 0});
  check_values(slice(x, 1, 1, 3), {3, 2}, {1, 2, 5, 6, 9, 10});
  check_values(slice(x, 1, -2, 100), {3, 2}, {2, 3, 6, 7, 10, 11});
  check_values(slice(x, 0, -100, 1), {1, 4}, {0, 1, 2, 3});
  CHECK(slice(x, 1, 3, 1).shape() == Shape{3, 0});
  CHECK_THROWS_WITH_AS(narrow(x, 1, 3, 2), "narrow: start 3 and length 2 are out of range for size 4 of axis 1 in shape [3,4]",
                       Error);
  CHECK_THROWS_WITH_AS(narrow(x, 0, -1, 1), Contains("start -1 and length 1 are out of range"), Error);
  CHECK_THROWS_WITH_AS(slice(x, 2, 0, 1), Contains("slice: axis 2 is out of range"), Error);
}

TEST_CASE("concat and stack") {
  const Tensor a = arange(6).reshape({2, 3});
  const Tensor b = tensor({10, 11, 12}, {1, 3});
  check_values(concat({a, b}, 0), {3, 3}, {0, 1, 2, 3, 4, 5, 10, 11, 12});
  const Tensor c = tensor({20, 21}, {2, 1});
  check_values(concat({a, c, c}, -1), {2, 5}, {0, 1, 2, 20, 20, 3, 4, 5, 21, 21});
  check_values(stack({tensor({1, 2}), tensor({3, 4})}, 0), {2, 2}, {1, 2, 3, 4});
  check_values(stack({tensor({1, 2}), tensor({3, 4})}, 1), {2, 2}, {1, 3, 2, 4});
  check_values(stack({tensor({1, 2}), tensor({3, 4}), tensor({5, 6})}, -1), {2, 3}, {1, 3, 5, 2, 4, 6});
  std::vector<Tensor> v = {a, a};
  CHECK(stack(v, 1).shape() == Shape{2, 2, 3});
  CHECK(concat(v, 1).shape() == Shape{2, 6});
  CHECK_THROWS_WITH_AS(concat({a, b, zeros({3, 5})}, 0),
                       "concat: tensor 2 has shape [3,5] but tensor 0 has shape [2,3] (shapes must agree except along "
                       "axis 0)",
                       Error);
  CHECK_THROWS_WITH_AS(concat({a, a.to(DType::F64)}, 0), "concat: tensor 1 is float64 but tensor 0 is float32", Error);
  CHECK_THROWS_WITH_AS(concat(std::span<const Tensor>(), 0), "concat: no tensors given", Error);
  CHECK_THROWS_WITH_AS(stack({a, b}, 0), Contains("stack: tensor 1 has shape [1,3] but tensor 0 has shape [2,3]"), Error);
  CHECK_THROWS_WITH_AS(stack({a, a}, 3), Contains("stack: axis 3 is out of range"), Error);
}

TEST_CASE("split and chunk") {
  const Tensor x = arange(10).reshape({5, 2});
  const std::vector<Tensor> s = split(x, 2, 0);
  REQUIRE(s.size() == 3);
  check_values(s[0], {2, 2}, {0, 1, 2, 3});
  check_values(s[1], {2, 2}, {4, 5, 6, 7});
  check_values(s[2], {1, 2}, {8, 9});
  const std::vector<Tensor> c = chunk(x, 2, 0);  // ceil(5/2) = 3
  REQUIRE(c.size() == 2);
  check_values(c[0], {3, 2}, {0, 1, 2, 3, 4, 5});
  check_values(c[1], {2, 2}, {6, 7, 8, 9});
  CHECK(chunk(arange(6), 4, 0).size() == 3);  // pieces of 2: torch gives 3 chunks, not 4
  const std::vector<Tensor> g = chunk(arange(8).reshape({2, 4}), 4, -1);  // LSTM-style gates
  REQUIRE(g.size() == 4);
  check_values(g[3], {2, 1}, {3, 7});
  CHECK(split(zeros({0, 2}), 3, 0).size() == 1);
  CHECK(chunk(zeros({0}), 3, 0).size() == 3);
  CHECK_THROWS_WITH_AS(split(x, 0, 0), Contains("split: piece size 0 must be positive"), Error);
  CHECK_THROWS_WITH_AS(chunk(x, 0, 0), "chunk: the number of chunks must be positive, got 0", Error);
}

TEST_CASE("index_select and index_add") {
  const Tensor emb = arange(12).reshape({4, 3});
  check_values(index_select(emb, 0, indices({3, 0, 3})), {3, 3}, {9, 10, 11, 0, 1, 2, 9, 10, 11});
  check_values(index_select(emb, 1, indices({2, 0})), {4, 2}, {2, 0, 5, 3, 8, 6, 11, 9});
  CHECK(index_select(emb, 0, indices(std::vector<int64_t>{})).shape() == Shape{0, 3});
  // the adjoint accumulates duplicates
  const Tensor g = index_add(zeros({4, 3}), 0, indices({3, 0, 3}), ones({3, 3}));
  check_values(g, {4, 3}, {1, 1, 1, 0, 0, 0, 0, 0, 0, 2, 2, 2});
  const Tensor dst = ones({2, 3});
  check_values(index_add(dst, 1, indices({1, 1}), tensor({1, 2, 3, 4}, {2, 2})), {2, 3}, {1, 4, 1, 1, 8, 1});
  check_values(dst, {2, 3}, {1, 1, 1, 1, 1, 1});  // dst itself is untouched
  CHECK_THROWS_WITH_AS(index_select(emb, 0, indices({1, 7, 2})),
                       "index_select: index 7 at position 1 is out of range [0, 4) for axis 0 of shape [4,3]", Error);
  CHECK_THROWS_WITH_AS(index_select(emb, 0, indices({-1})), Contains("index -1 at position 0 is out of range [0, 4)"),
                       Error);
  CHECK_THROWS_WITH_AS(index_select(emb, 0, tensor({1})), "index_select: indices must be int64, got float32", Error);
  CHECK_THROWS_WITH_AS(index_select(emb, 0, indices({1, 2}).reshape({1, 2})),
                       "index_select: indices must be 1-D, got shape [1,2]", Error);
  CHECK_THROWS_WITH_AS(index_add(zeros({4, 3}), 0, indices({1}), ones({2, 3})),
                       Contains("index_add: source of shape [2,3] does not match destination [4,3] with 1 indices"),
                       Error);
  CHECK_THROWS_WITH_AS(index_add(zeros({4, 3}), 0, indices({4}), ones({1, 3})), Contains("index 4 at position 0"),
                       Error);
}

TEST_CASE("gather and scatter_add") {
  const Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor idx = indices(std::vector<int64_t>{2, 0, 1, 1}, {2, 2});
  check_values(gather(x, 1, idx), {2, 2}, {3, 1, 5, 5});
  check_values(gather(x, 0, indices(std::vector<int64_t>{1, 0, 1}, {1, 3})), {1, 3}, {4, 2, 6});
  // picking the target log-probability per row (cross-entropy)
  check_values(gather(x, -1, indices(std::vector<int64_t>{0, 2}, {2, 1})), {2, 1}, {1, 6});
  // scatter_add accumulates duplicate indices: row 1 gets 10 + 20 at column 1
  const Tensor s = scatter_add(zeros({2, 3}), 1, idx, tensor({1, 2, 10, 20}, {2, 2}));
  check_values(s, {2, 3}, {2, 0, 1, 0, 30, 0});
  check_values(scatter_add(ones({2, 3}), 0, indices(std::vector<int64_t>{1, 1, 0}, {1, 3}), tensor({5, 6, 7}, {1, 3})),
               {2, 3}, {1, 1, 8, 6, 7, 1});
  CHECK_THROWS_WITH_AS(gather(x, 1, indices(std::vector<int64_t>{0, 3}, {2, 1})),
                       "gather: index 3 at position [1,0] is out of range [0, 3) for axis 1 of shape [2,3]", Error);
  CHECK_THROWS_WITH_AS(gather(x, 1, indices(std::vector<int64_t>{0, 1, 2}, {3, 1})),
                       "gather: indices of shape [3,1] must match the tensor's shape [2,3] except along axis 1", Error);
  CHECK_THROWS_WITH_AS(scatter_add(zeros({2, 3}), 1, idx, ones({2, 3})),
                       "scatter_add: source of shape [2,3] must have the indices' shape [2,2]", Error);
  CHECK_THROWS_WITH_AS(gather(x, 1, tensor({0, 1, 0, 1}, {2, 2})), "gather: indices must be int64, got float32", Error);
  // The in-place forms add into their destination and equal the copying forms.
  Tensor d = ones({2, 3});
  scatter_add_(d, 1, idx, tensor({1, 2, 10, 20}, {2, 2}));
  check_values(d, {2, 3}, {3, 1, 2, 1, 31, 1});
  Tensor e = ones({4, 3});
  index_add_(e, 0, indices({3, 0, 3}), tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3}));
  CHECK(equal(e, index_add(ones({4, 3}), 0, indices({3, 0, 3}), tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3}))));
  check_values(e, {4, 3}, {5, 6, 7, 1, 1, 1, 1, 1, 1, 9, 11, 13});
  CHECK_THROWS_WITH_AS(scatter_add_(d, 1, idx, ones({2, 3})),
                       "scatter_add: source of shape [2,3] must have the indices' shape [2,2]", Error);
}

TEST_CASE("where and masked_fill") {
  const Tensor a = tensor({1, 2, 3, 4}, {2, 2});
  const Tensor b = tensor({-1, -2, -3, -4}, {2, 2});
  check_values(where(tensor({1, 0, 0, 1}, {2, 2}), a, b), {2, 2}, {1, -2, -3, 4});
  check_values(where(indices({0, 1}), a, b), {2, 2}, {-1, 2, -3, 4});  // cond [2] broadcast over rows, int64
  check_values(where(tensor({1, 0}, {2, 1}), a, scalar_tensor(-kInf)), {2, 2}, {1, 2, -kInf, -kInf});
  check_values(where(gt(a, scalar_tensor(2)), a, zeros({1})), {2, 2}, {0, 0, 3, 4});
  // attention-style causal mask with -inf, then softmax
  const Tensor scores = zeros({3, 3});
  const Tensor future = tensor({0, 1, 1, 0, 0, 1, 0, 0, 0}, {3, 3});
  const Tensor masked = masked_fill(scores, future, -kInf);
  check_values(masked, {3, 3}, {0, -kInf, -kInf, 0, 0, -kInf, 0, 0, 0});
  check_values(softmax(masked, -1), {3, 3}, {1, 0, 0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3});
  check_values(masked_fill(a, tensor({0, 1}), 9), {2, 2}, {1, 9, 3, 9});
  check_values(masked_fill(a, tensor({1, 0}, {2, 1}), 9), {2, 2}, {9, 9, 3, 4});
  CHECK_THROWS_WITH_AS(where(ones({3}), a, b), Contains("where: shapes [3] and [2,2] cannot be broadcast"), Error);
  CHECK_THROWS_WITH_AS(where(ones({2}), a, b.to(DType::F64)), Contains("where: dtypes float32 and float64 differ"), Error);
  CHECK_THROWS_WITH_AS(where(ones({2}), indices({1, 2}), indices({1, 2})), "where: expected a floating tensor, got int64",
                       Error);
  CHECK_THROWS_WITH_AS(masked_fill(zeros({2}), ones({2, 2}), 0),
                       "masked_fill: mask of shape [2,2] does not broadcast to the tensor's shape [2]", Error);
}

TEST_CASE("allclose and equal") {
  const Tensor a = tensor({1, 2, 3});
  CHECK(allclose(a, tensor({1, 2, 3.00001})));
  CHECK_FALSE(allclose(a, tensor({1, 2, 3.1})));
  CHECK(allclose(a, tensor({1, 2, 3.1}), 0.1));
  CHECK_FALSE(allclose(a, tensor({1, 2, 3}, {1, 3})));
  CHECK(allclose(tensor({kInf}), tensor({kInf})));
  CHECK_FALSE(allclose(tensor({NAN}), tensor({NAN})));
  CHECK(equal(a, tensor({1, 2, 3})));
  CHECK_FALSE(equal(a, tensor({1, 2, 3}, DType::F64)));
  CHECK_FALSE(equal(a, tensor({1, 2, 3.00001})));
  CHECK_FALSE(equal(a, a.reshape({3, 1})));
  CHECK(equal(Tensor(), Tensor()));
}

// ---- printing -------------------------------------------------------------------------

TEST_CASE("to_string") {
  CHECK(to_string(tensor({0.1, -2, 1.5, 3}, {2, 2})) ==
        "tensor([[ 0.1000, -2.0000],\n        [ 1.5000,  3.0000]], shape=[2,2], dtype=float32)");
  CHECK(to_string(scalar_tensor(3.5)) == "tensor(3.5000, shape=[], dtype=float32)");
  CHECK(to_string(tensor({1, -2}, DType::F64)) == "tensor([ 1.0000, -2.0000], shape=[2], dtype=float64)");
  CHECK(to_string(indices({3, -10, 200})) == "tensor([  3, -10, 200], shape=[3], dtype=int64)");
  CHECK(to_string(Tensor()) == "tensor(undefined)");
  CHECK(to_string(zeros({2, 0})) == "tensor([], shape=[2,0], dtype=float32)");
  CHECK(to_string(tensor({1e5, 1e-3})) == "tensor([1.0000e+05, 1.0000e-03], shape=[2], dtype=float32)");
  CHECK(to_string(tensor({NAN, -kInf, 1})) == "tensor([   nan,   -inf, 1.0000], shape=[3], dtype=float32)");
  CHECK(to_string(arange(8).reshape({2, 2, 2})) ==
        "tensor([[[0.0000, 1.0000],\n         [2.0000, 3.0000]],\n\n        [[4.0000, 5.0000],\n         [6.0000, "
        "7.0000]]], shape=[2,2,2], dtype=float32)");
  CHECK(fmt::format("{}", scalar_tensor(2, DType::F64)) == "tensor(2.0000, shape=[], dtype=float64)");
  // long rows wrap at 80 columns
  const std::string row = to_string(arange(12));
  CHECK(row ==
        "tensor([ 0.0000,  1.0000,  2.0000,  3.0000,  4.0000,  5.0000,  6.0000,  7.0000,\n"
        "         8.0000,  9.0000, 10.0000, 11.0000], shape=[12], dtype=float32)");
}

TEST_CASE("to_string elides large tensors") {
  CHECK(to_string(arange(2000, DType::I64)) == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999], shape=[2000], dtype=int64)");
  const std::string s = to_string(arange(40 * 40, DType::I64).reshape({40, 40}));
  CHECK(s ==
        "tensor([[   0,    1,    2,  ...,   37,   38,   39],\n"
        "        [  40,   41,   42,  ...,   77,   78,   79],\n"
        "        [  80,   81,   82,  ...,  117,  118,  119],\n"
        "        ...,\n"
        "        [1480, 1481, 1482,  ..., 1517, 1518, 1519],\n"
        "        [1520, 1521, 1522,  ..., 1557, 1558, 1559],\n"
        "        [1560, 1561, 1562,  ..., 1597, 1598, 1599]], shape=[40,40], dtype=int64)");
  // floats: rows of 7 entries of width 10 at indent 9 wrap after 5 entries, like torch
  const std::string f = to_string(full({20, 20, 20}, 1e-5));
  CHECK(f.starts_with("tensor([[[1.0000e-05, 1.0000e-05, 1.0000e-05,  ..., 1.0000e-05,\n"
                      "          1.0000e-05, 1.0000e-05],\n"
                      "         [1.0000e-05,"));
  CHECK(f.find("]],\n\n        ...,\n\n        [[") != std::string::npos);
  CHECK(f.ends_with("1.0000e-05]]], shape=[20,20,20], dtype=float32)"));
  CHECK(to_string(tensor({1e9, 1})) == "tensor([1.0000e+09, 1.0000e+00], shape=[2], dtype=float32)");
  // 999 elements are printed in full
  CHECK(to_string(zeros({999})).find("...") == std::string::npos);
}

TEST_CASE("write stamps: new at allocation and at every mutable access, not at a read") {
  Tensor a = zeros({4});
  const Tensor& ca = a;
  const uint64_t s0 = a.write_stamp();
  CHECK(s0 != 0);
  (void)ca.data<float>();
  (void)ca.raw_data();
  CHECK(a.write_stamp() == s0);
  (void)a.data<float>();
  const uint64_t s1 = a.write_stamp();
  CHECK(s1 != s0);
  (void)a.raw_data();
  CHECK(a.write_stamp() != s1);
  CHECK(a.reshape({2, 2}).write_stamp() == a.write_stamp());  // the stamp belongs to the storage
  const void* id = a.storage_id();
  const uint64_t last = a.write_stamp();
  a = Tensor();
  const Tensor b = zeros({4});  // the same pooled block, a new stamp
  CHECK(b.storage_id() == id);
  CHECK(b.write_stamp() != last);
  CHECK(Tensor().write_stamp() == 0);
  // Stamps made on another thread never repeat this thread's.
  uint64_t other = 0;
  std::thread([&] { other = zeros({4}).write_stamp(); }).join();
  CHECK(other != b.write_stamp());
  CHECK((other >> 32) != (b.write_stamp() >> 32));
}
