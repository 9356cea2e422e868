#pragma once
// Looking at the recorded graph: Graphviz export and counts.
#include "autograd/variable.h"

#include <string>

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

}  // namespace unroll
