// Table-driven float64 gradient checks of every differentiable op in autograd/ops.h.
//
// Each case is a name, its inputs (shape + a generator that keeps the values where the
// op is smooth: positive for log/sqrt/pow/div denominators, off the kinks for relu/abs/
// clamp, well-separated for maximum/minimum/max/min) and a lambda that builds the output
// from float64 leaves. unroll::gradcheck compares backward() with central differences
// (a non-scalar output is checked through a random vector-Jacobian product).
// The kinks themselves are tested separately against the documented subgradients, and a
// few deliberately wrong custom ops prove that the checker can fail.
//
// tests/test_gradgradcheck.cpp includes this file with UNROLL_GRADGRADCHECK_TABLE defined:
// the same table then runs through gradgradcheck (second derivatives), and the tests
// after the table (kinks, failing checkers) are left out there.
#include <doctest/doctest.h>
#include <unroll.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <functional>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

using namespace unroll;

#ifdef UNROLL_GRADGRADCHECK_TABLE
#define CHECKER "gradgradcheck"
#else
#define CHECKER "gradcheck"
#endif

namespace {

using Vars = std::vector<Variable>;
using Fn = std::function<Variable(const Vars&)>;
using Gen = std::function<Tensor(const Shape&, Generator&)>;

// ---- input generators (all float64) -----------------------------------------------------

Tensor from_fn(const Shape& s, const std::function<double()>& value) {
  std::vector<double> v(static_cast<size_t>(s.numel()));
  for (double& x : v) x = value();
  return tensor(std::span<const double>(v), s, DType::F64);
}

/// N(0, 1).
Tensor normal(const Shape& s, Generator& g) { return randn(s, g, DType::F64); }
/// U[0.5, 2): for log, sqrt, pow and denominators.
Tensor positive(const Shape& s, Generator& g) { return uniform(s, 0.5, 2.0, g, DType::F64); }
/// 0.25 k + 0.125 +- 0.05: at least 0.075 from every multiple of 0.25, so away from the
/// kinks of relu/abs (0) and of clamp with bounds on that grid.
Tensor off_grid(const Shape& s, Generator& g) {
  return from_fn(s, [&] { return 0.25 * static_cast<double>(g.randint(-6, 6)) + 0.125 + g.uniform(-0.05, 0.05); });
}
/// For maximum/minimum: a on 0.3 k +- 0.03, b on 0.3 k + 0.15 +- 0.03, so |a - b| >= 0.09
/// for every pair, whatever the broadcasting.
Tensor grid_a(const Shape& s, Generator& g) {
  return from_fn(s, [&] { return 0.3 * static_cast<double>(g.randint(-4, 5)) + g.uniform(-0.03, 0.03); });
}
Tensor grid_b(const Shape& s, Generator& g) {
  return from_fn(s, [&] { return 0.3 * static_cast<double>(g.randint(-4, 5)) + 0.15 + g.uniform(-0.03, 0.03); });
}
/// All elements distinct, at least 0.06 apart (for max/min reductions).
Tensor distinct(const Shape& s, Generator& g) {
  const int64_t n = s.numel();
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(g.randint(0, i + 1))]);
  std::vector<double> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = 0.1 * static_cast<double>(perm[i] - n / 2) + g.uniform(-0.02, 0.02);
  return tensor(std::span<const double>(v), s, DType::F64);
}

// ---- the table ----------------------------------------------------------------------------

struct Input {
  Shape shape;
  Gen gen;
};

struct Case {
  std::string name;
  std::vector<Tensor> inputs;
  Fn f;
  GradcheckOptions opt;
};

struct Table {
  std::vector<Case> cases;
  uint64_t seed;
  explicit Table(uint64_t first_seed) : seed(first_seed) {}
  /// Adds a case; each case draws its inputs from its own fixed seed.
  void add(std::string name, const std::vector<Input>& inputs, Fn f, GradcheckOptions opt = {}) {
    Generator g(seed++);
    std::vector<Tensor> ts;
    for (const Input& in : inputs) ts.push_back(in.gen(in.shape, g));
    cases.push_back({std::move(name), std::move(ts), std::move(f), opt});
  }
};

// The op table: every op name recorded while a case of this table ran (the graph observer
// sees each node as it is recorded). The test "op table" below checks that every op the
// library records is among them, or has its gradcheck in the file its exemption names.
std::set<std::string>& covered_ops() {
  static std::set<std::string> ops;
  return ops;
}

struct OpCollector : detail::GraphObserver {
  detail::GraphObserver* prev = detail::graph_observer();
  OpCollector() { detail::graph_observer() = this; }
  ~OpCollector() override { detail::graph_observer() = prev; }
  OpCollector(const OpCollector&) = delete;
  OpCollector& operator=(const OpCollector&) = delete;
  void on_record(const Node* n) override {
    if (n->op) covered_ops().insert(n->op);
  }
  void on_backward_start(const Node*) override {}
  void on_grad(const Node*, const Tensor&) override {}
};

void run(const Table& t) {
  for (const Case& c : t.cases) {
    GradcheckResult r;
    std::string error;
    OpCollector collect;
    try {
#ifdef UNROLL_GRADGRADCHECK_TABLE
      r = gradgradcheck(c.f, c.inputs, c.opt);
#else
      r = gradcheck(c.f, c.inputs, c.opt);
#endif
    } catch (const std::exception& e) {
      error = e.what();
      r.ok = false;
    }
    const std::string msg = "case '" + c.name + "': " + (error.empty() ? r.summary() : "threw: " + error);
    CHECK_MESSAGE(r.ok, msg);
  }
}

[[maybe_unused]] Tensor f64(std::initializer_list<double> v) { return tensor(v, DType::F64); }

std::string shape_name(const Shape& s) { return s.str(); }

}  // namespace

// ---- elementwise unary --------------------------------------------------------------------

TEST_CASE(CHECKER ": unary ops") {
  Table t(100);
  const Shape s{3, 4};
  t.add("neg", {{s, normal}}, [](const Vars& v) { return neg(v[0]); });
  t.add("operator-(a)", {{s, normal}}, [](const Vars& v) { return -v[0]; });
  t.add("exp", {{s, normal}}, [](const Vars& v) { return exp(v[0]); });
  t.add("log", {{s, positive}}, [](const Vars& v) { return log(v[0]); });
  t.add("tanh", {{s, normal}}, [](const Vars& v) { return tanh(v[0]); });
  t.add("sigmoid", {{s, normal}}, [](const Vars& v) { return sigmoid(v[0]); });
  t.add("relu", {{s, off_grid}}, [](const Vars& v) { return relu(v[0]); });
  t.add("sqrt", {{s, positive}}, [](const Vars& v) { return sqrt(v[0]); });
  t.add("abs", {{s, off_grid}}, [](const Vars& v) { return abs(v[0]); });
  t.add("pow 2", {{s, normal}}, [](const Vars& v) { return pow(v[0], 2.0); });
  t.add("pow 3", {{s, normal}}, [](const Vars& v) { return pow(v[0], 3.0); });
  t.add("pow 0.5", {{s, positive}}, [](const Vars& v) { return pow(v[0], 0.5); });
  t.add("pow -1.5", {{s, positive}}, [](const Vars& v) { return pow(v[0], -1.5); });
  t.add("pow 1.7", {{s, positive}}, [](const Vars& v) { return pow(v[0], 1.7); });
  t.add("pow 0", {{s, positive}}, [](const Vars& v) { return pow(v[0], 0.0); });
  t.add("clamp [-0.5, 0.5]", {{s, off_grid}}, [](const Vars& v) { return clamp(v[0], -0.5, 0.5); });
  t.add("clamp [-0.25, 1]", {{s, off_grid}}, [](const Vars& v) { return clamp(v[0], -0.25, 1.0); });
  t.add("relu 3-D", {{{2, 3, 4}, off_grid}}, [](const Vars& v) { return relu(v[0]); });
  t.add("tanh scalar []", {{Shape{}, normal}}, [](const Vars& v) { return tanh(v[0]); });
  run(t);
}

// ---- elementwise binary, same and broadcast shapes ----------------------------------------

TEST_CASE(CHECKER ": binary ops with same and broadcast shapes") {
  Table t(200);
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{3, 4}, {3, 4}},    {{3, 4}, {4}},       {{4}, {3, 4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {3, 1}},
      {{3, 1}, {2, 3, 4}}, {{3, 4}, Shape{}},   {{}, {3, 4}},  {{3, 4}, {1}},    {{1}, {2, 3, 4}},
      {{2, 1, 4}, {3, 1}}};
  struct Op {
    const char* name;
    Gen ga, gb;
    std::function<Variable(const Variable&, const Variable&)> f;
  };
  const std::vector<Op> ops = {
      {"add", normal, normal, [](const Variable& a, const Variable& b) { return add(a, b); }},
      {"sub", normal, normal, [](const Variable& a, const Variable& b) { return sub(a, b); }},
      {"mul", normal, normal, [](const Variable& a, const Variable& b) { return mul(a, b); }},
      {"div", normal, positive, [](const Variable& a, const Variable& b) { return div(a, b); }},
      {"maximum", grid_a, grid_b, [](const Variable& a, const Variable& b) { return maximum(a, b); }},
      {"minimum", grid_a, grid_b, [](const Variable& a, const Variable& b) { return minimum(a, b); }},
      {"maximum (b first)", grid_b, grid_a, [](const Variable& a, const Variable& b) { return maximum(a, b); }},
      {"minimum (b first)", grid_b, grid_a, [](const Variable& a, const Variable& b) { return minimum(a, b); }},
      {"a + b", normal, normal, [](const Variable& a, const Variable& b) { return a + b; }},
      {"a - b", normal, normal, [](const Variable& a, const Variable& b) { return a - b; }},
      {"a * b", normal, normal, [](const Variable& a, const Variable& b) { return a * b; }},
      {"a / b", normal, positive, [](const Variable& a, const Variable& b) { return a / b; }},
  };
  for (const Op& op : ops)
    for (const auto& [sa, sb] : pairs) {
      auto f = op.f;
      t.add(std::string(op.name) + " " + shape_name(sa) + " with " + shape_name(sb), {{sa, op.ga}, {sb, op.gb}},
            [f](const Vars& v) { return f(v[0], v[1]); });
    }
  // Negative denominators too (div is smooth away from 0).
  t.add("div negative b", {{{3, 4}, normal}, {{3, 4}, positive}}, [](const Vars& v) { return div(v[0], -v[1]); });
  run(t);
}

TEST_CASE(CHECKER ": scalar variants and operators") {
  Table t(300);
  const Shape s{3, 4};
  t.add("add(a, s)", {{s, normal}}, [](const Vars& v) { return add(v[0], 1.5); });
  t.add("mul(a, s)", {{s, normal}}, [](const Vars& v) { return mul(v[0], -2.5); });
  t.add("rsub(s, a)", {{s, normal}}, [](const Vars& v) { return rsub(0.7, v[0]); });
  t.add("rdiv(s, a)", {{s, positive}}, [](const Vars& v) { return rdiv(3.0, v[0]); });
  t.add("a + s", {{s, normal}}, [](const Vars& v) { return v[0] + 2.0; });
  t.add("a - s", {{s, normal}}, [](const Vars& v) { return v[0] - 2.0; });
  t.add("a * s", {{s, normal}}, [](const Vars& v) { return v[0] * 3.0; });
  t.add("a / s", {{s, normal}}, [](const Vars& v) { return v[0] / 4.0; });
  t.add("s + a", {{s, normal}}, [](const Vars& v) { return 2.0 + v[0]; });
  t.add("s - a", {{s, normal}}, [](const Vars& v) { return 2.0 - v[0]; });
  t.add("s * a", {{s, normal}}, [](const Vars& v) { return -3.0 * v[0]; });
  t.add("s / a", {{s, positive}}, [](const Vars& v) { return 1.5 / v[0]; });
  t.add("s / a (negative a)", {{s, positive}}, [](const Vars& v) { return 1.5 / (0.0 - v[0]); });
  t.add("chain of scalar ops", {{s, positive}},
        [](const Vars& v) { return (2.0 - v[0] * 3.0) / 4.0 + 1.0 / (v[0] + 1.0) - 0.5; });
  run(t);
}

// ---- matmul and linear --------------------------------------------------------------------

TEST_CASE(CHECKER ": matmul and linear") {
  Table t(400);
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const bool a_t = ta != 0, b_t = tb != 0;
      const std::string tag = std::string(a_t ? "T" : "N") + (b_t ? "T" : "N");
      // op(A) [3,4], op(B) [4,5]
      const Shape a2 = a_t ? Shape{4, 3} : Shape{3, 4};
      const Shape b2 = b_t ? Shape{5, 4} : Shape{4, 5};
      t.add("matmul 2-D " + tag, {{a2, normal}, {b2, normal}},
            [a_t, b_t](const Vars& v) { return matmul(v[0], v[1], a_t, b_t); });
      // batched: op(A) [2,3,4], op(B) [2,4,5]
      const Shape a3 = a_t ? Shape{2, 4, 3} : Shape{2, 3, 4};
      const Shape b3 = b_t ? Shape{2, 5, 4} : Shape{2, 4, 5};
      t.add("matmul 3-D x 3-D " + tag, {{a3, normal}, {b3, normal}},
            [a_t, b_t](const Vars& v) { return matmul(v[0], v[1], a_t, b_t); });
      // 3-D x 2-D: op(A) [2,3,4], op(B) [4,5]
      t.add("matmul 3-D x 2-D " + tag, {{a3, normal}, {b2, normal}},
            [a_t, b_t](const Vars& v) { return matmul(v[0], v[1], a_t, b_t); });
    }
  t.add("matmul 2-D vector-shaped [1,4] x [4,1]", {{{1, 4}, normal}, {{4, 1}, normal}},
        [](const Vars& v) { return matmul(v[0], v[1]); });
  t.add("linear 2-D with bias", {{{3, 4}, normal}, {{5, 4}, normal}, {{5}, normal}},
        [](const Vars& v) { return linear(v[0], v[1], v[2]); });
  t.add("linear 2-D without bias", {{{3, 4}, normal}, {{5, 4}, normal}},
        [](const Vars& v) { return linear(v[0], v[1]); });
  t.add("linear 3-D with bias", {{{2, 3, 4}, normal}, {{5, 4}, normal}, {{5}, normal}},
        [](const Vars& v) { return linear(v[0], v[1], v[2]); });
  t.add("linear 3-D without bias", {{{2, 3, 4}, normal}, {{5, 4}, normal}},
        [](const Vars& v) { return linear(v[0], v[1]); });
  t.add("linear 1-D input with bias", {{{4}, normal}, {{5, 4}, normal}, {{5}, normal}},
        [](const Vars& v) { return linear(v[0], v[1], v[2]); });
  // linear2(x1, W1, x2, W2, b1, b2) = x1 W1^T + b1 + x2 W2^T + b2 (a recurrent cell's gates)
  t.add("linear2 with both biases", {{{3, 4}, normal}, {{5, 4}, normal}, {{3, 2}, normal}, {{5, 2}, normal},
                                      {{5}, normal}, {{5}, normal}},
        [](const Vars& v) { return linear2(v[0], v[1], v[2], v[3], v[4], v[5]); });
  t.add("linear2 without bias, one input used twice", {{{3, 4}, normal}, {{5, 4}, normal}, {{5, 4}, normal}},
        [](const Vars& v) { return linear2(v[0], v[1], v[0], v[2]); });
  // add_linear(base, x, W, b) = base + x W^T + b (a step's gates from its projected input)
  t.add("add_linear with bias", {{{3, 5}, normal}, {{3, 4}, normal}, {{5, 4}, normal}, {{5}, normal}},
        [](const Vars& v) { return add_linear(v[0], v[1], v[2], v[3]); });
  t.add("add_linear without bias, base made from x", {{{3, 5}, normal}, {{5, 5}, normal}},
        [](const Vars& v) { return add_linear(tanh(v[0]), v[0], v[1]); });
  run(t);
}

// ---- reductions ---------------------------------------------------------------------------

TEST_CASE(CHECKER ": reductions") {
  Table t(500);
  const Shape s{2, 3, 4};
  t.add("sum all", {{s, normal}}, [](const Vars& v) { return sum(v[0]); });
  t.add("mean all", {{s, normal}}, [](const Vars& v) { return mean(v[0]); });
  t.add("max all", {{s, distinct}}, [](const Vars& v) { return max(v[0]); });
  for (int axis : {0, 1, 2, -1, -3})
    for (bool keep : {false, true}) {
      const std::string tag = " axis " + std::to_string(axis) + (keep ? " keepdim" : "");
      t.add("sum" + tag, {{s, normal}}, [axis, keep](const Vars& v) { return sum(v[0], axis, keep); });
      t.add("mean" + tag, {{s, normal}}, [axis, keep](const Vars& v) { return mean(v[0], axis, keep); });
      t.add("max" + tag, {{s, distinct}}, [axis, keep](const Vars& v) { return max(v[0], axis, keep); });
      t.add("min" + tag, {{s, distinct}}, [axis, keep](const Vars& v) { return min(v[0], axis, keep); });
    }
  for (int axis : {0, 1, 2, -1}) {
    const std::string tag = " axis " + std::to_string(axis);
    t.add("softmax" + tag, {{s, normal}}, [axis](const Vars& v) { return softmax(v[0], axis); });
    t.add("log_softmax" + tag, {{s, normal}}, [axis](const Vars& v) { return log_softmax(v[0], axis); });
  }
  t.add("softmax 2-D axis 1 (large logits)", {{{3, 5}, normal}},
        [](const Vars& v) { return softmax(v[0] * 5.0 + 100.0, 1); });
  t.add("log_softmax 1-D", {{{6}, normal}}, [](const Vars& v) { return log_softmax(v[0], 0); });
  t.add("sum of a 1-D tensor to []", {{{5}, normal}}, [](const Vars& v) { return sum(v[0], 0); });
  run(t);
}

// ---- shape ops ----------------------------------------------------------------------------

TEST_CASE(CHECKER ": shape ops") {
  Table t(600);
  const Shape s{2, 3, 4};
  t.add("reshape [6,4]", {{s, normal}}, [](const Vars& v) { return reshape(v[0], {6, 4}); });
  t.add("reshape [4,-1]", {{s, normal}}, [](const Vars& v) { return reshape(v[0], {4, -1}); });
  t.add("flatten", {{s, normal}}, [](const Vars& v) { return flatten(v[0]); });
  t.add("unsqueeze 0", {{s, normal}}, [](const Vars& v) { return unsqueeze(v[0], 0); });
  t.add("unsqueeze -1", {{s, normal}}, [](const Vars& v) { return unsqueeze(v[0], -1); });
  t.add("unsqueeze 2", {{s, normal}}, [](const Vars& v) { return unsqueeze(v[0], 2); });
  t.add("squeeze 1", {{{3, 1, 4}, normal}}, [](const Vars& v) { return squeeze(v[0], 1); });
  t.add("squeeze -2", {{{3, 1, 4}, normal}}, [](const Vars& v) { return squeeze(v[0], -2); });
  t.add("transpose 0 2", {{s, normal}}, [](const Vars& v) { return transpose(v[0], 0, 2); });
  t.add("transpose 1 -1", {{s, normal}}, [](const Vars& v) { return transpose(v[0], 1, -1); });
  t.add("transpose 2-D", {{{3, 5}, normal}}, [](const Vars& v) { return transpose(v[0], 0, 1); });
  t.add("permute {2,0,1}", {{s, normal}}, [](const Vars& v) { return permute(v[0], {2, 0, 1}); });
  t.add("permute {1,2,0}", {{s, normal}}, [](const Vars& v) { return permute(v[0], {1, 2, 0}); });
  t.add("permute {0,-1,1}", {{s, normal}}, [](const Vars& v) { return permute(v[0], {0, -1, 1}); });
  t.add("narrow axis 1", {{s, normal}}, [](const Vars& v) { return narrow(v[0], 1, 1, 2); });
  t.add("narrow axis -1", {{s, normal}}, [](const Vars& v) { return narrow(v[0], -1, 0, 3); });
  t.add("slice axis 2 [-3:-1]", {{s, normal}}, [](const Vars& v) { return slice(v[0], 2, -3, -1); });
  t.add("slice axis 0 [1:100]", {{s, normal}}, [](const Vars& v) { return slice(v[0], 0, 1, 100); });
  t.add("slice axis -2 [-2:3]", {{s, normal}}, [](const Vars& v) { return slice(v[0], -2, -2, 3); });
  t.add("concat 3 inputs axis 1", {{{2, 1, 4}, normal}, {{2, 3, 4}, normal}, {{2, 2, 4}, normal}},
        [](const Vars& v) { return concat({v[0], v[1], v[2]}, 1); });
  t.add("concat 3 inputs axis 0", {{{1, 3}, normal}, {{3, 3}, normal}, {{2, 3}, normal}},
        [](const Vars& v) { return concat({v[0], v[1], v[2]}, 0); });
  t.add("concat 3 inputs axis -1", {{{2, 3, 1}, normal}, {{2, 3, 2}, normal}, {{2, 3, 4}, normal}},
        [](const Vars& v) { return concat({v[0], v[1], v[2]}, -1); });
  t.add("concat span", {{{2, 2}, normal}, {{2, 3}, normal}},
        [](const Vars& v) { return concat(std::span<const Variable>(v), 1); });
  for (int axis : {0, 1, 2, -1}) {
    t.add("stack 3 inputs axis " + std::to_string(axis), {{{3, 4}, normal}, {{3, 4}, normal}, {{3, 4}, normal}},
          [axis](const Vars& v) { return stack({v[0], v[1], v[2]}, axis); });
  }
  t.add("stack span axis 1", {{{2, 3}, normal}, {{2, 3}, normal}},
        [](const Vars& v) { return stack(std::span<const Variable>(v), 1); });
  // split/chunk: every piece reaches the output, each with a different weight, in reverse
  // order, so a gradient sent to the wrong piece is caught.
  auto weighted_reverse = [](const std::vector<Variable>& pieces, int axis) {
    std::vector<Variable> out;
    for (size_t i = pieces.size(); i-- > 0;) out.push_back(pieces[i] * static_cast<double>(i + 1));
    return concat(std::span<const Variable>(out), axis);
  };
  t.add("split [7,3] size 3 axis 0", {{{7, 3}, normal}},
        [weighted_reverse](const Vars& v) { return weighted_reverse(split(v[0], 3, 0), 0); });
  t.add("split [2,5,2] size 2 axis -2", {{{2, 5, 2}, normal}},
        [weighted_reverse](const Vars& v) { return weighted_reverse(split(v[0], 2, -2), 1); });
  t.add("chunk [3,10] into 4 axis 1", {{{3, 10}, normal}},
        [weighted_reverse](const Vars& v) { return weighted_reverse(chunk(v[0], 4, 1), 1); });
  t.add("chunk [6,2] into 3 axis 0 (summed)", {{{6, 2}, normal}}, [](const Vars& v) {
    auto p = chunk(v[0], 3, 0);
    return p[0] * 1.0 + p[1] * tanh(p[2]) + p[2] * -2.0;
  });
  t.add("broadcast_to [3,1] -> [2,3,4]", {{{3, 1}, normal}},
        [](const Vars& v) { return broadcast_to(v[0], {2, 3, 4}); });
  t.add("broadcast_to [4] -> [3,4]", {{{4}, normal}}, [](const Vars& v) { return broadcast_to(v[0], {3, 4}); });
  t.add("broadcast_to [] -> [2,3]", {{Shape{}, normal}}, [](const Vars& v) { return broadcast_to(v[0], {2, 3}); });
  t.add("index_select axis 0 repeated", {{{3, 4}, normal}},
        [](const Vars& v) { return index_select(v[0], 0, indices({2, 0, 2, 1, 2})); });
  t.add("index_select axis -1 repeated", {{s, normal}},
        [](const Vars& v) { return index_select(v[0], -1, indices({3, 3, 0})); });
  t.add("gather axis 1 repeated", {{{3, 4}, normal}}, [](const Vars& v) {
    const Tensor idx = indices(std::vector<int64_t>{0, 0, 3, 1, 0, 2, 2, 2, 3, 3, 1, 3, 0, 1, 1}).reshape({3, 5});
    return gather(v[0], 1, idx);
  });
  t.add("gather axis 0 repeated", {{{3, 4}, normal}}, [](const Vars& v) {
    const Tensor idx = indices(std::vector<int64_t>{2, 2, 0, 1, 2, 0, 0, 1}).reshape({2, 4});
    return gather(v[0], 0, idx);
  });
  t.add("where cond [3,1] broadcast", {{{3, 4}, normal}, {{3, 4}, normal}}, [](const Vars& v) {
    return where(tensor({1, 0, 1}, {3, 1}, DType::F64), v[0], v[1]);
  });
  t.add("where cond [4], b [4] broadcast", {{{3, 4}, normal}, {{4}, normal}}, [](const Vars& v) {
    return where(tensor({0, 1, 1, 0}, {4}, DType::F64), v[0], v[1]);
  });
  t.add("where cond [3,4], a [3,1]", {{{3, 1}, normal}, {{3, 4}, normal}}, [](const Vars& v) {
    return where(tensor({1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0}, {3, 4}, DType::F64), v[0], v[1]);
  });
  t.add("masked_fill mask [3,4]", {{{3, 4}, normal}}, [](const Vars& v) {
    return masked_fill(v[0], tensor({1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0}, {3, 4}, DType::F64), -7.0);
  });
  t.add("masked_fill mask [4] broadcast", {{{2, 3, 4}, normal}},
        [](const Vars& v) { return masked_fill(v[0], tensor({0, 1, 0, 1}, {4}, DType::F64), 0.5); });
  run(t);
}

// ---- graphs: reuse, diamonds, recurrences -------------------------------------------------

TEST_CASE(CHECKER ": inputs used twice, diamonds and recurrent composites") {
  Table t(700);
  t.add("x * x", {{{3, 4}, normal}}, [](const Vars& v) { return v[0] * v[0]; });
  t.add("x + tanh(x)", {{{3, 4}, normal}}, [](const Vars& v) { return v[0] + tanh(v[0]); });
  t.add("matmul(x, x)", {{{3, 3}, normal}}, [](const Vars& v) { return matmul(v[0], v[0]); });
  t.add("matmul(x, x^T)", {{{3, 4}, normal}}, [](const Vars& v) { return matmul(v[0], v[0], false, true); });
  t.add("x / sum(x)", {{{3, 4}, positive}}, [](const Vars& v) { return v[0] / sum(v[0]); });
  t.add("x * broadcast row of x", {{{3, 4}, normal}},
        [](const Vars& v) { return v[0] * narrow(v[0], 0, 1, 1); });
  t.add("diamond", {{{3, 4}, normal}, {{4}, normal}}, [](const Vars& v) {
    const Variable a = tanh(v[0] + v[1]);  // a feeds two branches that meet again
    const Variable left = a * a;
    const Variable right = exp(a) * v[1];
    return sigmoid(left - right) + a;
  });
  t.add("two outputs summed", {{{2, 3}, normal}}, [](const Vars& v) {
    const Variable y = sigmoid(v[0]);
    return sum(y) * mean(y, 1, true) + max(y, 0, true);
  });

  // A 5-step tanh RNN: h_t = tanh(x_t W_ih^T + h_{t-1} W_hh^T + b). The inputs x_t are
  // constants; the check covers W_ih, W_hh, b and h0.
  {
    Generator g(7);
    std::vector<Variable> xs;
    for (int step = 0; step < 5; ++step) xs.emplace_back(randn({2, 3}, g, DType::F64));
    t.add("tanh RNN, 5 steps (W_ih, W_hh, b, h0)",
          {{{4, 3}, normal}, {{4, 4}, normal}, {{4}, normal}, {{2, 4}, normal}}, [xs](const Vars& v) {
            const Variable &w_ih = v[0], &w_hh = v[1], &b = v[2];
            Variable h = v[3];
            std::vector<Variable> hs;
            for (const Variable& x : xs) {
              h = tanh(matmul(x, w_ih, false, true) + matmul(h, w_hh, false, true) + b);
              hs.push_back(h);
            }
            return stack(std::span<const Variable>(hs), 0);  // [5, 2, 4]: every step reaches the output
          });
    t.add("tanh RNN via linear, 5 steps, final state", {{{4, 3}, normal}, {{4, 4}, normal}, {{4}, normal},
                                                      {{2, 4}, normal}},
          [xs](const Vars& v) {
            Variable h = v[3];
            for (const Variable& x : xs) h = tanh(linear(x, v[0], v[2]) + linear(h, v[1]));
            return h;
          });
  }

  // Two LSTM-like steps: gates = x W^T + h U^T + b, split by chunk into i, f, g, o.
  {
    Generator g(8);
    std::vector<Variable> xs;
    for (int step = 0; step < 2; ++step) xs.emplace_back(randn({2, 3}, g, DType::F64));
    t.add("LSTM-like steps with chunk (W, U, b, h0, c0)",
          {{{16, 3}, normal}, {{16, 4}, normal}, {{16}, normal}, {{2, 4}, normal}, {{2, 4}, normal}},
          [xs](const Vars& v) {
            Variable h = v[3], c = v[4];
            for (const Variable& x : xs) {
              const Variable gates = linear(x, v[0], v[2]) + matmul(h, v[1], false, true);
              const std::vector<Variable> q = chunk(gates, 4, 1);
              c = sigmoid(q[1]) * c + sigmoid(q[0]) * tanh(q[2]);
              h = sigmoid(q[3]) * tanh(c);
            }
            return concat({h, c}, 1);
          });
  }
  run(t);
}

// ---- the op table ------------------------------------------------------------------------
// Every op the library records (each record("name", ...) in autograd/ and nn/) must be
// proven by a float64 check of `checker` (gradcheck here; gradgradcheck in
// tests/test_gradgradcheck.cpp): either a table case recorded it (seen by OpCollector), or
// `elsewhere` names the test file whose check covers it; that file must call the checker
// and contain the given text. A new op with neither fails. (It reads the table's coverage
// from the cases run before it, in file order: run alone, with -tc, it says so and checks
// nothing.)
namespace {
using Elsewhere = std::map<std::string, std::pair<std::string, std::string>>;
[[maybe_unused]] void check_op_table(const std::string& checker, const std::string& home, const Elsewhere& elsewhere) {
  if (covered_ops().empty()) {
    MESSAGE(checker << " op table: no table case ran before this test (filtered run): nothing to check");
    return;
  }
  namespace fs = std::filesystem;
  const fs::path root = UNROLL_SOURCE_DIR;
  auto read = [](const fs::path& p) {
    std::ifstream f(p);
    return std::string{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  };
  std::set<std::string> recorded;
  const std::regex literal(R"(record(?:_conv)?\("([a-z0-9_]+)\")");
  for (const char* dir : {"autograd", "nn"}) {
    for (const auto& e : fs::directory_iterator(root / dir)) {
      if (e.path().extension() != ".cpp") continue;
      const std::string text = read(e.path());
      for (auto it = std::sregex_iterator(text.begin(), text.end(), literal); it != std::sregex_iterator(); ++it)
        recorded.insert((*it)[1].str());
    }
  }
  REQUIRE_MESSAGE(recorded.size() >= 50, "op table: found only " << recorded.size() << " recorded ops");
  for (const std::string& op : recorded) {
    INFO("op '" << op << "'");
    if (covered_ops().count(op)) continue;
    const auto it = elsewhere.find(op);
    if (it == elsewhere.end()) {
      FAIL_CHECK("op '" << op << "' is recorded by the library but no " << checker << " table case records it: add a case "
                 "to " << home << " (or list the test that checks it in `elsewhere`)");
      continue;
    }
    const auto& [file, needle] = it->second;
    const std::string test = read(root / "tests" / file);
    CHECK_MESSAGE(test.find(checker + "(") != std::string::npos, file << " calls no " << checker);
    CHECK_MESSAGE(test.find(needle) != std::string::npos, file << " does not contain '" << needle << "'");
  }
  for (const auto& [op, where] : elsewhere)  // a stale exemption (the op was renamed or removed) fails too
    CHECK_MESSAGE(recorded.count(op), "exemption for '" << op << "' (" << where.first << ") names no recorded op");
}
}  // namespace

#ifndef UNROLL_GRADGRADCHECK_TABLE
// ---- the documented subgradients at the kinks --------------------------------------------
// Finite differences are meaningless exactly at a kink (they average the two sides), so
// these compare backward() with the values the headers promise.

namespace {
std::vector<double> grad_of(const Variable& v) {
  REQUIRE(v.grad().defined());
  return v.grad().to_vector();
}
}  // namespace

TEST_CASE("subgradients at the kinks") {
  SUBCASE("relu'(0) = 0") {
    Variable x(f64({-1.0, 0.0, 2.0, -0.0}), true);
    sum(relu(x)).backward();
    CHECK(grad_of(x) == std::vector<double>{0, 0, 1, 0});
  }
  SUBCASE("abs'(0) = 0") {
    Variable x(f64({-1.5, 0.0, 2.0, -0.0}), true);
    sum(abs(x)).backward();
    CHECK(grad_of(x) == std::vector<double>{-1, 0, 1, 0});
  }
  SUBCASE("clamp: gradient 1 on the closed interval [lo, hi]") {
    Variable x(f64({-0.5, 0.5, 0.7, -0.9, 0.1}), true);
    sum(clamp(x, -0.5, 0.5)).backward();
    CHECK(grad_of(x) == std::vector<double>{1, 1, 0, 0, 1});
  }
  SUBCASE("maximum: ties send the gradient to a") {
    Variable a(f64({1, 2, 3}), true), b(f64({1, 0, 5}), true);
    sum(maximum(a, b)).backward();
    CHECK(grad_of(a) == std::vector<double>{1, 1, 0});
    CHECK(grad_of(b) == std::vector<double>{0, 0, 1});
  }
  SUBCASE("maximum: ties with a broadcast b") {
    Variable a(f64({1, 2, 3, 0}), true), b(f64({2}), true);
    sum(maximum(a, b)).backward();
    CHECK(grad_of(a) == std::vector<double>{0, 1, 1, 0});
    CHECK(grad_of(b) == std::vector<double>{2});
  }
  SUBCASE("minimum: ties send the gradient to a") {
    Variable a(f64({1, 2, 3}), true), b(f64({1, 0, 5}), true);
    sum(minimum(a, b)).backward();
    CHECK(grad_of(a) == std::vector<double>{1, 0, 1});
    CHECK(grad_of(b) == std::vector<double>{0, 1, 0});
  }
  SUBCASE("max of all elements: the gradient goes to the first maximum") {
    Variable x(f64({1, 3, 3, 0}), true);
    max(x).backward();
    CHECK(grad_of(x) == std::vector<double>{0, 1, 0, 0});
  }
  SUBCASE("max/min along an axis: the first extreme element of each slice") {
    Variable x(tensor({1, 4, 4, 2, 2, 0}, {2, 3}, DType::F64), true);
    sum(max(x, 1)).backward();
    CHECK(grad_of(x) == std::vector<double>{0, 1, 0, 1, 0, 0});
    Variable y(tensor({1, 4, 1, 2, 0, 0}, {2, 3}, DType::F64), true);
    sum(min(y, 1)).backward();
    CHECK(grad_of(y) == std::vector<double>{1, 0, 0, 0, 1, 0});
  }
}

// ---- the checker itself can fail -----------------------------------------------------------

namespace {

// y = x^2 with the wrong backward dx += dy * x (missing the factor 2).
Variable wrong_square(const Variable& x) {
  Tensor y = x.data() * x.data();
  return record("wrong_square", y, {x}, [xd = x.data()](const Tensor& dy, Grads& g) { g.add(0, dy * xd); });
}

// y = a * b whose backward forgets b's gradient entirely.
Variable forgetful_mul(const Variable& a, const Variable& b) {
  Tensor y = a.data() * b.data();
  return record("forgetful_mul", y, {a, b}, [bd = b.data()](const Tensor& dy, Grads& g) { g.add(0, dy * bd); });
}

// y = -x with the sign of the gradient flipped.
Variable wrong_neg(const Variable& x) {
  return record("wrong_neg", neg(x.data()), {x}, [](const Tensor& dy, Grads& g) { g.add(0, dy); });
}

// ---- the custom-op API: exactly the example in autograd/function.h -----------------------

// y = x^3;  dx += dy * 3x^2
Variable cube(const Variable& x) {
  Tensor y = x.data() * x.data() * x.data();
  return record("cube", y, {x}, [xd = x.data()](const auto& dy, auto& g) {
    const auto& v = g.in(0, xd);  // x's value: a Tensor, or a Variable with create_graph
    g.add(0, dy * v * v * 3.0);
  });
}

}  // namespace

TEST_CASE("gradcheck fails on wrong backward functions") {
  Generator g(900);
  SUBCASE("d/dx x^2 = x (factor 2 missing)") {
    Variable x(uniform({3, 4}, 0.5, 2.0, g, DType::F64), true);
    const GradcheckResult r = gradcheck([&] { return wrong_square(x); }, {x});
    CHECK_FALSE(r.ok);
    REQUIRE(r.inputs.size() == 1);
    CHECK_FALSE(r.inputs[0].ok);
    CHECK(r.inputs[0].max_rel_error > 0.4);  // analytic x vs numeric 2x: relative error 1/2
    CHECK(r.summary().find("FAIL") != std::string::npos);
  }
  SUBCASE("scalar output: sum(x^2) with the wrong backward") {
    Variable x(uniform({5}, 0.5, 2.0, g, DType::F64), true);
    const GradcheckResult r = gradcheck([&] { return sum(wrong_square(x)); }, {x});
    CHECK_FALSE(r.ok);
    CHECK(r.inputs[0].worst_analytic == doctest::Approx(r.inputs[0].worst_numeric / 2.0).epsilon(1e-6));
  }
  SUBCASE("a forgotten input gradient fails that input only") {
    Variable a(randn({2, 3}, g, DType::F64), true), b(randn({2, 3}, g, DType::F64), true);
    const GradcheckResult r = gradcheck([&] { return forgetful_mul(a, b); }, {a, b});
    CHECK_FALSE(r.ok);
    REQUIRE(r.inputs.size() == 2);
    CHECK(r.inputs[0].ok);
    CHECK_FALSE(r.inputs[1].ok);
  }
  SUBCASE("a flipped sign deep inside a graph") {
    Variable x(randn({3, 3}, g, DType::F64), true);
    const GradcheckResult r = gradcheck([&] { return tanh(matmul(wrong_neg(x), x)); }, {x});
    CHECK_FALSE(r.ok);
  }
  SUBCASE("the same graph with the right ops passes") {
    Variable x(randn({3, 3}, g, DType::F64), true);
    const GradcheckResult r = gradcheck([&] { return tanh(matmul(neg(x), x)); }, {x});
    CHECK_MESSAGE(r.ok, r.summary());
  }
}

TEST_CASE("gradcheck rejects bad inputs") {
  Generator g(901);
  SUBCASE("float32 inputs") {
    Variable x(randn({2, 2}, g, DType::F32), true);
    CHECK_THROWS_WITH_AS(gradcheck([&] { return tanh(x); }, {x}), doctest::Contains("float64"), unroll::Error);
  }
  SUBCASE("a non-leaf input") {
    Variable x(randn({2, 2}, g, DType::F64), true);
    const Variable y = x * 2.0;
    CHECK_THROWS_WITH_AS(gradcheck([&] { return tanh(y); }, {y}), doctest::Contains("leaf"), unroll::Error);
  }
  SUBCASE("the Tensor overload converts float32 inputs to float64") {
    const GradcheckResult r =
        gradcheck([](const Vars& v) { return sigmoid(v[0]); }, std::vector<Tensor>{randn({2, 3}, g, DType::F32)});
    CHECK_MESSAGE(r.ok, r.summary());
  }
}

TEST_CASE("custom op: cube, defined as in autograd/function.h") {
  Generator g(902);
  Variable x(randn({3, 4}, g, DType::F64), true);
  const Variable y = cube(x);
  CHECK(std::string(y.op_name()) == "cube");
  CHECK(allclose(y.data(), x.data() * x.data() * x.data()));
  const GradcheckResult r = gradcheck([&] { return cube(x); }, {x});
  CHECK_MESSAGE(r.ok, "cube: " << r.summary());
  // Composed with built-in ops and broadcasting.
  Variable w(randn({4}, g, DType::F64), true);
  const GradcheckResult r2 = gradcheck([&] { return sum(cube(tanh(x) * w), 1); }, {x, w});
  CHECK_MESSAGE(r2.ok, "cube composite: " << r2.summary());
  // The generic lambda makes it twice differentiable: second derivatives 6x.
  const GradcheckResult r3 = gradgradcheck([&] { return sum(cube(tanh(x) * w), 1); }, {x, w});
  CHECK_MESSAGE(r3.ok, "cube second derivatives: " << r3.summary());
}

TEST_CASE("op table: every recorded op has a float64 gradcheck case") {
  // op -> {the test file that gradchecks it, the text that file must contain}. The backward
  // helpers are recorded only when a backward is itself recorded (create_graph), so they are
  // proven by the gradgradcheck of the op whose backward they are.
  const Elsewhere elsewhere = {
      {"conv1d", {"test_conv.cpp", "conv1d("}},
      {"conv2d", {"test_conv.cpp", "conv2d("}},
      {"max_pool1d", {"test_conv.cpp", "max_pool1d("}},
      {"max_pool2d", {"test_conv.cpp", "max_pool2d("}},
      {"avg_pool1d", {"test_conv.cpp", "avg_pool1d("}},
      {"avg_pool2d", {"test_conv.cpp", "avg_pool2d("}},
      {"adaptive_avg_pool1d", {"test_conv.cpp", "adaptive_avg_pool1d("}},
      {"adaptive_avg_pool2d", {"test_conv.cpp", "adaptive_avg_pool2d("}},
      {"pad", {"test_conv.cpp", "pad("}},
      {"conv2d_input_grad", {"test_gradgradcheck.cpp", "conv2d("}},
      {"conv2d_weight_grad", {"test_gradgradcheck.cpp", "conv2d("}},
      {"avg_pool2d_backward", {"test_gradgradcheck.cpp", "avg_pool2d("}},
      {"adaptive_avg_pool2d_backward", {"test_gradgradcheck.cpp", "adaptive_avg_pool2d("}},
      {"unpad", {"test_gradgradcheck.cpp", "pad("}},
      {"erf", {"test_gradgradcheck.cpp", "erf("}},
      {"gelu", {"test_gradgradcheck.cpp", "gelu("}},
      {"narrow_into", {"test_gradgradcheck.cpp", "narrow_into"}},
      {"scatter_add_into", {"test_gradgradcheck.cpp", "scatter_add_into"}},
      {"index_add_into", {"test_gradgradcheck.cpp", "index_add_into"}},
  };

  check_op_table("gradcheck", "tests/test_gradcheck.cpp", elsewhere);
}
#endif  // UNROLL_GRADGRADCHECK_TABLE
