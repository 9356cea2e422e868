// Numeric kernels: elementwise ops with broadcasting, in-place updates, matmul, reductions,
// softmax, where/masked_fill and the comparison helpers.
//
// Every op validates its arguments, dispatches ONCE on the dtype to a template kernel over
// the element type (float or double; int64 only where noted), and runs plain loops that
// the compiler can vectorise. No allocation other than the output tensor.
#include "core/gemm.h"
#include "core/simd.h"
#include "core/dispatch.h"
#include "core/tensor.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace unroll {
namespace {

using detail::check_defined;
using detail::dispatch_any;
using detail::dispatch_float;

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  UNROLL_CHECK(a.dtype() == b.dtype(), "{}: dtypes {} and {} differ (shapes {} and {})", op, a.dtype(), b.dtype(),
               a.shape(), b.shape());
}

// Note [broadcast plan]
// An elementwise loop over an iteration shape with N operands, each with its own element
// strides (0 on broadcast dimensions). Size-1 dimensions are dropped and adjacent
// dimensions merged when every operand is contiguous across them, so [B,H] + [H] becomes a
// 2-D loop and same-layout operands a 1-D loop. The innermost dimension is the inner loop;
// kernels specialise it on the operands' inner strides (0 or 1) so it vectorises.
template <int N>
struct Plan {
  int nd = 0;
  int64_t size[kMaxDims];
  int64_t st[N][kMaxDims];
  int64_t inner(int k) const { return st[k][nd - 1]; }
};

/// Element strides of shape `s` broadcast (right-aligned) to the iteration shape `it`.
void broadcast_strides(const Shape& s, const Shape& it, int64_t* st) {
  const int nd = it.ndim(), off = nd - s.ndim();
  int64_t stride = 1;
  for (int d = nd - 1; d >= 0; --d) {
    if (d < off) {
      st[d] = 0;
      continue;
    }
    const int64_t n = s[d - off];
    st[d] = (n == 1) ? 0 : stride;
    stride *= n;
  }
}

template <int N>
Plan<N> make_plan(const Shape& it, const Shape* const (&shapes)[N]) {
  int64_t st[N][kMaxDims];
  for (int k = 0; k < N; ++k) broadcast_strides(*shapes[k], it, st[k]);
  Plan<N> p;
  for (int d = 0; d < it.ndim(); ++d) {
    if (it[d] == 1) continue;
    bool merge = p.nd > 0;
    for (int k = 0; k < N && merge; ++k) merge = p.st[k][p.nd - 1] == st[k][d] * it[d];
    if (merge) {
      p.size[p.nd - 1] *= it[d];
      for (int k = 0; k < N; ++k) p.st[k][p.nd - 1] = st[k][d];
    } else {
      p.size[p.nd] = it[d];
      for (int k = 0; k < N; ++k) p.st[k][p.nd] = st[k][d];
      ++p.nd;
    }
  }
  if (p.nd == 0) {  // one element
    p.nd = 1;
    p.size[0] = 1;
    for (int k = 0; k < N; ++k) p.st[k][0] = 0;
  }
  return p;
}

/// Calls row(off, n) for every innermost row: off[k] is operand k's element offset.
template <int N, typename Row>
void run_plan(const Plan<N>& p, Row&& row) {
  const int last = p.nd - 1;
  const int64_t n = p.size[last];
  int64_t outer = 1;
  for (int d = 0; d < last; ++d) outer *= p.size[d];
  int64_t idx[kMaxDims] = {};
  int64_t off[N] = {};
  for (int64_t r = 0; r < outer; ++r) {
    row(static_cast<const int64_t*>(off), n);
    for (int d = last - 1; d >= 0; --d) {
      for (int k = 0; k < N; ++k) off[k] += p.st[k][d];
      if (++idx[d] < p.size[d]) break;
      for (int k = 0; k < N; ++k) off[k] -= p.st[k][d] * p.size[d];
      idx[d] = 0;
    }
  }
}

/// True when `s` without its leading 1s equals the trailing dimensions of `out`.
bool is_trailing(const Shape& s, const Shape& out) {
  int first = 0;
  while (first < s.ndim() && s[first] == 1) ++first;
  const int k = s.ndim() - first;
  if (k > out.ndim()) return false;
  for (int i = 0; i < k; ++i)
    if (s[first + i] != out[out.ndim() - k + i]) return false;
  return true;
}

// Note [vectorisable loops]
// GCC's -O2 cost model only vectorises a loop whose trip count is a known multiple of the
// vector width and that needs no run-time alias check. So the hot loops below run over
// blocks of kBlock elements through __restrict pointers, then finish with a scalar tail.
// Outputs are fresh tensors, so they never alias the inputs.
constexpr int64_t kBlock = 16;

/// o[i] = f(a[i])
template <typename R, typename T, typename F>
void map1(R* __restrict o, const T* __restrict a, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock)
    for (int64_t k = 0; k < kBlock; ++k) o[i + k] = f(a[i + k]);
  for (; i < n; ++i) o[i] = f(a[i]);
}

/// o[i] = f(a[i], b[i])
template <typename R, typename T, typename F>
void map2(R* __restrict o, const T* __restrict a, const T* __restrict b, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock)
    for (int64_t k = 0; k < kBlock; ++k) o[i + k] = f(a[i + k], b[i + k]);
  for (; i < n; ++i) o[i] = f(a[i], b[i]);
}

/// o[i] = f(o[i], a[i]): accumulation into a distinct buffer
template <typename T, typename F>
void update(T* __restrict o, const T* __restrict a, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock)
    for (int64_t k = 0; k < kBlock; ++k) o[i + k] = f(o[i + k], a[i + k]);
  for (; i < n; ++i) o[i] = f(o[i], a[i]);
}

/// o = f(a, b) with broadcasting; see the fast paths below.
template <typename T, typename R, typename F>
void binary_kernel(const T* pa, const Shape& as, const T* pb, const Shape& bs, R* po, const Shape& os, F f) {
  const int64_t n = os.numel(), na = as.numel(), nb = bs.numel();
  if (n == 0) return;
  if (na == n && nb == n) {  // same layout (shapes differ at most by 1s)
    map2(po, pa, pb, n, f);
  } else if (nb == 1 && na == n) {
    const T s = pb[0];
    map1(po, pa, n, [&](T x) { return f(x, s); });
  } else if (na == 1 && nb == n) {
    const T s = pa[0];
    map1(po, pb, n, [&](T y) { return f(s, y); });
  } else if (na == n && is_trailing(bs, os)) {  // [B,H] op [H]
    for (int64_t o = 0; o < n; o += nb) map2(po + o, pa + o, pb, nb, f);
  } else if (nb == n && is_trailing(as, os)) {  // [H] op [B,H]
    for (int64_t o = 0; o < n; o += na) map2(po + o, pa, pb + o, na, f);
  } else {
    const Shape* shapes[3] = {&os, &as, &bs};
    const Plan<3> p = make_plan(os, shapes);
    const int64_t sa = p.inner(1), sb = p.inner(2);
    run_plan(p, [&](const int64_t* off, int64_t m) {
      R* o = po + off[0];
      const T* x = pa + off[1];
      const T* y = pb + off[2];
      if (sa == 1 && sb == 1) {
        map2(o, x, y, m, f);
      } else if (sa == 1) {
        const T v = *y;
        map1(o, x, m, [&](T u) { return f(u, v); });
      } else if (sb == 1) {
        const T v = *x;
        map1(o, y, m, [&](T u) { return f(v, u); });
      } else {
        const R v = f(*x, *y);
        for (int64_t i = 0; i < m; ++i) o[i] = v;
      }
    });
  }
}

/// A bool operand of arithmetic with a floating one becomes 0/1 in its dtype (torch's type
/// promotion: mask * x is x where the mask is true, 0 elsewhere).
Tensor promote_bool(const Tensor& t, const Tensor& other) {
  return t.dtype() == DType::Bool && other.is_floating() ? t.to(other.dtype()) : t;
}

template <typename F>
Tensor binary(const char* op, const Tensor& a0, const Tensor& b0, F f) {
  check_defined(op, a0);
  check_defined(op, b0);
  const Tensor a = promote_bool(a0, b0), b = promote_bool(b0, a0);
  check_same_dtype(op, a, b);
  Tensor out;
  dispatch_float(op, a.dtype(), [&]<typename T>() {
    const Shape os = a.shape() == b.shape() ? a.shape() : broadcast_shapes(op, a.shape(), b.shape());
    out = Tensor::empty(os, a.dtype());
    binary_kernel(a.data<T>(), a.shape(), b.data<T>(), b.shape(), out.data<T>(), os, f);
  });
  return out;
}

/// Comparisons (and the logical ops) accept every dtype of equal operands and give a Bool
/// tensor.
template <typename F>
Tensor compare(const char* op, const Tensor& a, const Tensor& b, F f) {
  check_defined(op, a);
  check_defined(op, b);
  check_same_dtype(op, a, b);
  const Shape os = a.shape() == b.shape() ? a.shape() : broadcast_shapes(op, a.shape(), b.shape());
  Tensor out = Tensor::empty(os, DType::Bool);
  dispatch_any(a.dtype(), [&]<typename T>() {
    binary_kernel(a.data<T>(), a.shape(), b.data<T>(), b.shape(), out.data<bool>(), os,
                  [f](T x, T y) -> bool { return f(x, y); });
  });
  return out;
}

Tensor require_bool(const char* op, const Tensor& t) {
  check_defined(op, t);
  UNROLL_CHECK(t.dtype() == DType::Bool, "{}: expected a bool tensor, got {} of shape {} (compare it, e.g. ne(t, 0), "
               "or convert it with .to(DType::Bool))", op, t.dtype(), t.shape());
  return t;
}

template <typename F>
Tensor unary(const char* op, const Tensor& x, F f) {
  check_defined(op, x);
  Tensor out;
  dispatch_float(op, x.dtype(), [&]<typename T>() {
    out = Tensor::empty(x.shape(), x.dtype());
    map1(out.data<T>(), x.data<T>(), x.numel(), f);
  });
  return out;
}

/// Sum of n contiguous elements with 8 independent accumulators (vectorisable, and a
/// little more accurate than one running sum).
template <typename T>
T sum_contig(const T* p, int64_t n) {
  T acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += p[i + k];
  T s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += p[i];
  return s;
}

// Note [fast float transcendentals]
// glibc's float tanh costs ~50 ns per element and nothing of libm vectorises, so float
// tanh/sigmoid (every gate of every recurrent cell) use the branch-free formulas below,
// which the compiler vectorises; kernels are cloned for AVX-512, AVX2 and baseline x86-64
// and picked at load time. They use only IEEE add/mul/div (no FMA contraction in ISO C++
// mode), so every clone gives the same bits. Accuracy: a few ulp (tests/test_fused.cpp
// checks against double precision). Double precision keeps libm.
//   exp(y) = 2^n * p(r), n = round(y / ln 2), r = y - n ln 2 (two-part ln 2), p the
//            degree-7 Taylor polynomial (|r| <= ln2/2: truncation error < 6e-9).
//   tanh(x) = odd Taylor series through x^17 for |x| < 0.5; else sign(x) (1 - 2 / (e^{2|x|} + 1))
//            with |x| clamped to 10 (tanh(x) rounds to 1 in float from x = 9.02 on).
//   sigmoid(x) = 1 / (1 + e^{-|x|}) for x >= 0, e^{-|x|} / (1 + e^{-|x|}) for x < 0, with
//            e^{-|x|} = 0 past |x| = 87.3 (the result is then below FLT_MIN or exactly 1).
// NaN in gives NaN out; +-inf gives +-1 (tanh) and 1 or 0 (sigmoid).

/// e^y for y in [-87.3, 88.3] (no range checks).
inline float exp_core(float y) {
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693145751953125f, kLn2Lo = 1.42860682030941723212e-6f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (y * kLog2e + kRound) - kRound;
  const float r = (y - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const auto bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

inline float tanh_fast(float x) {
  const float a = std::fabs(x);
  const float x2 = x * x;
  float q = 0.000590027440945586f;
  q = q * x2 - 0.0014558343870513183f;
  q = q * x2 + 0.003592128036572481f;
  q = q * x2 - 0.008863235529902197f;
  q = q * x2 + 0.021869488536155203f;
  q = q * x2 - 0.05396825396825397f;
  q = q * x2 + 0.13333333333333333f;
  q = q * x2 - 0.3333333333333333f;
  const float small = x + x * x2 * q;
  const float ac = a < 10.0f ? a : 10.0f;  // NaN -> 10 (replaced below)
  const float e = exp_core(2.0f * ac);
  const float big = 1.0f - 2.0f / (e + 1.0f);
  const float r = a < 0.5f ? small : (x < 0.0f ? -big : big);
  return x != x ? x : r;
}

inline float sigmoid_fast(float x) {
  const float na = -std::fabs(x);
  const float y = na > -87.3f ? na : -87.3f;  // NaN -> -87.3 (replaced below)
  const float e = na >= -87.3f ? exp_core(y) : 0.0f;
  const float s = 1.0f / (1.0f + e);
  const float r = x >= 0.0f ? s : e * s;
  return x != x ? x : r;
}


UNROLL_CLONES void tanh_f32(float* __restrict o, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = tanh_fast(x[i]);
}
UNROLL_CLONES void sigmoid_f32(float* __restrict o, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = sigmoid_fast(x[i]);
}
/// o[i] = e^(x[i] - m) for x[i] <= m (softmax rows): 0 below m - 87.3 (and for -inf).
UNROLL_CLONES void exp_shifted_f32(float* __restrict o, const float* __restrict x, float m, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float y = x[i] - m;
    const float yc = y > -87.3f ? y : -87.3f;  // NaN -> -87.3 (replaced below)
    const float e = exp_core(yc);
    o[i] = y != y ? y : (y >= -87.3f ? e : 0.0f);
  }
}
/// o[i] = g[i] - e^(y[i]) * s (log_softmax backward; y are log-probabilities, <= 0):
/// e^y is 0 below -87.3 (and for -inf), like exp_shifted_f32, and inf above 88; NaN in y
/// gives NaN.
UNROLL_CLONES void log_softmax_grad_f32(float* __restrict o, const float* __restrict g, const float* __restrict y,
                                        float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = y[i];
    const float lo = v > -87.3f ? v : -87.3f;  // NaN -> -87.3 (replaced below)
    const float e = exp_core(lo < 88.0f ? lo : 88.0f);
    const float ev = v >= -87.3f ? (v <= 88.0f ? e : HUGE_VALF) : 0.0f;
    o[i] = g[i] - (v != v ? v : ev) * s;
  }
}
/// The maximum of n >= 1 floats, NaN if any is NaN (16 interleaved partial maxima; the
/// maximum does not depend on the order, so every clone gives the same value).
UNROLL_CLONES float max_f32(const float* __restrict x, int64_t n) {
  float part[16];
  for (int j = 0; j < 16; ++j) part[j] = x[0];
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) {
      const float v = x[i + j];
      part[j] = (v > part[j] || v != v) ? v : part[j];
    }
  float m = x[0];
  for (; i < n; ++i) m = (x[i] > m || x[i] != x[i]) ? x[i] : m;
  for (int j = 0; j < 16; ++j) m = (part[j] > m || part[j] != part[j]) ? part[j] : m;
  return m;
}
/// Sum of n floats in 16 interleaved partial sums (vectorisable; a fixed order, so the
/// same bits on every clone).
UNROLL_CLONES float sum_f32(const float* __restrict x, int64_t n) {
  float part[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) part[j] += x[i + j];
  float total = 0.0f;
  for (; i < n; ++i) total += x[i];
  for (int j = 0; j < 16; ++j) total += part[j];
  return total;
}

/// Unary op whose float32 path is a raw-pointer kernel (Note [fast float transcendentals]).
template <typename F>
Tensor unary_fast(const char* op, const Tensor& x, void (*f32)(float*, const float*, int64_t), F f64) {
  check_defined(op, x);
  if (x.dtype() == DType::F32) {
    Tensor out = Tensor::empty(x.shape(), x.dtype());
    f32(out.data<float>(), x.data<float>(), x.numel());
    return out;
  }
  return unary(op, x, f64);
}

}  // namespace

// ---- elementwise ----------------------------------------------------------------------

Tensor neg(const Tensor& x) { return unary("neg", x, [](auto v) { return -v; }); }
Tensor exp(const Tensor& x) { return unary("exp", x, [](auto v) { return std::exp(v); }); }
Tensor log(const Tensor& x) { return unary("log", x, [](auto v) { return std::log(v); }); }
Tensor tanh(const Tensor& x) { return unary_fast("tanh", x, &tanh_f32, [](auto v) { return std::tanh(v); }); }
// sigmoid(x) = 1 / (1 + e^-x); e^-x overflows to inf for very negative x, giving 0.
Tensor sigmoid(const Tensor& x) {
  return unary_fast("sigmoid", x, &sigmoid_f32, [](auto v) {
    using T = decltype(v);
    return T(1) / (T(1) + std::exp(-v));
  });
}

// dx = dy * (1 - y^2), one pass (same operation order as dy * (1 - y * y)).
Tensor tanh_backward(const Tensor& dy, const Tensor& y) {
  check_defined("tanh_backward", dy);
  check_defined("tanh_backward", y);
  UNROLL_CHECK(dy.shape() == y.shape(), "tanh_backward: gradient {} and output {} differ in shape", dy.shape(),
               y.shape());
  return binary("tanh_backward", dy, y, [](auto g, auto v) { return g * (decltype(v)(1) - v * v); });
}

// dx = dy * y * (1 - y), one pass (same operation order as dy * y * (1 - y)).
Tensor sigmoid_backward(const Tensor& dy, const Tensor& y) {
  check_defined("sigmoid_backward", dy);
  check_defined("sigmoid_backward", y);
  UNROLL_CHECK(dy.shape() == y.shape(), "sigmoid_backward: gradient {} and output {} differ in shape", dy.shape(),
               y.shape());
  return binary("sigmoid_backward", dy, y, [](auto g, auto v) { return g * v * (decltype(v)(1) - v); });
}
// relu keeps NaN (like PyTorch): v < 0 is false for NaN.
Tensor relu(const Tensor& x) {
  return unary("relu", x, [](auto v) { return v < decltype(v)(0) ? decltype(v)(0) : v; });
}
Tensor sqrt(const Tensor& x) { return unary("sqrt", x, [](auto v) { return std::sqrt(v); }); }
Tensor abs(const Tensor& x) { return unary("abs", x, [](auto v) { return std::abs(v); }); }
Tensor sign(const Tensor& x) {
  return unary("sign", x, [](auto v) {
    using T = decltype(v);
    return static_cast<T>((T(0) < v) - (v < T(0)));
  });
}
Tensor pow(const Tensor& x, double p) {
  if (p == 2.0) return unary("pow", x, [](auto v) { return v * v; });
  if (p == 1.0) return unary("pow", x, [](auto v) { return v; });
  if (p == 0.5) return unary("pow", x, [](auto v) { return std::sqrt(v); });
  return unary("pow", x, [p](auto v) {
    using T = decltype(v);
    return static_cast<T>(std::pow(v, static_cast<T>(p)));
  });
}
Tensor clamp(const Tensor& x, double lo, double hi) {
  UNROLL_CHECK(lo <= hi, "clamp: lower bound {} is greater than upper bound {} (or one is NaN)", lo, hi);
  return unary("clamp", x, [lo, hi](auto v) {
    using T = decltype(v);
    return std::min(std::max(v, static_cast<T>(lo)), static_cast<T>(hi));
  });
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const int nd = std::max(a.ndim(), b.ndim());
  Shape out;
  for (int d = 0; d < nd; ++d) {
    const int ia = d - (nd - a.ndim()), ib = d - (nd - b.ndim());
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    UNROLL_CHECK(da == db || da == 1 || db == 1, "{}: shapes {} and {} cannot be broadcast (dimension {}: {} vs {})", op,
                 a, b, d, da, db);
    out.push_back(da == 1 ? db : da);
  }
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) { return binary("add", a, b, [](auto x, auto y) { return x + y; }); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary("sub", a, b, [](auto x, auto y) { return x - y; }); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary("mul", a, b, [](auto x, auto y) { return x * y; }); }
Tensor div(const Tensor& a, const Tensor& b) { return binary("div", a, b, [](auto x, auto y) { return x / y; }); }
// maximum/minimum propagate NaN from either side, like torch.maximum.
Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary("maximum", a, b, [](auto x, auto y) { return (x > y || x != x) ? x : y; });
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary("minimum", a, b, [](auto x, auto y) { return (x < y || x != x) ? x : y; });
}

Tensor add(const Tensor& a, double s) {
  return unary("add", a, [s](auto v) { return v + static_cast<decltype(v)>(s); });
}
Tensor sub(const Tensor& a, double s) {
  return unary("sub", a, [s](auto v) { return v - static_cast<decltype(v)>(s); });
}
Tensor mul(const Tensor& a, double s) {
  return unary("mul", a, [s](auto v) { return v * static_cast<decltype(v)>(s); });
}
Tensor div(const Tensor& a, double s) {
  return unary("div", a, [s](auto v) { return v / static_cast<decltype(v)>(s); });
}
Tensor rsub(double s, const Tensor& a) {
  return unary("rsub", a, [s](auto v) { return static_cast<decltype(v)>(s) - v; });
}
Tensor rdiv(double s, const Tensor& a) {
  return unary("rdiv", a, [s](auto v) { return static_cast<decltype(v)>(s) / v; });
}

Tensor gt(const Tensor& a, const Tensor& b) { return compare("gt", a, b, [](auto x, auto y) { return x > y; }); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare("ge", a, b, [](auto x, auto y) { return x >= y; }); }
Tensor eq(const Tensor& a, const Tensor& b) { return compare("eq", a, b, [](auto x, auto y) { return x == y; }); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare("lt", a, b, [](auto x, auto y) { return x < y; }); }
Tensor le(const Tensor& a, const Tensor& b) { return compare("le", a, b, [](auto x, auto y) { return x <= y; }); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare("ne", a, b, [](auto x, auto y) { return x != y; }); }
Tensor gt(const Tensor& a, double s) { return gt(a, scalar_tensor(s, a.dtype())); }
Tensor ge(const Tensor& a, double s) { return ge(a, scalar_tensor(s, a.dtype())); }
Tensor eq(const Tensor& a, double s) { return eq(a, scalar_tensor(s, a.dtype())); }
Tensor lt(const Tensor& a, double s) { return lt(a, scalar_tensor(s, a.dtype())); }
Tensor le(const Tensor& a, double s) { return le(a, scalar_tensor(s, a.dtype())); }
Tensor ne(const Tensor& a, double s) { return ne(a, scalar_tensor(s, a.dtype())); }
Tensor logical_and(const Tensor& a, const Tensor& b) {
  return compare("logical_and", require_bool("logical_and", a), require_bool("logical_and", b),
                 [](auto x, auto y) { return x && y; });
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  return compare("logical_or", require_bool("logical_or", a), require_bool("logical_or", b),
                 [](auto x, auto y) { return x || y; });
}
Tensor logical_not(const Tensor& a) {
  const Tensor t = require_bool("logical_not", a);
  Tensor out = Tensor::empty(t.shape(), DType::Bool);
  map1(out.data<bool>(), t.data<bool>(), t.numel(), [](bool x) { return !x; });
  return out;
}
bool any(const Tensor& a) {
  const Tensor t = require_bool("any", a);
  const bool* p = t.data<bool>();
  return std::any_of(p, p + t.numel(), [](bool x) { return x; });
}
bool all(const Tensor& a) {
  const Tensor t = require_bool("all", a);
  const bool* p = t.data<bool>();
  return std::all_of(p, p + t.numel(), [](bool x) { return x; });
}
int64_t count_nonzero(const Tensor& a) {
  check_defined("count_nonzero", a);
  int64_t n = 0;
  dispatch_any(a.dtype(), [&]<typename T>() {
    const T* p = a.data<T>();
    for (int64_t i = 0; i < a.numel(); ++i) n += p[i] != T(0) ? 1 : 0;
  });
  return n;
}

// sum_to: the adjoint of broadcasting. Iterates over x with the output's strides set to 0
// on the summed dimensions (Note [broadcast plan]). Returns x itself (sharing storage) when
// the shapes already agree.
Tensor sum_to(const Tensor& x, const Shape& shape) {
  check_defined("sum_to", x);
  const Shape& xs = x.shape();
  bool ok = shape.ndim() <= xs.ndim();
  for (int i = 0; ok && i < shape.ndim(); ++i) {
    const int64_t d = shape[i], e = xs[xs.ndim() - shape.ndim() + i];
    ok = d == e || d == 1;
  }
  UNROLL_CHECK(ok, "sum_to: cannot sum {} down to {} ({} does not broadcast to {})", xs, shape, shape, xs);
  if (shape == xs) return x;
  Tensor out;
  dispatch_float("sum_to", x.dtype(), [&]<typename T>() {
    out = zeros(shape, x.dtype());
    const T* px = x.data<T>();
    T* po = out.data<T>();
    if (x.numel() == 0) return;
    if (shape.numel() == 1) {
      po[0] = sum_contig(px, x.numel());
      return;
    }
    const Shape* shapes[2] = {&xs, &shape};
    const Plan<2> p = make_plan(xs, shapes);
    const int64_t so = p.inner(1);
    run_plan(p, [&](const int64_t* off, int64_t m) {
      const T* xr = px + off[0];
      T* o = po + off[1];
      if (so == 1) {
        update(o, xr, m, [](T u, T v) { return u + v; });
      } else {
        o[0] += sum_contig(xr, m);
      }
    });
  });
  return out;
}

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  check_defined("broadcast_to", x);
  const Shape& xs = x.shape();
  bool ok = xs.ndim() <= shape.ndim();
  for (int i = 0; ok && i < xs.ndim(); ++i) {
    const int64_t d = xs[i], e = shape[shape.ndim() - xs.ndim() + i];
    ok = d == e || d == 1;
  }
  UNROLL_CHECK(ok, "broadcast_to: {} cannot be broadcast to {}", xs, shape);
  Tensor out = Tensor::empty(shape, x.dtype());
  if (out.numel() == 0) return out;
  dispatch_any(x.dtype(), [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const Shape* shapes[2] = {&shape, &xs};
    const Plan<2> p = make_plan(shape, shapes);
    const int64_t sx = p.inner(1);
    run_plan(p, [&](const int64_t* off, int64_t m) {
      T* o = po + off[0];
      const T* xr = px + off[1];
      if (sx == 1) {
        std::memcpy(o, xr, static_cast<size_t>(m) * sizeof(T));
      } else {
        const T v = *xr;
        for (int64_t i = 0; i < m; ++i) o[i] = v;
      }
    });
  });
  return out;
}

Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double s) { return add(a, s); }
Tensor operator-(const Tensor& a, double s) { return sub(a, s); }
Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
Tensor operator/(const Tensor& a, double s) { return div(a, s); }
Tensor operator+(double s, const Tensor& a) { return add(a, s); }
Tensor operator-(double s, const Tensor& a) { return rsub(s, a); }
Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
Tensor operator/(double s, const Tensor& a) { return rdiv(s, a); }

// ---- in place -------------------------------------------------------------------------

static void check_same(const char* op, const Tensor& dst, const Tensor& src) {
  check_defined(op, dst);
  check_defined(op, src);
  UNROLL_CHECK(dst.shape() == src.shape(), "{}: shapes {} and {} differ", op, dst.shape(), src.shape());
  check_same_dtype(op, dst, src);
}

void add_(Tensor& dst, const Tensor& src, double alpha) {
  check_same("add_", dst, src);
  dispatch_float("add_", dst.dtype(), [&]<typename T>() {
    T* d = dst.data<T>();
    const T* s = src.data<T>();
    const int64_t n = dst.numel();
    const T a = static_cast<T>(alpha);
    if (dst.same_storage(src)) {  // d and s alias: stay off the __restrict path
      for (int64_t i = 0; i < n; ++i) d[i] += a * d[i];
    } else if (alpha == 1.0) {
      update(d, s, n, [](T u, T v) { return u + v; });
    } else {
      update(d, s, n, [a](T u, T v) { return u + a * v; });
    }
  });
}

void mul_(Tensor& dst, double s) {
  check_defined("mul_", dst);
  dispatch_float("mul_", dst.dtype(), [&]<typename T>() {
    T* d = dst.data<T>();
    const T a = static_cast<T>(s);
    const int64_t n = dst.numel();
    int64_t i = 0;
    for (; i + kBlock <= n; i += kBlock)  // Note [vectorisable loops]
      for (int64_t k = 0; k < kBlock; ++k) d[i + k] *= a;
    for (; i < n; ++i) d[i] *= a;
  });
}

void fill_(Tensor& dst, double value) {
  check_defined("fill_", dst);
  dispatch_any(dst.dtype(), [&]<typename T>() {
    std::fill_n(dst.data<T>(), dst.numel(), static_cast<T>(value));
  });
}

void copy_(Tensor& dst, const Tensor& src) {
  check_same("copy_", dst, src);
  if (dst.same_storage(src)) return;
  std::memcpy(dst.raw_data(), src.raw_data(), static_cast<size_t>(dst.numel()) * dtype_size(dst.dtype()));
}

// ---- matmul ---------------------------------------------------------------------------

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check_defined("matmul", a);
  check_defined("matmul", b);
  // "[32,64] x [256,128]^T", only formatted when a check fails.
  auto desc = [&] {
    return fmt::format("{}{} x {}{}", a.shape(), trans_a ? "^T" : "", b.shape(), trans_b ? "^T" : "");
  };
  const int ra = a.ndim(), rb = b.ndim();
  UNROLL_CHECK((ra == 2 && rb == 2) || (ra == 3 && rb == 3) || (ra == 3 && rb == 2),
               "matmul: {}: unsupported ranks {} and {} (expected 2-D x 2-D, 3-D x 3-D or 3-D x 2-D)", desc(), ra,
               rb);
  UNROLL_CHECK(a.dtype() == b.dtype(), "matmul: {}: dtypes {} and {} differ", desc(), a.dtype(), b.dtype());
  const int64_t batch = ra == 3 ? a.size(0) : 1;
  UNROLL_CHECK(rb == 2 || b.size(0) == batch, "matmul: {}: batch sizes {} and {} differ", desc(), batch, b.size(0));
  const int64_t a_rows = a.size(-2), a_cols = a.size(-1), b_rows = b.size(-2), b_cols = b.size(-1);
  const int64_t M = trans_a ? a_cols : a_rows, K = trans_a ? a_rows : a_cols;
  const int64_t Kb = trans_b ? b_cols : b_rows, N = trans_b ? b_rows : b_cols;
  UNROLL_CHECK(K == Kb, "matmul: {}: inner dimensions {} and {} differ", desc(), K, Kb);

  Tensor out;
  dispatch_float("matmul", a.dtype(), [&]<typename T>() {
    out = Tensor::empty(ra == 3 ? Shape{batch, M, N} : Shape{M, N}, a.dtype());
    T* C = out.data<T>();
    if (out.numel() == 0) return;
    if (K == 0) {
      std::fill_n(C, out.numel(), T(0));
      return;
    }
    const T* A = a.data<T>();
    const T* B = b.data<T>();
    if (rb == 2 && !trans_a) {
      // [B,M,K] x [K,N]: the batch folds into the rows of one product.
      kernels::gemm(false, trans_b, batch * M, N, K, T(1), A, a_cols, B, b_cols, T(0), C, N);
      return;
    }
    const int64_t b_step = rb == 3 ? b_rows * b_cols : 0;
    for (int64_t i = 0; i < batch; ++i)
      kernels::gemm(trans_a, trans_b, M, N, K, T(1), A + i * a_rows * a_cols, a_cols, B + i * b_step, b_cols, T(0),
                    C + i * M * N, N);
  });
  return out;
}

namespace {

/// Validates c (+)= op(a) op(b) for 2-D operands; returns {M, N, K}.
std::array<int64_t, 3> check_mm(const char* op, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check_defined(op, a);
  check_defined(op, b);
  UNROLL_CHECK(a.ndim() == 2 && b.ndim() == 2, "{}: {} x {}: operands must be 2-D", op, a.shape(), b.shape());
  check_same_dtype(op, a, b);
  const int64_t M = trans_a ? a.size(1) : a.size(0), K = trans_a ? a.size(0) : a.size(1);
  const int64_t Kb = trans_b ? b.size(1) : b.size(0), N = trans_b ? b.size(0) : b.size(1);
  UNROLL_CHECK(K == Kb, "{}: {}{} x {}{}: inner dimensions {} and {} differ", op, a.shape(), trans_a ? "^T" : "",
               b.shape(), trans_b ? "^T" : "", K, Kb);
  return {M, N, K};
}

/// c = op(a) op(b) + beta c through the GEMM kernel (c already has the right shape).
void gemm_into(Tensor& c, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, int64_t M, int64_t N,
               int64_t K, double beta) {
  dispatch_float("addmm", a.dtype(), [&]<typename T>() {
    if (M == 0 || N == 0) return;
    kernels::gemm(trans_a, trans_b, M, N, K, T(1), a.data<T>(), a.size(1), b.data<T>(), b.size(1),
                  static_cast<T>(beta), c.data<T>(), N);
  });
}

}  // namespace

Tensor addmm(const Tensor& bias, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const auto [M, N, K] = check_mm("addmm", a, b, trans_a, trans_b);
  check_defined("addmm", bias);
  check_same_dtype("addmm", bias, a);
  UNROLL_CHECK(bias.ndim() == 1 && bias.size(0) == N, "addmm: bias {} does not match the product's {} columns",
               bias.shape(), N);
  Tensor out = Tensor::empty({M, N}, a.dtype());
  const size_t row_bytes = static_cast<size_t>(N) * dtype_size(a.dtype());
  char* o = static_cast<char*>(out.raw_data());
  for (int64_t i = 0; i < M; ++i) std::memcpy(o + static_cast<size_t>(i) * row_bytes, bias.raw_data(), row_bytes);
  gemm_into(out, a, b, trans_a, trans_b, M, N, K, 1.0);
  return out;
}

void addmm_(Tensor& c, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const auto [M, N, K] = check_mm("addmm_", a, b, trans_a, trans_b);
  check_defined("addmm_", c);
  check_same_dtype("addmm_", c, a);
  UNROLL_CHECK(c.shape() == Shape({M, N}), "addmm_: destination {} is not the product's shape [{},{}]", c.shape(), M,
               N);
  gemm_into(c, a, b, trans_a, trans_b, M, N, K, 1.0);
}

// ---- reductions -----------------------------------------------------------------------
// A reduction along `axis` views x as [outer, n, inner]; the result is [outer, inner].

namespace {

struct Axis3 {
  int64_t outer = 1, n = 1, inner = 1;
};

Axis3 view3(const Shape& s, int axis) {
  Axis3 v;
  for (int d = 0; d < axis; ++d) v.outer *= s[d];
  v.n = s[axis];
  for (int d = axis + 1; d < s.ndim(); ++d) v.inner *= s[d];
  return v;
}

Shape reduced_shape(const Shape& s, int axis, bool keepdim) {
  Shape out;
  for (int d = 0; d < s.ndim(); ++d) {
    if (d != axis) out.push_back(s[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

/// NaN-propagating "better" tests for max and min.
template <typename T>
bool max_better(T v, T best) {
  return v > best || (v != v && best == best);
}
template <typename T>
bool min_better(T v, T best) {
  return v < best || (v != v && best == best);
}

template <bool IsMax>
Tensor reduce_extreme(const char* op, const Tensor& x, int axis, bool keepdim) {
  check_defined(op, x);
  const int ax = normalize_axis(op, axis, x.ndim());
  const Axis3 v = view3(x.shape(), ax);
  UNROLL_CHECK(v.n > 0, "{}: axis {} of shape {} is empty", op, axis, x.shape());
  Tensor out;
  dispatch_float(op, x.dtype(), [&]<typename T>() {
    out = Tensor::empty(reduced_shape(x.shape(), ax, keepdim), x.dtype());
    const T* px = x.data<T>();
    T* po = out.data<T>();
    if (v.inner == 1) {  // rows are contiguous: one scan per row
      for (int64_t o = 0; o < v.outer; ++o) {
        const T* xr = px + o * v.n;
        T best = xr[0];
        for (int64_t k = 1; k < v.n; ++k) best = (IsMax ? max_better(xr[k], best) : min_better(xr[k], best)) ? xr[k] : best;
        po[o] = best;
      }
      return;
    }
    for (int64_t o = 0; o < v.outer; ++o) {
      const T* xo = px + o * v.n * v.inner;
      T* oo = po + o * v.inner;
      std::copy_n(xo, v.inner, oo);
      for (int64_t k = 1; k < v.n; ++k) {
        update(oo, xo + k * v.inner, v.inner, [](T best, T u) {
          return (IsMax ? max_better(u, best) : min_better(u, best)) ? u : best;
        });
      }
    }
  });
  return out;
}

}  // namespace

Tensor sum(const Tensor& x) {
  check_defined("sum", x);
  Tensor out;
  dispatch_float("sum", x.dtype(), [&]<typename T>() {
    out = Tensor::empty(Shape{}, x.dtype());
    out.data<T>()[0] = sum_contig(x.data<T>(), x.numel());
  });
  return out;
}

Tensor sum(const Tensor& x, int axis, bool keepdim) {
  check_defined("sum", x);
  const int ax = normalize_axis("sum", axis, x.ndim());
  const Axis3 v = view3(x.shape(), ax);
  Tensor out;
  dispatch_float("sum", x.dtype(), [&]<typename T>() {
    out = Tensor::empty(reduced_shape(x.shape(), ax, keepdim), x.dtype());
    const T* px = x.data<T>();
    T* po = out.data<T>();
    if (v.inner == 1) {
      for (int64_t o = 0; o < v.outer; ++o) po[o] = sum_contig(px + o * v.n, v.n);
      return;
    }
    std::fill_n(po, out.numel(), T(0));
    for (int64_t o = 0; o < v.outer; ++o) {
      T* oo = po + o * v.inner;
      for (int64_t k = 0; k < v.n; ++k) {
        update(oo, px + (o * v.n + k) * v.inner, v.inner, [](T u, T w) { return u + w; });
      }
    }
  });
  return out;
}

Tensor mean(const Tensor& x) {
  check_defined("mean", x);
  UNROLL_CHECK(x.is_floating(), "mean: expected a floating tensor, got {}", x.dtype());
  UNROLL_CHECK(x.numel() > 0, "mean: the tensor of shape {} is empty", x.shape());
  Tensor out = sum(x);
  mul_(out, 1.0 / static_cast<double>(x.numel()));
  return out;
}

Tensor mean(const Tensor& x, int axis, bool keepdim) {
  check_defined("mean", x);
  UNROLL_CHECK(x.is_floating(), "mean: expected a floating tensor, got {}", x.dtype());
  const int64_t n = x.shape()[normalize_axis("mean", axis, x.ndim())];
  UNROLL_CHECK(n > 0, "mean: axis {} of shape {} is empty", axis, x.shape());
  Tensor out = sum(x, axis, keepdim);
  mul_(out, 1.0 / static_cast<double>(n));
  return out;
}

Tensor max(const Tensor& x) {
  check_defined("max", x);
  UNROLL_CHECK(x.numel() > 0, "max: the tensor of shape {} is empty", x.shape());
  Tensor out;
  dispatch_float("max", x.dtype(), [&]<typename T>() {
    out = Tensor::empty(Shape{}, x.dtype());
    const T* px = x.data<T>();
    T best = px[0];
    for (int64_t i = 1; i < x.numel(); ++i) best = max_better(px[i], best) ? px[i] : best;
    out.data<T>()[0] = best;
  });
  return out;
}

Tensor max(const Tensor& x, int axis, bool keepdim) { return reduce_extreme<true>("max", x, axis, keepdim); }
Tensor min(const Tensor& x, int axis, bool keepdim) { return reduce_extreme<false>("min", x, axis, keepdim); }

Tensor argmax(const Tensor& x, int axis, bool keepdim) {
  check_defined("argmax", x);
  const int ax = normalize_axis("argmax", axis, x.ndim());
  const Axis3 v = view3(x.shape(), ax);
  UNROLL_CHECK(v.n > 0, "argmax: axis {} of shape {} is empty", axis, x.shape());
  Tensor out = Tensor::empty(reduced_shape(x.shape(), ax, keepdim), DType::I64);
  int64_t* po = out.data<int64_t>();
  dispatch_float("argmax", x.dtype(), [&]<typename T>() {
    const T* px = x.data<T>();
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t j = 0; j < v.inner; ++j) {
        const T* xr = px + o * v.n * v.inner + j;
        T best = xr[0];
        int64_t at = 0;
        for (int64_t k = 1; k < v.n; ++k)
          if (max_better(xr[k * v.inner], best)) {  // strictly better: the first maximum wins
            best = xr[k * v.inner];
            at = k;
          }
        po[o * v.inner + j] = at;
      }
  });
  return out;
}

// softmax: y = exp(x - max) / sum(exp(x - max)); log_softmax: y = x - max - log(sum(exp(x - max))).
// Subtracting the row maximum keeps exp from overflowing, so log_softmax of [1e4, 0] is
// [0, -1e4]. A row that is entirely -inf gives NaN (-inf - -inf), as in PyTorch.
namespace {

/// One softmax row of n elements at stride s (s is the constant 1 when Contig).
template <bool Log, bool Contig, typename T>
void softmax_row(const T* __restrict xr, T* __restrict yr, int64_t n, int64_t stride) {
  const int64_t s = Contig ? 1 : stride;
  if constexpr (Contig && std::is_same_v<T, float>) {
    const float m = max_f32(xr, n);
    // Float rows: the vectorised exp of Note [fast float transcendentals], e^(x - m) into
    // the output row, then one sum. A row whose maximum is -inf or NaN gives NaN.
    exp_shifted_f32(yr, xr, m, n);
    const float total = sum_f32(yr, n);
    if constexpr (Log) {
      const float log_total = std::log(total);  // (x - max) - log(total): see below
      for (int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - m) - log_total;
    } else {
      const float inv = 1.0f / total;
      for (int64_t k = 0; k < n; ++k) yr[k] *= inv;
    }
    return;
  }
  T m = xr[0];
  for (int64_t k = 1; k < n; ++k) m = max_better(xr[k * s], m) ? xr[k * s] : m;
  T total = 0;
  if constexpr (Log) {
    for (int64_t k = 0; k < n; ++k) total += std::exp(xr[k * s] - m);
    // (x - max) - log(total), not x - (max + log(total)): for large max the sum would
    // round log(total) away (log_softmax([1e30, 1e30]) would be [0, 0], not -ln 2).
    const T log_total = std::log(total);
    for (int64_t k = 0; k < n; ++k) yr[k * s] = (xr[k * s] - m) - log_total;
  } else {
    for (int64_t k = 0; k < n; ++k) {
      const T e = std::exp(xr[k * s] - m);
      yr[k * s] = e;
      total += e;
    }
    const T inv = T(1) / total;
    for (int64_t k = 0; k < n; ++k) yr[k * s] *= inv;
  }
}

template <bool Log>
Tensor softmax_impl(const char* op, const Tensor& x, int axis) {
  check_defined(op, x);
  const int ax = normalize_axis(op, axis, x.ndim());
  const Axis3 v = view3(x.shape(), ax);
  Tensor out;
  dispatch_float(op, x.dtype(), [&]<typename T>() {
    out = Tensor::empty(x.shape(), x.dtype());
    if (x.numel() == 0) return;
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const int64_t n = v.n, s = v.inner;
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t j = 0; j < s; ++j) {
        const int64_t base = o * n * s + j;
        if (s == 1) softmax_row<Log, true>(px + base, po + base, n, 1);
        else softmax_row<Log, false>(px + base, po + base, n, s);
      }
  });
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int axis) { return softmax_impl<false>("softmax", x, axis); }
Tensor log_softmax(const Tensor& x, int axis) { return softmax_impl<true>("log_softmax", x, axis); }

namespace {

/// The backward of softmax (Log = false: dx = y * (dy - sum(dy * y))) or log_softmax
/// (Log = true: dx = dy - e^y * sum(dy)), sums along `axis`, in one pass per row and one
/// output tensor instead of four passes and three temporaries.
template <bool Log>
Tensor softmax_backward_impl(const char* op, const Tensor& dy, const Tensor& y, int axis) {
  check_defined(op, dy);
  check_defined(op, y);
  check_same_dtype(op, dy, y);
  UNROLL_CHECK(dy.shape() == y.shape(), "{}: gradient {} and output {} differ in shape", op, dy.shape(), y.shape());
  const int ax = normalize_axis(op, axis, y.ndim());
  const Axis3 v = view3(y.shape(), ax);
  Tensor out;
  dispatch_float(op, y.dtype(), [&]<typename T>() {
    out = Tensor::empty(y.shape(), y.dtype());
    if (y.numel() == 0) return;
    const T* pg = dy.data<T>();
    const T* py = y.data<T>();
    T* po = out.data<T>();
    const int64_t n = v.n, st = v.inner;
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t j = 0; j < st; ++j) {
        const int64_t base = o * n * st + j;
        const T* g = pg + base;
        const T* yr = py + base;
        T* d = po + base;
        if constexpr (Log && std::is_same_v<T, float>) {
          if (st == 1) {
            log_softmax_grad_f32(d, g, yr, sum_f32(g, n), n);
            continue;
          }
        }
        T total = 0;
        for (int64_t k = 0; k < n; ++k) total += Log ? g[k * st] : g[k * st] * yr[k * st];
        for (int64_t k = 0; k < n; ++k)
          d[k * st] = Log ? g[k * st] - std::exp(yr[k * st]) * total : yr[k * st] * (g[k * st] - total);
      }
  });
  return out;
}

}  // namespace

Tensor softmax_backward(const Tensor& dy, const Tensor& y, int axis) {
  return softmax_backward_impl<false>("softmax_backward", dy, y, axis);
}
Tensor log_softmax_backward(const Tensor& dy, const Tensor& y, int axis) {
  return softmax_backward_impl<true>("log_softmax_backward", dy, y, axis);
}

// ---- where / masked_fill (broadcasting selections) ---------------------------------------

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined("where", cond);
  check_defined("where", a);
  check_defined("where", b);
  check_same_dtype("where", a, b);
  const Shape os = broadcast_shapes("where", cond.shape(), broadcast_shapes("where", a.shape(), b.shape()));
  Tensor out;
  dispatch_float("where", a.dtype(), [&]<typename T>() {
    out = Tensor::empty(os, a.dtype());
    if (out.numel() == 0) return;
    dispatch_any(cond.dtype(), [&]<typename C>() {
      const Shape* shapes[4] = {&os, &cond.shape(), &a.shape(), &b.shape()};
      const Plan<4> p = make_plan(os, shapes);
      const int64_t sc = p.inner(1), sa = p.inner(2), sb = p.inner(3);
      const C* pc = cond.data<C>();
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* po = out.data<T>();
      run_plan(p, [&](const int64_t* off, int64_t m) {
        const C* c = pc + off[1];
        const T* x = pa + off[2];
        const T* y = pb + off[3];
        T* o = po + off[0];
        for (int64_t i = 0; i < m; ++i) o[i] = c[i * sc] != C(0) ? x[i * sa] : y[i * sb];
      });
    });
  });
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_defined("masked_fill", x);
  check_defined("masked_fill", mask);
  const Shape os = broadcast_shapes("masked_fill", x.shape(), mask.shape());
  UNROLL_CHECK(os == x.shape(), "masked_fill: mask of shape {} does not broadcast to the tensor's shape {}",
               mask.shape(), x.shape());
  Tensor out;
  dispatch_float("masked_fill", x.dtype(), [&]<typename T>() {
    out = Tensor::empty(os, x.dtype());
    if (out.numel() == 0) return;
    dispatch_any(mask.dtype(), [&]<typename C>() {
      const Shape* shapes[2] = {&os, &mask.shape()};
      const Plan<2> p = make_plan(os, shapes);
      const int64_t sm = p.inner(1);
      const C* pm = mask.data<C>();
      const T* px = x.data<T>();
      T* po = out.data<T>();
      const T fillv = static_cast<T>(value);
      run_plan(p, [&](const int64_t* off, int64_t m) {
        const C* c = pm + off[1];
        const T* xr = px + off[0];
        T* o = po + off[0];
        if (sm == 1) {
          for (int64_t i = 0; i < m; ++i) o[i] = c[i] != C(0) ? fillv : xr[i];  // mixed types: scalar
        } else {
          if (c[0] != C(0)) std::fill_n(o, m, fillv);
          else std::copy_n(xr, m, o);
        }
      });
    });
  });
  return out;
}

// ---- comparison helpers ------------------------------------------------------------------

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  if (!(a.shape() == b.shape())) return false;
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] == y[i]) continue;  // also equal infinities
    if (!(std::abs(x[i] - y[i]) <= atol + rtol * std::abs(y[i]))) return false;  // NaN fails
  }
  return true;
}

bool equal(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  if (!(a.shape() == b.shape()) || a.dtype() != b.dtype()) return false;
  return std::memcmp(a.raw_data(), b.raw_data(), static_cast<size_t>(a.numel()) * dtype_size(a.dtype())) == 0;
}

}  // namespace unroll
