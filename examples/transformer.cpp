// RNN vs Transformer on the same tasks, side by side: the same data, the same batches, the
// same optimizer and schedule (Adam, warm-up, cosine decay, clipping; the peak learning rate
// is set per model family, --lr-lstm and --lr-tf), one table.
//
// (a) Sequence reversal, the task of examples/seq2seq: random strings of --len symbols; the
//     answer is the string reversed, then </s>. Both models write the answer one token at a
//     time: trained with teacher forcing, scored by greedy decoding on held-out strings
//     (SEQUENCE accuracy: the whole output up to </s> must be exactly right).
//     - LSTM: seq2seq's model built from LSTMs: a bidirectional LSTM encoder, an LSTMCell
//       decoder stepped in a loop, additive (Bahdanau) attention over the encoder outputs.
//     - Transformer, decoder-only: one causal TransformerLM reads the prompt and the answer
//       as a single sequence "s_1 .. s_L <s> y_1 .. y_L" and learns to predict y_1 .. y_L </s>
//       at the positions from <s> on (the prompt positions carry no loss). Decoding appends
//       the argmax and runs the model again (no cache: L+1 passes over the growing prefix).
//     The picture is per-head attention on one held-out string: a head that copies reads
//     position L-1-j while it writes output j, an anti-diagonal in the lower-left block.
//     The program also measures, per head over 200 held-out strings, the share of attention
//     on that mirrored position.
// (b) A character language model on the same text and the same batches: every step draws B
//     windows of T+1 characters; each model predicts characters 2..T+1 from those before,
//     inside the window. The LSTM starts each window from a zero state, so both models see
//     the same context (examples/char_lm instead carries the LSTM state from chunk to
//     chunk). Causal TransformerLM vs Embedding -> LSTM -> Linear, the LSTM's hidden size
//     chosen so that both have about the same number of parameters. Validation: the
//     held-out tail of the text, cut into windows the same way, in bits per character.
//
// Times count training steps only (forward, backward, update), not evaluation: wall clock
// and CPU time. Throughput is per CPU second, which a busy machine does not inflate (the
// kernels run on one thread unless set_num_threads says otherwise).
//
// The program reads like its steps: parse (the flags -> Config), load_text; for (a)
// reversal_data, reversal_models, train_reversal, reversal_attention, plot_reversal; for (b)
// split_text, lm_models, train_lm, lm_attention, plot_lm; then print_table and, with
// --json, json_summary. run() at the bottom calls them in that order. Every model is built
// right after manual_seed(--seed), and both models of a task read the same batches.
//
//   ./transformer                                   # both tasks, under a minute
//   ./transformer --text /work/shared/data/ptb/valid.txt --lm-steps 600
//   ./transformer --len 12 --rev-steps 800 --layers 3
#include <unroll.h>
#include "nn/transformer.h"

#include "common/cli.h"
#include "common/data.h"
#include "common/plot.h"
#include "common/tasks.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <functional>
#include <memory>
#include <numbers>
#include <set>
#include <string>
#include <vector>

using namespace unroll;
using namespace unroll::examples;

namespace {

// ---- what every model run reports ------------------------------------------------------------

struct Run {
  std::string task{}, model{};
  std::string name{};  // short, for legends
  int64_t params = 0;
  double seconds = 0;                      // training steps only, wall clock
  double cpu_seconds = 0;                  // the same, CPU time of this process
  double throughput = 0;                   // sequences (reversal) or characters (LM) per CPU second
  std::vector<double> loss_x{}, loss_y{};  // training loss, every step
  std::vector<double> val_x{}, val_y{};    // LM: validation loss (nats/char) now and then
  std::vector<double> acc_x{}, acc_y{};    // reversal: held-out sequence accuracy now and then
  double seq_acc = NAN, tok_acc = NAN;     // reversal
  double val_bpc = NAN;                    // LM
};

// ---- the training loop (both tasks, both models) ---------------------------------------------

struct Schedule {
  int64_t steps;
  double lr;       // the peak learning rate
  int64_t warmup;  // linear warm-up steps, then cosine decay to lr/20
  double clip;     // gradient norm clipping
  int64_t eval_every = 0;  // 0: no evaluation during training
};

/// The learning rate of step 1 .. steps: linear warm-up, then cosine decay to lr/20.
double scheduled_lr(const Schedule& s, int64_t step) {
  const double warm =
      std::min(1.0, static_cast<double>(step) / static_cast<double>(std::max<int64_t>(s.warmup, 1)));
  const double cosine =
      0.5 * (1 + std::cos(std::numbers::pi * static_cast<double>(step - 1) / static_cast<double>(s.steps)));
  return s.lr * warm * (0.05 + 0.95 * cosine);
}

/// What the training loop carries from one step to the next besides the model.
struct TrainLoop {
  optim::Adam opt;
  Progress progress;
  double smooth = NAN;                    // the loss, smoothed for the progress line
  std::chrono::duration<double> busy{0};  // wall time inside the training steps
  std::clock_t cpu = 0;                   // CPU time inside them

  TrainLoop(Module& model, const Schedule& s, const std::string& label, bool show)
      : opt(model.parameters(), s.lr), progress(label, s.steps, show) {}

  /// One timed step: zero_grad, the loss, backward, clipping, the update -> the loss.
  double step(Module& model, double clip, const std::function<Variable()>& loss_of) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    opt.zero_grad();
    Variable loss = loss_of();
    loss.backward();
    clip_grad_norm(model.parameters(), clip);
    opt.step();
    busy += std::chrono::steady_clock::now() - t0;
    cpu += std::clock() - c0;
    const double l = loss.item();
    smooth = std::isnan(smooth) ? l : 0.95 * smooth + 0.05 * l;
    return l;
  }
};

/// Adam on the schedule, clip_grad_norm; loss_at(step) builds the loss of one step's batch;
/// evaluate(step), if given, runs every eval_every steps (and at the end) outside the timed
/// part.
void train(Module& model, const Schedule& s, Run& run, const std::function<Variable(int64_t)>& loss_at,
           const std::function<void(int64_t)>& evaluate, bool show_progress) {
  TrainLoop loop(model, s, run.task + ", " + run.model, show_progress);
  if (evaluate) evaluate(0);
  for (int64_t step = 1; step <= s.steps; ++step) {
    loop.opt.set_lr(scheduled_lr(s, step));
    const double l = loop.step(model, s.clip, [&] { return loss_at(step); });
    run.loss_x.push_back(static_cast<double>(step));
    run.loss_y.push_back(l);
    if (evaluate && s.eval_every > 0 && (step % s.eval_every == 0 || step == s.steps)) evaluate(step);
    loop.progress.update(step, loop.smooth);
  }
  loop.progress.finish();
  run.seconds = loop.busy.count();
  run.cpu_seconds = static_cast<double>(loop.cpu) / CLOCKS_PER_SEC;
}

// ---- (a) reversal: data ----------------------------------------------------------------------
// Tokens as in seq2seq: 0 PAD, 1 BOS, 2 EOS, then the symbols 'a', 'b', ...
constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kFirstSymbol = 3;
using Seq = std::vector<int64_t>;

std::string token_text(int64_t tok) {
  if (tok == kPad) return "_";
  if (tok == kBos) return "<s>";
  if (tok == kEos) return "</s>";
  return std::string(1, static_cast<char>('a' + (tok - kFirstSymbol)));
}

std::string sequence_text(const Seq& s) {
  std::string out;
  for (int64_t t : s) out += token_text(t);
  return out;
}

Seq reversed(Seq s) {
  std::reverse(s.begin(), s.end());
  return s;
}

Seq random_string(Generator& gen, int64_t symbols, int64_t L) {
  Seq s(static_cast<size_t>(L));
  for (int64_t& t : s) t = kFirstSymbol + gen.randint(0, symbols);
  return s;
}

// One batch of B strings of length L in the layouts of both models.
struct ReversalBatch {
  Tensor src;      // [L,B]: s_1 .. s_L (LSTM encoder, time-major)
  Tensor dec_in;   // [L+1,B]: <s> y_1 .. y_L
  Tensor dec_out;  // [L+1,B]: y_1 .. y_L </s>
  Tensor lm_in;    // [B,2L+1]: s_1 .. s_L <s> y_1 .. y_L (Transformer, one sequence)
  Tensor lm_out;   // [B,2L+1]: PAD x L (no loss), y_1 .. y_L </s>
};

ReversalBatch make_batch(const std::vector<Seq>& strings) {
  const int64_t B = static_cast<int64_t>(strings.size()), L = static_cast<int64_t>(strings.front().size());
  const int64_t N = 2 * L + 1;
  std::vector<int64_t> src(static_cast<size_t>(L * B)), din(static_cast<size_t>((L + 1) * B)), dout(din.size()),
      lin(static_cast<size_t>(B * N)), lout(lin.size(), kPad);
  for (int64_t b = 0; b < B; ++b) {
    const Seq& s = strings[static_cast<size_t>(b)];
    const Seq y = reversed(s);
    auto at = [&](int64_t t) { return static_cast<size_t>(t); };
    din[at(b)] = kBos;
    dout[at(L * B + b)] = kEos;
    lin[at(b * N + L)] = kBos;
    lout[at(b * N + 2 * L)] = kEos;
    for (int64_t t = 0; t < L; ++t) {
      src[at(t * B + b)] = s[at(t)];
      din[at((t + 1) * B + b)] = y[at(t)];
      dout[at(t * B + b)] = y[at(t)];
      lin[at(b * N + t)] = s[at(t)];
      lin[at(b * N + L + 1 + t)] = y[at(t)];
      lout[at(b * N + L + t)] = y[at(t)];
    }
  }
  return {indices(src, {L, B}), indices(din, {L + 1, B}), indices(dout, {L + 1, B}), indices(lin, {B, N}),
          indices(lout, {B, N})};
}

// ---- (a) reversal: the LSTM encoder-decoder with attention ------------------------------------
// Encoder: embedding -> bidirectional LSTM -> outputs [L,B,2H], the keys and values.
// Decoder (Bahdanau et al. 2015), state (s, c) [B,2H] each:
//   (context_j, a_j) = additive_attention(query s_{j-1}, keys = values = encoder outputs)
//   (s_j, c_j) = LSTMCell([embed(y_{j-1}); context_j], (s_{j-1}, c_{j-1}))
//   logits_j = W_out [s_j; context_j] + b_out
// s_0 = tanh(W_init [h_fwd_last; h_bwd_last] + b_init), c_0 = 0.
struct LstmReverser : Module {
  int64_t V, H;
  std::shared_ptr<Embedding> src_embed, tgt_embed;
  std::shared_ptr<LSTM> encoder;
  std::shared_ptr<Linear> init_state;
  std::shared_ptr<AdditiveAttention> attention;
  std::shared_ptr<LSTMCell> decoder;
  std::shared_ptr<Linear> out;

  LstmReverser(int64_t vocab, int64_t embed, int64_t hidden) : V(vocab), H(hidden) {
    src_embed = register_module("src_embed", std::make_shared<Embedding>(V, embed));
    tgt_embed = register_module("tgt_embed", std::make_shared<Embedding>(V, embed));
    encoder = register_module(
        "encoder", std::make_shared<LSTM>(LSTMOptions{.input_size = embed, .hidden_size = H, .bidirectional = true}));
    init_state = register_module("init_state", std::make_shared<Linear>(2 * H, 2 * H));
    attention = register_module("attention", std::make_shared<AdditiveAttention>(2 * H, 2 * H, 2 * H));
    decoder = register_module("decoder", std::make_shared<LSTMCell>(embed + 2 * H, 2 * H));
    out = register_module("out", std::make_shared<Linear>(4 * H, V));
  }

  struct Encoded {
    Variable keys;  // [B,L,2H]
    State s0;       // {s_0, c_0} [B,2H] each
  };
  Encoded encode(const Tensor& src) {
    RecurrentOutput enc = (*encoder)((*src_embed)(src));                                   // output [L,B,2H], h_n [2,B,H]
    Variable last = concat({narrow(enc.h_n(), 0, 0, 1), narrow(enc.h_n(), 0, 1, 1)}, 2);  // [1,B,2H]
    Variable s0 = tanh((*init_state)(squeeze(last, 0)));                              // [B,2H]
    return {transpose(enc.output, 0, 1), {s0, Variable(zeros(s0.shape(), s0.dtype()))}};
  }

  /// One decoder step: previous tokens [B] -> logits [B,V], the new state.
  std::pair<Variable, State> step(const Tensor& prev, const State& state, const Variable& keys) {
    AttentionResult a = (*attention)(state[0], keys, keys);  // context [B,2H]
    State next = (*decoder)(concat({(*tgt_embed)(prev), a.context}, 1), state);
    return {(*out)(concat({next[0], a.context}, 1)), next};  // [B,V]
  }

  /// Teacher forcing: mean cross-entropy of y_1 .. y_L </s> given the true previous tokens.
  Variable loss(const ReversalBatch& batch) {
    Encoded enc = encode(batch.src);
    std::vector<Variable> logits;
    State s = enc.s0;
    for (int64_t j = 0; j < batch.dec_in.size(0); ++j) {
      StepScope scope(static_cast<int>(j));
      auto [l, next] = step(narrow(batch.dec_in, 0, j, 1).reshape({-1}), s, enc.keys);
      logits.push_back(l);
      s = next;
    }
    return cross_entropy(reshape(stack(logits, 0), {-1, V}), batch.dec_out.reshape({-1}));  // [(L+1)B,V]
  }

  /// Greedy decoding of L+1 tokens per string.
  std::vector<Seq> greedy(const ReversalBatch& batch) {
    NoGradGuard no_grad;
    Encoded enc = encode(batch.src);
    const int64_t L = batch.src.size(0), B = batch.src.size(1);
    std::vector<Seq> outs(static_cast<size_t>(B));
    Tensor prev = full({B}, static_cast<double>(kBos), DType::I64);
    State s = enc.s0;
    for (int64_t j = 0; j <= L; ++j) {
      auto [l, next] = step(prev, s, enc.keys);
      s = next;
      prev = argmax(l.data(), 1);  // [B]
      const std::vector<int64_t> tok = prev.to_indices();
      for (int64_t b = 0; b < B; ++b) outs[static_cast<size_t>(b)].push_back(tok[static_cast<size_t>(b)]);
    }
    return outs;
  }
};

// ---- (a) reversal: the decoder-only Transformer ------------------------------------------------

/// Teacher forcing: mean cross-entropy over the answer positions (PAD targets are ignored).
Variable transformer_loss(TransformerLM& model, const Tensor& in, const Tensor& out) {
  Variable logits = model(in);  // [B,N,V]
  return cross_entropy(reshape(logits, {-1, logits.size(2)}), out.reshape({-1}), kPad);
}

/// Greedy decoding of L+1 tokens after "s_1 .. s_L <s>", one full pass per token.
std::vector<Seq> transformer_greedy(TransformerLM& model, const std::vector<Seq>& strings) {
  NoGradGuard no_grad;
  const int64_t B = static_cast<int64_t>(strings.size()), L = static_cast<int64_t>(strings.front().size());
  std::vector<Seq> prefix(strings), outs(strings.size());
  for (Seq& p : prefix) p.push_back(kBos);
  for (int64_t j = 0; j <= L; ++j) {
    const int64_t n = L + 1 + j;
    std::vector<int64_t> flat;
    for (const Seq& p : prefix) flat.insert(flat.end(), p.begin(), p.end());
    Variable logits = model(indices(flat, {B, n}));                                       // [B,n,V]
    const Tensor last = narrow(logits.data(), 1, n - 1, 1).reshape({B, logits.size(2)});  // [B,V]
    const std::vector<int64_t> tok = argmax(last, 1).to_indices();
    for (size_t b = 0; b < strings.size(); ++b) {
      prefix[b].push_back(tok[b]);
      outs[b].push_back(tok[b]);
    }
  }
  return outs;
}

/// Per head, the mean attention weight that answer position L+j (reading <s> or y_j, about
/// to write y_{j+1} = s_{L-j}) puts on prompt position L-1-j, the mirrored one, over
/// j = 0 .. L-1 and the batch: att [B,h,2L+1,2L+1] -> h values.
std::vector<double> mirror_mass(const Tensor& att, int64_t L) {
  const int64_t B = att.size(0), h = att.size(1), N = att.size(2);
  const std::vector<double> w = att.to_vector();
  std::vector<double> mass(static_cast<size_t>(h), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < L; ++j)
        mass[static_cast<size_t>(i)] += w[static_cast<size_t>(((b * h + i) * N + L + j) * N + L - 1 - j)];
  for (double& m : mass) m /= static_cast<double>(B * L);
  return mass;
}

/// The same for attention spread evenly over the visible positions 0 .. L+j.
double uniform_mirror_mass(int64_t L) {
  double m = 0;
  for (int64_t j = 0; j < L; ++j) m += 1.0 / static_cast<double>(L + j + 1);
  return m / static_cast<double>(L);
}

// Sequence accuracy: the output up to the first </s> equals the reversed string + </s>.
// Token accuracy: the share of the L+1 answer positions that are right.
void score(const std::vector<Seq>& strings, const std::vector<Seq>& outputs, int64_t& seq_ok, int64_t& tok_ok,
           int64_t& tok_total) {
  for (size_t i = 0; i < strings.size(); ++i) {
    Seq want = reversed(strings[i]);
    want.push_back(kEos);
    const Seq& got = outputs[i];
    for (size_t j = 0; j < want.size(); ++j) tok_ok += got[j] == want[j];
    tok_total += static_cast<int64_t>(want.size());
    const auto end = std::find(got.begin(), got.end(), kEos);
    seq_ok += Seq(got.begin(), end == got.end() ? end : end + 1) == want;
  }
}

struct Accuracy {
  double sequence, token;
};

/// A model's greedy decoder: strings -> outputs (L+1 tokens each).
using Decode = std::function<std::vector<Seq>(const std::vector<Seq>&)>;

/// Greedy decoding of `strings` (in batches of 250) with decode(strings) -> outputs, scored.
Accuracy reversal_accuracy(Module& model, const std::vector<Seq>& strings, const Decode& decode) {
  model.eval();
  int64_t seq_ok = 0, tok_ok = 0, tok_total = 0;
  for (size_t lo = 0; lo < strings.size(); lo += 250) {
    const std::vector<Seq> part(strings.begin() + static_cast<std::ptrdiff_t>(lo),
                                strings.begin() + static_cast<std::ptrdiff_t>(std::min(strings.size(), lo + 250)));
    score(part, decode(part), seq_ok, tok_ok, tok_total);
  }
  model.train();
  return {static_cast<double>(seq_ok) / static_cast<double>(strings.size()),
          static_cast<double>(tok_ok) / static_cast<double>(tok_total)};
}

/// The first step at which the held-out sequence accuracy reached `level` (NaN: never).
double first_step_at(const Run& r, double level) {
  for (size_t i = 0; i < r.acc_x.size(); ++i)
    if (r.acc_y[i] >= level) return r.acc_x[i];
  return NAN;
}

// ---- (b) character LM ------------------------------------------------------------------------

/// Embedding -> LSTM -> Linear: ids [T,B] -> logits [T,B,V], from a zero state.
struct LstmLM : Module {
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<LSTM> lstm;
  std::shared_ptr<Linear> head;
  LstmLM(int64_t V, int64_t E, int64_t H) {
    embed = register_module("embed", std::make_shared<Embedding>(V, E));
    lstm = register_module("lstm", std::make_shared<LSTM>(LSTMOptions{.input_size = E, .hidden_size = H}));
    head = register_module("head", std::make_shared<Linear>(H, V));
  }
  Variable forward(const Tensor& ids) { return (*head)((*lstm)((*embed)(ids)).output); }
};

/// The LSTM hidden size whose LM has about `params` parameters:
/// V E + 4H (E + H) + 8H + H V + V = params, solved for H.
int64_t matching_hidden(int64_t params, int64_t V, int64_t E) {
  const double a = 4, b = 4.0 * static_cast<double>(E) + 8 + static_cast<double>(V);
  const double c = static_cast<double>(V * E + V - params);
  return std::max<int64_t>(1, std::llround((-b + std::sqrt(b * b - 4 * a * c)) / (2 * a)));
}

// Windows of T+1 characters starting at `starts`, as inputs and targets in both layouts.
struct LmBatch {
  Tensor x_bt, y_bt;  // [B,T]
  Tensor x_tb, y_tb;  // [T,B]
};

LmBatch make_lm_batch(const std::vector<int64_t>& ids, const int64_t* starts, int64_t B, int64_t T) {
  std::vector<int64_t> xb(static_cast<size_t>(B * T)), yb(xb.size()), xt(xb.size()), yt(xb.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const size_t at = static_cast<size_t>(starts[b] + t);
      xb[static_cast<size_t>(b * T + t)] = xt[static_cast<size_t>(t * B + b)] = ids[at];
      yb[static_cast<size_t>(b * T + t)] = yt[static_cast<size_t>(t * B + b)] = ids[at + 1];
    }
  return {indices(xb, {B, T}), indices(yb, {B, T}), indices(xt, {T, B}), indices(yt, {T, B})};
}

Variable flat_cross_entropy(const Variable& logits, const Tensor& targets) {
  return cross_entropy(reshape(logits, {-1, logits.size(2)}), targets.reshape({-1}));
}

// ---- figures -------------------------------------------------------------------------------

/// One heatmap of attention weights [T,S] (a head of a layer) with the tokens on both axes.
std::string save_attention(const Tensor& att, int64_t b, int64_t head, const std::vector<std::string>& rows,
                           const std::vector<std::string>& cols, const std::string& title, const std::string& path) {
  const int64_t h = att.size(1), T = att.size(2), S = att.size(3);
  const std::vector<double> w = att.to_vector();
  plot::Heatmap hm;
  hm.title = title;
  hm.xlabel = "key position (token attended to)";
  hm.ylabel = "query position (token attending)";
  hm.colorbar_label = "attention weight";
  for (int64_t t = 0; t < T; ++t) {
    const auto row = w.begin() + static_cast<std::ptrdiff_t>(((b * h + head) * T + t) * S);
    hm.values.emplace_back(row, row + S);
  }
  hm.row_labels = rows;
  hm.col_labels = cols;
  hm.save(path);
  return path;
}

// One colour per model in every figure.
constexpr const char* kRnnColor = "#1f77b4";
constexpr const char* kTfColor = "#d62728";

/// Training loss per step of both models.
plot::LinePlot loss_plot(const std::string& title, const std::string& ylabel, const Run& rnn, const Run& tf,
                         bool log_y) {
  plot::LinePlot p;
  p.title = title;
  p.xlabel = "training step";
  p.ylabel = ylabel;
  p.log_y = log_y;
  p.add(rnn.name + " train", rnn.loss_x, rnn.loss_y).series.back().color = kRnnColor;
  p.add(tf.name + " train", tf.loss_x, tf.loss_y).series.back().color = kTfColor;
  return p;
}

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

std::string printable(unsigned char c) {
  if (c == ' ') return "\u2423";   // ␣
  if (c == '\n') return "\u21b5";  // ↵
  if (c < 0x20 || c >= 0x7f) return "?";
  return std::string(1, static_cast<char>(c));
}

// ---- parse: the flags -------------------------------------------------------------------------

struct Config {
  // the Transformer (both tasks), the optimizer (both models)
  int64_t d_model, nhead, layers, ff;
  double lr_tf, lr_rnn;
  int64_t warmup;
  double clip;
  // (a) reversal
  int64_t L, symbols, rev_steps, rev_batch, rev_embed, rev_hidden, n_test, rev_eval_every;
  // (b) character LM
  std::string text_path;
  int64_t lm_steps, lm_batch, T, lm_embed;
  int64_t lm_hidden;  // 0: match the Transformer's parameters
  double val_frac;
  int64_t val_max, eval_every;
  uint64_t seed;
  bool json;  // also: no progress lines
  std::string out_dir;
};

Config parse(int argc, char** argv) {
  Cli cli(argc, argv,
          "RNN vs Transformer on the same tasks: sequence reversal (LSTM encoder-decoder with attention vs a "
          "decoder-only Transformer) and a character LM (LSTM vs causal Transformer of the same size)");
  Config c{};
  // the Transformer (both tasks)
  c.d_model = cli.get_int("d-model", 64, "Transformer: model width E");
  c.nhead = cli.get_int("heads", 4, "Transformer: attention heads h (E/h features each)");
  c.layers = cli.get_int("layers", 2, "Transformer: layers");
  c.ff = cli.get_int("ff", 256, "Transformer: feed-forward width");
  c.lr_tf = cli.get_double("lr-tf", 5e-3, "Transformer: Adam peak learning rate");
  c.lr_rnn = cli.get_double("lr-lstm", 3e-3, "LSTM: Adam peak learning rate");
  c.warmup = cli.get_int("warmup", 50, "linear warm-up steps (both models), then cosine decay to lr/20");
  c.clip = cli.get_double("clip", 1.0, "gradient norm clipping");
  // (a) reversal
  c.L = cli.get_int("len", 8, "reversal: string length L");
  c.symbols = cli.get_int("symbols", 12, "reversal: distinct symbols (plus PAD, BOS, EOS)");
  c.rev_steps = cli.get_int("rev-steps", 500, "reversal: training steps per model");
  c.rev_batch = cli.get_int("rev-batch", 32, "reversal: batch size");
  c.rev_embed = cli.get_int("rnn-embed", 32, "reversal LSTM: embedding size");
  c.rev_hidden = cli.get_int("rnn-hidden", 48, "reversal LSTM: encoder hidden size per direction (decoder 2H)");
  c.n_test = cli.get_int("test", 1000, "reversal: held-out strings");
  c.rev_eval_every =
      cli.get_int("rev-eval-every", 25, "reversal: steps between accuracies on 200 held-out strings (for the curve)");
  // (b) character LM
  c.text_path = cli.get_string("text", "", "LM: training text (default: char_lm's built-in essay)");
  c.lm_steps = cli.get_int("lm-steps", 400, "LM: training steps per model");
  c.lm_batch = cli.get_int("lm-batch", 16, "LM: windows per batch B");
  c.T = cli.get_int("lm-seq", 64, "LM: characters per window T (the Transformer's max_len)");
  c.lm_embed = cli.get_int("lm-embed", 32, "LM LSTM: embedding size");
  c.lm_hidden = cli.get_int("lm-hidden", 0, "LM LSTM: hidden size (0: match the Transformer's parameters)");
  c.val_frac = cli.get_double("val-frac", 0.1, "LM: share of the text held out at its end");
  c.val_max = cli.get_int("val-max", 20000, "LM: at most this many validation characters are scored");
  c.eval_every = cli.get_int("eval-every", 50, "LM: steps between validation losses");
  c.seed = cli.seed();
  c.json = cli.json();
  c.out_dir = cli.out_dir();
  cli.done();
  UNROLL_CHECK(c.d_model > 0 && c.nhead > 0 && c.d_model % c.nhead == 0 && c.layers > 0 && c.ff > 0,
               "transformer: need --d-model divisible by --heads, and positive --layers and --ff");
  UNROLL_CHECK(c.L >= 2 && c.symbols >= 2 && c.symbols <= 26, "transformer: need --len >= 2 and --symbols in 2..26");
  UNROLL_CHECK(c.rev_steps > 0 && c.rev_batch > 0 && c.n_test > 0 && c.lm_steps > 0 && c.lm_batch > 0 && c.T > 1 &&
                   c.eval_every > 0 && c.rev_eval_every > 0 && c.warmup >= 0 && c.rev_embed > 0 &&
                   c.rev_hidden > 0 && c.lm_embed > 0 && c.lm_hidden >= 0,
               "transformer: steps, batch sizes, sizes and --eval-every must be positive (--lm-seq > 1)");
  UNROLL_CHECK(c.val_frac > 0 && c.val_frac < 0.5, "transformer: --val-frac must be in (0, 0.5), got {}", c.val_frac);
  UNROLL_CHECK(
      std::pow(static_cast<double>(c.symbols), static_cast<double>(c.L)) > 2.0 * static_cast<double>(c.n_test),
      "transformer: {}^{} strings are too few for {} held-out ones", c.symbols, c.L, c.n_test);
  return c;
}

/// The Transformer of either task: the flags' shape, `vocab` tokens, sequences of up to `max_len`.
TransformerLMOptions transformer_options(const Config& c, int64_t vocab, int64_t max_len) {
  return {.vocab_size = vocab,
          .d_model = c.d_model,
          .nhead = c.nhead,
          .num_layers = c.layers,
          .dim_feedforward = c.ff,
          .max_len = max_len,
          .dropout = 0.0,
          .learned_positions = true};
}

std::string transformer_name(const Config& c) { return fmt::format("Transformer ({}x{} heads)", c.layers, c.nhead); }

// ---- (a) reversal: data, models, training, evaluation, figures ---------------------------------

/// The held-out strings and every training step's batch, the same for both models.
struct ReversalData {
  std::vector<Seq> test;               // n_test distinct strings, never trained on
  std::vector<Seq> probe;              // the first 200 of them: accuracy curves and attention
  std::vector<ReversalBatch> batches;  // one per training step, strings drawn fresh
};

ReversalData reversal_data(const Config& c) {
  ReversalData d;
  Generator data_gen(c.seed);
  std::set<Seq> test_set;
  while (static_cast<int64_t>(d.test.size()) < c.n_test) {
    Seq s = random_string(data_gen, c.symbols, c.L);
    if (test_set.insert(s).second) d.test.push_back(s);
  }
  for (int64_t step = 0; step < c.rev_steps; ++step) {
    std::vector<Seq> b;
    while (static_cast<int64_t>(b.size()) < c.rev_batch) {
      Seq s = random_string(data_gen, c.symbols, c.L);
      if (!test_set.contains(s)) b.push_back(std::move(s));
    }
    d.batches.push_back(make_batch(b));
  }
  d.probe.assign(d.test.begin(), d.test.begin() + std::min<int64_t>(200, c.n_test));
  fmt::print("(a) reversal: strings of {} over {} symbols, {} training steps of {}, {} held-out strings\n", c.L,
             c.symbols, c.rev_steps, c.rev_batch, c.n_test);
  return d;
}

/// Both reversal models, each built right after manual_seed(seed), and their records.
struct Reversers {
  std::shared_ptr<LstmReverser> rnn;
  std::shared_ptr<TransformerLM> tf;
  Run rnn_run, tf_run;

  std::vector<Seq> rnn_decode(const std::vector<Seq>& s) const { return rnn->greedy(make_batch(s)); }
  std::vector<Seq> tf_decode(const std::vector<Seq>& s) const { return transformer_greedy(*tf, s); }
};

Reversers reversal_models(const Config& c) {
  const int64_t V = kFirstSymbol + c.symbols;
  Reversers m;
  manual_seed(c.seed);
  m.rnn = std::make_shared<LstmReverser>(V, c.rev_embed, c.rev_hidden);
  manual_seed(c.seed);
  m.tf = std::make_shared<TransformerLM>(transformer_options(c, V, 2 * c.L + 1));
  m.rnn_run = {
      .task = "reversal", .model = "LSTM enc-dec + attention", .name = "LSTM", .params = m.rnn->num_parameters()};
  m.tf_run = {
      .task = "reversal", .model = transformer_name(c), .name = "Transformer", .params = m.tf->num_parameters()};
  return m;
}

/// Trains one model on the step batches (sequence accuracy on the probe strings every
/// rev_eval_every steps, for the curve), then scores it on every held-out string.
void fit_reverser(const Config& c, const ReversalData& d, Module& model, Run& r, double lr,
                  const std::function<Variable(const ReversalBatch&)>& loss_of, const Decode& decode) {
  train(
      model, {c.rev_steps, lr, c.warmup, c.clip, c.rev_eval_every}, r,
      [&](int64_t step) { return loss_of(d.batches[static_cast<size_t>(step - 1)]); },
      [&](int64_t step) {
        r.acc_x.push_back(static_cast<double>(step));
        r.acc_y.push_back(reversal_accuracy(model, d.probe, decode).sequence);
      },
      !c.json);
  const Accuracy acc = reversal_accuracy(model, d.test, decode);
  r.seq_acc = acc.sequence, r.tok_acc = acc.token;
  r.throughput = static_cast<double>(c.rev_steps * c.rev_batch) / std::max(r.cpu_seconds, 1e-9);
}

void train_reversal(const Config& c, const ReversalData& d, Reversers& m) {
  std::fflush(stdout);
  fit_reverser(
      c, d, *m.rnn, m.rnn_run, c.lr_rnn, [&](const ReversalBatch& b) { return m.rnn->loss(b); },
      [&](const std::vector<Seq>& s) { return m.rnn_decode(s); });
  fit_reverser(
      c, d, *m.tf, m.tf_run, c.lr_tf,
      [&](const ReversalBatch& b) { return transformer_loss(*m.tf, b.lm_in, b.lm_out); },
      [&](const std::vector<Seq>& s) { return m.tf_decode(s); });
}

/// The Transformer's most mirror-like head.
struct Mirror {
  double mass = 0;   // its mean attention on the mirrored position
  std::string head;  // "layer k head i"
};

/// One held-out string decoded by both models; then the Transformer's attention on the probe
/// strings, teacher-forced with their answers: how much each head reads the mirrored
/// position, and a heatmap per head of the first string.
Mirror reversal_attention(const Config& c, const ReversalData& d, Reversers& m, std::vector<std::string>& figures) {
  Mirror best;
  NoGradGuard no_grad;
  TransformerLM& tf = *m.tf;
  tf.eval();
  const Seq& s = d.test.front();
  fmt::print("  e.g. {} -> LSTM {}, Transformer {}\n", sequence_text(s), sequence_text(m.rnn_decode({s}).front()),
             sequence_text(m.tf_decode({s}).front()));
  const ReversalBatch b = make_batch(d.probe);
  for (auto& layer : tf.encoder->layers) layer->keep_attention = true;
  tf(b.lm_in);
  std::vector<std::string> labels;
  for (int64_t t : narrow(b.lm_in, 0, 0, 1).to_indices()) labels.push_back(token_text(t));
  for (size_t k = 0; k < tf.encoder->layers.size(); ++k) {
    auto& layer = tf.encoder->layers[k];
    const std::vector<double> mass = mirror_mass(layer->last_attention, c.L);
    for (int64_t i = 0; i < c.nhead; ++i) {
      if (mass[static_cast<size_t>(i)] > best.mass)
        best.mass = mass[static_cast<size_t>(i)], best.head = fmt::format("layer {} head {}", k + 1, i + 1);
      figures.push_back(save_attention(
          layer->last_attention, 0, i, labels, labels,
          fmt::format("reversal, layer {} head {} ({:.0f}% on the mirror): {} -> {}", k + 1, i + 1,
                      100 * mass[static_cast<size_t>(i)], sequence_text(s), sequence_text(reversed(s))),
          fmt::format("{}/reversal_attention_l{}_h{}.svg", c.out_dir, k + 1, i + 1)));
    }
    layer->keep_attention = false;
  }
  tf.train();
  fmt::print(
      "  the most mirror-like head, {}, puts {:.0f}% of the attention of answer step j on prompt position "
      "L-1-j (uniform: {:.0f}%)\n",
      best.head, 100 * best.mass, 100 * uniform_mirror_mass(c.L));
  return best;
}

/// The training losses and the accuracy curves of both models.
void plot_reversal(const Config& c, const ReversalData& d, const Reversers& m, std::vector<std::string>& figures) {
  plot::LinePlot rev_plot = loss_plot(fmt::format("reversal of length-{} strings: training loss, same batches", c.L),
                                      "cross-entropy per answer token", m.rnn_run, m.tf_run, true);
  figures.push_back(c.out_dir + "/reversal_loss.svg");
  rev_plot.save(figures.back());
  plot::LinePlot acc_plot;
  acc_plot.title = fmt::format("reversal: greedy decoding of {} held-out strings", d.probe.size());
  acc_plot.xlabel = "training step";
  acc_plot.ylabel = "sequence accuracy";
  acc_plot.add(m.rnn_run.name, m.rnn_run.acc_x, m.rnn_run.acc_y).series.back().color = kRnnColor;
  acc_plot.add(m.tf_run.name, m.tf_run.acc_x, m.tf_run.acc_y).series.back().color = kTfColor;
  for (plot::Series& se : acc_plot.series) se.markers = se.x.size() <= 60;
  figures.push_back(c.out_dir + "/reversal_accuracy.svg");
  acc_plot.save(figures.back());
}

// ---- (b) character LM: data, models, training, evaluation, figures -----------------------------

/// The LM's text, read before any training so that a bad --text fails at once.
struct Text {
  CharVocab vocab;
  std::vector<int64_t> ids;
  int64_t V() const { return vocab.size(); }
  double ln_v() const { return std::log(static_cast<double>(V())); }  // the loss of a uniform guess
};

Text load_text(const Config& c) {
  const std::string text = c.text_path.empty() ? essay_text() : read_text_file(c.text_path);
  CharVocab vocab = CharVocab::of_text(text);
  std::vector<int64_t> ids = vocab.encode(text, "the text");
  return {std::move(vocab), std::move(ids)};
}

/// The text split into training and validation, every step's windows, the validation batches.
struct LmData {
  std::vector<int64_t> train_ids, val_ids;
  std::vector<int64_t> starts;       // lm_steps x lm_batch window starts, the same for both models
  std::vector<LmBatch> val_batches;  // the validation text in windows of T+1, 32 to a batch
};

LmData split_text(const Config& c, const Text& text) {
  const std::vector<int64_t>& ids = text.ids;
  const int64_t T = c.T;
  const int64_t n_val = static_cast<int64_t>(static_cast<double>(ids.size()) * c.val_frac);
  LmData d;
  d.train_ids.assign(ids.begin(), ids.end() - n_val);
  d.val_ids.assign(ids.end() - n_val, ids.end() - std::max<int64_t>(0, n_val - c.val_max));
  UNROLL_CHECK(static_cast<int64_t>(d.train_ids.size()) > T + 1 && static_cast<int64_t>(d.val_ids.size()) > T + 1,
               "transformer: the text has {} characters: too short for training and validation windows of {} + 1",
               ids.size(), T);
  Generator window_gen(c.seed + 1);
  d.starts.resize(static_cast<size_t>(c.lm_steps * c.lm_batch));
  for (int64_t& s : d.starts) s = window_gen.randint(0, static_cast<int64_t>(d.train_ids.size()) - T - 1);
  std::vector<int64_t> vs;
  for (int64_t s = 0; s + T + 1 <= static_cast<int64_t>(d.val_ids.size()); s += T) vs.push_back(s);
  for (size_t lo = 0; lo < vs.size(); lo += 32) {
    const int64_t n = static_cast<int64_t>(std::min<size_t>(32, vs.size() - lo));
    d.val_batches.push_back(make_lm_batch(d.val_ids, vs.data() + lo, n, T));
  }
  fmt::print(
      "(b) character LM: {} characters ({} train, {} validation scored), |V| = {} (ln|V| = {:.3f}), {} steps of "
      "{} x {}\n",
      ids.size(), d.train_ids.size(), d.val_ids.size(), text.V(), text.ln_v(), c.lm_steps, c.lm_batch, T);
  return d;
}

/// Both LMs, each built right after manual_seed(seed), the LSTM sized to the Transformer's
/// parameter count unless --lm-hidden says otherwise; and their records.
struct CharLms {
  std::shared_ptr<TransformerLM> tf;
  std::shared_ptr<LstmLM> rnn;
  Run rnn_run, tf_run;
};

CharLms lm_models(const Config& c, int64_t V) {
  CharLms m;
  manual_seed(c.seed);
  m.tf = std::make_shared<TransformerLM>(transformer_options(c, V, c.T));
  const int64_t H = c.lm_hidden > 0 ? c.lm_hidden : matching_hidden(m.tf->num_parameters(), V, c.lm_embed);
  manual_seed(c.seed);
  m.rnn = std::make_shared<LstmLM>(V, c.lm_embed, H);
  m.rnn_run = {.task = "char LM",
               .model = fmt::format("LSTM (H={})", H),
               .name = "LSTM",
               .params = m.rnn->num_parameters()};
  m.tf_run = {.task = "char LM", .model = transformer_name(c), .name = "Transformer", .params = m.tf->num_parameters()};
  return m;
}

/// Trains one LM on the shared windows, with the mean validation cross-entropy (nats per
/// character, over every window) at step 0, every eval_every steps and at the end.
void fit_lm(const Config& c, const LmData& d, Module& model, Run& r, double lr,
            const std::function<Variable(const LmBatch&)>& loss_of) {
  auto validate = [&](int64_t step) {
    model.eval();
    {
      NoGradGuard no_grad;
      double total = 0, count = 0;
      for (const LmBatch& b : d.val_batches) {
        const double n = static_cast<double>(b.y_bt.numel());
        total += loss_of(b).item() * n;
        count += n;
      }
      r.val_x.push_back(static_cast<double>(step));
      r.val_y.push_back(total / count);
    }
    model.train();
  };
  train(
      model, {c.lm_steps, lr, c.warmup, c.clip, c.eval_every}, r,
      [&](int64_t step) {
        return loss_of(make_lm_batch(d.train_ids, d.starts.data() + (step - 1) * c.lm_batch, c.lm_batch, c.T));
      },
      validate, !c.json);
  r.throughput = static_cast<double>(c.lm_steps * c.lm_batch * c.T) / std::max(r.cpu_seconds, 1e-9);
  r.val_bpc = r.val_y.back() / std::log(2.0);
}

void train_lm(const Config& c, const LmData& d, CharLms& m) {
  std::fflush(stdout);
  fit_lm(c, d, *m.rnn, m.rnn_run, c.lr_rnn,
         [&](const LmBatch& b) { return flat_cross_entropy(m.rnn->forward(b.x_tb), b.y_tb); });
  fit_lm(c, d, *m.tf, m.tf_run, c.lr_tf, [&](const LmBatch& b) { return flat_cross_entropy((*m.tf)(b.x_bt), b.y_bt); });
}

/// The Transformer's attention on the start of the validation text (causal: lower-triangular),
/// a heatmap per head.
void lm_attention(const Config& c, const Text& text, const LmData& d, CharLms& m, std::vector<std::string>& figures) {
  NoGradGuard no_grad;
  TransformerLM& tf = *m.tf;
  tf.eval();
  const std::vector<unsigned char>& chars = text.vocab.chars;  // id -> byte
  const int64_t n = std::min<int64_t>(c.T, 40);
  const std::vector<int64_t> sample(d.val_ids.begin(), d.val_ids.begin() + n);
  std::vector<std::string> labels;
  std::string shown;
  for (int64_t id : sample) {
    labels.push_back(printable(chars[static_cast<size_t>(id)]));
    shown += chars[static_cast<size_t>(id)] == '\n' ? ' ' : static_cast<char>(chars[static_cast<size_t>(id)]);
  }
  for (auto& layer : tf.encoder->layers) layer->keep_attention = true;
  tf(indices(sample, {1, n}));
  for (size_t k = 0; k < tf.encoder->layers.size(); ++k) {
    auto& layer = tf.encoder->layers[k];
    for (int64_t i = 0; i < c.nhead; ++i)
      figures.push_back(save_attention(layer->last_attention, 0, i, labels, labels,
                                       fmt::format("char LM, layer {} head {}: \"{}\"", k + 1, i + 1, shown),
                                       fmt::format("{}/lm_attention_l{}_h{}.svg", c.out_dir, k + 1, i + 1)));
    layer->keep_attention = false;
  }
  tf.train();
}

/// Training and validation losses of both LMs, in bits per character.
void plot_lm(const Config& c, const Text& text, const CharLms& m, std::vector<std::string>& figures) {
  const Run &rnn = m.rnn_run, &tf = m.tf_run;
  plot::LinePlot lm_plot = loss_plot(fmt::format("character LM ({} chars, |V| = {}): loss, same windows",
                                                 with_commas(static_cast<int64_t>(text.ids.size())), text.V()),
                                     "cross-entropy (nats per character)", rnn, tf, false);
  lm_plot.add(rnn.name + " validation", rnn.val_x, rnn.val_y, true).series.back().color = kRnnColor;
  lm_plot.add(tf.name + " validation", tf.val_x, tf.val_y, true).series.back().color = kTfColor;
  for (size_t i = 2; i < 4; ++i) lm_plot.series[i].markers = true;
  lm_plot.add_reference(fmt::format("log2|V| = {:.2f} (uniform)", text.ln_v() / std::log(2.0)), 0.0,
                        static_cast<double>(c.lm_steps), text.ln_v());
  // One unit with the text and the table: bits per character (the losses are in nats).
  lm_plot.ylabel = "cross-entropy (bits per character)";
  for (plot::Series& se : lm_plot.series)
    for (double& y : se.y) y /= std::log(2.0);
  figures.push_back(c.out_dir + "/lm_loss.svg");
  lm_plot.save(figures.back());
}

// ---- report: the table, the figures, --json ------------------------------------------------------

/// Guessing: a whole string of L symbols right.
double chance_sequence_accuracy(const Config& c) {
  return std::pow(1.0 / static_cast<double>(c.symbols), static_cast<double>(c.L));
}

void print_table(const Config& c, const Text& text, const Reversers& rev, const CharLms& lm,
                 const std::vector<std::string>& figures) {
  auto row = [](const Run& r, const std::string& metric, const char* unit) {
    fmt::print("{:<10} {:<26} {:>9}  {:<44} {:>7.1f} / {:<8.1f}  {:>7.0f} {}\n", r.task, r.model, with_commas(r.params),
               metric, r.seconds, r.cpu_seconds, r.throughput, unit);
  };
  fmt::print("\n{:<10} {:<26} {:>9}  {:<44} {:<18}  {}\n", "task", "model", "params", "held-out metric",
             "train s (wall/CPU)", "throughput per CPU s");
  for (const Run* r : {&rev.rnn_run, &rev.tf_run})
    row(*r,
        fmt::format("sequence {:.1f}%, token {:.1f}% (90%: step {})", 100 * r->seq_acc, 100 * r->tok_acc,
                    first_step_at(*r, 0.9)),
        "sequences/s");
  for (const Run* r : {&lm.rnn_run, &lm.tf_run})
    row(*r, fmt::format("validation {:.3f} bits/char", r->val_bpc), "chars/s");
  fmt::print("(chance: sequence {:.1e}, token {:.1f}%; uniform LM {:.3f} bits/char)\n", chance_sequence_accuracy(c),
             100.0 / static_cast<double>(c.symbols), text.ln_v() / std::log(2.0));
  fmt::print("\nfigures:\n");
  for (const std::string& f : figures) fmt::print("  {}\n", f);
}

std::string json_summary(const Config& c, const Text& text, const Reversers& rev, const Mirror& mirror,
                         const CharLms& lm) {
  JsonLine line;
  line.add("len", static_cast<double>(c.L)).add("symbols", static_cast<double>(c.symbols));
  line.add("chance_sequence_accuracy", chance_sequence_accuracy(c));
  for (const auto& [key, r] : {std::pair{"rev_lstm", &rev.rnn_run}, std::pair{"rev_tf", &rev.tf_run}}) {
    const std::string k = key;
    line.add(k + "_params", static_cast<double>(r->params)).add(k + "_sequence_accuracy", r->seq_acc);
    line.add(k + "_token_accuracy", r->tok_acc).add(k + "_seconds", r->seconds);
    line.add(k + "_cpu_seconds", r->cpu_seconds)
        .add(k + "_sequences_per_s", r->throughput)
        .add(k + "_initial_loss", r->loss_y.front());
    line.add(k + "_final_loss", r->loss_y.back()).add(k + "_step_to_90", first_step_at(*r, 0.9));
  }
  line.add("rev_tf_mirror_attention", mirror.mass).add("uniform_mirror_attention", uniform_mirror_mass(c.L));
  line.add("lm_vocab", static_cast<double>(text.V())).add("lm_ln_vocab", text.ln_v());
  for (const auto& [key, r] : {std::pair{"lm_lstm", &lm.rnn_run}, std::pair{"lm_tf", &lm.tf_run}}) {
    const std::string k = key;
    line.add(k + "_params", static_cast<double>(r->params)).add(k + "_val_bpc", r->val_bpc);
    line.add(k + "_initial_val_loss", r->val_y.front()).add(k + "_val_loss", r->val_y.back());
    line.add(k + "_seconds", r->seconds).add(k + "_cpu_seconds", r->cpu_seconds).add(k + "_chars_per_s", r->throughput);
  }
  return line.str();
}

// ---- the program --------------------------------------------------------------------------------

int run(int argc, char** argv) {
  const Config c = parse(argc, argv);
  const Text text = load_text(c);
  plot::make_dirs(c.out_dir);
  std::vector<std::string> figures;

  // (a) reversal
  const ReversalData rev_data = reversal_data(c);
  Reversers rev = reversal_models(c);
  train_reversal(c, rev_data, rev);
  const Mirror mirror = reversal_attention(c, rev_data, rev, figures);
  plot_reversal(c, rev_data, rev, figures);

  // (b) character LM
  const LmData lm_data = split_text(c, text);
  CharLms lm = lm_models(c, text.V());
  train_lm(c, lm_data, lm);
  lm_attention(c, text, lm_data, lm, figures);
  plot_lm(c, text, lm, figures);

  print_table(c, text, rev, lm, figures);
  if (c.json) fmt::print("{}\n", json_summary(c, text, rev, mirror, lm));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // unroll::Error: its message names the program or the op; DataError: a file that cannot be read
  return guarded_main("transformer", argc, argv, run, on_error<unroll::Error>(ErrorPrefix::none, 1),
                      on_error<DataError>(ErrorPrefix::program, 1));
}
