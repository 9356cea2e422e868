// Storage: the reference-counted block behind every Tensor, and the per-thread pool it
// comes from (core/storage.cpp). Internal to core: tensor.cpp is its only user.
#pragma once

#include <cstddef>
#include <cstdint>

namespace unroll::detail {

struct PoolRecord;  // a thread's pool, as other threads see it (core/storage.cpp)

/// A block is this 64-byte header followed by the data, so the data is 64-byte aligned and
/// one allocation serves both.
struct Storage {
  int64_t refs;
  int32_t size_class;        // the block is 2^size_class bytes
  uint32_t owner_generation; // Note [storage across threads]
  size_t bytes;              // requested bytes (memory_stats)
  uint64_t stamp;            // Note [write stamps] (core/tensor.cpp); through std::atomic_ref
  PoolRecord* owner;         // the pool of the thread that allocated it
  void* data() { return reinterpret_cast<char*>(this) + 64; }
};
static_assert(sizeof(Storage) <= 64);

/// A block of at least `bytes` from this thread's pool, refs = 1 (its stamp is the caller's).
Storage* allocate_storage(size_t bytes);
/// Gives a block whose last reference went away back to its pool.
void free_storage(Storage* s);
inline void release_storage(Storage* s) {
  if (--s->refs == 0) free_storage(s);
}

}  // namespace unroll::detail
