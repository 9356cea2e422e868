// Small-op overhead: what recording an op and back-propagating through it costs when the
// tensors are tiny ([1,16], the batch-1 RNN regime), in ns per op, forward and backward
// measured separately over a 1,000-op chain. A PyTorch reference (bench/reference.py)
// measures the same chain side by side when torch is importable.
//
//   build/bench/bench_autograd [--json] [--reps N]
#include <unroll.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

using namespace unroll;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  bool json = false;
  int reps = 200;
};

void report(const Args& a, const std::string& name, double value, const char* unit) {
  if (a.json) fmt::print("{{\"name\": \"{}\", \"value\": {:.2f}, \"unit\": \"{}\"}}\n", name, value, unit);
  else fmt::print("{:<36} {:>10.1f} {}\n", name, value, unit);
}

// One measurement: a chain of n ops alternating add and mul on [1,16] tensors.
// Returns {forward ns/op, backward ns/op}, best of `reps` runs.
std::pair<double, double> chain(int n, int reps) {
  Variable x(full({1, 16}, 0.5), true);
  Variable c(full({1, 16}, 0.999));
  double best_f = 1e30, best_b = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    Variable y = x;
    for (int i = 0; i < n; i += 2) y = (y + c) * c;
    Variable loss = sum(y);
    auto t1 = Clock::now();
    loss.backward();
    auto t2 = Clock::now();
    y = Variable();
    loss = Variable();
    x.zero_grad();
    best_f = std::min(best_f, std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
    best_b = std::min(best_b, std::chrono::duration<double, std::nano>(t2 - t1).count() / n);
  }
  return {best_f, best_b};
}

// Same chain with no recording (NoGradGuard): the cost of the kernels alone.
double chain_no_grad(int n, int reps) {
  NoGradGuard ng;
  Tensor x = full({1, 16}, 0.5), c = full({1, 16}, 0.999);
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    Tensor y = x;
    for (int i = 0; i < n; i += 2) y = (y + c) * c;
    auto t1 = Clock::now();
    best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json")) a.json = true;
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) a.reps = std::stoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--help")) {
      fmt::print("usage: bench_autograd [--json] [--reps N]\n  ns per op for a 1,000-op add/mul chain on [1,16]\n");
      return 0;
    } else {
      fmt::print(stderr, "bench_autograd: unknown argument '{}' (try --help)\n", argv[i]);
      return 2;
    }
  }
  chain(1000, 5);  // warm the buffer pool
  auto [fwd, bwd] = chain(1000, a.reps);
  const double raw = chain_no_grad(1000, a.reps);
  report(a, "small_op_forward_1x16", fwd, "ns/op");
  report(a, "small_op_backward_1x16", bwd, "ns/op");
  report(a, "small_op_forward_plus_backward_1x16", fwd + bwd, "ns/op");
  report(a, "small_op_kernel_only_1x16", raw, "ns/op");
  return 0;
}
