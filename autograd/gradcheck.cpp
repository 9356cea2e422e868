#include "autograd/gradcheck.h"

#include "autograd/grad.h"
#include "autograd/ops.h"

#include <cmath>

namespace unroll {

std::string GradcheckResult::summary() const {
  std::string s = fmt::format("{}: {}\n", name, ok ? "passed" : "FAILED");
  for (const GradcheckInput& in : inputs)
    s += fmt::format("  input {}{}: max abs err {:.3e}, max rel err {:.3e}, worst element {} (analytic {:.8g}, "
                     "numeric {:.8g}){}\n",
                     in.index, in.what.empty() ? "" : " (" + in.what + ")", in.max_abs_error, in.max_rel_error, in.worst_element, in.worst_analytic,
                     in.worst_numeric, in.ok ? "" : "  <- FAIL");
  return s;
}

GradcheckResult gradcheck(const std::function<Variable()>& f, const std::vector<Variable>& inputs,
                          GradcheckOptions opt) {
  UNROLL_CHECK(!inputs.empty(), "gradcheck: no inputs given");
  for (size_t i = 0; i < inputs.size(); ++i) {
    UNROLL_CHECK(inputs[i].defined(), "gradcheck: input {} is undefined", i);
    UNROLL_CHECK(inputs[i].dtype() == DType::F64,
                 "gradcheck: input {} is {}; use float64 (finite differences in float32 are too coarse)", i,
                 inputs[i].dtype());
    UNROLL_CHECK(inputs[i].is_leaf() && inputs[i].requires_grad(),
                 "gradcheck: input {} must be a leaf with requires_grad (got '{}')", i, inputs[i].op_name());
  }
  // The scalar being checked: f() itself, or sum(f() * w) for a fixed random w.
  Tensor weights;
  auto objective = [&]() -> Variable {
    Variable y = f();
    UNROLL_CHECK(y.defined() && y.dtype() == DType::F64, "gradcheck: f must return a float64 Variable");
    if (y.numel() == 1) return y;
    if (!weights.defined()) {
      Generator gen(opt.seed);
      weights = uniform(y.shape(), -1.0, 1.0, gen, DType::F64);
    }
    return sum(y * Variable(weights));
  };

  std::vector<Variable> params = inputs;  // handles share the inputs' nodes
  std::vector<Tensor> saved_grads;
  for (Variable& p : params) {
    saved_grads.push_back(p.grad());
    p.zero_grad();
  }
  objective().backward();

  GradcheckResult result;
  for (size_t i = 0; i < params.size(); ++i) {
    Variable& p = params[i];
    GradcheckInput rep;
    rep.index = static_cast<int>(i);
    const Tensor analytic = p.grad().defined() ? p.grad() : zeros_like(p.data());
    double* x = p.data().data<double>();
    const double* a = analytic.data<double>();
    double worst_excess = -1;
    for (int64_t k = 0; k < p.numel(); ++k) {
      const double orig = x[k];
      double plus, minus;
      {
        NoGradGuard ng;
        x[k] = orig + opt.eps;
        plus = objective().item();
        x[k] = orig - opt.eps;
        minus = objective().item();
        x[k] = orig;
      }
      const double numeric = (plus - minus) / (2 * opt.eps);
      const double err = std::abs(a[k] - numeric);
      const double excess = err - (opt.atol + opt.rtol * std::abs(numeric));
      rep.max_abs_error = std::max(rep.max_abs_error, err);
      rep.max_rel_error = std::max(rep.max_rel_error, err / std::max(std::abs(numeric), 1e-12));
      if (excess > worst_excess || !std::isfinite(err)) {
        worst_excess = std::isfinite(err) ? excess : INFINITY;
        rep.worst_element = k;
        rep.worst_analytic = a[k];
        rep.worst_numeric = numeric;
      }
      if (!(excess <= 0)) rep.ok = false;
    }
    result.ok = result.ok && rep.ok;
    result.inputs.push_back(rep);
  }
  for (size_t i = 0; i < params.size(); ++i) params[i].set_grad(saved_grads[i]);
  return result;
}

GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& f,
                          const std::vector<Tensor>& inputs, GradcheckOptions opt) {
  std::vector<Variable> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t.to(DType::F64).clone(), true);
  return gradcheck([&] { return f(vars); }, vars, opt);
}

GradcheckResult gradgradcheck(const std::function<Variable()>& f, const std::vector<Variable>& inputs,
                              GradcheckOptions opt) {
  UNROLL_CHECK(!inputs.empty(), "gradgradcheck: no inputs given");
  for (size_t i = 0; i < inputs.size(); ++i) {
    UNROLL_CHECK(inputs[i].defined(), "gradgradcheck: input {} is undefined", i);
    UNROLL_CHECK(inputs[i].dtype() == DType::F64,
                 "gradgradcheck: input {} is {}; use float64 (finite differences in float32 are too coarse)", i,
                 inputs[i].dtype());
    UNROLL_CHECK(inputs[i].is_leaf() && inputs[i].requires_grad(),
                 "gradgradcheck: input {} must be a leaf with requires_grad (got '{}')", i, inputs[i].op_name());
  }
  // Grad mode on for f and grad() even where gradcheck evaluates under NoGradGuard.
  struct GradOn {
    bool prev = grad_enabled();
    GradOn() { set_grad_enabled(true); }
    ~GradOn() { set_grad_enabled(prev); }
  };
  Shape out_shape;
  {
    GradOn on;
    const Variable y = f();
    UNROLL_CHECK(y.defined() && y.dtype() == DType::F64, "gradgradcheck: f must return a float64 Variable");
    out_shape = y.shape();
  }
  Generator gen(opt.seed + 0x9e3779b97f4a7c15ULL);
  Variable u(uniform(out_shape, -1.0, 1.0, gen, DType::F64), true);
  std::vector<Variable> vs;
  for (const Variable& x : inputs) vs.emplace_back(uniform(x.shape(), -1.0, 1.0, gen, DType::F64));
  // s(x, u): recorded (create_graph) when gradcheck differentiates it, first order only
  // when it evaluates it for the finite differences (under its NoGradGuard).
  auto s = [&]() -> Variable {
    const bool record = grad_enabled();
    GradOn on;
    const Variable y = f();
    UNROLL_CHECK(y.defined() && y.shape() == out_shape, "gradgradcheck: f returned shape {}, then {}", out_shape,
                 y.defined() ? y.shape().str() : "undefined");
    const std::vector<Variable> g =
        grad(sum(y * u), std::span<const Variable>(inputs), {.retain_graph = {}, .create_graph = record, .allow_unused = true});
    // 0 * sum(u) keeps s a function of the inputs when the second derivative is zero.
    Variable total = sum(u) * 0.0;
    for (size_t i = 0; i < g.size(); ++i)
      if (g[i].defined()) total = total + sum(g[i] * vs[i]);
    return record ? total : total.detach();
  };
  std::vector<Variable> all = inputs;
  all.push_back(u);
  GradcheckResult r = gradcheck(s, all, opt);
  r.name = "gradgradcheck";
  r.inputs.back().what = "grad_output";
  return r;
}

GradcheckResult gradgradcheck(const std::function<Variable(const std::vector<Variable>&)>& f,
                              const std::vector<Tensor>& inputs, GradcheckOptions opt) {
  std::vector<Variable> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t.to(DType::F64).clone(), true);
  return gradgradcheck([&] { return f(vars); }, vars, opt);
}

}  // namespace unroll
