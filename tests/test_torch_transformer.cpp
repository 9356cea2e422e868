// Optional cross-check with PyTorch (skipped where no Python can import torch; never
// required): unroll's MultiheadAttention, TransformerEncoderLayer (post- and pre-norm, relu
// and gelu, both layouts) and TransformerEncoder save their weights, torch.nn loads them
// with load_state_dict(strict=True) and runs the same inputs and masks (key padding, causal
// float, float with -inf, per-head int; no fully masked row, where torch gives NaN); the
// outputs, attention weights and the gradients of a fixed loss must match unroll's, in
// float64 and in float32.
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/transformer.h"
#include "torch_helpers.h"

#include <limits>
#include <memory>
#include <string>
#include <vector>

using namespace unroll;
using torch_test::max_diff;

namespace {

constexpr int64_t E = 8, H = 2, F = 16, B = 3, T = 5, S = 6;

struct Case {
  std::string name;
  std::string kind;  // "mha", "layer" or "encoder"
  bool batch_first = false, self = true, norm_first = false, gelu = false;
  DType dtype = DType::F64;
  std::string mask;  // "float" (with -inf), "int_per_head" or "causal"
};

// The key padding mask [B,L]: batch b has its last b steps padded (never step 0).
Tensor padding(int64_t L) {
  std::vector<int64_t> m(static_cast<size_t>(B * L), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = L - b; t < L; ++t) m[static_cast<size_t>(b * L + t)] = 1;
  return indices(m, {B, L});
}

// A float mask [T,S] with random finite entries and some -inf, column 0 always finite.
Tensor float_mask(Generator& gen, DType dtype) {
  Tensor m = randn({T, S}, gen, DType::F64);
  double* d = m.data<double>();
  for (int64_t k = 0; k < T * S; ++k)
    if (k % S != 0 && k % 4 == 1) d[k] = -std::numeric_limits<double>::infinity();
  return m.to(dtype);
}

// An int mask [B*h,T,S], 1 = not allowed, key 0 always allowed.
Tensor int_per_head_mask() {
  std::vector<int64_t> m(static_cast<size_t>(B * H * T * S), 0);
  for (size_t k = 0; k < m.size(); ++k) m[k] = (k % static_cast<size_t>(S)) != 0 && (k * 5 + k / 7) % 3 == 0 ? 1 : 0;
  return indices(m, {B * H, T, S});
}

void randomize(Module& m, DType dtype, Generator& gen) {
  m.to(dtype);
  NoGradGuard ng;
  for (Variable& p : m.parameters()) p.data() = (randn(p.shape(), gen, DType::F64) * 0.5).to(dtype);
}

const Case kCases[] = {
    {.name = "mha_cross", .kind = "mha", .self = false, .mask = "float"},
    {.name = "mha_self_bf", .kind = "mha", .batch_first = true, .mask = "causal"},
    {.name = "mha_cross_bf_int", .kind = "mha", .batch_first = true, .self = false, .mask = "int_per_head"},
    {.name = "mha_cross_f32", .kind = "mha", .self = false, .dtype = DType::F32, .mask = "float"},
    {.name = "layer_post_relu", .kind = "layer", .mask = "causal"},
    {.name = "layer_pre_gelu_bf",
     .kind = "layer",
     .batch_first = true,
     .norm_first = true,
     .gelu = true,
     .mask = "causal"},
    {.name = "layer_post_gelu_bf_f32",
     .kind = "layer",
     .batch_first = true,
     .gelu = true,
     .dtype = DType::F32,
     .mask = "causal"},
    {.name = "encoder_pre_norm", .kind = "encoder", .norm_first = true, .mask = "causal"},
};

struct Built {
  std::shared_ptr<Module> module;
  Variable x, key, value;  // key and value only for cross-attention
  Tensor kpm, attn_mask, w_out, w_weights;
  std::string config;
};

Built build(const Case& c, Generator& gen) {
  Built b;
  const TransformerEncoderLayerOptions lo{.d_model = E,
                                          .nhead = H,
                                          .dim_feedforward = F,
                                          .dropout = 0.0,
                                          .activation = c.gelu ? Activation::Gelu : Activation::Relu,
                                          .batch_first = c.batch_first,
                                          .norm_first = c.norm_first};
  if (c.kind == "mha")
    b.module = std::make_shared<MultiheadAttention>(E, H, 0.0, true, c.batch_first);
  else if (c.kind == "layer")
    b.module = std::make_shared<TransformerEncoderLayer>(lo);
  else
    b.module = std::make_shared<TransformerEncoder>(lo, 2, true);
  randomize(*b.module, c.dtype, gen);
  b.module->eval();
  const int64_t L = c.self ? T : S;  // key steps
  auto seq = [&](int64_t steps) {
    return Variable(randn(c.batch_first ? Shape{B, steps, E} : Shape{steps, B, E}, gen, c.dtype), true);
  };
  b.x = seq(T);
  if (!c.self) {
    b.key = seq(S);
    b.value = seq(S);
  }
  b.kpm = padding(L);
  if (c.mask == "float")
    b.attn_mask = float_mask(gen, c.dtype);
  else if (c.mask == "int_per_head")
    b.attn_mask = int_per_head_mask();
  else
    b.attn_mask = generate_square_subsequent_mask(T, c.dtype);
  b.w_out = randn(b.x.shape(), gen, c.dtype);
  if (c.kind == "mha") b.w_weights = randn({B, H, T, L}, gen, c.dtype);
  b.config = fmt::format(
      "kind={};E={};heads={};F={};layers=2;final_norm=1;batch_first={};self={};norm_first={};activation={}", c.kind, E,
      H, F, c.batch_first ? 1 : 0, c.self ? 1 : 0, c.norm_first ? 1 : 0, c.gelu ? "gelu" : "relu");
  return b;
}

struct Result {
  Variable output;
  Tensor weights;  // per head, MHA only
};

// unroll's forward and the loss the script uses: sum(output * w_out) [+ sum(weights * w_weights)].
Result forward_and_backward(const Case& c, Built& b) {
  Result r;
  Variable loss;
  if (c.kind == "mha") {
    auto& m = static_cast<MultiheadAttention&>(*b.module);
    const Variable& k = c.self ? b.x : b.key;
    const Variable& v = c.self ? b.x : b.value;
    const MultiheadAttentionOutput o = m(b.x, k, v, b.kpm, b.attn_mask, true, false);
    r.output = o.output;
    r.weights = o.weights.data();
    loss = sum(o.output * Variable(b.w_out)) + sum(o.weights * Variable(b.w_weights));
  } else {
    r.output = c.kind == "layer" ? static_cast<TransformerEncoderLayer&>(*b.module)(b.x, b.attn_mask, b.kpm)
                                 : static_cast<TransformerEncoder&>(*b.module)(b.x, b.attn_mask, b.kpm);
    loss = sum(r.output * Variable(b.w_out));
  }
  loss.backward();
  return r;
}

}  // namespace

TEST_CASE("unroll's Transformer weights load into torch.nn with strict=True and give the same outputs and gradients") {
  const std::string py = torch_test::python_or_skip();
  if (py.empty()) return;
  manual_seed(21);
  Generator gen(21);
  std::vector<Built> built;
  StateDict in;
  Metadata config;
  for (const Case& c : kCases) {
    Built b = build(c, gen);
    for (const auto& [name, p] : b.module->named_parameters()) in.insert(c.name + ".param." + name, p.data());
    if (c.kind == "mha") {
      in.insert(c.name + ".query", b.x.data());
      if (!c.self) {
        in.insert(c.name + ".key", b.key.data());
        in.insert(c.name + ".value", b.value.data());
      }
      in.insert(c.name + ".w_weights", b.w_weights);
    } else {
      in.insert(c.name + ".src", b.x.data());
    }
    in.insert(c.name + ".kpm", b.kpm);
    in.insert(c.name + ".attn_mask", b.attn_mask);
    in.insert(c.name + ".w_out", b.w_out);
    config[c.name] = b.config;
    built.push_back(std::move(b));
  }
  const std::string in_path = UNROLL_TEST_TMPDIR "/transformer_in.safetensors";
  const std::string out_path = UNROLL_TEST_TMPDIR "/transformer_out.safetensors";
  save_safetensors(in_path, in, config);
  REQUIRE(torch_test::run_script(py, "torch_transformer.py", "run " + in_path + " " + out_path + " >/dev/null"));
  const SafetensorsFile torch_out = load_safetensors(out_path);
  const auto& got = torch_out.tensors;

  size_t i = 0;
  for (const Case& c : kCases) {
    CAPTURE(c.name);
    Built& b = built[i++];
    const Result r = forward_and_backward(c, b);
    const double tol = c.dtype == DType::F64 ? 1e-12 : 1e-5;
    double worst_value = max_diff(r.output.data(), got.at(c.name + ".output"));
    if (c.kind == "mha") worst_value = std::max(worst_value, max_diff(r.weights, got.at(c.name + ".weights")));
    double worst_grad = max_diff(b.x.grad(), got.at(c.name + ".grad.input"));
    for (const auto& [name, p] : b.module->named_parameters()) {
      CAPTURE(name);
      worst_grad = std::max(worst_grad, max_diff(p.grad(), got.at(c.name + ".grad." + name)));
    }
    CHECK(worst_value < tol);
    CHECK(worst_grad < (c.dtype == DType::F64 ? 1e-11 : 1e-4));
    MESSAGE(c.name, ": max |torch - unroll| outputs/weights ", worst_value, ", gradients ", worst_grad);
  }
}
