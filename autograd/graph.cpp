#include "autograd/graph.h"

#include "autograd/function.h"

#include <cstdio>
#include <fstream>
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

std::string to_dot(const Variable& root, const DotOptions& opt) {
  UNROLL_CHECK(root.defined(), "to_dot: the Variable is undefined");
  const std::vector<const Node*> nodes = reachable(root.node());
  std::unordered_map<const Node*, size_t> id;
  for (size_t i = 0; i < nodes.size(); ++i) id[nodes[i]] = i;

  std::string s = "digraph unroll {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
  if (!opt.title.empty()) s += fmt::format("  label=\"{}\";\n  labelloc=t;\n", escape(opt.title));
  auto node_line = [&](const Node* n) {
    const std::string name = n->extra ? n->extra->name : std::string();
    std::string label = n->op ? n->op : (name.empty() ? "leaf" : name);
    if (n->op && !name.empty()) label += "\\n" + escape(name);
    label += "\\n" + n->value_shape().str();
    if (!n->op) return fmt::format("  n{} [label=\"{}\", shape=ellipse, style=filled, fillcolor=\"#b8e0b8\"];\n",
                                   id[n], label);
    const char* fill = n == root.node() ? "#f4c2a1" : "#dde6f5";
    return fmt::format("  n{} [label=\"{}\", shape=box, style=\"rounded,filled\", fillcolor=\"{}\"];\n", id[n], label,
                       fill);
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
    for (const Node* in : n->input_span())
      if (in) s += fmt::format("  n{} -> n{};\n", id[in], id[n]);
  return s + "}\n";
}

namespace detail {
// `text` to `path` through a temporary and a rename; errors name `who`.
void write_text_file(const char* who, const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    UNROLL_CHECK(f.good(), "{}: cannot open '{}' for writing", who, tmp);
    f << text;
    f.flush();
    UNROLL_CHECK(f.good(), "{}: writing '{}' failed", who, tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("{}: cannot rename '{}' to '{}'", who, tmp, path);
  }
}
}  // namespace detail

void write_dot(const Variable& root, const std::string& path, const DotOptions& opt) {
  detail::write_text_file("write_dot", path, to_dot(root, opt));
}

}  // namespace unroll
