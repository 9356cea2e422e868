// Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_, declared in
// nn/optim.h): one pass over the raw gradient elements of every parameter, in place.
#include "nn/optim.h"

#include "core/dispatch.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace unroll {

using detail::dispatch_float;

namespace {
// |a|^p, with the common p = 2 and p = 1 done without pow.
inline double abs_pow(double a, double p) {
  if (p == 2.0) return a * a;
  if (p == 1.0) return std::abs(a);
  return std::pow(std::abs(a), p);
}
}  // namespace

// norm = (sum |g|^p)^(1/p) (p = inf: max |g|);  g *= max_norm / (norm + 1e-6) if that is < 1
double clip_grad_norm(const std::vector<Variable>& params, double max_norm, double norm_type) {
  UNROLL_CHECK(norm_type > 0, "clip_grad_norm: norm_type must be positive or INFINITY, got {}", norm_type);
  UNROLL_CHECK(max_norm >= 0, "clip_grad_norm: max_norm must be >= 0, got {}", max_norm);
  const bool inf_norm = std::isinf(norm_type);
  double acc = 0;  // sum of |g|^p, or max |g|
  bool any = false;
  for (const Variable& param : params) {
    UNROLL_CHECK(param.defined(), "clip_grad_norm: a parameter is undefined");
    const Tensor& grad = param.grad();
    if (!grad.defined()) continue;
    any = true;
    dispatch_float("clip_grad_norm", grad.dtype(), [&]<typename T>() {
      const T* g = grad.data<T>();
      const int64_t n = grad.numel();
      if (inf_norm) {
        for (int64_t j = 0; j < n; ++j) {
          const double a = std::abs(static_cast<double>(g[j]));
          acc = std::isnan(a) || acc < a ? a : acc;
        }
        return;
      }
      // Eight partial sums in a fixed order: vectorisable and still deterministic. The
      // common L2 norm gets its own loop (no per-element branch on the norm type).
      double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t j = 0;
      if (norm_type == 2.0) {
        for (; j + 8 <= n; j += 8)
          for (int k = 0; k < 8; ++k) {
            const auto v = static_cast<double>(g[j + k]);
            part[k] += v * v;
          }
      } else {
        for (; j + 8 <= n; j += 8)
          for (int k = 0; k < 8; ++k) part[k] += abs_pow(static_cast<double>(g[j + k]), norm_type);
      }
      for (; j < n; ++j) part[0] += abs_pow(static_cast<double>(g[j]), norm_type);
      acc += ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    });
  }
  if (!any) return 0.0;
  const double total = inf_norm || norm_type == 1.0 ? acc : norm_type == 2.0 ? std::sqrt(acc) : std::pow(acc, 1.0 / norm_type);
  const double coef = max_norm / (total + 1e-6);
  if (!(coef >= 1.0)) {  // also NaN, which PyTorch propagates into the gradients too
    for (const Variable& param : params) {
      if (!param.grad().defined()) continue;
      Variable handle = param;
      mul_(handle.grad_mut(), coef);
    }
  }
  return total;
}

// g = clamp(g, -c, c)
void clip_grad_value(const std::vector<Variable>& params, double clip_value) {
  UNROLL_CHECK(clip_value >= 0, "clip_grad_value: clip_value must be >= 0, got {}", clip_value);
  for (const Variable& param : params) {
    UNROLL_CHECK(param.defined(), "clip_grad_value: a parameter is undefined");
    if (!param.grad().defined()) continue;
    Variable handle = param;
    Tensor& grad = handle.grad_mut();
    dispatch_float("clip_grad_value", grad.dtype(), [&]<typename T>() {
      T* g = grad.data<T>();
      const T hi = T(clip_value), lo = -hi;
      const int64_t n = grad.numel();
      for (int64_t j = 0; j < n; ++j) g[j] = std::min(std::max(g[j], lo), hi);
    });
  }
}

}  // namespace unroll
