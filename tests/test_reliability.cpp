// Reliability over time: anomaly mode names the op and the time step where a recurrent net
// blows up; optimizer state round-trips; training resumed from a checkpoint continues bit for
// bit as if it had never stopped, even when a later checkpoint save is cut off at any byte.
#include <doctest/doctest.h>

#include <unroll.h>

#include "core/atomic_file.h"
#include "core/testing_hooks.h"
#include "nn/checkpoint.h"
#include "test_support.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/recurrent.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <vector>

using namespace unroll;
namespace fs = std::filesystem;
using test_support::read_bytes;
using test_support::scratch;

namespace {

/// The message of the unroll::Error that f throws ("" if none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

/// The number after "step " in an anomaly message (-1 if absent).
int step_in(const std::string& msg) {
  const size_t at = msg.find("step ");
  return at == std::string::npos ? -1 : std::atoi(msg.c_str() + at + 5);
}

/// The op named in "anomaly: backward of 'op'" or "anomaly: forward of 'op'" ("" if absent).
std::string op_in(const std::string& msg) {
  const size_t a = msg.find('\'');
  const size_t b = a == std::string::npos ? a : msg.find('\'', a + 1);
  return b == std::string::npos ? "" : msg.substr(a + 1, b - a - 1);
}

int count_temporaries(const fs::path& dir) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp-") != std::string::npos) ++n;
  return n;
}

bool bit_identical(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

/// Sets every parameter of a module to zero.
void zero_parameters(Module& m) {
  for (Variable& p : m.parameters()) fill_(p.data(), 0.0);
}

/// w * identity into the [H,H] (or the rows [row0, row0+H) of a [kH,H]) weight.
void set_scaled_identity(Variable& weight, int64_t row0, double w) {
  const int64_t H = weight.size(1);
  Tensor& t = weight.data();
  std::vector<double> v = t.to_vector();
  for (int64_t i = 0; i < H; ++i) v[static_cast<size_t>((row0 + i) * H + i)] = w;
  copy_(t, tensor(v, t.shape(), t.dtype()));
}

}  // namespace

// ---- anomaly mode over time ---------------------------------------------------------------------
//
// An exploding recurrence: h_t = tanh(W h_{t-1} + U x_t + b) with W = w I, x = 0, b = 0 and
// h_0 = 0 keeps h_t = 0 (a perfectly finite forward pass), but tanh'(0) = 1, so the gradient
// of sum(h_{T-1}) with respect to h_{T-1-k} is w^k: it overflows to inf k steps before the
// end, where w^k first exceeds the dtype's largest value. The backward of the op of step
// T-k computes that gradient, and anomaly mode names it with its step.

TEST_CASE("anomaly mode: an exploding tanh RNN names the op and the time step, via run_cell and via RNN") {
  struct Case {
    DType dtype;
    double w;
    int k;  // first k with w^k > the dtype's largest value
  };
  const int64_t T = 110;
  for (const Case& c : {Case{DType::F32, 1000.0, 13}, Case{DType::F64, 1000.0, 103}}) {
    CAPTURE(std::string(dtype_name(c.dtype)));
    const double largest = c.dtype == DType::F32 ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
    REQUIRE(std::pow(c.w, c.k - 1) < largest);
    REQUIRE_FALSE(std::pow(c.w, c.k) < largest);
    RNN rnn({.input_size = 3, .hidden_size = 4});
    rnn.to(c.dtype);
    zero_parameters(rnn);
    Variable w_hh = rnn.named_parameters()[1].second;
    REQUIRE(rnn.named_parameters()[1].first == "weight_hh_l0");
    set_scaled_identity(w_hh, 0, c.w);
    const Variable x(zeros({T, 2, 3}, c.dtype));  // [T,B,I]

    // Without anomaly mode the inf goes through silently (as in PyTorch): the weight gradient
    // is inf * 0 = NaN.
    {
      RecurrentOutput out = rnn(x);
      sum(out.h_n()).backward();
      bool all_finite = true;
      for (double g : w_hh.grad().to_vector()) all_finite = all_finite && std::isfinite(g);
      CHECK_FALSE(all_finite);
      rnn.zero_grad();
    }

    AnomalyModeGuard anomaly;
    const std::string via_cell = error_of([&] {
      SequenceResult r = run_cell(rnn.cell(0), x);
      sum(r.final_state[0]).backward();
    });
    rnn.zero_grad();
    const std::string via_module = error_of([&] { sum(rnn(x).h_n()).backward(); });
    rnn.zero_grad();
    INFO(via_cell);
    INFO(via_module);
    CHECK(via_cell.find("anomaly: backward of '") == 0);
    CHECK(via_cell.find("NaN or Inf") != std::string::npos);
    CHECK(step_in(via_cell) == T - c.k);  // the step whose backward first overflowed
    CHECK_FALSE(op_in(via_cell).empty());
    // The module runs the same cell under the same step labels: the same op, the same step.
    CHECK(step_in(via_module) == T - c.k);
    CHECK(op_in(via_module) == op_in(via_cell));
    MESSAGE(via_module);
  }
}

TEST_CASE("anomaly mode: an LSTM whose gradient explodes, and a forward overflow, name their steps") {
  // LSTM with zero weights except W_hg = w I (the g gate's recurrent weight): h = c = 0 at
  // every step, and the gradient grows by about w/4 per step (d h_t / d h_{t-1} through
  // o * (i * tanh'(g)) = 1/2 * 1/2 * w, plus the cell path), so w = 4000 gives ~1000x per step.
  const int64_t T = 40;
  LSTM lstm({.input_size = 2, .hidden_size = 3});
  zero_parameters(lstm);
  Variable w_hh = lstm.named_parameters()[1].second;  // [4H,H], gates i,f,g,o
  REQUIRE(lstm.named_parameters()[1].first == "weight_hh_l0");
  set_scaled_identity(w_hh, 2 * 3, 4000.0);
  const Variable x(zeros({T, 1, 2}));
  AnomalyModeGuard anomaly;
  const std::string via_cell = error_of([&] {
    SequenceResult r = run_cell(lstm.cell(0), x);
    sum(r.final_state[0]).backward();
  });
  lstm.zero_grad();
  const std::string via_module = error_of([&] { sum(lstm(x).h_n()).backward(); });
  INFO(via_cell);
  INFO(via_module);
  CHECK(via_cell.find("anomaly: backward of '") == 0);
  const int step = step_in(via_cell);
  CHECK(step >= T - 16);  // ~1000^13 > FLT_MAX: about 13 steps back from the end
  CHECK(step <= T - 10);
  CHECK(step_in(via_module) == step);
  CHECK(op_in(via_module) == op_in(via_cell));
  MESSAGE(via_module);

  // Forward: a float32 spike at t = 7 overflows the pre-activation x W_ih^T + ...; the error
  // comes from the forward pass, names the op and step 7, and nothing after it runs.
  RNN rnn({.input_size = 3, .hidden_size = 4});
  for (Variable& p : rnn.parameters()) fill_(p.data(), 2.0);
  Tensor spike = zeros({12, 1, 3});
  for (int i = 0; i < 3; ++i) spike.data<float>()[7 * 3 + i] = 3e38f;
  const int64_t nodes_before = live_nodes();
  const std::string fwd = error_of([&] { (void)rnn(Variable(spike)); });
  INFO(fwd);
  CHECK(fwd.find("anomaly: forward of '") == 0);
  CHECK(step_in(fwd) == 7);
  CHECK(fwd.find("[1,4]") != std::string::npos);  // the shape of the op's output [B,H]
  CHECK(live_nodes() == nodes_before);              // the partial graph was freed
  MESSAGE(fwd);
}

// ---- optimizer state ----------------------------------------------------------------------------

namespace {

/// Two parameters and a fixed sequence of gradients: step k uses gradients made from k.
struct OptimFixture {
  std::vector<Variable> params;
  explicit OptimFixture(DType dtype) {
    params.emplace_back(tensor({0.5, -1.0, 2.0, 0.25}, {2, 2}, dtype), true);
    params.emplace_back(tensor({1.0, -3.0}, {2}, dtype), true);
  }
  std::vector<Variable> clone_params() const {
    std::vector<Variable> out;
    for (const Variable& p : params) out.emplace_back(p.data().clone(), true);
    return out;
  }
};

void set_grads(std::vector<Variable>& params, int k, bool skip_second) {
  for (size_t i = 0; i < params.size(); ++i) {
    if (skip_second && i == 1) {
      params[i].zero_grad();
      continue;
    }
    Tensor g = params[i].data().clone();
    std::vector<double> v = g.to_vector();
    for (size_t j = 0; j < v.size(); ++j) v[j] = std::sin(1.0 + static_cast<double>(k) * 0.7 + static_cast<double>(j + 3 * i));
    params[i].set_grad(tensor(v, g.shape(), g.dtype()));
  }
}

using MakeOptim = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Variable>)>;

}  // namespace

TEST_CASE("optimizer state_dict: every optimizer resumes bit for bit, through a safetensors file") {
  const fs::path dir = scratch("optim_state");
  const std::vector<std::pair<const char*, MakeOptim>> kinds{
      {"SGD", [](std::vector<Variable> p) {
         return std::make_unique<optim::SGD>(std::move(p), optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
       }},
      {"Adam", [](std::vector<Variable> p) {
         return std::make_unique<optim::Adam>(std::move(p), optim::AdamOptions{.lr = 0.01, .amsgrad = true});
       }},
      {"AdamW", [](std::vector<Variable> p) { return std::make_unique<optim::AdamW>(std::move(p), 0.01); }},
      {"RMSprop", [](std::vector<Variable> p) {
         return std::make_unique<optim::RMSprop>(std::move(p),
                                                 optim::RMSpropOptions{.lr = 0.01, .momentum = 0.5, .centered = true});
       }},
      {"Adagrad", [](std::vector<Variable> p) {
         return std::make_unique<optim::Adagrad>(std::move(p), optim::AdagradOptions{.lr = 0.1, .lr_decay = 0.01});
       }},
  };
  for (DType dtype : {DType::F32, DType::F64}) {
    for (const auto& [name, make] : kinds) {
      CAPTURE(std::string(name));
      CAPTURE(std::string(dtype_name(dtype)));
      OptimFixture a(dtype);
      auto opt_a = make(a.params);
      // Three steps, the second parameter skipped once (its step count lags), lr changed.
      for (int k = 0; k < 3; ++k) {
        set_grads(a.params, k, k == 1);
        opt_a->step();
      }
      opt_a->set_lr(opt_a->lr() * 0.5);
      const StateDict sd = opt_a->state_dict();
      CHECK(sd.contains("param_groups.0.lr"));
      CHECK(sd.at("state.0.step").item() == 3);
      CHECK(sd.at("state.1.step").item() == 2);
      const std::string path = (dir / fmt::format("{}_{}.safetensors", name, dtype_name(dtype))).string();
      save_safetensors(path, sd);

      // A fresh optimizer over copies of the parameters, loaded from the file.
      OptimFixture b(dtype);
      b.params = a.clone_params();
      auto opt_b = make(b.params);
      opt_b->load_state_dict(load_safetensors(path).tensors);
      CHECK(opt_b->lr() == opt_a->lr());
      for (int k = 3; k < 6; ++k) {
        set_grads(a.params, k, false);
        set_grads(b.params, k, false);
        opt_a->step();
        opt_b->step();
      }
      for (size_t i = 0; i < a.params.size(); ++i) CHECK(equal(a.params[i].data(), b.params[i].data()));

      // Without the state the same steps give different parameters (the test can fail).
      OptimFixture c(dtype);
      c.params = b.clone_params();
      auto opt_c = make(c.params);
      set_grads(b.params, 6, false);
      set_grads(c.params, 6, false);
      opt_b->step();
      opt_c->set_lr(opt_b->lr());
      opt_c->step();
      CHECK_FALSE(equal(b.params[0].data(), c.params[0].data()));
    }
  }
}

TEST_CASE("optimizer load_state_dict rejects a state it cannot continue from, and then changes nothing") {
  OptimFixture f(DType::F32);
  optim::Adam adam(f.params, 0.01);
  set_grads(f.params, 0, false);
  adam.step();
  const StateDict good = adam.state_dict();
  CHECK(good.size() == 1 + 2 * 3);  // lr, and step, exp_avg, exp_avg_sq per parameter

  auto without = [&](const std::string& drop) {
    StateDict s;
    for (const auto& [k, v] : good)
      if (k != drop) s.insert(k, v);
    return s;
  };
  auto with = [&](const std::string& key, const Tensor& value) {
    StateDict s;
    for (const auto& [k, v] : good) s.insert(k, k == key ? value : v);
    if (!good.contains(key)) s.insert(key, value);
    return s;
  };
  optim::Adam fresh(f.clone_params(), 0.5);
  using doctest::Contains;
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(without("state.1.exp_avg_sq")),
                       Contains("Adam: load_state_dict: parameter 1 has \"state.1.step\" but no \"state.1.exp_avg_sq\""),
                       Error);
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(without("param_groups.0.lr")), Contains("\"param_groups.0.lr\" is missing"),
                       Error);
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(with("state.0.exp_avg", zeros({4}))),
                       Contains("\"state.0.exp_avg\" is [4] float32 but parameter 0 is [2,2] float32"), Error);
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(with("state.2.step", scalar_tensor(1, DType::I64))),
                       Contains("unexpected keys \"state.2.step\""), Error);
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(with("state.0.step", scalar_tensor(-1, DType::I64))),
                       Contains("\"state.0.step\" must be one count >= 0"), Error);
  // State without its step count is unexpected (it could not be used).
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(without("state.0.step")), Contains("unexpected keys \"state.0.exp_avg\""),
                       Error);
  // An amsgrad Adam needs max_exp_avg_sq; SGD with momentum finds no momentum_buffer.
  optim::Adam ams(f.clone_params(), {.lr = 0.01, .amsgrad = true});
  CHECK_THROWS_WITH_AS(ams.load_state_dict(good), Contains("no \"state.0.max_exp_avg_sq\""), Error);
  optim::SGD sgd(f.clone_params(), {.lr = 0.1, .momentum = 0.9});
  CHECK_THROWS_WITH_AS(sgd.load_state_dict(good), Contains("SGD: load_state_dict: parameter 0"), Error);
  // Nothing changed: the fresh Adam still has lr 0.5 and no state.
  CHECK(fresh.lr() == 0.5);
  CHECK(fresh.state_dict().size() == 1);
}

// ---- resuming training from a checkpoint ---------------------------------------------------------

namespace {

constexpr const char* kText =
    "a recurrent network reads one character at a time and carries a summary of what it has read in its "
    "hidden state; the same weights are used at every step, so the loop is a very deep and thin graph. ";

/// Embedding -> LSTM -> Linear over ids [T,B] with the state carried between chunks.
struct TinyLM : Module {
  TinyLM(int64_t V, int64_t E, int64_t H) {
    embed = register_module("embed", std::make_shared<Embedding>(V, E));
    lstm = register_module("lstm", std::make_shared<LSTM>(LSTMOptions{.input_size = E, .hidden_size = H}));
    head = register_module("head", std::make_shared<Linear>(H, V));
  }
  Variable forward(const Tensor& ids, State& state) {
    RecurrentOutput out = (*lstm)((*embed)(ids), state);
    state = out.state;
    return (*head)(out.output);  // [T,B,V]
  }
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<LSTM> lstm;
  std::shared_ptr<Linear> head;
};

/// Everything a training run is: model, optimizer, carried state and the step counter. The
/// data of step s is a function of s alone, so a run can stop and continue anywhere.
struct Run {
  static constexpr int64_t B = 4, T = 12;
  std::vector<int64_t> ids;
  int64_t V = 0, L = 0;
  std::unique_ptr<TinyLM> model;
  std::unique_ptr<optim::Adam> opt;
  State state;
  int64_t step = 0;

  explicit Run(uint64_t init_seed, int64_t E = 8, int64_t H = 16) {
    std::string text(kText);
    std::vector<int> seen(256, -1);
    for (unsigned char ch : text) {
      if (seen[ch] < 0) seen[ch] = static_cast<int>(V++);
      ids.push_back(seen[ch]);
    }
    L = (static_cast<int64_t>(ids.size()) - 1) / B;
    manual_seed(init_seed);
    model = std::make_unique<TinyLM>(V, E, H);
    opt = std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions{.lr = 0.01});
  }

  /// One truncated-BPTT step; returns the loss.
  double train_step() {
    const int64_t chunks = L / T;
    const int64_t pos = (step % chunks) * T;
    if (pos == 0) state.clear();  // a new pass over the streams starts from zeros
    std::vector<int64_t> x(static_cast<size_t>(T * B)), y(x.size());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t b = 0; b < B; ++b) {
        x[static_cast<size_t>(t * B + b)] = ids[static_cast<size_t>(b * L + pos + t)];
        y[static_cast<size_t>(t * B + b)] = ids[static_cast<size_t>(b * L + pos + t + 1)];
      }
    Variable logits = model->forward(indices(x, {T, B}), state);
    Variable loss = cross_entropy(reshape(logits, {-1, V}), indices(y, {T * B}));
    opt->zero_grad();
    loss.backward();
    clip_grad_norm(model->parameters(), 1.0);
    opt->step();
    state = detach(state);
    ++step;
    return loss.item();
  }

  /// Model, optimizer and carried state in one safetensors file; the step in the metadata.
  void save(const std::string& path) const {
    StateDict all;
    for (const auto& [k, v] : model->state_dict()) all.insert("model." + k, v);
    for (const auto& [k, v] : opt->state_dict()) all.insert("optim." + k, v);
    for (size_t i = 0; i < state.size(); ++i) all.insert(fmt::format("carry.{}", i), state[i].data());
    save_safetensors(path, all, {{"step", std::to_string(step)}});
  }

  void load(const std::string& path, bool with_optimizer = true, bool with_carry = true) {
    const SafetensorsFile f = load_safetensors(path);
    StateDict m, o;
    state.clear();
    for (const auto& [k, v] : f.tensors) {
      if (k.rfind("model.", 0) == 0) m.insert(k.substr(6), v);
      else if (k.rfind("optim.", 0) == 0) o.insert(k.substr(6), v);
      else if (with_carry) state.emplace_back(v.clone());
    }
    model->load_state_dict(m);
    if (with_optimizer) opt->load_state_dict(o);
    step = std::stoll(f.metadata.at("step"));
  }
};

std::vector<double> train(Run& run, int64_t steps) {
  std::vector<double> trace;
  for (int64_t i = 0; i < steps; ++i) trace.push_back(run.train_step());
  return trace;
}

}  // namespace

TEST_CASE("resuming from a checkpoint (model + Adam + carried state) continues the loss trace bit for bit") {
  const fs::path dir = scratch("resume");
  const int64_t N = 40, k = 17;  // k is mid-pass: the carried LSTM state matters
  Run full(1);
  const std::vector<double> reference = train(full, N);
  CHECK(reference.back() < reference.front() - 0.5);  // it learns

  Run first(1);
  std::vector<double> trace = train(first, k);
  const std::string path = (dir / "ck.safetensors").string();
  first.save(path);
  first = Run(99);  // everything gone; a fresh model with other weights

  Run resumed(99);
  resumed.load(path);
  CHECK(resumed.step == k);
  const std::vector<double> rest = train(resumed, N - k);
  trace.insert(trace.end(), rest.begin(), rest.end());
  CHECK(bit_identical(trace, reference));

  // Each part of the checkpoint is needed: without Adam's moments and step counts, or without
  // the carried hidden state, the trace departs from the reference.
  Run no_optim(99);
  no_optim.load(path, false, true);
  const std::vector<double> a = train(no_optim, N - k);
  CHECK(a[0] == reference[k]);  // the same weights and state give the same first loss ...
  CHECK_FALSE(bit_identical(a, {reference.begin() + k, reference.end()}));  // ... then Adam differs
  Run no_carry(99);
  no_carry.load(path, true, false);
  CHECK(no_carry.train_step() != reference[k]);
}

TEST_CASE("a checkpoint save cut off at every byte keeps the previous checkpoint, which still resumes exactly") {
  // tests/test_checkpoint.cpp cuts one save at a handful of offsets; here every byte of a
  // full training checkpoint (model, Adam state, carried state) is a crash point.
  const fs::path dir = scratch("fault_every_byte");
  const std::string path = (dir / "ck.safetensors").string();
  const int64_t N = 30, k = 12;
  Run full(3, 4, 8);  // a smaller model: fewer bytes to cut
  const std::vector<double> reference = train(full, N);

  Run run(3, 4, 8);
  std::vector<double> trace = train(run, k);
  run.save(path);
  const std::vector<uint8_t> saved = read_bytes(path);
  train(run, 5);  // a newer state, whose save will fail

  const std::string tmp = (dir / "new.safetensors").string();
  run.save(tmp);
  const auto size = static_cast<int64_t>(fs::file_size(tmp));
  fs::remove(tmp);
  int64_t failures = 0, unchanged = 0;
  for (int64_t cut = 0; cut < size; ++cut) {
    testing::set_atomic_write_fault(cut);
    try {
      run.save(path);
    } catch (const Error&) {
      ++failures;
    }
    unchanged += read_bytes(path) == saved ? 1 : 0;
  }
  CHECK(failures == size);
  CHECK(unchanged == size);
  CHECK(count_temporaries(dir) == 0);
  MESSAGE("a ", size, "-byte checkpoint save was cut at each of its ", size, " bytes; the previous file survived");

  Run resumed(7, 4, 8);
  resumed.load(path);
  const std::vector<double> rest = train(resumed, N - k);
  trace.insert(trace.end(), rest.begin(), rest.end());
  CHECK(bit_identical(trace, reference));
}
