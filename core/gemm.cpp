// The GEMM: argument checks, splitting a product over threads, and the choice of code path
// (see core/gemm.h for the contract). The kernels themselves are in core/gemm_isa.cpp and
// core/gemm_kernels.inc (Note [ISA passes]).
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
#include "core/gemm.h"

#include "core/gemm_isa.h"
#include "core/thread_pool.h"
#include "core/tensor.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace unroll::kernels {
namespace detail {
namespace {

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

