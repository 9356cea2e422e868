#include "nn/transformer.h"

#include "nn/attention.h"
#include "nn/init.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace unroll {

namespace {

// The numbered children of a module list ("layers" -> "0", "1", ...), so that names come out
// as layers.0.self_attn.in_proj_weight like torch.nn.ModuleList's.
class LayerList : public Module {
public:
  template <typename M>
  std::shared_ptr<M> add(std::shared_ptr<M> m) {
    return register_module(std::to_string(size_++), std::move(m));
  }

private:
  int64_t size_ = 0;
};

// The two masks of MultiheadAttention turned into what the scores need:
//   keep [B*h|1, T|1, S], 1 = attend, 0 = not (undefined: attend everywhere);
//   bias [T,S] or [B*h,T,S], the finite part of a floating attn_mask (undefined: none).
struct ScoreMasks {
  Tensor keep;
  Tensor bias;
};

ScoreMasks score_masks(const Tensor& key_padding_mask, const Tensor& attn_mask, int64_t B, int64_t h, int64_t T,
                       int64_t S, DType dtype) {
  const char* op = "MultiheadAttention";
  ScoreMasks out;
  Tensor keep_keys, keep_pairs;
  if (key_padding_mask.defined()) {
    const Shape& s = key_padding_mask.shape();
    UNROLL_CHECK(s.ndim() == 2 && s[0] == B && s[1] == S, "{}: key_padding_mask {} must be [B,S] = [{},{}]", op, s, B,
                 S);
    const std::vector<double> m = key_padding_mask.to_vector();
    std::vector<double> keep(static_cast<size_t>(B * h * S));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < S; ++j)
          keep[static_cast<size_t>((b * h + i) * S + j)] = m[static_cast<size_t>(b * S + j)] != 0.0 ? 0.0 : 1.0;
    keep_keys = tensor(keep, {B * h, 1, S}, dtype);
  }
  if (attn_mask.defined()) {
    const Shape& s = attn_mask.shape();
    const bool ok =
        (s.ndim() == 2 && s[0] == T && s[1] == S) || (s.ndim() == 3 && s[0] == B * h && s[1] == T && s[2] == S);
    UNROLL_CHECK(ok, "{}: attn_mask {} must be [T,S] = [{},{}] or [B*h,T,S] = [{},{},{}]", op, s, T, S, B * h, T, S);
    const std::vector<double> m = attn_mask.to_vector();
    std::vector<double> keep(m.size(), 1.0), bias(m.size(), 0.0);
    bool any_masked = false, any_bias = false;
    for (size_t k = 0; k < m.size(); ++k) {
      const double v = m[k];
      if (!attn_mask.is_floating()) {
        keep[k] = v != 0.0 ? 0.0 : 1.0;
      } else {
        UNROLL_CHECK(!std::isnan(v) && v != std::numeric_limits<double>::infinity(),
                     "{}: the floating point attn_mask {} holds {} (only finite values and -inf are allowed)", op, s,
                     v);
        if (std::isinf(v))
          keep[k] = 0.0;
        else
          bias[k] = v;
      }
      any_masked = any_masked || keep[k] == 0.0;
      any_bias = any_bias || bias[k] != 0.0;
    }
    // A 0/1 float mask is almost always a boolean mask in the wrong dtype: added to the
    // scores it would block nothing (Note [mask conventions]), so it is refused.
    const bool zero_one = attn_mask.is_floating() && any_bias &&
                          std::all_of(m.begin(), m.end(), [](double v) { return v == 0.0 || v == 1.0; });
    UNROLL_CHECK(!zero_one,
                 "{}: the floating point attn_mask {} holds only 0 and 1, but a floating mask is ADDED to the scores "
                 "(1 blocks nothing); pass a Bool mask (true = not allowed) or an additive 0 / -inf mask",
                 op, s);
    if (any_masked) keep_pairs = tensor(keep, s, dtype);
    if (any_bias) out.bias = tensor(bias, s, dtype);
  }
  if (keep_keys.defined() && keep_pairs.defined())
    out.keep = keep_keys * keep_pairs;  // [B*h,T,S]
  else
    out.keep = keep_keys.defined() ? keep_keys : keep_pairs;
  return out;
}

// A projected sequence [L,B,n*E] (or [B,L,n*E] batch first) -> [n*B*h, L, E/h]: the n
// projections, batches and heads folded into the batch of a batched matmul (row
// (p*B + b)*h + i holds projection p, batch b, head i).
Variable split_heads(const Variable& x, int64_t n, int64_t h, bool batch_first) {
  const int64_t L = x.size(batch_first ? 1 : 0), B = x.size(batch_first ? 0 : 1);
  const int64_t hd = x.size(2) / (n * h);
  Variable y = reshape(x, batch_first ? Shape{B, L, n, h, hd} : Shape{L, B, n, h, hd});
  y = batch_first ? permute(y, {2, 0, 3, 1, 4}) : permute(y, {2, 1, 3, 0, 4});  // [n,B,h,L,hd]
  return reshape(y, {n * B * h, L, hd});
}

// [B*h, T, E/h] -> [T,B,E] (or [B,T,E] batch first).
Variable merge_heads(const Variable& x, int64_t B, int64_t h, bool batch_first) {
  const int64_t T = x.size(1), hd = x.size(2);
  Variable y = reshape(x, {B, h, T, hd});
  y = batch_first ? permute(y, {0, 2, 1, 3}) : permute(y, {2, 0, 1, 3});  // [B,T,h,hd] or [T,B,h,hd]
  return reshape(y, batch_first ? Shape{B, T, h * hd} : Shape{T, B, h * hd});
}

}  // namespace

Tensor generate_square_subsequent_mask(int64_t T, DType dtype) {
  UNROLL_CHECK(T > 0, "generate_square_subsequent_mask: T must be positive, got {}", T);
  UNROLL_CHECK(dtype != DType::I64,
               "generate_square_subsequent_mask: the mask holds -inf, so it must be floating point");
  std::vector<double> m(static_cast<size_t>(T * T), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t u = t + 1; u < T; ++u) m[static_cast<size_t>(t * T + u)] = -std::numeric_limits<double>::infinity();
  return tensor(m, {T, T}, dtype);
}

// ---- MultiheadAttention -------------------------------------------------------------------

MultiheadAttention::MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout_p, bool bias,
                                       bool batch_first)
    : dropout(dropout_p),
      embed_dim_(embed_dim),
      num_heads_(num_heads),
      batch_first_(batch_first),
      gen_(default_generator().next_u64()) {
  UNROLL_CHECK(embed_dim > 0 && num_heads > 0,
               "MultiheadAttention: embed_dim and num_heads must be positive, got embed_dim={} num_heads={}", embed_dim,
               num_heads);
  UNROLL_CHECK(embed_dim % num_heads == 0, "MultiheadAttention: embed_dim {} is not divisible by num_heads {}",
               embed_dim, num_heads);
  UNROLL_CHECK(dropout_p >= 0.0 && dropout_p <= 1.0, "MultiheadAttention: dropout must be in [0, 1], got {}",
               dropout_p);
  in_proj_weight = register_parameter("in_proj_weight", zeros({3 * embed_dim, embed_dim}));
  init::xavier_uniform_(in_proj_weight);
  if (bias) in_proj_bias = register_parameter("in_proj_bias", zeros({3 * embed_dim}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, bias));
  if (bias) init::zeros_(out_proj->bias);
}

MultiheadAttentionOutput MultiheadAttention::forward(const Variable& query, const Variable& key, const Variable& value,
                                                     const Tensor& key_padding_mask, const Tensor& attn_mask,
                                                     bool need_weights, bool average_attn_weights) {
  const char* op = "MultiheadAttention";
  const int64_t E = embed_dim_, h = num_heads_;
  UNROLL_CHECK(query.defined() && key.defined() && value.defined(), "{}: query, key and value must all be defined", op);
  const char* layout = batch_first_ ? "[B,T,E]" : "[T,B,E]";
  UNROLL_CHECK(query.ndim() == 3 && query.size(2) == E, "{}: query {} must be {} with E = embed_dim = {}", op,
               query.shape(), layout, E);
  UNROLL_CHECK(key.ndim() == 3 && key.size(2) == E, "{}: key {} must be {} with E = embed_dim = {}", op, key.shape(),
               batch_first_ ? "[B,S,E]" : "[S,B,E]", E);
  UNROLL_CHECK(key.shape() == value.shape(), "{}: key {} and value {} must have the same shape", op, key.shape(),
               value.shape());
  const int bax = batch_first_ ? 0 : 1, tax = batch_first_ ? 1 : 0;
  const int64_t B = query.size(bax), T = query.size(tax), S = key.size(tax);
  UNROLL_CHECK(key.size(bax) == B, "{}: query {} and key {} have different batch sizes", op, query.shape(),
               key.shape());
  UNROLL_CHECK(T > 0 && S > 0 && B > 0, "{}: query {} and key {} must not be empty", op, query.shape(), key.shape());
  UNROLL_CHECK(
      query.dtype() == in_proj_weight.dtype() && key.dtype() == query.dtype() && value.dtype() == query.dtype(),
      "{}: inputs are {}, {}, {} but the parameters are {} (convert with module.to())", op, query.dtype(), key.dtype(),
      value.dtype(), in_proj_weight.dtype());
  const ScoreMasks masks = score_masks(key_padding_mask, attn_mask, B, h, T, S, query.dtype());

  // Projections, split into heads: [B*h, T, E/h] and [B*h, S, E/h].
  Variable q, k, v;
  if (query.node() == key.node() && key.node() == value.node()) {
    const Variable qkv = split_heads(linear(query, in_proj_weight, in_proj_bias), 3, h, batch_first_);  // [3*B*h,T,hd]
    q = narrow(qkv, 0, 0, B * h);
    k = narrow(qkv, 0, B * h, B * h);
    v = narrow(qkv, 0, 2 * B * h, B * h);
  } else {
    auto project = [&](const Variable& x, int64_t p) {
      const Variable w = narrow(in_proj_weight, 0, p * E, E);
      const Variable b = in_proj_bias.defined() ? narrow(in_proj_bias, 0, p * E, E) : Variable();
      return split_heads(linear(x, w, b), 1, h, batch_first_);
    };
    q = project(query, 0);
    k = project(key, 1);
    v = project(value, 2);
  }

  // Scaled dot products, masked softmax, dropout, weighted values.
  q = q / std::sqrt(static_cast<double>(head_dim()));
  Variable scores = matmul(q, k, false, true);  // [B*h,T,S]
  if (masks.bias.defined()) scores = scores + Variable(masks.bias);
  Variable weights = masks.keep.defined() ? masked_softmax(scores, masks.keep, -1) : softmax(scores, -1);
  if (is_training() && dropout > 0.0)
    weights = weights * Variable(dropout_mask(weights.shape(), dropout, weights.dtype(), gen_));
  const Variable context = matmul(weights, v);  // [B*h,T,hd]

  MultiheadAttentionOutput out;
  out.output = out_proj->forward(merge_heads(context, B, h, batch_first_));  // [T,B,E] or [B,T,E]
  if (need_weights) {
    out.weights = reshape(weights, {B, h, T, S});
    if (average_attn_weights) out.weights = mean(out.weights, 1);  // [B,T,S]
  }
  return out;
}

// ---- positional encodings -------------------------------------------------------------------

Tensor sinusoidal_positional_encoding(int64_t T, int64_t E, DType dtype) {
  UNROLL_CHECK(T > 0 && E > 0, "sinusoidal_positional_encoding: sizes must be positive, got T={} E={}", T, E);
  UNROLL_CHECK(dtype != DType::I64, "sinusoidal_positional_encoding: dtype must be floating point");
  std::vector<double> pe(static_cast<size_t>(T * E));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < E; ++j) {
      const int64_t two_i = j - j % 2;
      const double angle =
          static_cast<double>(t) * std::exp(-static_cast<double>(two_i) * std::log(10000.0) / static_cast<double>(E));
      pe[static_cast<size_t>(t * E + j)] = j % 2 == 0 ? std::sin(angle) : std::cos(angle);
    }
  return tensor(pe, {T, E}, dtype);
}

namespace {

// Checks x [T,B,E] (or [B,T,E]) against d_model and max_len; returns T.
int64_t positional_steps(const char* op, const Variable& x, int64_t d_model, int64_t max_len, bool batch_first) {
  UNROLL_CHECK(x.defined() && x.ndim() == 3 && x.size(2) == d_model, "{}: input {} must be {} with E = d_model = {}",
               op, x.defined() ? x.shape().str() : "undefined", batch_first ? "[B,T,E]" : "[T,B,E]", d_model);
  const int64_t T = x.size(batch_first ? 1 : 0);
  UNROLL_CHECK(T <= max_len, "{}: input {} has {} steps, more than max_len {}", op, x.shape(), T, max_len);
  return T;
}

}  // namespace

SinusoidalPositionalEncoding::SinusoidalPositionalEncoding(int64_t d_model, int64_t max_len, double dropout_p,
                                                           bool batch_first)
    : max_len_(max_len), batch_first_(batch_first) {
  UNROLL_CHECK(d_model > 0 && max_len > 0,
               "SinusoidalPositionalEncoding: sizes must be positive, got d_model={} max_len={}", d_model, max_len);
  pe_ = sinusoidal_positional_encoding(max_len, d_model, DType::F64);
  dropout = register_module("dropout", std::make_shared<Dropout>(dropout_p));
}

Variable SinusoidalPositionalEncoding::forward(const Variable& x) {
  const int64_t E = pe_.size(1);
  const int64_t T = positional_steps("SinusoidalPositionalEncoding", x, E, max_len_, batch_first_);
  Tensor table = narrow(pe_, 0, 0, T).to(x.dtype());    // [T,E]
  if (!batch_first_) table = table.reshape({T, 1, E});  // broadcast over B
  return dropout->forward(x + Variable(table));
}

LearnedPositionalEncoding::LearnedPositionalEncoding(int64_t d_model, int64_t max_len, double dropout_p,
                                                     bool batch_first)
    : batch_first_(batch_first) {
  UNROLL_CHECK(d_model > 0 && max_len > 0,
               "LearnedPositionalEncoding: sizes must be positive, got d_model={} max_len={}", d_model, max_len);
  weight = register_parameter("weight", zeros({max_len, d_model}));
  init::normal_(weight);
  dropout = register_module("dropout", std::make_shared<Dropout>(dropout_p));
}

Variable LearnedPositionalEncoding::forward(const Variable& x) {
  const char* op = "LearnedPositionalEncoding";
  const int64_t E = weight.size(1);
  const int64_t T = positional_steps(op, x, E, weight.size(0), batch_first_);
  UNROLL_CHECK(x.dtype() == weight.dtype(), "{}: input is {} but the weight is {} (convert with module.to())", op,
               x.dtype(), weight.dtype());
  Variable table = narrow(weight, 0, 0, T);              // [T,E]
  if (!batch_first_) table = reshape(table, {T, 1, E});  // broadcast over B
  return dropout->forward(x + table);
}

// ---- encoder ------------------------------------------------------------------------------

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerEncoderLayerOptions& opts) : options(opts) {
  const auto& o = options;
  UNROLL_CHECK(o.d_model > 0 && o.nhead > 0 && o.dim_feedforward > 0,
               "TransformerEncoderLayer: sizes must be positive, got d_model={} nhead={} dim_feedforward={}", o.d_model,
               o.nhead, o.dim_feedforward);
  UNROLL_CHECK(o.d_model % o.nhead == 0, "TransformerEncoderLayer: d_model {} is not divisible by nhead {}", o.d_model,
               o.nhead);
  UNROLL_CHECK(o.dropout >= 0.0 && o.dropout <= 1.0, "TransformerEncoderLayer: dropout must be in [0, 1], got {}",
               o.dropout);
  self_attn = register_module("self_attn",
                              std::make_shared<MultiheadAttention>(o.d_model, o.nhead, o.dropout, true, o.batch_first));
  linear1 = register_module("linear1", std::make_shared<Linear>(o.d_model, o.dim_feedforward));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
  linear2 = register_module("linear2", std::make_shared<Linear>(o.dim_feedforward, o.d_model));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(o.d_model, o.layer_norm_eps));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout));
}

Variable TransformerEncoderLayer::forward(const Variable& src, const Tensor& src_mask,
                                          const Tensor& src_key_padding_mask) {
  UNROLL_CHECK(src.defined() && src.ndim() == 3 && src.size(2) == options.d_model,
               "TransformerEncoderLayer: src {} must be {} with E = d_model = {}",
               src.defined() ? src.shape().str() : "undefined", options.batch_first ? "[B,T,E]" : "[T,B,E]",
               options.d_model);
  // sa(x) = dropout1(self_attn(x, x, x))
  auto sa = [&](const Variable& x) {
    MultiheadAttentionOutput a = self_attn->forward(x, x, x, src_key_padding_mask, src_mask, keep_attention, false);
    if (keep_attention) last_attention = a.weights.data();  // [B,h,T,S]
    return dropout1->forward(a.output);
  };
  // ff(x) = dropout2(linear2(dropout(act(linear1(x)))))
  auto ff = [&](const Variable& x) {
    const Variable pre = linear1->forward(x);
    const Variable act = options.activation == Activation::Gelu ? gelu(pre) : relu(pre);
    return dropout2->forward(linear2->forward(dropout->forward(act)));
  };
  Variable x = src;
  if (options.norm_first) {
    x = x + sa(norm1->forward(x));
    x = x + ff(norm2->forward(x));
  } else {
    x = norm1->forward(x + sa(x));
    x = norm2->forward(x + ff(x));
  }
  return x;
}

TransformerEncoder::TransformerEncoder(const TransformerEncoderLayerOptions& layer_options, int64_t num_layers,
                                       bool final_norm) {
  UNROLL_CHECK(num_layers > 0, "TransformerEncoder: num_layers must be positive, got {}", num_layers);
  auto list = register_module("layers", std::make_shared<LayerList>());
  for (int64_t k = 0; k < num_layers; ++k)
    layers.push_back(list->add(std::make_shared<TransformerEncoderLayer>(layer_options)));
  layer_list_ = list;
  if (final_norm)
    norm = register_module("norm", std::make_shared<LayerNorm>(layer_options.d_model, layer_options.layer_norm_eps));
}

Variable TransformerEncoder::forward(const Variable& src, const Tensor& mask, const Tensor& src_key_padding_mask) {
  Variable x = src;
  for (const auto& layer : layers) x = layer->forward(x, mask, src_key_padding_mask);
  return norm ? norm->forward(x) : x;
}

// ---- language model -------------------------------------------------------------------------

TransformerLM::TransformerLM(const TransformerLMOptions& opts) : options(opts) {
  const auto& o = options;
  UNROLL_CHECK(o.vocab_size > 0 && o.max_len > 0,
               "TransformerLM: vocab_size and max_len must be positive, got {} and {}", o.vocab_size, o.max_len);
  embedding = register_module("embedding", std::make_shared<Embedding>(o.vocab_size, o.d_model));
  if (o.learned_positions) {
    learned_ = std::make_shared<LearnedPositionalEncoding>(o.d_model, o.max_len, o.dropout, true);
    pos = register_module("pos", learned_);
  } else {
    sinusoidal_ = std::make_shared<SinusoidalPositionalEncoding>(o.d_model, o.max_len, o.dropout, true);
    pos = register_module("pos", sinusoidal_);
  }
  const TransformerEncoderLayerOptions layer{.d_model = o.d_model,
                                             .nhead = o.nhead,
                                             .dim_feedforward = o.dim_feedforward,
                                             .dropout = o.dropout,
                                             .activation = o.activation,
                                             .batch_first = true,
                                             .norm_first = true};
  encoder = register_module("encoder", std::make_shared<TransformerEncoder>(layer, o.num_layers, true));
  head = register_module("head", std::make_shared<Linear>(o.d_model, o.vocab_size));
}

Variable TransformerLM::forward(const Tensor& tokens) {
  const char* op = "TransformerLM";
  UNROLL_CHECK(tokens.defined() && tokens.dtype() == DType::I64 && tokens.ndim() == 2,
               "{}: tokens must be int64 [B,T], got {} {}", op,
               tokens.defined() ? dtype_name(tokens.dtype()) : "undefined",
               tokens.defined() ? tokens.shape().str() : "");
  const int64_t T = tokens.size(1);
  UNROLL_CHECK(T > 0 && T <= options.max_len && tokens.size(0) > 0,
               "{}: tokens {} must have 1..max_len = {} steps and a non-empty batch", op, tokens.shape(),
               options.max_len);
  const int64_t* ids = tokens.data<int64_t>();
  for (int64_t i = 0; i < tokens.numel(); ++i)
    UNROLL_CHECK(ids[i] >= 0 && ids[i] < options.vocab_size, "{}: token {} at position {} of {} is outside 0..{}", op,
                 ids[i], i, tokens.shape(), options.vocab_size - 1);
  // causal[t, u] = 1 (not allowed) for u > t
  std::vector<int64_t> causal(static_cast<size_t>(T * T), 0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t u = t + 1; u < T; ++u) causal[static_cast<size_t>(t * T + u)] = 1;
  const Variable x = embedding->forward(tokens);                                  // [B,T,E]
  const Variable xp = learned_ ? learned_->forward(x) : sinusoidal_->forward(x);  // [B,T,E]
  const Variable hidden = encoder->forward(xp, indices(causal, {T, T}));          // [B,T,E]
  return head->forward(hidden);                                                   // [B,T,V]
}

}  // namespace unroll
