#pragma once
// Loss functions (torch.nn.functional counterparts), each a composition of the ops in
// autograd/ops.h: they contain no backward code, the engine differentiates them.
//
//   Variable loss = cross_entropy(logits, targets);           // logits [N,C], targets int64 [N]
//   Variable loss = mse_loss(prediction, target, Reduction::Sum);
//
// Note [loss reduction]
// Reduction::None returns the per-element losses (for cross_entropy / nll_loss: one per
// target, 0 where the target is ignore_index); Sum adds them; Mean divides the sum by the
// number of elements, or, for cross_entropy / nll_loss, by the number of targets that are
// not ignore_index (like PyTorch without class weights). A Mean over a batch whose targets
// are all ignore_index is 0/0 = NaN, as in PyTorch; its gradient is zero. So is a Mean over
// no elements at all (an empty batch), for every loss; Sum is then 0.
//
// Shapes must match exactly: unlike PyTorch (which warns and broadcasts), mse_loss and
// l1_loss reject an input [N,1] with a target [N], the classic silent-broadcast bug.
#include "autograd/ops.h"

#include <cstdint>

namespace unroll {

enum class Reduction { Mean, Sum, None };

/// (input - target)^2, reduced (torch.nn.functional.mse_loss). Shapes and dtypes must match.
Variable mse_loss(const Variable& input, const Variable& target, Reduction reduction = Reduction::Mean);
Variable mse_loss(const Variable& input, const Tensor& target, Reduction reduction = Reduction::Mean);

/// |input - target|, reduced (torch.nn.functional.l1_loss); gradient sign(input - target), 0 at 0.
Variable l1_loss(const Variable& input, const Variable& target, Reduction reduction = Reduction::Mean);
Variable l1_loss(const Variable& input, const Tensor& target, Reduction reduction = Reduction::Mean);

/// -log_probs[n, targets[n]] (torch.nn.functional.nll_loss). log_probs [N,C] or [N,C,d...],
/// targets int64 [N] or [N,d...], each in 0..C-1 or equal to ignore_index (contributes 0 and
/// is not counted by Mean). See Note [loss reduction].
Variable nll_loss(const Variable& log_probs, const Tensor& targets, int64_t ignore_index = -100,
                  Reduction reduction = Reduction::Mean);

/// nll_loss(log_softmax(logits, 1), targets) (torch.nn.functional.cross_entropy with class
/// indices). With label_smoothing e in [0,1] the target distribution is (1-e) one-hot + e/C:
/// loss = (1-e) * nll - e/C * sum_c log_softmax(logits)[c]. Stable for any finite logits.
Variable cross_entropy(const Variable& logits, const Tensor& targets, int64_t ignore_index = -100,
                       Reduction reduction = Reduction::Mean, double label_smoothing = 0.0);

/// -[p y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] (torch.nn.functional.
/// binary_cross_entropy_with_logits), computed stably as (1 - y) x + (1 + (p - 1) y) softplus(-x)
/// with softplus(-x) = max(-x, 0) + log(1 + e^-|x|); without pos_weight p = 1, i.e.
/// max(x, 0) - x y + log(1 + e^-|x|). logits and targets have the same shape; pos_weight (a
/// tensor, e.g. [C]) broadcasts against them. The gradient at x = 0 is exactly sigmoid(0) - y.
Variable binary_cross_entropy_with_logits(const Variable& logits, const Variable& targets,
                                          Reduction reduction = Reduction::Mean, const Tensor& pos_weight = Tensor());
Variable binary_cross_entropy_with_logits(const Variable& logits, const Tensor& targets,
                                          Reduction reduction = Reduction::Mean, const Tensor& pos_weight = Tensor());

}  // namespace unroll
