// Back-propagation through time by hand, next to the engine.
//
// A vanilla tanh RNN reads a sequence x_1 .. x_T and is scored at EVERY step:
//
//   h_0 = 0
//   a_t = W_xh x_t + W_hh h_{t-1} + b_h          [H]
//   h_t = tanh(a_t)                               [H]
//   y_t = W_hy h_t + b_y                          [O]
//   L   = 1/2 sum_t || y_t - target_t ||^2        (a scalar: squared error summed over steps)
//
// Its gradients are derived below by hand and computed with plain loops over doubles (this
// file is the one place in the project where hand-written gradients are the point). Then the
// same forward pass is written with the engine's ops in float64 and backward() computes the
// gradients from the recorded graph; the program prints the largest absolute difference per
// parameter (round-off only: ~1e-16 .. 1e-13). Finally it exports the graph of a 3-step
// unroll as Graphviz DOT, one dashed box per time step, and renders it to SVG when Graphviz
// is installed.
//
//   ./bptt_by_hand                 # T = 8, H = 5, 20 random draws
//   ./bptt_by_hand --T 100 --json  # long unroll, final JSON line
#include <unroll.h>

#include "common/cli.h"
#include "common/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

using namespace unroll;
using namespace unroll::examples;

// ---- the data and weights of one draw, as plain row-major arrays of doubles -----------------
struct Problem {
  int64_t T, I, H, O;
  std::vector<double> x;       // [T,I]
  std::vector<double> target;  // [T,O]
  std::vector<double> W_xh;    // [H,I]
  std::vector<double> W_hh;    // [H,H]
  std::vector<double> b_h;     // [H]
  std::vector<double> W_hy;    // [O,H]
  std::vector<double> b_y;     // [O]
};

std::vector<double> normal_vector(int64_t n, double scale, Generator& gen) {
  std::vector<double> v(static_cast<size_t>(n));
  for (double& e : v) e = scale * gen.normal();
  return v;
}

Problem random_problem(int64_t T, int64_t I, int64_t H, int64_t O, double weight_scale, Generator& gen) {
  const double s = weight_scale / std::sqrt(static_cast<double>(H));
  return {T, I, H, O, normal_vector(T * I, 1.0, gen), normal_vector(T * O, 1.0, gen),
          normal_vector(H * I, s, gen), normal_vector(H * H, s, gen), normal_vector(H, 0.1, gen),
          normal_vector(O * H, s, gen), normal_vector(O, 0.1, gen)};
}

struct HandGrads {
  double loss = 0;
  std::vector<double> W_xh, W_hh, b_h, W_hy, b_y;
};

// ---- BPTT by hand ---------------------------------------------------------------------------
// Write dL/dv as dv. Going backward from t = T to 1:
//
//   dy_t = y_t - target_t                                   (from L = 1/2 ||y_t - target_t||^2)
//   dW_hy += dy_t h_t^T ;  db_y += dy_t                     (y_t = W_hy h_t + b_y)
//   dh_t  = W_hy^T dy_t + dh_t^(future)                     (h_t feeds y_t AND h_{t+1})
//   delta_t = da_t = dh_t * (1 - h_t^2)                     (tanh' = 1 - tanh^2, elementwise)
//   dW_xh += delta_t x_t^T ;  dW_hh += delta_t h_{t-1}^T ;  db_h += delta_t
//   dh_{t-1}^(future) = W_hh^T delta_t                      (the recurrence: a_t = ... + W_hh h_{t-1})
//
// with dh_T^(future) = 0. The parameters are shared by all steps, so their gradients are the
// sums of the per-step terms ("+="): that sum is all BPTT is.
HandGrads bptt_by_hand(const Problem& p) {
  const size_t T = static_cast<size_t>(p.T), I = static_cast<size_t>(p.I), H = static_cast<size_t>(p.H),
               O = static_cast<size_t>(p.O);
  // Forward, keeping every h_t (h[0] is h_0 = 0, h[t] is h_t) and every y_t.
  std::vector<std::vector<double>> h(T + 1, std::vector<double>(H, 0.0)), y(T, std::vector<double>(O, 0.0));
  HandGrads g;
  for (size_t t = 1; t <= T; ++t) {
    for (size_t i = 0; i < H; ++i) {
      double a = p.b_h[i];
      for (size_t k = 0; k < I; ++k) a += p.W_xh[i * I + k] * p.x[(t - 1) * I + k];
      for (size_t k = 0; k < H; ++k) a += p.W_hh[i * H + k] * h[t - 1][k];
      h[t][i] = std::tanh(a);
    }
    for (size_t o = 0; o < O; ++o) {
      double v = p.b_y[o];
      for (size_t k = 0; k < H; ++k) v += p.W_hy[o * H + k] * h[t][k];
      y[t - 1][o] = v;
      const double e = v - p.target[(t - 1) * O + o];
      g.loss += 0.5 * e * e;
    }
  }
  // Backward.
  g.W_xh.assign(H * I, 0.0);
  g.W_hh.assign(H * H, 0.0);
  g.b_h.assign(H, 0.0);
  g.W_hy.assign(O * H, 0.0);
  g.b_y.assign(O, 0.0);
  std::vector<double> dh_future(H, 0.0), dy(O), dh(H), delta(H);
  for (size_t t = T; t >= 1; --t) {
    for (size_t o = 0; o < O; ++o) dy[o] = y[t - 1][o] - p.target[(t - 1) * O + o];  // dy_t
    for (size_t o = 0; o < O; ++o) {
      for (size_t k = 0; k < H; ++k) g.W_hy[o * H + k] += dy[o] * h[t][k];              // dW_hy += dy_t h_t^T
      g.b_y[o] += dy[o];                                                                 // db_y += dy_t
    }
    for (size_t k = 0; k < H; ++k) {
      double s = dh_future[k];
      for (size_t o = 0; o < O; ++o) s += p.W_hy[o * H + k] * dy[o];                     // W_hy^T dy_t
      dh[k] = s;                                                                         // dh_t
      delta[k] = s * (1.0 - h[t][k] * h[t][k]);                                          // delta_t
    }
    for (size_t i = 0; i < H; ++i) {
      for (size_t k = 0; k < I; ++k) g.W_xh[i * I + k] += delta[i] * p.x[(t - 1) * I + k];  // delta_t x_t^T
      for (size_t k = 0; k < H; ++k) g.W_hh[i * H + k] += delta[i] * h[t - 1][k];           // delta_t h_{t-1}^T
      g.b_h[i] += delta[i];                                                                  // db_h += delta_t
    }
    for (size_t k = 0; k < H; ++k) {
      double s = 0;
      for (size_t i = 0; i < H; ++i) s += p.W_hh[i * H + k] * delta[i];                  // W_hh^T delta_t
      dh_future[k] = s;
    }
  }
  return g;
}

// ---- the same model with the engine ---------------------------------------------------------
struct EngineRnn {
  Variable W_xh, W_hh, b_h, W_hy, b_y;
  explicit EngineRnn(const Problem& p)
      : W_xh(tensor(p.W_xh, {p.H, p.I}, DType::F64), true),
        W_hh(tensor(p.W_hh, {p.H, p.H}, DType::F64), true),
        b_h(tensor(p.b_h, {p.H}, DType::F64), true),
        W_hy(tensor(p.W_hy, {p.O, p.H}, DType::F64), true),
        b_y(tensor(p.b_y, {p.O}, DType::F64), true) {
    W_xh.set_name("W_xh");
    W_hh.set_name("W_hh");
    b_h.set_name("b_h");
    W_hy.set_name("W_hy");
    b_y.set_name("b_y");
  }
  /// The loss of the first `steps` steps, every op recorded, each step under StepScope(t).
  Variable loss(const Problem& p, int64_t steps) const {
    const Tensor x = tensor(p.x, {p.T, 1, p.I}, DType::F64);            // [T,B=1,I]
    const Tensor target = tensor(p.target, {p.T, 1, p.O}, DType::F64);  // [T,B=1,O]
    Variable h(zeros({1, p.H}, DType::F64));                             // h_0 [1,H]
    Variable total;
    for (int64_t t = 0; t < steps; ++t) {
      StepScope scope(static_cast<int>(t + 1));
      Variable x_t(narrow(x, 0, t, 1).reshape({1, p.I}));
      h = tanh(linear(x_t, W_xh) + linear(h, W_hh, b_h));                // h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h)
      Variable y = linear(h, W_hy, b_y);                                   // y_t [1,O]
      Variable e = y - Variable(narrow(target, 0, t, 1).reshape({1, p.O}));
      Variable l = 0.5 * sum(e * e);
      total = total.defined() ? total + l : l;
    }
    return total;
  }
};

double max_abs_diff(const std::vector<double>& hand, const Tensor& engine) {
  const std::vector<double> e = engine.to_vector();
  UNROLL_CHECK(e.size() == hand.size(), "bptt_by_hand: gradient sizes differ ({} and {})", hand.size(), e.size());
  double m = 0;
  for (size_t i = 0; i < e.size(); ++i) m = std::max(m, std::abs(hand[i] - e[i]));
  return m;
}

int run(int argc, char** argv) {
  Cli cli(argc, argv, "BPTT by hand vs the engine: a tanh RNN's gradients from hand-derived loops and from "
                      "backward(), compared; plus the unrolled graph as Graphviz DOT");
  const int64_t T = cli.get_int("T", 8, "sequence length (steps unrolled)");
  const int64_t I = cli.get_int("input", 3, "input size I");
  const int64_t H = cli.get_int("hidden", 5, "hidden size H");
  const int64_t O = cli.get_int("output", 2, "output size O");
  const int64_t trials = cli.get_int("trials", 20, "random draws of weights and data to compare on");
  const double weight_scale = cli.get_double("weight-scale", 1.5, "weights ~ N(0, (scale/sqrt(H))^2)");
  const int64_t graph_steps = cli.get_int("graph-steps", 3, "steps in the exported graph");
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out_dir = cli.out_dir();
  cli.done();
  UNROLL_CHECK(T >= 1 && I >= 1 && H >= 1 && O >= 1 && trials >= 1,
               "bptt_by_hand: --T, --input, --hidden, --output and --trials must be >= 1");
  UNROLL_CHECK(1 <= graph_steps && graph_steps <= T, "bptt_by_hand: need 1 <= --graph-steps {} <= --T {}",
               graph_steps, T);
  plot::make_dirs(out_dir);
  fmt::print("tanh RNN, T = {}, I = {}, H = {}, O = {}, loss = 1/2 sum_t ||W_hy h_t + b_y - target_t||^2\n", T, I, H,
             O);

  // Compare on `trials` random draws; keep the largest difference per parameter.
  const std::vector<std::string> names = {"W_xh", "W_hh", "b_h", "W_hy", "b_y"};
  std::vector<double> worst(names.size(), 0.0), largest_grad(names.size(), 0.0);
  double worst_loss = 0;
  Generator gen(seed);
  Progress progress("compare", trials, !json);
  for (int64_t trial = 1; trial <= trials; ++trial) {
    const Problem p = random_problem(T, I, H, O, weight_scale, gen);
    const HandGrads hand = bptt_by_hand(p);
    EngineRnn rnn(p);
    Variable loss = rnn.loss(p, T);
    loss.backward();
    const std::vector<const std::vector<double>*> hand_grads = {&hand.W_xh, &hand.W_hh, &hand.b_h, &hand.W_hy,
                                                                &hand.b_y};
    const std::vector<const Variable*> engine_params = {&rnn.W_xh, &rnn.W_hh, &rnn.b_h, &rnn.W_hy, &rnn.b_y};
    for (size_t k = 0; k < names.size(); ++k) {
      worst[k] = std::max(worst[k], max_abs_diff(*hand_grads[k], engine_params[k]->grad()));
      for (double v : *hand_grads[k]) largest_grad[k] = std::max(largest_grad[k], std::abs(v));
    }
    worst_loss = std::max(worst_loss, std::abs(hand.loss - loss.item()));
    progress.update(trial, loss.item());
  }
  progress.finish();
  fmt::print("\nmax |hand - engine| over {} random draws (float64):\n", trials);
  fmt::print("  {:<6} {:>12} {:>14}\n", "param", "max |diff|", "max |grad|");
  for (size_t k = 0; k < names.size(); ++k)
    fmt::print("  {:<6} {:>12.3e} {:>14.4f}\n", names[k], worst[k], largest_grad[k]);
  fmt::print("  {:<6} {:>12.3e}\n", "loss", worst_loss);

  // The unrolled graph of a few steps, grouped by time step, as DOT (and SVG with Graphviz).
  const Problem p = random_problem(graph_steps, I, H, O, weight_scale, gen);
  EngineRnn rnn(p);
  const Variable loss = rnn.loss(p, graph_steps);
  const std::string dot_path = out_dir + "/rnn_unrolled.dot";
  write_dot(loss, dot_path, {.title = fmt::format("tanh RNN unrolled over {} steps ({} nodes)", graph_steps,
                                                  graph_size(loss))});
  std::vector<std::string> figures = {dot_path};
  const std::string svg_path = out_dir + "/rnn_unrolled.svg";
  if (std::system("command -v dot > /dev/null 2>&1") == 0) {
    const std::string cmd = fmt::format("dot -Tsvg '{}' -o '{}'", dot_path, svg_path);
    if (std::system(cmd.c_str()) == 0) figures.push_back(svg_path);
    else fmt::print("Graphviz `dot` failed on {}\n", dot_path);
  } else {
    fmt::print("Graphviz `dot` is not installed: no SVG (install graphviz, then: dot -Tsvg {} -o {})\n", dot_path,
               svg_path);
  }
  fmt::print("\nfiles:\n");
  for (const std::string& f : figures) fmt::print("  {}\n", f);

  if (json) {
    JsonLine line;
    double overall = 0;
    for (size_t k = 0; k < names.size(); ++k) {
      line.add("max_diff_" + names[k], worst[k]);
      overall = std::max(overall, worst[k]);
    }
    line.add("max_diff", overall).add("max_diff_loss", worst_loss).add("T", static_cast<double>(T));
    line.add("graph_nodes", static_cast<double>(graph_size(loss))).add("dot", dot_path);
    line.add("svg", figures.size() > 1 ? svg_path : std::string());
    fmt::print("{}\n", line.str());
  }
  return 0;
}

int main(int argc, char** argv) {
  return guarded_main("bptt_by_hand", argc, argv, run, on_error<unroll::Error>(ErrorPrefix::none, 1));
}
