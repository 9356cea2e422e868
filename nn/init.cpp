#include "nn/init.h"

#include <cmath>

namespace unroll::init {

std::pair<int64_t, int64_t> fans(const Shape& shape) {
  UNROLL_CHECK(shape.ndim() >= 2, "init: fan in/out need a weight of at least 2 dimensions, got {}", shape);
  int64_t receptive = 1;
  for (int i = 2; i < shape.ndim(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

static void fill(Variable& p, const Tensor& values) {
  UNROLL_CHECK(p.data().is_floating(), "init: cannot fill a {} tensor (parameters are float32 or float64)", p.dtype());
  NoGradGuard ng;
  copy_(p.data(), values.to(p.dtype()));
}

void uniform_(Variable& p, double lo, double hi, Generator& gen) {
  fill(p, uniform(p.shape(), lo, hi, gen, DType::F64));
}
void normal_(Variable& p, double mean, double stdev, Generator& gen) {
  UNROLL_CHECK(stdev >= 0, "normal_: stdev must be >= 0, got {}", stdev);
  fill(p, randn(p.shape(), gen, DType::F64) * stdev + mean);
}
void constant_(Variable& p, double value) { fill_(p.data(), value); }
void zeros_(Variable& p) { constant_(p, 0.0); }
void ones_(Variable& p) { constant_(p, 1.0); }

void xavier_uniform_(Variable& p, double gain, Generator& gen) {
  auto [in, out] = fans(p.shape());
  if (p.numel() == 0) return;  // nothing to fill (and the bound may be infinite), as in PyTorch
  const double a = gain * std::sqrt(6.0 / static_cast<double>(in + out));
  uniform_(p, -a, a, gen);
}
void xavier_normal_(Variable& p, double gain, Generator& gen) {
  auto [in, out] = fans(p.shape());
  if (p.numel() == 0) return;
  normal_(p, 0.0, gain * std::sqrt(2.0 / static_cast<double>(in + out)), gen);
}
void kaiming_uniform_(Variable& p, double a, Generator& gen) {
  if (fans(p.shape()).first == 0) return;  // an empty weight: nothing to fill
  const double bound = std::sqrt(6.0 / ((1.0 + a * a) * static_cast<double>(fans(p.shape()).first)));
  uniform_(p, -bound, bound, gen);
}
void kaiming_normal_(Variable& p, double a, Generator& gen) {
  if (fans(p.shape()).first == 0) return;  // an empty weight: nothing to fill
  normal_(p, 0.0, std::sqrt(2.0 / ((1.0 + a * a) * static_cast<double>(fans(p.shape()).first))), gen);
}

// Modified Gram-Schmidt on the columns of a tall Gaussian matrix [n, k] (n >= k) gives Q
// with orthonormal columns; signs follow R's diagonal being positive, as with QR.
void orthogonal_(Variable& p, double gain, Generator& gen) {
  UNROLL_CHECK(p.ndim() >= 2, "orthogonal_: needs at least 2 dimensions, got {}", p.shape());
  if (p.numel() == 0) return;  // no rows or no columns: nothing to fill
  const int64_t rows = p.shape()[0], cols = p.numel() / rows;
  const bool wide = rows < cols;
  const int64_t n = wide ? cols : rows, k = wide ? rows : cols;
  std::vector<double> q(static_cast<size_t>(n * k));  // column j at q[j*n ...]
  for (auto& v : q) v = gen.normal();
  for (int64_t j = 0; j < k; ++j) {
    double* cj = &q[static_cast<size_t>(j * n)];
    for (int64_t i = 0; i < j; ++i) {
      const double* ci = &q[static_cast<size_t>(i * n)];
      double dot = 0;
      for (int64_t r = 0; r < n; ++r) dot += ci[r] * cj[r];
      for (int64_t r = 0; r < n; ++r) cj[r] -= dot * ci[r];
    }
    double norm = 0;
    for (int64_t r = 0; r < n; ++r) norm += cj[r] * cj[r];
    norm = std::sqrt(norm);
    UNROLL_CHECK(norm > 1e-12, "orthogonal_: degenerate random matrix");
    for (int64_t r = 0; r < n; ++r) cj[r] /= norm;
  }
  std::vector<double> w(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      w[static_cast<size_t>(r * cols + c)] =
          gain * (wide ? q[static_cast<size_t>(r * n + c)] : q[static_cast<size_t>(c * n + r)]);
  fill(p, tensor(std::span<const double>(w), p.shape(), DType::F64));
}

}  // namespace unroll::init
