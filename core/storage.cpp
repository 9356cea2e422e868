// The storage pool: per-thread free lists of tensor blocks, memory_stats, and the way a
// block freed on another thread gets home (Note [storage across threads]).
#include "core/storage.h"

#include "core/tensor.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace unroll {
namespace detail {

// Note [storage across threads]
// Each thread allocates from its own pool: a free list per power-of-two size class, no
// lock, at most kPoolLimit bytes kept. It counts the bytes it allocated (memory_stats).
// A storage may die on another thread than the one that made it (a tensor handed to a
// worker, a graph freed elsewhere); it then goes home. The block names its owner's
// PoolRecord and the record's generation. The freeing thread locks the record: if the
// owner is still alive (the same generation) it adds the bytes to the record's
// freed_elsewhere count and puts the block on the record's return list, which the owner
// takes into its free lists at its next free-list miss; if the owner has exited (the
// generation moved on) it frees the block. So each thread's live count is what it
// allocated and nobody has freed since, wherever the free happened, and a one-way hand-off
// (A makes, B frees) recycles A's blocks instead of piling them up in B's cache. Records
// are never destroyed: a global registry hands a record whose thread exited to the next
// new thread (with a new generation), so a record outlives every block that names it.
// The same-thread path is unchanged but for one pointer compare.
struct PoolRecord {
  std::mutex mu;
  uint32_t generation = 0;            // under mu: bumped when the owning thread exits
  std::vector<Storage*> returned;     // under mu: blocks freed by other threads
  std::atomic<bool> has_returned{false};
  std::atomic<int64_t> freed_elsewhere{0};  // bytes of the owner's blocks freed by other threads
  bool in_use = false;                // under the registry's mutex
};

}  // namespace detail

namespace {
using detail::PoolRecord;
using detail::Storage;

struct Registry {
  std::mutex mu;
  std::deque<PoolRecord> records;  // a deque: records never move
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: blocks may be freed during exit
  return *r;
}

constexpr int kClasses = 48;
constexpr size_t kPoolLimit = size_t{1} << 30;

thread_local PoolRecord* t_record = nullptr;  // this thread's, while its pool is alive

struct Pool {
  std::vector<Storage*> free[kClasses];
  size_t cached = 0;
  int64_t live = 0;  // requested bytes allocated here, minus those freed here
  int64_t peak = 0;
  detail::StorageWatcher* watcher = nullptr;  // the memory meter, when one is alive
  PoolRecord* record;
  uint32_t generation;

  Pool() {
    Registry& reg = registry();
    {
      std::lock_guard<std::mutex> lock(reg.mu);
      auto it = std::find_if(reg.records.begin(), reg.records.end(), [](const PoolRecord& r) { return !r.in_use; });
      record = it != reg.records.end() ? &*it : &reg.records.emplace_back();
      record->in_use = true;
    }
    std::lock_guard<std::mutex> lock(record->mu);
    generation = record->generation;
    record->freed_elsewhere.store(0, std::memory_order_relaxed);
    t_record = record;
  }
  ~Pool() {
    t_record = nullptr;
    std::vector<Storage*> back;
    {
      std::lock_guard<std::mutex> lock(record->mu);
      ++record->generation;  // blocks still alive elsewhere are freed where they die
      back.swap(record->returned);
      record->has_returned.store(false, std::memory_order_relaxed);
    }
    for (Storage* s : back) std::free(s);
    for (auto& list : free)
      for (Storage* s : list) std::free(s);
    std::lock_guard<std::mutex> lock(registry().mu);
    record->in_use = false;
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int64_t live_now() const { return live - record->freed_elsewhere.load(std::memory_order_relaxed); }

  void cache_or_free(Storage* s) {
    const size_t block = size_t{1} << s->size_class;
    if (cached + block <= kPoolLimit) {
      free[s->size_class].push_back(s);
      cached += block;
    } else {
      std::free(s);
    }
  }

  /// Takes the blocks other threads freed into the free lists, and their bytes off `live`.
  void take_returned() {
    std::vector<Storage*> back;
    {
      std::lock_guard<std::mutex> lock(record->mu);
      back.swap(record->returned);
      record->has_returned.store(false, std::memory_order_relaxed);
      live -= record->freed_elsewhere.exchange(0, std::memory_order_relaxed);
    }
    for (Storage* s : back) cache_or_free(s);
  }
};
thread_local Pool pool;

// Note [huge pages for large tensors]
// A fresh block is mapped lazily by the kernel, one page fault per 4 KiB page touched, and
// under a hypervisor each fault is expensive: the [N, V] logits of a word-LM batch (V = 6,023)
// spent ~25% of a training step in page faults. Blocks of kHugeBlock bytes or more are
// 2 MiB aligned and marked MADV_HUGEPAGE, so where transparent huge pages are enabled
// (the common "madvise" setting) they fault in 2 MiB at a time. Measured (bench_rnn,
// back to back): word LM minibatch 64 3,900 -> 5,600 words/s, minibatch 16 5,800 -> 7,600,
// a 10,000-step LSTM sequence 808 -> 680 ms per training step.
constexpr size_t kHugeBlock = size_t{4} << 20, kHugePage = size_t{2} << 20;

void* allocate_block(size_t block) {
  if (block < kHugeBlock) return std::aligned_alloc(64, block);
  void* p = std::aligned_alloc(kHugePage, block);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (p) madvise(p, block, MADV_HUGEPAGE);  // a hint: failure is harmless
#endif
  return p;
}

/// A block freed on a thread that did not allocate it: home, or gone with its owner.
void free_foreign(Storage* s) {
  PoolRecord* owner = s->owner;
  {
    std::lock_guard<std::mutex> lock(owner->mu);
    if (owner->generation == s->owner_generation) {
      owner->freed_elsewhere.fetch_add(static_cast<int64_t>(s->bytes), std::memory_order_relaxed);
      owner->returned.push_back(s);
      owner->has_returned.store(true, std::memory_order_relaxed);
      return;
    }
  }
  std::free(s);
}

}  // namespace

namespace detail {

Storage* allocate_storage(size_t bytes) {
  size_t total = std::max<size_t>(bytes + 64, 128);
  int cls = std::bit_width(total - 1);  // block size 2^cls >= total
  UNROLL_CHECK(cls < kClasses, "tensor: cannot allocate {} bytes", bytes);
  size_t block = size_t{1} << cls;
  Pool& p = pool;
  if (p.free[cls].empty() && p.record->has_returned.load(std::memory_order_relaxed)) [[unlikely]]
    p.take_returned();
  Storage* s;
  if (!p.free[cls].empty()) {
    s = p.free[cls].back();
    p.free[cls].pop_back();
    p.cached -= block;
  } else {
    void* mem = allocate_block(block);
    if (!mem) fail("tensor: out of memory allocating {} bytes", bytes);
    s = static_cast<Storage*>(mem);
  }
  s->refs = 1;
  s->size_class = cls;
  s->bytes = bytes;
  s->owner = p.record;
  s->owner_generation = p.generation;
  p.live += static_cast<int64_t>(bytes);
  p.peak = std::max(p.peak, p.live_now());
  if (p.watcher) [[unlikely]] p.watcher->on_alloc(s, bytes);
  return s;
}

void free_storage(Storage* s) {
  if (s->owner != t_record) [[unlikely]] {  // another thread's, or this thread's pool is gone (t_record null)
    free_foreign(s);
    return;
  }
  if (pool.watcher) [[unlikely]] pool.watcher->on_free(s);
  pool.live -= static_cast<int64_t>(s->bytes);
  pool.cache_or_free(s);
}

StorageWatcher*& storage_watcher() { return pool.watcher; }

}  // namespace detail

MemoryStats memory_stats() { return {pool.live_now(), pool.peak}; }
void reset_peak_memory() { pool.peak = pool.live_now(); }

}  // namespace unroll
