// Elementwise kernels: unary and binary ops with broadcasting, comparisons and the logical
// ops, broadcast_to, in-place updates, where/masked_fill and the comparison helpers.
// Reductions (sum_to among them) and softmax are in core/reduce.cpp, matrix products in
// core/matmul.cpp, the vectorised float32 transcendentals in core/fast_math.cpp.
//
// Every op validates its arguments, dispatches ONCE on the dtype to a template kernel over
// the element type (float or double; int64 only where noted), and runs plain loops that
// the compiler can vectorise (core/loops.h). No allocation other than the output tensor.
#include "core/dispatch.h"
#include "core/fast_math.h"
#include "core/loops.h"
#include "core/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace unroll {
namespace {

using detail::check_defined;
using detail::check_same_dtype;
using detail::dispatch_any;
using detail::dispatch_float;
using detail::is_trailing;
using detail::kBlock;
using detail::make_plan;
using detail::map1;
using detail::map2;
using detail::Plan;
using detail::run_plan;
using detail::sigmoid_f32;
using detail::tanh_f32;
using detail::update;

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
Tensor binary_same(const char* op, const Tensor& a, const Tensor& b, F f);

template <typename F>
Tensor binary(const char* op, const Tensor& a, const Tensor& b, F f) {
  check_defined(op, a);
  check_defined(op, b);
  if (a.dtype() != b.dtype() && (a.dtype() == DType::Bool || b.dtype() == DType::Bool)) [[unlikely]]
    return binary_same(op, promote_bool(a, b), promote_bool(b, a), f);
  return binary_same(op, a, b, f);
}

template <typename F>
Tensor binary_same(const char* op, const Tensor& a, const Tensor& b, F f) {
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
