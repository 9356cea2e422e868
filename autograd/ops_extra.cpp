// Special functions as differentiable ops: erf and the exact GELU. Each computes its value
// and its backward in one elementwise pass over float32 or float64 data (std::erf has no
// core Tensor kernel), with the math in the comment above the op.
#include "autograd/formula.h"

#include <cmath>
#include <numbers>

namespace unroll {

namespace {

// out[i] = f(x[i]) for a float32 or float64 tensor, computed in double.
template <typename F>
Tensor map_floating(const char* op, const Tensor& x, F f) {
  UNROLL_CHECK(x.is_floating(), "{}: input {} must be float32 or float64, got {}", op, x.shape(), x.dtype());
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const int64_t n = x.numel();
  if (x.dtype() == DType::F32) {
    const float* in = x.data<float>();
    float* out = y.data<float>();
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(f(static_cast<double>(in[i])));
  } else {
    const double* in = x.data<double>();
    double* out = y.data<double>();
    for (int64_t i = 0; i < n; ++i) out[i] = f(in[i]);
  }
  return y;
}

// dy * g(x) elementwise (dy and x have one shape and dtype).
template <typename G>
Tensor scale_by(const Tensor& dy, const Tensor& x, G g) {
  return dy * map_floating("backward", x, g);
}

constexpr double kTwoOverSqrtPi = std::numbers::inv_sqrtpi * 2.0;               // 2/sqrt(pi)
constexpr double kInvSqrt2 = 1.0 / std::numbers::sqrt2;                         // 1/sqrt(2)
constexpr double kInvSqrt2Pi = std::numbers::inv_sqrtpi / std::numbers::sqrt2;  // 1/sqrt(2 pi)

// The derivatives as the formulas call them: one fused pass on Tensors, a composition of
// differentiable ops on Variables (create_graph).
Tensor erf_backward(const Tensor& dy, const Tensor& x) {
  return scale_by(dy, x, [](double v) { return kTwoOverSqrtPi * std::exp(-v * v); });
}
Variable erf_backward(const Variable& dy, const Variable& x) { return dy * (kTwoOverSqrtPi * exp(-(x * x))); }
Tensor gelu_backward(const Tensor& dy, const Tensor& x) {
  return scale_by(dy, x, [](double v) {
    return 0.5 * (1.0 + std::erf(v * kInvSqrt2)) + v * kInvSqrt2Pi * std::exp(-0.5 * v * v);
  });
}
Variable gelu_backward(const Variable& dy, const Variable& x) {
  return dy * (0.5 * (1.0 + erf(x * kInvSqrt2)) + x * (kInvSqrt2Pi * exp(x * x * -0.5)));
}

}  // namespace

// y = erf x;  dx += dy * 2/sqrt(pi) * e^(-x^2)
Variable erf(const Variable& x) {
  UNROLL_CHECK(x.defined(), "erf: the input is undefined");
  Tensor y = map_floating("erf", x.data(), [](double v) { return std::erf(v); });
  return record("erf", y, {x}, [xd = x.data()](const auto& dy, auto& g) { g.add(0, erf_backward(dy, g.in(0, xd))); });
}

// y = x Phi(x), Phi(x) = (1 + erf(x/sqrt 2)) / 2;  dx += dy * (Phi(x) + x phi(x)),
// phi(x) = e^(-x^2/2) / sqrt(2 pi)
Variable gelu(const Variable& x) {
  UNROLL_CHECK(x.defined(), "gelu: the input is undefined");
  Tensor y = map_floating("gelu", x.data(), [](double v) { return 0.5 * v * (1.0 + std::erf(v * kInvSqrt2)); });
  return record("gelu", y, {x}, [xd = x.data()](const auto& dy, auto& g) { g.add(0, gelu_backward(dy, g.in(0, xd))); });
}

}  // namespace unroll
