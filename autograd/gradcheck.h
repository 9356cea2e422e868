#pragma once
// gradcheck: compares the gradients backward() computes with central finite differences.
//
//   auto r = gradcheck([&] { return sum(tanh(matmul(x, w))); }, {x, w});
//   fmt::print("{}", r.summary());   // per input: max abs/rel error, worst element
//
// The inputs are float64 Variables with requires_grad (leaves, e.g. a module's
// parameters); f is re-evaluated with each element nudged by +-eps. A non-scalar f(x) is
// reduced to sum(f(x) * w) with fixed random weights w, which checks a random
// vector-Jacobian product: a wrong gradient fails it with probability 1. gradgradcheck
// (below) checks second derivatives the same way.
#include "autograd/variable.h"

#include <functional>
#include <string>
#include <vector>

namespace unroll {

struct GradcheckOptions {
  double eps = 1e-6;   ///< finite-difference step
  double atol = 1e-5;  ///< pass if |analytic - numeric| <= atol + rtol * |numeric| for every element
  double rtol = 1e-3;
  uint64_t seed = 0;   ///< for the projection weights of a non-scalar output
};

struct GradcheckInput {
  int index = 0;
  double max_abs_error = 0;   ///< max over elements of |analytic - numeric|
  double max_rel_error = 0;   ///< max over elements of |analytic - numeric| / max(|numeric|, 1e-12)
  int64_t worst_element = -1; ///< flat index of the element with the largest excess over tolerance
  double worst_analytic = 0;
  double worst_numeric = 0;
  bool ok = true;
  std::string what;           ///< gradgradcheck: "grad_output" for the extra input u
};

struct GradcheckResult {
  bool ok = true;
  std::string name = "gradcheck";
  std::vector<GradcheckInput> inputs;
  std::string summary() const;  ///< one line per input
  explicit operator bool() const { return ok; }
};

/// Checks d f() / d inputs. f must build its graph from the given Variables each call.
GradcheckResult gradcheck(const std::function<Variable()>& f, const std::vector<Variable>& inputs,
                          GradcheckOptions opt = {});
/// Convenience: f receives float64 leaves made from `inputs` (which may be float32; they
/// are converted).
GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& f,
                          const std::vector<Tensor>& inputs, GradcheckOptions opt = {});

/// gradgradcheck: checks the second derivatives, i.e. that the backward pass recorded with
/// create_graph is itself differentiated right. For fixed random u (of f()'s shape) and
/// v_i (of each input's shape) it takes
///   s(x, u) = sum_i <d<f(x), u>/dx_i, v_i>
/// (the first derivatives from grad(.., {.create_graph = true})) and compares ds/dx_i
/// (a Hessian-vector product) and ds/du (J v: the backward formula's dependence on its
/// upstream gradient, the one check that means something for a linear op) from backward()
/// with central differences of s, which need first derivatives only. The report has one
/// entry per input and a last one for u (what = "grad_output").
GradcheckResult gradgradcheck(const std::function<Variable()>& f, const std::vector<Variable>& inputs,
                              GradcheckOptions opt = {});
GradcheckResult gradgradcheck(const std::function<Variable(const std::vector<Variable>&)>& f,
                              const std::vector<Tensor>& inputs, GradcheckOptions opt = {});

}  // namespace unroll
