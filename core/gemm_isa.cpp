// The GEMM kernels for each ISA (see core/gemm.h for the contract, Note [gemm design] in
// core/gemm.cpp for the algorithm): the SIMD traits, the per-thread packing workspaces, and
// core/gemm_kernels.inc compiled once per ISA; core/gemm.cpp picks one copy at run time.
//
// Note [ISA passes]
// ~~~~~~~~~~~~~~~~~
// The kernels are written once, as templates over a small SIMD traits class `Simd<T>`
// (vector type, width W, loads/stores/FMA, tile and block sizes), in core/gemm_kernels.inc.
// That file is compiled three times by including it below (this file): once inside a
// `#pragma GCC target("avx512f,...")` region (every function defined there carries that
// target attribute), once for AVX2+FMA, and once with no target for the portable path. Each
// copy lives in its own namespace (avx512, avx2, portable), so nothing compiled for a wider
// ISA can be merged with or called instead of the baseline copy. The right copy is chosen
// once, with __builtin_cpu_supports, by `active_isa()` in core/gemm.cpp; the library itself is
// compiled with the default flags (no -march).
#include "core/gemm_isa.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <type_traits>

#if UNROLL_GEMM_X86
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
#endif

namespace unroll::kernels::detail {

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
// The tables core/gemm.cpp dispatches through.
// ---------------------------------------------------------------------------------------
namespace unroll::kernels::detail {

constinit const IsaTable kPortable{"portable", &portable::run<float>, &portable::run<double>};
#if UNROLL_GEMM_X86
constinit const IsaTable kAvx2{"avx2", &avx2::run<float>, &avx2::run<double>};
constinit const IsaTable kAvx512{"avx512", &avx512::run<float>, &avx512::run<double>};
#endif

}  // namespace unroll::kernels::detail
