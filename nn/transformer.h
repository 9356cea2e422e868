#pragma once
// Toward the Transformer: multi-head attention, positional encodings and the encoder layer,
// as compositions of the ops of autograd/ops.h (no backward code here either). Parameter
// names, shapes, layouts and default initialisation follow torch.nn.MultiheadAttention,
// torch.nn.TransformerEncoderLayer and torch.nn.TransformerEncoder, so state_dicts move
// between the two (tests/test_torch_transformer.cpp loads them into torch with strict=True).
//
// Shapes (B batch, T / S target / source steps, E = d_model features, h heads, E/h per head):
//   batch_first = false (PyTorch's default): x [T,B,E];   batch_first = true: x [B,T,E].
// Inputs are always batched (PyTorch's unbatched [T,E] form is not accepted).
//
// Note [mask conventions]
// PyTorch itself uses two opposite conventions, and unroll mirrors each where PyTorch has it:
//  - scaled_dot_product_attention() and masked_softmax() (nn/attention.h), like
//    F.scaled_dot_product_attention's boolean mask: true = ATTEND. The mask is Bool, int64
//    (nonzero = attend) or floating point holding only 0 and 1; an additive floating mask
//    (-inf entries, as F.scaled_dot_product_attention also takes) is refused, not misread.
//  - MultiheadAttention / TransformerEncoderLayer / TransformerEncoder, like
//    torch.nn.MultiheadAttention's masks:
//      key_padding_mask [B,S]: Bool (or int64) true / nonzero = IGNORE this key (padding).
//        Unlike PyTorch, a floating point key_padding_mask is not added to the scores: its
//        nonzero entries are ignored keys, which agrees with PyTorch for the usual 0 / -inf
//        masks.
//      attn_mask [T,S] (shared by the batch) or [B*h,T,S] (row b*h + i: batch b, head i):
//        Bool (or int64): true / nonzero = NOT ALLOWED; floating point: ADDED to the scores,
//        where -inf entries are not allowed (generate_square_subsequent_mask() makes such
//        a mask). NaN and +inf entries are rejected, and so is a floating mask holding only
//        0 and 1 (a boolean mask in the wrong dtype, which added would block nothing).
// A query row whose keys are all masked gets zero weights and a zero context, so its
// output is out_proj.bias (PyTorch gives NaN there); its gradients are finite.
#include "autograd/ops.h"
#include "nn/layers.h"
#include "nn/module.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace unroll {

/// The causal mask of torch.nn.Transformer.generate_square_subsequent_mask: [T,T] floating
/// point, 0 on and below the diagonal, -inf above it (position t may not see t' > t).
Tensor generate_square_subsequent_mask(int64_t T, DType dtype = DType::F32);

struct MultiheadAttentionOutput {
  Variable output;   ///< [T,B,E] (or [B,T,E] when batch_first)
  Variable weights;  ///< [B,T,S] averaged over heads, or [B,h,T,S]; undefined if not asked for
};

/// torch.nn.MultiheadAttention (kdim = vdim = embed_dim, no add_bias_kv / add_zero_attn):
///   q, k, v = query W_q^T + b_q, key W_k^T + b_k, value W_v^T + b_v   (W_q,W_k,W_v = rows
///   of in_proj_weight), split into h heads of E/h features;
///   head_i = softmax(q_i k_i^T / sqrt(E/h) + mask) v_i  (dropout on the weights in training);
///   output = concat(head_1..head_h) out_proj.weight^T + out_proj.bias.
/// Parameters: in_proj_weight [3E,E] (xavier uniform), in_proj_bias [3E] (zeros),
/// out_proj.weight [E,E] (Linear's default init), out_proj.bias [E] (zeros); with bias =
/// false neither bias exists. The heads are one batched matmul over [B*h, T, E/h]; when
/// query, key and value are the same Variable (self-attention) the three projections are
/// one linear.
class MultiheadAttention : public Module {
public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0, bool bias = true,
                     bool batch_first = false);
  /// query [T,B,E], key and value [S,B,E] (or batch first); masks as in Note [mask
  /// conventions]. need_weights: also return the attention weights (after dropout, like
  /// PyTorch), averaged over heads when average_attn_weights, else per head [B,h,T,S].
  MultiheadAttentionOutput forward(const Variable& query, const Variable& key, const Variable& value,
                                   const Tensor& key_padding_mask = {}, const Tensor& attn_mask = {},
                                   bool need_weights = true, bool average_attn_weights = true);
  MultiheadAttentionOutput operator()(const Variable& query, const Variable& key, const Variable& value,
                                      const Tensor& key_padding_mask = {}, const Tensor& attn_mask = {},
                                      bool need_weights = true, bool average_attn_weights = true) {
    return forward(query, key, value, key_padding_mask, attn_mask, need_weights, average_attn_weights);
  }
  int64_t embed_dim() const { return embed_dim_; }
  int64_t num_heads() const { return num_heads_; }
  int64_t head_dim() const { return embed_dim_ / num_heads_; }
  bool batch_first() const { return batch_first_; }

  Variable in_proj_weight;           ///< [3E,E]: W_q, W_k, W_v stacked
  Variable in_proj_bias;             ///< [3E] (undefined when bias = false)
  std::shared_ptr<Linear> out_proj;  ///< [E,E] weight, [E] bias
  double dropout;                    ///< on the attention weights, in training mode only

private:
  int64_t embed_dim_, num_heads_;
  bool batch_first_;
  Generator gen_;  // dropout masks on the attention weights
};

/// The fixed sinusoidal table of Vaswani et al.: pe[t, 2i] = sin(t / 10000^(2i/E)),
/// pe[t, 2i+1] = cos(t / 10000^(2i/E)); [T,E] (E may be odd: the last column is a sine).
Tensor sinusoidal_positional_encoding(int64_t T, int64_t E, DType dtype = DType::F32);

/// dropout(x + pe[:T]) with the sinusoidal table (no parameters; the table is not part of
/// the state_dict).
class SinusoidalPositionalEncoding : public Module {
public:
  SinusoidalPositionalEncoding(int64_t d_model, int64_t max_len = 5000, double dropout = 0.0, bool batch_first = false);
  Variable forward(const Variable& x);  ///< [T,B,E] (or [B,T,E]), T <= max_len
  Variable operator()(const Variable& x) { return forward(x); }
  std::shared_ptr<Dropout> dropout;

private:
  int64_t max_len_;
  bool batch_first_;
  Tensor pe_;  // [max_len, E] float64
};

/// dropout(x + weight[:T]), a learned table weight [max_len, E] ~ N(0, 1) like Embedding.
class LearnedPositionalEncoding : public Module {
public:
  LearnedPositionalEncoding(int64_t d_model, int64_t max_len, double dropout = 0.0, bool batch_first = false);
  Variable forward(const Variable& x);  ///< [T,B,E] (or [B,T,E]), T <= max_len
  Variable operator()(const Variable& x) { return forward(x); }
  Variable weight;  ///< [max_len, E]
  std::shared_ptr<Dropout> dropout;

private:
  bool batch_first_;
};

enum class Activation { Relu, Gelu };

struct TransformerEncoderLayerOptions {
  int64_t d_model = 512;
  int64_t nhead = 8;
  int64_t dim_feedforward = 2048;
  double dropout = 0.1;
  Activation activation = Activation::Relu;  ///< Gelu is the exact erf form (PyTorch's "gelu")
  double layer_norm_eps = 1e-5;
  bool batch_first = false;
  bool norm_first = false;  ///< pre-norm (true) or post-norm (false, the 2017 paper's)
};

/// torch.nn.TransformerEncoderLayer:
///   post-norm: x = norm1(x + sa(x)); x = norm2(x + ff(x))
///   pre-norm:  x = x + sa(norm1(x)); x = x + ff(norm2(x))
/// with sa(x) = dropout1(self_attn(x, x, x)) and ff(x) = dropout2(linear2(dropout(act(linear1(x))))).
/// Submodules: self_attn, linear1 [F,E], dropout, linear2 [E,F], norm1, norm2, dropout1, dropout2.
class TransformerEncoderLayer : public Module {
public:
  explicit TransformerEncoderLayer(const TransformerEncoderLayerOptions& options);
  /// src [T,B,E] (or [B,T,E]); src_mask = attn_mask, src_key_padding_mask = key_padding_mask
  /// of MultiheadAttention (Note [mask conventions]).
  Variable forward(const Variable& src, const Tensor& src_mask = {}, const Tensor& src_key_padding_mask = {});
  Variable operator()(const Variable& src, const Tensor& src_mask = {}, const Tensor& src_key_padding_mask = {}) {
    return forward(src, src_mask, src_key_padding_mask);
  }
  const TransformerEncoderLayerOptions options;
  /// When true, forward() keeps the per-head attention weights of its last call in
  /// last_attention ([B,h,T,S], detached; after dropout in training mode) for plotting.
  bool keep_attention = false;
  Tensor last_attention;

  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;
  std::shared_ptr<LayerNorm> norm1, norm2;
};

/// torch.nn.TransformerEncoder: num_layers layers (names layers.0., layers.1., ...), then an
/// optional final LayerNorm (norm.weight, norm.bias; usual with norm_first). Unlike PyTorch,
/// which deep-copies one layer so that all start equal, each layer is initialised on its own.
class TransformerEncoder : public Module {
public:
  TransformerEncoder(const TransformerEncoderLayerOptions& layer_options, int64_t num_layers, bool final_norm = false);
  Variable forward(const Variable& src, const Tensor& mask = {}, const Tensor& src_key_padding_mask = {});
  Variable operator()(const Variable& src, const Tensor& mask = {}, const Tensor& src_key_padding_mask = {}) {
    return forward(src, mask, src_key_padding_mask);
  }
  std::vector<std::shared_ptr<TransformerEncoderLayer>> layers;
  std::shared_ptr<LayerNorm> norm;  ///< null unless final_norm

private:
  std::shared_ptr<Module> layer_list_;  // the "layers" sub-module holding "0", "1", ...
};

struct TransformerLMOptions {
  int64_t vocab_size = 65;
  int64_t d_model = 64;
  int64_t nhead = 4;
  int64_t num_layers = 2;
  int64_t dim_feedforward = 256;
  int64_t max_len = 256;
  double dropout = 0.0;
  bool learned_positions = true;             ///< learned table (GPT style) or sinusoidal
  Activation activation = Activation::Gelu;  ///< of the feed-forward blocks (GPT style)
};

/// A small causal (decoder-only) language model: token embedding + positional encoding ->
/// pre-norm TransformerEncoder with the causal mask and a final LayerNorm -> Linear head.
/// Submodules: embedding, pos, encoder, head (state_dict keys embedding.weight, pos.weight
/// when learned, encoder.layers.N...., encoder.norm.weight/bias, head.weight/bias).
class TransformerLM : public Module {
public:
  explicit TransformerLM(const TransformerLMOptions& options);
  /// tokens [B,T] int64, T <= max_len -> logits [B,T,V]; position t sees tokens 0..t only.
  Variable forward(const Tensor& tokens);
  Variable operator()(const Tensor& tokens) { return forward(tokens); }
  const TransformerLMOptions options;
  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<Module> pos;  ///< LearnedPositionalEncoding or SinusoidalPositionalEncoding
  std::shared_ptr<TransformerEncoder> encoder;
  std::shared_ptr<Linear> head;

private:
  std::shared_ptr<LearnedPositionalEncoding> learned_;        // pos, when learned_positions
  std::shared_ptr<SinusoidalPositionalEncoding> sinusoidal_;  // pos, otherwise
};

}  // namespace unroll
