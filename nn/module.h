#pragma once
// Module: a layer or model with named parameters and sub-modules, like torch.nn.Module.
//
//   struct Net : Module {
//     std::shared_ptr<Linear> fc = register_module("fc", std::make_shared<Linear>(4, 2));
//   };
//   net.named_parameters()  ->  "fc.weight" [2,4], "fc.bias" [2]
//
// Parameters are Variables (leaves with requires_grad); a layer keeps a handle to each as
// a member and the Module keeps the same handle under its name, so both see one value.
#include "autograd/variable.h"

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace unroll {

/// An ordered list of (name, tensor): the state of a model, keyed like PyTorch's state_dict.
class StateDict {
public:
  void insert(std::string name, Tensor value);
  const Tensor* find(const std::string& name) const;  ///< nullptr if absent
  const Tensor& at(const std::string& name) const;     ///< throws if absent
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  size_t size() const { return items_.size(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  std::vector<std::string> keys() const;  ///< in insertion order

  // Prefix helpers, for taking one module out of a whole-model checkpoint (what PyTorch
  // users write as {k[len(p):]: v for k, v in sd.items() if k.startswith(p)}). Tensors are
  // shared, not copied; order is kept.
  /// The entries whose key starts with `prefix` (keys unchanged).
  StateDict with_prefix(std::string_view prefix) const;
  /// Every entry, with `prefix` removed from the keys that start with it (the others are
  /// kept as they are, like torch's consume_prefix_in_state_dict_if_present); a key that
  /// would then appear twice is an error naming both.
  StateDict strip_prefix(std::string_view prefix) const;
  /// Every entry with `prefix` put in front of its key.
  StateDict add_prefix(std::string_view prefix) const;
  /// The state of sub-module `name` ("encoder", "layers.0"): the entries under "name.",
  /// with that removed. An error lists the top-level names present if none is under it.
  StateDict submodule(std::string_view name) const;
private:
  std::vector<std::pair<std::string, Tensor>> items_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in items_
};

class Module {
public:
  Module() = default;
  Module(const Module&) = delete;  // a copy would silently share parameters
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  /// All parameters, this module's first, then each sub-module's, in registration order.
  std::vector<Variable> parameters() const;
  /// Same, with dotted names ("encoder.weight_ih_l0").
  std::vector<std::pair<std::string, Variable>> named_parameters() const;
  /// Sub-modules with dotted names (not including this module).
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;
  /// Parameter values by name (the tensors are shared, not copied).
  StateDict state_dict() const;
  /// Copies values into the parameters. Strict: every key must match a parameter of the
  /// same shape and every parameter must be given; the error lists every missing key,
  /// unexpected key and shape mismatch. Non-strict: loads what matches, ignores the rest
  /// (shape mismatches are still errors). Values are converted to each parameter's dtype.
  void load_state_dict(const StateDict& state, bool strict = true);
  /// Drops every parameter's gradient.
  void zero_grad();
  /// Training mode (dropout active) or evaluation mode, recursively.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  /// Total number of parameter elements.
  int64_t num_parameters() const;
  /// Converts every parameter to dtype (e.g. float64 for gradcheck), in place.
  void to(DType dtype);

protected:
  /// Registers a new parameter (a leaf requiring grad) holding `value`; returns its handle.
  Variable register_parameter(std::string name, Tensor value);
  /// Registers an existing Variable under a name (shared, not copied).
  Variable register_parameter(std::string name, Variable value);
  template <typename M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    add_child(std::move(name), module);
    return module;
  }

private:
  void add_child(std::string name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name) const;
  std::vector<std::pair<std::string, Variable>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace unroll
