#include "common/tasks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace unroll::examples {

AddingBatch adding_batch(int64_t T, int64_t B, Generator& gen) {
  UNROLL_CHECK(T >= 2 && B >= 1, "adding_batch: needs T >= 2 and B >= 1, got T={} B={}", T, B);
  std::vector<double> x(static_cast<size_t>(T * B * 2), 0.0), y(static_cast<size_t>(B));
  auto at = [&](int64_t t, int64_t b, int64_t k) -> double& { return x[static_cast<size_t>((t * B + b) * 2 + k)]; };
  const int64_t half = T / 2;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) at(t, b, 0) = gen.uniform();
    const int64_t first = gen.randint(0, half), second = gen.randint(half, T);
    at(first, b, 1) = 1.0;
    at(second, b, 1) = 1.0;
    y[static_cast<size_t>(b)] = at(first, b, 0) + at(second, b, 0);
  }
  return {tensor(x, {T, B, 2}), tensor(y, {B, 1})};
}

const char* cell_kind_name(CellKind kind) {
  switch (kind) {
    case CellKind::Rnn: return "tanh RNN";
    case CellKind::Lstm: return "LSTM";
    case CellKind::Gru: return "GRU";
  }
  return "?";
}

static std::shared_ptr<RecurrentCell> make_cell(CellKind kind, int64_t I, int64_t H) {
  switch (kind) {
    case CellKind::Rnn: return std::make_shared<RNNCell>(I, H);
    case CellKind::Lstm: return std::make_shared<LSTMCell>(I, H);
    case CellKind::Gru: return std::make_shared<GRUCell>(I, H);
  }
  return nullptr;
}

LastStepRegressor::LastStepRegressor(CellKind kind, int64_t input_size, int64_t hidden_size)
    : kind_(kind),
      cell_(register_module("cell", make_cell(kind, input_size, hidden_size))),
      head_(register_module("head", std::make_shared<Linear>(hidden_size, 1))) {}

Variable LastStepRegressor::forward(const Variable& x, std::vector<Variable>* hs) {
  const int64_t T = x.size(0);
  State state;  // empty: the cell's zero state
  for (int64_t t = 0; t < T; ++t) {
    StepScope step(static_cast<int>(t));
    Variable x_t = squeeze(narrow(x, 0, t, 1), 0);  // [B,I]
    state = cell_->forward(x_t, state);             // state[0] = h_t [B,H]
    if (hs) hs->push_back(state[0]);
  }
  return head_->forward(state[0]);  // [B,1]
}

double evaluate(LastStepRegressor& model, const AddingBatch& batch) {
  NoGradGuard no_grad;
  return mse_loss(model.forward(Variable(batch.x)), batch.y).item();
}

TrainLog train_adding(LastStepRegressor& model, const AddingConfig& cfg, const std::string& label) {
  UNROLL_CHECK(cfg.steps >= 1 && cfg.log_every >= 1, "train_adding: steps {} and log_every {} must be >= 1",
               cfg.steps, cfg.log_every);
  Generator data_gen(cfg.seed), test_gen(cfg.seed + 1);
  const AddingBatch test = adding_batch(cfg.T, cfg.test_size, test_gen);
  const std::vector<Variable> params = model.parameters();
  std::unique_ptr<optim::Optimizer> opt;
  if (cfg.optim == OptimKind::Adam) opt = std::make_unique<optim::Adam>(params, cfg.lr);
  else opt = std::make_unique<optim::SGD>(params, cfg.lr);

  TrainLog log;
  log.params = model.num_parameters();
  Progress progress(label, cfg.steps, cfg.progress);
  double window = 0;
  int64_t in_window = 0;
  for (int64_t step = 1; step <= cfg.steps; ++step) {
    const AddingBatch batch = adding_batch(cfg.T, cfg.batch, data_gen);
    opt->zero_grad();
    Variable loss = mse_loss(model.forward(Variable(batch.x)), batch.y);  // forward: T steps recorded
    loss.backward();                                                      // BPTT
    const double max_norm = cfg.clip > 0 ? cfg.clip : std::numeric_limits<double>::infinity();
    log.grad_norm.push_back(clip_grad_norm(params, max_norm));            // the norm before clipping
    opt->step();
    if (cfg.after_step) cfg.after_step(step);

    log.step_loss.push_back(loss.item());
    window += loss.item();
    ++in_window;
    if (step % cfg.log_every == 0 || step == cfg.steps) {
      log.step.push_back(static_cast<double>(step));
      log.loss.push_back(window / static_cast<double>(in_window));
      window = 0;
      in_window = 0;
    }
    progress.update(step, loss.item());
  }
  progress.finish();
  log.test_mse = evaluate(model, test);
  if (!std::isfinite(log.test_mse)) log.test_mse = std::numeric_limits<double>::quiet_NaN();
  log.seconds = progress.seconds();
  return log;
}

std::vector<double> hidden_grad_norms(LastStepRegressor& model, const AddingBatch& batch) {
  const DType dtype = model.parameters().front().dtype();
  model.to(DType::F64);  // vanished gradients reach 1e-60 and below: past float32's range
  std::vector<Variable> hs;
  Variable loss = mse_loss(model.forward(Variable(batch.x.to(DType::F64)), &hs), batch.y.to(DType::F64));
  std::vector<double> norms(hs.size(), 0.0);
  for (size_t t = 0; t < hs.size(); ++t)
    hs[t].register_hook([&norms, t](const Tensor& g) { norms[t] = std::sqrt(sum(g * g).item()); });
  loss.backward();
  model.zero_grad();
  model.to(dtype);
  return norms;
}

std::vector<double> iota_x(size_t n) {
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<double>(i);
  return x;
}

const char* cell_key(CellKind kind) {
  switch (kind) {
    case CellKind::Rnn: return "rnn";
    case CellKind::Lstm: return "lstm";
    case CellKind::Gru: return "gru";
  }
  return "?";
}

double first_to_last(const std::vector<double>& norms) {
  return norms.empty() ? std::numeric_limits<double>::quiet_NaN() : norms.front() / norms.back();
}

void set_forget_bias(LSTMCell& cell, double value) {
  UNROLL_CHECK(cell.bias_ih.defined() && cell.bias_hh.defined(), "set_forget_bias: the LSTM cell has no bias");
  UNROLL_CHECK(std::isfinite(value), "set_forget_bias: the bias must be finite, got {}", value);
  const int64_t H = cell.hidden_size();
  std::vector<double> bi = cell.bias_ih.data().to_vector(), bh = cell.bias_hh.data().to_vector();
  for (int64_t j = H; j < 2 * H; ++j) {
    bi[static_cast<size_t>(j)] = value;
    bh[static_cast<size_t>(j)] = 0.0;
  }
  const DType dtype = cell.bias_ih.dtype();
  copy_(cell.bias_ih.data(), tensor(bi, {4 * H}, dtype));
  copy_(cell.bias_hh.data(), tensor(bh, {4 * H}, dtype));
}

double parse_forget_bias(const std::string& text) {
  if (text == "pytorch") return std::numeric_limits<double>::quiet_NaN();
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  UNROLL_CHECK(used == text.size() && used > 0 && std::isfinite(v),
               "--forget-bias: expected a number or 'pytorch', got '{}'", text);
  return v;
}

std::string forget_bias_text(double forget_bias) {
  return std::isnan(forget_bias) ? std::string("PyTorch's init (U(-1/sqrt(H), 1/sqrt(H)))") : fmt::format("{}", forget_bias);
}

std::vector<CellKind> parse_cells(const std::string& text) {
  std::vector<CellKind> cells;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string name = text.substr(start, comma - start);
    bool found = false;
    for (CellKind k : kAllCells)
      if (name == cell_key(k)) {
        UNROLL_CHECK(std::find(cells.begin(), cells.end(), k) == cells.end(), "--cells: '{}' given twice in '{}'",
                     name, text);
        cells.push_back(k), found = true;
      }
    UNROLL_CHECK(found, "--cells: unknown cell '{}' in '{}' (expected a comma-separated list of rnn, lstm, gru)",
                 name, text);
    start = comma + 1;
  }
  return cells;
}

std::vector<CellRun> train_all_cells(const AddingConfig& cfg, const AddingBatch* probe) {
  std::vector<CellRun> runs;
  for (CellKind kind : cfg.cells) {
    manual_seed(cfg.seed);
    CellRun r{kind, std::make_unique<LastStepRegressor>(kind, 2, cfg.hidden), {}, {}, {}};
    if (kind == CellKind::Lstm && !std::isnan(cfg.forget_bias))
      set_forget_bias(dynamic_cast<LSTMCell&>(r.model->cell()), cfg.forget_bias);
    if (probe) r.grad_init = hidden_grad_norms(*r.model, *probe);
    r.log = train_adding(*r.model, cfg, cell_kind_name(kind));
    if (probe) r.grad_trained = hidden_grad_norms(*r.model, *probe);
    runs.push_back(std::move(r));
  }
  return runs;
}

void print_adding_table(const std::vector<CellRun>& runs) {
  fmt::print("{:<10} {:>8} {:>12} {:>13} {:>9}\n", "model", "params", "test MSE", "baseline/MSE", "time");
  for (const CellRun& r : runs)
    fmt::print("{:<10} {:>8} {:>12.5f} {:>12.1f}x {:>8.1f}s\n", cell_kind_name(r.kind), r.log.params,
               r.log.test_mse, kAddingBaseline / r.log.test_mse, r.log.seconds);
  fmt::print("{:<10} {:>8} {:>12.5f} {:>12.1f}x\n", "baseline", "-", kAddingBaseline, 1.0);
}

static const char* cell_colour(CellKind kind) {
  switch (kind) {
    case CellKind::Rnn: return "#d62728";
    case CellKind::Lstm: return "#1f77b4";
    case CellKind::Gru: return "#2ca02c";
  }
  return "#000000";
}

plot::LinePlot adding_loss_plot(const std::vector<CellRun>& runs, const AddingConfig& cfg) {
  plot::LinePlot p;
  p.title = fmt::format("adding problem, T = {}: train MSE (mean of {} steps)", cfg.T, cfg.log_every);
  p.xlabel = "training step";
  p.ylabel = "MSE";
  p.log_y = true;
  for (const CellRun& r : runs) {
    p.add(cell_kind_name(r.kind), r.log.step, r.log.loss);
    p.series.back().color = cell_colour(r.kind);
  }
  p.add_reference("baseline 1/6", 0.0, static_cast<double>(cfg.steps), kAddingBaseline);
  return p;
}

plot::LinePlot gradient_flow_plot(const std::vector<CellRun>& runs) {
  plot::LinePlot p;
  const size_t T = runs.empty() ? 0 : std::max(runs.front().grad_init.size(), runs.front().grad_trained.size());
  p.title = fmt::format("gradient reaching step t from the loss at step {}", T > 0 ? T - 1 : 0);
  p.xlabel = "time step t";
  p.ylabel = "||dL/dh_t|| / ||dL/dh_T-1||";
  p.log_y = true;
  auto relative = [](std::vector<double> v) {
    const double last = v.back();
    for (double& x : v) x /= last;
    return v;
  };
  for (const CellRun& r : runs) {
    if (!r.grad_trained.empty()) {
      p.add(fmt::format("{} trained", cell_kind_name(r.kind)), iota_x(r.grad_trained.size()), relative(r.grad_trained));
      p.series.back().color = cell_colour(r.kind);
    }
    if (!r.grad_init.empty()) {
      p.add(fmt::format("{} at init", cell_kind_name(r.kind)), iota_x(r.grad_init.size()), relative(r.grad_init), true);
      p.series.back().color = cell_colour(r.kind);
    }
  }
  return p;
}

void print_gradient_ratios(const std::vector<CellRun>& runs) {
  const size_t T = runs.empty() ? 0 : runs.front().grad_init.size();
  fmt::print("||dL/dh_0|| / ||dL/dh_{}||: the share of the gradient that reaches the first step\n", T > 0 ? T - 1 : 0);
  fmt::print("{:<10} {:>12} {:>12}\n", "model", "at init", "trained");
  for (const CellRun& r : runs)
    fmt::print("{:<10} {:>12.3e} {:>12.3e}\n", cell_kind_name(r.kind), first_to_last(r.grad_init),
               first_to_last(r.grad_trained));
}

double median_of(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  for (double& x : v)
    if (std::isnan(x)) x = std::numeric_limits<double>::infinity();
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int64_t solved_count(const std::vector<double>& mse) {
  return std::count_if(mse.begin(), mse.end(), [](double m) { return m < kAddingSolved; });
}

void print_seed_sweep(const std::vector<SeedSweep>& sweep, uint64_t first_seed) {
  const size_t n = sweep.empty() ? 0 : sweep.front().mse.size();
  fmt::print("held-out MSE over seeds {}..{}: median [min, max], and runs with MSE < {} (solved)\n", first_seed,
             first_seed + n - 1, kAddingSolved);
  fmt::print("{:<10} {:>10} {:>23} {:>8}   per seed\n", "model", "median", "[min, max]", "solved");
  for (const SeedSweep& s : sweep) {
    const auto [lo, hi] = std::minmax_element(s.mse.begin(), s.mse.end());
    std::string per;
    for (double m : s.mse) per += fmt::format(" {:.2g}", m);
    fmt::print("{:<10} {:>10.2g} {:>23} {:>5}/{:<2}  {}\n", cell_kind_name(s.kind), median_of(s.mse),
               fmt::format("[{:.2g}, {:.2g}]", *lo, *hi), solved_count(s.mse), s.mse.size(), per);
  }
  fmt::print("{:<10} {:>10.3f}\n", "baseline", kAddingBaseline);
}

void add_sweep_metrics(JsonLine& json, const std::vector<SeedSweep>& sweep) {
  for (const SeedSweep& s : sweep) {
    const std::string key = cell_key(s.kind);
    const auto [lo, hi] = std::minmax_element(s.mse.begin(), s.mse.end());
    json.add(key + "_median", median_of(s.mse)).add(key + "_min", *lo).add(key + "_max", *hi);
    json.add(key + "_solved", static_cast<double>(solved_count(s.mse)));
  }
}

void add_metrics(JsonLine& json, const std::vector<CellRun>& runs) {
  for (const CellRun& r : runs) {
    const std::string key = cell_key(r.kind);
    json.add(key + "_test_mse", r.log.test_mse).add(key + "_seconds", r.log.seconds);
    if (!r.grad_init.empty()) json.add(key + "_ratio_init", first_to_last(r.grad_init));
    if (!r.grad_trained.empty()) json.add(key + "_ratio_trained", first_to_last(r.grad_trained));
  }
}


// ---- text for the language examples -------------------------------------------------------

namespace {
constexpr const char* kEssay = R"ESSAY(On remembering: a short essay about recurrent networks

A recurrent network reads a sequence one element at a time. At every step it combines the
new input with a summary of everything it has read so far, and it writes a new summary.
That summary is called the hidden state. The same weights are used at every step, so a
network that has learned to read the first word of a sentence has also learned to read
the last one. This is the whole idea, and it is a simple one: a loop with a memory.

To train such a network we unroll the loop. We write the computation out step by step,
as if the network were a very deep stack of layers that all share their weights. Then we
ask how the loss at the end depends on the weights at the start, and the chain rule
answers, one step at a time, walking backwards through the unrolled graph. This is called
back-propagation through time. It is not a new algorithm. It is the old one, applied to a
graph that happens to be long and thin.

The trouble with a long graph is that the gradient must travel through every step. At
each step it is multiplied by the derivative of the update. If those factors are a little
smaller than one, the gradient fades away, and the network cannot learn that the first
word of a paragraph matters for the last. If they are a little larger than one, the
gradient grows without bound, and a single unlucky step can throw the weights far from
where they were. The first problem is called the vanishing gradient, the second the
exploding gradient. Clipping the norm of the gradient tames the second. The first needs a
better cell.

The long short-term memory cell is that better cell. Next to the hidden state it keeps a
second vector, the cell state, and it changes that vector only by adding to it and by
scaling it with a forget gate. When the forget gate is open, the cell state flows from one
step to the next almost unchanged, and so does its gradient. Three other gates decide what
to write, what to read, and what to show. Each gate is a small layer with a sigmoid, a
number between zero and one that says how much to let through. The gated recurrent unit is
a lighter cousin: it has two gates instead of three and no separate cell state, and in
practice it often learns just as well.

A character model is a good place to watch all of this happen. It reads text one letter
at a time and predicts the next letter. At first it knows nothing, so it gives every
character the same chance, and its loss is the logarithm of the size of the alphabet.
Soon it learns which letters are common. Then it learns that a space follows a word, that
a capital letter follows a full stop, that the letter q is followed by u. Later it learns
short words, then longer ones, and finally it begins to close its brackets and to end its
sentences. None of these rules is written anywhere in the program. They are found by
gradient descent, one small step at a time, in the weights of the loop.

We cannot train on a whole book at once, because the unrolled graph would not fit in
memory. Instead we cut the text into chunks of a few dozen characters. We run the network
over one chunk, compute the loss, and walk back through that chunk only. Then we keep the
hidden state, cut it loose from the graph, and carry it into the next chunk. The values
flow on; the gradients stop at the border. This is truncated back-propagation through
time. The network can still remember what it read long ago, but it only learns from the
recent past.

When training is done we can let the network write. We give it a few letters to start,
read its guess for the next letter as a set of probabilities, draw one letter at random,
and feed that letter back in as the next input. A temperature below one makes the model
careful and repetitive; a temperature above one makes it bold and strange. Either way the
text it writes is a mirror of the text it read: it copies the rhythm of the words, the
length of the sentences and the habits of the author, long before it copies any meaning.

Consider what the network sees when it reads the word "memory". After the letter m it has
no idea what comes next: almost any vowel would do. After "me" the choices narrow, and
after "mem" there are only a few words left in the text that fit. By the time it reaches
"memo" the next letter is nearly certain. The loss of a character model is lowest in the
middle and at the end of long words, and highest at their start, where a new thought
begins. Spaces are easy, because most words in English are short. Capital letters are
hard, because they depend on where the sentence began, and that may have been many steps
ago.

This is where the length of the chunks matters. If every chunk is only ten characters
long, the gradient can never reach back further than ten steps, and the network has no
reason to keep anything in its state for longer. If the chunks are a few hundred
characters long, each step of training is slower, and the first steps of each chunk are
read with a state that was computed by older weights. There is no perfect choice. Most
people start with something between fifty and two hundred characters and move on to the
next question.

The next question is usually the size of the hidden state. A small state learns quickly
and forgets quickly. A large state can hold more, but it has more weights to fit, and on
a small text it will soon learn the text by heart. When that happens the training loss
keeps falling while the loss on text the network has never seen starts to rise. The
network has stopped learning the language and started learning the page. Holding out the
end of the text and measuring the loss on it from time to time is the simplest way to
notice this. When the held-out loss stops improving, it is time to stop, to shrink the
model, or to find more text.

It is worth saying how the loss is measured. For every position the network gives a
probability to the true next character, and the loss is the negative logarithm of that
probability, averaged over all positions. If the logarithm is taken in base two, the loss
is the number of bits the model would need, on average, to encode each character of the
text. A model that guessed uniformly among forty characters would need a little more than
five bits. A good model of English needs less than two. People who compress text for a
living use the same measure, and for the same reason: to predict well is to compress well.

Finally, a word about the loop itself. In the program that trains this model, the forward
pass over a chunk is an ordinary loop in the host language. Each step multiplies a few
matrices, applies a few gates, and hands the new state to the next step. Every operation
is written down as it happens, and when the loss is known the record is read backwards to
find the gradients. Nothing in the program knows that the network is recurrent. It only
knows how to differentiate a list of operations, and a loop is just a long list.

There is something pleasing in this. A loop, a few matrices, a handful of gates, and a
rule for nudging numbers downhill: that is all. Nothing in it knows what a word is. And
yet after a minute of training it spells, it spaces, it punctuates, and now and then it
writes a phrase that sounds almost like a thought. It is not thinking. It is remembering,
one character at a time.
)ESSAY";
}  // namespace

const std::string& essay_text() {
  static const std::string text(kEssay);
  return text;
}

const ToyLexicon& toy_lexicon() {
  static const ToyLexicon lexicon{
      .subjects = {"the movie", "this film", "the plot", "the acting", "the ending", "the music", "the story",
                   "the cast"},
      .verbs = {"is", "was", "seemed", "felt"},
      .negations = {"not", "never", "hardly"},
      .intensifiers = {"very", "really", "quite", "truly"},
      .positive = {"good", "great", "wonderful", "fun", "brilliant", "moving", "clever"},
      .negative = {"bad", "boring", "awful", "dull", "terrible", "silly", "clumsy"},
      .openers = {"honestly ,", "i think", "overall ,", "to be fair ,"}};
  return lexicon;
}

std::vector<TextExample> toy_sentiment(int64_t n, Generator& gen) {
  const ToyLexicon& w = toy_lexicon();
  auto pick = [&](const std::vector<std::string>& v) {
    return v[static_cast<size_t>(gen.randint(0, static_cast<int64_t>(v.size())))];
  };
  auto clause = [&](bool& meaning) {
    const bool pos = gen.uniform() < 0.5, neg = gen.uniform() < 0.4;
    std::string s = pick(w.subjects) + " " + pick(w.verbs);
    if (neg) s.append(" ").append(pick(w.negations));
    if (gen.uniform() < 0.4) s.append(" ").append(pick(w.intensifiers));
    s.append(" ").append(pos ? pick(w.positive) : pick(w.negative));
    meaning = pos != neg;
    return s;
  };
  std::vector<TextExample> out;
  for (int64_t i = 0; i < n; ++i) {
    bool meaning = false;
    std::string s = gen.uniform() < 0.2 ? pick(w.openers) + " " : "";
    s += clause(meaning);
    if (gen.uniform() < 0.4) s.append(" but ").append(clause(meaning));
    out.push_back({meaning ? "positive" : "negative", s});
  }
  return out;
}

}  // namespace unroll::examples
