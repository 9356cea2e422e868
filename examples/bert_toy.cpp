// BERT in miniature: pretrain a small Transformer encoder by masked-token prediction on
// unlabelled sentences, fine-tune it to classify sentences from a FEW labelled ones, and
// compare with the same model fine-tuned from a random start: the same labelled data, the
// same steps, the same seeds. Does pretraining help at this scale? The program measures it
// and says so.
//
// Model (BERT-shaped, pre-norm): [CLS] w_1 .. w_n -> token embedding + learned positions ->
// TransformerEncoder (GELU, dropout, final LayerNorm; the padding is masked out of
// attention) -> h [B,T,E]. Two heads on top:
//   masked-token head:   logits = W_mlm h_t + b   at the masked positions    (pretraining)
//   classification head: logits = W_cls h_0 + b  on the [CLS] position       (fine-tuning)
//
// Pretraining (Devlin et al. 2019): choose 15% of the words of each batch; the model must
// recover them; of the chosen, 80% are replaced by [MASK], 10% by a random word, 10% left as
// they are. The loss is the cross-entropy at the chosen positions only.
//
// Fine-tuning: the pretrained weights are copied into a freshly built model whose
// classification head is initialised exactly like the scratch model's (same seed); both
// train on the same batches for the same steps.
//
// Data, by default generated (words of examples/classify's toy sentiment set):
//  - labelled: classify's toy task, the same sentences for the same --seed ("the plot was
//    not good" is negative; after "but" the second clause decides); a small subset
//    (--labelled, a different one per seed) to train on, 500 to test on.
//  - unlabelled (--corpus reviews): sentences in the same words with a structure real
//    reviews have: the two clauses of a sentence share its mood ("the acting was great and
//    the music was wonderful"; a clause may say it negated, "was not bad"), so a masked
//    adjective is guessed best by knowing what the rest of the sentence felt. That is the
//    kind of regularity masked-token prediction turns into features; the program checks
//    that it did (the polarity of the top-ranked adjective at masked adjectives). Contrast
//    ("X but not-X") would be realistic too, but makes the polarity an XOR that masked
//    prediction learns far more slowly: with a quarter of "but" sentences the polarity
//    check stayed near 60% after 1000 steps. --corpus toy pretrains on classify's own
//    sentences, whose clauses are independent: there no context tells a masked
//    adjective's polarity, and pretraining is measured to help little.
//  With --sst DIR: pretrain on the sentences of SST's train.txt (labels ignored), fine-tune
//  on a subset of its binary (negative 0-1 vs positive 3-4) sentences, test on dev.txt.
//
//   ./bert_toy                                   # about 40 s (seed 0: 83.2% vs 57.4%)
//   ./bert_toy --runs 5                          # seeds 0-4, median and range: 4-5 min
//   ./bert_toy --runs 5 --pt-steps 1000          # half the pretraining: the gain is not robust
//   ./bert_toy --corpus toy                      # unlabelled text without the structure
//   ./bert_toy --sst /work/shared/data/sst --labelled 500 --pt-steps 1500
#include <unroll.h>
#include "nn/transformer.h"

#include "common/cli.h"
#include "common/data.h"
#include "common/plot.h"
#include "common/tasks.h"

#include <algorithm>
#include <cctype>
#include <cmath>
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
// Token ids: 0 [PAD], 1 [UNK], 2 [CLS], 3 [MASK], then the words.
constexpr int64_t kPad = 0, kUnk = 1, kCls = 2, kMask = 3, kFirstWord = 4;

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) {
    for (char& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.push_back(w);
  }
  return out;
}

/// Unlabelled "reviews" in the toy set's words: each sentence has one hidden mood m that
/// both of its clauses express, plainly ("was good") or negated ("was not bad"):
///   [opener] clause(m) and clause(m)
std::vector<std::string> coherent_reviews(int64_t n, Generator& gen) {
  const ToyLexicon& w = toy_lexicon();
  auto pick = [&](const std::vector<std::string>& v) {
    return v[static_cast<size_t>(gen.randint(0, static_cast<int64_t>(v.size())))];
  };
  auto clause = [&](bool mood) {
    const bool negated = gen.uniform() < 0.1;
    std::string s = pick(w.subjects);
    s.append(" ").append(pick(w.verbs));
    if (negated) s.append(" ").append(pick(w.negations));
    if (gen.uniform() < 0.4) s.append(" ").append(pick(w.intensifiers));
    s.append(" ").append(mood != negated ? pick(w.positive) : pick(w.negative));
    return s;
  };
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) {
    const bool mood = gen.uniform() < 0.5;
    std::string s = gen.uniform() < 0.2 ? pick(w.openers) + " " : "";
    s.append(clause(mood)).append(" and ").append(clause(mood));
    out.push_back(s);
  }
  return out;
}

/// SST-5 -> binary: 0-1 negative, 3-4 positive, neutral (2) dropped.
std::vector<TextExample> sst_binary(const std::vector<TextExample>& xs) {
  std::vector<TextExample> out;
  for (const TextExample& x : xs)
    if (x.label != "2") out.push_back({x.label < "2" ? "negative" : "positive", x.text});
  return out;
}

struct Vocab {
  std::map<std::string, int64_t> id;
  std::vector<std::string> words;  // id -> word, specials included
  int64_t size() const { return static_cast<int64_t>(words.size()); }
  /// [CLS] followed by the word ids (unknown words: [UNK]), at most max_len tokens.
  std::vector<int64_t> encode(const std::string& text, int64_t max_len) const {
    std::vector<int64_t> ids{kCls};
    for (const std::string& w : words_of(text)) {
      if (static_cast<int64_t>(ids.size()) >= max_len) break;
      auto it = id.find(w);
      ids.push_back(it == id.end() ? kUnk : it->second);
    }
    return ids;
  }
};

/// Words seen at least min_count times, in order of first appearance.
Vocab build_vocab(const std::vector<std::string>& texts, int64_t min_count) {
  std::map<std::string, int64_t> counts;
  std::vector<std::string> order;
  for (const std::string& t : texts)
    for (const std::string& w : words_of(t))
      if (counts[w]++ == 0) order.push_back(w);
  Vocab v;
  v.words = {"[PAD]", "[UNK]", "[CLS]", "[MASK]"};
  for (const std::string& w : order)
    if (counts[w] >= min_count) {
      v.id[w] = v.size();
      v.words.push_back(w);
    }
  return v;
}

/// Sentences as a padded batch [B,T] and its key padding mask [B,T] (1 = padding, ignored).
struct Padded {
  Tensor tokens, pad_mask;
};

Padded pad(const std::vector<const std::vector<int64_t>*>& seqs) {
  size_t T = 0;
  for (const auto* s : seqs) T = std::max(T, s->size());
  const size_t B = seqs.size();
  std::vector<int64_t> tok(B * T, kPad);
  std::vector<double> mask(B * T, 1.0);
  for (size_t b = 0; b < B; ++b)
    for (size_t t = 0; t < seqs[b]->size(); ++t) {
      tok[b * T + t] = (*seqs[b])[t];
      mask[b * T + t] = 0.0;
    }
  const int64_t Bi = static_cast<int64_t>(B), Ti = static_cast<int64_t>(T);
  return {indices(tok, {Bi, Ti}), tensor(mask, {Bi, Ti})};
}

// ---- model ----------------------------------------------------------------------------------

struct BertConfig {
  int64_t vocab, classes, d_model, nhead, layers, ff, max_len;
  double dropout;
};

struct TinyBert : Module {
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<LearnedPositionalEncoding> pos;
  std::shared_ptr<TransformerEncoder> encoder;
  std::shared_ptr<Linear> mlm_head, cls_head;
  std::shared_ptr<Dropout> cls_dropout;

  explicit TinyBert(const BertConfig& c) {
    embed = register_module("embed", std::make_shared<Embedding>(c.vocab, c.d_model, kPad));
    pos = register_module("pos", std::make_shared<LearnedPositionalEncoding>(c.d_model, c.max_len, c.dropout, true));
    encoder = register_module(
        "encoder", std::make_shared<TransformerEncoder>(TransformerEncoderLayerOptions{.d_model = c.d_model,
                                                                                       .nhead = c.nhead,
                                                                                       .dim_feedforward = c.ff,
                                                                                       .dropout = c.dropout,
                                                                                       .activation = Activation::Gelu,
                                                                                       .batch_first = true,
                                                                                       .norm_first = true},
                                                        c.layers, true));
    mlm_head = register_module("mlm_head", std::make_shared<Linear>(c.d_model, c.vocab));
    cls_dropout = register_module("cls_dropout", std::make_shared<Dropout>(c.dropout));
    cls_head = register_module("cls_head", std::make_shared<Linear>(c.d_model, c.classes));
  }
  /// tokens [B,T], pad_mask [B,T] -> h [B,T,E]
  Variable encode(const Padded& p) { return (*encoder)((*pos)((*embed)(p.tokens)), Tensor(), p.pad_mask); }
  /// [CLS] -> class logits [B,C]
  Variable classify(const Padded& p) {
    Variable h = encode(p);                                              // [B,T,E]
    Variable cls = reshape(narrow(h, 1, 0, 1), {h.size(0), h.size(2)});  // [B,E]
    return (*cls_head)(cls_dropout->forward(cls));
  }
};

// ---- masked-token prediction ----------------------------------------------------------------

struct MaskedBatch {
  Padded input;    // with the chosen words replaced
  Tensor rows;     // [M] int64: flat positions b*T + t of the chosen words
  Tensor targets;  // [M] int64: their original ids
  std::vector<int64_t> target_ids;
};

/// BERT's masking: each word (not [CLS], not padding) is chosen with probability p; a chosen
/// word becomes [MASK] (80%), a random word (10%) or stays (10%). At least one per batch.
MaskedBatch mask_batch(const std::vector<const std::vector<int64_t>*>& seqs, double p, int64_t V, Generator& gen) {
  MaskedBatch m;
  m.input = pad(seqs);
  const int64_t T = m.input.tokens.size(1);
  std::vector<int64_t> tok = m.input.tokens.to_indices(), rows;
  for (size_t b = 0; b < seqs.size(); ++b)
    for (size_t t = 1; t < seqs[b]->size(); ++t) {
      if (gen.uniform() >= p) continue;
      const size_t at = b * static_cast<size_t>(T) + t;
      rows.push_back(static_cast<int64_t>(at));
      m.target_ids.push_back(tok[at]);
      const double u = gen.uniform();
      if (u < 0.8)
        tok[at] = kMask;
      else if (u < 0.9)
        tok[at] = gen.randint(kFirstWord, V);
    }
  if (rows.empty()) {  // a batch of very short sentences: mask the first word of the first
    rows.push_back(1);
    m.target_ids.push_back(tok[1]);
    tok[1] = kMask;
  }
  m.input.tokens = indices(tok, m.input.tokens.shape());
  m.rows = indices(rows);
  m.targets = indices(m.target_ids);
  return m;
}

/// The masked-token logits [M,V]: the head runs on the chosen positions only.
Variable mlm_logits(TinyBert& model, const MaskedBatch& m) {
  Variable h = model.encode(m.input);                              // [B,T,E]
  Variable flat = reshape(h, {h.size(0) * h.size(1), h.size(2)});  // [B*T,E]
  return (*model.mlm_head)(index_select(flat, 0, m.rows));         // [M,V]
}

// ---- fine-tuning and evaluation -------------------------------------------------------------

struct Encoded {
  std::vector<std::vector<int64_t>> ids;
  std::vector<int64_t> labels;
};

double accuracy(TinyBert& model, const Encoded& data) {
  NoGradGuard no_grad;
  model.eval();
  int64_t right = 0;
  for (size_t lo = 0; lo < data.ids.size(); lo += 250) {
    std::vector<const std::vector<int64_t>*> seqs;
    for (size_t i = lo; i < std::min(data.ids.size(), lo + 250); ++i) seqs.push_back(&data.ids[i]);
    const std::vector<int64_t> pred = argmax(model.classify(pad(seqs)).data(), 1).to_indices();
    for (size_t i = 0; i < pred.size(); ++i) right += pred[i] == data.labels[lo + i];
  }
  model.train();
  return static_cast<double>(right) / static_cast<double>(data.ids.size());
}

struct FineTune {
  std::vector<double> acc_x, acc_y;  // test accuracy during fine-tuning
  double accuracy = 0;
};

/// AdamW on shuffled passes over `train`, test accuracy every eval_every steps.
FineTune fine_tune(TinyBert& model, const Encoded& train, const Encoded& test, int64_t steps, int64_t B, double lr,
                   int64_t eval_every, uint64_t seed, const std::string& label, bool show) {
  optim::AdamW opt(model.parameters(), {.lr = lr, .weight_decay = 0.01});
  Generator gen(seed);
  std::vector<size_t> order(train.ids.size());
  std::iota(order.begin(), order.end(), size_t{0});
  size_t at = order.size();
  FineTune r;
  r.acc_x.push_back(0);
  r.acc_y.push_back(accuracy(model, test));
  Progress progress(label, steps, show);
  for (int64_t step = 1; step <= steps; ++step) {
    std::vector<const std::vector<int64_t>*> seqs;
    std::vector<int64_t> labels;
    while (static_cast<int64_t>(seqs.size()) < std::min<int64_t>(B, static_cast<int64_t>(order.size()))) {
      if (at == order.size()) {  // a new pass, freshly shuffled
        for (size_t i = order.size(); i > 1; --i)
          std::swap(order[i - 1], order[static_cast<size_t>(gen.randint(0, static_cast<int64_t>(i)))]);
        at = 0;
      }
      seqs.push_back(&train.ids[order[at]]);
      labels.push_back(train.labels[order[at++]]);
    }
    opt.zero_grad();
    Variable loss = cross_entropy(model.classify(pad(seqs)), indices(labels));
    loss.backward();
    clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    if (step % eval_every == 0 || step == steps) {
      r.acc_x.push_back(static_cast<double>(step));
      r.acc_y.push_back(accuracy(model, test));
    }
    progress.update(step, loss.item(), fmt::format(" test acc {:.1f}%", 100 * r.acc_y.back()));
  }
  progress.finish();
  r.accuracy = r.acc_y.back();
  return r;
}

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

std::string json_array(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", v[i]);
  return s + "]";
}

struct RunOutcome {
  double pretrained = 0, scratch = 0;  // mean test accuracy over the fine-tuning seeds
  double probe = NAN;                  // polarity of the top-ranked masked adjective
  int64_t wins = 0, pairs = 0;         // fine-tuning seeds where pretrained > scratch, of
};

struct Spread {
  double median = 0, min = 0, max = 0;
};

Spread spread_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return {n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]), v.front(), v.back()};
}

int run(int argc, char** argv) {
  Cli cli(argc, argv,
          "BERT in miniature: masked-token pretraining of a small Transformer encoder on unlabelled sentences, then "
          "fine-tuning on a few labelled ones, against the same model trained from scratch");
  const std::string sst_dir = cli.get_string("sst", "", "SST folder (train.txt, dev.txt); default: generated data");
  const std::string corpus_kind = cli.get_string("corpus", "reviews", "generated unlabelled text: reviews | toy");
  const int64_t corpus_size = cli.get_int("corpus-size", 20000, "generated unlabelled sentences");
  const int64_t n_labelled = cli.get_int("labelled", 100, "labelled training sentences (per seed, drawn from a pool)");
  const int64_t n_test = cli.get_int("toy-test", 500, "generated test sentences");
  const int64_t d_model = cli.get_int("d-model", 64, "model width E");
  const int64_t nhead = cli.get_int("heads", 4, "attention heads");
  const int64_t layers = cli.get_int("layers", 2, "encoder layers");
  const int64_t ff = cli.get_int("ff", 128, "feed-forward width");
  const int64_t max_len = cli.get_int("max-len", 48, "tokens per sentence, [CLS] included (longer ones are cut)");
  const double pt_dropout =
      cli.get_double("pt-dropout", 0.0, "dropout while pretraining (embeddings, attention, feed-forward)");
  const double ft_dropout = cli.get_double("ft-dropout", 0.1, "dropout while fine-tuning (the same places and [CLS])");
  const int64_t min_count = cli.get_int("min-count", 2, "words seen fewer times in the unlabelled text become [UNK]");
  const int64_t pt_steps = cli.get_int("pt-steps", 2000, "pretraining steps (1000 leave some seeds without a gain)");
  const int64_t pt_batch = cli.get_int("pt-batch", 64, "pretraining batch (sentences)");
  const double pt_lr = cli.get_double("pt-lr", 4e-3, "pretraining AdamW peak learning rate (warm-up, cosine decay)");
  const double mask_prob = cli.get_double("mask-prob", 0.15, "share of words chosen for prediction");
  const int64_t ft_steps = cli.get_int("ft-steps", 150, "fine-tuning steps (both models)");
  const int64_t ft_batch = cli.get_int("ft-batch", 32, "fine-tuning batch");
  const double ft_lr = cli.get_double("ft-lr", 1e-3, "fine-tuning AdamW learning rate (both models)");
  const int64_t eval_every = cli.get_int("eval-every", 10, "fine-tuning steps between test accuracies");
  const int64_t n_seeds = cli.get_int("seeds", 3, "fine-tuning seeds (labelled subset, head init, batch order)");
  const int64_t n_runs = cli.get_int(
      "runs", 1, "whole runs (new corpus, pool, test set, pretraining) with seeds seed .. seed+N-1: median and range");
  const uint64_t first_seed = cli.seed();
  const bool json = cli.json();
  const std::string out_dir = cli.out_dir();
  cli.done();
  UNROLL_CHECK(corpus_kind == "reviews" || corpus_kind == "toy", "bert_toy: --corpus must be reviews or toy, got '{}'",
               corpus_kind);
  UNROLL_CHECK(d_model > 0 && nhead > 0 && d_model % nhead == 0 && layers > 0 && ff > 0 && max_len >= 2,
               "bert_toy: need --d-model divisible by --heads, positive sizes and --max-len >= 2");
  UNROLL_CHECK(corpus_size > 0 && n_labelled > 0 && n_test > 0 && pt_steps >= 0 && pt_batch > 0 && ft_steps > 0 &&
                   ft_batch > 0 && eval_every > 0 && n_seeds > 0 && n_runs > 0 && min_count > 0,
               "bert_toy: counts, steps and batch sizes must be positive (--pt-steps may be 0)");
  UNROLL_CHECK(mask_prob > 0 && mask_prob < 1 && pt_dropout >= 0 && pt_dropout < 1 && ft_dropout >= 0 && ft_dropout < 1,
               "bert_toy: --mask-prob must be in (0, 1), --pt-dropout and --ft-dropout in [0, 1)");
  plot::make_dirs(out_dir);
  const bool show = !json;

  // One whole run: data, pretraining, fine-tuning from both starts. `report`: figures and the
  // --json line (the first run only when there are several).
  auto experiment = [&](uint64_t seed, bool report) -> RunOutcome {
    // ---- data: unlabelled corpus, labelled pool, test set ------------------------------------
    std::vector<std::string> corpus;
    std::vector<TextExample> pool, test_raw;
    if (sst_dir.empty()) {
      Generator corpus_gen(seed + 2);
      if (corpus_kind == "reviews")
        corpus = coherent_reviews(corpus_size, corpus_gen);
      else
        for (const TextExample& x : toy_sentiment(corpus_size, corpus_gen)) corpus.push_back(x.text);
      Generator task_gen(seed + 1);  // as examples/classify draws its toy set: the same sentences
      pool = toy_sentiment(2000, task_gen);
      test_raw = toy_sentiment(n_test, task_gen);
    } else {
      const std::vector<TextExample> train5 = read_text_examples(sst_dir + "/train.txt", "sst");
      for (const TextExample& x : train5) corpus.push_back(x.text);
      pool = sst_binary(train5);
      test_raw = sst_binary(read_text_examples(sst_dir + "/dev.txt", "sst"));
    }
    UNROLL_CHECK(static_cast<int64_t>(pool.size()) >= n_labelled,
                 "bert_toy: --labelled {} exceeds the {} labelled sentences", n_labelled, pool.size());
    // The words of the unlabelled text; the generated labelled sentences add theirs ("but").
    std::vector<std::string> texts = corpus;
    if (sst_dir.empty())
      for (const TextExample& x : pool) texts.push_back(x.text);
    const Vocab vocab = build_vocab(texts, min_count);
    const int64_t V = vocab.size();
    const std::vector<std::string> classes{"negative", "positive"};
    auto encode_set = [&](const std::vector<TextExample>& xs) {
      Encoded e;
      for (const TextExample& x : xs) {
        e.ids.push_back(vocab.encode(x.text, max_len));
        e.labels.push_back(x.label == classes[1] ? 1 : 0);
      }
      return e;
    };
    const Encoded test = encode_set(test_raw);
    std::vector<std::vector<int64_t>> corpus_ids;
    for (const std::string& s : corpus) corpus_ids.push_back(vocab.encode(s, max_len));
    const double majority = std::max(mean(std::vector<double>(test.labels.begin(), test.labels.end())),
                                     1 - mean(std::vector<double>(test.labels.begin(), test.labels.end())));
    fmt::print(
        "data: {} unlabelled sentences ({}), {} labelled to fine-tune on (of a pool of {}), {} test; vocabulary {}\n",
        corpus.size(), sst_dir.empty() ? corpus_kind + " corpus" : "SST train", n_labelled, pool.size(),
        test.ids.size(), V);
    fmt::print("  unlabelled e.g. \"{}\"\n  labelled e.g. [{}] \"{}\"\n", corpus[0], pool[0].label, pool[0].text);

    const BertConfig pt_config{V, 2, d_model, nhead, layers, ff, max_len, pt_dropout};
    BertConfig ft_config = pt_config;
    ft_config.dropout = ft_dropout;

    // ---- pretraining: masked-token prediction ----------------------------------------------------
    // Held out: the last 5% of the corpus (at most 1000 sentences), masked once, for the curve.
    const size_t n_held = std::min<size_t>(1000, corpus_ids.size() / 20);
    const size_t n_pt = corpus_ids.size() - n_held;
    Generator mask_gen(seed + 3);
    MaskedBatch held;
    if (n_held > 0) {
      std::vector<const std::vector<int64_t>*> seqs;
      for (size_t i = n_pt; i < corpus_ids.size(); ++i) seqs.push_back(&corpus_ids[i]);
      held = mask_batch(seqs, mask_prob, V, mask_gen);
    }
    manual_seed(seed);
    TinyBert pretrained(pt_config);
    fmt::print("model: Embedding({}, {}) + positions -> {} pre-norm layers ({} heads, ff {}) -> heads; {} parameters\n",
               V, d_model, layers, nhead, ff, pretrained.num_parameters());
    std::vector<double> pt_x, pt_loss, held_x, held_loss;
    auto held_out_loss = [&](int64_t step) {
      if (n_held == 0) return;
      NoGradGuard no_grad;
      pretrained.eval();
      held_x.push_back(static_cast<double>(step));
      held_loss.push_back(cross_entropy(mlm_logits(pretrained, held), held.targets).item());
      pretrained.train();
    };
    std::fflush(stdout);
    held_out_loss(0);
    {
      optim::AdamW opt(pretrained.parameters(), {.lr = pt_lr, .weight_decay = 0.01});
      Progress progress("pretrain (masked tokens)", pt_steps, show);
      const int64_t warmup = std::max<int64_t>(1, pt_steps / 10);
      for (int64_t step = 1; step <= pt_steps; ++step) {
        const double cosine =
            0.5 * (1 + std::cos(std::acos(-1.0) * static_cast<double>(step - 1) / static_cast<double>(pt_steps)));
        opt.set_lr(pt_lr * std::min(1.0, static_cast<double>(step) / static_cast<double>(warmup)) *
                   (0.05 + 0.95 * cosine));
        std::vector<const std::vector<int64_t>*> seqs;
        for (int64_t b = 0; b < pt_batch; ++b)
          seqs.push_back(&corpus_ids[static_cast<size_t>(mask_gen.randint(0, static_cast<int64_t>(n_pt)))]);
        const MaskedBatch m = mask_batch(seqs, mask_prob, V, mask_gen);
        opt.zero_grad();
        Variable loss = cross_entropy(mlm_logits(pretrained, m), m.targets);
        loss.backward();
        clip_grad_norm(pretrained.parameters(), 1.0);
        opt.step();
        pt_x.push_back(static_cast<double>(step));
        pt_loss.push_back(loss.item());
        if (step % std::max<int64_t>(1, pt_steps / 12) == 0 || step == pt_steps) held_out_loss(step);
        progress.update(step, loss.item(), held_loss.empty() ? "" : fmt::format(" held-out {:.3f}", held_loss.back()));
      }
      progress.finish();
    }
    // What did it learn? On the held-out masked adjectives of the generated data: is the
    // adjective the model ranks highest of the right polarity? (Chance: 50%.)
    double polarity_probe = NAN;
    if (sst_dir.empty() && n_held > 0) {
      NoGradGuard no_grad;
      pretrained.eval();
      const ToyLexicon& w = toy_lexicon();
      std::vector<int64_t> pos_ids, neg_ids;
      for (const std::string& a : w.positive) pos_ids.push_back(vocab.id.at(a));
      for (const std::string& a : w.negative) neg_ids.push_back(vocab.id.at(a));
      const Tensor logits = mlm_logits(pretrained, held).data();  // [M,V]
      const std::vector<double> l = logits.to_vector();
      int64_t right = 0, total = 0;
      for (size_t i = 0; i < held.target_ids.size(); ++i) {
        const int64_t y = held.target_ids[i];
        const bool is_pos = std::find(pos_ids.begin(), pos_ids.end(), y) != pos_ids.end();
        const bool is_neg = std::find(neg_ids.begin(), neg_ids.end(), y) != neg_ids.end();
        if (!is_pos && !is_neg) continue;
        auto best = [&](const std::vector<int64_t>& ids) {
          double m = -INFINITY;
          for (int64_t id : ids) m = std::max(m, l[i * static_cast<size_t>(V) + static_cast<size_t>(id)]);
          return m;
        };
        right += (best(pos_ids) > best(neg_ids)) == is_pos;
        ++total;
      }
      polarity_probe = total ? static_cast<double>(right) / static_cast<double>(total) : NAN;
      pretrained.train();
    }
    StateDict encoder_state;  // everything but the classification head
    for (const auto& [name, value] : pretrained.state_dict())
      if (name.rfind("cls_head.", 0) != 0) encoder_state.insert(name, value.clone());
    const double ln_words = std::log(static_cast<double>(V - kFirstWord));
    fmt::print(
        "pretraining: masked-token loss {:.3f} -> {:.3f} (held-out {:.3f} -> {:.3f}; uniform guess ln {} = {:.3f})\n",
        pt_loss.empty() ? NAN : pt_loss.front(), pt_loss.empty() ? NAN : pt_loss.back(),
        held_loss.empty() ? NAN : held_loss.front(), held_loss.empty() ? NAN : held_loss.back(), V - kFirstWord,
        ln_words);
    if (!std::isnan(polarity_probe))
      fmt::print(
          "  masked adjectives: the top-ranked adjective has the right polarity {:.1f}% of the time (chance 50%)\n",
          100 * polarity_probe);

    // ---- fine-tuning: pretrained vs scratch, same seeds ------------------------------------------
    std::fflush(stdout);
    std::vector<double> acc_pre, acc_scratch;
    std::vector<FineTune> runs_pre, runs_scratch;
    for (int64_t k = 0; k < n_seeds; ++k) {
      const uint64_t s = seed + 100 + static_cast<uint64_t>(k);
      Generator subset_gen(s);
      std::vector<size_t> order(pool.size());
      std::iota(order.begin(), order.end(), size_t{0});
      for (size_t i = 0; i < static_cast<size_t>(n_labelled); ++i)
        std::swap(order[i],
                  order[i + static_cast<size_t>(subset_gen.randint(0, static_cast<int64_t>(order.size() - i)))]);
      std::vector<TextExample> subset;
      for (size_t i = 0; i < static_cast<size_t>(n_labelled); ++i) subset.push_back(pool[order[i]]);
      const Encoded train = encode_set(subset);
      for (bool use_pretrained : {true, false}) {
        manual_seed(s);
        TinyBert model(ft_config);
        if (use_pretrained) model.load_state_dict(encoder_state, false);
        FineTune r = fine_tune(model, train, test, ft_steps, ft_batch, ft_lr, eval_every, s + 1,
                               fmt::format("seed {} {}", k + 1, use_pretrained ? "pretrained" : "scratch"), show);
        (use_pretrained ? acc_pre : acc_scratch).push_back(r.accuracy);
        (use_pretrained ? runs_pre : runs_scratch).push_back(std::move(r));
      }
      if (show)
        fmt::print(stderr, "seed {}: test accuracy pretrained {:.1f}%, scratch {:.1f}%\n", k + 1, 100 * acc_pre.back(),
                   100 * acc_scratch.back());
    }
    const double m_pre = mean(acc_pre), m_scratch = mean(acc_scratch);
    const double gain = m_pre - m_scratch;
    int64_t wins = 0;
    for (size_t k = 0; k < acc_pre.size(); ++k) wins += acc_pre[k] > acc_scratch[k];
    double spread = 0;  // the largest |pretrained - scratch - mean gain| over seeds
    for (size_t k = 0; k < acc_pre.size(); ++k) spread = std::max(spread, std::abs(acc_pre[k] - acc_scratch[k] - gain));

    fmt::print(
        "\nfine-tuning on {} labelled sentences, {} steps, {} seed(s); test accuracy (majority class {:.1f}%):\n",
        n_labelled, ft_steps, n_seeds, 100 * majority);
    fmt::print("  {:<12} {:>8}   per seed\n", "start", "mean");
    auto per_seed = [](const std::vector<double>& v) {
      std::string s;
      for (double a : v) s += fmt::format(" {:.1f}%", 100 * a);
      return s;
    };
    fmt::print("  {:<12} {:>7.1f}%  {}\n", "pretrained", 100 * m_pre, per_seed(acc_pre));
    fmt::print("  {:<12} {:>7.1f}%  {}\n", "scratch", 100 * m_scratch, per_seed(acc_scratch));
    const bool helps = gain > 0.02 && wins * 2 > n_seeds;
    const bool hurts = gain < -0.02 && wins * 2 < n_seeds;
    fmt::print("verdict: {} ({:+.1f} points on average, pretrained better in {} of {} seed(s))\n",
               helps   ? "pretraining helps at this scale"
               : hurts ? "pretraining hurts at this scale"
                       : "no clear difference at this scale",
               100 * gain, wins, n_seeds);

    // ---- figures ---------------------------------------------------------------------------------
    if (report) {
      std::vector<std::string> figures;
      plot::LinePlot pl;
      pl.title = fmt::format("masked-token pretraining ({} sentences, {:.0f}% of words chosen)", n_pt, 100 * mask_prob);
      pl.xlabel = "pretraining step";
      pl.ylabel = "cross-entropy at the masked words (nats)";
      pl.add("train batch", pt_x, pt_loss).series.back().color = "#9467bd";
      if (!held_x.empty()) {
        pl.add("held-out", held_x, held_loss).series.back().color = "#2ca02c";
        pl.series.back().markers = true;
      }
      const double x_end = static_cast<double>(std::max<int64_t>(pt_steps, 1));
      pl.add_reference(fmt::format("ln {} (uniform)", V - kFirstWord), 0.0, x_end, ln_words);
      figures.push_back(out_dir + "/pretrain_loss.svg");
      pl.save(figures.back());

      plot::LinePlot fl;
      fl.title = fmt::format("fine-tuning on {} labelled sentences: test accuracy", n_labelled);
      fl.xlabel = "fine-tuning step";
      fl.ylabel = "test accuracy";
      auto mean_curve = [](const std::vector<FineTune>& rs) {
        std::vector<double> y(rs.front().acc_y.size(), 0.0);
        for (const FineTune& r : rs)
          for (size_t i = 0; i < y.size(); ++i) y[i] += r.acc_y[i] / static_cast<double>(rs.size());
        return y;
      };
      fl.add(n_seeds > 1 ? "pretrained (mean)" : "pretrained", runs_pre.front().acc_x, mean_curve(runs_pre))
          .series.back()
          .color = "#d62728";
      fl.add(n_seeds > 1 ? "scratch (mean)" : "scratch", runs_scratch.front().acc_x, mean_curve(runs_scratch))
          .series.back()
          .color = "#1f77b4";
      for (plot::Series& se : fl.series) se.markers = true;
      if (n_seeds > 1)
        for (int64_t k = 0; k < n_seeds; ++k) {
          const FineTune& p = runs_pre[static_cast<size_t>(k)];
          const FineTune& q = runs_scratch[static_cast<size_t>(k)];
          fl.add(fmt::format("pretrained, seed {}", k + 1), p.acc_x, p.acc_y, true).series.back().color = "#f0a0a0";
          fl.add(fmt::format("scratch, seed {}", k + 1), q.acc_x, q.acc_y, true).series.back().color = "#a0c4e4";
        }
      fl.add_reference("majority class", 0.0, static_cast<double>(ft_steps), majority);
      figures.push_back(out_dir + "/finetune_accuracy.svg");
      fl.save(figures.back());
      fmt::print("\nfigures:\n");
      for (const std::string& f : figures) fmt::print("  {}\n", f);
    }

    if (json && report) {
      JsonLine line;
      line.add("vocab", static_cast<double>(V)).add("labelled", static_cast<double>(n_labelled));
      line.add("seeds", static_cast<double>(n_seeds)).add("majority", majority).add("chance", 0.5);
      line.add("pretrain_initial_loss", pt_loss.empty() ? NAN : pt_loss.front());
      line.add("pretrain_final_loss", pt_loss.empty() ? NAN : pt_loss.back());
      line.add("pretrain_heldout_initial", held_loss.empty() ? NAN : held_loss.front());
      line.add("pretrain_heldout_final", held_loss.empty() ? NAN : held_loss.back());
      line.add("ln_words", ln_words).add("polarity_probe", polarity_probe);
      line.add("pretrained_accuracy", m_pre).add("scratch_accuracy", m_scratch).add("gain", gain);
      line.add("pretrained_wins", static_cast<double>(wins)).add("gain_spread", spread);
      line.add_raw("pretrained_per_seed", json_array(acc_pre)).add_raw("scratch_per_seed", json_array(acc_scratch));
      fmt::print("{}\n", line.str());
    }
    return RunOutcome{m_pre, m_scratch, polarity_probe, wins, static_cast<int64_t>(acc_pre.size())};
  };  // experiment

  if (n_runs == 1) {
    experiment(first_seed, true);
    return 0;
  }
  // ---- several whole runs: the spread a reader meets when changing --seed -------------------
  std::vector<RunOutcome> outs;
  for (int64_t r = 0; r < n_runs; ++r) {
    const uint64_t s = first_seed + static_cast<uint64_t>(r);
    fmt::print("\n==== run {} of {}: --seed {} ====\n", r + 1, n_runs, s);
    outs.push_back(experiment(s, false));
  }
  std::vector<double> pre, scr, gains, probes;
  int64_t run_wins = 0, pair_wins = 0, pairs = 0;
  for (const RunOutcome& o : outs) {
    pre.push_back(o.pretrained);
    scr.push_back(o.scratch);
    gains.push_back(o.pretrained - o.scratch);
    probes.push_back(o.probe);
    run_wins += o.pretrained > o.scratch;
    pair_wins += o.wins;
    pairs += o.pairs;
  }
  auto mmm = [](const std::vector<double>& v, double scale, const char* unit) {
    const Spread sp = spread_of(v);
    return fmt::format("{:.1f}{} [{:.1f}, {:.1f}]", scale * sp.median, unit, scale * sp.min, scale * sp.max);
  };
  fmt::print("\n{} runs (--seed {} .. {}), {} pretraining steps, each run's mean over {} fine-tuning seed(s); median "
             "[min, max]:\n",
             n_runs, first_seed, first_seed + static_cast<uint64_t>(n_runs) - 1, pt_steps, n_seeds);
  fmt::print("  pretrained {}   scratch {}   gain {} points\n", mmm(pre, 100, "%"), mmm(scr, 100, "%"),
             mmm(gains, 100, ""));
  if (!std::isnan(probes.front())) fmt::print("  polarity probe after pretraining {}\n", mmm(probes, 100, "%"));
  const bool robust = pair_wins == pairs;
  fmt::print("verdict: pretraining better in {} of {} runs and in {} of {} (run, fine-tuning seed) pairs: {}\n",
             run_wins, n_runs, pair_wins, pairs,
             robust                ? "the gain holds on every seed"
             : run_wins * 2 > n_runs ? "a gain on most seeds, not on all"
                                     : "no robust gain at this configuration");
  if (json) {
    JsonLine line;
    const Spread p = spread_of(pre), q = spread_of(scr), g = spread_of(gains);
    line.add("runs", static_cast<double>(n_runs)).add("seeds", static_cast<double>(n_seeds));
    line.add("pt_steps", static_cast<double>(pt_steps));
    line.add("pretrained_median", p.median).add("pretrained_min", p.min).add("pretrained_max", p.max);
    line.add("scratch_median", q.median).add("scratch_min", q.min).add("scratch_max", q.max);
    line.add("gain_median", g.median).add("gain_min", g.min).add("gain_max", g.max);
    line.add("runs_with_gain", static_cast<double>(run_wins)).add("pairs_with_gain", static_cast<double>(pair_wins));
    line.add("pairs", static_cast<double>(pairs));
    line.add_raw("pretrained_per_run", json_array(pre)).add_raw("scratch_per_run", json_array(scr));
    fmt::print("{}\n", line.str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // unroll::Error: its message names the program or the op; DataError: a file that cannot be read
  return guarded_main("bert_toy", argc, argv, run, on_error<unroll::Error>(ErrorPrefix::none, 1),
                      on_error<DataError>(ErrorPrefix::program, 1));
}
