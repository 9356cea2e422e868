#pragma once
// Differentiable convolution, pooling and padding (torch.nn.functional's conv1d, conv2d,
// max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool1d/2d, pad): the kernels of core/conv.h
// recorded with their backward. Layouts are PyTorch's: [B, C, T] and [B, C, H, W].
#include "autograd/variable.h"
#include "core/conv.h"

#include <initializer_list>
#include <span>

namespace unroll {

/// y[b, o, t] = bias[o] + sum_{c, k} w[o, c, k] x[b, g(o) C/groups + c, t*stride - padding + k*dilation]:
/// x [B, C_in, T], w [C_out, C_in/groups, K], bias [C_out] or undefined -> [B, C_out, T'].
Variable conv1d(const Variable& x, const Variable& w, const Variable& bias = Variable(), int64_t stride = 1,
                int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
/// The same over two spatial axes: x [B, C_in, H, W], w [C_out, C_in/groups, kH, kW].
/// stride, padding and dilation take one number or {h, w}.
Variable conv2d(const Variable& x, const Variable& w, const Variable& bias = Variable(), Size2 stride = 1,
                Size2 padding = 0, Size2 dilation = 1, int64_t groups = 1);

/// Max over each window (padding counts as -inf and may be at most half the kernel);
/// stride 0 means stride = kernel_size (PyTorch's default). Backward sends each output's
/// gradient to the input element that won the window (the first one on ties).
Variable max_pool1d(const Variable& x, int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
Variable max_pool2d(const Variable& x, Size2 kernel_size, Size2 stride = 0, Size2 padding = 0);
/// Mean over each window; padded zeros count (count_include_pad=True, PyTorch's default).
Variable avg_pool1d(const Variable& x, int64_t kernel_size, int64_t stride = 0, int64_t padding = 0);
Variable avg_pool2d(const Variable& x, Size2 kernel_size, Size2 stride = 0, Size2 padding = 0);
/// Mean over torch's adaptive windows to a fixed output size (1 = global average pooling).
Variable adaptive_avg_pool1d(const Variable& x, int64_t output_size);
Variable adaptive_avg_pool2d(const Variable& x, Size2 output_size);

/// Constant padding of the last dimensions (torch.nn.functional.pad, mode "constant"):
/// {left, right} pads the last axis, {left, right, top, bottom} the last two. Causal
/// padding for a 1-D convolution of kernel K and dilation d: pad(x, {(K - 1) * d, 0}).
Variable pad(const Variable& x, std::span<const int64_t> pads, double value = 0.0);
Variable pad(const Variable& x, std::initializer_list<int64_t> pads, double value = 0.0);

}  // namespace unroll
