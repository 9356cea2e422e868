// CI-sized soak runs (tools/soak_runs.h, run in-process): 1,000 steps of a character LSTM
// language model and a 10,000-step sequence in TBPTT chunks hold live_nodes() and the tensor
// pool exactly flat and RSS within its tolerance after the warm-up, while the loss falls.
// The checks can fail: a loop that keeps its graphs trips all three. When the `soak` program
// is built (tools/CMakeLists.txt), its exit codes and JSON are checked too.
#include <doctest/doctest.h>

#include <unroll.h>

#include "../tools/soak_runs.h"
#include "test_support.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

using namespace unroll;

namespace {

// Under AddressSanitizer freed memory sits in a quarantine before reuse, so RSS grows with
// every allocation and says nothing about leaks; the exact live-node and pool counts still do.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssMeaningful = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kRssMeaningful = false;
#else
constexpr bool kRssMeaningful = true;
#endif
#else
constexpr bool kRssMeaningful = true;
#endif

void check_flat(const soak::Report& r) {
  INFO("RSS first ", r.rss_first, " last ", r.rss_last, " max ", r.rss_max, " limit ", r.rss_limit);
  INFO("live_nodes first ", r.nodes_first, " last ", r.nodes_last, " max ", r.nodes_max);
  INFO("pool first ", r.pool_first, " last ", r.pool_last, " max ", r.pool_max);
  INFO("loss ", r.loss_start, " -> ", r.loss_end);
  CHECK(r.samples.size() >= 10);
  CHECK(r.rss_first > 0);
  CHECK(r.nodes_ok());
  CHECK(r.pool_ok());
  CHECK(r.loss_ok());
  if (kRssMeaningful) {
    CHECK(r.rss_ok());
    CHECK(r.ok());
  } else {
    MESSAGE("AddressSanitizer build: RSS not checked (the quarantine holds freed memory)");
  }
}

}  // namespace

TEST_CASE("soak char_lm, 1,000 steps: memory flat after the warm-up, loss falls") {
  soak::Options o;
  o.mode = "char_lm";
  o.steps = 1000;
  o.batch = 8;
  o.seq = 16;
  o.embed = 8;
  o.hidden = 32;
  o.sample_every = 50;
  const soak::Report r = soak::run(o);
  check_flat(r);
  CHECK(r.steps == 1000);
  CHECK(r.loss_end < 0.5 * r.loss_start);
  MESSAGE("char_lm 1,000 steps in ", r.seconds, " s: RSS ", r.rss_first, " -> ", r.rss_last, " bytes, live_nodes ",
          r.nodes_last, ", loss ", r.loss_start, " -> ", r.loss_end);
}

TEST_CASE("soak tbptt, a 10,000-step sequence: memory flat after the warm-up, loss falls") {
  soak::Options o;
  o.mode = "tbptt";
  o.length = 10001;  // 10,000 predictions
  o.seq = 50;
  o.hidden = 32;
  o.sample_every = 10;
  const soak::Report r = soak::run(o);
  check_flat(r);
  CHECK(r.time_steps == 10000);
  CHECK(r.loss_end < 0.25 * r.loss_start);
  MESSAGE("tbptt 10,000 steps in ", r.seconds, " s: RSS ", r.rss_first, " -> ", r.rss_last, " bytes, live_nodes ",
          r.nodes_last, ", loss ", r.loss_start, " -> ", r.loss_end);
}

TEST_CASE("the soak checks fail for a loop that keeps its graphs and tensors") {
  soak::Options o;
  o.sample_every = 5;
  o.warmup = 5;
  o.rss_tolerance_bytes = int64_t{2} << 20;
  soak::detail::Monitor monitor(o, 40, {});
  Generator gen(1);
  Variable w(randn({16, 16}, gen), true);
  std::vector<Variable> kept;  // the leak: every step's loss, with its graph
  std::vector<Tensor> cached;  // and a 1 MiB buffer per step
  for (int64_t step = 0; step < 40; ++step) {
    Variable loss = sum(tanh(matmul(w, w)));
    kept.push_back(loss);
    cached.push_back(full({int64_t{1} << 18}, 1.0));  // 1 MiB, written, so resident
    monitor.add_loss(loss.item());
    if ((step + 1) % o.sample_every == 0) monitor.sample(step + 1);
  }
  const soak::Report r = monitor.finish(40, 40, 0.0);
  CHECK_FALSE(r.nodes_ok());
  CHECK_FALSE(r.pool_ok());
  CHECK_FALSE(r.rss_ok());
  CHECK(r.nodes_last - r.nodes_first >= 3 * 35);  // matmul, tanh and sum of 35 steps after the warm-up
  CHECK(r.pool_last - r.pool_first >= 35 * (int64_t{1} << 20));
}

#ifdef UNROLL_TOOLS_DIR
namespace {
test_support::ProgramRun run_tool(const std::string& args) {
  return test_support::run_program(std::string(UNROLL_TOOLS_DIR) + "/soak", args);
}
}  // namespace

TEST_CASE("the soak program: PASS with exit code 0 and a JSON summary; bad flags exit 2") {
  test_support::ProgramRun r = run_tool("char_lm --steps 200 --batch 4 --seq 16 --hidden 16 --sample-every 20 --json --quiet");
  CHECK(r.out.find("\"mode\": \"char_lm\"") != std::string::npos);
  if (kRssMeaningful) {  // (see kRssMeaningful: under ASan the RSS check of the program fails by design)
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("PASS") != std::string::npos);
    CHECK(r.out.find("\"ok\": true") != std::string::npos);
  }
  r = run_tool("tbptt --length 2000 --sample-every 5 --json --quiet");
  if (kRssMeaningful) CHECK(r.exit_code == 0);
  CHECK(r.out.find("\"steps\": 40, \"time_steps\": 1999") != std::string::npos);  // 39 chunks of 50, one of 49
  CHECK(run_tool("sideways").exit_code == 2);
  CHECK(run_tool("char_lm --steps ten").exit_code == 2);
  CHECK(run_tool("char_lm --text /no/such/file.txt").exit_code == 2);
}
#endif
