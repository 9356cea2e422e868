// Internal to autograd: what the backward engine (autograd/engine.cpp) shares with the
// Variable handle and the nodes (autograd/variable.cpp). Not part of the public API.
#pragma once

#include "autograd/function.h"

#include <string>
#include <unordered_map>

namespace unroll::detail {

/// "'op' (shape [..], name 'x', step 3)" for error messages.
std::string describe(const Node* n);
/// No NaN or Inf among a floating tensor's elements (anomaly mode).
bool all_finite(const Tensor& t);
/// grad(n) += g (the first gradient is stored as is; a later one added in place if unshared).
void accumulate(Node* n, Tensor g);
/// The same for a recorded backward (create_graph): Note [recorded .grad].
void accumulate_recorded(Node* n, const Variable& g);
/// Deferred weight-gradient terms waiting at n, and adding them (Note [deferred weight gradients]).
bool has_pending(const Node* n);
void flush_pending(Node* n);
/// The gradients of a recorded backward pass, as Variables, by node.
struct GradMap {
  std::unordered_map<Node*, Variable> grads;
};
/// n, or an error naming `what` if the Variable is undefined.
Node* checked(const Node* n, const char* what);

}  // namespace unroll::detail
