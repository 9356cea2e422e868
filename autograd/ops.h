#pragma once
// The differentiable op library: the Tensor ops of core/tensor.h on Variables. Each op
// checks its arguments, computes its value with the core kernel and records its backward
// (autograd/ops.cpp keeps forward and backward of each op side by side).
#include "autograd/variable.h"

#include <initializer_list>
#include <span>
#include <vector>

namespace unroll {

// ---- elementwise ----------------------------------------------------------------------
Variable neg(const Variable& x);                     ///< -x
Variable exp(const Variable& x);                     ///< e^x
Variable log(const Variable& x);                     ///< ln x
Variable tanh(const Variable& x);
Variable sigmoid(const Variable& x);                 ///< 1 / (1 + e^-x)
Variable relu(const Variable& x);                    ///< max(x, 0); gradient 0 at 0
Variable sqrt(const Variable& x);
Variable abs(const Variable& x);                     ///< gradient sign(x), 0 at 0
Variable pow(const Variable& x, double p);           ///< x^p
Variable clamp(const Variable& x, double lo, double hi);  ///< gradient 1 inside [lo, hi]

/// Binary ops broadcast like NumPy; backward sums gradients back to each input's shape.
Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);
Variable maximum(const Variable& a, const Variable& b);  ///< ties send the gradient to a
Variable minimum(const Variable& a, const Variable& b);  ///< ties send the gradient to a
Variable add(const Variable& a, double s);
Variable mul(const Variable& a, double s);
Variable rsub(double s, const Variable& a);  ///< s - a
Variable rdiv(double s, const Variable& a);  ///< s / a

Variable operator-(const Variable& a);
Variable operator+(const Variable& a, const Variable& b);
Variable operator-(const Variable& a, const Variable& b);
Variable operator*(const Variable& a, const Variable& b);
Variable operator/(const Variable& a, const Variable& b);
Variable operator+(const Variable& a, double s);
Variable operator-(const Variable& a, double s);
Variable operator*(const Variable& a, double s);
Variable operator/(const Variable& a, double s);
Variable operator+(double s, const Variable& a);
Variable operator-(double s, const Variable& a);
Variable operator*(double s, const Variable& a);
Variable operator/(double s, const Variable& a);

// ---- matmul ---------------------------------------------------------------------------
/// See unroll::matmul(Tensor...): 2-D, batched 3-D, 3-D x 2-D, transposed operands.
Variable matmul(const Variable& a, const Variable& b, bool trans_a = false, bool trans_b = false);
/// y = x W^T + b (torch.nn.functional.linear): x [..., I], W [O, I], b [O] or undefined.
Variable linear(const Variable& x, const Variable& w, const Variable& b = Variable());
/// y = x1 W1^T + x2 W2^T + b1 + b2 in one op (the pre-activation of a recurrent cell):
/// x1 [N,I1], W1 [O,I1], x2 [N,I2], W2 [O,I2], biases [O] or undefined. Equal to
/// linear(x1, W1, b1) + linear(x2, W2, b2) (up to rounding) in one output buffer: the
/// second product is accumulated into the first by the GEMM.
Variable linear2(const Variable& x1, const Variable& w1, const Variable& x2, const Variable& w2,
                 const Variable& b1 = Variable(), const Variable& b2 = Variable());
/// y = base + x W^T + b in one op: base [N,O], x [N,I], W [O,I], b [O] or undefined. Equal
/// to base + linear(x, W, b) (up to rounding) in one output buffer: the product is
/// accumulated onto base + b by the GEMM. A recurrent step's gates from its precomputed
/// input projection: add_linear(x_proj_t, h, W_hh, b_hh) (Note [input projections]).
Variable add_linear(const Variable& base, const Variable& x, const Variable& w, const Variable& b = Variable());

// ---- reductions -----------------------------------------------------------------------
Variable sum(const Variable& x);
Variable sum(const Variable& x, int axis, bool keepdim = false);
Variable mean(const Variable& x);
Variable mean(const Variable& x, int axis, bool keepdim = false);
Variable max(const Variable& x);  ///< gradient to the first maximum
Variable max(const Variable& x, int axis, bool keepdim = false);
Variable min(const Variable& x, int axis, bool keepdim = false);
Variable softmax(const Variable& x, int axis);
Variable log_softmax(const Variable& x, int axis);

// ---- shape ops ------------------------------------------------------------------------
Variable reshape(const Variable& x, const Shape& shape);
Variable flatten(const Variable& x);
Variable unsqueeze(const Variable& x, int axis);
Variable squeeze(const Variable& x, int axis);
Variable transpose(const Variable& x, int a, int b);
Variable permute(const Variable& x, std::span<const int> dims);
Variable permute(const Variable& x, std::initializer_list<int> dims);
Variable narrow(const Variable& x, int axis, int64_t start, int64_t length);
Variable slice(const Variable& x, int axis, int64_t start, int64_t stop);
Variable concat(std::span<const Variable> xs, int axis);
Variable concat(std::initializer_list<Variable> xs, int axis);
Variable stack(std::span<const Variable> xs, int axis);
Variable stack(std::initializer_list<Variable> xs, int axis);
std::vector<Variable> split(const Variable& x, int64_t size, int axis);
std::vector<Variable> chunk(const Variable& x, int64_t n, int axis);
Variable broadcast_to(const Variable& x, const Shape& shape);
Variable index_select(const Variable& x, int axis, const Tensor& idx);  ///< idx: 1-D int64
Variable gather(const Variable& x, int axis, const Tensor& idx);        ///< torch.gather
Variable where(const Tensor& cond, const Variable& a, const Variable& b);
Variable masked_fill(const Variable& x, const Tensor& mask, double value);

// ---- special functions (autograd/ops_extra.cpp) ---------------------------------------
Variable erf(const Variable& x);   ///< the error function (torch.erf); dx += dy * 2/sqrt(pi) * e^(-x^2)
Variable gelu(const Variable& x);  ///< x * Phi(x) = x/2 (1 + erf(x/sqrt 2)) (torch.nn.functional.gelu, exact form)

}  // namespace unroll
