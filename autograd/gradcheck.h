#pragma once
// gradcheck: compares the gradients backward() computes with central finite differences.
//
//   auto r = gradcheck([&] { return sum(tanh(matmul(x, w))); }, {x, w});
//   fmt::print("{}", r.summary());   // per input: max abs/rel error, worst element
//
// The inputs are float64 Variables with requires_grad (leaves, e.g. a module's
// parameters); f is re-evaluated with each element nudged by +-eps. A non-scalar f(x) is
// reduced to sum(f(x) * w) with fixed random weights w, which checks a random
// vector-Jacobian product: a wrong gradient fails it with probability 1.
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
};

struct GradcheckResult {
  bool ok = true;
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

}  // namespace unroll
