// GEMM kernels: see core/gemm.h for the contract.
//
// Note [gemm design]
// ~~~~~~~~~~~~~~~~~~
// Goto/BLIS blocking, row-major. For each NC-wide column block of C and each KC-deep slice
// of K, op(B) is packed into micro-panels of NR columns (B[k][0..NR) contiguous per k) and,
// for each MC-tall row block, op(A) into micro-panels of MR rows (A[0..MR)[k] contiguous
// per k). The micro-kernel keeps an MR x NR tile of C in vector registers and runs over kc:
// per k it loads NR/W vectors of B, broadcasts MR scalars of A and issues MR*NR/W FMAs.
// Transposed operands cost nothing extra: only the packing routines look at trans_a and
// trans_b.
//
// Shapes common in recurrent nets get shortcuts:
//  * M == 1 or N == 1 (batch-1 cells, matrix-vector products) never pack: a GEMV kernel
//    streams the matrix once (row-sequentially, or as independent dot products when the
//    vector runs along the matrix rows).
//  * M small (a whole row block) and B not transposed: the micro-kernel reads B in place
//    (its rows are already NR-contiguous), so B is never copied.
//  * M fits in one row block: each micro-panel of B is packed just before the micro-kernels
//    that use it, so it is still in L1 when they run.
// Edges (M % MR, N % NR) use micro-kernels instantiated for fewer rows and masked
// loads/stores for the last columns, so no work is wasted on padding rows.
//
// Determinism: the loop structure and every summation order depend only on the shapes and
// the code path, never on timing or addresses, so results are bit-identical run to run.
//
// Note [ISA passes]
// ~~~~~~~~~~~~~~~~~
// The kernels are written once, as templates over a small SIMD traits class `Simd<T>`
// (vector type, width W, loads/stores/FMA, tile and block sizes), in the second half of this
// file. That half is compiled three times by including this file into itself: once inside a
// `#pragma GCC target("avx512f,...")` region (every function defined there carries that
// target attribute), once for AVX2+FMA, and once with no target for the portable path. Each
// copy lives in its own namespace (avx512, avx2, portable), so nothing compiled for a wider
// ISA can be merged with or called instead of the baseline copy. The right copy is chosen
// once, with __builtin_cpu_supports, by `active_isa()` below; the library itself is
// compiled with the default flags (no -march).
#ifndef UNROLL_GEMM_PASS

#include "core/gemm.h"
#include "core/tensor.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define UNROLL_GEMM_X86 1
// GCC 12's AVX-512 intrinsics use a self-initialised "undefined" vector that, once inlined
// into a target("avx512f") function, triggers false -Wuninitialized warnings located in
// the header (GCC PR 105593); silence them for the header's lines only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#else
#define UNROLL_GEMM_X86 0
#endif

namespace unroll::kernels::detail {

/// Arguments of one gemm call, as in the public signature.
template <class T>
struct GemmArgs {
  bool ta, tb;
  int64_t M, N, K;
  T alpha;
  const T* A;
  int64_t lda;
  const T* B;
  int64_t ldb;
  T beta;
  T* C;
  int64_t ldc;
};

/// op(A)[i][k] and op(B)[k][j] addresses.
template <class T>
const T* a_at(const GemmArgs<T>& g, int64_t i, int64_t k) {
  return g.A + (g.ta ? k * g.lda + i : i * g.lda + k);
}
template <class T>
const T* b_at(const GemmArgs<T>& g, int64_t k, int64_t j) {
  return g.B + (g.tb ? j * g.ldb + k : k * g.ldb + j);
}

/// A grow-only, 64-byte aligned scratch buffer (one per slot and thread, reused by every
/// call, so no allocation happens after the first calls of the largest size).
class AlignedBuffer {
public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  void* reserve(size_t bytes) {
    if (bytes > capacity_) {
      const size_t rounded = (bytes + 63) / 64 * 64;
      void* fresh = std::aligned_alloc(64, rounded);
      if (fresh == nullptr) throw std::bad_alloc();
      std::free(data_);
      data_ = fresh;
      capacity_ = rounded;
    }
    return data_;
  }

private:
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

enum Slot { kSlotPackA, kSlotPackB, kSlotVecX, kSlotVecT, kSlotCount };

/// Thread-local scratch for `count` elements of T in the given slot.
template <class T>
T* workspace(Slot slot, int64_t count) {
  thread_local std::array<AlignedBuffer, kSlotCount> buffers;
  return static_cast<T*>(buffers[slot].reserve(static_cast<size_t>(count) * sizeof(T)));
}

}  // namespace unroll::kernels::detail

// ---------------------------------------------------------------------------------------
// SIMD traits, one set per ISA, then the kernels compiled for it (Note [ISA passes]).
// Tile and block sizes were picked by measurement on an AMD EPYC (Zen 5: 48 KiB L1d, 1 MiB
// L2), see bench/bench_gemm.cpp.
// ---------------------------------------------------------------------------------------
#if UNROLL_GEMM_X86

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")
#endif
namespace unroll::kernels::detail::avx512 {

template <class T>
struct Simd;

template <>
struct Simd<float> {
  using V = __m512;
  static constexpr int W = 16;
  static constexpr int MR = 8, NV = 2;                  // 8 x 32 micro-tile
  static constexpr int64_t KC = 256, MC = 256, NC = 2048;
  static constexpr int64_t kDirectBMaxM = 48;           // read B in place up to this M
  static constexpr int GEMV_K = 4, GEMV_ROWS = 8;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static __mmask16 mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static V load_n(const float* p, int64_t n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store_n(float* p, V v, int64_t n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  /// In-place 16 x 16 transpose: afterwards r[c] holds what was column c.
  static void transpose(V (&r)[16]) {
    V t[16], u[16];
#pragma GCC unroll 16
    for (int q = 0; q < 16; q += 2) {  // pairs of rows interleaved within 128-bit lanes
      t[q] = _mm512_unpacklo_ps(r[q], r[q + 1]);
      t[q + 1] = _mm512_unpackhi_ps(r[q], r[q + 1]);
    }
#pragma GCC unroll 16
    for (int q = 0; q < 16; q += 4) {  // u[q + m]: lane L holds column 4L+m of rows q..q+3
      u[q] = _mm512_shuffle_ps(t[q], t[q + 2], _MM_SHUFFLE(1, 0, 1, 0));
      u[q + 1] = _mm512_shuffle_ps(t[q], t[q + 2], _MM_SHUFFLE(3, 2, 3, 2));
      u[q + 2] = _mm512_shuffle_ps(t[q + 1], t[q + 3], _MM_SHUFFLE(1, 0, 1, 0));
      u[q + 3] = _mm512_shuffle_ps(t[q + 1], t[q + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
#pragma GCC unroll 16
    for (int m = 0; m < 4; ++m) {  // gather lane L of u[m], u[4+m], u[8+m], u[12+m]
      const V a = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88);
      const V b = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
      const V c = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
      const V d = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
      r[m] = _mm512_shuffle_f32x4(a, c, 0x88);
      r[8 + m] = _mm512_shuffle_f32x4(a, c, 0xDD);
      r[4 + m] = _mm512_shuffle_f32x4(b, d, 0x88);
      r[12 + m] = _mm512_shuffle_f32x4(b, d, 0xDD);
    }
  }
  static float reduce(V v) {
    V s = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm512_add_ps(s, _mm512_shuffle_f32x4(s, s, _MM_SHUFFLE(2, 3, 0, 1)));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_cvtss_f32(s);
  }
};

template <>
struct Simd<double> {
  using V = __m512d;
  static constexpr int W = 8;
  static constexpr int MR = 8, NV = 2;                  // 8 x 16 micro-tile
  static constexpr int64_t KC = 256, MC = 128, NC = 2048;
  static constexpr int64_t kDirectBMaxM = 48;
  static constexpr int GEMV_K = 4, GEMV_ROWS = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V loadu(const double* p) { return _mm512_loadu_pd(p); }
  static void storeu(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static __mmask8 mask(int64_t n) { return static_cast<__mmask8>((1u << n) - 1u); }
  static V load_n(const double* p, int64_t n) { return _mm512_maskz_loadu_pd(mask(n), p); }
  static void store_n(double* p, V v, int64_t n) { _mm512_mask_storeu_pd(p, mask(n), v); }
  /// In-place 8 x 8 transpose: afterwards r[c] holds what was column c.
  static void transpose(V (&r)[8]) {
    V t[8];
#pragma GCC unroll 16
    for (int q = 0; q < 8; q += 2) {  // lane L of t[q]: column 2L of rows q, q+1; t[q+1]: 2L+1
      t[q] = _mm512_unpacklo_pd(r[q], r[q + 1]);
      t[q + 1] = _mm512_unpackhi_pd(r[q], r[q + 1]);
    }
#pragma GCC unroll 16
    for (int m = 0; m < 2; ++m) {  // gather lane L of t[m], t[2+m], t[4+m], t[6+m]
      const V a = _mm512_shuffle_f64x2(t[m], t[2 + m], 0x88);
      const V b = _mm512_shuffle_f64x2(t[m], t[2 + m], 0xDD);
      const V c = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0x88);
      const V d = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0xDD);
      r[m] = _mm512_shuffle_f64x2(a, c, 0x88);
      r[4 + m] = _mm512_shuffle_f64x2(a, c, 0xDD);
      r[2 + m] = _mm512_shuffle_f64x2(b, d, 0x88);
      r[6 + m] = _mm512_shuffle_f64x2(b, d, 0xDD);
    }
  }
  static double reduce(V v) {
    V s = _mm512_add_pd(v, _mm512_shuffle_f64x2(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm512_add_pd(s, _mm512_shuffle_f64x2(s, s, _MM_SHUFFLE(2, 3, 0, 1)));
    s = _mm512_add_pd(s, _mm512_permute_pd(s, 0x55));
    return _mm512_cvtsd_f64(s);
  }
};

}  // namespace unroll::kernels::detail::avx512
#define UNROLL_GEMM_PASS avx512
#include "core/gemm.cpp"
#undef UNROLL_GEMM_PASS
#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace unroll::kernels::detail::avx2 {

template <class T>
struct Simd;

template <>
struct Simd<float> {
  using V = __m256;
  static constexpr int W = 8;
  static constexpr int MR = 6, NV = 2;                  // 6 x 16 micro-tile
  static constexpr int64_t KC = 256, MC = 192, NC = 2048;
  static constexpr int64_t kDirectBMaxM = 48;
  static constexpr int GEMV_K = 4, GEMV_ROWS = 4;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static __m256i mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load_n(const float* p, int64_t n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store_n(float* p, V v, int64_t n) { _mm256_maskstore_ps(p, mask(n), v); }
  /// In-place 8 x 8 transpose: afterwards r[c] holds what was column c.
  static void transpose(V (&r)[8]) {
    V t[8], u[8];
#pragma GCC unroll 16
    for (int q = 0; q < 8; q += 2) {
      t[q] = _mm256_unpacklo_ps(r[q], r[q + 1]);
      t[q + 1] = _mm256_unpackhi_ps(r[q], r[q + 1]);
    }
#pragma GCC unroll 16
    for (int q = 0; q < 8; q += 4) {  // u[q + m]: lane L holds column 4L+m of rows q..q+3
      u[q] = _mm256_shuffle_ps(t[q], t[q + 2], _MM_SHUFFLE(1, 0, 1, 0));
      u[q + 1] = _mm256_shuffle_ps(t[q], t[q + 2], _MM_SHUFFLE(3, 2, 3, 2));
      u[q + 2] = _mm256_shuffle_ps(t[q + 1], t[q + 3], _MM_SHUFFLE(1, 0, 1, 0));
      u[q + 3] = _mm256_shuffle_ps(t[q + 1], t[q + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
#pragma GCC unroll 16
    for (int m = 0; m < 4; ++m) {
      r[m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x20);
      r[4 + m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x31);
    }
  }
  static float reduce(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

template <>
struct Simd<double> {
  using V = __m256d;
  static constexpr int W = 4;
  static constexpr int MR = 6, NV = 2;                  // 6 x 8 micro-tile
  static constexpr int64_t KC = 256, MC = 96, NC = 2048;
  static constexpr int64_t kDirectBMaxM = 48;
  static constexpr int GEMV_K = 4, GEMV_ROWS = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V loadu(const double* p) { return _mm256_loadu_pd(p); }
  static void storeu(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static __m256i mask(int64_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V load_n(const double* p, int64_t n) { return _mm256_maskload_pd(p, mask(n)); }
  static void store_n(double* p, V v, int64_t n) { _mm256_maskstore_pd(p, mask(n), v); }
  /// In-place 4 x 4 transpose: afterwards r[c] holds what was column c.
  static void transpose(V (&r)[4]) {
    const V t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const V t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
  }
  static double reduce(V v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
};

}  // namespace unroll::kernels::detail::avx2
#define UNROLL_GEMM_PASS avx2
#include "core/gemm.cpp"
#undef UNROLL_GEMM_PASS
#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#endif  // UNROLL_GEMM_X86

namespace unroll::kernels::detail::portable {

/// Plain C++: "vectors" of one element; the compiler may still vectorise the 4 x 4 tile.
template <class T>
struct Simd {
  using V = T;
  static constexpr int W = 1;
  static constexpr int MR = 4, NV = 4;                  // 4 x 4 micro-tile
  static constexpr int64_t KC = 256, MC = 128, NC = 2048;
  static constexpr int64_t kDirectBMaxM = 32;
  static constexpr int GEMV_K = 4, GEMV_ROWS = 4;
  static V zero() { return T(0); }
  static V set1(T x) { return x; }
  static V loadu(const T* p) { return *p; }
  static void storeu(T* p, V v) { *p = v; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V mul(V a, V b) { return a * b; }
  static V load_n(const T* p, int64_t n) { return n > 0 ? *p : T(0); }
  static void store_n(T* p, V v, int64_t n) {
    if (n > 0) *p = v;
  }
  static void transpose(V (&)[1]) {}
  static T reduce(V v) { return v; }
};

}  // namespace unroll::kernels::detail::portable
#define UNROLL_GEMM_PASS portable
#include "core/gemm.cpp"
#undef UNROLL_GEMM_PASS

// ---------------------------------------------------------------------------------------
// Dispatch and the public entry points.
// ---------------------------------------------------------------------------------------
namespace unroll::kernels {
namespace detail {
namespace {

struct IsaTable {
  const char* name;
  void (*sgemm)(const GemmArgs<float>&);
  void (*dgemm)(const GemmArgs<double>&);
};

constexpr IsaTable kPortable{"portable", &portable::run<float>, &portable::run<double>};
#if UNROLL_GEMM_X86
constexpr IsaTable kAvx2{"avx2", &avx2::run<float>, &avx2::run<double>};
constexpr IsaTable kAvx512{"avx512", &avx512::run<float>, &avx512::run<double>};
#endif

const IsaTable* table_for(int isa) {
  switch (isa) {
    case testing::kGemmIsaPortable:
      return &kPortable;
#if UNROLL_GEMM_X86
    case testing::kGemmIsaAvx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &kAvx2
                                                                              : nullptr;
    case testing::kGemmIsaAvx512:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                     __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
                 ? &kAvx512
                 : nullptr;
#endif
    default:
      return nullptr;
  }
}

const IsaTable* best_table() {
  for (int isa : {testing::kGemmIsaAvx512, testing::kGemmIsaAvx2}) {
    if (const IsaTable* t = table_for(isa)) return t;
  }
  return &kPortable;
}

std::atomic<const IsaTable*> g_forced{nullptr};

const IsaTable& active_isa() {
  static const IsaTable* const best = best_table();
  const IsaTable* forced = g_forced.load(std::memory_order_relaxed);
  return forced != nullptr ? *forced : *best;
}

void check_operand(const char* name, int64_t rows, int64_t cols, int64_t ld) {
  if (rows > 1 && ld < cols) {
    throw std::invalid_argument("gemm: " + std::string(name) + " is stored " +
                                std::to_string(rows) + " x " + std::to_string(cols) +
                                " but its row stride is " + std::to_string(ld));
  }
}

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
class ThreadPool {
public:
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);  // ends the spins
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  /// Runs task(0) .. task(n-1) on the calling thread and `workers` pool threads: the
  /// caller runs task 0, then every thread claims the next unclaimed task until none is
  /// left (so a thread that finishes early takes more). Returns when all are done.
  template <class F>
  void run(int n, int workers, F& task) {
    std::lock_guard<std::mutex> one_job(run_mu_);  // callers on different threads take turns
    ensure_workers(workers);
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = [](void* ctx, int i) { (*static_cast<F*>(ctx))(i); };
      ctx_ = &task;
      n_tasks_ = n;
      next_ = 1;
      pending_.store(n - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    task(0);
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (next_ < n_tasks_) {
        const int i = next_++;
        lock.unlock();
        task(i);
        lock.lock();
        pending_.fetch_sub(1, std::memory_order_release);
      }
    }
    spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; });
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return pending_.load(std::memory_order_relaxed) == 0; });
  }

private:
  static constexpr auto kSpin = std::chrono::microseconds(200);

  template <class Pred>
  static void spin_until(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + kSpin;
    for (int i = 0; !done(); ++i) {
#if UNROLL_GEMM_X86
      __builtin_ia32_pause();
#endif
      if ((i & 63) == 63) {
        if (std::chrono::steady_clock::now() > deadline) return;
        std::this_thread::yield();  // a busy machine: let a runnable thread have the core
      }
    }
  }

  void ensure_workers(int n) {
    while (static_cast<int>(workers_.size()) < n) workers_.emplace_back([this] { loop(); });
  }
  void loop() {
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

std::atomic<int> g_num_threads{1};

ThreadPool& thread_pool() {
  static ThreadPool pool;
  return pool;
}

/// Pieces to cut one product into: 1 unless threads are on and it has >= ~1 MFLOP per piece.
int gemm_pieces(int64_t M, int64_t N, int64_t K) {
  const int n = g_num_threads.load(std::memory_order_relaxed);
  if (n <= 1) return 1;
  const int64_t work = M * N * K;
  const int64_t by_work = work / (int64_t{1} << 19);
  const int64_t by_size = std::max(M, N) / 16;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({n, by_work, by_size})));
}

template <class T>
void gemm_entry(const GemmArgs<T>& g) {
  if (g.M < 0 || g.N < 0 || g.K < 0) {
    throw std::invalid_argument("gemm: negative size M=" + std::to_string(g.M) +
                                " N=" + std::to_string(g.N) + " K=" + std::to_string(g.K));
  }
  check_operand("A", g.ta ? g.K : g.M, g.ta ? g.M : g.K, g.lda);
  check_operand("B", g.tb ? g.N : g.K, g.tb ? g.K : g.N, g.ldb);
  check_operand("C", g.M, g.N, g.ldc);
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0 || g.alpha == T(0)) {
    // C = beta * C without touching A and B (and without reading C when beta == 0).
    for (int64_t i = 0; i < g.M; ++i) {
      T* c = g.C + i * g.ldc;
      for (int64_t j = 0; j < g.N; ++j) c[j] = g.beta == T(0) ? T(0) : g.beta * c[j];
    }
    return;
  }
  const IsaTable& isa = active_isa();
  auto run_one = [&isa](const GemmArgs<T>& piece) {
    if constexpr (std::is_same_v<T, float>) {
      isa.sgemm(piece);
    } else {
      isa.dgemm(piece);
    }
  };
  const int pieces = gemm_pieces(g.M, g.N, g.K);
  if (pieces == 1) {
    run_one(g);
    return;
  }
  // Note [gemm threads]: pieces along the longer side of C, 16-aligned.
  const bool along_n = g.N >= g.M;
  const int64_t extent = along_n ? g.N : g.M;
  const int64_t step = (extent / pieces + 15) / 16 * 16;
  auto task = [&](int i) {
    const int64_t lo = std::min(extent, i * step);
    const int64_t hi = i + 1 == pieces ? extent : std::min(extent, lo + step);
    if (hi <= lo) return;
    GemmArgs<T> piece = g;
    if (along_n) {
      piece.N = hi - lo;
      piece.B = g.tb ? g.B + lo * g.ldb : g.B + lo;
      piece.C = g.C + lo;
    } else {
      piece.M = hi - lo;
      piece.A = g.ta ? g.A + lo : g.A + lo * g.lda;
      piece.C = g.C + lo * g.ldc;
    }
    run_one(piece);
  };
  thread_pool().run(pieces, g_num_threads.load(std::memory_order_relaxed) - 1, task);
}

}  // namespace
}  // namespace detail

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc) {
  detail::gemm_entry<float>({trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc});
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
          const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
          int64_t ldc) {
  detail::gemm_entry<double>({trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc});
}

const char* gemm_isa_name() { return detail::active_isa().name; }

}  // namespace unroll::kernels

namespace unroll {

void set_num_threads(int n) {
  UNROLL_CHECK(n >= 1, "set_num_threads: the thread count must be at least 1, got {}", n);
  kernels::detail::g_num_threads.store(n, std::memory_order_relaxed);
}

int num_threads() { return kernels::detail::g_num_threads.load(std::memory_order_relaxed); }

}  // namespace unroll

namespace unroll::kernels {

namespace testing {

bool gemm_isa_supported(int isa) {
  return isa == kGemmIsaAuto || detail::table_for(isa) != nullptr;
}

void set_gemm_isa_for_testing(int isa) {
  if (isa == kGemmIsaAuto) {
    detail::g_forced.store(nullptr, std::memory_order_relaxed);
    return;
  }
  const detail::IsaTable* table = detail::table_for(isa);
  if (table == nullptr) {
    throw std::invalid_argument("set_gemm_isa_for_testing: code path " + std::to_string(isa) +
                                " is unknown or not supported by this CPU");
  }
  detail::g_forced.store(table, std::memory_order_relaxed);
}

}  // namespace testing
}  // namespace unroll::kernels

#else  // UNROLL_GEMM_PASS
// =======================================================================================
// The kernels, compiled once per ISA (Note [ISA passes]). `Simd<T>` is the traits class of
// the enclosing namespace; everything here is a template over the element type T.
// =======================================================================================
namespace unroll::kernels::detail::UNROLL_GEMM_PASS {

/// C[0:ROWS, 0:n] = alpha * Apanel * Bpanel + beta * C (beta == 0: C not read).
/// a: packed A micro-panel, MR values per k (only the first ROWS are read).
/// b: NR values per k, consecutive k b_stride apart (a packed panel, or B itself).
template <class T, int ROWS>
void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, int64_t b_stride,
                  T* __restrict c, int64_t ldc, T alpha, T beta, int64_t n) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int MR = S::MR, NV = S::NV, W = S::W;
  V acc[ROWS][NV];
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = S::zero();
  }
  if (beta != T(0)) {  // the C tile is read at the end: fetch it while the FMAs run
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      __builtin_prefetch(c + i * ldc, 1, 3);
      if constexpr (NV * W * sizeof(T) > 64) __builtin_prefetch(c + i * ldc + NV * W - 1, 1, 3);
    }
  }
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = S::loadu(b + v * W);
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      const V ai = S::set1(a[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = S::fma(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += b_stride;
  }
  const V va = S::set1(alpha);
  const V vb = S::set1(beta);
  if (n == NV * W) {
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        T* p = c + i * ldc + v * W;
        V r = S::mul(acc[i][v], va);
        if (beta != T(0)) r = S::fma(S::loadu(p), vb, r);
        S::storeu(p, r);
      }
    }
  } else {  // last columns: masked (unrolled too, so acc stays in registers)
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        const int64_t cols = std::min<int64_t>(W, n - v * W);
        if (cols <= 0) break;
        T* p = c + i * ldc + v * W;
        V r = S::mul(acc[i][v], va);
        if (beta != T(0)) r = S::fma(S::load_n(p, cols), vb, r);
        S::store_n(p, r, cols);
      }
    }
  }
}

template <class T>
using MicroKernel = void (*)(int64_t, const T*, const T*, int64_t, T*, int64_t, T, T, int64_t);

template <class T, size_t... R>
constexpr std::array<MicroKernel<T>, sizeof...(R)> make_micro_kernels(std::index_sequence<R...>) {
  return {&micro_kernel<T, static_cast<int>(R) + 1>...};
}

/// Packs op(A)[0:mc, 0:kc] (a points at its first element) into micro-panels of MR rows:
/// panel p holds rows [p*MR, p*MR+MR) as dst[p*MR*kc + k*MR + i]. In the last panel, rows
/// past mc are zero.
template <class T>
void pack_a(bool ta, const T* a, int64_t lda, int64_t mc, int64_t kc, T* __restrict dst) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int MR = S::MR, W = S::W;
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - ir);
    T* d = dst + ir * kc;
    if (ta) {  // op(A)[i][k] = a[k*lda + i]: each k is a contiguous run of rows
      for (int64_t k = 0; k < kc; ++k) {
#pragma GCC unroll 4
        for (int g = 0; g < MR; g += W) {
          const int64_t n = std::min<int64_t>(W, MR - g);
          S::store_n(d + k * MR + g, S::load_n(a + k * lda + ir + g, std::clamp<int64_t>(rows - g, 0, n)), n);
        }
      }
      continue;
    }
    // op(A)[i][k] = a[i*lda + k]: transpose W x W blocks (up to W rows, W values of k).
    for (int64_t k = 0; k < kc; k += W) {
      const int64_t kk = std::min<int64_t>(W, kc - k);
#pragma GCC unroll 4
      for (int g = 0; g < MR; g += W) {
        const int64_t n = std::min<int64_t>(W, MR - g);  // rows of this group in the panel
        const int64_t valid = std::clamp<int64_t>(rows - g, 0, n);
        const T* s = a + (ir + g) * lda + k;
        V r[W];
#pragma GCC unroll 16
        for (int q = 0; q < W; ++q) {
          r[q] = q >= valid ? S::zero() : kk == W ? S::loadu(s + q * lda) : S::load_n(s + q * lda, kk);
        }
        S::transpose(r);
#pragma GCC unroll 16
        for (int q = 0; q < W; ++q) {
          if (q < kk) S::store_n(d + (k + q) * MR + g, r[q], n);
        }
      }
    }
  }
}

/// Packs op(B)[0:kc, 0:cols] (b points at its first element, cols <= NR) into one
/// micro-panel dst[k*NR + j], zero-filling columns cols..NR.
template <class T>
void pack_b(bool tb, const T* b, int64_t ldb, int64_t kc, int64_t cols, T* __restrict dst) {
  using S = Simd<T>;
  constexpr int NV = S::NV, W = S::W, NR = NV * W;
  if (!tb) {  // op(B)[k][j] = b[k*ldb + j]: rows are contiguous
    if (cols == NR) {
      for (int64_t k = 0; k < kc; ++k) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) S::storeu(dst + k * NR + v * W, S::loadu(b + k * ldb + v * W));
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int v = 0; v < NV; ++v) {
          const int64_t n = std::clamp<int64_t>(cols - v * W, 0, W);
          S::storeu(dst + k * NR + v * W, S::load_n(b + k * ldb + v * W, n));
        }
      }
    }
    return;
  }
  // op(B)[k][j] = b[j*ldb + k]: load W x W blocks (W stored rows, W values of k each),
  // transpose them in registers and store them as W rows of the micro-panel.
  using V = typename S::V;
  for (int64_t k = 0; k < kc; k += W) {
    const int64_t kk = std::min<int64_t>(W, kc - k);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const int64_t rows = std::clamp<int64_t>(cols - v * W, 0, W);
      const T* s = b + v * W * ldb + k;
      V r[W];
      if (rows == W && kk == W) {
#pragma GCC unroll 16
        for (int q = 0; q < W; ++q) r[q] = S::loadu(s + q * ldb);
      } else {
#pragma GCC unroll 16
        for (int q = 0; q < W; ++q) r[q] = q < rows ? S::load_n(s + q * ldb, kk) : S::zero();
      }
      S::transpose(r);
      T* d = dst + k * NR + v * W;
      if (kk == W) {
#pragma GCC unroll 16
        for (int q = 0; q < W; ++q) S::storeu(d + q * NR, r[q]);
      } else {
#pragma GCC unroll 16
        for (int q = 0; q < W; ++q) {
          if (q < kk) S::storeu(d + q * NR, r[q]);
        }
      }
    }
  }
}

/// The blocked GEMM (Note [gemm design]). Requires M, N, K >= 1.
template <class T>
void gemm_blocked(const GemmArgs<T>& g) {
  using S = Simd<T>;
  constexpr int64_t MR = S::MR, NR = S::NV * S::W, KC = S::KC, MC = S::MC, NC = S::NC;
  static constexpr auto edge_kernels = make_micro_kernels<T>(std::make_index_sequence<MR>());

  const bool b_per_panel = g.M <= MC;                 // one row block: pack B just in time
  const bool b_in_place = b_per_panel && !g.tb && g.M <= S::kDirectBMaxM;
  T* pa = workspace<T>(kSlotPackA, MC * KC);
  T* pb = workspace<T>(kSlotPackB, b_per_panel ? KC * NR : KC * ((NC + NR - 1) / NR * NR));

  for (int64_t jc = 0; jc < g.N; jc += NC) {
    const int64_t nc = std::min(NC, g.N - jc);
    for (int64_t pc = 0; pc < g.K; pc += KC) {
      const int64_t kc = std::min(KC, g.K - pc);
      const T beta = pc == 0 ? g.beta : T(1);  // later K slices accumulate onto C
      if (!b_per_panel) {
        for (int64_t jr = 0; jr < nc; jr += NR) {
          pack_b(g.tb, b_at(g, pc, jc + jr), g.ldb, kc, std::min(NR, nc - jr), pb + jr * kc);
        }
      }
      for (int64_t ic = 0; ic < g.M; ic += MC) {
        const int64_t mc = std::min(MC, g.M - ic);
        pack_a(g.ta, a_at(g, ic, pc), g.lda, mc, kc, pa);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t n = std::min(NR, nc - jr);
          const T* bp = pb + jr * kc;
          int64_t b_stride = NR;
          if (b_in_place && n == NR) {
            bp = b_at(g, pc, jc + jr);
            b_stride = g.ldb;
          } else if (b_per_panel) {
            pack_b(g.tb, b_at(g, pc, jc + jr), g.ldb, kc, n, pb);
            bp = pb;
          }
          T* c = g.C + ic * g.ldc + jc + jr;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t rows = std::min(MR, mc - ir);
            if (rows == MR) {
              micro_kernel<T, MR>(kc, pa + ir * kc, bp, b_stride, c + ir * g.ldc, g.ldc,
                                  g.alpha, beta, n);
            } else {
              edge_kernels[rows - 1](kc, pa + ir * kc, bp, b_stride, c + ir * g.ldc, g.ldc,
                                     g.alpha, beta, n);
            }
          }
        }
      }
    }
  }
}

/// t[j] = sum_k x[k] * b[k*ldb + j] for j < N: B streamed once, row by row (GEMV_K rows
/// at a time, so the hardware prefetcher sees long contiguous runs), accumulating into t,
/// which stays in L1 (columns are done in chunks of CHUNK).
template <class T>
void gemv_n(int64_t K, int64_t N, const T* x, const T* b, int64_t ldb, T* t) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t W = S::W, KR = S::GEMV_K, CHUNK = 2048;
  for (int64_t j0 = 0; j0 < N; j0 += CHUNK) {
    const int64_t nc = std::min(CHUNK, N - j0);
    const int64_t full = nc / W * W;
    for (int64_t j = 0; j < nc; j += W) S::store_n(t + j0 + j, S::zero(), std::min(W, nc - j));
    int64_t k = 0;
    for (; k + KR <= K; k += KR) {
      V xk[KR];
      const T* row[KR];
#pragma GCC unroll 16
      for (int r = 0; r < KR; ++r) {
        xk[r] = S::set1(x[k + r]);
        row[r] = b + (k + r) * ldb + j0;
      }
      for (int64_t j = 0; j < full; j += W) {
        V acc = S::loadu(t + j0 + j);
#pragma GCC unroll 16
        for (int r = 0; r < KR; ++r) acc = S::fma(xk[r], S::loadu(row[r] + j), acc);
        S::storeu(t + j0 + j, acc);
      }
      if (full < nc) {
        V acc = S::load_n(t + j0 + full, nc - full);
#pragma GCC unroll 16
        for (int r = 0; r < KR; ++r) acc = S::fma(xk[r], S::load_n(row[r] + full, nc - full), acc);
        S::store_n(t + j0 + full, acc, nc - full);
      }
    }
    for (; k < K; ++k) {
      const V xk = S::set1(x[k]);
      const T* row = b + k * ldb + j0;
      for (int64_t j = 0; j < nc; j += W) {
        const int64_t n = std::min(W, nc - j);
        S::store_n(t + j0 + j, S::fma(xk, S::load_n(row + j, n), S::load_n(t + j0 + j, n)), n);
      }
    }
  }
}

/// t[r] = sum_k x[k] * b[r*ldb + k] for r < ROWS: ROWS dot products sharing the loads of x.
template <class T, int ROWS>
void gemv_t_block(int64_t K, const T* __restrict x, const T* __restrict b, int64_t ldb,
                  T* __restrict t) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int W = S::W;
  V acc[ROWS];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) acc[r] = S::zero();
  int64_t k = 0;
  for (; k + W <= K; k += W) {
    const V xv = S::loadu(x + k);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) acc[r] = S::fma(xv, S::loadu(b + r * ldb + k), acc[r]);
  }
  if (k < K) {
    const V xv = S::load_n(x + k, K - k);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; ++r) acc[r] = S::fma(xv, S::load_n(b + r * ldb + k, K - k), acc[r]);
  }
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; ++r) t[r] = S::reduce(acc[r]);
}

template <class T>
using GemvTBlock = void (*)(int64_t, const T*, const T*, int64_t, T*);

template <class T, size_t... R>
constexpr std::array<GemvTBlock<T>, sizeof...(R)> make_gemv_t_blocks(std::index_sequence<R...>) {
  return {&gemv_t_block<T, static_cast<int>(R) + 1>...};
}

/// t[j] = sum_k x[k] * b[j*ldb + k] for j < N (x contiguous).
template <class T>
void gemv_t(int64_t K, int64_t N, const T* x, const T* b, int64_t ldb, T* t) {
  using S = Simd<T>;
  constexpr int64_t ROWS = S::GEMV_ROWS;
  static constexpr auto blocks = make_gemv_t_blocks<T>(std::make_index_sequence<ROWS>());
  int64_t j = 0;
  for (; j + ROWS <= N; j += ROWS) gemv_t_block<T, ROWS>(K, x, b + j * ldb, ldb, t + j);
  if (j < N) blocks[N - j - 1](K, x, b + j * ldb, ldb, t + j);
}

/// The M == 1 or N == 1 case: y = alpha * op(matrix) x + beta * y, no packing.
template <class T>
void gemv(const GemmArgs<T>& g) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t W = S::W;
  // Express the product as t[j] = sum_k x[k] * M(k, j) with M either "rows along j"
  // (gemv_n: M(k, j) = m[k*ld + j]) or "rows along k" (gemv_t: M(k, j) = m[j*ld + k]).
  const T* x;
  int64_t incx;
  const T* m;
  int64_t ld;
  bool rows_along_j;
  int64_t n;
  int64_t incy;
  if (g.M == 1) {  // row vector op(A)[0, :] times op(B)
    x = g.A;
    incx = g.ta ? g.lda : 1;
    m = g.B;
    ld = g.ldb;
    rows_along_j = !g.tb;
    n = g.N;
    incy = 1;
  } else {  // N == 1: op(A) times column vector op(B)[:, 0]
    x = g.B;
    incx = g.tb ? 1 : g.ldb;
    m = g.A;
    ld = g.lda;
    rows_along_j = g.ta;
    n = g.M;
    incy = g.ldc;
  }
  if (incx != 1) {
    T* xc = workspace<T>(kSlotVecX, g.K);
    for (int64_t k = 0; k < g.K; ++k) xc[k] = x[k * incx];
    x = xc;
  }
  T* t = workspace<T>(kSlotVecT, n);
  if (rows_along_j) {
    gemv_n(g.K, n, x, m, ld, t);
  } else {
    gemv_t(g.K, n, x, m, ld, t);
  }
  // y = alpha * t + beta * y
  T* y = g.C;
  if (incy == 1) {
    const V va = S::set1(g.alpha), vb = S::set1(g.beta);
    for (int64_t j = 0; j < n; j += W) {
      const int64_t cols = std::min(W, n - j);
      V r = S::mul(S::load_n(t + j, cols), va);
      if (g.beta != T(0)) r = S::fma(S::load_n(y + j, cols), vb, r);
      S::store_n(y + j, r, cols);
    }
  } else {
    for (int64_t j = 0; j < n; ++j) {
      T& yj = y[j * incy];
      yj = g.beta == T(0) ? g.alpha * t[j] : g.alpha * t[j] + g.beta * yj;
    }
  }
}

/// The K == 1 case (a batch-1 weight gradient dy^T x): the outer product
/// C = alpha * op(A)[:, 0] op(B)[0, :] + beta * C, row by row, no packing.
template <class T>
void rank1(const GemmArgs<T>& g) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int64_t W = S::W;
  const T* b = g.B;  // op(B)[0, j] = B[j] (not transposed) or B[j * ldb]
  if (g.tb && g.ldb != 1) {
    T* bc = workspace<T>(kSlotVecX, g.N);
    for (int64_t j = 0; j < g.N; ++j) bc[j] = g.B[j * g.ldb];
    b = bc;
  }
  const V vb = S::set1(g.beta);
  for (int64_t i = 0; i < g.M; ++i) {
    const T ai = g.alpha * (g.ta ? g.A[i] : g.A[i * g.lda]);  // op(A)[i, 0]
    const V va = S::set1(ai);
    T* c = g.C + i * g.ldc;
    for (int64_t j = 0; j < g.N; j += W) {
      const int64_t cols = std::min(W, g.N - j);
      V r = S::mul(S::load_n(b + j, cols), va);
      if (g.beta != T(0)) r = S::fma(S::load_n(c + j, cols), vb, r);
      S::store_n(c + j, r, cols);
    }
  }
}

/// One gemm call on this ISA (sizes >= 1, alpha != 0 already established).
template <class T>
void run(const GemmArgs<T>& g) {
  if (g.M == 1 || g.N == 1) {
    gemv(g);
  } else if (g.K == 1) {
    rank1(g);
  } else {
    gemm_blocked(g);
  }
}

}  // namespace unroll::kernels::detail::UNROLL_GEMM_PASS
#endif  // UNROLL_GEMM_PASS
