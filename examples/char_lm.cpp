// Character language model: many-to-many. Each step reads one character and predicts the
// next one: Embedding -> LSTM (or GRU, or tanh RNN) -> Linear -> cross_entropy.
//
// The text is cut into B parallel streams; each training step runs T characters of every
// stream and carries the final state into the next chunk with detach() (truncated BPTT,
// Note [truncated BPTT] in nn/recurrent.h), so memory stays constant however long the text.
// An untrained model spreads its bets over the vocabulary, so the loss starts near ln|V|;
// it falls as the model learns spelling, then words. The model is saved as a safetensors
// checkpoint with the vocabulary and settings as metadata; --resume continues training
// from one, --sample-only just writes text with it.
//
//   char_lm                                  # the built-in essay, LSTM, about a minute
//   char_lm --text corpus.txt --cell gru --steps 3000
//   char_lm --sample-only out/char_lm/char_lm.safetensors --prime "The " --temperature 0.6
#include <unroll.h>

#include "common/cli.h"
#include "common/data.h"
#include "common/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

using namespace unroll;
namespace ex = unroll::examples;

namespace {

// An original short essay, the corpus when no --text is given (a few KB: enough for the
// model to learn spelling and common words within a minute).
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

// Bad input (missing or empty text, corrupt checkpoint, vocabulary mismatch): ex::DataError,
// exit 1. The text, vocabulary and metadata parsers live in common/data.h.
using ex::DataError;
using Vocab = ex::CharVocab;
// Flags that contradict each other or the checkpoint: exit 2, like an unknown flag.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The given prime (every character must be in the vocabulary), or by default the first
/// of "The ", "the ", " " the vocabulary can spell, else its first character.
std::string choose_prime(const std::string& given, const Vocab& vocab) {
  if (!given.empty()) {
    vocab.encode(given, "--prime");
    return given;
  }
  for (const char* p : {"The ", "the ", " "}) {
    const std::string s(p);
    if (std::all_of(s.begin(), s.end(), [&](char c) { return vocab.id[static_cast<unsigned char>(c)] >= 0; })) return s;
  }
  return std::string(1, static_cast<char>(vocab.chars[0]));
}

// ---- model --------------------------------------------------------------------------------

struct Settings {
  std::string cell;  // lstm | gru | rnn
  int64_t embed, hidden, layers;
  double dropout;  // on the recurrent output, training only (not stored: no parameters)
};

/// Embedding -> a recurrent stack -> Dropout -> Linear: ids [T,B] -> logits [T,B,V].
struct CharModel : Module {
  CharModel(const Settings& s, int64_t V) : cell(s.cell) {
    embed = register_module("embed", std::make_shared<Embedding>(V, s.embed));
    if (cell == "lstm")
      lstm = register_module("rnn", std::make_shared<LSTM>(LSTMOptions{.input_size = s.embed, .hidden_size = s.hidden,
                                                                         .num_layers = s.layers}));
    else if (cell == "gru")
      gru = register_module("rnn", std::make_shared<GRU>(GRUOptions{.input_size = s.embed, .hidden_size = s.hidden,
                                                                      .num_layers = s.layers}));
    else
      rnn = register_module("rnn", std::make_shared<RNN>(RNNOptions{.input_size = s.embed, .hidden_size = s.hidden,
                                                                      .num_layers = s.layers}));
    drop = register_module("drop", std::make_shared<Dropout>(s.dropout));
    head = register_module("head", std::make_shared<Linear>(s.hidden, V));
  }

  /// ids [T,B]; state: empty (zeros) or the previous chunk's final state, replaced by this
  /// chunk's -> logits [T,B,V]
  Variable forward(const Tensor& ids, State& state) {
    Variable x = (*embed)(ids);  // [T,B,E]
    Variable h;                  // [T,B,H]
    if (lstm) {
      LSTMOutput out = (*lstm)(x, state);
      h = out.output;
      state = {out.h_n, out.c_n};  // each [L,B,H]
    } else {
      RNNOutput out = gru ? (*gru)(x, state.empty() ? Variable() : state[0])
                          : (*rnn)(x, state.empty() ? Variable() : state[0]);
      h = out.output;
      state = {out.h_n};
    }
    return (*head)((*drop)(h));  // [T,B,V]
  }

  std::string cell;
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<LSTM> lstm;
  std::shared_ptr<GRU> gru;
  std::shared_ptr<RNN> rnn;
  std::shared_ptr<Dropout> drop;
  std::shared_ptr<Linear> head;
};

/// Mean cross-entropy of logits [T,B,V] against targets [T,B].
Variable lm_loss(const Variable& logits, const Tensor& targets) {
  const int64_t V = logits.size(2);
  return cross_entropy(reshape(logits, {-1, V}), targets.reshape({-1}));
}

/// Loss of the model on a held-out stretch of ids (no gradients): cut into S parallel
/// streams (S <= 32, each at least 4 chunks long when possible) read in chunks of T with
/// the state carried across, like training.
double evaluate(CharModel& model, const std::vector<int64_t>& ids, int64_t T) {
  NoGradGuard no_grad;
  model.eval();
  const int64_t n = static_cast<int64_t>(ids.size()) - 1;  // predictions
  const int64_t S = std::clamp<int64_t>(n / (4 * T), 1, 32), Ls = n / S;  // >= 4 chunks per stream
  State state;
  double total = 0;
  for (int64_t p = 0; p < Ls; p += T) {
    const int64_t len = std::min(T, Ls - p);
    std::vector<int64_t> x(static_cast<size_t>(len * S)), y(x.size());
    for (int64_t t = 0; t < len; ++t)
      for (int64_t s = 0; s < S; ++s) {
        x[static_cast<size_t>(t * S + s)] = ids[static_cast<size_t>(s * Ls + p + t)];
        y[static_cast<size_t>(t * S + s)] = ids[static_cast<size_t>(s * Ls + p + t + 1)];
      }
    Variable logits = model.forward(indices(x).reshape({len, S}), state);  // [len,S,V]
    total += lm_loss(logits, indices(y).reshape({len, S})).item() * static_cast<double>(len * S);
  }
  model.train();
  return total / static_cast<double>(Ls * S);
}

/// Feeds `prime`, then draws `length` characters from softmax(logits / temperature).
std::string sample(CharModel& model, const Vocab& vocab, const std::string& prime, int64_t length, double temperature,
                   Generator& gen) {
  NoGradGuard no_grad;
  model.eval();
  State state;
  const std::vector<int64_t> p = vocab.encode(prime, "--prime");
  Variable logits = model.forward(indices(p).reshape({static_cast<int64_t>(p.size()), 1}), state);  // [P,1,V]
  Tensor last = narrow(logits.data(), 0, logits.size(0) - 1, 1).reshape({-1});                     // [V]
  std::string out = prime;
  for (int64_t i = 0; i < length; ++i) {
    const std::vector<double> probs = softmax(last * (1.0 / temperature), 0).to_vector();
    double u = gen.uniform(), acc = 0;
    int64_t next = static_cast<int64_t>(probs.size()) - 1;
    for (size_t k = 0; k < probs.size(); ++k) {
      acc += probs[k];
      if (u < acc) {
        next = static_cast<int64_t>(k);
        break;
      }
    }
    out += static_cast<char>(vocab.chars[static_cast<size_t>(next)]);
    last = model.forward(indices({next}).reshape({1, 1}), state).data().reshape({-1});
  }
  model.train();
  return out;
}

// ---- checkpoints --------------------------------------------------------------------------

struct Checkpoint {
  Settings settings;
  Vocab vocab{{}};
  int64_t steps = 0;
  double train_loss = NAN;
};

/// Reads the metadata of a checkpoint written by this program (the weights are loaded
/// separately, once the model is built from these settings).
Checkpoint read_checkpoint_metadata(const std::string& path) {
  SafetensorsFile file;
  try {
    file = load_safetensors(path);
  } catch (const Error& e) {
    throw DataError(e.what());
  }
  const ex::CharLmMetadata m = ex::parse_char_lm_metadata(file.metadata, path);
  Checkpoint c;
  c.settings = {m.cell, m.embed, m.hidden, m.layers, 0.0};
  c.vocab = m.vocab;
  c.steps = m.steps;
  c.train_loss = m.train_loss;
  return c;
}

void load_weights(CharModel& model, const std::string& path) {
  try {
    load(model, path);
  } catch (const Error& e) {
    throw DataError(fmt::format("checkpoint '{}' does not fit the model: {}", path, e.what()));
  }
}

// ---- the program --------------------------------------------------------------------------

int run(int argc, char** argv) {
  ex::Cli cli(argc, argv,
              "char_lm: a character language model (Embedding -> LSTM/GRU/RNN -> Linear), trained with truncated "
              "BPTT; samples text and saves a checkpoint");
  const std::string text_path = cli.get_string("text", "", "training text file (default: a built-in essay)");
  Settings settings{cli.get_string("cell", "lstm", "recurrent cell: lstm, gru or rnn"),
                    cli.get_int("embed", 32, "embedding size E"), cli.get_int("hidden", 128, "hidden size H"),
                    cli.get_int("layers", 1, "number of recurrent layers L"),
                    cli.get_double("dropout", 0.25, "dropout on the recurrent output while training")};
  const int64_t steps = cli.get_int("steps", 300, "training steps (chunks of B x T characters)");
  const int64_t B = cli.get_int("batch", 16, "parallel streams B");
  const int64_t T = cli.get_int("seq", 64, "characters per chunk T (BPTT truncation length)");
  const double lr = cli.get_double("lr", 3e-3, "Adam learning rate");
  const double clip = cli.get_double("clip", 1.0, "gradient norm clipping threshold");
  const double val_frac = cli.get_double("val-frac", 0.1, "fraction of the text held out at its end for validation");
  const int64_t eval_every = cli.get_int("eval-every", 25, "validation every N steps");
  std::string prime =
      cli.get_string("prime", "", "text to start the sample with (default: \"The \" or what the vocabulary allows)");
  const int64_t sample_len = cli.get_int("sample-len", 300, "characters to sample");
  const double temperature = cli.get_double("temperature", 0.7, "sampling temperature (> 0; lower is more careful)");
  const std::string resume = cli.get_string("resume", "", "continue training from this checkpoint");
  const std::string sample_only = cli.get_string("sample-only", "", "load this checkpoint and sample; no training");
  std::string save_path = cli.get_string("save", "", "checkpoint to write (default: <out>/char_lm.safetensors)");
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out = cli.out_dir();
  cli.done();

  auto usage_check = [](bool ok, const std::string& msg) {
    if (!ok) throw UsageError(msg);
  };
  usage_check(settings.cell == "lstm" || settings.cell == "gru" || settings.cell == "rnn",
              fmt::format("--cell must be lstm, gru or rnn, got '{}'", settings.cell));
  usage_check(settings.embed > 0 && settings.hidden > 0 && settings.layers > 0,
              "--embed, --hidden and --layers must be positive");
  usage_check(steps >= 0 && B > 0 && T > 0 && eval_every > 0, "--steps must be >= 0; --batch, --seq, --eval-every > 0");
  usage_check(lr > 0 && clip > 0, "--lr and --clip must be positive");
  usage_check(settings.dropout >= 0 && settings.dropout < 1, "--dropout must be in [0, 1)");
  usage_check(val_frac >= 0 && val_frac <= 0.5, fmt::format("--val-frac must be in [0, 0.5], got {}", val_frac));
  usage_check(temperature > 0, fmt::format("--temperature must be > 0, got {}", temperature));
  usage_check(sample_len >= 0, "--sample-len must be >= 0");
  usage_check(resume.empty() || sample_only.empty(), "--resume and --sample-only exclude each other");
  manual_seed(seed);
  Generator gen(seed + 1);
  plot::make_dirs(out);
  if (save_path.empty()) save_path = out + "/char_lm.safetensors";

  // Sampling only: the settings and vocabulary come from the checkpoint.
  if (!sample_only.empty()) {
    const Checkpoint ck = read_checkpoint_metadata(sample_only);
    prime = choose_prime(prime, ck.vocab);
    CharModel model(ck.settings, ck.vocab.size());
    load_weights(model, sample_only);
    const std::string text = sample(model, ck.vocab, prime, sample_len, temperature, gen);
    fmt::print("{} ({}, H={}, |V|={}, {} steps trained, train loss {:.3f}), temperature {}:\n{}\n", sample_only,
               ck.settings.cell, ck.settings.hidden, ck.vocab.size(), ck.steps, ck.train_loss, temperature, text);
    if (json) fmt::print("{}\n", ex::JsonLine().add("sample", text).add("vocab", double(ck.vocab.size())).str());
    return 0;
  }

  // ---- data: the text, its vocabulary, a held-out tail -----------------------------------
  const std::string text = text_path.empty() ? std::string(kEssay) : ex::read_text_file(text_path);
  Checkpoint ck;
  if (!resume.empty()) {
    ck = read_checkpoint_metadata(resume);
    const Settings& s = ck.settings;
    if (s.cell != settings.cell || s.embed != settings.embed || s.hidden != settings.hidden ||
        s.layers != settings.layers)
      throw UsageError(fmt::format("checkpoint '{}' was trained with --cell {} --embed {} --hidden {} --layers {}, but "
                                   "this run asks for --cell {} --embed {} --hidden {} --layers {}: pass the same "
                                   "settings",
                                   resume, s.cell, s.embed, s.hidden, s.layers, settings.cell, settings.embed,
                                   settings.hidden, settings.layers));
  }
  const Vocab vocab = resume.empty() ? Vocab::of_text(text) : ck.vocab;
  const std::vector<int64_t> ids = vocab.encode(text, text_path.empty() ? "the built-in text" : "'" + text_path + "'");
  const int64_t V = vocab.size();
  prime = choose_prime(prime, vocab);  // checked now, not after training
  const int64_t n_val = static_cast<int64_t>(static_cast<double>(ids.size()) * val_frac);
  const std::vector<int64_t> train_ids(ids.begin(), ids.end() - n_val);
  const std::vector<int64_t> val_ids(ids.end() - n_val, ids.end());
  const int64_t L = (static_cast<int64_t>(train_ids.size()) - 1) / B;  // characters per stream
  if (L < T)
    throw DataError(fmt::format("the training text has {} characters; {} streams of {} need at least {} (lower --batch "
                                "or --seq, or give more text)",
                                train_ids.size(), B, T, B * T + 1));
  fmt::print("text: {} characters ({} train, {} validation), vocabulary |V| = {}\n", ids.size(), train_ids.size(),
             val_ids.size(), V);

  // ---- model and optimizer --------------------------------------------------------------
  CharModel model(settings, V);
  if (!resume.empty()) {
    load_weights(model, resume);
    fmt::print("resumed from {} ({} steps, train loss {:.4f})\n", resume, ck.steps, ck.train_loss);
  }
  fmt::print("model: Embedding({}, {}) -> {} (H={}, L={}) -> Linear({}, {}): {} parameters\n", V, settings.embed,
             settings.cell, settings.hidden, settings.layers, settings.hidden, V, model.num_parameters());
  optim::Adam opt(model.parameters(), {.lr = lr});

  // Chunk (b, p): stream b, characters p..p+T-1 of it, predicting p+1..p+T. Each pass over
  // the streams starts at a random offset below T, so chunk borders move between passes.
  auto make_chunk = [&](int64_t p) {
    std::vector<int64_t> x(static_cast<size_t>(T * B)), y(x.size());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t b = 0; b < B; ++b) {
        const size_t at = static_cast<size_t>(b * L + p + t);
        x[static_cast<size_t>(t * B + b)] = train_ids[at];
        y[static_cast<size_t>(t * B + b)] = train_ids[at + 1];
      }
    return std::pair{indices(x).reshape({T, B}), indices(y).reshape({T, B})};  // [T,B] each
  };

  // ---- training: truncated BPTT ----------------------------------------------------------
  const double ln_v = std::log(static_cast<double>(V));
  std::vector<double> step_x, train_curve, val_x, val_curve;
  double initial_loss = NAN, initial_val = NAN, val_loss = NAN, best_val = NAN, best_val_step = NAN;
  if (!val_ids.empty() && val_ids.size() > 1) {
    initial_val = evaluate(model, val_ids, T);
    val_x.push_back(static_cast<double>(ck.steps));
    val_curve.push_back(initial_val);
  }
  std::fflush(stdout);
  State state;
  int64_t pos = gen.randint(0, std::min(T, L - T + 1));
  ex::Progress progress("char_lm", steps, true);
  for (int64_t step = 1; step <= steps; ++step) {
    if (pos + T > L) {  // end of the streams: start a new pass from a fresh state
      pos = gen.randint(0, std::min(T, L - T + 1));
      state.clear();
    }
    const auto [x, y] = make_chunk(pos);
    pos += T;
    Variable loss = lm_loss(model.forward(x, state), y);
    opt.zero_grad();
    loss.backward();
    clip_grad_norm(model.parameters(), clip);
    opt.step();
    state = detach(state);  // keep the values, cut the graph

    const double l = loss.item();
    if (step == 1) initial_loss = l;
    step_x.push_back(static_cast<double>(ck.steps + step));
    train_curve.push_back(l);
    if (val_ids.size() > 1 && (step % eval_every == 0 || step == steps)) {
      val_loss = evaluate(model, val_ids, T);
      val_x.push_back(static_cast<double>(ck.steps + step));
      val_curve.push_back(val_loss);
      if (!(val_loss >= best_val)) best_val = val_loss, best_val_step = static_cast<double>(ck.steps + step);
    }
    progress.update(step, l, std::isnan(val_loss) ? "" : fmt::format(" val {:.3f}", val_loss));
  }
  progress.finish();
  const double seconds = progress.seconds();
  if (steps == 0 && val_ids.size() > 1) val_loss = initial_val;

  // Final train loss: the mean of the last 10% of steps (one chunk is a noisy estimate).
  const size_t tail = std::max<size_t>(1, train_curve.size() / 10);
  const double final_train =
      train_curve.empty()
          ? NAN
          : std::accumulate(train_curve.end() - static_cast<std::ptrdiff_t>(tail), train_curve.end(), 0.0) /
                static_cast<double>(tail);

  // ---- checkpoint: weights, vocabulary and settings --------------------------------------
  const int64_t total_steps = ck.steps + steps;
  save(model, save_path,
       {{"format", "unroll-char-lm-1"},
        {"cell", settings.cell},
        {"embed", std::to_string(settings.embed)},
        {"hidden", std::to_string(settings.hidden)},
        {"layers", std::to_string(settings.layers)},
        {"vocab", vocab.to_metadata()},
        {"steps", std::to_string(total_steps)},
        {"train_loss", fmt::format("{}", std::isnan(final_train) ? ck.train_loss : final_train)}});

  // ---- figure: the loss curve ------------------------------------------------------------
  const std::string fig = out + "/char_lm_loss.svg";
  plot::LinePlot lp;
  lp.title = fmt::format("char_lm: {} H={}, |V|={} (ln|V| = {:.2f})", settings.cell, settings.hidden, V, ln_v);
  lp.xlabel = "training step";
  lp.ylabel = "cross-entropy (nats per character)";
  if (!step_x.empty()) lp.add("train (one chunk)", step_x, train_curve);
  if (!val_curve.empty()) {
    lp.add("validation (held-out tail)", val_x, val_curve);
    lp.series.back().markers = true;
  }
  const double x0 = static_cast<double>(ck.steps);
  const double x1 = static_cast<double>(std::max<int64_t>(total_steps, ck.steps + 1));
  lp.add("ln|V| (uniform guess)", {x0, x1}, {ln_v, ln_v}, true);
  lp.save(fig);

  // ---- summary ---------------------------------------------------------------------------
  const std::string text_sample = sample(model, vocab, prime, sample_len, temperature, gen);
  const double bpc_train = final_train / std::log(2.0), bpc_val = val_loss / std::log(2.0);
  fmt::print("initial loss {:.4f} (ln|V| = {:.4f}){}\n", initial_loss, ln_v,
             std::isnan(initial_val) ? "" : fmt::format(", initial validation loss {:.4f}", initial_val));
  fmt::print("final train loss {:.4f} ({:.3f} bits/char), validation loss {:.4f} ({:.3f} bits/char)\n", final_train,
             bpc_train, val_loss, bpc_val);
  if (!std::isnan(best_val))
    fmt::print("best validation loss {:.4f} ({:.3f} bits/char) at step {}{}\n", best_val, best_val / std::log(2.0),
               best_val_step,
               best_val_step < static_cast<double>(total_steps)
                   ? " (later steps fit the training text, not the language)"
                   : "");
  fmt::print("{} steps in {:.1f} s ({:.0f} characters/s)\n", steps, seconds,
             seconds > 0 ? static_cast<double>(steps * B * T) / seconds : 0.0);
  fmt::print("sample (temperature {}):\n{}\n", temperature, text_sample);
  fmt::print("checkpoint: {}\nfigure: {}\n", save_path, fig);
  if (json)
    fmt::print("{}\n", ex::JsonLine()
                           .add("vocab", static_cast<double>(V))
                           .add("ln_vocab", ln_v)
                           .add("initial_loss", initial_loss)
                           .add("initial_val_loss", initial_val)
                           .add("final_train_loss", final_train)
                           .add("val_loss", val_loss)
                           .add("train_bpc", bpc_train)
                           .add("val_bpc", bpc_val)
                           .add("best_val_loss", best_val)
                           .add("best_val_step", best_val_step)
                           .add("steps", static_cast<double>(total_steps))
                           .add("seconds", seconds)
                           .add("sample", text_sample)
                           .add("checkpoint", save_path)
                           .add("figure", fig)
                           .str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const UsageError& e) {
    fmt::print(stderr, "char_lm: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "char_lm: error: {}\n", e.what());
    return 1;
  }
}
