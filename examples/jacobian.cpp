// Why gradients vanish, from the Jacobian itself (Pascanu, Mikolov & Bengio 2013, "On the
// difficulty of training recurrent neural networks").
//
// Back-propagation through time multiplies the gradient by the step Jacobians
// J_t = dh_t/dh_{t-1}: dL/dh_0 = (J_T ... J_2 J_1)^T dL/dh_T. So the largest singular
// value of the product dh_T/dh_0 caps how much of any gradient at step T can reach step 0.
// For a tanh RNN, J_t = diag(1 - h_t^2) W_hh and tanh' <= gamma = 1, hence
//   sigma_max(dh_T/dh_0) <= sigma_max(W_hh)^T,
// and sigma_max(W_hh) < 1 forces vanishing (exploding needs it above 1). The LSTM's cell
// path dc_t/dc_{t-1} = diag(f_t) and the GRU's term diag(z_t) in dh_t/dh_{t-1} are gates in
// (0, 1), not weights: a bound from the weights alone is >= 1 per step for them, so it
// cannot say that their gradients vanish, and none is drawn for them.
//
// What this program measures, for a tanh RNN, an LSTM (w.r.t. the 2H state (h_0, c_0):
// dh_T/d(h_0, c_0), H x 2H) and a GRU, along one real adding-problem input sequence:
//   jacobian_init.svg      sigma_max(dh_T/dh_0) for T = 1..200 at PyTorch's default init,
//                          with the tanh RNN's bound sigma_max(W_hh)^T (median over seeds)
//   jacobian_trained.svg   the same after a short training on the adding problem
//   sharpness.svg          the top eigenvalue lambda_max of the Hessian of the training loss
//                          (an MSE on a fixed batch of 64 sequences) every --sharp-every steps
//                          of that training, by Lanczos on Hessian-vector products
//                          (functional::HessianVectorProduct: one gradient with create_graph,
//                          then one more backward per product). At the first and last
//                          measurements the iteration is run twice as long (convergence check),
//                          power iteration with the same number of products
//                          (functional::top_hessian_eigenvalue) is run for comparison, and for
//                          a model with at most --hessian-check parameters the full Hessian is
//                          built from one product per parameter and its largest eigh
//                          eigenvalue compared.
// Each J_t is functional::jacobian of ONE step, and dh_T/dh_0 = J_T (dh_{T-1}/dh_0) is built
// incrementally (200 small Jacobians, not a 200-step graph per T); for T <= --check-T the
// product is compared with a direct jacobian of the T-step unrolled function. Singular
// values come from core/linalg (one-sided Jacobi SVD, float64). The Jacobians and Hessians
// are computed in float64 on a float64 copy of each model's weights.
//
//   build/examples/jacobian                      # 3 seeds, about a minute on one core
//   build/examples/jacobian --seeds 1 --train-steps 300 --T 60
#include "common/cli.h"
#include "common/plot.h"
#include "common/tasks.h"

#include <fmt/format.h>

#include <unroll.h>

#include <algorithm>
#include <cmath>

using namespace unroll;
using namespace unroll::examples;

namespace {

const char* colour(CellKind kind) {
  switch (kind) {
    case CellKind::Rnn: return "#d62728";
    case CellKind::Lstm: return "#1f77b4";
    case CellKind::Gru: return "#2ca02c";
  }
  return "#000000";
}

// ---- one step of a cell as a map of the whole state s [1,S] -----------------------------

int64_t state_size(CellKind kind, int64_t H) { return kind == CellKind::Lstm ? 2 * H : H; }

/// s_t = step(x_t, s_{t-1}): the cell's step on the state laid out as one row, [h] or [h, c].
Variable cell_step(RecurrentCell& cell, CellKind kind, const Variable& x_t, const Variable& s) {
  if (kind != CellKind::Lstm) return cell.forward(x_t, State{s})[0];
  const int64_t H = cell.hidden_size();
  const State next = cell.forward(x_t, State{narrow(s, 1, 0, H), narrow(s, 1, H, H)});
  return concat({next[0], next[1]}, 1);  // [1, 2H]: (h_t, c_t)
}

/// x_t [1,I] of a batch-1 sequence x [T,1,I].
Variable input_at(const Tensor& x, int64_t t) { return Variable(squeeze(narrow(x, 0, t, 1), 0)); }

// ---- dh_T/dh_0 for T = 1..T_max, incrementally ------------------------------------------

struct JacobianCurve {
  std::vector<double> sigma;  ///< sigma[T-1] = sigma_max(dh_T/dh_0), T = 1..T_max
  double whh_norm = 0;        ///< sigma_max(W_hh) (the tanh RNN's bound per step)
  double direct_error = 0;    ///< max over T <= check_T of |product - direct jacobian| / |direct|
};

/// The largest singular value of dh_T/dh_0 along the sequence x [T,1,I] from the zero
/// state. The product P_T = J_T P_{T-1} is kept as a matrix of max-abs 1 times a scale
/// exp(log_scale), so neither 1e-300 nor 1e+300 is a problem.
JacobianCurve jacobian_curve(LastStepRegressor& model, const Tensor& x, int64_t check_T, const std::string& label) {
  const DType dtype = model.parameters().front().dtype();
  model.to(DType::F64);
  RecurrentCell& cell = model.cell();
  const CellKind kind = model.kind();
  const int64_t T = x.size(0), H = cell.hidden_size(), S = state_size(kind, H);
  const Tensor x64 = x.to(DType::F64);

  JacobianCurve curve;
  for (const auto& [name, w] : cell.named_parameters())
    if (name == "weight_hh") curve.whh_norm = linalg::spectral_norm(w.data());
  Tensor s = zeros({1, S}, DType::F64);  // the state along the sequence
  Tensor P = zeros({S, S}, DType::F64);  // dh_t/dh_0 / exp(log_scale)
  for (int64_t i = 0; i < S; ++i) P.data<double>()[i * S + i] = 1;
  double log_scale = 0;
  std::vector<Tensor> products;  // the unscaled P_T for T <= check_T
  Progress progress(label, T);
  for (int64_t t = 0; t < T; ++t) {
    const Variable x_t = input_at(x64, t);
    const auto step = [&](const Variable& state) { return cell_step(cell, kind, x_t, state); };
    const Tensor J = functional::jacobian(step, Variable(s)).data().reshape({S, S});  // dh_t/dh_{t-1}
    {
      NoGradGuard no_grad;
      s = step(Variable(s)).data();
    }
    P = matmul(J, P);
    const double scale = max(abs(P)).item();
    if (scale > 0) {
      P = P / scale;
      log_scale += std::log(scale);
    }
    // dh_T/dh_0 is the h rows of the state Jacobian (all of it for the RNN and GRU).
    const Tensor dh = kind == CellKind::Lstm ? narrow(P, 0, 0, H) : P;
    curve.sigma.push_back(linalg::spectral_norm(dh) * std::exp(log_scale));
    if (t < check_T) products.push_back(dh * std::exp(log_scale));
    progress.update(t + 1, curve.sigma.back(), "sigma_max");
  }
  progress.finish();

  // The product against a direct jacobian of the T-step unrolled function, T <= check_T.
  for (int64_t n = 1; n <= std::min(check_T, T); ++n) {
    const auto unrolled = [&](const Variable& s0) {
      Variable st = s0;
      for (int64_t t = 0; t < n; ++t) st = cell_step(cell, kind, input_at(x64, t), st);
      return kind == CellKind::Lstm ? narrow(st, 1, 0, H) : st;
    };
    const Tensor direct = functional::jacobian(unrolled, Variable(zeros({1, S}, DType::F64))).data().reshape({H, S});
    const Tensor& product = products[static_cast<size_t>(n - 1)];
    curve.direct_error = std::max(curve.direct_error, max(abs(direct - product)).item() / max(abs(direct)).item());
  }
  model.zero_grad();
  model.to(dtype);
  return curve;
}

// ---- sharpness ----------------------------------------------------------------------------

struct Sharpness {
  double lambda = NAN;   ///< Lanczos estimate after `iters` Hessian-vector products
  double doubled = NAN;  ///< the same iteration continued to 2 * iters (if checked)
  double power = NAN;    ///< power iteration with `iters` products (if checked)
  double full = NAN;     ///< eigenvalue of largest magnitude of the full Hessian (if checked)
};

double dot(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += sum(a[i] * b[i]).item();
  return s;
}

/// The top (most positive) eigenvalue lambda_max of the Hessian of the MSE on `batch` w.r.t.
/// all of the model's parameters, in float64, by `iters` Lanczos steps (one Hessian-vector
/// product each) from a seeded random start. With `check`, Lanczos goes on to 2 * iters,
/// power iteration with `iters` products runs for comparison (it finds the eigenvalue of
/// largest magnitude, and converges slowly when the top two are close, as at init), and if
/// the model has at most `full_max` parameters the full Hessian (one product per parameter)
/// is diagonalised by linalg::eigh.
Sharpness sharpness(LastStepRegressor& model, const AddingBatch& batch, int iters, uint64_t seed, bool check,
                    int64_t full_max) {
  const DType dtype = model.parameters().front().dtype();
  model.to(DType::F64);
  const std::vector<Variable> params = model.parameters();
  const Variable loss = mse_loss(model.forward(Variable(batch.x.to(DType::F64))), batch.y.to(DType::F64));
  const functional::HessianVectorProduct H(loss, params);
  const int total = check ? 2 * iters : iters;
  // Lanczos with full reorthogonalisation: after j products, the tridiagonal T_j = Q_j^T H Q_j
  // of the Krylov basis Q_j = [q_1 .. q_j], whose top eigenvalue (linalg::eigh) approaches
  // lambda_max from below, much faster than power iteration does.
  Generator gen(seed);
  std::vector<std::vector<Tensor>> q(1);
  for (const Variable& p : params) q[0].push_back(randn(p.shape(), gen, DType::F64));
  const double n0 = std::sqrt(dot(q[0], q[0]));
  for (Tensor& t : q[0]) t = t / n0;
  std::vector<double> alpha, beta;
  auto top_of_tridiagonal = [&]() {
    const int64_t m = static_cast<int64_t>(alpha.size());
    std::vector<double> t(static_cast<size_t>(m * m), 0.0);
    for (int64_t a = 0; a < m; ++a) {
      t[static_cast<size_t>(a * m + a)] = alpha[static_cast<size_t>(a)];
      if (a + 1 < m) t[static_cast<size_t>(a * m + a + 1)] = t[static_cast<size_t>((a + 1) * m + a)] = beta[static_cast<size_t>(a)];
    }
    return linalg::eigh(tensor(t, {m, m}, DType::F64)).values.to_vector().back();
  };
  Sharpness out;
  for (int it = 1; it <= total; ++it) {
    std::vector<Tensor> w = H.apply(q.back());
    alpha.push_back(dot(q.back(), w));
    for (int pass = 0; pass < 2; ++pass)  // Gram-Schmidt against the whole basis, twice
      for (const std::vector<Tensor>& b : q) {
        const double c = dot(b, w);
        for (size_t i = 0; i < w.size(); ++i) w[i] = w[i] - b[i] * c;
      }
    if (it == iters) out.lambda = top_of_tridiagonal();
    if (it == total && check) out.doubled = top_of_tridiagonal();
    const double nw = std::sqrt(dot(w, w));
    if (nw <= 1e-12 * std::abs(alpha.back())) {  // an invariant subspace: T_j is exact
      if (!std::isfinite(out.lambda)) out.lambda = top_of_tridiagonal();
      if (check) out.doubled = top_of_tridiagonal();
      break;
    }
    beta.push_back(nw);
    for (Tensor& t : w) t = t / nw;
    q.push_back(std::move(w));
  }
  if (check) out.power = functional::top_hessian_eigenvalue(loss, params, iters, seed);
  int64_t n = 0;
  for (const Variable& p : params) n += p.numel();
  if (check && n <= full_max) {
    // H column by column: H e_j for every parameter element j.
    std::vector<double> h(static_cast<size_t>(n * n));
    std::vector<Tensor> e;
    for (const Variable& p : params) e.push_back(zeros(p.shape(), DType::F64));
    for (int64_t j = 0; j < n; ++j) {
      std::vector<Tensor> ej = e;
      int64_t off = j;
      for (size_t i = 0; i < params.size(); ++i) {
        if (off < params[i].numel()) {
          std::vector<double> one(static_cast<size_t>(params[i].numel()), 0.0);
          one[static_cast<size_t>(off)] = 1;
          ej[i] = tensor(one, params[i].shape(), DType::F64);
          break;
        }
        off -= params[i].numel();
      }
      int64_t row = 0;
      for (const Tensor& col : H.apply(ej))
        for (double x : col.to_vector()) h[static_cast<size_t>(row++ * n + j)] = x;
    }
    for (int64_t a = 0; a < n; ++a)  // symmetrise away rounding
      for (int64_t b = a + 1; b < n; ++b) {
        const double m = 0.5 * (h[static_cast<size_t>(a * n + b)] + h[static_cast<size_t>(b * n + a)]);
        h[static_cast<size_t>(a * n + b)] = h[static_cast<size_t>(b * n + a)] = m;
      }
    const std::vector<double> ev = linalg::eigh(tensor(h, {n, n}, DType::F64)).values.to_vector();
    out.full = ev.back();
  }
  model.zero_grad();
  model.to(dtype);
  return out;
}

// ---- seeds, medians -----------------------------------------------------------------------

struct Spread {
  double median = NAN, lo = NAN, hi = NAN;
};

Spread spread(std::vector<double> v) {
  std::erase_if(v, [](double x) { return !std::isfinite(x); });
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return {med, v.front(), v.back()};
}

/// Elementwise median of equally long curves (one per seed).
std::vector<double> median_curve(const std::vector<std::vector<double>>& curves) {
  std::vector<double> m(curves.front().size());
  for (size_t i = 0; i < m.size(); ++i) {
    std::vector<double> at;
    for (const auto& c : curves) at.push_back(c[i]);
    m[i] = spread(at).median;
  }
  return m;
}

std::string fmt_spread(const Spread& s) {
  return fmt::format("{:9.2e} [{:8.1e}, {:8.1e}]", s.median, s.lo, s.hi);
}

struct CellResult {
  CellKind kind;
  std::vector<JacobianCurve> init, trained;              // per seed
  std::vector<std::vector<double>> sharp;                // per seed: top eigenvalue at sharp_steps
  std::vector<Sharpness> sharp_check;                    // per seed: the first and last measurements, checked
  std::vector<double> test_mse;                          // per seed
};

}  // namespace

static int run(int argc, char** argv) {
  Cli cli(argc, argv,
          "Pascanu et al. (2013) on the engine: sigma_max(dh_T/dh_0) of tanh RNN, LSTM, GRU vs T, the weight "
          "bound, and the sharpness (top Hessian eigenvalue) during training on the adding problem");
  const int64_t T = cli.get_int("T", 200, "longest Jacobian dh_T/dh_0 (T = 1..this)");
  const int64_t hidden = cli.get_int("hidden", 32, "hidden size of every cell");
  const int64_t n_seeds = cli.get_int("seeds", 3, "seeds (models, data); curves are medians over seeds");
  AddingConfig cfg;
  cfg.T = cli.get_int("train-T", 50, "sequence length of the training on the adding problem");
  cfg.steps = cli.get_int("train-steps", 2000, "Adam steps per model");
  cfg.batch = cli.get_int("batch", 32, "sequences per training step");
  cfg.lr = cli.get_double("lr", 3e-3, "Adam learning rate");
  cfg.clip = cli.get_double("clip", 1.0, "clip_grad_norm max norm (0: none)");
  cfg.test_size = cli.get_int("test", 500, "held-out sequences for the test MSE");
  const int64_t sharp_every = cli.get_int("sharp-every", 200, "training steps between sharpness measurements (0: none)");
  const int64_t hvps = cli.get_int("hvps", 20, "Hessian-vector products (Lanczos steps) per sharpness measurement");
  const int64_t hessian_check = cli.get_int("hessian-check", 400, "at the first and last sharpness measurements, build the full Hessian and compare its eigh top eigenvalue for models with at most this many parameters");
  const int64_t check_T = cli.get_int("check-T", 4, "compare the product with a direct jacobian for T <= this");
  const double rnn_norm = cli.get_double("rnn-norm", 0,
                                         "if > 0, rescale the tanh RNN's W_hh at init to this sigma_max "
                                         "(e.g. 0.9: the bound then forces vanishing)");
  const uint64_t seed0 = cli.seed();
  const bool json = cli.json();
  const std::string out = cli.out_dir();
  cli.done();
  UNROLL_CHECK(T >= 1 && hidden >= 1 && n_seeds >= 1 && cfg.T >= 2 && cfg.steps >= 1 && cfg.batch >= 1 &&
                   cfg.test_size >= 1 && sharp_every >= 0 && hvps >= 1 && check_T >= 0 && rnn_norm >= 0 && hessian_check >= 0,
               "jacobian: need T, hidden, seeds, train-steps, batch, test, hvps >= 1, train-T >= 2, "
               "sharp-every, check-T, rnn-norm, hessian-check >= 0");
  plot::make_dirs(out);
  cfg.hidden = hidden;
  fmt::print("dh_T/dh_0 for T = 1..{} along one adding-problem sequence; hidden {}; {} seed(s) from {}\n", T, hidden,
             n_seeds, seed0);
  fmt::print("training: adding problem T={}, {} Adam steps (lr {}, batch {}, clip {}); sharpness every {} steps "
             "({} Lanczos steps = Hessian-vector products)\n\n",
             cfg.T, cfg.steps, cfg.lr, cfg.batch, cfg.clip, sharp_every, hvps);

  // Models, data, training and the measurements: per seed, per cell.
  std::vector<CellResult> results;
  for (CellKind kind : kAllCells) results.push_back({kind, {}, {}, {}, {}, {}});
  std::vector<double> sharp_steps;
  double seconds = 0;
  for (int64_t k = 0; k < n_seeds; ++k) {
    const uint64_t seed = seed0 + static_cast<uint64_t>(k);
    Generator data_gen(seed + 7);
    const Tensor sequence = adding_batch(T, 1, data_gen).x;         // [T,1,2]: the sequence the Jacobians follow
    const AddingBatch sharp_batch = adding_batch(cfg.T, 64, data_gen);  // a fixed batch for the loss Hessian
    for (CellResult& r : results) {
      const std::string name = cell_kind_name(r.kind);
      manual_seed(seed);
      LastStepRegressor model(r.kind, 2, hidden);
      if (r.kind == CellKind::Rnn && rnn_norm > 0) {
        Variable& w = dynamic_cast<RNNCell&>(model.cell()).weight_hh;
        w.data() = w.data() * (rnn_norm / linalg::spectral_norm(w.data()));
      }
      r.init.push_back(jacobian_curve(model, sequence, check_T, fmt::format("{} dh_T/dh_0 at init", name)));

      std::vector<double> sharp;
      AddingConfig c = cfg;
      c.seed = seed;
      const uint64_t lanczos_seed = seed + 13;
      if (sharp_every > 0) {
        const Sharpness at_init =
            sharpness(model, sharp_batch, static_cast<int>(hvps), lanczos_seed, true, hessian_check);
        sharp.push_back(at_init.lambda);
        r.sharp_check.push_back(at_init);
        c.after_step = [&](int64_t step) {
          if (step % sharp_every != 0 && step != cfg.steps) return;
          const bool at_end = step == cfg.steps;
          const Sharpness m =
              sharpness(model, sharp_batch, static_cast<int>(hvps), lanczos_seed, at_end, hessian_check);
          sharp.push_back(m.lambda);
          if (at_end) r.sharp_check.push_back(m);
        };
      }
      const TrainLog log = train_adding(model, c, fmt::format("{} (seed {})", name, seed));
      seconds += log.seconds;
      r.test_mse.push_back(log.test_mse);
      r.sharp.push_back(sharp);
      r.trained.push_back(jacobian_curve(model, sequence, check_T, fmt::format("{} dh_T/dh_0 trained", name)));
    }
  }
  for (int64_t s = 0; sharp_every > 0 && s <= cfg.steps; s += sharp_every) sharp_steps.push_back(static_cast<double>(s));
  if (sharp_every > 0 && cfg.steps % sharp_every != 0) sharp_steps.push_back(static_cast<double>(cfg.steps));

  // Evaluation: sigma_max(dh_T/dh_0) at T = 10, 50, 200 (median [min, max] over seeds).
  JsonLine result;
  std::vector<int64_t> at_T;
  for (int64_t t : {int64_t{1}, int64_t{10}, int64_t{50}, int64_t{200}})
    if (t <= T) at_T.push_back(t);
  double bound_ratio = 0, direct_error = 0;
  fmt::print("\nsigma_max(dh_T/dh_0), median [min, max] over {} seed(s); LSTM: dh_T/d(h_0, c_0)\n", n_seeds);
  fmt::print("{:<10} {:<8} {:>6} {:>31} {:>31}\n", "cell", "", "T", "measured", "bound sigma_max(W_hh)^T");
  for (const CellResult& r : results) {
    for (int trained = 0; trained < 2; ++trained) {
      const std::vector<JacobianCurve>& curves = trained ? r.trained : r.init;
      const std::string when = trained ? "trained" : "init";
      for (int64_t t : at_T) {
        std::vector<double> sig, bound;
        for (const JacobianCurve& c : curves) {
          sig.push_back(c.sigma[static_cast<size_t>(t - 1)]);
          bound.push_back(std::pow(c.whh_norm, static_cast<double>(t)));
        }
        const Spread s = spread(sig), b = spread(bound);
        fmt::print("{:<10} {:<8} {:>6} {:>31} {:>31}\n", cell_kind_name(r.kind), when, t, fmt_spread(s),
                   r.kind == CellKind::Rnn ? fmt_spread(b) : std::string("none drawn"));
        const std::string key = fmt::format("{}_{}_s{}", cell_key(r.kind), when, t);
        result.add(key, s.median).add(key + "_min", s.lo).add(key + "_max", s.hi);
        if (r.kind == CellKind::Rnn) result.add(fmt::format("rnn_{}_bound{}", when, t), b.median);
      }
      for (const JacobianCurve& c : curves) {
        direct_error = std::max(direct_error, c.direct_error);
        if (r.kind == CellKind::Rnn)
          for (size_t i = 0; i < c.sigma.size(); ++i)
            bound_ratio = std::max(bound_ratio, c.sigma[i] / std::pow(c.whh_norm, static_cast<double>(i + 1)));
      }
      if (r.kind != CellKind::Rnn) continue;
      std::vector<double> norms;
      for (const JacobianCurve& c : curves) norms.push_back(c.whh_norm);
      const Spread w = spread(norms);
      fmt::print("{:<10} {:<8} sigma_max(W_hh) {:.3f} [{:.3f}, {:.3f}]\n", cell_kind_name(r.kind), when, w.median,
                 w.lo, w.hi);
      result.add(fmt::format("rnn_{}_whh_norm", when), w.median);
    }
  }
  fmt::print("\ntanh RNN: max over T and seeds of sigma_max(dh_T/dh_0) / sigma_max(W_hh)^T = {:.3g} (the bound "
             "holds: <= 1)\n",
             bound_ratio);
  fmt::print("incremental product vs direct jacobian of the unrolled T-step function (T <= {}): max relative "
             "difference {:.2e}\n",
             check_T, direct_error);
  result.add("rnn_bound_ratio_max", bound_ratio).add("direct_check_error", direct_error);

  fmt::print("\nafter training: held-out MSE (baseline {:.4f}), median [min, max] over seeds; sharpness = top "
             "Hessian eigenvalue of the MSE\n",
             kAddingBaseline);
  for (const CellResult& r : results) {
    const Spread m = spread(r.test_mse);
    fmt::print("{:<10} test MSE {:.4f} [{:.4f}, {:.4f}]", cell_kind_name(r.kind), m.median, m.lo, m.hi);
    result.add(fmt::format("{}_test_mse", cell_key(r.kind)), m.median);
    if (sharp_every > 0) {
      std::vector<double> first, mid, last, peak;
      for (const auto& s : r.sharp) {
        first.push_back(s.front());
        mid.push_back(s[s.size() / 2]);
        last.push_back(s.back());
        peak.push_back(*std::max_element(s.begin(), s.end()));
      }
      const Spread f = spread(first), md = spread(mid), l = spread(last), p = spread(peak);
      fmt::print("\n           lambda_max at init {:.3g} [{:.3g}, {:.3g}], step {:g} {:.3g} [{:.3g}, {:.3g}], end {:.3g} "
                 "[{:.3g}, {:.3g}], peak {:.3g} [{:.3g}, {:.3g}]",
                 f.median, f.lo, f.hi, sharp_steps[sharp_steps.size() / 2], md.median, md.lo, md.hi, l.median, l.lo,
                 l.hi, p.median, p.lo, p.hi);
      const std::string key = cell_key(r.kind);
      result.add(key + "_sharp_init", f.median).add(key + "_sharp_init_min", f.lo).add(key + "_sharp_init_max", f.hi)
          .add(key + "_sharp_mid", md.median).add(key + "_sharp_mid_min", md.lo).add(key + "_sharp_mid_max", md.hi)
          .add(key + "_sharp_end", l.median).add(key + "_sharp_end_min", l.lo).add(key + "_sharp_end_max", l.hi)
          .add(key + "_sharp_peak", p.median);
      // Convergence at the first and last measurements: Lanczos iters vs 2 * iters, power
      // iteration with iters products vs Lanczos 2 * iters, and (small models) the full
      // Hessian's eigenvalue.
      double change = 0, power_err = 0, full_err = NAN;
      for (const Sharpness& s : r.sharp_check) {
        change = std::max(change, std::abs(s.doubled - s.lambda) / std::abs(s.doubled));
        power_err = std::max(power_err, std::abs(s.power - s.doubled) / std::abs(s.doubled));
        if (std::isfinite(s.full))
          full_err = std::max(std::isfinite(full_err) ? full_err : 0.0, std::abs(s.lambda - s.full) / std::abs(s.full));
      }
      fmt::print("\n           at init and end: Lanczos |lambda({0}) - lambda({1})| / |lambda({1})| <= {2:.2e}; power "
                 "iteration ({0} products) vs Lanczos({1}) <= {3:.2e}",
                 hvps, 2 * hvps, change, power_err);
      result.add(key + "_lanczos_rel_change", change).add(key + "_power_rel_err", power_err);
      if (std::isfinite(full_err)) {
        fmt::print("; vs the full Hessian's eigh: relative error <= {:.2e}", full_err);
        result.add(key + "_full_hessian_rel_err", full_err);
      }
    }
    fmt::print("\n");
  }
  if (sharp_every > 0) {  // the curves of sharpness.svg, as numbers
    fmt::print("\nsharpness curve: lambda_max by training step (median over seeds)\n{:<10}", "step");
    for (double st : sharp_steps) fmt::print(" {:>8g}", st);
    for (const CellResult& r : results) {
      fmt::print("\n{:<10}", cell_kind_name(r.kind));
      for (double v : median_curve(r.sharp)) fmt::print(" {:>8.3g}", v);
    }
    fmt::print("\n");
  }

  // Figures.
  std::vector<std::string> paths;
  std::vector<double> Ts(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) Ts[static_cast<size_t>(t)] = static_cast<double>(t + 1);
  for (int trained = 0; trained < 2; ++trained) {
    plot::LinePlot p;
    p.title = fmt::format("sigma_max(dh_T/dh_0), {} (median of {} seed{})",
                          trained ? fmt::format("trained {} steps", cfg.steps) : "at init", n_seeds, n_seeds == 1 ? "" : "s");
    p.xlabel = "T (steps between h_0 and h_T)";
    p.ylabel = "largest singular value";
    p.log_y = true;
    for (const CellResult& r : results) {
      std::vector<std::vector<double>> sig, bound;
      for (const JacobianCurve& c : trained ? r.trained : r.init) {
        sig.push_back(c.sigma);
        std::vector<double> b;
        for (int64_t t = 1; t <= T; ++t) b.push_back(std::pow(c.whh_norm, static_cast<double>(t)));
        bound.push_back(b);
      }
      p.add(r.kind == CellKind::Lstm ? "LSTM (h_0, c_0)" : cell_kind_name(r.kind), Ts, median_curve(sig));
      p.series.back().color = colour(r.kind);
      if (r.kind == CellKind::Rnn) {
        // Drawn up to 1e6, so that a growing bound does not squash the measured curves.
        std::vector<double> b = median_curve(bound), x = Ts;
        size_t n = 0;
        while (n < b.size() && b[n] < 1e6) ++n;
        b.resize(n), x.resize(n);
        p.add("bound ||W_hh||^T (cut at 1e6)", x, b, true);
        p.series.back().color = colour(r.kind);
      }
    }
    paths.push_back(out + (trained ? "/jacobian_trained.svg" : "/jacobian_init.svg"));
    p.save(paths.back());
  }
  if (sharp_every > 0) {
    plot::LinePlot p;
    p.title = fmt::format("top Hessian eigenvalue of the MSE (T = {}, median of {} seed{})", cfg.T, n_seeds,
                          n_seeds == 1 ? "" : "s");
    p.xlabel = "training step";
    p.ylabel = "lambda_max(Hessian)";
    p.log_y = true;
    for (const CellResult& r : results) {
      p.add(cell_kind_name(r.kind), sharp_steps, median_curve(r.sharp));
      p.series.back().color = colour(r.kind);
      p.series.back().markers = sharp_steps.size() < 30;
    }
    // Plain gradient descent at this learning rate is stable along a direction only while
    // lr * lambda < 2 (the training here is Adam, whose steps are rescaled per parameter).
    p.add(fmt::format("2 / lr = {:.0f}: plain GD's stability limit", 2 / cfg.lr),
          {0.0, static_cast<double>(cfg.steps)}, {2 / cfg.lr, 2 / cfg.lr});
    p.series.back().reference = true;
    paths.push_back(out + "/sharpness.svg");
    p.save(paths.back());
  }
  fmt::print("\ntraining time {:.1f}s\nfigures:\n", seconds);
  for (const std::string& path : paths) fmt::print("  {}\n", path);
  result.add("seeds", static_cast<double>(n_seeds)).add("seconds", seconds);
  if (json) fmt::print("{}\n", result.str());
  return 0;
}

int main(int argc, char** argv) {
  return guarded_main("jacobian", argc, argv, run, on_error<unroll::Error>(ErrorPrefix::argv0, 2));  // bad flag values
}
