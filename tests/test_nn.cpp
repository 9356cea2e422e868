// Module bookkeeping, basic layers and initialisers.
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/init.h"
#include "nn/layers.h"

#include <cmath>

using namespace unroll;

namespace {

struct Encoder : Module {
  std::shared_ptr<Linear> proj = register_module("proj", std::make_shared<Linear>(3, 4));
  std::shared_ptr<LayerNorm> norm = register_module("norm", std::make_shared<LayerNorm>(4));
  Variable scale = register_parameter("scale", ones({1}));
};

struct Net : Module {
  std::shared_ptr<Encoder> encoder = register_module("encoder", std::make_shared<Encoder>());
  std::shared_ptr<Linear> head = register_module("head", std::make_shared<Linear>(4, 2, false));
  std::shared_ptr<Dropout> drop = register_module("drop", std::make_shared<Dropout>(0.5));
  Variable forward(const Variable& x) {
    Variable h = encoder->norm->forward(encoder->proj->forward(x)) * encoder->scale;
    return head->forward(drop->forward(tanh(h)));
  }
};

std::vector<std::string> names(const Module& m) {
  std::vector<std::string> out;
  for (auto& [n, p] : m.named_parameters()) out.push_back(n);
  return out;
}

}  // namespace

TEST_CASE("named parameters are hierarchical and in registration order") {
  manual_seed(0);
  Net net;
  CHECK(names(net) == std::vector<std::string>{"encoder.scale", "encoder.proj.weight", "encoder.proj.bias",
                                               "encoder.norm.weight", "encoder.norm.bias", "head.weight"});
  CHECK(net.num_parameters() == 1 + 12 + 4 + 4 + 4 + 8);
  CHECK(net.named_modules().size() == 5);
  for (const Variable& p : net.parameters()) CHECK(p.requires_grad());
}

TEST_CASE("state_dict round trip into a differently initialised model gives identical outputs") {
  manual_seed(1);
  Net a;
  manual_seed(2);
  Net b;
  a.eval();
  b.eval();
  Variable x(randn({5, 3}, default_generator()));
  CHECK_FALSE(allclose(a.forward(x).data(), b.forward(x).data()));
  b.load_state_dict(a.state_dict());
  CHECK(equal(a.forward(x).data(), b.forward(x).data()));
}

TEST_CASE("load_state_dict names every missing key, unexpected key and shape mismatch") {
  Net net;
  StateDict s;
  for (auto& [name, value] : net.state_dict())
    if (name != "head.weight" && name != "encoder.proj.bias") s.insert(name, value);
  s.insert("encoder.extra", zeros({2}));
  CHECK_THROWS_WITH_AS(net.load_state_dict(s), doctest::Contains("missing keys: encoder.proj.bias, head.weight"), Error);
  CHECK_THROWS_WITH_AS(net.load_state_dict(s), doctest::Contains("unexpected keys: encoder.extra"), Error);
  net.load_state_dict(s, /*strict=*/false);  // loads what matches
  StateDict bad;
  bad.insert("head.weight", zeros({3, 4}));
  CHECK_THROWS_WITH_AS(net.load_state_dict(bad, false),
                       doctest::Contains("head.weight: checkpoint [3,4] vs model [2,4]"), Error);
}

TEST_CASE("StateDict prefix helpers: one module out of a whole-model checkpoint, and back") {
  manual_seed(3);
  Net whole;
  const StateDict sd = whole.state_dict();
  // load only the encoder into a standalone Encoder (strict: every key matches)
  manual_seed(4);
  Encoder enc;
  CHECK_FALSE(equal(enc.proj->weight.data(), whole.encoder->proj->weight.data()));
  const StateDict part = sd.submodule("encoder");
  CHECK(part.keys() == std::vector<std::string>{"scale", "proj.weight", "proj.bias", "norm.weight", "norm.bias"});
  enc.load_state_dict(part);
  CHECK(equal(enc.proj->weight.data(), whole.encoder->proj->weight.data()));
  CHECK(part.at("proj.weight").raw_data() == sd.at("encoder.proj.weight").raw_data());  // shared, not copied
  // the same by hand, PyTorch style
  CHECK(sd.with_prefix("encoder.proj.").keys() == std::vector<std::string>{"encoder.proj.weight", "encoder.proj.bias"});
  CHECK(sd.with_prefix("encoder.").strip_prefix("encoder.").keys() == part.keys());
  // strip keeps keys without the prefix; add_prefix undoes a strip
  CHECK(sd.strip_prefix("encoder.").keys() ==
        std::vector<std::string>{"scale", "proj.weight", "proj.bias", "norm.weight", "norm.bias", "head.weight"});
  CHECK(part.add_prefix("encoder.").keys() == sd.with_prefix("encoder.").keys());
  // wrapping a model (a "module." prefix, as DataParallel checkpoints have) and loading it back
  manual_seed(5);
  Net copy;
  copy.load_state_dict(sd.add_prefix("module.").strip_prefix("module."));
  CHECK(equal(copy.head->weight.data(), whole.head->weight.data()));
  // errors
  CHECK_THROWS_WITH_AS(sd.submodule("decoder"),
                       doctest::Contains("StateDict::submodule: no key starts with 'decoder.' (the 6 keys begin with: "
                                         "encoder, head)"),
                       Error);
  CHECK_THROWS_WITH_AS(sd.submodule("encoder."), doctest::Contains("without a trailing '.'"), Error);
  StateDict clash;
  clash.insert("a.w", zeros({1}));
  clash.insert("w", zeros({1}));
  CHECK_THROWS_WITH_AS(clash.strip_prefix("a."), doctest::Contains("gives key 'w' twice"), Error);
  CHECK_THROWS_WITH_AS(clash.strip_prefix("a.w"), doctest::Contains("leaves an empty key"), Error);
  CHECK(sd.with_prefix("nothing").size() == 0);
}

TEST_CASE("registering a duplicate or dotted name is an error") {
  struct Bad : Module {
    void twice() {
      register_parameter("w", zeros({1}));
      register_parameter("w", zeros({1}));
    }
    void dotted() { register_parameter("a.b", zeros({1})); }
  } bad;
  CHECK_THROWS_WITH_AS(bad.twice(), doctest::Contains("'w' is already a parameter"), Error);
  CHECK_THROWS_WITH_AS(bad.dotted(), doctest::Contains("contain no '.'"), Error);
}

TEST_CASE("Linear computes x W^T + b and has PyTorch's default init bounds") {
  manual_seed(3);
  Linear fc(100, 7);
  CHECK(fc.weight.shape() == Shape{7, 100});
  CHECK(fc.bias.shape() == Shape{7});
  const double bound = 1.0 / std::sqrt(100.0);
  double lo = 1, hi = -1;
  for (double w : fc.weight.data().to_vector()) lo = std::min(lo, w), hi = std::max(hi, w);
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(hi - lo > 1.8 * bound);  // fills the range
  Linear small(2, 1);
  small.load_state_dict([] {
    StateDict s;
    s.insert("weight", tensor({2, -1}, {1, 2}));
    s.insert("bias", tensor({0.5}));
    return s;
  }());
  CHECK(small(Variable(tensor({3, 4}, {1, 2}))).item() == doctest::Approx(2 * 3 - 4 + 0.5));
  CHECK_THROWS_WITH_AS(small(Variable(zeros({1, 3}))), doctest::Contains("input features 3"), Error);
}

TEST_CASE("Linear and LayerNorm pass gradcheck") {
  manual_seed(4);
  Linear fc(3, 2);
  LayerNorm ln(2);
  fc.to(DType::F64);
  ln.to(DType::F64);
  Generator gen(5);
  Variable x(randn({4, 3}, gen, DType::F64), true);
  std::vector<Variable> wrt = fc.parameters();
  for (const Variable& p : ln.parameters()) wrt.push_back(p);
  wrt.push_back(x);
  // a non-trivial LayerNorm affine part so its gradients are not degenerate
  init::uniform_(ln.parameters()[0], 0.5, 1.5, gen);
  init::uniform_(ln.parameters()[1], -0.5, 0.5, gen);
  auto r = gradcheck([&] { return ln(tanh(fc(x))); }, wrt);
  CHECK_MESSAGE(r.ok, r.summary());
}

TEST_CASE("LayerNorm normalises the last dimension") {
  LayerNorm ln(4);
  Variable y = ln(Variable(tensor({1, 2, 3, 4, 10, 10, 10, 10}, {2, 4})));
  const std::vector<double> v = y.data().to_vector();
  const double s = std::sqrt(1.25 + 1e-5);
  CHECK(v[0] == doctest::Approx(-1.5 / s));
  CHECK(v[3] == doctest::Approx(1.5 / s));
  for (int i = 4; i < 8; ++i) CHECK(v[static_cast<size_t>(i)] == 0.0);  // a constant row is finite: zeros
}

TEST_CASE("Embedding looks up rows; the padding row stays zero and gets no gradient") {
  manual_seed(6);
  Embedding emb(5, 3, /*padding_idx=*/0);
  for (int j = 0; j < 3; ++j) CHECK(emb.weight.data().at({0, j}) == 0.0);
  Tensor idx = indices({2, 0, 2});
  Variable e = emb(idx.reshape({1, 3}));
  CHECK(e.shape() == Shape{1, 3, 3});
  CHECK(e.data().at({0, 0, 1}) == emb.weight.data().at({2, 1}));
  sum(e * 2.0).backward();
  const Tensor& g = emb.weight.grad();
  CHECK(g.at({0, 0}) == 0.0);
  CHECK(g.at({2, 0}) == doctest::Approx(4.0));  // used twice
  CHECK(g.at({1, 0}) == 0.0);
  CHECK_THROWS_WITH_AS(emb(indices({7})), doctest::Contains("out of range"), Error);
  CHECK_THROWS_WITH_AS(emb(tensor({1.0})), doctest::Contains("int64"), Error);
}

TEST_CASE("Dropout: scaled mask in training, identity in eval") {
  manual_seed(7);
  Dropout drop(0.25);
  Variable x(ones({1000}));
  const std::vector<double> y = drop(x).data().to_vector();
  int zeros_seen = 0;
  for (double v : y) {
    CHECK((v == 0.0 || v == doctest::Approx(1.0 / 0.75)));
    zeros_seen += v == 0.0;
  }
  CHECK(zeros_seen > 200);
  CHECK(zeros_seen < 300);
  drop.eval();
  CHECK(equal(drop(x).data(), x.data()));
  CHECK_THROWS_WITH_AS(Dropout(1.5), doctest::Contains("p must be in [0, 1]"), Error);
}

TEST_CASE("initialisers: bounds, statistics and orthogonality") {
  Generator gen(8);
  Variable w(zeros({64, 32}), true);
  init::xavier_uniform_(w, 1.0, gen);
  const double a = std::sqrt(6.0 / 96.0);
  for (double v : w.data().to_vector()) CHECK(std::abs(v) <= a);
  init::kaiming_normal_(w, 0.0, gen);
  double ss = 0;
  for (double v : w.data().to_vector()) ss += v * v;
  CHECK(std::sqrt(ss / 2048.0) == doctest::Approx(std::sqrt(2.0 / 32.0)).epsilon(0.05));
  for (auto shape : {Shape{6, 4}, Shape{4, 6}}) {
    Variable q(zeros(shape, DType::F64), true);
    init::orthogonal_(q, 1.0, gen);
    const bool wide = shape[0] < shape[1];
    const Tensor qtq = wide ? matmul(q.data(), q.data(), false, true) : matmul(q.data(), q.data(), true, false);
    const int64_t k = std::min(shape[0], shape[1]);
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) CHECK(qtq.at({i, j}) == doctest::Approx(i == j ? 1.0 : 0.0).epsilon(1e-9));
  }
  Variable v1(zeros({3}), true);
  CHECK_THROWS_WITH_AS(init::xavier_uniform_(v1), doctest::Contains("at least 2 dimensions"), Error);
}

TEST_CASE("module.to(float64) converts parameters; zero_grad clears them") {
  Linear fc(2, 2);
  sum(fc(Variable(ones({1, 2})))).backward();
  CHECK(fc.weight.grad().defined());
  fc.zero_grad();
  CHECK_FALSE(fc.weight.grad().defined());
  fc.to(DType::F64);
  CHECK(fc.weight.dtype() == DType::F64);
  CHECK(fc.parameters()[0].dtype() == DType::F64);
}
