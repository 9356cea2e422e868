// core/linalg: the Jacobi eigensolver and SVD on matrices with known decompositions, and
// on random ones through their reconstruction residuals.
#include <doctest/doctest.h>
#include <unroll.h>

#include <cmath>
#include <vector>

using namespace unroll;

namespace {

Tensor f64(std::initializer_list<double> v, const Shape& s) { return tensor(v, s, DType::F64); }

double max_abs(const Tensor& t) { return max(abs(t)).item(); }

Tensor eye(int64_t n) {
  Tensor t = zeros({n, n}, DType::F64);
  for (int64_t i = 0; i < n; ++i) t.data<double>()[i * n + i] = 1;
  return t;
}

// diag(s) [k,k]
Tensor diag(const Tensor& s) {
  const int64_t k = s.numel();
  Tensor d = zeros({k, k}, DType::F64);
  for (int64_t i = 0; i < k; ++i) d.data<double>()[i * k + i] = s.data<double>()[i];
  return d;
}

void check_svd(const Tensor& a, double tol) {
  const linalg::Svd r = linalg::svd(a);
  const int64_t k = std::min(a.size(0), a.size(1));
  REQUIRE(r.U.shape() == Shape({a.size(0), k}));
  REQUIRE(r.V.shape() == Shape({a.size(1), k}));
  REQUIRE(r.S.shape() == Shape({k}));
  const double scale = std::max(1.0, max_abs(a));
  CHECK(max_abs(matmul(matmul(r.U, diag(r.S)), r.V, false, true) - a) < tol * scale);  // a = U S V^T
  CHECK(max_abs(matmul(r.V, r.V, true, false) - eye(k)) < tol);                       // V^T V = I
  CHECK(max_abs(matmul(r.U, r.U, true, false) - eye(k)) < tol);                       // U^T U = I (full rank)
  const std::vector<double> s = r.S.to_vector();
  for (size_t i = 0; i + 1 < s.size(); ++i) CHECK(s[i] >= s[i + 1]);
  CHECK(s.back() >= 0);
}

}  // namespace

TEST_CASE("eigh: a diagonal matrix gives its diagonal, ascending, and unit vectors") {
  const linalg::SymEig e = linalg::eigh(f64({3, 0, 0, 0, -1, 0, 0, 0, 2}, {3, 3}));
  CHECK(e.values.to_vector() == std::vector<double>{-1, 2, 3});
  CHECK(max_abs(abs(e.vectors) - f64({0, 0, 1, 1, 0, 0, 0, 1, 0}, {3, 3})) == 0);
}

TEST_CASE("eigh: [[2,1],[1,2]] has eigenvalues 1 and 3 with vectors (1,-1)/sqrt2 and (1,1)/sqrt2") {
  const linalg::SymEig e = linalg::eigh(f64({2, 1, 1, 2}, {2, 2}));
  CHECK(e.values.at({0}) == doctest::Approx(1.0).epsilon(1e-14));
  CHECK(e.values.at({1}) == doctest::Approx(3.0).epsilon(1e-14));
  const double r = 1 / std::sqrt(2.0);
  CHECK(std::abs(e.vectors.at({0, 0})) == doctest::Approx(r));
  CHECK(e.vectors.at({0, 0}) * e.vectors.at({1, 0}) == doctest::Approx(-0.5));  // (1,-1) direction
  CHECK(e.vectors.at({0, 1}) * e.vectors.at({1, 1}) == doctest::Approx(0.5));   // (1,1) direction
}

TEST_CASE("eigh: random symmetric matrices: A V = V diag(values), V orthogonal, trace kept") {
  Generator gen(11);
  for (int64_t n : {1, 2, 5, 17, 40}) {
    CAPTURE(n);
    const Tensor b = randn({n, n}, gen, DType::F64);
    const Tensor a = (b + transpose(b, 0, 1)) * 0.5;
    const linalg::SymEig e = linalg::eigh(a);
    CHECK(max_abs(matmul(a, e.vectors) - matmul(e.vectors, diag(e.values))) < 1e-12 * n);
    CHECK(max_abs(matmul(e.vectors, e.vectors, true, false) - eye(n)) < 1e-12 * n);
    double trace = 0;
    for (int64_t i = 0; i < n; ++i) trace += a.at({i, i});
    CHECK(sum(e.values).item() == doctest::Approx(trace).epsilon(1e-12));
    const std::vector<double> v = e.values.to_vector();
    for (size_t i = 0; i + 1 < v.size(); ++i) CHECK(v[i] <= v[i + 1]);
  }
}

TEST_CASE("eigh: a matrix with repeated eigenvalues (Q diag(2,2,2,-1) Q^T)") {
  Generator gen(3);
  const linalg::Svd q = linalg::svd(randn({4, 4}, gen, DType::F64));  // U: a random orthogonal matrix
  const Tensor a = matmul(matmul(q.U, diag(f64({2, 2, 2, -1}, {4}))), q.U, false, true);
  const linalg::SymEig e = linalg::eigh(a);
  CHECK(max_abs(e.values - f64({-1, 2, 2, 2}, {4})) < 1e-13);
  CHECK(max_abs(matmul(a, e.vectors) - matmul(e.vectors, diag(e.values))) < 1e-13);
}

TEST_CASE("svd: a rotation has singular values 1, a diagonal its |entries| sorted") {
  const double c = std::cos(0.7), s = std::sin(0.7);
  const Tensor rot = f64({c, -s, s, c}, {2, 2});
  CHECK(max_abs(linalg::svdvals(rot) - f64({1, 1}, {2})) < 1e-15);
  check_svd(rot, 1e-14);
  CHECK(linalg::svdvals(f64({0.5, 0, 0, 0, -4, 0, 0, 0, 2}, {3, 3})).to_vector() == std::vector<double>{4, 2, 0.5});
  CHECK(linalg::spectral_norm(f64({0.5, 0, 0, 0, -4, 0, 0, 0, 2}, {3, 3})) == 4);
}

TEST_CASE("svd: random square, tall and wide matrices are reconstructed: A = U S V^T") {
  Generator gen(5);
  for (auto [m, n] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 3}, {7, 3}, {3, 7}, {32, 32}, {64, 20}}) {
    CAPTURE(m);
    CAPTURE(n);
    check_svd(randn({m, n}, gen, DType::F64), 1e-12);
  }
}

TEST_CASE("svd: singular values agree with the square roots of eigh(A^T A), and keep tiny ones") {
  Generator gen(9);
  const Tensor a = randn({12, 8}, gen, DType::F64);
  const std::vector<double> s = linalg::svdvals(a).to_vector();
  const std::vector<double> e = linalg::eigh(matmul(a, a, true, false)).values.to_vector();  // ascending
  for (size_t i = 0; i < s.size(); ++i) CHECK(s[i] == doctest::Approx(std::sqrt(e[e.size() - 1 - i])).epsilon(1e-10));
  // A graded matrix U diag(1, 1e-5, 1e-10, 1e-15) V^T: one-sided Jacobi keeps every singular
  // value to high relative accuracy (the eigenvalues of A^T A would lose the last two).
  const linalg::Svd q1 = linalg::svd(randn({4, 4}, gen, DType::F64)), q2 = linalg::svd(randn({4, 4}, gen, DType::F64));
  const Tensor graded = matmul(matmul(q1.U, diag(f64({1, 1e-5, 1e-10, 1e-15}, {4}))), q2.U, false, true);
  const std::vector<double> g = linalg::svdvals(graded).to_vector();
  CHECK(g[0] == doctest::Approx(1).epsilon(1e-12));
  CHECK(g[1] == doctest::Approx(1e-5).epsilon(1e-6));
  CHECK(g[2] == doctest::Approx(1e-10).epsilon(1e-2));  // limited by the rounding of forming `graded` itself
}

TEST_CASE("svd: a rank-one matrix has one nonzero singular value; a zero matrix only zeros") {
  const Tensor u = f64({1, 2, 3}, {3, 1}), v = f64({4, 5}, {1, 2});
  const std::vector<double> s = linalg::svdvals(matmul(u, v)).to_vector();
  CHECK(s[0] == doctest::Approx(std::sqrt(14.0 * 41.0)).epsilon(1e-14));
  CHECK(std::abs(s[1]) < 1e-14);
  const linalg::Svd z = linalg::svd(zeros({3, 2}, DType::F64));
  CHECK(z.S.to_vector() == std::vector<double>{0, 0});
  CHECK(max_abs(z.U) == 0);
}

TEST_CASE("linalg: float32 input is computed in float64") {
  const linalg::SymEig e = linalg::eigh(tensor({2, 1, 1, 2}, {2, 2}));
  CHECK(e.values.dtype() == DType::F64);
  CHECK(linalg::svdvals(tensor({3, 0, 0, 4}, {2, 2})).to_vector() == std::vector<double>{4, 3});
}

TEST_CASE("linalg: bad input is a clear error") {
  CHECK_THROWS_WITH_AS(linalg::eigh(f64({1, 2, 3}, {3})), "eigh: expected a 2-D matrix, got shape [3]", Error);
  CHECK_THROWS_WITH_AS(linalg::eigh(f64({1, 2, 3, 4, 5, 6}, {2, 3})), "eigh: expected a square matrix, got [2,3]", Error);
  CHECK_THROWS_WITH_AS(linalg::eigh(f64({1, 2, 3, 4}, {2, 2})),
                       "eigh: matrix [2,2] is not symmetric: a[0,1] = 2 but a[1,0] = 3", Error);
  CHECK_THROWS_WITH_AS(linalg::svd(indices({1, 2, 3, 4}, {2, 2})), "svd: expected a floating matrix, got int64 [2,2]",
                       Error);
  CHECK_THROWS_WITH_AS(linalg::svd(f64({1, NAN, 3, 4}, {2, 2})), "svd: matrix [2,2] has a non-finite element nan at [0,1]",
                       Error);
  CHECK_THROWS_WITH_AS(linalg::svd(Tensor()), "svd: the tensor is undefined", Error);
}
