// Losses as compositions of differentiable ops; no backward code here (see nn/loss.h).
#include "nn/loss.h"

#include <fmt/ranges.h>

#include <limits>
#include <string>
#include <vector>

namespace unroll {

namespace {

Variable reduce(const Variable& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::Mean: return loss.numel() > 0 ? mean(loss) : sum(loss) / 0.0;  // empty: 0/0 = NaN, as PyTorch
    case Reduction::Sum: return sum(loss);
    case Reduction::None: break;
  }
  return loss;
}

// Elementwise losses compare equal shapes only: no silent broadcasting.
void check_pair(const char* op, const Variable& input, const Tensor& target) {
  UNROLL_CHECK(input.defined() && target.defined(), "{}: input and target must be defined", op);
  UNROLL_CHECK(input.data().is_floating(), "{}: input must be floating point, got {}", op, input.dtype());
  UNROLL_CHECK(input.shape() == target.shape(),
               "{}: input {} and target {} have different shapes (losses do not broadcast; reshape one of them)", op,
               input.shape(), target.shape());
  UNROLL_CHECK(input.dtype() == target.dtype(), "{}: input is {} but target is {}", op, input.dtype(), target.dtype());
}

// The value of a Variable target, or an error naming the op if it is undefined.
const Tensor& target_value(const char* op, const Variable& target) {
  UNROLL_CHECK(target.defined(), "{}: target must be defined", op);
  return target.data();
}

// "[i,j,...]": the multi-index of flat position `flat` in `shape`.
std::string position(const Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(static_cast<size_t>(shape.ndim()));
  for (int d = shape.ndim() - 1; d >= 0; --d) {
    idx[static_cast<size_t>(d)] = flat % shape[d];
    flat /= shape[d];
  }
  return fmt::format("[{}]", fmt::join(idx, ","));
}

// Class-index targets, validated: `safe` has ignored targets replaced by class 0 and the
// shape [N,1,d...] that gather along the class axis needs; `mask` (in the scores' dtype,
// shape [N,d...]) is 1 for counted targets and 0 for ignored ones; `count` counts the 1s.
struct ClassTargets {
  Tensor safe;
  Tensor mask;
  int64_t count = 0;
};

ClassTargets prepare_targets(const char* op, const Variable& scores, const Tensor& targets, int64_t ignore_index) {
  UNROLL_CHECK(scores.defined() && targets.defined(), "{}: input and targets must be defined", op);
  UNROLL_CHECK(scores.ndim() >= 2, "{}: input {} must be [N,C] or [N,C,d...] (C classes along axis 1)", op,
               scores.shape());
  UNROLL_CHECK(scores.data().is_floating(), "{}: input must be floating point, got {}", op, scores.dtype());
  UNROLL_CHECK(targets.dtype() == DType::I64, "{}: targets must be an int64 tensor of class indices, got {}", op,
               targets.dtype());
  Shape expected;  // [N,d...]
  Shape gather_shape;  // [N,1,d...]
  for (int d = 0; d < scores.ndim(); ++d) {
    if (d != 1) expected.push_back(scores.size(d));
    gather_shape.push_back(d == 1 ? 1 : scores.size(d));
  }
  UNROLL_CHECK(targets.shape() == expected, "{}: input {} needs targets of shape {}, got {}", op, scores.shape(),
               expected, targets.shape());

  const int64_t C = scores.size(1);
  const int64_t n = targets.numel();
  const int64_t* t = targets.data<int64_t>();
  std::vector<int64_t> safe(static_cast<size_t>(n));
  std::vector<double> mask(static_cast<size_t>(n));
  ClassTargets out;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = t[i];
    const bool ignored = c == ignore_index;
    UNROLL_CHECK(ignored || (c >= 0 && c < C),
                 "{}: target {} at position {} is out of range for C = {} classes (expected 0..{} or ignore_index {})",
                 op, c, position(targets.shape(), i), C, C - 1, ignore_index);
    safe[static_cast<size_t>(i)] = ignored ? 0 : c;
    mask[static_cast<size_t>(i)] = ignored ? 0.0 : 1.0;
    out.count += ignored ? 0 : 1;
  }
  out.safe = indices(safe, gather_shape);
  if (out.count < n) out.mask = tensor(mask, expected, scores.dtype());
  return out;
}

// The negative log-likelihood of validated class-index targets, optionally label-smoothed.
Variable nll(const Variable& log_probs, const Tensor& targets, const ClassTargets& t, Reduction reduction,
             double label_smoothing) {
  Variable loss = neg(reshape(gather(log_probs, 1, t.safe), targets.shape()));  // [N,d...]
  if (label_smoothing > 0) {
    // -sum_c (e/C) log p_c: the cross entropy against the uniform part of the target.
    const double C = static_cast<double>(log_probs.size(1));
    Variable uniform = sum(log_probs, 1) * (-label_smoothing / C);  // [N,d...]
    loss = loss * (1.0 - label_smoothing) + uniform;
  }
  const int64_t n = targets.numel();
  // where, not a product: an ignored row's loss may be inf (a -inf logit in column 0), and inf * 0 is NaN.
  if (t.count < n) loss = where(t.mask, loss, Variable(scalar_tensor(0.0, loss.dtype())));
  switch (reduction) {
    case Reduction::None: return loss;
    case Reduction::Sum: return sum(loss);
    case Reduction::Mean:
      // Note [loss reduction]: all ignored gives NaN with a zero gradient, as in PyTorch.
      if (t.count == 0) return sum(loss) * 0.0 + std::numeric_limits<double>::quiet_NaN();
      if (t.count == n) return mean(loss);
      return sum(loss) * (1.0 / static_cast<double>(t.count));
  }
  return loss;
}

}  // namespace

// loss = reduce((input - target)^2)
Variable mse_loss(const Variable& input, const Variable& target, Reduction reduction) {
  check_pair("mse_loss", input, target_value("mse_loss", target));
  Variable diff = input - target;
  return reduce(diff * diff, reduction);
}
Variable mse_loss(const Variable& input, const Tensor& target, Reduction reduction) {
  check_pair("mse_loss", input, target);
  return mse_loss(input, Variable(target), reduction);
}

// loss = reduce(|input - target|)
Variable l1_loss(const Variable& input, const Variable& target, Reduction reduction) {
  check_pair("l1_loss", input, target_value("l1_loss", target));
  return reduce(abs(input - target), reduction);
}
Variable l1_loss(const Variable& input, const Tensor& target, Reduction reduction) {
  check_pair("l1_loss", input, target);
  return l1_loss(input, Variable(target), reduction);
}

// loss[n] = -log_probs[n, targets[n]]
Variable nll_loss(const Variable& log_probs, const Tensor& targets, int64_t ignore_index, Reduction reduction) {
  const ClassTargets t = prepare_targets("nll_loss", log_probs, targets, ignore_index);
  return nll(log_probs, targets, t, reduction, 0.0);
}

// loss[n] = -(1-e) log_softmax(logits)[n, targets[n]] - e/C sum_c log_softmax(logits)[n, c]
Variable cross_entropy(const Variable& logits, const Tensor& targets, int64_t ignore_index, Reduction reduction,
                       double label_smoothing) {
  UNROLL_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
               "cross_entropy: label_smoothing must be in [0, 1], got {}", label_smoothing);
  // Validate before log_softmax so that errors name this op and not a kernel.
  const ClassTargets t = prepare_targets("cross_entropy", logits, targets, ignore_index);
  return nll(log_softmax(logits, 1), targets, t, reduction, label_smoothing);
}

// loss = (1 - y) x + (1 + (p - 1) y) softplus(-x),  softplus(-x) = max(-x, 0) + log(1 + e^-|x|)
Variable binary_cross_entropy_with_logits(const Variable& logits, const Variable& targets, Reduction reduction,
                                          const Tensor& pos_weight) {
  const char* op = "binary_cross_entropy_with_logits";
  check_pair(op, logits, target_value(op, targets));
  const DType dtype = logits.dtype();
  if (pos_weight.defined()) {
    UNROLL_CHECK(pos_weight.dtype() == dtype, "{}: pos_weight is {} but logits are {}", op, pos_weight.dtype(), dtype);
    UNROLL_CHECK(broadcast_shapes(op, pos_weight.shape(), logits.shape()) == logits.shape(),
                 "{}: pos_weight {} does not broadcast to logits {}", op, pos_weight.shape(), logits.shape());
  }
  // -|x| and max(-x, 0) both take their x >= 0 branch at x = 0, so their kinks cancel and
  // the gradient there is exactly sigmoid(0) - y.
  const Tensor nonneg = ge(logits.data(), scalar_tensor(0.0, dtype));  // [x >= 0]
  const Variable zero(scalar_tensor(0.0, dtype));
  Variable neg_x = neg(logits);
  Variable neg_abs = where(nonneg, neg_x, logits);  // -|x|
  Variable relu_neg = where(nonneg, zero, neg_x);   // max(-x, 0)
  Variable softplus_neg = relu_neg + log(exp(neg_abs) + 1.0);  // -log sigmoid(x), never overflows
  Variable linear_part = (1.0 - targets) * logits;
  if (!pos_weight.defined()) return reduce(linear_part + softplus_neg, reduction);
  Variable log_weight = targets * Variable(pos_weight - 1.0) + 1.0;
  return reduce(linear_part + log_weight * softplus_neg, reduction);
}
Variable binary_cross_entropy_with_logits(const Variable& logits, const Tensor& targets, Reduction reduction,
                                          const Tensor& pos_weight) {
  check_pair("binary_cross_entropy_with_logits", logits, targets);
  return binary_cross_entropy_with_logits(logits, Variable(targets), reduction, pos_weight);
}

}  // namespace unroll
