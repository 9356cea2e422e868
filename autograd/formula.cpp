// The Variable forms of the helpers backward formulas use (autograd/formula.h).
#include "autograd/formula.h"

namespace unroll {

Variable operator*(const Variable& a, const Tensor& b) { return mul(a, Variable(b)); }
Variable operator*(const Tensor& a, const Variable& b) { return mul(Variable(a), b); }
Variable operator/(const Variable& a, const Tensor& b) { return div(a, Variable(b)); }

Variable tanh_backward(const Variable& dy, const Variable& y) { return dy * (1.0 - y * y); }
Variable sigmoid_backward(const Variable& dy, const Variable& y) { return dy * (y * (1.0 - y)); }
Variable softmax_backward(const Variable& dy, const Variable& y, int axis) {
  return y * (dy - sum(dy * y, axis, true));
}
Variable log_softmax_backward(const Variable& dy, const Variable& y, int axis) {
  return dy - exp(y) * sum(dy, axis, true);
}

Variable sum_to(const Variable& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int lead = x.ndim() - shape.ndim();
  UNROLL_CHECK(lead >= 0, "sum_to: cannot sum {} down to {}", x.shape(), shape);
  Variable r = x;
  for (int i = 0; i < lead; ++i) r = sum(r, 0);
  for (int i = 0; i < shape.ndim(); ++i)
    if (shape[i] == 1 && r.shape()[i] != 1) r = sum(r, i, true);
  UNROLL_CHECK(r.shape() == shape, "sum_to: cannot sum {} down to {}", x.shape(), shape);
  return r;
}

Tensor narrow_into(const Shape& shape, int axis, int64_t start, const Tensor& src) {
  Tensor out = zeros(shape, src.dtype());
  narrow_add_(out, axis, start, src);
  return out;
}

// y = zeros with src at [start, start + len) along axis;  dsrc += dy[start:start+len]
Variable narrow_into(const Shape& shape, int axis, int64_t start, const Variable& src) {
  return record("narrow_into", narrow_into(shape, axis, start, src.data()), {src},
                [axis, start, len = src.size(axis)](const auto& dy, auto& g) { g.add(0, narrow(dy, axis, start, len)); });
}

Tensor scatter_add_into(const Shape& shape, int axis, const Tensor& idx, const Tensor& src) {
  Tensor out = zeros(shape, src.dtype());
  scatter_add_(out, axis, idx, src);
  return out;
}

// y = scatter_add(zeros, axis, idx, src);  dsrc += gather(dy, axis, idx)
Variable scatter_add_into(const Shape& shape, int axis, const Tensor& idx, const Variable& src) {
  return record("scatter_add_into", scatter_add_into(shape, axis, idx, src.data()), {src},
                [axis, idx](const auto& dy, auto& g) { g.add(0, gather(dy, axis, idx)); });
}

Tensor index_add_into(const Shape& shape, int axis, const Tensor& idx, const Tensor& src) {
  Tensor out = zeros(shape, src.dtype());
  index_add_(out, axis, idx, src);
  return out;
}

// y = index_add(zeros, axis, idx, src);  dsrc += index_select(dy, axis, idx)
Variable index_add_into(const Shape& shape, int axis, const Tensor& idx, const Variable& src) {
  return record("index_add_into", index_add_into(shape, axis, idx, src.data()), {src},
                [axis, idx](const auto& dy, auto& g) { g.add(0, index_select(dy, axis, idx)); });
}

}  // namespace unroll
