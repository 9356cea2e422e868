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
// Note [exact resume]
// Next to the weights (under their module names) the checkpoint holds everything the
// training loop carries from one step to the next, so that `--steps K --save a.st` then
// `--resume a.st --steps N-K` retraces `--steps N` bit for bit (same seed and flags):
//   "optim.*"                 Adam's state_dict() (learning rate, step counts, moments)
//   "rng.data"                the generator of the data order (chunk offsets; int64 [7])
//   "rng.dropout"             the output Dropout's mask generator
//   "rng.rnn_dropout"         the recurrent stack's between-layer dropout generator
//   "rng.default"             default_generator()
//   "state.h", "state.c"      the carried recurrent state [L,B,H] (absent at a pass border)
//   metadata "data_pos", "batch", "seq", "train_chars": the next chunk's position in each
//                             stream and the stream layout it refers to
// A checkpoint without them (an older one) still resumes from its weights, with a fresh
// optimizer and data order: a continuation, not an exact one (the program says so).
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
  ex::CharLmMetadata meta;  // as parsed, with the data position if stored
  StateDict tensors;        // every tensor of the file: weights and training state
};

/// Prefixes of the training state's tensors (Note [exact resume]); every other tensor is a weight.
constexpr const char* kTrainStatePrefixes[] = {"optim.", "rng.", "state."};

bool is_train_state(const std::string& name) {
  return std::any_of(std::begin(kTrainStatePrefixes), std::end(kTrainStatePrefixes),
                     [&](const char* p) { return name.rfind(p, 0) == 0; });
}

/// Reads a checkpoint written by this program: its metadata and tensors (the weights are
/// loaded separately, once the model is built from these settings).
Checkpoint read_checkpoint(const std::string& path) {
  SafetensorsFile file;
  try {
    file = load_safetensors(path);
  } catch (const Error& e) {
    throw DataError(e.what());
  }
  Checkpoint c;
  c.meta = ex::parse_char_lm_metadata(file.metadata, path);
  c.settings = {c.meta.cell, c.meta.embed, c.meta.hidden, c.meta.layers, 0.0};
  c.vocab = c.meta.vocab;
  c.steps = c.meta.steps;
  c.train_loss = c.meta.train_loss;
  c.tensors = std::move(file.tensors);
  return c;
}

/// Loads the weights of a checkpoint (strictly: every parameter, nothing else but the
/// training state).
void load_weights(CharModel& model, const Checkpoint& ck, const std::string& path) {
  StateDict weights;
  for (const auto& [name, t] : ck.tensors)
    if (!is_train_state(name)) weights.insert(name, t);
  try {
    model.load_state_dict(weights);
  } catch (const Error& e) {
    throw DataError(fmt::format("checkpoint '{}' does not fit the model: {}", path, e.what()));
  }
}

/// The tensors of `all` whose names start with `prefix`, with the prefix removed.
StateDict with_prefix(const StateDict& all, const std::string& prefix) {
  StateDict out;
  for (const auto& [name, t] : all)
    if (name.rfind(prefix, 0) == 0) out.insert(name.substr(prefix.size()), t);
  return out;
}

/// One generator's state from the checkpoint (DataError naming it if absent or malformed).
void restore_generator(Generator& gen, const Checkpoint& ck, const std::string& name, const std::string& path) {
  const Tensor* t = ck.tensors.find(name);
  if (t == nullptr) throw DataError(fmt::format("checkpoint '{}' has training state but no \"{}\"", path, name));
  try {
    gen.set_state(*t);
  } catch (const Error& e) {
    throw DataError(fmt::format("checkpoint '{}': \"{}\": {}", path, name, e.what()));
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
                    cli.get_double("dropout", 0.25, "dropout between layers and on the output, training only")};
  const int64_t steps = cli.get_int("steps", 300,
                                    "training steps (chunks of B x T characters); with --resume, the steps to add "
                                    "to the checkpoint's: --steps K --save a.st, then --resume a.st --steps N-K, "
                                    "retraces --steps N exactly (same seed and flags)");
  const int64_t B = cli.get_int("batch", 16, "parallel streams B");
  const int64_t T = cli.get_int("seq", 64, "characters per chunk T (BPTT truncation length)");
  const double lr = cli.get_double("lr", 3e-3, "Adam learning rate");
  const double clip = cli.get_double("clip", 1.0, "gradient norm clipping threshold");
  const double val_frac = cli.get_double(
      "val-frac", 0.1, "fraction of the text held out at its END for validation (the tail of the training file)");
  const std::string valid_path = cli.get_string(
      "valid", "", "after training, also report the loss on this file (e.g. PTB test.txt); characters outside the "
                   "training vocabulary are skipped and counted");
  const int64_t eval_every = cli.get_int("eval-every", 25, "validation every N steps");
  std::string prime =
      cli.get_string("prime", "", "text to start the sample with (default: \"The \" or what the vocabulary allows)");
  const int64_t sample_len = cli.get_int("sample-len", 300, "characters to sample");
  const double temperature = cli.get_double("temperature", 0.7, "sampling temperature (> 0; lower is more careful)");
  const std::string resume = cli.get_string(
      "resume", "", "continue training from this checkpoint (weights, Adam state, data position, generators)");
  const std::string trace_path = cli.get_string(
      "trace", "", "write every training loss and validation loss to this file, one 'train|val <step> <loss>' per "
                   "line, with full precision");
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
    const Checkpoint ck = read_checkpoint(sample_only);
    prime = choose_prime(prime, ck.vocab);
    CharModel model(ck.settings, ck.vocab.size());
    load_weights(model, ck, sample_only);
    const std::string text = sample(model, ck.vocab, prime, sample_len, temperature, gen);
    fmt::print("{} ({}, H={}, |V|={}, {} steps trained, train loss {:.3f}), temperature {}:\n{}\n", sample_only,
               ck.settings.cell, ck.settings.hidden, ck.vocab.size(), ck.steps, ck.train_loss, temperature, text);
    if (json) fmt::print("{}\n", ex::JsonLine().add("sample", text).add("vocab", double(ck.vocab.size())).str());
    return 0;
  }

  // ---- data: the text, its vocabulary, a held-out tail -----------------------------------
  const std::string text = text_path.empty() ? ex::essay_text() : ex::read_text_file(text_path);
  Checkpoint ck;
  if (!resume.empty()) {
    ck = read_checkpoint(resume);
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
  fmt::print("text: {} characters ({} train, {} validation = the last {:.0f}% of the same file), vocabulary |V| = {}\n",
             ids.size(), train_ids.size(), val_ids.size(), 100 * val_frac, V);
  // Another file to evaluate on after training: its bytes in the training vocabulary.
  std::vector<int64_t> valid_ids;
  int64_t valid_skipped = 0;
  if (!valid_path.empty()) {
    const std::string vt = ex::read_text_file(valid_path);
    for (unsigned char c : vt) {
      const int64_t id = vocab.id[c];
      if (id < 0) ++valid_skipped;
      else valid_ids.push_back(id);
    }
    if (valid_ids.size() < 2) throw DataError(fmt::format("--valid '{}': fewer than 2 characters of the training vocabulary", valid_path));
    fmt::print("--valid {}: {} characters ({} outside the training vocabulary, skipped)\n", valid_path, valid_ids.size(),
               valid_skipped);
  }

  // ---- model and optimizer --------------------------------------------------------------
  CharModel model(settings, V);
  if (!resume.empty()) {
    load_weights(model, ck, resume);
    fmt::print("resumed from {} ({} steps, train loss {:.4f})\n", resume, ck.steps, ck.train_loss);
  }
  fmt::print("model: Embedding({}, {}) -> {} (H={}, L={}) -> Linear({}, {}): {} parameters\n", V, settings.embed,
             settings.cell, settings.hidden, settings.layers, settings.hidden, V, model.num_parameters());
  optim::Adam opt(model.parameters(), {.lr = lr});

  // The training state (Note [exact resume]): Adam and the generators, then the data
  // position and carried state if the streams are laid out as when it was saved.
  State state;
  int64_t pos = -1;  // the next chunk's position in each stream; -1: draw a fresh one
  if (!resume.empty() && !ck.tensors.contains("rng.data")) {
    fmt::print("note: {} holds no optimizer or data state (an older checkpoint): training continues from its "
               "weights with a fresh Adam and data order, not as an exact continuation\n",
               resume);
  } else if (!resume.empty()) {
    try {
      opt.load_state_dict(with_prefix(ck.tensors, "optim."));
    } catch (const Error& e) {
      throw DataError(fmt::format("checkpoint '{}': optimizer state: {}", resume, e.what()));
    }
    opt.set_lr(lr);  // --lr wins over the stored rate (equal when the flags are the same)
    restore_generator(gen, ck, "rng.data", resume);
    restore_generator(model.drop->generator(), ck, "rng.dropout", resume);
    restore_generator(model.rnn->dropout_generator(), ck, "rng.rnn_dropout", resume);
    restore_generator(default_generator(), ck, "rng.default", resume);
    const bool same_layout = ck.meta.data_pos >= 0 && ck.meta.batch == B && ck.meta.seq == T &&
                             ck.meta.train_chars == static_cast<int64_t>(train_ids.size());
    if (same_layout) {
      pos = ck.meta.data_pos;
      for (const char* name : {"state.h", "state.c"})
        if (const Tensor* t = ck.tensors.find(name)) state.push_back(Variable(t->clone()));
      if (!state.empty() && (state.size() != (settings.cell == "lstm" ? 2u : 1u) ||
                             state[0].shape() != Shape{settings.layers, B, settings.hidden}))
        throw DataError(fmt::format("checkpoint '{}': the carried state does not fit --layers {} --batch {} "
                                    "--hidden {}",
                                    resume, settings.layers, B, settings.hidden));
    } else {
      fmt::print("note: {} was trained on other streams (--batch, --seq or text): the data order starts afresh, "
                 "not as an exact continuation\n",
                 resume);
    }
  }

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
  if (pos < 0) pos = gen.randint(0, std::min(T, L - T + 1));
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
    if (val_ids.size() > 1 && ((ck.steps + step) % eval_every == 0 || step == steps)) {
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

  // ---- checkpoint: weights, vocabulary, settings and training state ---------------------
  const int64_t total_steps = ck.steps + steps;
  StateDict tensors = model.state_dict();
  for (const auto& [name, t] : opt.state_dict()) tensors.insert("optim." + name, t);
  tensors.insert("rng.data", gen.get_state());
  tensors.insert("rng.dropout", model.drop->generator().get_state());
  tensors.insert("rng.rnn_dropout", model.rnn->dropout_generator().get_state());
  tensors.insert("rng.default", default_generator().get_state());
  if (!state.empty()) tensors.insert("state.h", state[0].data());
  if (state.size() > 1) tensors.insert("state.c", state[1].data());
  save_safetensors(save_path, tensors,
                   {{"format", "unroll-char-lm-1"},
                    {"cell", settings.cell},
                    {"embed", std::to_string(settings.embed)},
                    {"hidden", std::to_string(settings.hidden)},
                    {"layers", std::to_string(settings.layers)},
                    {"vocab", vocab.to_metadata()},
                    {"steps", std::to_string(total_steps)},
                    {"train_loss", fmt::format("{}", std::isnan(final_train) ? ck.train_loss : final_train)},
                    {"data_pos", std::to_string(pos)},
                    {"batch", std::to_string(B)},
                    {"seq", std::to_string(T)},
                    {"train_chars", std::to_string(train_ids.size())}});

  // ---- trace: every loss, exactly -------------------------------------------------------
  if (!trace_path.empty()) {
    std::string lines;
    size_t v = 0;
    auto flush_val_until = [&](double step) {  // validation losses up to `step`, in order
      for (; v < val_x.size() && val_x[v] <= step; ++v)
        lines += fmt::format("val {} {:.17g}\n", static_cast<int64_t>(val_x[v]), val_curve[v]);
    };
    for (size_t i = 0; i < train_curve.size(); ++i) {
      flush_val_until(step_x[i] - 1);
      lines += fmt::format("train {} {:.17g}\n", static_cast<int64_t>(step_x[i]), train_curve[i]);
    }
    flush_val_until(INFINITY);
    std::FILE* f = std::fopen(trace_path.c_str(), "wb");
    if (f == nullptr)
      throw DataError(fmt::format("cannot write --trace file '{}': {}", trace_path, std::strerror(errno)));
    const bool ok = std::fwrite(lines.data(), 1, lines.size(), f) == lines.size();
    if (std::fclose(f) != 0 || !ok) throw DataError(fmt::format("cannot write --trace file '{}'", trace_path));
  }

  // ---- figure: the loss curve ------------------------------------------------------------
  const std::string fig = out + "/char_lm_loss.svg";
  plot::LinePlot lp;
  // In bits per character, the unit the summary and the README use (the losses are in nats).
  const double to_bits = 1.0 / std::log(2.0);
  auto bits = [&](std::vector<double> v) {
    for (double& y : v) y *= to_bits;
    return v;
  };
  lp.title = fmt::format("char_lm: {} H={}, |V|={} (log2|V| = {:.2f} bits)", settings.cell, settings.hidden, V, ln_v * to_bits);
  lp.xlabel = "training step";
  lp.ylabel = "cross-entropy (bits per character)";
  if (!step_x.empty()) lp.add("train (one chunk)", step_x, bits(train_curve));
  if (!val_curve.empty()) {
    lp.add("validation (held-out tail of the training file)", val_x, bits(val_curve));
    lp.series.back().markers = true;
  }
  const double x0 = static_cast<double>(ck.steps);
  const double x1 = static_cast<double>(std::max<int64_t>(total_steps, ck.steps + 1));
  lp.add_reference("log2|V| (uniform guess)", x0, x1, ln_v * to_bits);
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
  double valid_loss = NAN;
  if (!valid_ids.empty()) {
    valid_loss = evaluate(model, valid_ids, T);
    fmt::print("--valid {}: loss {:.4f} ({:.3f} bits/char) over {} characters\n", valid_path, valid_loss,
               valid_loss / std::log(2.0), valid_ids.size());
  }
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
                           .add("valid_file_loss", valid_loss)
                           .add("valid_file_bpc", valid_loss / std::log(2.0))
                           .add("valid_file_chars", static_cast<double>(valid_ids.size()))
                           .add("valid_file_skipped", static_cast<double>(valid_skipped))
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
  return ex::guarded_main("char_lm", argc, argv, run, ex::on_error<UsageError>(ex::ErrorPrefix::program, 2));
}
