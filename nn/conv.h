#pragma once
// Convolution and pooling layers (torch.nn.Conv1d, Conv2d, MaxPool1d/2d, AvgPool1d/2d,
// AdaptiveAvgPool1d/2d, Flatten), with PyTorch's parameter names, shapes and default
// initialisation. Each is a thin Module over the ops in autograd/conv.h: no backward code.
#include "autograd/conv.h"
#include "nn/module.h"

namespace unroll {

struct Conv1dOptions {
  int64_t stride = 1;
  int64_t padding = 0;   ///< zeros on both ends; for a causal convolution pad the input instead
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

/// torch.nn.Conv1d: weight [out, in/groups, kernel_size], bias [out]; both
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in/groups * kernel_size.
/// x [B, in, T] -> [B, out, T'].
class Conv1d : public Module {
public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv1dOptions options = {});
  Variable forward(const Variable& x) const;
  Variable operator()(const Variable& x) const { return forward(x); }
  Variable weight, bias;
  Conv1dOptions options;
};

struct Conv2dOptions {
  Size2 stride = 1;
  Size2 padding = 0;
  Size2 dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

/// torch.nn.Conv2d: weight [out, in/groups, kH, kW], bias [out]; default init as Conv1d's
/// with fan_in = in/groups * kH * kW. x [B, in, H, W] -> [B, out, H', W'].
class Conv2d : public Module {
public:
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Conv2dOptions options = {});
  Variable forward(const Variable& x) const;
  Variable operator()(const Variable& x) const { return forward(x); }
  Variable weight, bias;
  Conv2dOptions options;
};

/// Pooling layers: stride 0 (the default) means stride = kernel_size, as in PyTorch.
struct MaxPool1d : Module {
  explicit MaxPool1d(int64_t kernel, int64_t stride_ = 0, int64_t padding_ = 0)
      : kernel_size(kernel), stride(stride_), padding(padding_) {}
  Variable forward(const Variable& x) const { return max_pool1d(x, kernel_size, stride, padding); }
  Variable operator()(const Variable& x) const { return forward(x); }
  int64_t kernel_size, stride, padding;
};
struct MaxPool2d : Module {
  explicit MaxPool2d(Size2 kernel, Size2 stride_ = 0, Size2 padding_ = 0)
      : kernel_size(kernel), stride(stride_), padding(padding_) {}
  Variable forward(const Variable& x) const { return max_pool2d(x, kernel_size, stride, padding); }
  Variable operator()(const Variable& x) const { return forward(x); }
  Size2 kernel_size, stride, padding;
};
struct AvgPool1d : Module {
  explicit AvgPool1d(int64_t kernel, int64_t stride_ = 0, int64_t padding_ = 0)
      : kernel_size(kernel), stride(stride_), padding(padding_) {}
  Variable forward(const Variable& x) const { return avg_pool1d(x, kernel_size, stride, padding); }
  Variable operator()(const Variable& x) const { return forward(x); }
  int64_t kernel_size, stride, padding;
};
struct AvgPool2d : Module {
  explicit AvgPool2d(Size2 kernel, Size2 stride_ = 0, Size2 padding_ = 0)
      : kernel_size(kernel), stride(stride_), padding(padding_) {}
  Variable forward(const Variable& x) const { return avg_pool2d(x, kernel_size, stride, padding); }
  Variable operator()(const Variable& x) const { return forward(x); }
  Size2 kernel_size, stride, padding;
};
struct AdaptiveAvgPool1d : Module {
  explicit AdaptiveAvgPool1d(int64_t out) : output_size(out) {}
  Variable forward(const Variable& x) const { return adaptive_avg_pool1d(x, output_size); }
  Variable operator()(const Variable& x) const { return forward(x); }
  int64_t output_size;
};
struct AdaptiveAvgPool2d : Module {
  explicit AdaptiveAvgPool2d(Size2 out) : output_size(out) {}
  Variable forward(const Variable& x) const { return adaptive_avg_pool2d(x, output_size); }
  Variable operator()(const Variable& x) const { return forward(x); }
  Size2 output_size;
};

/// Flattens dimensions start_dim..end_dim into one (torch.nn.Flatten; default 1..-1, so
/// [B, C, H, W] -> [B, C*H*W]).
struct Flatten : Module {
  explicit Flatten(int start = 1, int end = -1) : start_dim(start), end_dim(end) {}
  Variable forward(const Variable& x) const;
  Variable operator()(const Variable& x) const { return forward(x); }
  int start_dim, end_dim;
};

}  // namespace unroll
