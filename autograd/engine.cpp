// The backward engine: the walk of the recorded graph in reverse topological order, for
// backward() (gradients accumulate into the leaves) and grad() (gradients returned), first
// order on Tensors or recorded on Variables (create_graph). The nodes, the Variable handle
// and the helpers shared with it are autograd/variable.cpp (autograd/engine.h).
#include "autograd/engine.h"
#include "autograd/formula.h"
#include "autograd/grad.h"

#include <atomic>
#include <unordered_map>
#include <vector>

namespace unroll {

namespace {
using detail::accumulate;
using detail::accumulate_recorded;
using detail::all_finite;
using detail::checked;
using detail::describe;
using detail::flush_pending;
using detail::has_pending;

// Visit marks of the backward engine's graph walk. One counter for the whole process, not
// one per thread: a graph may be back-propagated on another thread than the one that built
// it (or that ran an earlier pass over shared nodes), and two threads' counters would give
// the same mark to different passes, so the later pass would take the nodes the earlier one
// marked as already visited and skip them (test_threads: no gradient at all).
std::atomic<uint32_t> g_epoch{0};

// Reverse topological order of the nodes reachable from the roots through nodes that
// require grad: an iterative depth-first search with an explicit stack, finishing a node
// after all its inputs, so `order` lists inputs before the nodes made from them.
std::vector<Node*> topological_order(std::span<Node* const> roots) {
  const uint32_t epoch = g_epoch.fetch_add(1, std::memory_order_relaxed) + 1;
  std::vector<Node*> order;
  std::vector<std::pair<Node*, uint32_t>> stack;  // node, next input to visit
  for (Node* root : roots) {
    if (root->visit == epoch) continue;
    root->visit = epoch;
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->n_inputs) {
        Node* in = node->inputs[next++];
        if (in && in->visit != epoch) {
          in->visit = epoch;
          stack.emplace_back(in, 0);
        }
      } else {
        order.push_back(node);
        stack.pop_back();
      }
    }
  }
  return order;
}

// One run of the engine: backward() (gradients accumulate into the leaves) or grad()
// (gradients of `targets` are returned; nothing else's .grad changes).
struct EngineRun {
  std::span<Node* const> roots;
  std::span<const Tensor> seeds;  // one per root
  bool retain_graph = false;
  std::span<Node* const> targets;  // grad(): the inputs asked for; empty for backward()
  std::vector<Tensor>* captured = nullptr;  // grad(): one per target
  // This thread's modes, read once per pass (autograd/variable.cpp keeps them).
  detail::GraphObserver* observer = detail::graph_observer();
  bool anomaly = anomaly_mode();
};

template <bool kGradMode>
void backward_pass(const std::vector<Node*>& order, const EngineRun& run, uint32_t need);

// The graph below `roots` in topological order, checked to be walkable (not freed by an
// earlier backward).
std::vector<Node*> walkable_order(std::span<Node* const> roots) {
  std::vector<Node*> order = topological_order(roots);
  for (Node* n : order)
    UNROLL_CHECK(!n->released,
                 "backward: the graph through {} was already freed by a previous backward(); pass "
                 "BackwardOptions{{.retain_graph = true}} to the first backward() to walk it twice, or detach() "
                 "state that is carried from one iteration to the next",
                 describe(n));
  return order;
}

// grad(): marks the nodes through which a gradient can reach a target (inputs come before
// their consumers in `order`, so one pass does it) with a fresh epoch; only they take
// gradients. Returns the mark.
uint32_t mark_need(const std::vector<Node*>& order, std::span<Node* const> targets) {
  const uint32_t need = g_epoch.fetch_add(1, std::memory_order_relaxed) + 1;
  for (Node* t : targets) t->need = need;
  for (Node* n : order)
    for (uint32_t i = 0; i < n->n_inputs && n->need != need; ++i)
      if (n->inputs[i] && n->inputs[i]->need == need) n->need = need;
  return need;
}


void run_engine(const EngineRun& run) {
  const bool grad_mode = run.captured != nullptr;
  std::vector<Node*> order = walkable_order(run.roots);
  const uint32_t need = grad_mode ? mark_need(order, run.targets) : 0;
  // Gradients kept from earlier backward calls (a retained non-leaf gradient, or a leaf
  // with hooks; for grad(), every gradient) are set aside so this pass propagates and
  // reports only its own gradient; they are put back at the end, so backward() still
  // accumulates across calls and grad() leaves them as they were.
  std::vector<std::pair<Node*, Tensor>> stashed;
  for (Node* n : order) {
    if (!n->grad.defined()) continue;
    const bool keeps = grad_mode || (n->op ? n->retain_grad : (n->extra && !n->extra->hooks.empty()));
    if (keeps) stashed.emplace_back(n, std::move(n->grad));
    else if (n->op) n->grad = Tensor();  // left over from an interrupted backward
  }
  for (size_t i = 0; i < run.roots.size(); ++i) accumulate(run.roots[i], run.seeds[i]);
  auto restore = [&] {
    if (grad_mode)
      for (Node* n : order) n->grad = Tensor();
    for (auto& [n, old] : stashed) accumulate(n, std::move(old));  // gradients of earlier calls stay
  };
  if (run.observer) run.observer->on_backward_start(run.roots[0]);
  try {
    // Two instances, so backward() pays for none of grad()'s tests.
    if (grad_mode) backward_pass<true>(order, run, need);
    else backward_pass<false>(order, run, need);
  } catch (...) {
    // Note [deferred weight gradients]: add what was held, then let the error go.
    for (Node* n : order)
      if (has_pending(n)) {
        try {
          flush_pending(n);
        } catch (...) {
          n->extra->deferred.clear();
        }
      }
    restore();
    throw;
  }
  restore();
}

bool runs_backward(const Node* n, uint32_t need) {
  if (!n->op) return false;
  if (need == 0) return true;
  for (uint32_t i = 0; i < n->n_inputs; ++i)
    if (n->inputs[i] && n->inputs[i]->need == need) return true;
  return false;
}

void capture(const EngineRun& run, Node* n) {
  for (size_t k = 0; k < run.targets.size(); ++k)
    if (run.targets[k] == n) (*run.captured)[k] = n->grad;
}

template <bool kGradMode>
void backward_pass(const std::vector<Node*>& order, const EngineRun& run, uint32_t need) {
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = *it;
    if (has_pending(n)) flush_pending(n);  // all consumers of n have run
    if (!n->grad.defined()) continue;  // no path from the root reached it
    if (run.anomaly && !all_finite(n->grad)) fail("anomaly: the gradient of {} contains NaN or Inf", describe(n));
    if (n->extra)
      for (auto& hook : n->extra->hooks) hook(n->grad);
    if (run.observer) run.observer->on_grad(n, n->grad);
    if constexpr (kGradMode) {
      capture(run, n);
      if (!runs_backward(n, need)) continue;  // a leaf keeps its gradient
    } else if (!n->op) {
      continue;  // a leaf keeps its gradient
    }
    Grads grads(n, need);
    n->run_backward(n->grad, grads);
    if (run.anomaly)
      for (uint32_t i = 0; i < n->n_inputs; ++i)
        if (n->inputs[i] && n->inputs[i]->grad.defined() && !all_finite(n->inputs[i]->grad))
          fail("anomaly: backward of {} produced NaN or Inf in the gradient of its input {}", describe(n), i);
    if (!run.retain_graph) {
      n->release_saved();
      n->released = true;
    }
    if (!n->retain_grad || kGradMode) n->grad = Tensor();
  }
}

// Note [the recorded backward pass]
// backward/grad with create_graph walk the same reverse topological order, but hold each
// gradient as a Variable (in a map, off the first-order path: backward_pass is untouched)
// and run each node's formula on Variables with grad mode on, so every step of the
// backward is recorded as ops. A formula reads the op's inputs and output through
// GradsGraph::in/out, which hand out Variables for the original nodes, so the new graph
// reaches back into the old one (a second derivative flows through y as a function of x).
// Gradients are released as soon as their node has run; the loop is iterative like the
// first-order one, so depth costs no stack.
void run_engine_graph(const EngineRun& run, std::span<const Variable> seeds, std::vector<Variable>* captured) {
  const bool grad_mode = captured != nullptr;
  std::vector<Node*> order = walkable_order(run.roots);
  const uint32_t need = grad_mode ? mark_need(order, run.targets) : 0;
  struct Restore {
    bool on = grad_enabled();
    ~Restore() { set_grad_enabled(on); }
  } restore_mode;
  set_grad_enabled(true);
  detail::GradMap map;
  for (size_t i = 0; i < run.roots.size(); ++i) {
    Variable& slot = map.grads[run.roots[i]];
    slot = slot.defined() ? add(slot, seeds[i]) : seeds[i];
  }
  if (run.observer) run.observer->on_backward_start(run.roots[0]);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = *it;
    auto found = map.grads.find(n);
    if (found == map.grads.end()) continue;  // no path from the root reached it
    const Variable g = std::move(found->second);
    map.grads.erase(found);
    const Tensor& value = g.data();
    if (run.anomaly && !all_finite(value)) fail("anomaly: the gradient of {} contains NaN or Inf", describe(n));
    if (n->extra)
      for (auto& hook : n->extra->hooks) hook(value);
    if (run.observer) run.observer->on_grad(n, value);
    if (grad_mode) {
      for (size_t k = 0; k < run.targets.size(); ++k)
        if (run.targets[k] == n) (*captured)[k] = g;
      if (!runs_backward(n, need)) continue;
    } else {
      if (!n->op || n->retain_grad) accumulate_recorded(n, g);  // Note [recorded .grad]
      if (!n->op) continue;
    }
    GradsGraph grads(n, need, &map);
    n->run_backward_graph(g, grads);
    if (!run.retain_graph) {
      n->release_saved();
      n->released = true;
    }
  }
}

void check_root(const Node* root, const char* what) {
  UNROLL_CHECK(root->requires_grad,
               "{}: the Variable does not require grad: no input of the ops that made it has "
               "requires_grad=true (or it was made under NoGradGuard)",
               what);
}

}  // namespace

void Variable::backward(BackwardOptions opt) const {
  Node* n = checked(node_, "backward");
  UNROLL_CHECK(n->data.numel() == 1,
               "backward: called on a Variable of shape {} ({} elements); backward() without a gradient needs a "
               "one-element Variable (reduce it with sum() or mean(), or pass the upstream gradient)",
               n->data.shape(), n->data.numel());
  backward(ones_like(n->data), opt);
}

void Variable::backward(const Tensor& grad, BackwardOptions opt) const {
  Node* n = checked(node_, "backward");
  UNROLL_CHECK(grad.defined() && grad.shape() == n->data.shape() && grad.dtype() == n->data.dtype(),
               "backward: the upstream gradient ({} {}) must match the Variable ({} {})",
               grad.defined() ? grad.shape().str() : "undefined", grad.dtype(), n->data.shape(), n->data.dtype());
  check_root(n, "backward");
  Node* roots[1] = {n};
  EngineRun run;
  run.roots = roots;
  run.seeds = std::span<const Tensor>(&grad, 1);
  run.retain_graph = opt.retain_graph.value_or(opt.create_graph);
  if (opt.create_graph) {
    const Variable seed(grad);
    run_engine_graph(run, std::span<const Variable>(&seed, 1), nullptr);
    return;
  }
  run_engine(run);
}

std::vector<Variable> grad(std::span<const Variable> outputs, std::span<const Variable> inputs,
                           std::span<const Variable> grad_outputs, GradOptions opt) {
  UNROLL_CHECK(!outputs.empty(), "grad: no outputs given");
  UNROLL_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(),
               "grad: {} grad_outputs given for {} outputs (give one per output, or none for one-element outputs)",
               grad_outputs.size(), outputs.size());
  std::vector<Node*> roots;
  std::vector<Tensor> seeds;
  std::vector<Variable> seed_vars;  // create_graph: the seeds as Variables (a grad_output may require grad)
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Variable& y = outputs[i];
    UNROLL_CHECK(y.defined(), "grad: output {} is undefined", i);
    UNROLL_CHECK(y.requires_grad(),
                 "grad: output {} (op '{}', shape {}) does not require grad: no input of the ops that made it has "
                 "requires_grad=true (or it was made under NoGradGuard)",
                 i, y.op_name(), y.node()->value_shape());
    Tensor seed;
    if (grad_outputs.empty() || !grad_outputs[i].defined()) {
      UNROLL_CHECK(y.node()->value_shape().numel() == 1,
                   "grad: output {} has shape {} ({} elements); without grad_outputs every output must have one "
                   "element (pass a grad_output of its shape)",
                   i, y.node()->value_shape(), y.node()->value_shape().numel());
      seed = ones(y.node()->value_shape(), y.node()->value_dtype());
    } else {
      const Variable& go = grad_outputs[i];
      UNROLL_CHECK(go.shape() == y.node()->value_shape() && go.dtype() == y.node()->value_dtype(),
                   "grad: grad_output {} ({} {}) must match output {} ({} {})", i, go.shape(), go.dtype(), i,
                   y.node()->value_shape(), y.node()->value_dtype());
      seed = go.data();
      if (opt.create_graph) seed_vars.push_back(go);
    }
    if (opt.create_graph && seed_vars.size() == i) seed_vars.emplace_back(seed);
    roots.push_back(y.node());
    seeds.push_back(std::move(seed));
  }
  std::vector<Node*> targets;
  for (size_t i = 0; i < inputs.size(); ++i) {
    UNROLL_CHECK(inputs[i].defined(), "grad: input {} is undefined", i);
    UNROLL_CHECK(inputs[i].requires_grad(),
                 "grad: input {} (op '{}', shape {}) does not require grad, so no gradient can be taken with "
                 "respect to it",
                 i, inputs[i].op_name(), inputs[i].node()->value_shape());
    targets.push_back(inputs[i].node());
  }
  std::vector<Tensor> captured(targets.size());
  std::vector<Variable> captured_vars(targets.size());
  EngineRun run;
  run.roots = roots;
  run.seeds = seeds;
  run.retain_graph = opt.retain_graph.value_or(opt.create_graph);
  run.targets = targets;
  run.captured = &captured;
  if (opt.create_graph) run_engine_graph(run, seed_vars, &captured_vars);
  else run_engine(run);
  std::vector<Variable> result(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (opt.create_graph) {
      if (captured_vars[i].defined()) {
        result[i] = std::move(captured_vars[i]);
        continue;
      }
    }
    if (!captured[i].defined()) {
      UNROLL_CHECK(opt.allow_unused,
                   "grad: input {} (op '{}', shape {}) is not used to compute the outputs (no path leads from it to "
                   "them); pass GradOptions{{.allow_unused = true}} to get an undefined Variable for it",
                   i, inputs[i].op_name(), inputs[i].node()->value_shape());
      continue;
    }
    result[i] = Variable(std::move(captured[i]));
  }
  return result;
}

std::vector<Variable> grad(const Variable& output, std::span<const Variable> inputs, GradOptions opt) {
  return grad(std::span<const Variable>(&output, 1), inputs, {}, opt);
}

}  // namespace unroll
