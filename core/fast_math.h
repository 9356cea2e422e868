#pragma once
// Internal: the vectorised float32 transcendental kernels of Note [fast float
// transcendentals] (core/fast_math.cpp) and the float row reductions softmax uses. Each is
// a loop over raw contiguous arrays, cloned per ISA with the same bits on every clone. Not
// part of the public API; not included by unroll.h.
#include <cstdint>

namespace unroll::detail {

void tanh_f32(float* o, const float* x, int64_t n);     ///< o[i] = tanh x[i]
void sigmoid_f32(float* o, const float* x, int64_t n);  ///< o[i] = 1 / (1 + e^-x[i])
/// o[i] = erf x[i] (+-1 from |x| = 4 on).
void erf_f32(float* o, const float* x, int64_t n);
/// o[i] = x[i] Phi(x[i]), the exact GELU (Phi the standard normal CDF).
void gelu_f32(float* o, const float* x, int64_t n);
/// o[i] = dy[i] * 2/sqrt(pi) e^(-x[i]^2) (erf backward).
void erf_backward_f32(float* o, const float* dy, const float* x, int64_t n);
/// o[i] = dy[i] * (Phi(x[i]) + x[i] phi(x[i])) (GELU backward; phi the normal density).
void gelu_backward_f32(float* o, const float* dy, const float* x, int64_t n);
/// o[i] = e^(x[i] - m) for x[i] <= m (softmax rows): 0 below m - 87.3 (and for -inf).
void exp_shifted_f32(float* o, const float* x, float m, int64_t n);
/// o[i] = g[i] - e^(y[i]) * s (log_softmax backward; y are log-probabilities).
void log_softmax_grad_f32(float* o, const float* g, const float* y, float s, int64_t n);
/// The maximum of n >= 1 floats, NaN if any is NaN.
float max_f32(const float* x, int64_t n);
/// Sum of n floats in a fixed order (16 interleaved partial sums).
float sum_f32(const float* x, int64_t n);

}  // namespace unroll::detail
