// The worker pool (core/thread_pool.h) and the process-wide thread count.
#include "core/thread_pool.h"

#include "core/error.h"
#include "core/tensor.h"

#include <chrono>

namespace unroll {

// Note [gemm threads]
// ~~~~~~~~~~~~~~~~~~
// With set_num_threads(n > 1), a product big enough to pay for waking a thread is cut into
// n pieces along N (or along M when M is the larger side), and each piece is an ordinary
// single-threaded gemm on a sub-matrix. Every element of C is still computed by the same
// micro-kernel lanes over the same KC slices of K, so the result does not depend on the
// thread count at all, let alone on timing. The workers are persistent; the calling
// thread runs piece 0 itself.
//
// A recurrent step calls GEMM a few times with ~10-100 us of single-threaded elementwise
// work in between, and waking a thread blocked on a condition variable costs tens of
// microseconds on a virtual machine (a futex syscall on each side, then the scheduler).
// So an idle worker first spins on the published generation for kSpin, and the caller
// spins on the pending count before blocking: back-to-back products never sleep, and an
// idle pool still blocks after kSpin. The spins yield the core every few dozen pauses, so
// on a busy machine they give way to runnable threads. The caller also claims pieces
// itself once its own is done, so a worker that is slow to wake delays nothing. All state
// changes happen under mu_; the spins only read atomics (generation_, pending_), so they
// cannot claim a piece or miss a wake-up. Measured (bench_rnn threads_lstm_b32_h512, B 32, H 512), 2
// threads vs 1: 1.25x before, 1.70x with both changes on an idle machine; with both cores
// busy with other processes, 2 threads took 330 ms/step before and 113 ms/step after
// (1 thread: 119 ms).
namespace detail {
namespace {

constexpr auto kSpin = std::chrono::microseconds(200);

template <class Pred>
void spin_until(Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0; !done(); ++i) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_ia32_pause();
#endif
    if ((i & 63) == 63) {
      if (std::chrono::steady_clock::now() > deadline) return;
      std::this_thread::yield();  // a busy machine: let a runnable thread have the core
    }
  }
}

std::atomic<int> g_num_threads{1};

}  // namespace

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);  // ends the spins
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_job(int n, int workers, void (*job)(void*, int), void* ctx) {
  std::lock_guard<std::mutex> one_job(run_mu_);  // callers on different threads take turns
  ensure_workers(workers);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = job;
    ctx_ = ctx;
    n_tasks_ = n;
    next_ = 1;
    pending_.store(n - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  job(ctx, 0);
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (next_ < n_tasks_) {
      const int i = next_++;
      lock.unlock();
      job(ctx, i);
      lock.lock();
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }
  spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; });
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [this] { return pending_.load(std::memory_order_relaxed) == 0; });
}

void ThreadPool::ensure_workers(int n) {
  while (static_cast<int>(workers_.size()) < n) workers_.emplace_back([this] { loop(); });
}

void ThreadPool::loop() {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (!stop_ && generation_.load(std::memory_order_relaxed) == seen) {
      lock.unlock();
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
      lock.lock();
    }
    wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
    if (stop_) return;
    seen = generation_.load(std::memory_order_relaxed);
    while (next_ < n_tasks_) {
      const int i = next_++;
      lock.unlock();
      job_(ctx_, i);
      lock.lock();
      if (pending_.fetch_sub(1, std::memory_order_release) == 1) done_.notify_one();
    }
  }
}

ThreadPool& thread_pool() {
  static ThreadPool pool;
  return pool;
}

}  // namespace detail

void set_num_threads(int n) {
  UNROLL_CHECK(n >= 1, "set_num_threads: the thread count must be at least 1, got {}", n);
  detail::g_num_threads.store(n, std::memory_order_relaxed);
}

int num_threads() { return detail::g_num_threads.load(std::memory_order_relaxed); }

}  // namespace unroll
