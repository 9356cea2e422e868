// One-to-many: a whole sequence generated from a single input, the shape of image
// captioning. Here the input is the (frequency, phase) of a sine wave and the output is
// the wave itself, y_t = sin(w t + phi) for t = 0..T-1.
//
// An MLP maps the two numbers to the initial state of a recurrent decoder (LSTM or GRU
// cell), which then unrolls for T steps and writes one value per step through a Linear
// head. The decoder is fed either zeros (--feed zero: everything it needs must be in the
// initial state) or its own previous output (--feed prev: autoregressive, in training
// too, so gradients flow back through every fed-back output). --teacher-forcing trains
// on the true previous values instead: the one-step error gets tiny, but the free-running
// wave drifts, because the model never learned to recover from its own mistakes.
// Training and test inputs are different random draws, so the test error
// measures generation for (frequency, phase) pairs the model has never seen.
//
//   one_to_many                       # LSTM decoder fed zeros, about a minute
//   one_to_many --cell gru --feed prev --steps 1500
//   one_to_many --feed prev --teacher-forcing     # exposure bias: compare the test error
#include <unroll.h>

#include "common/cli.h"
#include "common/plot.h"

#include <cmath>
#include <memory>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

using namespace unroll;
namespace ex = unroll::examples;

namespace {

constexpr double kPi = std::numbers::pi;

// ---- data ---------------------------------------------------------------------------------

/// N waves: inputs u [N,2] = (frequency, phase) scaled to [-1,1], targets y [T,N,1].
struct Waves {
  std::vector<double> omega, phi;  // radians per step, radians
  Tensor u, y;
};

Waves make_waves(int64_t N, int64_t T, double w_lo, double w_hi, Generator& gen) {
  Waves d;
  std::vector<double> u(static_cast<size_t>(N * 2)), y(static_cast<size_t>(T * N));
  for (int64_t n = 0; n < N; ++n) {
    const double w = gen.uniform(w_lo, w_hi), p = gen.uniform(0.0, 2 * kPi);
    d.omega.push_back(w);
    d.phi.push_back(p);
    u[static_cast<size_t>(2 * n)] = 2 * (w - w_lo) / (w_hi - w_lo) - 1;
    u[static_cast<size_t>(2 * n + 1)] = p / kPi - 1;
    for (int64_t t = 0; t < T; ++t) y[static_cast<size_t>(t * N + n)] = std::sin(w * static_cast<double>(t) + p);
  }
  d.u = tensor(u, {N, 2});
  d.y = tensor(y, {T, N, 1});
  return d;
}

/// Rows `idx` of the waves: u [B,2], y [T,B,1].
std::pair<Tensor, Tensor> batch_of(const Waves& d, const Tensor& idx) {
  return {index_select(d.u, 0, idx), index_select(d.y, 1, idx)};
}

// ---- model --------------------------------------------------------------------------------

/// (frequency, phase) -> MLP -> initial state -> decoder cell unrolled T steps -> Linear.
struct WaveGenerator : Module {
  WaveGenerator(const std::string& cell_name, int64_t H, int64_t mlp, bool feed_prev)
      : lstm(cell_name == "lstm"), prev(feed_prev) {
    const int64_t parts = lstm ? 2 : 1;  // LSTM: h_0 and c_0; GRU: h_0
    enc1 = register_module("enc1", std::make_shared<Linear>(2, mlp));
    enc2 = register_module("enc2", std::make_shared<Linear>(mlp, parts * H));
    if (lstm) cell = register_module("decoder", std::make_shared<LSTMCell>(1, H));
    else cell = register_module("decoder", std::make_shared<GRUCell>(1, H));
    head = register_module("head", std::make_shared<Linear>(H, 1));
  }

  /// u [B,2] -> the decoder's initial state, each part tanh(...) [B,H]
  State initial_state(const Tensor& u) {
    const int64_t H = cell->hidden_size();
    Variable z = tanh((*enc2)(tanh((*enc1)(Variable(u)))));  // [B,parts*H]
    if (!lstm) return {z};
    return {narrow(z, 1, 0, H), narrow(z, 1, H, H)};
  }

  /// u [B,2] -> generated wave [T,B,1]. The decoder reads zeros, or (--feed prev) its own
  /// previous output, through which gradients flow too; with `teacher` [T,B,1] it reads
  /// the true previous value instead (teacher forcing, training only).
  Variable forward(const Tensor& u, int64_t T, const Tensor& teacher = Tensor()) {
    const int64_t B = u.size(0);
    if (!prev) return (*head)(run_cell(*cell, Variable(zeros({T, B, 1})), initial_state(u)).output);  // [T,B,1]
    if (teacher.defined()) {
      Tensor x = T > 1 ? concat({zeros({1, B, 1}), narrow(teacher, 0, 0, T - 1)}, 0) : zeros({1, B, 1});  // [T,B,1]
      return (*head)(run_cell(*cell, Variable(x), initial_state(u)).output);
    }
    State state = initial_state(u);
    Variable x(zeros({B, 1}));
    std::vector<Variable> ys;
    for (int64_t t = 0; t < T; ++t) {
      StepScope scope(static_cast<int>(t));
      state = (*cell)(x, state);
      x = (*head)(state[0]);  // [B,1], the next step's input
      ys.push_back(x);
    }
    return stack(ys, 0);  // [T,B,1]
  }

  /// Generation without gradients -> [T,B,1]
  Tensor generate(const Tensor& u, int64_t T) {
    NoGradGuard no_grad;
    return forward(u, T).data();
  }

  bool lstm, prev;
  std::shared_ptr<Linear> enc1, enc2, head;
  std::shared_ptr<RecurrentCell> cell;
};

double mse(const Tensor& a, const Tensor& b) { return mean(pow(a - b, 2.0)).item(); }

// ---- the program --------------------------------------------------------------------------

int run(int argc, char** argv) {
  ex::Cli cli(argc, argv,
              "one_to_many: generate a sine wave from its (frequency, phase): an MLP sets the initial state of an "
              "LSTM/GRU decoder that unrolls T steps");
  const std::string cell_name = cli.get_string("cell", "lstm", "decoder cell: lstm or gru");
  const std::string feed = cli.get_string("feed", "zero", "decoder input: zero, or prev (its previous output)");
  const bool teacher_forcing =
      cli.get_flag("teacher-forcing",
                   "with --feed prev: train on the true previous values (then watch the free-running test error)");
  const int64_t H = cli.get_int("hidden", 48, "decoder hidden size H");
  const int64_t mlp = cli.get_int("mlp", 64, "hidden units of the MLP that makes the initial state");
  const int64_t T = cli.get_int("seq", 40, "length T of each generated wave");
  const int64_t n_train = cli.get_int("train", 512, "training inputs");
  const int64_t n_test = cli.get_int("test", 128, "held-out test inputs");
  const int64_t B = cli.get_int("batch", 32, "batch size B");
  const int64_t steps = cli.get_int("steps", 4000, "training steps");
  const double lr = cli.get_double("lr", 5e-3, "Adam learning rate (cosine-annealed to 0)");
  const int64_t eval_every = cli.get_int("eval-every", 100, "test evaluation every N steps");
  const double w_lo = cli.get_double("w-min", 0.15, "lowest angular frequency (radians per step)");
  const double w_hi = cli.get_double("w-max", 0.6, "highest angular frequency (radians per step)");
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out = cli.out_dir();
  cli.done();
  if (cell_name != "lstm" && cell_name != "gru")
    throw std::invalid_argument("--cell must be lstm or gru, got '" + cell_name + "'");
  if (feed != "zero" && feed != "prev") throw std::invalid_argument("--feed must be zero or prev, got '" + feed + "'");
  if (teacher_forcing && feed != "prev") throw std::invalid_argument("--teacher-forcing needs --feed prev");
  if (H <= 0 || mlp <= 0 || T <= 0 || n_train <= 0 || n_test <= 0 || B <= 0 || steps < 0 || eval_every <= 0)
    throw std::invalid_argument("sizes must be positive (--steps may be 0)");
  if (!(w_lo > 0 && w_hi > w_lo)) throw std::invalid_argument("need 0 < --w-min < --w-max");
  manual_seed(seed);
  Generator gen(seed + 1);
  plot::make_dirs(out);

  // ---- data: disjoint random draws for training and testing ------------------------------
  const Waves train = make_waves(n_train, T, w_lo, w_hi, gen);
  const Waves test = make_waves(n_test, T, w_lo, w_hi, gen);
  const double zero_mse = mean(pow(test.y, 2.0)).item();  // predicting 0 everywhere

  // ---- model -----------------------------------------------------------------------------
  WaveGenerator model(cell_name, H, mlp, feed == "prev");
  fmt::print("model: MLP(2 -> {} -> {}) -> {} decoder (H={}, fed {}) x {} steps -> Linear({}, 1): {} parameters\n", mlp,
             (cell_name == "lstm" ? 2 : 1) * H, cell_name, H, feed == "prev" ? "its previous output" : "zeros", T, H,
             model.num_parameters());
  optim::Adam opt(model.parameters(), {.lr = lr});
  optim::CosineAnnealingLR schedule(opt, std::max<int64_t>(steps, 1));

  const double untrained_mse = mse(model.generate(test.u, T), test.y);
  fmt::print("test MSE before training {:.4f} (predicting 0 everywhere: {:.4f})\n", untrained_mse, zero_mse);
  std::fflush(stdout);

  // ---- training --------------------------------------------------------------------------
  std::vector<double> step_x, train_curve, eval_x{0}, test_curve{untrained_mse};
  ex::Progress progress("one_to_many", steps, true);
  double test_mse = untrained_mse;
  for (int64_t step = 1; step <= steps; ++step) {
    std::vector<int64_t> pick(static_cast<size_t>(B));
    for (int64_t& i : pick) i = gen.randint(0, n_train);
    const auto [u, y] = batch_of(train, indices(pick));
    Variable loss = mse_loss(model.forward(u, T, teacher_forcing ? y : Tensor()), y);
    opt.zero_grad();
    loss.backward();
    clip_grad_norm(model.parameters(), 1.0);
    opt.step();
    schedule.step();
    step_x.push_back(static_cast<double>(step));
    train_curve.push_back(loss.item());
    if (step % eval_every == 0 || step == steps) {
      test_mse = mse(model.generate(test.u, T), test.y);
      eval_x.push_back(static_cast<double>(step));
      test_curve.push_back(test_mse);
    }
    progress.update(step, loss.item(), fmt::format(" test {:.4f}", test_mse));
  }
  progress.finish();
  const double seconds = progress.seconds();
  const double train_mse = mse(model.generate(train.u, T), train.y);

  // ---- figures ---------------------------------------------------------------------------
  plot::LinePlot curve;
  curve.title = fmt::format("one_to_many: {} decoder fed {}, MSE of the generated wave", cell_name, feed);
  curve.xlabel = "training step";
  curve.ylabel = "MSE";
  curve.log_y = true;
  if (!step_x.empty()) curve.add(teacher_forcing ? "train (teacher-forced)" : "train (batch)", step_x, train_curve);
  curve.add("test (held-out)", eval_x, test_curve);
  curve.series.back().markers = true;
  curve.add_reference("predict 0", 0.0, static_cast<double>(std::max<int64_t>(steps, 1)), zero_mse);
  const std::string fig_loss = out + "/one_to_many_loss.svg";
  curve.save(fig_loss);

  // A few held-out inputs: true wave (solid) and generated wave (dashed, a marker at every
  // step), stacked with an offset of 3 so they do not overlap.
  const int64_t shown = std::min<int64_t>(4, n_test);
  const Tensor generated = model.generate(test.u, T);  // [T,N,1]
  const std::vector<std::string> colors = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
  plot::LinePlot waves;
  waves.title =
      "one_to_many: held-out (frequency, phase) -> wave; true (solid) vs generated (dashed, marker per step), "
      "offset by 3";
  waves.xlabel = "time step t";
  waves.ylabel = "y_t + offset";
  waves.height = 560;
  for (int64_t k = 0; k < shown; ++k) {
    std::vector<double> ts, yt, yg;
    const double offset = 3.0 * static_cast<double>(shown - 1 - k);
    for (int64_t t = 0; t < T; ++t) {
      ts.push_back(static_cast<double>(t));
      yt.push_back(test.y.at({t, k, 0}) + offset);
      yg.push_back(generated.at({t, k, 0}) + offset);
    }
    const size_t i = static_cast<size_t>(k);
    waves.add(fmt::format("w={:.2f} phi={:.2f}", test.omega[i], test.phi[i]), ts, yt);
    waves.series.back().color = colors[i];
    waves.add(fmt::format("generated w={:.2f}", test.omega[i]), ts, yg, true);
    waves.series.back().color = colors[i];
    waves.series.back().markers = true;  // visible even where it covers the true wave
  }
  const std::string fig_waves = out + "/one_to_many_waves.svg";
  waves.save(fig_waves);

  // ---- summary ---------------------------------------------------------------------------
  fmt::print("test MSE (held-out inputs, generated free-running): {:.5f}, was {:.4f} untrained; predicting 0: {:.4f}\n",
             test_mse, untrained_mse, zero_mse);
  fmt::print("train MSE (generated): {:.5f}\n", train_mse);
  fmt::print("{} steps in {:.1f} s\nfigures: {}\n         {}\n", steps, seconds, fig_loss, fig_waves);
  if (json)
    fmt::print("{}\n", ex::JsonLine()
                           .add("untrained_test_mse", untrained_mse)
                           .add("zero_mse", zero_mse)
                           .add("test_mse", test_mse)
                           .add("train_mse", train_mse)
                           .add("steps", static_cast<double>(steps))
                           .add("seconds", seconds)
                           .add("figure_loss", fig_loss)
                           .add("figure_waves", fig_waves)
                           .str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ex::guarded_main("one_to_many", argc, argv, run,
                          ex::on_error<std::invalid_argument>(ex::ErrorPrefix::program, 2));
}
