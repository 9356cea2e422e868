#include "nn/module.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <map>

namespace unroll {

void StateDict::insert(std::string name, Tensor value) {
  UNROLL_CHECK(index_.emplace(name, items_.size()).second, "StateDict: duplicate key '{}'", name);
  items_.emplace_back(std::move(name), std::move(value));
}

const Tensor* StateDict::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

const Tensor& StateDict::at(const std::string& name) const {
  const Tensor* t = find(name);
  UNROLL_CHECK(t, "StateDict: no key '{}'", name);
  return *t;
}

std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> out;
  out.reserve(items_.size());
  for (const auto& [k, v] : items_) out.push_back(k);
  return out;
}

StateDict StateDict::with_prefix(std::string_view prefix) const {
  StateDict out;
  for (const auto& [k, v] : items_)
    if (k.starts_with(prefix)) out.insert(k, v);
  return out;
}

StateDict StateDict::strip_prefix(std::string_view prefix) const {
  StateDict out;
  for (const auto& [k, v] : items_) {
    std::string name = k.starts_with(prefix) ? k.substr(prefix.size()) : k;
    UNROLL_CHECK(!name.empty(), "StateDict::strip_prefix: removing '{}' from key '{}' leaves an empty key", prefix, k);
    UNROLL_CHECK(!out.contains(name), "StateDict::strip_prefix: removing '{}' gives key '{}' twice (from '{}' and another key)",
                 prefix, name, k);
    out.insert(std::move(name), v);
  }
  return out;
}

StateDict StateDict::add_prefix(std::string_view prefix) const {
  StateDict out;
  for (const auto& [k, v] : items_) out.insert(std::string(prefix) + k, v);
  return out;
}

StateDict StateDict::submodule(std::string_view name) const {
  UNROLL_CHECK(!name.empty() && !name.ends_with('.'), "StateDict::submodule: name '{}' must be non-empty, without a trailing '.'",
               name);
  const std::string prefix = std::string(name) + ".";
  StateDict out;
  for (const auto& [k, v] : items_)
    if (k.starts_with(prefix)) out.insert(k.substr(prefix.size()), v);
  if (out.size() == 0) {
    std::vector<std::string> tops;
    for (const auto& [k, v] : items_) {
      std::string top = k.substr(0, k.find('.'));
      if (std::find(tops.begin(), tops.end(), top) == tops.end()) tops.push_back(std::move(top));
    }
    fail("StateDict::submodule: no key starts with '{}' (the {} keys begin with: {})", prefix, items_.size(),
         fmt::join(tops, ", "));
  }
  return out;
}

void Module::check_new_name(const std::string& name) const {
  UNROLL_CHECK(!name.empty() && name.find('.') == std::string::npos,
               "register: name '{}' must be non-empty and contain no '.'", name);
  for (const auto& [k, v] : params_) UNROLL_CHECK(k != name, "register: '{}' is already a parameter", name);
  for (const auto& [k, v] : children_) UNROLL_CHECK(k != name, "register: '{}' is already a sub-module", name);
}

Variable Module::register_parameter(std::string name, Tensor value) {
  return register_parameter(std::move(name), Variable(std::move(value), true));
}

Variable Module::register_parameter(std::string name, Variable value) {
  check_new_name(name);
  UNROLL_CHECK(value.defined() && value.is_leaf(), "register_parameter: '{}' must be a defined leaf Variable", name);
  value.set_requires_grad(true);
  params_.emplace_back(std::move(name), value);
  return value;
}

void Module::add_child(std::string name, std::shared_ptr<Module> module) {
  check_new_name(name);
  UNROLL_CHECK(module != nullptr, "register_module: '{}' is null", name);
  children_.emplace_back(std::move(name), std::move(module));
}

std::vector<std::pair<std::string, Variable>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Variable>> out = params_;
  for (const auto& [prefix, child] : children_)
    for (auto& [name, p] : child->named_parameters()) out.emplace_back(prefix + "." + name, p);
  return out;
}

std::vector<Variable> Module::parameters() const {
  std::vector<Variable> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  for (const auto& [prefix, child] : children_) {
    out.emplace_back(prefix, child);
    for (auto& [name, m] : child->named_modules()) out.emplace_back(prefix + "." + name, m);
  }
  return out;
}

StateDict Module::state_dict() const {
  StateDict s;
  for (auto& [name, p] : named_parameters()) s.insert(name, p.data());
  return s;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  const auto params = named_parameters();
  std::map<std::string, const Variable*> by_name;
  for (const auto& [name, p] : params) by_name[name] = &p;
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, p] : params)
    if (!state.contains(name)) missing.push_back(name);
  for (const auto& [name, value] : state) {
    auto it = by_name.find(name);
    if (it == by_name.end()) unexpected.push_back(name);
    else if (!(it->second->shape() == value.shape()))
      mismatched.push_back(fmt::format("{}: checkpoint {} vs model {}", name, value.shape(), it->second->shape()));
  }
  std::string problems;
  if (strict && !missing.empty()) problems += fmt::format("\n  missing keys: {}", fmt::join(missing, ", "));
  if (strict && !unexpected.empty()) problems += fmt::format("\n  unexpected keys: {}", fmt::join(unexpected, ", "));
  if (!mismatched.empty()) problems += fmt::format("\n  shape mismatches: {}", fmt::join(mismatched, "; "));
  UNROLL_CHECK(problems.empty(), "load_state_dict: the state does not fit the model:{}", problems);
  for (const auto& [name, value] : state) {
    auto it = by_name.find(name);
    if (it == by_name.end()) continue;
    Variable p = *it->second;
    UNROLL_CHECK(value.is_floating(), "load_state_dict: '{}' is {}, expected a floating tensor", name, value.dtype());
    Tensor converted = value.to(p.dtype());
    copy_(p.data(), converted);
  }
}

void Module::zero_grad() {
  for (Variable& p : parameters()) p.zero_grad();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Variable& p : parameters()) n += p.numel();
  return n;
}

void Module::to(DType dtype) {
  UNROLL_CHECK(dtype != DType::I64, "Module::to: parameters must be float32 or float64, not {}", dtype);
  for (Variable& p : parameters()) {
    p.data() = p.data().to(dtype);
    p.zero_grad();
  }
}

}  // namespace unroll
