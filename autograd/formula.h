#pragma once
// What backward formulas are written with (Note [one formula, two value types] in
// autograd/function.h): each helper exists for Tensors (the first-order fast path, the
// fused kernel where there is one) and for Variables (the recorded path of create_graph:
// a composition of differentiable ops, or an op of its own whose backward is again such
// a formula, so derivatives of any order exist).
#include "autograd/function.h"
#include "autograd/ops.h"

namespace unroll {

// ---- a Tensor inside a formula is a constant --------------------------------------------
// (a mask or a sign: its derivative is zero). Variable (op) Tensor records the op with the
// Tensor as a constant input.
Variable operator*(const Variable& a, const Tensor& b);
Variable operator*(const Tensor& a, const Variable& b);
Variable operator/(const Variable& a, const Tensor& b);

// ---- fused backward kernels: their Variable forms ----------------------------------------
Variable tanh_backward(const Variable& dy, const Variable& y);                ///< dy * (1 - y^2)
Variable sigmoid_backward(const Variable& dy, const Variable& y);             ///< dy * y * (1 - y)
Variable softmax_backward(const Variable& dy, const Variable& y, int axis);   ///< y * (dy - sum(dy * y))
Variable log_softmax_backward(const Variable& dy, const Variable& y, int axis);  ///< dy - e^y * sum(dy)

/// x summed down to `shape` (the reverse of broadcasting), differentiable.
Variable sum_to(const Variable& x, const Shape& shape);

// ---- writing into zeros (the adjoints of narrow, gather and index_select) ----------------
/// zeros(shape) with src written at [..., start:start+src.size(axis), ...].
Tensor narrow_into(const Shape& shape, int axis, int64_t start, const Tensor& src);
Variable narrow_into(const Shape& shape, int axis, int64_t start, const Variable& src);
/// scatter_add(zeros(shape), axis, idx, src); its backward is gather.
Tensor scatter_add_into(const Shape& shape, int axis, const Tensor& idx, const Tensor& src);
Variable scatter_add_into(const Shape& shape, int axis, const Tensor& idx, const Variable& src);
/// index_add(zeros(shape), axis, idx, src); its backward is index_select.
Tensor index_add_into(const Shape& shape, int axis, const Tensor& idx, const Tensor& src);
Variable index_add_into(const Shape& shape, int axis, const Tensor& idx, const Variable& src);

}  // namespace unroll
