// Forward and backward of the convolution, pooling and padding ops (autograd/conv.h).
// Each op computes its value with a core/conv.h kernel and records a backward that calls
// the matching gradient kernel: the weight and input gradients of a convolution are GEMMs
// too (Note [convolution as a GEMM] in core/conv.cpp).
#include "autograd/conv.h"

#include "autograd/function.h"
#include "autograd/ops.h"

#include <vector>

namespace unroll {

namespace {
Shape as_2d(const Shape& s) { return Shape({s[0], s[1], 1, s[2]}); }

/// Records a convolution (conv1d's tensors are viewed as 2-D ones of height 1); dy arrives
/// in the caller's layout.
Variable record_conv(const char* op, Tensor out, const Variable& x, const Variable& w, const Variable& b,
                     const Conv2dGeometry& geo) {
  const Variable* inputs[] = {&x, &w, &b};
  const bool one_d = x.ndim() == 3;
  const Shape x4 = one_d ? as_2d(x.shape()) : x.shape();
  const Shape w4 = one_d ? as_2d(w.shape()) : w.shape();
  return record(op, std::move(out), std::span<const Variable* const>(inputs, b.defined() ? 3 : 2),
                [xd = x.data(), wd = w.data(), x4, w4, geo, one_d](const Tensor& dy, Grads& g) {
                  const Tensor dy4 = one_d ? dy.reshape(as_2d(dy.shape())) : dy;
                  if (g.needs(0)) g.add(0, conv2d_input_grad(dy4, wd.reshape(w4), x4, geo).reshape(xd.shape()));
                  if (g.needs(1)) g.add(1, conv2d_weight_grad(dy4, xd.reshape(x4), w4, geo).reshape(wd.shape()));
                  if (g.n_inputs() == 3 && g.needs(2)) g.add(2, sum_to(dy4, {1, w4[0], 1, 1}).reshape({w4[0]}));
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
  return record("max_pool2d", std::move(y), {x}, [argmax = std::move(argmax), xs = x.shape()](const Tensor& dy, Grads& g) {
    g.add(0, max_pool2d_backward(dy, argmax, xs));
  });
}

Variable max_pool1d(const Variable& x, int64_t k, int64_t stride, int64_t padding) {
  UNROLL_CHECK(x.defined(), "max_pool1d: the input is undefined");
  Tensor argmax;
  Tensor y = max_pool1d(x.data(), k, stride, padding, &argmax);
  return record("max_pool1d", std::move(y), {x}, [argmax = std::move(argmax), xs = x.shape()](const Tensor& dy, Grads& g) {
    g.add(0, max_pool2d_backward(dy, argmax, xs));  // argmax indexes each [T] plane, as in 2-D
  });
}

Variable avg_pool2d(const Variable& x, Size2 k, Size2 stride, Size2 padding) {
  UNROLL_CHECK(x.defined(), "avg_pool2d: the input is undefined");
  Tensor y = avg_pool2d(x.data(), k, stride, padding);
  return record("avg_pool2d", std::move(y), {x}, [xs = x.shape(), k, stride, padding](const Tensor& dy, Grads& g) {
    g.add(0, avg_pool2d_backward(dy, xs, k, stride, padding));
  });
}

Variable avg_pool1d(const Variable& x, int64_t k, int64_t stride, int64_t padding) {
  UNROLL_CHECK(x.defined(), "avg_pool1d: the input is undefined");
  Tensor y = avg_pool1d(x.data(), k, stride, padding);
  return record("avg_pool1d", std::move(y), {x}, [xs = x.shape(), k, stride, padding](const Tensor& dy, Grads& g) {
    const Tensor dx = avg_pool2d_backward(dy.reshape(as_2d(dy.shape())), as_2d(xs), {1, k},
                                          {1, stride == 0 ? k : stride}, {0, padding});
    g.add(0, dx.reshape(xs));
  });
}

Variable adaptive_avg_pool2d(const Variable& x, Size2 out) {
  UNROLL_CHECK(x.defined(), "adaptive_avg_pool2d: the input is undefined");
  Tensor y = adaptive_avg_pool2d(x.data(), out);
  return record("adaptive_avg_pool2d", std::move(y), {x},
                [xs = x.shape()](const Tensor& dy, Grads& g) { g.add(0, adaptive_avg_pool2d_backward(dy, xs)); });
}

Variable adaptive_avg_pool1d(const Variable& x, int64_t out) {
  UNROLL_CHECK(x.defined(), "adaptive_avg_pool1d: the input is undefined");
  Tensor y = adaptive_avg_pool1d(x.data(), out);
  return record("adaptive_avg_pool1d", std::move(y), {x}, [xs = x.shape()](const Tensor& dy, Grads& g) {
    g.add(0, adaptive_avg_pool2d_backward(dy.reshape(as_2d(dy.shape())), as_2d(xs)).reshape(xs));
  });
}

// ---- padding ----------------------------------------------------------------------------------

Variable pad(const Variable& x, std::span<const int64_t> pads, double value) {
  UNROLL_CHECK(x.defined(), "pad: the input is undefined");
  Tensor y = pad(x.data(), pads, value);
  return record("pad", std::move(y), {x}, [p = std::vector<int64_t>(pads.begin(), pads.end())](const Tensor& dy, Grads& g) {
    g.add(0, unpad(dy, p));
  });
}
Variable pad(const Variable& x, std::initializer_list<int64_t> pads, double value) {
  return pad(x, std::span<const int64_t>(pads.begin(), pads.size()), value);
}

}  // namespace unroll
