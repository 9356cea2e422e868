#pragma once
// grad(): the gradients of outputs with respect to chosen inputs, returned as Variables
// (torch.autograd.grad). Unlike Variable::backward(), nothing is accumulated into any
// .grad. With create_graph the backward pass is itself recorded, so the returned
// gradients can be differentiated again, to any order:
//
//   Variable x(tensor({1.5}, DType::F64), true);
//   Variable y = sum(pow(x, 4.0));
//   Variable g1 = grad(y, {&x, 1}, {.create_graph = true})[0];   // 4 x^3
//   Variable g2 = grad(sum(g1), {&x, 1}, {.create_graph = true})[0];  // 12 x^2
#include "autograd/variable.h"

#include <optional>
#include <span>
#include <vector>

namespace unroll {

struct GradOptions {
  std::optional<bool> retain_graph;  ///< keep the graph for another pass; unset = create_graph
  bool create_graph = false;         ///< record the backward pass so the result is differentiable
  bool allow_unused = false;         ///< an input no output depends on gets an undefined Variable (else an error)
};

/// d(sum_k <outputs[k], grad_outputs[k]>) / d inputs[i] for each input (leaves or
/// intermediate Variables). grad_outputs: one per output, of its shape (they may require
/// grad; with create_graph the result is differentiable with respect to them too); empty:
/// ones, for one-element outputs only.
std::vector<Variable> grad(std::span<const Variable> outputs, std::span<const Variable> inputs,
                           std::span<const Variable> grad_outputs = {}, GradOptions opt = {});
/// Convenience: one one-element output.
std::vector<Variable> grad(const Variable& output, std::span<const Variable> inputs, GradOptions opt = {});

}  // namespace unroll
