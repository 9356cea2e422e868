// Pooling (max, average, adaptive average; 1-D and 2-D) and constant padding, with their
// backwards (see core/conv.h). Plain loops over [B, C, H, W] planes: no GEMM here; a 1-D op
// is the 2-D op with height 1, as for convolution (core/conv.cpp).
#include "core/conv.h"

#include "core/conv_shapes.h"
#include "core/dispatch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace unroll {
namespace {
using detail::as_2d;
using detail::dispatch_float;
using detail::shown;
using detail::str2;
}  // namespace

// ---- pooling ----------------------------------------------------------------------------------

namespace {

struct PoolPlan {
  int64_t B, C, H, W, Ho, Wo;
  Size2 k, s, pad;
};

PoolPlan plan_pool(const char* op, const Tensor& x, Size2 k, Size2 s, Size2 pad, bool one_d, bool pad_le_half) {
  UNROLL_CHECK(x.defined(), "{}: the input is undefined", op);
  UNROLL_CHECK(x.is_floating(), "{}: expected a float32 or float64 input, got {}", op, x.dtype());
  UNROLL_CHECK(x.ndim() == 4, "{}: input {} must be {}", op, shown(x.shape(), one_d), one_d ? "3-D [B, C, T]" : "4-D [B, C, H, W]");
  if (s.h == 0 && s.w == 0) s = k;
  UNROLL_CHECK(k.h > 0 && k.w > 0, "{}: kernel_size must be positive, got {}", op, str2(k, one_d));
  UNROLL_CHECK(s.h > 0 && s.w > 0, "{}: stride must be positive, got {}", op, str2(s, one_d));
  UNROLL_CHECK(pad.h >= 0 && pad.w >= 0, "{}: padding must be >= 0, got {}", op, str2(pad, one_d));
  UNROLL_CHECK(!pad_le_half || (2 * pad.h <= k.h && 2 * pad.w <= k.w),
               "{}: padding {} must be at most half the kernel size {}", op, str2(pad, one_d), str2(k, one_d));
  PoolPlan p{x.size(0), x.size(1), x.size(2), x.size(3), 0, 0, k, s, pad};
  p.Ho = conv_output_size(p.H, k.h, s.h, pad.h);
  p.Wo = conv_output_size(p.W, k.w, s.w, pad.w);
  UNROLL_CHECK(p.Ho > 0 && p.Wo > 0, "{}: input {} is too small for kernel {} with padding {} (the output would be {})",
               op, shown(x.shape(), one_d), str2(k, one_d), str2(pad, one_d), str2({p.Ho, p.Wo}, one_d));
  return p;
}

Tensor max_pool_impl(const char* op, const Tensor& x, Size2 k, Size2 s, Size2 pad, Tensor* argmax, bool one_d) {
  const PoolPlan p = plan_pool(op, x, k, s, pad, one_d, true);
  Tensor y = Tensor::empty({p.B, p.C, p.Ho, p.Wo}, x.dtype());
  Tensor idx = Tensor::empty(y.shape(), DType::I64);
  dispatch_float(op, x.dtype(), [&]<typename T>() {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    int64_t* ip = idx.data<int64_t>();
    for (int64_t plane = 0; plane < p.B * p.C; ++plane, xp += p.H * p.W) {
      for (int64_t i = 0; i < p.Ho; ++i) {
        const int64_t h0 = i * p.s.h - p.pad.h, h1 = std::min(h0 + p.k.h, p.H);
        for (int64_t j = 0; j < p.Wo; ++j, ++yp, ++ip) {
          const int64_t w0 = j * p.s.w - p.pad.w, w1 = std::min(w0 + p.k.w, p.W);
          T best = -std::numeric_limits<T>::infinity();
          int64_t at = -1;
          for (int64_t h = std::max<int64_t>(h0, 0); h < h1; ++h)
            for (int64_t w = std::max<int64_t>(w0, 0); w < w1; ++w) {
              const T v = xp[h * p.W + w];
              if (at < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {  // the first NaN wins
                best = v;
                at = h * p.W + w;
              }
            }
          *yp = best;
          *ip = at;
        }
      }
    }
  });
  if (argmax) *argmax = std::move(idx);
  return y;
}

Tensor avg_pool_impl(const char* op, const Tensor& x, Size2 k, Size2 s, Size2 pad, bool one_d) {
  const PoolPlan p = plan_pool(op, x, k, s, pad, one_d, true);
  Tensor y = Tensor::empty({p.B, p.C, p.Ho, p.Wo}, x.dtype());
  dispatch_float(op, x.dtype(), [&]<typename T>() {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const T inv = T(1) / static_cast<T>(p.k.h * p.k.w);
    for (int64_t plane = 0; plane < p.B * p.C; ++plane, xp += p.H * p.W)
      for (int64_t i = 0; i < p.Ho; ++i) {
        const int64_t h0 = i * p.s.h - p.pad.h, h1 = std::min(h0 + p.k.h, p.H);
        for (int64_t j = 0; j < p.Wo; ++j, ++yp) {
          const int64_t w0 = j * p.s.w - p.pad.w, w1 = std::min(w0 + p.k.w, p.W);
          T acc = 0;
          for (int64_t h = std::max<int64_t>(h0, 0); h < h1; ++h)
            for (int64_t w = std::max<int64_t>(w0, 0); w < w1; ++w) acc += xp[h * p.W + w];
          *yp = acc * inv;
        }
      }
  });
  return y;
}

/// torch's adaptive windows: [floor(i in / out), ceil((i + 1) in / out)).
int64_t win_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
int64_t win_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

Tensor adaptive_impl(const char* op, const Tensor& x, Size2 out, bool one_d) {
  UNROLL_CHECK(x.defined(), "{}: the input is undefined", op);
  UNROLL_CHECK(x.is_floating(), "{}: expected a float32 or float64 input, got {}", op, x.dtype());
  UNROLL_CHECK(x.ndim() == 4, "{}: input {} must be {}", op, shown(x.shape(), one_d), one_d ? "3-D [B, C, T]" : "4-D [B, C, H, W]");
  UNROLL_CHECK(out.h > 0 && out.w > 0, "{}: output size must be positive, got {}", op, str2(out, one_d));
  const int64_t H = x.size(2), W = x.size(3);
  UNROLL_CHECK(H > 0 && W > 0, "{}: input {} has an empty spatial dimension", op, shown(x.shape(), one_d));
  Tensor y = Tensor::empty({x.size(0), x.size(1), out.h, out.w}, x.dtype());
  dispatch_float(op, x.dtype(), [&]<typename T>() {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for (int64_t plane = 0; plane < x.size(0) * x.size(1); ++plane, xp += H * W)
      for (int64_t i = 0; i < out.h; ++i) {
        const int64_t h0 = win_start(i, H, out.h), h1 = win_end(i, H, out.h);
        for (int64_t j = 0; j < out.w; ++j, ++yp) {
          const int64_t w0 = win_start(j, W, out.w), w1 = win_end(j, W, out.w);
          T acc = 0;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) acc += xp[h * W + w];
          *yp = acc / static_cast<T>((h1 - h0) * (w1 - w0));
        }
      }
  });
  return y;
}

Tensor as_4d(const Tensor& x, const char* op) {
  UNROLL_CHECK(x.defined(), "{}: the input is undefined", op);
  UNROLL_CHECK(x.ndim() == 3, "{}: input {} must be 3-D [B, C, T]", op, x.shape());
  return x.reshape(as_2d(x.shape()));
}
Tensor as_3d(const Tensor& y) { return y.reshape({y.size(0), y.size(1), y.size(3)}); }

}  // namespace

Tensor max_pool2d(const Tensor& x, Size2 k, Size2 s, Size2 pad, Tensor* argmax) {
  return max_pool_impl("max_pool2d", x, k, s, pad, argmax, false);
}
Tensor avg_pool2d(const Tensor& x, Size2 k, Size2 s, Size2 pad) { return avg_pool_impl("avg_pool2d", x, k, s, pad, false); }
Tensor adaptive_avg_pool2d(const Tensor& x, Size2 out) { return adaptive_impl("adaptive_avg_pool2d", x, out, false); }

Tensor max_pool1d(const Tensor& x, int64_t k, int64_t s, int64_t pad, Tensor* argmax) {
  Tensor y = max_pool_impl("max_pool1d", as_4d(x, "max_pool1d"), {1, k}, {s == 0 ? 0 : 1, s}, {0, pad}, argmax, true);
  if (argmax) *argmax = as_3d(*argmax);
  return as_3d(y);
}
Tensor avg_pool1d(const Tensor& x, int64_t k, int64_t s, int64_t pad) {
  return as_3d(avg_pool_impl("avg_pool1d", as_4d(x, "avg_pool1d"), {1, k}, {s == 0 ? 0 : 1, s}, {0, pad}, true));
}
Tensor adaptive_avg_pool1d(const Tensor& x, int64_t out) {
  return as_3d(adaptive_impl("adaptive_avg_pool1d", as_4d(x, "adaptive_avg_pool1d"), {1, out}, true));
}

Tensor max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const Shape& x_shape) {
  UNROLL_CHECK(dy.numel() == argmax.numel() && argmax.dtype() == DType::I64,
               "max_pool backward: gradient {} and argmax {} do not match", dy.shape(), argmax.shape());
  Tensor dx = zeros(x_shape, dy.dtype());
  const int64_t planes = x_shape[0] * x_shape[1];
  const int64_t in_plane = x_shape.numel() / std::max<int64_t>(planes, 1);
  const int64_t out_plane = dy.numel() / std::max<int64_t>(planes, 1);
  dispatch_float("max_pool backward", dy.dtype(), [&]<typename T>() {
    const T* g = dy.data<T>();
    const int64_t* at = argmax.data<int64_t>();
    T* d = dx.data<T>();
    for (int64_t plane = 0; plane < planes; ++plane, d += in_plane)
      for (int64_t q = 0; q < out_plane; ++q, ++g, ++at)
        if (*at >= 0) d[*at] += *g;  // -1: a window of padding only (cannot happen with pad <= k/2)
  });
  return dx;
}

Tensor avg_pool2d_backward(const Tensor& dy, const Shape& xs, Size2 k, Size2 s, Size2 pad) {
  if (s.h == 0 && s.w == 0) s = k;
  Tensor dx = zeros(xs, dy.dtype());
  const int64_t H = xs[xs.ndim() - 2], W = xs[xs.ndim() - 1];
  const int64_t Ho = dy.size(-2), Wo = dy.size(-1);
  const int64_t planes = xs.numel() / std::max<int64_t>(H * W, 1);
  dispatch_float("avg_pool backward", dy.dtype(), [&]<typename T>() {
    const T* g = dy.data<T>();
    T* d = dx.data<T>();
    const T inv = T(1) / static_cast<T>(k.h * k.w);
    for (int64_t plane = 0; plane < planes; ++plane, d += H * W)
      for (int64_t i = 0; i < Ho; ++i) {
        const int64_t h0 = i * s.h - pad.h, h1 = std::min(h0 + k.h, H);
        for (int64_t j = 0; j < Wo; ++j, ++g) {
          const int64_t w0 = j * s.w - pad.w, w1 = std::min(w0 + k.w, W);
          for (int64_t h = std::max<int64_t>(h0, 0); h < h1; ++h)
            for (int64_t w = std::max<int64_t>(w0, 0); w < w1; ++w) d[h * W + w] += *g * inv;
        }
      }
  });
  return dx;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Shape& xs) {
  Tensor dx = zeros(xs, dy.dtype());
  const int64_t H = xs[xs.ndim() - 2], W = xs[xs.ndim() - 1];
  const int64_t Ho = dy.size(-2), Wo = dy.size(-1);
  const int64_t planes = xs.numel() / std::max<int64_t>(H * W, 1);
  dispatch_float("adaptive_avg_pool backward", dy.dtype(), [&]<typename T>() {
    const T* g = dy.data<T>();
    T* d = dx.data<T>();
    for (int64_t plane = 0; plane < planes; ++plane, d += H * W)
      for (int64_t i = 0; i < Ho; ++i) {
        const int64_t h0 = win_start(i, H, Ho), h1 = win_end(i, H, Ho);
        for (int64_t j = 0; j < Wo; ++j, ++g) {
          const int64_t w0 = win_start(j, W, Wo), w1 = win_end(j, W, Wo);
          const T share = *g / static_cast<T>((h1 - h0) * (w1 - w0));
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) d[h * W + w] += share;
        }
      }
  });
  return dx;
}

// ---- padding ----------------------------------------------------------------------------------

namespace {
/// The padded shape, after checking pads (an even count, at most 2 per dimension, >= 0).
Shape padded_shape(const char* op, const Shape& s, std::span<const int64_t> pads) {
  UNROLL_CHECK(pads.size() % 2 == 0 && !pads.empty(), "{}: pads must come in (before, after) pairs, got {} numbers", op,
               pads.size());
  UNROLL_CHECK(static_cast<int>(pads.size() / 2) <= s.ndim(), "{}: {} pairs of pads for a {}-D input {}", op,
               pads.size() / 2, s.ndim(), s);
  std::vector<int64_t> dims(s.begin(), s.end());
  for (size_t i = 0; i < pads.size(); ++i) {
    UNROLL_CHECK(pads[i] >= 0, "{}: pads must be >= 0 (crop with narrow), got {} at position {} for input {}", op,
                 pads[i], i, s);
    dims[dims.size() - 1 - i / 2] += pads[i];
  }
  return Shape(std::span<const int64_t>(dims));
}

/// Copies between x (shape xs) and the padded tensor (shape ps): to_padded selects the
/// direction. Works row by row over the last axis.
template <typename T>
void copy_padded(const Shape& xs, const Shape& ps, std::span<const int64_t> pads, const T* src, T* dst, bool to_padded) {
  const int nd = xs.ndim();
  std::vector<int64_t> before(static_cast<size_t>(nd), 0);
  for (size_t i = 0; i < pads.size(); i += 2) before[static_cast<size_t>(nd - 1) - i / 2] = pads[i];
  const int64_t row = nd > 0 ? xs[nd - 1] : 1;
  const int64_t rows = row == 0 ? 0 : xs.numel() / row;
  std::vector<int64_t> idx(static_cast<size_t>(std::max(nd - 1, 0)), 0);  // index of the row in x
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off = 0;  // offset of the row's first element in the padded tensor
    for (int d = 0; d < nd - 1; ++d) off = off * ps[d] + idx[static_cast<size_t>(d)] + before[static_cast<size_t>(d)];
    off = off * (nd > 0 ? ps[nd - 1] : 1) + (nd > 0 ? before[static_cast<size_t>(nd - 1)] : 0);
    if (to_padded) std::memcpy(dst + off, src + r * row, static_cast<size_t>(row) * sizeof(T));
    else std::memcpy(dst + r * row, src + off, static_cast<size_t>(row) * sizeof(T));
    for (int d = nd - 2; d >= 0; --d) {  // next row index
      if (++idx[static_cast<size_t>(d)] < xs[d]) break;
      idx[static_cast<size_t>(d)] = 0;
    }
  }
}
}  // namespace

Tensor pad(const Tensor& x, std::span<const int64_t> pads, double value) {
  UNROLL_CHECK(x.defined(), "pad: the input is undefined");
  const Shape ps = padded_shape("pad", x.shape(), pads);
  Tensor y = full(ps, value, x.dtype());
  if (x.numel() == 0) return y;
  if (x.dtype() == DType::I64) {
    copy_padded<int64_t>(x.shape(), ps, pads, x.data<int64_t>(), y.data<int64_t>(), true);
    return y;
  }
  dispatch_float("pad", x.dtype(), [&]<typename T>() { copy_padded<T>(x.shape(), ps, pads, x.data<T>(), y.data<T>(), true); });
  return y;
}

Tensor unpad(const Tensor& padded, std::span<const int64_t> pads) {
  UNROLL_CHECK(padded.defined(), "unpad: the input is undefined");
  UNROLL_CHECK(pads.size() % 2 == 0 && static_cast<int>(pads.size() / 2) <= padded.ndim(),
               "unpad: {} pads for a {}-D tensor {}", pads.size(), padded.ndim(), padded.shape());
  std::vector<int64_t> dims(padded.shape().begin(), padded.shape().end());
  for (size_t i = 0; i < pads.size(); ++i) {
    dims[dims.size() - 1 - i / 2] -= pads[i];
    UNROLL_CHECK(pads[i] >= 0 && dims[dims.size() - 1 - i / 2] >= 0, "unpad: pads do not fit the tensor {}",
                 padded.shape());
  }
  const Shape xs{std::span<const int64_t>(dims)};
  Tensor x = Tensor::empty(xs, padded.dtype());
  if (x.numel() == 0) return x;
  dispatch_float("unpad", padded.dtype(),
                 [&]<typename T>() { copy_padded<T>(xs, padded.shape(), pads, padded.data<T>(), x.data<T>(), false); });
  return x;
}

}  // namespace unroll
