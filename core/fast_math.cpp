// Vectorised float32 transcendentals (Note [fast float transcendentals]) and the float row
// reductions of softmax, as raw-pointer loops cloned per ISA (core/simd.h). Declared in
// core/fast_math.h; the Tensor ops that call them are in core/ops.cpp and core/reduce.cpp.
#include "core/fast_math.h"

#include "core/simd.h"

#include <bit>
#include <cmath>
#include <cstdint>

namespace unroll::detail {
namespace {

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

}  // namespace
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

}  // namespace unroll::detail
