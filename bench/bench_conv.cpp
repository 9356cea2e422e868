// bench_conv: forward + backward of conv1d / conv2d / max_pool2d and a TCN, in float32, at the
// shapes of a temporal ConvNet and of a small image CNN; bench/reference.py times the same
// workloads in PyTorch (names prefixed "torch_"), and bench/run_all.sh prints them side by side.
//
//   build/bench/bench_conv [--json] [--quick] [--workload PREFIX] [--threads N] [--reps N]
//
// One measurement = y = op(x, w, b); y.backward(g) with a fixed upstream gradient g, so the
// three products (output, input gradient, weight gradient) are timed and nothing else. The
// conv1d inputs are already padded on the left by (K-1)*dilation, as a causal TCN layer sees
// them. Each workload reports ms per forward+backward (best of the repetitions), and the
// convolutions also GFLOP/s = 3 * 2 * B * C_out * positions * C_in/groups * kernel / time,
// next to the GFLOP/s of one plain GEMM of the forward's shape [C_out x C_in*k] x [C_in*k x
// positions of one batch chunk] measured in the same run: how close the convolution gets to
// the GEMM it is built on.
#include <unroll.h>

#include "core/gemm.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

using namespace unroll;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  bool json = false, quick = false;
  std::string workload;
  int threads = 1, reps = 0;
};

void report(const Args& a, const std::string& name, double value, const char* unit) {
  if (a.json)
    fmt::print("{{\"name\": \"{}\", \"value\": {:.3f}, \"unit\": \"{}\"}}\n", name, value, unit);
  else
    fmt::print("{:<44} {:>10.2f} {}\n", name, value, unit);
}

/// Best wall time in ms of `run` over reps repetitions (after one warm-up call).
double best_ms(int reps, const std::function<void()>& run) {
  run();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    run();
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return best;
}

/// GFLOP/s of one float GEMM C[M,N] = A[M,K] B[K,N] (best of a few 0.1 s runs).
double gemm_gflops(int64_t M, int64_t N, int64_t K) {
  std::vector<float> A(static_cast<size_t>(M * K), 0.5f), B(static_cast<size_t>(K * N), 0.25f),
      C(static_cast<size_t>(M * N));
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    int iters = 0;
    const auto t0 = Clock::now();
    double s = 0;
    do {
      kernels::gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
      ++iters;
      s = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (s < 0.1);
    best = std::min(best, s / iters);
  }
  return 2.0 * M * N * K / best / 1e9;
}

struct Conv {
  std::string name;
  int64_t B, Cin, Cout, k, dilation = 1;
  int64_t T = 0;        // conv1d: output length
  int64_t H = 0, W = 0;  // conv2d: image size (padding k/2 keeps it)
};

void conv_workload(const Args& a, const Conv& c) {
  Generator gen(1);
  const bool one_d = c.T > 0;
  const int64_t left = (c.k - 1) * c.dilation;
  const Shape xs = one_d ? Shape{c.B, c.Cin, c.T + left} : Shape{c.B, c.Cin, c.H, c.W};
  const Shape ws = one_d ? Shape{c.Cout, c.Cin, c.k} : Shape{c.Cout, c.Cin, c.k, c.k};
  Variable x(randn(xs, gen), true), w(randn(ws, gen) * 0.1, true), b(randn({c.Cout}, gen), true);
  auto forward = [&] {
    return one_d ? conv1d(x, w, b, 1, 0, c.dilation) : conv2d(x, w, b, 1, c.k / 2);
  };
  const Tensor g = randn(forward().shape(), gen);
  const int reps = a.reps > 0 ? a.reps : (a.quick ? 3 : 20);
  const double ms = best_ms(reps, [&] {
    x.zero_grad();
    w.zero_grad();
    b.zero_grad();
    forward().backward(g);
  });
  const int64_t positions = one_d ? c.T : c.H * c.W;
  const int64_t kernel = one_d ? c.k : c.k * c.k;
  const double flops = 3.0 * 2.0 * c.B * c.Cout * positions * c.Cin * kernel;
  report(a, c.name, ms, "ms");
  report(a, c.name + "_gflops", flops / ms / 1e6, "GFLOP/s");
  // The GEMM the forward runs on: several samples per product when one has < 512 positions.
  const int64_t per = std::max<int64_t>(1, std::min<int64_t>(c.B, (511 + positions) / positions));
  report(a, c.name + "_gemm_gflops", gemm_gflops(c.Cout, positions * per, c.Cin * kernel), "GFLOP/s");
}

void pool_workload(const Args& a) {
  Generator gen(2);
  Variable x(randn({64, 16, 28, 28}, gen), true);
  const Tensor g = randn({64, 16, 14, 14}, gen);
  const int reps = a.reps > 0 ? a.reps : (a.quick ? 3 : 20);
  report(a, "maxpool2d_b64_c16_28x28_k2", best_ms(reps, [&] {
           x.zero_grad();
           max_pool2d(x, 2).backward(g);
         }),
         "ms");
}

void tcn_workload(const Args& a) {
  manual_seed(3);
  Generator gen(3);
  TCN tcn(1, {32, 32, 32, 32, 32, 32, 32, 32}, TCNOptions{.kernel_size = 7});
  Variable x(randn({32, 1, 600}, gen), true);
  const Tensor g = randn({32, 32, 600}, gen);
  const int reps = a.reps > 0 ? a.reps : (a.quick ? 2 : 5);
  report(a, "tcn_b32_c32_t600_k7_l8", best_ms(reps, [&] {
           for (Variable& p : tcn.parameters()) p.zero_grad();
           tcn(x).backward(g);
         }),
         "ms");
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json")
      a.json = true;
    else if (arg == "--quick")
      a.quick = true;
    else if (arg == "--workload" && i + 1 < argc)
      a.workload = argv[++i];
    else if (arg == "--threads" && i + 1 < argc)
      a.threads = std::stoi(argv[++i]);
    else if (arg == "--reps" && i + 1 < argc)
      a.reps = std::stoi(argv[++i]);
    else {
      fmt::print("usage: bench_conv [--json] [--quick] [--workload PREFIX] [--threads N] [--reps N]\n");
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }
  set_num_threads(a.threads);
  auto sel = [&](const std::string& name) { return name.rfind(a.workload, 0) == 0; };
  const std::vector<Conv> convs = {
      {.name = "conv1d_b32_c32_t200_k3_d1", .B = 32, .Cin = 32, .Cout = 32, .k = 3, .dilation = 1, .T = 200},
      {.name = "conv1d_b32_c64_t200_k3_d4", .B = 32, .Cin = 64, .Cout = 64, .k = 3, .dilation = 4, .T = 200},
      {.name = "conv1d_b32_c64_t600_k3_d1", .B = 32, .Cin = 64, .Cout = 64, .k = 3, .dilation = 1, .T = 600},
      {.name = "conv1d_b32_c32_t600_k7_d8", .B = 32, .Cin = 32, .Cout = 32, .k = 7, .dilation = 8, .T = 600},
      {.name = "conv1d_b32_c64_t600_k7_d32", .B = 32, .Cin = 64, .Cout = 64, .k = 7, .dilation = 32, .T = 600},
      {.name = "conv2d_b64_1to16_8x8_k3", .B = 64, .Cin = 1, .Cout = 16, .k = 3, .H = 8, .W = 8},
      {.name = "conv2d_b64_16to32_8x8_k3", .B = 64, .Cin = 16, .Cout = 32, .k = 3, .H = 8, .W = 8},
      {.name = "conv2d_b64_1to16_28x28_k3", .B = 64, .Cin = 1, .Cout = 16, .k = 3, .H = 28, .W = 28},
      {.name = "conv2d_b64_16to32_14x14_k3", .B = 64, .Cin = 16, .Cout = 32, .k = 3, .H = 14, .W = 14},
      {.name = "conv2d_b64_16to32_28x28_k3", .B = 64, .Cin = 16, .Cout = 32, .k = 3, .H = 28, .W = 28},
  };
  for (const Conv& c : convs)
    if (sel(c.name)) conv_workload(a, c);
  if (sel("maxpool2d_b64_c16_28x28_k2")) pool_workload(a);
  if (sel("tcn_b32_c32_t600_k7_l8")) tcn_workload(a);
}
