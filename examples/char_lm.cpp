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
// Note [exact resume] (the general mechanism: nn/training_state.h)
// Next to the weights (under their module names) the checkpoint holds everything the
// training loop carries from one step to the next, bound to a TrainingState (Learner
// below), so that `--steps K --save a.st` then `--resume a.st --steps N-K` retraces
// `--steps N` bit for bit (same seed and flags):
//   "optim.*"                 Adam's state_dict() (learning rate, step counts, moments)
//   "rng.data"                the generator of the data order (chunk offsets; int64 [7])
//   "rng.dropout"             the output Dropout's mask generator
//   "rng.rnn_dropout"         the recurrent stack's between-layer dropout generator
//   "rng.default"             default_generator()
//   "state.h", "state.c"      the carried recurrent state [L,B,H] (absent at a pass border)
//   metadata "steps"          the steps trained so far
//   metadata "data_pos", "batch", "seq", "train_chars": the next chunk's position in each
//                             stream and the stream layout it refers to
// A checkpoint without them (an older one) still resumes from its weights, with a fresh
// optimizer and data order: a continuation, not an exact one (the program says so).
//
// The program reads like its steps: parse (the flags), load_data, Learner (model,
// optimizer, training state) and resume, train, save_checkpoint, then the report (trace,
// figure, sample, summary); run() at the bottom calls them in that order.
//
//   char_lm                                  # the built-in essay, LSTM, about a minute
//   char_lm --text corpus.txt --cell gru --steps 3000
//   char_lm --sample-only out/char_lm/char_lm.safetensors --prime "The " --temperature 0.6
#include <unroll.h>

#include "common/cli.h"
#include "common/data.h"
#include "common/plot.h"
#include "common/tasks.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

using namespace unroll;
namespace ex = unroll::examples;

namespace {

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
  double dropout;  // between layers and on the recurrent output, training only (not stored)
};

/// Embedding -> a recurrent stack (dropout between layers) -> Dropout -> Linear:
/// ids [T,B] -> logits [T,B,V].
struct CharModel : Module {
  CharModel(const Settings& s, int64_t V) : cell(s.cell) {
    embed = register_module("embed", std::make_shared<Embedding>(V, s.embed));
    const LSTMOptions o{.input_size = s.embed, .hidden_size = s.hidden, .num_layers = s.layers, .dropout = s.dropout};
    if (cell == "lstm") rnn = register_module<RecurrentStack>("rnn", std::make_shared<LSTM>(o));
    else if (cell == "gru") rnn = register_module<RecurrentStack>("rnn", std::make_shared<GRU>(o));
    else rnn = register_module<RecurrentStack>("rnn", std::make_shared<RNN>(RNNOptions{.input_size = s.embed,
                                                                                      .hidden_size = s.hidden,
                                                                                      .num_layers = s.layers,
                                                                                      .dropout = s.dropout}));
    drop = register_module("drop", std::make_shared<Dropout>(s.dropout));
    head = register_module("head", std::make_shared<Linear>(s.hidden, V));
  }

  /// ids [T,B]; state: empty (zeros) or the previous chunk's final state, replaced by this
  /// chunk's (each [L,B,H]) -> logits [T,B,V]
  Variable forward(const Tensor& ids, State& state) {
    RecurrentOutput out = (*rnn)((*embed)(ids), state);  // [T,B,E] -> [T,B,H]
    state = out.state;
    return (*head)((*drop)(out.output));  // [T,B,V]
  }

  std::string cell;
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<RecurrentStack> rnn;  // LSTM, GRU or RNN
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
  SafetensorsFile file;  // every tensor of the file (weights and training state) and its metadata
};

/// Reads a checkpoint written by this program: its metadata and tensors (the weights are
/// loaded separately, once the model is built from these settings).
Checkpoint read_checkpoint(const std::string& path) {
  Checkpoint c;
  try {
    c.file = load_safetensors(path);
  } catch (const Error& e) {
    throw DataError(e.what());
  }
  const ex::CharLmMetadata meta = ex::parse_char_lm_metadata(c.file.metadata, path);
  c.settings = {meta.cell, meta.embed, meta.hidden, meta.layers, 0.0};
  c.vocab = meta.vocab;
  c.steps = meta.steps;
  c.train_loss = meta.train_loss;
  return c;
}

/// Loads the weights of a checkpoint (strictly: every parameter, nothing else but the
/// training state).
void load_weights(CharModel& model, const Checkpoint& ck, const std::string& path) {
  try {
    model.load_state_dict(TrainingState::weights_of(ck.file.tensors));
  } catch (const Error& e) {
    throw DataError(fmt::format("checkpoint '{}' does not fit the model: {}", path, e.what()));
  }
}

// ---- parse: the flags ---------------------------------------------------------------------

struct Options {
  std::string text_path;
  Settings settings;
  int64_t steps, B, T;
  double lr, clip, val_frac;
  std::string valid_path;
  int64_t eval_every;
  std::string prime;
  int64_t sample_len;
  double temperature;
  std::string resume, trace_path, sample_only, save_path;
  uint64_t seed;
  bool json;
  std::string out;
};

Options parse(int argc, char** argv) {
  ex::Cli cli(argc, argv,
              "char_lm: a character language model (Embedding -> LSTM/GRU/RNN -> Linear), trained with truncated "
              "BPTT; samples text and saves a checkpoint");
  Options o;
  o.text_path = cli.get_string("text", "", "training text file (default: a built-in essay)");
  o.settings = {cli.get_string("cell", "lstm", "recurrent cell: lstm, gru or rnn"),
                cli.get_int("embed", 32, "embedding size E"), cli.get_int("hidden", 128, "hidden size H"),
                cli.get_int("layers", 1, "number of recurrent layers L"),
                cli.get_double("dropout", 0.25, "dropout between layers and on the output, training only")};
  o.steps = cli.get_int("steps", 300,
                        "training steps (chunks of B x T characters); with --resume, the steps to add "
                        "to the checkpoint's: --steps K --save a.st, then --resume a.st --steps N-K, "
                        "retraces --steps N exactly (same seed and flags)");
  o.B = cli.get_int("batch", 16, "parallel streams B");
  o.T = cli.get_int("seq", 64, "characters per chunk T (BPTT truncation length)");
  o.lr = cli.get_double("lr", 3e-3, "Adam learning rate");
  o.clip = cli.get_double("clip", 1.0, "gradient norm clipping threshold");
  o.val_frac = cli.get_double(
      "val-frac", 0.1, "fraction of the text held out at its END for validation (the tail of the training file)");
  o.valid_path = cli.get_string(
      "valid", "", "after training, also report the loss on this file (e.g. PTB test.txt); characters outside the "
                   "training vocabulary are skipped and counted");
  o.eval_every = cli.get_int("eval-every", 25, "validation every N steps");
  o.prime =
      cli.get_string("prime", "", "text to start the sample with (default: \"The \" or what the vocabulary allows)");
  o.sample_len = cli.get_int("sample-len", 300, "characters to sample");
  o.temperature = cli.get_double("temperature", 0.7, "sampling temperature (> 0; lower is more careful)");
  o.resume = cli.get_string(
      "resume", "", "continue training from this checkpoint (weights, Adam state, data position, generators)");
  o.trace_path = cli.get_string(
      "trace", "", "write every training loss and validation loss to this file, one 'train|val <step> <loss>' per "
                   "line, with full precision");
  o.sample_only = cli.get_string("sample-only", "", "load this checkpoint and sample; no training");
  o.save_path = cli.get_string("save", "", "checkpoint to write (default: <out>/char_lm.safetensors)");
  o.seed = cli.seed();
  o.json = cli.json();
  o.out = cli.out_dir();
  cli.done();

  auto usage_check = [](bool ok, const std::string& msg) {
    if (!ok) throw UsageError(msg);
  };
  const Settings& s = o.settings;
  usage_check(s.cell == "lstm" || s.cell == "gru" || s.cell == "rnn",
              fmt::format("--cell must be lstm, gru or rnn, got '{}'", s.cell));
  usage_check(s.embed > 0 && s.hidden > 0 && s.layers > 0, "--embed, --hidden and --layers must be positive");
  usage_check(o.steps >= 0 && o.B > 0 && o.T > 0 && o.eval_every > 0,
              "--steps must be >= 0; --batch, --seq, --eval-every > 0");
  usage_check(o.lr > 0 && o.clip > 0, "--lr and --clip must be positive");
  usage_check(s.dropout >= 0 && s.dropout < 1, "--dropout must be in [0, 1)");
  usage_check(o.val_frac >= 0 && o.val_frac <= 0.5, fmt::format("--val-frac must be in [0, 0.5], got {}", o.val_frac));
  usage_check(o.temperature > 0, fmt::format("--temperature must be > 0, got {}", o.temperature));
  usage_check(o.sample_len >= 0, "--sample-len must be >= 0");
  usage_check(o.resume.empty() || o.sample_only.empty(), "--resume and --sample-only exclude each other");
  if (o.save_path.empty()) o.save_path = o.out + "/char_lm.safetensors";
  return o;
}

/// --sample-only: the settings and vocabulary come from the checkpoint.
int sample_only(const Options& o, Generator& gen) {
  const Checkpoint ck = read_checkpoint(o.sample_only);
  const std::string prime = choose_prime(o.prime, ck.vocab);
  CharModel model(ck.settings, ck.vocab.size());
  load_weights(model, ck, o.sample_only);
  const std::string text = sample(model, ck.vocab, prime, o.sample_len, o.temperature, gen);
  fmt::print("{} ({}, H={}, |V|={}, {} steps trained, train loss {:.3f}), temperature {}:\n{}\n", o.sample_only,
             ck.settings.cell, ck.settings.hidden, ck.vocab.size(), ck.steps, ck.train_loss, o.temperature, text);
  if (o.json) fmt::print("{}\n", ex::JsonLine().add("sample", text).add("vocab", double(ck.vocab.size())).str());
  return 0;
}

/// --resume: the checkpoint, whose settings must be this run's.
Checkpoint read_resume_checkpoint(const Options& o) {
  Checkpoint ck = read_checkpoint(o.resume);
  const Settings &s = ck.settings, &want = o.settings;
  if (s.cell != want.cell || s.embed != want.embed || s.hidden != want.hidden || s.layers != want.layers)
    throw UsageError(fmt::format("checkpoint '{}' was trained with --cell {} --embed {} --hidden {} --layers {}, but "
                                 "this run asks for --cell {} --embed {} --hidden {} --layers {}: pass the same "
                                 "settings",
                                 o.resume, s.cell, s.embed, s.hidden, s.layers, want.cell, want.embed, want.hidden,
                                 want.layers));
  return ck;
}

// ---- data: the text, its vocabulary, a held-out tail --------------------------------------

struct Data {
  Vocab vocab{{}};
  std::vector<int64_t> ids, train_ids, val_ids;  // the whole text, its training head, its held-out tail
  int64_t L = 0;                                  // characters per training stream
  std::string prime;                              // checked now, not after training
  std::vector<int64_t> valid_ids;                 // --valid: its bytes in the training vocabulary
  int64_t valid_skipped = 0;                      // ... and how many were not
};

/// The vocabulary is the text's, or the resumed checkpoint's (`resumed`, if given).
Data load_data(const Options& o, const std::string& text, const Vocab* resumed) {
  Data d;
  d.vocab = resumed == nullptr ? Vocab::of_text(text) : *resumed;
  d.ids = d.vocab.encode(text, o.text_path.empty() ? "the built-in text" : "'" + o.text_path + "'");
  d.prime = choose_prime(o.prime, d.vocab);
  const int64_t n_val = static_cast<int64_t>(static_cast<double>(d.ids.size()) * o.val_frac);
  d.train_ids.assign(d.ids.begin(), d.ids.end() - n_val);
  d.val_ids.assign(d.ids.end() - n_val, d.ids.end());
  d.L = (static_cast<int64_t>(d.train_ids.size()) - 1) / o.B;
  if (d.L < o.T)
    throw DataError(fmt::format("the training text has {} characters; {} streams of {} need at least {} (lower --batch "
                                "or --seq, or give more text)",
                                d.train_ids.size(), o.B, o.T, o.B * o.T + 1));
  fmt::print("text: {} characters ({} train, {} validation = the last {:.0f}% of the same file), vocabulary |V| = {}\n",
             d.ids.size(), d.train_ids.size(), d.val_ids.size(), 100 * o.val_frac, d.vocab.size());
  if (!o.valid_path.empty()) {
    const std::string vt = ex::read_text_file(o.valid_path);
    for (unsigned char c : vt) {
      const int64_t id = d.vocab.id[c];
      if (id < 0) ++d.valid_skipped;
      else d.valid_ids.push_back(id);
    }
    if (d.valid_ids.size() < 2)
      throw DataError(fmt::format("--valid '{}': fewer than 2 characters of the training vocabulary", o.valid_path));
    fmt::print("--valid {}: {} characters ({} outside the training vocabulary, skipped)\n", o.valid_path,
               d.valid_ids.size(), d.valid_skipped);
  }
  return d;
}

/// Chunk (b, p): stream b, characters p..p+T-1 of it, predicting p+1..p+T -> [T,B] each.
std::pair<Tensor, Tensor> make_chunk(const Data& d, int64_t p, int64_t B, int64_t T) {
  std::vector<int64_t> x(static_cast<size_t>(T * B)), y(x.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) {
      const size_t at = static_cast<size_t>(b * d.L + p + t);
      x[static_cast<size_t>(t * B + b)] = d.train_ids[at];
      y[static_cast<size_t>(t * B + b)] = d.train_ids[at + 1];
    }
  return {indices(x).reshape({T, B}), indices(y).reshape({T, B})};
}

// ---- model: the network, its optimizer and the training state -----------------------------

/// Everything training changes, bound to a TrainingState (Note [exact resume] in
/// nn/training_state.h) under the names of this program's checkpoints.
struct Learner {
  Learner(const Options& o, const Data& d, Generator& data_gen)
      : model(o.settings, d.vocab.size()), opt(model.parameters(), {.lr = o.lr}) {
    const Settings& s = o.settings;
    training.optimizer(opt)
        .generator("data", data_gen)
        .generator("dropout", model.drop->generator())
        .generator("rnn_dropout", model.rnn->dropout_generator())
        .generator("default", default_generator())
        .carried(state, s.cell == "lstm" ? std::vector<std::string>{"h", "c"} : std::vector<std::string>{"h"},
                 {s.layers, o.B, s.hidden})
        .counter("steps", steps_done)
        .position("data_pos", pos)
        .layout("batch", o.B)
        .layout("seq", o.T)
        .layout("train_chars", static_cast<int64_t>(d.train_ids.size()));
  }

  CharModel model;
  optim::Adam opt;
  State state;             // carried from chunk to chunk (empty: zeros)
  int64_t pos = -1;        // the next chunk's position in each stream; -1: draw a fresh one
  int64_t steps_done = 0;  // including the resumed checkpoint's
  TrainingState training;
};

/// --resume: the weights, then the training state if the checkpoint holds one.
void resume(Learner& l, const Options& o, const Checkpoint& ck) {
  load_weights(l.model, ck, o.resume);
  l.steps_done = ck.steps;
  fmt::print("resumed from {} ({} steps, train loss {:.4f})\n", o.resume, ck.steps, ck.train_loss);
}

void restore_training_state(Learner& l, const Options& o, const Checkpoint& ck) {
  TrainingState::Restored restored;
  try {
    restored = l.training.load(ck.file, o.resume);
  } catch (const Error& e) {
    throw DataError(e.what());
  }
  if (restored == TrainingState::Restored::nothing) {
    fmt::print("note: {} holds no optimizer or data state (an older checkpoint): training continues from its "
               "weights with a fresh Adam and data order, not as an exact continuation\n",
               o.resume);
    return;
  }
  l.opt.set_lr(o.lr);  // --lr wins over the stored rate (equal when the flags are the same)
  if (restored == TrainingState::Restored::without_position)
    fmt::print("note: {} was trained on other streams (--batch, --seq or text): the data order starts afresh, "
               "not as an exact continuation\n",
               o.resume);
}

// ---- train: truncated BPTT ----------------------------------------------------------------

struct History {
  std::vector<double> step_x, train_curve, val_x, val_curve;
  double initial_loss = NAN, initial_val = NAN, val_loss = NAN, best_val = NAN, best_val_step = NAN;
  double final_train = NAN;  // the mean of the last 10% of steps (one chunk is a noisy estimate)
  double seconds = 0;
};

History train(Learner& l, const Options& o, const Data& d, Generator& gen) {
  const int64_t B = o.B, T = o.T, L = d.L;
  const bool validate = d.val_ids.size() > 1;
  History h;
  if (validate) {
    h.initial_val = evaluate(l.model, d.val_ids, T);
    h.val_x.push_back(static_cast<double>(l.steps_done));
    h.val_curve.push_back(h.initial_val);
  }
  std::fflush(stdout);
  // Each pass over the streams starts at a random offset below T, so chunk borders move between passes.
  if (l.pos < 0) l.pos = gen.randint(0, std::min(T, L - T + 1));
  ex::Progress progress("char_lm", o.steps, true);
  for (int64_t step = 1; step <= o.steps; ++step) {
    if (l.pos + T > L) {  // end of the streams: start a new pass from a fresh state
      l.pos = gen.randint(0, std::min(T, L - T + 1));
      l.state.clear();
    }
    const auto [x, y] = make_chunk(d, l.pos, B, T);
    l.pos += T;
    Variable loss = lm_loss(l.model.forward(x, l.state), y);
    l.opt.zero_grad();
    loss.backward();
    clip_grad_norm(l.model.parameters(), o.clip);
    l.opt.step();
    l.state = detach(l.state);  // keep the values, cut the graph
    const double now = static_cast<double>(++l.steps_done);

    const double loss_value = loss.item();
    if (step == 1) h.initial_loss = loss_value;
    h.step_x.push_back(now);
    h.train_curve.push_back(loss_value);
    if (validate && (l.steps_done % o.eval_every == 0 || step == o.steps)) {
      h.val_loss = evaluate(l.model, d.val_ids, T);
      h.val_x.push_back(now);
      h.val_curve.push_back(h.val_loss);
      if (!(h.val_loss >= h.best_val)) h.best_val = h.val_loss, h.best_val_step = now;
    }
    progress.update(step, loss_value, std::isnan(h.val_loss) ? "" : fmt::format(" val {:.3f}", h.val_loss));
  }
  progress.finish();
  h.seconds = progress.seconds();
  if (o.steps == 0 && validate) h.val_loss = h.initial_val;
  const size_t tail = std::max<size_t>(1, h.train_curve.size() / 10);
  if (!h.train_curve.empty())
    h.final_train = std::accumulate(h.train_curve.end() - static_cast<std::ptrdiff_t>(tail), h.train_curve.end(), 0.0) /
                    static_cast<double>(tail);
  return h;
}

/// The checkpoint: weights, vocabulary, settings and training state.
void save_checkpoint(const Learner& l, const Options& o, const Data& d, const History& h, const Checkpoint& ck) {
  const Settings& s = o.settings;
  l.training.save(o.save_path, l.model.state_dict(),
                  {{"format", "unroll-char-lm-1"},
                   {"cell", s.cell},
                   {"embed", std::to_string(s.embed)},
                   {"hidden", std::to_string(s.hidden)},
                   {"layers", std::to_string(s.layers)},
                   {"vocab", d.vocab.to_metadata()},
                   {"train_loss", fmt::format("{}", std::isnan(h.final_train) ? ck.train_loss : h.final_train)}});
}

// ---- report: trace, figure, sample, summary -----------------------------------------------

/// --trace: every loss, exactly.
void write_trace(const std::string& path, const History& h) {
  std::string lines;
  size_t v = 0;
  auto flush_val_until = [&](double step) {  // validation losses up to `step`, in order
    for (; v < h.val_x.size() && h.val_x[v] <= step; ++v)
      lines += fmt::format("val {} {:.17g}\n", static_cast<int64_t>(h.val_x[v]), h.val_curve[v]);
  };
  for (size_t i = 0; i < h.train_curve.size(); ++i) {
    flush_val_until(h.step_x[i] - 1);
    lines += fmt::format("train {} {:.17g}\n", static_cast<int64_t>(h.step_x[i]), h.train_curve[i]);
  }
  flush_val_until(INFINITY);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw DataError(fmt::format("cannot write --trace file '{}': {}", path, std::strerror(errno)));
  const bool ok = std::fwrite(lines.data(), 1, lines.size(), f) == lines.size();
  if (std::fclose(f) != 0 || !ok) throw DataError(fmt::format("cannot write --trace file '{}'", path));
}

/// The loss curve, in bits per character (the unit the summary and the README use; the
/// losses are in nats); returns the file written.
std::string plot_losses(const Options& o, int64_t V, const History& h, int64_t first_step, int64_t total_steps) {
  const std::string fig = o.out + "/char_lm_loss.svg";
  const double ln_v = std::log(static_cast<double>(V)), to_bits = 1.0 / std::log(2.0);
  auto bits = [&](std::vector<double> v) {
    for (double& y : v) y *= to_bits;
    return v;
  };
  plot::LinePlot lp;
  lp.title = fmt::format("char_lm: {} H={}, |V|={} (log2|V| = {:.2f} bits)", o.settings.cell, o.settings.hidden, V,
                         ln_v * to_bits);
  lp.xlabel = "training step";
  lp.ylabel = "cross-entropy (bits per character)";
  if (!h.step_x.empty()) lp.add("train (one chunk)", h.step_x, bits(h.train_curve));
  if (!h.val_curve.empty()) {
    lp.add("validation (held-out tail of the training file)", h.val_x, bits(h.val_curve));
    lp.series.back().markers = true;
  }
  const double x0 = static_cast<double>(first_step);
  const double x1 = static_cast<double>(std::max<int64_t>(total_steps, first_step + 1));
  lp.add_reference("log2|V| (uniform guess)", x0, x1, ln_v * to_bits);
  lp.save(fig);
  return fig;
}

/// The summary lines (and --json), after sampling and the --valid loss.
void report(Learner& l, const Options& o, const Data& d, const History& h, const std::string& fig, Generator& gen) {
  const int64_t V = d.vocab.size(), total_steps = l.steps_done;
  const double ln_v = std::log(static_cast<double>(V));
  const std::string text_sample = sample(l.model, d.vocab, d.prime, o.sample_len, o.temperature, gen);
  const double bpc_train = h.final_train / std::log(2.0), bpc_val = h.val_loss / std::log(2.0);
  fmt::print("initial loss {:.4f} (ln|V| = {:.4f}){}\n", h.initial_loss, ln_v,
             std::isnan(h.initial_val) ? "" : fmt::format(", initial validation loss {:.4f}", h.initial_val));
  fmt::print("final train loss {:.4f} ({:.3f} bits/char), validation loss {:.4f} ({:.3f} bits/char)\n", h.final_train,
             bpc_train, h.val_loss, bpc_val);
  if (!std::isnan(h.best_val))
    fmt::print("best validation loss {:.4f} ({:.3f} bits/char) at step {}{}\n", h.best_val, h.best_val / std::log(2.0),
               h.best_val_step,
               h.best_val_step < static_cast<double>(total_steps)
                   ? " (later steps fit the training text, not the language)"
                   : "");
  double valid_loss = NAN;
  if (!d.valid_ids.empty()) {
    valid_loss = evaluate(l.model, d.valid_ids, o.T);
    fmt::print("--valid {}: loss {:.4f} ({:.3f} bits/char) over {} characters\n", o.valid_path, valid_loss,
               valid_loss / std::log(2.0), d.valid_ids.size());
  }
  fmt::print("{} steps in {:.1f} s ({:.0f} characters/s)\n", o.steps, h.seconds,
             h.seconds > 0 ? static_cast<double>(o.steps * o.B * o.T) / h.seconds : 0.0);
  fmt::print("sample (temperature {}):\n{}\n", o.temperature, text_sample);
  fmt::print("checkpoint: {}\nfigure: {}\n", o.save_path, fig);
  if (o.json)
    fmt::print("{}\n", ex::JsonLine()
                           .add("vocab", static_cast<double>(V))
                           .add("ln_vocab", ln_v)
                           .add("initial_loss", h.initial_loss)
                           .add("initial_val_loss", h.initial_val)
                           .add("final_train_loss", h.final_train)
                           .add("val_loss", h.val_loss)
                           .add("train_bpc", bpc_train)
                           .add("val_bpc", bpc_val)
                           .add("valid_file_loss", valid_loss)
                           .add("valid_file_bpc", valid_loss / std::log(2.0))
                           .add("valid_file_chars", static_cast<double>(d.valid_ids.size()))
                           .add("valid_file_skipped", static_cast<double>(d.valid_skipped))
                           .add("best_val_loss", h.best_val)
                           .add("best_val_step", h.best_val_step)
                           .add("steps", static_cast<double>(total_steps))
                           .add("seconds", h.seconds)
                           .add("sample", text_sample)
                           .add("checkpoint", o.save_path)
                           .add("figure", fig)
                           .str());
}

// ---- the program --------------------------------------------------------------------------

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  manual_seed(o.seed);
  Generator gen(o.seed + 1);  // the data order, then the sample
  plot::make_dirs(o.out);
  if (!o.sample_only.empty()) return sample_only(o, gen);

  const std::string text = o.text_path.empty() ? ex::essay_text() : ex::read_text_file(o.text_path);
  const Checkpoint ck = o.resume.empty() ? Checkpoint{} : read_resume_checkpoint(o);
  const Data data = load_data(o, text, o.resume.empty() ? nullptr : &ck.vocab);

  Learner learner(o, data, gen);
  if (!o.resume.empty()) resume(learner, o, ck);
  fmt::print("model: Embedding({}, {}) -> {} (H={}, L={}) -> Linear({}, {}): {} parameters\n", data.vocab.size(),
             o.settings.embed, o.settings.cell, o.settings.hidden, o.settings.layers, o.settings.hidden,
             data.vocab.size(), learner.model.num_parameters());
  if (!o.resume.empty()) restore_training_state(learner, o, ck);

  const History history = train(learner, o, data, gen);
  save_checkpoint(learner, o, data, history, ck);
  if (!o.trace_path.empty()) write_trace(o.trace_path, history);
  const std::string fig = plot_losses(o, data.vocab.size(), history, ck.steps, learner.steps_done);
  report(learner, o, data, history, fig, gen);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ex::guarded_main("char_lm", argc, argv, run, ex::on_error<UsageError>(ex::ErrorPrefix::program, 2));
}
