#pragma once
// Internal (not part of the public API; not included by unroll.h): the interface between the
// GEMM's dispatch (core/gemm.cpp: argument checks, threads, the choice of code path) and its
// kernels (core/gemm_isa.cpp: the SIMD traits per ISA and core/gemm_kernels.inc compiled
// once for each, Note [ISA passes]).
#include <cstdint>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define UNROLL_GEMM_X86 1
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

/// One ISA's kernels: run(g) for one product (sizes >= 1, alpha != 0 already established).
struct IsaTable {
  const char* name;
  void (*sgemm)(const GemmArgs<float>&);
  void (*dgemm)(const GemmArgs<double>&);
};

extern const IsaTable kPortable;  ///< plain C++
#if UNROLL_GEMM_X86
extern const IsaTable kAvx2;    ///< AVX2 + FMA; call only where the CPU has them
extern const IsaTable kAvx512;  ///< AVX-512 F/DQ/VL/BW; likewise
#endif

}  // namespace unroll::kernels::detail
