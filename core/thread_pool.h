#pragma once
// The persistent worker threads that share a product (or any piece-wise job) with the
// calling thread; one pool per process, sized by set_num_threads (core/tensor.h).
// Internal: used by core/gemm.cpp, see Note [gemm threads] in core/thread_pool.cpp.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace unroll::detail {

class ThreadPool {
public:
  ThreadPool() = default;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

  /// Runs task(0) .. task(n-1) on the calling thread and `workers` pool threads: the
  /// caller runs task 0, then every thread claims the next unclaimed task until none is
  /// left (so a thread that finishes early takes more). Returns when all are done.
  template <class F>
  void run(int n, int workers, F& task) {
    run_job(n, workers, [](void* ctx, int i) { (*static_cast<F*>(ctx))(i); }, &task);
  }

private:
  void run_job(int n, int workers, void (*job)(void*, int), void* ctx);
  void ensure_workers(int n);
  void loop();

  std::mutex run_mu_, mu_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  void (*job_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  int n_tasks_ = 0;
  int next_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};  // changed under mu_; the spins read it without
  bool stop_ = false;
};

/// The process's pool.
ThreadPool& thread_pool();

}  // namespace unroll::detail
