#pragma once
// Optimizers, learning-rate schedules and gradient clipping, with the update rules,
// defaults and semantics of torch.optim / torch.nn.utils.
//
//   optim::Adam opt(model.parameters(), {.lr = 1e-3});
//   for (...) {
//     opt.zero_grad();
//     Variable loss = cross_entropy(model(x), y);
//     loss.backward();
//     clip_grad_norm(model.parameters(), 1.0);
//     opt.step();
//   }
//
// Note [optimizer updates]
// Optimizers are not differentiable: step() changes each parameter's value in place under
// NoGradGuard, with one plain loop per parameter over its float or double elements (no
// per-element dispatch). A parameter without a gradient is skipped, and its state and step
// count do not advance (like PyTorch). State (moments, momentum buffers) is one Tensor per
// parameter and kind, created at the parameter's first update in the parameter's dtype.
// All parameters form one group sharing one learning rate, which set_lr (or a schedule)
// changes between steps.
//
// Note [optimizer state_dict]
// state_dict() is torch.optim.Optimizer.state_dict() flattened into named tensors, so it
// goes into a safetensors file next to the model's (save_safetensors(path, opt.state_dict())):
//   "param_groups.0.lr"   float64 []  the current learning rate
//   "state.{i}.step"      int64 []    updates of parameter i (i in params() order)
//   "state.{i}.{name}"    the parameter's shape and dtype, one per kind of state, with
//                         PyTorch's names: exp_avg, exp_avg_sq, max_exp_avg_sq (Adam,
//                         AdamW), momentum_buffer (SGD, RMSprop), square_avg, grad_avg
//                         (RMSprop), sum (Adagrad)
// A parameter that was never updated has no entries. Loading it into an optimizer of the
// same kind and options over the same parameters, after loading the model, continues
// training bit for bit as if it had never stopped.
#include "autograd/variable.h"
#include "nn/module.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace unroll {

namespace optim {

class Optimizer {
public:
  /// params: distinct leaves requiring grad; lr >= 0; name (e.g. "Adam") is used in errors.
  Optimizer(std::vector<Variable> params, double lr, const char* name);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;  // schedules keep a reference
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter that has a gradient.
  virtual void step() = 0;
  /// Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr);
  const std::vector<Variable>& params() const { return params_; }
  const char* name() const { return name_; }
  /// The learning rate, step counts and state tensors (copies), keyed as in
  /// Note [optimizer state_dict] (torch.optim.Optimizer.state_dict).
  StateDict state_dict() const;
  /// Restores a state_dict() of an optimizer of the same kind and options over parameters
  /// of the same shapes (values converted to each parameter's dtype). Every key is checked;
  /// a missing, unexpected or misshapen one is an error that names it, and then nothing
  /// changes (torch.optim.Optimizer.load_state_dict).
  void load_state_dict(const StateDict& state);

protected:
  /// PyTorch's names of the state tensors of one parameter, in the order state() keeps
  /// them (e.g. {"exp_avg", "exp_avg_sq"}); empty for an optimizer without state tensors.
  virtual std::vector<const char*> state_names() const { return {}; }
  /// The `count` state tensors of a parameter (moments, buffers), each created as
  /// full(value) in the parameter's shape and dtype at its first use.
  Tensor* state(size_t param, size_t count, double value = 0.0);
  /// Increments and returns the step count t (1, 2, ...) of a parameter.
  int64_t next_step(size_t param) { return ++steps_[param]; }
  /// The gradient of parameter i if it has one of the right shape and dtype, else nullptr.
  const Tensor* grad_of(size_t param) const;

  std::vector<Variable> params_;
  double lr_;

private:
  const char* name_;
  std::vector<std::vector<Tensor>> state_;
  std::vector<int64_t> steps_;
};

struct SGDOptions {
  double lr = 1e-3;  ///< PyTorch >= 2.2 default (older versions required it)
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;  ///< needs momentum > 0 and dampening == 0
};

/// torch.optim.SGD: g += wd θ; b = μ b + (1 - τ) g (b = g at t = 1); g = nesterov ? g + μ b : b;
/// θ -= lr g.
class SGD : public Optimizer {
public:
  explicit SGD(std::vector<Variable> params, SGDOptions opt = {});
  SGD(std::vector<Variable> params, double lr) : SGD(std::move(params), SGDOptions{.lr = lr}) {}
  void step() override;
  /// The options as given (the current learning rate is lr()).
  const SGDOptions& options() const { return options_; }
protected:
  std::vector<const char*> state_names() const override;
private:
  SGDOptions options_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  ///< L2 penalty added to the gradient
  bool amsgrad = false;
};

/// torch.optim.Adam: g += wd θ; m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²;
/// v_max = max(v_max, v) if amsgrad; θ -= lr m/(1-β1^t) / (sqrt(v or v_max / (1-β2^t)) + eps).
class Adam : public Optimizer {
public:
  explicit Adam(std::vector<Variable> params, AdamOptions opt = {});
  Adam(std::vector<Variable> params, double lr) : Adam(std::move(params), AdamOptions{.lr = lr}) {}
  void step() override;
  /// The options as given (the current learning rate is lr()).
  const AdamOptions& options() const { return options_; }
protected:
  /// AdamW: the same update with weight_decay decoupled (θ *= 1 - lr wd) instead of L2.
  Adam(std::vector<Variable> params, AdamOptions opt, bool decoupled, const char* name);
  std::vector<const char*> state_names() const override;
private:
  AdamOptions options_;
  bool decoupled_ = false;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  ///< decoupled: θ *= 1 - lr wd before the Adam update
  bool amsgrad = false;
};

/// torch.optim.AdamW: θ *= 1 - lr wd, then the Adam update of the plain gradient (Adam
/// with its weight decay decoupled; only the default weight_decay differs).
class AdamW : public Adam {
public:
  explicit AdamW(std::vector<Variable> params, AdamWOptions opt = {});
  AdamW(std::vector<Variable> params, double lr) : AdamW(std::move(params), AdamWOptions{.lr = lr}) {}
  /// The options as given (the current learning rate is lr()).
  const AdamWOptions& options() const { return options_; }
private:
  AdamWOptions options_;
};

struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;
};

/// torch.optim.RMSprop: g += wd θ; v = α v + (1-α) g²; centered: ḡ = α ḡ + (1-α) g, v' = v - ḡ²;
/// d = g / (sqrt(v') + eps); momentum: b = μ b + d, θ -= lr b; else θ -= lr d.
class RMSprop : public Optimizer {
public:
  explicit RMSprop(std::vector<Variable> params, RMSpropOptions opt = {});
  RMSprop(std::vector<Variable> params, double lr) : RMSprop(std::move(params), RMSpropOptions{.lr = lr}) {}
  void step() override;
  /// The options as given (the current learning rate is lr()).
  const RMSpropOptions& options() const { return options_; }
protected:
  std::vector<const char*> state_names() const override;
private:
  RMSpropOptions options_;
};

struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0;
  double weight_decay = 0;
  double initial_accumulator_value = 0;
  double eps = 1e-10;
};

/// torch.optim.Adagrad: lr_t = lr / (1 + (t-1) lr_decay); g += wd θ; s += g²;
/// θ -= lr_t g / (sqrt(s) + eps).
class Adagrad : public Optimizer {
public:
  explicit Adagrad(std::vector<Variable> params, AdagradOptions opt = {});
  Adagrad(std::vector<Variable> params, double lr) : Adagrad(std::move(params), AdagradOptions{.lr = lr}) {}
  void step() override;
  /// The options as given (the current learning rate is lr()).
  const AdagradOptions& options() const { return options_; }
protected:
  std::vector<const char*> state_names() const override;
private:
  AdagradOptions options_;
};

// ---- learning-rate schedules (torch.optim.lr_scheduler, closed forms) ---------------------
//
// Note [scheduler state_dict]
// state_dict() is torch.optim.lr_scheduler.LRScheduler.state_dict() (every attribute but the
// optimizer) flattened into named tensors as in Note [optimizer state_dict], in PyTorch's order:
//   the schedule's settings   "step_size" int64 [], "gamma" float64 [] (StepLR); "gamma"
//                             (ExponentialLR); "T_max" int64 [], "eta_min" float64 []
//                             (CosineAnnealingLR)
//   "base_lrs.0"  float64 []  the learning rate at epoch 0
//   "last_epoch"  int64 []    the epochs stepped so far
//   "_last_lr.0"  float64 []  the lr set by the last step
// PyTorch's bookkeeping (_step_count, verbose, _get_lr_called_within_step) has no counterpart
// here. As in PyTorch, load_state_dict replaces the settings the schedule was made with and
// leaves the optimizer's lr alone (the optimizer's own state_dict holds it): load both, and
// every later step() sets the lr the uninterrupted run would have set.

/// A schedule owns the optimizer's learning rate: base_lr is the optimizer's lr when the
/// schedule is made (epoch 0); each step() moves to the next epoch and sets the lr.
class LRScheduler {
public:
  /// name (e.g. "StepLR") is used in errors.
  explicit LRScheduler(Optimizer& optimizer, const char* name = "LRScheduler");
  virtual ~LRScheduler() = default;
  void step();                            ///< epoch += 1; optimizer.set_lr(lr_at(epoch))
  double last_lr() const { return last_lr_; }  ///< the lr set by the last step (base_lr at first)
  int64_t last_epoch() const { return epoch_; }
  double base_lr() const { return base_lr_; }
  virtual double lr_at(int64_t epoch) const = 0;
  /// The epoch, base and last learning rates and the settings, keyed as in
  /// Note [scheduler state_dict] (torch.optim.lr_scheduler.LRScheduler.state_dict).
  StateDict state_dict() const;
  /// Restores a state_dict() of a schedule of the same kind. Every key is checked; a missing,
  /// unexpected or invalid one is an error that names it, and then nothing changes
  /// (torch.optim.lr_scheduler.LRScheduler.load_state_dict).
  void load_state_dict(const StateDict& state);

protected:
  /// One setting of a schedule (e.g. StepLR's step_size) under PyTorch's name; an integer
  /// one is stored as int64.
  struct Setting {
    const char* name;
    double value;
    bool integer;
  };
  /// The schedule's settings, in PyTorch's order (none for a schedule without any).
  virtual std::vector<Setting> settings() const { return {}; }
  /// Takes settings read by load_state_dict (in settings() order) after checking them all,
  /// as the constructor does; an invalid one throws and changes nothing.
  virtual void set_settings(const std::vector<double>& /*values*/) {}

  Optimizer& optimizer_;
  double base_lr_;

private:
  const char* name_;
  int64_t epoch_ = 0;
  double last_lr_;
};

/// torch.optim.lr_scheduler.StepLR: lr = base_lr gamma^floor(epoch / step_size).
class StepLR : public LRScheduler {
public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t epoch) const override;
protected:
  std::vector<Setting> settings() const override;
  void set_settings(const std::vector<double>& values) override;
private:
  int64_t step_size_;
  double gamma_;
};

/// torch.optim.lr_scheduler.ExponentialLR: lr = base_lr gamma^epoch.
class ExponentialLR : public LRScheduler {
public:
  ExponentialLR(Optimizer& optimizer, double gamma);
  double lr_at(int64_t epoch) const override;
protected:
  std::vector<Setting> settings() const override;
  void set_settings(const std::vector<double>& values) override;
private:
  double gamma_;
};

/// torch.optim.lr_scheduler.CosineAnnealingLR:
/// lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2.
class CosineAnnealingLR : public LRScheduler {
public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t T_max, double eta_min = 0.0);
  double lr_at(int64_t epoch) const override;
protected:
  std::vector<Setting> settings() const override;
  void set_settings(const std::vector<double>& values) override;
private:
  int64_t T_max_;
  double eta_min_;
};

}  // namespace optim

// ---- gradient clipping (torch.nn.utils) ---------------------------------------------------

/// torch.nn.utils.clip_grad_norm_: the norm_type-norm of all gradients together (norm_type
/// may be INFINITY: the largest |g|); if max_norm / (norm + 1e-6) < 1, every gradient is
/// scaled by it. Returns the norm before clipping. Parameters without a gradient are skipped
/// (none: returns 0). A NaN or infinite norm scales the gradients by NaN or 0, as PyTorch does.
double clip_grad_norm(const std::vector<Variable>& params, double max_norm, double norm_type = 2.0);

/// torch.nn.utils.clip_grad_value_: clamps every gradient element into [-clip_value, clip_value].
void clip_grad_value(const std::vector<Variable>& params, double clip_value);

}  // namespace unroll
