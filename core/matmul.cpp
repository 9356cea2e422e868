// Matrix products on the blocked GEMM of core/gemm.h: matmul (2-D, batched 3-D, 3-D x 2-D),
// addmm (bias + product) and addmm_ (accumulating product).
#include "core/dispatch.h"
#include "core/gemm.h"
#include "core/operand_cache.h"
#include "core/tensor.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace unroll {

using detail::check_defined;
using detail::check_same_dtype;
using detail::dispatch_float;

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check_defined("matmul", a);
  check_defined("matmul", b);
  // "[32,64] x [256,128]^T", only formatted when a check fails.
  auto desc = [&] {
    return fmt::format("{}{} x {}{}", a.shape(), trans_a ? "^T" : "", b.shape(), trans_b ? "^T" : "");
  };
  const int ra = a.ndim(), rb = b.ndim();
  UNROLL_CHECK((ra == 2 && rb == 2) || (ra == 3 && rb == 3) || (ra == 3 && rb == 2),
               "matmul: {}: unsupported ranks {} and {} (expected 2-D x 2-D, 3-D x 3-D or 3-D x 2-D)", desc(), ra,
               rb);
  UNROLL_CHECK(a.dtype() == b.dtype(), "matmul: {}: dtypes {} and {} differ", desc(), a.dtype(), b.dtype());
  const int64_t batch = ra == 3 ? a.size(0) : 1;
  UNROLL_CHECK(rb == 2 || b.size(0) == batch, "matmul: {}: batch sizes {} and {} differ", desc(), batch, b.size(0));
  const int64_t a_rows = a.size(-2), a_cols = a.size(-1), b_rows = b.size(-2), b_cols = b.size(-1);
  const int64_t M = trans_a ? a_cols : a_rows, K = trans_a ? a_rows : a_cols;
  const int64_t Kb = trans_b ? b_cols : b_rows, N = trans_b ? b_rows : b_cols;
  UNROLL_CHECK(K == Kb, "matmul: {}: inner dimensions {} and {} differ", desc(), K, Kb);

  Tensor out;
  dispatch_float("matmul", a.dtype(), [&]<typename T>() {
    out = Tensor::empty(ra == 3 ? Shape{batch, M, N} : Shape{M, N}, a.dtype());
    T* C = out.data<T>();
    if (out.numel() == 0) return;
    if (K == 0) {
      std::fill_n(C, out.numel(), T(0));
      return;
    }
    const T* A = a.data<T>();
    const T* B = b.data<T>();
    if (rb == 2 && !trans_a) {
      // [B,M,K] x [K,N]: the batch folds into the rows of one product.
      if (const void* bt = trans_b ? detail::cached_transpose(b, batch * M) : nullptr) {
        kernels::gemm(false, false, batch * M, N, K, T(1), A, a_cols, static_cast<const T*>(bt), N, T(0), C, N);
        return;
      }
      kernels::gemm(false, trans_b, batch * M, N, K, T(1), A, a_cols, B, b_cols, T(0), C, N);
      return;
    }
    const int64_t b_step = rb == 3 ? b_rows * b_cols : 0;
    for (int64_t i = 0; i < batch; ++i)
      kernels::gemm(trans_a, trans_b, M, N, K, T(1), A + i * a_rows * a_cols, a_cols, B + i * b_step, b_cols, T(0),
                    C + i * M * N, N);
  });
  return out;
}

namespace {

/// Validates c (+)= op(a) op(b) for 2-D operands; returns {M, N, K}.
std::array<int64_t, 3> check_mm(const char* op, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  check_defined(op, a);
  check_defined(op, b);
  UNROLL_CHECK(a.ndim() == 2 && b.ndim() == 2, "{}: {} x {}: operands must be 2-D", op, a.shape(), b.shape());
  check_same_dtype(op, a, b);
  const int64_t M = trans_a ? a.size(1) : a.size(0), K = trans_a ? a.size(0) : a.size(1);
  const int64_t Kb = trans_b ? b.size(1) : b.size(0), N = trans_b ? b.size(0) : b.size(1);
  UNROLL_CHECK(K == Kb, "{}: {}{} x {}{}: inner dimensions {} and {} differ", op, a.shape(), trans_a ? "^T" : "",
               b.shape(), trans_b ? "^T" : "", K, Kb);
  return {M, N, K};
}

/// c = op(a) op(b) + beta c through the GEMM kernel (c already has the right shape).
void gemm_into(Tensor& c, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, int64_t M, int64_t N,
               int64_t K, double beta) {
  dispatch_float("addmm", a.dtype(), [&]<typename T>() {
    if (M == 0 || N == 0) return;
    if (const void* bt = !trans_a && trans_b ? detail::cached_transpose(b, M) : nullptr) {
      kernels::gemm(false, false, M, N, K, T(1), a.data<T>(), a.size(1), static_cast<const T*>(bt), N,
                    static_cast<T>(beta), c.data<T>(), N);
      return;
    }
    kernels::gemm(trans_a, trans_b, M, N, K, T(1), a.data<T>(), a.size(1), b.data<T>(), b.size(1),
                  static_cast<T>(beta), c.data<T>(), N);
  });
}

}  // namespace

Tensor addmm(const Tensor& bias, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const auto [M, N, K] = check_mm("addmm", a, b, trans_a, trans_b);
  check_defined("addmm", bias);
  check_same_dtype("addmm", bias, a);
  UNROLL_CHECK(bias.ndim() == 1 && bias.size(0) == N, "addmm: bias {} does not match the product's {} columns",
               bias.shape(), N);
  Tensor out = Tensor::empty({M, N}, a.dtype());
  const size_t row_bytes = static_cast<size_t>(N) * dtype_size(a.dtype());
  char* o = static_cast<char*>(out.raw_data());
  for (int64_t i = 0; i < M; ++i) std::memcpy(o + static_cast<size_t>(i) * row_bytes, bias.raw_data(), row_bytes);
  gemm_into(out, a, b, trans_a, trans_b, M, N, K, 1.0);
  return out;
}

void addmm_(Tensor& c, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const auto [M, N, K] = check_mm("addmm_", a, b, trans_a, trans_b);
  check_defined("addmm_", c);
  check_same_dtype("addmm_", c, a);
  UNROLL_CHECK(c.shape() == Shape({M, N}), "addmm_: destination {} is not the product's shape [{},{}]", c.shape(), M,
               N);
  gemm_into(c, a, b, trans_a, trans_b, M, N, K, 1.0);
}

}  // namespace unroll
