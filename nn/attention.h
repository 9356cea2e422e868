#pragma once
// Attention as compositions of ops: dot-product (Luong "dot"), scaled dot-product
// (Vaswani et al.), Luong "general" (bilinear) and Bahdanau additive attention. None of them
// has backward code; their gradients come from the ops they are made of.
//
// Shapes (B batch, Tq query steps, Tk key steps, D features):
//   query  [B,Tq,Dq]  or [B,Dq] for one decoder step (the Tq axis is then dropped from
//                      context and weights)
//   keys   [B,Tk,Dk]
//   values [B,Tk,Dv]
//   mask   optional, nonzero = attend, 0 = ignore: [B,Tk] (padding, broadcast over Tq) or
//          [B,Tq,Tk] / [1,Tq,Tk] (a full mask, e.g. causal); any dtype
//   -> context [B,Tq,Dv], weights [B,Tq,Tk]
#include "autograd/ops.h"
#include "nn/layers.h"
#include "nn/module.h"

#include <memory>
#include <optional>

namespace unroll {

struct AttentionResult {
  Variable context;  ///< [B,Tq,Dv] (or [B,Dv]): weights times values
  Variable weights;  ///< [B,Tq,Tk] (or [B,Tk]): each unmasked row sums to 1
};

/// softmax(scores) along `axis` over the positions where the mask is true (Bool; int64
/// nonzero, or a floating 0/1 mask, also work; other floating values are refused, see Note
/// [mask conventions] in nn/transformer.h); the mask broadcasts to scores. Masked positions get weight exactly 0; a row with no unmasked position gets
/// all-zero weights (not NaN) and zero gradient. An undefined mask gives plain softmax.
Variable masked_softmax(const Variable& scores, const Tensor& mask, int axis = -1);

/// scores = q k^T (times `scale` if given), weights = masked_softmax(scores, mask),
/// context = weights v (Luong "dot" attention).
AttentionResult dot_product_attention(const Variable& query, const Variable& keys, const Variable& values,
                                      const Tensor& mask = {}, std::optional<double> scale = std::nullopt);

/// dot_product_attention with scale = 1/sqrt(D) (torch.nn.functional.scaled_dot_product_attention
/// with a boolean attn_mask where true = attend).
AttentionResult scaled_dot_product_attention(const Variable& query, const Variable& keys, const Variable& values,
                                             const Tensor& mask = {});

/// Luong "general" (bilinear) attention: scores = q W k^T, W [Dq,Dk] (xavier uniform).
class GeneralAttention : public Module {
public:
  GeneralAttention(int64_t query_dim, int64_t key_dim);
  AttentionResult forward(const Variable& query, const Variable& keys, const Variable& values,
                          const Tensor& mask = {}) const;
  AttentionResult operator()(const Variable& query, const Variable& keys, const Variable& values,
                             const Tensor& mask = {}) const {
    return forward(query, keys, values, mask);
  }
  Variable weight;  ///< [Dq,Dk]
};

/// Bahdanau additive attention: scores = v^T tanh(W_q q + W_k k), with parameters
/// query_proj.weight W_q [A,Dq], key_proj.weight W_k [A,Dk] (no biases, Linear's default
/// init) and v [A] ~ U(-1/sqrt(A), 1/sqrt(A)). Builds a [B,Tq,Tk,A] intermediate.
class AdditiveAttention : public Module {
public:
  AdditiveAttention(int64_t query_dim, int64_t key_dim, int64_t attn_dim);
  AttentionResult forward(const Variable& query, const Variable& keys, const Variable& values,
                          const Tensor& mask = {}) const;
  AttentionResult operator()(const Variable& query, const Variable& keys, const Variable& values,
                             const Tensor& mask = {}) const {
    return forward(query, keys, values, mask);
  }
  std::shared_ptr<Linear> query_proj;  ///< W_q: [A,Dq]
  std::shared_ptr<Linear> key_proj;    ///< W_k: [A,Dk]
  Variable v;                          ///< [A]
};

}  // namespace unroll
