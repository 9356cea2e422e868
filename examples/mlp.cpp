// The one-to-one baseline: a multilayer perceptron, as the contrast with the recurrent nets.
//
// Part 1 - what an MLP does well: map one fixed-size input to one output. Two interleaved
// half-moons in the plane, classified by x -> Linear -> tanh -> Linear -> tanh -> Linear ->
// cross_entropy; the figure shows the predicted probability over the plane (the learned
// decision boundary) and the loss curve.
//
// Part 2 - what it cannot do: the adding problem (T steps of (value, marker); the target is
// the sum of the two marked values) with a fixed T = 10, given to the MLP flattened as 2T
// inputs and to a GRU one step at a time. Both can learn it at T = 10. At T = 20 the GRU
// runs unchanged - the same weights applied for more steps - while the MLP cannot even
// take the input: its first layer has 2T = 20 input features, and the error says so.
//
//   ./mlp                          both parts, about half a minute on one core
//   ./mlp --part moons --steps 300 a second
#include <unroll.h>

#include "common/cli.h"
#include "common/plot.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

using namespace unroll;
using namespace unroll::examples;

namespace {

/// in -> H -> H -> out with tanh between: y = W3 tanh(W2 tanh(W1 x + b1) + b2) + b3.
struct MLP : Module {
  std::shared_ptr<Linear> fc1, fc2, fc3;
  MLP(int64_t in, int64_t hidden, int64_t out) {
    fc1 = register_module("fc1", std::make_shared<Linear>(in, hidden));
    fc2 = register_module("fc2", std::make_shared<Linear>(hidden, hidden));
    fc3 = register_module("fc3", std::make_shared<Linear>(hidden, out));
  }
  Variable forward(const Variable& x) const { return fc3->forward(tanh(fc2->forward(tanh(fc1->forward(x))))); }
  Variable operator()(const Variable& x) const { return forward(x); }
};

// ---- part 1: two moons ---------------------------------------------------------------------

/// n points of two interleaved half-circles with Gaussian noise: x [n,2], labels [n].
std::pair<Tensor, Tensor> two_moons(int64_t n, double noise, Generator& gen) {
  std::vector<double> x;
  std::vector<int64_t> y;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 2;
    const double a = M_PI * gen.uniform();
    const double px = c == 0 ? std::cos(a) : 1 - std::cos(a);
    const double py = c == 0 ? std::sin(a) : 0.5 - std::sin(a);
    x.push_back(px + noise * gen.normal());
    x.push_back(py + noise * gen.normal());
    y.push_back(c);
  }
  return {tensor(x, {n, 2}), indices(y)};
}

double accuracy(const Tensor& logits, const Tensor& labels) {
  const std::vector<int64_t> p = argmax(logits, 1).to_indices(), y = labels.to_indices();
  int64_t right = 0;
  for (size_t i = 0; i < p.size(); ++i) right += p[i] == y[i];
  return static_cast<double>(right) / static_cast<double>(p.size());
}

// ---- part 2: the adding problem -----------------------------------------------------------

/// B sequences of T steps (value ~ U(0,1), marker 0/1; one marker in each half):
/// x [T,B,2], target [B,1] = the sum of the two marked values.
std::pair<Tensor, Tensor> adding_batch(int64_t T, int64_t B, Generator& gen) {
  std::vector<double> x(static_cast<size_t>(T * B * 2), 0.0), y(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t i = gen.randint(0, T / 2), j = gen.randint(T / 2, T);
    for (int64_t t = 0; t < T; ++t) {
      const size_t at = static_cast<size_t>((t * B + b) * 2);
      x[at] = gen.uniform();
      x[at + 1] = t == i || t == j ? 1.0 : 0.0;
      if (t == i || t == j) y[static_cast<size_t>(b)] += x[at];
    }
  }
  return {tensor(x, {T, B, 2}), tensor(y, {B, 1})};
}

/// [T,B,2] -> [B,2T]: the whole sequence as one fixed-size input vector.
Tensor flatten_sequence(const Tensor& x) {
  const int64_t T = x.size(0), B = x.size(1);
  return reshape(transpose(x, 0, 1), {B, 2 * T});
}

struct GRURegressor : Module {
  std::shared_ptr<GRU> gru;
  std::shared_ptr<Linear> head;
  explicit GRURegressor(int64_t hidden) {
    gru = register_module("gru", std::make_shared<GRU>(GRUOptions{.input_size = 2, .hidden_size = hidden}));
    head = register_module("head", std::make_shared<Linear>(hidden, 1));
  }
  /// x [T,B,2] -> [B,1]: the final state, read out.
  Variable forward(const Tensor& x) const {
    Variable h_n = gru->forward(Variable(x)).h_n();  // [1,B,H]
    return head->forward(reshape(h_n, {x.size(1), gru->hidden_size()}));
  }
};

/// Trains by `step_fn(step) -> loss` for `steps` steps with a progress line; returns the losses.
template <typename F>
std::vector<double> train_loop(const std::string& label, int64_t steps, bool show, F step_fn) {
  Progress progress(label, steps, show);
  std::vector<double> losses;
  for (int64_t step = 1; step <= steps; ++step) {
    losses.push_back(step_fn());
    progress.update(step, losses.back());
  }
  progress.finish();
  return losses;
}

double tail_mean(const std::vector<double>& v, size_t n) {
  n = std::min(n, v.size());
  double s = 0;
  for (size_t i = v.size() - n; i < v.size(); ++i) s += v[i];
  return n ? s / static_cast<double>(n) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli(argc, argv,
          "the one-to-one baseline: an MLP on two moons (decision boundary), and on the adding problem with a fixed\n"
          "length, where a GRU trained on the same data also runs on longer sequences and the MLP cannot");
  const std::string part = cli.get_string("part", "both", "moons, adding or both");
  const int64_t H = cli.get_int("hidden", 32, "MLP hidden size (both layers)");
  const int64_t steps = cli.get_int("steps", 1500, "training steps (moons)");
  const int64_t n_points = cli.get_int("points", 600, "two moons: training points (and as many test points)");
  const double noise = cli.get_double("noise", 0.15, "two moons: noise standard deviation");
  const double lr = cli.get_double("lr", 1e-2, "Adam learning rate (moons)");
  const int64_t T = cli.get_int("length", 10, "adding problem: sequence length T used for training");
  const int64_t adding_steps = cli.get_int("adding-steps", 1500, "adding problem: training steps per model");
  const int64_t gru_hidden = cli.get_int("gru-hidden", 24, "adding problem: GRU hidden size");
  const int64_t B = cli.get_int("batch", 64, "adding problem: batch size");
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out = cli.out_dir();
  cli.done();
  UNROLL_CHECK(part == "moons" || part == "adding" || part == "both", "mlp: --part must be moons, adding or both, got '{}'", part);
  UNROLL_CHECK(H > 0 && steps > 0 && n_points >= 2 && T >= 2 && adding_steps > 0 && gru_hidden > 0 && B > 0,
               "mlp: sizes must be positive (length >= 2)");
  plot::make_dirs(out);
  manual_seed(seed);
  Generator gen(seed + 1);
  JsonLine line;
  std::vector<std::string> figures;
  double seconds = 0;

  if (part != "adding") {
    // Data: two moons, a training and a test set from the same distribution.
    auto [x_train, y_train] = two_moons(n_points, noise, gen);
    auto [x_test, y_test] = two_moons(n_points, noise, gen);

    // Model and full-batch training.
    MLP model(2, H, 2);
    optim::Adam adam(model.parameters(), lr);
    Progress clock("", 0, false);
    const std::vector<double> losses = train_loop("moons", steps, !json, [&] {
      Variable loss = cross_entropy(model(Variable(x_train)), y_train);
      adam.zero_grad();
      loss.backward();
      adam.step();
      return loss.item();
    });
    seconds += clock.seconds();

    // Evaluation and the decision boundary: P(class 1) on a grid over the plane.
    NoGradGuard no_grad;
    const double train_acc = accuracy(model(Variable(x_train)).data(), y_train);
    const double test_acc = accuracy(model(Variable(x_test)).data(), y_test);
    fmt::print("two moons: MLP 2-{}-{}-2, {} steps in {:.1f}s: loss {:.4f} -> {:.4f}, accuracy train {:.4f}, test {:.4f}\n", H, H,
               steps, clock.seconds(), losses.front(), losses.back(), train_acc, test_acc);
    const int64_t G = 60;
    const double x0 = -1.5, x1 = 2.5, y0 = -1.0, y1 = 1.5;
    std::vector<double> grid;
    for (int64_t r = 0; r < G; ++r)  // row 0 at the top: the largest y
      for (int64_t c = 0; c < G; ++c) {
        grid.push_back(x0 + (x1 - x0) * (static_cast<double>(c) + 0.5) / G);
        grid.push_back(y1 - (y1 - y0) * (static_cast<double>(r) + 0.5) / G);
      }
    const std::vector<double> p = softmax(model(Variable(tensor(grid, {G * G, 2}))).data(), 1).to_vector();
    plot::Heatmap hm;
    hm.title = fmt::format("MLP on two moons: P(class 1), test accuracy {:.1f}%", 100 * test_acc);
    hm.xlabel = "x1";
    hm.ylabel = "x2";
    for (int64_t r = 0; r < G; ++r) {
      hm.values.emplace_back();
      for (int64_t c = 0; c < G; ++c) hm.values.back().push_back(p[static_cast<size_t>((r * G + c) * 2 + 1)]);
    }
    hm.col_labels.assign(G, "");
    hm.row_labels.assign(G, "");
    // Tick labels at round values (the cell whose centre is nearest), never "-0.0".
    auto tick = [](double v) { return std::abs(v) < 0.05 ? std::string("0") : fmt::format("{:.1f}", v); };
    for (double v = -1.0; v <= 2.5; v += 0.5) {
      const auto c = static_cast<int64_t>(std::floor((v - x0) / (x1 - x0) * G));
      if (c >= 0 && c < G) hm.col_labels[static_cast<size_t>(c)] = tick(x0 + (x1 - x0) * (static_cast<double>(c) + 0.5) / G);
    }
    for (double v = -1.0; v <= 1.5; v += 0.5) {
      const auto r = static_cast<int64_t>(std::floor((y1 - v) / (y1 - y0) * G));
      if (r >= 0 && r < G) hm.row_labels[static_cast<size_t>(r)] = tick(y1 - (y1 - y0) * (static_cast<double>(r) + 0.5) / G);
    }
    // The test points over the map, one marker per true class.
    hm.colorbar_label = "P(class 1)";
    hm.point_labels = {"test point, class 0", "test point, class 1"};
    const std::vector<double> xt = x_test.to_vector();
    const std::vector<int64_t> yt = y_test.to_indices();
    for (size_t i = 0; i < yt.size(); ++i)
      hm.points.push_back({(xt[2 * i] - x0) / (x1 - x0) * G, (y1 - xt[2 * i + 1]) / (y1 - y0) * G, static_cast<int>(yt[i])});
    figures.push_back(out + "/moons_boundary.svg");
    hm.save(figures.back());
    plot::LinePlot lp;
    lp.title = "MLP on two moons: training loss";
    lp.xlabel = "step";
    lp.ylabel = "cross-entropy (nats)";
    lp.log_y = true;
    lp.add("train", losses);
    figures.push_back(out + "/moons_loss.svg");
    lp.save(figures.back());
    line.add("moons_accuracy", test_acc).add("moons_train_accuracy", train_acc);
    line.add("moons_first_loss", losses.front()).add("moons_final_loss", losses.back());
  }

  if (part != "moons") {
    // The same adding-problem data for both models: the MLP sees [B, 2T], the GRU [T,B,2].
    MLP mlp(2 * T, H, 1);
    GRURegressor gru(gru_hidden);
    optim::Adam adam_mlp(mlp.parameters(), 3e-3), adam_gru(gru.parameters(), 1e-2);
    Generator data_mlp(seed + 2), data_gru(seed + 2);
    Progress clock("", 0, false);
    const std::vector<double> mlp_losses = train_loop("adding MLP", adding_steps, !json, [&] {
      auto [x, y] = adding_batch(T, B, data_mlp);
      Variable loss = mse_loss(mlp(Variable(flatten_sequence(x))), y);
      adam_mlp.zero_grad();
      loss.backward();
      adam_mlp.step();
      return loss.item();
    });
    const std::vector<double> gru_losses = train_loop("adding GRU", adding_steps, !json, [&] {
      auto [x, y] = adding_batch(T, B, data_gru);
      Variable loss = mse_loss(gru.forward(x), y);
      adam_gru.zero_grad();
      loss.backward();
      clip_grad_norm(gru.parameters(), 1.0);
      adam_gru.step();
      return loss.item();
    });
    seconds += clock.seconds();

    // Test at the training length T, then at 2T.
    NoGradGuard no_grad;
    Generator test_gen(seed + 3);
    auto [x_t, y_t] = adding_batch(T, 2000, test_gen);
    auto [x_2t, y_2t] = adding_batch(2 * T, 2000, test_gen);
    const double baseline = 1.0 / 6.0;  // predicting the mean 1: the variance of a sum of two U(0,1)
    const double mlp_mse = mse_loss(mlp(Variable(flatten_sequence(x_t))), y_t).item();
    const double gru_mse = mse_loss(gru.forward(x_t), y_t).item();
    const double gru_mse_long = mse_loss(gru.forward(x_2t), y_2t).item();
    std::string mlp_long_error;
    try {
      (void)mlp(Variable(flatten_sequence(x_2t)));
    } catch (const Error& e) {
      mlp_long_error = e.what();
    }
    fmt::print("\nadding problem (test MSE; always predicting 1 gives {:.4f}), trained at T = {} for {} steps each, {:.1f}s:\n",
               baseline, T, adding_steps, clock.seconds());
    fmt::print("  MLP {}-{}-{}-1 on the flattened sequence: T = {}: {:.2e}\n", 2 * T, H, H, T, mlp_mse);
    fmt::print("  GRU H={} one step at a time:               T = {}: {:.2e}   T = {}: {:.2e}\n", gru_hidden, T, gru_mse, 2 * T,
               gru_mse_long);
    fmt::print("  MLP at T = {}: {}\n", 2 * T, mlp_long_error.empty() ? "ran (unexpected)" : "cannot run: " + mlp_long_error);
    fmt::print("  The MLP has one weight per input position, so it is tied to T = {}; the GRU applies the same\n"
               "  weights at every step and reads any length (how well it generalises to longer sequences is\n"
               "  another question: above, its error at T = {} against T = {}).\n",
               T, 2 * T, T);
    plot::LinePlot lp;
    lp.title = fmt::format("adding problem, T = {}: training loss", T);
    lp.xlabel = "step";
    lp.ylabel = "MSE";
    lp.log_y = true;
    lp.add("MLP (flattened)", mlp_losses);
    lp.add("GRU", gru_losses);
    lp.add_reference("predict 1", 0.0, static_cast<double>(mlp_losses.size() - 1), baseline);
    figures.push_back(out + "/adding_loss.svg");
    lp.save(figures.back());
    line.add("adding_baseline", baseline).add("adding_mlp_mse", mlp_mse).add("adding_gru_mse", gru_mse);
    line.add("adding_gru_mse_long", gru_mse_long).add("mlp_rejects_long", mlp_long_error.empty() ? 0.0 : 1.0);
    line.add("adding_mlp_final_loss", tail_mean(mlp_losses, 50)).add("adding_gru_final_loss", tail_mean(gru_losses, 50));
  }

  line.add("seconds", seconds);
  fmt::print("\nfigures:\n");
  for (const std::string& f : figures) fmt::print("  {}\n", f);
  if (json) fmt::print("{}\n", line.str());
  return 0;
}
