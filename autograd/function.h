#pragma once
// Recording an op: the one mechanism every differentiable op (built-in or user-defined)
// goes through. See Note [graph lifetime] in autograd/variable.h.
//
// A custom op is its forward computed on Tensors plus a backward lambda:
//
//   // y = x^3;  dx += dy * 3x^2
//   Variable cube(const Variable& x) {
//     Tensor y = x.data() * x.data() * x.data();
//     return record("cube", y, {x}, [xd = x.data()](const auto& dy, auto& g) {
//       const auto& v = g.in(0, xd);  // x's value: a Tensor, or a Variable with create_graph
//       g.add(0, dy * v * v * 3.0);
//     });
//   }
//
// and is proven with gradcheck (and gradgradcheck) from autograd/gradcheck.h. The lambda
// captures only the tensors its backward needs; it must not capture Variables.
//
// Note [one formula, two value types]
// The backward lambda is generic, so the one formula runs in two ways:
//  - backward() / grad() (first order): dy is a Tensor and g a Grads; g.in(i, xd) and
//    g.out(y) return the captured tensors themselves (by reference, inlined: the formula
//    costs what a Tensor-only lambda costs);
//  - backward/grad with create_graph: dy is a Variable and g a GradsGraph; g.in(i, xd) is
//    a Variable for input i (a constant when the input does not require grad) and g.out(y)
//    a Variable for the op's own output, so the formula is recorded as ops and its result
//    is a function of the inputs, differentiable again (to any order).
// Read every value the derivative depends on through g.in / g.out. A Tensor used as is in
// the formula (a mask, an index, sign(x)) is a constant: its derivative is taken as zero.
// A lambda written for Tensors only, [..](const Tensor& dy, Grads& g), still works for
// first derivatives; differentiating through it again is an error that names the op.
#include "autograd/variable.h"

#include <initializer_list>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

namespace unroll {

class Grads;
class GradsGraph;
namespace detail {
struct GradMap;
[[noreturn]] void no_graph_backward(const char* op);
}  // namespace detail

namespace detail {
/// The thin weight-gradient terms dy_k^T x_k of one leaf, held until backward reaches it
/// and then summed in one GEMM (Note [deferred weight gradients] in autograd/variable.cpp).
class DeferredWeightGrad {
public:
  bool empty() const { return dys_.empty(); }
  /// Holds dy [K,O] and x [K,I]; true once enough rows are held to sum them now.
  bool hold(const Tensor& dy, const Tensor& x);
  /// The held terms stacked into one dy [sum K,O] and x [sum K,I]; empties the holder.
  std::pair<Tensor, Tensor> take();
  void clear();
private:
  std::vector<Tensor> dys_, xs_;
  int64_t rows_ = 0;
};
}  // namespace detail

/// A recorded op's output value and the edges to its inputs. (Internal; users go through
/// Variable and record().)
struct Node {
  int64_t refs = 1;     // Variable handles + edges from the nodes made from this one
  int64_t handles = 0;  // Variable handles only
  Tensor data;          // the value; dropped when no handle is left (Note [values nobody can see])
  Shape shape;          // the value's shape and dtype, kept when the value is dropped
  DType dtype = DType::F32;
  Tensor grad;
  const char* op = nullptr;  // nullptr for leaves
  bool requires_grad = false;
  bool retain_grad = false;
  bool released = false;  // backward already freed the saved state
  int32_t step = -1;      // StepScope label at creation
  uint32_t visit = 0;     // epoch mark used by the graph walks
  uint32_t need = 0;      // grad(): epoch mark of the nodes a gradient is asked through
  uint32_t n_inputs = 0;
  Node** inputs = nullptr;  // points at inline_inputs or at a heap array
  Node* inline_inputs[3] = {nullptr, nullptr, nullptr};
  struct Extra {            // name, hooks, deferred products: rare, kept off the hot path
    std::string name;
    std::vector<std::function<void(const Tensor&)>> hooks;
    detail::DeferredWeightGrad deferred;  // Note [deferred weight gradients]
    Variable grad_var;  // the recorded .grad of backward(create_graph); Note [recorded .grad]
  };
  std::unique_ptr<Extra> extra;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  virtual ~Node();
  // Nodes come from a per-thread free list per 64-byte size class (an unrolled sequence
  // makes and frees thousands per step, the same sizes every step).
  static void* operator new(size_t bytes);
  static void operator delete(void* p, size_t bytes);
  virtual void run_backward(const Tensor& grad_out, Grads& grads);
  /// The same formula recorded as ops (create_graph; Note [one formula, two value types]).
  virtual void run_backward_graph(const Variable& grad_out, GradsGraph& grads);
  virtual void release_saved() {}

  /// The value's shape and dtype, also after the value was dropped. (A leaf's value may be
  /// replaced, e.g. by Module::to(), so the live value wins while there is one.)
  const Shape& value_shape() const { return data.defined() ? data.shape() : shape; }
  DType value_dtype() const { return data.defined() ? data.dtype() : dtype; }
  std::span<Node* const> input_span() const { return {inputs, n_inputs}; }
  void set_inputs(std::span<const Variable* const> vars);
};

/// Handed to a backward lambda: accumulates the gradient for input i.
class Grads {
public:
  explicit Grads(const Node* node) : node_(node) {}
  /// (Engine, grad()) only inputs whose Node::need equals need_mark take gradients (0: all).
  Grads(const Node* node, uint32_t need_mark) : node_(node), need_(need_mark) {}
  /// Whether input i wants a gradient (skip computing it otherwise).
  bool needs(int i) const;
  int n_inputs() const { return static_cast<int>(node_->n_inputs); }
  /// grad(input i) += g, summing g down to the input's shape if it was broadcast.
  void add(int i, Tensor g);
  /// grad(input i)[..., start:start+g.size(axis), ...] += g: a gradient for one slice of
  /// the input, added in place, so slicing an input into T pieces costs O(input) in
  /// backward rather than O(T * input).
  void add_narrow(int i, int axis, int64_t start, const Tensor& g);
  /// grad(input i) += op(a) op(b) for 2-D a, b (op = transpose when asked): the GEMM
  /// accumulates straight into an existing gradient (beta = 1), so a weight used at every
  /// time step costs no temporary per step.
  void add_matmul(int i, const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
  /// grad(input i) += dy^T x: the gradient of a weight W [O,I] used as x W^T (dy [N,O],
  /// x [N,I]). Into a leaf, a thin term (a few rows, e.g. batch 1) is held and summed with
  /// the leaf's other such terms in one GEMM when backward reaches it (Note [deferred
  /// weight gradients]); otherwise add_matmul(i, dy, x, true, false).
  void add_weight_grad(int i, const Tensor& dy, const Tensor& x);
  /// The value of input i as the formula reads it: here the captured tensor itself
  /// (Note [one formula, two value types]).
  const Tensor& in(int /*i*/, const Tensor& value) const { return value; }
  /// The op's own output value as the formula reads it: the captured tensor itself.
  const Tensor& out(const Tensor& value) const { return value; }
  /// A tensor the formula uses as a constant (its derivative is zero): here itself.
  Tensor constant(Tensor value) const { return value; }
private:
  Node* target(int i) const {
    Node* in = node_->inputs[i];
    if (need_ != 0 && in && in->need != need_) [[unlikely]] return nullptr;
    return in;
  }
  const Node* node_;
  uint32_t need_ = 0;
};

/// The Grads of a recorded backward (create_graph): the same calls on Variables, each
/// recorded as ops, so the gradients it accumulates are differentiable.
class GradsGraph {
public:
  GradsGraph(Node* node, uint32_t need_mark, detail::GradMap* grads) : node_(node), need_(need_mark), grads_(grads) {}
  bool needs(int i) const { return target(i) != nullptr; }
  int n_inputs() const { return static_cast<int>(node_->n_inputs); }
  /// grad(input i) += g, summed down to the input's shape (differentiably) if broadcast.
  void add(int i, Variable g);
  /// grad(input i)[..., start:start+g.size(axis), ...] += g (g padded into zeros, an op
  /// whose backward is narrow).
  void add_narrow(int i, int axis, int64_t start, const Variable& g);
  /// grad(input i) += op(a) op(b) (a matmul op, then add).
  void add_matmul(int i, const Variable& a, const Variable& b, bool trans_a = false, bool trans_b = false);
  /// grad(input i) += dy^T x (a matmul op, then add; nothing is deferred).
  void add_weight_grad(int i, const Variable& dy, const Variable& x) { add_matmul(i, dy, x, true, false); }
  /// Input i as a Variable (its dropped value put back from `value` first), viewed in
  /// value's shape; a constant Variable(value) when input i does not require grad.
  Variable in(int i, const Tensor& value) const;
  /// The op's own output as a Variable (its value put back from `value` if dropped), so a
  /// formula that reads y differentiates through y as a function of the inputs.
  Variable out(const Tensor& value) const;
  /// A constant Variable(value) (a leaf that does not require grad).
  Variable constant(Tensor value) const { return Variable(std::move(value)); }
private:
  Node* target(int i) const {
    Node* in = node_->inputs[i];
    if (need_ != 0 && in && in->need != need_) return nullptr;
    return in;
  }
  Node* node_;
  uint32_t need_ = 0;
  detail::GradMap* grads_;
};

namespace detail {
template <typename F>
struct OpNode final : Node {
  std::optional<F> fn;
  explicit OpNode(F&& f) : fn(std::move(f)) {}
  void run_backward(const Tensor& grad_out, Grads& grads) override { (*fn)(grad_out, grads); }
  void run_backward_graph(const Variable& grad_out, GradsGraph& grads) override {
    if constexpr (std::is_invocable_v<F&, const Variable&, GradsGraph&>) (*fn)(grad_out, grads);
    else no_graph_backward(op);
  }
  void release_saved() override { fn.reset(); }
};
bool should_record(std::span<const Variable* const> inputs);
// Watches recording and backward on this thread (GraphTrace in autograd/graph.h): told of
// every node as it is recorded (its value still there) and of every gradient backward
// computes, in the engine's order. One pointer test per op when no one watches.
struct GraphObserver {
  virtual ~GraphObserver() = default;
  virtual void on_record(const Node* n) = 0;
  virtual void on_backward_start(const Node* root) = 0;
  virtual void on_grad(const Node* n, const Tensor& grad) = 0;
};
GraphObserver*& graph_observer();
Variable finish_record(Node* node, const char* op, Tensor&& out, std::span<const Variable* const> inputs);
}  // namespace detail

/// Records op `name` with value `out`, made from `inputs`, whose backward is
/// `backward(const Tensor& grad_out, Grads& grads)`. When grad mode is off or no input
/// requires grad, nothing is recorded and the result is a plain leaf. Write the lambda as
/// [..](const auto& dy, auto& g) to make the op twice differentiable (Note [one formula,
/// two value types]).
/// `name` must be a string literal (it is stored as a pointer).
template <typename F>
Variable record(const char* name, Tensor out, std::span<const Variable* const> inputs, F&& backward) {
  if (!detail::should_record(inputs)) return Variable(std::move(out));
  return detail::finish_record(new detail::OpNode<std::decay_t<F>>(std::forward<F>(backward)), name, std::move(out),
                               inputs);
}
template <typename F>
Variable record(const char* name, Tensor out, std::initializer_list<const Variable*> inputs, F&& backward) {
  return record(name, std::move(out), std::span<const Variable* const>(inputs.begin(), inputs.size()),
                std::forward<F>(backward));
}
/// Convenience: inputs by reference.
template <typename F>
Variable record(const char* name, Tensor out, std::initializer_list<std::reference_wrapper<const Variable>> inputs,
                F&& backward) {
  const Variable* ptrs[8];
  UNROLL_CHECK(inputs.size() <= 8, "record: {}: use the span overload for more than 8 inputs", name);
  size_t i = 0;
  for (const Variable& v : inputs) ptrs[i++] = &v;
  return record(name, std::move(out), std::span<const Variable* const>(ptrs, i), std::forward<F>(backward));
}

}  // namespace unroll
