// Attention: masked softmax, dot-product / scaled / general / additive attention against
// plain-loop reference values, masks (padding, causal, fully masked rows), the one-step
// [B,D] query form, float64 gradient checks of every variant, and the shape errors.
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace unroll;

namespace {

using Vec = std::vector<double>;

Variable leaf(const Shape& s, Generator& gen) { return Variable(randn(s, gen, DType::F64), true); }

double max_abs_diff(const Tensor& got, const Vec& want) {
  const Vec g = got.to_vector();
  REQUIRE(g.size() == want.size());
  double d = 0;
  for (size_t i = 0; i < g.size(); ++i) d = std::max(d, std::abs(g[i] - want[i]));
  return d;
}

bool all_finite(const Tensor& t) {
  const Vec v = t.to_vector();
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// A causal mask [1,T,T]: step i attends to steps j <= i.
Tensor causal_mask(int64_t T) {
  Vec m(static_cast<size_t>(T * T));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) m[static_cast<size_t>(i * T + j)] = j <= i ? 1.0 : 0.0;
  return tensor(m, {1, T, T});
}

// ---- reference attention, written as plain loops over doubles ---------------------------

struct Dims {
  int64_t B, Tq, Tk, Dv;
};

// keep [B,Tq,Tk] (1 = attend) from a mask [B,Tk], [B|1,Tq,Tk] or none.
Vec expand_mask(const Tensor& mask, const Dims& d) {
  Vec keep(static_cast<size_t>(d.B * d.Tq * d.Tk), 1.0);
  if (!mask.defined()) return keep;
  const Vec m = mask.to_vector();
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t i = 0; i < d.Tq; ++i)
      for (int64_t j = 0; j < d.Tk; ++j) {
        size_t src = 0;
        if (mask.ndim() == 2) src = static_cast<size_t>(b * d.Tk + j);
        else src = static_cast<size_t>(((mask.size(0) == 1 ? 0 : b) * d.Tq + i) * d.Tk + j);
        keep[static_cast<size_t>((b * d.Tq + i) * d.Tk + j)] = m[src] != 0 ? 1.0 : 0.0;
      }
  return keep;
}

struct Ref {
  Vec context;  // [B,Tq,Dv]
  Vec weights;  // [B,Tq,Tk]
};

// weights = softmax over unmasked keys (all zero if none), context = weights values.
Ref ref_attend(const Vec& scores, const Vec& keep, const Tensor& values, const Dims& d) {
  const Vec v = values.to_vector();
  Ref r{Vec(static_cast<size_t>(d.B * d.Tq * d.Dv), 0.0), Vec(scores.size(), 0.0)};
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t i = 0; i < d.Tq; ++i) {
      const size_t row = static_cast<size_t>((b * d.Tq + i) * d.Tk);
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < d.Tk; ++j)
        if (keep[row + j] != 0) mx = std::max(mx, scores[row + j]);
      double total = 0;
      for (int64_t j = 0; j < d.Tk; ++j)
        if (keep[row + j] != 0) total += std::exp(scores[row + j] - mx);
      for (int64_t j = 0; j < d.Tk; ++j) {
        const double w = keep[row + j] != 0 ? std::exp(scores[row + j] - mx) / total : 0.0;
        r.weights[row + j] = w;
        for (int64_t c = 0; c < d.Dv; ++c)
          r.context[static_cast<size_t>((b * d.Tq + i) * d.Dv + c)] +=
              w * v[static_cast<size_t>((b * d.Tk + j) * d.Dv + c)];
      }
    }
  return r;
}

// scores[b,i,j] = scale * sum_c q[b,i,c] k[b,j,c]
Vec ref_dot_scores(const Tensor& q, const Tensor& k, const Dims& d, double scale) {
  const Vec qv = q.to_vector(), kv = k.to_vector();
  const int64_t D = k.size(2);
  Vec s(static_cast<size_t>(d.B * d.Tq * d.Tk));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t i = 0; i < d.Tq; ++i)
      for (int64_t j = 0; j < d.Tk; ++j) {
        double acc = 0;
        for (int64_t c = 0; c < D; ++c)
          acc += qv[static_cast<size_t>((b * d.Tq + i) * D + c)] * kv[static_cast<size_t>((b * d.Tk + j) * D + c)];
        s[static_cast<size_t>((b * d.Tq + i) * d.Tk + j)] = scale * acc;
      }
  return s;
}

// scores[b,i,j] = sum_{x,y} q[b,i,x] W[x,y] k[b,j,y]
Vec ref_general_scores(const Tensor& q, const Tensor& W, const Tensor& k, const Dims& d) {
  const Vec qv = q.to_vector(), wv = W.to_vector(), kv = k.to_vector();
  const int64_t Dq = W.size(0), Dk = W.size(1);
  Vec s(static_cast<size_t>(d.B * d.Tq * d.Tk));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t i = 0; i < d.Tq; ++i)
      for (int64_t j = 0; j < d.Tk; ++j) {
        double acc = 0;
        for (int64_t x = 0; x < Dq; ++x)
          for (int64_t y = 0; y < Dk; ++y)
            acc += qv[static_cast<size_t>((b * d.Tq + i) * Dq + x)] * wv[static_cast<size_t>(x * Dk + y)] *
                   kv[static_cast<size_t>((b * d.Tk + j) * Dk + y)];
        s[static_cast<size_t>((b * d.Tq + i) * d.Tk + j)] = acc;
      }
  return s;
}

// scores[b,i,j] = sum_a v[a] tanh(sum_x Wq[a,x] q[b,i,x] + sum_y Wk[a,y] k[b,j,y])
Vec ref_additive_scores(const Tensor& q, const Tensor& Wq, const Tensor& Wk, const Tensor& v, const Tensor& k,
                        const Dims& d) {
  const Vec qv = q.to_vector(), wq = Wq.to_vector(), wk = Wk.to_vector(), vv = v.to_vector(), kv = k.to_vector();
  const int64_t A = Wq.size(0), Dq = Wq.size(1), Dk = Wk.size(1);
  Vec s(static_cast<size_t>(d.B * d.Tq * d.Tk));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t i = 0; i < d.Tq; ++i)
      for (int64_t j = 0; j < d.Tk; ++j) {
        double acc = 0;
        for (int64_t a = 0; a < A; ++a) {
          double pre = 0;
          for (int64_t x = 0; x < Dq; ++x)
            pre += wq[static_cast<size_t>(a * Dq + x)] * qv[static_cast<size_t>((b * d.Tq + i) * Dq + x)];
          for (int64_t y = 0; y < Dk; ++y)
            pre += wk[static_cast<size_t>(a * Dk + y)] * kv[static_cast<size_t>((b * d.Tk + j) * Dk + y)];
          acc += vv[static_cast<size_t>(a)] * std::tanh(pre);
        }
        s[static_cast<size_t>((b * d.Tq + i) * d.Tk + j)] = acc;
      }
  return s;
}

// A padding mask [2,4]: batch 0 sees 3 keys, batch 1 sees 2.
Tensor padding_mask() { return tensor({1, 1, 1, 0, 1, 1, 0, 0}, {2, 4}); }

}  // namespace

TEST_CASE("masked_softmax: masked positions are exactly 0, rows sum to 1, fully masked rows are all 0") {
  Generator gen(1);
  Variable s = leaf({2, 3, 4}, gen);
  const Tensor mask = tensor({1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1}, {2, 3, 4});
  const Variable w = masked_softmax(s, mask);
  REQUIRE(w.shape() == Shape{2, 3, 4});
  const Vec m = mask.to_vector(), wv = w.data().to_vector();
  for (size_t row = 0; row < 6; ++row) {
    double total = 0;
    bool any = false;
    for (size_t j = 0; j < 4; ++j) {
      const size_t at = row * 4 + j;
      if (m[at] == 0) CHECK(wv[at] == 0.0);
      any = any || m[at] != 0;
      total += wv[at];
    }
    CHECK(total == doctest::Approx(any ? 1.0 : 0.0).epsilon(1e-14));
  }
  const Ref want = ref_attend(s.data().to_vector(), m, zeros({2, 4, 1}, DType::F64), {2, 3, 4, 1});
  CHECK(max_abs_diff(w.data(), want.weights) < 1e-15);

  // The fully masked row (row 1) sends an exactly zero, finite gradient to its scores.
  sum(w * Variable(randn({2, 3, 4}, gen, DType::F64))).backward();
  REQUIRE(all_finite(s.grad()));
  for (int64_t j = 0; j < 4; ++j) CHECK(s.grad().at({0, 1, j}) == 0.0);
  CHECK(s.grad().at({0, 0, 1}) == 0.0);  // a masked position
  CHECK(s.grad().at({0, 0, 0}) != 0.0);  // an unmasked one
}

TEST_CASE("masked_softmax: broadcast masks, other axes, mask dtypes, no mask, extreme scores") {
  Generator gen(2);
  const Variable s = leaf({2, 3, 4}, gen);
  const Tensor key_mask = tensor({1, 1, 0, 1, 0, 1, 1, 1}, {2, 1, 4});
  const Variable w = masked_softmax(s, key_mask);
  const Tensor full = broadcast_to(key_mask, {2, 3, 4});
  CHECK(equal(w.data(), masked_softmax(s, full).data()));
  const std::vector<int64_t> key_ids{1, 1, 0, 1, 0, 1, 1, 1};
  CHECK(equal(w.data(), masked_softmax(s, indices(key_ids, {2, 1, 4})).data()));
  CHECK(equal(w.data(), masked_softmax(s, key_mask.to(DType::F64)).data()));

  // Along axis 1, a mask [3,1] drops the middle entry of every column.
  const Variable w1 = masked_softmax(s, tensor({1, 0, 1}, {3, 1}), 1);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t j = 0; j < 4; ++j) {
      CHECK(w1.data().at({b, 1, j}) == 0.0);
      const double e0 = std::exp(s.data().at({b, 0, j})), e2 = std::exp(s.data().at({b, 2, j}));
      CHECK(w1.data().at({b, 0, j}) == doctest::Approx(e0 / (e0 + e2)).epsilon(1e-14));
    }

  CHECK(allclose(masked_softmax(s, Tensor()).data(), softmax(s.data(), -1), 0, 1e-15));
  CHECK(allclose(masked_softmax(s, ones({2, 3, 4})).data(), softmax(s.data(), -1), 0, 1e-15));

  // float32: hugely negative unmasked scores still normalise, and masked values, even inf
  // or NaN, are ignored.
  const float inf = std::numeric_limits<float>::infinity();
  const Variable big(tensor({-1000, -1001, inf, std::nan(""), 3e38, -3e38}, {1, 6}));
  const Variable wb = masked_softmax(big, tensor({1, 1, 0, 0, 0, 1}, {1, 6}));
  REQUIRE(all_finite(wb.data()));
  const double e1 = std::exp(-1.0);
  CHECK(wb.data().at({0, 0}) == doctest::Approx(1.0 / (1.0 + e1)).epsilon(1e-6));
  CHECK(wb.data().at({0, 1}) == doctest::Approx(e1 / (1.0 + e1)).epsilon(1e-6));
  for (int64_t j = 2; j < 6; ++j) CHECK(wb.data().at({0, j}) == 0.0);
}

TEST_CASE("dot_product_attention matches hand-computed attention, with and without scale and masks") {
  Generator gen(3);
  const Dims d{2, 3, 4, 2};
  const Variable q = leaf({2, 3, 5}, gen), k = leaf({2, 4, 5}, gen), v = leaf({2, 4, 2}, gen);
  const Tensor shifted_causal = tensor({1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1}, {1, 3, 4});  // query i sees keys <= i+1
  for (const Tensor& mask : {Tensor(), padding_mask(), shifted_causal}) {
    for (const std::optional<double> scale : {std::optional<double>(), std::optional<double>(0.3)}) {
      CAPTURE(mask.defined());
      CAPTURE(scale.value_or(1.0));
      const AttentionResult r = dot_product_attention(q, k, v, mask, scale);
      REQUIRE(r.context.shape() == Shape{2, 3, 2});
      REQUIRE(r.weights.shape() == Shape{2, 3, 4});
      const Ref want = ref_attend(ref_dot_scores(q.data(), k.data(), d, scale.value_or(1.0)), expand_mask(mask, d),
                                  v.data(), d);
      CHECK(max_abs_diff(r.weights.data(), want.weights) < 1e-14);
      CHECK(max_abs_diff(r.context.data(), want.context) < 1e-14);
    }
  }
  // The padding mask zeroes key 3 of batch 0 and keys 2, 3 of batch 1 in every query row.
  const AttentionResult r = dot_product_attention(q, k, v, padding_mask());
  for (int64_t i = 0; i < 3; ++i) {
    CHECK(r.weights.data().at({0, i, 3}) == 0.0);
    CHECK(r.weights.data().at({1, i, 2}) == 0.0);
    CHECK(r.weights.data().at({1, i, 3}) == 0.0);
    CHECK(r.weights.data().at({0, i, 0}) + r.weights.data().at({0, i, 1}) + r.weights.data().at({0, i, 2}) ==
          doctest::Approx(1.0).epsilon(1e-14));
  }
}

TEST_CASE("scaled_dot_product_attention scales by 1/sqrt(D)") {
  Generator gen(4);
  const Dims d{2, 3, 4, 3};
  const Variable q = leaf({2, 3, 6}, gen), k = leaf({2, 4, 6}, gen), v = leaf({2, 4, 3}, gen);
  const AttentionResult r = scaled_dot_product_attention(q, k, v, padding_mask());
  const Ref want = ref_attend(ref_dot_scores(q.data(), k.data(), d, 1.0 / std::sqrt(6.0)),
                              expand_mask(padding_mask(), d), v.data(), d);
  CHECK(max_abs_diff(r.weights.data(), want.weights) < 1e-14);
  CHECK(max_abs_diff(r.context.data(), want.context) < 1e-14);
  const AttentionResult unscaled = dot_product_attention(q, k, v, padding_mask());
  CHECK(max_abs_diff(r.weights.data(), unscaled.weights.data().to_vector()) > 1e-3);
}

TEST_CASE("causal self-attention: step i sees only steps <= i") {
  Generator gen(5);
  const int64_t T = 4;
  const Variable x = leaf({2, T, 3}, gen);
  const Tensor causal = causal_mask(T);
  const AttentionResult r = scaled_dot_product_attention(x, x, x, causal);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t i = 0; i < T; ++i) {
      double total = 0;
      for (int64_t j = 0; j < T; ++j) {
        if (j > i) CHECK(r.weights.data().at({b, i, j}) == 0.0);
        else CHECK(r.weights.data().at({b, i, j}) > 0.0);
        total += r.weights.data().at({b, i, j});
      }
      CHECK(total == doctest::Approx(1.0).epsilon(1e-14));
    }
    // The first step can only attend to itself.
    CHECK(r.weights.data().at({b, 0, 0}) == 1.0);
    for (int64_t c = 0; c < 3; ++c) CHECK(r.context.data().at({b, 0, c}) == doctest::Approx(x.data().at({b, 0, c})));
  }
  // A batch-sized [B,T,T] mask gives the same result as the shared [1,T,T] one, and the
  // future keys get no gradient from the first step's context.
  CHECK(equal(r.context.data(), scaled_dot_product_attention(x, x, x, broadcast_to(causal, {2, T, T})).context.data()));
  const Variable k = leaf({2, T, 3}, gen), v = leaf({2, T, 3}, gen);
  sum(narrow(dot_product_attention(x, k, v, causal).context, 1, 0, 1)).backward();
  for (int64_t j = 1; j < T; ++j)
    for (int64_t c = 0; c < 3; ++c) {
      CHECK(k.grad().at({0, j, c}) == 0.0);
      CHECK(v.grad().at({0, j, c}) == 0.0);
    }
  CHECK(v.grad().at({0, 0, 0}) == doctest::Approx(1.0));
}

TEST_CASE("a fully masked row gives zero weights, zero context and finite gradients") {
  Generator gen(6);
  const Variable q = leaf({2, 3, 4}, gen), k = leaf({2, 5, 4}, gen), v = leaf({2, 5, 3}, gen);
  const Tensor mask = tensor({1, 0, 1, 1, 0, 0, 0, 0, 0, 0}, {2, 5});  // batch 1 sees nothing
  const AttentionResult r = scaled_dot_product_attention(q, k, v, mask);
  for (int64_t i = 0; i < 3; ++i) {
    for (int64_t j = 0; j < 5; ++j) CHECK(r.weights.data().at({1, i, j}) == 0.0);
    for (int64_t c = 0; c < 3; ++c) CHECK(r.context.data().at({1, i, c}) == 0.0);
  }
  (sum(r.context * r.context) + sum(r.weights * r.weights)).backward();
  for (const Variable* x : {&q, &k, &v}) {
    REQUIRE(x->grad().defined());
    CHECK(all_finite(x->grad()));
  }
  for (int64_t c = 0; c < 4; ++c) CHECK(q.grad().at({1, 0, c}) == 0.0);
  CHECK(q.grad().at({0, 0, 0}) != 0.0);

  // No intermediate value or gradient is inf or NaN, in float64 or float32.
  AnomalyModeGuard anomaly;
  CHECK_NOTHROW(sum(scaled_dot_product_attention(q, k, v, mask).context).backward());
  const Variable q32(randn({2, 3, 4}, gen), true), k32(randn({2, 5, 4}, gen)), v32(randn({2, 5, 3}, gen));
  CHECK_NOTHROW(sum(scaled_dot_product_attention(q32, k32, v32, mask).context).backward());
  CHECK(all_finite(q32.grad()));
}

TEST_CASE("GeneralAttention: q W k^T, its parameter, and the values") {
  manual_seed(7);
  GeneralAttention attn(3, 5);
  const auto named = attn.named_parameters();
  REQUIRE(named.size() == 1);
  CHECK(named[0].first == "weight");
  CHECK(attn.weight.shape() == Shape{3, 5});
  CHECK(attn.weight.dtype() == DType::F32);
  attn.to(DType::F64);

  Generator gen(7);
  const Dims d{2, 3, 4, 2};
  const Variable q = leaf({2, 3, 3}, gen), k = leaf({2, 4, 5}, gen), v = leaf({2, 4, 2}, gen);
  for (const Tensor& mask : {Tensor(), padding_mask()}) {
    const AttentionResult r = attn(q, k, v, mask);
    const Ref want = ref_attend(ref_general_scores(q.data(), attn.weight.data(), k.data(), d), expand_mask(mask, d),
                                v.data(), d);
    CHECK(max_abs_diff(r.weights.data(), want.weights) < 1e-14);
    CHECK(max_abs_diff(r.context.data(), want.context) < 1e-14);
  }
}

TEST_CASE("AdditiveAttention: v^T tanh(W_q q + W_k k), its parameters, and the values") {
  manual_seed(8);
  AdditiveAttention attn(3, 5, 4);
  const auto named = attn.named_parameters();
  REQUIRE(named.size() == 3);
  CHECK(named[0].first == "v");
  CHECK(named[1].first == "query_proj.weight");
  CHECK(named[2].first == "key_proj.weight");
  CHECK(attn.v.shape() == Shape{4});
  CHECK(attn.query_proj->weight.shape() == Shape{4, 3});
  CHECK(attn.key_proj->weight.shape() == Shape{4, 5});
  for (const double x : attn.v.data().to_vector()) CHECK(std::abs(x) <= 0.5);
  attn.to(DType::F64);

  Generator gen(8);
  const Dims d{2, 3, 4, 2};
  const Variable q = leaf({2, 3, 3}, gen), k = leaf({2, 4, 5}, gen), v = leaf({2, 4, 2}, gen);
  for (const Tensor& mask : {Tensor(), padding_mask()}) {
    const AttentionResult r = attn(q, k, v, mask);
    const Vec s = ref_additive_scores(q.data(), attn.query_proj->weight.data(), attn.key_proj->weight.data(),
                                      attn.v.data(), k.data(), d);
    const Ref want = ref_attend(s, expand_mask(mask, d), v.data(), d);
    CHECK(max_abs_diff(r.weights.data(), want.weights) < 1e-14);
    CHECK(max_abs_diff(r.context.data(), want.context) < 1e-14);
  }
}

TEST_CASE("the one-step [B,D] query gives [B,Dv] context and [B,Tk] weights, as with Tq = 1") {
  manual_seed(9);
  GeneralAttention general(4, 4);
  AdditiveAttention additive(4, 4, 3);
  general.to(DType::F64);
  additive.to(DType::F64);
  Generator gen(9);
  const Variable q = leaf({2, 4}, gen), k = leaf({2, 5, 4}, gen), v = leaf({2, 5, 3}, gen);
  const Variable q1 = unsqueeze(q, 1);
  const Tensor mask = tensor({1, 1, 0, 1, 0, 0, 1, 1, 1, 1}, {2, 5});
  const std::vector<std::pair<AttentionResult, AttentionResult>> cases = {
      {dot_product_attention(q, k, v, mask), dot_product_attention(q1, k, v, mask)},
      {scaled_dot_product_attention(q, k, v, mask), scaled_dot_product_attention(q1, k, v, mask)},
      {general(q, k, v, mask), general(q1, k, v, mask)},
      {additive(q, k, v, mask), additive(q1, k, v, mask)},
  };
  for (const auto& [step, seq] : cases) {
    CHECK(step.context.shape() == Shape{2, 3});
    CHECK(step.weights.shape() == Shape{2, 5});
    CHECK(equal(step.context.data(), seq.context.data().reshape({2, 3})));
    CHECK(equal(step.weights.data(), seq.weights.data().reshape({2, 5})));
    CHECK(step.weights.data().at({0, 2}) == 0.0);
  }
  // A full mask for one step is [B,1,Tk].
  CHECK(equal(dot_product_attention(q, k, v, mask.reshape({2, 1, 5})).context.data(),
              dot_product_attention(q, k, v, mask).context.data()));
  // The reference for the dot-product step.
  const Dims d{2, 1, 5, 3};
  const Ref want = ref_attend(ref_dot_scores(q.data(), k.data(), d, 1.0), expand_mask(mask, d), v.data(), d);
  CHECK(max_abs_diff(cases[0].first.context.data(), want.context) < 1e-14);
}

TEST_CASE("gradcheck: every variant, without a mask, with padding (incl. a fully masked row), causal") {
  Generator gen(10);
  manual_seed(10);
  GeneralAttention general(3, 3);
  AdditiveAttention additive(3, 3, 2);
  general.to(DType::F64);
  additive.to(DType::F64);
  const Variable q = leaf({2, 3, 3}, gen), k = leaf({2, 3, 3}, gen), v = leaf({2, 3, 2}, gen);
  const Variable q_step = leaf({2, 3}, gen);
  const std::vector<std::pair<std::string, Tensor>> masks = {
      {"none", Tensor()},
      {"padding", tensor({1, 0, 1, 1, 1, 0}, {2, 3})},
      {"fully masked batch 1", tensor({1, 1, 0, 0, 0, 0}, {2, 3})},
      {"causal", causal_mask(3)},
  };
  // Each result is checked through both outputs: context and weights.
  auto both = [](const AttentionResult& r) { return sum(r.context * r.context) + sum(r.weights * r.weights); };
  std::vector<Variable> general_inputs = general.parameters(), additive_inputs = additive.parameters();
  for (const Variable& x : {q, k, v}) {
    general_inputs.push_back(x);
    additive_inputs.push_back(x);
  }
  for (const auto& [name, mask] : masks) {
    CAPTURE(name);
    const Tensor m = mask;
    GradcheckResult r = gradcheck([&] { return both(dot_product_attention(q, k, v, m)); }, {q, k, v});
    CHECK_MESSAGE(r.ok, "dot_product_attention\n", r.summary());
    r = gradcheck([&] { return both(dot_product_attention(q, k, v, m, 0.7)); }, {q, k, v});
    CHECK_MESSAGE(r.ok, "dot_product_attention, scale 0.7\n", r.summary());
    r = gradcheck([&] { return both(scaled_dot_product_attention(q, k, v, m)); }, {q, k, v});
    CHECK_MESSAGE(r.ok, "scaled_dot_product_attention\n", r.summary());
    r = gradcheck([&] { return both(general(q, k, v, m)); }, general_inputs);
    CHECK_MESSAGE(r.ok, "GeneralAttention\n", r.summary());
    r = gradcheck([&] { return both(additive(q, k, v, m)); }, additive_inputs);
    CHECK_MESSAGE(r.ok, "AdditiveAttention\n", r.summary());
    const Tensor scores_mask = m.defined() && m.ndim() == 2 ? m.reshape({2, 1, 3}) : m;
    r = gradcheck([&] { return masked_softmax(matmul(q, k, false, true), scores_mask); }, {q, k});
    CHECK_MESSAGE(r.ok, "masked_softmax\n", r.summary());
    if (m.ndim() == 2) {  // one decoder step
      r = gradcheck([&] { return both(scaled_dot_product_attention(q_step, k, v, m)); }, {q_step, k, v});
      CHECK_MESSAGE(r.ok, "scaled_dot_product_attention, one step\n", r.summary());
      std::vector<Variable> inputs = additive.parameters();
      inputs.insert(inputs.end(), {q_step, k, v});
      r = gradcheck([&] { return both(additive(q_step, k, v, m)); }, inputs);
      CHECK_MESSAGE(r.ok, "AdditiveAttention, one step\n", r.summary());
    }
  }
}

TEST_CASE("attention errors name the op and the shapes") {
  Generator gen(11);
  const Variable q = leaf({2, 5, 8}, gen), k = leaf({2, 7, 8}, gen), v = leaf({2, 7, 3}, gen);
  CHECK_THROWS_WITH_AS(dot_product_attention(q, leaf({2, 7, 6}, gen), v),
                       "dot_product_attention: query [2,5,8] and keys [2,7,6]: feature sizes 8 and 6 differ", Error);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(q, leaf({2, 7, 6}, gen), v),
                       doctest::Contains("scaled_dot_product_attention: query [2,5,8] and keys [2,7,6]"), Error);
  CHECK_THROWS_WITH_AS(dot_product_attention(q, leaf({3, 7, 8}, gen), v),
                       "dot_product_attention: batch sizes differ: query [2,5,8], keys [3,7,8], values [2,7,3]",
                       Error);
  CHECK_THROWS_WITH_AS(dot_product_attention(q, k, leaf({2, 6, 3}, gen)),
                       "dot_product_attention: keys [2,7,8] and values [2,6,3]: 7 keys but 6 values", Error);
  CHECK_THROWS_WITH_AS(dot_product_attention(leaf({2, 1, 5, 8}, gen), k, v),
                       doctest::Contains("query [2,1,5,8] must be [B,Tq,D] or [B,D]"), Error);
  CHECK_THROWS_WITH_AS(dot_product_attention(q, leaf({2, 8}, gen), v), doctest::Contains("keys [2,8] must be [B,Tk,D]"),
                       Error);
  CHECK_THROWS_WITH_AS(dot_product_attention(q, k, leaf({2, 7}, gen)),
                       doctest::Contains("values [2,7] must be [B,Tk,Dv]"), Error);
  CHECK_THROWS_WITH_AS(dot_product_attention(q, Variable(randn({2, 7, 8}, gen)), v),
                       doctest::Contains("dtypes differ: query float64, keys float32"), Error);
  CHECK_THROWS_WITH_AS(dot_product_attention(q, k, v, ones({2, 5})),
                       "dot_product_attention: mask [2,5] must be [B,Tk] = [2,7] or [B,Tq,Tk] = [2,5,7] (B may be 1)",
                       Error);
  CHECK_THROWS_WITH_AS(dot_product_attention(q, k, v, ones({2, 7, 5})), doctest::Contains("mask [2,7,5] must be"),
                       Error);
  CHECK_THROWS_WITH_AS(dot_product_attention(q, k, v, ones({3, 5, 7})), doctest::Contains("mask [3,5,7] must be"),
                       Error);
  CHECK_THROWS_WITH_AS(masked_softmax(q, ones({5, 7})),
                       "masked_softmax: mask [5,7] does not broadcast to scores [2,5,8]", Error);
  CHECK_THROWS_WITH_AS(masked_softmax(q, ones({2, 5, 8}), 3),
                       doctest::Contains("masked_softmax: axis 3 is out of range"), Error);

  GeneralAttention general(8, 4);
  CHECK_THROWS_WITH_AS(general(q, k, v), "GeneralAttention: keys [2,7,8] have 8 features, expected 4", Error);
  CHECK_THROWS_WITH_AS(general(leaf({2, 5, 3}, gen), leaf({2, 7, 4}, gen), v),
                       "GeneralAttention: query [2,5,3] has 3 features, expected 8", Error);
  CHECK_THROWS_WITH_AS(general(q, leaf({2, 7, 4}, gen), v),
                       doctest::Contains("inputs are float64 but the weight is float32"), Error);
  CHECK_THROWS_WITH_AS(GeneralAttention(0, 4), doctest::Contains("GeneralAttention: sizes must be positive"), Error);

  AdditiveAttention additive(8, 8, 4);
  CHECK_THROWS_WITH_AS(additive(leaf({2, 5, 3}, gen), k, v),
                       "AdditiveAttention: query [2,5,3] has 3 features, expected 8", Error);
  CHECK_THROWS_WITH_AS(additive(q, leaf({2, 7, 2}, gen), v),
                       "AdditiveAttention: keys [2,7,2] have 2 features, expected 8", Error);
  CHECK_THROWS_WITH_AS(additive(q, k, v), doctest::Contains("inputs are float64 but the parameters are float32"),
                       Error);
  const Variable q32(randn({2, 5, 8}, gen)), k32(randn({2, 7, 8}, gen)), v32(randn({2, 7, 3}, gen));
  CHECK_THROWS_WITH_AS(additive(q32, k32, v32, ones({2, 1})),
                       doctest::Contains("AdditiveAttention: mask [2,1] must be"), Error);
  CHECK(additive(q32, k32, v32, ones({2, 7})).context.shape() == Shape{2, 5, 3});
  CHECK_THROWS_WITH_AS(AdditiveAttention(8, 8, 0), doctest::Contains("AdditiveAttention: sizes must be positive"),
                       Error);
}

TEST_CASE("masks: Bool masks as PyTorch takes them; a float mask is never misread") {
  Generator gen(4);
  Variable s = leaf({2, 3, 4}, gen);
  const Tensor m01 = tensor({1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1}, {2, 3, 4});
  const Tensor mb = ne(m01, 0.0);  // the same mask as Bool
  REQUIRE(mb.dtype() == DType::Bool);
  // Bool (true = attend), int64 and a 0/1 float mask are one and the same mask
  const Tensor wb = masked_softmax(s, mb).data();
  CHECK(equal(wb, masked_softmax(s, m01).data()));
  CHECK(equal(wb, masked_softmax(s, m01.to(DType::I64)).data()));
  const Vec w = wb.to_vector(), mv = m01.to_vector();
  for (size_t k = 0; k < w.size(); ++k)
    if (mv[k] == 0) CHECK(w[k] == 0.0);
  // an additive 0/-inf mask (what F.scaled_dot_product_attention also takes) is refused,
  // since reading its nonzero entries as "attend" would invert it
  const Tensor additive = where(mb, zeros({1}), full({1}, -INFINITY));
  CHECK_THROWS_WITH_AS(masked_softmax(s, additive),
                       doctest::Contains("masked_softmax: the floating point mask [2,3,4] holds 8 entries other than "
                                         "0 and 1"),
                       Error);
  const Variable kv = leaf({2, 4, 4}, gen);
  CHECK(equal(scaled_dot_product_attention(s, kv, kv, mb).weights.data(),
              scaled_dot_product_attention(s, kv, kv, m01).weights.data()));
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(s, kv, kv, additive), doctest::Contains("pass a Bool mask"), Error);
}
