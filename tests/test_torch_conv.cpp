// Optional cross-check with PyTorch (skipped where no Python can import torch; never
// required): unroll's Conv1d, Conv2d (stride, padding, dilation, groups, with and without
// bias), pooling layers and TCN save their weights, torch.nn loads them with
// load_state_dict(strict=True) and runs the same input; the outputs and the gradients of a
// fixed loss (input and every parameter) must match unroll's, in float64 and float32.
#include <doctest/doctest.h>

#include <unroll.h>

#include "torch_helpers.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace unroll;
using torch_test::max_diff;

namespace {

struct Case {
  std::string name, config;
  std::shared_ptr<Module> module;
  std::function<Variable(const Variable&)> forward;
  Shape input;
  DType dtype = DType::F64;
};

std::vector<Case> cases() {
  std::vector<Case> c;
  auto conv1 = std::make_shared<Conv1d>(4, 6, 3, Conv1dOptions{.stride = 2, .padding = 1, .dilation = 2, .groups = 2});
  c.push_back({"conv1d_groups", "kind=conv1d;in=4;out=6;k=3;stride=2;padding=1;dilation=2;groups=2;bias=1", conv1,
               [conv1](const Variable& x) { return conv1->forward(x); }, {3, 4, 11}});
  auto conv1b = std::make_shared<Conv1d>(3, 5, 4, Conv1dOptions{.bias = false});
  c.push_back({"conv1d_nobias", "kind=conv1d;in=3;out=5;k=4;stride=1;padding=0;dilation=1;groups=1;bias=0", conv1b,
               [conv1b](const Variable& x) { return conv1b->forward(x); }, {2, 3, 9}});
  auto conv2 = std::make_shared<Conv2d>(
      4, 6, Size2{3, 2}, Conv2dOptions{.stride = Size2{2, 1}, .padding = Size2{1, 0}, .dilation = Size2{1, 2}, .groups = 2});
  c.push_back({"conv2d_groups", "kind=conv2d;in=4;out=6;k=3,2;stride=2,1;padding=1,0;dilation=1,2;groups=2;bias=1",
               conv2, [conv2](const Variable& x) { return conv2->forward(x); }, {2, 4, 9, 7}});
  auto conv2f = std::make_shared<Conv2d>(3, 8, 3, Conv2dOptions{.padding = 1});
  c.push_back({"conv2d_f32", "kind=conv2d;in=3;out=8;k=3;stride=1;padding=1;dilation=1;groups=1;bias=1", conv2f,
               [conv2f](const Variable& x) { return conv2f->forward(x); }, {2, 3, 8, 8}, DType::F32});
  auto conv2p = std::make_shared<Conv2d>(2, 4, 1);  // the 1x1 path that skips the unfold
  c.push_back({"conv2d_1x1", "kind=conv2d;in=2;out=4;k=1;stride=1;padding=0;dilation=1;groups=1;bias=1", conv2p,
               [conv2p](const Variable& x) { return conv2p->forward(x); }, {3, 2, 5, 6}});
  auto mp1 = std::make_shared<MaxPool1d>(3, 2, 1);
  c.push_back({"maxpool1d", "kind=maxpool1d;k=3;stride=2;padding=1", mp1,
               [mp1](const Variable& x) { return mp1->forward(x); }, {2, 3, 10}});
  auto mp2 = std::make_shared<MaxPool2d>(Size2{3, 2}, Size2{2, 1}, Size2{1, 0});
  c.push_back({"maxpool2d", "kind=maxpool2d;k=3,2;stride=2,1;padding=1,0", mp2,
               [mp2](const Variable& x) { return mp2->forward(x); }, {2, 3, 9, 8}});
  auto ap1 = std::make_shared<AvgPool1d>(4, 3, 2);
  c.push_back({"avgpool1d", "kind=avgpool1d;k=4;stride=3;padding=2", ap1,
               [ap1](const Variable& x) { return ap1->forward(x); }, {2, 3, 13}});
  auto ap2 = std::make_shared<AvgPool2d>(3, 2, 1);
  c.push_back({"avgpool2d", "kind=avgpool2d;k=3;stride=2;padding=1", ap2,
               [ap2](const Variable& x) { return ap2->forward(x); }, {2, 3, 9, 8}});
  auto ad2 = std::make_shared<AdaptiveAvgPool2d>(Size2{3, 2});
  c.push_back({"adaptive2d", "kind=adaptive2d;out=3,2", ad2, [ad2](const Variable& x) { return ad2->forward(x); },
               {2, 3, 7, 5}});
  auto tcn = std::make_shared<TCN>(3, std::vector<int64_t>{4, 4, 5}, TCNOptions{.kernel_size = 3});
  c.push_back({"tcn", "kind=tcn;in=3;channels=4,4,5;k=3", tcn, [tcn](const Variable& x) { return tcn->forward(x); },
               {2, 3, 20}});
  return c;
}

}  // namespace

TEST_CASE("unroll's conv, pooling and TCN weights load into torch.nn with strict=True and give the same outputs and gradients") {
  const std::string py = torch_test::python_or_skip();
  if (py.empty()) return;
  manual_seed(5);
  Generator gen(5);
  std::vector<Case> all = cases();
  std::vector<Variable> inputs, outputs;
  std::vector<Tensor> w_outs;
  StateDict in;
  Metadata config;
  for (Case& c : all) {
    c.module->to(c.dtype);
    inputs.emplace_back(randn(c.input, gen, DType::F64).to(c.dtype), true);
    outputs.push_back(c.forward(inputs.back()));
    w_outs.push_back(randn(outputs.back().shape(), gen, DType::F64).to(c.dtype));
    for (const auto& [name, p] : c.module->named_parameters()) in.insert(c.name + ".param." + name, p.data());
    in.insert(c.name + ".input", inputs.back().data());
    in.insert(c.name + ".w_out", w_outs.back());
    config[c.name] = c.config;
  }
  const std::string in_path = UNROLL_TEST_TMPDIR "/conv_in.safetensors";
  const std::string out_path = UNROLL_TEST_TMPDIR "/conv_out.safetensors";
  save_safetensors(in_path, in, config);
  REQUIRE(torch_test::run_script(py, "torch_conv.py", "run " + in_path + " " + out_path + " >/dev/null"));
  const SafetensorsFile torch_out = load_safetensors(out_path);
  const auto& got = torch_out.tensors;
  for (size_t i = 0; i < all.size(); ++i) {
    const Case& c = all[i];
    CAPTURE(c.name);
    sum(outputs[i] * Variable(w_outs[i])).backward();
    const double value = max_diff(outputs[i].data(), got.at(c.name + ".output"));
    double grad = max_diff(inputs[i].grad(), got.at(c.name + ".grad.input"));
    size_t params = 0;
    for (const auto& [name, p] : c.module->named_parameters()) {
      CAPTURE(name);
      grad = std::max(grad, max_diff(p.grad(), got.at(c.name + ".grad." + name)));
      ++params;
    }
    const bool f64 = c.dtype == DType::F64;
    CHECK(value < (f64 ? 1e-12 : 1e-5));
    CHECK(grad < (f64 ? 1e-11 : 1e-4));
    MESSAGE(c.name, ": ", params, " parameters, max |torch - unroll| output ", value, ", gradients ", grad);
  }
}
