// The backward engine: accumulation, grad mode, detach, retain_graph, hooks, anomaly mode,
// graph export, and graphs 100,000 nodes deep.
#include <doctest/doctest.h>

#include <unroll.h>

#include <cmath>

using namespace unroll;

namespace {
Variable param(std::initializer_list<double> v, const Shape& s) { return Variable(tensor(v, s, DType::F64), true); }
}  // namespace

TEST_CASE("gradients accumulate across uses and across backward calls") {
  Variable x = param({2.0}, {1});
  Variable y = x * x + x;  // dy/dx = 2x + 1 = 5
  y.backward();
  CHECK(x.grad().item() == doctest::Approx(5.0));
  Variable z = 3.0 * x;  // a second backward adds 3
  z.backward();
  CHECK(x.grad().item() == doctest::Approx(8.0));
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("backward with an explicit upstream gradient, and its errors") {
  Variable x = param({1, 2, 3}, {3});
  Variable y = x * 2.0;
  y.backward(tensor({1, 10, 100}, {3}, DType::F64));
  CHECK(x.grad().to_vector() == std::vector<double>{2, 20, 200});
  Variable w = x * 2.0;
  CHECK_THROWS_WITH_AS(w.backward(), doctest::Contains("one-element"), Error);
  CHECK_THROWS_WITH_AS(w.backward(ones({2}, DType::F64)), doctest::Contains("must match"), Error);
}

TEST_CASE("broadcasting is undone in backward") {
  Variable a = param({1, 2, 3, 4, 5, 6}, {2, 3});
  Variable b = param({10, 20, 30}, {3});
  sum(a * b).backward();
  CHECK(b.grad().shape() == Shape{3});
  CHECK(b.grad().to_vector() == std::vector<double>{5, 7, 9});
  CHECK(a.grad().to_vector() == std::vector<double>{10, 20, 30, 10, 20, 30});
}

TEST_CASE("NoGradGuard records nothing; detach cuts the graph") {
  Variable x = param({1.0}, {1});
  {
    NoGradGuard guard;
    CHECK_FALSE(grad_enabled());
    Variable y = x * 3.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
  }
  CHECK(grad_enabled());
  Variable d = (x * 3.0).detach();
  CHECK_FALSE(d.requires_grad());
  Variable y = d * x;  // only the direct use of x carries gradient
  y.backward();
  CHECK(x.grad().item() == doctest::Approx(3.0));
  CHECK_THROWS_WITH_AS(d.backward(), doctest::Contains("does not require grad"), Error);
}

TEST_CASE("a second backward through a freed graph says so; retain_graph allows it") {
  Variable x = param({0.5}, {1});
  Variable y = tanh(x) * 2.0;
  y.backward(BackwardOptions{.retain_graph = true});
  y.backward();
  const double g = 2.0 * (1 - std::tanh(0.5) * std::tanh(0.5));
  CHECK(x.grad().item() == doctest::Approx(2 * g));
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("already freed"), Error);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("retain_graph"), Error);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("detach()"), Error);
}

TEST_CASE("non-leaf gradients are dropped unless retained") {
  Variable x = param({1, 2}, {2});
  Variable h = x * 3.0;
  Variable k = x * 4.0;
  h.retain_grad();
  sum(h * k).backward();
  CHECK(h.grad().to_vector() == std::vector<double>{4, 8});
  CHECK_FALSE(k.grad().defined());
}

TEST_CASE("hooks receive each gradient as backward reaches it") {
  Variable x = param({1, 2}, {2});
  Variable h = x * 3.0;
  std::vector<double> seen_h, seen_x;
  h.register_hook([&](const Tensor& g) { seen_h = g.to_vector(); });
  x.register_hook([&](const Tensor& g) { seen_x = g.to_vector(); });
  sum(h * h).backward();  // dL/dh = 2h = [6, 12]; dL/dx = 3 * that
  CHECK(seen_h == std::vector<double>{6, 12});
  CHECK(seen_x == std::vector<double>{18, 36});
  sum(x).backward();  // leaf hook sees this pass's gradient; .grad accumulates
  CHECK(seen_x == std::vector<double>{1, 1});
  CHECK(x.grad().to_vector() == std::vector<double>{19, 37});
  Variable c(ones({1}));
  CHECK_THROWS_WITH_AS(c.register_hook([](const Tensor&) {}), doctest::Contains("does not require grad"), Error);
}

TEST_CASE("anomaly mode names the op that made a NaN, forward and backward") {
  Variable x = param({-1.0}, {1});
  {
    AnomalyModeGuard on;
    StepScope step(17);
    CHECK_THROWS_WITH_AS(log(x), doctest::Contains("'log'"), Error);
    CHECK_THROWS_WITH_AS(log(x), doctest::Contains("step 17"), Error);
  }
  Variable z = param({0.0}, {1});
  Variable y = sqrt(z);  // sqrt(0) = 0 is fine; its gradient 1/(2*0) is not
  AnomalyModeGuard on;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("backward of 'sqrt'"), Error);
  AnomalyModeGuard off(false);
  Variable ok = sqrt(z);  // without anomaly mode the Inf goes through silently, as in PyTorch
  ok.backward();
  CHECK(std::isinf(z.grad().item()));
}

TEST_CASE("a custom op is a forward and a backward lambda") {
  // y = x^3;  dx += dy * 3x^2
  auto cube = [](const Variable& x) {
    Tensor y = x.data() * x.data() * x.data();
    return record("cube", y, {x}, [xd = x.data()](const Tensor& dy, Grads& g) { g.add(0, dy * xd * xd * 3.0); });
  };
  Variable x = param({2.0}, {1});
  Variable y = cube(x);
  CHECK(std::string(y.op_name()) == "cube");
  y.backward();
  CHECK(x.grad().item() == doctest::Approx(12.0));
  CHECK(gradcheck([&](const std::vector<Variable>& v) { return cube(v[0]); }, {tensor({0.5, -1.5, 2.0})}).ok);
}

TEST_CASE("graph export shows ops, shapes, parameters and step clusters") {
  Variable w = param({0.1, 0.2, 0.3, 0.4}, {2, 2});
  w.set_name("W_hh");
  Variable h(zeros({1, 2}, DType::F64));
  for (int t = 0; t < 3; ++t) {
    StepScope step(t);
    h = tanh(matmul(h, w, false, true) + 1.0);
  }
  Variable loss = sum(h);
  const std::string dot = to_dot(loss);
  CHECK(dot.find("digraph") == 0);
  CHECK(dot.find("W_hh") != std::string::npos);
  CHECK(dot.find("cluster_step2") != std::string::npos);
  CHECK(dot.find("tanh\\n[1,2]") != std::string::npos);
  CHECK(graph_size(loss) == 1 + 3 * 3 + 1);  // W, 3 x (matmul, add, tanh), sum
}

TEST_CASE("a chain of 100,000 ops builds, back-propagates and tears down without recursion") {
  const int64_t before = live_nodes();
  {
    Variable x = param({0.5}, {1});
    Variable y = x;
    for (int i = 0; i < 100000; ++i) y = y * 1.0;
    CHECK(graph_size(y) == 100001);
    y.backward();
    CHECK(x.grad().item() == doctest::Approx(1.0));
  }
  CHECK(live_nodes() == before);
}

TEST_CASE("a tanh RNN of hidden size 8 unrolled 100,000 steps") {
  const int64_t before = live_nodes();
  {
    Generator gen(1);
    Variable w_ih(randn({8, 1}, gen) * 0.5, true), w_hh(randn({8, 8}, gen) * 0.3, true), b(zeros({8}), true);
    Variable h(zeros({1, 8}));
    Variable loss;
    for (int t = 0; t < 100000; ++t) {
      Variable x(full({1, 1}, std::sin(0.01 * t)));
      h = tanh(linear(x, w_ih) + linear(h, w_hh, b));
    }
    loss = sum(h * h);
    loss.backward();
    REQUIRE(w_hh.grad().defined());
    for (double g : w_hh.grad().to_vector()) CHECK(std::isfinite(g));
    h = Variable();
    loss = Variable();  // drop the graph: 300,000 nodes go without recursion
  }
  CHECK(live_nodes() == before);
}

TEST_CASE("the graph of a detached carried state does not grow") {
  Variable w = param({0.5}, {1, 1});
  Variable h(zeros({1, 1}, DType::F64));
  for (int chunk = 0; chunk < 5; ++chunk) {
    h = h.detach();
    for (int t = 0; t < 10; ++t) h = tanh(matmul(h, w) + 1.0);
    CHECK(graph_size(h) == 1 + 10 * 3);
    sum(h).backward();
  }
}

TEST_CASE("an op output nobody holds is dropped from memory; backward, export and errors still work") {
  Generator gen(5);
  const Variable x(randn({64, 64}, gen, DType::F64), true);
  const int64_t bytes = 64 * 64 * 8;
  const int64_t base = memory_stats().live_bytes;
  Variable loss;
  {
    Variable a = exp(x);     // exp's backward keeps its output: stays
    Variable b = a + 1.0;    // no backward needs b's value: dropped with the last handle
    loss = sum(b);
    CHECK(memory_stats().live_bytes - base == 2 * bytes + 8);  // a, b, the scalar
  }
  CHECK(memory_stats().live_bytes - base == bytes + 8);  // b is gone, a is kept by exp
  CHECK(to_dot(loss).find("[64,64]") != std::string::npos);  // shapes survive for export
  loss.backward();
  CHECK(allclose(x.grad(), exp(x.data()), 0, 0));

  // A Variable still held, or one that keeps its gradient, keeps its value.
  Variable held = x * 2.0;
  Variable kept = x * 3.0;
  kept.retain_grad();
  {
    Variable sum_loss = sum(held) + sum(kept);
    sum_loss.backward();
  }
  CHECK(held.data().defined());
  CHECK(allclose(held.data(), x.data() * 2.0, 0, 0));
  CHECK(kept.grad().defined());
}

// Note [deferred weight gradients]: thin weight-gradient terms into a leaf are held and
// summed in one GEMM when backward reaches the leaf.
namespace {
/// y_t = x_t W^T for row counts `rows` (<= 8 rows are deferred, more are not), loss =
/// sum_t sum(y_t * c_t); returns the loss and fills the expected dW = sum_t c_t^T x_t.
Variable weight_used_many_times(const Variable& w, const std::vector<int64_t>& rows, Generator& gen, Tensor& expected) {
  expected = zeros(w.shape(), DType::F64);
  Variable loss;
  for (int64_t r : rows) {
    Tensor x = randn({r, w.shape()[1]}, gen, DType::F64), c = randn({r, w.shape()[0]}, gen, DType::F64);
    expected = expected + matmul(c, x, true, false);
    Variable term = sum(linear(Variable(x), w) * Variable(c));
    loss = loss.defined() ? loss + term : term;
  }
  return loss;
}
double max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(a - b)).item(); }
}  // namespace

TEST_CASE("weight gradients of thin products are deferred, summed once, and equal the plain sum") {
  Generator gen(7);
  Variable w(randn({5, 3}, gen, DType::F64), true);
  Tensor expected;
  Variable loss = weight_used_many_times(w, {1, 1, 2, 9, 1, 8, 1}, gen, expected);  // deferred and immediate mixed
  loss.backward();
  REQUIRE(w.grad().defined());
  CHECK(max_abs_diff(w.grad(), expected) < 1e-12);

  // Gradients still accumulate across backward calls, and a leaf hook sees the whole sum.
  Tensor expected2;
  Tensor seen;
  w.register_hook([&](const Tensor& g) { seen = g.clone(); });
  Variable loss2 = weight_used_many_times(w, {1, 1, 1}, gen, expected2);
  loss2.backward();
  REQUIRE(seen.defined());
  CHECK(max_abs_diff(seen, expected2) < 1e-12);
  CHECK(max_abs_diff(w.grad(), expected + expected2) < 1e-12);

  // More thin rows than the engine holds at once (kFlushRows = 1024): summed in batches.
  Variable w3(randn({4, 3}, gen, DType::F64), true);
  Tensor expected3;
  weight_used_many_times(w3, std::vector<int64_t>(1500, 1), gen, expected3).backward();
  CHECK(max_abs_diff(w3.grad(), expected3) < 1e-10);

  // And the engine's gradient passes a float64 gradcheck on this graph.
  Generator g2(3);
  Tensor xs[3] = {randn({1, 3}, g2, DType::F64), randn({1, 3}, g2, DType::F64), randn({2, 3}, g2, DType::F64)};
  Variable wc(randn({4, 3}, g2, DType::F64), true);
  auto r = gradcheck([&] { return sum(tanh(linear(Variable(xs[0]), wc)) * tanh(linear(Variable(xs[1]), wc))) +
                                  sum(tanh(linear(Variable(xs[2]), wc))); },
                     {wc});
  CHECK(r.ok);
}

TEST_CASE("a backward that fails part-way still adds the deferred terms it collected") {
  Generator gen(11);
  Variable w(randn({4, 3}, gen, DType::F64), true);
  Tensor x1 = randn({1, 3}, gen, DType::F64), x2 = randn({1, 3}, gen, DType::F64);
  Variable h = linear(Variable(x1), w);  // [1,4]
  // Reverse topological order: linear(x2, w) runs (deferring its dW term), then h's hook throws.
  Variable z = sum(tanh(h)) + sum(linear(Variable(x2), w));
  bool armed = true;
  h.register_hook([&](const Tensor&) {
    if (armed) throw std::runtime_error("hook says no");
  });
  CHECK_THROWS_WITH_AS(z.backward(), "hook says no", std::runtime_error);
  // The term from linear(x2, w) (ones^T x2) was deferred before the hook threw: it is in.
  REQUIRE(w.grad().defined());
  CHECK(max_abs_diff(w.grad(), matmul(ones({1, 4}, DType::F64), x2, true, false)) < 1e-12);
  // Nothing stays pending: a fresh backward adds exactly its own gradient.
  w.zero_grad();
  armed = false;
  sum(linear(Variable(x1), w)).backward();
  CHECK(max_abs_diff(w.grad(), matmul(ones({1, 4}, DType::F64), x1, true, false)) < 1e-12);
}

TEST_CASE("a backward that fails part-way keeps the gradients of earlier calls") {
  // A leaf with a hook has its earlier gradient set aside during a backward (so the hook
  // sees only this pass); a throw must not lose it.
  Variable x = param({1.0, 2.0}, {2});
  int calls = 0;
  x.register_hook([&](const Tensor&) { ++calls; });
  sum(x * 3.0).backward();  // grad 3, 3
  Variable h = x * 5.0;
  h.register_hook([](const Tensor&) { throw std::runtime_error("no"); });
  CHECK_THROWS_WITH_AS(sum(h).backward(), "no", std::runtime_error);
  REQUIRE(x.grad().defined());
  CHECK(x.grad().to_vector() == std::vector<double>{3.0, 3.0});
  CHECK(calls == 1);
}
