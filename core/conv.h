#pragma once
// Convolution, pooling and padding kernels on Tensors (PyTorch's layouts and semantics).
//
// Everything is computed in 2-D: a 1-D op is the 2-D op with height 1, so conv1d over
// [B, C, T] is conv2d over [B, C, 1, T] with a [O, C/groups, 1, K] weight. A convolution
// is im2col + GEMM (Note [convolution as a GEMM] in core/conv.cpp): the input patches are
// unfolded into a matrix and multiplied by the weight with the same GEMM as every matmul;
// the two gradients are GEMMs too (weight: dY col^T; input: W^T dY folded back by col2im).
//
// The autograd ops in autograd/conv.h check their arguments with their own names and call
// these; they are public so that a custom op can reuse them.
#include "core/tensor.h"

#include <array>
#include <cstdint>
#include <span>

namespace unroll {

/// A pair of sizes (height, width) that also accepts one number for both, as PyTorch's
/// conv2d/max_pool2d arguments do: `Size2(2)` is {2, 2}, `{3, 1}` is {3, 1}.
struct Size2 {
  int64_t h = 0, w = 0;
  constexpr Size2() = default;
  constexpr Size2(int64_t both) : h(both), w(both) {}  // NOLINT(google-explicit-constructor): PyTorch's habit
  constexpr Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  bool operator==(const Size2&) const = default;
};

/// stride, padding (zeros, on both sides), dilation and groups of a 2-D convolution.
struct Conv2dGeometry {
  Size2 stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
};

/// Output length of a convolution or pooling window along one axis:
/// floor((in + 2 pad - dilation (k - 1) - 1) / stride) + 1, or 0 when no window fits.
int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation = 1);

/// y = conv2d(x, w) + b: x [B, C, H, W], w [O, C/groups, kH, kW], b [O] or undefined
/// -> [B, O, H', W'].
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g);
/// dL/dx of conv2d for dL/dy = dy [B, O, H', W'] (x has shape x_shape).
Tensor conv2d_input_grad(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dGeometry& g);
/// dL/dw of conv2d for dL/dy = dy (w has shape w_shape).
Tensor conv2d_weight_grad(const Tensor& dy, const Tensor& x, const Shape& w_shape, const Conv2dGeometry& g);

/// conv1d(x [B, C, T], w [O, C/groups, K], b [O] or undefined) -> [B, O, T'] (conv2d at
/// height 1; the checks and messages speak of the 1-D shapes).
Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride = 1, int64_t padding = 0,
              int64_t dilation = 1, int64_t groups = 1);

/// Max pooling of x [B, C, H, W] (stride 0 means stride = kernel, as PyTorch's default; padding counts as -inf, as in PyTorch). `argmax` receives,
/// per output element, the flat index (h * W + w) of the input element that won (the
/// first one on ties; a NaN wins); the backward sends each output's gradient there.
Tensor max_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding, Tensor* argmax);
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const Shape& x_shape);
/// Average pooling of x [B, C, H, W]; padded zeros count in the average (PyTorch's default
/// count_include_pad=True), so every window divides by kH * kW.
Tensor avg_pool2d(const Tensor& x, Size2 kernel, Size2 stride, Size2 padding);
Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, Size2 kernel, Size2 stride, Size2 padding);
/// Adaptive average pooling of x [B, C, H, W] to [B, C, out.h, out.w]: output cell i covers
/// input rows floor(i H / out.h) .. ceil((i + 1) H / out.h) - 1 (torch's windows).
Tensor adaptive_avg_pool2d(const Tensor& x, Size2 out);
Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape);

/// The 1-D pools on x [B, C, T] (the 2-D pools at height 1); argmax indexes along T.
Tensor max_pool1d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, Tensor* argmax);
Tensor avg_pool1d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding);
Tensor adaptive_avg_pool1d(const Tensor& x, int64_t out);

/// Constant padding of the last dimensions (torch.nn.functional.pad): pads = {left, right}
/// pads the last axis, {left, right, top, bottom} the last two, and so on. Entries must be
/// >= 0. Causal padding of a sequence [B, C, T] is pad(x, {k - 1, 0}).
Tensor pad(const Tensor& x, std::span<const int64_t> pads, double value = 0.0);
/// The inverse slice: the part of a padded tensor that came from the input.
Tensor unpad(const Tensor& padded, std::span<const int64_t> pads);

}  // namespace unroll
