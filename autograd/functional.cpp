// torch.autograd.functional on grad(): see autograd/functional.h.
#include "autograd/functional.h"

#include "autograd/grad.h"
#include "autograd/ops.h"

#include <cmath>
#include <utility>

namespace unroll::functional {

namespace {

// Recording on for the scope (PyTorch's functional API enables grad mode too), so f's
// graph exists even when the caller is under NoGradGuard.
class EnableGrad {
public:
  EnableGrad() : prev_(grad_enabled()) { set_grad_enabled(true); }
  ~EnableGrad() { set_grad_enabled(prev_); }
  EnableGrad(const EnableGrad&) = delete;
  EnableGrad& operator=(const EnableGrad&) = delete;
private:
  bool prev_;
};

// The Variables f is called with (see "The inputs" in functional.h).
std::vector<Variable> prepare(const char* op, const std::vector<Variable>& inputs, bool create_graph) {
  UNROLL_CHECK(!inputs.empty(), "{}: no inputs given", op);
  std::vector<Variable> xs;
  xs.reserve(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Variable& x = inputs[i];
    UNROLL_CHECK(x.defined(), "{}: input {} is undefined", op, i);
    UNROLL_CHECK(x.data().is_floating(), "{}: input {} is {} {}; derivatives need a floating input", op, i, x.dtype(),
                 x.shape());
    xs.push_back(create_graph && x.requires_grad() ? x : Variable(x.data(), true));
  }
  return xs;
}

Variable call(const char* op, const Fn& f, const std::vector<Variable>& xs) {
  Variable out = f(xs);
  UNROLL_CHECK(out.defined(), "{}: f returned an undefined Variable", op);
  UNROLL_CHECK(out.data().is_floating(), "{}: f returned a {} {}; derivatives need a floating output", op, out.dtype(),
               out.shape());
  return out;
}

// A result: recorded only with create_graph.
Variable finish(const Variable& v, bool create_graph) { return create_graph ? v : v.detach(); }

// d<out, seed>/d xs, one Variable per input (zeros for an input out does not depend on).
// With create_graph the result is also a function of seed (grad_outputs).
std::vector<Variable> gradients(const Variable& out, const std::vector<Variable>& xs, const Variable& seed,
                                bool create_graph, bool retain_graph) {
  std::vector<Variable> g(xs.size());
  if (out.requires_grad()) {
    GradOptions o;
    o.create_graph = create_graph;
    o.retain_graph = retain_graph;
    o.allow_unused = true;
    g = unroll::grad(std::span<const Variable>(&out, 1), xs, std::span<const Variable>(&seed, 1), o);
  }
  for (size_t i = 0; i < xs.size(); ++i)
    if (!g[i].defined()) g[i] = Variable(zeros_like(xs[i].data()));
  return g;
}

// e_k: a tensor of t's shape and dtype, 1 at flat index k, 0 elsewhere.
Tensor one_hot(const Tensor& t, int64_t k) {
  Tensor e = zeros(t.shape(), t.dtype());
  if (e.dtype() == DType::F64) e.data<double>()[k] = 1;
  else e.data<float>()[k] = 1;
  return e;
}

Shape concat_shapes(const Shape& a, const Shape& b) {
  Shape s = a;
  UNROLL_CHECK(a.ndim() + b.ndim() <= kMaxDims, "jacobian: the result would have {} + {} dimensions (at most {})",
               a.ndim(), b.ndim(), kMaxDims);
  for (int64_t d : b) s.push_back(d);
  return s;
}

Variable flat(const Variable& v) { return reshape(v, {v.numel()}); }

// v: one Variable per input, of its shape and dtype.
void check_vectors(const char* op, const std::vector<Variable>& v, const std::vector<Variable>& xs) {
  UNROLL_CHECK(v.size() == xs.size(), "{}: {} inputs but {} vectors v", op, xs.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i)
    UNROLL_CHECK(v[i].defined() && v[i].shape() == xs[i].shape() && v[i].dtype() == xs[i].dtype(),
                 "{}: v[{}] must match input {} ({} {}), got {}", op, i, i, xs[i].shape(), xs[i].dtype(),
                 v[i].defined() ? fmt::format("{} {}", v[i].shape(), v[i].dtype()) : std::string("undefined"));
}

// sum_i <g_i, v_i> over the g_i that depend on something (the others are constant zeros).
Variable inner(const char* op, const std::vector<Variable>& g, const std::vector<Variable>& v,
               const std::vector<Variable>& xs) {
  check_vectors(op, v, xs);
  Variable s;
  for (size_t i = 0; i < g.size(); ++i) {
    if (!g[i].requires_grad()) continue;
    Variable term = sum(g[i] * v[i]);
    s = s.defined() ? s + term : term;
  }
  return s;
}

void check_scalar(const char* op, const Variable& out) {
  UNROLL_CHECK(out.numel() == 1, "{}: f must return a one-element Variable, got shape {}", op, out.shape());
}

}  // namespace

// ---- jacobian ---------------------------------------------------------------------------

std::vector<Variable> jacobian(const Fn& f, const std::vector<Variable>& inputs, FunctionalOptions opt) {
  EnableGrad grad_on;
  const std::vector<Variable> xs = prepare("jacobian", inputs, opt.create_graph);
  const Variable out = call("jacobian", f, xs);
  const int64_t n_out = out.numel();
  UNROLL_CHECK(n_out > 0, "jacobian: f returned an empty Variable {}", out.shape());
  // Row o of every J_i is d out[o] / d x_i: one vector-Jacobian product with e_o.
  std::vector<std::vector<Variable>> rows(xs.size());
  for (int64_t o = 0; o < n_out; ++o) {
    const bool last = o + 1 == n_out;
    std::vector<Variable> g = gradients(out, xs, Variable(one_hot(out.data(), o)), opt.create_graph, opt.create_graph || !last);
    for (size_t i = 0; i < xs.size(); ++i) rows[i].push_back(flat(g[i]));
  }
  std::vector<Variable> J;
  for (size_t i = 0; i < xs.size(); ++i)
    J.push_back(finish(reshape(stack(rows[i], 0), concat_shapes(out.shape(), xs[i].shape())), opt.create_graph));
  return J;
}

Variable jacobian(const Fn1& f, const Variable& input, FunctionalOptions opt) {
  return jacobian([&](const std::vector<Variable>& x) { return f(x[0]); }, std::vector<Variable>{input}, opt)[0];
}

// ---- hessian ----------------------------------------------------------------------------

std::vector<std::vector<Variable>> hessian(const Fn& f, const std::vector<Variable>& inputs, FunctionalOptions opt) {
  EnableGrad grad_on;
  const std::vector<Variable> xs = prepare("hessian", inputs, opt.create_graph);
  const Variable out = call("hessian", f, xs);
  check_scalar("hessian", out);
  // The gradient, recorded, flattened into one vector G; row k of the Hessian is dG[k]/dx.
  const std::vector<Variable> g = gradients(out, xs, Variable(ones_like(out.data())), true, true);
  std::vector<Variable> pieces;
  std::vector<int64_t> offset{0};
  for (const Variable& gi : g) {
    pieces.push_back(flat(gi));
    offset.push_back(offset.back() + gi.numel());
  }
  const Variable G = concat(pieces, 0);
  // rows[j][k]: d G[k] / d x_j, flattened.
  std::vector<std::vector<Variable>> rows(xs.size());
  const int64_t n = offset.back();
  for (int64_t k = 0; k < n; ++k) {
    const bool last = k + 1 == n;
    std::vector<Variable> r = gradients(G, xs, Variable(one_hot(G.data(), k)), opt.create_graph, opt.create_graph || !last);
    for (size_t j = 0; j < xs.size(); ++j) rows[j].push_back(flat(r[j]));
  }
  std::vector<std::vector<Variable>> H(xs.size());
  for (size_t i = 0; i < xs.size(); ++i)
    for (size_t j = 0; j < xs.size(); ++j) {
      std::vector<Variable> block(rows[j].begin() + offset[i], rows[j].begin() + offset[i + 1]);
      H[i].push_back(finish(reshape(stack(block, 0), concat_shapes(xs[i].shape(), xs[j].shape())), opt.create_graph));
    }
  return H;
}

Variable hessian(const Fn1& f, const Variable& input, FunctionalOptions opt) {
  return hessian([&](const std::vector<Variable>& x) { return f(x[0]); }, std::vector<Variable>{input}, opt)[0][0];
}

// ---- vjp, jvp, hvp ----------------------------------------------------------------------

OutputAndDerivatives vjp(const Fn& f, const std::vector<Variable>& inputs, const Variable& v, FunctionalOptions opt) {
  EnableGrad grad_on;
  const std::vector<Variable> xs = prepare("vjp", inputs, opt.create_graph);
  const Variable out = call("vjp", f, xs);
  Variable seed = v;
  if (v.defined()) {
    UNROLL_CHECK(v.shape() == out.shape() && v.dtype() == out.dtype(),
                 "vjp: v ({} {}) must match f's output ({} {})", v.shape(), v.dtype(), out.shape(), out.dtype());
  } else {
    UNROLL_CHECK(out.numel() == 1, "vjp: v may be omitted only when f returns one element; f returned shape {}",
                 out.shape());
    seed = Variable(ones_like(out.data()));
  }
  std::vector<Variable> d = gradients(out, xs, seed, opt.create_graph, opt.create_graph);
  for (Variable& di : d) di = finish(di, opt.create_graph);
  return {finish(out, opt.create_graph), std::move(d)};
}

OutputAndDerivative vjp(const Fn1& f, const Variable& input, const Variable& v, FunctionalOptions opt) {
  OutputAndDerivatives r = vjp([&](const std::vector<Variable>& x) { return f(x[0]); }, std::vector<Variable>{input}, v, opt);
  return {std::move(r.output), std::move(r.derivatives[0])};
}

OutputAndDerivative jvp(const Fn& f, const std::vector<Variable>& inputs, const std::vector<Variable>& v,
                        FunctionalOptions opt) {
  EnableGrad grad_on;
  const std::vector<Variable> xs = prepare("jvp", inputs, opt.create_graph);
  std::vector<Variable> vs = v;
  if (vs.empty()) {
    UNROLL_CHECK(xs.size() == 1 && xs[0].numel() == 1,
                 "jvp: v may be omitted only for one one-element input; got {} inputs, the first of shape {}", xs.size(),
                 xs[0].shape());
    vs.push_back(Variable(ones_like(xs[0].data())));
  }
  check_vectors("jvp", vs, xs);
  const Variable out = call("jvp", f, xs);
  // Double-vjp: g(u) = J^T u, recorded with u a leaf; then J v = d<g(u), v>/du (any u).
  const Variable u(zeros_like(out.data()), true);
  const std::vector<Variable> g = gradients(out, xs, u, true, true);
  const Variable s = inner("jvp", g, vs, xs);
  Variable jv = s.defined() ? gradients(s, {u}, Variable(ones_like(s.data())), opt.create_graph, opt.create_graph)[0]
                            : Variable(zeros_like(out.data()));
  return {finish(out, opt.create_graph), finish(jv, opt.create_graph)};
}

OutputAndDerivative jvp(const Fn1& f, const Variable& input, const Variable& v, FunctionalOptions opt) {
  return jvp([&](const std::vector<Variable>& x) { return f(x[0]); }, std::vector<Variable>{input},
             std::vector<Variable>{v}, opt);
}

OutputAndDerivatives hvp(const Fn& f, const std::vector<Variable>& inputs, const std::vector<Variable>& v,
                         FunctionalOptions opt) {
  EnableGrad grad_on;
  const std::vector<Variable> xs = prepare("hvp", inputs, opt.create_graph);
  check_vectors("hvp", v, xs);
  const Variable out = call("hvp", f, xs);
  check_scalar("hvp", out);
  const std::vector<Variable> g = gradients(out, xs, Variable(ones_like(out.data())), true, true);
  // H v = d<g, v>/dx, g = df/dx recorded.
  const Variable s = inner("hvp", g, v, xs);
  std::vector<Variable> hv;
  if (s.defined()) {
    hv = gradients(s, xs, Variable(ones_like(s.data())), opt.create_graph, opt.create_graph);
  } else {
    for (const Variable& x : xs) hv.push_back(Variable(zeros_like(x.data())));
  }
  for (Variable& h : hv) h = finish(h, opt.create_graph);
  return {finish(out, opt.create_graph), std::move(hv)};
}

OutputAndDerivative hvp(const Fn1& f, const Variable& input, const Variable& v, FunctionalOptions opt) {
  OutputAndDerivatives r = hvp([&](const std::vector<Variable>& x) { return f(x[0]); }, std::vector<Variable>{input},
                               std::vector<Variable>{v}, opt);
  return {std::move(r.output), std::move(r.derivatives[0])};
}

// ---- Hessian-vector products of a model's loss -------------------------------------------

HessianVectorProduct::HessianVectorProduct(const Variable& loss, std::vector<Variable> params)
    : params_(std::move(params)) {
  UNROLL_CHECK(loss.defined(), "HessianVectorProduct: the loss is undefined");
  check_scalar("HessianVectorProduct", loss);
  UNROLL_CHECK(!params_.empty(), "HessianVectorProduct: no parameters given");
  EnableGrad grad_on;
  grads_ = gradients(loss, params_, Variable(ones_like(loss.data())), true, true);
}

std::vector<Tensor> HessianVectorProduct::gradient() const {
  std::vector<Tensor> g;
  for (const Variable& gi : grads_) g.push_back(gi.data());
  return g;
}

std::vector<Tensor> HessianVectorProduct::apply(const std::vector<Tensor>& v) const {
  EnableGrad grad_on;
  std::vector<Variable> vs;
  for (const Tensor& t : v) vs.emplace_back(t);
  const Variable s = inner("HessianVectorProduct::apply", grads_, vs, params_);
  std::vector<Tensor> hv;
  if (!s.defined()) {
    for (const Variable& p : params_) hv.push_back(zeros_like(p.data()));
    return hv;
  }
  for (const Variable& h : gradients(s, params_, Variable(ones_like(s.data())), false, true)) hv.push_back(h.data());
  return hv;
}

double top_hessian_eigenvalue(const Variable& loss, const std::vector<Variable>& params, int iters, uint64_t seed) {
  UNROLL_CHECK(iters >= 1, "top_hessian_eigenvalue: iters must be >= 1, got {}", iters);
  const HessianVectorProduct H(loss, params);
  Generator gen(seed);
  auto norm = [](const std::vector<Tensor>& x) {
    double s = 0;
    for (const Tensor& t : x) s += sum(t * t).item();
    return std::sqrt(s);
  };
  std::vector<Tensor> v;
  for (const Variable& p : params) v.push_back(randn(p.shape(), gen, p.dtype()));
  double lambda = 0;
  for (int it = 0; it < iters; ++it) {
    const double nv = norm(v);
    if (nv == 0) return 0;  // H v = 0: the Hessian vanishes along the iterate
    for (Tensor& t : v) t = t / nv;
    const std::vector<Tensor> hv = H.apply(v);
    lambda = 0;
    for (size_t i = 0; i < v.size(); ++i) lambda += sum(v[i] * hv[i]).item();  // Rayleigh quotient, |v| = 1
    v = hv;
  }
  return lambda;
}

}  // namespace unroll::functional
