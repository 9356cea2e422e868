// The optimizers (SGD, Adam/AdamW, RMSprop, Adagrad) and their state_dicts; the learning-rate
// schedules are in nn/lr_scheduler.cpp, gradient clipping in nn/clip_grad.cpp (all declared
// in nn/optim.h). See Note [optimizer updates] in nn/optim.h: every update is a plain loop
// over the raw elements of one parameter, templated on float/double, with the scalar
// coefficients computed once per step in double.
#include "nn/optim.h"

#include "core/dispatch.h"
#include "core/simd.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <unordered_set>

namespace unroll {

namespace {

using detail::dispatch_float;

void check_option(bool ok, const char* op, const char* what, double value, const char* expected) {
  UNROLL_CHECK(ok, "{}: invalid {} {} (expected {})", op, what, value, expected);
}

}  // namespace

namespace optim {

// ---- Optimizer ----------------------------------------------------------------------------

Optimizer::Optimizer(std::vector<Variable> params, double lr, const char* name)
    : params_(std::move(params)), lr_(lr), name_(name), state_(params_.size()), steps_(params_.size(), 0) {
  check_option(lr >= 0 && std::isfinite(lr), name_, "learning rate", lr, "finite and >= 0");
  std::unordered_set<const Node*> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Variable& p = params_[i];
    UNROLL_CHECK(p.defined(), "{}: parameter {} is undefined", name_, i);
    UNROLL_CHECK(p.is_leaf(), "{}: parameter {} is the output of '{}', not a leaf (only leaves can be optimized)",
                 name_, i, p.op_name());
    UNROLL_CHECK(p.requires_grad(), "{}: parameter {} {} does not require grad", name_, i, p.shape());
    UNROLL_CHECK(seen.insert(p.node()).second, "{}: parameter {} {} appears more than once", name_, i, p.shape());
  }
}

void Optimizer::zero_grad() {
  for (Variable& p : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  check_option(lr >= 0 && std::isfinite(lr), name_, "learning rate", lr, "finite and >= 0");
  lr_ = lr;
}

Tensor* Optimizer::state(size_t param, size_t count, double value) {
  std::vector<Tensor>& st = state_[param];
  const Tensor& p = params_[param].data();
  if (st.empty()) {
    st.reserve(count);
    for (size_t k = 0; k < count; ++k) st.push_back(full(p.shape(), value, p.dtype()));
  }
  UNROLL_CHECK(st[0].shape() == p.shape() && st[0].dtype() == p.dtype(),
               "{}: parameter {} is now {} {} but its optimizer state was made for {} {}", name_, param, p.shape(),
               p.dtype(), st[0].shape(), st[0].dtype());
  return st.data();
}

const Tensor* Optimizer::grad_of(size_t param) const {
  const Variable& p = params_[param];
  const Tensor& g = p.grad();
  if (!g.defined()) return nullptr;
  UNROLL_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype(),
               "{}: parameter {} is {} {} but its gradient is {} {}", name_, param, p.shape(), p.dtype(), g.shape(),
               g.dtype());
  return &g;
}

// Note [optimizer state_dict]: lr, then per updated parameter its step and state tensors.
StateDict Optimizer::state_dict() const {
  const std::vector<const char*> names = state_names();
  StateDict out;
  out.insert("param_groups.0.lr", scalar_tensor(lr_, DType::F64));
  for (size_t i = 0; i < params_.size(); ++i) {
    if (steps_[i] == 0 && state_[i].empty()) continue;
    UNROLL_CHECK(state_[i].empty() || state_[i].size() == names.size(),
                 "{}: state_dict: parameter {} has {} state tensors but the optimizer names {}", name_, i,
                 state_[i].size(), names.size());
    out.insert(fmt::format("state.{}.step", i), scalar_tensor(static_cast<double>(steps_[i]), DType::I64));
    for (size_t k = 0; k < state_[i].size(); ++k)
      out.insert(fmt::format("state.{}.{}", i, names[k]), state_[i][k].clone());
  }
  return out;
}

void Optimizer::load_state_dict(const StateDict& sd) {
  const std::vector<const char*> names = state_names();
  const Tensor* lr = sd.find("param_groups.0.lr");
  UNROLL_CHECK(lr != nullptr && lr->numel() == 1 && lr->is_floating(),
               "{}: load_state_dict: \"param_groups.0.lr\" is missing or not one floating-point value", name_);
  const double new_lr = lr->item();
  check_option(new_lr >= 0 && std::isfinite(new_lr), name_, "learning rate", new_lr, "finite and >= 0");
  std::unordered_set<std::string> known{"param_groups.0.lr"};
  std::vector<std::vector<Tensor>> state(params_.size());
  std::vector<int64_t> steps(params_.size(), 0);
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string step_key = fmt::format("state.{}.step", i);
    const Tensor* step = sd.find(step_key);
    if (step == nullptr) continue;  // never updated
    known.insert(step_key);
    const double t = step->numel() == 1 ? step->item() : -1.0;
    UNROLL_CHECK(t >= 0 && t == std::floor(t) && t < 9.0e15,  // an integer a double holds exactly
                 "{}: load_state_dict: \"{}\" must be one count >= 0, got a {} tensor {}", name_, step_key,
                 step->shape(), step->numel() == 1 ? step->item() : 0.0);
    steps[i] = static_cast<int64_t>(t);
    const Tensor& p = params_[i].data();
    for (const char* name : names) {
      const std::string key = fmt::format("state.{}.{}", i, name);
      const Tensor* v = sd.find(key);
      UNROLL_CHECK(v != nullptr,
                   "{}: load_state_dict: parameter {} has \"{}\" but no \"{}\" (saved by another kind of optimizer or "
                   "with other options?)",
                   name_, i, step_key, key);
      UNROLL_CHECK(v->shape() == p.shape() && v->is_floating(),
                   "{}: load_state_dict: \"{}\" is {} {} but parameter {} is {} {}", name_, key, v->shape(), v->dtype(),
                   i, p.shape(), p.dtype());
      state[i].push_back(v->dtype() == p.dtype() ? v->clone() : v->to(p.dtype()));
      known.insert(key);
    }
  }
  std::string unexpected;
  for (const auto& item : sd)
    if (!known.contains(item.first)) unexpected += fmt::format("{}\"{}\"", unexpected.empty() ? "" : ", ", item.first);
  UNROLL_CHECK(unexpected.empty(),
               "{}: load_state_dict: unexpected keys {} (state of a parameter without its \"state.<i>.step\", of a "
               "parameter beyond the {} given, or of another kind of optimizer)",
               name_, unexpected, params_.size());
  lr_ = new_lr;
  state_ = std::move(state);
  steps_ = std::move(steps);
}

// ---- SGD ------------------------------------------------------------------------------------

SGD::SGD(std::vector<Variable> params, SGDOptions opt) : Optimizer(std::move(params), opt.lr, "SGD"), options_(opt) {
  check_option(opt.momentum >= 0, "SGD", "momentum", opt.momentum, ">= 0");
  check_option(opt.weight_decay >= 0, "SGD", "weight_decay", opt.weight_decay, ">= 0");
  UNROLL_CHECK(!opt.nesterov || (opt.momentum > 0 && opt.dampening == 0),
               "SGD: nesterov needs momentum > 0 and dampening 0, got momentum {} and dampening {}", opt.momentum,
               opt.dampening);
}

std::vector<const char*> SGD::state_names() const {
  if (options_.momentum != 0) return {"momentum_buffer"};
  return {};
}

// g += wd θ;  b = μ b + (1-τ) g (b = g at t = 1);  g = nesterov ? g + μ b : b;  θ -= lr g
void SGD::step() {
  NoGradGuard no_grad;
  const double lr = lr_, wd = options_.weight_decay, mu = options_.momentum, damp = options_.dampening;
  const bool nesterov = options_.nesterov;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor* grad = grad_of(i);
    if (grad == nullptr) continue;
    const bool first = next_step(i) == 1;
    Tensor& value = params_[i].data();
    Tensor* buf = mu != 0 ? state(i, 1) : nullptr;
    dispatch_float(name(), value.dtype(), [&]<typename T>() {
      T* p = value.data<T>();
      const T* g = grad->data<T>();
      T* b = buf != nullptr ? buf->data<T>() : nullptr;
      const int64_t n = value.numel();
      for (int64_t j = 0; j < n; ++j) {
        T d = g[j];
        if (wd != 0) d += T(wd) * p[j];
        if (b != nullptr) {
          b[j] = first ? d : T(mu) * b[j] + T(1 - damp) * d;
          d = nesterov ? d + T(mu) * b[j] : b[j];
        }
        p[j] -= T(lr) * d;
      }
    });
  }
}

// ---- Adam / AdamW -----------------------------------------------------------------------------

namespace {

struct AdamStep {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled, amsgrad;
};

void check_adam(const char* op, double beta1, double beta2, double eps, double weight_decay) {
  check_option(beta1 >= 0 && beta1 < 1, op, "beta1", beta1, "0 <= beta1 < 1");
  check_option(beta2 >= 0 && beta2 < 1, op, "beta2", beta2, "0 <= beta2 < 1");
  check_option(eps >= 0, op, "eps", eps, ">= 0");
  check_option(weight_decay >= 0, op, "weight_decay", weight_decay, ">= 0");
}

// decoupled (AdamW): θ *= 1 - lr wd;  else (Adam): g += wd θ
// m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²;  amsgrad: v_max = max(v_max, v), v = v_max
// θ -= lr/(1-β1^t) m / (sqrt(v)/sqrt(1-β2^t) + eps)
// The one body of the update; each variant is an instantiation (no branch in the loop).
template <typename T, bool kDecay, bool kL2, bool kAmsgrad>
[[gnu::always_inline]] inline void adam_loop(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, T b1, T b2, T eps,
                                             T ss, T bc2s, T dec, T l2) {
  for (int64_t j = 0; j < n; ++j) {
    if constexpr (kDecay) p[j] *= dec;
    T d = g[j];
    if constexpr (kL2) d += l2 * p[j];
    m[j] = b1 * m[j] + (1 - b1) * d;
    v[j] = b2 * v[j] + (1 - b2) * d * d;
    T second = v[j];
    if constexpr (kAmsgrad) second = vmax[j] = std::max(vmax[j], v[j]);
    p[j] -= ss * m[j] / (std::sqrt(second) / bc2s + eps);
  }
}

/// The common case (float, no L2, no amsgrad; dec = 1 when not decoupled) compiled for
/// AVX-512/AVX2 with unaliased pointers, so the body above vectorises.
UNROLL_CLONES void adam_loop_f32(float* __restrict p, const float* __restrict g, float* __restrict m,
                                 float* __restrict v, int64_t n, float b1, float b2, float eps, float ss, float bc2s,
                                 float dec) {
  adam_loop<float, true, false, false>(p, g, m, v, nullptr, n, b1, b2, eps, ss, bc2s, dec, 0.0f);
}

void adam_update(Tensor& value, const Tensor& grad, Tensor* st, int64_t t, const AdamStep& c) {
  const double step_size = c.lr / (1 - std::pow(c.beta1, static_cast<double>(t)));
  const double bc2_sqrt = std::sqrt(1 - std::pow(c.beta2, static_cast<double>(t)));
  const double decay = 1 - c.lr * c.weight_decay;
  const bool use_decay = c.decoupled && c.weight_decay != 0;
  const bool use_l2 = !c.decoupled && c.weight_decay != 0;
  dispatch_float(c.decoupled ? "AdamW" : "Adam", value.dtype(), [&]<typename T>() {
    T* p = value.data<T>();
    const T* g = grad.data<T>();
    T* m = st[0].data<T>();
    T* v = st[1].data<T>();
    T* vmax = c.amsgrad ? st[2].data<T>() : nullptr;
    const int64_t n = value.numel();
    if constexpr (std::is_same_v<T, float>) {
      if (!c.amsgrad && !use_l2 && p != g && p != m && p != v) {
        adam_loop_f32(p, g, m, v, n, float(c.beta1), float(c.beta2), float(c.eps), float(step_size),
                      float(bc2_sqrt), use_decay ? float(decay) : 1.0f);
        return;
      }
    }
    auto run = [&](auto decay_on, auto l2_on, auto amsgrad_on) {
      adam_loop<T, decltype(decay_on)::value, decltype(l2_on)::value, decltype(amsgrad_on)::value>(
          p, g, m, v, vmax, n, T(c.beta1), T(c.beta2), T(c.eps), T(step_size), T(bc2_sqrt), T(decay),
          T(c.weight_decay));
    };
    auto with_amsgrad = [&](auto decay_on, auto l2_on) {
      if (c.amsgrad) {
        run(decay_on, l2_on, std::true_type{});
      } else {
        run(decay_on, l2_on, std::false_type{});
      }
    };
    if (use_decay) {
      with_amsgrad(std::true_type{}, std::false_type{});
    } else if (use_l2) {
      with_amsgrad(std::false_type{}, std::true_type{});
    } else {
      with_amsgrad(std::false_type{}, std::false_type{});
    }
  });
}

}  // namespace

Adam::Adam(std::vector<Variable> params, AdamOptions opt) : Adam(std::move(params), opt, false, "Adam") {}

Adam::Adam(std::vector<Variable> params, AdamOptions opt, bool decoupled, const char* name)
    : Optimizer(std::move(params), opt.lr, name), options_(opt), decoupled_(decoupled) {
  check_adam(name, opt.beta1, opt.beta2, opt.eps, opt.weight_decay);
}

std::vector<const char*> Adam::state_names() const {
  if (options_.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

void Adam::step() {
  NoGradGuard no_grad;
  const AdamStep c{lr_, options_.beta1, options_.beta2, options_.eps, options_.weight_decay, decoupled_,
                   options_.amsgrad};
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor* grad = grad_of(i);
    if (grad == nullptr) continue;
    adam_update(params_[i].data(), *grad, state(i, options_.amsgrad ? 3 : 2), next_step(i), c);
  }
}

AdamW::AdamW(std::vector<Variable> params, AdamWOptions opt)
    : Adam(std::move(params),
           AdamOptions{.lr = opt.lr,
                       .beta1 = opt.beta1,
                       .beta2 = opt.beta2,
                       .eps = opt.eps,
                       .weight_decay = opt.weight_decay,
                       .amsgrad = opt.amsgrad},
           true, "AdamW"),
      options_(opt) {}

// ---- RMSprop ------------------------------------------------------------------------------------

RMSprop::RMSprop(std::vector<Variable> params, RMSpropOptions opt)
    : Optimizer(std::move(params), opt.lr, "RMSprop"), options_(opt) {
  check_option(opt.alpha >= 0, "RMSprop", "alpha", opt.alpha, ">= 0");
  check_option(opt.eps >= 0, "RMSprop", "eps", opt.eps, ">= 0");
  check_option(opt.momentum >= 0, "RMSprop", "momentum", opt.momentum, ">= 0");
  check_option(opt.weight_decay >= 0, "RMSprop", "weight_decay", opt.weight_decay, ">= 0");
}

// state: v, then ḡ if centered, then b if momentum (the order step() uses)
std::vector<const char*> RMSprop::state_names() const {
  std::vector<const char*> names{"square_avg"};
  if (options_.centered) names.push_back("grad_avg");
  if (options_.momentum > 0) names.push_back("momentum_buffer");
  return names;
}

// g += wd θ;  v = α v + (1-α) g²;  centered: ḡ = α ḡ + (1-α) g, v' = v - ḡ²;  d = g / (sqrt(v') + eps)
// momentum: b = μ b + d, θ -= lr b;  else θ -= lr d
void RMSprop::step() {
  NoGradGuard no_grad;
  const double lr = lr_, alpha = options_.alpha, eps = options_.eps, wd = options_.weight_decay, mu = options_.momentum;
  const bool centered = options_.centered;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor* grad = grad_of(i);
    if (grad == nullptr) continue;
    next_step(i);
    Tensor& value = params_[i].data();
    // state: v, then ḡ if centered, then b if momentum
    Tensor* st = state(i, 1 + (centered ? 1 : 0) + (mu > 0 ? 1 : 0));
    dispatch_float(name(), value.dtype(), [&]<typename T>() {
      T* p = value.data<T>();
      const T* g = grad->data<T>();
      T* v = st[0].data<T>();
      T* gavg = centered ? st[1].data<T>() : nullptr;
      T* b = mu > 0 ? st[centered ? 2 : 1].data<T>() : nullptr;
      const T a = T(alpha);
      const int64_t n = value.numel();
      for (int64_t j = 0; j < n; ++j) {
        T d = g[j];
        if (wd != 0) d += T(wd) * p[j];
        v[j] = a * v[j] + (1 - a) * d * d;
        T avg;
        if (gavg != nullptr) {
          gavg[j] = a * gavg[j] + (1 - a) * d;
          avg = std::sqrt(v[j] - gavg[j] * gavg[j]) + T(eps);
        } else {
          avg = std::sqrt(v[j]) + T(eps);
        }
        if (b != nullptr) {
          b[j] = T(mu) * b[j] + d / avg;
          p[j] -= T(lr) * b[j];
        } else {
          p[j] -= T(lr) * d / avg;
        }
      }
    });
  }
}

// ---- Adagrad ------------------------------------------------------------------------------------

Adagrad::Adagrad(std::vector<Variable> params, AdagradOptions opt)
    : Optimizer(std::move(params), opt.lr, "Adagrad"), options_(opt) {
  check_option(opt.lr_decay >= 0, "Adagrad", "lr_decay", opt.lr_decay, ">= 0");
  check_option(opt.weight_decay >= 0, "Adagrad", "weight_decay", opt.weight_decay, ">= 0");
  check_option(opt.initial_accumulator_value >= 0, "Adagrad", "initial_accumulator_value",
               opt.initial_accumulator_value, ">= 0");
  check_option(opt.eps >= 0, "Adagrad", "eps", opt.eps, ">= 0");
}

std::vector<const char*> Adagrad::state_names() const { return {"sum"}; }

// lr_t = lr / (1 + (t-1) lr_decay);  g += wd θ;  s += g²;  θ -= lr_t g / (sqrt(s) + eps)
void Adagrad::step() {
  NoGradGuard no_grad;
  const double wd = options_.weight_decay, eps = options_.eps;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor* grad = grad_of(i);
    if (grad == nullptr) continue;
    const int64_t t = next_step(i);
    const double clr = lr_ / (1 + static_cast<double>(t - 1) * options_.lr_decay);
    Tensor& value = params_[i].data();
    Tensor* st = state(i, 1, options_.initial_accumulator_value);
    dispatch_float(name(), value.dtype(), [&]<typename T>() {
      T* p = value.data<T>();
      const T* g = grad->data<T>();
      T* s = st[0].data<T>();
      const int64_t n = value.numel();
      for (int64_t j = 0; j < n; ++j) {
        T d = g[j];
        if (wd != 0) d += T(wd) * p[j];
        s[j] += d * d;
        p[j] -= T(clr) * d / (std::sqrt(s[j]) + T(eps));
      }
    });
  }
}

}  // namespace optim

}  // namespace unroll
