#pragma once
// GEMM: the one dense matrix-multiply kernel everything else (matmul, Linear, the gates of
// every recurrent cell) is built on.
//
// Hand-written, Goto/BLIS-style: op(A) and op(B) are packed into cache-sized panels in
// thread-local buffers, and a register-blocked micro-kernel (AVX-512 or AVX2+FMA, chosen
// once at run time, or portable C++) computes small tiles of C. One-row (or one-column)
// products take a GEMV path that does not pack at all. See Note [gemm design] in gemm.cpp.
//
// Single-threaded and deterministic: the same inputs give bit-identical outputs (for a
// given CPU code path; AVX-512, AVX2 and portable code may differ in the last bits).
#include <cstdint>

namespace unroll::kernels {

/// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C; all matrices row-major (BLAS sgemm).
/// op(A) = A (stored M x K, row stride lda) or, when trans_a, A^T (A stored K x M, row
/// stride lda); the same for B (stored K x N, or N x K when trans_b). beta == 0 means C is
/// overwritten and never read (NaNs in C do not propagate); alpha == 0 or K == 0 means
/// C = beta * C and A, B are not read. Throws std::invalid_argument on negative sizes or
/// row strides smaller than a row.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
          int64_t ldc);
/// Double-precision gemm (BLAS dgemm), same contract as the float overload.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
          const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
          int64_t ldc);

/// Name of the code path gemm uses on this machine: "avx512", "avx2" or "portable".
const char* gemm_isa_name();

}  // namespace unroll::kernels

/// Test hooks: force one code path so every path is exercised on one machine.
namespace unroll::kernels::testing {

inline constexpr int kGemmIsaAuto = -1;      ///< the best path the CPU supports (default)
inline constexpr int kGemmIsaPortable = 0;   ///< plain C++
inline constexpr int kGemmIsaAvx2 = 1;       ///< AVX2 + FMA micro-kernels
inline constexpr int kGemmIsaAvx512 = 2;     ///< AVX-512F micro-kernels

/// True when this CPU (and build) can run the given path.
bool gemm_isa_supported(int isa);
/// Makes gemm use the given path (kGemmIsaAuto restores the default). Throws
/// std::invalid_argument when the path is unknown or unsupported on this CPU.
void set_gemm_isa_for_testing(int isa);

}  // namespace unroll::kernels::testing
