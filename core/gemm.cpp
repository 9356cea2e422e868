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
// (vector type, width W, loads/stores/FMA, tile and block sizes), in core/gemm_kernels.inc.
// That file is compiled three times by including it below: once inside a
// `#pragma GCC target("avx512f,...")` region (every function defined there carries that
// target attribute), once for AVX2+FMA, and once with no target for the portable path. Each
// copy lives in its own namespace (avx512, avx2, portable), so nothing compiled for a wider
// ISA can be merged with or called instead of the baseline copy. The right copy is chosen
// once, with __builtin_cpu_supports, by `active_isa()` below; the library itself is
// compiled with the default flags (no -march).
#include "core/gemm.h"
#include "core/thread_pool.h"
#include "core/tensor.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
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
#include "core/gemm_kernels.inc"
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
#include "core/gemm_kernels.inc"
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
#include "core/gemm_kernels.inc"
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

/// Pieces to cut one product into: 1 unless threads are on and it has >= ~1 MFLOP per piece.
int gemm_pieces(int64_t M, int64_t N, int64_t K) {
  const int n = num_threads();
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
  unroll::detail::thread_pool().run(pieces, num_threads() - 1, task);
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

