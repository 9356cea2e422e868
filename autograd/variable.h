#pragma once
// Variable: a Tensor that remembers how it was made, so backward() can send gradients to
// the leaves it came from.
//
// Note [graph lifetime]
// Every op whose inputs require grad records one Node: the output value, the inputs (as
// counted references) and the backward function with the tensors it needs, allocated
// together. A Variable is a counted handle to a Node; the graph lives exactly as long as
// some Variable (or a later Node) still refers to it, like PyTorch's dynamic graph. Nothing
// walks the graph recursively: backward sorts it with an explicit stack, and destruction
// defers the release of inputs to a loop, so a chain of 100,000 ops is as safe as a chain
// of three. Unless retain_graph is set, backward frees what each node saved once it has
// run; a second backward through it then throws an error that says so.
#include "core/tensor.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace unroll {

struct Node;

/// Options for Variable::backward.
struct BackwardOptions {
  /// Keep saved tensors so the graph can be walked again; unset = create_graph.
  std::optional<bool> retain_graph;
  /// Record the backward pass itself as ops (each formula in autograd/ops.cpp runs on
  /// Variables), so gradients can be differentiated again. As in PyTorch, the gradient a
  /// leaf accumulates is then itself recorded: Variable::grad_variable() returns it as a
  /// Variable that can be differentiated (grad() still returns its value as a Tensor).
  bool create_graph = false;
};

class Variable {
public:
  Variable() = default;  ///< undefined
  /// A leaf holding `data`; requires_grad makes it collect gradients (a parameter).
  explicit Variable(Tensor data, bool requires_grad = false);
  Variable(const Variable& o);
  Variable(Variable&& o) noexcept;
  Variable& operator=(const Variable& o);
  Variable& operator=(Variable&& o) noexcept;
  ~Variable();

  bool defined() const { return node_ != nullptr; }
  const Tensor& data() const;
  /// The value, mutable (for optimizers and initialisers; do not change a value that a
  /// recorded graph still needs).
  Tensor& data();
  const Shape& shape() const { return data().shape(); }
  int ndim() const { return data().ndim(); }
  int64_t size(int axis) const { return data().size(axis); }
  int64_t numel() const { return data().numel(); }
  DType dtype() const { return data().dtype(); }
  double item() const { return data().item(); }

  /// The accumulated gradient (undefined until a backward reaches this Variable).
  const Tensor& grad() const;
  /// Mutable gradient (unshared, so in-place changes touch nothing else), e.g. for clipping.
  Tensor& grad_mut();
  void set_grad(Tensor g);
  /// Drops the gradient (like PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();
  /// The accumulated gradient as a Variable: after backward({.create_graph = true}) the
  /// recorded one (PyTorch's x.grad with a grad_fn: differentiate it again); otherwise a
  /// constant holding grad(); undefined if there is no gradient. Note [recorded .grad].
  Variable grad_variable() const;

  bool requires_grad() const;
  Variable& set_requires_grad(bool on = true);  ///< leaves only
  bool is_leaf() const;
  /// Name of the op that made this Variable ("leaf" for leaves).
  const char* op_name() const;
  /// Non-leaf Variables normally drop their gradient after use; this keeps it.
  void retain_grad();

  /// Backpropagates from a one-element Variable (seed gradient 1).
  void backward(BackwardOptions opt = {}) const;
  /// Backpropagates with an explicit upstream gradient of this Variable's shape.
  void backward(const Tensor& grad, BackwardOptions opt = {}) const;

  /// Same value, cut from the graph: a leaf that does not require grad.
  Variable detach() const;

  /// Calls fn(grad) with this Variable's full gradient during each backward.
  void register_hook(std::function<void(const Tensor&)> fn);

  /// A label shown in graph exports and error messages.
  Variable& set_name(std::string name);
  std::string name() const;

  Node* node() const { return node_; }
  explicit Variable(Node* adopted);  ///< takes over one reference (and is a handle)

private:
  Node* node_ = nullptr;
};

// ---- grad mode --------------------------------------------------------------------------

/// Whether ops are recorded on this thread (default true).
bool grad_enabled();
void set_grad_enabled(bool on);

/// RAII: no recording inside its scope (evaluation, optimizer updates, sampling).
class NoGradGuard {
public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;
private:
  bool prev_;
};

// ---- anomaly mode and step labels -----------------------------------------------------

/// When on, every op output and every gradient is checked for NaN/Inf; the error names the
/// op, its shape and the step label it was recorded under.
bool anomaly_mode();
void set_anomaly_mode(bool on);

class AnomalyModeGuard {
public:
  explicit AnomalyModeGuard(bool on = true) : prev_(anomaly_mode()) { set_anomaly_mode(on); }
  ~AnomalyModeGuard() { set_anomaly_mode(prev_); }
  AnomalyModeGuard(const AnomalyModeGuard&) = delete;
  AnomalyModeGuard& operator=(const AnomalyModeGuard&) = delete;
private:
  bool prev_;
};

/// The time step recorded into each new node (-1: none). Sequence runners set it so graph
/// exports can group nodes by step and anomaly errors can say where a NaN appeared.
int current_step();
class StepScope {
public:
  explicit StepScope(int step);
  ~StepScope();
  StepScope(const StepScope&) = delete;
  StepScope& operator=(const StepScope&) = delete;
private:
  int prev_;
};

/// Number of nodes alive on this thread (for tests of graph growth and teardown).
int64_t live_nodes();

}  // namespace unroll
