#pragma once
// Looking at the recorded graph: Graphviz export and counts.
#include "autograd/variable.h"

#include <memory>
#include <string>
#include <vector>

namespace unroll {

struct DotOptions {
  bool cluster_steps = true;  ///< group nodes recorded under StepScope(t) into "step t" boxes
  std::string title;          ///< graph label (optional)
};

/// The graph that made `root` in Graphviz DOT: one box per op with its name and output
/// shape; leaves that require grad (parameters) are green ellipses, named Variables show
/// their name. Edges point from inputs to the ops that use them, so the graph reads in
/// the forward direction; backward walks it against the arrows.
std::string to_dot(const Variable& root, const DotOptions& opt = {});

/// Writes to_dot(root) to `path` (atomically: a temporary file, then rename).
void write_dot(const Variable& root, const std::string& path, const DotOptions& opt = {});

/// Number of nodes (ops and leaves that require grad) reachable from root.
int64_t graph_size(const Variable& root);

// ---- the interactive page (Note [the HTML graph page] in autograd/html.cpp) -------------

/// While alive, watches this thread's recording and backward for write_html: each op's
/// recording order and value summary (taken as it is recorded, so values the graph later
/// drops still show), and each node's gradient summary in the order backward computed it
/// (of the last backward). Costs one pass over each op output and gradient; the graph
/// itself is unchanged. Traces nest (the innermost one watches).
///
///   GraphTrace trace;
///   Variable loss = model_loss(...);     // forward, under StepScope(t) per step
///   loss.backward();
///   write_html(loss, "graph.html");      // while `trace` is alive
class GraphTrace {
public:
  explicit GraphTrace(int64_t small_numel = 64);  ///< tensors up to this size are kept whole (heatmaps)
  ~GraphTrace();
  GraphTrace(const GraphTrace&) = delete;
  GraphTrace& operator=(const GraphTrace&) = delete;
  struct Impl;
  Impl& impl() { return *impl_; }
private:
  std::unique_ptr<Impl> impl_;
};

struct HtmlOptions {
  std::string title;            ///< shown at the top of the page and in its <title>
  int64_t collapse_above = 2000;  ///< open in the collapsed (one box per step) view above this many nodes
};

/// One self-contained HTML page (inline script and style, no network; opens from file://)
/// showing the graph that made `root`, laid out by StepScope step, with per-node value and
/// gradient summaries, forward and backward replay, the collapsed chain-of-cells view and
/// the ||dL/dh_t|| panel. Values and gradients come from the innermost live GraphTrace;
/// without one, only what the graph still holds (leaf values and gradients) is shown.
std::string to_html(const Variable& root, const HtmlOptions& opt = {});
/// Writes to_html(root) to `path` (atomically).
void write_html(const Variable& root, const std::string& path, const HtmlOptions& opt = {});

/// A hidden-state page (the shape of LSTMVis, Strobelt et al. 2017): `states` [T, units]
/// as a heatmap, units down, time across, with tokens[t] along the time axis; per unit,
/// its mean activation at spaces, quotes, line ends and other characters, and the units
/// that respond most to each. tokens.size() must equal T.
std::string to_state_html(const std::vector<std::string>& tokens, const Tensor& states, const std::string& title = {});
void write_state_html(const std::string& path, const std::vector<std::string>& tokens, const Tensor& states,
                      const std::string& title = {});

}  // namespace unroll
