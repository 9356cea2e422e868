#pragma once
// Internal: the loop machinery shared by the core elementwise and reduction kernels
// (core/ops.cpp, core/reduce.cpp): the broadcast plan, the blocked map/update loops and the
// contiguous sum. Not part of the public API; not included by unroll.h.
#include "core/dispatch.h"
#include "core/tensor.h"

#include <cstdint>

namespace unroll::detail {

// Note [broadcast plan]
// An elementwise loop over an iteration shape with N operands, each with its own element
// strides (0 on broadcast dimensions). Size-1 dimensions are dropped and adjacent
// dimensions merged when every operand is contiguous across them, so [B,H] + [H] becomes a
// 2-D loop and same-layout operands a 1-D loop. The innermost dimension is the inner loop;
// kernels specialise it on the operands' inner strides (0 or 1) so it vectorises.
template <int N>
struct Plan {
  int nd = 0;
  int64_t size[kMaxDims];
  int64_t st[N][kMaxDims];
  int64_t inner(int k) const { return st[k][nd - 1]; }
};

/// Element strides of shape `s` broadcast (right-aligned) to the iteration shape `it`.
inline void broadcast_strides(const Shape& s, const Shape& it, int64_t* st) {
  const int nd = it.ndim(), off = nd - s.ndim();
  int64_t stride = 1;
  for (int d = nd - 1; d >= 0; --d) {
    if (d < off) {
      st[d] = 0;
      continue;
    }
    const int64_t n = s[d - off];
    st[d] = (n == 1) ? 0 : stride;
    stride *= n;
  }
}

template <int N>
Plan<N> make_plan(const Shape& it, const Shape* const (&shapes)[N]) {
  int64_t st[N][kMaxDims];
  for (int k = 0; k < N; ++k) broadcast_strides(*shapes[k], it, st[k]);
  Plan<N> p;
  for (int d = 0; d < it.ndim(); ++d) {
    if (it[d] == 1) continue;
    bool merge = p.nd > 0;
    for (int k = 0; k < N && merge; ++k) merge = p.st[k][p.nd - 1] == st[k][d] * it[d];
    if (merge) {
      p.size[p.nd - 1] *= it[d];
      for (int k = 0; k < N; ++k) p.st[k][p.nd - 1] = st[k][d];
    } else {
      p.size[p.nd] = it[d];
      for (int k = 0; k < N; ++k) p.st[k][p.nd] = st[k][d];
      ++p.nd;
    }
  }
  if (p.nd == 0) {  // one element
    p.nd = 1;
    p.size[0] = 1;
    for (int k = 0; k < N; ++k) p.st[k][0] = 0;
  }
  return p;
}

/// Calls row(off, n) for every innermost row: off[k] is operand k's element offset.
template <int N, typename Row>
void run_plan(const Plan<N>& p, Row&& row) {
  const int last = p.nd - 1;
  const int64_t n = p.size[last];
  int64_t outer = 1;
  for (int d = 0; d < last; ++d) outer *= p.size[d];
  int64_t idx[kMaxDims] = {};
  int64_t off[N] = {};
  for (int64_t r = 0; r < outer; ++r) {
    row(static_cast<const int64_t*>(off), n);
    for (int d = last - 1; d >= 0; --d) {
      for (int k = 0; k < N; ++k) off[k] += p.st[k][d];
      if (++idx[d] < p.size[d]) break;
      for (int k = 0; k < N; ++k) off[k] -= p.st[k][d] * p.size[d];
      idx[d] = 0;
    }
  }
}

/// True when `s` without its leading 1s equals the trailing dimensions of `out`.
inline bool is_trailing(const Shape& s, const Shape& out) {
  int first = 0;
  while (first < s.ndim() && s[first] == 1) ++first;
  const int k = s.ndim() - first;
  if (k > out.ndim()) return false;
  for (int i = 0; i < k; ++i)
    if (s[first + i] != out[out.ndim() - k + i]) return false;
  return true;
}

// Note [vectorisable loops]
// GCC's -O2 cost model only vectorises a loop whose trip count is a known multiple of the
// vector width and that needs no run-time alias check. So the hot loops below run over
// blocks of kBlock elements through __restrict pointers, then finish with a scalar tail.
// Outputs are fresh tensors, so they never alias the inputs.
constexpr int64_t kBlock = 16;

/// o[i] = f(a[i])
template <typename R, typename T, typename F>
void map1(R* __restrict o, const T* __restrict a, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock)
    for (int64_t k = 0; k < kBlock; ++k) o[i + k] = f(a[i + k]);
  for (; i < n; ++i) o[i] = f(a[i]);
}

/// o[i] = f(a[i], b[i])
template <typename R, typename T, typename F>
void map2(R* __restrict o, const T* __restrict a, const T* __restrict b, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock)
    for (int64_t k = 0; k < kBlock; ++k) o[i + k] = f(a[i + k], b[i + k]);
  for (; i < n; ++i) o[i] = f(a[i], b[i]);
}

/// o[i] = f(o[i], a[i]): accumulation into a distinct buffer
template <typename T, typename F>
void update(T* __restrict o, const T* __restrict a, int64_t n, F f) {
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock)
    for (int64_t k = 0; k < kBlock; ++k) o[i + k] = f(o[i + k], a[i + k]);
  for (; i < n; ++i) o[i] = f(o[i], a[i]);
}

/// Sum of n contiguous elements with 8 independent accumulators (vectorisable, and a
/// little more accurate than one running sum).
template <typename T>
T sum_contig(const T* p, int64_t n) {
  T acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += p[i + k];
  T s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += p[i];
  return s;
}

}  // namespace unroll::detail
