#include "autograd/graph.h"

#include "autograd/function.h"
#include "core/atomic_file.h"

#include <cstdio>
#include <map>
#include <unordered_map>

namespace unroll {

// Every node reachable from root, each once, in discovery order (explicit stack).
static std::vector<const Node*> reachable(const Node* root) {
  std::vector<const Node*> out, stack{root};
  std::unordered_map<const Node*, bool> seen{{root, true}};
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    out.push_back(n);
    for (const Node* in : n->input_span())
      if (in && seen.emplace(in, true).second) stack.push_back(in);
  }
  return out;
}

int64_t graph_size(const Variable& root) {
  UNROLL_CHECK(root.defined(), "graph_size: the Variable is undefined");
  return static_cast<int64_t>(reachable(root.node()).size());
}

static std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

namespace detail {
// Leaf name per node from (name, Variable) pairs; the first name of a Variable listed twice
// (a shared weight) wins.
std::unordered_map<const Node*, std::string> leaf_names(const NamedVariables& names) {
  std::unordered_map<const Node*, std::string> out;
  for (const auto& [name, v] : names)
    if (v.defined()) out.emplace(v.node(), name);
  return out;
}
// What a node is called in exports: its set_name name, else its name in `names`.
std::string display_name(const Node* n, const std::unordered_map<const Node*, std::string>& names) {
  if (n->extra && !n->extra->name.empty()) return n->extra->name;
  if (n->op) return {};
  auto it = names.find(n);
  return it == names.end() ? std::string() : it->second;
}
// "op", "parameter", "input", or "leaf" (a leaf when no names were given to tell them apart).
const char* node_kind(const Node* n, const std::unordered_map<const Node*, std::string>& names, bool have_names) {
  if (n->op) return "op";
  if (!have_names) return "leaf";
  return names.count(n) ? "parameter" : "input";
}
}  // namespace detail

std::string to_dot(const Variable& root, const DotOptions& opt) {
  UNROLL_CHECK(root.defined(), "to_dot: the Variable is undefined");
  const std::vector<const Node*> nodes = reachable(root.node());
  std::unordered_map<const Node*, size_t> id;
  for (size_t i = 0; i < nodes.size(); ++i) id[nodes[i]] = i;
  const std::unordered_map<const Node*, std::string> names = detail::leaf_names(opt.names);
  const bool have_names = !opt.names.empty();

  std::string s = "digraph unroll {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
  if (!opt.title.empty()) s += fmt::format("  label=\"{}\";\n  labelloc=t;\n", escape(opt.title));
  constexpr const char* kParam = "shape=ellipse, style=filled, fillcolor=\"#b8e0b8\"";
  constexpr const char* kInput = "shape=parallelogram, style=filled, fillcolor=\"#f7e3a1\"";
  constexpr const char* kConst =
      "shape=parallelogram, style=\"dashed,filled\", fillcolor=\"#eeeeee\", fontcolor=\"#666666\", fontsize=8";
  auto node_line = [&](const Node* n) {
    const std::string name = detail::display_name(n, names);
    const std::string kind = detail::node_kind(n, names, have_names);
    std::string label = n->op ? n->op : (name.empty() ? kind : escape(name));
    if (n->op && !name.empty()) label += "\\n" + escape(name);
    if (!n->op && !name.empty() && kind == "input") label = "input\\n" + label;
    label += "\\n" + n->value_shape().str();
    if (!n->op)
      return fmt::format("  n{} [label=\"{}\", {}];\n", id[n], label, kind == "input" ? kInput : kParam);
    const char* fill = n == root.node() ? "#f4c2a1" : "#dde6f5";
    std::string line = fmt::format("  n{} [label=\"{}\", shape=box, style=\"rounded,filled\", fillcolor=\"{}\"];\n",
                                   id[n], label, fill);
    // Inputs that do not require grad are not kept by the graph: one placeholder per slot.
    for (uint32_t i = 0; i < n->n_inputs; ++i)
      if (!n->inputs[i]) line += fmt::format("  c{}_{} [label=\"input\\n(no grad)\", {}];\n", id[n], i, kConst);
    return line;
  };
  std::map<int, std::vector<const Node*>> by_step;
  for (const Node* n : nodes) {
    if (opt.cluster_steps && n->step >= 0) by_step[n->step].push_back(n);
    else s += node_line(n);
  }
  for (const auto& [step, members] : by_step) {
    s += fmt::format("  subgraph cluster_step{} {{\n    label=\"step {}\";\n    style=dashed;\n", step, step);
    for (const Node* n : members) s += "  " + node_line(n);
    s += "  }\n";
  }
  for (const Node* n : nodes)
    for (uint32_t i = 0; i < n->n_inputs; ++i) {
      if (const Node* in = n->inputs[i]) s += fmt::format("  n{} -> n{};\n", id[in], id[n]);
      else if (n->op) s += fmt::format("  c{}_{} -> n{} [style=dashed, color=\"#999999\"];\n", id[n], i, id[n]);
    }
  if (opt.legend) {
    s += "  subgraph cluster_legend {\n    label=\"legend\";\n    style=solid;\n    color=\"#999999\";\n";
    if (have_names) {
      s += fmt::format("    legend_param [label=\"parameter\\n(module name)\", {}];\n", kParam);
      s += fmt::format("    legend_input [label=\"input\\n(requires grad)\", {}];\n", kInput);
    } else {
      s += fmt::format("    legend_param [label=\"leaf\\n(requires grad)\", {}];\n", kParam);
    }
    s += fmt::format("    legend_const [label=\"input\\n(no grad)\", {}];\n", kConst);
    s += "    legend_op [label=\"op\\n[output shape]\", shape=box, style=\"rounded,filled\", fillcolor=\"#dde6f5\"];\n";
    s += "    legend_root [label=\"output\\n(the root)\", shape=box, style=\"rounded,filled\", fillcolor=\"#f4c2a1\"];\n";
    s += "    legend_param -> legend_op;\n";
    if (have_names) s += "    legend_input -> legend_op;\n";
    s += "    legend_const -> legend_op [style=dashed, color=\"#999999\"];\n    legend_op -> legend_root;\n  }\n";
  }
  return s + "}\n";
}

void write_dot(const Variable& root, const std::string& path, const DotOptions& opt) {
  write_file_atomic("write_dot", path, to_dot(root, opt));
}

// ---- memory per step ------------------------------------------------------------------------
//
// Note [memory per step]
// What a recorded graph keeps for backward is tensor storage: the values its nodes still
// hold (a node keeps its value while a Variable handle to it exists; Note [values nobody
// can see] in autograd/variable.cpp) and the tensors its backward functions captured. The
// captures are inside type-erased lambdas, so they cannot be listed by walking the graph;
// instead MemoryMeter watches the allocator (detail::StorageWatcher in core/tensor.h): it
// notes each storage allocated while it is alive, with the StepScope step current at that
// moment, and forgets it when it is freed. What is still alive at report() is what the
// forward left behind, i.e. what the graph keeps (plus anything else made during the forward
// that you still hold, so hold only the root while measuring). Each storage is one entry
// however many tensors, nodes and lambdas share it, so nothing is counted twice; it is
// attributed to the step that allocated it, which is the step of the first node that holds
// it (an op's output and the temporaries it saves are allocated under that op's step).
// Storage made before the meter (parameters, the input batch) is not counted: truncating
// BPTT does not change it. Bytes are requested sizes (MemoryStats counts the same way),
// not the pool's power-of-two blocks; nodes themselves (about 100-200 bytes each) are
// counted as nodes, not bytes. A storage freed on another thread while the meter is alive
// is not seen (the allocator tells the freeing thread's watcher).

struct MemoryMeter::Impl final : detail::StorageWatcher {
  struct Entry {
    size_t bytes = 0;
    int step = -1;
  };
  detail::StorageWatcher* prev = nullptr;
  std::unordered_map<const void*, Entry> live;
  void on_alloc(const void* storage, size_t bytes) override {
    live[storage] = Entry{bytes, current_step()};
    if (prev) prev->on_alloc(storage, bytes);
  }
  void on_free(const void* storage) override {
    live.erase(storage);
    if (prev) prev->on_free(storage);
  }
};

MemoryMeter::MemoryMeter() : impl_(std::make_unique<Impl>()) {
  impl_->prev = detail::storage_watcher();
  detail::storage_watcher() = impl_.get();
}

MemoryMeter::~MemoryMeter() {
  if (detail::storage_watcher() == impl_.get()) detail::storage_watcher() = impl_->prev;
}

MemoryReport MemoryMeter::report(const Variable& root) const {
  UNROLL_CHECK(root.defined(), "MemoryMeter::report: the Variable is undefined");
  std::map<int, StepMemory> by_step;
  auto row = [&](int step) -> StepMemory& {
    StepMemory& m = by_step[step];
    m.step = step;
    return m;
  };
  std::unordered_map<const void*, bool> values;  // storages that are values of the graph's nodes
  for (const Node* n : reachable(root.node())) {
    if (n->op) ++row(n->step).nodes;
    if (n->data.defined()) values.emplace(n->data.storage_id(), true);
  }
  for (const auto& [storage, e] : impl_->live) {
    StepMemory& m = row(e.step);
    ++m.tensors;
    (values.count(storage) ? m.value_bytes : m.saved_bytes) += static_cast<int64_t>(e.bytes);
  }
  MemoryReport r;
  for (const auto& [step, m] : by_step) r.steps.push_back(m);
  return r;
}

int64_t MemoryReport::nodes() const {
  int64_t n = 0;
  for (const StepMemory& m : steps) n += m.nodes;
  return n;
}
int64_t MemoryReport::tensors() const {
  int64_t n = 0;
  for (const StepMemory& m : steps) n += m.tensors;
  return n;
}
int64_t MemoryReport::bytes() const {
  int64_t n = 0;
  for (const StepMemory& m : steps) n += m.bytes();
  return n;
}

std::string MemoryReport::table() const {
  std::string s = fmt::format("{:>6} {:>6} {:>8} {:>12} {:>12} {:>12} {:>14}\n", "step", "nodes", "tensors",
                              "values B", "saved B", "total B", "running B");
  int64_t running = 0;
  for (const StepMemory& m : steps) {
    running += m.bytes();
    s += fmt::format("{:>6} {:>6} {:>8} {:>12} {:>12} {:>12} {:>14}\n", m.step >= 0 ? std::to_string(m.step) : "-",
                     m.nodes, m.tensors, m.value_bytes, m.saved_bytes, m.bytes(), running);
  }
  int64_t value = 0, saved = 0;
  for (const StepMemory& m : steps) value += m.value_bytes, saved += m.saved_bytes;
  s += fmt::format("{:>6} {:>6} {:>8} {:>12} {:>12} {:>12}\n", "all", nodes(), tensors(), value, saved, bytes());
  return s;
}

}  // namespace unroll
