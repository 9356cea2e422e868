// Sequence to sequence with attention, in the shape of machine translation: a bidirectional
// GRU reads a string of random symbols; a GRUCell decoder, stepped in a plain loop, writes
// the answer one token at a time, attending over the encoder outputs at every step (key
// mask for padding). The task is to reverse the string (or sort it, --task sort). Trained
// with teacher forcing, evaluated by greedy decoding on held-out strings, scored by
// SEQUENCE accuracy: the whole output, EOS included, must be exactly right.
//
// The attention weights are the picture: for reversal, output step j attends to input
// position L-1-j, an anti-diagonal.
//
//   ./seq2seq                          # reverse length-8 strings, additive attention
//   ./seq2seq --task sort --attention general
//   ./seq2seq --min-len 4 --len 8      # variable lengths: padding, lengths, key mask
#include <unroll.h>

#include "common/cli.h"
#include "common/plot.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace unroll;
using namespace unroll::examples;

// ---- data -----------------------------------------------------------------------------------
// Tokens: 0 PAD, 1 BOS, 2 EOS, then the symbols 'a', 'b', ... (kFirstSymbol onwards).
constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kFirstSymbol = 3;

std::string token_text(int64_t tok) {
  if (tok == kPad) return "_";
  if (tok == kBos) return "<s>";
  if (tok == kEos) return "</s>";
  return std::string(1, static_cast<char>('a' + (tok - kFirstSymbol)));
}

std::string sequence_text(const std::vector<int64_t>& s) {
  std::string out;
  for (int64_t t : s) out += token_text(t);
  return out;
}

struct Task {
  std::string name;  // "reverse" or "sort"
  std::vector<int64_t> target(std::vector<int64_t> src) const {
    if (name == "sort") std::sort(src.begin(), src.end());
    else std::reverse(src.begin(), src.end());
    return src;
  }
};

std::vector<int64_t> random_string(Generator& gen, int64_t symbols, int64_t min_len, int64_t max_len) {
  std::vector<int64_t> s(static_cast<size_t>(gen.randint(min_len, max_len + 1)));
  for (int64_t& t : s) t = kFirstSymbol + gen.randint(0, symbols);
  return s;
}

// A padded batch: sources [T,B] for the encoder, decoder inputs <s> y_1 .. y_n and targets
// y_1 .. y_n </s>, both [T+1,B] with PAD (ignored by the loss) after each sequence's end.
struct Batch {
  Tensor src;                    // [T,B] int64
  Tensor dec_in;                 // [T+1,B] int64
  Tensor dec_out;                // [T+1,B] int64
  Tensor key_mask;               // [B,T]: 1 at real source positions, 0 at padding
  std::vector<int64_t> lengths;  // B source lengths
};

Batch make_batch(const std::vector<std::vector<int64_t>>& sources, const Task& task, int64_t T) {
  const int64_t B = static_cast<int64_t>(sources.size());
  std::vector<int64_t> src(static_cast<size_t>(T * B), kPad), din(static_cast<size_t>((T + 1) * B), kPad),
      dout(static_cast<size_t>((T + 1) * B), kPad);
  std::vector<double> mask(static_cast<size_t>(B * T), 0.0);
  Batch batch;
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int64_t>& s = sources[static_cast<size_t>(b)];
    const std::vector<int64_t> y = task.target(s);
    const int64_t n = static_cast<int64_t>(s.size());
    batch.lengths.push_back(n);
    din[static_cast<size_t>(b)] = kBos;
    for (int64_t t = 0; t < n; ++t) {
      src[static_cast<size_t>(t * B + b)] = s[static_cast<size_t>(t)];
      mask[static_cast<size_t>(b * T + t)] = 1.0;
      din[static_cast<size_t>((t + 1) * B + b)] = y[static_cast<size_t>(t)];
      dout[static_cast<size_t>(t * B + b)] = y[static_cast<size_t>(t)];
    }
    dout[static_cast<size_t>(n * B + b)] = kEos;
  }
  batch.src = indices(src, {T, B});
  batch.dec_in = indices(din, {T + 1, B});
  batch.dec_out = indices(dout, {T + 1, B});
  batch.key_mask = tensor(mask, {B, T});
  return batch;
}

// ---- model ----------------------------------------------------------------------------------
// Encoder: embedding -> bidirectional GRU -> outputs [T,B,2H], the keys and values.
// Decoder (Bahdanau et al. 2015): at step j, with state s_{j-1} [B,Hd] (Hd = 2H),
//   (context_j, a_j) = attention(query s_{j-1}, keys = values = encoder outputs, key mask)
//   s_j = GRUCell([embed(y_{j-1}); context_j], s_{j-1})
//   logits_j = W_out [s_j; context_j] + b_out
// s_0 = tanh(W_init [h_fwd_last; h_bwd_last] + b_init).
struct Attention : Module {
  std::string kind;
  std::shared_ptr<AdditiveAttention> additive;
  std::shared_ptr<GeneralAttention> general;
  Attention(const std::string& k, int64_t query_dim, int64_t key_dim) : kind(k) {
    if (kind == "additive")
      additive = register_module("additive", std::make_shared<AdditiveAttention>(query_dim, key_dim, query_dim));
    else if (kind == "general")
      general = register_module("general", std::make_shared<GeneralAttention>(query_dim, key_dim));
    else UNROLL_CHECK(kind == "dot", "seq2seq: --attention must be additive, general or dot, got '{}'", kind);
  }
  /// query [B,Hd], keys [B,T,2H], mask [B,T] -> context [B,2H], weights [B,T]
  AttentionResult forward(const Variable& query, const Variable& keys, const Tensor& mask) const {
    if (additive) return (*additive)(query, keys, keys, mask);
    if (general) return (*general)(query, keys, keys, mask);
    return dot_product_attention(query, keys, keys, mask);
  }
};

struct Seq2Seq : Module {
  int64_t V, E, H;
  std::shared_ptr<Embedding> src_embed, tgt_embed;
  std::shared_ptr<GRU> encoder;
  std::shared_ptr<Linear> init_state;
  std::shared_ptr<Attention> attention;
  std::shared_ptr<GRUCell> decoder;
  std::shared_ptr<Linear> out;

  Seq2Seq(int64_t vocab, int64_t embed, int64_t hidden, const std::string& attention_kind)
      : V(vocab), E(embed), H(hidden) {
    src_embed = register_module("src_embed", std::make_shared<Embedding>(V, E, kPad));
    tgt_embed = register_module("tgt_embed", std::make_shared<Embedding>(V, E, kPad));
    encoder = register_module("encoder", std::make_shared<GRU>(GRUOptions{.input_size = E, .hidden_size = H,
                                                                          .bidirectional = true}));
    init_state = register_module("init_state", std::make_shared<Linear>(2 * H, 2 * H));
    attention = register_module("attention", std::make_shared<Attention>(attention_kind, 2 * H, 2 * H));
    decoder = register_module("decoder", std::make_shared<GRUCell>(E + 2 * H, 2 * H));
    out = register_module("out", std::make_shared<Linear>(4 * H, V));
  }

  struct Encoded {
    Variable keys;  // [B,T,2H]
    Variable s0;    // [B,2H]
  };
  Encoded encode(const Batch& batch) {
    RNNOutput enc = (*encoder)((*src_embed)(batch.src), Variable(), batch.lengths);  // output [T,B,2H], h_n [2,B,H]
    Variable last = concat({narrow(enc.h_n, 0, 0, 1), narrow(enc.h_n, 0, 1, 1)}, 2);   // [1,B,2H]
    Variable s0 = tanh((*init_state)(squeeze(last, 0)));                               // [B,2H]
    return {transpose(enc.output, 0, 1), s0};
  }

  /// One decoder step: previous token [B] and state [B,2H] -> logits [B,V], new state, weights [B,T].
  struct Step {
    Variable logits, state, weights;
  };
  Step step(const Tensor& prev_token, const Variable& state, const Encoded& enc, const Tensor& mask) {
    AttentionResult a = attention->forward(state, enc.keys, mask);      // context [B,2H], weights [B,T]
    Variable x = concat({(*tgt_embed)(prev_token), a.context}, 1);       // [B,E+2H]
    Variable s = decoder->forward(x, state);                            // [B,2H]
    Variable logits = (*out)(concat({s, a.context}, 1));                 // [B,V]
    return {logits, s, a.weights};
  }

  /// Teacher forcing: the mean cross-entropy of the targets given the true previous tokens.
  Variable loss(const Batch& batch) {
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
    Variable all = stack(logits, 0);  // [T+1,B,V]
    return cross_entropy(reshape(all, {-1, V}), batch.dec_out.reshape({-1}), kPad);
  }

  /// Greedy decoding of up to `max_steps` tokens: the tokens [B][steps] and the attention
  /// weights [B][steps][T].
  struct Decoded {
    std::vector<std::vector<int64_t>> tokens;
    std::vector<std::vector<std::vector<double>>> weights;
  };
  Decoded greedy(const Batch& batch, int64_t max_steps) {
    NoGradGuard no_grad;
    Encoded enc = encode(batch);
    const int64_t B = batch.src.size(1), T = batch.src.size(0);
    Decoded d{std::vector<std::vector<int64_t>>(static_cast<size_t>(B)),
              std::vector<std::vector<std::vector<double>>>(static_cast<size_t>(B))};
    Tensor prev = full({B}, static_cast<double>(kBos), DType::I64);
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
};

// Greedy output up to and including the first EOS (or everything, if there is none).
std::vector<int64_t> until_eos(const std::vector<int64_t>& tokens) {
  auto end = std::find(tokens.begin(), tokens.end(), kEos);
  return {tokens.begin(), end == tokens.end() ? end : end + 1};
}

struct Accuracy {
  double sequence = 0, token = 0;
};

// Sequence accuracy: the greedy output up to EOS equals target + EOS. Token accuracy: the
// fraction of target positions (EOS included) where the greedy token is right.
Accuracy evaluate(Seq2Seq& model, const std::vector<std::vector<int64_t>>& data, const Task& task, int64_t T,
                  int64_t batch_size) {
  model.eval();
  int64_t seq_ok = 0, tok_ok = 0, tok_total = 0;
  for (size_t lo = 0; lo < data.size(); lo += static_cast<size_t>(batch_size)) {
    const size_t hi = std::min(data.size(), lo + static_cast<size_t>(batch_size));
    const std::vector<std::vector<int64_t>> part(data.begin() + static_cast<std::ptrdiff_t>(lo),
                                                 data.begin() + static_cast<std::ptrdiff_t>(hi));
    Seq2Seq::Decoded d = model.greedy(make_batch(part, task, T), T + 1);
    for (size_t i = 0; i < part.size(); ++i) {
      std::vector<int64_t> want = task.target(part[i]);
      want.push_back(kEos);
      for (size_t j = 0; j < want.size(); ++j) tok_ok += d.tokens[i][j] == want[j];
      tok_total += static_cast<int64_t>(want.size());
      seq_ok += until_eos(d.tokens[i]) == want;
    }
  }
  model.train();
  return {static_cast<double>(seq_ok) / static_cast<double>(data.size()),
          static_cast<double>(tok_ok) / static_cast<double>(tok_total)};
}

int run(int argc, char** argv) {
  Cli cli(argc, argv, "seq2seq with attention: reverse (or sort) random strings with a bidirectional GRU encoder "
                      "and an attention GRU decoder");
  const std::string task_name = cli.get_string("task", "reverse", "reverse | sort");
  const std::string attention_kind = cli.get_string("attention", "additive", "additive | general | dot");
  const int64_t max_len = cli.get_int("len", 8, "string length (the longest, with --min-len)");
  const int64_t min_len_flag = cli.get_int("min-len", 0, "shortest string length (0: same as --len)");
  const int64_t symbols = cli.get_int("symbols", 12, "number of distinct symbols (plus PAD, BOS, EOS)");
  const int64_t embed = cli.get_int("embed", 32, "embedding size E");
  const int64_t hidden = cli.get_int("hidden", 64, "encoder hidden size H per direction (decoder: 2H)");
  const int64_t steps = cli.get_int("steps", 500, "training steps");
  const int64_t batch_size = cli.get_int("batch", 32, "batch size B");
  const double lr = cli.get_double("lr", 3e-3, "Adam learning rate (cosine-annealed to lr/20)");
  const double clip = cli.get_double("clip", 1.0, "gradient norm clipping");
  const int64_t n_test = cli.get_int("test", 1000, "held-out strings for the final evaluation");
  const int64_t eval_every = cli.get_int("eval-every", 25, "steps between evaluations on 256 held-out strings");
  const int64_t n_figures = cli.get_int("heatmaps", 3, "attention heatmaps to draw");
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out_dir = cli.out_dir();
  cli.done();
  plot::make_dirs(out_dir);
  const int64_t min_len = min_len_flag > 0 ? min_len_flag : max_len;
  UNROLL_CHECK(task_name == "reverse" || task_name == "sort", "seq2seq: --task must be reverse or sort, got '{}'",
               task_name);
  UNROLL_CHECK(1 <= min_len && min_len <= max_len, "seq2seq: need 1 <= --min-len {} <= --len {}", min_len, max_len);
  UNROLL_CHECK(symbols >= 2 && symbols <= 26, "seq2seq: --symbols {} must be in 2..26", symbols);
  UNROLL_CHECK(steps > 0 && batch_size > 0 && n_test > 0 && eval_every > 0,
               "seq2seq: --steps, --batch, --test and --eval-every must be positive");
  const Task task{task_name};
  const int64_t V = kFirstSymbol + symbols;

  // Data: a held-out test set, and training strings drawn fresh each step, never from it.
  Generator data_gen(seed);
  std::set<std::vector<int64_t>> test_set;
  std::vector<std::vector<int64_t>> test;
  while (static_cast<int64_t>(test.size()) < n_test) {
    std::vector<int64_t> s = random_string(data_gen, symbols, min_len, max_len);
    if (test_set.insert(s).second) test.push_back(s);
  }
  const std::vector<std::vector<int64_t>> probe(test.begin(), test.begin() + std::min<int64_t>(256, n_test));
  auto training_batch = [&] {
    std::vector<std::vector<int64_t>> b;
    while (static_cast<int64_t>(b.size()) < batch_size) {
      std::vector<int64_t> s = random_string(data_gen, symbols, min_len, max_len);
      if (!test_set.contains(s)) b.push_back(std::move(s));
    }
    return make_batch(b, task, max_len);
  };

  // Model.
  manual_seed(seed);
  Seq2Seq model(V, embed, hidden, attention_kind);
  optim::Adam opt(model.parameters(), lr);
  optim::CosineAnnealingLR schedule(opt, steps, lr / 20);
  fmt::print("seq2seq: task {}, length {}..{}, {} symbols, {} attention, {} parameters\n", task_name, min_len, max_len,
             symbols, attention_kind, model.num_parameters());

  // Training loop: teacher forcing, Adam, clipping, cosine learning rate.
  std::vector<double> loss_x, loss_y, eval_x, eval_seq, eval_tok;
  Progress progress("train", steps, !json);
  double smooth = std::log(static_cast<double>(V));
  for (int64_t step = 1; step <= steps; ++step) {
    Batch batch = training_batch();
    opt.zero_grad();
    Variable loss = model.loss(batch);
    loss.backward();
    clip_grad_norm(model.parameters(), clip);
    opt.step();
    schedule.step();
    smooth = 0.95 * smooth + 0.05 * loss.item();
    loss_x.push_back(static_cast<double>(step));
    loss_y.push_back(loss.item());
    if (step % eval_every == 0 || step == steps) {
      Accuracy a = evaluate(model, probe, task, max_len, 256);
      eval_x.push_back(static_cast<double>(step));
      eval_seq.push_back(a.sequence);
      eval_tok.push_back(a.token);
    }
    progress.update(step, smooth,
                    eval_seq.empty() ? "" : fmt::format(" held-out seq acc {:.1f}%", 100 * eval_seq.back()));
  }
  progress.finish();
  const double train_seconds = progress.seconds();

  // Evaluation: greedy decoding of every held-out string.
  const Accuracy final_acc = evaluate(model, test, task, max_len, 256);
  fmt::print("held-out ({} strings): sequence accuracy {:.2f}%, token accuracy {:.2f}%  ({:.1f} s training)\n",
             n_test, 100 * final_acc.sequence, 100 * final_acc.token, train_seconds);

  // Figures: attention heatmaps of a few held-out strings, and the learning curves.
  std::vector<std::string> figures;
  const int64_t n_show = std::min(n_figures, n_test);
  const std::vector<std::vector<int64_t>> shown(test.begin(), test.begin() + n_show);
  if (n_show > 0) {
    Seq2Seq::Decoded d = model.greedy(make_batch(shown, task, max_len), max_len + 1);
    for (int64_t i = 0; i < n_show; ++i) {
      const std::vector<int64_t>& src = shown[static_cast<size_t>(i)];
      const std::vector<int64_t> outp = until_eos(d.tokens[static_cast<size_t>(i)]);
      plot::Heatmap h;
      h.title = fmt::format("{}, {} attention: {} -> {}", task_name, attention_kind, sequence_text(src),
                            sequence_text(outp));
      h.xlabel = "encoder position (input token)";
      h.ylabel = "decoder step (output token)";
      for (size_t j = 0; j < outp.size(); ++j) {
        const std::vector<double>& w = d.weights[static_cast<size_t>(i)][j];
        h.values.emplace_back(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(src.size()));
        h.row_labels.push_back(token_text(outp[j]));
      }
      for (int64_t t : src) h.col_labels.push_back(token_text(t));
      const std::string path = fmt::format("{}/attention_{}.svg", out_dir, i);
      h.save(path);
      figures.push_back(path);
      fmt::print("  {} -> {}  (want {})\n", sequence_text(src), sequence_text(outp),
                 sequence_text(task.target(src)) + "</s>");
    }
  }
  plot::LinePlot loss_plot;
  loss_plot.title = fmt::format("seq2seq ({}, {} attention): training loss", task_name, attention_kind);
  loss_plot.xlabel = "step";
  loss_plot.ylabel = "cross-entropy per token";
  loss_plot.log_y = true;
  loss_plot.add("teacher-forced loss", loss_x, loss_y);
  const std::string loss_path = out_dir + "/loss.svg";
  loss_plot.save(loss_path);
  figures.push_back(loss_path);
  plot::LinePlot acc_plot;
  acc_plot.title = fmt::format("greedy decoding on {} held-out strings", probe.size());
  acc_plot.xlabel = "step";
  acc_plot.ylabel = "accuracy";
  acc_plot.add("sequence accuracy", eval_x, eval_seq);
  acc_plot.add("token accuracy", eval_x, eval_tok, true);
  for (plot::Series& s : acc_plot.series) s.markers = eval_x.size() <= 40;
  const std::string acc_path = out_dir + "/accuracy.svg";
  acc_plot.save(acc_path);
  figures.push_back(acc_path);
  fmt::print("figures:\n");
  for (const std::string& f : figures) fmt::print("  {}\n", f);

  if (json)
    fmt::print("{}\n", JsonLine()
                           .add("task", task_name)
                           .add("attention", attention_kind)
                           .add("len", static_cast<double>(max_len))
                           .add("steps", static_cast<double>(steps))
                           .add("initial_loss", loss_y.front())
                           .add("final_loss", smooth)
                           .add("sequence_accuracy", final_acc.sequence)
                           .add("token_accuracy", final_acc.token)
                           .add("chance_sequence_accuracy", std::pow(1.0 / static_cast<double>(symbols),
                                                                     static_cast<double>(max_len)))
                           .add("train_seconds", train_seconds)
                           .str());
  return 0;
}

int main(int argc, char** argv) {
  return guarded_main("seq2seq", argc, argv, run, on_error<unroll::Error>(ErrorPrefix::none, 1));
}
