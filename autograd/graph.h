#pragma once
// Looking at the recorded graph: Graphviz export and counts.
#include "autograd/variable.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace unroll {

/// (name, Variable) pairs that name a graph's leaves: what Module::named_parameters()
/// returns ("rnn.weight_ih_l0", ...). Several modules' lists can be concatenated.
using NamedVariables = std::vector<std::pair<std::string, Variable>>;

struct DotOptions {
  bool cluster_steps = true;  ///< group nodes recorded under StepScope(t) into "step t" boxes
  std::string title = {};     ///< graph label (optional)
  /// The model's parameters by name, e.g. {.names = model.named_parameters()}. A leaf found
  /// here is drawn as a parameter under its name (a name given with Variable::set_name
  /// wins); every other leaf is drawn as an input. Empty: leaves are not told apart.
  NamedVariables names = {};
  bool legend = true;  ///< a "legend" box: what each node shape and colour means
};

/// The graph that made `root` in Graphviz DOT: one box per op with its name and output
/// shape. Leaves: parameters (those in opt.names) are green ellipses with their module
/// name; inputs (leaves that require grad but are not in opt.names) are yellow
/// parallelograms; inputs that do not require grad are not part of the recorded graph (no
/// edge to them is kept), so each such input slot of an op is a small grey dashed
/// parallelogram "input (no grad)". Named Variables show their name. Edges point from
/// inputs to the ops that use them, so the graph reads in the forward direction; backward
/// walks it against the arrows.
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
  std::string title = {};       ///< shown at the top of the page and in its <title>
  int64_t collapse_above = 2000;  ///< open in the collapsed (one box per step) view above this many nodes
  /// Parameters by name, as DotOptions::names: leaves found here are shown as parameters
  /// under these names, other leaves as inputs (a set_name name wins).
  NamedVariables names = {};
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

// ---- memory per time step (Note [memory per step] in autograd/graph.cpp) -----------------

/// One StepScope step of a MemoryReport.
struct StepMemory {
  int step = -1;            ///< the StepScope label; -1: recorded outside any step
  int64_t nodes = 0;        ///< nodes of the graph recorded under this step
  int64_t tensors = 0;      ///< distinct storages counted for this step
  int64_t value_bytes = 0;  ///< bytes of those that are values the graph's nodes still hold
  int64_t saved_bytes = 0;  ///< bytes of the others: tensors only backward functions keep
  int64_t bytes() const { return value_bytes + saved_bytes; }
};

struct MemoryReport {
  std::vector<StepMemory> steps;  ///< ascending by step (-1 first, when present)
  int64_t nodes() const;          ///< totals over the steps
  int64_t tensors() const;
  int64_t bytes() const;
  /// A fixed-width table: step, nodes, tensors, value bytes, saved bytes, total, and the
  /// running total (what the graph holds once the forward has reached that step).
  std::string table() const;
};

/// While alive, watches the tensor storage allocated on this thread, so that report() can
/// say, per StepScope step, what a recorded graph keeps for backward:
///
///   MemoryMeter meter;
///   Variable loss = forward(...);                 // under StepScope(t) per step
///   fmt::print("{}", meter.report(loss).table()); // before backward frees the saved state
///
/// A storage counts when it was allocated while the meter was alive and is still alive at
/// report(); it counts once (shared storage, e.g. a reshape or a value saved by two
/// backward functions, is one storage) and for the step that was current when it was
/// allocated. Tensors made before the meter (parameters, the input batch) do not count.
/// Meters nest (each sees the allocations made while it is alive).
class MemoryMeter {
public:
  MemoryMeter();
  ~MemoryMeter();
  MemoryMeter(const MemoryMeter&) = delete;
  MemoryMeter& operator=(const MemoryMeter&) = delete;
  MemoryReport report(const Variable& root) const;
  struct Impl;
private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace unroll
