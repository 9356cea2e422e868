#include "nn/conv.h"

#include "autograd/ops.h"
#include "nn/init.h"

#include <cmath>

namespace unroll {

namespace {
/// PyTorch's reset_parameters() for a convolution: kaiming_uniform_(a = sqrt 5) on the
/// weight, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias from the same range.
void default_init(Variable& weight, Variable* bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(init::fans(weight.shape()).first));
    init::uniform_(*bias, -bound, bound);
  }
}

void check_channels(const char* layer, int64_t in, int64_t out, int64_t groups) {
  UNROLL_CHECK(in > 0 && out > 0, "{}: channel counts must be positive, got in={} out={}", layer, in, out);
  UNROLL_CHECK(groups > 0 && in % groups == 0 && out % groups == 0,
               "{}: in_channels {} and out_channels {} must both be divisible by groups {}", layer, in, out, groups);
}
}  // namespace

Conv1d::Conv1d(int64_t in, int64_t out, int64_t kernel, Conv1dOptions o) : options(o) {
  check_channels("Conv1d", in, out, o.groups);
  UNROLL_CHECK(kernel > 0, "Conv1d: kernel_size must be positive, got {}", kernel);
  weight = register_parameter("weight", zeros({out, in / o.groups, kernel}));
  if (o.bias) bias = register_parameter("bias", zeros({out}));
  default_init(weight, o.bias ? &bias : nullptr);
}

Variable Conv1d::forward(const Variable& x) const {
  return conv1d(x, weight, bias, options.stride, options.padding, options.dilation, options.groups);
}

Conv2d::Conv2d(int64_t in, int64_t out, Size2 kernel, Conv2dOptions o) : options(o) {
  check_channels("Conv2d", in, out, o.groups);
  UNROLL_CHECK(kernel.h > 0 && kernel.w > 0, "Conv2d: kernel_size must be positive, got ({}, {})", kernel.h, kernel.w);
  weight = register_parameter("weight", zeros({out, in / o.groups, kernel.h, kernel.w}));
  if (o.bias) bias = register_parameter("bias", zeros({out}));
  default_init(weight, o.bias ? &bias : nullptr);
}

Variable Conv2d::forward(const Variable& x) const {
  return conv2d(x, weight, bias, options.stride, options.padding, options.dilation, options.groups);
}

Variable Flatten::forward(const Variable& x) const {
  UNROLL_CHECK(x.defined(), "Flatten: the input is undefined");
  const int nd = x.ndim();
  const int s = normalize_axis("Flatten", start_dim, nd), e = normalize_axis("Flatten", end_dim, nd);
  UNROLL_CHECK(s <= e, "Flatten: start_dim {} comes after end_dim {} for input {}", start_dim, end_dim, x.shape());
  Shape out;
  for (int i = 0; i < s; ++i) out.push_back(x.shape()[i]);
  int64_t n = 1;
  for (int i = s; i <= e; ++i) n *= x.shape()[i];
  out.push_back(n);
  for (int i = e + 1; i < nd; ++i) out.push_back(x.shape()[i]);
  return reshape(x, out);
}

}  // namespace unroll
