// Jacobi rotations for eigh and svd (see core/linalg.h). Plain float64 loops on row-major
// copies; the matrices here are small, so clarity wins over blocking.
#include "core/linalg.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace unroll::linalg {

namespace {

constexpr int kMaxSweeps = 100;

// The float64 elements of a 2-D floating tensor, checked.
std::vector<double> matrix_values(const char* op, const Tensor& a) {
  UNROLL_CHECK(a.defined(), "{}: the tensor is undefined", op);
  UNROLL_CHECK(a.ndim() == 2, "{}: expected a 2-D matrix, got shape {}", op, a.shape());
  UNROLL_CHECK(a.is_floating(), "{}: expected a floating matrix, got {} {}", op, a.dtype(), a.shape());
  std::vector<double> v = a.to_vector();
  for (size_t i = 0; i < v.size(); ++i)
    UNROLL_CHECK(std::isfinite(v[i]), "{}: matrix {} has a non-finite element {} at [{},{}]", op, a.shape(), v[i],
                 static_cast<int64_t>(i) / a.size(1), static_cast<int64_t>(i) % a.size(1));
  return v;
}

// The rotation (c, s) that zeroes the off-diagonal entry of the symmetric 2x2 [[app, apq],
// [apq, aqq]] under J^T A J, J = [[c, s], [-s, c]]: t = tan(theta) is the smaller root of
// t^2 + 2 zeta t - 1 = 0 with zeta = (aqq - app) / (2 apq).
void rotation(double app, double aqq, double apq, double& c, double& s) {
  const double zeta = (aqq - app) / (2 * apq);
  const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::abs(zeta) + std::sqrt(1 + zeta * zeta));
  c = 1 / std::sqrt(1 + t * t);
  s = c * t;
}

Tensor from_values(const std::vector<double>& v, const Shape& shape) {
  return tensor(std::span<const double>(v), shape, DType::F64);
}

}  // namespace

SymEig eigh(const Tensor& a_in) {
  std::vector<double> a = matrix_values("eigh", a_in);
  const int64_t n = a_in.size(0);
  UNROLL_CHECK(a_in.size(1) == n, "eigh: expected a square matrix, got {}", a_in.shape());
  auto at = [&](int64_t i, int64_t j) -> double& { return a[static_cast<size_t>(i * n + j)]; };
  double scale = 0;
  for (double x : a) scale = std::max(scale, std::abs(x));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j)
      UNROLL_CHECK(std::abs(at(i, j) - at(j, i)) <= 1e-8 * scale,
                   "eigh: matrix {} is not symmetric: a[{},{}] = {} but a[{},{}] = {}", a_in.shape(), i, j, at(i, j), j,
                   i, at(j, i));
  for (int64_t i = 0; i < n; ++i)  // use the symmetric part exactly
    for (int64_t j = i + 1; j < n; ++j) at(i, j) = at(j, i) = 0.5 * (at(i, j) + at(j, i));

  std::vector<double> v(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i * n + i)] = 1;
  // Cyclic Jacobi: sweep over every (p, q) pair, rotating the pair's off-diagonal entry to
  // zero, until the off-diagonal mass is rounding noise relative to the diagonal.
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    double off = 0, diag = 0;
    for (int64_t i = 0; i < n; ++i) {
      diag += at(i, i) * at(i, i);
      for (int64_t j = i + 1; j < n; ++j) off += at(i, j) * at(i, j);
    }
    if (off <= 1e-30 * diag || off == 0) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = at(p, q);
        if (apq == 0 || std::abs(apq) <= 1e-300) continue;
        double c, s;
        rotation(at(p, p), at(q, q), apq, c, s);
        for (int64_t k = 0; k < n; ++k) {  // columns p, q: A J
          const double akp = at(k, p), akq = at(k, q);
          at(k, p) = c * akp - s * akq;
          at(k, q) = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // rows p, q: J^T (A J)
          const double apk = at(p, k), aqk = at(q, k);
          at(p, k) = c * apk - s * aqk;
          at(q, k) = s * apk + c * aqk;
        }
        at(p, q) = at(q, p) = 0;
        for (int64_t k = 0; k < n; ++k) {  // V J
          double& vkp = v[static_cast<size_t>(k * n + p)];
          double& vkq = v[static_cast<size_t>(k * n + q)];
          const double x = vkp, y = vkq;
          vkp = c * x - s * y;
          vkq = s * x + c * y;
        }
      }
  }

  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return at(i, i) < at(j, j); });
  std::vector<double> values(static_cast<size_t>(n)), vectors(static_cast<size_t>(n * n));
  for (int64_t k = 0; k < n; ++k) {
    const int64_t src = order[static_cast<size_t>(k)];
    values[static_cast<size_t>(k)] = at(src, src);
    for (int64_t i = 0; i < n; ++i) vectors[static_cast<size_t>(i * n + k)] = v[static_cast<size_t>(i * n + src)];
  }
  return {from_values(values, {n}), from_values(vectors, {n, n})};
}

Svd svd(const Tensor& a_in) {
  std::vector<double> a = matrix_values("svd", a_in);
  const int64_t rows = a_in.size(0), cols = a_in.size(1);
  // Work on W = a (m >= n) or W = a^T (m < n), so W is [m,n] with m >= n, column-major
  // here: w[j] is column j, of length m.
  const bool transposed = rows < cols;
  const int64_t m = transposed ? cols : rows, n = transposed ? rows : cols;
  std::vector<std::vector<double>> w(static_cast<size_t>(n), std::vector<double>(static_cast<size_t>(m)));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const double x = a[static_cast<size_t>(i * cols + j)];
      if (transposed) w[static_cast<size_t>(i)][static_cast<size_t>(j)] = x;
      else w[static_cast<size_t>(j)][static_cast<size_t>(i)] = x;
    }
  std::vector<std::vector<double>> v(static_cast<size_t>(n), std::vector<double>(static_cast<size_t>(n), 0.0));
  for (int64_t j = 0; j < n; ++j) v[static_cast<size_t>(j)][static_cast<size_t>(j)] = 1;
  auto dot = [](const std::vector<double>& x, const std::vector<double>& y) {
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
    return s;
  };
  auto rotate = [](std::vector<double>& x, std::vector<double>& y, double c, double s) {
    for (size_t i = 0; i < x.size(); ++i) {
      const double xi = x[i], yi = y[i];
      x[i] = c * xi - s * yi;
      y[i] = s * xi + c * yi;
    }
  };
  // One-sided Jacobi: rotate column pairs (and V alongside) until every pair is orthogonal
  // to rounding, |w_p . w_q| <= 1e-15 ||w_p|| ||w_q||. Then W = U S and a = U S V^T.
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    bool rotated = false;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        auto& wp = w[static_cast<size_t>(p)];
        auto& wq = w[static_cast<size_t>(q)];
        const double alpha = dot(wp, wp), beta = dot(wq, wq), gamma = dot(wp, wq);
        if (gamma == 0 || std::abs(gamma) <= 1e-15 * std::sqrt(alpha * beta)) continue;
        rotated = true;
        double c, s;
        rotation(alpha, beta, gamma, c, s);
        rotate(wp, wq, c, s);
        rotate(v[static_cast<size_t>(p)], v[static_cast<size_t>(q)], c, s);
      }
    if (!rotated) break;
  }

  std::vector<double> norms(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) norms[static_cast<size_t>(j)] = std::sqrt(dot(w[static_cast<size_t>(j)], w[static_cast<size_t>(j)]));
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t i, int64_t j) { return norms[static_cast<size_t>(i)] > norms[static_cast<size_t>(j)]; });
  // Left vectors of W (length m) and right vectors (length n); for a^T they swap roles.
  std::vector<double> left(static_cast<size_t>(m * n), 0.0), right(static_cast<size_t>(n * n)), s(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    const size_t src = static_cast<size_t>(order[static_cast<size_t>(k)]);
    const double sk = norms[src];
    s[static_cast<size_t>(k)] = sk;
    if (sk > 0)
      for (int64_t i = 0; i < m; ++i) left[static_cast<size_t>(i * n + k)] = w[src][static_cast<size_t>(i)] / sk;
    // V J accumulated the rotations on V's columns stored as v[j] = column j.
    for (int64_t i = 0; i < n; ++i) right[static_cast<size_t>(i * n + k)] = v[src][static_cast<size_t>(i)];
  }
  Tensor L = from_values(left, {m, n}), R = from_values(right, {n, n}), S = from_values(s, {n});
  if (transposed) return {R, S, L};  // a^T = L S R^T  =>  a = R S L^T
  return {L, S, R};
}

Tensor svdvals(const Tensor& a) { return svd(a).S; }

double spectral_norm(const Tensor& a) {
  const Tensor s = svdvals(a);
  return s.numel() == 0 ? 0.0 : s.to_vector().front();
}

}  // namespace unroll::linalg
