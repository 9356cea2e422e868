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
// tanh/sigmoid (every gate of every recurrent cell) and erf/GELU (the Transformer's
// feed-forward) use the branch-free formulas below, which the compiler vectorises; kernels
// are cloned for AVX-512, AVX2 and baseline x86-64 and picked at load time. They use only
// IEEE add/mul/div, so every clone gives the same bits. That takes two flags on this file
// (CMakeLists.txt): -ffp-contract=off, since GCC contracts a * b + c into an FMA in ISO C++
// mode too (the AVX2/AVX-512 clones would round differently from the baseline one), and
// -fno-trapping-math, without which GCC does not if-convert the selects and vectorises
// the loops for AVX-512 (masks) only. Neither changes a result. Accuracy: a few ulp
// (tests/test_fused.cpp checks against double precision). Double precision keeps libm.
//   exp(y) = 2^n * p(r), n = round(y / ln 2), r = y - n ln 2 (two-part ln 2), p the
//            degree-7 Taylor polynomial (|r| <= ln2/2: truncation error < 6e-9).
//   tanh(x) = odd Taylor series through x^17 for |x| < 0.5; else sign(x) (1 - 2 / (e^{2|x|} + 1))
//            with |x| clamped to 10 (tanh(x) rounds to 1 in float from x = 9.02 on).
//   sigmoid(x) = 1 / (1 + e^{-|x|}) for x >= 0, e^{-|x|} / (1 + e^{-|x|}) for x < 0, with
//            e^{-|x|} = 0 past |x| = 87.3 (the result is then below FLT_MIN or exactly 1).
//   erf(x) = x P(x^2) for |x| < 1; else sign(x) (1 - e^{-x^2} t R(t)), t = 1 / (1 + |x|/2),
//            with |x| clamped to 4 (erf rounds to +-1 from 3.92 on). P (degree 6) and R
//            (degree 9) are minimax fits of relative error (tools/fit_erf.py).
//   e^{-x^2}: x^2 as hi^2 + lo (2 hi + lo), exact in two floats (Veltkamp split, needs the
//            no-FMA rule), fed into the exp as y = yh + yl, so a large |x| (GELU's lower
//            tail) loses nothing to the rounding of x^2; it is computed times 2^64 and the
//            callers multiply the 2^-64 in last, so a subnormal result is rounded once.
//   Phi(x) = erfc(|z|)/2 = e^{-z^2} t R(t) / 2 for z = x/sqrt 2 < -1/2 (no cancellation in
//            1 + erf); (1 + z P(z^2)) / 2 for -1/2 <= z < 1; 1 - erfc(z)/2 above.
//   GELU(x) = x Phi(x); GELU'(x) = Phi(x) + x phi(x), in the lower tail e^{-z^2} (t R(t)/2 +
//            x/sqrt(2 pi)); erf'(x) = 2/sqrt(pi) e^{-x^2}; x clamped to +-20. e^{-x^2/2} is
//            taken as 0 past |x| = 16.1 (e^{-x^2} past 11.4), where the results are below
//            2^-149 or exactly 0, 1 or x.
//   Measured over every 1021st float (tests/test_fused.cpp): erf 2.4 ulp, GELU 5.8 ulp where
//   |y| >= FLT_MIN (2 subnormal steps below), erf' 2.4 ulp, GELU' 2.8 ulp of Phi + |x| phi
//   (GELU' has a zero at x = -0.75, where only that absolute bound holds).
// NaN in gives NaN out; +-inf gives +-1 (tanh, erf), 1 or 0 (sigmoid, GELU'), inf or -0
// (GELU) and 0 (erf').

/// 2^n * p(r), p the degree-7 Taylor polynomial of e^r (n an integer in [-126, 127]; r in
/// about [-0.35, 0.35]).
inline float exp_poly(float n, float r) {
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

constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693145751953125f, kLn2Lo = 1.42860682030941723212e-6f;
constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer

/// e^y for y in [-87.3, 88.3] (no range checks).
inline float exp_core(float y) {
  const float n = (y * kLog2e + kRound) - kRound;
  const float r = (y - n * kLn2Hi) - n * kLn2Lo;
  return exp_poly(n, r);
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

constexpr float kTwoM64 = 5.42101086242752217e-20f;  // 2^-64

/// 2^64 e^{-k x^2} for k = 1 or 1/2 and |x| <= 20; 0 where k x^2 > 130 (e^{-k x^2} is
/// then below 2^-187). The 2^64 keeps the value a normal float where e^{-k x^2} is far
/// below FLT_MIN, so the small results the callers build from it are rounded once, at
/// their final multiplication by 2^-64. x^2 = hi^2 + lo (2 hi + lo) exactly in two floats
/// (Veltkamp split), so a large x loses no accuracy to the rounding of x^2.
inline float exp_neg_sq_2p64(float x, float k) {
  const float c = 4097.0f * x;  // 2^12 + 1: hi keeps the top 12 bits of x, lo the rest
  const float hi = c - (c - x);
  const float lo = x - hi;
  const float yh = -(k * (hi * hi));                   // exact
  const float yl = -(k * ((hi + hi) * lo + lo * lo));  // both products exact, one rounding
  const float y = yh + yl;
  const float yc = y > -130.0f ? y : -130.0f;
  const float n = (yc * kLog2e + kRound) - kRound;
  const float r = ((yh - n * kLn2Hi) - n * kLn2Lo) + yl;
  const float e = exp_poly(n + 64.0f, r);
  return y >= -130.0f ? e : 0.0f;
}

/// erf(x) / x = P(x^2) for |x| <= 1 (tools/fit_erf.py; relative error 1.2e-9).
inline float erf_ratio(float x2) {
  float p = 7.85390439e-05f;
  p = p * x2 - 0.000801020768f;
  p = p * x2 + 0.00518832961f;
  p = p * x2 - 0.0268538129f;
  p = p * x2 + 0.112835854f;
  p = p * x2 - 0.37612626f;
  p = p * x2 + 1.12837911f;
  return p;
}

/// e^{a^2} erfc(a) = t R(t), t = 1 / (1 + a/2), for a in [0.5, 11.5] (tools/fit_erf.py;
/// relative error 3.3e-9).
inline float erfc_scaled(float a) {
  const float t = 1.0f / (1.0f + 0.5f * a);
  float p = -0.0355970785f;
  p = p * t + 0.0899290591f;
  p = p * t + 0.0189236253f;
  p = p * t - 0.224136293f;
  p = p * t + 0.119914971f;
  p = p * t + 0.0326037183f;
  p = p * t + 0.189072028f;
  p = p * t + 0.244913369f;
  p = p * t + 0.282254636f;
  p = p * t + 0.282089144f;
  return t * p;
}

inline float erf_fast(float x) {
  const float a = std::fabs(x);
  const float ac = a < 4.0f ? a : 4.0f;  // NaN -> 4 (replaced below)
  const float small = x * erf_ratio(ac * ac);
  const float big = 1.0f - ((exp_neg_sq_2p64(ac, 1.0f) * erfc_scaled(ac)) * kTwoM64);
  const float r = a < 1.0f ? small : (x < 0.0f ? -big : big);
  return x != x ? x : r;
}

constexpr float kInvSqrt2 = 0.707106781186547524f;      // 1/sqrt(2)
constexpr float kInvSqrt2Pi = 0.398942280401432678f;    // 1/sqrt(2 pi)
constexpr float kTwoOverSqrtPi = 1.12837916709551257f;  // 2/sqrt(pi)

/// The pieces of Phi(x) = (1 + erf(x/sqrt 2)) / 2 for |x| <= 20, z = x/sqrt 2:
/// Phi = q e 2^-64 for z < -1/2 (erfc(|z|) / 2: no cancellation in 1 + erf), `mid` (the
/// erf polynomial) for -1/2 <= z < 1, 1 - q e 2^-64 above.
struct NormalCdf {
  float z;
  float e;    ///< 2^64 e^{-x^2/2}
  float q;    ///< e^{z^2} erfc(|z|) / 2
  float mid;  ///< (1 + z P(z^2)) / 2
};

inline NormalCdf normal_cdf(float x) {
  const float z = x * kInvSqrt2;
  return {z, exp_neg_sq_2p64(x, 0.5f), 0.5f * erfc_scaled(std::fabs(z)), 0.5f + 0.5f * (z * erf_ratio(z * z))};
}

/// x clamped to [-20, 20] (NaN -> -20): past 16.1 e^{-x^2/2} is taken as 0, Phi(x) as 0 or 1.
inline float clamp20(float x) { return x > -20.0f ? (x < 20.0f ? x : 20.0f) : -20.0f; }

/// x Phi(x); x (q e) 2^-64 in the lower tail, so it is rounded once where it is subnormal.
inline float gelu_fast(float x) {
  const float xc = clamp20(x);
  const NormalCdf c = normal_cdf(xc);
  const float lower = ((xc * c.q) * c.e) * kTwoM64;
  const float upper = (x > -20.0f ? x : -20.0f) * (c.z < 1.0f ? c.mid : 1.0f - (c.q * c.e) * kTwoM64);
  const float y = c.z < -0.5f ? lower : upper;  // x = +inf: inf * 1
  return x != x ? x : y;
}

/// Phi(x) + x phi(x), phi(x) = e^{-x^2/2} / sqrt(2 pi): (q + x / sqrt(2 pi)) e 2^-64 in the
/// lower tail; 1 at +inf, 0 at -inf.
inline float gelu_slope(float x) {
  const float xc = clamp20(x);
  const NormalCdf c = normal_cdf(xc);
  const float lower = ((c.q + xc * kInvSqrt2Pi) * c.e) * kTwoM64;
  const float phi_x = xc * ((kInvSqrt2Pi * c.e) * kTwoM64);
  const float upper = (c.z < 1.0f ? c.mid : 1.0f - (c.q * c.e) * kTwoM64) + phi_x;
  const float s = c.z < -0.5f ? lower : upper;
  return x != x ? x : s;
}

/// 2/sqrt(pi) e^{-x^2}: 0 at +-inf.
inline float erf_slope(float x) {
  const float s = (kTwoOverSqrtPi * exp_neg_sq_2p64(clamp20(x), 1.0f)) * kTwoM64;
  return x != x ? x : s;
}

}  // namespace
UNROLL_CLONES void erf_f32(float* __restrict o, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = erf_fast(x[i]);
}
UNROLL_CLONES void gelu_f32(float* __restrict o, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = gelu_fast(x[i]);
}
UNROLL_CLONES void erf_backward_f32(float* __restrict o, const float* __restrict dy, const float* __restrict x,
                                    int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = dy[i] * erf_slope(x[i]);
}
UNROLL_CLONES void gelu_backward_f32(float* __restrict o, const float* __restrict dy, const float* __restrict x,
                                     int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = dy[i] * gelu_slope(x[i]);
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

}  // namespace unroll::detail
