// Convolution, pooling, padding and the layers built on them (core/conv.h, autograd/conv.h,
// nn/conv.h, nn/tcn.h): values against direct loops written from the definitions, float64
// gradient checks of every op over strides, paddings, dilations, groups and odd sizes, and
// the TCN's causality and receptive field.
#include <doctest/doctest.h>
#include <unroll.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

using namespace unroll;

namespace {

using Vars = std::vector<Variable>;

Tensor randn64(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return randn(s, g, DType::F64);
}

/// conv2d straight from its definition: six nested loops, no unfolding.
Tensor conv2d_direct(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), Cg = w.size(1), kH = w.size(2), kW = w.size(3), Og = O / g.groups;
  const int64_t Ho = (H + 2 * g.padding.h - g.dilation.h * (kH - 1) - 1) / g.stride.h + 1;
  const int64_t Wo = (W + 2 * g.padding.w - g.dilation.w * (kW - 1) - 1) / g.stride.w + 1;
  std::vector<double> y(static_cast<size_t>(B * O * Ho * Wo), 0.0);
  const std::vector<double> xv = x.to_vector(), wv = w.to_vector();
  for (int64_t n = 0; n < B; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          double acc = b.defined() ? b.to_vector()[static_cast<size_t>(o)] : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t ki = 0; ki < kH; ++ki)
              for (int64_t kj = 0; kj < kW; ++kj) {
                const int64_t ih = i * g.stride.h - g.padding.h + ki * g.dilation.h;
                const int64_t iw = j * g.stride.w - g.padding.w + kj * g.dilation.w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t ci = (o / Og) * Cg + c;
                acc += wv[static_cast<size_t>(((o * Cg + c) * kH + ki) * kW + kj)] *
                       xv[static_cast<size_t>(((n * C + ci) * H + ih) * W + iw)];
              }
          y[static_cast<size_t>(((n * O + o) * Ho + i) * Wo + j)] = acc;
        }
  return tensor(std::span<const double>(y), {B, O, Ho, Wo}, DType::F64);
}

Tensor randn_f32(const Shape& s) { return randn(s, default_generator()); }

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const auto av = a.to_vector(), bv = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < av.size(); ++i) m = std::max(m, std::abs(av[i] - bv[i]));
  return m;
}

void check_grad(const std::string& what, const std::function<Variable(const Vars&)>& f,
                const std::vector<Tensor>& inputs) {
  const GradcheckResult r = gradcheck(f, inputs);
  CHECK_MESSAGE(r.ok, what << ": " << r.summary());
}

struct ConvCase {
  const char* name;
  Shape x, w;
  Conv2dGeometry g;
  bool bias;
};

// The shapes cover: plain, stride, padding, dilation, groups (incl. depthwise), odd and
// non-square sizes, 1x1 (no unfolding), kernel = input, and batches that take the
// several-samples-per-GEMM path (small outputs) and the one-sample path (large outputs).
const std::vector<ConvCase> kConvCases = {
    {"3x3 plain", {2, 3, 5, 6}, {4, 3, 3, 3}, {}, true},
    {"stride 2, padding 1", {2, 2, 7, 5}, {3, 2, 3, 3}, {2, 1, 1, 1}, true},
    {"stride (2, 3), padding (0, 2)", {1, 2, 7, 8}, {2, 2, 2, 3}, {{2, 3}, {0, 2}, 1, 1}, false},
    {"dilation 2", {2, 2, 7, 7}, {3, 2, 3, 3}, {1, 1, 2, 1}, true},
    {"dilation (1, 3), stride 2, padding 2", {1, 3, 6, 9}, {2, 3, 2, 2}, {2, 2, {1, 3}, 1}, true},
    {"groups 2", {2, 4, 5, 5}, {6, 2, 3, 3}, {1, 1, 1, 2}, true},
    {"depthwise (groups = channels)", {2, 3, 4, 5}, {3, 1, 3, 2}, {1, 0, 1, 3}, true},
    {"1x1 (no unfolding)", {3, 4, 3, 5}, {2, 4, 1, 1}, {}, true},
    {"1x1 stride 2", {2, 3, 5, 5}, {2, 3, 1, 1}, {2, 0, 1, 1}, false},
    {"kernel = input", {2, 2, 3, 4}, {5, 2, 3, 4}, {}, true},
    {"1 x T (a conv1d)", {3, 2, 1, 11}, {4, 2, 1, 3}, {{1, 2}, {0, 3}, {1, 2}, 1}, true},
    {"many small samples (batched GEMM)", {37, 2, 3, 3}, {3, 2, 2, 2}, {1, 1, 1, 1}, true},
    {"large output (one sample per GEMM)", {2, 1, 24, 25}, {2, 1, 3, 3}, {1, 1, 1, 1}, true},
    // The "same width" unfold (stride 1, W' == W) copies whole runs of rows at once.
    {"same width, valid height: padding (0, 1)", {2, 2, 6, 5}, {3, 2, 3, 3}, {1, {0, 1}, 1, 1}, true},
    {"same: 5x5 kernel, padding 2, on 4x3", {2, 2, 4, 3}, {2, 2, 5, 5}, {1, 2, 1, 1}, true},
    {"same: dilation 2, padding 2", {2, 2, 6, 7}, {3, 2, 3, 3}, {1, 2, 2, 1}, true},
    {"same: width 1", {3, 2, 5, 1}, {2, 2, 3, 1}, {1, {1, 0}, 1, 1}, true},
};

}  // namespace

TEST_CASE("conv2d: values equal the definition, float64 and float32") {
  uint64_t seed = 1;
  for (const ConvCase& c : kConvCases) {
    INFO("case: " << c.name);
    const Tensor x = randn64(c.x, seed++), w = randn64(c.w, seed++);
    const Tensor b = c.bias ? randn64({c.w[0]}, seed++) : Tensor();
    const Tensor want = conv2d_direct(x, w, b, c.g);
    CHECK(max_abs_diff(conv2d(x, w, b, c.g), want) < 1e-12);
    const Tensor y32 = conv2d(x.to(DType::F32), w.to(DType::F32), c.bias ? b.to(DType::F32) : Tensor(), c.g);
    CHECK(y32.dtype() == DType::F32);
    CHECK(max_abs_diff(y32.to(DType::F64), want) < 1e-4);
  }
}

TEST_CASE("conv1d is conv2d at height 1, in PyTorch's [B, C, T] layout") {
  const Tensor x = randn64({2, 4, 10}, 3), w = randn64({6, 2, 3}, 4), b = randn64({6}, 5);
  const Tensor y = conv1d(x, w, b, 2, 1, 2, 2);
  CHECK(y.shape() == Shape({2, 6, 4}));  // floor((10 + 2 - 2*2 - 1) / 2) + 1 = 4
  const Tensor want = conv2d_direct(x.reshape({2, 4, 1, 10}), w.reshape({6, 2, 1, 3}), b, {{1, 2}, {0, 1}, {1, 2}, 2});
  CHECK(max_abs_diff(y.reshape({2, 6, 1, 4}), want) < 1e-12);
}

TEST_CASE("gradcheck: conv2d and conv1d over strides, paddings, dilations and groups") {
  uint64_t seed = 100;
  for (const ConvCase& c : kConvCases) {
    if (c.x[0] > 4 || c.x.numel() > 1000) continue;  // the values test covers the big ones
    std::vector<Tensor> in = {randn64(c.x, seed++), randn64(c.w, seed++)};
    if (c.bias) in.push_back(randn64({c.w[0]}, seed++));
    const Conv2dGeometry g = c.g;
    check_grad(std::string("conv2d ") + c.name,
               [g](const Vars& v) { return conv2d(v[0], v[1], v.size() > 2 ? v[2] : Variable(), g.stride, g.padding, g.dilation, g.groups); },
               in);
  }
  check_grad("conv1d stride 2 padding 2 dilation 3 groups 2",
             [](const Vars& v) { return conv1d(v[0], v[1], v[2], 2, 2, 3, 2); },
             {randn64({2, 4, 13}, 1), randn64({6, 2, 3}, 2), randn64({6}, 3)});
  check_grad("conv1d odd length, no bias", [](const Vars& v) { return conv1d(v[0], v[1]); },
             {randn64({3, 3, 7}, 4), randn64({2, 3, 4}, 5)});
  // An input used twice: x is both the convolved signal and (reshaped) the weight's source,
  // and the output adds x back, so three paths reach x.
  check_grad("conv1d input used twice", [](const Vars& v) {
    const Variable w = reshape(narrow(v[0], 2, 0, 2), {2, 2, 2});  // x[..., :2] as a [2, 2, 2] weight
    return conv1d(v[0], w, Variable(), 1, 1) + pad(v[0], {1, 0});  // [2, 2, 6]
  }, {randn64({2, 2, 5}, 6)});
  check_grad("conv2d twice in a row (a two-layer CNN)", [](const Vars& v) {
    return conv2d(tanh(conv2d(v[0], v[1], v[2], 1, 1)), v[3], Variable(), 2);
  }, {randn64({2, 1, 6, 6}, 7), randn64({3, 1, 3, 3}, 8), randn64({3}, 9), randn64({2, 3, 2, 2}, 10)});
}

TEST_CASE("max_pool: values, the first maximum wins, and the gradient goes there") {
  // One 3x4 plane with a tie in the first window.
  const Tensor x = tensor({1, 5, 2, 0, 5, 3, 7, 1, 4, 4, 6, 8}, {1, 1, 3, 4}, DType::F64);
  Tensor argmax;
  const Tensor y = max_pool2d(x, 2, 2, 0, &argmax);
  CHECK(y.shape() == Shape({1, 1, 1, 2}));
  CHECK(y.to_vector() == std::vector<double>{5, 7});
  CHECK(argmax.to_indices() == std::vector<int64_t>{1, 6});  // the 5 at (0,1), not at (1,0)
  Variable xv(x, true);
  sum(max_pool2d(xv, 2)).backward();
  CHECK(xv.grad().to_vector() == std::vector<double>{0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0});
  // Padding is -inf, never the maximum: an all-negative input keeps its own values.
  const Tensor neg = tensor({-3, -1, -2, -5}, {1, 1, 4}, DType::F64);
  CHECK(max_pool1d(neg, 2, 2, 1, nullptr).to_vector() == std::vector<double>{-3, -1, -5});
  // NaN propagates, like torch.
  const Tensor nan = tensor({1, std::nan(""), 3, 2}, {1, 1, 4}, DType::F64);
  const auto v = max_pool1d(nan, 2, 0, 0, nullptr).to_vector();
  CHECK(std::isnan(v[0]));
  CHECK(v[1] == 3);
}

TEST_CASE("avg_pool and adaptive_avg_pool: values") {
  const Tensor x = tensor({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}, DType::F64);
  // count_include_pad: the padded corner window (1, 2, 4, 5 plus five zeros) / 9... with k 3 s 2 p 1
  const Tensor y = avg_pool2d(x, 3, 2, 1);
  CHECK(y.shape() == Shape({1, 1, 2, 2}));
  CHECK(std::abs(y.at({0, 0, 0, 0}) - (1 + 2 + 4 + 5) / 9.0) < 1e-15);
  CHECK(std::abs(y.at({0, 0, 1, 1}) - (5 + 6 + 8 + 9) / 9.0) < 1e-15);
  // torch's adaptive windows for 3 -> 2: rows [0, 2) and [1, 3).
  const Tensor a = adaptive_avg_pool2d(x, 2);
  CHECK(a.to_vector() == std::vector<double>{3, 4, 6, 7});
  CHECK(adaptive_avg_pool2d(x, 1).to_vector() == std::vector<double>{5});
  const Tensor s = tensor({1, 2, 3, 4, 5}, {1, 1, 5}, DType::F64);
  CHECK(adaptive_avg_pool1d(s, 3).to_vector() == std::vector<double>{1.5, 3, 4.5});  // [0,2) [1,4) [3,5)
  CHECK(avg_pool1d(s, 2, 0, 0).to_vector() == std::vector<double>{1.5, 3.5});
}

TEST_CASE("gradcheck: pooling and padding") {
  // Distinct values so that no max-pool window has a tie within the finite-difference step.
  auto distinct = [](const Shape& s, uint64_t seed) {
    Generator g(seed);
    std::vector<double> v(static_cast<size_t>(s.numel()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1 * static_cast<double>(i);
    for (size_t i = v.size() - 1; i > 0; --i)  // Fisher-Yates
      std::swap(v[i], v[static_cast<size_t>(g.randint(0, static_cast<int64_t>(i) + 1))]);
    return tensor(std::span<const double>(v), s, DType::F64);
  };
  check_grad("max_pool2d k 2", [](const Vars& v) { return max_pool2d(v[0], 2); }, {distinct({2, 2, 4, 5}, 1)});
  check_grad("max_pool2d k 3 s 2 p 1", [](const Vars& v) { return max_pool2d(v[0], 3, 2, 1); }, {distinct({1, 2, 7, 6}, 2)});
  check_grad("max_pool2d k (2, 3) s 1 (overlapping)", [](const Vars& v) { return max_pool2d(v[0], {2, 3}, 1); },
             {distinct({2, 1, 4, 5}, 3)});
  check_grad("max_pool1d k 3 s 2 p 1", [](const Vars& v) { return max_pool1d(v[0], 3, 2, 1); }, {distinct({2, 3, 9}, 4)});
  check_grad("avg_pool2d k 3 s 2 p 1", [](const Vars& v) { return avg_pool2d(v[0], 3, 2, 1); }, {randn64({2, 2, 5, 6}, 5)});
  check_grad("avg_pool2d k (1, 2)", [](const Vars& v) { return avg_pool2d(v[0], {1, 2}); }, {randn64({1, 2, 3, 5}, 6)});
  check_grad("avg_pool1d k 3 s 1 p 1", [](const Vars& v) { return avg_pool1d(v[0], 3, 1, 1); }, {randn64({2, 2, 7}, 7)});
  check_grad("adaptive_avg_pool2d 5x7 -> 3x2", [](const Vars& v) { return adaptive_avg_pool2d(v[0], {3, 2}); },
             {randn64({2, 2, 5, 7}, 8)});
  check_grad("adaptive_avg_pool1d 7 -> 1 (global)", [](const Vars& v) { return adaptive_avg_pool1d(v[0], 1); },
             {randn64({2, 3, 7}, 9)});
  check_grad("pad last axis (causal)", [](const Vars& v) { return pad(v[0], {3, 0}); }, {randn64({2, 3, 4}, 10)});
  check_grad("pad last two axes, value 1.5", [](const Vars& v) { return pad(v[0], {1, 2, 0, 3}, 1.5); },
             {randn64({2, 3, 4}, 11)});
  check_grad("pad used twice", [](const Vars& v) { return pad(v[0], {1, 0}) * pad(v[0], {0, 1}); }, {randn64({3, 4}, 12)});
}

TEST_CASE("pad: values and shapes") {
  const Tensor x = tensor({1, 2, 3, 4}, {2, 2}, DType::F64);
  const Tensor y = pad(x, std::vector<int64_t>{1, 0, 0, 1}, 9.0);
  CHECK(y.shape() == Shape({3, 3}));
  CHECK(y.to_vector() == std::vector<double>{9, 1, 2, 9, 3, 4, 9, 9, 9});
  CHECK(unpad(y, std::vector<int64_t>{1, 0, 0, 1}).to_vector() == x.to_vector());
}

TEST_CASE("Conv1d / Conv2d: PyTorch's names, shapes and default init") {
  manual_seed(0);
  Conv2d c(4, 6, {3, 2}, {.stride = 2, .groups = 2});
  const auto named = c.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "weight");
  CHECK(named[1].first == "bias");
  CHECK(c.weight.shape() == Shape({6, 2, 3, 2}));
  const double bound = 1.0 / std::sqrt(2.0 * 3 * 2);  // fan_in = in/groups * kH * kW
  for (const Tensor& t : {c.weight.data(), c.bias.data()})
    for (double v : t.to_vector()) CHECK(std::abs(v) <= bound);
  CHECK(c(Variable(randn_f32({1, 4, 7, 6}))).shape() == Shape({1, 6, 3, 3}));

  Conv1d d(3, 5, 4, {.padding = 1, .bias = false});
  CHECK(d.named_parameters().size() == 1);
  CHECK(d.weight.shape() == Shape({5, 3, 4}));
  CHECK(d(Variable(randn_f32({2, 3, 10}))).shape() == Shape({2, 5, 9}));

  Flatten f;
  CHECK(f(Variable(randn_f32({2, 3, 4, 5}))).shape() == Shape({2, 60}));
  CHECK(Flatten(0, 1)(Variable(randn_f32({2, 3, 4}))).shape() == Shape({6, 4}));
  MaxPool2d mp(2);
  CHECK(mp(Variable(randn_f32({1, 1, 5, 4}))).shape() == Shape({1, 1, 2, 2}));
}

TEST_CASE("gradcheck: a small CNN of the layers (Conv2d, MaxPool2d, AvgPool2d, Flatten, Linear)") {
  manual_seed(3);
  Conv2d c1(1, 3, 3, {.padding = 1});
  Conv2d c2(3, 4, 2, {.groups = 1});
  Linear fc(4 * 2 * 2, 2);
  for (Module* m : std::initializer_list<Module*>{&c1, &c2, &fc}) m->to(DType::F64);
  const Variable x(randn64({2, 1, 6, 6}, 4));
  std::vector<Variable> params = c1.parameters();
  for (const auto& p : c2.parameters()) params.push_back(p);
  for (const auto& p : fc.parameters()) params.push_back(p);
  const GradcheckResult r = gradcheck([&] {
    Variable h = max_pool2d(relu(c1(x)), 2);   // [2, 3, 3, 3]
    h = avg_pool2d(tanh(c2(h)), 1);            // [2, 4, 2, 2]
    return sum(tanh(fc(Flatten()(h))));
  }, params);
  CHECK_MESSAGE(r.ok, r.summary());
}

TEST_CASE("TCN: names, causality, receptive field, gradcheck") {
  manual_seed(5);
  TCN tcn(2, {4, 4, 3}, {.kernel_size = 3});
  std::vector<std::string> names;
  for (const auto& [n, p] : tcn.named_parameters()) names.push_back(n);
  const std::vector<std::string> want = {
      "blocks.0.conv1.weight", "blocks.0.conv1.bias", "blocks.0.conv2.weight", "blocks.0.conv2.bias",
      "blocks.0.downsample.weight", "blocks.0.downsample.bias",  // 2 -> 4 channels
      "blocks.1.conv1.weight", "blocks.1.conv1.bias", "blocks.1.conv2.weight", "blocks.1.conv2.bias",
      "blocks.2.conv1.weight", "blocks.2.conv1.bias", "blocks.2.conv2.weight", "blocks.2.conv2.bias",
      "blocks.2.downsample.weight", "blocks.2.downsample.bias"};
  CHECK(names == want);
  CHECK(tcn.blocks[1]->dilation == 2);
  CHECK(tcn.receptive_field() == 1 + 2 * 2 * 7);  // 29

  tcn.to(DType::F64);
  tcn.eval();
  const int64_t T = 40;
  // Eight samples, so that the one path from the oldest input in the window (through one
  // tap of every convolution) is open through the ReLUs for at least one of them.
  const int64_t B = 8;
  const Tensor x = randn64({B, 2, T}, 6);
  const Tensor y = tcn(Variable(x)).data();
  CHECK(y.shape() == Shape({B, 3, T}));
  // Change input step s: outputs before s must not move (causal); outputs at t move only if
  // t - s < receptive field. Checked through the gradient of each output step.
  for (int64_t t : {0L, 10L, 28L, 39L}) {
    Variable xv(x, true);
    Variable out = tcn(xv);
    sum(narrow(out, 2, t, 1)).backward();
    const Tensor gx = xv.grad();
    auto reach = [&](int64_t s) {  // |dy_t / dx_s| summed over samples and channels
      double mag = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t c = 0; c < 2; ++c) mag += std::abs(gx.at({b, c, s}));
      return mag;
    };
    for (int64_t s = 0; s < T; ++s) {
      INFO("output " << t << " input " << s);
      if (s > t || t - s >= tcn.receptive_field()) CHECK(reach(s) == 0.0);
      else if (s == t) CHECK(reach(s) > 0.0);
    }
    // The oldest input inside the window still reaches it (the field is not smaller).
    if (t >= tcn.receptive_field() - 1) CHECK(reach(t - tcn.receptive_field() + 1) > 0.0);
  }
  TCN small(2, {3, 3}, {.kernel_size = 2});
  small.to(DType::F64);
  const Variable xs(randn64({2, 2, 6}, 7));
  const GradcheckResult r = gradcheck([&] { return sum(tanh(small(xs))); }, small.parameters());
  CHECK_MESSAGE(r.ok, r.summary());
  const GradcheckResult rx = gradcheck([&](const Vars& v) { return small(v[0]); }, {randn64({2, 2, 6}, 8)});
  CHECK_MESSAGE(rx.ok, rx.summary());
}
