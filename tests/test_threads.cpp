// The thread contract (README "Threads"): per-thread state, and what may cross threads.
// (a) two LSTM regressors trained at once on two std::threads, initialised and fed from
//     explicit Generators, end with parameters bit-identical to each trained alone; the
//     default generator is per thread (manual_seed on one thread does not move another's).
// (b) a tensor made on thread A and freed on thread B, 10,000 times: no error, and the
//     live byte counts of A and B together return to their baseline (each thread counts
//     what it frees, so A's count rises by what B's falls; see the README).
// (c) a graph built on one thread and back-propagated on another gives the gradients of
//     the same graph back-propagated on its own thread, also after the builder thread
//     ran backward passes of its own over the same leaves (the visit marks of the
//     backward engine must not collide between threads).
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/init.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/recurrent.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using namespace unroll;

namespace {

constexpr int64_t I = 3, H = 8, B = 4, T = 6, kSteps = 30;

struct Regressor : Module {
  Regressor() {
    lstm = register_module("rnn", std::make_shared<LSTM>(LSTMOptions{.input_size = I, .hidden_size = H}));
    head = register_module("head", std::make_shared<Linear>(H, 1));
  }
  Variable forward(const Variable& x) {
    State state;
    RecurrentOutput out = (*lstm)(x, state);                    // [T,B,H]
    return (*head)(narrow(out.output, 0, T - 1, 1));       // [1,B,1]
  }
  std::shared_ptr<LSTM> lstm;
  std::shared_ptr<Linear> head;
};

/// Trains a regressor of the sum of its inputs; every random number comes from `seed`.
std::vector<Tensor> train(uint64_t seed) {
  Generator gen(seed);
  Regressor model;
  for (Variable& p : model.parameters()) init::uniform_(p, -0.3, 0.3, gen);
  optim::Adam opt(model.parameters(), {.lr = 1e-2});
  for (int64_t step = 0; step < kSteps; ++step) {
    Tensor x = randn({T, B, I}, gen);
    Tensor y = sum(sum(x, 0, true), 2, true);  // [1,B,1]
    Variable loss = mse_loss(model.forward(Variable(x)), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  std::vector<Tensor> params;
  for (const Variable& p : model.parameters()) params.push_back(p.data().clone());
  return params;
}

bool same(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!equal(a[i], b[i])) return false;
  return true;
}

}  // namespace

TEST_CASE("threads: two models trained at once give the parameters of each trained alone") {
  const std::vector<Tensor> alone1 = train(1), alone2 = train(2);
  REQUIRE_FALSE(same(alone1, alone2));  // different seeds, different models
  std::vector<Tensor> par1, par2;
  std::thread t1([&] { par1 = train(1); });
  std::thread t2([&] { par2 = train(2); });
  t1.join();
  t2.join();
  CHECK(same(par1, alone1));
  CHECK(same(par2, alone2));
}

TEST_CASE("threads: the default generator is per thread, each starting at seed 0") {
  manual_seed(123);
  const Tensor main_draw = randn({4}, default_generator());
  Tensor fresh, fresh_ref, seeded, seeded_ref;
  std::thread a([&] {
    fresh = randn({4}, default_generator());  // a new thread's default generator starts as Generator(0)
    manual_seed(7);      // moves this thread's generator only
    seeded = randn({4}, default_generator());
  });
  a.join();
  {
    Generator g0(0), g7(7);
    fresh_ref = randn({4}, g0);
    seeded_ref = randn({4}, g7);
  }
  CHECK(equal(fresh, fresh_ref));
  CHECK(equal(seeded, seeded_ref));
  // The main thread's stream continued undisturbed by the other thread's manual_seed.
  manual_seed(123);
  CHECK(equal(randn({4}, default_generator()), main_draw));
}

TEST_CASE("threads: a tensor made on thread A and freed on thread B, 10,000 times") {
  constexpr int kTimes = 10000;
  constexpr int64_t kElems = 300;  // 1,200 bytes each
  int64_t a_before = 0, a_after = 0, b_before = 0, b_after = 0;
  Tensor slot;
  bool ready = false;
  std::mutex mu;
  std::condition_variable cv;
  std::thread b([&] {
    b_before = memory_stats().live_bytes;
    for (int i = 0; i < kTimes; ++i) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return ready; });
      Tensor taken = std::move(slot);
      ready = false;
      cv.notify_all();
      lock.unlock();
      CHECK_EQ(taken.numel(), kElems);
      // `taken` is freed here, on thread B.
    }
    b_after = memory_stats().live_bytes;
  });
  a_before = memory_stats().live_bytes;
  reset_peak_memory();
  for (int i = 0; i < kTimes; ++i) {
    Tensor t = full({kElems}, static_cast<double>(i));
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !ready; });
    slot = std::move(t);
    ready = true;
    cv.notify_all();
  }
  b.join();
  a_after = memory_stats().live_bytes;
  const int64_t a_peak = memory_stats().peak_bytes;
  MESSAGE("live bytes: A ", a_before, " -> ", a_after, " (peak +", a_peak - a_before, "), B ", b_before, " -> ",
          b_after);
  // Each thread counts what it allocated and nobody has freed yet, wherever it was freed
  // (Note [storage across threads]): both are back at their baseline.
  CHECK_EQ(a_after, a_before);
  CHECK_EQ(b_after, b_before);
  // And at every moment A counted only the tensors in flight (the one it made, the one in
  // the slot, the one B holds), not the 10,000 it made.
  CHECK_LE(a_peak - a_before, 3 * kElems * 4);
}

TEST_CASE("threads: storage outliving the thread that made it is freed where it dies") {
  const int64_t before = memory_stats().live_bytes;
  std::vector<Tensor> kept;
  std::thread maker([&] {
    for (int i = 0; i < 100; ++i) kept.push_back(full({64}, static_cast<double>(i)));
  });
  maker.join();  // its pool is gone; the blocks live on
  CHECK_EQ(memory_stats().live_bytes, before);  // made elsewhere: not this thread's
  for (int i = 0; i < 100; ++i) CHECK_EQ(kept[static_cast<size_t>(i)].data<float>()[0], static_cast<float>(i));
  kept.clear();  // freed here, their owner gone: back to the heap (ASan checks the lot)
  CHECK_EQ(memory_stats().live_bytes, before);
  // A new thread may take over the exited thread's pool record (a new generation): it
  // starts at zero and its counts are its own.
  int64_t fresh = -1;
  std::thread next([&] { fresh = memory_stats().live_bytes; });
  next.join();
  CHECK_EQ(fresh, 0);
}

namespace {
struct Leaves {
  Variable w, x;
  Leaves() {
    Generator gen(3);
    w = Variable(randn({5, 4}, gen, DType::F64), true);
    x = Variable(randn({3, 5}, gen, DType::F64), true);
  }
};
/// On the calling thread: a first backward pass through h = x w (retaining the graph), then
/// a second graph over the same h, returned to be back-propagated.
Variable second_graph(Leaves& l) {
  Variable h = matmul(l.x, l.w);
  sum(tanh(h)).backward({.retain_graph = true});
  l.w.zero_grad();
  l.x.zero_grad();
  return sum(h * h);
}
}  // namespace

TEST_CASE("threads: a graph built on one thread and back-propagated on another") {
  Leaves ref, cross;
  // Reference: everything on one fresh thread.
  std::thread r([&] { second_graph(ref).backward(); });
  r.join();
  // Built on fresh thread A (after a backward pass of A's own over the shared h),
  // back-propagated and freed on fresh thread B, whose first backward pass it is.
  Variable loss;
  std::thread a([&] { loss = second_graph(cross); });
  a.join();
  std::thread b([&] {
    loss.backward();
    loss = Variable();
  });
  b.join();
  REQUIRE(ref.w.grad().defined());
  REQUIRE(cross.w.grad().defined());
  REQUIRE(cross.x.grad().defined());
  CHECK(equal(cross.w.grad(), ref.w.grad()));
  CHECK(equal(cross.x.grad(), ref.x.grad()));
}
