#pragma once
// The attention encoder-decoder that examples/seq2seq.cpp (string reversal) and
// examples/dates.cpp (date translation) share: a bidirectional GRU reads the source; a
// GRUCell decoder, stepped in a plain loop, writes the target one token at a time,
// attending over the encoder outputs at every step (key mask for padding). Trained with
// teacher forcing, decoded greedily.
//
//   Seq2SeqBatch b = make_seq2seq_batch(sources, targets);        // token ids, no BOS/EOS
//   Seq2SeqModel model(src_vocab, tgt_vocab, 32, 64, "additive");
//   Variable loss = model.loss(b);                                 // mean CE per target token
//   Seq2SeqModel::Decoded d = model.greedy(b, max_steps);          // tokens and weights
//
// Token ids 0, 1, 2 are PAD, BOS and EOS in both vocabularies; symbols start at 3.
#include <unroll.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace unroll::examples {

inline constexpr int64_t kSeqPad = 0, kSeqBos = 1, kSeqEos = 2, kSeqFirstSymbol = 3;

/// A padded batch: sources [T,B] for the encoder, decoder inputs <s> y_1 .. y_n and targets
/// y_1 .. y_n </s>, both [S+1,B] with PAD (ignored by the loss) after each sequence's end.
struct Seq2SeqBatch {
  Tensor src;                    ///< [T,B] int64
  Tensor dec_in;                 ///< [S+1,B] int64
  Tensor dec_out;                ///< [S+1,B] int64
  Tensor key_mask;               ///< [B,T]: 1 at real source positions, 0 at padding
  std::vector<int64_t> lengths;  ///< B source lengths
};

/// Pads `sources` to T = max(src_len, longest source) and `targets` (without BOS/EOS) to
/// S = max(tgt_len, longest target); both lists have B entries, every source is non-empty.
Seq2SeqBatch make_seq2seq_batch(const std::vector<std::vector<int64_t>>& sources,
                                const std::vector<std::vector<int64_t>>& targets, int64_t src_len = 0,
                                int64_t tgt_len = 0);

/// additive (Bahdanau), general (Luong bilinear) or dot (Luong) attention of a decoder
/// state [B,Dq] over keys [B,T,Dk]; throws unroll::Error naming `program` for another kind.
struct Seq2SeqAttention : Module {
  std::string kind;
  std::shared_ptr<AdditiveAttention> additive;
  std::shared_ptr<GeneralAttention> general;
  Seq2SeqAttention(const std::string& kind, int64_t query_dim, int64_t key_dim, const std::string& program);
  /// query [B,Dq], keys [B,T,Dk], mask [B,T] -> context [B,Dk], weights [B,T]
  AttentionResult forward(const Variable& query, const Variable& keys, const Tensor& mask) const;
};

// Encoder: embedding -> bidirectional GRU -> outputs [T,B,2H], the keys and values.
// Decoder (Bahdanau et al. 2015): at step j, with state s_{j-1} [B,Hd] (Hd = 2H),
//   (context_j, a_j) = attention(query s_{j-1}, keys = values = encoder outputs, key mask)
//   s_j = GRUCell([embed(y_{j-1}); context_j], s_{j-1})
//   logits_j = W_out [s_j; context_j] + b_out
// s_0 = tanh(W_init [h_fwd_last; h_bwd_last] + b_init).
struct Seq2SeqModel : Module {
  int64_t V_src, V_tgt, E, H;
  std::shared_ptr<Embedding> src_embed, tgt_embed;
  std::shared_ptr<GRU> encoder;
  std::shared_ptr<Linear> init_state;
  std::shared_ptr<Seq2SeqAttention> attention;
  std::shared_ptr<GRUCell> decoder;
  std::shared_ptr<Linear> out;

  /// `program` names the example in error messages (e.g. an unknown attention kind).
  Seq2SeqModel(int64_t src_vocab, int64_t tgt_vocab, int64_t embed, int64_t hidden, const std::string& attention_kind,
               const std::string& program);

  struct Encoded {
    Variable keys;  ///< [B,T,2H]
    Variable s0;    ///< [B,2H]
  };
  Encoded encode(const Seq2SeqBatch& batch);

  /// One decoder step: previous token [B] and state [B,2H] -> logits [B,V_tgt], new state,
  /// attention weights [B,T].
  struct Step {
    Variable logits, state, weights;
  };
  Step step(const Tensor& prev_token, const Variable& state, const Encoded& enc, const Tensor& mask);

  /// Teacher forcing: the mean cross-entropy of the targets given the true previous tokens.
  Variable loss(const Seq2SeqBatch& batch);

  /// Greedy decoding of `max_steps` tokens (no early stop): tokens [B][steps] and the
  /// attention weights [B][steps][T].
  struct Decoded {
    std::vector<std::vector<int64_t>> tokens;
    std::vector<std::vector<std::vector<double>>> weights;
  };
  Decoded greedy(const Seq2SeqBatch& batch, int64_t max_steps);
};

/// The tokens up to and including the first EOS (or all of them, if there is none).
std::vector<int64_t> until_eos(const std::vector<int64_t>& tokens);

}  // namespace unroll::examples
