// soak: long training runs that must hold memory flat (see tools/soak_runs.h).
//
//   soak char_lm --steps 10000                 # char-level LSTM LM, 10,000 TBPTT steps
//   soak char_lm --steps 10000 --text corpus.txt --json
//   soak tbptt --length 100000                 # one 100,000-step sequence in chunks of 50
//
// A progress line per memory sample goes to stderr; the summary to stdout (and, with --json,
// one JSON line at the end). Exit code 0 when, after the warm-up, live_nodes() and the tensor
// pool's live bytes stayed exactly flat, RSS grew by no more than the tolerance, and the loss
// fell; 1 otherwise; 2 for bad flags or input (e.g. a missing --text file).
#include "soak_runs.h"

#include <cstdlib>
#include <map>
#include <string>

using namespace unroll;

namespace {

struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr const char* kHelp = R"(usage: soak MODE [flags]

modes:
  char_lm   character-level LSTM language model, truncated BPTT over --batch streams
  tbptt     one noisy two-tone sine of --length steps, read in chunks of --seq (one stream)

flags (defaults in brackets):
  --steps N            char_lm: training steps [10000]
  --length N           tbptt: sequence length [100000]
  --text PATH          char_lm: training text [a built-in paragraph]
  --batch N            char_lm: parallel streams B [16]
  --seq N              time steps per chunk T [char_lm 32, tbptt 50]
  --embed N            char_lm: embedding size [16]
  --hidden N           hidden size H [char_lm 64, tbptt 32]
  --lr X               Adam learning rate [3e-3]
  --clip X             gradient norm clipping [1.0]
  --sample-every N     steps (chunks) between memory samples [char_lm 100, tbptt 50]
  --warmup N           steps (chunks) before the flat-memory checks [10% of the run]
  --rss-tolerance-mib X      allowed RSS growth after the warm-up, absolute part [4]
  --rss-tolerance-percent X  allowed RSS growth, relative part [2]
  --threads N          set_num_threads [1]
  --seed N             random seed [0]
  --json               end with one JSON line of the summary
  --quiet              no progress lines
)";

std::string mib(int64_t bytes) { return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / (1 << 20)); }

struct Args {
  soak::Options opt;
  bool json = false, quiet = false;
  int threads = 1;
};

Args parse(int argc, char** argv) {
  if (argc < 2) throw Usage("missing MODE (char_lm or tbptt)");
  Args a;
  a.opt.mode = argv[1];
  if (a.opt.mode == "--help" || a.opt.mode == "-h") {
    fmt::print("{}", kHelp);
    std::exit(0);
  }
  if (a.opt.mode != "char_lm" && a.opt.mode != "tbptt")
    throw Usage(fmt::format("unknown mode '{}' (expected char_lm or tbptt)", a.opt.mode));
  if (a.opt.mode == "tbptt") {
    a.opt.seq = 50;
    a.opt.hidden = 32;
    a.opt.sample_every = 50;
  }
  auto value = [&](int& i, const std::string& flag) -> std::string {
    if (i + 1 >= argc) throw Usage(fmt::format("{} needs a value", flag));
    return argv[++i];
  };
  auto integer = [&](int& i, const std::string& flag) {
    const std::string v = value(i, flag);
    char* end = nullptr;
    const long long r = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end) throw Usage(fmt::format("{} expects an integer, got '{}'", flag, v));
    return static_cast<int64_t>(r);
  };
  auto number = [&](int& i, const std::string& flag) {
    const std::string v = value(i, flag);
    char* end = nullptr;
    const double r = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || !std::isfinite(r)) throw Usage(fmt::format("{} expects a number, got '{}'", flag, v));
    return r;
  };
  for (int i = 2; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--help" || f == "-h") {
      fmt::print("{}", kHelp);
      std::exit(0);
    } else if (f == "--steps") a.opt.steps = integer(i, f);
    else if (f == "--length") a.opt.length = integer(i, f);
    else if (f == "--text") a.opt.text_path = value(i, f);
    else if (f == "--batch") a.opt.batch = integer(i, f);
    else if (f == "--seq") a.opt.seq = integer(i, f);
    else if (f == "--embed") a.opt.embed = integer(i, f);
    else if (f == "--hidden") a.opt.hidden = integer(i, f);
    else if (f == "--lr") a.opt.lr = number(i, f);
    else if (f == "--clip") a.opt.clip = number(i, f);
    else if (f == "--sample-every") a.opt.sample_every = integer(i, f);
    else if (f == "--warmup") a.opt.warmup = integer(i, f);
    else if (f == "--rss-tolerance-mib") a.opt.rss_tolerance_bytes = static_cast<int64_t>(number(i, f) * (1 << 20));
    else if (f == "--rss-tolerance-percent") a.opt.rss_tolerance_fraction = number(i, f) / 100.0;
    else if (f == "--threads") a.threads = static_cast<int>(integer(i, f));
    else if (f == "--seed") a.opt.seed = static_cast<uint64_t>(integer(i, f));
    else if (f == "--json") a.json = true;
    else if (f == "--quiet") a.quiet = true;
    else throw Usage(fmt::format("unknown flag '{}'", f));
  }
  if (a.threads < 1) throw Usage("--threads must be at least 1");
  return a;
}

int run(int argc, char** argv) {
  const Args a = parse(argc, argv);
  set_num_threads(a.threads);
  const int64_t seq = std::max<int64_t>(a.opt.seq, 1);
  const int64_t total = a.opt.mode == "char_lm" ? a.opt.steps : (a.opt.length - 1 + seq - 1) / seq;
  const auto t0 = std::chrono::steady_clock::now();
  soak::OnSample progress = [&](const soak::Sample& s, const soak::Options& o) {
    if (a.quiet) return;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print(stderr, "{} {} {}/{}  loss {:.4f}  rss {}  live_nodes {}  pool {}  {:.0f} {}/s\n", o.mode,
               o.mode == "char_lm" ? "step" : "chunk", s.step, total, s.loss, mib(s.rss), s.live_nodes,
               mib(s.pool_live), secs > 0 ? static_cast<double>(s.step) / secs : 0.0,
               o.mode == "char_lm" ? "steps" : "chunks");
  };
  const soak::Report r = soak::run(a.opt, progress);

  const char* unit = r.mode == "char_lm" ? "steps" : "chunks";
  fmt::print("soak {}: {} {} ({} time steps{}) in {:.1f} s, {} thread(s)\n", r.mode, r.steps, unit, r.time_steps,
             r.mode == "char_lm" ? fmt::format(" x {} streams", a.opt.batch) : std::string(), r.seconds, a.threads);
  fmt::print("loss: {:.4f} (first {} {}) -> {:.4f} (last {}): {}\n", r.loss_start, a.opt.sample_every, unit,
             r.loss_end, a.opt.sample_every, r.loss_ok() ? "decreased" : "DID NOT DECREASE");
  fmt::print("after the warm-up ({} {}), {} samples:\n", r.warmup, unit,
             std::count_if(r.samples.begin(), r.samples.end(), [&](const soak::Sample& s) { return s.step >= r.warmup; }));
  fmt::print("  RSS        first {}  last {}  max {}  (limit {}: +{} +{:.0f}%): {}\n", mib(r.rss_first), mib(r.rss_last),
             mib(r.rss_max), mib(r.rss_limit), mib(a.opt.rss_tolerance_bytes), a.opt.rss_tolerance_fraction * 100,
             r.rss_ok() ? "flat" : "GREW");
  fmt::print("  live_nodes first {}  last {}  max {}: {}\n", r.nodes_first, r.nodes_last, r.nodes_max,
             r.nodes_ok() ? "flat" : "GREW");
  fmt::print("  tensor pool live bytes first {}  last {}  max {} (peak during a step {}): {}\n", r.pool_first,
             r.pool_last, r.pool_max, mib(r.pool_peak), r.pool_ok() ? "flat" : "GREW");
  fmt::print("{}\n", r.ok() ? "PASS" : "FAIL");
  if (a.json) {
    auto num = [](double v) { return std::isfinite(v) ? fmt::format("{}", v) : std::string("null"); };
    std::string samples;
    for (const soak::Sample& s : r.samples)
      samples += fmt::format("{}[{}, {}, {}, {}, {}]", samples.empty() ? "" : ", ", s.step, s.rss, s.live_nodes,
                             s.pool_live, num(s.loss));
    fmt::print(
        "{{\"mode\": \"{}\", \"steps\": {}, \"time_steps\": {}, \"threads\": {}, \"seconds\": {}, \"loss_start\": {}, "
        "\"loss_end\": {}, \"warmup\": {}, \"rss_first\": {}, \"rss_last\": {}, \"rss_max\": {}, \"rss_limit\": {}, "
        "\"live_nodes_first\": {}, \"live_nodes_last\": {}, \"live_nodes_max\": {}, \"pool_live_first\": {}, "
        "\"pool_live_last\": {}, \"pool_live_max\": {}, \"pool_peak\": {}, \"ok\": {}, "
        "\"samples\": {{\"columns\": [\"step\", \"rss\", \"live_nodes\", \"pool_live\", \"loss\"], \"rows\": [{}]}}}}\n",
        r.mode, r.steps, r.time_steps, a.threads, r.seconds, num(r.loss_start), num(r.loss_end), r.warmup, r.rss_first,
        r.rss_last, r.rss_max, r.rss_limit, r.nodes_first, r.nodes_last, r.nodes_max, r.pool_first, r.pool_last,
        r.pool_max, r.pool_peak, r.ok() ? "true" : "false", samples);
  }
  return r.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Usage& e) {
    fmt::print(stderr, "soak: {}\n(soak --help for usage)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "soak: error: {}\n", e.what());
    return 2;
  }
}
