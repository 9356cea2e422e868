// Optional cross-check with PyTorch (skipped where no Python can import torch; never
// required): torch.nn.RNN/LSTM/GRU weights load into unroll's modules under the same
// names and give the same outputs, final states and gradients; and weights saved by unroll
// load into torch.nn modules with load_state_dict(strict=True) and give unroll's outputs.
#include <doctest/doctest.h>

#include <unroll.h>

#include "torch_helpers.h"

#include <string>

using namespace unroll;
using torch_test::max_diff;

namespace {

std::unique_ptr<RecurrentStack> make(const std::string& kind) {
  const LSTMOptions o{.input_size = 3, .hidden_size = 4, .num_layers = 2, .bidirectional = true};
  if (kind == "lstm") return std::make_unique<LSTM>(o);
  if (kind == "gru") return std::make_unique<GRU>(o);
  return std::make_unique<RNN>(RNNOptions{.input_size = 3, .hidden_size = 4, .num_layers = 2,
                                          .nonlinearity = kind == "rnn_relu" ? Nonlinearity::Relu : Nonlinearity::Tanh,
                                          .bidirectional = true});
}

const char* kKinds[] = {"rnn_tanh", "rnn_relu", "lstm", "gru"};

}  // namespace

TEST_CASE("torch.nn weights, outputs and gradients match unroll's") {
  const std::string py = torch_test::python_or_skip();
  if (py.empty()) return;
  const std::string path = UNROLL_TEST_TMPDIR "/from_torch.safetensors";
  REQUIRE(torch_test::run_script(py, "torch_interop.py", "export " + path));
  const SafetensorsFile file = load_safetensors(path);
  for (const std::string kind : kKinds) {
    CAPTURE(kind);
    auto m = make(kind);
    m->to(DType::F64);
    StateDict weights;
    for (const auto& [name, p] : m->named_parameters()) weights.insert(name, file.tensors.at(kind + "." + name));
    m->load_state_dict(weights);  // strict: same names and shapes as torch's state_dict
    const std::vector<int64_t> lengths = file.tensors.at(kind + ".lengths").to_indices();
    RecurrentOutput o = m->forward(Variable(file.tensors.at(kind + ".input")), {}, lengths);  // any of the three
    CHECK(max_diff(o.output.data(), file.tensors.at(kind + ".output")) < 1e-5);
    CHECK(max_diff(o.h_n().data(), file.tensors.at(kind + ".h_n")) < 1e-5);
    Variable loss = sum(o.output * Variable(file.tensors.at(kind + ".w_out"))) +
                    sum(o.h_n() * Variable(file.tensors.at(kind + ".w_h")));
    if (kind == "lstm") {
      CHECK(max_diff(o.c_n().data(), file.tensors.at(kind + ".c_n")) < 1e-5);
      loss = loss + sum(o.c_n() * Variable(file.tensors.at(kind + ".w_c")));
    }
    loss.backward();
    for (const auto& [name, p] : m->named_parameters()) {
      CAPTURE(name);
      CHECK(max_diff(p.grad(), file.tensors.at(kind + ".grad." + name)) < 1e-5);
    }
  }
}

TEST_CASE("weights saved by unroll load into torch.nn modules and give the same outputs") {
  const std::string py = torch_test::python_or_skip();
  if (py.empty()) return;
  manual_seed(42);
  Generator gen(7);
  StateDict out;
  const std::vector<int64_t> lengths = {5, 2, 4};
  for (const std::string kind : kKinds) {
    auto m = make(kind);
    m->to(DType::F64);
    for (const auto& [name, p] : m->named_parameters()) out.insert(kind + ".param." + name, p.data());
    Tensor x = randn({5, 3, 3}, gen, DType::F64);
    RecurrentOutput o = m->forward(Variable(x), {}, lengths);
    out.insert(kind + ".input", x);
    out.insert(kind + ".lengths", indices(lengths));
    out.insert(kind + ".output", o.output.data());
  }
  const std::string path = UNROLL_TEST_TMPDIR "/from_unroll.safetensors";
  save_safetensors(path, out);
  CHECK(torch_test::run_script(py, "torch_interop.py", "check " + path));
}
