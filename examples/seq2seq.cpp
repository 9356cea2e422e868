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
//   ./seq2seq --min-len 4 --len 8 --test-len 2-12   # lengths never seen in training, per length
#include <unroll.h>

#include "common/cli.h"
#include "common/plot.h"
#include "common/seq2seq_model.h"

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
constexpr int64_t kPad = kSeqPad, kBos = kSeqBos, kEos = kSeqEos, kFirstSymbol = kSeqFirstSymbol;

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

// A padded batch (common/seq2seq_model.h): sources [T,B], decoder inputs and targets [T+1,B].
Seq2SeqBatch make_batch(const std::vector<std::vector<int64_t>>& sources, const Task& task, int64_t T) {
  std::vector<std::vector<int64_t>> targets;
  for (const std::vector<int64_t>& s : sources) targets.push_back(task.target(s));
  return make_seq2seq_batch(sources, targets, T, T);
}

// ---- model ----------------------------------------------------------------------------------
// The encoder-decoder of common/seq2seq_model.h: a bidirectional GRU encoder and a GRUCell
// decoder that attends over its outputs at every step (Bahdanau et al. 2015).
using Seq2Seq = Seq2SeqModel;

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
  const std::string test_len_flag =
      cli.get_string("test-len", "", "held-out string lengths, A or A-B (default: the training lengths)");
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
  int64_t test_min = min_len, test_max = max_len;
  if (!test_len_flag.empty()) {
    const size_t dash = test_len_flag.find('-');
    auto number = [&](const std::string& t) {
      size_t used = 0;
      int64_t v = 0;
      try {
        v = std::stoll(t, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      UNROLL_CHECK(used == t.size() && used > 0, "seq2seq: --test-len must be A or A-B (lengths), got '{}'", test_len_flag);
      return v;
    };
    test_min = number(test_len_flag.substr(0, dash));
    test_max = dash == std::string::npos ? test_min : number(test_len_flag.substr(dash + 1));
  }
  UNROLL_CHECK(1 <= test_min && test_min <= test_max && test_max <= 64,
               "seq2seq: need 1 <= --test-len A <= B <= 64, got {}-{}", test_min, test_max);
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
    std::vector<int64_t> s = random_string(data_gen, symbols, test_min, test_max);
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
  Seq2Seq model(V, V, embed, hidden, attention_kind, "seq2seq");
  optim::Adam opt(model.parameters(), lr);
  optim::CosineAnnealingLR schedule(opt, steps, lr / 20);
  fmt::print("seq2seq: task {}, length {}..{}, {} symbols, {} attention, {} parameters\n", task_name, min_len, max_len,
             symbols, attention_kind, model.num_parameters());

  // Training loop: teacher forcing, Adam, clipping, cosine learning rate.
  std::vector<double> loss_x, loss_y, eval_x, eval_seq, eval_tok;
  Progress progress("train", steps, !json);
  double smooth = std::log(static_cast<double>(V));
  for (int64_t step = 1; step <= steps; ++step) {
    Seq2SeqBatch batch = training_batch();
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
      Accuracy a = evaluate(model, probe, task, test_max, 256);
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
  const Accuracy final_acc = evaluate(model, test, task, test_max, 256);
  fmt::print("held-out ({} strings of length {}..{}; trained on {}..{}): sequence accuracy {:.2f}%, token accuracy "
             "{:.2f}%  ({:.1f} s training)\n",
             n_test, test_min, test_max, min_len, max_len, 100 * final_acc.sequence, 100 * final_acc.token, train_seconds);
  // Per length, with chance: a guess of uniform symbols at the right length, 1 / symbols^L.
  std::vector<std::pair<int64_t, Accuracy>> by_len;
  double chance = 0;
  for (const std::vector<int64_t>& t : test) chance += std::pow(1.0 / static_cast<double>(symbols), static_cast<double>(t.size()));
  chance /= static_cast<double>(test.size());
  if (test_max > test_min || test_min != min_len || test_max != max_len) {
    fmt::print("{:>7} {:>8} {:>10} {:>10}\n", "length", "strings", "sequence", "token");
    for (int64_t L = test_min; L <= test_max; ++L) {
      std::vector<std::vector<int64_t>> part;
      for (const std::vector<int64_t>& t : test)
        if (static_cast<int64_t>(t.size()) == L) part.push_back(t);
      if (part.empty()) continue;
      const Accuracy a = evaluate(model, part, task, test_max, 256);
      by_len.emplace_back(L, a);
      fmt::print("{:>7} {:>8} {:>9.1f}% {:>9.1f}%{}\n", L, part.size(), 100 * a.sequence, 100 * a.token,
                 L >= min_len && L <= max_len ? "" : "   (length not seen in training)");
    }
  }

  // Figures: attention heatmaps of a few held-out strings, and the learning curves.
  std::vector<std::string> figures;
  const int64_t n_show = std::min(n_figures, n_test);
  const std::vector<std::vector<int64_t>> shown(test.begin(), test.begin() + n_show);
  if (n_show > 0) {
    Seq2Seq::Decoded d = model.greedy(make_batch(shown, task, test_max), test_max + 1);
    for (int64_t i = 0; i < n_show; ++i) {
      const std::vector<int64_t>& src = shown[static_cast<size_t>(i)];
      const std::vector<int64_t> outp = until_eos(d.tokens[static_cast<size_t>(i)]);
      plot::Heatmap h;
      h.title = fmt::format("{}, {} attention: {} -> {}", task_name, attention_kind, sequence_text(src),
                            sequence_text(outp));
      h.xlabel = "encoder position (input token)";
      h.ylabel = "decoder step (output token)";
      h.colorbar_label = "attention weight";
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
  loss_plot.ylabel = "cross-entropy per token (nats)";
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

  JsonLine per_len;
  for (const auto& [L, a] : by_len) per_len.add(std::to_string(L), a.sequence);
  if (json)
    fmt::print("{}\n", JsonLine()
                           .add("task", task_name)
                           .add("attention", attention_kind)
                           .add("len", static_cast<double>(max_len))
                           .add("min_len", static_cast<double>(min_len))
                           .add("test_min_len", static_cast<double>(test_min))
                           .add("test_max_len", static_cast<double>(test_max))
                           .add_raw("sequence_accuracy_by_len", per_len.str())
                           .add("steps", static_cast<double>(steps))
                           .add("initial_loss", loss_y.front())
                           .add("final_loss", smooth)
                           .add("sequence_accuracy", final_acc.sequence)
                           .add("token_accuracy", final_acc.token)
                           .add("chance_sequence_accuracy", chance)
                           .add("train_seconds", train_seconds)
                           .str());
  return 0;
}

int main(int argc, char** argv) {
  return guarded_main("seq2seq", argc, argv, run, on_error<unroll::Error>(ErrorPrefix::none, 1));
}
