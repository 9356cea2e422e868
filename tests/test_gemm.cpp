// gemm against a naive triple loop in double, on every code path this CPU supports.
#include <doctest/doctest.h>

#include "core/gemm.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using unroll::kernels::gemm;
namespace kt = unroll::kernels::testing;

constexpr int kIsas[] = {kt::kGemmIsaPortable, kt::kGemmIsaAvx2, kt::kGemmIsaAvx512};

const char* isa_label(int isa) {
  switch (isa) {
    case kt::kGemmIsaPortable: return "portable";
    case kt::kGemmIsaAvx2: return "avx2";
    case kt::kGemmIsaAvx512: return "avx512";
    default: return "auto";
  }
}

/// Restores the automatic code path when a test case ends, even on failure.
struct IsaGuard {
  explicit IsaGuard(int isa) { kt::set_gemm_isa_for_testing(isa); }
  ~IsaGuard() { kt::set_gemm_isa_for_testing(kt::kGemmIsaAuto); }
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;
};

/// Deterministic values in [-1, 1).
struct Lcg {
  uint64_t state;
  double next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) * 0x1.0p-52 - 1.0;
  }
};

struct Case {
  bool ta, tb;
  int64_t M, N, K;
  double alpha, beta;
  int64_t pad;  // extra elements per row of A, B and C beyond the minimum stride
};

/// Runs one gemm on type T and returns "" on success or a description of the worst error.
template <class T>
std::string check_case(const Case& c, uint64_t seed) {
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
  Lcg rng{seed};
  std::vector<T> A(static_cast<size_t>(a_rows * lda)), B(static_cast<size_t>(b_rows * ldb));
  std::vector<T> C(static_cast<size_t>(c.M * ldc));
  for (T& v : A) v = static_cast<T>(rng.next());
  for (T& v : B) v = static_cast<T>(rng.next());
  const T sentinel = static_cast<T>(12345.0);
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      T& v = C[static_cast<size_t>(i * ldc + j)];
      if (j >= c.N) {
        v = sentinel;  // padding must survive untouched
      } else if (c.beta == 0.0) {
        v = std::numeric_limits<T>::quiet_NaN();  // must not propagate
      } else {
        v = static_cast<T>(rng.next());
      }
    }
  }
  const std::vector<T> C0 = C;

  gemm(c.ta, c.tb, c.M, c.N, c.K, static_cast<T>(c.alpha), A.data(), lda, B.data(), ldb,
       static_cast<T>(c.beta), C.data(), ldc);

  const double eps = std::is_same_v<T, float> ? 1e-6 : 1e-14;
  const double rtol = eps * static_cast<double>(c.K + 4);
  double worst = 0.0;
  std::string where;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const T got = C[static_cast<size_t>(i * ldc + j)];
      if (j >= c.N) {
        if (got != sentinel) return "padding of C overwritten at row " + std::to_string(i);
        continue;
      }
      double sum = 0.0, scale = 0.0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double a = A[static_cast<size_t>(c.ta ? k * lda + i : i * lda + k)];
        const double b = B[static_cast<size_t>(c.tb ? j * ldb + k : k * ldb + j)];
        sum += a * b;
        scale += std::abs(a * b);
      }
      const double c0 = C0[static_cast<size_t>(i * ldc + j)];
      const double ref = c.alpha * sum + (c.beta == 0.0 ? 0.0 : c.beta * c0);
      scale = std::abs(c.alpha) * scale + (c.beta == 0.0 ? 0.0 : std::abs(c.beta * c0));
      const double err = std::abs(static_cast<double>(got) - ref);
      if (!(err <= rtol * scale + 1e-30)) {  // also catches NaN
        const double rel = err / (scale + 1e-30);
        if (!(rel <= worst) || std::isnan(rel)) {
          worst = rel;
          where = "C[" + std::to_string(i) + "][" + std::to_string(j) + "] = " +
                  std::to_string(static_cast<double>(got)) + ", expected " + std::to_string(ref);
        }
      }
    }
  }
  return where;
}

template <class T>
void run_cases(const std::vector<Case>& cases) {
  for (int isa : kIsas) {
    if (!kt::gemm_isa_supported(isa)) {
      MESSAGE("gemm code path " << isa_label(isa) << " not supported on this CPU: skipped");
      continue;
    }
    IsaGuard guard(isa);
    uint64_t seed = 1;
    for (const Case& c : cases) {
      const std::string err = check_case<T>(c, seed++);
      INFO(isa_label(isa), (std::is_same_v<T, float> ? " float" : " double"), " ta=", c.ta,
           " tb=", c.tb, " M=", c.M, " N=", c.N, " K=", c.K, " alpha=", c.alpha,
           " beta=", c.beta, " pad=", c.pad);
      CHECK_MESSAGE(err.empty(), err);
    }
  }
}

/// Every edge size against every other, all four transpose combinations.
std::vector<Case> edge_grid() {
  const int64_t mn[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 63, 65, 100};
  const int64_t ks[] = {1, 2, 7, 16, 17, 33};
  const double ab[][2] = {{1.0, 0.0}, {0.5, -1.5}, {-2.0, 1.0}};
  std::vector<Case> cases;
  int n = 0;
  for (int64_t M : mn) {
    for (int64_t N : mn) {
      for (int64_t K : ks) {
        for (int t = 0; t < 4; ++t) {
          const double* alpha_beta = ab[n % 3];
          cases.push_back({(t & 1) != 0, (t & 2) != 0, M, N, K, alpha_beta[0], alpha_beta[1],
                           (n % 2) * 3});
          ++n;
        }
      }
    }
  }
  return cases;
}

/// Shapes that cross the cache blocks (K > KC, M > MC, N > NC) and the larger edge sizes.
std::vector<Case> block_crossing() {
  std::vector<Case> cases;
  const int64_t shapes[][3] = {{257, 100, 65}, {100, 257, 300}, {65, 63, 600}, {300, 130, 40},
                               {3, 2100, 5},   {260, 2070, 9},  {1, 2100, 300}, {2100, 1, 70},
                               {1, 1, 257},    {2, 1030, 513},  {64, 1024, 17}, {33, 257, 31}};
  int n = 0;
  for (const auto& s : shapes) {
    for (int t = 0; t < 4; ++t) {
      cases.push_back({(t & 1) != 0, (t & 2) != 0, s[0], s[1], s[2], n % 2 ? 1.0 : -0.75,
                       n % 3 == 0 ? 0.0 : 0.25, (n % 2) * 5});
      ++n;
    }
  }
  return cases;
}

}  // namespace

TEST_CASE("gemm float matches a double-precision triple loop on edge sizes") {
  run_cases<float>(edge_grid());
}

TEST_CASE("gemm double matches a double-precision triple loop on edge sizes") {
  run_cases<double>(edge_grid());
}

TEST_CASE("gemm float and double across cache-block boundaries") {
  run_cases<float>(block_crossing());
  run_cases<double>(block_crossing());
}

TEST_CASE("gemm with alpha == 0 or K == 0 scales C and does not read A or B") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> A(12, nan), B(12, nan), C = {1, 2, 3, 4, 5, 6};
  gemm(false, false, 2, 3, 4, 0.0f, A.data(), 4, B.data(), 3, 2.0f, C.data(), 3);
  CHECK(C == std::vector<float>{2, 4, 6, 8, 10, 12});
  gemm(false, false, 2, 3, 0, 1.0f, nullptr, 1, nullptr, 3, 0.0f, C.data(), 3);
  CHECK(C == std::vector<float>{0, 0, 0, 0, 0, 0});
  std::vector<double> Cd = {nan, nan};
  gemm(true, true, 1, 2, 0, 1.0, nullptr, 1, nullptr, 1, 0.0, Cd.data(), 2);
  CHECK(Cd == std::vector<double>{0, 0});
}

TEST_CASE("gemm is deterministic") {
  const int64_t M = 37, N = 301, K = 290;
  std::vector<float> A(M * K), B(K * N), C1(M * N), C2(M * N);
  Lcg rng{7};
  for (float& v : A) v = static_cast<float>(rng.next());
  for (float& v : B) v = static_cast<float>(rng.next());
  for (int isa : kIsas) {
    if (!kt::gemm_isa_supported(isa)) continue;
    IsaGuard guard(isa);
    INFO(isa_label(isa));
    gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C1.data(), N);
    gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C2.data(), N);
    CHECK(C1 == C2);
  }
}

TEST_CASE("gemm rejects bad sizes and strides") {
  float x[4] = {};
  CHECK_THROWS_AS(gemm(false, false, -1, 2, 2, 1.0f, x, 2, x, 2, 0.0f, x, 2),
                  std::invalid_argument);
  CHECK_THROWS_AS(gemm(false, false, 2, 2, 2, 1.0f, x, 1, x, 2, 0.0f, x, 2),
                  std::invalid_argument);
  CHECK_THROWS_AS(kt::set_gemm_isa_for_testing(42), std::invalid_argument);
  CHECK(std::string(unroll::kernels::gemm_isa_name()).size() > 0);
}
