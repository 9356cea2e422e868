#pragma once
// Small dense linear algebra by Jacobi rotations: a symmetric eigensolver and the singular
// value decomposition, in float64, for matrices of up to a few hundred rows (the Jacobians
// and Hessians of examples/jacobian.cpp). Cost O(n^3) per sweep, typically 6-10 sweeps.
//
// NOT differentiable: these take and return Tensors (no Variable overloads, nothing is
// recorded). Inputs of any floating dtype are converted to float64; results are float64.
//
//   linalg::SymEig e = linalg::eigh(a);     // a = V diag(values) V^T, values ascending
//   Tensor s = linalg::svdvals(j);          // singular values, descending
#include "core/tensor.h"

namespace unroll::linalg {

struct SymEig {
  Tensor values;   ///< [n] eigenvalues in ascending order (like torch.linalg.eigh)
  Tensor vectors;  ///< [n,n] orthonormal eigenvectors as columns: a v_k = values[k] v_k
};

/// Eigen-decomposition of a real symmetric matrix [n,n] (torch.linalg.eigh) by cyclic
/// Jacobi rotations. Errors when a is not 2-D square, not floating, not finite, or not
/// symmetric to within 1e-8 relative to its largest element.
SymEig eigh(const Tensor& a);

struct Svd {
  Tensor U;  ///< [m,k] orthonormal columns (k = min(m,n)); a column is zero where S is 0
  Tensor S;  ///< [k] singular values, descending
  Tensor V;  ///< [n,k] orthonormal columns: a = U diag(S) V^T (torch.linalg.svd gives Vh = V^T)
};

/// Thin SVD of a [m,n] matrix by one-sided Jacobi (Hestenes) rotations: the columns of a
/// (of a^T when m < n) are rotated until mutually orthogonal, which keeps the small
/// singular values accurate to their own size (unlike the eigenvalues of a^T a).
Svd svd(const Tensor& a);

/// The singular values alone, descending (torch.linalg.svdvals).
Tensor svdvals(const Tensor& a);

/// The largest singular value sigma_max(a) = ||a||_2 (0 for an empty matrix).
double spectral_norm(const Tensor& a);

}  // namespace unroll::linalg
