// The interactive HTML pages: the recorded graph (write_html) and hidden states
// (write_state_html).
//
// Note [the HTML graph page]
// The page is one file: a <style>, a <script type="application/json"> with the graph, and
// a <script> that lays it out and draws it on a canvas (so 20,000 nodes stay responsive).
// The C++ side only collects facts; all layout happens in the page:
//   - nodes: every node reachable from the root, in recording order (leaves first), each
//     with op, name (set_name, else its name in HtmlOptions::names), kind ("op",
//     "parameter", "input", or "leaf" when no names were given), shape, StepScope step, input ids, forward rank "f", backward rank
//     "b" (the order the engine computed its gradient), and summaries [min, mean, max, L2
//     norm] of value "v" and gradient "g"; tensors of at most small_numel elements are
//     stored whole ("vs"/"gs": rows, cols, values) for the heatmaps; larger ones never.
//   - the summaries come from GraphTrace, which the engine tells of each recorded op (its
//     value is still there then: Note [values nobody can see] drops it later) and of each
//     gradient in backward, through detail::graph_observer(). Without a trace, the page
//     shows what the graph still holds.
// Everything user-supplied (names, titles) goes through json_string, which also escapes
// '<', '>' and '&', so no name can close the <script> element, and the page writes names
// with textContent / fillText only, never as HTML.
#include "autograd/graph.h"
#include "core/json.h"

#include "autograd/function.h"
#include "core/atomic_file.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace unroll {

namespace detail {
// Leaf names and kinds, shared with to_dot (autograd/graph.cpp).
std::unordered_map<const Node*, std::string> leaf_names(const NamedVariables& names);
std::string display_name(const Node* n, const std::unordered_map<const Node*, std::string>& names);
const char* node_kind(const Node* n, const std::unordered_map<const Node*, std::string>& names, bool have_names);
}

namespace {

struct Summary {
  bool ok = false;
  double min = 0, mean = 0, max = 0, norm = 0;
  int64_t rows = 0, cols = 0;
  std::vector<float> whole;  // the values, when the tensor is small
};

Summary summarize(const Tensor& t, int64_t small_numel) {
  Summary s;
  if (!t.defined() || t.numel() == 0) return s;
  const int64_t n = t.numel();
  auto at = [&](int64_t i) -> double {
    switch (t.dtype()) {
      case DType::F32: return t.data<float>()[i];
      case DType::F64: return t.data<double>()[i];
      default: return static_cast<double>(t.data<int64_t>()[i]);
    }
  };
  s.ok = true;
  s.min = s.max = at(0);
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = at(i);
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
    sum += v;
    sq += v * v;
  }
  s.mean = sum / static_cast<double>(n);
  s.norm = std::sqrt(sq);
  if (n <= small_numel) {
    s.cols = t.ndim() ? t.shape()[t.ndim() - 1] : 1;
    s.rows = s.cols ? n / s.cols : 0;
    s.whole.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) s.whole[static_cast<size_t>(i)] = static_cast<float>(at(i));
  }
  return s;
}

struct Entry {
  int64_t fwd = -1, bwd = -1;
  Summary value, grad;
};

}  // namespace

struct GraphTrace::Impl final : detail::GraphObserver {
  int64_t small_numel;
  detail::GraphObserver* prev = nullptr;
  std::unordered_map<const Node*, Entry> entries;
  int64_t next_fwd = 0, next_bwd = 0;
  const Node* last_root = nullptr;

  explicit Impl(int64_t small) : small_numel(small) {}
  void on_record(const Node* n) override {
    Entry& e = entries[n];
    e = Entry{};  // a node at a reused address is a new node
    e.fwd = next_fwd++;
    e.value = summarize(n->data, small_numel);
  }
  void on_backward_start(const Node* root) override {
    for (auto& [n, e] : entries) {
      e.bwd = -1;
      e.grad = Summary{};
    }
    next_bwd = 0;
    last_root = root;
  }
  void on_grad(const Node* n, const Tensor& g) override {
    Entry& e = entries[n];
    e.bwd = next_bwd++;
    e.grad = summarize(g, small_numel);
  }
};

GraphTrace::GraphTrace(int64_t small_numel) : impl_(std::make_unique<Impl>(small_numel)) {
  UNROLL_CHECK(small_numel >= 0, "GraphTrace: small_numel must be >= 0, got {}", small_numel);
  impl_->prev = detail::graph_observer();
  detail::graph_observer() = impl_.get();
}

GraphTrace::~GraphTrace() {
  if (detail::graph_observer() == impl_.get()) detail::graph_observer() = impl_->prev;
}

namespace {

// A JSON string literal that is also safe inside an HTML <script> element: json_quote,
// then <, > and & (which it leaves as they are) as \u escapes.
std::string json_string(const std::string& s) {
  std::string out;
  for (char c : json_quote(s)) {
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else out += c;
  }
  return out;
}

std::string html_text(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.4g}", v) : "null"; }

void put_summary(std::string& s, const char* key, const char* whole_key, const Summary& m) {
  if (!m.ok) return;
  s += fmt::format(",\"{}\":[{},{},{},{}]", key, num(m.min), num(m.mean), num(m.max), num(m.norm));
  if (m.whole.empty()) return;
  s += fmt::format(",\"{}\":[{},{}", whole_key, m.rows, m.cols);
  for (float v : m.whole) {
    s += ',';
    s += num(v);
  }
  s += "]";
}

// Inputs before the nodes made from them (iterative DFS, like the engine's).
std::vector<const Node*> inputs_first(const Node* root) {
  std::vector<const Node*> order;
  std::unordered_map<const Node*, bool> seen{{root, true}};
  std::vector<std::pair<const Node*, uint32_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->n_inputs) {
      const Node* in = node->inputs[next++];
      if (in && seen.emplace(in, true).second) stack.emplace_back(in, 0);
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  return order;
}

#include "autograd/html_pages.inc"

std::string fill_page(const char* page, const std::string& title, const std::string& json) {
  std::string s = page;
  auto put = [&](const std::string& key, const std::string& text) {
    const size_t at = s.find(key);
    if (at != std::string::npos) s.replace(at, key.size(), text);
  };
  put("@DATA@", json);  // first: the placeholder for the title comes earlier in the page
  put("@TITLE@", html_text(title));
  return s;
}

}  // namespace

std::string to_html(const Variable& root, const HtmlOptions& opt) {
  UNROLL_CHECK(root.defined(), "to_html: the Variable is undefined");
  UNROLL_CHECK(opt.collapse_above >= 0, "to_html: collapse_above must be >= 0, got {}", opt.collapse_above);
  GraphTrace::Impl* trace = static_cast<GraphTrace::Impl*>(detail::graph_observer());
  std::vector<const Node*> nodes = inputs_first(root.node());
  auto entry = [&](const Node* n) -> const Entry* {
    if (!trace) return nullptr;
    auto it = trace->entries.find(n);
    return it == trace->entries.end() ? nullptr : &it->second;
  };
  // Recording order when every op was traced; otherwise the inputs-first order as is.
  bool all_traced = trace != nullptr;
  for (const Node* n : nodes)
    if (n->op && !entry(n)) all_traced = false;
  if (all_traced)
    std::stable_sort(nodes.begin(), nodes.end(), [&](const Node* a, const Node* b) {
      const int64_t fa = a->op ? entry(a)->fwd : -1, fb = b->op ? entry(b)->fwd : -1;
      return fa < fb;
    });
  std::unordered_map<const Node*, size_t> id;
  for (size_t i = 0; i < nodes.size(); ++i) id[nodes[i]] = i;
  const bool grads_traced = trace && trace->last_root == root.node();
  const int64_t small = trace ? trace->small_numel : 64;
  const std::unordered_map<const Node*, std::string> leaf_names = detail::leaf_names(opt.names);

  std::string js = fmt::format("{{\"title\":{},\"n\":{},\"traced\":{},\"collapsed\":{},\"nodes\":[\n",
                               json_string(opt.title), nodes.size(), all_traced ? "true" : "false",
                               static_cast<int64_t>(nodes.size()) > opt.collapse_above ? "true" : "false");
  int64_t fwd = 0, bwd_fallback = 0;
  std::vector<int64_t> bwd_rank(nodes.size(), -1);
  if (!grads_traced)  // reverse inputs-first order, for the gradients the graph still holds
    for (size_t i = nodes.size(); i-- > 0;)
      if (nodes[i]->grad.defined()) bwd_rank[i] = bwd_fallback++;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node* n = nodes[i];
    const Entry* e = entry(n);
    const std::string name = detail::display_name(n, leaf_names);
    js += fmt::format("{}{{\"id\":{},\"op\":{},\"name\":{},\"kind\":\"{}\",\"shape\":[", i ? ",\n" : "", i,
                      json_string(n->op ? n->op : "leaf"), json_string(name),
                      detail::node_kind(n, leaf_names, !opt.names.empty()));
    const Shape& sh = n->value_shape();
    for (int d = 0; d < sh.ndim(); ++d) js += fmt::format("{}{}", d ? "," : "", sh[d]);
    js += fmt::format("],\"step\":{},\"in\":[", n->step);
    bool first = true;
    for (const Node* in : n->input_span())
      if (in) {
        js += fmt::format("{}{}", first ? "" : ",", id.at(in));
        first = false;
      }
    js += fmt::format("],\"f\":{}", n->op ? fwd++ : -1);
    // The value: as recorded (trace), else whatever the node still holds.
    Summary value = e && e->value.ok ? e->value : summarize(n->data, small);
    if (!n->op && n->data.defined()) value = summarize(n->data, small);  // a leaf's current value
    put_summary(js, "v", "vs", value);
    if (grads_traced) {
      if (e && e->bwd >= 0) {
        js += fmt::format(",\"b\":{}", e->bwd);
        put_summary(js, "g", "gs", e->grad);
      }
    } else if (bwd_rank[i] >= 0) {
      js += fmt::format(",\"b\":{}", bwd_rank[i]);
      put_summary(js, "g", "gs", summarize(n->grad, small));
    }
    js += "}";
  }
  js += "]}";
  return fill_page(kGraphPage, opt.title.empty() ? "unroll graph" : opt.title, js);
}

void write_html(const Variable& root, const std::string& path, const HtmlOptions& opt) {
  write_file_atomic("write_html", path, to_html(root, opt));
}

std::string to_state_html(const std::vector<std::string>& tokens, const Tensor& states, const std::string& title) {
  UNROLL_CHECK(states.defined() && states.ndim() == 2,
               "to_state_html: states must be [T, units], got {}", states.defined() ? states.shape().str() : "undefined");
  UNROLL_CHECK(static_cast<int64_t>(tokens.size()) == states.shape()[0],
               "to_state_html: {} tokens for {} time steps (states {})", tokens.size(), states.shape()[0],
               states.shape());
  const Tensor s = states.to(DType::F64);
  const int64_t T = s.shape()[0], H = s.shape()[1];
  std::string js = fmt::format("{{\"title\":{},\"T\":{},\"H\":{},\"tokens\":[", json_string(title), T, H);
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (t) js += ',';
    js += json_string(tokens[t]);
  }
  js += "],\"h\":[";
  const double* p = s.data<double>();
  for (int64_t i = 0; i < T * H; ++i) {
    if (i) js += ',';
    js += num(std::round(p[i] * 1000) / 1000);
  }
  js += "]}";
  return fill_page(kStatePage, title.empty() ? "unroll hidden states" : title, js);
}

void write_state_html(const std::string& path, const std::vector<std::string>& tokens, const Tensor& states,
                      const std::string& title) {
  write_file_atomic("write_state_html", path, to_state_html(tokens, states, title));
}

}  // namespace unroll
