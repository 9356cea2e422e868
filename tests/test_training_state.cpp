// TrainingState (nn/training_state.h, Note [exact resume]): a run saved after K steps and
// resumed into freshly built objects retraces the uninterrupted run bit for bit; a file of
// another run, or a damaged one, is an unroll::Error naming the part that does not fit,
// and leaves the objects as they were.
#include <doctest/doctest.h>
#include <unroll.h>

#include "test_support.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace unroll;
using test_support::scratch;

namespace {

constexpr const char* kText =
    "the state of a training run is more than its weights: the optimizer's moments, the generators "
    "of the data order and of dropout, the hidden state carried from chunk to chunk, the step. ";

/// Embedding -> LSTM -> Dropout -> Linear over ids [T,B], the state carried between chunks.
struct TinyLM : Module {
  TinyLM(int64_t V, int64_t E, int64_t H) {
    embed = register_module("embed", std::make_shared<Embedding>(V, E));
    lstm = register_module("lstm", std::make_shared<LSTM>(LSTMOptions{.input_size = E, .hidden_size = H}));
    drop = register_module("drop", std::make_shared<Dropout>(0.2));
    head = register_module("head", std::make_shared<Linear>(H, V));
  }
  Variable forward(const Tensor& ids, State& state) {
    RecurrentOutput out = (*lstm)((*embed)(ids), state);
    state = out.state;
    return (*head)((*drop)(out.output));  // [T,B,V]
  }
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<LSTM> lstm;
  std::shared_ptr<Dropout> drop;
  std::shared_ptr<Linear> head;
};

/// A truncated-BPTT run like char_lm's: B streams, each pass starts at a random offset drawn
/// from `data`, dropout draws from its own generator; every piece bound to a TrainingState.
struct Run {
  static constexpr int64_t B = 4, T = 10, H = 12;
  std::vector<int64_t> ids;
  int64_t V = 0, L = 0, streams = B;
  std::unique_ptr<TinyLM> model;
  std::unique_ptr<optim::Adam> opt;
  Generator data;
  State state;
  int64_t pos = -1, steps = 0;
  TrainingState ts;

  /// `seed` sets the initial weights and generators: a resumed run starts from other ones.
  explicit Run(uint64_t seed, int64_t batch = B) : streams(batch), data(seed + 1) {
    std::vector<int> seen(256, -1);
    for (unsigned char ch : std::string(kText)) {
      if (seen[ch] < 0) seen[ch] = static_cast<int>(V++);
      ids.push_back(seen[ch]);
    }
    L = (static_cast<int64_t>(ids.size()) - 1) / batch;
    manual_seed(seed);
    model = std::make_unique<TinyLM>(V, 6, H);
    model->drop->generator() = Generator(seed + 2);
    opt = std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions{.lr = 0.01});
    ts.optimizer(*opt)
        .generator("data", data)
        .generator("dropout", model->drop->generator())
        .carried(state, {"h", "c"}, {1, batch, H})
        .counter("steps", steps)
        .position("data_pos", pos)
        .layout("batch", batch)
        .layout("chars", static_cast<int64_t>(ids.size()));
  }

  double train_step() {
    const int64_t b_count = streams;
    if (pos < 0 || pos + T > L) {
      pos = data.randint(0, T / 2);
      state.clear();
    }
    std::vector<int64_t> x(static_cast<size_t>(T * b_count)), y(x.size());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t b = 0; b < b_count; ++b) {
        x[static_cast<size_t>(t * b_count + b)] = ids[static_cast<size_t>(b * L + pos + t)];
        y[static_cast<size_t>(t * b_count + b)] = ids[static_cast<size_t>(b * L + pos + t + 1)];
      }
    pos += T;
    Variable logits = model->forward(indices(x, {T, b_count}), state);
    Variable loss = cross_entropy(reshape(logits, {-1, V}), indices(y, {T * b_count}));
    opt->zero_grad();
    loss.backward();
    clip_grad_norm(model->parameters(), 1.0);
    opt->step();
    state = detach(state);
    ++steps;
    return loss.item();
  }

  std::vector<double> train(int64_t n) {
    std::vector<double> trace;
    for (int64_t i = 0; i < n; ++i) trace.push_back(train_step());
    return trace;
  }
  void save(const std::string& path) const { ts.save(path, model->state_dict(), {{"format", "test-1"}}); }
  TrainingState::Restored load(const std::string& path) {
    const SafetensorsFile f = load_safetensors(path);
    model->load_state_dict(TrainingState::weights_of(f.tensors));
    return ts.load(f, path);
  }
};

bool bit_identical(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

bool same_tensors(const StateDict& a, const StateDict& b) {
  if (a.keys() != b.keys()) return false;
  for (const auto& [name, t] : a) {
    const Tensor& u = *b.find(name);
    if (!(t.shape() == u.shape()) || t.dtype() != u.dtype() || t.to_vector() != u.to_vector()) return false;
  }
  return true;
}

/// The file at `path` with `edit` applied to its tensors and metadata, written to `out`.
template <typename Edit>
std::string edited(const std::string& path, const std::string& out, Edit edit) {
  SafetensorsFile f = load_safetensors(path);
  edit(f);
  save_safetensors(out, f.tensors, f.metadata);
  return out;
}

StateDict without(const StateDict& all, const std::string& name) {
  StateDict out;
  for (const auto& [k, t] : all)
    if (k != name) out.insert(k, t);
  return out;
}

}  // namespace

TEST_CASE("TrainingState: K steps, save, load into fresh objects, N-K steps retraces N steps bit for bit") {
  const auto dir = scratch("training_state_resume");
  const int64_t N = 30, K = 13;  // K is in the middle of a pass: the carried state matters
  Run full(1);
  const std::vector<double> reference = full.train(N);
  CHECK(reference.back() < reference.front());  // it learns

  Run first(1);
  std::vector<double> trace = first.train(K);
  const std::string path = (dir / "k.safetensors").string();
  first.save(path);
  const SafetensorsFile file = load_safetensors(path);
  for (const char* name : {"optim.state.0.exp_avg", "rng.data", "rng.dropout", "state.h", "state.c", "embed.weight"})
    CHECK_MESSAGE(file.tensors.contains(name), name);
  CHECK(file.metadata.at("steps") == std::to_string(K));
  CHECK(file.metadata.at("format") == "test-1");

  Run resumed(99);  // other weights, other generators
  CHECK(resumed.load(path) == TrainingState::Restored::all);
  CHECK(resumed.steps == K);
  CHECK(resumed.pos == first.pos);
  const std::vector<double> rest = resumed.train(N - K);
  trace.insert(trace.end(), rest.begin(), rest.end());
  CHECK(bit_identical(trace, reference));
  CHECK(same_tensors(resumed.model->state_dict(), full.model->state_dict()));
  CHECK(same_tensors(resumed.ts.state_dict(), full.ts.state_dict()));
  CHECK(resumed.ts.metadata() == full.ts.metadata());
}

TEST_CASE("TrainingState: a weights-only file restores nothing; another data layout keeps the position") {
  const auto dir = scratch("training_state_partial");
  Run first(1);
  first.train(7);
  const std::string path = (dir / "a.safetensors").string();
  first.save(path);

  // Weights only (an older checkpoint): nothing of the training state changes.
  const std::string weights = (dir / "weights.safetensors").string();
  save_safetensors(weights, first.model->state_dict());
  Run w(5);
  const StateDict before = w.ts.state_dict();
  CHECK(w.load(weights) == TrainingState::Restored::nothing);
  CHECK(same_tensors(w.ts.state_dict(), before));
  CHECK(w.steps == 0);
  CHECK(w.pos == -1);

  // Other streams (batch 2): optimizer, generators and counter come back, the position and
  // the carried state (of another shape) do not.
  Run other(5, 2);
  CHECK(other.load(path) == TrainingState::Restored::without_position);
  CHECK(other.steps == 7);
  CHECK(other.pos == -1);
  CHECK(other.state.empty());
  CHECK(other.data.get_state().to_indices() == first.data.get_state().to_indices());
  CHECK(same_tensors(other.opt->state_dict(), first.opt->state_dict()));
}

TEST_CASE("TrainingState: a damaged or mismatched file is an unroll::Error naming the part, and changes nothing") {
  using doctest::Contains;
  const auto dir = scratch("training_state_errors");
  Run first(1);
  first.train(5);
  const std::string path = (dir / "a.safetensors").string();
  first.save(path);
  auto out = [&](const char* name) { return (dir / name).string(); };

  struct Case {
    std::string file;
    std::vector<std::string> message;  // each must be in the error
  };
  const std::vector<Case> cases = {
      {edited(path, out("no_rng.st"), [](SafetensorsFile& f) { f.tensors = without(f.tensors, "rng.data"); }),
       {"no \"rng.data\"", "no_rng.st"}},
      {edited(path, out("bad_rng.st"),
              [](SafetensorsFile& f) {
                StateDict t;
                for (const auto& [k, v] : f.tensors) t.insert(k, k == "rng.data" ? zeros({3}, DType::I64) : v);
                f.tensors = t;
              }),
       {"\"rng.data\""}},
      {edited(path, out("shape.st"),
              [](SafetensorsFile& f) {
                StateDict t;
                for (const auto& [k, v] : f.tensors) t.insert(k, k == "state.h" ? zeros({1, 4, 7}) : v);
                f.tensors = t;
              }),
       {"\"state.h\"", "[1,4,7]", "[1,4,12]"}},
      {edited(path, out("half.st"), [](SafetensorsFile& f) { f.tensors = without(f.tensors, "state.c"); }),
       {"only 1 of its 2", "\"state.h\""}},
      {edited(path, out("optim.st"),
              [](SafetensorsFile& f) { f.tensors = without(f.tensors, "optim.state.0.exp_avg"); }),
       {"optimizer state", "optim."}},
      {edited(path, out("steps.st"), [](SafetensorsFile& f) { f.metadata["steps"] = "5x"; }), {"\"steps\"", "5x"}},
      {edited(path, out("no_steps.st"), [](SafetensorsFile& f) { f.metadata.erase("steps"); }),
       {"no metadata \"steps\""}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.file);
    Run r(7);
    const StateDict before = r.ts.state_dict();
    const SafetensorsFile f = load_safetensors(c.file);
    std::string message;
    try {
      r.ts.load(f, c.file);
    } catch (const Error& e) {
      message = e.what();
    }
    REQUIRE_FALSE(message.empty());
    for (const std::string& m : c.message) CHECK_MESSAGE(message.find(m) != std::string::npos, message);
    CHECK(same_tensors(r.ts.state_dict(), before));  // checked before anything is assigned
    CHECK(r.steps == 0);
  }

  // save refuses a weight under a training-state name and metadata it writes itself.
  StateDict clash;
  clash.insert("rng.x", zeros({1}));
  CHECK_THROWS_WITH_AS(first.ts.save(out("clash.st"), clash), Contains("\"rng.x\""), Error);
  CHECK_THROWS_WITH_AS(first.ts.save(out("clash.st"), first.model->state_dict(), {{"steps", "1"}}),
                       Contains("\"steps\" given twice"), Error);
}
