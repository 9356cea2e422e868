// Every differentiable op: the forward value from a core kernel, then the backward that
// record() stores with it. The math is in the comment above each op (dy: gradient of the
// output; dx: gradient of input x; y: the output).
//
// One file on purpose (about 500 lines): it is the op library read as one table, in the
// order of autograd/ops.h, one op to a paragraph, and its ops are read side by side (most
// backwards are other ops of this file). erf/gelu (ops_extra.cpp) and convolution/pooling
// (conv.cpp) live apart because each brings kernels of its own.
#include "autograd/ops.h"

#include "autograd/formula.h"

namespace unroll {

// ---- elementwise unary ----------------------------------------------------------------

// y = -x;  dx += -dy
Variable neg(const Variable& x) {
  return record("neg", neg(x.data()), {x}, [](const auto& dy, auto& g) { g.add(0, neg(dy)); });
}

// y = e^x;  dx += dy * y
Variable exp(const Variable& x) {
  Tensor y = exp(x.data());
  return record("exp", y, {x}, [y](const auto& dy, auto& g) { g.add(0, dy * g.out(y)); });
}

// y = ln x;  dx += dy / x
Variable log(const Variable& x) {
  return record("log", log(x.data()), {x}, [xd = x.data()](const auto& dy, auto& g) { g.add(0, dy / g.in(0, xd)); });
}

// y = tanh x;  dx += dy * (1 - y^2)
Variable tanh(const Variable& x) {
  Tensor y = tanh(x.data());
  return record("tanh", y, {x}, [y](const auto& dy, auto& g) { g.add(0, tanh_backward(dy, g.out(y))); });
}

// y = sigmoid x;  dx += dy * y * (1 - y)
Variable sigmoid(const Variable& x) {
  Tensor y = sigmoid(x.data());
  return record("sigmoid", y, {x}, [y](const auto& dy, auto& g) { g.add(0, sigmoid_backward(dy, g.out(y))); });
}

// y = max(x, 0);  dx += dy * [y > 0]   (sign(y) is exactly that mask)
Variable relu(const Variable& x) {
  Tensor y = relu(x.data());
  return record("relu", y, {x}, [y](const auto& dy, auto& g) { g.add(0, dy * sign(y)); });
}

// y = sqrt x;  dx += dy / (2y)
Variable sqrt(const Variable& x) {
  Tensor y = sqrt(x.data());
  return record("sqrt", y, {x}, [y](const auto& dy, auto& g) { g.add(0, dy / (2.0 * g.out(y))); });
}

// y = |x|;  dx += dy * sign(x)
Variable abs(const Variable& x) {
  return record("abs", abs(x.data()), {x}, [xd = x.data()](const auto& dy, auto& g) { g.add(0, dy * sign(xd)); });
}

// y = x^p;  dx += dy * p * x^(p-1)
Variable pow(const Variable& x, double p) {
  return record("pow", pow(x.data(), p), {x},
                [xd = x.data(), p](const auto& dy, auto& g) { g.add(0, dy * (p * pow(g.in(0, xd), p - 1.0))); });
}

// y = min(max(x, lo), hi);  dx += dy * [lo <= x <= hi]
Variable clamp(const Variable& x, double lo, double hi) {
  UNROLL_CHECK(lo <= hi, "clamp: lower bound {} is above upper bound {} (or one is NaN)", lo, hi);
  return record("clamp", clamp(x.data(), lo, hi), {x}, [xd = x.data(), lo, hi](const auto& dy, auto& g) {
    const Tensor inside = logical_and(ge(xd, lo), le(xd, hi));
    g.add(0, dy * inside);
  });
}

// ---- elementwise binary (broadcasting; Grads::add sums back to each input's shape) ----

// y = a + b;  da += dy;  db += dy
Variable add(const Variable& a, const Variable& b) {
  return record("add", add(a.data(), b.data()), {a, b}, [](const auto& dy, auto& g) {
    g.add(0, dy);
    g.add(1, dy);
  });
}

// y = a - b;  da += dy;  db += -dy
Variable sub(const Variable& a, const Variable& b) {
  return record("sub", sub(a.data(), b.data()), {a, b}, [](const auto& dy, auto& g) {
    g.add(0, dy);
    if (g.needs(1)) g.add(1, neg(dy));
  });
}

// y = a * b;  da += dy * b;  db += dy * a
Variable mul(const Variable& a, const Variable& b) {
  return record("mul", mul(a.data(), b.data()), {a, b},
                [ad = a.data(), bd = b.data()](const auto& dy, auto& g) {
                  if (g.needs(0)) g.add(0, dy * g.in(1, bd));
                  if (g.needs(1)) g.add(1, dy * g.in(0, ad));
                });
}

// y = a / b;  da += dy / b;  db += -dy * y / b
Variable div(const Variable& a, const Variable& b) {
  Tensor y = div(a.data(), b.data());
  return record("div", y, {a, b}, [y, bd = b.data()](const auto& dy, auto& g) {
    const auto& den = g.in(1, bd);
    if (g.needs(0)) g.add(0, dy / den);
    if (g.needs(1)) g.add(1, neg(dy * g.out(y) / den));
  });
}

// y = max(a, b);  da += dy * [a >= b];  db += dy * [a < b]
Variable maximum(const Variable& a, const Variable& b) {
  return record("maximum", maximum(a.data(), b.data()), {a, b},
                [ad = a.data(), bd = b.data()](const auto& dy, auto& g) {
                  const Tensor take_a = ge(ad, bd);
                  if (g.needs(0)) g.add(0, dy * take_a);
                  if (g.needs(1)) g.add(1, dy * logical_not(take_a));
                });
}

// y = min(a, b);  da += dy * [a <= b];  db += dy * [a > b]
Variable minimum(const Variable& a, const Variable& b) {
  return record("minimum", minimum(a.data(), b.data()), {a, b},
                [ad = a.data(), bd = b.data()](const auto& dy, auto& g) {
                  const Tensor take_a = ge(bd, ad);
                  if (g.needs(0)) g.add(0, dy * take_a);
                  if (g.needs(1)) g.add(1, dy * logical_not(take_a));
                });
}

// y = a + s;  da += dy
Variable add(const Variable& a, double s) {
  return record("add_scalar", add(a.data(), s), {a}, [](const auto& dy, auto& g) { g.add(0, dy); });
}

// y = a * s;  da += dy * s
Variable mul(const Variable& a, double s) {
  return record("mul_scalar", mul(a.data(), s), {a}, [s](const auto& dy, auto& g) { g.add(0, dy * s); });
}

// y = s - a;  da += -dy
Variable rsub(double s, const Variable& a) {
  return record("rsub_scalar", rsub(s, a.data()), {a}, [](const auto& dy, auto& g) { g.add(0, neg(dy)); });
}

// y = s / a;  da += -dy * y / a
Variable rdiv(double s, const Variable& a) {
  Tensor y = rdiv(s, a.data());
  return record("rdiv_scalar", y, {a},
                [y, ad = a.data()](const auto& dy, auto& g) { g.add(0, neg(dy * g.out(y) / g.in(0, ad))); });
}

Variable operator-(const Variable& a) { return neg(a); }
Variable operator+(const Variable& a, const Variable& b) { return add(a, b); }
Variable operator-(const Variable& a, const Variable& b) { return sub(a, b); }
Variable operator*(const Variable& a, const Variable& b) { return mul(a, b); }
Variable operator/(const Variable& a, const Variable& b) { return div(a, b); }
Variable operator+(const Variable& a, double s) { return add(a, s); }
Variable operator-(const Variable& a, double s) { return add(a, -s); }
Variable operator*(const Variable& a, double s) { return mul(a, s); }
Variable operator/(const Variable& a, double s) { return mul(a, 1.0 / s); }
Variable operator+(double s, const Variable& a) { return add(a, s); }
Variable operator-(double s, const Variable& a) { return rsub(s, a); }
Variable operator*(double s, const Variable& a) { return mul(a, s); }
Variable operator/(double s, const Variable& a) { return rdiv(s, a); }

// ---- matmul ---------------------------------------------------------------------------

// C = op(A) op(B), op = identity or transpose of the stored operand.
//   dA = dC op(B)^T           (stored A^T: dA = op(B) dC^T)
//   dB = op(A)^T dC           (stored B^T: dB = dC^T op(A))
// For [Bt,M,K] x [K,N] the weight gradient also sums over the batch, done by folding the
// batch into the rows.
Variable matmul(const Variable& a, const Variable& b, bool trans_a, bool trans_b) {
  Tensor c = matmul(a.data(), b.data(), trans_a, trans_b);
  return record("matmul", c, {a, b}, [ad = a.data(), bd = b.data(), trans_a, trans_b](const auto& dc, auto& g) {
    const bool folded = ad.ndim() == 3 && bd.ndim() == 2;
    if (g.needs(0)) {
      const auto& rhs = g.in(1, bd);
      if (!trans_a) g.add(0, matmul(dc, rhs, false, !trans_b));
      else if (!folded) g.add(0, matmul(rhs, dc, trans_b, true));
      else g.add(0, transpose(matmul(dc, rhs, false, !trans_b), 1, 2));
    }
    if (!g.needs(1)) return;
    const auto& lhs = g.in(0, ad);
    if (folded) {
      const auto a2 = trans_a ? transpose(lhs, 1, 2) : lhs;         // [Bt,M,K]
      const auto a_rows = reshape(a2, {-1, a2.size(2)});         // [Bt*M, K]
      const auto dc_rows = reshape(dc, {-1, dc.size(2)});        // [Bt*M, N]
      g.add(1, trans_b ? matmul(dc_rows, a_rows, true, false) : matmul(a_rows, dc_rows, true, false));
    } else {
      g.add(1, trans_b ? matmul(dc, lhs, true, trans_a) : matmul(lhs, dc, !trans_a, false));
    }
  });
}

namespace {
/// x2 W^T (+ bias rows). A weight used at every step is transposed once per value by the
/// GEMM's operand cache (Note [transposed-operand cache] in core/operand_cache.cpp).
Tensor affine(const Tensor& x2, const Tensor& w, const Tensor& bias) {
  return bias.defined() ? addmm(bias, x2, w, false, true) : matmul(x2, w, false, true);
}
/// y += x2 W^T.
void affine_(Tensor& y, const Tensor& x2, const Tensor& w) { addmm_(y, x2, w, false, true); }
}  // namespace

// y = x W^T + b over the last dim of x;  dx += dy W;  dW += dy^T x;  db += sum_rows(dy)
Variable linear(const Variable& x, const Variable& w, const Variable& b) {
  UNROLL_CHECK(x.defined() && w.defined(), "linear: the input or the weight is undefined");
  UNROLL_CHECK(x.dtype() == w.dtype() && (!b.defined() || b.dtype() == w.dtype()),
               "linear: input is {} but the weight is {} (convert with module.to())", x.dtype(), w.dtype());
  UNROLL_CHECK(x.ndim() >= 1 && w.ndim() == 2, "linear: input {} and weight {}: the weight must be 2-D [out, in]",
               x.shape(), w.shape());
  UNROLL_CHECK(x.shape()[x.ndim() - 1] == w.shape()[1],
               "linear: input {} and weight {}: input features {} differ from the weight's in_features {}", x.shape(),
               w.shape(), x.shape()[x.ndim() - 1], w.shape()[1]);
  UNROLL_CHECK(!b.defined() || (b.ndim() == 1 && b.shape()[0] == w.shape()[0]),
               "linear: bias {} does not match weight {} (expected [{}])", b.defined() ? b.shape().str() : "", w.shape(),
               w.shape()[0]);
  Shape out_shape = x.shape();
  out_shape[out_shape.ndim() - 1] = w.shape()[0];
  Shape rows = x.shape();
  rows[rows.ndim() - 1] = 1;
  const Tensor x2 = x.data().reshape({rows.numel(), w.shape()[1]});  // [N, I] (also for I = 0)
  Tensor y = affine(x2, w.data(), b.defined() ? b.data() : Tensor());  // [N, O]
  y = y.reshape(out_shape);
  const Variable* inputs[3] = {&x, &w, &b};
  return record("linear", y, std::span<const Variable* const>(inputs, b.defined() ? 3 : 2),
                [x2, wd = w.data(), in = x.shape()](const auto& dy, auto& g) {
                  const auto dy2 = reshape(dy, {x2.size(0), wd.size(0)});  // [N, O]
                  if (g.needs(0)) g.add(0, reshape(matmul(dy2, g.in(1, wd)), in));
                  if (g.needs(1)) g.add_weight_grad(1, dy2, g.in(0, x2));
                  if (g.n_inputs() > 2 && g.needs(2)) g.add(2, sum(dy2, 0));
                });
}

// y = x1 W1^T + x2 W2^T + b1 + b2;  dx_k += dy W_k;  dW_k += dy^T x_k;  db_k += sum_rows(dy)
Variable linear2(const Variable& x1, const Variable& w1, const Variable& x2, const Variable& w2, const Variable& b1,
                 const Variable& b2) {
  const Variable* xs[2] = {&x1, &x2};
  const Variable* ws[2] = {&w1, &w2};
  const Variable* bs[2] = {&b1, &b2};
  UNROLL_CHECK(x1.defined() && x2.defined() && w1.defined() && w2.defined(), "linear2: an input is undefined");
  const int64_t O = w1.ndim() == 2 ? w1.shape()[0] : -1;
  for (int k = 0; k < 2; ++k) {
    const Variable &x = *xs[k], &w = *ws[k], &b = *bs[k];
    UNROLL_CHECK(x.ndim() == 2 && w.ndim() == 2, "linear2: input {} {} and weight {} {} must be 2-D ([N,I] and [O,I])",
                 k + 1, x.shape(), k + 1, w.shape());
    UNROLL_CHECK(x.shape()[1] == w.shape()[1], "linear2: input {} {} has {} features but weight {} {} expects {}", k + 1,
                 x.shape(), x.shape()[1], k + 1, w.shape(), w.shape()[1]);
    UNROLL_CHECK(w.shape()[0] == O, "linear2: weights {} and {} have different output sizes", w1.shape(), w2.shape());
    UNROLL_CHECK(!b.defined() || (b.ndim() == 1 && b.shape()[0] == O), "linear2: bias {} {} does not match [{}]", k + 1,
                 b.defined() ? b.shape().str() : "", O);
    UNROLL_CHECK(x.dtype() == x1.dtype() && w.dtype() == x1.dtype() && (!b.defined() || b.dtype() == x1.dtype()),
                 "linear2: all inputs must have one dtype");
  }
  UNROLL_CHECK(x1.shape()[0] == x2.shape()[0], "linear2: inputs {} and {} have different row counts", x1.shape(),
               x2.shape());
  // y = x1 W1^T + (b1 + b2), then x2 W2^T accumulated into y by the GEMM (beta = 1): one
  // buffer, no second [N, O] product and no pass to add it.
  const Tensor bias = b1.defined() && b2.defined() ? add(b1.data(), b2.data())
                      : b1.defined()                ? b1.data()
                      : b2.defined()                ? b2.data()
                                                    : Tensor();
  Tensor y = affine(x1.data(), w1.data(), bias);  // [N, O]
  affine_(y, x2.data(), w2.data());
  const Variable* inputs[6] = {&x1, &w1, &x2, &w2, &b1, &b2};
  const bool has_b1 = b1.defined();
  const int n_inputs = 4 + (b1.defined() ? 1 : 0) + (b2.defined() ? 1 : 0);
  if (!has_b1 && b2.defined()) inputs[4] = &b2;
  return record("linear2", y, std::span<const Variable* const>(inputs, static_cast<size_t>(n_inputs)),
                [x1d = x1.data(), w1d = w1.data(), x2d = x2.data(), w2d = w2.data()](const auto& dy, auto& g) {
                  if (g.needs(0)) g.add_matmul(0, dy, g.in(1, w1d));
                  if (g.needs(1)) g.add_weight_grad(1, dy, g.in(0, x1d));
                  if (g.needs(2)) g.add_matmul(2, dy, g.in(3, w2d));
                  if (g.needs(3)) g.add_weight_grad(3, dy, g.in(2, x2d));
                  const bool b4 = g.n_inputs() > 4 && g.needs(4), b5 = g.n_inputs() > 5 && g.needs(5);
                  if (!b4 && !b5) return;
                  const auto db = sum(dy, 0);  // [O]
                  if (b4) g.add(4, db);
                  if (b5) g.add(5, db);
                });
}

// y = base + x W^T + b;  dbase += dy;  dx += dy W;  dW += dy^T x;  db += sum_rows(dy)
Variable add_linear(const Variable& base, const Variable& x, const Variable& w, const Variable& b) {
  UNROLL_CHECK(base.defined() && x.defined() && w.defined(), "add_linear: the base, the input or the weight is undefined");
  UNROLL_CHECK(x.dtype() == w.dtype() && base.dtype() == w.dtype() && (!b.defined() || b.dtype() == w.dtype()),
               "add_linear: base {}, input {} and weight {} must have one dtype{}", base.dtype(), x.dtype(), w.dtype(),
               b.defined() ? fmt::format(" (bias {})", b.dtype()) : std::string());
  UNROLL_CHECK(x.ndim() == 2 && w.ndim() == 2 && x.shape()[1] == w.shape()[1],
               "add_linear: input {} and weight {} must be [N,I] and [O,I]", x.shape(), w.shape());
  UNROLL_CHECK(base.ndim() == 2 && base.shape()[0] == x.shape()[0] && base.shape()[1] == w.shape()[0],
               "add_linear: base {} must be [N,O] = [{},{}] for input {} and weight {}", base.shape(), x.shape()[0],
               w.shape()[0], x.shape(), w.shape());
  UNROLL_CHECK(!b.defined() || (b.ndim() == 1 && b.shape()[0] == w.shape()[0]),
               "add_linear: bias {} does not match weight {} (expected [{}])", b.defined() ? b.shape().str() : "",
               w.shape(), w.shape()[0]);
  Tensor y = b.defined() ? add(base.data(), b.data()) : base.data().clone();  // [N, O], a buffer of its own
  affine_(y, x.data(), w.data());
  const Variable* inputs[4] = {&base, &x, &w, &b};
  return record("add_linear", y, std::span<const Variable* const>(inputs, b.defined() ? 4 : 3),
                [xd = x.data(), wd = w.data()](const auto& dy, auto& g) {
                  if (g.needs(0)) g.add(0, dy);
                  if (g.needs(1)) g.add_matmul(1, dy, g.in(2, wd));
                  if (g.needs(2)) g.add_weight_grad(2, dy, g.in(1, xd));
                  if (g.n_inputs() > 3 && g.needs(3)) g.add(3, sum(dy, 0));
                });
}

// ---- reductions -----------------------------------------------------------------------

// y = sum x;  dx += dy (broadcast)
Variable sum(const Variable& x) {
  return record("sum", sum(x.data()), {x},
                [shape = x.shape()](const auto& dy, auto& g) { g.add(0, broadcast_to(dy, shape)); });
}

template <typename T>
static T expand_reduced(const T& dy, const Shape& shape, int axis, bool keepdim) {
  return broadcast_to(keepdim ? dy : unsqueeze(dy, axis), shape);
}

// y = sum_axis x;  dx += dy (broadcast along axis)
Variable sum(const Variable& x, int axis, bool keepdim) {
  axis = normalize_axis("sum", axis, x.ndim());
  return record("sum", sum(x.data(), axis, keepdim), {x}, [shape = x.shape(), axis, keepdim](const auto& dy, auto& g) {
    g.add(0, expand_reduced(dy, shape, axis, keepdim));
  });
}

// y = mean x;  dx += dy / n
Variable mean(const Variable& x) {
  return record("mean", mean(x.data()), {x}, [shape = x.shape()](const auto& dy, auto& g) {
    g.add(0, broadcast_to(dy / static_cast<double>(shape.numel()), shape));
  });
}

// y = mean_axis x;  dx += dy / n (broadcast along axis)
Variable mean(const Variable& x, int axis, bool keepdim) {
  axis = normalize_axis("mean", axis, x.ndim());
  return record("mean", mean(x.data(), axis, keepdim), {x},
                [shape = x.shape(), axis, keepdim](const auto& dy, auto& g) {
                  g.add(0, expand_reduced(dy / static_cast<double>(shape[axis]), shape, axis, keepdim));
                });
}

// y = max x;  dx += dy at the (first) maximum, 0 elsewhere
Variable max(const Variable& x) {
  const Tensor flat = x.data().reshape({-1});
  UNROLL_CHECK(flat.numel() > 0, "max: the tensor of shape {} is empty", x.shape());
  return record("max", max(x.data()), {x}, [flat, shape = x.shape()](const auto& dy, auto& g) {
    const Tensor at = argmax(flat, 0, true);  // [1]
    g.add(0, reshape(scatter_add_into(flat.shape(), 0, at, reshape(dy, {1})), shape));
  });
}

// max/min along an axis: the gradient goes to the (first) extreme element of each slice.
static Variable extreme(const char* op, const Variable& x, int axis, bool keepdim, bool is_max) {
  axis = normalize_axis(op, axis, x.ndim());
  Tensor y = is_max ? max(x.data(), axis, keepdim) : min(x.data(), axis, keepdim);
  return record(op, y, {x}, [xd = x.data(), axis, keepdim, is_max](const auto& dy, auto& g) {
    const Tensor at = argmax(is_max ? xd : neg(xd), axis, true);
    g.add(0, scatter_add_into(xd.shape(), axis, at, keepdim ? dy : unsqueeze(dy, axis)));
  });
}
Variable max(const Variable& x, int axis, bool keepdim) { return extreme("max", x, axis, keepdim, true); }
Variable min(const Variable& x, int axis, bool keepdim) { return extreme("min", x, axis, keepdim, false); }

// y = softmax(x);  dx += y * (dy - sum(dy * y))   (sums along the axis)
Variable softmax(const Variable& x, int axis) {
  axis = normalize_axis("softmax", axis, x.ndim());
  Tensor y = softmax(x.data(), axis);
  return record("softmax", y, {x}, [y, axis](const auto& dy, auto& g) {
    g.add(0, softmax_backward(dy, g.out(y), axis));  // y * (dy - sum(dy * y))
  });
}

// y = log_softmax(x);  dx += dy - e^y * sum(dy)   (sums along the axis)
Variable log_softmax(const Variable& x, int axis) {
  axis = normalize_axis("log_softmax", axis, x.ndim());
  Tensor y = log_softmax(x.data(), axis);
  return record("log_softmax", y, {x}, [y, axis](const auto& dy, auto& g) {
    g.add(0, log_softmax_backward(dy, g.out(y), axis));  // dy - e^y * sum(dy)
  });
}

// ---- shape ops ------------------------------------------------------------------------

// y = x viewed as `shape`;  dx += dy viewed as x's shape
Variable reshape(const Variable& x, const Shape& shape) {
  return record("reshape", x.data().reshape(shape), {x},
                [in = x.shape()](const auto& dy, auto& g) { g.add(0, reshape(dy, in)); });
}
Variable flatten(const Variable& x) { return reshape(x, {x.numel()}); }
Variable unsqueeze(const Variable& x, int axis) {
  return record("unsqueeze", unsqueeze(x.data(), axis), {x},
                [in = x.shape()](const auto& dy, auto& g) { g.add(0, reshape(dy, in)); });
}
Variable squeeze(const Variable& x, int axis) {
  return record("squeeze", squeeze(x.data(), axis), {x},
                [in = x.shape()](const auto& dy, auto& g) { g.add(0, reshape(dy, in)); });
}

// y = x with axes a and b swapped;  dx += dy with them swapped back
Variable transpose(const Variable& x, int a, int b) {
  return record("transpose", transpose(x.data(), a, b), {x},
                [a, b](const auto& dy, auto& g) { g.add(0, transpose(dy, a, b)); });
}

// y = x with axes reordered by dims;  dx += dy reordered by the inverse permutation
Variable permute(const Variable& x, std::span<const int> dims) {
  Tensor y = permute(x.data(), dims);  // validates dims
  std::array<int, kMaxDims> inverse{};
  for (size_t i = 0; i < dims.size(); ++i)
    inverse[static_cast<size_t>(normalize_axis("permute", dims[i], x.ndim()))] = static_cast<int>(i);
  return record("permute", y, {x}, [inverse, n = dims.size()](const auto& dy, auto& g) {
    g.add(0, permute(dy, std::span<const int>(inverse.data(), n)));
  });
}
Variable permute(const Variable& x, std::initializer_list<int> dims) {
  return permute(x, std::span<const int>(dims.begin(), dims.size()));
}

// y = x[start:start+length] along axis;  dx[start:start+length] += dy
Variable narrow(const Variable& x, int axis, int64_t start, int64_t length) {
  Tensor y = narrow(x.data(), axis, start, length);  // validates
  axis = normalize_axis("narrow", axis, x.ndim());
  return record("narrow", y, {x}, [axis, start](const auto& dy, auto& g) { g.add_narrow(0, axis, start, dy); });
}

Variable slice(const Variable& x, int axis, int64_t start, int64_t stop) {
  const int ax = normalize_axis("slice", axis, x.ndim());
  const auto [b, len] = slice_range(x.shape()[ax], start, stop);
  return narrow(x, ax, b, len);
}

// y = [x_0, x_1, ...] along axis;  dx_i += the matching piece of dy
Variable concat(std::span<const Variable> xs, int axis) {
  UNROLL_CHECK(!xs.empty(), "concat: no tensors given");
  std::vector<Tensor> datas;
  std::vector<const Variable*> inputs;
  std::vector<int64_t> sizes;
  datas.reserve(xs.size());
  for (const Variable& v : xs) {
    datas.push_back(v.data());
    inputs.push_back(&v);
  }
  Tensor y = concat(std::span<const Tensor>(datas), axis);  // validates
  axis = normalize_axis("concat", axis, y.ndim());
  for (const Tensor& d : datas) sizes.push_back(d.size(axis));
  return record("concat", y, std::span<const Variable* const>(inputs), [sizes, axis](const auto& dy, auto& g) {
    int64_t offset = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (g.needs(static_cast<int>(i))) g.add(static_cast<int>(i), narrow(dy, axis, offset, sizes[i]));
      offset += sizes[i];
    }
  });
}
Variable concat(std::initializer_list<Variable> xs, int axis) {
  return concat(std::span<const Variable>(xs.begin(), xs.size()), axis);
}

// y = the x_i stacked along a new axis;  dx_i += dy[..., i, ...]
Variable stack(std::span<const Variable> xs, int axis) {
  UNROLL_CHECK(!xs.empty(), "stack: no tensors given");
  std::vector<Tensor> datas;
  std::vector<const Variable*> inputs;
  datas.reserve(xs.size());
  for (const Variable& v : xs) {
    datas.push_back(v.data());
    inputs.push_back(&v);
  }
  Tensor y = stack(std::span<const Tensor>(datas), axis);  // validates
  axis = normalize_axis("stack", axis, y.ndim());
  return record("stack", y, std::span<const Variable* const>(inputs),
                [axis, in = xs[0].shape(), n = xs.size()](const auto& dy, auto& g) {
                  for (size_t i = 0; i < n; ++i)
                    if (g.needs(static_cast<int>(i)))
                      g.add(static_cast<int>(i), reshape(narrow(dy, axis, static_cast<int64_t>(i), 1), in));
                });
}
Variable stack(std::initializer_list<Variable> xs, int axis) {
  return stack(std::span<const Variable>(xs.begin(), xs.size()), axis);
}

std::vector<Variable> split(const Variable& x, int64_t size, int axis) {
  axis = normalize_axis("split", axis, x.ndim());
  UNROLL_CHECK(size > 0, "split: piece size must be positive, got {}", size);
  if (x.shape()[axis] == 0) return {narrow(x, axis, 0, 0)};  // one empty piece, like the Tensor split
  std::vector<Variable> out;
  for (int64_t start = 0; start < x.shape()[axis]; start += size)
    out.push_back(narrow(x, axis, start, std::min(size, x.shape()[axis] - start)));
  return out;
}

std::vector<Variable> chunk(const Variable& x, int64_t n, int axis) {
  axis = normalize_axis("chunk", axis, x.ndim());
  UNROLL_CHECK(n > 0, "chunk: number of chunks must be positive, got {}", n);
  const int64_t len = x.shape()[axis];
  if (len == 0) return std::vector<Variable>(static_cast<size_t>(n), narrow(x, axis, 0, 0));  // like the Tensor chunk
  return split(x, len / n + (len % n != 0), axis);
}

// y = x repeated up to shape;  dx += dy summed back (Grads::add does the sum)
Variable broadcast_to(const Variable& x, const Shape& shape) {
  return record("broadcast_to", broadcast_to(x.data(), shape), {x}, [](const auto& dy, auto& g) { g.add(0, dy); });
}

// y = x[idx] along axis;  dx[idx] += dy (repeated indices accumulate)
Variable index_select(const Variable& x, int axis, const Tensor& idx) {
  Tensor y = index_select(x.data(), axis, idx);  // validates
  axis = normalize_axis("index_select", axis, x.ndim());
  return record("index_select", y, {x}, [idx, in = x.shape(), axis](const auto& dy, auto& g) {
    g.add(0, index_add_into(in, axis, idx, dy));
  });
}

// y = gather(x, axis, idx);  dx += scatter_add(dy)
Variable gather(const Variable& x, int axis, const Tensor& idx) {
  Tensor y = gather(x.data(), axis, idx);  // validates
  axis = normalize_axis("gather", axis, x.ndim());
  return record("gather", y, {x}, [idx, in = x.shape(), axis](const auto& dy, auto& g) {
    g.add(0, scatter_add_into(in, axis, idx, dy));
  });
}

// y = cond ? a : b;  da += dy where cond;  db += dy elsewhere
Variable where(const Tensor& cond, const Variable& a, const Variable& b) {
  return record("where", where(cond, a.data(), b.data()), {a, b}, [cond](const auto& dy, auto& g) {
    const auto zero = g.constant(scalar_tensor(0.0, dy.dtype()));
    if (g.needs(0)) g.add(0, where(cond, dy, zero));
    if (g.needs(1)) g.add(1, where(cond, zero, dy));
  });
}

// y = x with value where mask;  dx += dy where not mask
Variable masked_fill(const Variable& x, const Tensor& mask, double value) {
  return record("masked_fill", masked_fill(x.data(), mask, value), {x},
                [mask](const auto& dy, auto& g) { g.add(0, masked_fill(dy, mask, 0.0)); });
}

}  // namespace unroll
