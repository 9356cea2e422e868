// Optimizers against plain double implementations of the pseudo-code in PyTorch's
// documentation (torch.optim.SGD/Adam/AdamW/RMSprop/Adagrad), learning-rate schedules,
// gradient clipping, and a small end-to-end training run.
#include <doctest/doctest.h>

#include <unroll.h>

#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/optim.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

using namespace unroll;
using namespace unroll::optim;

namespace {

using Vec = std::vector<double>;
using Steps = std::vector<Vec>;  // one gradient (or parameter value) vector per step

// The pseudo-code of the PyTorch docs, in double, for one flat parameter vector.
Steps sgd_reference(Vec th, const Steps& grads, const SGDOptions& o) {
  Vec b(th.size());
  Steps out;
  for (size_t t = 1; t <= grads.size(); ++t) {
    for (size_t j = 0; j < th.size(); ++j) {
      double g = grads[t - 1][j];
      if (o.weight_decay != 0) g = g + o.weight_decay * th[j];
      if (o.momentum != 0) {
        b[j] = t > 1 ? o.momentum * b[j] + (1 - o.dampening) * g : g;
        g = o.nesterov ? g + o.momentum * b[j] : b[j];
      }
      th[j] = th[j] - o.lr * g;
    }
    out.push_back(th);
  }
  return out;
}

Steps adam_reference(Vec th, const Steps& grads, const AdamOptions& o, bool decoupled) {
  Vec m(th.size()), v(th.size()), vmax(th.size());
  Steps out;
  for (size_t t = 1; t <= grads.size(); ++t) {
    const double ti = static_cast<double>(t);
    for (size_t j = 0; j < th.size(); ++j) {
      double g = grads[t - 1][j];
      if (decoupled) th[j] = th[j] - o.lr * o.weight_decay * th[j];
      if (!decoupled && o.weight_decay != 0) g = g + o.weight_decay * th[j];
      m[j] = o.beta1 * m[j] + (1 - o.beta1) * g;
      v[j] = o.beta2 * v[j] + (1 - o.beta2) * g * g;
      const double m_hat = m[j] / (1 - std::pow(o.beta1, ti));
      double v_hat = v[j] / (1 - std::pow(o.beta2, ti));
      if (o.amsgrad) {
        vmax[j] = std::max(vmax[j], v[j]);
        v_hat = vmax[j] / (1 - std::pow(o.beta2, ti));
      }
      th[j] = th[j] - o.lr * m_hat / (std::sqrt(v_hat) + o.eps);
    }
    out.push_back(th);
  }
  return out;
}

Steps rmsprop_reference(Vec th, const Steps& grads, const RMSpropOptions& o) {
  Vec v(th.size()), g_ave(th.size()), b(th.size());
  Steps out;
  for (const Vec& grad : grads) {
    for (size_t j = 0; j < th.size(); ++j) {
      double g = grad[j];
      if (o.weight_decay != 0) g = g + o.weight_decay * th[j];
      v[j] = o.alpha * v[j] + (1 - o.alpha) * g * g;
      double v_tilde = v[j];
      if (o.centered) {
        g_ave[j] = o.alpha * g_ave[j] + (1 - o.alpha) * g;
        v_tilde = v_tilde - g_ave[j] * g_ave[j];
      }
      if (o.momentum > 0) {
        b[j] = o.momentum * b[j] + g / (std::sqrt(v_tilde) + o.eps);
        th[j] = th[j] - o.lr * b[j];
      } else {
        th[j] = th[j] - o.lr * g / (std::sqrt(v_tilde) + o.eps);
      }
    }
    out.push_back(th);
  }
  return out;
}

Steps adagrad_reference(Vec th, const Steps& grads, const AdagradOptions& o) {
  Vec state_sum(th.size(), o.initial_accumulator_value);
  Steps out;
  for (size_t t = 1; t <= grads.size(); ++t) {
    const double lr = o.lr / (1 + static_cast<double>(t - 1) * o.lr_decay);
    for (size_t j = 0; j < th.size(); ++j) {
      double g = grads[t - 1][j];
      if (o.weight_decay != 0) g = g + o.weight_decay * th[j];
      state_sum[j] = state_sum[j] + g * g;
      th[j] = th[j] - lr * g / (std::sqrt(state_sum[j]) + o.eps);
    }
    out.push_back(th);
  }
  return out;
}

// Runs an optimizer on two parameters ([2] and [2,1], elements 0-1 and 2-3 of the flat
// vectors) with the given gradients; returns the flat values after each step.
template <typename Opt, typename Options>
Steps run(const Vec& th0, const Steps& grads, const Options& options, DType dtype = DType::F64) {
  Variable a(tensor({th0[0], th0[1]}, {2}, dtype), true);
  Variable b(tensor({th0[2], th0[3]}, {2, 1}, dtype), true);
  Opt opt({a, b}, options);
  Steps out;
  for (const Vec& g : grads) {
    a.set_grad(tensor({g[0], g[1]}, {2}, dtype));
    b.set_grad(tensor({g[2], g[3]}, {2, 1}, dtype));
    opt.step();
    Vec now = a.data().to_vector();
    for (double v : b.data().to_vector()) now.push_back(v);
    out.push_back(now);
  }
  return out;
}

void check_steps(const Steps& got, const Steps& expected, double eps = 1e-12) {
  REQUIRE(got.size() == expected.size());
  for (size_t t = 0; t < got.size(); ++t) {
    REQUIRE(got[t].size() == expected[t].size());
    for (size_t j = 0; j < got[t].size(); ++j) {
      CAPTURE(t);
      CAPTURE(j);
      CHECK(got[t][j] == doctest::Approx(expected[t][j]).epsilon(eps));
    }
  }
}

const Vec kTheta{1.0, -2.0, 0.5, 3.0};
// Gradients that change sign and shrink, so momentum, centering and amsgrad all matter.
const Steps kGrads{{0.5, -1.0, 2.0, 0.1}, {-0.3, -0.8, 0.02, 0.4}, {0.1, 0.6, 0.01, -0.2}};

}  // namespace

TEST_CASE("SGD: plain, momentum with dampening, nesterov, weight decay") {
  // by hand: theta - 0.1 g
  check_steps(run<SGD>(kTheta, {kGrads[0]}, SGDOptions{.lr = 0.1}), {{0.95, -1.9, 0.3, 2.99}});
  CHECK(SGDOptions{}.lr == 1e-3);

  for (const SGDOptions& o : {SGDOptions{.lr = 0.1},
                              SGDOptions{.lr = 0.1, .momentum = 0.9},
                              SGDOptions{.lr = 0.05, .momentum = 0.8, .dampening = 0.3, .weight_decay = 0.1},
                              SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true},
                              SGDOptions{.lr = 0.1, .momentum = 0.5, .weight_decay = 0.2, .nesterov = true}}) {
    CAPTURE(o.momentum);
    check_steps(run<SGD>(kTheta, kGrads, o), sgd_reference(kTheta, kGrads, o));
  }
  // momentum by hand, element 0: b1 = 0.5, b2 = 0.9*0.5 - 0.3 = 0.15; theta = 1 - 0.1*0.5 - 0.1*0.15
  const Steps m = run<SGD>(kTheta, {kGrads[0], kGrads[1]}, SGDOptions{.lr = 0.1, .momentum = 0.9});
  CHECK(m[1][0] == doctest::Approx(1 - 0.05 - 0.015).epsilon(1e-14));
}

TEST_CASE("Adam and AdamW: first step is lr * sign(g); later steps follow the pseudo-code") {
  const Steps first = run<Adam>(kTheta, {kGrads[0]}, AdamOptions{.lr = 0.01});
  for (size_t j = 0; j < 4; ++j) CHECK(first[0][j] == doctest::Approx(kTheta[j] - 0.01 * (kGrads[0][j] > 0 ? 1 : -1)).epsilon(1e-9));

  for (const AdamOptions& o : {AdamOptions{},
                               AdamOptions{.lr = 0.1, .beta1 = 0.8, .beta2 = 0.9},
                               AdamOptions{.lr = 0.1, .weight_decay = 0.5},
                               AdamOptions{.lr = 0.1, .beta2 = 0.9, .amsgrad = true},
                               AdamOptions{.lr = 0.1, .eps = 0.1, .weight_decay = 0.1, .amsgrad = true}}) {
    CAPTURE(o.amsgrad);
    check_steps(run<Adam>(kTheta, kGrads, o), adam_reference(kTheta, kGrads, o, false), 1e-10);
  }
  // amsgrad changes the result here (v shrinks for element 2 after step 1)
  const AdamOptions ams{.lr = 0.1, .beta2 = 0.9, .amsgrad = true};
  const AdamOptions plain{.lr = 0.1, .beta2 = 0.9};
  CHECK(std::abs(run<Adam>(kTheta, kGrads, ams)[2][2] - run<Adam>(kTheta, kGrads, plain)[2][2]) > 1e-3);

  for (const AdamWOptions& w : {AdamWOptions{}, AdamWOptions{.lr = 0.1, .weight_decay = 0.3},
                                AdamWOptions{.lr = 0.1, .beta2 = 0.9, .weight_decay = 0.1, .amsgrad = true}}) {
    const AdamOptions o{.lr = w.lr, .beta1 = w.beta1, .beta2 = w.beta2, .eps = w.eps, .weight_decay = w.weight_decay,
                        .amsgrad = w.amsgrad};
    check_steps(run<AdamW>(kTheta, kGrads, w), adam_reference(kTheta, kGrads, o, true), 1e-10);
  }
  CHECK(AdamWOptions{}.weight_decay == 1e-2);
  // AdamW's decay is decoupled: with g = 0 the parameter only shrinks by (1 - lr wd)
  check_steps(run<AdamW>(kTheta, {{0, 0, 0, 0}}, AdamWOptions{.lr = 0.1, .weight_decay = 0.5}),
              {{0.95, -1.9, 0.475, 2.85}});
}

TEST_CASE("RMSprop: plain, centered, momentum, weight decay") {
  // by hand, first step: v = 0.01 g^2, theta -= 0.01 g / (0.1 |g| + 1e-8) = theta - 0.1 sign(g)
  const Steps first = run<RMSprop>(kTheta, {kGrads[0]}, RMSpropOptions{});
  for (size_t j = 0; j < 4; ++j) CHECK(first[0][j] == doctest::Approx(kTheta[j] - 0.1 * (kGrads[0][j] > 0 ? 1 : -1)).epsilon(1e-7));

  for (const RMSpropOptions& o : {RMSpropOptions{}, RMSpropOptions{.lr = 0.05, .alpha = 0.9, .centered = true},
                                  RMSpropOptions{.lr = 0.05, .alpha = 0.9, .momentum = 0.7},
                                  RMSpropOptions{.lr = 0.02, .alpha = 0.8, .eps = 1e-3, .weight_decay = 0.1,
                                                 .momentum = 0.5, .centered = true}}) {
    CAPTURE(o.centered);
    CAPTURE(o.momentum);
    check_steps(run<RMSprop>(kTheta, kGrads, o), rmsprop_reference(kTheta, kGrads, o), 1e-10);
  }
}

TEST_CASE("Adagrad: lr decay, weight decay, initial accumulator") {
  // by hand, first step: s = g^2, theta -= 0.01 g / |g|
  const Steps first = run<Adagrad>(kTheta, {kGrads[0]}, AdagradOptions{});
  for (size_t j = 0; j < 4; ++j) CHECK(first[0][j] == doctest::Approx(kTheta[j] - 0.01 * (kGrads[0][j] > 0 ? 1 : -1)).epsilon(1e-9));

  for (const AdagradOptions& o : {AdagradOptions{}, AdagradOptions{.lr = 0.1, .lr_decay = 0.5},
                                  AdagradOptions{.lr = 0.1, .lr_decay = 0.1, .weight_decay = 0.2,
                                                 .initial_accumulator_value = 0.5, .eps = 1e-3}}) {
    CAPTURE(o.lr_decay);
    check_steps(run<Adagrad>(kTheta, kGrads, o), adagrad_reference(kTheta, kGrads, o), 1e-10);
  }
}

TEST_CASE("float32 parameters are updated in float32 and agree with the double reference") {
  const AdamOptions o{.lr = 0.1, .weight_decay = 0.1, .amsgrad = true};
  check_steps(run<Adam>(kTheta, kGrads, o, DType::F32), adam_reference(kTheta, kGrads, o, false), 1e-5);
  const RMSpropOptions r{.lr = 0.01, .momentum = 0.9, .centered = true};
  check_steps(run<RMSprop>(kTheta, kGrads, r, DType::F32), rmsprop_reference(kTheta, kGrads, r), 1e-5);
  const SGDOptions s{.lr = 0.1, .momentum = 0.9, .nesterov = true};
  check_steps(run<SGD>(kTheta, kGrads, s, DType::F32), sgd_reference(kTheta, kGrads, s), 1e-5);
  const AdagradOptions a{.lr = 0.1, .lr_decay = 0.1};
  check_steps(run<Adagrad>(kTheta, kGrads, a, DType::F32), adagrad_reference(kTheta, kGrads, a), 1e-5);
}

TEST_CASE("parameters without a gradient are skipped and their step count does not advance") {
  Variable a(tensor({1.0, 2.0}, {2}, DType::F64), true);
  Variable b(tensor({5.0}, {1}, DType::F64), true);
  Adam opt({a, b}, 0.1);
  CHECK(opt.lr() == 0.1);
  a.set_grad(tensor({1.0, -1.0}, {2}, DType::F64));
  opt.step();
  CHECK(b.data().to_vector() == Vec{5.0});  // untouched
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
  b.set_grad(tensor({3.0}, {1}, DType::F64));
  opt.step();  // a has no gradient now: unchanged
  CHECK(a.data().at({0}) == doctest::Approx(0.9).epsilon(1e-9));
  // b's first update: bias correction with t = 1, so a step of lr * sign(g)
  CHECK(b.data().item() == doctest::Approx(4.9).epsilon(1e-9));

  opt.set_lr(0.5);
  b.set_grad(tensor({3.0}, {1}, DType::F64));
  opt.step();  // t = 2 with the same gradient: m_hat = g, v_hat = g^2, so again lr * sign(g)
  CHECK(b.data().item() == doctest::Approx(4.4).epsilon(1e-9));
}

TEST_CASE("optimizer argument errors") {
  Variable p(tensor({1.0, 2.0}, {2}, DType::F64), true);
  Variable frozen(tensor({1.0}, {1}, DType::F64));
  CHECK_THROWS_WITH_AS(SGD({p, frozen}, 0.1), doctest::Contains("SGD: parameter 1 [1] does not require grad"), Error);
  CHECK_THROWS_WITH_AS(Adam({p * 2.0}), doctest::Contains("not a leaf"), Error);
  CHECK_THROWS_WITH_AS(Adam({p, p}), doctest::Contains("Adam: parameter 1 [2] appears more than once"), Error);
  CHECK_THROWS_WITH_AS(Adam({p}, AdamOptions{.beta1 = 1.0}), doctest::Contains("Adam: invalid beta1 1"), Error);
  CHECK_THROWS_WITH_AS(AdamW({p}, AdamWOptions{.lr = -1}), doctest::Contains("AdamW: invalid learning rate -1"), Error);
  CHECK_THROWS_WITH_AS(SGD({p}, SGDOptions{.lr = 0.1, .nesterov = true}),
                       doctest::Contains("nesterov needs momentum > 0 and dampening 0"), Error);
  CHECK_THROWS_WITH_AS(RMSprop({p}, RMSpropOptions{.alpha = -0.5}), doctest::Contains("RMSprop: invalid alpha"), Error);
  CHECK_THROWS_WITH_AS(Adagrad({p}, AdagradOptions{.lr_decay = -1}), doctest::Contains("Adagrad: invalid lr_decay"),
                       Error);
  SGD sgd({p}, 0.1);
  CHECK_THROWS_WITH_AS(sgd.set_lr(-0.1), doctest::Contains("invalid learning rate"), Error);
  p.set_grad(tensor({1.0, 2.0}, {2}, DType::F32));
  CHECK_THROWS_WITH_AS(sgd.step(), doctest::Contains("SGD: parameter 0 is [2] float64 but its gradient is [2] float32"),
                       Error);
}

TEST_CASE("learning-rate schedules follow PyTorch's closed forms and drive the optimizer") {
  Variable p(tensor({1.0}, {1}, DType::F64), true);
  SUBCASE("StepLR") {
    SGD opt({p}, 0.1);
    StepLR sched(opt, 2, 0.5);
    Vec lrs{sched.last_lr()};
    for (int i = 0; i < 6; ++i) {
      sched.step();
      lrs.push_back(sched.last_lr());
      CHECK(opt.lr() == sched.last_lr());
    }
    const Vec expected{0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125};
    for (size_t i = 0; i < lrs.size(); ++i) CHECK(lrs[i] == doctest::Approx(expected[i]).epsilon(1e-14));
    // the optimizer uses the scheduled lr: 0.0125 * g
    p.set_grad(tensor({2.0}, {1}, DType::F64));
    opt.step();
    CHECK(p.data().item() == doctest::Approx(1.0 - 0.025).epsilon(1e-14));
  }
  SUBCASE("ExponentialLR") {
    Adam opt({p}, 0.2);
    ExponentialLR sched(opt, 0.9);
    CHECK(sched.last_lr() == 0.2);
    for (int i = 1; i <= 5; ++i) {
      sched.step();
      CHECK(sched.last_lr() == doctest::Approx(0.2 * std::pow(0.9, i)).epsilon(1e-14));
      CHECK(opt.lr() == sched.last_lr());
    }
  }
  SUBCASE("CosineAnnealingLR") {
    SGD opt({p}, 0.1);
    CosineAnnealingLR sched(opt, 4, 0.01);
    // eta_min + (base - eta_min)(1 + cos(pi k / 4)) / 2, by hand
    const double c = std::cos(std::acos(-1.0) / 4);
    const Vec expected{0.1, 0.01 + 0.09 * (1 + c) / 2, 0.055, 0.01 + 0.09 * (1 - c) / 2, 0.01,
                       0.01 + 0.09 * (1 - c) / 2};
    CHECK(sched.last_lr() == expected[0]);
    for (size_t k = 1; k < expected.size(); ++k) {
      sched.step();
      CHECK(sched.last_lr() == doctest::Approx(expected[k]).epsilon(1e-14));
      CHECK(opt.lr() == sched.last_lr());
    }
    CHECK(sched.last_epoch() == 5);
  }
  SGD opt({p}, 0.1);
  CHECK_THROWS_WITH_AS(StepLR(opt, 0), doctest::Contains("StepLR: step_size must be positive, got 0"), Error);
  CHECK_THROWS_WITH_AS(CosineAnnealingLR(opt, -1), doctest::Contains("T_max must be positive"), Error);
}

namespace {

// A schedule of each kind over `opt`; `other` gives other settings than the checkpointed
// run's (load_state_dict must replace them).
std::unique_ptr<LRScheduler> make_schedule(const std::string& kind, Optimizer& opt, bool other = false) {
  if (kind == "StepLR") return std::make_unique<StepLR>(opt, other ? 1 : 3, other ? 0.9 : 0.5);
  if (kind == "ExponentialLR") return std::make_unique<ExponentialLR>(opt, other ? 0.5 : 0.8);
  return std::make_unique<CosineAnnealingLR>(opt, other ? 2 : 7, other ? 0.0 : 1e-3);
}

struct Trace {
  Vec lrs;    // the scheduler's last_lr after each step
  Vec theta;  // the parameter after each optimizer step
};

// SGD with momentum on one parameter, loss 0.5 θ² (gradient θ), one schedule step per update.
void train(SGD& opt, LRScheduler& sched, Variable& p, int steps, Trace& out) {
  for (int i = 0; i < steps; ++i) {
    p.set_grad(p.data().clone());
    opt.step();
    sched.step();
    out.lrs.push_back(sched.last_lr());
    out.theta.push_back(p.data().item());
    CHECK(opt.lr() == sched.last_lr());
  }
}

}  // namespace

TEST_CASE("a schedule restored from its state_dict mid-run sets exactly the learning rates of an uninterrupted run") {
  for (const std::string kind : {"StepLR", "ExponentialLR", "CosineAnnealingLR"}) {
    CAPTURE(kind);
    constexpr int kBefore = 5, kAfter = 9;
    Trace whole;
    {
      Variable p(tensor({2.0}, {1}, DType::F64), true);
      SGD opt({p}, SGDOptions{.lr = 0.1, .momentum = 0.9});
      auto sched = make_schedule(kind, opt);
      train(opt, *sched, p, kBefore + kAfter, whole);
    }
    Trace resumed;
    const std::string path = std::string(UNROLL_TEST_TMPDIR "/sched_") + kind + ".safetensors";
    Tensor theta;
    {
      Variable p(tensor({2.0}, {1}, DType::F64), true);
      SGD opt({p}, SGDOptions{.lr = 0.1, .momentum = 0.9});
      auto sched = make_schedule(kind, opt);
      train(opt, *sched, p, kBefore, resumed);
      StateDict ck;
      for (const auto& [name, t] : opt.state_dict()) ck.insert("optim." + name, t);
      for (const auto& [name, t] : sched->state_dict()) ck.insert("sched." + name, t);
      save_safetensors(path, ck);
      theta = p.data().clone();
    }
    {
      // A fresh run with another lr and other settings, restored from the file.
      const SafetensorsFile file = load_safetensors(path);
      StateDict optim_state, sched_state;
      for (const auto& [name, t] : file.tensors) {
        if (name.rfind("optim.", 0) == 0) optim_state.insert(name.substr(6), t);
        if (name.rfind("sched.", 0) == 0) sched_state.insert(name.substr(6), t);
      }
      Variable p(theta, true);
      SGD opt({p}, SGDOptions{.lr = 0.7, .momentum = 0.9});
      auto sched = make_schedule(kind, opt, true);
      opt.load_state_dict(optim_state);
      sched->load_state_dict(sched_state);
      CHECK(sched->last_epoch() == kBefore);
      CHECK(sched->base_lr() == 0.1);
      CHECK(sched->last_lr() == whole.lrs[kBefore - 1]);
      CHECK(opt.lr() == whole.lrs[kBefore - 1]);
      train(opt, *sched, p, kAfter, resumed);
    }
    REQUIRE(resumed.lrs.size() == whole.lrs.size());
    for (size_t i = 0; i < whole.lrs.size(); ++i) {
      CAPTURE(i);
      CHECK(resumed.lrs[i] == whole.lrs[i]);  // bit for bit
      CHECK(resumed.theta[i] == whole.theta[i]);
    }
  }
}

TEST_CASE("scheduler state_dict keys, dtypes and order follow torch.optim.lr_scheduler") {
  Variable p(tensor({1.0}, {1}, DType::F64), true);
  SGD opt({p}, 0.1);
  StepLR step(opt, 3, 0.5);
  step.step();
  step.step();
  step.step();
  const StateDict sd = step.state_dict();
  std::vector<std::string> keys;
  for (const auto& item : sd) keys.push_back(item.first);
  CHECK(keys == std::vector<std::string>{"step_size", "gamma", "base_lrs.0", "last_epoch", "_last_lr.0"});
  CHECK(sd.at("step_size").dtype() == DType::I64);
  CHECK(sd.at("step_size").item() == 3);
  CHECK(sd.at("gamma").dtype() == DType::F64);
  CHECK(sd.at("gamma").item() == 0.5);
  CHECK(sd.at("base_lrs.0").item() == 0.1);
  CHECK(sd.at("last_epoch").dtype() == DType::I64);
  CHECK(sd.at("last_epoch").item() == 3);
  CHECK(sd.at("_last_lr.0").item() == doctest::Approx(0.05).epsilon(1e-15));

  keys.clear();
  for (const auto& item : CosineAnnealingLR(opt, 10, 0.01).state_dict()) keys.push_back(item.first);
  CHECK(keys == std::vector<std::string>{"T_max", "eta_min", "base_lrs.0", "last_epoch", "_last_lr.0"});
  keys.clear();
  for (const auto& item : ExponentialLR(opt, 0.9).state_dict()) keys.push_back(item.first);
  CHECK(keys == std::vector<std::string>{"gamma", "base_lrs.0", "last_epoch", "_last_lr.0"});
}

TEST_CASE("scheduler load_state_dict names a missing, unexpected or invalid key and then changes nothing") {
  Variable p(tensor({1.0}, {1}, DType::F64), true);
  SGD opt({p}, 0.1);
  StepLR saved(opt, 3, 0.5);
  for (int i = 0; i < 4; ++i) saved.step();
  const StateDict good = saved.state_dict();
  auto with = [&](const std::string& key, const Tensor& value) {  // good with key replaced (or added)
    StateDict sd;
    for (const auto& [name, t] : good)
      if (name != key) sd.insert(name, t);
    sd.insert(key, value);
    return sd;
  };
  auto without = [&](const std::string& key) {
    StateDict sd;
    for (const auto& [name, t] : good)
      if (name != key) sd.insert(name, t);
    return sd;
  };

  SGD opt2({p}, 0.2);
  StepLR target(opt2, 2, 0.9);
  auto unchanged = [&] {
    CHECK(target.last_epoch() == 0);
    CHECK(target.base_lr() == 0.2);
    CHECK(target.last_lr() == 0.2);
    CHECK(target.lr_at(2) == doctest::Approx(0.2 * 0.9).epsilon(1e-15));  // step_size 2, gamma 0.9 still
  };
  CHECK_THROWS_WITH_AS(target.load_state_dict(without("last_epoch")),
                       doctest::Contains("StepLR: load_state_dict: \"last_epoch\" is missing"), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(without("step_size")), doctest::Contains("\"step_size\" is missing"),
                       Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("extra", scalar_tensor(1.0, DType::F64))),
                       doctest::Contains("StepLR: load_state_dict: unexpected keys \"extra\""), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("last_epoch", scalar_tensor(2.5, DType::F64))),
                       doctest::Contains("\"last_epoch\" must be a whole number, got 2.5"), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("last_epoch", scalar_tensor(-1.0, DType::I64))),
                       doctest::Contains("\"last_epoch\" must be >= 0"), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("base_lrs.0", tensor({0.1, 0.2}, {2}, DType::F64))),
                       doctest::Contains("\"base_lrs.0\" must be one floating-point value, got a [2] float64 tensor"),
                       Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("_last_lr.0", scalar_tensor(-0.5, DType::F64))),
                       doctest::Contains("\"_last_lr.0\" must be finite and >= 0, got -0.5"), Error);
  CHECK_THROWS_WITH_AS(target.load_state_dict(with("step_size", scalar_tensor(0.0, DType::I64))),
                       doctest::Contains("StepLR: step_size must be positive, got 0"), Error);
  unchanged();
  // Another kind of schedule's state: ExponentialLR has no step_size.
  ExponentialLR other(opt, 0.9);
  CHECK_THROWS_WITH_AS(target.load_state_dict(other.state_dict()), doctest::Contains("\"step_size\" is missing"),
                       Error);
  unchanged();

  target.load_state_dict(good);
  CHECK(target.last_epoch() == 4);
  CHECK(target.lr_at(6) == doctest::Approx(0.1 * 0.5 * 0.5).epsilon(1e-15));  // step_size 3, gamma 0.5 now
  CHECK(opt2.lr() == 0.2);  // the optimizer's lr is its own state_dict's business
}

TEST_CASE("clip_grad_norm returns the norm before clipping and scales to max_norm") {
  Variable a(tensor({3.0, 4.0}, {2}, DType::F64), true);
  Variable b(tensor({0.0}, {1}, DType::F64), true);
  Variable none(tensor({0.0}, {1}, DType::F64), true);  // no gradient: skipped
  const Tensor ga = tensor({3.0, 4.0}, {2}, DType::F64);
  auto set = [&] {
    a.set_grad(ga);  // shares ga: clipping must not change ga itself
    b.set_grad(tensor({-12.0}, {1}, DType::F64));
  };
  auto norm2 = [&] {
    double s = 0;
    for (double v : a.grad().to_vector()) s += v * v;
    for (double v : b.grad().to_vector()) s += v * v;
    return std::sqrt(s);
  };

  set();
  CHECK(clip_grad_norm({a, b, none}, 6.5) == doctest::Approx(13.0).epsilon(1e-14));  // sqrt(9 + 16 + 144)
  CHECK(norm2() == doctest::Approx(6.5).epsilon(1e-6));
  CHECK(a.grad().at({0}) == doctest::Approx(3.0 * 6.5 / (13.0 + 1e-6)).epsilon(1e-14));
  CHECK(ga.to_vector() == Vec{3.0, 4.0});

  set();
  CHECK(clip_grad_norm({a, b}, 20.0) == doctest::Approx(13.0));  // below max_norm: unchanged
  CHECK(b.grad().to_vector() == Vec{-12.0});

  set();
  CHECK(clip_grad_norm({a, b}, 6.0, INFINITY) == 12.0);  // max |g|
  CHECK(b.grad().item() == doctest::Approx(-6.0).epsilon(1e-6));
  CHECK(a.grad().at({1}) == doctest::Approx(2.0).epsilon(1e-6));

  set();
  CHECK(clip_grad_norm({a, b}, 100.0, 1.0) == 19.0);
  set();
  CHECK(clip_grad_norm({a, b}, 100.0, 3.0) == doctest::Approx(std::cbrt(27.0 + 64.0 + 1728.0)).epsilon(1e-14));
  CHECK(clip_grad_norm({none}, 1.0) == 0.0);
  CHECK_THROWS_WITH_AS(clip_grad_norm({a}, 1.0, 0.0), doctest::Contains("norm_type must be positive"), Error);
}

TEST_CASE("clip_grad_value clamps every element") {
  Variable a(tensor({0.0, 0.0, 0.0, 0.0}, {4}, DType::F32), true);
  a.set_grad(tensor({-3.0, 0.5, 2.0, -1.0}, {4}, DType::F32));
  clip_grad_value({a}, 1.0);
  CHECK(a.grad().to_vector() == Vec{-1.0, 0.5, 1.0, -1.0});
  CHECK_THROWS_WITH_AS(clip_grad_value({a}, -1.0), doctest::Contains("clip_value must be >= 0, got -1"), Error);
}

TEST_CASE("end to end: Adam fits a linear regression") {
  manual_seed(3);
  Generator gen(11);
  Linear model(3, 1);
  const Tensor x = randn({64, 3}, gen);                                   // [B,3]
  const Tensor y = matmul(x, tensor({1.5, -2.0, 0.5}, {3, 1})) + 0.3;     // [B,1]
  Adam opt(model.parameters(), AdamOptions{.lr = 0.05});
  double first = 0, last = 0;
  for (int it = 0; it < 300; ++it) {
    opt.zero_grad();
    Variable loss = mse_loss(model(Variable(x)), y);
    if (it == 0) first = loss.item();
    last = loss.item();
    loss.backward();
    opt.step();
  }
  CHECK(first > 0.5);
  CHECK(last < 1e-4);
  CHECK(model.weight.data().at({0, 1}) == doctest::Approx(-2.0).epsilon(1e-2));
  CHECK(model.bias.data().item() == doctest::Approx(0.3).epsilon(1e-2));
}
