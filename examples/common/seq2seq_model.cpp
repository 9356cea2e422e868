#include "common/seq2seq_model.h"

#include <algorithm>

namespace unroll::examples {

Seq2SeqBatch make_seq2seq_batch(const std::vector<std::vector<int64_t>>& sources,
                                const std::vector<std::vector<int64_t>>& targets, int64_t src_len, int64_t tgt_len) {
  UNROLL_CHECK(sources.size() == targets.size() && !sources.empty(),
               "make_seq2seq_batch: {} sources and {} targets (need the same number, at least one)", sources.size(),
               targets.size());
  const int64_t B = static_cast<int64_t>(sources.size());
  int64_t T = src_len, S = tgt_len;
  for (size_t b = 0; b < sources.size(); ++b) {
    UNROLL_CHECK(!sources[b].empty(), "make_seq2seq_batch: source {} is empty", b);
    T = std::max(T, static_cast<int64_t>(sources[b].size()));
    S = std::max(S, static_cast<int64_t>(targets[b].size()));
  }
  std::vector<int64_t> src(static_cast<size_t>(T * B), kSeqPad), din(static_cast<size_t>((S + 1) * B), kSeqPad),
      dout(static_cast<size_t>((S + 1) * B), kSeqPad);
  std::vector<double> mask(static_cast<size_t>(B * T), 0.0);
  Seq2SeqBatch batch;
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int64_t>& s = sources[static_cast<size_t>(b)];
    const std::vector<int64_t>& y = targets[static_cast<size_t>(b)];
    const int64_t n = static_cast<int64_t>(s.size()), m = static_cast<int64_t>(y.size());
    batch.lengths.push_back(n);
    for (int64_t t = 0; t < n; ++t) {
      src[static_cast<size_t>(t * B + b)] = s[static_cast<size_t>(t)];
      mask[static_cast<size_t>(b * T + t)] = 1.0;
    }
    din[static_cast<size_t>(b)] = kSeqBos;
    for (int64_t t = 0; t < m; ++t) {
      din[static_cast<size_t>((t + 1) * B + b)] = y[static_cast<size_t>(t)];
      dout[static_cast<size_t>(t * B + b)] = y[static_cast<size_t>(t)];
    }
    dout[static_cast<size_t>(m * B + b)] = kSeqEos;
  }
  batch.src = indices(src, {T, B});
  batch.dec_in = indices(din, {S + 1, B});
  batch.dec_out = indices(dout, {S + 1, B});
  batch.key_mask = tensor(mask, {B, T});
  return batch;
}

Seq2SeqAttention::Seq2SeqAttention(const std::string& k, int64_t query_dim, int64_t key_dim,
                                   const std::string& program)
    : kind(k) {
  if (kind == "additive")
    additive = register_module("additive", std::make_shared<AdditiveAttention>(query_dim, key_dim, query_dim));
  else if (kind == "general")
    general = register_module("general", std::make_shared<GeneralAttention>(query_dim, key_dim));
  else UNROLL_CHECK(kind == "dot", "{}: --attention must be additive, general or dot, got '{}'", program, kind);
}

AttentionResult Seq2SeqAttention::forward(const Variable& query, const Variable& keys, const Tensor& mask) const {
  if (additive) return (*additive)(query, keys, keys, mask);
  if (general) return (*general)(query, keys, keys, mask);
  return dot_product_attention(query, keys, keys, mask);
}

Seq2SeqModel::Seq2SeqModel(int64_t src_vocab, int64_t tgt_vocab, int64_t embed, int64_t hidden,
                           const std::string& attention_kind, const std::string& program)
    : V_src(src_vocab), V_tgt(tgt_vocab), E(embed), H(hidden) {
  src_embed = register_module("src_embed", std::make_shared<Embedding>(V_src, E, kSeqPad));
  tgt_embed = register_module("tgt_embed", std::make_shared<Embedding>(V_tgt, E, kSeqPad));
  encoder = register_module(
      "encoder", std::make_shared<GRU>(GRUOptions{.input_size = E, .hidden_size = H, .bidirectional = true}));
  init_state = register_module("init_state", std::make_shared<Linear>(2 * H, 2 * H));
  attention = register_module("attention", std::make_shared<Seq2SeqAttention>(attention_kind, 2 * H, 2 * H, program));
  decoder = register_module("decoder", std::make_shared<GRUCell>(E + 2 * H, 2 * H));
  out = register_module("out", std::make_shared<Linear>(4 * H, V_tgt));
}

Seq2SeqModel::Encoded Seq2SeqModel::encode(const Seq2SeqBatch& batch) {
  RecurrentOutput enc = (*encoder)((*src_embed)(batch.src), Variable(), batch.lengths);  // output [T,B,2H], h_n [2,B,H]
  Variable last = concat({narrow(enc.h_n(), 0, 0, 1), narrow(enc.h_n(), 0, 1, 1)}, 2);   // [1,B,2H]
  Variable s0 = tanh((*init_state)(squeeze(last, 0)));                               // [B,2H]
  return {transpose(enc.output, 0, 1), s0};
}

Seq2SeqModel::Step Seq2SeqModel::step(const Tensor& prev_token, const Variable& state, const Encoded& enc,
                                      const Tensor& mask) {
  AttentionResult a = attention->forward(state, enc.keys, mask);  // context [B,2H], weights [B,T]
  Variable x = concat({(*tgt_embed)(prev_token), a.context}, 1);   // [B,E+2H]
  Variable s = decoder->forward(x, state);                        // [B,2H]
  Variable logits = (*out)(concat({s, a.context}, 1));             // [B,V_tgt]
  return {logits, s, a.weights};
}

Variable Seq2SeqModel::loss(const Seq2SeqBatch& batch) {
  Encoded enc = encode(batch);
  const int64_t steps = batch.dec_in.size(0);
  std::vector<Variable> logits;
  Variable s = enc.s0;
  for (int64_t j = 0; j < steps; ++j) {
    StepScope scope(static_cast<int>(j));
    Step st = step(narrow(batch.dec_in, 0, j, 1).reshape({-1}), s, enc, batch.key_mask);
    logits.push_back(st.logits);
    s = st.state;
  }
  Variable all = stack(logits, 0);  // [S+1,B,V_tgt]
  return cross_entropy(reshape(all, {-1, V_tgt}), batch.dec_out.reshape({-1}), kSeqPad);
}

Seq2SeqModel::Decoded Seq2SeqModel::greedy(const Seq2SeqBatch& batch, int64_t max_steps) {
  NoGradGuard no_grad;
  Encoded enc = encode(batch);
  const int64_t B = batch.src.size(1), T = batch.src.size(0);
  Decoded d{std::vector<std::vector<int64_t>>(static_cast<size_t>(B)),
            std::vector<std::vector<std::vector<double>>>(static_cast<size_t>(B))};
  Tensor prev = full({B}, static_cast<double>(kSeqBos), DType::I64);
  Variable s = enc.s0;
  for (int64_t j = 0; j < max_steps; ++j) {
    Step st = step(prev, s, enc, batch.key_mask);
    s = st.state;
    prev = argmax(st.logits.data(), 1);  // [B]
    const std::vector<int64_t> tok = prev.to_indices();
    const std::vector<double> w = st.weights.data().to_vector();
    for (int64_t b = 0; b < B; ++b) {
      d.tokens[static_cast<size_t>(b)].push_back(tok[static_cast<size_t>(b)]);
      d.weights[static_cast<size_t>(b)].emplace_back(w.begin() + b * T, w.begin() + (b + 1) * T);
    }
  }
  return d;
}

std::vector<int64_t> until_eos(const std::vector<int64_t>& tokens) {
  auto end = std::find(tokens.begin(), tokens.end(), kSeqEos);
  return {tokens.begin(), end == tokens.end() ? end : end + 1};
}

}  // namespace unroll::examples
