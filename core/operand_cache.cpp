// The transposed-operand cache (core/operand_cache.h).
#include "core/operand_cache.h"

#include "core/dispatch.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace unroll {

// Note [transposed-operand cache]
// A recurrent cell multiplies its batch of a few rows by the same weight at every step:
// h W^T with h [B,H] and W [4H,H]. The GEMM packs each column panel of W^T on every call,
// and at a batch of 32 that packing is ~20% of the product (bench_gemm, [32,256] x
// [256,1024]: 114 us packed vs 94 us reading a row-major W^T in place). So the first time
// a product sees W at a given write stamp (Note [write stamps], core/tensor.cpp) it only
// remembers the sighting; the second time it makes a row-major copy of W^T, and every
// later product with W at that stamp reads the copy in place. An optimizer step writes W
// through data(), which gives W a new stamp, so the next step's products can never read an
// old copy; the copy of the old value is freed as soon as W is seen with its new stamp.
// Copying only on the second sighting keeps one-off products (an evaluation pass, a
// weight used once) from paying for a copy they would never reuse.
//
// The cache is per thread, holds at most kMaxEntries copies and kMaxBytes bytes (least
// recently used evicted first) and remembers the last kSightings first sightings, and is keyed by storage identity, stamp, shape and dtype.
// It never holds a reference to a tensor: a freed storage's entry is simply never matched
// again (a reused block has a new stamp) and ages out. Its copies are plain aligned
// buffers, not tensors, so memory_stats() and the memory meter do not see them; their
// size is in operand_cache_stats(). Transposing does not change any value, and the kernel
// sums in the same order whether it packs W^T or reads it in place, so the results are the
// same bits as without the cache (tests/test_fused.cpp checks this).
namespace {

constexpr size_t kMaxEntries = 16;
constexpr size_t kMaxBytes = size_t{64} << 20;
constexpr size_t kSightings = 64;

struct Key {
  const void* storage = nullptr;
  uint64_t stamp = 0;
  Shape shape;
  DType dtype = DType::F32;
  bool matches(const Tensor& b, uint64_t s) const {
    return storage == b.storage_id() && stamp == s && shape == b.shape() && dtype == b.dtype();
  }
};

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

struct Entry {
  Key key;
  std::unique_ptr<void, FreeDeleter> copy;
  size_t bytes = 0;
  uint64_t last_use = 0;
};

struct Cache {
  std::vector<Entry> entries;
  Key sightings[kSightings];  // a ring of products seen once
  size_t next_sighting = 0;
  size_t bytes = 0;
  uint64_t clock = 0;
  int64_t hits = 0, copies = 0;

  void drop(size_t i) {
    bytes -= entries[i].bytes;
    entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(i));
  }
};
thread_local Cache t_cache;

/// dst[k*N + n] = src[n*K + k]: the [K,N] transpose of a row-major [N,K], in 32x32 tiles.
template <typename T>
void transpose_into(T* dst, const T* src, int64_t N, int64_t K) {
  constexpr int64_t kTile = 32;
  for (int64_t n0 = 0; n0 < N; n0 += kTile)
    for (int64_t k0 = 0; k0 < K; k0 += kTile) {
      const int64_t n1 = std::min(N, n0 + kTile), k1 = std::min(K, k0 + kTile);
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t k = k0; k < k1; ++k) dst[k * N + n] = src[n * K + k];
    }
}

/// A new entry holding b^T, or nullptr when it would not fit the byte budget at all.
Entry* make_copy(Cache& c, const Tensor& b, uint64_t stamp) {
  const size_t bytes = static_cast<size_t>(b.numel()) * dtype_size(b.dtype());
  if (bytes > kMaxBytes) return nullptr;
  while (!c.entries.empty() && (c.entries.size() >= kMaxEntries || c.bytes + bytes > kMaxBytes)) {
    size_t oldest = 0;
    for (size_t i = 1; i < c.entries.size(); ++i)
      if (c.entries[i].last_use < c.entries[oldest].last_use) oldest = i;
    c.drop(oldest);
  }
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p) return nullptr;  // no memory for a copy: multiply without one
  const int64_t N = b.size(0), K = b.size(1);
  detail::dispatch_float("matmul", b.dtype(), [&]<typename T>() { transpose_into(static_cast<T*>(p), b.data<T>(), N, K); });
  c.entries.push_back({Key{b.storage_id(), stamp, b.shape(), b.dtype()}, std::unique_ptr<void, FreeDeleter>(p), bytes, 0});
  c.bytes += bytes;
  ++c.copies;
  return &c.entries.back();
}

}  // namespace

const void* detail::cached_transpose(const Tensor& b, int64_t rows) {
  if (rows < 2 || rows > 64 || b.ndim() != 2 || b.size(1) < 128 || b.numel() < 16384 || !b.is_floating())
    return nullptr;
  Cache& c = t_cache;
  const uint64_t stamp = b.write_stamp();
  Entry* hit = nullptr;
  for (size_t i = 0; i < c.entries.size();) {
    Entry& e = c.entries[i];
    if (e.key.matches(b, stamp)) {
      hit = &e;
      ++i;
    } else if (e.key.storage == b.storage_id() && e.key.stamp != stamp) {
      c.drop(i);  // b was written since this copy: the old value is never asked for again
    } else {
      ++i;
    }
  }
  if (!hit) {
    Key* seen = nullptr;
    for (Key& k : c.sightings)
      if (k.matches(b, stamp)) seen = &k;
    if (!seen) {  // first sighting: remember it, multiply without a copy
      c.sightings[c.next_sighting] = Key{b.storage_id(), stamp, b.shape(), b.dtype()};
      c.next_sighting = (c.next_sighting + 1) % kSightings;
      return nullptr;
    }
    *seen = Key{};
    hit = make_copy(c, b, stamp);
    if (!hit) return nullptr;
  } else {
    ++c.hits;
  }
  hit->last_use = ++c.clock;
  return hit->copy.get();
}

OperandCacheStats operand_cache_stats() {
  const Cache& c = t_cache;
  return {c.hits, c.copies, static_cast<int64_t>(c.entries.size()), static_cast<int64_t>(c.bytes)};
}

void clear_operand_cache() { t_cache = Cache{}; }

}  // namespace unroll
