// bench_gemm: GFLOP/s of unroll::kernels::gemm (float) next to OpenBLAS's cblas_sgemm, on
// square sizes and on the shapes of recurrent cells (see --help).
//
// OpenBLAS is loaded at run time with dlopen, so this program builds without it; when the
// library is missing the reference columns are skipped. Both run single-threaded, in the
// same process, alternating repetition by repetition so machine noise hits both alike.
#include "core/gemm.h"
#include "fma_peak.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

constexpr const char* kHelp = R"(bench_gemm: single-thread float GEMM throughput, unroll vs OpenBLAS.

usage: OPENBLAS_CORETYPE=Cooperlake bench_gemm [--quick] [--json] [--filter S] [--reps N]
                  [--min-time S] [--help]

Measures C = A * op(B) in GFLOP/s (2*M*N*K flops per call) for
  * square sizes n = 64, 128, 256, 512, 1024;
  * recurrent-cell shapes M in {1, 32, 64} (batch), K in {256, 512} (input), N = 1024
    (gate rows), once with B stored K x N and once with B stored N x K and transposed
    (trans_b, which is how a Linear layer computes x W^T).
Each measurement is the best of several repetitions of >= 0.2 s each. Alongside, in the same
run: OpenBLAS's cblas_sgemm (dlopen'ed from libopenblas.so.0, forced to one thread) and a
rough machine peak from a tight AVX-512 (or AVX2) FMA loop; every result is shown as % of
that peak and as % of OpenBLAS.

Run it with OPENBLAS_CORETYPE=Cooperlake: this machine's OpenBLAS (0.3.21) does not know
the CPU (AMD Zen 5) and otherwise falls back to slow generic kernels, which would flatter
unroll. Keep the machine otherwise idle; the numbers are only as good as the quietest run.

options:
  --quick   fewer sizes, shorter and fewer repetitions (a smoke test, ~10 s)
  --json    one JSON object per line and measurement instead of the table:
              {"name": "sgemm_256x256x256", "value": 123.4, "unit": "GFLOP/s"}
              {"name": "openblas_sgemm_256x256x256", ...}
              {"name": "ratio_sgemm_256x256x256", "value": 0.95, "unit": "x"}
            names are sgemm_MxNxK, with "_nt" after "sgemm" when B is transposed, plus
            "fma_peak" for the peak
  --filter S      only the shapes whose name contains S (e.g. --filter _nt_)
  --reps N        repetitions per measurement (default 5, --quick 2); the best counts
  --min-time S    seconds per repetition (default 0.2, --quick 0.05). On a busy machine
                  many short repetitions (e.g. --reps 30 --min-time 0.03) find quiet
                  moments more reliably than a few long ones.
  --help          this text
)";

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------
// OpenBLAS, loaded at run time.
// ---------------------------------------------------------------------------------------
constexpr int kCblasRowMajor = 101, kCblasNoTrans = 111, kCblasTrans = 112;
using CblasSgemm = void (*)(int, int, int, int, int, int, float, const float*, int,
                            const float*, int, float, float*, int);

struct OpenBlas {
  CblasSgemm sgemm = nullptr;
  std::string corename;
};

OpenBlas load_openblas() {
  OpenBlas lib;
  void* handle = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return lib;
  lib.sgemm = reinterpret_cast<CblasSgemm>(dlsym(handle, "cblas_sgemm"));
  if (auto set_threads = reinterpret_cast<void (*)(int)>(dlsym(handle, "openblas_set_num_threads"))) {
    set_threads(1);
  }
  if (auto core = reinterpret_cast<char* (*)()>(dlsym(handle, "openblas_get_corename"))) {
    lib.corename = core();
  }
  return lib;
}

// ---------------------------------------------------------------------------------------
// GEMM measurements.
// ---------------------------------------------------------------------------------------
struct Shape {
  int64_t M, N, K;
  bool tb;
  std::string name() const {
    return fmt::format("sgemm{}_{}x{}x{}", tb ? "_nt" : "", M, N, K);
  }
};

struct Operands {
  std::vector<float> A, B, C;
  explicit Operands(const Shape& s)
      : A(static_cast<size_t>(s.M * s.K)), B(static_cast<size_t>(s.K * s.N)),
        C(static_cast<size_t>(s.M * s.N)) {
    uint32_t state = 12345;
    auto next = [&state] {
      state = state * 1664525u + 1013904223u;
      return static_cast<float>(state >> 8) * 0x1.0p-24f - 0.5f;
    };
    for (float& v : A) v = next();
    for (float& v : B) v = next();
  }
};

/// Calls fn iters times; returns the seconds taken.
template <class Fn>
double time_calls(Fn& fn, int64_t iters) {
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < iters; ++i) fn();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Enough calls for one repetition to last about min_seconds.
template <class Fn>
int64_t calibrate(Fn& fn, double min_seconds) {
  int64_t iters = 1;
  for (;;) {
    const double s = time_calls(fn, iters);
    if (s >= min_seconds / 8) {
      return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(iters * min_seconds / s)));
    }
    iters *= 4;
  }
}

struct Result {
  std::string name;
  double ours = 0, reference = 0;  // GFLOP/s; reference 0 when OpenBLAS is missing
  double max_rel_diff = 0;         // between the two results (normwise), a sanity check
};

Result measure(const Shape& s, const OpenBlas& blas, int reps, double min_seconds) {
  Operands ours(s), ref(s);
  const int64_t ldb = s.tb ? s.K : s.N;
  auto run_ours = [&] {
    unroll::kernels::gemm(false, s.tb, s.M, s.N, s.K, 1.0f, ours.A.data(), s.K, ours.B.data(),
                          ldb, 0.0f, ours.C.data(), s.N);
  };
  auto run_ref = [&] {
    blas.sgemm(kCblasRowMajor, kCblasNoTrans, s.tb ? kCblasTrans : kCblasNoTrans,
               static_cast<int>(s.M), static_cast<int>(s.N), static_cast<int>(s.K), 1.0f,
               ref.A.data(), static_cast<int>(s.K), ref.B.data(), static_cast<int>(ldb), 0.0f,
               ref.C.data(), static_cast<int>(s.N));
  };
  const double flops = 2.0 * static_cast<double>(s.M * s.N * s.K);
  Result r{s.name()};
  const int64_t iters_ours = calibrate(run_ours, min_seconds);
  const int64_t iters_ref = blas.sgemm ? calibrate(run_ref, min_seconds) : 0;
  for (int rep = 0; rep < reps; ++rep) {  // alternate, so noise hits both alike
    r.ours = std::max(r.ours, flops * iters_ours / time_calls(run_ours, iters_ours) * 1e-9);
    if (blas.sgemm) {
      r.reference = std::max(r.reference, flops * iters_ref / time_calls(run_ref, iters_ref) * 1e-9);
    }
  }
  if (blas.sgemm) {  // normwise: max |difference| over max |C|
    double diff = 0, norm = 0;
    for (size_t i = 0; i < ours.C.size(); ++i) {
      diff = std::max(diff, static_cast<double>(std::abs(ours.C[i] - ref.C[i])));
      norm = std::max(norm, static_cast<double>(std::abs(ref.C[i])));
    }
    r.max_rel_diff = diff / (norm + 1e-30);
  }
  return r;
}

void print_json(const std::string& name, double value, const char* unit) {
  fmt::print("{{\"name\": \"{}\", \"value\": {:.4g}, \"unit\": \"{}\"}}\n", name, value, unit);
  std::fflush(stdout);
}

std::string percent(double num, double den) {
  return den > 0 ? fmt::format("{:.0f}%", 100.0 * num / den) : std::string("-");
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, json = false;
  std::string filter;
  int reps_arg = 0;
  double min_time_arg = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
      filter = argv[++i];
    } else if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps_arg = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--min-time") == 0 && i + 1 < argc) {
      min_time_arg = std::max(1e-3, std::atof(argv[++i]));
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      fmt::print("{}", kHelp);
      return 0;
    } else {
      fmt::print(stderr, "bench_gemm: unknown option '{}' (see --help)\n", argv[i]);
      return 2;
    }
  }
  const int reps = reps_arg > 0 ? reps_arg : quick ? 2 : 5;
  const double min_seconds = min_time_arg > 0 ? min_time_arg : quick ? 0.05 : 0.2;

  const OpenBlas blas = load_openblas();
  if (!json) {
    fmt::print("unroll gemm code path: {}\n", unroll::kernels::gemm_isa_name());
    if (blas.sgemm == nullptr) {
      fmt::print("OpenBLAS reference missing (libopenblas.so.0 / cblas_sgemm not found): "
                 "measuring unroll only\n");
    } else {
      fmt::print("OpenBLAS reference: cblas_sgemm, 1 thread, core '{}'\n", blas.corename);
      if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
        fmt::print("warning: OPENBLAS_CORETYPE is not set; run with OPENBLAS_CORETYPE=Cooperlake"
                   " or OpenBLAS may use slow generic kernels (see --help)\n");
      }
    }
  }

  const double peak = unroll_bench::measure_peak(std::max(reps, 5));
  if (json) {
    print_json("fma_peak", peak, "GFLOP/s");
  } else {
    fmt::print("FMA peak (one core, tight loop): {:.1f} GFLOP/s\n\n", peak);
    fmt::print("{:<26} {:>10} {:>7} {:>10} {:>7} {:>9}\n", "shape (MxNxK)", "unroll", "%peak",
               "OpenBLAS", "%peak", "%OpenBLAS");
  }

  std::vector<Shape> shapes;
  for (int64_t n : quick ? std::vector<int64_t>{64, 256, 512}
                         : std::vector<int64_t>{64, 128, 256, 512, 1024}) {
    shapes.push_back({n, n, n, false});
  }
  for (bool tb : {false, true}) {
    for (int64_t M : {1, 32, 64}) {
      for (int64_t K : {256, 512}) {
        if (quick && K == 256 && M != 1) continue;
        shapes.push_back({M, 1024, K, tb});
      }
    }
  }

  for (const Shape& s : shapes) {
    if (!filter.empty() && s.name().find(filter) == std::string::npos) continue;
    const Result r = measure(s, blas, reps, min_seconds);
    if (json) {
      print_json(r.name, r.ours, "GFLOP/s");
      if (blas.sgemm) {
        print_json("openblas_" + r.name, r.reference, "GFLOP/s");
        print_json("ratio_" + r.name, r.ours / r.reference, "x");
      }
    } else {
      fmt::print("{:<26} {:>10.1f} {:>7} {:>10} {:>7} {:>9}{}\n", r.name, r.ours,
                 percent(r.ours, peak),
                 blas.sgemm ? fmt::format("{:.1f}", r.reference) : std::string("-"),
                 percent(r.reference, peak), percent(r.ours, r.reference),
                 r.max_rel_diff > 1e-4 ? fmt::format("  (results differ: {:.2g})", r.max_rel_diff)
                                       : std::string());
      std::fflush(stdout);
    }
  }
  return 0;
}
