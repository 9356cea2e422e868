// The machine's FMA peak for the benchmarks' "% of peak" columns: independent FMA chains
// (enough of them to cover latency x throughput) in a tight AVX-512 or AVX2 loop on one
// core. Shared by bench_gemm and bench_rnn; header-only, benchmarks only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace unroll_bench {

#if defined(__x86_64__)
__attribute__((target("avx512f"))) inline float fma_loop_avx512(int64_t iters) {
  constexpr int kChains = 16;
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 mul = _mm512_set1_ps(0.999999f), add = _mm512_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], mul, add);
  }
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  return out[0];
}

__attribute__((target("avx2,fma"))) inline float fma_loop_avx2(int64_t iters) {
  constexpr int kChains = 12;
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], mul, add);
  }
  __m256 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0];
}
#endif

/// Best-of-reps GFLOP/s of the FMA loop, or 0 when no AVX2/AVX-512 is available.
inline double measure_peak(int reps) {
  using Clock = std::chrono::steady_clock;
#if defined(__x86_64__)
  const bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return 0;
  const double flops_per_iter = avx512 ? 16 * 16 * 2 : 12 * 8 * 2;
  const int64_t iters = 50'000'000;
  double best = 0;
  volatile float sink = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    sink = sink + (avx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters));
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, flops_per_iter * static_cast<double>(iters) / s * 1e-9);
  }
  return best;
#else
  (void)reps;
  return 0;
#endif
}

}  // namespace unroll_bench
