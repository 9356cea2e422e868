// grad(): gradients returned as Variables (torch.autograd.grad): no accumulation into
// .grad, allow_unused, retain_graph, intermediate inputs, several outputs, errors.
#include <doctest/doctest.h>

#include <unroll.h>

#include <cmath>

using namespace unroll;

namespace {
Variable param(std::initializer_list<double> v, const Shape& s) { return Variable(tensor(v, s, DType::F64), true); }
std::vector<double> values(const Variable& v) { return v.data().to_vector(); }
}  // namespace

TEST_CASE("grad returns the gradients and accumulates into no .grad") {
  Variable x = param({1, 2, 3}, {3});
  Variable w = param({0.5, -1, 2}, {3});
  w.set_grad(tensor({7, 7, 7}, {3}, DType::F64));  // an earlier gradient stays untouched
  Variable y = sum(x * x * w);
  const std::vector<Variable> ins = {x};
  std::vector<Variable> g = grad(y, ins);
  REQUIRE(g.size() == 1);
  CHECK(values(g[0]) == std::vector<double>{1, -4, 12});  // 2 x w
  CHECK_FALSE(g[0].requires_grad());
  CHECK_FALSE(x.grad().defined());
  CHECK(w.grad().to_vector() == std::vector<double>{7, 7, 7});
  // backward() after grad() still accumulates as usual (the graph was freed, so rebuild)
  Variable y2 = sum(x * x * w);
  y2.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{1, -4, 12});
  CHECK(w.grad().to_vector() == std::vector<double>{8, 11, 16});
}

TEST_CASE("grad with respect to an intermediate Variable and several inputs") {
  Variable x = param({0.3, -0.7}, {2});
  Variable h = tanh(x);
  Variable y = sum(h * h * 3.0);
  const std::vector<Variable> ins = {h, x};
  std::vector<Variable> g = grad(y, ins);
  const std::vector<double> xs = {0.3, -0.7};
  for (int i = 0; i < 2; ++i) {
    const double t = std::tanh(xs[i]);
    CHECK(values(g[0])[i] == doctest::Approx(6 * t));
    CHECK(values(g[1])[i] == doctest::Approx(6 * t * (1 - t * t)));
  }
}

TEST_CASE("grad of several outputs with grad_outputs sums the vector-Jacobian products") {
  Variable x = param({1, 2}, {2});
  Variable a = x * 2.0, b = x * x;
  const std::vector<Variable> outs = {a, b};
  const std::vector<Variable> gos = {Variable(tensor({1, 10}, {2}, DType::F64)),
                                     Variable(tensor({100, 1000}, {2}, DType::F64))};
  const std::vector<Variable> ins = {x};
  std::vector<Variable> g = grad(outs, ins, gos);
  CHECK(values(g[0]) == std::vector<double>{2 + 200, 20 + 4000});
}

TEST_CASE("grad: allow_unused, retain_graph default and errors") {
  Variable x = param({1, 2}, {2});
  Variable unused = param({5}, {1});
  Variable y = sum(x * x);
  const std::vector<Variable> ins = {x, unused};
  CHECK_THROWS_WITH_AS(grad(y, ins, {.retain_graph = true}), doctest::Contains("input 1"), Error);
  std::vector<Variable> g = grad(y, ins, {.retain_graph = true, .allow_unused = true});
  CHECK(g[0].defined());
  CHECK_FALSE(g[1].defined());
  // retain_graph defaults to create_graph (false): the graph is freed by this call
  const std::vector<Variable> just_x = {x};
  grad(y, just_x);
  CHECK_THROWS_WITH_AS(grad(y, just_x), doctest::Contains("already freed"), Error);

  Variable v = x * 3.0;  // two elements, no grad_outputs
  CHECK_THROWS_WITH_AS(grad(v, just_x), doctest::Contains("shape [2]"), Error);
  Variable c(tensor({1.0}, {1}, DType::F64));
  const std::vector<Variable> const_in = {c};
  Variable yc = sum(x * c);
  CHECK_THROWS_WITH_AS(grad(yc, const_in), doctest::Contains("input 0"), Error);
  CHECK_THROWS_WITH_AS(grad(sum(c * 2.0), just_x), doctest::Contains("output 0"), Error);
  Variable y3 = sum(x * x);
  const std::vector<Variable> outs = {y3};
  const std::vector<Variable> bad_go = {Variable(ones({3}, DType::F64))};
  CHECK_THROWS_WITH_AS(grad(outs, just_x, bad_go), doctest::Contains("grad_output 0"), Error);
}

TEST_CASE("grad: the deferred weight gradients of a recurrent linear land in the result only") {
  Generator gen(3);
  Variable w(randn({3, 3}, gen, DType::F64), true);  // batch 1: Grads::add_matmul defers dW
  Variable b(randn({3}, gen, DType::F64), true);
  Variable cur(randn({1, 3}, gen, DType::F64), true);
  for (int t = 0; t < 5; ++t) cur = tanh(linear(cur, w, b));
  Variable loss = sum(cur);
  const std::vector<Variable> ins = {w};
  std::vector<Variable> g = grad(loss, ins, {.retain_graph = true});
  CHECK_FALSE(w.grad().defined());
  CHECK_FALSE(b.grad().defined());
  loss.backward();
  REQUIRE(w.grad().defined());
  CHECK(b.grad().defined());
  CHECK(allclose(g[0].data(), w.grad(), 1e-12, 1e-12));
}
