// Reductions: sum_to (the adjoint of broadcasting), reductions along an axis (sum, mean,
// max, min, argmax) and the softmax family (softmax, log_softmax and their one-pass
// backwards). A reduction along `axis` views x as [outer, n, inner] (detail::view3); the
// result is [outer, inner]. Float rows of softmax run on the kernels of core/fast_math.h.
#include "core/dispatch.h"
#include "core/fast_math.h"
#include "core/loops.h"
#include "core/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace unroll {

// A reduction along `axis` views x as [outer, n, inner]; the result is [outer, inner].

namespace {

using detail::Axis3;
using detail::check_defined;
using detail::check_same_dtype;
using detail::dispatch_float;
using detail::exp_shifted_f32;
using detail::log_softmax_grad_f32;
using detail::make_plan;
using detail::max_f32;
using detail::Plan;
using detail::run_plan;
using detail::sum_contig;
using detail::sum_f32;
using detail::update;
using detail::view3;

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

}  // namespace unroll
