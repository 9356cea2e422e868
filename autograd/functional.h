#pragma once
// Derivatives of whole functions, like torch.autograd.functional: Jacobians, Hessians and
// their products with vectors, built on grad() (autograd/variable.h).
//
//   auto f = [](const std::vector<Variable>& x) { return tanh(matmul(x[0], x[1])); };
//   std::vector<Variable> J = functional::jacobian(f, {Variable(a), Variable(w)});
//   // J[0]: f's shape + a's shape, J[1]: f's shape + w's shape
//   Variable H = functional::hessian([](const Variable& x) { return sum(pow(x, 3.0)); }, Variable(x));
//
// The function. f takes the inputs as a list of Variables and returns ONE Variable of any
// shape (for several outputs, concat them); it must build its result from the Variables it
// is given, each call (it is evaluated once per call of jacobian/vjp/..., except hessian
// and hvp, which evaluate it once too and differentiate twice). A single-input overload
// takes f(const Variable&) and one input. Other Variables f uses (a module's weights) are
// constants here: nothing accumulates into their .grad.
//
// The inputs. Without create_graph, each input is replaced by a fresh leaf with the same
// value (detached), and the results are plain values that record nothing. With
// create_graph, an input that requires grad is used as it is, so the results are
// functions of it and can be differentiated again (e.g. jacobian of a jacobian); inputs that
// do not require grad become fresh leaves, as in PyTorch.
//
// Unused inputs. When f does not depend on an input, its derivatives are zeros (PyTorch's
// strict=False behaviour).
//
// vjp and jacobian need first derivatives only; jvp (the double-vjp trick: J v =
// d/du <J^T u, v>), hvp and hessian differentiate a backward pass, i.e. need every op on
// the way to support create_graph.
#include "autograd/variable.h"

#include <functional>
#include <vector>

namespace unroll::functional {

/// f(inputs) -> one output of any shape.
using Fn = std::function<Variable(const std::vector<Variable>&)>;
/// f(input) -> one output of any shape.
using Fn1 = std::function<Variable(const Variable&)>;

struct FunctionalOptions {
  bool create_graph = false;  ///< record the derivative computation, so results can be differentiated again
};

/// A function's output and one derivative per input (the pair PyTorch's vjp/jvp/hvp return).
struct OutputAndDerivatives {
  Variable output;
  std::vector<Variable> derivatives;
};
struct OutputAndDerivative {
  Variable output;
  Variable derivative;
};

/// The Jacobian of f at inputs (torch.autograd.functional.jacobian): one Variable per
/// input i, of shape f's shape + input i's shape, J[i][o..., k...] = d f[o...] / d x_i[k...].
/// Computed by one vector-Jacobian product per element of f.
std::vector<Variable> jacobian(const Fn& f, const std::vector<Variable>& inputs, FunctionalOptions opt = {});
Variable jacobian(const Fn1& f, const Variable& input, FunctionalOptions opt = {});

/// The Hessian of a one-element f (torch.autograd.functional.hessian): H[i][j] of shape
/// input i's shape + input j's shape, H[i][j][k..., l...] = d^2 f / d x_i[k...] d x_j[l...].
/// The Jacobian of the gradient, so it needs create_graph support of every op in f.
std::vector<std::vector<Variable>> hessian(const Fn& f, const std::vector<Variable>& inputs, FunctionalOptions opt = {});
Variable hessian(const Fn1& f, const Variable& input, FunctionalOptions opt = {});

/// v^T J (torch.autograd.functional.vjp): v has f's shape (or is undefined when f has one
/// element, meaning 1); one result per input, of that input's shape.
OutputAndDerivatives vjp(const Fn& f, const std::vector<Variable>& inputs, const Variable& v = Variable(),
                         FunctionalOptions opt = {});
OutputAndDerivative vjp(const Fn1& f, const Variable& input, const Variable& v = Variable(), FunctionalOptions opt = {});

/// J v (torch.autograd.functional.jvp): v holds one tensor per input (or is empty when there
/// is one one-element input); the result has f's shape. By the double-vjp trick: g(u) =
/// J^T u is linear in u, and J v = d<g(u), v>/du.
OutputAndDerivative jvp(const Fn& f, const std::vector<Variable>& inputs, const std::vector<Variable>& v,
                        FunctionalOptions opt = {});
OutputAndDerivative jvp(const Fn1& f, const Variable& input, const Variable& v, FunctionalOptions opt = {});

/// H v for a one-element f (torch.autograd.functional.hvp): v holds one tensor per input;
/// one result per input (H is symmetric, so this is also v^T H, torch's vhp).
OutputAndDerivatives hvp(const Fn& f, const std::vector<Variable>& inputs, const std::vector<Variable>& v,
                         FunctionalOptions opt = {});
OutputAndDerivative hvp(const Fn1& f, const Variable& input, const Variable& v, FunctionalOptions opt = {});

/// H v for the loss of a model, repeatedly, without re-running the model: the gradient
/// g = d loss / d params is computed once with create_graph, and each apply(v) is one more
/// backward through g (its graph is retained). For power iteration on the Hessian of a
/// training loss, where params are a module's parameters (leaves requiring grad) and loss
/// was computed from them. Nothing accumulates into the parameters' .grad.
class HessianVectorProduct {
public:
  HessianVectorProduct(const Variable& loss, std::vector<Variable> params);
  /// H v, v one tensor per parameter (same shapes); results are plain values.
  std::vector<Tensor> apply(const std::vector<Tensor>& v) const;
  /// The gradient g = d loss / d params (values).
  std::vector<Tensor> gradient() const;

private:
  std::vector<Variable> params_, grads_;
};

/// The largest-magnitude eigenvalue of the Hessian of `loss` w.r.t. params, by power
/// iteration on HessianVectorProduct from a seeded random start (`iters` products). The
/// Rayleigh quotient v^T H v of the last iterate is returned (signed).
double top_hessian_eigenvalue(const Variable& loss, const std::vector<Variable>& params, int iters = 20,
                              uint64_t seed = 0);

}  // namespace unroll::functional
