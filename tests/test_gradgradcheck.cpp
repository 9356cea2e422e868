// Second derivatives of every op: the gradcheck table of tests/test_gradcheck.cpp, run
// through gradgradcheck (that file, included with UNROLL_GRADGRADCHECK_TABLE), plus the
// ops tested elsewhere (convolution, pooling, padding, erf/gelu, attention, losses) and the
// helper ops the recorded backward formulas use (autograd/formula.h).
#define UNROLL_GRADGRADCHECK_TABLE
#include "test_gradcheck.cpp"

namespace {
/// The first derivative of f as an op of its own (grad with create_graph), so that
/// gradgradcheck of it checks third derivatives: the recorded formulas of the helper ops
/// the second-order backward uses (narrow_into, scatter_add_into, the convolution gradient
/// ops, ...) are differentiated in turn.
Variable first_derivative(const Variable& y, const Vars& xs) {
  const std::vector<Variable> g =
      grad(y, std::span<const Variable>(xs), {.retain_graph = {}, .create_graph = true, .allow_unused = true});
  Variable total;
  for (size_t i = 0; i < g.size(); ++i) {
    if (!g[i].defined()) continue;
    const Variable term = sum(g[i] * g[i]) * (0.5 + static_cast<double>(i));
    total = total.defined() ? total + term : term;
  }
  return total;
}
}  // namespace

TEST_CASE("gradgradcheck: convolution, pooling and padding") {
  Table t(1000);
  t.add("conv2d stride 2 padding 1, bias", {{{2, 2, 5, 5}, normal}, {{3, 2, 3, 3}, normal}, {{3}, normal}},
        [](const Vars& v) { return conv2d(v[0], v[1], v[2], 2, 1); });
  t.add("conv2d dilation 2 groups 2", {{{1, 4, 6, 6}, normal}, {{4, 2, 2, 2}, normal}},
        [](const Vars& v) { return conv2d(v[0], v[1], Variable(), 1, 0, 2, 2); });
  t.add("conv1d stride 2 padding 2 dilation 3 groups 2", {{{2, 4, 13}, normal}, {{6, 2, 3}, normal}, {{6}, normal}},
        [](const Vars& v) { return conv1d(v[0], v[1], v[2], 2, 2, 3, 2); });
  t.add("conv2d, tanh, conv2d", {{{1, 1, 5, 5}, normal}, {{2, 1, 3, 3}, normal}, {{1, 2, 2, 2}, normal}},
        [](const Vars& v) { return conv2d(tanh(conv2d(v[0], v[1], Variable(), 1, 1)), v[2], Variable(), 2); });
  t.add("max_pool2d k 3 s 2 p 1 of x^2", {{{1, 2, 7, 6}, distinct}},
        [](const Vars& v) { return max_pool2d(v[0] * v[0] * v[0], 3, 2, 1); });
  t.add("max_pool1d k 3 s 2 p 1 of x^3", {{{2, 3, 9}, distinct}},
        [](const Vars& v) { return max_pool1d(v[0] * v[0] * v[0], 3, 2, 1); });
  t.add("avg_pool2d k 3 s 2 p 1 of tanh", {{{2, 2, 5, 6}, normal}},
        [](const Vars& v) { return tanh(avg_pool2d(tanh(v[0]), 3, 2, 1)); });
  t.add("avg_pool1d k 3 s 1 p 1", {{{2, 2, 7}, normal}}, [](const Vars& v) { return sigmoid(avg_pool1d(v[0], 3, 1, 1)); });
  t.add("adaptive_avg_pool2d 5x7 -> 3x2", {{{2, 2, 5, 7}, normal}},
        [](const Vars& v) { return tanh(adaptive_avg_pool2d(v[0], {3, 2})); });
  t.add("adaptive_avg_pool1d 7 -> 2", {{{2, 3, 7}, normal}}, [](const Vars& v) { return exp(adaptive_avg_pool1d(v[0], 2)); });
  t.add("pad {3, 0}", {{{2, 3, 4}, normal}}, [](const Vars& v) { return tanh(pad(v[0], {3, 0})); });
  t.add("pad {1, 2, 0, 3} value 1.5", {{{2, 3, 4}, normal}}, [](const Vars& v) { return pad(v[0], {1, 2, 0, 3}, 1.5) * pad(v[0], {1, 2, 0, 3}); });
  // Third derivatives through the convolution gradient ops and the pooling backward ops.
  t.add("third order: conv2d", {{{1, 2, 4, 4}, normal}, {{2, 2, 2, 2}, normal}}, [](const Vars& v) {
    return first_derivative(sum(tanh(conv2d(v[0], v[1], Variable(), 2, 1, 1, 1))), v);
  });
  t.add("third order: conv1d", {{{1, 2, 6}, normal}, {{2, 1, 3}, normal}}, [](const Vars& v) {
    return first_derivative(sum(sigmoid(conv1d(v[0], v[1], Variable(), 1, 1, 2, 2))), v);
  });
  t.add("third order: pools and pad", {{{1, 1, 6, 6}, distinct}}, [](const Vars& v) {
    const Variable x = v[0] * v[0] * v[0];
    return first_derivative(sum(tanh(max_pool2d(x, 2) + avg_pool2d(x, 2) + adaptive_avg_pool2d(x, 3))) +
                                sum(pad(x, {1, 1}) * pad(x, {2, 0})),
                            v);
  });
  run(t);
}

TEST_CASE("gradgradcheck: linear2 (the fused pre-activation of a recurrent cell)") {
  Table t(1050);
  const std::vector<Input> xw = {{{3, 4}, normal}, {{5, 4}, normal}, {{3, 2}, normal}, {{5, 2}, normal}};
  auto with = [&](std::vector<Input> extra) {
    std::vector<Input> all = xw;
    for (Input& in : extra) all.push_back(std::move(in));
    return all;
  };
  t.add("linear2, both biases", with({{{5}, normal}, {{5}, normal}}),
        [](const Vars& v) { return tanh(linear2(v[0], v[1], v[2], v[3], v[4], v[5])); });
  t.add("linear2, no bias", xw, [](const Vars& v) { return linear2(v[0], v[1], v[2], v[3]); });
  t.add("linear2, b2 only", with({{{5}, normal}}),
        [](const Vars& v) { return sigmoid(linear2(v[0], v[1], v[2], v[3], Variable(), v[4])); });
  t.add("linear2, one input feeding both products", {{{3, 4}, normal}, {{5, 4}, normal}, {{5, 4}, normal}},
        [](const Vars& v) { return tanh(linear2(v[0], v[1], tanh(v[0]), v[2])); });
  run(t);
}

TEST_CASE("gradgradcheck: erf, gelu, attention and the losses (compositions)") {
  Table t(1100);
  const Shape s{3, 4};
  t.add("erf", {{s, normal}}, [](const Vars& v) { return erf(v[0]); });
  t.add("gelu", {{s, normal}}, [](const Vars& v) { return gelu(v[0]); });
  t.add("third order: erf and gelu", {{s, normal}}, [](const Vars& v) { return first_derivative(sum(erf(v[0]) * gelu(v[0])), v); });
  t.add("dot_product_attention, padding mask", {{{2, 3, 3}, normal}, {{2, 3, 3}, normal}, {{2, 3, 2}, normal}},
        [](const Vars& v) {
          const AttentionResult r = dot_product_attention(v[0], v[1], v[2], tensor({1, 0, 1, 1, 1, 0}, {2, 3}));
          return sum(r.context * r.context) + sum(r.weights * r.weights);
        });
  t.add("scaled_dot_product_attention, causal", {{{2, 3, 4}, normal}, {{2, 3, 4}, normal}, {{2, 3, 2}, normal}},
        [](const Vars& v) { return scaled_dot_product_attention(v[0], v[1], v[2], tensor({1, 0, 0, 1, 1, 0, 1, 1, 1}, {1, 3, 3})).context; });
  t.add("masked_softmax", {{s, normal}},
        [](const Vars& v) { return masked_softmax(v[0], tensor({1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 1}, {3, 4})); });
  const Tensor targets = indices({2, 0, 3});
  t.add("cross_entropy, label smoothing 0.1", {{s, normal}},
        [targets](const Vars& v) { return cross_entropy(v[0], targets, -100, Reduction::Mean, 0.1); });
  t.add("nll_loss of log_softmax, sum", {{s, normal}},
        [targets](const Vars& v) { return nll_loss(log_softmax(v[0], 1), targets, -100, Reduction::Sum); });
  t.add("mse_loss", {{s, normal}, {s, normal}}, [](const Vars& v) { return mse_loss(v[0], v[1]); });
  t.add("l1_loss (off the kink)", {{s, off_grid}}, [](const Vars& v) { return l1_loss(v[0], Variable(zeros(v[0].shape(), DType::F64))); });
  t.add("binary_cross_entropy_with_logits (off 0)", {{s, off_grid}, {s, positive}},
        [](const Vars& v) { return binary_cross_entropy_with_logits(v[0], v[1] * 0.4); });
  run(t);
}

TEST_CASE("gradgradcheck: the helper ops of the recorded formulas, and third derivatives of the ops") {
  Table t(1200);
  t.add("narrow_into", {{{2, 3}, normal}}, [](const Vars& v) { return narrow_into({2, 7}, 1, 3, v[0] * v[0]); });
  t.add("scatter_add_into", {{{3, 2}, normal}}, [](const Vars& v) {
    return scatter_add_into({3, 4}, 1, indices(std::vector<int64_t>{0, 3, 3, 3, 1, 0}).reshape({3, 2}), tanh(v[0]));
  });
  t.add("index_add_into", {{{4, 2}, normal}},
        [](const Vars& v) { return index_add_into({3, 2}, 0, indices({2, 0, 2, 1}), exp(v[0])); });
  t.add("sum_to [2,3,4] -> [3,1]", {{{2, 3, 4}, normal}}, [](const Vars& v) { return sum_to(v[0] * v[0], {3, 1}); });
  t.add("tanh/sigmoid/softmax/log_softmax backward forms", {{{2, 3}, normal}, {{2, 3}, normal}}, [](const Vars& v) {
    return tanh_backward(v[0], tanh(v[1])) + sigmoid_backward(v[0], sigmoid(v[1])) +
           softmax_backward(v[0], softmax(v[1], 1), 1) + log_softmax_backward(v[0], log_softmax(v[1], 0), 0);
  });
  t.add("third order: elementwise", {{{2, 3}, positive}, {{3}, positive}}, [](const Vars& v) {
    return first_derivative(sum(exp(v[0] * 0.3) * log(v[1]) + sqrt(v[0]) / v[1] + pow(v[0], 2.5) * sigmoid(v[1]) +
                                tanh(v[0] - v[1]) + rdiv(1.0, v[0])),
                            v);
  });
  t.add("third order: matmul, linear, linear2", {{{2, 3}, normal}, {{4, 3}, normal}, {{4}, normal}, {{4, 4}, normal}},
        [](const Vars& v) {
          const Variable h = tanh(linear(v[0], v[1], v[2]));
          return first_derivative(sum(tanh(linear2(v[0], v[1], h, v[3], v[2]))) + sum(sigmoid(matmul(h, v[3]))), v);
        });
  t.add("third order: reductions and shape ops", {{{2, 3, 4}, distinct}}, [](const Vars& v) {
    const Variable x = v[0] * v[0] * v[0];
    const auto p = chunk(x, 2, 2);
    return first_derivative(sum(max(x, 1)) + max(x) + sum(min(x, 2, true)) + sum(softmax(x, 1) * x) +
                                sum(log_softmax(x, 2)) * 0.1 + mean(x) + sum(mean(x, 0)) +
                                sum(concat({p[1], p[0]}, 0) * concat({p[0], p[1]}, 0)) +
                                sum(gather(x, 2, indices(std::vector<int64_t>(24, 1)).reshape({2, 3, 4}))) +
                                sum(index_select(transpose(x, 0, 2), 0, indices({1, 1, 3})) *
                                    index_select(transpose(x, 0, 2), 0, indices({1, 1, 3}))) +
                                sum(stack({narrow(x, 1, 0, 2), narrow(x, 1, 1, 2)}, 0) * 0.5),
                            v);
  });
  t.add("third order: where, masked_fill, broadcast, maximum, clamp, relu, abs", {{{3, 4}, off_grid}}, [](const Vars& v) {
    const Tensor c = tensor({1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0}, {3, 4}, DType::F64);
    const Variable x = v[0] * v[0] * v[0];
    return first_derivative(sum(where(c, x, x * x)) + sum(masked_fill(x * x, c, 2.0)) +
                                sum(broadcast_to(sum(x, 0), {2, 4}) * broadcast_to(sum(x, 0), {2, 4})) +
                                sum(maximum(x, x * 0.5) * relu(x) + abs(x) * clamp(x, -0.5, 0.5) * x),
                            v);
  });
  run(t);
}

namespace {
// y = x^3 whose first derivative is right but whose recorded formula reads x once as a
// constant (a captured Tensor, not g.in): d/dx of the backward is 3x instead of 6x.
Variable half_recorded_cube(const Variable& x) {
  return record("half_recorded_cube", x.data() * x.data() * x.data(), {x},
                [xd = x.data()](const auto& dy, auto& g) { g.add(0, dy * g.in(0, xd) * xd * 3.0); });
}
}  // namespace

TEST_CASE("gradgradcheck fails on a backward formula that is right to first order only") {
  Generator g(1300);
  Variable x(uniform({3, 2}, 0.5, 2.0, g, DType::F64), true);
  CHECK(gradcheck([&] { return half_recorded_cube(x); }, {x}).ok);
  const GradcheckResult r = gradgradcheck([&] { return half_recorded_cube(x); }, {x});
  CHECK_FALSE(r.ok);
  REQUIRE(r.inputs.size() == 2);  // x, then the grad_output
  CHECK_FALSE(r.inputs[0].ok);
  CHECK(r.inputs[1].what == "grad_output");
  CHECK(r.summary().find("gradgradcheck: FAILED") != std::string::npos);
  CHECK_THROWS_WITH_AS(gradgradcheck([&] { return tanh(x); }, {Variable(x.data().to(DType::F32), true)}),
                       doctest::Contains("float64"), Error);
}

// Every op the library records is twice differentiable and proven so here: a case of the
// table (tests/test_gradcheck.cpp) or of the tables above recorded it under gradgradcheck,
// including the helper ops that only a recorded backward records. No exemptions.
TEST_CASE("op table: every recorded op has a float64 gradgradcheck case") {
  check_op_table("gradgradcheck", "tests/test_gradgradcheck.cpp", {});
}
