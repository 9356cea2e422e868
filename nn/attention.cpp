#include "nn/attention.h"

#include "nn/init.h"

#include <cmath>
#include <limits>

namespace unroll {

// Note [masked softmax]
// Masked positions must get weight exactly 0 and a fully masked row must give 0, not the
// NaN of 0/0, in the value and in the gradient. So:
//   m = max of the unmasked scores of each row (a constant Tensor: softmax does not change
//       when every score of a row is shifted by the same amount, so its gradient through m
//       is zero and need not be recorded);
//   z = (mask ? s : m) - m   <= 0 where unmasked, exactly 0 where masked, never inf;
//   e = exp(z) * mask        exactly 0 where masked;
//   w = e / max(sum(e), 1/2).
// A row with an unmasked position holds its maximum, whose exp(0) = 1, so its sum is >= 1
// and the floor never applies; a fully masked row has sum 0 and gets 0 / (1/2) = 0, with
// gradients that are finite (and zero for the scores, which the select cuts off).
Variable masked_softmax(const Variable& scores, const Tensor& mask, int axis) {
  UNROLL_CHECK(scores.defined(), "masked_softmax: the scores are undefined");
  axis = normalize_axis("masked_softmax", axis, scores.ndim());
  if (!mask.defined()) return softmax(scores, axis);
  const Shape& s = scores.shape();
  const Shape& ms = mask.shape();
  bool fits = ms.ndim() <= s.ndim();
  for (int d = 1; fits && d <= ms.ndim(); ++d) {
    const int64_t md = ms[ms.ndim() - d];
    fits = md == 1 || md == s[s.ndim() - d];
  }
  UNROLL_CHECK(fits, "masked_softmax: mask {} does not broadcast to scores {}", ms, s);
  UNROLL_CHECK(scores.data().is_floating(), "masked_softmax: scores must be floating point, got {}", scores.dtype());

  if (mask.is_floating()) {
    const int64_t other = count_nonzero(logical_and(ne(mask, 0.0), ne(mask, 1.0)));
    UNROLL_CHECK(other == 0,
                 "masked_softmax: the floating point mask {} holds {} entries other than 0 and 1; its nonzero entries "
                 "mean ATTEND (an additive 0 / -inf mask would be misread): pass a Bool mask (true = attend)",
                 ms, other);
  }
  const DType dt = scores.dtype();
  const Tensor keep = where(mask, scalar_tensor(1.0, dt), scalar_tensor(0.0, dt));  // mask's shape, 1 = attend
  const double lowest = dt == DType::F32 ? static_cast<double>(std::numeric_limits<float>::lowest())
                                          : std::numeric_limits<double>::lowest();
  const Variable row_max(max(where(keep, scores.data(), scalar_tensor(lowest, dt)), axis, true));  // [..., 1, ...]
  const Variable z = where(keep, scores, row_max) - row_max;
  const Variable e = exp(z) * Variable(keep);
  const Variable total = clamp(sum(e, axis, true), 0.5, std::numeric_limits<double>::max());
  return e / total;
}

namespace {

struct AttentionDims {
  int64_t B, Tq, Tk, Dq, Dk, Dv;
  bool single;  // query [B,D]: one step, no Tq axis in the results
};

// Checks what every attention variant needs of query, keys and values; the feature sizes
// Dq and Dk are checked by the caller (they must match for dot-product attention only).
AttentionDims check_inputs(const char* op, const Variable& query, const Variable& keys, const Variable& values) {
  UNROLL_CHECK(query.defined() && keys.defined() && values.defined(), "{}: query, keys and values must all be defined",
               op);
  UNROLL_CHECK(query.ndim() == 2 || query.ndim() == 3, "{}: query {} must be [B,Tq,D] or [B,D] (one step)", op,
               query.shape());
  UNROLL_CHECK(keys.ndim() == 3, "{}: keys {} must be [B,Tk,D]", op, keys.shape());
  UNROLL_CHECK(values.ndim() == 3, "{}: values {} must be [B,Tk,Dv]", op, values.shape());
  UNROLL_CHECK(query.size(0) == keys.size(0) && keys.size(0) == values.size(0),
               "{}: batch sizes differ: query {}, keys {}, values {}", op, query.shape(), keys.shape(), values.shape());
  UNROLL_CHECK(keys.size(1) == values.size(1), "{}: keys {} and values {}: {} keys but {} values", op, keys.shape(),
               values.shape(), keys.size(1), values.size(1));
  UNROLL_CHECK(keys.size(1) > 0, "{}: keys {}: there must be at least one key", op, keys.shape());
  UNROLL_CHECK(query.dtype() == keys.dtype() && keys.dtype() == values.dtype(),
               "{}: dtypes differ: query {}, keys {}, values {}", op, query.dtype(), keys.dtype(), values.dtype());
  UNROLL_CHECK(query.data().is_floating(), "{}: inputs must be float32 or float64, got {}", op, query.dtype());
  const bool single = query.ndim() == 2;
  return {query.size(0), single ? 1 : query.size(1), keys.size(1), query.size(-1), keys.size(2), values.size(2),
          single};
}

// The mask as [B|1, Tq|1, Tk] for scores [B,Tq,Tk].
Tensor scores_mask(const char* op, const Tensor& mask, const AttentionDims& d) {
  if (!mask.defined()) return mask;
  const Shape& s = mask.shape();
  if (s.ndim() == 2 && s[0] == d.B && s[1] == d.Tk) return mask.reshape({d.B, 1, d.Tk});
  if (s.ndim() == 3 && (s[0] == d.B || s[0] == 1) && s[1] == d.Tq && s[2] == d.Tk) return mask;
  fail("{}: mask {} must be [B,Tk] = [{},{}] or [B,Tq,Tk] = [{},{},{}] (B may be 1)", op, s, d.B, d.Tk, d.B, d.Tq,
       d.Tk);
}

// weights = masked_softmax(scores), context = weights v; drops the Tq axis for one step.
AttentionResult attend(const Variable& scores, const Variable& values, const Tensor& mask, const AttentionDims& d) {
  Variable weights = masked_softmax(scores, mask, -1);  // [B,Tq,Tk]
  Variable context = matmul(weights, values);           // [B,Tq,Dv]
  if (d.single) return {squeeze(context, 1), squeeze(weights, 1)};
  return {context, weights};
}

// q [B,Tq,D] or [B,D] -> [B,Tq,D]
Variable as_steps(const Variable& q, const AttentionDims& d) { return d.single ? unsqueeze(q, 1) : q; }

AttentionResult dot_product(const char* op, const Variable& query, const Variable& keys, const Variable& values,
                            const Tensor& mask, std::optional<double> scale) {
  const AttentionDims d = check_inputs(op, query, keys, values);
  UNROLL_CHECK(d.Dq == d.Dk, "{}: query {} and keys {}: feature sizes {} and {} differ", op, query.shape(),
               keys.shape(), d.Dq, d.Dk);
  UNROLL_CHECK(std::isfinite(scale.value_or(1.0)), "{}: scale must be finite, got {}", op, scale.value_or(1.0));
  const Tensor m = scores_mask(op, mask, d);
  Variable scores = matmul(as_steps(query, d), keys, false, true);  // [B,Tq,Tk]
  if (scale) scores = scores * *scale;
  return attend(scores, values, m, d);
}

}  // namespace

AttentionResult dot_product_attention(const Variable& query, const Variable& keys, const Variable& values,
                                      const Tensor& mask, std::optional<double> scale) {
  return dot_product("dot_product_attention", query, keys, values, mask, scale);
}

AttentionResult scaled_dot_product_attention(const Variable& query, const Variable& keys, const Variable& values,
                                             const Tensor& mask) {
  // An undefined or rank-0 query is reported by dot_product's checks.
  const double D = query.defined() && query.ndim() > 0 ? static_cast<double>(query.size(-1)) : 1.0;
  const double scale = 1.0 / std::sqrt(D);
  return dot_product("scaled_dot_product_attention", query, keys, values, mask, scale);
}

GeneralAttention::GeneralAttention(int64_t query_dim, int64_t key_dim) {
  UNROLL_CHECK(query_dim > 0 && key_dim > 0, "GeneralAttention: sizes must be positive, got query_dim={} key_dim={}",
               query_dim, key_dim);
  weight = register_parameter("weight", zeros({query_dim, key_dim}));
  init::xavier_uniform_(weight);
}

AttentionResult GeneralAttention::forward(const Variable& query, const Variable& keys, const Variable& values,
                                          const Tensor& mask) const {
  const char* op = "GeneralAttention";
  const AttentionDims d = check_inputs(op, query, keys, values);
  UNROLL_CHECK(d.Dq == weight.size(0), "{}: query {} has {} features, expected {}", op, query.shape(), d.Dq,
               weight.size(0));
  UNROLL_CHECK(d.Dk == weight.size(1), "{}: keys {} have {} features, expected {}", op, keys.shape(), d.Dk,
               weight.size(1));
  UNROLL_CHECK(query.dtype() == weight.dtype(), "{}: inputs are {} but the weight is {} (convert with module.to())", op,
               query.dtype(), weight.dtype());
  const Tensor m = scores_mask(op, mask, d);
  const Variable qw = matmul(as_steps(query, d), weight);  // [B,Tq,Dk]
  const Variable scores = matmul(qw, keys, false, true);   // [B,Tq,Tk]
  return attend(scores, values, m, d);
}

AdditiveAttention::AdditiveAttention(int64_t query_dim, int64_t key_dim, int64_t attn_dim) {
  UNROLL_CHECK(query_dim > 0 && key_dim > 0 && attn_dim > 0,
               "AdditiveAttention: sizes must be positive, got query_dim={} key_dim={} attn_dim={}", query_dim, key_dim,
               attn_dim);
  v = register_parameter("v", zeros({attn_dim}));
  const double bound = 1.0 / std::sqrt(static_cast<double>(attn_dim));
  init::uniform_(v, -bound, bound);
  query_proj = register_module("query_proj", std::make_shared<Linear>(query_dim, attn_dim, false));
  key_proj = register_module("key_proj", std::make_shared<Linear>(key_dim, attn_dim, false));
}

AttentionResult AdditiveAttention::forward(const Variable& query, const Variable& keys, const Variable& values,
                                           const Tensor& mask) const {
  const char* op = "AdditiveAttention";
  const AttentionDims d = check_inputs(op, query, keys, values);
  const Shape& wq = query_proj->weight.shape();  // [A,Dq]
  const Shape& wk = key_proj->weight.shape();    // [A,Dk]
  UNROLL_CHECK(d.Dq == wq[1], "{}: query {} has {} features, expected {}", op, query.shape(), d.Dq, wq[1]);
  UNROLL_CHECK(d.Dk == wk[1], "{}: keys {} have {} features, expected {}", op, keys.shape(), d.Dk, wk[1]);
  UNROLL_CHECK(query.dtype() == v.dtype(), "{}: inputs are {} but the parameters are {} (convert with module.to())", op,
               query.dtype(), v.dtype());
  const Tensor m = scores_mask(op, mask, d);
  const int64_t A = wq[0];
  const Variable qp = query_proj->forward(as_steps(query, d));                // [B,Tq,A]
  const Variable kp = key_proj->forward(keys);                                // [B,Tk,A]
  const Variable h = tanh(unsqueeze(qp, 2) + unsqueeze(kp, 1));               // [B,Tq,Tk,A]
  const Variable scores = squeeze(linear(h, reshape(v, {1, A})), 3);         // [B,Tq,Tk]
  return attend(scores, values, m, d);
}

}  // namespace unroll
