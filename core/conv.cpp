// Convolution as a GEMM (see core/conv.h); pooling and constant padding are in core/pool.cpp.
//
// Note [convolution as a GEMM]
// For one sample and one group, output channel o at output position p = (i, j) is
//   y[o, p] = sum over (c, ki, kj) of w[o, c, ki, kj] * x[c, i*sh - ph + ki*dh, j*sw - pw + kj*dw]
// (zero outside the input). Unfold the input into the matrix
//   col[(c, ki, kj), p] = x[c, i*sh - ph + ki*dh, j*sw - pw + kj*dw]        (im2col)
// of Cg*kH*kW rows and H'*W' columns; then y = W col, with W the weight viewed as
// [Og, Cg*kH*kW]: one GEMM. The gradients are GEMMs of the same matrices:
//   dW += dY col^T          dcol = W^T dY,  dx += fold(dcol)            (col2im)
// where fold adds every entry of dcol back to the input element it was copied from.
//
// Small outputs (an 8x8 image has 64 positions) make a thin GEMM, so several samples are
// unfolded side by side into one col of nb*H'*W' columns and multiplied at once; their
// outputs are then scattered to [B, O, H', W']. A 1x1 convolution with stride 1 and no
// padding needs no unfolding at all: col is the input itself.
#include "core/conv.h"

#include "core/conv_shapes.h"
#include "core/dispatch.h"
#include "core/gemm.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace unroll {
namespace {

template <typename T>
constexpr DType dtype_of() {
  return std::is_same_v<T, float> ? DType::F32 : DType::F64;
}

using detail::as_2d;
using detail::dispatch_float;
using detail::shown;
using detail::str2;

// ---- geometry ---------------------------------------------------------------------------

/// Everything the kernels need about one convolution, with the sizes resolved.
struct ConvPlan {
  int64_t B, C, H, W;    // input
  int64_t O, kH, kW;     // weight [O, Cg, kH, kW]
  int64_t Ho, Wo;        // output
  int64_t groups, Cg, Og;
  Conv2dGeometry g;
  int64_t P() const { return Ho * Wo; }           // output positions per sample
  int64_t Kg() const { return Cg * kH * kW; }      // rows of col per group
  bool no_unfold() const {                          // col is the input itself
    return kH == 1 && kW == 1 && g.stride == Size2(1) && g.padding == Size2(0);
  }
  /// Samples unfolded side by side per GEMM: enough for ~1024 columns, at most B (measured
  /// against 512 and 2048 on the bench_conv shapes: 1024 was best or equal on every one).
  int64_t batch() const { return no_unfold() ? 1 : std::clamp<int64_t>((1024 + P() - 1) / P(), 1, B); }
};

ConvPlan plan_conv(const char* op, const Shape& xs, const Shape& ws, const Tensor& b, const Conv2dGeometry& g,
                   bool one_d) {
  const int nd = one_d ? 3 : 4;
  const char* x_form = one_d ? "[B, C, T]" : "[B, C, H, W]";
  const char* w_form = one_d ? "[out, in/groups, K]" : "[out, in/groups, kH, kW]";
  UNROLL_CHECK(xs.ndim() == 4, "{}: input {} must be {}-D {}", op, shown(xs, one_d), nd, x_form);
  UNROLL_CHECK(ws.ndim() == 4, "{}: weight {} must be {}-D {}", op, shown(ws, one_d), nd, w_form);
  ConvPlan p{};
  p.B = xs[0], p.C = xs[1], p.H = xs[2], p.W = xs[3];
  p.O = ws[0], p.kH = ws[2], p.kW = ws[3];
  p.g = g;
  p.groups = g.groups;
  UNROLL_CHECK(g.stride.h > 0 && g.stride.w > 0, "{}: stride must be positive, got {}", op, str2(g.stride, one_d));
  UNROLL_CHECK(g.dilation.h > 0 && g.dilation.w > 0, "{}: dilation must be positive, got {}", op,
               str2(g.dilation, one_d));
  UNROLL_CHECK(g.padding.h >= 0 && g.padding.w >= 0, "{}: padding must be >= 0, got {}", op, str2(g.padding, one_d));
  UNROLL_CHECK(g.groups > 0, "{}: groups must be positive, got {}", op, g.groups);
  UNROLL_CHECK(p.C % g.groups == 0 && p.O % g.groups == 0,
               "{}: input channels {} and output channels {} must both be divisible by groups {}", op, p.C, p.O,
               g.groups);
  p.Cg = p.C / g.groups;
  p.Og = p.O / g.groups;
  UNROLL_CHECK(ws[1] == p.Cg, "{}: input {} has {} channels, so with groups={} the weight {} needs {} in dim 1, not {}",
               op, shown(xs, one_d), p.C, g.groups, shown(ws, one_d), p.Cg, ws[1]);
  UNROLL_CHECK(p.kH > 0 && p.kW > 0 && p.O > 0, "{}: weight {} has an empty dimension", op, shown(ws, one_d));
  UNROLL_CHECK(!b.defined() || (b.ndim() == 1 && b.shape()[0] == p.O), "{}: bias {} does not match weight {} (expected [{}])",
               op, b.defined() ? b.shape() : Shape{}, shown(ws, one_d), p.O);
  p.Ho = conv_output_size(p.H, p.kH, g.stride.h, g.padding.h, g.dilation.h);
  p.Wo = conv_output_size(p.W, p.kW, g.stride.w, g.padding.w, g.dilation.w);
  UNROLL_CHECK(p.Ho > 0 && p.Wo > 0,
               "{}: input {} is too small for kernel {} with padding {} and dilation {} (the output would be {})", op,
               shown(xs, one_d), str2({p.kH, p.kW}, one_d), str2(g.padding, one_d), str2(g.dilation, one_d),
               str2({p.Ho, p.Wo}, one_d));
  return p;
}

void check_conv_tensors(const char* op, const Tensor& x, const Tensor& w, const Tensor& b) {
  UNROLL_CHECK(x.defined() && w.defined(), "{}: the input or the weight is undefined", op);
  UNROLL_CHECK(x.dtype() == w.dtype() && (!b.defined() || b.dtype() == x.dtype()),
               "{}: input is {} but the weight is {}{} (convert with module.to())", op, x.dtype(), w.dtype(),
               b.defined() && b.dtype() != w.dtype() ? fmt::format(" and the bias {}", b.dtype()) : "");
  UNROLL_CHECK(x.is_floating(), "{}: expected a float32 or float64 input, got {}", op, x.dtype());
}

// ---- im2col / col2im ----------------------------------------------------------------------

/// Output columns [j0, j1) of a kernel column at offset off (= kj*dw - pw) read input columns
/// j*sw + off inside [0, W); the others read the zero padding.
inline std::pair<int64_t, int64_t> valid_columns(int64_t off, int64_t sw, int64_t W, int64_t Wo) {
  const int64_t j0 = std::clamp<int64_t>(off >= 0 ? 0 : (-off + sw - 1) / sw, 0, Wo);
  const int64_t j1 = std::clamp<int64_t>(W - off <= 0 ? 0 : (W - off + sw - 1) / sw, j0, Wo);
  return {j0, j1};
}

/// col[(c, ki, kj), j*P + p] for channels c of x (one sample, [Cg, H, W]); row stride ldc.
/// The rows are short for small images (8 floats for 8x8), so they are written by plain
/// loops, not by memcpy/memset calls; kStride1 lets the compiler vectorise the copy.
template <bool kStride1, typename T>
void im2col_rows(const ConvPlan& p, const T* x, T* col, int64_t ldc) {
  const auto [sh, sw] = p.g.stride;
  const auto [ph, pw] = p.g.padding;
  const auto [dh, dw] = p.g.dilation;
  const int64_t Wo = p.Wo;
  for (int64_t c = 0; c < p.Cg; ++c) {
    const T* xc = x + c * p.H * p.W;
    for (int64_t ki = 0; ki < p.kH; ++ki) {
      for (int64_t kj = 0; kj < p.kW; ++kj, col += ldc) {
        const int64_t off = kj * dw - pw;
        const auto [j0, j1] = valid_columns(off, sw, p.W, Wo);
        T* dst = col;
        for (int64_t i = 0; i < p.Ho; ++i, dst += Wo) {
          const int64_t ih = i * sh - ph + ki * dh;
          if (ih < 0 || ih >= p.H) {
            for (int64_t j = 0; j < Wo; ++j) dst[j] = T(0);
            continue;
          }
          const T* src = xc + ih * p.W + off;  // output column j reads src[j * sw]
          for (int64_t j = 0; j < j0; ++j) dst[j] = T(0);
          if constexpr (kStride1)
            for (int64_t j = j0; j < j1; ++j) dst[j] = src[j];
          else
            for (int64_t j = j0; j < j1; ++j) dst[j] = src[j * sw];
          for (int64_t j = j1; j < Wo; ++j) dst[j] = T(0);
        }
      }
    }
  }
}

/// The common "same" case (stride 1, Wo == W): the valid rows of one kernel offset are one
/// contiguous run of x, copied at once; then the few edge columns that read across a row
/// boundary are set to zero.
template <typename T>
void im2col_same(const ConvPlan& p, const T* x, T* col, int64_t ldc) {
  const int64_t W = p.W, H = p.H, Ho = p.Ho, HW = H * W;
  for (int64_t c = 0; c < p.Cg; ++c) {
    const T* xc = x + c * HW;
    for (int64_t ki = 0; ki < p.kH; ++ki) {
      const int64_t shift = ki * p.g.dilation.h - p.g.padding.h;  // ih = i + shift
      const int64_t i0 = std::clamp<int64_t>(-shift, 0, Ho), i1 = std::clamp<int64_t>(H - shift, i0, Ho);
      for (int64_t kj = 0; kj < p.kW; ++kj, col += ldc) {
        const int64_t off = kj * p.g.dilation.w - p.g.padding.w;
        const auto [j0, j1] = valid_columns(off, 1, W, W);
        std::fill(col, col + i0 * W, T(0));
        std::fill(col + i1 * W, col + Ho * W, T(0));
        // dst[i*W + j] = xc[(i + shift)*W + j + off] for i in [i0, i1): one run of source,
        // clipped to x's plane (the clipped ends are edge columns, zeroed below).
        const int64_t first = (i0 + shift) * W + off, last = (i1 + shift) * W + off;
        const int64_t a = std::max<int64_t>(first, 0), b = std::min<int64_t>(last, HW);
        if (b > a) std::memcpy(col + i0 * W + (a - first), xc + a, static_cast<size_t>(b - a) * sizeof(T));
        for (int64_t i = i0; i < i1; ++i) {
          T* row = col + i * W;
          for (int64_t j = 0; j < j0; ++j) row[j] = T(0);
          for (int64_t j = j1; j < W; ++j) row[j] = T(0);
        }
      }
    }
  }
}

template <typename T>
void im2col(const ConvPlan& p, const T* x, T* col, int64_t ldc) {
  if (p.g.stride == Size2(1) && p.Wo == p.W)
    im2col_same(p, x, col, ldc);
  else if (p.g.stride.w == 1)
    im2col_rows<true>(p, x, col, ldc);
  else
    im2col_rows<false>(p, x, col, ldc);
}

/// dx[c, ...] += every entry of dcol at the input element im2col copied it from.
template <bool kStride1, typename T>
void col2im_rows(const ConvPlan& p, const T* col, int64_t ldc, T* dx) {
  const auto [sh, sw] = p.g.stride;
  const auto [ph, pw] = p.g.padding;
  const auto [dh, dw] = p.g.dilation;
  for (int64_t c = 0; c < p.Cg; ++c) {
    T* xc = dx + c * p.H * p.W;
    for (int64_t ki = 0; ki < p.kH; ++ki) {
      for (int64_t kj = 0; kj < p.kW; ++kj, col += ldc) {
        const int64_t off = kj * dw - pw;
        const auto [j0, j1] = valid_columns(off, sw, p.W, p.Wo);
        const T* src = col;
        for (int64_t i = 0; i < p.Ho; ++i, src += p.Wo) {
          const int64_t ih = i * sh - ph + ki * dh;
          if (ih < 0 || ih >= p.H) continue;
          T* dst = xc + ih * p.W + off;
          if constexpr (kStride1)
            for (int64_t j = j0; j < j1; ++j) dst[j] += src[j];
          else
            for (int64_t j = j0; j < j1; ++j) dst[j * sw] += src[j];
        }
      }
    }
  }
}

template <typename T>
void col2im(const ConvPlan& p, const T* col, int64_t ldc, T* dx) {
  if (p.g.stride.w == 1)
    col2im_rows<true>(p, col, ldc, dx);
  else
    col2im_rows<false>(p, col, ldc, dx);
}

/// The columns of samples n0..n0+m, group gi, side by side ([Kg, ld]): x itself when the
/// convolution needs no unfolding, else written into buf by im2col.
template <typename T>
const T* unfold(const ConvPlan& p, const T* x, int64_t n0, int64_t m, int64_t gi, int64_t ld, Tensor& buf) {
  if (p.no_unfold()) return x + (n0 * p.C + gi * p.Cg) * p.P();
  T* c = buf.data<T>();
  for (int64_t j = 0; j < m; ++j) im2col(p, x + ((n0 + j) * p.C + gi * p.Cg) * p.H * p.W, c + j * p.P(), ld);
  return c;
}

// ---- the three products ---------------------------------------------------------------------

template <typename T>
void conv_forward(const ConvPlan& p, const T* x, const T* w, const T* b, T* y) {
  const int64_t P = p.P(), Kg = p.Kg(), nb = p.batch();
  const int64_t ld = nb * P;  // columns of col and of the GEMM's output
  Tensor col_t, out_t;
  if (!p.no_unfold()) col_t = Tensor::empty({Kg, ld}, dtype_of<T>());
  if (nb > 1) out_t = Tensor::empty({p.Og, ld}, dtype_of<T>());
  for (int64_t n0 = 0; n0 < p.B; n0 += nb) {
    const int64_t m = std::min(nb, p.B - n0);  // samples in this chunk
    for (int64_t gi = 0; gi < p.groups; ++gi) {
      const T* col = unfold(p, x, n0, m, gi, ld, col_t);
      const T* wg = w + gi * p.Og * Kg;
      if (nb == 1) {  // straight into y[n0, gi*Og:, :]
        kernels::gemm(false, false, p.Og, P, Kg, T(1), wg, Kg, col, ld, T(0), y + (n0 * p.O + gi * p.Og) * P, P);
        continue;
      }
      T* out = out_t.data<T>();
      kernels::gemm(false, false, p.Og, m * P, Kg, T(1), wg, Kg, col, ld, T(0), out, ld);
      for (int64_t j = 0; j < m; ++j)
        for (int64_t o = 0; o < p.Og; ++o)
          std::memcpy(y + ((n0 + j) * p.O + gi * p.Og + o) * P, out + o * ld + j * P, static_cast<size_t>(P) * sizeof(T));
    }
  }
  if (b)
    for (int64_t n = 0; n < p.B; ++n)
      for (int64_t o = 0; o < p.O; ++o) {
        T* row = y + (n * p.O + o) * P;
        for (int64_t q = 0; q < P; ++q) row[q] += b[o];
      }
}

/// dY of samples n0..n0+m, group gi, as one [Og, m*P] matrix (a view when m == 1).
template <typename T>
const T* gather_dy(const ConvPlan& p, const T* dy, int64_t n0, int64_t m, int64_t gi, int64_t ld, T* buf) {
  const int64_t P = p.P();
  if (m == 1 && ld == P) return dy + (n0 * p.O + gi * p.Og) * P;
  for (int64_t j = 0; j < m; ++j)
    for (int64_t o = 0; o < p.Og; ++o)
      std::memcpy(buf + o * ld + j * P, dy + ((n0 + j) * p.O + gi * p.Og + o) * P, static_cast<size_t>(P) * sizeof(T));
  return buf;
}

template <typename T>
void conv_weight_grad(const ConvPlan& p, const T* dy, const T* x, T* dw) {
  const int64_t P = p.P(), Kg = p.Kg(), nb = p.batch(), ld = nb * P;
  Tensor col_t = p.no_unfold() ? Tensor() : Tensor::empty({Kg, ld}, dtype_of<T>());
  Tensor dy_t = nb > 1 ? Tensor::empty({p.Og, ld}, dtype_of<T>()) : Tensor();
  for (int64_t n0 = 0; n0 < p.B; n0 += nb) {
    const int64_t m = std::min(nb, p.B - n0);
    for (int64_t gi = 0; gi < p.groups; ++gi) {
      const T* col = unfold(p, x, n0, m, gi, ld, col_t);
      const T* dyg = gather_dy(p, dy, n0, m, gi, nb > 1 ? ld : P, nb > 1 ? dy_t.data<T>() : nullptr);
      // dW_g [Og, Kg] += dY_g [Og, m*P] col^T [m*P, Kg]
      kernels::gemm(false, true, p.Og, Kg, m * P, T(1), dyg, nb > 1 ? ld : P, col, ld, T(1), dw + gi * p.Og * Kg, Kg);
    }
  }
}

template <typename T>
void conv_input_grad(const ConvPlan& p, const T* dy, const T* w, T* dx) {
  const int64_t P = p.P(), Kg = p.Kg(), nb = p.batch(), ld = nb * P;
  Tensor dcol_t = Tensor::empty({Kg, ld}, dtype_of<T>());
  Tensor dy_t = nb > 1 ? Tensor::empty({p.Og, ld}, dtype_of<T>()) : Tensor();
  for (int64_t n0 = 0; n0 < p.B; n0 += nb) {
    const int64_t m = std::min(nb, p.B - n0);
    for (int64_t gi = 0; gi < p.groups; ++gi) {
      const T* dyg = gather_dy(p, dy, n0, m, gi, nb > 1 ? ld : P, nb > 1 ? dy_t.data<T>() : nullptr);
      T* dxg = dx + (n0 * p.C + gi * p.Cg) * p.H * p.W;
      if (p.no_unfold()) {  // dx_g [Cg, P] = W_g^T [Cg, Og] dY_g [Og, P], written in place
        kernels::gemm(true, false, Kg, P, p.Og, T(1), w + gi * p.Og * Kg, Kg, dyg, P, T(0), dxg, P);
        continue;
      }
      T* dcol = dcol_t.data<T>();
      kernels::gemm(true, false, Kg, m * P, p.Og, T(1), w + gi * p.Og * Kg, Kg, dyg, nb > 1 ? ld : P, T(0), dcol, ld);
      for (int64_t j = 0; j < m; ++j) col2im(p, dcol + j * P, ld, dxg + j * p.C * p.H * p.W);
    }
  }
}

}  // namespace

int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation) {
  const int64_t span = in + 2 * padding - dilation * (kernel - 1) - 1;  // the last window's start
  return span < 0 ? 0 : span / stride + 1;  // (not C++'s truncating division of a negative span)
}

// ---- convolution ------------------------------------------------------------------------------

namespace {
Tensor conv_impl(const char* op, const Tensor& x4, const Tensor& w4, const Tensor& b, const Conv2dGeometry& g,
                 bool one_d) {
  const ConvPlan p = plan_conv(op, x4.shape(), w4.shape(), b, g, one_d);
  Tensor y = Tensor::empty({p.B, p.O, p.Ho, p.Wo}, x4.dtype());
  if (p.B == 0 || p.C == 0) {
    fill_(y, 0.0);
    if (b.defined()) y = y + b.reshape({p.O, 1, 1});
    return y;
  }
  dispatch_float(op, x4.dtype(), [&]<typename T>() {
    conv_forward<T>(p, x4.data<T>(), w4.data<T>(), b.defined() ? b.data<T>() : nullptr, y.data<T>());
  });
  return y;
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g) {
  check_conv_tensors("conv2d", x, w, b);
  return conv_impl("conv2d", x, w, b, g, false);
}

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding, int64_t dilation,
              int64_t groups) {
  check_conv_tensors("conv1d", x, w, b);
  UNROLL_CHECK(x.ndim() == 3, "conv1d: input {} must be 3-D [B, C, T]", x.shape());
  UNROLL_CHECK(w.ndim() == 3, "conv1d: weight {} must be 3-D [out, in/groups, K]", w.shape());
  const Conv2dGeometry g{{1, stride}, {0, padding}, {1, dilation}, groups};
  Tensor y = conv_impl("conv1d", x.reshape(as_2d(x.shape())), w.reshape(as_2d(w.shape())), b, g, true);
  return y.reshape({y.size(0), y.size(1), y.size(3)});
}

Tensor conv2d_input_grad(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dGeometry& g) {
  const ConvPlan p = plan_conv("conv2d backward", x_shape, w.shape(), Tensor(), g, false);
  UNROLL_CHECK(dy.shape() == Shape({p.B, p.O, p.Ho, p.Wo}), "conv2d backward: gradient {} does not match the output [{}, {}, {}, {}]",
               dy.shape(), p.B, p.O, p.Ho, p.Wo);
  Tensor dx = zeros(x_shape, dy.dtype());
  if (x_shape.numel() == 0) return dx;
  dispatch_float("conv2d backward", dy.dtype(),
                 [&]<typename T>() { conv_input_grad<T>(p, dy.data<T>(), w.data<T>(), dx.data<T>()); });
  return dx;
}

Tensor conv2d_weight_grad(const Tensor& dy, const Tensor& x, const Shape& w_shape, const Conv2dGeometry& g) {
  const ConvPlan p = plan_conv("conv2d backward", x.shape(), w_shape, Tensor(), g, false);
  UNROLL_CHECK(dy.shape() == Shape({p.B, p.O, p.Ho, p.Wo}), "conv2d backward: gradient {} does not match the output [{}, {}, {}, {}]",
               dy.shape(), p.B, p.O, p.Ho, p.Wo);
  Tensor dw = zeros(w_shape, dy.dtype());
  if (x.numel() == 0) return dw;
  dispatch_float("conv2d backward", dy.dtype(),
                 [&]<typename T>() { conv_weight_grad<T>(p, dy.data<T>(), x.data<T>(), dw.data<T>()); });
  return dw;
}

}  // namespace unroll
