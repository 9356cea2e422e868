// Forward and backward of the convolution, pooling and padding ops (autograd/conv.h).
// Each op computes its value with a core/conv.h kernel and records a backward that calls
// the matching gradient kernel: the weight and input gradients of a convolution are GEMMs
// too (Note [convolution as a GEMM] in core/conv.cpp).
#include "autograd/conv.h"

#include "autograd/formula.h"
#include "autograd/ops.h"

#include <vector>

namespace unroll {

namespace {
Shape as_2d(const Shape& s) { return Shape({s[0], s[1], 1, s[2]}); }

// The gradient kernels as the formulas call them: on Tensors the core kernels, on
// Variables ops of their own, so a convolution's backward is differentiable again. Each
// is linear in each argument, and its backward is again a convolution or a gradient
// kernel: input_grad(dy, w) is the adjoint of x -> conv(x, w), so
//   d<gx, input_grad(dy, w)>/d dy = conv(gx, w),  .../d w = weight_grad(dy, gx);
// weight_grad(dy, x) is the adjoint of w -> conv(x, w), so
//   d<gw, weight_grad(dy, x)>/d dy = conv(x, gw),  .../d x = input_grad(dy, gw).
// Pooling and padding likewise: avg_pool's backward is the adjoint of avg_pool, and so on.
Tensor conv_fwd(const Tensor& x, const Tensor& w, const Conv2dGeometry& geo) { return conv2d(x, w, Tensor(), geo); }
Variable conv_fwd(const Variable& x, const Variable& w, const Conv2dGeometry& geo) {
  return conv2d(x, w, Variable(), geo.stride, geo.padding, geo.dilation, geo.groups);
}
Tensor conv_input_grad(const Tensor& dy, const Tensor& w, const Shape& x4, const Conv2dGeometry& geo) {
  return conv2d_input_grad(dy, w, x4, geo);
}
Tensor conv_weight_grad(const Tensor& dy, const Tensor& x, const Shape& w4, const Conv2dGeometry& geo) {
  return conv2d_weight_grad(dy, x, w4, geo);
}
Variable conv_weight_grad(const Variable& dy, const Variable& x, const Shape& w4, const Conv2dGeometry& geo);

// y = input_grad(dy, w);  ddy += conv(gy, w);  dw += weight_grad(dy, gy)
Variable conv_input_grad(const Variable& dy, const Variable& w, const Shape& x4, const Conv2dGeometry& geo) {
  return record("conv2d_input_grad", conv2d_input_grad(dy.data(), w.data(), x4, geo), {dy, w},
                [dyd = dy.data(), wd = w.data(), geo](const auto& gy, auto& g) {
                  if (g.needs(0)) g.add(0, conv_fwd(gy, g.in(1, wd), geo));
                  if (g.needs(1)) g.add(1, conv_weight_grad(g.in(0, dyd), gy, wd.shape(), geo));
                });
}

// y = weight_grad(dy, x);  ddy += conv(x, gy);  dx += input_grad(dy, gy)
Variable conv_weight_grad(const Variable& dy, const Variable& x, const Shape& w4, const Conv2dGeometry& geo) {
  return record("conv2d_weight_grad", conv2d_weight_grad(dy.data(), x.data(), w4, geo), {dy, x},
                [dyd = dy.data(), xd = x.data(), geo](const auto& gy, auto& g) {
                  if (g.needs(0)) g.add(0, conv_fwd(g.in(1, xd), gy, geo));
                  if (g.needs(1)) g.add(1, conv_input_grad(g.in(0, dyd), gy, xd.shape(), geo));
                });
}

// The max-pool gradient is a scatter of dy to the winners: per [H*W] plane, a
// scatter_add_into (whose backward gathers).
Variable max_pool2d_backward(const Variable& dy, const Tensor& argmax, const Shape& xs) {
  const int64_t planes = xs[0] * xs[1];
  return reshape(scatter_add_into({planes, xs.numel() / planes}, 1, argmax.reshape({planes, -1}),
                                  reshape(dy, {planes, -1})),
                 xs);
}

// y = avg_pool_backward(dy);  ddy += avg_pool(gy)
Variable avg_pool2d_backward(const Variable& dy, const Shape& xs, Size2 k, Size2 stride, Size2 padding) {
  return record("avg_pool2d_backward", avg_pool2d_backward(dy.data(), xs, k, stride, padding), {dy},
                [k, stride, padding](const auto& gy, auto& g) { g.add(0, avg_pool2d(gy, k, stride, padding)); });
}

// y = adaptive_avg_pool_backward(dy);  ddy += adaptive_avg_pool(gy)
Variable adaptive_avg_pool2d_backward(const Variable& dy, const Shape& xs) {
  return record("adaptive_avg_pool2d_backward", adaptive_avg_pool2d_backward(dy.data(), xs), {dy},
                [out = Size2(dy.size(2), dy.size(3))](const auto& gy, auto& g) {
                  g.add(0, adaptive_avg_pool2d(gy, out));
                });
}

// y = unpad(dy);  ddy += pad(gy) with zeros
Variable unpad(const Variable& dy, const std::vector<int64_t>& p) {
  return record("unpad", unpad(dy.data(), p), {dy},
                [p](const auto& gy, auto& g) { g.add(0, pad(gy, std::span<const int64_t>(p), 0.0)); });
}

/// Records a convolution (conv1d's tensors are viewed as 2-D ones of height 1); dy arrives
/// in the caller's layout.
Variable record_conv(const char* op, Tensor out, const Variable& x, const Variable& w, const Variable& b,
                     const Conv2dGeometry& geo) {
  const Variable* inputs[] = {&x, &w, &b};
  const bool one_d = x.ndim() == 3;
  const Shape x4 = one_d ? as_2d(x.shape()) : x.shape();
  const Shape w4 = one_d ? as_2d(w.shape()) : w.shape();
  return record(op, std::move(out), std::span<const Variable* const>(inputs, b.defined() ? 3 : 2),
                [xd = x.data(), wd = w.data(), x4, w4, geo, one_d](const auto& dy, auto& g) {
                  const auto dy4 = one_d ? reshape(dy, as_2d(dy.shape())) : dy;
                  if (g.needs(0)) g.add(0, reshape(conv_input_grad(dy4, reshape(g.in(1, wd), w4), x4, geo), xd.shape()));
                  if (g.needs(1)) g.add(1, reshape(conv_weight_grad(dy4, reshape(g.in(0, xd), x4), w4, geo), wd.shape()));
                  if (g.n_inputs() == 3 && g.needs(2)) g.add(2, reshape(sum_to(dy4, {1, w4[0], 1, 1}), {w4[0]}));
                });
}

void check_defined(const char* op, const Variable& x, const Variable& w) {
  UNROLL_CHECK(x.defined() && w.defined(), "{}: the input or the weight is undefined", op);
}
}  // namespace

Variable conv1d(const Variable& x, const Variable& w, const Variable& bias, int64_t stride, int64_t padding,
                int64_t dilation, int64_t groups) {
  check_defined("conv1d", x, w);
  Tensor y = conv1d(x.data(), w.data(), bias.defined() ? bias.data() : Tensor(), stride, padding, dilation, groups);
  return record_conv("conv1d", std::move(y), x, w, bias, {{1, stride}, {0, padding}, {1, dilation}, groups});
}

Variable conv2d(const Variable& x, const Variable& w, const Variable& bias, Size2 stride, Size2 padding,
                Size2 dilation, int64_t groups) {
  check_defined("conv2d", x, w);
  const Conv2dGeometry geo{stride, padding, dilation, groups};
  Tensor y = conv2d(x.data(), w.data(), bias.defined() ? bias.data() : Tensor(), geo);
  return record_conv("conv2d", std::move(y), x, w, bias, geo);
}

// ---- pooling ----------------------------------------------------------------------------------

Variable max_pool2d(const Variable& x, Size2 k, Size2 stride, Size2 padding) {
  UNROLL_CHECK(x.defined(), "max_pool2d: the input is undefined");
  Tensor argmax;
  Tensor y = max_pool2d(x.data(), k, stride, padding, &argmax);
  return record("max_pool2d", std::move(y), {x}, [argmax = std::move(argmax), xs = x.shape()](const auto& dy, auto& g) {
    g.add(0, max_pool2d_backward(dy, argmax, xs));
  });
}

Variable max_pool1d(const Variable& x, int64_t k, int64_t stride, int64_t padding) {
  UNROLL_CHECK(x.defined(), "max_pool1d: the input is undefined");
  Tensor argmax;
  Tensor y = max_pool1d(x.data(), k, stride, padding, &argmax);
  return record("max_pool1d", std::move(y), {x}, [argmax = std::move(argmax), xs = x.shape()](const auto& dy, auto& g) {
    g.add(0, max_pool2d_backward(dy, argmax, xs));  // argmax indexes each [T] plane, as in 2-D
  });
}

Variable avg_pool2d(const Variable& x, Size2 k, Size2 stride, Size2 padding) {
  UNROLL_CHECK(x.defined(), "avg_pool2d: the input is undefined");
  Tensor y = avg_pool2d(x.data(), k, stride, padding);
  return record("avg_pool2d", std::move(y), {x}, [xs = x.shape(), k, stride, padding](const auto& dy, auto& g) {
    g.add(0, avg_pool2d_backward(dy, xs, k, stride, padding));
  });
}

Variable avg_pool1d(const Variable& x, int64_t k, int64_t stride, int64_t padding) {
  UNROLL_CHECK(x.defined(), "avg_pool1d: the input is undefined");
  Tensor y = avg_pool1d(x.data(), k, stride, padding);
  return record("avg_pool1d", std::move(y), {x}, [xs = x.shape(), k, stride, padding](const auto& dy, auto& g) {
    const auto dx = avg_pool2d_backward(reshape(dy, as_2d(dy.shape())), as_2d(xs), Size2{1, k},
                                        Size2{1, stride == 0 ? k : stride}, Size2{0, padding});
    g.add(0, reshape(dx, xs));
  });
}

Variable adaptive_avg_pool2d(const Variable& x, Size2 out) {
  UNROLL_CHECK(x.defined(), "adaptive_avg_pool2d: the input is undefined");
  Tensor y = adaptive_avg_pool2d(x.data(), out);
  return record("adaptive_avg_pool2d", std::move(y), {x},
                [xs = x.shape()](const auto& dy, auto& g) { g.add(0, adaptive_avg_pool2d_backward(dy, xs)); });
}

Variable adaptive_avg_pool1d(const Variable& x, int64_t out) {
  UNROLL_CHECK(x.defined(), "adaptive_avg_pool1d: the input is undefined");
  Tensor y = adaptive_avg_pool1d(x.data(), out);
  return record("adaptive_avg_pool1d", std::move(y), {x}, [xs = x.shape()](const auto& dy, auto& g) {
    g.add(0, reshape(adaptive_avg_pool2d_backward(reshape(dy, as_2d(dy.shape())), as_2d(xs)), xs));
  });
}

// ---- padding ----------------------------------------------------------------------------------

Variable pad(const Variable& x, std::span<const int64_t> pads, double value) {
  UNROLL_CHECK(x.defined(), "pad: the input is undefined");
  Tensor y = pad(x.data(), pads, value);
  return record("pad", std::move(y), {x}, [p = std::vector<int64_t>(pads.begin(), pads.end())](const auto& dy, auto& g) {
    g.add(0, unpad(dy, p));
  });
}
Variable pad(const Variable& x, std::initializer_list<int64_t> pads, double value) {
  return pad(x, std::span<const int64_t>(pads.begin(), pads.size()), value);
}

}  // namespace unroll
