// The bad-input matrix: every public op (core/tensor.h, autograd/ops.h) and every layer
// (nn/layers.h, recurrent.h, attention.h, loss.h, optim.h, checkpoint.h) fed wrong ranks,
// mismatched shapes, wrong dtypes (int64 where a float is needed, float32 mixed with
// float64), empty tensors, out-of-range and negative indices, NaN/Inf, zero-length
// sequences, a batch of 0, a hidden size of 0 and negative or absurd sizes (and the same for
// nn/transformer.h).
//
// Each case either throws unroll::Error whose message names the op or layer (the table
// holds the expected substring), or has a documented well-defined result that the case
// asserts: IEEE propagation of NaN/Inf, empty in -> empty out, a sum over nothing is 0.
// Nothing may crash, hang or return silent garbage; run it under ASan+UBSan too.
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/attention.h"
#include "nn/checkpoint.h"
#include "nn/init.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/recurrent.h"
#include "nn/transformer.h"
#include "nn/conv.h"
#include "nn/tcn.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

using namespace unroll;

namespace {

int g_cases = 0;  // cases tried by every TEST_CASE of this file

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();

/// A case that must throw unroll::Error whose message contains `needle` (the op's name).
struct Throws {
  const char* what;
  std::function<void()> run;
  const char* needle;
};

/// A case with a documented result: `run` asserts it (and must not throw).
struct Defined {
  const char* what;
  std::function<void()> run;
};

void check_all(const std::vector<Throws>& cases) {
  for (const Throws& c : cases) {
    ++g_cases;
    INFO("case: " << std::string(c.what));
    CHECK_THROWS_WITH_AS(c.run(), doctest::Contains(c.needle), Error);
  }
}

void check_all(const std::vector<Defined>& cases) {
  for (const Defined& c : cases) {
    ++g_cases;
    INFO("case: " << std::string(c.what));
    CHECK_NOTHROW(c.run());
  }
}

Generator& gen() {
  static Generator g(7);
  return g;
}
Tensor f32(const Shape& s) { return randn(s, gen()); }
Tensor f64(const Shape& s) { return randn(s, gen(), DType::F64); }
Tensor i64(const Shape& s) { return zeros(s, DType::I64); }
Variable var(const Tensor& t) { return Variable(t, t.is_floating()); }
Variable v32(const Shape& s) { return var(f32(s)); }
Variable v64(const Shape& s) { return var(f64(s)); }

/// Special values, one per element: NaN, +Inf, -Inf, 0, -0.5, 2.
Tensor specials(DType dtype = DType::F64) { return tensor({kNaN, kInf, -kInf, 0.0, -0.5, 2.0}, dtype); }

/// Equal element by element up to a relative tolerance, NaN equal to NaN, Inf to Inf.
bool same_values(const Tensor& a, const std::vector<double>& b, double rtol = 1e-12) {
  const std::vector<double> va = a.to_vector();
  if (va.size() != b.size()) return false;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) != std::isnan(b[i])) return false;
    if (!std::isnan(va[i]) && va[i] != b[i] && !(std::abs(va[i] - b[i]) <= rtol * std::abs(b[i]))) return false;
  }
  return true;
}

std::vector<double> apply(const Tensor& x, double (*f)(double)) {
  std::vector<double> out = x.to_vector();
  for (double& v : out) v = f(v);
  return out;
}

std::string tmp_path(const std::string& name) { return std::string(UNROLL_TEST_TMPDIR) + "/" + name; }

}  // namespace

// ---- core/tensor.h: creation, element access, conversion ----------------------------------

TEST_CASE("bad input: tensor creation, element access and conversion") {
  check_all(std::vector<Throws>{
      {"empty with a negative dimension", [] { Tensor::empty({2, -1}); }, "empty"},
      {"zeros with a negative dimension", [] { zeros({-3}); }, "negative"},
      {"full with a negative dimension", [] { full({-1, 2}, 1.0); }, "negative"},
      {"a shape of 2^62 x 2^62 elements", [] { zeros({int64_t{1} << 62, int64_t{1} << 62}); }, "shape"},
      {"a shape of 2^40 x 2^40 bytes", [] { zeros({int64_t{1} << 40, int64_t{1} << 40}); }, "shape"},
      {"nine dimensions", [] { Shape({1, 1, 1, 1, 1, 1, 1, 1, 1}); }, "shape"},
      {"push_back past kMaxDims", [] { Shape s({1, 1, 1, 1, 1, 1, 1, 1}); s.push_back(1); }, "shape"},
      {"arange with step 0", [] { arange(0.0, 1.0, 0.0); }, "arange"},
      {"arange to infinity", [] { arange(0.0, kInf); }, "arange"},
      {"arange with 1e30 elements", [] { arange(0.0, 1e30); }, "arange"},
      {"arange from NaN", [] { arange(kNaN, 1.0); }, "arange"},
      {"arange with NaN step", [] { arange(0.0, 1.0, kNaN); }, "arange"},
      {"tensor: too few values", [] { tensor({1.0, 2.0}, {3}); }, "tensor"},
      {"tensor: values for a negative shape", [] { tensor({1.0, 2.0}, {-1, -2}); }, "negative"},
      {"indices: too many values", [] { indices({1, 2, 3}, {2}); }, "indices"},
      {"item of two elements", [] { f32({2}).item(); }, "item"},
      {"item of an empty tensor", [] { f32({0}).item(); }, "item"},
      {"item of an undefined tensor", [] { Tensor().item(); }, "item"},
      {"at: index out of range", [] { f32({2, 3}).at({1, 3}); }, "at:"},
      {"at: negative index", [] { f32({2, 3}).at({-1, 0}); }, "at:"},
      {"at: wrong number of indices", [] { f32({2, 3}).at({1}); }, "at:"},
      {"data<double> of float32", [] { f32({2}).data<double>(); }, "data:"},
      {"data<float> of int64", [] { i64({2}).data<float>(); }, "data:"},
      {"data of an undefined tensor", [] { Tensor().data<float>(); }, "data:"},
      {"to_indices of float32", [] { f32({2}).to_indices(); }, "int64"},
      {"size: axis out of range", [] { f32({2}).size(1); }, "size:"},
      {"size: axis too negative", [] { f32({2}).size(-2); }, "size:"},
      {"clone of undefined", [] { Tensor().clone(); }, "clone"},
      {"to() of undefined", [] { Tensor().to(DType::F64); }, "to:"},
      {"reshape: element count differs", [] { f32({2, 3}).reshape({4, 2}); }, "reshape"},
      {"reshape: two -1", [] { f32({2, 3}).reshape({-1, -1}); }, "reshape"},
      {"reshape: negative dimension", [] { f32({2, 3}).reshape({-2, -3}); }, "reshape"},
      {"reshape: -1 with a zero dimension", [] { f32({0, 3}).reshape({-1, 0}); }, "reshape"},
      {"reshape: 2^62 x 4 of an empty tensor", [] { f32({0}).reshape({int64_t{1} << 62, 4}); }, "2^63"},
      {"reshape of undefined", [] { Tensor().reshape({1}); }, "reshape"},
      {"rand with a negative shape", [] { rand({-1}, gen()); }, "negative"},
      {"randn with a negative shape", [] { randn({3, -1}, gen()); }, "negative"},
      {"randint with an empty range", [] { gen().randint(3, 3); }, "randint"},
      {"set_num_threads(0)", [] { set_num_threads(0); }, "set_num_threads"},
      {"set_num_threads(-2)", [] { set_num_threads(-2); }, "set_num_threads"},
      {"normalize_axis out of range", [] { normalize_axis("myop", 3, 2); }, "myop"},
      {"to(I64) of NaN", [] { tensor({1.0, kNaN}).to(DType::I64); }, "int64"},
      {"to(I64) of Inf", [] { tensor({kInf}, DType::F64).to(DType::I64); }, "int64"},
      {"to(I64) of 1e300", [] { tensor({1e300}, DType::F64).to(DType::I64); }, "int64"},
      {"full int64 with NaN", [] { full({2}, kNaN, DType::I64); }, "int64"},
      {"tensor int64 with 1e300", [] { tensor({1e300}, DType::I64); }, "int64"},
      {"zeros_like of undefined", [] { zeros_like(Tensor()); }, "zeros_like"},
      {"ones_like of undefined", [] { ones_like(Tensor()); }, "ones_like"},
      {"full_like of undefined", [] { full_like(Tensor(), 1.0); }, "full_like"},
      {"Generator::set_state: float32", [] { Generator g; g.set_state(f32({7})); }, "set_state"},
      {"Generator::set_state: wrong length", [] { Generator g; g.set_state(i64({6})); }, "set_state"},
      {"Generator::set_state: all-zero state", [] { Generator g; g.set_state(i64({7})); }, "set_state"},
      {"Generator::set_state: undefined", [] { Generator g; g.set_state(Tensor()); }, "set_state"},
      {"uniform with lo > hi", [] { uniform({2}, 1.0, 0.0, gen()); }, "uniform"},
      {"uniform with a NaN bound", [] { uniform({2}, kNaN, 1.0, gen()); }, "uniform"},
  });
  check_all(std::vector<Defined>{
      {"zero-size tensors are valid and empty",
       [] {
         CHECK(zeros({0}).numel() == 0);
         CHECK(zeros({3, 0, 2}).numel() == 0);
         CHECK(zeros({0, int64_t{1} << 62}).numel() == 0);
       }},
      {"arange with stop below start is empty", [] { CHECK(arange(5.0, 1.0).numel() == 0); }},
      {"randint over the whole int64 range",
       [] {
         Generator g(3);
         for (int k = 0; k < 8; ++k) (void)g.randint(std::numeric_limits<int64_t>::min(), kHuge);
         const int64_t r = g.randint(-5, -4);
         CHECK(r == -5);
       }},
      {"arange with a negative count is empty", [] { CHECK(arange(int64_t{-4}).numel() == 0); }},
      {"full with NaN and Inf holds them",
       [] {
         CHECK(std::isnan(full({2}, kNaN).to_vector()[1]));
         CHECK(full({1}, -kInf).item() == -kInf);
       }},
      {"to(I64) truncates toward zero", [] { CHECK(tensor({2.7, -2.7, 0.5}).to(DType::I64).to_indices() == std::vector<int64_t>{2, -2, 0}); }},
      {"printing empty and special tensors",
       [] {
         CHECK(to_string(zeros({0, 3})).find("[0,3]") != std::string::npos);
         CHECK(to_string(specials()).find("nan") != std::string::npos);
         CHECK(to_string(Tensor()).size() > 0);
       }},
      {"allclose / equal of different shapes are false",
       [] {
         CHECK_FALSE(allclose(zeros({2}), zeros({3})));
         CHECK_FALSE(equal(zeros({2}), zeros({2}, DType::F64)));
         CHECK_FALSE(allclose(full({1}, kNaN), full({1}, kNaN)));
       }},
  });
}

// ---- core/tensor.h: elementwise, broadcasting, in-place ------------------------------------

TEST_CASE("bad input: core elementwise ops") {
  using Unary = Tensor (*)(const Tensor&);
  struct U {
    const char* name;
    Unary f;
    double (*ref)(double);
  };
  const std::vector<U> unary = {
      {"neg", static_cast<Unary>(neg), [](double x) { return -x; }},
      {"exp", static_cast<Unary>(exp), [](double x) { return std::exp(x); }},
      {"log", static_cast<Unary>(log), [](double x) { return std::log(x); }},
      {"tanh", static_cast<Unary>(tanh), [](double x) { return std::tanh(x); }},
      {"sigmoid", static_cast<Unary>(sigmoid), [](double x) { return 1.0 / (1.0 + std::exp(-x)); }},
      {"relu", static_cast<Unary>(relu), [](double x) { return std::isnan(x) ? x : x > 0 ? x : 0.0; }},
      {"sqrt", static_cast<Unary>(sqrt), [](double x) { return std::sqrt(x); }},
      {"abs", static_cast<Unary>(abs), [](double x) { return std::abs(x); }},
      // sign(NaN) = 0 (as tf.sign), so the gradients of relu and abs that use it are 0 at NaN
      {"sign", static_cast<Unary>(sign), [](double x) { return double((x > 0) - (x < 0)); }},
  };
  for (const U& u : unary) {
    INFO("op: " << std::string(u.name));
    g_cases += 5;
    CHECK_THROWS_WITH_AS(u.f(i64({3})), doctest::Contains(u.name), Error);
    CHECK_THROWS_WITH_AS(u.f(Tensor()), doctest::Contains(u.name), Error);
    CHECK(u.f(f32({0, 4})).shape() == Shape({0, 4}));                  // empty in, empty out
    CHECK(same_values(u.f(specials()), apply(specials(), u.ref)));     // IEEE semantics, float64
    CHECK(same_values(u.f(specials(DType::F32)), apply(specials(DType::F32), u.ref), 1e-6));
  }

  using Binary = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<const char*, Binary>> binary = {
      {"add", static_cast<Binary>(add)},         {"sub", static_cast<Binary>(sub)},
      {"mul", static_cast<Binary>(mul)},         {"div", static_cast<Binary>(div)},
      {"maximum", static_cast<Binary>(maximum)}, {"minimum", static_cast<Binary>(minimum)},
      {"gt", static_cast<Binary>(gt)},           {"ge", static_cast<Binary>(ge)},
      {"eq", static_cast<Binary>(eq)},
  };
  for (const auto& [name, f] : binary) {
    INFO("op: " << std::string(name));
    g_cases += 8;
    CHECK_THROWS_WITH_AS(f(f32({2, 3}), f32({4})), doctest::Contains(name), Error);        // no broadcast
    CHECK_THROWS_WITH_AS(f(f32({2, 3}), f32({3, 2})), doctest::Contains(name), Error);
    CHECK_THROWS_WITH_AS(f(f32({3}), f64({3})), doctest::Contains(name), Error);           // F32 with F64
    const bool comparison = name[0] == 'g' || name[0] == 'e';
    if (comparison)  // documented: comparisons take int64 too and give a Bool tensor
      CHECK(equal(f(indices({1, 2, 3}), indices({2, 2, 2})), f(tensor({1, 2, 3}), full({3}, 2.0))));
    else
      CHECK_THROWS_WITH_AS(f(i64({3}), i64({3})), doctest::Contains(name), Error);         // int64
    CHECK_THROWS_WITH_AS(f(f32({3}), Tensor()), doctest::Contains(name), Error);
    CHECK(f(f32({0, 3}), f32({3})).shape() == Shape({0, 3}));                             // empty broadcast
    CHECK(f(f32({2, 1}), f32({1, 0})).shape() == Shape({2, 0}));
    const Tensor r = f(specials(), full({1}, kNaN, DType::F64));  // NaN on one side
    CHECK(r.shape() == Shape({6}));
  }
  check_all(std::vector<Throws>{
      {"add scalar to int64", [] { add(i64({2}), 1.0); }, "add"},
      {"mul scalar of undefined", [] { mul(Tensor(), 2.0); }, "mul"},
      {"rsub of int64", [] { rsub(1.0, i64({2})); }, "rsub"},
      {"rdiv of int64", [] { rdiv(1.0, i64({2})); }, "rdiv"},
      {"pow of int64", [] { pow(i64({2}), 2.0); }, "pow"},
      {"clamp with lo > hi", [] { clamp(f32({2}), 1.0, 0.0); }, "clamp"},
      {"clamp with a NaN bound", [] { clamp(f32({2}), kNaN, 1.0); }, "clamp"},
      {"clamp of int64", [] { clamp(i64({2}), 0.0, 1.0); }, "clamp"},
      {"tanh_backward shapes differ", [] { tanh_backward(f32({2}), f32({3})); }, "tanh_backward"},
      {"sigmoid_backward dtypes differ", [] { sigmoid_backward(f32({2}), f64({2})); }, "sigmoid_backward"},
      {"softmax_backward shapes differ", [] { softmax_backward(f32({2, 3}), f32({3, 2}), 1); }, "softmax_backward"},
      {"softmax_backward axis out of range", [] { softmax_backward(f32({2, 3}), f32({2, 3}), 2); }, "softmax_backward"},
      {"log_softmax_backward dtypes differ", [] { log_softmax_backward(f32({2}), f64({2}), 0); }, "log_softmax_backward"},
      {"log_softmax_backward of int64", [] { log_softmax_backward(i64({2}), i64({2}), 0); }, "log_softmax_backward"},
      {"broadcast_shapes mismatch", [] { broadcast_shapes("myop", {2, 3}, {2}); }, "myop"},
      {"broadcast_to a smaller shape", [] { broadcast_to(f32({2, 3}), {3}); }, "broadcast_to"},
      {"broadcast_to a mismatched shape", [] { broadcast_to(f32({2}), {3}); }, "broadcast_to"},
      {"broadcast_to a negative shape", [] { broadcast_to(f32({1}), {-2}); }, "negative"},
      {"sum_to a shape it does not broadcast to", [] { sum_to(f32({2, 3}), {2}); }, "sum_to"},
      {"add_ shapes differ", [] { Tensor d = f32({2}); add_(d, f32({3})); }, "add_"},
      {"add_ dtypes differ", [] { Tensor d = f32({2}); add_(d, f64({2})); }, "add_"},
      {"add_ of int64", [] { Tensor d = i64({2}); add_(d, i64({2})); }, "add_"},
      {"mul_ of undefined", [] { Tensor d; mul_(d, 2.0); }, "mul_"},
      {"fill_ of undefined", [] { Tensor d; fill_(d, 2.0); }, "fill_"},
      {"copy_ shapes differ", [] { Tensor d = f32({2}); copy_(d, f32({2, 1})); }, "copy_"},
      {"copy_ dtypes differ", [] { Tensor d = f32({2}); copy_(d, i64({2})); }, "copy_"},
      {"where: cond does not broadcast", [] { where(ones({3}), f32({2}), f32({2})); }, "where"},
      {"where: dtypes of a and b differ", [] { where(ones({2}), f32({2}), f64({2})); }, "where"},
      {"where: int64 values", [] { where(ones({2}), i64({2}), i64({2})); }, "where"},
      {"masked_fill: mask larger than x", [] { masked_fill(f32({2}), ones({2, 2}), 0.0); }, "masked_fill"},
      {"masked_fill: int64 x", [] { masked_fill(i64({2}), ones({2}), 0.0); }, "masked_fill"},
  });
  check_all(std::vector<Defined>{
      {"pow of a negative base to a fraction is NaN",
       [] { CHECK(std::isnan(pow(full({1}, -2.0, DType::F64), 0.5).item())); }},
      {"div by zero follows IEEE",
       [] {
         const std::vector<double> r = div(tensor({1.0, -1.0, 0.0}, DType::F64), zeros({3}, DType::F64)).to_vector();
         CHECK(r[0] == kInf);
         CHECK(r[1] == -kInf);
         CHECK(std::isnan(r[2]));
       }},
      {"maximum/minimum propagate NaN",
       [] {
         CHECK(std::isnan(maximum(full({1}, kNaN), ones({1})).item()));
         CHECK(std::isnan(minimum(ones({1}), full({1}, kNaN)).item()));
       }},
      {"clamp of NaN and Inf",
       [] { CHECK(same_values(clamp(specials(), -1.0, 1.0), {kNaN, 1.0, -1.0, 0.0, -0.5, 1.0})); }},
      {"where with an int64 condition selects", [] { CHECK(where(indices({1, 0}), ones({2}), zeros({2})).to_vector() == std::vector<double>{1, 0}); }},
      {"masked_fill with an empty mask broadcast", [] { CHECK(masked_fill(f32({0, 2}), ones({2}), 1.0).numel() == 0); }},
  });
}

// ---- core/tensor.h: matmul ------------------------------------------------------------------

TEST_CASE("bad input: core matmul and addmm") {
  check_all(std::vector<Throws>{
      {"1-D operands", [] { matmul(f32({3}), f32({3})); }, "matmul"},
      {"2-D x 1-D", [] { matmul(f32({2, 3}), f32({3})); }, "matmul"},
      {"4-D operands", [] { matmul(f32({1, 1, 2, 3}), f32({1, 1, 3, 2})); }, "matmul"},
      {"2-D x 3-D", [] { matmul(f32({2, 3}), f32({1, 3, 2})); }, "matmul"},
      {"inner dimensions differ", [] { matmul(f32({2, 3}), f32({4, 2})); }, "inner dimensions"},
      {"inner dimensions differ with trans_b", [] { matmul(f32({2, 3}), f32({3, 2}), false, true); }, "matmul"},
      {"batch sizes differ", [] { matmul(f32({2, 2, 3}), f32({3, 3, 2})); }, "batch"},
      {"float32 x float64", [] { matmul(f32({2, 3}), f64({3, 2})); }, "matmul"},
      {"int64 x int64", [] { matmul(i64({2, 3}), i64({3, 2})); }, "matmul"},
      {"undefined operand", [] { matmul(Tensor(), f32({3, 2})); }, "matmul"},
      {"addmm: bias of the wrong size", [] { addmm(f32({3}), f32({2, 3}), f32({3, 2})); }, "addmm"},
      {"addmm: 2-D bias", [] { addmm(f32({1, 2}), f32({2, 3}), f32({3, 2})); }, "addmm"},
      {"addmm: bias dtype", [] { addmm(f64({2}), f32({2, 3}), f32({3, 2})); }, "addmm"},
      {"addmm: 3-D operand", [] { addmm(f32({2}), f32({1, 2, 3}), f32({3, 2})); }, "addmm"},
      {"addmm_: destination shape", [] { Tensor c = f32({2, 3}); addmm_(c, f32({2, 3}), f32({3, 2})); }, "addmm_"},
      {"addmm_: destination dtype", [] { Tensor c = f64({2, 2}); addmm_(c, f32({2, 3}), f32({3, 2})); }, "addmm_"},
  });
  check_all(std::vector<Defined>{
      {"[0,3] x [3,2] is [0,2]", [] { CHECK(matmul(f32({0, 3}), f32({3, 2})).shape() == Shape({0, 2})); }},
      {"[2,0] x [0,3] is zeros [2,3]",
       [] {
         const Tensor c = matmul(f32({2, 0}), f32({0, 3}));
         CHECK(c.shape() == Shape({2, 3}));
         CHECK(equal(c, zeros({2, 3})));
       }},
      {"batched with batch 0", [] { CHECK(matmul(f32({0, 2, 3}), f32({0, 3, 4})).shape() == Shape({0, 2, 4})); }},
      {"NaN in an operand propagates",
       [] {
         Tensor a = ones({2, 2}, DType::F64);
         a.data<double>()[0] = kNaN;
         const std::vector<double> c = matmul(a, ones({2, 2}, DType::F64)).to_vector();
         CHECK(std::isnan(c[0]));
         CHECK(c[2] == 2.0);
       }},
      {"addmm with K = 0 is the bias",
       [] { CHECK(equal(addmm(ones({3}), f32({2, 0}), f32({0, 3})), ones({2, 3}))); }},
  });
}

// ---- core/tensor.h: reductions and softmax --------------------------------------------------

TEST_CASE("bad input: core reductions and softmax") {
  check_all(std::vector<Throws>{
      {"sum of int64", [] { sum(i64({3})); }, "sum"},
      {"sum: axis out of range", [] { sum(f32({2, 3}), 2); }, "sum"},
      {"sum: axis too negative", [] { sum(f32({2, 3}), -3); }, "sum"},
      {"mean of an empty tensor", [] { mean(f32({0})); }, "mean"},
      {"mean along an empty axis", [] { mean(f32({3, 0}), 1); }, "mean"},
      {"mean of int64", [] { mean(i64({2})); }, "mean"},
      {"max of an empty tensor", [] { max(f32({0, 2})); }, "max"},
      {"max along an empty axis", [] { max(f32({2, 0}), 1); }, "max"},
      {"min along an empty axis", [] { min(f32({0}), 0); }, "min"},
      {"max of int64", [] { max(i64({2})); }, "max"},
      {"min: axis out of range", [] { min(f32({2}), 1); }, "min"},
      {"argmax along an empty axis", [] { argmax(f32({2, 0}), 1); }, "argmax"},
      {"argmax of int64", [] { argmax(i64({2}), 0); }, "argmax"},
      {"argmax of undefined", [] { argmax(Tensor(), 0); }, "argmax"},
      {"softmax: axis out of range", [] { softmax(f32({2, 3}), 2); }, "softmax"},
      {"softmax of int64", [] { softmax(i64({2, 3}), 1); }, "softmax"},
      {"log_softmax: axis out of range", [] { log_softmax(f32({2}), -2); }, "log_softmax"},
      {"log_softmax of a 0-D tensor", [] { log_softmax(scalar_tensor(1.0), 0); }, "log_softmax"},
  });
  check_all(std::vector<Defined>{
      {"sum of an empty tensor is 0", [] { CHECK(sum(f32({0, 3})).item() == 0.0); }},
      {"sum along an empty axis is zeros", [] { CHECK(equal(sum(f32({2, 0}), 1), zeros({2}))); }},
      {"sum along a non-empty axis of an empty tensor", [] { CHECK(sum(f32({0, 3}), 1).shape() == Shape({0})); }},
      {"max/argmax over a NaN return the NaN",
       [] {
         const Tensor x = tensor({1.0, kNaN, 3.0}, DType::F64);
         CHECK(std::isnan(max(x).item()));
         CHECK(std::isnan(max(x, 0).item()));
         CHECK(argmax(x, 0).to_indices()[0] == 1);
       }},
      {"softmax of an empty axis is empty", [] { CHECK(softmax(f32({3, 0}), 1).shape() == Shape({3, 0})); }},
      {"softmax of a batch of 0 rows", [] { CHECK(softmax(f32({0, 4}), 1).shape() == Shape({0, 4})); }},
      {"softmax with -Inf logits gives exact zeros",
       [] { CHECK(same_values(softmax(tensor({-kInf, 0.0, -kInf}, DType::F64), 0), {0.0, 1.0, 0.0})); }},
      {"softmax with a NaN logit is NaN",
       [] {
         for (double v : softmax(tensor({kNaN, 0.0}, DType::F64), 0).to_vector()) CHECK(std::isnan(v));
       }},
      {"softmax with +Inf is NaN as in PyTorch",
       [] { CHECK(std::isnan(softmax(tensor({kInf, 0.0}, DType::F64), 0).to_vector()[0])); }},
      {"log_softmax with -Inf", [] { CHECK(same_values(log_softmax(tensor({-kInf, 0.0}, DType::F64), 0), {-kInf, 0.0})); }},
      {"softmax stays finite for huge finite logits",
       [] { CHECK(same_values(softmax(tensor({1e308, 1e308}, DType::F64), 0), {0.5, 0.5})); }},
  });
}

// ---- core/tensor.h: shape ops, indexing -------------------------------------------------------

TEST_CASE("bad input: core shape ops and indexing") {
  check_all(std::vector<Throws>{
      {"flatten of undefined", [] { flatten(Tensor()); }, "flatten"},
      {"unsqueeze: axis out of range", [] { unsqueeze(f32({2}), 2); }, "unsqueeze"},
      {"unsqueeze past kMaxDims", [] { unsqueeze(f32({1, 1, 1, 1, 1, 1, 1, 1}), 0); }, "unsqueeze"},
      {"squeeze of a non-1 axis", [] { squeeze(f32({2, 3}), 0); }, "squeeze"},
      {"squeeze: axis out of range", [] { squeeze(f32({1}), 1); }, "squeeze"},
      {"transpose: axis out of range", [] { transpose(f32({2, 3}), 0, 2); }, "transpose"},
      {"permute: repeated axis", [] { permute(f32({2, 3}), {0, 0}); }, "permute"},
      {"permute: too few axes", [] { permute(f32({2, 3, 4}), {1, 0}); }, "permute"},
      {"permute: axis out of range", [] { permute(f32({2, 3}), {0, 5}); }, "permute"},
      {"narrow: start past the end", [] { narrow(f32({4}), 0, 5, 0); }, "narrow"},
      {"narrow: negative start", [] { narrow(f32({4}), 0, -1, 1); }, "narrow"},
      {"narrow: negative length", [] { narrow(f32({4}), 0, 1, -1); }, "narrow"},
      {"narrow: start + length past the end", [] { narrow(f32({4}), 0, 2, 3); }, "narrow"},
      {"narrow: start + length overflows", [] { narrow(f32({4}), 0, kHuge, 1); }, "narrow"},
      {"narrow: length overflows", [] { narrow(f32({4}), 0, 1, kHuge); }, "narrow"},
      {"narrow: axis out of range", [] { narrow(f32({4}), 1, 0, 1); }, "narrow"},
      {"narrow_add_: source too long", [] { Tensor d = f32({4}); narrow_add_(d, 0, 2, f32({3})); }, "narrow_add_"},
      {"narrow_add_: offset overflows", [] { Tensor d = f32({4}); narrow_add_(d, 0, kHuge, f32({1})); }, "narrow_add_"},
      {"narrow_add_: other dimension differs", [] { Tensor d = f32({4, 2}); narrow_add_(d, 0, 0, f32({1, 3})); }, "narrow_add_"},
      {"narrow_add_: dtypes differ", [] { Tensor d = f32({4}); narrow_add_(d, 0, 0, f64({1})); }, "narrow_add_"},
      {"slice: axis out of range", [] { slice(f32({4}), 1, 0, 1); }, "slice"},
      {"concat: nothing", [] { concat(std::vector<Tensor>{}, 0); }, "concat"},
      {"concat: ranks differ", [] { concat({f32({2, 3}), f32({3})}, 0); }, "concat"},
      {"concat: other dimension differs", [] { concat({f32({2, 3}), f32({2, 4})}, 0); }, "concat"},
      {"concat: dtypes differ", [] { concat({f32({2}), f64({2})}, 0); }, "concat"},
      {"concat: axis out of range", [] { concat({f32({2}), f32({2})}, 1); }, "concat"},
      {"concat: an undefined tensor", [] { concat({f32({2}), Tensor()}, 0); }, "concat"},
      {"stack: nothing", [] { stack(std::vector<Tensor>{}, 0); }, "stack"},
      {"stack: shapes differ", [] { stack({f32({2}), f32({3})}, 0); }, "stack"},
      {"stack: dtypes differ", [] { stack({f32({2}), f64({2})}, 0); }, "stack"},
      {"stack: axis out of range", [] { stack({f32({2}), f32({2})}, 2); }, "stack"},
      {"split: size 0", [] { split(f32({4}), 0, 0); }, "split"},
      {"split: negative size", [] { split(f32({4}), -2, 0); }, "split"},
      {"split: axis out of range", [] { split(f32({4}), 1, 1); }, "split"},
      {"chunk: 0 chunks", [] { chunk(f32({4}), 0, 0); }, "chunk"},
      {"chunk: negative chunks", [] { chunk(f32({4}), -1, 0); }, "chunk"},
      {"index_select: float indices", [] { index_select(f32({4, 2}), 0, f32({2})); }, "index_select"},
      {"index_select: 2-D indices", [] { index_select(f32({4, 2}), 0, indices({0, 1}, {1, 2})); }, "index_select"},
      {"index_select: index out of range", [] { index_select(f32({4, 2}), 0, indices({4})); }, "index_select"},
      {"index_select: negative index", [] { index_select(f32({4, 2}), 0, indices({-1})); }, "index_select"},
      {"index_select: huge index", [] { index_select(f32({4, 2}), 0, indices({kHuge})); }, "index_select"},
      {"index_select: axis out of range", [] { index_select(f32({4, 2}), 2, indices({0})); }, "index_select"},
      {"index_select: any index into an empty axis", [] { index_select(f32({0, 2}), 0, indices({0})); }, "index_select"},
      {"gather: float indices", [] { gather(f32({2, 3}), 1, f32({2, 1})); }, "gather"},
      {"gather: index out of range", [] { gather(f32({2, 3}), 1, indices({0, 3}, {2, 1})); }, "gather"},
      {"gather: negative index", [] { gather(f32({2, 3}), 1, indices({0, -1}, {2, 1})); }, "gather"},
      {"gather: indices of another rank", [] { gather(f32({2, 3}), 1, indices({0, 1})); }, "gather"},
      {"gather: indices larger off the axis", [] { gather(f32({2, 3}), 1, indices({0, 0, 0}, {3, 1})); }, "gather"},
      {"index_add: source shape", [] { index_add(f32({4, 2}), 0, indices({0}), f32({2, 2})); }, "index_add"},
      {"index_add: index out of range", [] { index_add(f32({4, 2}), 0, indices({9}), f32({1, 2})); }, "index_add"},
      {"index_add: dtypes differ", [] { index_add(f32({4, 2}), 0, indices({0}), f64({1, 2})); }, "index_add"},
      {"scatter_add: index out of range", [] { scatter_add(f32({2, 3}), 1, indices({3, 0}, {2, 1}), f32({2, 1})); }, "scatter_add"},
      {"scatter_add: negative index", [] { scatter_add(f32({2, 3}), 1, indices({-1, 0}, {2, 1}), f32({2, 1})); }, "scatter_add"},
      {"scatter_add: source shape", [] { scatter_add(f32({2, 3}), 1, indices({0, 0}, {2, 1}), f32({2, 2})); }, "scatter_add"},
      {"scatter_add_: index out of range", [] { Tensor d = f32({2, 3}); scatter_add_(d, 1, indices({3, 0}, {2, 1}), f32({2, 1})); }, "scatter_add"},
      {"index_add_: index out of range", [] { Tensor d = f32({4, 2}); index_add_(d, 0, indices({9}), f32({1, 2})); }, "index_add"},
  });
  check_all(std::vector<Defined>{
      {"slice clamps like Python",
       [] {
         CHECK(slice(f32({4}), 0, -100, 100).shape() == Shape({4}));
         CHECK(slice(f32({4}), 0, 3, 1).shape() == Shape({0}));
         CHECK(slice(f32({4}), 0, std::numeric_limits<int64_t>::min(), kHuge).shape() == Shape({4}));
         CHECK(slice_range(4, -1, kHuge) == std::pair<int64_t, int64_t>{3, 1});
       }},
      {"narrow of length 0 at the end", [] { CHECK(narrow(f32({4}), 0, 4, 0).shape() == Shape({0})); }},
      {"split of an empty axis gives one empty piece", [] { CHECK(split(f32({0, 2}), 3, 0).size() == 1); }},
      {"split with a huge size gives one piece", [] { CHECK(split(f32({5}), kHuge, 0).size() == 1); }},
      {"chunk with huge n gives one piece per element", [] { CHECK(chunk(f32({5}), kHuge, 0).size() == 5); }},
      {"chunk of an empty axis gives n empty pieces", [] { CHECK(chunk(f32({0}), 3, 0).size() == 3); }},
      {"index_select with no indices", [] { CHECK(index_select(f32({4, 2}), 0, indices(std::vector<int64_t>{})).shape() == Shape({0, 2})); }},
      {"gather on a batch of 0", [] { CHECK(gather(f32({0, 3}), 1, i64({0, 1})).shape() == Shape({0, 1})); }},
      {"concat with an empty piece", [] { CHECK(concat({f32({2, 3}), f32({0, 3})}, 0).shape() == Shape({2, 3})); }},
  });
}

// ---- autograd/variable.h: Variables and backward ----------------------------------------------

TEST_CASE("bad input: Variables and backward") {
  check_all(std::vector<Throws>{
      {"Variable of an undefined tensor", [] { Variable v{Tensor()}; }, "Variable"},
      {"int64 Variable requiring grad", [] { Variable v(i64({2}), true); }, "Variable"},
      {"data of an undefined Variable", [] { (void)Variable().data(); }, "undefined"},
      {"shape of an undefined Variable", [] { (void)Variable().shape(); }, "undefined"},
      {"item of an undefined Variable", [] { (void)Variable().item(); }, "undefined"},
      {"backward of an undefined Variable", [] { Variable().backward(); }, "undefined"},
      {"backward of a non-scalar", [] { sum(v32({2, 2}) * 2.0, 0).backward(); }, "backward"},
      {"backward of a Variable that does not require grad", [] { Variable(f32({1})).backward(); }, "backward"},
      {"backward with a gradient of the wrong shape", [] { (v32({2}) * 2.0).backward(f32({3})); }, "backward"},
      {"backward with a gradient of the wrong dtype", [] { (v32({2}) * 2.0).backward(f64({2})); }, "backward"},
      {"backward twice through a freed graph",
       [] {
         Variable x = v32({2});
         Variable y = sum(tanh(x));
         y.backward();
         y.backward();
       },
       "backward"},
      {"set_grad of the wrong shape", [] { Variable x = v32({2}); x.set_grad(f32({3})); }, "set_grad"},
      {"set_requires_grad on an op output", [] { Variable y = v32({2}) * 2.0; y.set_requires_grad(false); }, "set_requires_grad"},
      {"set_requires_grad on int64", [] { Variable x(i64({2})); x.set_requires_grad(); }, "set_requires_grad"},
      {"register_hook without requires_grad", [] { Variable x(f32({2})); x.register_hook([](const Tensor&) {}); }, "register_hook"},
      {"op on an undefined Variable", [] { (void)tanh(Variable()); }, "undefined"},
      {"binary op with an undefined Variable", [] { (void)(v32({2}) + Variable()); }, "undefined"},
      {"grad of no outputs", [] { grad(std::vector<Variable>{}, std::vector<Variable>{v32({2})}); }, "grad: no outputs"},
      {"grad of an undefined output", [] { grad(Variable(), std::vector<Variable>{v32({2})}); }, "grad: output 0 is undefined"},
      {"grad of a non-scalar without grad_outputs",
       [] { Variable x = v32({2}); grad(x * 2.0, std::vector<Variable>{x}); }, "grad: output 0 has shape [2]"},
      {"grad with an unused input",
       [] { Variable x = v32({2}); grad(sum(x), std::vector<Variable>{x, v32({3})}); }, "grad: input 1"},
      {"grad with respect to a constant",
       [] { Variable x = v32({2}); grad(sum(x), std::vector<Variable>{Variable(f32({2}))}); }, "grad: input 0"},
      {"grad with a grad_output of the wrong shape",
       [] {
         Variable x = v32({2});
         grad(std::vector<Variable>{x * 2.0}, std::vector<Variable>{x}, std::vector<Variable>{Variable(f32({3}))});
       },
       "grad: grad_output 0"},
      {"grad with too few grad_outputs",
       [] {
         Variable x = v32({2});
         grad(std::vector<Variable>{x * 2.0, x * 3.0}, std::vector<Variable>{x}, std::vector<Variable>{Variable(f32({2}))});
       },
       "grad: 1 grad_outputs given for 2 outputs"},
      {"create_graph through a custom op with a Tensor-only backward",
       [] {
         Variable x = v32({2});
         const Variable y = record("tensor_only", x.data() * 2.0, {x}, [](const Tensor& dy, Grads& g) { g.add(0, dy * 2.0); });
         grad(sum(y), std::vector<Variable>{x}, {.retain_graph = {}, .create_graph = true, .allow_unused = false});
       },
       "op 'tensor_only' (a custom record()) has no differentiable backward"},
      {"create_graph backward twice through a freed graph",
       [] {
         Variable x = v32({2});
         const Variable y = sum(tanh(x));
         y.backward({.retain_graph = false, .create_graph = true});
         y.backward({.retain_graph = {}, .create_graph = true});
       },
       "already freed"},
      {"gradgradcheck of float32 inputs", [] { Variable x = v32({2}); gradgradcheck([&] { return tanh(x); }, {x}); },
       "gradgradcheck: input 0 is float32"},
      {"gradgradcheck of a non-leaf", [] { Variable x = var(f64({2})); const Variable y = x * 2.0; gradgradcheck([&] { return tanh(y); }, {y}); },
       "gradgradcheck: input 0 must be a leaf"},
  });
  check_all(std::vector<Defined>{
      {"backward through an empty tensor gives an empty gradient",
       [] {
         Variable x = v32({0, 3});
         sum(tanh(x)).backward();
         CHECK(x.grad().shape() == Shape({0, 3}));
       }},
      {"NaN flows into the gradient (no anomaly mode)",
       [] {
         Variable x = var(tensor({kNaN, 1.0}, DType::F64));
         sum(x * x).backward();
         CHECK(std::isnan(x.grad().to_vector()[0]));
         CHECK(x.grad().to_vector()[1] == 2.0);
       }},
      {"anomaly mode names the op that made a NaN",
       [] {
         AnomalyModeGuard on;
         CHECK_THROWS_WITH_AS(log(var(full({1}, -1.0, DType::F64))), doctest::Contains("log"), Error);
       }},
  });
}

// ---- autograd/ops.h ------------------------------------------------------------------------------

TEST_CASE("bad input: differentiable ops") {
  using Unary = Variable (*)(const Variable&);
  using TensorUnary = Tensor (*)(const Tensor&);
  struct U {
    const char* name;
    Unary f;
    TensorUnary t;
  };
  const std::vector<U> unary = {
      {"neg", static_cast<Unary>(neg), static_cast<TensorUnary>(neg)},
      {"exp", static_cast<Unary>(exp), static_cast<TensorUnary>(exp)},
      {"log", static_cast<Unary>(log), static_cast<TensorUnary>(log)},
      {"tanh", static_cast<Unary>(tanh), static_cast<TensorUnary>(tanh)},
      {"sigmoid", static_cast<Unary>(sigmoid), static_cast<TensorUnary>(sigmoid)},
      {"relu", static_cast<Unary>(relu), static_cast<TensorUnary>(relu)},
      {"sqrt", static_cast<Unary>(sqrt), static_cast<TensorUnary>(sqrt)},
      {"abs", static_cast<Unary>(abs), static_cast<TensorUnary>(abs)},
  };
  for (const U& u : unary) {
    INFO("op: " << std::string(u.name));
    g_cases += 4;
    CHECK_THROWS_WITH_AS(u.f(Variable(i64({3}))), doctest::Contains(u.name), Error);
    CHECK_THROWS_WITH_AS(u.f(Variable()), doctest::Contains("undefined"), Error);
    Variable e = v32({0, 2});
    Variable y = u.f(e);
    CHECK(y.shape() == Shape({0, 2}));
    sum(y).backward();
    CHECK(e.grad().shape() == Shape({0, 2}));
    // NaN and Inf: the same values as the Tensor op, and a backward that does not throw.
    Variable s = var(specials());
    Variable ys = u.f(s);
    CHECK(same_values(ys.data(), u.t(specials()).to_vector()));
    CHECK_NOTHROW(sum(ys).backward());
    CHECK(s.grad().shape() == Shape({6}));
  }
  for (const auto& [name, f] : std::vector<std::pair<const char*, Unary>>{{"erf", static_cast<Unary>(erf)},
                                                                          {"gelu", static_cast<Unary>(gelu)}}) {
    INFO("op: " << std::string(name));
    g_cases += 4;
    CHECK_THROWS_WITH_AS(f(Variable(i64({3}))), doctest::Contains(name), Error);
    CHECK_THROWS_WITH_AS(f(Variable()), doctest::Contains(name), Error);
    CHECK(f(v32({0, 2})).shape() == Shape({0, 2}));
    const std::vector<double> y = f(var(specials())).data().to_vector();  // NaN, +Inf, -Inf, 0, -0.5, 2
    CHECK(std::isnan(y[0]));
    CHECK(y[1] == (name[0] == 'e' ? 1.0 : kInf));
    CHECK(y[3] == 0.0);
  }
  using Binary = Variable (*)(const Variable&, const Variable&);
  const std::vector<std::pair<const char*, Binary>> binary = {
      {"add", static_cast<Binary>(add)}, {"sub", static_cast<Binary>(sub)},
      {"mul", static_cast<Binary>(mul)}, {"div", static_cast<Binary>(div)},
      {"maximum", static_cast<Binary>(maximum)}, {"minimum", static_cast<Binary>(minimum)},
  };
  for (const auto& [name, f] : binary) {
    INFO("op: " << std::string(name));
    g_cases += 4;
    CHECK_THROWS_WITH_AS(f(v32({2, 3}), v32({2})), doctest::Contains(name), Error);
    CHECK_THROWS_WITH_AS(f(v32({2}), v64({2})), doctest::Contains(name), Error);
    CHECK_THROWS_WITH_AS(f(Variable(i64({2})), Variable(i64({2}))), doctest::Contains(name), Error);
    Variable a = v32({0, 3}), b = v32({3});
    sum(f(a, b)).backward();
    CHECK(b.grad().shape() == Shape({3}));  // broadcast over nothing: a zero gradient
  }
  check_all(std::vector<Throws>{
      {"pow of int64", [] { pow(Variable(i64({2})), 2.0); }, "pow"},
      {"clamp lo > hi", [] { clamp(v32({2}), 2.0, 1.0); }, "clamp"},
      {"clamp with a NaN bound", [] { clamp(v32({2}), 0.0, kNaN); }, "clamp"},
      {"add scalar to int64", [] { add(Variable(i64({2})), 1.0); }, "add"},
      {"mul scalar of int64", [] { mul(Variable(i64({2})), 1.0); }, "mul"},
      {"rsub of int64", [] { rsub(1.0, Variable(i64({2}))); }, "rsub"},
      {"rdiv of int64", [] { rdiv(1.0, Variable(i64({2}))); }, "rdiv"},
      {"matmul 1-D", [] { matmul(v32({3}), v32({3})); }, "matmul"},
      {"matmul inner dims", [] { matmul(v32({2, 3}), v32({2, 3})); }, "matmul"},
      {"matmul F32 x F64", [] { matmul(v32({2, 3}), v64({3, 2})); }, "matmul"},
      {"matmul undefined", [] { matmul(Variable(), v32({3, 2})); }, "undefined"},
      {"linear: 1-D weight", [] { linear(v32({2, 3}), v32({3})); }, "linear"},
      {"linear: 0-D input", [] { linear(var(scalar_tensor(1.0)), v32({2, 1})); }, "linear"},
      {"linear: features differ", [] { linear(v32({2, 3}), v32({4, 2})); }, "linear"},
      {"linear: bias size", [] { linear(v32({2, 3}), v32({4, 3}), v32({3})); }, "linear"},
      {"linear: bias 2-D", [] { linear(v32({2, 3}), v32({4, 3}), v32({1, 4})); }, "linear"},
      {"linear: dtypes differ", [] { linear(v32({2, 3}), v64({4, 3})); }, "linear"},
      {"linear: undefined weight", [] { linear(v32({2, 3}), Variable()); }, "linear"},
      {"linear2: undefined input", [] { linear2(Variable(), v32({2, 3}), v32({1, 2}), v32({2, 2})); }, "linear2"},
      {"linear2: row counts differ", [] { linear2(v32({1, 3}), v32({2, 3}), v32({2, 2}), v32({2, 2})); }, "linear2"},
      {"linear2: output sizes differ", [] { linear2(v32({1, 3}), v32({2, 3}), v32({1, 2}), v32({3, 2})); }, "linear2"},
      {"linear2: dtypes differ", [] { linear2(v32({1, 3}), v32({2, 3}), v64({1, 2}), v64({2, 2})); }, "linear2"},
      {"linear2: 3-D input", [] { linear2(v32({1, 1, 3}), v32({2, 3}), v32({1, 2}), v32({2, 2})); }, "linear2"},
      {"linear2: bias size", [] { linear2(v32({1, 3}), v32({2, 3}), v32({1, 2}), v32({2, 2}), v32({3})); }, "linear2"},
      {"add_linear: undefined base", [] { add_linear(Variable(), v32({1, 3}), v32({2, 3})); }, "add_linear"},
      {"add_linear: base shape", [] { add_linear(v32({1, 3}), v32({1, 3}), v32({2, 3})); }, "add_linear"},
      {"add_linear: dtypes differ", [] { add_linear(v64({1, 2}), v32({1, 3}), v32({2, 3})); }, "add_linear"},
      {"add_linear: bias size", [] { add_linear(v32({1, 2}), v32({1, 3}), v32({2, 3}), v32({3})); }, "add_linear"},
      {"sum: axis out of range", [] { sum(v32({2}), 1); }, "sum"},
      {"sum of int64", [] { sum(Variable(i64({2}))); }, "sum"},
      {"mean of empty", [] { mean(v32({0})); }, "mean"},
      {"mean along an empty axis", [] { mean(v32({2, 0}), 1); }, "mean"},
      {"max of empty", [] { max(v32({0})); }, "max"},
      {"max along an empty axis", [] { max(v32({2, 0}), 1); }, "max"},
      {"min: axis out of range", [] { min(v32({2}), -2); }, "min"},
      {"softmax: axis out of range", [] { softmax(v32({2}), 1); }, "softmax"},
      {"log_softmax of int64", [] { log_softmax(Variable(i64({2})), 0); }, "log_softmax"},
      {"reshape: count differs", [] { reshape(v32({2, 3}), {5}); }, "reshape"},
      {"reshape: negative", [] { reshape(v32({2, 3}), {-2, -3}); }, "reshape"},
      {"flatten of undefined", [] { flatten(Variable()); }, "undefined"},
      {"unsqueeze: axis out of range", [] { unsqueeze(v32({2}), 3); }, "unsqueeze"},
      {"squeeze of a non-1 axis", [] { squeeze(v32({2}), 0); }, "squeeze"},
      {"transpose: axis out of range", [] { transpose(v32({2, 3}), 2, 0); }, "transpose"},
      {"permute: repeated axis", [] { permute(v32({2, 3}), {1, 1}); }, "permute"},
      {"narrow: out of range", [] { narrow(v32({4}), 0, 3, 2); }, "narrow"},
      {"narrow: overflow", [] { narrow(v32({4}), 0, kHuge, 2); }, "narrow"},
      {"narrow: axis out of range", [] { narrow(v32({4}), 3, 0, 1); }, "narrow"},
      {"slice: axis out of range", [] { slice(v32({4}), -2, 0, 1); }, "slice"},
      {"concat: nothing", [] { concat(std::vector<Variable>{}, 0); }, "concat"},
      {"concat: shapes differ", [] { concat({v32({2, 3}), v32({2, 2})}, 0); }, "concat"},
      {"concat: dtypes differ", [] { concat({v32({2}), v64({2})}, 0); }, "concat"},
      {"concat: undefined", [] { concat({v32({2}), Variable()}, 0); }, "undefined"},
      {"stack: nothing", [] { stack(std::vector<Variable>{}, 0); }, "stack"},
      {"stack: shapes differ", [] { stack({v32({2}), v32({3})}, 0); }, "stack"},
      {"stack: axis out of range", [] { stack({v32({2}), v32({2})}, -3); }, "stack"},
      {"split: size 0", [] { split(v32({4}), 0, 0); }, "split"},
      {"split: axis out of range", [] { split(v32({4}), 1, 2); }, "split"},
      {"chunk: 0 chunks", [] { chunk(v32({4}), 0, 0); }, "chunk"},
      {"chunk: axis out of range", [] { chunk(v32({4}), 2, 1); }, "chunk"},
      {"broadcast_to: mismatch", [] { broadcast_to(v32({2}), {3}); }, "broadcast_to"},
      {"index_select: out of range", [] { index_select(v32({3, 2}), 0, indices({3})); }, "index_select"},
      {"index_select: negative", [] { index_select(v32({3, 2}), 0, indices({-4})); }, "index_select"},
      {"index_select: float indices", [] { index_select(v32({3, 2}), 0, f32({1})); }, "index_select"},
      {"gather: out of range", [] { gather(v32({2, 3}), 1, indices({5, 0}, {2, 1})); }, "gather"},
      {"gather: float indices", [] { gather(v32({2, 3}), 1, f32({2, 1})); }, "gather"},
      {"where: shapes", [] { where(ones({3}), v32({2}), v32({2})); }, "where"},
      {"where: dtypes", [] { where(ones({2}), v32({2}), v64({2})); }, "where"},
      {"masked_fill: mask too large", [] { masked_fill(v32({2}), ones({3, 2}), 0.0); }, "masked_fill"},
  });
  check_all(std::vector<Defined>{
      {"split and chunk of Variables match the Tensor ops on an empty axis",
       [] {
         CHECK(split(v32({0, 2}), 3, 0).size() == split(f32({0, 2}), 3, 0).size());
         CHECK(chunk(v32({0, 2}), 3, 0).size() == chunk(f32({0, 2}), 3, 0).size());
       }},
      {"chunk of a Variable with huge n", [] { CHECK(chunk(v32({5}), kHuge, 0).size() == 5); }},
      {"split of a Variable with a huge size", [] { CHECK(split(v32({5}), kHuge, 0).size() == 1); }},
      {"sum of an empty Variable is 0 with an empty gradient",
       [] {
         Variable x = v32({0});
         Variable s = sum(x);
         CHECK(s.item() == 0.0);
         s.backward();
         CHECK(x.grad().numel() == 0);
       }},
      {"max of a NaN sends the gradient to it",
       [] {
         Variable x = var(tensor({1.0, kNaN, 3.0}, DType::F64));
         max(x).backward();
         CHECK(x.grad().to_vector() == std::vector<double>{0, 1, 0});
       }},
      {"linear on a batch of 0", [] { CHECK(linear(v32({0, 3}), v32({2, 3}), v32({2})).shape() == Shape({0, 2})); }},
      {"linear with 0 input features is the bias",
       [] { CHECK(equal(linear(v32({2, 0}), v32({3, 0}), var(ones({3}))).data(), ones({2, 3}))); }},
  });
}

// ---- nn/layers.h and nn/init.h ------------------------------------------------------------------

TEST_CASE("bad input: basic layers and initialisers") {
  check_all(std::vector<Throws>{
      {"Linear(0, 2)", [] { Linear(0, 2); }, "Linear"},
      {"Linear(3, 0)", [] { Linear(3, 0); }, "Linear"},
      {"Linear(-1, 2)", [] { Linear(-1, 2); }, "Linear"},
      {"Linear(2^40, 2^40)", [] { Linear(int64_t{1} << 40, int64_t{1} << 40); }, "elements"},
      {"Linear(2^20, 2^30)", [] { Linear(int64_t{1} << 20, int64_t{1} << 30); }, "allocate"},
      {"Linear: input features differ", [] { Linear(3, 2).forward(v32({4, 2})); }, "linear"},
      {"Linear: float64 input into float32 weights", [] { Linear(3, 2).forward(v64({4, 3})); }, "linear"},
      {"Linear: int64 input", [] { Linear(3, 2).forward(Variable(i64({4, 3}))); }, "linear"},
      {"Linear: 0-D input", [] { Linear(1, 2).forward(var(scalar_tensor(1.0))); }, "linear"},
      {"Linear: undefined input", [] { Linear(3, 2).forward(Variable()); }, "undefined"},
      {"Embedding(0, 4)", [] { Embedding(0, 4); }, "Embedding"},
      {"Embedding(4, 0)", [] { Embedding(4, 0); }, "Embedding"},
      {"Embedding(-4, 2)", [] { Embedding(-4, 2); }, "Embedding"},
      {"Embedding padding_idx too large", [] { Embedding(4, 2, 4); }, "Embedding"},
      {"Embedding padding_idx too negative", [] { Embedding(4, 2, -5); }, "Embedding"},
      {"Embedding: float indices", [] { Embedding(4, 2).forward(f32({3})); }, "Embedding"},
      {"Embedding: index out of range", [] { Embedding(4, 2).forward(indices({4})); }, "Embedding"},
      {"Embedding: negative index", [] { Embedding(4, 2).forward(indices({-1})); }, "Embedding"},
      {"Embedding: undefined indices", [] { Embedding(4, 2).forward(Tensor()); }, "Embedding"},
      {"Embedding with padding: index out of range", [] { Embedding(4, 2, 0).forward(indices({7})); }, "Embedding"},
      {"Dropout(-0.1)", [] { Dropout(-0.1); }, "Dropout"},
      {"Dropout(1.5)", [] { Dropout(1.5); }, "Dropout"},
      {"Dropout(NaN)", [] { Dropout d(kNaN); }, "Dropout"},
      {"Dropout of int64", [] { Dropout d(0.5); d.forward(Variable(i64({3}))); }, "Dropout"},
      {"dropout_mask p = 2", [] { dropout_mask({3}, 2.0, DType::F32, gen()); }, "dropout_mask"},
      {"dropout_mask p = NaN", [] { dropout_mask({3}, kNaN, DType::F32, gen()); }, "dropout_mask"},
      {"dropout_mask int64", [] { dropout_mask({3}, 0.5, DType::I64, gen()); }, "dropout_mask"},
      {"LayerNorm(0)", [] { LayerNorm(0); }, "LayerNorm"},
      {"LayerNorm(-2)", [] { LayerNorm(-2); }, "LayerNorm"},
      {"LayerNorm: last dimension differs", [] { LayerNorm(3).forward(v32({2, 4})); }, "LayerNorm"},
      {"LayerNorm: 0-D input", [] { LayerNorm(1).forward(var(scalar_tensor(1.0))); }, "LayerNorm"},
      {"LayerNorm: float64 input into float32 weights", [] { LayerNorm(3).forward(v64({2, 3})); }, "LayerNorm"},
      {"LayerNorm without affine: empty last dimension", [] { LayerNorm(3, 1e-5, false).forward(v32({2, 0})); }, "LayerNorm"},
      {"LayerNorm: negative eps", [] { LayerNorm(3, -1.0); }, "LayerNorm"},
      {"init: xavier of a 1-D weight", [] { Variable p = v32({3}); init::xavier_uniform_(p); }, "init"},
      {"init: kaiming of a 0-D weight", [] { Variable p = var(scalar_tensor(1.0)); init::kaiming_normal_(p); }, "init"},
      {"init: orthogonal of a 1-D weight", [] { Variable p = v32({3}); init::orthogonal_(p); }, "orthogonal_"},
      {"init: uniform_ with lo > hi", [] { Variable p = v32({3}); init::uniform_(p, 1.0, 0.0); }, "uniform"},
      {"init: normal_ with a negative stdev", [] { Variable p = v32({3}); init::normal_(p, 0.0, -1.0); }, "normal_"},
      {"init: uniform_ of int64", [] { Variable p(i64({3})); init::uniform_(p, 0.0, 1.0); }, "init"},
      {"init: constant_ of undefined", [] { Variable p; init::constant_(p, 1.0); }, "undefined"},
  });
  check_all(std::vector<Defined>{
      {"Linear on a batch of 0", [] { CHECK(Linear(3, 2).forward(v32({0, 3})).shape() == Shape({0, 2})); }},
      {"Linear on NaN input gives NaN rows only where the NaN is",
       [] {
         Linear lin(2, 2);
         Tensor x = zeros({2, 2});
         x.data<float>()[0] = NAN;
         const std::vector<double> y = lin.forward(Variable(x)).data().to_vector();
         CHECK(std::isnan(y[0]));
         CHECK(std::isfinite(y[2]));
       }},
      {"Embedding with no indices", [] { CHECK(Embedding(4, 2).forward(i64({0})).shape() == Shape({0, 2})); }},
      {"Embedding with padding and a batch of 0", [] { CHECK(Embedding(4, 2, 1).forward(i64({0, 3})).shape() == Shape({0, 3, 2})); }},
      {"Dropout(1) gives exact zeros, also for Inf",
       [] {
         Dropout d(1.0);
         const std::vector<double> y = d.forward(Variable(tensor({1.0, 2.0}))).data().to_vector();
         CHECK(y == std::vector<double>{0.0, 0.0});
       }},
      {"dropout_mask p = 1 is zeros (no 0 * Inf)",
       [] { CHECK(dropout_mask({4}, 1.0, DType::F32, gen()).to_vector() == std::vector<double>(4, 0.0)); }},
      {"Dropout of an empty tensor", [] { Dropout d(0.5); CHECK(d.forward(v32({0, 3})).shape() == Shape({0, 3})); }},
      {"LayerNorm of a constant row is the bias (not NaN)",
       [] { CHECK(equal(LayerNorm(3).forward(Variable(ones({2, 3}))).data(), zeros({2, 3}))); }},
      {"LayerNorm on a batch of 0", [] { CHECK(LayerNorm(3).forward(v32({0, 3})).shape() == Shape({0, 3})); }},
      {"initialising an empty weight is a no-op",
       [] {
         Variable p = var(zeros({0, 3}));
         init::xavier_uniform_(p);
         init::kaiming_uniform_(p);
         init::normal_(p);
         CHECK(p.numel() == 0);
       }},
      {"xavier of a [3,0] weight", [] { Variable p = var(zeros({3, 0})); init::xavier_uniform_(p); CHECK(p.numel() == 0); }},
      {"orthogonal_ of empty weights is a no-op",
       [] {
         Variable a = var(zeros({0, 3})), b = var(zeros({3, 0}));
         init::orthogonal_(a);
         init::orthogonal_(b);
         CHECK(a.numel() + b.numel() == 0);
       }},
  });
}

// ---- nn/recurrent.h -------------------------------------------------------------------------------

TEST_CASE("bad input: recurrent cells, run_cell and sequence modules") {
  check_all(std::vector<Throws>{
      {"RNNCell hidden 0", [] { RNNCell(3, 0); }, "RNNCell"},
      {"LSTMCell hidden 0", [] { LSTMCell(3, 0); }, "LSTMCell"},
      {"GRUCell hidden 0", [] { GRUCell(3, 0); }, "GRUCell"},
      {"RNNCell input 0", [] { RNNCell(0, 4); }, "RNNCell"},
      {"LSTMCell negative hidden", [] { LSTMCell(3, -4); }, "LSTMCell"},
      {"GRUCell negative input", [] { GRUCell(-3, 4); }, "GRUCell"},
      {"LSTMCell absurd hidden", [] { LSTMCell(1, int64_t{1} << 45); }, "allocate"},
      {"RNNCell: features differ", [] { RNNCell c(3, 4); c.forward(v32({2, 5}), State{}); }, "RNNCell"},
      {"LSTMCell: 3-D input", [] { LSTMCell c(3, 4); c.forward(v32({1, 2, 3}), State{}); }, "LSTMCell"},
      {"GRUCell: 1-D input", [] { GRUCell c(3, 4); c.forward(v32({3}), State{}); }, "GRUCell"},
      {"LSTMCell: float64 input into float32 weights", [] { LSTMCell c(3, 4); c.forward(v64({2, 3}), State{}); }, "LSTMCell"},
      {"GRUCell: int64 input", [] { GRUCell c(3, 4); c.forward(Variable(i64({2, 3})), State{}); }, "GRUCell"},
      {"RNNCell: undefined input", [] { RNNCell c(3, 4); c.forward(Variable(), State{}); }, "RNNCell"},
      {"LSTMCell: one state tensor", [] { LSTMCell c(3, 4); c.forward(v32({2, 3}), State{v32({2, 4})}); }, "LSTMCell"},
      {"LSTMCell: state batch differs", [] { LSTMCell c(3, 4); c.forward(v32({2, 3}), v32({3, 4}), v32({3, 4})); }, "LSTMCell"},
      {"GRUCell: state width differs", [] { GRUCell c(3, 4); c.forward(v32({2, 3}), v32({2, 5})); }, "GRUCell"},
      {"RNNCell: state dtype differs", [] { RNNCell c(3, 4); c.forward(v32({2, 3}), v64({2, 4})); }, "RNNCell"},
      {"GRUCell: undefined state", [] { GRUCell c(3, 4); c.forward(v32({2, 3}), Variable()); }, "GRUCell"},
      {"run_cell: 2-D input", [] { GRUCell c(3, 4); run_cell(c, v32({5, 3})); }, "run_cell"},
      {"run_cell: zero time steps", [] { GRUCell c(3, 4); run_cell(c, v32({0, 2, 3})); }, "run_cell"},
      {"run_cell: batch of 0", [] { GRUCell c(3, 4); run_cell(c, v32({5, 0, 3})); }, "run_cell"},
      {"run_cell: features differ", [] { GRUCell c(3, 4); run_cell(c, v32({5, 2, 2})); }, "GRUCell"},
      {"run_cell: undefined input", [] { GRUCell c(3, 4); run_cell(c, Variable()); }, "run_cell"},
      {"run_cell: lengths count", [] { GRUCell c(3, 4); run_cell(c, v32({5, 2, 3}), {}, {5}); }, "run_cell"},
      {"run_cell: length 0", [] { GRUCell c(3, 4); run_cell(c, v32({5, 2, 3}), {}, {5, 0}); }, "run_cell"},
      {"run_cell: negative length", [] { GRUCell c(3, 4); run_cell(c, v32({5, 2, 3}), {}, {5, -1}); }, "run_cell"},
      {"run_cell: length past T", [] { GRUCell c(3, 4); run_cell(c, v32({5, 2, 3}), {}, {6, 1}); }, "run_cell"},
      {"run_cell: initial state shape", [] { LSTMCell c(3, 4); run_cell(c, v32({5, 2, 3}), State{v32({2, 4}), v32({1, 4})}); }, "run_cell"},
      {"run_cell: initial state count", [] { LSTMCell c(3, 4); run_cell(c, v32({5, 2, 3}), State{v32({2, 4})}); }, "run_cell"},
      {"run_cell_steps: no steps", [] { GRUCell c(3, 4); run_cell_steps(c, {}); }, "run_cell"},
      {"run_cell_steps: steps differ in shape", [] { GRUCell c(3, 4); run_cell_steps(c, {v32({2, 3}), v32({1, 3})}); }, "run_cell"},
      {"run_cell_steps: an undefined step", [] { GRUCell c(3, 4); run_cell_steps(c, {v32({2, 3}), Variable()}); }, "run_cell"},
      {"length_mask: T = 0", [] { length_mask({1}, 0); }, "length_mask"},
      {"length_mask: length past T", [] { length_mask({4}, 3); }, "length_mask"},
      {"length_mask: negative length", [] { length_mask({-1}, 3); }, "length_mask"},
      {"LSTM hidden 0", [] { LSTM({.input_size = 3, .hidden_size = 0}); }, "LSTM"},
      {"GRU input 0", [] { GRU({.input_size = 0, .hidden_size = 4}); }, "GRU"},
      {"RNN negative hidden", [] { RNN({.input_size = 3, .hidden_size = -1}); }, "RNN"},
      {"LSTM 0 layers", [] { LSTM({.input_size = 3, .hidden_size = 4, .num_layers = 0}); }, "LSTM"},
      {"GRU negative layers", [] { GRU({.input_size = 3, .hidden_size = 4, .num_layers = -2}); }, "GRU"},
      {"LSTM dropout 1.5", [] { LSTM({.input_size = 3, .hidden_size = 4, .dropout = 1.5}); }, "LSTM"},
      {"RNN dropout NaN", [] { RNN({.input_size = 3, .hidden_size = 4, .dropout = kNaN}); }, "RNN"},
      {"LSTM: 2-D input", [] { LSTM m({.input_size = 3, .hidden_size = 4}); m.forward(v32({5, 3})); }, "LSTM"},
      {"GRU: 4-D input", [] { GRU m({.input_size = 3, .hidden_size = 4}); m.forward(v32({5, 2, 3, 1})); }, "GRU"},
      {"RNN: features differ", [] { RNN m({.input_size = 3, .hidden_size = 4}); m.forward(v32({5, 2, 4})); }, "RNN"},
      {"LSTM: zero time steps", [] { LSTM m({.input_size = 3, .hidden_size = 4}); m.forward(v32({0, 2, 3})); }, "LSTM"},
      {"GRU: batch of 0", [] { GRU m({.input_size = 3, .hidden_size = 4}); m.forward(v32({5, 0, 3})); }, "GRU"},
      {"GRU batch_first: zero time steps",
       [] { GRU m({.input_size = 3, .hidden_size = 4, .batch_first = true}); m.forward(v32({2, 0, 3})); }, "GRU"},
      {"LSTM: float64 input into float32 weights", [] { LSTM m({.input_size = 3, .hidden_size = 4}); m.forward(v64({5, 2, 3})); }, "LSTM"},
      {"RNN: int64 input", [] { RNN m({.input_size = 3, .hidden_size = 4}); m.forward(Variable(i64({5, 2, 3}))); }, "RNN"},
      {"RNN: h_0 shape", [] { RNN m({.input_size = 3, .hidden_size = 4}); m.forward(v32({5, 2, 3}), v32({2, 4})); }, "RNN"},
      {"GRU: h_0 batch differs", [] { GRU m({.input_size = 3, .hidden_size = 4}); m.forward(v32({5, 2, 3}), v32({1, 3, 4})); }, "GRU"},
      {"GRU: h_0 dtype differs", [] { GRU m({.input_size = 3, .hidden_size = 4}); m.forward(v32({5, 2, 3}), v64({1, 2, 4})); }, "GRU"},
      {"LSTM: only h_0", [] { LSTM m({.input_size = 3, .hidden_size = 4}); m.forward(v32({5, 2, 3}), State{v32({1, 2, 4})}); }, "LSTM"},
      {"LSTM: c_0 shape", [] { LSTM m({.input_size = 3, .hidden_size = 4}); m.forward(v32({5, 2, 3}), State{v32({1, 2, 4}), v32({1, 2, 5})}); }, "LSTM"},
      {"LSTM: lengths count", [] { LSTM m({.input_size = 3, .hidden_size = 4}); m.forward(v32({5, 2, 3}), {}, {5}); }, "LSTM"},
      {"GRU: length 0", [] { GRU m({.input_size = 3, .hidden_size = 4}); m.forward(v32({5, 2, 3}), Variable(), {0, 5}); }, "GRU"},
      {"RNN: length past T", [] { RNN m({.input_size = 3, .hidden_size = 4}); m.forward(v32({5, 2, 3}), Variable(), {9, 5}); }, "RNN"},
      {"cell(): layer out of range", [] { LSTM m({.input_size = 3, .hidden_size = 4}); m.cell(1); }, "no cell"},
      {"cell(): negative layer", [] { LSTM m({.input_size = 3, .hidden_size = 4}); m.cell(-1); }, "no cell"},
      {"cell(): reverse of a unidirectional module", [] { GRU m({.input_size = 3, .hidden_size = 4}); m.cell(0, 1); }, "no cell"},
  });
  check_all(std::vector<Defined>{
      {"cells on a batch of 0",
       [] {
         RNNCell r(3, 4);
         LSTMCell l(3, 4);
         GRUCell g(3, 4);
         CHECK(r.forward(v32({0, 3}), State{})[0].shape() == Shape({0, 4}));
         const State s = l.forward(v32({0, 3}), State{});
         CHECK(s.size() == 2);
         CHECK(s[1].shape() == Shape({0, 4}));
         CHECK(g.forward(v32({0, 3}), State{})[0].shape() == Shape({0, 4}));
       }},
      {"initial_state for a batch of 0", [] { CHECK(LSTMCell(3, 4).initial_state(0, DType::F32)[0].shape() == Shape({0, 4})); }},
      {"initial_state with a negative batch throws", [] { CHECK_THROWS_AS(GRUCell(3, 4).initial_state(-1, DType::F32), Error); }},
      {"NaN in one sequence stays in that sequence",
       [] {
         GRUCell c(1, 2);
         Tensor x = zeros({3, 2, 1});
         x.data<float>()[0] = NAN;  // t = 0, batch 0
         const SequenceResult r = run_cell(c, Variable(x));
         const std::vector<double> h = r.final_state[0].data().to_vector();  // [2,2]
         CHECK(std::isnan(h[0]));
         CHECK(std::isfinite(h[2]));
         CHECK(std::isfinite(h[3]));
       }},
      {"lengths of 1 everywhere", [] { GRUCell c(3, 4); CHECK(run_cell(c, v32({5, 2, 3}), {}, {1, 1}).output.shape() == Shape({5, 2, 4})); }},
      {"a sequence module with T = 1, B = 1",
       [] {
         LSTM m({.input_size = 3, .hidden_size = 4, .num_layers = 2, .bidirectional = true});
         const RecurrentOutput o = m.forward(v32({1, 1, 3}));
         CHECK(o.output.shape() == Shape({1, 1, 8}));
         CHECK(o.h_n().shape() == Shape({4, 1, 4}));
       }},
  });
}

// ---- nn/attention.h ---------------------------------------------------------------------------------

TEST_CASE("bad input: attention") {
  check_all(std::vector<Throws>{
      {"masked_softmax: undefined scores", [] { masked_softmax(Variable(), Tensor()); }, "masked_softmax"},
      {"masked_softmax: mask does not broadcast", [] { masked_softmax(v32({2, 3}), ones({2, 4})); }, "masked_softmax"},
      {"masked_softmax: int64 scores", [] { masked_softmax(Variable(i64({2, 3})), ones({2, 3})); }, "masked_softmax"},
      {"masked_softmax: axis out of range", [] { masked_softmax(v32({2, 3}), Tensor(), 2); }, "softmax"},
      {"dot: 1-D query", [] { dot_product_attention(v32({4}), v32({2, 3, 4}), v32({2, 3, 5})); }, "dot_product_attention"},
      {"dot: 2-D keys", [] { dot_product_attention(v32({2, 4}), v32({3, 4}), v32({2, 3, 5})); }, "dot_product_attention"},
      {"dot: 4-D query", [] { dot_product_attention(v32({2, 1, 1, 4}), v32({2, 3, 4}), v32({2, 3, 5})); }, "dot_product_attention"},
      {"dot: batch differs", [] { dot_product_attention(v32({1, 4}), v32({2, 3, 4}), v32({2, 3, 5})); }, "dot_product_attention"},
      {"dot: features differ", [] { dot_product_attention(v32({2, 5}), v32({2, 3, 4}), v32({2, 3, 5})); }, "dot_product_attention"},
      {"dot: keys and values differ in length", [] { dot_product_attention(v32({2, 4}), v32({2, 3, 4}), v32({2, 2, 5})); }, "dot_product_attention"},
      {"dot: zero keys", [] { dot_product_attention(v32({2, 4}), v32({2, 0, 4}), v32({2, 0, 5})); }, "dot_product_attention"},
      {"dot: dtypes differ", [] { dot_product_attention(v32({2, 4}), v64({2, 3, 4}), v64({2, 3, 5})); }, "dot_product_attention"},
      {"dot: int64 inputs", [] { dot_product_attention(Variable(i64({2, 4})), Variable(i64({2, 3, 4})), Variable(i64({2, 3, 5}))); }, "dot_product_attention"},
      {"dot: undefined values", [] { dot_product_attention(v32({2, 4}), v32({2, 3, 4}), Variable()); }, "dot_product_attention"},
      {"dot: mask of the wrong length", [] { dot_product_attention(v32({2, 4}), v32({2, 3, 4}), v32({2, 3, 5}), ones({2, 4})); }, "dot_product_attention"},
      {"dot: 1-D mask", [] { dot_product_attention(v32({2, 4}), v32({2, 3, 4}), v32({2, 3, 5}), ones({3})); }, "dot_product_attention"},
      {"dot: NaN scale", [] { dot_product_attention(v32({2, 4}), v32({2, 3, 4}), v32({2, 3, 5}), Tensor(), kNaN); }, "dot_product_attention"},
      {"scaled: features differ", [] { scaled_dot_product_attention(v32({2, 1, 5}), v32({2, 3, 4}), v32({2, 3, 5})); }, "scaled_dot_product_attention"},
      {"GeneralAttention(0, 4)", [] { GeneralAttention(0, 4); }, "GeneralAttention"},
      {"GeneralAttention(4, -1)", [] { GeneralAttention(4, -1); }, "GeneralAttention"},
      {"GeneralAttention: query features", [] { GeneralAttention a(4, 3); a.forward(v32({2, 5}), v32({2, 3, 3}), v32({2, 3, 2})); }, "GeneralAttention"},
      {"GeneralAttention: key features", [] { GeneralAttention a(4, 3); a.forward(v32({2, 4}), v32({2, 3, 2}), v32({2, 3, 2})); }, "GeneralAttention"},
      {"GeneralAttention: float64 inputs", [] { GeneralAttention a(4, 3); a.forward(v64({2, 4}), v64({2, 3, 3}), v64({2, 3, 2})); }, "GeneralAttention"},
      {"AdditiveAttention(4, 3, 0)", [] { AdditiveAttention(4, 3, 0); }, "AdditiveAttention"},
      {"AdditiveAttention: key features", [] { AdditiveAttention a(4, 3, 5); a.forward(v32({2, 4}), v32({2, 3, 4}), v32({2, 3, 2})); }, "AdditiveAttention"},
      {"AdditiveAttention: zero keys", [] { AdditiveAttention a(4, 3, 5); a.forward(v32({2, 4}), v32({2, 0, 3}), v32({2, 0, 2})); }, "AdditiveAttention"},
  });
  check_all(std::vector<Defined>{
      {"a fully masked row gives zero weights and zero context",
       [] {
         Tensor mask = ones({2, 3});
         for (int k = 0; k < 3; ++k) mask.data<float>()[k] = 0;  // batch 0 attends to nothing
         const AttentionResult r = dot_product_attention(v32({2, 4}), v32({2, 3, 4}), v32({2, 3, 5}), mask);
         const std::vector<double> w = r.weights.data().to_vector();
         for (int k = 0; k < 3; ++k) CHECK(w[static_cast<size_t>(k)] == 0.0);
         for (double c : narrow(r.context.data(), 0, 0, 1).to_vector()) CHECK(c == 0.0);
       }},
      {"attention on a batch of 0",
       [] { CHECK(dot_product_attention(v32({0, 4}), v32({0, 3, 4}), v32({0, 3, 5})).context.shape() == Shape({0, 5})); }},
      {"attention with zero queries", [] { CHECK(dot_product_attention(v32({2, 0, 4}), v32({2, 3, 4}), v32({2, 3, 5})).weights.shape() == Shape({2, 0, 3})); }},
      {"a NaN key poisons only its own batch element",
       [] {
         Tensor keys = ones({2, 3, 4});
         keys.data<float>()[0] = NAN;
         const AttentionResult r = dot_product_attention(v32({2, 4}), Variable(keys), v32({2, 3, 5}));
         const std::vector<double> c = r.context.data().to_vector();
         CHECK(std::isnan(c[0]));
         CHECK(std::isfinite(c[5]));
       }},
  });
}

// ---- nn/loss.h -------------------------------------------------------------------------------------

TEST_CASE("bad input: losses") {
  check_all(std::vector<Throws>{
      {"mse_loss: shapes differ", [] { mse_loss(v32({4, 1}), f32({4})); }, "mse_loss"},
      {"mse_loss: dtypes differ", [] { mse_loss(v32({4}), f64({4})); }, "mse_loss"},
      {"mse_loss: int64", [] { mse_loss(Variable(i64({4})), i64({4})); }, "mse_loss"},
      {"mse_loss: undefined target", [] { mse_loss(v32({4}), Tensor()); }, "mse_loss"},
      {"mse_loss: undefined input", [] { mse_loss(Variable(), f32({4})); }, "mse_loss"},
      {"mse_loss: undefined Variable target", [] { mse_loss(v32({4}), Variable()); }, "mse_loss"},
      {"l1_loss: shapes differ", [] { l1_loss(v32({2, 3}), f32({3, 2})); }, "l1_loss"},
      {"l1_loss: dtypes differ", [] { l1_loss(v64({4}), v32({4})); }, "l1_loss"},
      {"nll_loss: 1-D input", [] { nll_loss(v32({3}), indices({0})); }, "nll_loss"},
      {"nll_loss: float targets", [] { nll_loss(v32({2, 3}), f32({2})); }, "nll_loss"},
      {"nll_loss: target out of range", [] { nll_loss(v32({2, 3}), indices({0, 3})); }, "nll_loss"},
      {"nll_loss: negative target", [] { nll_loss(v32({2, 3}), indices({0, -1})); }, "nll_loss"},
      {"nll_loss: huge target", [] { nll_loss(v32({2, 3}), indices({0, kHuge})); }, "nll_loss"},
      {"nll_loss: targets shape", [] { nll_loss(v32({2, 3}), indices({0, 1, 2})); }, "nll_loss"},
      {"nll_loss: int64 input", [] { nll_loss(Variable(i64({2, 3})), indices({0, 1})); }, "nll_loss"},
      {"cross_entropy: targets for [N,C,d]", [] { cross_entropy(v32({2, 3, 4}), indices({0, 1})); }, "cross_entropy"},
      {"cross_entropy: target out of range", [] { cross_entropy(v32({2, 3}), indices({3, 0})); }, "cross_entropy"},
      {"cross_entropy: ignore_index is not a shield for other negatives", [] { cross_entropy(v32({2, 3}), indices({-5, 0}), -100); }, "cross_entropy"},
      {"cross_entropy: label_smoothing -0.1", [] { cross_entropy(v32({2, 3}), indices({0, 1}), -100, Reduction::Mean, -0.1); }, "cross_entropy"},
      {"cross_entropy: label_smoothing 1.5", [] { cross_entropy(v32({2, 3}), indices({0, 1}), -100, Reduction::Mean, 1.5); }, "cross_entropy"},
      {"cross_entropy: label_smoothing NaN", [] { cross_entropy(v32({2, 3}), indices({0, 1}), -100, Reduction::Mean, kNaN); }, "cross_entropy"},
      {"cross_entropy: undefined targets", [] { cross_entropy(v32({2, 3}), Tensor()); }, "cross_entropy"},
      {"cross_entropy: zero classes", [] { cross_entropy(v32({2, 0}), indices({0, 0})); }, "cross_entropy"},
      {"bce: shapes differ", [] { binary_cross_entropy_with_logits(v32({4}), f32({4, 1})); }, "binary_cross_entropy_with_logits"},
      {"bce: dtypes differ", [] { binary_cross_entropy_with_logits(v32({4}), f64({4})); }, "binary_cross_entropy_with_logits"},
      {"bce: pos_weight does not broadcast", [] { binary_cross_entropy_with_logits(v32({4, 3}), f32({4, 3}), Reduction::Mean, f32({2})); }, "binary_cross_entropy_with_logits"},
      {"bce: pos_weight dtype", [] { binary_cross_entropy_with_logits(v32({4, 3}), f32({4, 3}), Reduction::Mean, f64({3})); }, "binary_cross_entropy_with_logits"},
      {"bce: pos_weight larger than the logits", [] { binary_cross_entropy_with_logits(v32({3}), f32({3}), Reduction::Mean, f32({2, 3})); }, "binary_cross_entropy_with_logits"},
      {"bce: int64 logits", [] { binary_cross_entropy_with_logits(Variable(i64({3})), i64({3})); }, "binary_cross_entropy_with_logits"},
  });
  check_all(std::vector<Defined>{
      {"mse_loss of empty tensors: Sum 0, None empty, Mean NaN as in PyTorch",
       [] {
         CHECK(mse_loss(v32({0}), f32({0}), Reduction::Sum).item() == 0.0);
         CHECK(mse_loss(v32({0, 3}), f32({0, 3}), Reduction::None).shape() == Shape({0, 3}));
         CHECK(std::isnan(mse_loss(v32({0}), f32({0})).item()));
       }},
      {"l1_loss Mean of empty is NaN", [] { CHECK(std::isnan(l1_loss(v32({0}), f32({0})).item())); }},
      {"cross_entropy on a batch of 0: Sum 0, Mean NaN",
       [] {
         CHECK(cross_entropy(v32({0, 3}), i64({0}), -100, Reduction::Sum).item() == 0.0);
         CHECK(std::isnan(cross_entropy(v32({0, 3}), i64({0})).item()));
       }},
      {"bce Mean of empty is NaN", [] { CHECK(std::isnan(binary_cross_entropy_with_logits(v32({0}), f32({0})).item())); }},
      {"all targets ignored: Mean is NaN with a zero gradient",
       [] {
         Variable logits = v64({2, 3});
         Variable l = cross_entropy(logits, indices({-100, -100}));
         CHECK(std::isnan(l.item()));
         l.backward();
         CHECK(equal(logits.grad(), zeros({2, 3}, DType::F64)));
       }},
      {"cross_entropy with -Inf logits on other classes is finite",
       [] {
         const Tensor logits = tensor({0.0, -kInf, -kInf}, {1, 3}, DType::F64);
         CHECK(cross_entropy(Variable(logits), indices({0})).item() == 0.0);
       }},
      {"cross_entropy with a NaN logit is NaN", [] { CHECK(std::isnan(cross_entropy(Variable(tensor({kNaN, 0.0}, {1, 2})), indices({1})).item())); }},
      {"bce with huge logits is exact; with +-Inf it is NaN, as in PyTorch ((1 - y) x = 0 * Inf)",
       [] {
         const Variable x(tensor({1e300, -1e300}, DType::F64));
         CHECK(binary_cross_entropy_with_logits(x, tensor({1.0, 0.0}, DType::F64), Reduction::Sum).item() == 0.0);
         const Variable inf(tensor({kInf}, DType::F64));
         CHECK(std::isnan(binary_cross_entropy_with_logits(inf, tensor({1.0}, DType::F64)).item()));
       }},
      {"mse_loss with Inf input is Inf", [] { CHECK(mse_loss(Variable(full({2}, kInf)), zeros({2})).item() == kInf); }},
  });
}

// ---- nn/optim.h ----------------------------------------------------------------------------------

TEST_CASE("bad input: optimizers, schedules and clipping") {
  auto params = [] { return std::vector<Variable>{v32({2, 3}), v32({3})}; };
  check_all(std::vector<Throws>{
      {"SGD: negative lr", [&] { optim::SGD(params(), -1.0); }, "SGD"},
      {"SGD: NaN lr", [&] { optim::SGD(params(), kNaN); }, "SGD"},
      {"SGD: negative momentum", [&] { optim::SGD(params(), {.lr = 0.1, .momentum = -0.5}); }, "SGD"},
      {"SGD: negative weight_decay", [&] { optim::SGD(params(), {.lr = 0.1, .weight_decay = -1.0}); }, "SGD"},
      {"SGD: nesterov without momentum", [&] { optim::SGD(params(), {.lr = 0.1, .nesterov = true}); }, "SGD"},
      {"SGD: an undefined parameter", [] { optim::SGD({Variable()}, 0.1); }, "SGD"},
      {"SGD: a parameter twice", [] { Variable p = v32({2}); optim::SGD({p, p}, 0.1); }, "SGD"},
      {"SGD: an op output", [] { optim::SGD({v32({2}) * 2.0}, 0.1); }, "SGD"},
      {"SGD: a tensor without requires_grad", [] { optim::SGD({Variable(f32({2}))}, 0.1); }, "SGD"},
      {"Adam: beta1 = 1", [&] { optim::Adam(params(), {.beta1 = 1.0}); }, "Adam"},
      {"Adam: negative beta2", [&] { optim::Adam(params(), {.beta2 = -0.1}); }, "Adam"},
      {"Adam: NaN beta1", [&] { optim::Adam(params(), {.beta1 = kNaN}); }, "Adam"},
      {"Adam: negative eps", [&] { optim::Adam(params(), {.eps = -1e-8}); }, "Adam"},
      {"Adam: negative weight_decay", [&] { optim::Adam(params(), {.weight_decay = -0.1}); }, "Adam"},
      {"Adam: Inf lr", [&] { optim::Adam(params(), kInf); }, "Adam"},
      {"AdamW: beta2 = 1.5", [&] { optim::AdamW(params(), {.beta2 = 1.5}); }, "AdamW"},
      {"AdamW: negative weight_decay", [&] { optim::AdamW(params(), {.weight_decay = -0.1}); }, "AdamW"},
      {"RMSprop: negative alpha", [&] { optim::RMSprop(params(), {.alpha = -0.5}); }, "RMSprop"},
      {"RMSprop: negative momentum", [&] { optim::RMSprop(params(), {.momentum = -0.5}); }, "RMSprop"},
      {"RMSprop: negative eps", [&] { optim::RMSprop(params(), {.eps = -1.0}); }, "RMSprop"},
      {"Adagrad: negative lr_decay", [&] { optim::Adagrad(params(), {.lr_decay = -1.0}); }, "Adagrad"},
      {"Adagrad: negative initial_accumulator_value", [&] { optim::Adagrad(params(), {.initial_accumulator_value = -1.0}); }, "Adagrad"},
      {"Adagrad: negative eps", [&] { optim::Adagrad(params(), {.eps = -1.0}); }, "Adagrad"},
      {"set_lr negative", [&] { optim::SGD opt(params(), 0.1); opt.set_lr(-0.1); }, "SGD"},
      {"set_lr NaN", [&] { optim::Adam opt(params(), 0.1); opt.set_lr(kNaN); }, "Adam"},
      {"step with a gradient of the wrong dtype",
       [] {
         Variable p = v32({2});
         optim::SGD opt({p}, 0.1);
         p.set_grad(f64({2}));
         opt.step();
       },
       "SGD"},
      {"StepLR: step_size 0", [&] { optim::SGD opt(params(), 0.1); optim::StepLR s(opt, 0); }, "StepLR"},
      {"StepLR: negative step_size", [&] { optim::SGD opt(params(), 0.1); optim::StepLR s(opt, -3); }, "StepLR"},
      {"StepLR: NaN gamma", [&] { optim::SGD opt(params(), 0.1); optim::StepLR s(opt, 2, kNaN); }, "StepLR"},
      {"ExponentialLR: negative gamma", [&] { optim::SGD opt(params(), 0.1); optim::ExponentialLR s(opt, -0.5); }, "ExponentialLR"},
      {"CosineAnnealingLR: T_max 0", [&] { optim::SGD opt(params(), 0.1); optim::CosineAnnealingLR s(opt, 0); }, "CosineAnnealingLR"},
      {"CosineAnnealingLR: negative eta_min", [&] { optim::SGD opt(params(), 0.1); optim::CosineAnnealingLR s(opt, 5, -1.0); }, "CosineAnnealingLR"},
      {"clip_grad_norm: negative max_norm", [&] { clip_grad_norm(params(), -1.0); }, "clip_grad_norm"},
      {"clip_grad_norm: NaN max_norm", [&] { clip_grad_norm(params(), kNaN); }, "clip_grad_norm"},
      {"clip_grad_norm: norm_type 0", [&] { clip_grad_norm(params(), 1.0, 0.0); }, "clip_grad_norm"},
      {"clip_grad_norm: norm_type NaN", [&] { clip_grad_norm(params(), 1.0, kNaN); }, "clip_grad_norm"},
      {"clip_grad_norm: undefined parameter", [] { clip_grad_norm({Variable()}, 1.0); }, "clip_grad_norm"},
      {"load_state_dict: nothing", [&] { optim::Adam opt(params(), 0.1); opt.load_state_dict(StateDict{}); }, "Adam"},
      {"load_state_dict: NaN lr",
       [&] {
         optim::Adam opt(params(), 0.1);
         StateDict s;
         s.insert("param_groups.0.lr", scalar_tensor(kNaN, DType::F64));
         opt.load_state_dict(s);
       },
       "Adam"},
      {"load_state_dict: negative step",
       [&] {
         optim::SGD opt(params(), 0.1);
         StateDict s;
         s.insert("param_groups.0.lr", scalar_tensor(0.1, DType::F64));
         s.insert("state.0.step", scalar_tensor(-1.0, DType::I64));
         opt.load_state_dict(s);
       },
       "SGD"},
      {"load_state_dict: SGD state into Adam",
       [] {
         Variable p = v32({2});
         optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9});
         p.set_grad(ones({2}));
         sgd.step();
         optim::Adam adam({p}, 0.1);
         adam.load_state_dict(sgd.state_dict());
       },
       "Adam"},
      {"load_state_dict: state of a parameter beyond those given",
       [&] {
         optim::SGD opt(params(), 0.1);
         StateDict s;
         s.insert("param_groups.0.lr", scalar_tensor(0.1, DType::F64));
         s.insert("state.7.step", scalar_tensor(1.0, DType::I64));
         opt.load_state_dict(s);
       },
       "SGD"},
      {"clip_grad_value: negative", [&] { clip_grad_value(params(), -1.0); }, "clip_grad_value"},
      {"clip_grad_value: NaN", [&] { clip_grad_value(params(), kNaN); }, "clip_grad_value"},
  });
  check_all(std::vector<Defined>{
      {"an optimizer of no parameters steps and does nothing",
       [] {
         optim::Adam opt(std::vector<Variable>{}, 0.1);
         opt.step();
         CHECK(opt.params().empty());
       }},
      {"a parameter without a gradient is skipped",
       [] {
         Variable p = var(ones({2}));
         optim::Adam opt({p}, 0.1);
         opt.step();
         CHECK(equal(p.data(), ones({2})));
       }},
      {"an empty parameter steps",
       [] {
         Variable p = v32({0, 3});
         optim::Adam opt({p}, 0.1);
         p.set_grad(zeros({0, 3}));
         opt.step();
         CHECK(p.numel() == 0);
       }},
      {"clip_grad_norm with no gradients returns 0", [&] { CHECK(clip_grad_norm(params(), 1.0) == 0.0); }},
      {"clip_grad_norm of a NaN gradient returns NaN and poisons the gradients, as PyTorch",
       [] {
         Variable p = var(ones({2}));
         p.set_grad(tensor({kNaN, 1.0}));
         CHECK(std::isnan(clip_grad_norm({p}, 1.0)));
         CHECK(std::isnan(p.grad().to_vector()[1]));
       }},
      {"clip_grad_norm of an Inf gradient returns Inf",
       [] {
         Variable p = var(ones({2}));
         p.set_grad(tensor({kInf, 1.0}));
         CHECK(clip_grad_norm({p}, 1.0) == kInf);
       }},
      {"clip_grad_value clamps Inf, keeps NaN",
       [] {
         Variable p = var(ones({3}));
         p.set_grad(tensor({kInf, -kInf, kNaN}));
         clip_grad_value({p}, 2.0);
         CHECK(same_values(p.grad(), {2.0, -2.0, kNaN}));
       }},
      {"lr 0 leaves the parameters", [] {
         Variable p = var(ones({2}));
         optim::SGD opt({p}, 0.0);
         p.set_grad(ones({2}));
         opt.step();
         CHECK(equal(p.data(), ones({2})));
       }},
  });
}

// ---- nn/module.h and nn/checkpoint.h --------------------------------------------------------------

TEST_CASE("bad input: state dicts and checkpoints") {
  const std::string dir = tmp_path("bad_input");
  std::filesystem::create_directories(dir);
  check_all(std::vector<Throws>{
      {"StateDict: duplicate key", [] { StateDict s; s.insert("a", f32({1})); s.insert("a", f32({1})); }, "StateDict"},
      {"StateDict: at() of a missing key", [] { StateDict s; (void)s.at("x"); }, "StateDict"},
      {"load_state_dict: missing key", [] { Linear m(3, 2); StateDict s; s.insert("weight", f32({2, 3})); m.load_state_dict(s); }, "load_state_dict"},
      {"load_state_dict: shape mismatch", [] { Linear m(3, 2); StateDict s; s.insert("weight", f32({3, 2})); s.insert("bias", f32({2})); m.load_state_dict(s); }, "load_state_dict"},
      {"load_state_dict: shape mismatch, non-strict", [] { Linear m(3, 2); StateDict s; s.insert("weight", f32({3, 3})); m.load_state_dict(s, false); }, "load_state_dict"},
      {"load_state_dict: int64 value", [] { Linear m(3, 2); StateDict s; s.insert("weight", i64({2, 3})); s.insert("bias", f32({2})); m.load_state_dict(s); }, "load_state_dict"},
      {"load_state_dict: undefined value", [] { Linear m(3, 2); StateDict s; s.insert("weight", Tensor()); s.insert("bias", f32({2})); m.load_state_dict(s); }, "load_state_dict"},
      {"Module::to(int64)", [] { Linear m(3, 2); m.to(DType::I64); }, "Module::to"},
      {"load_safetensors: no such file", [dir] { load_safetensors(dir + "/missing.safetensors"); }, "missing.safetensors"},
      {"load_safetensors: a directory", [dir] { load_safetensors(dir); }, "load_safetensors"},
      {"load_safetensors: an empty file",
       [dir] {
         std::ofstream(dir + "/empty.safetensors").close();
         load_safetensors(dir + "/empty.safetensors");
       },
       "empty.safetensors"},
      {"parse_safetensors: 8 zero bytes", [] { const uint8_t z[8] = {}; parse_safetensors(z, "zeros"); }, "zeros"},
      {"parse_safetensors: an absurd header length",
       [] {
         uint8_t b[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
         parse_safetensors(b, "absurd");
       },
       "absurd"},
      {"save_safetensors: into a missing directory", [dir] { save_safetensors(dir + "/no/such/dir/x.safetensors", StateDict{}); }, "x.safetensors"},
      {"save_safetensors: metadata that is not UTF-8", [dir] { save_safetensors(dir + "/m.safetensors", StateDict{}, {{"k", "\xff"}}); }, "UTF-8"},
      {"save_safetensors: a tensor named __metadata__", [dir] { StateDict s; s.insert("__metadata__", f32({1})); save_safetensors(dir + "/m.safetensors", s); }, "__metadata__"},
      {"save_safetensors: an undefined tensor", [dir] { StateDict s; s.insert("a", Tensor()); save_safetensors(dir + "/u.safetensors", s); }, "save_safetensors"},
      {"load: a checkpoint of another model", [dir] {
         Linear a(3, 2);
         save(a, dir + "/linear.safetensors");
         Linear b(4, 2);
         load(b, dir + "/linear.safetensors");
       },
       "linear.safetensors"},
  });
  check_all(std::vector<Defined>{
      {"a state dict of empty and 0-D tensors round-trips",
       [dir] {
         StateDict s;
         s.insert("empty", zeros({0, 3}));
         s.insert("scalar", scalar_tensor(kNaN, DType::F64));
         s.insert("inf", full({2}, -kInf));
         s.insert("ids", indices({-1, kHuge}));
         save_safetensors(dir + "/odd.safetensors", s, {{"", ""}, {"k\n\"", "\xc3\xa9"}});
         const SafetensorsFile f = load_safetensors(dir + "/odd.safetensors");
         CHECK(f.tensors.at("empty").shape() == Shape({0, 3}));
         CHECK(std::isnan(f.tensors.at("scalar").item()));
         CHECK(f.tensors.at("inf").to_vector()[1] == -kInf);
         CHECK(f.tensors.at("ids").to_indices() == std::vector<int64_t>{-1, kHuge});
         CHECK(f.metadata.at("k\n\"") == "\xc3\xa9");
       }},
      {"load_state_dict converts float64 to float32",
       [] {
         Linear m(3, 2);
         StateDict s;
         s.insert("weight", ones({2, 3}, DType::F64));
         s.insert("bias", full({2}, kNaN, DType::F64));
         m.load_state_dict(s);
         CHECK(m.weight.dtype() == DType::F32);
         CHECK(std::isnan(m.bias.data().to_vector()[0]));
       }},
  });
}

// ---- nn/transformer.h --------------------------------------------------------------------------------

TEST_CASE("bad input: transformer blocks") {
  using Opt = TransformerEncoderLayerOptions;
  const Opt small{.d_model = 8, .nhead = 2, .dim_feedforward = 16, .dropout = 0.0};
  check_all(std::vector<Throws>{
      {"generate_square_subsequent_mask(0)", [] { generate_square_subsequent_mask(0); }, "generate_square_subsequent_mask"},
      {"generate_square_subsequent_mask(-3)", [] { generate_square_subsequent_mask(-3); }, "generate_square_subsequent_mask"},
      {"generate_square_subsequent_mask int64", [] { generate_square_subsequent_mask(3, DType::I64); }, "generate_square_subsequent_mask"},
      {"MultiheadAttention(0, 1)", [] { MultiheadAttention(0, 1); }, "MultiheadAttention"},
      {"MultiheadAttention(8, 0)", [] { MultiheadAttention(8, 0); }, "MultiheadAttention"},
      {"MultiheadAttention(8, -2)", [] { MultiheadAttention(8, -2); }, "MultiheadAttention"},
      {"MultiheadAttention(8, 3): not divisible", [] { MultiheadAttention(8, 3); }, "MultiheadAttention"},
      {"MultiheadAttention dropout 2", [] { MultiheadAttention(8, 2, 2.0); }, "MultiheadAttention"},
      {"MultiheadAttention dropout NaN", [] { MultiheadAttention(8, 2, kNaN); }, "MultiheadAttention"},
      {"mha: 2-D query", [] { MultiheadAttention m(8, 2); m.forward(v32({3, 8}), v32({3, 8}), v32({3, 8})); }, "MultiheadAttention"},
      {"mha: features differ", [] { MultiheadAttention m(8, 2); m.forward(v32({3, 2, 6}), v32({3, 2, 8}), v32({3, 2, 8})); }, "MultiheadAttention"},
      {"mha: key and value differ", [] { MultiheadAttention m(8, 2); m.forward(v32({3, 2, 8}), v32({4, 2, 8}), v32({5, 2, 8})); }, "MultiheadAttention"},
      {"mha: batch differs", [] { MultiheadAttention m(8, 2); m.forward(v32({3, 2, 8}), v32({4, 3, 8}), v32({4, 3, 8})); }, "MultiheadAttention"},
      {"mha: zero steps", [] { MultiheadAttention m(8, 2); m.forward(v32({0, 2, 8}), v32({4, 2, 8}), v32({4, 2, 8})); }, "MultiheadAttention"},
      {"mha: zero keys", [] { MultiheadAttention m(8, 2); m.forward(v32({3, 2, 8}), v32({0, 2, 8}), v32({0, 2, 8})); }, "MultiheadAttention"},
      {"mha: batch of 0", [] { MultiheadAttention m(8, 2); m.forward(v32({3, 0, 8}), v32({4, 0, 8}), v32({4, 0, 8})); }, "MultiheadAttention"},
      {"mha: float64 input", [] { MultiheadAttention m(8, 2); m.forward(v64({3, 2, 8}), v64({3, 2, 8}), v64({3, 2, 8})); }, "MultiheadAttention"},
      {"mha: int64 input", [] { MultiheadAttention m(8, 2); Variable x(i64({3, 2, 8})); m.forward(x, x, x); }, "MultiheadAttention"},
      {"mha: undefined key", [] { MultiheadAttention m(8, 2); m.forward(v32({3, 2, 8}), Variable(), v32({3, 2, 8})); }, "MultiheadAttention"},
      {"mha: key_padding_mask shape", [] { MultiheadAttention m(8, 2); Variable x = v32({3, 2, 8}); m.forward(x, x, x, ones({2, 4})); }, "MultiheadAttention"},
      {"mha: attn_mask shape", [] { MultiheadAttention m(8, 2); Variable x = v32({3, 2, 8}); m.forward(x, x, x, {}, zeros({3, 4})); }, "MultiheadAttention"},
      {"mha: attn_mask with NaN", [] { MultiheadAttention m(8, 2); Variable x = v32({3, 2, 8}); m.forward(x, x, x, {}, full({3, 3}, NAN)); }, "MultiheadAttention"},
      {"mha: attn_mask with +Inf", [] { MultiheadAttention m(8, 2); Variable x = v32({3, 2, 8}); m.forward(x, x, x, {}, full({3, 3}, INFINITY)); }, "MultiheadAttention"},
      {"sinusoidal table T = 0", [] { sinusoidal_positional_encoding(0, 4); }, "sinusoidal_positional_encoding"},
      {"sinusoidal table E = -1", [] { sinusoidal_positional_encoding(4, -1); }, "sinusoidal_positional_encoding"},
      {"sinusoidal table int64", [] { sinusoidal_positional_encoding(4, 4, DType::I64); }, "sinusoidal_positional_encoding"},
      {"SinusoidalPositionalEncoding(0)", [] { SinusoidalPositionalEncoding(0); }, "SinusoidalPositionalEncoding"},
      {"SinusoidalPositionalEncoding: longer than max_len", [] { SinusoidalPositionalEncoding pe(4, 3); pe.forward(v32({4, 1, 4})); }, "SinusoidalPositionalEncoding"},
      {"SinusoidalPositionalEncoding: features differ", [] { SinusoidalPositionalEncoding pe(4, 8); pe.forward(v32({4, 1, 5})); }, "SinusoidalPositionalEncoding"},
      {"LearnedPositionalEncoding(4, 0)", [] { LearnedPositionalEncoding(4, 0); }, "LearnedPositionalEncoding"},
      {"LearnedPositionalEncoding: float64 input", [] { LearnedPositionalEncoding pe(4, 8); pe.forward(v64({2, 1, 4})); }, "LearnedPositionalEncoding"},
      {"LearnedPositionalEncoding: 2-D input", [] { LearnedPositionalEncoding pe(4, 8); pe.forward(v32({2, 4})); }, "LearnedPositionalEncoding"},
      {"TransformerEncoderLayer d_model 0", [] { TransformerEncoderLayer l(Opt{.d_model = 0, .nhead = 1}); }, "TransformerEncoderLayer"},
      {"TransformerEncoderLayer nhead not dividing", [] { TransformerEncoderLayer l(Opt{.d_model = 8, .nhead = 3}); }, "TransformerEncoderLayer"},
      {"TransformerEncoderLayer feed-forward -1", [] { TransformerEncoderLayer l(Opt{.d_model = 8, .nhead = 2, .dim_feedforward = -1}); }, "TransformerEncoderLayer"},
      {"TransformerEncoderLayer dropout 1.5", [] { TransformerEncoderLayer l(Opt{.d_model = 8, .nhead = 2, .dropout = 1.5}); }, "TransformerEncoderLayer"},
      {"TransformerEncoderLayer: features differ", [small] { TransformerEncoderLayer l(small); l.forward(v32({3, 2, 6})); }, "TransformerEncoderLayer"},
      {"TransformerEncoderLayer: 2-D input", [small] { TransformerEncoderLayer l(small); l.forward(v32({3, 8})); }, "TransformerEncoderLayer"},
      {"TransformerEncoder 0 layers", [small] { TransformerEncoder e(small, 0); }, "TransformerEncoder"},
      {"TransformerLM vocab 0", [] { TransformerLM lm({.vocab_size = 0}); }, "TransformerLM"},
      {"TransformerLM: float tokens", [] { TransformerLM lm({.vocab_size = 5, .d_model = 8, .nhead = 2, .num_layers = 1, .dim_feedforward = 8, .max_len = 4}); lm.forward(f32({1, 3})); }, "TransformerLM"},
      {"TransformerLM: token out of range", [] { TransformerLM lm({.vocab_size = 5, .d_model = 8, .nhead = 2, .num_layers = 1, .dim_feedforward = 8, .max_len = 4}); lm.forward(indices({0, 5}, {1, 2})); }, "TransformerLM"},
      {"TransformerLM: negative token", [] { TransformerLM lm({.vocab_size = 5, .d_model = 8, .nhead = 2, .num_layers = 1, .dim_feedforward = 8, .max_len = 4}); lm.forward(indices({-1}, {1, 1})); }, "TransformerLM"},
      {"TransformerLM: longer than max_len", [] { TransformerLM lm({.vocab_size = 5, .d_model = 8, .nhead = 2, .num_layers = 1, .dim_feedforward = 8, .max_len = 4}); lm.forward(i64({1, 5})); }, "TransformerLM"},
      {"TransformerLM: zero steps", [] { TransformerLM lm({.vocab_size = 5, .d_model = 8, .nhead = 2, .num_layers = 1, .dim_feedforward = 8, .max_len = 4}); lm.forward(i64({1, 0})); }, "TransformerLM"},
      {"TransformerLM: batch of 0", [] { TransformerLM lm({.vocab_size = 5, .d_model = 8, .nhead = 2, .num_layers = 1, .dim_feedforward = 8, .max_len = 4}); lm.forward(i64({0, 2})); }, "TransformerLM"},
  });
  check_all(std::vector<Defined>{
      {"a fully padded sequence gives out_proj.bias, not NaN (documented)",
       [] {
         MultiheadAttention m(8, 2);
         Variable x = v32({3, 2, 8});
         Tensor pad = zeros({2, 3}, DType::I64);
         for (int k = 0; k < 3; ++k) pad.data<int64_t>()[k] = 1;  // batch 0: every key ignored
         const MultiheadAttentionOutput o = m.forward(x, x, x, pad);
         for (double v : o.output.data().to_vector()) CHECK(std::isfinite(v));
       }},
      {"a causal mask of T = 1 is one zero", [] { CHECK(generate_square_subsequent_mask(1).to_vector() == std::vector<double>{0.0}); }},
  });
}

TEST_CASE("bad input: convolution, pooling, padding and their layers") {
  check_all(std::vector<Throws>{
      {"conv1d 2-D input", [] { conv1d(v32({3, 10}), v32({2, 3, 3})); }, "conv1d"},
      {"conv1d 4-D weight", [] { conv1d(v32({1, 3, 10}), v32({2, 3, 1, 3})); }, "conv1d"},
      {"conv1d channels differ", [] { conv1d(v32({1, 4, 10}), v32({2, 3, 3})); }, "conv1d: input [1,4,10] has 4 channels"},
      {"conv1d groups do not divide", [] { conv1d(v32({1, 4, 10}), v32({3, 2, 3}), Variable(), 1, 0, 1, 2); }, "divisible by groups"},
      {"conv1d groups 0", [] { conv1d(v32({1, 4, 10}), v32({4, 4, 3}), Variable(), 1, 0, 1, 0); }, "conv1d: groups"},
      {"conv1d stride 0", [] { conv1d(v32({1, 3, 10}), v32({2, 3, 3}), Variable(), 0); }, "conv1d: stride"},
      {"conv1d negative padding", [] { conv1d(v32({1, 3, 10}), v32({2, 3, 3}), Variable(), 1, -1); }, "conv1d: padding"},
      {"conv1d dilation 0", [] { conv1d(v32({1, 3, 10}), v32({2, 3, 3}), Variable(), 1, 0, 0); }, "conv1d: dilation"},
      {"conv1d input shorter than the kernel", [] { conv1d(v32({1, 3, 2}), v32({2, 3, 3})); }, "conv1d: input [1,3,2] is too small"},
      {"conv1d dilated kernel too long", [] { conv1d(v32({1, 3, 6}), v32({2, 3, 3}), Variable(), 1, 0, 3); }, "too small"},
      {"conv1d bias wrong size", [] { conv1d(v32({1, 3, 6}), v32({2, 3, 3}), v32({3})); }, "conv1d: bias"},
      {"conv1d float64 weight, float32 input", [] { conv1d(v32({1, 3, 6}), v64({2, 3, 3})); }, "conv1d"},
      {"conv1d int64 input", [] { conv1d(var(i64({1, 3, 6})), var(i64({2, 3, 3}))); }, "conv1d"},
      {"conv1d undefined input", [] { conv1d(Variable(), v32({2, 3, 3})); }, "conv1d"},
      {"conv2d 3-D input", [] { conv2d(v32({3, 5, 5}), v32({2, 3, 3, 3})); }, "conv2d: input [3,5,5] must be 4-D"},
      {"conv2d weight 3-D", [] { conv2d(v32({1, 3, 5, 5}), v32({2, 3, 3})); }, "conv2d: weight"},
      {"conv2d weight channels", [] { conv2d(v32({1, 3, 5, 5}), v32({2, 2, 3, 3})); }, "conv2d"},
      {"conv2d too small with stride 3 (a negative span floors, not truncates)", [] { conv2d(v32({1, 1, 2, 5}), v32({1, 1, 3, 3}), Variable(), 3); }, "too small"},
      {"conv2d too small", [] { conv2d(v32({1, 3, 2, 5}), v32({2, 3, 3, 3})); }, "conv2d: input [1,3,2,5] is too small"},
      {"conv2d stride (1, 0)", [] { conv2d(v32({1, 3, 5, 5}), v32({2, 3, 3, 3}), Variable(), {1, 0}); }, "conv2d: stride"},
      {"conv2d empty kernel", [] { conv2d(v32({1, 3, 5, 5}), v32({2, 3, 0, 3})); }, "conv2d"},
      {"max_pool2d 3-D", [] { max_pool2d(v32({3, 4, 4}), 2); }, "max_pool2d"},
      {"max_pool2d kernel 0", [] { max_pool2d(v32({1, 1, 4, 4}), 0); }, "max_pool2d: kernel_size"},
      {"max_pool2d padding over half the kernel", [] { max_pool2d(v32({1, 1, 4, 4}), 2, 2, 2); }, "max_pool2d: padding"},
      {"max_pool2d kernel larger than input", [] { max_pool2d(v32({1, 1, 2, 2}), 3); }, "max_pool2d: input [1,1,2,2] is too small"},
      {"max_pool1d 4-D", [] { max_pool1d(v32({1, 1, 4, 4}), 2); }, "max_pool1d"},
      {"max_pool1d negative stride", [] { max_pool1d(v32({1, 1, 4}), 2, -1); }, "max_pool1d: stride"},
      {"avg_pool1d kernel too long", [] { avg_pool1d(v32({1, 2, 3}), 4); }, "avg_pool1d: input [1,2,3] is too small for kernel 4"},
      {"avg_pool2d int64", [] { avg_pool2d(var(i64({1, 1, 4, 4})), 2); }, "avg_pool2d"},
      {"adaptive_avg_pool2d output 0", [] { adaptive_avg_pool2d(v32({1, 1, 4, 4}), 0); }, "adaptive_avg_pool2d"},
      {"adaptive_avg_pool1d empty time axis", [] { adaptive_avg_pool1d(v32({1, 2, 0}), 1); }, "adaptive_avg_pool1d"},
      {"pad odd count", [] { pad(v32({2, 3}), {1, 2, 3}); }, "pad: pads must come in"},
      {"pad negative", [] { pad(v32({2, 3}), {-1, 0}); }, "pad: pads must be >= 0"},
      {"pad more pairs than dims", [] { pad(v32({3}), {1, 1, 1, 1}); }, "pad"},
      {"Conv1d in 0", [] { Conv1d c(0, 2, 3); }, "Conv1d"},
      {"Conv1d kernel 0", [] { Conv1d c(2, 2, 0); }, "Conv1d: kernel_size"},
      {"Conv2d groups do not divide", [] { Conv2d c(3, 4, 3, {.groups = 2}); }, "Conv2d"},
      {"Conv2d wrong channels at forward", [] { Conv2d c(3, 4, 3); c(v32({1, 2, 5, 5})); }, "conv2d"},
      {"Flatten start after end", [] { Flatten(2, 1)(v32({2, 3, 4})); }, "Flatten"},
      {"Flatten axis out of range", [] { Flatten(5)(v32({2, 3})); }, "Flatten"},
      {"TCN no levels", [] { TCN t(2, {}); }, "TCN"},
      {"TCN wrong input channels", [] { TCN t(2, {3}); t(v32({1, 3, 5})); }, "TCN: input [1,3,5] must be [B, 2, T]"},
      {"TCN 2-D input", [] { TCN t(2, {3}); t(v32({2, 5})); }, "TCN"},
      {"TCN kernel 0", [] { TCN t(2, {3}, {.kernel_size = 0}); }, "TCN"},
  });
  check_all(std::vector<Defined>{
      {"conv2d of a batch of 0 is an empty batch", [] { CHECK(conv2d(f32({0, 3, 5, 5}), f32({2, 3, 3, 3}), Tensor(), {}).shape() == Shape({0, 2, 3, 3})); }},
      {"conv1d with 0 input channels is the bias", [] {
         const Tensor y = conv1d(zeros({1, 0, 4}), zeros({2, 0, 3}), ones({2}));
         CHECK(y.to_vector() == std::vector<double>{1, 1, 1, 1});
       }},
      {"conv1d propagates NaN and Inf", [] {
         Tensor x = ones({1, 1, 4});
         x.data<float>()[1] = static_cast<float>(kNaN);
         x.data<float>()[3] = static_cast<float>(kInf);
         const auto y = conv1d(x, ones({1, 1, 2}), Tensor()).to_vector();  // [1+nan, nan+1, 1+inf]
         CHECK((std::isnan(y[0]) && std::isnan(y[1]) && std::isinf(y[2])));
       }},
      {"pad of an empty tensor", [] { CHECK(pad(zeros({0, 2}), std::vector<int64_t>{1, 1}).shape() == Shape({0, 4})); }},
  });
}

TEST_CASE("bad input: the number of cases tried") {
  MESSAGE("bad-input matrix: ", g_cases, " cases tried");
  CHECK(g_cases > 400);
}
