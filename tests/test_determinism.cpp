// Determinism (DESIGN.md: same seed, same thread count: bit-identical results). An LSTM and a
// GRU character model, B = 32 and H = 128, are trained for 50 steps twice at each thread
// count; every loss must match bit for bit (memcmp of the doubles), and so must the final
// parameters. At these sizes the recurrent products split across threads (Note [gemm
// threads] in core/thread_pool.cpp): h W_hh^T is M*N*K = 32 * 512 * 128 = 2^21 multiply-adds for
// the LSTM (4 pieces' worth of work), so set_num_threads(2) really runs two pieces at once.
// Whether 1 and 2 threads agree with each other is reported, not required.
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/recurrent.h"

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

using namespace unroll;

namespace {

constexpr int64_t V = 40, E = 32, H = 128, B = 32, T = 8, kSteps = 50;

struct LM : Module {
  explicit LM(bool use_gru) {
    embed = register_module("embed", std::make_shared<Embedding>(V, E));
    if (use_gru) gru = register_module("rnn", std::make_shared<GRU>(GRUOptions{.input_size = E, .hidden_size = H}));
    else lstm = register_module("rnn", std::make_shared<LSTM>(LSTMOptions{.input_size = E, .hidden_size = H}));
    head = register_module("head", std::make_shared<Linear>(H, V));
  }
  Variable forward(const Tensor& ids, State& state) {
    Variable x = (*embed)(ids);  // [T,B,E]
    Variable h;
    if (lstm) {
      RecurrentOutput out = (*lstm)(x, state);
      h = out.output;
      state = out.state;
    } else {
      RecurrentOutput out = (*gru)(x, state.empty() ? Variable() : state[0]);
      h = out.output;
      state = out.state;
    }
    return (*head)(h);  // [T,B,V]
  }
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<LSTM> lstm;
  std::shared_ptr<GRU> gru;
  std::shared_ptr<Linear> head;
};

struct Result {
  std::vector<double> losses;
  std::vector<Tensor> params;
};

/// kSteps of truncated BPTT with Adam and clipping on a fixed pseudo-random stream whose next
/// id is a function of the previous one 90% of the time (so there is something to learn).
Result train(bool gru, int threads) {
  set_num_threads(threads);
  manual_seed(42);
  LM model(gru);
  optim::Adam opt(model.parameters(), {.lr = 1e-2});
  Generator data(7);
  std::vector<int64_t> prev(B, 0);
  auto next_id = [&](size_t b) {
    prev[b] = data.uniform() < 0.1 ? data.randint(0, V) : (prev[b] * 7 + 1) % V;
    return prev[b];
  };
  std::vector<int64_t> stream(static_cast<size_t>((T + 1) * B));
  for (int64_t b = 0; b < B; ++b) stream[static_cast<size_t>(T * B + b)] = next_id(static_cast<size_t>(b));
  Result r;
  State state;
  for (int64_t step = 0; step < kSteps; ++step) {
    // The last row of the previous chunk is the first input of this one.
    std::copy(stream.end() - B, stream.end(), stream.begin());
    for (int64_t t = 1; t <= T; ++t)
      for (int64_t b = 0; b < B; ++b) stream[static_cast<size_t>(t * B + b)] = next_id(static_cast<size_t>(b));
    const std::vector<int64_t> x(stream.begin(), stream.end() - B), y(stream.begin() + B, stream.end());
    Variable logits = model.forward(indices(x, {T, B}), state);
    Variable loss = cross_entropy(reshape(logits, {T * B, V}), indices(y, {T * B}));
    opt.zero_grad();
    loss.backward();
    clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    state = detach(state);
    r.losses.push_back(loss.item());
  }
  for (const Variable& p : model.parameters()) r.params.push_back(p.data().clone());
  set_num_threads(1);
  return r;
}

/// Threads of this process (Linux: entries of /proc/self/task; 0 elsewhere).
int64_t process_threads() {
  std::error_code ec;
  int64_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/task", ec), end; !ec && it != end; it.increment(ec)) ++n;
  return n;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

bool same_params(const Result& a, const Result& b) {
  if (a.params.size() != b.params.size()) return false;
  for (size_t i = 0; i < a.params.size(); ++i)
    if (!equal(a.params[i], b.params[i])) return false;
  return true;
}

}  // namespace

TEST_CASE("same seed, same thread count: bit-identical loss traces and parameters (LSTM and GRU, 1 and 2 threads)") {
  for (bool gru : {false, true}) {
    const std::string name = gru ? "GRU" : "LSTM";
    CAPTURE(name);
    Result by_threads[2];
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      const Result a = train(gru, threads), b = train(gru, threads);
      REQUIRE(a.losses.size() == static_cast<size_t>(kSteps));
      CHECK(a.losses.back() < a.losses.front() - 1.0);  // it learns, so the trace is not trivial
      CHECK(same_bits(a.losses, b.losses));
      CHECK(same_params(a, b));
      by_threads[threads - 1] = a;
    }
    // The 2-thread runs did start a GEMM worker (the pool keeps it), so they really split work.
    if (std::filesystem::exists("/proc/self/task")) CHECK(process_threads() >= 2);
    const bool across = same_bits(by_threads[0].losses, by_threads[1].losses) && same_params(by_threads[0], by_threads[1]);
    MESSAGE(name, ": loss ", by_threads[0].losses.front(), " -> ", by_threads[0].losses.back(), "; 1 thread vs 2 threads: ",
            std::string(across ? "bit-identical too" : "DIFFERENT (allowed)"));
  }
}
