// Optional cross-check with PyTorch (skipped where no Python can import torch; never
// required): functional::jacobian, vjp, jvp, hessian and hvp give what
// torch.autograd.functional gives on the same two functions and inputs.
#include <doctest/doctest.h>

#include <unroll.h>

#include "torch_helpers.h"

#include <string>

using namespace unroll;
using torch_test::max_diff;
namespace fn = unroll::functional;

namespace {

using Vars = std::vector<Variable>;

// The same functions as tests/torch_functional.py.
Variable two_input(const Vars& x) { return tanh(matmul(x[0], x[1])) * sigmoid(sum(x[0])); }
Variable scalar_fn(const Vars& x) {
  return sum(exp(x[0] * 0.5) * pow(x[1], 2.0)) + sum(log(x[1] * x[1] + 1.0)) + sum(tanh(matmul(x[0], x[0], false, true)));
}

}  // namespace

TEST_CASE("functional: jacobian, vjp, jvp, hessian, hvp match torch.autograd.functional") {
  const std::string py = torch_test::python_or_skip();
  if (py.empty()) return;
  Generator g(21);
  StateDict in;
  for (auto [name, shape] : std::vector<std::pair<const char*, Shape>>{
           {"x", {2, 3}}, {"w", {3, 4}}, {"v_out", {2, 4}}, {"v_x", {2, 3}}, {"v_w", {3, 4}},
           {"a", {2, 3}}, {"b", {2, 3}}, {"v_a", {2, 3}}, {"v_b", {2, 3}}})
    in.insert(name, randn(shape, g, DType::F64));
  const std::string src = UNROLL_TEST_TMPDIR "/functional_in.safetensors";
  const std::string dst = UNROLL_TEST_TMPDIR "/functional_torch.safetensors";
  save_safetensors(src, in);
  REQUIRE(torch_test::run_script(py, "torch_functional.py", src + " " + dst));
  const SafetensorsFile torch_out = load_safetensors(dst);
  auto V = [&](const char* name) { return Variable(in.at(name)); };
  auto T = [&](const std::string& name) { return torch_out.tensors.at(name); };

  const Vars xw{V("x"), V("w")};
  const Vars J = fn::jacobian(two_input, xw);
  CHECK(max_diff(J[0].data(), T("jacobian.0")) < 1e-12);
  CHECK(max_diff(J[1].data(), T("jacobian.1")) < 1e-12);
  const fn::OutputAndDerivatives vj = fn::vjp(two_input, xw, V("v_out"));
  CHECK(max_diff(vj.derivatives[0].data(), T("vjp.0")) < 1e-12);
  CHECK(max_diff(vj.derivatives[1].data(), T("vjp.1")) < 1e-12);
}

TEST_CASE("functional: jvp, hessian, hvp match torch.autograd.functional (create_graph)") {
  const std::string py = torch_test::python_or_skip();
  if (py.empty()) return;
  Generator g(21);
  StateDict in;
  for (auto [name, shape] : std::vector<std::pair<const char*, Shape>>{
           {"x", {2, 3}}, {"w", {3, 4}}, {"v_out", {2, 4}}, {"v_x", {2, 3}}, {"v_w", {3, 4}},
           {"a", {2, 3}}, {"b", {2, 3}}, {"v_a", {2, 3}}, {"v_b", {2, 3}}})
    in.insert(name, randn(shape, g, DType::F64));
  const std::string src = UNROLL_TEST_TMPDIR "/functional_in2.safetensors";
  const std::string dst = UNROLL_TEST_TMPDIR "/functional_torch2.safetensors";
  save_safetensors(src, in);
  REQUIRE(torch_test::run_script(py, "torch_functional.py", src + " " + dst));
  const SafetensorsFile torch_out = load_safetensors(dst);
  auto V = [&](const char* name) { return Variable(in.at(name)); };
  auto T = [&](const std::string& name) { return torch_out.tensors.at(name); };
  const Vars xw{V("x"), V("w")}, ab{V("a"), V("b")};
  CHECK(max_diff(fn::jvp(two_input, xw, {V("v_x"), V("v_w")}).derivative.data(), T("jvp")) < 1e-12);
  const std::vector<Vars> H = fn::hessian(scalar_fn, ab);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) CHECK(max_diff(H[i][j].data(), T(fmt::format("hessian.{}.{}", i, j))) < 1e-12);
  const fn::OutputAndDerivatives hv = fn::hvp(scalar_fn, ab, {V("v_a"), V("v_b")});
  CHECK(max_diff(hv.derivatives[0].data(), T("hvp.0")) < 1e-12);
  CHECK(max_diff(hv.derivatives[1].data(), T("hvp.1")) < 1e-12);
}
