// Variable handles, recording, graph teardown, the node pool and Grads (the backward engine
// that walks the graph is autograd/engine.cpp).
#include "autograd/formula.h"
#include "autograd/function.h"
#include "autograd/engine.h"
#include "autograd/grad.h"

#include <cmath>
#include <vector>

namespace unroll {

namespace {

thread_local bool t_grad_enabled = true;
thread_local bool t_anomaly = false;
thread_local int t_step = -1;
thread_local int64_t t_live_nodes = 0;
thread_local detail::GraphObserver* t_observer = nullptr;

// Iterative teardown (Note [graph lifetime]): when a node's count drops to zero it is
// queued; only the outermost release runs the queue, so destroying a node whose inputs
// die with it never recurses.
thread_local std::vector<Node*> t_dead;
thread_local bool t_draining = false;

void retain(Node* n) { ++n->refs; }

// Note [values nobody can see]
// An op's output value is needed by whoever holds a Variable for it, and by backward only
// where an op saved it (the backward lambdas capture their own reference to the tensors
// they need: sigmoid its output, mul its inputs, ...). So when the last Variable handle of
// an op output goes away while later nodes still point at it, its value can be dropped:
// the storage is freed now unless a backward lambda holds it. The gates of a cell, the
// chunks cut from them and the products summed into c are gone right after the step.
// The shape and dtype stay on the node (gradient shapes, graph export, error messages).
// Leaves, nodes that keep their gradient (retain_grad) and nodes with hooks keep it.
void drop_handle(Node* n) {
  if (--n->handles != 0) return;
  if (n->extra && n->extra->grad_var.defined()) {  // Note [recorded .grad]: break the cycle
    const Variable cut = std::move(n->extra->grad_var);  // the caller's reference keeps n alive
    return;
  }
  if (n->refs > 1 && n->op != nullptr && !n->retain_grad && !n->extra) n->data = Tensor();
}

// Note [recorded .grad]
// backward({.create_graph = true}) records the gradient a leaf (or a retain_grad node)
// accumulates: Extra::grad_var holds it as a Variable, and .grad holds its value. That
// gradient's graph usually reaches back to the leaf itself (d(x^3)/dx = 3x^2 reads x), so
// leaf -> grad_var -> ... -> leaf is a cycle of references, as in PyTorch (which warns about
// it). It is cut when the gradient is dropped or replaced (zero_grad, set_grad, grad_mut:
// an in-place edit is not recorded) and when the last handle of the Variable goes away
// (nobody can ask for the gradient then), so a model that is zero_grad'ed between steps, or
// destroyed, frees the lot. The recorded gradient counts only while .grad is its value (the
// same storage): a first-order backward after a recorded one adds a constant into a new
// buffer (the shared one is never added to in place), so grad_variable() then returns the
// sum as a constant; grad() sets the leaves' gradients aside and puts the same buffers back.

void release(Node* n) {
  if (--n->refs) return;
  t_dead.push_back(n);
  if (t_draining) return;
  t_draining = true;
  while (!t_dead.empty()) {
    Node* d = t_dead.back();
    t_dead.pop_back();
    delete d;  // ~Node releases its inputs, which may queue more
  }
  t_draining = false;
}

}  // namespace

// ---- shared with the engine (autograd/engine.h) -----------------------------------------
namespace detail {

std::string describe(const Node* n) {
  std::string s = fmt::format("'{}' (shape {}", n->op ? n->op : "leaf", n->value_shape());
  if (n->extra && !n->extra->name.empty()) s += fmt::format(", name '{}'", n->extra->name);
  if (n->step >= 0) s += fmt::format(", step {}", n->step);
  return s + ")";
}

bool all_finite(const Tensor& t) {
  const int64_t n = t.numel();
  if (t.dtype() == DType::F32) {
    const float* p = t.data<float>();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return false;
  } else if (t.dtype() == DType::F64) {
    const double* p = t.data<double>();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return false;
  }
  return true;
}

// grad(n) += g. The first gradient is stored as is (no copy); a later one is added in
// place only if no one else shares the buffer.
void accumulate(Node* n, Tensor g) {
  if (!n->grad.defined()) {
    n->grad = std::move(g);
  } else if (n->grad.unique()) {
    add_(n->grad, g);
  } else {
    n->grad = add(n->grad, g);
  }
}

Node::Extra& extra_of(Node* n) {
  if (!n->extra) n->extra = std::make_unique<Node::Extra>();
  return *n->extra;
}

void accumulate_recorded(Node* n, const Variable& g) {
  Variable& slot = extra_of(n).grad_var;
  if (slot.defined())
    slot = add(slot, g);
  else
    slot = n->grad.defined() ? add(Variable(n->grad), g) : g;
  n->grad = slot.data();
}

// Note [deferred weight gradients]
// A weight used at every time step receives one gradient term dy_t^T x_t per step, a GEMM
// whose depth K is the batch size. At batch 1 that is a rank-1 update: it reads and writes
// the whole [O,I] gradient to add O*I products, so it is bound by memory, not arithmetic
// (~10-20 GFLOP/s here, against ~150 for a deep product; it was 28% of a batch-1 LSTM
// step). So Grads::add_weight_grad (linear's and linear2's dW = dy^T x) sets thin terms
// (K <= kDeferRows) into a leaf aside in a DeferredWeightGrad, holding
// references to dy_t and x_t, and the engine adds them when it reaches the leaf, which in
// reverse topological order comes after the leaf's last consumer: the rows of all dy_t
// and of all x_t are stacked and ONE GEMM of depth sum(K) adds the lot into the gradient.
// The sum is the same; only the rounding order differs, and it is still fixed by the
// shapes, so runs stay bit-identical. Anomaly mode adds every term at once, so a NaN is
// still reported by the op that made it. Memory: the held dy_t are [K,O] per use, less than
// the saved activations backward frees meanwhile, and once kFlushRows rows are held they
// are summed at once (a GEMM that deep runs at full speed; without the bound, a 10,000-step
// sequence stacked 200 MB of rows and spent its time in page faults). If backward fails part-way, the terms
// held so far are added before the error leaves, as they would have been without deferral.
constexpr int64_t kDeferRows = 8, kFlushRows = 1024;

bool has_pending(const Node* n) { return n->extra && !n->extra->deferred.empty(); }

void flush_pending(Node* n) {
  auto [dy, x] = n->extra->deferred.take();  // [sum K, O], [sum K, I]
  if (n->grad.defined() && n->grad.unique() && n->grad.dtype() == dy.dtype())
    addmm_(n->grad, dy, x, true, false);
  else
    accumulate(n, matmul(dy, x, true, false));
}

}  // namespace detail

namespace {
using detail::accumulate;
using detail::checked;
using detail::describe;
using detail::extra_of;
using detail::flush_pending;
using detail::kDeferRows;
using detail::kFlushRows;
}  // namespace

namespace detail {
bool DeferredWeightGrad::hold(const Tensor& dy, const Tensor& x) {
  dys_.push_back(dy);
  xs_.push_back(x);
  rows_ += dy.shape()[0];
  return rows_ >= kFlushRows;
}

std::pair<Tensor, Tensor> DeferredWeightGrad::take() {
  std::pair<Tensor, Tensor> out;
  if (dys_.size() == 1) out = {std::move(dys_[0]), std::move(xs_[0])};
  else out = {concat(dys_, 0), concat(xs_, 0)};
  clear();
  return out;
}

void DeferredWeightGrad::clear() {
  dys_.clear();
  xs_.clear();
  rows_ = 0;
}
}  // namespace detail

// ---- Node -------------------------------------------------------------------------------

namespace {
// Free lists of node memory by size class (64-byte steps up to 1 KiB; larger nodes use the
// global heap). Per thread, so no locking; a node freed on another thread joins that
// thread's list (a node's memory carries no owner, unlike tensor storage), and each thread
// keeps at most kNodePoolLimit bytes, so a one-way hand-off of graphs cannot grow the
// freeing thread's lists without bound.
constexpr size_t kNodeClassBytes = 64, kNodeClasses = 16, kNodePoolLimit = size_t{256} << 20;
struct NodePool {
  std::vector<void*> free[kNodeClasses];
  size_t cached = 0;  // bytes on the lists
  ~NodePool();
};
thread_local NodePool t_node_pool;
thread_local bool t_node_pool_gone = false;  // nodes freed after the pool (static Variables)
NodePool::~NodePool() {
  t_node_pool_gone = true;
  for (auto& list : free)
    for (void* p : list) ::operator delete(p);
}
size_t node_class(size_t bytes) { return (bytes + kNodeClassBytes - 1) / kNodeClassBytes - 1; }
}  // namespace

void* Node::operator new(size_t bytes) {
  const size_t cls = node_class(bytes);
  if (cls >= kNodeClasses) return ::operator new(bytes);
  auto& list = t_node_pool.free[cls];
  if (list.empty()) return ::operator new((cls + 1) * kNodeClassBytes);
  void* p = list.back();
  list.pop_back();
  t_node_pool.cached -= (cls + 1) * kNodeClassBytes;
  return p;
}

void Node::operator delete(void* p, size_t bytes) {
  const size_t cls = node_class(bytes);
  const size_t block = (cls + 1) * kNodeClassBytes;
  if (cls >= kNodeClasses || t_node_pool_gone || t_node_pool.cached + block > kNodePoolLimit)
    return ::operator delete(p);
  t_node_pool.free[cls].push_back(p);
  t_node_pool.cached += block;
}

Node::~Node() {
  --t_live_nodes;
  for (uint32_t i = 0; i < n_inputs; ++i)
    if (inputs[i]) release(inputs[i]);
  if (inputs != inline_inputs) delete[] inputs;
}

void Node::run_backward(const Tensor&, Grads&) {}
void Node::run_backward_graph(const Variable&, GradsGraph&) {}

namespace detail {
void no_graph_backward(const char* op) {
  fail("backward with create_graph: op '{}' (a custom record()) has no differentiable backward: write its lambda "
       "as [..](const auto& dy, auto& g) {{ .. }} and read the values it needs through g.in(i, value) and "
       "g.out(value) (Note [one formula, two value types] in autograd/function.h)",
       op ? op : "?");
}
}  // namespace detail

void Node::set_inputs(std::span<const Variable* const> vars) {
  n_inputs = static_cast<uint32_t>(vars.size());
  inputs = n_inputs <= 3 ? inline_inputs : new Node*[n_inputs];
  for (uint32_t i = 0; i < n_inputs; ++i) {
    Node* in = vars[i]->node();
    // Inputs that do not require grad are not kept: backward never visits them.
    if (in && in->requires_grad) {
      retain(in);
      inputs[i] = in;
    } else {
      inputs[i] = nullptr;
    }
  }
}

bool Grads::needs(int i) const { return target(i) != nullptr; }

void Grads::add(int i, Tensor g) {
  Node* in = target(i);
  if (!in) return;
  if (!(g.shape() == in->value_shape())) g = sum_to(g, in->value_shape());
  accumulate(in, std::move(g));
}

void Grads::add_narrow(int i, int axis, int64_t start, const Tensor& g) {
  Node* in = target(i);
  if (!in) return;
  if (!in->grad.defined()) in->grad = zeros(in->value_shape(), in->value_dtype());
  else if (!in->grad.unique()) in->grad = in->grad.clone();
  narrow_add_(in->grad, axis, start, g);
}

void Grads::add_matmul(int i, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  Node* in = target(i);
  if (!in) return;
  if (in->grad.defined() && in->grad.unique() && in->grad.ndim() == 2 && in->grad.dtype() == a.dtype())
    addmm_(in->grad, a, b, trans_a, trans_b);  // checks the shapes
  else
    add(i, matmul(a, b, trans_a, trans_b));
}

void Grads::add_weight_grad(int i, const Tensor& dy, const Tensor& x) {
  Node* in = target(i);
  if (!in) return;
  const Shape& w = in->value_shape();
  if (in->op == nullptr && !t_anomaly && dy.ndim() == 2 && x.ndim() == 2 && dy.shape()[0] <= kDeferRows &&
      dy.shape()[0] == x.shape()[0] && w.ndim() == 2 && w[0] == dy.shape()[1] && w[1] == x.shape()[1] &&
      dy.dtype() == x.dtype() && dy.dtype() == in->value_dtype()) {
    if (extra_of(in).deferred.hold(dy, x)) flush_pending(in);  // Note [deferred weight gradients]
    return;
  }
  add_matmul(i, dy, x, true, false);
}

// ---- GradsGraph: the recorded backward (create_graph) -------------------------------------

namespace {
// A handle to n, its value put back from `value` if it was dropped (Note [values nobody
// can see]): the captured tensor is the same value, viewed in the shape the op used.
Variable handle_to(Node* n, const Tensor& value) {
  const Shape& shape = n->value_shape();
  if (!n->data.defined()) n->data = value.shape() == shape ? value : value.reshape(shape);
  retain(n);
  Variable v(n);
  if (!(value.shape() == shape)) return reshape(v, value.shape());
  return v;
}
}  // namespace

void GradsGraph::add(int i, Variable g) {
  Node* in = target(i);
  if (!in) return;
  if (!(g.shape() == in->value_shape())) g = sum_to(g, in->value_shape());
  Variable& slot = grads_->grads[in];
  slot = slot.defined() ? unroll::add(slot, g) : std::move(g);
}

void GradsGraph::add_narrow(int i, int axis, int64_t start, const Variable& g) {
  Node* in = target(i);
  if (!in) return;
  add(i, narrow_into(in->value_shape(), axis, start, g));
}

void GradsGraph::add_matmul(int i, const Variable& a, const Variable& b, bool trans_a, bool trans_b) {
  if (!target(i)) return;
  add(i, matmul(a, b, trans_a, trans_b));
}

Variable GradsGraph::in(int i, const Tensor& value) const {
  Node* n = node_->inputs[i];
  if (!n) return Variable(value);
  return handle_to(n, value);
}

Variable GradsGraph::out(const Tensor& value) const { return handle_to(node_, value); }

namespace detail {

GraphObserver*& graph_observer() { return t_observer; }

bool should_record(std::span<const Variable* const> inputs) {
  if (!t_grad_enabled) return false;
  for (const Variable* v : inputs) {
    UNROLL_CHECK(v->defined(), "record: an input Variable is undefined");
    if (v->requires_grad()) return true;
  }
  return false;
}

Variable finish_record(Node* node, const char* op, Tensor&& out, std::span<const Variable* const> inputs) {
  ++t_live_nodes;
  node->op = op;
  node->shape = out.shape();
  node->dtype = out.dtype();
  node->data = std::move(out);
  node->requires_grad = true;
  node->step = t_step;
  node->set_inputs(inputs);
  Variable v(node);
  if (t_anomaly && !all_finite(node->data))
    fail("anomaly: forward of {} produced NaN or Inf", describe(node));
  if (t_observer) t_observer->on_record(node);
  return v;
}

}  // namespace detail

// ---- Variable ---------------------------------------------------------------------------

Variable::Variable(Tensor data, bool requires_grad) {
  UNROLL_CHECK(data.defined(), "Variable: the tensor is undefined");
  UNROLL_CHECK(!requires_grad || data.is_floating(), "Variable: a {} tensor cannot require grad", data.dtype());
  node_ = new Node();
  ++t_live_nodes;
  node_->handles = 1;
  node_->shape = data.shape();
  node_->dtype = data.dtype();
  node_->data = std::move(data);
  node_->requires_grad = requires_grad;
}
Variable::Variable(Node* adopted) : node_(adopted) {
  if (node_) ++node_->handles;
}
Variable::Variable(const Variable& o) : node_(o.node_) {
  if (node_) {
    retain(node_);
    ++node_->handles;
  }
}
Variable::Variable(Variable&& o) noexcept : node_(o.node_) { o.node_ = nullptr; }
Variable& Variable::operator=(const Variable& o) {
  if (o.node_) {
    retain(o.node_);
    ++o.node_->handles;
  }
  if (node_) {
    drop_handle(node_);
    release(node_);
  }
  node_ = o.node_;
  return *this;
}
Variable& Variable::operator=(Variable&& o) noexcept {
  if (this != &o) {
    if (node_) {
      drop_handle(node_);
      release(node_);
    }
    node_ = o.node_;
    o.node_ = nullptr;
  }
  return *this;
}
Variable::~Variable() {
  if (node_) {
    drop_handle(node_);
    release(node_);
  }
}

static void forget_recorded_grad(Node* n) {
  if (n->extra) n->extra->grad_var = Variable();  // Note [recorded .grad]
}

Node* detail::checked(const Node* n, const char* what) {
  UNROLL_CHECK(n, "{}: the Variable is undefined", what);
  return const_cast<Node*>(n);
}

const Tensor& Variable::data() const { return checked(node_, "data")->data; }
Tensor& Variable::data() { return checked(node_, "data")->data; }
const Tensor& Variable::grad() const { return checked(node_, "grad")->grad; }
Tensor& Variable::grad_mut() {
  Node* n = checked(node_, "grad");
  forget_recorded_grad(n);
  if (n->grad.defined() && !n->grad.unique()) n->grad = n->grad.clone();
  return n->grad;
}
void Variable::set_grad(Tensor g) {
  Node* n = checked(node_, "set_grad");
  UNROLL_CHECK(!g.defined() || g.shape() == n->data.shape(), "set_grad: gradient shape {} differs from value shape {}",
               g.shape(), n->data.shape());
  forget_recorded_grad(n);
  n->grad = std::move(g);
}
void Variable::zero_grad() {
  Node* n = checked(node_, "zero_grad");
  forget_recorded_grad(n);
  n->grad = Tensor();
}
Variable Variable::grad_variable() const {
  Node* n = checked(node_, "grad_variable");
  if (!n->grad.defined()) return Variable();
  // The recorded gradient is current while .grad is its value (the same storage): a later
  // first-order backward or an edit puts a new buffer there (Note [recorded .grad]).
  if (n->extra && n->extra->grad_var.defined() && n->extra->grad_var.data().storage_id() == n->grad.storage_id())
    return n->extra->grad_var;
  return Variable(n->grad);
}
bool Variable::requires_grad() const { return checked(node_, "requires_grad")->requires_grad; }
Variable& Variable::set_requires_grad(bool on) {
  Node* n = checked(node_, "set_requires_grad");
  UNROLL_CHECK(n->op == nullptr, "set_requires_grad: only leaves can change requires_grad; '{}' is an op output (use detach())",
               n->op);
  UNROLL_CHECK(!on || n->data.is_floating(), "set_requires_grad: a {} tensor cannot require grad", n->data.dtype());
  n->requires_grad = on;
  return *this;
}
bool Variable::is_leaf() const { return checked(node_, "is_leaf")->op == nullptr; }
const char* Variable::op_name() const {
  const Node* n = checked(node_, "op_name");
  return n->op ? n->op : "leaf";
}
void Variable::retain_grad() { checked(node_, "retain_grad")->retain_grad = true; }

Variable Variable::detach() const { return Variable(data(), false); }

void Variable::register_hook(std::function<void(const Tensor&)> fn) {
  Node* n = checked(node_, "register_hook");
  UNROLL_CHECK(n->requires_grad, "register_hook: the Variable does not require grad, so no gradient will reach it");
  extra_of(n).hooks.push_back(std::move(fn));
}

Variable& Variable::set_name(std::string name) {
  extra_of(checked(node_, "set_name")).name = std::move(name);
  return *this;
}
std::string Variable::name() const {
  const Node* n = checked(node_, "name");
  return n->extra ? n->extra->name : std::string();
}

// ---- modes ------------------------------------------------------------------------------

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }
bool anomaly_mode() { return t_anomaly; }
void set_anomaly_mode(bool on) { t_anomaly = on; }
int current_step() { return t_step; }
StepScope::StepScope(int step) : prev_(t_step) { t_step = step; }
StepScope::~StepScope() { t_step = prev_; }
int64_t live_nodes() { return t_live_nodes; }

}  // namespace unroll
