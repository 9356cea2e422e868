// Many-to-one sequence classification (the shape of sentiment analysis): read a sentence
// token by token, keep the recurrent state after its last token, classify that state.
//
//   Embedding -> LSTM/GRU over a padded batch with per-sentence lengths -> h_n -> Linear -> cross_entropy
//
// Sentences in a batch have different lengths. They are padded to the longest and the
// sequence module is given the lengths: at padded steps it carries each state unchanged,
// so h_n is the state after each sentence's own last token (PyTorch's packed sequences).
//
// Data: by default a generated toy set in which the label depends on word ORDER, not just
// on which words occur: "the film was good" is positive, "the film was not good" negative,
// and in "the plot was dull but the acting was great" the clause after "but" decides.
// Any file of `label<TAB>text` lines works with --train/--test; --format sst reads the
// Stanford Sentiment Treebank sentence files (`LABEL ||| sentence`, five classes) directly.
//
//   ./classify                                             toy set, LSTM, a few seconds
//   ./classify --format sst --train ../shared/data/sst/train.txt --dev ../shared/data/sst/dev.txt
//              --test ../shared/data/sst/test.txt --epochs 6 --dropout 0.3
#include <unroll.h>

#include "common/cli.h"
#include "common/data.h"
#include "common/plot.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

using namespace unroll;
using namespace unroll::examples;

namespace {

// ---- data ---------------------------------------------------------------------------------

// Files of `label<TAB>text` or `label ||| text` lines are read by read_text_examples
// (common/data.h).
using Example = TextExample;

/// The toy set: one or two clauses, each "<subject> <verb> [not] [very] <adjective>"; a
/// clause is positive when its adjective is positive XOR it is negated; with two clauses
/// joined by "but", the second decides.
std::vector<Example> toy_examples(int64_t n, Generator& gen) {
  const std::vector<std::string> subjects = {"the movie", "this film", "the plot", "the acting", "the ending",
                                             "the music", "the story", "the cast"};
  const std::vector<std::string> verbs = {"is", "was", "seemed", "felt"};
  const std::vector<std::string> negations = {"not", "never", "hardly"};
  const std::vector<std::string> intensifiers = {"very", "really", "quite", "truly"};
  const std::vector<std::string> positive = {"good", "great", "wonderful", "fun", "brilliant", "moving", "clever"};
  const std::vector<std::string> negative = {"bad", "boring", "awful", "dull", "terrible", "silly", "clumsy"};
  const std::vector<std::string> openers = {"honestly ,", "i think", "overall ,", "to be fair ,"};
  auto pick = [&](const std::vector<std::string>& v) { return v[static_cast<size_t>(gen.randint(0, static_cast<int64_t>(v.size())))]; };
  auto clause = [&](bool& meaning) {
    const bool pos = gen.uniform() < 0.5, neg = gen.uniform() < 0.4;
    std::string s = pick(subjects) + " " + pick(verbs);
    if (neg) s += " " + pick(negations);
    if (gen.uniform() < 0.4) s += " " + pick(intensifiers);
    s += " " + (pos ? pick(positive) : pick(negative));
    meaning = pos != neg;
    return s;
  };
  std::vector<Example> out;
  for (int64_t i = 0; i < n; ++i) {
    bool meaning = false;
    std::string s = gen.uniform() < 0.2 ? pick(openers) + " " : "";
    s += clause(meaning);
    if (gen.uniform() < 0.4) s += " but " + clause(meaning);
    out.push_back({meaning ? "positive" : "negative", s});
  }
  return out;
}

/// Lower-cased words (split on spaces) or characters.
std::vector<std::string> tokenize(const std::string& text, bool chars) {
  std::vector<std::string> out;
  if (chars) {
    for (char c : text) out.emplace_back(1, static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return out;
  }
  std::istringstream words(text);
  for (std::string w; words >> w;) {
    for (char& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.push_back(w);
  }
  return out;
}

constexpr int64_t kPad = 0, kUnk = 1;

struct Dataset {
  std::vector<std::vector<int64_t>> tokens;
  std::vector<int64_t> labels;
};

struct Vocab {
  std::map<std::string, int64_t> index;  // token -> id (0 <pad>, 1 <unk>)
  int64_t size = 2;
};

Dataset encode(const std::vector<Example>& examples, bool chars, const Vocab& vocab, const std::vector<std::string>& classes,
               const std::string& what) {
  Dataset d;
  int64_t skipped = 0;
  for (const Example& e : examples) {
    const auto cls = std::find(classes.begin(), classes.end(), e.label);
    UNROLL_CHECK(cls != classes.end(), "classify: {} has label '{}', which the training set does not have", what, e.label);
    std::vector<int64_t> ids;
    for (const std::string& tok : tokenize(e.text, chars)) {
      auto it = vocab.index.find(tok);
      ids.push_back(it == vocab.index.end() ? kUnk : it->second);
    }
    if (ids.empty()) {
      ++skipped;
      continue;
    }
    d.tokens.push_back(std::move(ids));
    d.labels.push_back(cls - classes.begin());
  }
  if (skipped) fmt::print("  {}: skipped {} empty line(s)\n", what, skipped);
  return d;
}

/// Batches of example indices, each of similar lengths (less padding): shuffle, sort chunks
/// of 20 batches by length, cut them into batches, shuffle the batches.
std::vector<std::vector<size_t>> make_batches(const Dataset& d, int64_t B, Generator* gen) {
  std::vector<size_t> order(d.tokens.size());
  std::iota(order.begin(), order.end(), size_t{0});
  auto shuffle = [&](auto& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(gen->randint(0, static_cast<int64_t>(i)))]);
  };
  if (gen) shuffle(order);
  const size_t chunk = static_cast<size_t>(B) * 20;
  for (size_t at = 0; at < order.size(); at += chunk) {
    auto end = order.begin() + static_cast<ptrdiff_t>(std::min(order.size(), at + chunk));
    std::stable_sort(order.begin() + static_cast<ptrdiff_t>(at), end,
                     [&](size_t a, size_t b) { return d.tokens[a].size() < d.tokens[b].size(); });
  }
  std::vector<std::vector<size_t>> batches;
  for (size_t at = 0; at < order.size(); at += static_cast<size_t>(B))
    batches.emplace_back(order.begin() + static_cast<ptrdiff_t>(at),
                         order.begin() + static_cast<ptrdiff_t>(std::min(order.size(), at + static_cast<size_t>(B))));
  if (gen) shuffle(batches);
  return batches;
}

struct Batch {
  Tensor tokens;                 // [T,B] int64, kPad past each length
  std::vector<int64_t> lengths;  // B
  Tensor labels;                 // [B] int64
};

Batch make_batch(const Dataset& d, const std::vector<size_t>& idx) {
  size_t T = 0;
  for (size_t i : idx) T = std::max(T, d.tokens[i].size());
  const size_t B = idx.size();
  std::vector<int64_t> tok(T * B, kPad), lab(B);
  Batch batch;
  for (size_t b = 0; b < B; ++b) {
    const auto& s = d.tokens[idx[b]];
    for (size_t t = 0; t < s.size(); ++t) tok[t * B + b] = s[t];
    batch.lengths.push_back(static_cast<int64_t>(s.size()));
    lab[b] = d.labels[idx[b]];
  }
  batch.tokens = indices(tok, {static_cast<int64_t>(T), static_cast<int64_t>(B)});
  batch.labels = indices(lab);
  return batch;
}

// ---- model --------------------------------------------------------------------------------

struct Classifier : Module {
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<RecurrentStack> rnn;  // an LSTM (named "lstm") or a GRU ("gru")
  std::shared_ptr<Dropout> drop;
  std::shared_ptr<Linear> out;
  int64_t hidden;
  Classifier(const std::string& cell, int64_t V, int64_t E, int64_t H, int64_t C, double dropout) : hidden(H) {
    embed = register_module("embed", std::make_shared<Embedding>(V, E, kPad));
    const LSTMOptions o{.input_size = E, .hidden_size = H};
    if (cell == "lstm") rnn = register_module<RecurrentStack>("lstm", std::make_shared<LSTM>(o));
    else rnn = register_module<RecurrentStack>("gru", std::make_shared<GRU>(o));
    drop = register_module("drop", std::make_shared<Dropout>(dropout));
    out = register_module("out", std::make_shared<Linear>(H, C));
  }
  /// tokens [T,B], lengths -> logits [B,C]
  Variable forward(const Tensor& tokens, const std::vector<int64_t>& lengths) {
    Variable x = drop->forward(embed->forward(tokens));  // [T,B,E]
    Variable h_n = rnn->forward(x, {}, lengths).h_n();  // [1,B,H]
    const int64_t B = tokens.size(1);
    return out->forward(drop->forward(reshape(h_n, {B, hidden})));  // [B,C]
  }
};

struct Eval {
  double accuracy = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
};

Eval evaluate(Classifier& model, const Dataset& d, int64_t C) {
  NoGradGuard no_grad;
  model.eval();
  Eval e;
  e.confusion.assign(static_cast<size_t>(C), std::vector<int64_t>(static_cast<size_t>(C), 0));
  int64_t right = 0;
  for (const auto& idx : make_batches(d, 256, nullptr)) {
    Batch b = make_batch(d, idx);
    const std::vector<int64_t> pred = argmax(model.forward(b.tokens, b.lengths).data(), 1).to_indices();
    for (size_t i = 0; i < idx.size(); ++i) {
      const int64_t y = d.labels[idx[i]];
      ++e.confusion[static_cast<size_t>(y)][static_cast<size_t>(pred[i])];
      right += pred[i] == y;
    }
  }
  model.train();
  e.accuracy = static_cast<double>(right) / static_cast<double>(d.labels.size());
  return e;
}

}  // namespace

int run(int argc, char** argv) {
  Cli cli(argc, argv,
          "sentence classification: Embedding -> LSTM/GRU (padded, variable-length batches) -> final state -> Linear;\n"
          "a generated toy sentiment set where word order matters, or any `label<TAB>text` file, or SST (--format sst)");
  const std::string train_path = cli.get_string("train", "", "training file (default: the generated toy set)");
  const std::string dev_path = cli.get_string("dev", "", "optional development file: report test accuracy at the best dev epoch");
  const std::string test_path = cli.get_string("test", "", "test file (required with --train)");
  const std::string format = cli.get_string("format", "tsv", "file format: tsv (label<TAB>text) or sst (label ||| text)");
  const std::string token_kind = cli.get_string("tokens", "word", "word or char tokens");
  const int64_t toy_train = cli.get_int("toy-train", 2000, "toy set: training sentences");
  const int64_t toy_test = cli.get_int("toy-test", 500, "toy set: test sentences");
  const int64_t min_count = cli.get_int("min-count", 1, "tokens seen fewer times in training become <unk>");
  const std::string cell = cli.get_string("cell", "lstm", "lstm or gru");
  const int64_t E = cli.get_int("embed", 32, "embedding size E");
  const int64_t H = cli.get_int("hidden", 64, "hidden size H");
  const int64_t B = cli.get_int("batch", 32, "batch size B");
  const int64_t epochs = cli.get_int("epochs", 8, "passes over the training set");
  const double lr = cli.get_double("lr", 3e-3, "Adam learning rate");
  const double dropout = cli.get_double("dropout", 0.0, "dropout on embeddings and final state");
  const double weight_decay = cli.get_double("weight-decay", 0.0, "AdamW decoupled weight decay");
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out_dir = cli.out_dir();
  cli.done();
  UNROLL_CHECK(format == "tsv" || format == "sst", "classify: --format must be tsv or sst, got '{}'", format);
  UNROLL_CHECK(token_kind == "word" || token_kind == "char", "classify: --tokens must be word or char, got '{}'", token_kind);
  UNROLL_CHECK(cell == "lstm" || cell == "gru", "classify: --cell must be lstm or gru, got '{}'", cell);
  UNROLL_CHECK(train_path.empty() == test_path.empty(), "classify: give both --train and --test, or neither (toy set)");
  UNROLL_CHECK(E > 0 && H > 0 && B > 0 && epochs > 0 && toy_train > 0 && toy_test > 0, "classify: sizes must be positive");
  plot::make_dirs(out_dir);
  manual_seed(seed);
  Generator gen(seed + 1);
  const bool chars = token_kind == "char";

  // Data: raw examples, the class list (sorted labels of the training set), the vocabulary.
  std::vector<Example> train_raw, dev_raw, test_raw;
  if (train_path.empty()) {
    train_raw = toy_examples(toy_train, gen);
    test_raw = toy_examples(toy_test, gen);
  } else {
    train_raw = read_text_examples(train_path, format);
    test_raw = read_text_examples(test_path, format);
    if (!dev_path.empty()) dev_raw = read_text_examples(dev_path, format);
  }
  std::vector<std::string> classes;
  for (const Example& e : train_raw) classes.push_back(e.label);
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  UNROLL_CHECK(classes.size() >= 2, "classify: the training set has {} class(es); need at least 2", classes.size());
  const int64_t C = static_cast<int64_t>(classes.size());
  std::map<std::string, int64_t> counts;
  for (const Example& e : train_raw)
    for (const std::string& tok : tokenize(e.text, chars)) ++counts[tok];
  Vocab vocab;
  for (const auto& [tok, n] : counts)
    if (n >= min_count) vocab.index[tok] = vocab.size++;
  const Dataset train = encode(train_raw, chars, vocab, classes, "train");
  const Dataset test = encode(test_raw, chars, vocab, classes, "test");
  const Dataset dev = dev_raw.empty() ? Dataset{} : encode(dev_raw, chars, vocab, classes, "dev");
  std::vector<int64_t> test_counts(static_cast<size_t>(C), 0);
  for (int64_t y : test.labels) ++test_counts[static_cast<size_t>(y)];
  const double majority = static_cast<double>(*std::max_element(test_counts.begin(), test_counts.end())) /
                          static_cast<double>(test.labels.size());
  fmt::print("data: {} train / {} dev / {} test examples, {} classes, vocabulary {} {} tokens\n", train.labels.size(),
             dev.labels.size(), test.labels.size(), C, vocab.size, token_kind);
  if (train_path.empty()) fmt::print("  e.g. [{}] {}\n       [{}] {}\n", train_raw[0].label, train_raw[0].text, train_raw[1].label, train_raw[1].text);

  // Model and optimizer.
  Classifier model(cell, vocab.size, E, H, C, dropout);
  optim::AdamW opt(model.parameters(), {.lr = lr, .weight_decay = weight_decay});
  fmt::print("model: Embedding({}, {}) -> {}({}) -> Linear({}, {}), {} parameters\n", vocab.size, E, cell, H, H, C,
             model.num_parameters());

  std::fflush(stdout);  // the progress line goes to stderr

  // Training: one pass per epoch over length-bucketed batches; evaluate after each epoch.
  const int64_t per_epoch = static_cast<int64_t>(make_batches(train, B, &gen).size());
  Progress progress("train", epochs * per_epoch, !json);
  std::vector<double> epoch_x, train_loss, dev_acc, test_acc;
  double best_dev = -1, first_loss = 0;
  int64_t step = 0, best_epoch = epochs;
  StateDict best;
  for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
    double loss_sum = 0;
    const auto batches = make_batches(train, B, &gen);
    for (const auto& idx : batches) {
      Batch b = make_batch(train, idx);
      Variable loss = cross_entropy(model.forward(b.tokens, b.lengths), b.labels);
      opt.zero_grad();
      loss.backward();
      clip_grad_norm(model.parameters(), 5.0);
      opt.step();
      loss_sum += loss.item();
      if (++step == 1) first_loss = loss.item();
      progress.update(step, loss.item(), fmt::format(" epoch {}/{}", epoch, epochs));
    }
    epoch_x.push_back(static_cast<double>(epoch));
    train_loss.push_back(loss_sum / static_cast<double>(batches.size()));
    test_acc.push_back(evaluate(model, test, C).accuracy);
    if (!dev.labels.empty()) {
      dev_acc.push_back(evaluate(model, dev, C).accuracy);
      if (dev_acc.back() > best_dev) {
        best_dev = dev_acc.back();
        best_epoch = epoch;
        best = StateDict();
        for (const auto& [name, value] : model.state_dict()) best.insert(name, value.clone());
      }
    }
    if (!json) {
      progress.finish();
      fmt::print(stderr, "epoch {}: train loss {:.4f}, {}test accuracy {:.4f}\n", epoch, train_loss.back(),
                 dev_acc.empty() ? "" : fmt::format("dev accuracy {:.4f}, ", dev_acc.back()), test_acc.back());
    }
  }
  progress.finish();
  const double seconds = progress.seconds();
  if (!dev.labels.empty()) model.load_state_dict(best);
  const Eval result = evaluate(model, test, C);

  // Report: accuracy and the confusion matrix (rows: true class, columns: predicted).
  fmt::print("\ntest accuracy {:.4f}{} (majority class {:.4f}, chance {:.4f}); {:.1f}s training\n", result.accuracy,
             dev.labels.empty() ? "" : fmt::format(" at the best dev epoch {} (dev {:.4f})", best_epoch, best_dev), majority,
             1.0 / static_cast<double>(C), seconds);
  std::vector<std::string> names = classes;
  if (format == "sst" && classes == std::vector<std::string>{"0", "1", "2", "3", "4"})
    names = {"v.neg", "neg", "neutral", "pos", "v.pos"};  // SST-5: 0 very negative .. 4 very positive
  size_t w = 6;
  for (const std::string& n : names) w = std::max(w, n.size());
  fmt::print("confusion matrix (rows: true, columns: predicted)\n{:>{}}", "", w + 2);
  for (const std::string& n : names) fmt::print(" {:>{}}", n, w);
  fmt::print("\n");
  plot::Heatmap cm;
  cm.title = fmt::format("test accuracy {:.1f}%", 100 * result.accuracy);
  cm.xlabel = "predicted (share of row)";
  cm.ylabel = "true";
  cm.colorbar_label = "share of the true class's test examples";
  for (int64_t r = 0; r < C; ++r) {
    fmt::print("  {:>{}}", names[static_cast<size_t>(r)], w);
    std::vector<double> row;
    int64_t total = 0;
    for (int64_t c = 0; c < C; ++c) total += result.confusion[static_cast<size_t>(r)][static_cast<size_t>(c)];
    for (int64_t c = 0; c < C; ++c) {
      const int64_t n = result.confusion[static_cast<size_t>(r)][static_cast<size_t>(c)];
      fmt::print(" {:>{}}", n, w);
      row.push_back(total ? static_cast<double>(n) / static_cast<double>(total) : 0.0);
    }
    fmt::print("\n");
    cm.values.push_back(row);
  }
  cm.row_labels = names;
  cm.col_labels = names;
  cm.annotate = true;
  std::vector<std::string> figures{out_dir + "/confusion.svg", out_dir + "/accuracy.svg"};
  cm.save(figures[0]);
  plot::LinePlot acc;
  acc.title = "accuracy per epoch";
  acc.xlabel = "epoch";
  acc.ylabel = "accuracy";
  acc.add("test", epoch_x, test_acc);
  if (!dev_acc.empty()) acc.add("dev", epoch_x, dev_acc);
  for (auto& s : acc.series) s.markers = true;
  acc.add_reference("majority class", epoch_x.front(), epoch_x.back(), majority);
  acc.save(figures[1]);
  fmt::print("\nfigures:\n  {}\n  {}\n", figures[0], figures[1]);

  if (json) {
    JsonLine line;
    line.add("accuracy", result.accuracy).add("majority", majority).add("chance", 1.0 / static_cast<double>(C));
    line.add("classes", static_cast<double>(C)).add("first_loss", first_loss).add("final_train_loss", train_loss.back());
    line.add("best_epoch", static_cast<double>(best_epoch)).add("seconds", seconds);
    if (!dev_acc.empty()) line.add("dev_accuracy", best_dev);
    fmt::print("{}\n", line.str());
  }
  return 0;
}

int main(int argc, char** argv) {
  return guarded_main("classify", argc, argv, run);  // bad input or flag values: the message names them
}
