// Learning-rate schedules (torch.optim.lr_scheduler): StepLR, ExponentialLR,
// CosineAnnealingLR on the LRScheduler base, and their state_dicts (declared in nn/optim.h).
// A schedule sets the optimizer's learning rate from the epoch count; it keeps no other state.
#include "nn/optim.h"

#include <cmath>
#include <numbers>
#include <string>
#include <unordered_set>
#include <vector>

namespace unroll::optim {

LRScheduler::LRScheduler(Optimizer& optimizer, const char* name)
    : optimizer_(optimizer), base_lr_(optimizer.lr()), name_(name), last_lr_(optimizer.lr()) {}

void LRScheduler::step() {
  ++epoch_;
  last_lr_ = lr_at(epoch_);
  optimizer_.set_lr(last_lr_);
}

// Note [scheduler state_dict]: the settings, then base_lrs, last_epoch, _last_lr.
StateDict LRScheduler::state_dict() const {
  StateDict out;
  for (const Setting& s : settings()) out.insert(s.name, scalar_tensor(s.value, s.integer ? DType::I64 : DType::F64));
  out.insert("base_lrs.0", scalar_tensor(base_lr_, DType::F64));
  out.insert("last_epoch", scalar_tensor(static_cast<double>(epoch_), DType::I64));
  out.insert("_last_lr.0", scalar_tensor(last_lr_, DType::F64));
  return out;
}

void LRScheduler::load_state_dict(const StateDict& sd) {
  std::unordered_set<std::string> known;
  // One value: floating, or an integer a double holds exactly.
  auto value = [&](const std::string& key, bool integer) {
    const Tensor* t = sd.find(key);
    UNROLL_CHECK(t != nullptr, "{}: load_state_dict: \"{}\" is missing (saved by another kind of schedule?)", name_,
                 key);
    known.insert(key);
    UNROLL_CHECK(t->numel() == 1 && (integer || t->is_floating()),
                 "{}: load_state_dict: \"{}\" must be one {} value, got a {} {} tensor", name_, key,
                 integer ? "integer" : "floating-point", t->shape(), t->dtype());
    const double v = t->item();
    UNROLL_CHECK(!integer || (v == std::floor(v) && std::abs(v) < 9.0e15),
                 "{}: load_state_dict: \"{}\" must be a whole number, got {}", name_, key, v);
    return v;
  };
  auto lr = [&](const std::string& key) {
    const double v = value(key, false);
    UNROLL_CHECK(v >= 0 && std::isfinite(v), "{}: load_state_dict: \"{}\" must be finite and >= 0, got {}", name_,
                 key, v);
    return v;
  };
  std::vector<double> values;
  for (const Setting& s : settings()) values.push_back(value(s.name, s.integer));
  const double base_lr = lr("base_lrs.0");
  const double epoch = value("last_epoch", true);
  UNROLL_CHECK(epoch >= 0, "{}: load_state_dict: \"last_epoch\" must be >= 0, got {}", name_, epoch);
  const double last_lr = lr("_last_lr.0");
  std::string unexpected;
  for (const auto& item : sd)
    if (!known.contains(item.first)) unexpected += fmt::format("{}\"{}\"", unexpected.empty() ? "" : ", ", item.first);
  UNROLL_CHECK(unexpected.empty(), "{}: load_state_dict: unexpected keys {} (saved by another kind of schedule?)",
               name_, unexpected);
  set_settings(values);  // checks them all first: nothing has changed if it throws
  base_lr_ = base_lr;
  epoch_ = static_cast<int64_t>(epoch);
  last_lr_ = last_lr;
}

namespace {
void check_step_lr(int64_t step_size, double gamma) {
  UNROLL_CHECK(step_size > 0, "StepLR: step_size must be positive, got {}", step_size);
  UNROLL_CHECK(gamma >= 0, "StepLR: invalid gamma {} (expected >= 0)", gamma);
}
void check_exponential_lr(double gamma) {
  UNROLL_CHECK(gamma >= 0, "ExponentialLR: invalid gamma {} (expected >= 0)", gamma);
}
void check_cosine_annealing_lr(int64_t T_max, double eta_min) {
  UNROLL_CHECK(T_max > 0, "CosineAnnealingLR: T_max must be positive, got {}", T_max);
  UNROLL_CHECK(eta_min >= 0, "CosineAnnealingLR: invalid eta_min {} (expected >= 0)", eta_min);
}
}  // namespace

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  check_step_lr(step_size, gamma);
}

// lr = base_lr gamma^floor(epoch / step_size)
double StepLR::lr_at(int64_t epoch) const {
  return base_lr_ * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

std::vector<LRScheduler::Setting> StepLR::settings() const {
  return {{"step_size", static_cast<double>(step_size_), true}, {"gamma", gamma_, false}};
}

void StepLR::set_settings(const std::vector<double>& values) {
  check_step_lr(static_cast<int64_t>(values.at(0)), values.at(1));
  step_size_ = static_cast<int64_t>(values[0]);
  gamma_ = values[1];
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma)
    : LRScheduler(optimizer, "ExponentialLR"), gamma_(gamma) {
  check_exponential_lr(gamma);
}

// lr = base_lr gamma^epoch
double ExponentialLR::lr_at(int64_t epoch) const { return base_lr_ * std::pow(gamma_, static_cast<double>(epoch)); }

std::vector<LRScheduler::Setting> ExponentialLR::settings() const { return {{"gamma", gamma_, false}}; }

void ExponentialLR::set_settings(const std::vector<double>& values) {
  check_exponential_lr(values.at(0));
  gamma_ = values[0];
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), T_max_(T_max), eta_min_(eta_min) {
  check_cosine_annealing_lr(T_max, eta_min);
}

// lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2
double CosineAnnealingLR::lr_at(int64_t epoch) const {
  const double phase = std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(T_max_);
  return eta_min_ + (base_lr_ - eta_min_) * (1 + std::cos(phase)) / 2;
}

std::vector<LRScheduler::Setting> CosineAnnealingLR::settings() const {
  return {{"T_max", static_cast<double>(T_max_), true}, {"eta_min", eta_min_, false}};
}

void CosineAnnealingLR::set_settings(const std::vector<double>& values) {
  check_cosine_annealing_lr(static_cast<int64_t>(values.at(0)), values.at(1));
  T_max_ = static_cast<int64_t>(values[0]);
  eta_min_ = values[1];
}

}  // namespace unroll::optim
