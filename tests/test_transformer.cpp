// Transformer layers (nn/transformer.h): MultiheadAttention against a per-head loop
// reference, mask conventions (key padding, causal float masks, integer masks, fully masked
// rows), dropout, batch_first, positional encodings, encoder layer / stack / causal LM, their
// PyTorch state_dict names, float64 gradient checks, shape errors, and a training sanity
// run. Also the ops the layers added: erf and the exact GELU.
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/transformer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

using namespace unroll;

namespace {

using Vec = std::vector<double>;
using Names = std::vector<std::string>;
constexpr double kInf = std::numeric_limits<double>::infinity();

Variable leaf(const Shape& s, Generator& gen) { return Variable(randn(s, gen, DType::F64), true); }

double max_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  return max(abs(a - b)).item();
}

bool all_finite(const Tensor& t) {
  const Vec v = t.to_vector();
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

Names keys(const Module& m) {
  Names out;
  for (const auto& [name, value] : m.state_dict()) out.push_back(name);
  return out;
}

// float64 parameters with random values (also the biases PyTorch starts at zero, so that
// every term of the equations is exercised).
void randomize(Module& m, Generator& gen, double scale = 0.5) {
  m.to(DType::F64);
  NoGradGuard ng;
  for (Variable& p : m.parameters()) p.data() = randn(p.shape(), gen, DType::F64) * scale;
}

// The worst gradcheck error since the last report, reported once per gradcheck test case.
double g_worst_gradcheck = 0;

void expect_gradcheck(const GradcheckResult& r, const std::string& what) {
  CHECK_MESSAGE(r.ok, what, "\n", r.summary());
  for (const GradcheckInput& in : r.inputs) g_worst_gradcheck = std::max(g_worst_gradcheck, in.max_abs_error);
}

void report_gradcheck(const std::string& what) {
  MESSAGE(what, ": worst gradcheck abs error ", g_worst_gradcheck);
  g_worst_gradcheck = 0;
}

// ---- the reference: torch.nn.MultiheadAttention written as a loop over batches and heads ----

struct RefMha {
  Tensor output;   // the module's layout
  Tensor weights;  // [B,h,T,S]
};

// Per batch b and head i: q_i = x_q W_q,i^T + b_q,i etc., scores = q_i k_i^T / sqrt(E/h) plus
// the float mask, softmax over the allowed keys (a loop over doubles; all-zero if none),
// context = weights v_i; the heads are concatenated and projected by out_proj.
RefMha reference(const MultiheadAttention& m, const Tensor& query, const Tensor& key, const Tensor& value,
                 const Tensor& key_padding_mask = {}, const Tensor& attn_mask = {}) {
  const bool bf = m.batch_first();
  const Tensor xq = bf ? transpose(query, 0, 1) : query;  // [T,B,E]
  const Tensor xk = bf ? transpose(key, 0, 1) : key;      // [S,B,E]
  const Tensor xv = bf ? transpose(value, 0, 1) : value;
  const int64_t T = xq.size(0), B = xq.size(1), S = xk.size(0), E = m.embed_dim(), h = m.num_heads(), hd = E / h;
  const Tensor W = m.in_proj_weight.data();
  const Tensor bias = m.in_proj_bias.defined() ? m.in_proj_bias.data() : zeros({3 * E}, DType::F64);
  const Tensor bo = m.out_proj->bias.defined() ? m.out_proj->bias.data() : zeros({E}, DType::F64);
  const Vec kpm = key_padding_mask.defined() ? key_padding_mask.to_vector() : Vec();
  const Vec am = attn_mask.defined() ? attn_mask.to_vector() : Vec();
  auto project = [&](const Tensor& x, int64_t b, int64_t p) {  // [L,E] of batch b, projection p
    const Tensor xb = squeeze(narrow(x, 1, b, 1), 1);
    return matmul(xb, narrow(W, 0, p * E, E), false, true) + narrow(bias, 0, p * E, E);
  };
  std::vector<Tensor> outs;
  Vec all_weights;
  for (int64_t b = 0; b < B; ++b) {
    const Tensor Q = project(xq, b, 0), K = project(xk, b, 1), V = project(xv, b, 2);
    std::vector<Tensor> heads;
    for (int64_t i = 0; i < h; ++i) {
      const Tensor Qi = narrow(Q, 1, i * hd, hd), Ki = narrow(K, 1, i * hd, hd), Vi = narrow(V, 1, i * hd, hd);
      const Vec s = (matmul(Qi, Ki, false, true) / std::sqrt(static_cast<double>(hd))).to_vector();  // [T,S]
      Vec w(static_cast<size_t>(T * S), 0.0);
      for (int64_t t = 0; t < T; ++t) {
        Vec score(static_cast<size_t>(S));
        std::vector<bool> allowed(static_cast<size_t>(S), true);
        for (int64_t j = 0; j < S; ++j) {
          const size_t u = static_cast<size_t>(j);
          score[u] = s[static_cast<size_t>(t * S + j)];
          if (!kpm.empty() && kpm[static_cast<size_t>(b * S + j)] != 0) allowed[u] = false;
          if (!am.empty()) {
            const int64_t plane = attn_mask.ndim() == 3 ? b * h + i : 0;
            const double a = am[static_cast<size_t>((plane * T + t) * S + j)];
            if (!attn_mask.is_floating())
              allowed[u] = allowed[u] && a == 0;
            else if (a == -kInf)
              allowed[u] = false;
            else
              score[u] += a;
          }
        }
        double mx = -kInf, total = 0;
        for (int64_t j = 0; j < S; ++j)
          if (allowed[static_cast<size_t>(j)]) mx = std::max(mx, score[static_cast<size_t>(j)]);
        for (int64_t j = 0; j < S; ++j)
          if (allowed[static_cast<size_t>(j)]) total += std::exp(score[static_cast<size_t>(j)] - mx);
        for (int64_t j = 0; j < S; ++j)
          if (allowed[static_cast<size_t>(j)])
            w[static_cast<size_t>(t * S + j)] = std::exp(score[static_cast<size_t>(j)] - mx) / total;
      }
      all_weights.insert(all_weights.end(), w.begin(), w.end());
      heads.push_back(matmul(tensor(w, {T, S}, DType::F64), Vi));  // [T,hd]
    }
    outs.push_back(matmul(concat(heads, 1), m.out_proj->weight.data(), false, true) + bo);  // [T,E]
  }
  Tensor out = stack(outs, 1);  // [T,B,E]
  return {bf ? transpose(out, 0, 1) : out, tensor(all_weights, {B, h, T, S}, DType::F64)};
}

// A causal mask of ints: 1 (not allowed) above the diagonal.
Tensor causal_ints(int64_t T) {
  std::vector<int64_t> m(static_cast<size_t>(T * T), 0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t u = t + 1; u < T; ++u) m[static_cast<size_t>(t * T + u)] = 1;
  return indices(m, {T, T});
}

}  // namespace

// ---- ops ------------------------------------------------------------------------------------

TEST_CASE("erf and gelu: values of the exact forms and float64 gradcheck") {
  const Vec xs = {-3.0, -1.2, -0.3, 0.0, 0.4, 1.0, 2.5};
  const Tensor x = tensor(xs, {7}, DType::F64);
  const Vec e = erf(Variable(x)).data().to_vector(), g = gelu(Variable(x)).data().to_vector();
  for (size_t i = 0; i < xs.size(); ++i) {
    CHECK(e[i] == doctest::Approx(std::erf(xs[i])).epsilon(1e-15));
    CHECK(g[i] == doctest::Approx(0.5 * xs[i] * (1.0 + std::erf(xs[i] / std::numbers::sqrt2))).epsilon(1e-15));
  }
  CHECK(gelu(Variable(tensor({1.0}, DType::F32))).item() == doctest::Approx(0.8413447).epsilon(1e-6));  // float32

  // gelu'(0) = 1/2 and erf'(0) = 2/sqrt(pi)
  Variable z(zeros({1}, DType::F64), true);
  gelu(z).backward(ones({1}, DType::F64));
  CHECK(z.grad().item() == doctest::Approx(0.5));
  z.zero_grad();
  erf(z).backward(ones({1}, DType::F64));
  CHECK(z.grad().item() == doctest::Approx(2.0 / std::sqrt(std::numbers::pi)));

  Variable v(x, true);
  expect_gradcheck(gradcheck([&] { return erf(v); }, {v}), "erf");
  expect_gradcheck(gradcheck([&] { return gelu(v); }, {v}), "gelu");
  expect_gradcheck(gradcheck([&] { return gelu(v) * erf(v * 0.7); }, {v}), "gelu and erf of one input");
  CHECK_THROWS_WITH_AS(erf(Variable(indices({1, 2}))), doctest::Contains("erf: input [2] must be float32 or float64"),
                       Error);
  report_gradcheck("erf, gelu");
}

TEST_CASE("erf and gelu in float32 (the vectorised kernels) agree with the float64 path") {
  // Bounds of tests/test_fused.cpp's sweep, plus one rounding for the product with dy:
  // erf, erf' within 4 ulp; gelu within 8; gelu' within 5 ulp of |dy| (Phi + |x| phi).
  Generator gen(16);
  const Tensor x32 = randn({64, 48}, gen) * 4.0, dy32 = randn({64, 48}, gen);
  const Tensor x64 = x32.to(DType::F64), dy64 = dy32.to(DType::F64);
  auto ulp = [](double w) {
    const auto f = static_cast<float>(std::fabs(w));
    return static_cast<double>(std::nextafter(f, std::numeric_limits<float>::infinity()) - f);
  };
  for (const bool is_gelu : {false, true}) {
    const std::string op = is_gelu ? "gelu" : "erf";
    INFO("op: " << op);
    Variable a(x32, true), b(x64, true);
    const Variable ya = is_gelu ? gelu(a) : erf(a), yb = is_gelu ? gelu(b) : erf(b);
    ya.backward(dy32);
    yb.backward(dy64);
    REQUIRE(ya.data().dtype() == DType::F32);
    REQUIRE(a.grad().dtype() == DType::F32);
    double worst_y = 0, worst_dx = 0;
    for (int64_t i = 0; i < x32.numel(); ++i) {
      const double v = x64.data<double>()[i], want_y = yb.data().data<double>()[i];
      if (std::fabs(want_y) >= std::numeric_limits<float>::min())
        worst_y = std::max(worst_y, std::fabs(ya.data().data<float>()[i] - want_y) / ulp(want_y));
      // gelu' = Phi(x) + x phi(x) cancels near x = -0.75: measured against Phi + |x| phi
      const double cdf = 0.5 * std::erfc(-v / std::numbers::sqrt2);
      const double phi = std::exp(-0.5 * v * v) * std::numbers::inv_sqrtpi / std::numbers::sqrt2;
      const double scale = is_gelu ? cdf + std::fabs(v) * phi : 2.0 * std::numbers::inv_sqrtpi * std::exp(-v * v);
      const double dscale = std::fabs(dy64.data<double>()[i]) * scale;
      if (dscale >= std::numeric_limits<float>::min())
        worst_dx = std::max(worst_dx, std::fabs(a.grad().data<float>()[i] - b.grad().data<double>()[i]) / ulp(dscale));
    }
    MESSAGE(op << " float32 vs float64: y " << worst_y << " ulp, dx " << worst_dx << " ulp");
    CHECK(worst_y <= (is_gelu ? 8.0 : 4.0));
    CHECK(worst_dx <= (is_gelu ? 5.0 : 4.0));
  }
}

// ---- MultiheadAttention ---------------------------------------------------------------------

TEST_CASE("MultiheadAttention: PyTorch's parameter names, shapes and initialisation") {
  manual_seed(1);
  MultiheadAttention m(8, 2);
  CHECK(keys(m) == Names{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"});
  CHECK(m.in_proj_weight.shape() == Shape{24, 8});
  CHECK(m.in_proj_bias.shape() == Shape{24});
  CHECK(m.out_proj->weight.shape() == Shape{8, 8});
  CHECK(m.head_dim() == 4);
  CHECK(max(abs(m.in_proj_bias.data())).item() == 0.0);
  CHECK(max(abs(m.out_proj->bias.data())).item() == 0.0);
  // xavier uniform over [3E,E]: U(-a, a), a = sqrt(6 / (E + 3E))
  const double a = std::sqrt(6.0 / 32.0), w_max = max(abs(m.in_proj_weight.data())).item();
  CHECK(w_max <= a);
  CHECK(w_max > 0.9 * a);
  // out_proj.weight keeps Linear's default U(-1/sqrt(E), 1/sqrt(E))
  const double o_max = max(abs(m.out_proj->weight.data())).item();
  CHECK(o_max <= 1.0 / std::sqrt(8.0));
  CHECK(o_max > 0.8 / std::sqrt(8.0));

  MultiheadAttention no_bias(8, 4, 0.0, false);
  CHECK(keys(no_bias) == Names{"in_proj_weight", "out_proj.weight"});
  CHECK_FALSE(no_bias.in_proj_bias.defined());
}

TEST_CASE("MultiheadAttention equals a per-head loop reference, with every mask kind and layout") {
  Generator gen(2);
  manual_seed(2);
  const int64_t E = 6, h = 3, B = 2, T = 4, S = 5;
  struct Case {
    std::string name;
    bool batch_first, self, bias;
    Tensor kpm, attn_mask;
  };
  Tensor float_mask = randn({T, S}, gen, DType::F64);  // finite values added to the scores, and -inf entries
  {
    double* f = float_mask.data<double>();
    f[1] = f[7] = f[13] = -kInf;
  }
  std::vector<int64_t> per_head(static_cast<size_t>(B * h * T * S));
  for (size_t k = 0; k < per_head.size(); ++k) per_head[k] = (k * 7 + k / 5) % 3 == 0 ? 1 : 0;
  for (int64_t r = 0; r < B * h * T; ++r) per_head[static_cast<size_t>(r * S + r % S)] = 0;  // no empty row
  const Tensor kpm = tensor({0, 0, 0, 1, 1, 0, 0, 0, 0, 1}, {B, S}, DType::F32);
  const Tensor int_mask = indices({0, 1, 0, 0, 1,  //
                                   0, 0, 0, 1, 0,  //
                                   1, 0, 0, 0, 0,  //
                                   0, 0, 1, 1, 0},
                                  {T, S});
  const Tensor causal = generate_square_subsequent_mask(S, DType::F64);  // self-attention: S steps
  const std::vector<Case> cases = {
      {"self, no mask", false, true, true, {}, {}},
      {"self, batch first, key padding + causal float", true, true, true, kpm, causal},
      {"cross, key padding + float mask with -inf", false, false, true, kpm, float_mask},
      {"cross, batch first, per-head int mask [B*h,T,S] + key padding", true, false, true,
       indices({0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, {B, S}), indices(per_head, {B * h, T, S})},
      {"cross, no bias, 2-D int mask", false, false, false, {}, int_mask},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    MultiheadAttention m(E, h, 0.0, c.bias, c.batch_first);
    randomize(m, gen);
    const int64_t Tq = c.self ? S : T;
    const Shape qs = c.batch_first ? Shape{B, Tq, E} : Shape{Tq, B, E};
    const Shape ks = c.batch_first ? Shape{B, S, E} : Shape{S, B, E};
    const Variable q = leaf(qs, gen);
    const Variable k = c.self ? q : leaf(ks, gen), v = c.self ? q : leaf(ks, gen);
    const Tensor& attn = c.attn_mask;
    const RefMha want = reference(m, q.data(), k.data(), v.data(), c.kpm, attn);
    const MultiheadAttentionOutput per_head_out = m(q, k, v, c.kpm, attn, true, false);
    CHECK(max_diff(per_head_out.output.data(), want.output) < 1e-12);
    CHECK(max_diff(per_head_out.weights.data(), want.weights) < 1e-12);
    const MultiheadAttentionOutput averaged = m(q, k, v, c.kpm, attn);
    CHECK(max_diff(averaged.weights.data(), mean(want.weights, 1)) < 1e-12);
    CHECK(max_diff(averaged.output.data(), per_head_out.output.data()) == 0.0);
    CHECK_FALSE(m(q, k, v, c.kpm, attn, false).weights.defined());
  }
}

TEST_CASE("MultiheadAttention: batch_first is only a layout; self-attention records few nodes") {
  Generator gen(3);
  manual_seed(3);
  MultiheadAttention seq_first(8, 4), batch_first(8, 4, 0.0, true, true);
  randomize(seq_first, gen);
  batch_first.to(DType::F64);
  batch_first.load_state_dict(seq_first.state_dict());
  const Variable x = leaf({5, 3, 8}, gen);
  const Tensor kpm = tensor({0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}, {3, 5}, DType::F64);
  const Tensor causal = generate_square_subsequent_mask(5, DType::F64);
  const MultiheadAttentionOutput a = seq_first(x, x, x, kpm, causal);
  const Variable xt(transpose(x.data(), 0, 1), true);
  const MultiheadAttentionOutput b = batch_first(xt, xt, xt, kpm, causal);
  CHECK(max_diff(transpose(b.output.data(), 0, 1), a.output.data()) < 1e-14);
  CHECK(max_diff(b.weights.data(), a.weights.data()) < 1e-14);

  // The heads are one batched matmul: the node count does not grow with h or T.
  for (int64_t heads : {1, 8}) {
    MultiheadAttention m(8, heads);
    const Variable y(randn({7, 2, 8}, gen), true);
    const int64_t before = live_nodes();
    const Variable out = m(y, y, y, {}, {}, false).output;
    CHECK(live_nodes() - before <= 16);
  }
}

TEST_CASE("MultiheadAttention: a fully masked query row gets zero weights, output out_proj.bias, finite gradients") {
  Generator gen(4);
  manual_seed(4);
  MultiheadAttention m(4, 2);
  randomize(m, gen);
  const Variable x = leaf({3, 2, 4}, gen);  // [T,B,E]
  // batch 1: every key is padding; batch 0, row 1: the float mask forbids every key
  const Tensor kpm = tensor({0, 0, 0, 1, 1, 1}, {2, 3});
  const Tensor float_mask = tensor({0, 0, 0, -kInf, -kInf, -kInf, 0, -kInf, 0}, {3, 3}, DType::F64);
  const MultiheadAttentionOutput o = m(x, x, x, kpm, float_mask, true, false);
  const Tensor w = o.weights.data();  // [B,h,T,S]
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t s = 0; s < 3; ++s) {
      CHECK(w.at({0, i, 1, s}) == 0.0);
      for (int64_t t = 0; t < 3; ++t) CHECK(w.at({1, i, t, s}) == 0.0);
    }
  CHECK(w.at({0, 0, 0, 0}) + w.at({0, 0, 0, 1}) + w.at({0, 0, 0, 2}) == doctest::Approx(1.0));
  const Tensor bias = m.out_proj->bias.data();
  for (int64_t e = 0; e < 4; ++e) {
    CHECK(o.output.data().at({1, 0, e}) == bias.at({e}));  // row 1 of batch 0
    for (int64_t t = 0; t < 3; ++t) CHECK(o.output.data().at({t, 1, e}) == bias.at({e}));
  }
  sum(o.output * o.output).backward();
  CHECK(all_finite(x.grad()));
  for (const Variable& p : m.parameters()) CHECK(all_finite(p.grad()));
}

TEST_CASE("MultiheadAttention: dropout acts on the attention weights in training mode only") {
  Generator gen(5);
  manual_seed(5);
  MultiheadAttention m(8, 2, 0.5);
  randomize(m, gen);
  const Variable x = leaf({6, 2, 8}, gen);
  m.eval();
  const MultiheadAttentionOutput e1 = m(x, x, x, {}, {}, true, false), e2 = m(x, x, x, {}, {}, true, false);
  CHECK(max_diff(e1.output.data(), e2.output.data()) == 0.0);
  CHECK(max_diff(e1.output.data(), reference(m, x.data(), x.data(), x.data()).output) < 1e-12);
  m.train();
  const MultiheadAttentionOutput t = m(x, x, x, {}, {}, true, false);
  const Vec tw = t.weights.data().to_vector(), ew = e1.weights.data().to_vector();
  int zeros_seen = 0, kept = 0;
  for (size_t i = 0; i < tw.size(); ++i) {
    if (tw[i] == 0.0)
      ++zeros_seen;
    else {
      CHECK(tw[i] == doctest::Approx(2.0 * ew[i]));
      ++kept;
    }
  }
  CHECK(zeros_seen > 20);
  CHECK(kept > 20);
  CHECK(max_diff(t.output.data(), e1.output.data()) > 1e-3);
}

TEST_CASE("gradcheck: MultiheadAttention with every mask kind, fully masked rows, both layouts") {
  Generator gen(6);
  manual_seed(6);
  const int64_t E = 4, h = 2, B = 2, T = 3, S = 4;
  struct Case {
    std::string name;
    bool batch_first, self;
    Tensor kpm, attn_mask;
  };
  Tensor float_mask = randn({T, S}, gen, DType::F64);
  float_mask.data<double>()[2] = -kInf;
  // [B*h,T,S]; plane 0 row 0 is fully masked
  const Tensor per_head = indices({1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0,  //
                                   0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1,  //
                                   0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1,  //
                                   1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0},
                                  {B * h, T, S});
  const std::vector<Case> cases = {
      {"self, no mask", false, true, {}, {}},
      {"self, batch first, no mask", true, true, {}, {}},
      {"self, key padding", false, true, tensor({0, 0, 1, 0, 1, 1}, {B, T}), {}},
      {"self, batch first, causal float mask", true, true, {}, generate_square_subsequent_mask(T, DType::F64)},
      {"self, int causal mask + key padding", false, true, indices({0, 0, 0, 0, 0, 1}, {B, T}), causal_ints(T)},
      {"self, fully masked row (batch 1 all padding)", true, true, tensor({0, 1, 0, 1, 1, 1}, {B, T}), causal_ints(T)},
      {"cross, float mask with -inf + key padding", false, false, tensor({0, 0, 0, 1, 1, 0, 0, 0}, {B, S}), float_mask},
      {"cross, batch first, per-head int mask with a fully masked row", true, false, {}, per_head},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    MultiheadAttention m(E, h, 0.0, true, c.batch_first);
    randomize(m, gen);
    const int64_t Sk = c.self ? T : S;
    const Variable q = leaf(c.batch_first ? Shape{B, T, E} : Shape{T, B, E}, gen);
    const Variable k = c.self ? q : leaf(c.batch_first ? Shape{B, Sk, E} : Shape{Sk, B, E}, gen);
    const Variable v = c.self ? q : leaf(k.shape(), gen);
    std::vector<Variable> inputs = m.parameters();
    inputs.push_back(q);
    if (!c.self) inputs.insert(inputs.end(), {k, v});
    auto f = [&] {
      const MultiheadAttentionOutput o = m(q, k, v, c.kpm, c.attn_mask, true, false);
      return sum(o.output * o.output) + sum(o.weights * o.weights);
    };
    expect_gradcheck(gradcheck(f, inputs), c.name);
  }
  report_gradcheck("MultiheadAttention");
}

TEST_CASE("MultiheadAttention errors name the layer and the shapes") {
  Generator gen(7);
  CHECK_THROWS_WITH_AS(MultiheadAttention(10, 3),
                       doctest::Contains("MultiheadAttention: embed_dim 10 is not divisible by num_heads 3"), Error);
  CHECK_THROWS_WITH_AS(MultiheadAttention(8, 0),
                       doctest::Contains("MultiheadAttention: embed_dim and num_heads must be positive"), Error);
  CHECK_THROWS_WITH_AS(MultiheadAttention(8, 2, 1.5),
                       doctest::Contains("MultiheadAttention: dropout must be in [0, 1], got 1.5"), Error);
  MultiheadAttention m(8, 2);
  const Variable x(randn({5, 3, 8}, gen));
  CHECK_THROWS_WITH_AS(m(Variable(randn({5, 3, 6}, gen)), x, x),
                       doctest::Contains("MultiheadAttention: query [5,3,6] must be [T,B,E] with E = embed_dim = 8"),
                       Error);
  CHECK_THROWS_WITH_AS(m(Variable(randn({5, 8}, gen)), x, x),
                       doctest::Contains("MultiheadAttention: query [5,8] must be [T,B,E]"), Error);
  CHECK_THROWS_WITH_AS(m(x, Variable(randn({4, 3, 7}, gen)), x),
                       doctest::Contains("MultiheadAttention: key [4,3,7] must be [S,B,E] with E = embed_dim = 8"),
                       Error);
  CHECK_THROWS_WITH_AS(m(x, x, Variable(randn({4, 3, 8}, gen))),
                       doctest::Contains("MultiheadAttention: key [5,3,8] and value [4,3,8] must have the same shape"),
                       Error);
  const Variable other_batch(randn({5, 2, 8}, gen));
  CHECK_THROWS_WITH_AS(
      m(x, other_batch, other_batch),
      doctest::Contains("MultiheadAttention: query [5,3,8] and key [5,2,8] have different batch sizes"), Error);
  CHECK_THROWS_WITH_AS(m(x, x, x, ones({5, 3})),
                       doctest::Contains("MultiheadAttention: key_padding_mask [5,3] must be [B,S] = [3,5]"), Error);
  CHECK_THROWS_WITH_AS(
      m(x, x, x, {}, ones({5, 4})),
      doctest::Contains("MultiheadAttention: attn_mask [5,4] must be [T,S] = [5,5] or [B*h,T,S] = [6,5,5]"), Error);
  CHECK_THROWS_WITH_AS(m(x, x, x, {}, ones({3, 5, 5})), doctest::Contains("attn_mask [3,5,5] must be"), Error);
  CHECK_THROWS_WITH_AS(m(x, x, x, {}, full({5, 5}, std::nan(""))),
                       doctest::Contains("MultiheadAttention: the floating point attn_mask [5,5] holds nan"), Error);
  CHECK_THROWS_WITH_AS(m(x, x, x, {}, full({5, 5}, kInf)),
                       doctest::Contains("attn_mask [5,5] holds inf (only finite values and -inf are allowed)"), Error);
  const Variable x64(randn({5, 3, 8}, gen, DType::F64));
  CHECK_THROWS_WITH_AS(
      m(x64, x64, x64),
      doctest::Contains("MultiheadAttention: inputs are float64, float64, float64 but the parameters are float32"),
      Error);
  MultiheadAttention bf(8, 2, 0.0, true, true);
  CHECK_THROWS_WITH_AS(bf(Variable(randn({3, 5, 4}, gen)), x, x), doctest::Contains("query [3,5,4] must be [B,T,E]"),
                       Error);
}

// ---- positional encodings -----------------------------------------------------------------

TEST_CASE("MultiheadAttention: Bool masks as in PyTorch; a 0/1 float attn_mask is refused, not added") {
  Generator gen(11);
  MultiheadAttention m(8, 2);
  const Variable x(randn({4, 2, 8}, gen));
  // causal: Bool true = not allowed, the same mask as the additive 0 / -inf one
  const Tensor additive = generate_square_subsequent_mask(4);
  const Tensor blocked = lt(additive, 0.0);
  REQUIRE(blocked.dtype() == DType::Bool);
  const Tensor want = m(x, x, x, {}, additive).output.data();
  CHECK(allclose(m(x, x, x, {}, blocked).output.data(), want, 1e-6, 1e-7));
  CHECK(allclose(m(x, x, x, {}, blocked.to(DType::I64)).output.data(), want, 1e-6, 1e-7));
  // key padding: Bool true = ignore this key
  const Tensor pad = tensor({0, 0, 0, 1, 0, 0, 1, 1}, {2, 4});
  CHECK(allclose(m(x, x, x, ne(pad, 0.0)).output.data(), m(x, x, x, pad.to(DType::I64)).output.data(), 0, 0));
  const MultiheadAttentionOutput o = m(x, x, x, ne(pad, 0.0), blocked, true, true);
  const Vec w = o.weights.data().to_vector();  // [B,T,S]
  CHECK(w[0 * 16 + 3 * 4 + 3] == 0.0);  // batch 0, query 3 may not see the padded key 3
  CHECK(w[1 * 16 + 3 * 4 + 2] == 0.0);  // batch 1, keys 2 and 3 are padding
  CHECK(w[0 * 16 + 0 * 4 + 1] == 0.0);  // causal
  // the float 0/1 mask a user meant as "1 = not allowed" would block nothing if added
  CHECK_THROWS_WITH_AS(m(x, x, x, {}, blocked.to(DType::F32)),
                       doctest::Contains("MultiheadAttention: the floating point attn_mask [4,4] holds only 0 and 1"),
                       Error);
  // other additive masks (a bias) are still taken
  CHECK_NOTHROW(m(x, x, x, {}, full({4, 4}, 0.5)));
}

TEST_CASE("sinusoidal table and the causal mask have the published values") {
  const Tensor pe = sinusoidal_positional_encoding(50, 6, DType::F64);
  CHECK(pe.shape() == Shape{50, 6});
  for (int64_t j = 0; j < 6; ++j) CHECK(pe.at({0, j}) == (j % 2 == 0 ? 0.0 : 1.0));
  for (int64_t t : {1, 7, 49}) {
    const double td = static_cast<double>(t);
    for (int64_t i = 0; i < 3; ++i) {
      const double angle = td / std::pow(10000.0, 2.0 * static_cast<double>(i) / 6.0);
      CHECK(pe.at({t, 2 * i}) == doctest::Approx(std::sin(angle)).epsilon(1e-12));
      CHECK(pe.at({t, 2 * i + 1}) == doctest::Approx(std::cos(angle)).epsilon(1e-12));
    }
  }
  const Tensor odd = sinusoidal_positional_encoding(4, 5, DType::F64);  // last column a sine
  CHECK(odd.at({3, 4}) == doctest::Approx(std::sin(3.0 / std::pow(10000.0, 4.0 / 5.0))));
  CHECK(sinusoidal_positional_encoding(3, 4).dtype() == DType::F32);

  const Tensor causal = generate_square_subsequent_mask(3);
  CHECK(causal.dtype() == DType::F32);
  const Vec c = causal.to_vector();
  CHECK(c == Vec{0, -kInf, -kInf, 0, 0, -kInf, 0, 0, 0});
  CHECK_THROWS_WITH_AS(generate_square_subsequent_mask(0),
                       doctest::Contains("generate_square_subsequent_mask: T must be positive"), Error);
}

TEST_CASE("positional encodings add pe[:T] in both layouts; the learned one trains rows < T only") {
  Generator gen(8);
  manual_seed(8);
  SinusoidalPositionalEncoding sin_pe(4, 10);
  SinusoidalPositionalEncoding sin_bf(4, 10, 0.0, true);
  CHECK(keys(sin_pe).empty());
  const Tensor table = sinusoidal_positional_encoding(3, 4, DType::F64);
  const Variable x = leaf({3, 2, 4}, gen);  // [T,B,E]
  const Tensor y = sin_pe(x).data();
  const Tensor y_bf = sin_bf(Variable(transpose(x.data(), 0, 1))).data();
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t e = 0; e < 4; ++e) {
        CHECK(y.at({t, b, e}) == doctest::Approx(x.data().at({t, b, e}) + table.at({t, e})).epsilon(1e-15));
        CHECK(y_bf.at({b, t, e}) == y.at({t, b, e}));
      }
  CHECK(sin_pe(Variable(randn({3, 2, 4}, gen))).dtype() == DType::F32);

  LearnedPositionalEncoding learned(4, 6, 0.0, true);
  CHECK(keys(learned) == Names{"weight"});
  CHECK(learned.weight.shape() == Shape{6, 4});
  learned.to(DType::F64);
  const Variable xb = leaf({2, 3, 4}, gen);  // [B,T,E]
  const Variable out = learned(xb);
  CHECK(max_diff(out.data(), xb.data() + narrow(learned.weight.data(), 0, 0, 3)) == 0.0);
  sum(out).backward();
  const Tensor g = learned.weight.grad();  // rows < 3 get B = 2 each, the rest 0
  for (int64_t t = 0; t < 6; ++t) CHECK(g.at({t, 1}) == (t < 3 ? 2.0 : 0.0));
  expect_gradcheck(gradcheck([&] { return learned(xb); }, {learned.weight, xb}), "LearnedPositionalEncoding");
  report_gradcheck("LearnedPositionalEncoding");

  CHECK_THROWS_WITH_AS(
      sin_pe(Variable(randn({11, 2, 4}, gen))),
      doctest::Contains("SinusoidalPositionalEncoding: input [11,2,4] has 11 steps, more than max_len 10"), Error);
  CHECK_THROWS_WITH_AS(learned(Variable(randn({2, 7, 4}, gen, DType::F64))),
                       doctest::Contains("LearnedPositionalEncoding: input [2,7,4] has 7 steps, more than max_len 6"),
                       Error);
  CHECK_THROWS_WITH_AS(
      learned(Variable(randn({2, 3, 5}, gen, DType::F64))),
      doctest::Contains("LearnedPositionalEncoding: input [2,3,5] must be [B,T,E] with E = d_model = 4"), Error);
}

// ---- encoder layer, encoder, language model -------------------------------------------------

TEST_CASE("TransformerEncoderLayer / TransformerEncoder / TransformerLM: PyTorch's state_dict keys") {
  manual_seed(9);
  TransformerEncoderLayer layer({.d_model = 8, .nhead = 2, .dim_feedforward = 16});
  const Names layer_keys = {"self_attn.in_proj_weight",
                            "self_attn.in_proj_bias",
                            "self_attn.out_proj.weight",
                            "self_attn.out_proj.bias",
                            "linear1.weight",
                            "linear1.bias",
                            "linear2.weight",
                            "linear2.bias",
                            "norm1.weight",
                            "norm1.bias",
                            "norm2.weight",
                            "norm2.bias"};
  CHECK(keys(layer) == layer_keys);
  CHECK(layer.linear1->weight.shape() == Shape{16, 8});
  CHECK(layer.linear2->weight.shape() == Shape{8, 16});

  TransformerEncoder encoder({.d_model = 8, .nhead = 2, .dim_feedforward = 16}, 2, true);
  Names want;
  for (const std::string prefix : {"layers.0.", "layers.1."})
    for (const std::string& k : layer_keys) want.push_back(prefix + k);
  want.insert(want.end(), {"norm.weight", "norm.bias"});
  CHECK(keys(encoder) == want);
  CHECK(encoder.layers.size() == 2);
  CHECK(max_diff(encoder.layers[0]->linear1->weight.data(), encoder.layers[1]->linear1->weight.data()) > 0.0);
  TransformerEncoder no_norm({.d_model = 8, .nhead = 2, .dim_feedforward = 16}, 1);
  CHECK(keys(no_norm).size() == layer_keys.size());
  CHECK(no_norm.norm == nullptr);

  TransformerLM lm({.vocab_size = 5, .d_model = 8, .nhead = 2, .num_layers = 1, .dim_feedforward = 16, .max_len = 6});
  Names lm_want = {"embedding.weight", "pos.weight"};
  for (const std::string& k : layer_keys) lm_want.push_back("encoder.layers.0." + k);
  lm_want.insert(lm_want.end(), {"encoder.norm.weight", "encoder.norm.bias", "head.weight", "head.bias"});
  CHECK(keys(lm) == lm_want);
  TransformerLM lm_sin({.vocab_size = 5,
                        .d_model = 8,
                        .nhead = 2,
                        .num_layers = 1,
                        .dim_feedforward = 16,
                        .max_len = 6,
                        .learned_positions = false});
  CHECK(keys(lm_sin).size() == lm_want.size() - 1);
  CHECK(keys(lm_sin)[1] == "encoder.layers.0.self_attn.in_proj_weight");
}

TEST_CASE("TransformerEncoderLayer: post-norm and pre-norm equations, relu and gelu, keep_attention") {
  Generator gen(10);
  manual_seed(10);
  for (const bool norm_first : {false, true})
    for (const Activation act : {Activation::Relu, Activation::Gelu}) {
      CAPTURE(norm_first);
      TransformerEncoderLayer layer({.d_model = 4,
                                     .nhead = 2,
                                     .dim_feedforward = 6,
                                     .dropout = 0.0,
                                     .activation = act,
                                     .norm_first = norm_first});
      randomize(layer, gen);
      const Variable x = leaf({3, 2, 4}, gen);
      const Tensor kpm = tensor({0, 0, 1, 0, 0, 0}, {2, 3});
      const Tensor causal = generate_square_subsequent_mask(3, DType::F64);
      layer.keep_attention = true;
      const Tensor y = layer(x, causal, kpm).data();
      // The same equations written out with the submodules and the reference attention.
      auto sa = [&](const Tensor& in) { return reference(*layer.self_attn, in, in, in, kpm, causal).output; };
      auto ff = [&](const Tensor& in) {
        const Tensor pre = layer.linear1->forward(Variable(in)).data();
        const Tensor a = act == Activation::Relu ? relu(pre) : gelu(Variable(pre)).data();
        return layer.linear2->forward(Variable(a)).data();
      };
      auto n1 = [&](const Tensor& in) { return layer.norm1->forward(Variable(in)).data(); };
      auto n2 = [&](const Tensor& in) { return layer.norm2->forward(Variable(in)).data(); };
      Tensor want = x.data();
      if (norm_first) {
        want = want + sa(n1(want));
        want = want + ff(n2(want));
      } else {
        want = n1(want + sa(want));
        want = n2(want + ff(want));
      }
      CHECK(max_diff(y, want) < 1e-12);
      // keep_attention: the per-head weights [B,h,T,S] of the last call, a plain tensor
      const Tensor in1 = norm_first ? n1(x.data()) : x.data();
      CHECK(layer.last_attention.shape() == Shape{2, 2, 3, 3});
      CHECK(max_diff(layer.last_attention, reference(*layer.self_attn, in1, in1, in1, kpm, causal).weights) < 1e-12);
    }
  TransformerEncoderLayer layer({.d_model = 4, .nhead = 2});
  CHECK_THROWS_WITH_AS(layer(Variable(randn({3, 2, 5}, gen))),
                       doctest::Contains("TransformerEncoderLayer: src [3,2,5] must be [T,B,E] with E = d_model = 4"),
                       Error);
  CHECK_THROWS_WITH_AS(TransformerEncoderLayer({.d_model = 6, .nhead = 4}),
                       doctest::Contains("TransformerEncoderLayer: d_model 6 is not divisible by nhead 4"), Error);
  CHECK_THROWS_WITH_AS(layer(Variable(randn({3, 2, 4}, gen)), ones({2, 3})),
                       doctest::Contains("MultiheadAttention: attn_mask [2,3] must be [T,S] = [3,3]"), Error);
}

TEST_CASE("TransformerEncoderLayer: dropout layers act in training mode only") {
  Generator gen(11);
  manual_seed(11);
  TransformerEncoder enc({.d_model = 8, .nhead = 2, .dim_feedforward = 16, .dropout = 0.3}, 2, true);
  const Variable x(randn({4, 2, 8}, gen));
  enc.eval();
  const Tensor e1 = enc(x).data(), e2 = enc(x).data();
  CHECK(max_diff(e1, e2) == 0.0);
  // eval output = the layers applied one after the other, then the final norm
  Variable manual = x;
  for (const auto& l : enc.layers) manual = (*l)(manual);
  CHECK(max_diff(enc.norm->forward(manual).data(), e1) == 0.0);
  enc.train();
  const Tensor t1 = enc(x).data(), t2 = enc(x).data();
  CHECK(max_diff(t1, e1) > 1e-3);
  CHECK(max_diff(t1, t2) > 1e-3);
}

TEST_CASE("gradcheck: TransformerEncoderLayer pre- and post-norm, relu and gelu, with masks") {
  Generator gen(12);
  manual_seed(12);
  for (const bool norm_first : {false, true})
    for (const Activation act : {Activation::Relu, Activation::Gelu})
      for (const bool batch_first : {false, true}) {
        CAPTURE(norm_first);
        CAPTURE(batch_first);
        CAPTURE(act == Activation::Gelu);
        TransformerEncoderLayer layer({.d_model = 4,
                                       .nhead = 2,
                                       .dim_feedforward = 6,
                                       .dropout = 0.0,
                                       .activation = act,
                                       .batch_first = batch_first,
                                       .norm_first = norm_first});
        randomize(layer, gen);
        const Variable x = leaf(batch_first ? Shape{2, 3, 4} : Shape{3, 2, 4}, gen);
        const Tensor kpm = tensor({0, 0, 1, 0, 0, 0}, {2, 3});
        const Tensor causal = generate_square_subsequent_mask(3, DType::F64);
        std::vector<Variable> inputs = layer.parameters();
        inputs.push_back(x);
        expect_gradcheck(gradcheck([&] { return layer(x, causal, kpm); }, inputs), "TransformerEncoderLayer");
      }
  report_gradcheck("TransformerEncoderLayer");
}

TEST_CASE("TransformerLM: logits at t depend on tokens 0..t only; gradcheck; errors") {
  manual_seed(13);
  Generator gen(13);
  for (const bool learned : {true, false}) {
    CAPTURE(learned);
    TransformerLM lm({.vocab_size = 7,
                      .d_model = 8,
                      .nhead = 2,
                      .num_layers = 2,
                      .dim_feedforward = 16,
                      .max_len = 8,
                      .learned_positions = learned});
    const Tensor tokens = indices({1, 4, 2, 6, 0, 3, 5, 5, 2, 1}, {2, 5});
    const Tensor logits = lm(tokens).data();
    CHECK(logits.shape() == Shape{2, 5, 7});
    for (int64_t changed = 0; changed < 5; ++changed) {
      Tensor other = tokens.clone();
      other.data<int64_t>()[changed] = (other.data<int64_t>()[changed] + 3) % 7;  // batch 0, step `changed`
      const Tensor l2 = lm(other).data();
      for (int64_t t = 0; t < 5; ++t) {
        const double d = max_diff(narrow(narrow(l2, 0, 0, 1), 1, t, 1), narrow(narrow(logits, 0, 0, 1), 1, t, 1));
        if (t < changed)
          CHECK(d == 0.0);
        else
          CHECK(d > 1e-6);
      }
      CHECK(max_diff(narrow(l2, 0, 1, 1), narrow(logits, 0, 1, 1)) == 0.0);  // batch 1 untouched
    }
  }

  TransformerLM tiny({.vocab_size = 4, .d_model = 4, .nhead = 2, .num_layers = 2, .dim_feedforward = 6, .max_len = 4});
  randomize(tiny, gen);
  const Tensor tokens = indices({0, 3, 1, 2, 2, 2, 0, 1}, {2, 4});
  const Tensor targets = indices({3, 1, 2, 0, 2, 0, 1, 3});
  expect_gradcheck(gradcheck(
                       [&] {
                         return cross_entropy(reshape(tiny(tokens), {8, 4}), targets);
                       },
                       tiny.parameters()),
                   "TransformerLM");
  report_gradcheck("TransformerLM");

  CHECK_THROWS_WITH_AS(tiny(tensor({1, 2}, {1, 2})),
                       doctest::Contains("TransformerLM: tokens must be int64 [B,T], got float32 [1,2]"), Error);
  CHECK_THROWS_WITH_AS(tiny(indices({0, 1, 2, 3, 0}, {1, 5})),
                       doctest::Contains("TransformerLM: tokens [1,5] must have 1..max_len = 4 steps"), Error);
  CHECK_THROWS_WITH_AS(tiny(indices({0, 4}, {1, 2})),
                       doctest::Contains("TransformerLM: token 4 at position 1 of [1,2] is outside 0..3"), Error);
  CHECK_THROWS_WITH_AS(TransformerEncoder({.d_model = 4, .nhead = 2}, 0),
                       doctest::Contains("TransformerEncoder: num_layers must be positive, got 0"), Error);
}

TEST_CASE("TransformerLM learns a repeating sequence in a few hundred Adam steps") {
  manual_seed(14);
  const auto start = std::chrono::steady_clock::now();
  TransformerLM lm({.vocab_size = 5, .d_model = 16, .nhead = 2, .num_layers = 1, .dim_feedforward = 32, .max_len = 12});
  // 4 phases of 0 1 2 3 4 0 1 2 ...: inputs are steps 0..10, targets steps 1..11
  std::vector<int64_t> in, out;
  for (int64_t b = 0; b < 4; ++b)
    for (int64_t t = 0; t < 11; ++t) {
      in.push_back((b + t) % 5);
      out.push_back((b + t + 1) % 5);
    }
  const Tensor tokens = indices(in, {4, 11}), targets = indices(out);
  optim::Adam opt(lm.parameters(), 1e-2);
  double first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    opt.zero_grad();
    Variable loss = cross_entropy(reshape(lm(tokens), {44, 5}), targets);
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("TransformerLM: loss ", first, " -> ", last, " in 200 steps, ", seconds, " s");
  CHECK(first > 1.0);
  CHECK(last < first / 50);
  CHECK(seconds < 2.0);
}
