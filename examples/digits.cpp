// One-to-one: image classification on real handwritten digits (the 1,797 8x8 images of
// shared/data/digits/digits.csv; every 5th image is test: 1,438 train, 359 test).
//
//   MLP:  [B,64] -> Linear -> relu -> Linear -> relu -> Linear -> [B,10]
//   CNN:  [B,1,8,8] -> Conv2d 3x3 -> relu -> MaxPool 2 -> Conv2d 3x3 -> relu -> MaxPool 2
//         -> Flatten -> Linear -> [B,10]
//
// Both get the same training steps, the same batches in the same order and the same
// optimizer (Adam), and have about as many parameters; the CNN's convolutions share their
// weights over the image, the MLP must learn every position on its own. The run is repeated
// for --seeds seeds (different initial weights and batch order): the accuracy is reported as
// the median and range over them. Figures (from the first seed): the loss and test-accuracy
// curves, each model's confusion matrix, and the test digits each model got wrong.
//
//   ./digits                              5 seeds x 2 models, a few seconds
//   ./digits --data path/to/digits.csv    the data anywhere else
//
// Without the data file it says where it looked and exits with code 2, writing nothing.
#include <unroll.h>

#include "common/cli.h"
#include "common/data.h"
#include "common/images.h"
#include "common/plot.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

using namespace unroll;
using namespace unroll::examples;

namespace {

constexpr int64_t kClasses = 10, kSide = 8, kPixels = kSide * kSide;

/// The data file is missing: reported with exit code 2 and nothing written.
struct MissingData : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- models -------------------------------------------------------------------------------

/// A classifier of [B,64] images (pixels in [0,1]) into [B,10] logits.
struct DigitModel : Module {
  virtual Variable forward(const Tensor& x) = 0;
  virtual std::string describe() const = 0;
};

/// 64 -> H -> H -> 10 with relu between.
struct MlpModel : DigitModel {
  std::shared_ptr<Linear> fc1, fc2, fc3;
  int64_t H;
  explicit MlpModel(int64_t hidden) : H(hidden) {
    fc1 = register_module("fc1", std::make_shared<Linear>(kPixels, H));
    fc2 = register_module("fc2", std::make_shared<Linear>(H, H));
    fc3 = register_module("fc3", std::make_shared<Linear>(H, kClasses));
  }
  Variable forward(const Tensor& x) override {  // x [B,64]
    return fc3->forward(relu(fc2->forward(relu(fc1->forward(Variable(x))))));
  }
  std::string describe() const override {
    return fmt::format("Linear(64,{0}) relu Linear({0},{0}) relu Linear({0},10)", H);
  }
};

/// [B,1,8,8] -> conv(C1) -> pool -> [B,C1,4,4] -> conv(C2) -> pool -> [B,C2,2,2] -> 10.
struct CnnModel : DigitModel {
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<MaxPool2d> pool;
  std::shared_ptr<Flatten> flatten;
  std::shared_ptr<Linear> fc;
  int64_t C1, C2;
  CnnModel(int64_t c1, int64_t c2) : C1(c1), C2(c2) {
    conv1 = register_module("conv1", std::make_shared<Conv2d>(1, C1, 3, Conv2dOptions{.padding = 1}));
    conv2 = register_module("conv2", std::make_shared<Conv2d>(C1, C2, 3, Conv2dOptions{.padding = 1}));
    pool = register_module("pool", std::make_shared<MaxPool2d>(2));
    flatten = register_module("flatten", std::make_shared<Flatten>());
    fc = register_module("fc", std::make_shared<Linear>(C2 * 4, kClasses));
  }
  Variable forward(const Tensor& x) override {  // x [B,64]
    const int64_t B = x.size(0);
    Variable h = Variable(reshape(x, {B, 1, kSide, kSide}));  // [B,1,8,8]
    h = pool->forward(relu(conv1->forward(h)));               // [B,C1,4,4]
    h = pool->forward(relu(conv2->forward(h)));               // [B,C2,2,2]
    return fc->forward(flatten->forward(h));                  // [B,10]
  }
  std::string describe() const override {
    return fmt::format("Conv2d(1,{0},3,pad 1) relu MaxPool2d(2) Conv2d({0},{1},3,pad 1) relu MaxPool2d(2) "
                       "Flatten Linear({2},10)",
                       C1, C2, C2 * 4);
  }
};

// ---- training and evaluation ---------------------------------------------------------------

/// The images of `set` at `idx` as [n,64].
Tensor images(const DigitsSet& set, const std::vector<int64_t>& idx) {
  std::vector<double> px;
  px.reserve(idx.size() * kPixels);
  for (int64_t i : idx)
    for (int64_t p = 0; p < kPixels; ++p) px.push_back(set.pixels[static_cast<size_t>(i * kPixels + p)]);
  return tensor(px, {static_cast<int64_t>(idx.size()), kPixels});
}

Tensor labels(const DigitsSet& set, const std::vector<int64_t>& idx) {
  std::vector<int64_t> y;
  for (int64_t i : idx) y.push_back(set.labels[static_cast<size_t>(i)]);
  return indices(y);
}

/// The predicted class of every image of `set`.
std::vector<int64_t> predict(DigitModel& model, const DigitsSet& set) {
  NoGradGuard no_grad;
  std::vector<int64_t> all(static_cast<size_t>(set.size()));
  std::iota(all.begin(), all.end(), int64_t{0});
  return argmax(model.forward(images(set, all)).data(), 1).to_indices();
}

double accuracy(const std::vector<int64_t>& pred, const DigitsSet& set) {
  int64_t right = 0;
  for (size_t i = 0; i < pred.size(); ++i) right += pred[i] == set.labels[i];
  return static_cast<double>(right) / static_cast<double>(pred.size());
}

struct Curves {
  std::vector<double> loss;               ///< every step
  std::vector<double> eval_step, test_acc;  ///< every --eval-every steps
};

/// Adam on shuffled batches (a new permutation every epoch, drawn from `order`).
Curves train(DigitModel& model, const DigitsSplit& data, int64_t steps, int64_t B, double lr, int64_t eval_every,
             Generator order, Progress& progress, int64_t& progress_step) {
  optim::Adam opt(model.parameters(), {.lr = lr});
  Curves c;
  std::vector<int64_t> perm(static_cast<size_t>(data.train.size()));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  size_t at = perm.size();
  for (int64_t step = 1; step <= steps; ++step) {
    if (at + static_cast<size_t>(B) > perm.size()) {  // a new epoch
      for (size_t i = perm.size(); i > 1; --i)
        std::swap(perm[i - 1], perm[static_cast<size_t>(order.randint(0, static_cast<int64_t>(i)))]);
      at = 0;
    }
    const std::vector<int64_t> idx(perm.begin() + static_cast<ptrdiff_t>(at),
                                   perm.begin() + static_cast<ptrdiff_t>(at) + B);
    at += static_cast<size_t>(B);
    Variable loss = cross_entropy(model.forward(images(data.train, idx)), labels(data.train, idx));
    opt.zero_grad();
    loss.backward();
    opt.step();
    c.loss.push_back(loss.item());
    if (step % eval_every == 0 || step == steps) {
      c.eval_step.push_back(static_cast<double>(step));
      c.test_acc.push_back(accuracy(predict(model, data.test), data.test));
    }
    progress.update(++progress_step, loss.item());
  }
  return c;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Smooths a noisy per-step curve with a trailing mean over `w` steps.
std::vector<double> running_mean(const std::vector<double>& v, size_t w) {
  std::vector<double> out;
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    s += v[i];
    if (i >= w) s -= v[i - w];
    out.push_back(s / static_cast<double>(std::min(i + 1, w)));
  }
  return out;
}

}  // namespace

int run(int argc, char** argv) {
  Cli cli(argc, argv,
          "image classification on the real 8x8 handwritten digits (shared/data/digits/digits.csv; every 5th image\n"
          "is test): an MLP and a small CNN with the same steps, batches and optimizer, over several seeds");
  const std::string data_flag = cli.get_string("data", "", "the digits CSV (default: shared/data/digits/digits.csv, "
                                                           "looked for from here upwards and beside the project)");
  const std::string models = cli.get_string("models", "both", "mlp, cnn or both");
  const int64_t steps = cli.get_int("steps", 1000, "training steps per model");
  const int64_t B = cli.get_int("batch", 64, "batch size B");
  const double lr = cli.get_double("lr", 3e-3, "Adam learning rate (both models)");
  const int64_t H = cli.get_int("hidden", 64, "MLP hidden size (both hidden layers)");
  const int64_t C1 = cli.get_int("channels1", 16, "CNN: channels of the first convolution");
  const int64_t C2 = cli.get_int("channels2", 32, "CNN: channels of the second convolution");
  const int64_t n_seeds = cli.get_int("seeds", 5, "seeds to train with (seed, seed+1, ...): median and range");
  const int64_t eval_every = cli.get_int("eval-every", 50, "steps between test-accuracy points on the curve");
  const int64_t show = cli.get_int("show", 40, "misclassified test images to draw per model (at most)");
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out_dir = cli.out_path();
  cli.done();
  UNROLL_CHECK(models == "mlp" || models == "cnn" || models == "both", "digits: --models must be mlp, cnn or both, got '{}'",
               models);
  UNROLL_CHECK(steps > 0 && B > 0 && H > 0 && C1 > 0 && C2 > 0 && n_seeds > 0 && eval_every > 0 && show >= 0,
               "digits: --steps, --batch, --hidden, --channels1/2, --seeds and --eval-every must be positive");

  // Data: the fixed split. A missing file is exit code 2 before anything is written.
  const std::string path = data_flag.empty() ? find_shared_data("digits/digits.csv") : data_flag;
  if (path.empty())
    throw MissingData("the digits data is not here: no shared/data/digits/digits.csv in the working directory, its "
                      "parents or beside the project; pass --data PATH (a CSV of 64 pixels 0..16 and a label per line)");
  if (!std::filesystem::exists(path)) throw MissingData(fmt::format("no data file '{}'", path));
  const DigitsSplit data = read_digits(path);  // a malformed file: DataError naming the line, exit code 1
  UNROLL_CHECK(B <= data.train.size(), "digits: --batch {} is larger than the {} training images", B, data.train.size());
  std::vector<int64_t> test_counts(kClasses, 0);
  for (int64_t y : data.test.labels) ++test_counts[static_cast<size_t>(y)];
  const double majority = static_cast<double>(*std::max_element(test_counts.begin(), test_counts.end())) /
                          static_cast<double>(data.test.size());
  plot::make_dirs(out_dir);
  fmt::print("data: {}: {} train / {} test images of 8x8 pixels, 10 classes (majority class {:.3f} of test)\n", path,
             data.train.size(), data.test.size(), majority);

  std::vector<std::string> kinds;
  if (models != "cnn") kinds.push_back("mlp");
  if (models != "mlp") kinds.push_back("cnn");
  auto make = [&](const std::string& kind) -> std::unique_ptr<DigitModel> {
    if (kind == "mlp") return std::make_unique<MlpModel>(H);
    return std::make_unique<CnnModel>(C1, C2);
  };
  for (const std::string& kind : kinds) {
    auto m = make(kind);
    fmt::print("{}: {}, {} parameters\n", kind, m->describe(), m->num_parameters());
  }
  fmt::print("training: {} steps of batch {} (Adam, lr {}) per model and seed, seeds {}..{}\n", steps, B, lr, seed,
             seed + static_cast<uint64_t>(n_seeds) - 1);
  std::fflush(stdout);  // the progress line goes to stderr

  // Training: every seed, every model; the same batch order for both models of a seed.
  struct Result {
    std::vector<double> acc;        // per seed
    Curves curves;                  // first seed
    std::vector<int64_t> pred;      // first seed, test set
    int64_t params = 0;
  };
  std::vector<Result> results(kinds.size());
  Progress progress("digits", steps * n_seeds * static_cast<int64_t>(kinds.size()), !json);
  int64_t progress_step = 0;
  for (int64_t s = 0; s < n_seeds; ++s) {
    const uint64_t run_seed = seed + static_cast<uint64_t>(s);
    for (size_t k = 0; k < kinds.size(); ++k) {
      manual_seed(run_seed);
      auto model = make(kinds[k]);
      Curves c = train(*model, data, steps, B, lr, eval_every, Generator(run_seed + 1000), progress, progress_step);
      std::vector<int64_t> pred = predict(*model, data.test);
      results[k].acc.push_back(accuracy(pred, data.test));
      if (s == 0) {
        results[k].curves = std::move(c);
        results[k].pred = std::move(pred);
        results[k].params = model->num_parameters();
      }
    }
  }
  progress.finish();
  const double seconds = progress.seconds();

  // Report: accuracy over seeds, then the first seed's confusion matrices.
  fmt::print("\ntest accuracy on {} images over {} seed(s) (chance 0.100, majority class {:.3f}):\n", data.test.size(),
             n_seeds, majority);
  for (size_t k = 0; k < kinds.size(); ++k) {
    const auto& a = results[k].acc;
    fmt::print("  {}  median {:.4f}  range {:.4f}..{:.4f}  ({} parameters; per seed:", kinds[k], median(a),
               *std::min_element(a.begin(), a.end()), *std::max_element(a.begin(), a.end()), results[k].params);
    for (double x : a) fmt::print(" {:.4f}", x);
    fmt::print(")\n");
  }
  fmt::print("{:.1f}s training in all\n", seconds);

  std::vector<std::string> figures;
  std::vector<std::string> class_names;
  for (int c = 0; c < kClasses; ++c) class_names.push_back(std::to_string(c));
  for (size_t k = 0; k < kinds.size(); ++k) {
    const std::string name = kinds[k] == "mlp" ? "MLP" : "CNN";
    const std::vector<int64_t>& pred = results[k].pred;
    std::vector<std::vector<int64_t>> confusion(kClasses, std::vector<int64_t>(kClasses, 0));
    for (size_t i = 0; i < pred.size(); ++i)
      ++confusion[static_cast<size_t>(data.test.labels[i])][static_cast<size_t>(pred[i])];
    fmt::print("\n{} confusion matrix, seed {} (rows: true digit, columns: predicted)\n     ", name, seed);
    for (int c = 0; c < kClasses; ++c) fmt::print(" {:>3}", c);
    fmt::print("\n");
    plot::Heatmap cm;
    cm.title = fmt::format("{}: test accuracy {:.1f}% (seed {})", name, 100 * accuracy(pred, data.test), seed);
    cm.xlabel = "predicted digit (share of row)";
    cm.ylabel = "true digit";
    cm.colorbar_label = "share of the true digit's test images";
    for (int r = 0; r < kClasses; ++r) {
      fmt::print("  {:>3}", r);
      int64_t total = 0;
      for (int c = 0; c < kClasses; ++c) total += confusion[static_cast<size_t>(r)][static_cast<size_t>(c)];
      std::vector<double> row;
      for (int c = 0; c < kClasses; ++c) {
        const int64_t n = confusion[static_cast<size_t>(r)][static_cast<size_t>(c)];
        fmt::print(" {:>3}", n);
        row.push_back(total ? static_cast<double>(n) / static_cast<double>(total) : 0.0);
      }
      fmt::print("\n");
      cm.values.push_back(row);
    }
    cm.row_labels = class_names;
    cm.col_labels = class_names;
    cm.annotate = true;
    figures.push_back(fmt::format("{}/confusion_{}.svg", out_dir, kinds[k]));
    cm.save(figures.back());

    // The test digits this model got wrong, with the true and the predicted label.
    plot::ImageGrid grid;
    int64_t wrong = 0;
    for (size_t i = 0; i < pred.size(); ++i) {
      if (pred[i] == data.test.labels[i]) continue;
      if (wrong++ >= show) continue;
      plot::ImagePanel p;
      p.height = p.width = kSide;
      for (int64_t q = 0; q < kPixels; ++q) p.pixels.push_back(data.test.pixels[i * static_cast<size_t>(kPixels) + static_cast<size_t>(q)]);
      p.lines = {fmt::format("true {}", data.test.labels[i]), fmt::format("pred {}", pred[i])};
      grid.panels.push_back(std::move(p));
    }
    grid.title = fmt::format("{}: {} of {} test digits misclassified (seed {})", name, wrong, pred.size(), seed);
    if (wrong > show) grid.notes.push_back(fmt::format("the first {} in file order", show));
    grid.columns = 10;
    grid.cell = 56;
    figures.push_back(fmt::format("{}/misclassified_{}.svg", out_dir, kinds[k]));
    grid.save(figures.back());
  }

  plot::LinePlot loss;
  loss.title = fmt::format("training loss (mean of the last 20 steps), seed {}", seed);
  loss.xlabel = "step";
  loss.ylabel = "cross-entropy (nats)";
  loss.log_y = true;
  plot::LinePlot acc;
  acc.title = fmt::format("test accuracy during training, seed {}", seed);
  acc.xlabel = "step";
  acc.ylabel = "accuracy";
  for (size_t k = 0; k < kinds.size(); ++k) {
    const std::string name = kinds[k] == "mlp" ? "MLP" : "CNN";
    loss.add(name, running_mean(results[k].curves.loss, 20));
    acc.add(name, results[k].curves.eval_step, results[k].curves.test_acc);
  }
  acc.add_reference("chance", 1, static_cast<double>(steps), 0.1);
  figures.push_back(out_dir + "/loss.svg");
  loss.save(figures.back());
  figures.push_back(out_dir + "/accuracy.svg");
  acc.save(figures.back());
  fmt::print("\nfigures:\n");
  for (const std::string& f : figures) fmt::print("  {}\n", f);

  if (json) {
    JsonLine line;
    line.add("chance", 0.1).add("majority", majority).add("test_images", static_cast<double>(data.test.size()));
    line.add("seeds", static_cast<double>(n_seeds)).add("steps", static_cast<double>(steps));
    for (size_t k = 0; k < kinds.size(); ++k) {
      const auto& a = results[k].acc;
      line.add(kinds[k] + "_accuracy", a[0]).add(kinds[k] + "_median", median(a));
      line.add(kinds[k] + "_min", *std::min_element(a.begin(), a.end()));
      line.add(kinds[k] + "_max", *std::max_element(a.begin(), a.end()));
      line.add(kinds[k] + "_params", static_cast<double>(results[k].params));
      line.add(kinds[k] + "_first_loss", results[k].curves.loss.front());
      line.add(kinds[k] + "_final_loss", results[k].curves.loss.back());
    }
    line.add("seconds", seconds);
    fmt::print("{}\n", line.str());
  }
  return 0;
}

int main(int argc, char** argv) {
  // The messages of DataError and of the checks above name the program already.
  return guarded_main("digits", argc, argv, run, on_error<MissingData>(ErrorPrefix::program, 2),
                      on_error<DataError>(ErrorPrefix::none, 1), on_error<Error>(ErrorPrefix::none, 1));
}
