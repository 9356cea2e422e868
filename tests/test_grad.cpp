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

// ---- create_graph: the backward pass recorded, differentiated again ----------------------

namespace {
std::vector<Variable> d(const Variable& y, const Variable& x) {
  const std::vector<Variable> ins = {x};
  return grad(y, ins, {.retain_graph = {}, .create_graph = true, .allow_unused = false});
}
}  // namespace

TEST_CASE("create_graph: derivatives of x^4 to the fourth order (4x^3, 12x^2, 24x, 24)") {
  Variable x = param({1.5, -0.5}, {2});
  const Variable y = sum(pow(x, 4.0));
  const Variable g1 = d(y, x)[0];
  REQUIRE(g1.requires_grad());
  const Variable g2 = d(sum(g1), x)[0];
  const Variable g3 = d(sum(g2), x)[0];
  const Variable g4 = d(sum(g3), x)[0];
  for (int i = 0; i < 2; ++i) {
    const double v = x.data().to_vector()[static_cast<size_t>(i)];
    CHECK(values(g1)[static_cast<size_t>(i)] == doctest::Approx(4 * v * v * v).epsilon(1e-14));
    CHECK(values(g2)[static_cast<size_t>(i)] == doctest::Approx(12 * v * v).epsilon(1e-14));
    CHECK(values(g3)[static_cast<size_t>(i)] == doctest::Approx(24 * v).epsilon(1e-14));
    CHECK(values(g4)[static_cast<size_t>(i)] == doctest::Approx(24).epsilon(1e-14));
  }
  // Through the saved output: d^3/dx^3 e^(2x) = 8 e^(2x), d^2/dx^2 tanh = -2 tanh (1 - tanh^2).
  Variable z = param({0.3}, {1});
  const Variable e3 = d(sum(d(sum(d(sum(exp(z * 2.0)), z)[0]), z)[0]), z)[0];
  CHECK(e3.item() == doctest::Approx(8 * std::exp(0.6)).epsilon(1e-13));
  const double t = std::tanh(0.3);
  CHECK(d(sum(d(sum(tanh(z)), z)[0]), z)[0].item() == doctest::Approx(-2 * t * (1 - t * t)).epsilon(1e-13));
  CHECK_FALSE(x.grad().defined());  // grad() accumulates nowhere
}

TEST_CASE("create_graph: grad of grad with grad_outputs that require grad") {
  // y = x^2 (elementwise), g = d<y, u>/dx = 2 x u: a function of x and of u.
  Variable x = param({1, -2, 3}, {3});
  Variable u = param({0.5, 1, -1}, {3});
  const Variable y = x * x;
  const std::vector<Variable> outs = {y}, ins = {x}, gos = {u};
  const Variable g = grad(outs, ins, gos, {.retain_graph = {}, .create_graph = true, .allow_unused = false})[0];
  CHECK(values(g) == std::vector<double>{1, -4, -6});
  const std::vector<Variable> both = {x, u};
  const std::vector<Variable> gg = grad(sum(g * g), both, {.retain_graph = {}, .create_graph = false, .allow_unused = false});
  // sum((2xu)^2): d/dx = 8 x u^2, d/du = 8 x^2 u
  CHECK(values(gg[0]) == std::vector<double>{2, -16, 24});
  CHECK(values(gg[1]) == std::vector<double>{4, 32, -72});
}

TEST_CASE("create_graph with backward(): .grad holds the values; a second, plain backward adds to them") {
  Variable x = param({0.5, -1.0}, {2});
  Variable w = param({2.0, 3.0}, {2});
  const Variable y = sum(x * x * x * w);  // dy/dx = 3 x^2 w
  y.backward({.retain_graph = {}, .create_graph = true});
  REQUIRE(x.grad().defined());
  CHECK(x.grad().to_vector() == std::vector<double>{1.5, 9.0});
  CHECK(w.grad().to_vector() == std::vector<double>{0.125, -1.0});
  // The graph is retained by default: a plain backward walks it again and accumulates.
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<double>{3.0, 18.0});
  // Hooks see the gradient's value.
  Variable z = param({2.0}, {1});
  std::vector<double> seen;
  z.register_hook([&](const Tensor& gz) { seen.push_back(gz.item()); });
  sum(z * z).backward({.retain_graph = {}, .create_graph = true});
  CHECK(seen == std::vector<double>{4.0});
}

TEST_CASE("create_graph with backward(): grad_variable() is the recorded .grad (differentiate it again)") {
  const int64_t base = live_nodes();
  {
    Variable x = param({0.5, -1.0}, {2});
    Variable w = param({2.0, 3.0}, {2});
    CHECK_FALSE(x.grad_variable().defined());
    const Variable y = sum(x * x * x * w);  // dy/dx = 3 x^2 w, d2y/dx2 = 6 x w
    y.backward({.retain_graph = {}, .create_graph = true});
    const Variable gx = x.grad_variable();
    REQUIRE(gx.requires_grad());
    CHECK(values(gx) == std::vector<double>{1.5, 9.0});
    CHECK(x.grad().to_vector() == values(gx));
    // d/dx sum(dy/dx) = 6 x w, d/dw = 3 x^2: the gradient of the gradient, as torch gives it
    // (retaining the graph, which gx's reaches back into, for the backward passes below).
    const GradOptions keep{.retain_graph = true};
    const std::vector<Variable> g2 = grad(sum(gx), std::vector<Variable>{x, w}, keep);
    CHECK(values(g2[0]) == std::vector<double>{6.0, -18.0});
    CHECK(values(g2[1]) == std::vector<double>{0.75, 3.0});
    // A second recorded backward accumulates, still recorded: dy/dx twice, so 12 x w.
    y.backward({.retain_graph = {}, .create_graph = true});
    CHECK(values(x.grad_variable()) == std::vector<double>{3.0, 18.0});
    const std::vector<Variable> g3 = grad(sum(x.grad_variable()), std::vector<Variable>{x}, keep);
    CHECK(values(g3[0]) == std::vector<double>{12.0, -36.0});
    // A plain backward after it adds a constant: the recorded gradient is dropped.
    y.backward({.retain_graph = true});
    CHECK(values(x.grad_variable()) == std::vector<double>{4.5, 27.0});
    CHECK_FALSE(x.grad_variable().requires_grad());
    // zero_grad cuts the leaf -> gradient -> leaf cycle.
    y.backward({.retain_graph = {}, .create_graph = true});
    CHECK(x.grad_variable().requires_grad());
    x.zero_grad();
    w.zero_grad();
    CHECK_FALSE(x.grad_variable().defined());
    // An in-place edit of the gradient is not recorded: the edited value, as a constant.
    y.backward({.retain_graph = {}, .create_graph = true});
    mul_(x.grad_mut(), 2.0);
    CHECK(values(x.grad_variable()) == std::vector<double>{3.0, 18.0});
    CHECK_FALSE(x.grad_variable().requires_grad());
    y.backward({.retain_graph = {}, .create_graph = true});  // left recorded: freed with x below
  }
  CHECK(live_nodes() == base);
}

TEST_CASE("create_graph: allow_unused, an unused input, and a first derivative that is constant") {
  Variable x = param({1, 2}, {2});
  Variable unused = param({3}, {1});
  const Variable y = sum(x * 3.0);
  const std::vector<Variable> ins = {x, unused};
  std::vector<Variable> g = grad(y, ins, {.retain_graph = {}, .create_graph = true, .allow_unused = true});
  REQUIRE(g.size() == 2);
  CHECK(values(g[0]) == std::vector<double>{3, 3});
  CHECK_FALSE(g[0].requires_grad());  // linear: the gradient depends on no input
  CHECK_FALSE(g[1].defined());
  CHECK_THROWS_WITH_AS(grad(sum(x * 3.0), ins, {.retain_graph = {}, .create_graph = true, .allow_unused = false}),
                       doctest::Contains("is not used"), Error);
}

namespace {
// A custom op whose backward is written for Tensors only.
Variable tensor_only_square(const Variable& x) {
  return record("tensor_only_square", x.data() * x.data(), {x},
                [xd = x.data()](const Tensor& dy, Grads& g) { g.add(0, dy * xd * 2.0); });
}
}  // namespace

TEST_CASE("create_graph through a custom op with a Tensor-only backward: a clear error naming it") {
  Variable x = param({1, 2}, {2});
  // First order works as before.
  const std::vector<Variable> ins = {x};
  CHECK(values(grad(sum(tensor_only_square(x)), ins)[0]) == std::vector<double>{2, 4});
  CHECK_THROWS_WITH_AS(d(sum(tensor_only_square(x)), x),
                       doctest::Contains("op 'tensor_only_square' (a custom record()) has no differentiable backward"),
                       Error);
  CHECK_THROWS_WITH_AS(sum(tanh(tensor_only_square(x))).backward({.retain_graph = {}, .create_graph = true}),
                       doctest::Contains("const auto& dy, auto& g"), Error);
}

TEST_CASE("create_graph: a double backward through a 10,000-step tanh RNN; every node freed") {
  const int64_t base = live_nodes();
  {
    Generator gen(5);
    Variable w(randn({3, 3}, gen, DType::F64) * 0.3, true);
    Variable h(randn({1, 3}, gen, DType::F64), true);
    Variable x(randn({1, 3}, gen, DType::F64) * 0.1);
    Variable s = h;
    for (int t = 0; t < 10000; ++t) s = tanh(matmul(s, w, false, true) + x);
    const std::vector<Variable> ins = {w};
    const Variable gw = grad(sum(s), ins, {.retain_graph = {}, .create_graph = true, .allow_unused = false})[0];
    REQUIRE(gw.requires_grad());
    const Variable penalty = sum(gw * gw);  // a gradient penalty: needs d(gw)/dw and d(gw)/dh
    penalty.backward();
    REQUIRE(w.grad().defined());
    REQUIRE(h.grad().defined());
    for (double v : w.grad().to_vector()) CHECK(std::isfinite(v));
    CHECK(live_nodes() > base);
  }
  CHECK(live_nodes() == base);
}
