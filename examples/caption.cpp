// One-to-many: image captioning, shaped like "Show, Attend and Tell" (Xu et al. 2015), on a
// generated scene data set. A scene is a small RGB image with one to three shapes (circle,
// square, triangle; red, green, blue, yellow; small or big), one in each of three columns
// of the image at a random height; its caption names them from left to right:
//
//   "a small red circle left of a big blue square"
//
//   encoder: [B,3,S,S] + x,y channels -> Conv2d 3x3 relu MaxPool 2 -> Conv2d 3x3 relu MaxPool 2
//            -> Conv2d 3x3 relu -> a feature map of L = (S/4)^2 locations, D features each
//            (+ a learned position vector)
//   decoder: h_0, c_0 = tanh(W [mean of the features]); at step t, with previous word y_{t-1},
//            (z_t, alpha_t) = additive attention(query h_{t-1}, keys = values = the L features)
//            z_t *= sigmoid(w_beta . h_{t-1})              (the paper's gating scalar)
//            h_t, c_t = LSTMCell([embed(y_{t-1}); z_t], h_{t-1}, c_{t-1})
//            logits_t = W_out [h_t; z_t]
//
// Trained with teacher forcing (the true previous word as input; Adam with a cosine decay);
// decoded greedily and by beam search (--beam K). Scored on held-out scenes by exact-caption
// accuracy, corpus BLEU-4 and per-word accuracy (size, colour, shape), and on a second held-out set in which every scene holds a colour-shape pair that
// no training scene has (--hold-out, default "blue triangle"): can the model say a
// composition it never saw? The figure shows, per generated word, where the model looked.
//
//   ./caption                       about 30 s on one core
//   ./caption --beam 5 --hold-out "red circle"
#include <unroll.h>

#include "common/cli.h"
#include "common/images.h"
#include "common/plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

using namespace unroll;
using namespace unroll::examples;

namespace {

// ---- the scene grammar -----------------------------------------------------------------------

const std::vector<std::string> kShapes = {"circle", "square", "triangle"};
const std::vector<std::string> kColours = {"red", "green", "blue", "yellow"};
const std::vector<std::string> kSizes = {"small", "big"};
constexpr double kRgb[4][3] = {{0.92, 0.16, 0.12}, {0.16, 0.78, 0.22}, {0.22, 0.38, 0.96}, {0.96, 0.86, 0.12}};
constexpr int64_t kColumns = 3;  // one shape per column at most, so "left of" is never ambiguous

// Words: <pad> 0, <bos> 1, <eos> 2, then the grammar's words.
constexpr int64_t kPad = 0, kBos = 1, kEos = 2;
struct Vocab {
  std::vector<std::string> words = {"<pad>", "<bos>", "<eos>", "a", "left", "of"};
  std::map<std::string, int64_t> id;
  Vocab() {
    for (const auto* list : {&kSizes, &kColours, &kShapes}) words.insert(words.end(), list->begin(), list->end());
    for (size_t i = 0; i < words.size(); ++i) id[words[i]] = static_cast<int64_t>(i);
  }
  int64_t size() const { return static_cast<int64_t>(words.size()); }
  std::string text(const std::vector<int64_t>& ids) const {  // up to the first <eos>
    std::string s;
    for (int64_t t : ids) {
      if (t == kEos) break;
      s += (s.empty() ? "" : " ") + words[static_cast<size_t>(t)];
    }
    return s;
  }
};

struct Object {
  int64_t kind, colour, size, column;
  double cx, cy, r;
};

struct Scene {
  std::vector<float> pixels;  // [3,S,S] (channels first, as the CNN takes it)
  std::vector<Object> shapes;  // left to right
  std::vector<int64_t> caption;  // word ids, without <bos>/<eos>
};

struct SceneConfig {
  int64_t S = 24;
  int64_t max_shapes = 3;
  int64_t held_colour = -1, held_kind = -1;  // the held-out pair (-1: none)
  double noise = 0.04;
};

bool is_held(const SceneConfig& c, int64_t colour, int64_t kind) { return colour == c.held_colour && kind == c.held_kind; }

/// One scene. `novel`: at least one shape is the held-out pair; otherwise none is.
Scene make_scene(const SceneConfig& c, bool novel, Generator& gen, const Vocab& vocab) {
  Scene sc;
  const double S = static_cast<double>(c.S), col_w = S / kColumns;
  const int64_t n = gen.randint(1, c.max_shapes + 1);
  std::vector<int64_t> cols = {0, 1, 2};
  for (int64_t i = 2; i > 0; --i) std::swap(cols[static_cast<size_t>(i)], cols[static_cast<size_t>(gen.randint(0, i + 1))]);
  cols.resize(static_cast<size_t>(n));
  std::sort(cols.begin(), cols.end());
  const int64_t forced = novel ? gen.randint(0, n) : -1;  // which shape is the held-out pair
  for (int64_t i = 0; i < n; ++i) {
    Object s{};
    s.column = cols[static_cast<size_t>(i)];
    if (i == forced) {
      s.kind = c.held_kind, s.colour = c.held_colour;
    } else {
      do {
        s.kind = gen.randint(0, 3), s.colour = gen.randint(0, 4);
      } while (is_held(c, s.colour, s.kind));
    }
    s.size = gen.randint(0, 2);
    s.r = (s.size ? 0.165 : 0.12) * S;
    s.cx = (static_cast<double>(s.column) + 0.5) * col_w + gen.uniform(-0.05, 0.05) * col_w;
    s.cy = gen.uniform(s.r + 1, S - s.r - 1);
    sc.shapes.push_back(s);
  }
  // Pixels: a dark background with noise; each shape filled with its colour (shaded a little).
  const size_t SS = static_cast<size_t>(c.S * c.S);
  sc.pixels.assign(3 * SS, 0.0f);
  for (size_t i = 0; i < 3 * SS; ++i) sc.pixels[i] = static_cast<float>(0.08 + c.noise * gen.normal());
  for (const Object& s : sc.shapes) {
    const double shade = gen.uniform(0.85, 1.0);
    for (int64_t y = 0; y < c.S; ++y)
      for (int64_t x = 0; x < c.S; ++x) {
        const double dx = static_cast<double>(x) + 0.5 - s.cx, dy = static_cast<double>(y) + 0.5 - s.cy;
        bool in = false;
        if (s.kind == 0) in = dx * dx + dy * dy <= s.r * s.r;                              // circle
        else if (s.kind == 1) in = std::abs(dx) <= 0.9 * s.r && std::abs(dy) <= 0.9 * s.r;  // square
        else in = dy >= -s.r && dy <= s.r && std::abs(dx) <= 0.5 * (dy + s.r) * 1.1;          // triangle, apex up
        if (!in) continue;
        for (size_t ch = 0; ch < 3; ++ch)
          sc.pixels[ch * SS + static_cast<size_t>(y * c.S + x)] =
              static_cast<float>(kRgb[s.colour][ch] * shade + c.noise * gen.normal());
      }
  }
  for (size_t i = 0; i < sc.shapes.size(); ++i) {
    const Object& s = sc.shapes[i];
    if (i) sc.caption.insert(sc.caption.end(), {vocab.id.at("left"), vocab.id.at("of")});
    sc.caption.insert(sc.caption.end(), {vocab.id.at("a"), vocab.id.at(kSizes[static_cast<size_t>(s.size)]),
                                         vocab.id.at(kColours[static_cast<size_t>(s.colour)]),
                                         vocab.id.at(kShapes[static_cast<size_t>(s.kind)])});
  }
  return sc;
}

std::vector<Scene> make_scenes(int64_t n, const SceneConfig& c, bool novel, Generator& gen, const Vocab& vocab) {
  std::vector<Scene> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(make_scene(c, novel, gen, vocab));
  return out;
}

struct Batch {
  Tensor images;   // [B,3,S,S]
  Tensor dec_in;   // [T,B]: <bos> w_1 .. w_n, then <pad>
  Tensor dec_out;  // [T,B]: w_1 .. w_n <eos>, then <pad> (ignored by the loss)
};

Batch make_batch(const std::vector<Scene>& scenes, const std::vector<size_t>& idx, int64_t S) {
  size_t T = 0;
  for (size_t i : idx) T = std::max(T, scenes[i].caption.size() + 1);
  const size_t B = idx.size();
  std::vector<double> px;
  px.reserve(B * 3 * static_cast<size_t>(S * S));
  std::vector<int64_t> in(T * B, kPad), out(T * B, kPad);
  for (size_t b = 0; b < B; ++b) {
    const Scene& sc = scenes[idx[b]];
    px.insert(px.end(), sc.pixels.begin(), sc.pixels.end());
    in[b] = kBos;
    for (size_t t = 0; t < sc.caption.size(); ++t) {
      in[(t + 1) * B + b] = sc.caption[t];
      out[t * B + b] = sc.caption[t];
    }
    out[sc.caption.size() * B + b] = kEos;
  }
  const int64_t Bi = static_cast<int64_t>(B), Ti = static_cast<int64_t>(T);
  return {tensor(px, {Bi, 3, S, S}), indices(in, {Ti, Bi}), indices(out, {Ti, Bi})};
}

// ---- the model ------------------------------------------------------------------------------

struct Captioner : Module {
  int64_t V, E, D, H, L;
  std::shared_ptr<Conv2d> conv1, conv2, conv3;
  std::shared_ptr<MaxPool2d> pool;
  Variable position;  // [L,D], added to every image's features
  std::shared_ptr<Linear> init_h, init_c, beta, out;
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<AdditiveAttention> attention;
  std::shared_ptr<LSTMCell> cell;

  Captioner(int64_t vocab, int64_t S, int64_t c1, int64_t c2, int64_t features, int64_t embed_dim, int64_t hidden,
            int64_t attn)
      : V(vocab), E(embed_dim), D(features), H(hidden), L((S / 4) * (S / 4)) {
    conv1 = register_module("conv1", std::make_shared<Conv2d>(5, c1, 3, Conv2dOptions{.padding = 1}));
    conv2 = register_module("conv2", std::make_shared<Conv2d>(c1, c2, 3, Conv2dOptions{.padding = 1}));
    conv3 = register_module("conv3", std::make_shared<Conv2d>(c2, D, 3, Conv2dOptions{.padding = 1}));
    pool = register_module("pool", std::make_shared<MaxPool2d>(2));
    // He initialisation (gain sqrt(2) for relu) instead of PyTorch's default, which shrinks
    // the signal about 2.5x per layer: with it the features, and so the attention scores,
    // start near zero and the attention takes many steps to find the shapes.
    for (Conv2d* conv : {conv1.get(), conv2.get(), conv3.get()}) init::kaiming_normal_(conv->weight);
    position = register_parameter("position", randn({L, D}, default_generator()) * 0.1);
    init_h = register_module("init_h", std::make_shared<Linear>(D, H));
    init_c = register_module("init_c", std::make_shared<Linear>(D, H));
    embed = register_module("embed", std::make_shared<Embedding>(V, E, kPad));
    attention = register_module("attention", std::make_shared<AdditiveAttention>(H, D, attn));
    beta = register_module("beta", std::make_shared<Linear>(H, 1));
    cell = register_module("cell", std::make_shared<LSTMCell>(E + D, H));
    out = register_module("out", std::make_shared<Linear>(H + D, V));
  }

  struct Encoded {
    Variable features;  // [B,L,D]
    Variable h, c;      // [B,H] each
  };
  /// The image with two more channels, x and y in [-1,1] (CoordConv, Liu et al. 2018): where
  /// a shape is, is then a feature like its colour, and "leftmost first" is easy to learn.
  static Tensor with_coordinates(const Tensor& images) {
    const int64_t B = images.size(0), S = images.size(2);
    std::vector<double> xy;
    for (int64_t axis = 0; axis < 2; ++axis)
      for (int64_t y = 0; y < S; ++y)
        for (int64_t x = 0; x < S; ++x) xy.push_back(2.0 * (static_cast<double>(axis ? y : x) + 0.5) / static_cast<double>(S) - 1);
    std::vector<double> all;
    const std::vector<double> px = images.to_vector();
    const size_t per = static_cast<size_t>(3 * S * S);
    for (int64_t b = 0; b < B; ++b) {
      all.insert(all.end(), px.begin() + static_cast<ptrdiff_t>(static_cast<size_t>(b) * per),
                 px.begin() + static_cast<ptrdiff_t>(static_cast<size_t>(b + 1) * per));
      all.insert(all.end(), xy.begin(), xy.end());
    }
    return tensor(all, {B, 5, S, S});
  }
  Encoded encode(const Tensor& images) {
    const int64_t B = images.size(0);
    Variable x = pool->forward(relu(conv1->forward(Variable(with_coordinates(images)))));  // [B,c1,S/2,S/2]
    x = pool->forward(relu(conv2->forward(x)));                          // [B,c2,S/4,S/4]
    x = relu(conv3->forward(x));                                         // [B,D,S/4,S/4]
    Variable f = transpose(reshape(x, {B, D, L}), 1, 2) + position;      // [B,L,D]
    Variable m = mean(f, 1);                                             // [B,D]
    return {f, tanh(init_h->forward(m)), tanh(init_c->forward(m))};
  }

  struct Step {
    Variable logits, h, c, weights;  // [B,V], [B,H], [B,H], [B,L]
  };
  Step step(const Tensor& prev, const Variable& h, const Variable& c, const Variable& features) {
    AttentionResult a = attention->forward(h, features, features);     // context [B,D], weights [B,L]
    Variable z = sigmoid(beta->forward(h)) * a.context;                // [B,D]
    auto [h2, c2] = cell->forward(concat({embed->forward(prev), z}, 1), h, c);
    return {out->forward(concat({h2, z}, 1)), h2, c2, a.weights};
  }

  /// Teacher forcing: mean cross-entropy of every caption word (and <eos>) given the true
  /// previous words.
  Variable loss(const Batch& batch) {
    Encoded enc = encode(batch.images);
    const int64_t T = batch.dec_in.size(0);
    std::vector<Variable> logits;
    Variable h = enc.h, c = enc.c;
    for (int64_t t = 0; t < T; ++t) {
      StepScope scope(static_cast<int>(t));
      Step st = step(narrow(batch.dec_in, 0, t, 1).reshape({-1}), h, c, enc.features);
      logits.push_back(st.logits);
      h = st.h, c = st.c;
    }
    return cross_entropy(reshape(stack(logits, 0), {-1, V}), batch.dec_out.reshape({-1}), kPad);
  }
};

struct Caption {
  std::vector<int64_t> words;                 // without <eos>
  std::vector<std::vector<double>> weights;  // per word (and the <eos> step): [L]
  double log_prob = 0;
};

/// Greedy decoding of a batch: the most likely word at every step, up to <eos> or max_len.
std::vector<Caption> greedy(Captioner& m, const Tensor& images, int64_t max_len) {
  NoGradGuard no_grad;
  const int64_t B = images.size(0);
  Captioner::Encoded enc = m.encode(images);
  std::vector<Caption> out(static_cast<size_t>(B));
  std::vector<bool> done(static_cast<size_t>(B), false);
  Tensor prev = full({B}, static_cast<double>(kBos), DType::I64);
  Variable h = enc.h, c = enc.c;
  for (int64_t t = 0; t < max_len; ++t) {
    Captioner::Step st = m.step(prev, h, c, enc.features);
    h = st.h, c = st.c;
    const Tensor logp = log_softmax(st.logits, 1).data();
    prev = argmax(logp, 1);
    const std::vector<int64_t> tok = prev.to_indices();
    const std::vector<double> w = st.weights.data().to_vector(), lp = logp.to_vector();
    bool all = true;
    for (size_t b = 0; b < static_cast<size_t>(B); ++b) {
      if (done[b]) continue;
      out[b].weights.emplace_back(w.begin() + static_cast<ptrdiff_t>(b * static_cast<size_t>(m.L)),
                                  w.begin() + static_cast<ptrdiff_t>((b + 1) * static_cast<size_t>(m.L)));
      out[b].log_prob += lp[b * static_cast<size_t>(m.V) + static_cast<size_t>(tok[b])];
      if (tok[b] == kEos) done[b] = true;
      else out[b].words.push_back(tok[b]);
      all = all && done[b];
    }
    if (all) break;
  }
  return out;
}

/// Beam search for one image: keeps the K most likely partial captions (sum of log
/// probabilities); a caption that ends is set aside; stops when the best finished caption is
/// more likely than every unfinished one (their scores can only fall), or at max_len.
Caption beam_search(Captioner& m, const Tensor& image, int64_t K, int64_t max_len) {
  NoGradGuard no_grad;
  Captioner::Encoded enc = m.encode(image);  // one image: [1,L,D]
  struct Hyp {
    Caption cap;
    int64_t last = kBos;
  };
  std::vector<Hyp> alive(1);
  std::vector<Caption> finished;
  Variable h = enc.h, c = enc.c;
  for (int64_t t = 0; t < max_len && !alive.empty(); ++t) {
    const int64_t k = static_cast<int64_t>(alive.size());
    std::vector<int64_t> prev;
    for (const Hyp& y : alive) prev.push_back(y.last);
    Variable feats = index_select(enc.features, 0, indices(std::vector<int64_t>(static_cast<size_t>(k), 0)));
    Captioner::Step st = m.step(indices(prev), h, c, feats);
    const std::vector<double> lp = log_softmax(st.logits, 1).data().to_vector(), w = st.weights.data().to_vector();
    struct Cand {
      double score;
      int64_t row, word;
    };
    std::vector<Cand> cands;
    for (int64_t r = 0; r < k; ++r)
      for (int64_t v = kEos; v < m.V; ++v)
        cands.push_back({alive[static_cast<size_t>(r)].cap.log_prob + lp[static_cast<size_t>(r * m.V + v)], r, v});
    const size_t keep = std::min(cands.size(), static_cast<size_t>(K));
    std::partial_sort(cands.begin(), cands.begin() + static_cast<ptrdiff_t>(keep), cands.end(),
                      [](const Cand& a, const Cand& b) { return a.score > b.score; });
    std::vector<Hyp> next;
    std::vector<int64_t> rows;
    for (size_t i = 0; i < keep; ++i) {
      const Cand& cd = cands[i];
      Hyp y = alive[static_cast<size_t>(cd.row)];
      y.cap.log_prob = cd.score;
      y.cap.weights.emplace_back(w.begin() + cd.row * m.L, w.begin() + (cd.row + 1) * m.L);
      if (cd.word == kEos) {
        finished.push_back(std::move(y.cap));
        continue;
      }
      y.cap.words.push_back(cd.word);
      y.last = cd.word;
      next.push_back(std::move(y));
      rows.push_back(cd.row);
    }
    alive = std::move(next);
    if (alive.empty()) break;
    double best_finished = -INFINITY, best_alive = -INFINITY;
    for (const Caption& f : finished) best_finished = std::max(best_finished, f.log_prob);
    for (const Hyp& y : alive) best_alive = std::max(best_alive, y.cap.log_prob);
    if (best_finished >= best_alive) break;
    const Tensor sel = indices(rows);
    h = index_select(st.h, 0, sel), c = index_select(st.c, 0, sel);
  }
  for (Hyp& y : alive) finished.push_back(std::move(y.cap));  // max_len reached: unfinished count too
  return *std::max_element(finished.begin(), finished.end(),
                           [](const Caption& a, const Caption& b) { return a.log_prob < b.log_prob; });
}

// ---- scores ---------------------------------------------------------------------------------

/// Corpus BLEU-4 (Papineni et al. 2002), one reference per caption: the geometric mean of the
/// clipped 1..4-gram precisions over the whole set, times the brevity penalty
/// min(1, exp(1 - reference length / candidate length)).
double bleu4(const std::vector<std::vector<int64_t>>& cands, const std::vector<std::vector<int64_t>>& refs) {
  double match[4] = {0, 0, 0, 0}, total[4] = {0, 0, 0, 0}, cand_len = 0, ref_len = 0;
  for (size_t i = 0; i < cands.size(); ++i) {
    const auto& c = cands[i];
    const auto& r = refs[i];
    cand_len += static_cast<double>(c.size());
    ref_len += static_cast<double>(r.size());
    for (size_t n = 1; n <= 4; ++n) {
      std::map<std::vector<int64_t>, int64_t> rc, cc;
      for (size_t j = 0; j + n <= r.size(); ++j) ++rc[{r.begin() + static_cast<ptrdiff_t>(j), r.begin() + static_cast<ptrdiff_t>(j + n)}];
      for (size_t j = 0; j + n <= c.size(); ++j) ++cc[{c.begin() + static_cast<ptrdiff_t>(j), c.begin() + static_cast<ptrdiff_t>(j + n)}];
      for (const auto& [gram, cnt] : cc) {
        auto it = rc.find(gram);
        match[n - 1] += static_cast<double>(std::min(cnt, it == rc.end() ? int64_t{0} : it->second));
        total[n - 1] += static_cast<double>(cnt);
      }
    }
  }
  double log_p = 0;
  for (int n = 0; n < 4; ++n) {
    if (match[n] == 0 || total[n] == 0) return 0.0;
    log_p += 0.25 * std::log(match[n] / total[n]);
  }
  const double bp = cand_len >= ref_len ? 1.0 : std::exp(1.0 - ref_len / std::max(cand_len, 1.0));
  return bp * std::exp(log_p);
}

struct Score {
  double exact = 0, bleu = 0;
  double pair_named = 0;  // novel scenes: share of captions that name the held-out pair
  double count = 0;       // share of captions with the right number of shapes (and well-formed)
  double size = 0, colour = 0, kind = 0;  // of the shapes of those captions: share with that word right
};

/// A caption's shapes as (size, colour, shape) word ids, or nothing if it does not parse as
/// "a <size> <colour> <shape>" joined by "left of".
std::optional<std::vector<std::array<int64_t, 3>>> parse_objects(const std::vector<int64_t>& w, const Vocab& vocab) {
  std::vector<std::array<int64_t, 3>> out;
  for (size_t at = 0;; at += 6) {
    if (at + 4 > w.size() || w[at] != vocab.id.at("a")) return std::nullopt;
    out.push_back({w[at + 1], w[at + 2], w[at + 3]});
    if (at + 4 == w.size()) return out;
    if (at + 6 > w.size() || w[at + 4] != vocab.id.at("left") || w[at + 5] != vocab.id.at("of")) return std::nullopt;
  }
}

Score score(const std::vector<Caption>& caps, const std::vector<Scene>& scenes, const std::string& held_pair,
            const Vocab& vocab) {
  Score s;
  std::vector<std::vector<int64_t>> c, r;
  double shapes = 0;
  for (size_t i = 0; i < caps.size(); ++i) {
    c.push_back(caps[i].words);
    r.push_back(scenes[i].caption);
    s.exact += caps[i].words == scenes[i].caption;
    if (!held_pair.empty()) s.pair_named += vocab.text(caps[i].words).find(held_pair) != std::string::npos;
    const auto got = parse_objects(caps[i].words, vocab), want = parse_objects(scenes[i].caption, vocab);
    if (!got || got->size() != want->size()) continue;
    s.count += 1;
    for (size_t j = 0; j < got->size(); ++j) {
      shapes += 1;
      s.size += (*got)[j][0] == (*want)[j][0];
      s.colour += (*got)[j][1] == (*want)[j][1];
      s.kind += (*got)[j][2] == (*want)[j][2];
    }
  }
  s.exact /= static_cast<double>(caps.size());
  s.pair_named /= static_cast<double>(caps.size());
  s.count /= static_cast<double>(caps.size());
  for (double* x : {&s.size, &s.colour, &s.kind}) *x /= std::max(shapes, 1.0);
  s.bleu = bleu4(c, r);
  return s;
}

std::vector<Caption> decode_all(Captioner& m, const std::vector<Scene>& scenes, int64_t S, int64_t beam, int64_t max_len) {
  std::vector<Caption> out;
  for (size_t at = 0; at < scenes.size(); at += 128) {
    std::vector<size_t> idx;
    for (size_t i = at; i < std::min(scenes.size(), at + 128); ++i) idx.push_back(i);
    const Tensor images = make_batch(scenes, idx, S).images;
    if (beam <= 1) {
      for (Caption& c : greedy(m, images, max_len)) out.push_back(std::move(c));
    } else {
      for (int64_t b = 0; b < images.size(0); ++b) out.push_back(beam_search(m, narrow(images, 0, b, 1), beam, max_len));
    }
  }
  return out;
}

}  // namespace

int run(int argc, char** argv) {
  Cli cli(argc, argv,
          "image captioning, shaped like Show, Attend and Tell: a CNN encoder and an LSTM decoder with attention over\n"
          "the CNN's feature map, on generated scenes of 1-3 coloured shapes; greedy and beam-search decoding; exact\n"
          "captions and BLEU-4 on held-out scenes, also on scenes with a colour-shape pair never seen in training");
  const int64_t S = cli.get_int("size", 24, "image side S in pixels (a multiple of 4, at least 12)");
  const int64_t max_shapes = cli.get_int("max-shapes", 3, "shapes per scene: 1 to this (at most 3)");
  const std::string hold_out = cli.get_string("hold-out", "blue triangle",
                                              "'<colour> <shape>' kept out of training (tested apart); 'none' for none");
  const int64_t n_train = cli.get_int("train", 4000, "training scenes");
  const int64_t n_test = cli.get_int("test", 300, "held-out test scenes (and as many with the held-out pair)");
  const int64_t steps = cli.get_int("steps", 2000, "training steps");
  const int64_t B = cli.get_int("batch", 32, "batch size B");
  const double lr = cli.get_double("lr", 6e-3, "Adam learning rate (cosine decay to 5% of it)");
  const int64_t c1 = cli.get_int("channels1", 16, "encoder: channels of the first convolution");
  const int64_t c2 = cli.get_int("channels2", 32, "encoder: channels of the second convolution");
  const int64_t D = cli.get_int("features", 32, "encoder: features D per feature-map location");
  const int64_t E = cli.get_int("embed", 16, "word embedding size E");
  const int64_t H = cli.get_int("hidden", 64, "decoder LSTM hidden size H");
  const int64_t A = cli.get_int("attn", 32, "additive attention size");
  const int64_t beam = cli.get_int("beam", 3, "beam size K for beam search (1 = greedy only)");
  const int64_t n_show = cli.get_int("figures", 6, "test images in the attention figure");
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out_dir = cli.out_path();
  cli.done();
  UNROLL_CHECK(S >= 12 && S % 4 == 0 && S <= 64, "caption: --size must be a multiple of 4 in 12..64, got {}", S);
  UNROLL_CHECK(max_shapes >= 1 && max_shapes <= kColumns, "caption: --max-shapes must be 1..3, got {}", max_shapes);
  UNROLL_CHECK(n_train > 0 && n_test > 0 && steps > 0 && B > 0 && c1 > 0 && c2 > 0 && D > 0 && E > 0 && H > 0 && A > 0,
               "caption: sizes and counts must be positive");
  UNROLL_CHECK(beam >= 1 && beam <= 20, "caption: --beam must be 1..20, got {}", beam);
  UNROLL_CHECK(n_show >= 0, "caption: --figures must be >= 0");
  SceneConfig cfg{.S = S, .max_shapes = max_shapes};
  if (hold_out != "none") {
    std::istringstream words(hold_out);
    std::string colour, kind, extra;
    words >> colour >> kind >> extra;
    const auto ci = std::find(kColours.begin(), kColours.end(), colour);
    const auto ki = std::find(kShapes.begin(), kShapes.end(), kind);
    UNROLL_CHECK(ci != kColours.end() && ki != kShapes.end() && extra.empty(),
                 "caption: --hold-out must be '<colour> <shape>' (colours red green blue yellow; shapes circle square "
                 "triangle) or 'none', got '{}'",
                 hold_out);
    cfg.held_colour = ci - kColours.begin();
    cfg.held_kind = ki - kShapes.begin();
  }
  const std::string held_pair = hold_out == "none" ? "" : hold_out;
  plot::make_dirs(out_dir);
  manual_seed(seed);
  const Vocab vocab;

  // Data: training and test scenes from one generator (so all different), then the novel set.
  Generator gen(seed + 1);
  const std::vector<Scene> train = make_scenes(n_train, cfg, false, gen, vocab);
  const std::vector<Scene> test = make_scenes(n_test, cfg, false, gen, vocab);
  const std::vector<Scene> novel = held_pair.empty() ? std::vector<Scene>{} : make_scenes(n_test, cfg, true, gen, vocab);
  const int64_t max_len = 4 * max_shapes + 2 * (max_shapes - 1) + 1;  // words and <eos>
  const int64_t n_captions = [&] {
    int64_t total = 0, p = 1;  // sum over n of (3 shapes x 4 colours x 2 sizes)^n
    for (int64_t n = 1; n <= max_shapes; ++n) total += (p *= 3 * 4 * 2);
    return total;
  }();
  fmt::print("data: {} training scenes, {} test scenes{} of {}x{} RGB, 1-{} shapes; vocabulary {} words, up to {} "
             "words a caption; {} possible captions\n",
             n_train, n_test, held_pair.empty() ? "" : fmt::format(" + {} with a '{}' (never in training)", n_test, held_pair),
             S, S, max_shapes, vocab.size(), max_len - 1, n_captions);
  fmt::print("  e.g. \"{}\"\n       \"{}\"\n", vocab.text(train[0].caption), vocab.text(train[1].caption));

  Captioner model(vocab.size(), S, c1, c2, D, E, H, A);
  optim::Adam opt(model.parameters(), {.lr = lr});
  optim::CosineAnnealingLR schedule(opt, steps, 0.05 * lr);  // the learning rate decays to 5% along a cosine
  fmt::print("model: CNN {}->{}->{}->{} over {} locations, LSTM decoder H={} with additive attention, {} parameters\n", 3,
             c1, c2, D, model.L, H, model.num_parameters());
  std::fflush(stdout);  // the progress line goes to stderr

  // Training: teacher forcing on shuffled batches.
  Progress progress("caption", steps, !json);
  std::vector<double> losses;
  std::vector<size_t> perm(train.size());
  std::iota(perm.begin(), perm.end(), size_t{0});
  size_t at = perm.size();
  Generator order(seed + 2);
  for (int64_t step = 1; step <= steps; ++step) {
    if (at + static_cast<size_t>(B) > perm.size()) {
      for (size_t i = perm.size(); i > 1; --i)
        std::swap(perm[i - 1], perm[static_cast<size_t>(order.randint(0, static_cast<int64_t>(i)))]);
      at = 0;
    }
    const size_t take = std::min(static_cast<size_t>(B), perm.size());
    const std::vector<size_t> idx(perm.begin() + static_cast<ptrdiff_t>(at),
                                  perm.begin() + static_cast<ptrdiff_t>(at + take));
    at += take;
    Variable loss = model.loss(make_batch(train, idx, S));
    opt.zero_grad();
    loss.backward();
    clip_grad_norm(model.parameters(), 5.0);
    opt.step();
    schedule.step();
    losses.push_back(loss.item());
    progress.update(step, loss.item());
  }
  progress.finish();
  const double train_seconds = progress.seconds();

  // Evaluation: greedy and beam search on both held-out sets.
  Progress timer("decode", 1, false);
  const std::vector<Caption> test_greedy = decode_all(model, test, S, 1, max_len);
  const std::vector<Caption> test_beam = beam > 1 ? decode_all(model, test, S, beam, max_len) : test_greedy;
  const Score tg = score(test_greedy, test, "", vocab), tb = score(test_beam, test, "", vocab);
  Score ng, nb;
  std::vector<Caption> novel_greedy;
  if (!novel.empty()) {
    novel_greedy = decode_all(model, novel, S, 1, max_len);
    ng = score(novel_greedy, novel, held_pair, vocab);
    nb = beam > 1 ? score(decode_all(model, novel, S, beam, max_len), novel, held_pair, vocab) : ng;
  }
  const double decode_seconds = timer.seconds();
  fmt::print("\ntraining: loss {:.3f} -> {:.3f} in {} steps, {:.1f}s; decoding {:.1f}s\n", losses.front(), losses.back(),
             steps, train_seconds, decode_seconds);
  fmt::print("held-out scenes ({}):              exact caption greedy {:.3f}, beam {} {:.3f};  BLEU-4 greedy {:.3f}, "
             "beam {:.3f}\n",
             n_test, tg.exact, beam, tb.exact, tg.bleu, tb.bleu);
  if (!novel.empty())
    fmt::print("scenes with a '{}' ({}): exact caption greedy {:.3f}, beam {} {:.3f};  BLEU-4 greedy {:.3f}, beam "
               "{:.3f};  '{}' named in {:.1f}% (greedy)\n",
               held_pair, n_test, ng.exact, beam, nb.exact, ng.bleu, nb.bleu, held_pair, 100 * ng.pair_named);
  auto words_line = [](const char* set, const Score& g) {
    fmt::print("  {:<7} greedy: shape count right {:.3f}; of those shapes: size {:.3f}, colour {:.3f}, shape {:.3f}\n", set,
               g.count, g.size, g.colour, g.kind);
  };
  words_line("test", tg);
  if (!novel.empty()) words_line("novel", ng);
  const size_t n_print = std::min<size_t>(5, test.size());
  for (size_t i = 0; i < n_print; ++i)
    fmt::print("  {} \"{}\"{}\n", test_greedy[i].words == test[i].caption ? "ok   " : "WRONG",
               vocab.text(test_greedy[i].words),
               test_greedy[i].words == test[i].caption ? "" : fmt::format("  (truth: \"{}\")", vocab.text(test[i].caption)));
  for (size_t i = 0; i < std::min<size_t>(3, novel.size()); ++i)
    fmt::print("  {} \"{}\"{}\n", novel_greedy[i].words == novel[i].caption ? "ok   " : "WRONG",
               vocab.text(novel_greedy[i].words),
               novel_greedy[i].words == novel[i].caption ? ""
                                                         : fmt::format("  (truth: \"{}\")", vocab.text(novel[i].caption)));

  // Figures: per shown image, the image and, per generated word, where the decoder looked.
  std::vector<std::string> figures;
  plot::ImageGrid grid;
  grid.title = "captions by greedy decoding, and the attention of each word over the image";
  grid.notes.push_back(fmt::format("each word's panel is bright where its attention weight is high ({}x{} feature map); "
                                   "test scenes, then scenes with a '{}'",
                                   S / 4, S / 4, held_pair.empty() ? "-" : held_pair));
  grid.columns = max_len + 1;
  grid.cell = 54;
  auto add_row = [&](const Scene& sc, const Caption& cap, const std::string& set) {
    const size_t SS = static_cast<size_t>(S * S);
    plot::ImagePanel img;
    img.height = img.width = S;
    img.channels = 3;
    for (size_t p = 0; p < SS; ++p)
      for (size_t ch = 0; ch < 3; ++ch) img.pixels.push_back(sc.pixels[ch * SS + p]);
    const bool ok = cap.words == sc.caption;
    img.lines = {set, ok ? "exact" : "wrong"};
    img.line_color = ok ? "#1a7f37" : "#c62828";
    grid.row_headers.push_back(fmt::format("\"{}\"{}", vocab.text(cap.words),
                                           ok ? "" : fmt::format("   (truth: \"{}\")", vocab.text(sc.caption))));
    grid.panels.push_back(img);
    for (size_t t = 0; t < static_cast<size_t>(max_len); ++t) {
      plot::ImagePanel p = img;
      p.lines.clear();
      p.line_color.clear();
      if (t < cap.weights.size()) {
        p.overlay_height = p.overlay_width = S / 4;
        p.overlay = cap.weights[t];
        p.lines = {t < cap.words.size() ? vocab.words[static_cast<size_t>(cap.words[t])] : "<eos>"};
      } else {
        p.blank = true;  // the caption has ended
      }
      grid.panels.push_back(std::move(p));
    }
  };
  const size_t n_novel = novel.empty() ? 0 : std::min<size_t>(novel.size(), static_cast<size_t>(n_show) / 3);
  const size_t n_plain = std::min(test.size(), static_cast<size_t>(n_show) - n_novel);
  for (size_t i = 0; i < n_plain; ++i) add_row(test[i], test_greedy[i], "test");
  for (size_t i = 0; i < n_novel; ++i) add_row(novel[i], novel_greedy[i], "novel");
  figures.push_back(out_dir + "/attention.svg");
  grid.save(figures.back());
  plot::LinePlot lp;
  lp.title = "captioning: training loss (teacher forcing)";
  lp.xlabel = "step";
  lp.ylabel = "cross-entropy per word (nats)";
  lp.log_y = true;
  lp.add("loss", losses);
  figures.push_back(out_dir + "/loss.svg");
  lp.save(figures.back());
  fmt::print("\nfigures:\n");
  for (const std::string& f : figures) fmt::print("  {}\n", f);

  if (json) {
    JsonLine line;
    line.add("test_exact_greedy", tg.exact).add("test_exact_beam", tb.exact);
    line.add("test_bleu_greedy", tg.bleu).add("test_bleu_beam", tb.bleu);
    line.add("test_count", tg.count).add("test_size", tg.size).add("test_colour", tg.colour).add("test_shape", tg.kind);
    if (!novel.empty()) {
      line.add("novel_exact_greedy", ng.exact).add("novel_exact_beam", nb.exact);
      line.add("novel_bleu_greedy", ng.bleu).add("novel_bleu_beam", nb.bleu);
      line.add("novel_pair_named", ng.pair_named).add("novel_shape", ng.kind).add("held_out", held_pair);
    }
    line.add("beam", static_cast<double>(beam)).add("chance_exact", 1.0 / static_cast<double>(n_captions));
    line.add("first_loss", losses.front()).add("final_loss", losses.back());
    line.add("params", static_cast<double>(model.num_parameters())).add("seconds", train_seconds);
    line.add("decode_seconds", decode_seconds);
    fmt::print("{}\n", line.str());
  }
  return 0;
}

int main(int argc, char** argv) {
  return guarded_main("caption", argc, argv, run, on_error<Error>(ErrorPrefix::none, 1));
}
