// The training state of an exactly resumable run (nn/training_state.h, Note [exact resume]).
#include "nn/training_state.h"

#include "core/error.h"

#include <algorithm>
#include <charconv>
#include <optional>

namespace unroll {

namespace {

constexpr const char* kOptimPrefix = "optim.";
constexpr const char* kRngPrefix = "rng.";
constexpr const char* kStatePrefix = "state.";

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

/// The metadata integer `key`, or nullopt when absent; an error when present but not an integer.
std::optional<int64_t> integer(const Metadata& meta, const std::string& key, const std::string& what) {
  const auto it = meta.find(key);
  if (it == meta.end()) return std::nullopt;
  const std::string& s = it->second;
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  UNROLL_CHECK(ec == std::errc() && end == s.data() + s.size() && !s.empty(),
               "training state '{}': metadata \"{}\" must be an integer, got \"{}\"", what, key, s);
  return v;
}

}  // namespace

TrainingState& TrainingState::optimizer(optim::Optimizer& opt) {
  UNROLL_CHECK(optimizer_ == nullptr, "TrainingState: an optimizer is already bound");
  optimizer_ = &opt;
  return *this;
}

TrainingState& TrainingState::generator(const std::string& name, Generator& gen) {
  for (const auto& [n, g] : generators_) UNROLL_CHECK(n != name, "TrainingState: generator \"{}\" bound twice", name);
  generators_.emplace_back(name, &gen);
  return *this;
}

TrainingState& TrainingState::carried(State& state, std::vector<std::string> names, Shape shape) {
  UNROLL_CHECK(!names.empty(), "TrainingState::carried: no names given");
  carried_.push_back({&state, std::move(names), std::move(shape)});
  return *this;
}

TrainingState& TrainingState::counter(const std::string& name, int64_t& value) {
  counters_.push_back({name, &value});
  return *this;
}

TrainingState& TrainingState::position(const std::string& name, int64_t& value) {
  positions_.push_back({name, &value});
  return *this;
}

TrainingState& TrainingState::layout(const std::string& name, int64_t value) {
  layout_.emplace_back(name, value);
  return *this;
}

StateDict TrainingState::state_dict() const {
  StateDict out;
  if (optimizer_ != nullptr)
    for (const auto& [name, t] : optimizer_->state_dict()) out.insert(kOptimPrefix + name, t);
  for (const auto& [name, gen] : generators_) out.insert(kRngPrefix + name, gen->get_state());
  for (const Carried& c : carried_) {
    if (c.state->empty()) continue;  // at a pass border: nothing carried
    UNROLL_CHECK(c.state->size() == c.names.size(), "TrainingState: the carried state has {} tensors, {} names",
                 c.state->size(), c.names.size());
    for (size_t i = 0; i < c.names.size(); ++i) out.insert(kStatePrefix + c.names[i], (*c.state)[i].data());
  }
  return out;
}

Metadata TrainingState::metadata() const {
  Metadata out;
  for (const Integer& c : counters_) out[c.name] = std::to_string(*c.value);
  for (const Integer& p : positions_) out[p.name] = std::to_string(*p.value);
  for (const auto& [name, v] : layout_) out[name] = std::to_string(v);
  return out;
}

TrainingState::Restored TrainingState::load_state_dict(const StateDict& tensors, const Metadata& meta,
                                                       const std::string& what) {
  if (std::none_of(tensors.begin(), tensors.end(), [](const auto& kv) { return is_state_name(kv.first); }))
    return Restored::nothing;
  // Read and check everything first, then assign, so that a bad file changes nothing.
  std::vector<std::pair<Integer, int64_t>> counters;
  for (const Integer& c : counters_) {
    const std::optional<int64_t> v = integer(meta, c.name, what);
    UNROLL_CHECK(v.has_value(), "training state '{}': no metadata \"{}\"", what, c.name);
    counters.emplace_back(c, *v);
  }
  std::vector<Tensor> gen_states;
  for (const auto& [name, gen] : generators_) {
    const std::string key = kRngPrefix + name;
    const Tensor* t = tensors.find(key);
    UNROLL_CHECK(t != nullptr, "training state '{}': no \"{}\" (the generator's state)", what, key);
    try {
      Generator probe(0);
      probe.set_state(*t);
    } catch (const Error& e) {
      fail("training state '{}': \"{}\": {}", what, key, e.what());
    }
    gen_states.push_back(*t);
  }
  // The data layout: the carried state and the positions only when it is the same.
  bool same_layout = true;
  for (const auto& [name, v] : layout_) same_layout = same_layout && integer(meta, name, what) == v;
  std::vector<int64_t> positions;
  for (const Integer& p : positions_) {
    const std::optional<int64_t> v = integer(meta, p.name, what);
    same_layout = same_layout && v.has_value();
    positions.push_back(v.value_or(0));
  }
  std::vector<State> carried;
  for (const Carried& c : carried_) {
    if (!same_layout) break;  // cut for other streams: not restored, so not checked
    State s;
    std::string present;
    for (const std::string& n : c.names) {
      const std::string key = kStatePrefix + n;
      const Tensor* t = tensors.find(key);
      if (t == nullptr) continue;
      UNROLL_CHECK(t->shape() == c.shape, "training state '{}': the carried state \"{}\" has shape {}, this run's is {}",
                   what, key, t->shape(), c.shape);
      s.push_back(Variable(t->clone()));
      present += (present.empty() ? "\"" : ", \"") + key + "\"";
    }
    UNROLL_CHECK(s.empty() || s.size() == c.names.size(),
                 "training state '{}': the carried state has only {} of its {} tensors ({})", what, s.size(),
                 c.names.size(), present);
    carried.push_back(std::move(s));
  }
  if (optimizer_ != nullptr) {
    StateDict optim;
    for (const auto& [name, t] : tensors)
      if (starts_with(name, kOptimPrefix)) optim.insert(name.substr(std::char_traits<char>::length(kOptimPrefix)), t);
    try {
      optimizer_->load_state_dict(optim);
    } catch (const Error& e) {
      fail("training state '{}': optimizer state (\"{}*\"): {}", what, kOptimPrefix, e.what());
    }
  }
  for (size_t i = 0; i < generators_.size(); ++i) generators_[i].second->set_state(gen_states[i]);
  for (const auto& [c, v] : counters) *c.value = v;
  if (!same_layout) return Restored::without_position;
  for (size_t i = 0; i < positions_.size(); ++i) *positions_[i].value = positions[i];
  for (size_t i = 0; i < carried_.size(); ++i) *carried_[i].state = std::move(carried[i]);
  return Restored::all;
}

void TrainingState::save(const std::string& path, const StateDict& weights, const Metadata& extra) const {
  StateDict all;
  for (const auto& [name, t] : weights) {
    UNROLL_CHECK(!is_state_name(name), "TrainingState::save '{}': weight \"{}\" has a training-state prefix", path,
                 name);
    all.insert(name, t);
  }
  for (const auto& [name, t] : state_dict()) all.insert(name, t);
  Metadata meta = extra;
  for (const auto& [k, v] : metadata()) {
    UNROLL_CHECK(!meta.contains(k), "TrainingState::save '{}': metadata \"{}\" given twice", path, k);
    meta[k] = v;
  }
  save_safetensors(path, all, meta);
}

TrainingState::Restored TrainingState::load(const SafetensorsFile& file, const std::string& path) {
  return load_state_dict(file.tensors, file.metadata, path);
}

bool TrainingState::is_state_name(const std::string& name) {
  return starts_with(name, kOptimPrefix) || starts_with(name, kRngPrefix) || starts_with(name, kStatePrefix);
}

StateDict TrainingState::weights_of(const StateDict& all) {
  StateDict out;
  for (const auto& [name, t] : all)
    if (!is_state_name(name)) out.insert(name, t);
  return out;
}

}  // namespace unroll
