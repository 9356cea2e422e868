// Special functions as differentiable ops: erf and the exact GELU. Each computes its value
// and its backward in one elementwise pass: float32 on the vectorised kernels of
// core/fast_math.h (Note [fast float transcendentals]), float64 with libm in double (the
// path gradcheck uses). The math is in the comment above each op.
#include "autograd/formula.h"
#include "core/fast_math.h"

#include <cmath>
#include <numbers>

namespace unroll {

namespace {

// out[i] = f(x[i]): f32 on float32 data, f64 (in double) on float64 data.
template <typename F>
Tensor map_floating(const char* op, const Tensor& x, void (*f32)(float*, const float*, int64_t), F f64) {
  UNROLL_CHECK(x.is_floating(), "{}: input {} must be float32 or float64, got {}", op, x.shape(), x.dtype());
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const int64_t n = x.numel();
  if (x.dtype() == DType::F32) {
    f32(y.data<float>(), x.data<float>(), n);
  } else {
    const double* in = x.data<double>();
    double* out = y.data<double>();
    for (int64_t i = 0; i < n; ++i) out[i] = f64(in[i]);
  }
  return y;
}

// dy * g(x) elementwise: one pass of f32 over float32 dy and x of one shape, else dy times
// g(x) computed in double.
template <typename G>
Tensor scale_by(const Tensor& dy, const Tensor& x, void (*f32)(float*, const float*, const float*, int64_t), G g) {
  if (dy.dtype() == DType::F32 && x.dtype() == DType::F32 && dy.shape() == x.shape()) {
    Tensor dx = Tensor::empty(x.shape(), DType::F32);
    f32(dx.data<float>(), dy.data<float>(), x.data<float>(), x.numel());
    return dx;
  }
  UNROLL_CHECK(x.is_floating(), "backward: input {} must be float32 or float64, got {}", x.shape(), x.dtype());
  Tensor gx = Tensor::empty(x.shape(), x.dtype());
  const int64_t n = x.numel();
  if (x.dtype() == DType::F32) {
    const float* in = x.data<float>();
    float* out = gx.data<float>();
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(g(static_cast<double>(in[i])));
  } else {
    const double* in = x.data<double>();
    double* out = gx.data<double>();
    for (int64_t i = 0; i < n; ++i) out[i] = g(in[i]);
  }
  return dy * gx;
}

constexpr double kTwoOverSqrtPi = std::numbers::inv_sqrtpi * 2.0;               // 2/sqrt(pi)
constexpr double kInvSqrt2 = 1.0 / std::numbers::sqrt2;                         // 1/sqrt(2)
constexpr double kInvSqrt2Pi = std::numbers::inv_sqrtpi / std::numbers::sqrt2;  // 1/sqrt(2 pi)

// The derivatives as the formulas call them: one fused pass on Tensors, a composition of
// differentiable ops on Variables (create_graph).
Tensor erf_backward(const Tensor& dy, const Tensor& x) {
  return scale_by(dy, x, &detail::erf_backward_f32, [](double v) { return kTwoOverSqrtPi * std::exp(-v * v); });
}
Variable erf_backward(const Variable& dy, const Variable& x) { return dy * (kTwoOverSqrtPi * exp(-(x * x))); }
Tensor gelu_backward(const Tensor& dy, const Tensor& x) {
  return scale_by(dy, x, &detail::gelu_backward_f32,
                  [](double v) { return 0.5 * std::erfc(-v * kInvSqrt2) + v * kInvSqrt2Pi * std::exp(-0.5 * v * v); });
}
Variable gelu_backward(const Variable& dy, const Variable& x) {
  return dy * (0.5 * (1.0 + erf(x * kInvSqrt2)) + x * (kInvSqrt2Pi * exp(x * x * -0.5)));
}

}  // namespace

// y = erf x;  dx += dy * 2/sqrt(pi) * e^(-x^2)
Variable erf(const Variable& x) {
  UNROLL_CHECK(x.defined(), "erf: the input is undefined");
  Tensor y = map_floating("erf", x.data(), &detail::erf_f32, [](double v) { return std::erf(v); });
  return record("erf", y, {x}, [xd = x.data()](const auto& dy, auto& g) { g.add(0, erf_backward(dy, g.in(0, xd))); });
}

// y = x Phi(x), Phi(x) = (1 + erf(x/sqrt 2)) / 2;  dx += dy * (Phi(x) + x phi(x)),
// phi(x) = e^(-x^2/2) / sqrt(2 pi). In float64 Phi(x) = erfc(-x/sqrt 2) / 2, which keeps its
// relative accuracy for x < 0 where 1 + erf cancels.
Variable gelu(const Variable& x) {
  UNROLL_CHECK(x.defined(), "gelu: the input is undefined");
  Tensor y =
      map_floating("gelu", x.data(), &detail::gelu_f32, [](double v) { return 0.5 * v * std::erfc(-v * kInvSqrt2); });
  return record("gelu", y, {x}, [xd = x.data()](const auto& dy, auto& g) { g.add(0, gelu_backward(dy, g.in(0, xd))); });
}

}  // namespace unroll
