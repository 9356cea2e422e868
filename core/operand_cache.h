#pragma once
// The GEMM's transposed-operand cache: products x W^T with a few rows x read a row-major
// copy of W^T made once per value of W, instead of packing W^T again on every call
// (Note [transposed-operand cache] in core/operand_cache.cpp). matmul, addmm and addmm_
// (core/tensor.h) consult it; nothing else needs to know it exists. Results are the same
// bits with or without it.
#include "core/tensor.h"

#include <cstdint>

namespace unroll {

/// What this thread's cache holds and has done since the last clear_operand_cache().
struct OperandCacheStats {
  int64_t hits = 0;     ///< products that read a cached W^T
  int64_t copies = 0;   ///< W^T copies made (a weight seen twice at the same write stamp)
  int64_t entries = 0;  ///< copies held now
  int64_t bytes = 0;    ///< bytes those copies hold (not counted in memory_stats())
};
OperandCacheStats operand_cache_stats();
/// Frees this thread's copies and zeroes its counters.
void clear_operand_cache();

namespace detail {
/// For the product op(a) b^T with `rows` rows, where b is [N,K]: a row-major [K,N] copy of
/// b^T when the cache covers this product (2..64 rows, K >= 128, >= 16,384 elements, float
/// or double) and has made one for b's current write stamp, else nullptr (then the caller
/// multiplies by b^T as usual; a first sighting is only remembered). The pointer is valid
/// until the next call on this thread.
const void* cached_transpose(const Tensor& b, int64_t rows);
}  // namespace detail

}  // namespace unroll
