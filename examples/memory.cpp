// What backpropagation through time costs in memory, per time step, and what truncation
// saves. A tanh RNN with a prediction at every step (loss = sum over t of MSE(head(h_t), y_t))
// is unrolled over T steps; MemoryMeter (autograd/graph.h) reports, per StepScope step, the
// nodes recorded and the bytes of tensor storage the graph keeps for backward (Note [memory
// per step] in autograd/graph.cpp). Then the same sequence with truncated BPTT: windows of
// W steps, one backward per window, the hidden state detached between windows.
//
// Figures and files (in --out):
//   memory_per_step.svg    bytes kept per step, full BPTT (saved by backward functions vs
//                          values still held by a Variable)
//   memory_truncation.svg  what the graph holds once the forward has reached step t: full
//                          BPTT grows with t, truncated BPTT restarts at every window
//   memory_graph.dot       a 3-step graph with the parameters under their module names
//
//   build/examples/memory                      # T=50, windows of 10, well under a second
//   build/examples/memory --T 200 --window 25 --hidden 128
#include "common/bars.h"
#include "common/cli.h"
#include "common/plot.h"

#include <fmt/format.h>

#include <unroll.h>

using namespace unroll;
using namespace unroll::examples;

namespace {

struct Net : Module {
  Net(int64_t input, int64_t hidden)
      : rnn(register_module("rnn", std::make_shared<RNNCell>(input, hidden))),
        head(register_module("head", std::make_shared<Linear>(hidden, 1))) {}
  std::shared_ptr<RNNCell> rnn;
  std::shared_ptr<Linear> head;
};

// Steps [t0, t0 + n) from state h: returns the summed loss; h becomes the last state.
Variable unroll_window(Net& net, const std::vector<Variable>& xs, const std::vector<Tensor>& ys, Variable& h,
                       int64_t t0, int64_t n) {
  Variable loss;
  for (int64_t t = t0; t < t0 + n; ++t) {
    StepScope step(static_cast<int>(t));
    h = net.rnn->forward(xs[static_cast<size_t>(t)], h);
    Variable l = mse_loss(net.head->forward(h), ys[static_cast<size_t>(t)]);
    loss = loss.defined() ? loss + l : l;
  }
  return loss;
}

// The bytes of a report per step in [t0, t0 + n) (steps without storage: 0).
std::vector<double> bytes_by_step(const MemoryReport& r, int64_t t0, int64_t n, bool saved) {
  std::vector<double> out(static_cast<size_t>(n), 0.0);
  for (const StepMemory& m : r.steps)
    if (m.step >= t0 && m.step < t0 + n)
      out[static_cast<size_t>(m.step - t0)] = static_cast<double>(saved ? m.saved_bytes : m.value_bytes);
  return out;
}

int run(int argc, char** argv) {
  Cli cli(argc, argv, "memory per time step of BPTT, measured with MemoryMeter, and what truncated BPTT saves");
  const int64_t T = cli.get_int("T", 50, "sequence length");
  const int64_t window = cli.get_int("window", 10, "truncated BPTT window (steps per backward)");
  const int64_t hidden = cli.get_int("hidden", 64, "hidden size of the tanh RNN");
  const int64_t input = cli.get_int("input", 8, "input features per step");
  const int64_t batch = cli.get_int("batch", 16, "sequences per batch");
  const bool print_table = cli.get_flag("table", "print the full per-step table of full BPTT");
  const uint64_t seed = cli.seed();
  const bool json = cli.json();
  const std::string out = cli.out_dir();
  cli.done();
  UNROLL_CHECK(T >= 1 && window >= 1 && window <= T && hidden >= 1 && input >= 1 && batch >= 1,
               "memory: need T >= 1, 1 <= window <= T and positive hidden, input, batch (got T={} window={} "
               "hidden={} input={} batch={})",
               T, window, hidden, input, batch);
  plot::make_dirs(out);

  manual_seed(seed);
  Net net(input, hidden);
  Generator gen(seed + 1);
  // The data is made before any meter: it exists whether or not a graph is recorded.
  std::vector<Variable> xs;
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < T; ++t) {
    xs.emplace_back(randn({batch, input}, gen));
    ys.push_back(randn({batch, 1}, gen));
  }
  const Variable h0(zeros({batch, hidden}));
  const int64_t base = memory_stats().live_bytes;
  fmt::print("tanh RNN, input {}, hidden {}, batch {}, float32; a loss at every step; T = {}\n\n", input, hidden, batch,
             T);

  // 1. Full BPTT: one graph over all T steps.
  MemoryReport full;
  int64_t full_peak = 0;
  {
    reset_peak_memory();
    MemoryMeter meter;
    Variable h = h0;
    Variable loss = unroll_window(net, xs, ys, h, 0, T);
    h = Variable();  // hold only the root while measuring (the last state is in the graph)
    full = meter.report(loss);
    loss.backward();
    full_peak = memory_stats().peak_bytes - base;
  }
  const StepMemory& mid = full.steps[full.steps.size() / 2];
  fmt::print("full BPTT: {} nodes, {} kept for backward ({} per step: {} nodes, {} tensors)\n", full.nodes(),
             plot::format_bytes(static_cast<double>(full.bytes())), plot::format_bytes(static_cast<double>(mid.bytes())),
             mid.nodes, mid.tensors);
  if (print_table) fmt::print("\n{}\n", full.table());
  else {  // the first and last rows
    const std::string table = full.table();
    std::vector<std::string> lines;
    for (size_t at = 0, nl; (nl = table.find('\n', at)) != std::string::npos; at = nl + 1)
      lines.push_back(table.substr(at, nl - at));
    for (size_t i = 0; i < lines.size(); ++i)
      if (i < 5 || i + 3 >= lines.size()) fmt::print("  {}\n", lines[i]);
      else if (i == 5) fmt::print("  {:>6}\n", "...");
    fmt::print("  (--table prints every row)\n");
  }

  // 2. Truncated BPTT: a graph per window, the state detached between windows.
  std::vector<double> trunc_running(static_cast<size_t>(T), 0.0);
  int64_t trunc_max = 0, trunc_peak = 0;
  {
    reset_peak_memory();
    Variable h = h0;
    for (int64_t t0 = 0; t0 < T; t0 += window) {
      const int64_t n = std::min(window, T - t0);
      MemoryMeter meter;
      Variable loss = unroll_window(net, xs, ys, h, t0, n);
      Variable last = h;
      h = Variable();
      const MemoryReport r = meter.report(loss);
      trunc_max = std::max(trunc_max, r.bytes());
      double running = 0;
      for (const StepMemory& m : r.steps) {
        running += static_cast<double>(m.bytes());
        if (m.step >= 0) trunc_running[static_cast<size_t>(m.step)] = running;
      }
      loss.backward();
      h = last.detach();
    }
    trunc_peak = memory_stats().peak_bytes - base;
  }
  fmt::print("\ntruncated BPTT, windows of {}: at most {} kept for backward at once ({:.1f}x less)\n", window,
             plot::format_bytes(static_cast<double>(trunc_max)),
             static_cast<double>(full.bytes()) / static_cast<double>(trunc_max));
  fmt::print("measured peak of live tensor memory above the data and weights, forward + backward "
             "(memory_stats): full {}, truncated {}\n",
             plot::format_bytes(static_cast<double>(full_peak)), plot::format_bytes(static_cast<double>(trunc_peak)));

  // Figures.
  std::vector<std::string> cats;
  for (int64_t t = 0; t < T; ++t) cats.push_back(std::to_string(t));
  plot::BarChart per_step;
  per_step.title = fmt::format("full BPTT: memory kept for backward per step (T = {}, hidden {}, batch {})", T, hidden,
                               batch);
  per_step.xlabel = "time step t (StepScope label)";
  per_step.ylabel = "bytes kept until backward";
  per_step.categories = cats;
  per_step.stacked = true;
  per_step.add("saved by backward functions", bytes_by_step(full, 0, T, true), "#4477aa");
  per_step.add("values still held by a Variable", bytes_by_step(full, 0, T, false), "#ccbb44");
  per_step.save(out + "/memory_per_step.svg");

  std::vector<double> full_running(static_cast<size_t>(T), 0.0);
  {
    double running = 0;
    for (const StepMemory& m : full.steps) {
      running += static_cast<double>(m.bytes());
      if (m.step >= 0) full_running[static_cast<size_t>(m.step)] = running;
    }
  }
  plot::BarChart trunc;
  trunc.title = fmt::format("graph memory once the forward reaches step t: full BPTT vs windows of {}", window);
  trunc.xlabel = "time step t";
  trunc.ylabel = "bytes the graph holds";
  trunc.categories = cats;
  trunc.add(fmt::format("full BPTT (one backward after {} steps)", T), full_running, "#4477aa");
  trunc.add(fmt::format("truncated BPTT (a backward every {} steps)", window), trunc_running, "#ee6677");
  trunc.save(out + "/memory_truncation.svg");

  // A small graph with the module names (what write_dot / write_html show with .names).
  {
    Variable h = h0;
    Variable loss = unroll_window(net, xs, ys, h, 0, std::min<int64_t>(3, T));
    write_dot(loss, out + "/memory_graph.dot",
              {.title = "3 steps of the RNN, parameters by module name", .names = net.named_parameters()});
  }
  fmt::print("\nfigures:\n  {0}/memory_per_step.svg\n  {0}/memory_truncation.svg\n  {0}/memory_graph.dot\n", out);

  if (json) {
    JsonLine j;
    j.add("T", static_cast<double>(T)).add("window", static_cast<double>(window));
    j.add("full_nodes", static_cast<double>(full.nodes())).add("full_bytes", static_cast<double>(full.bytes()));
    j.add("step_nodes", static_cast<double>(mid.nodes)).add("step_bytes", static_cast<double>(mid.bytes()));
    j.add("window_bytes_max", static_cast<double>(trunc_max));
    j.add("full_peak_bytes", static_cast<double>(full_peak)).add("truncated_peak_bytes", static_cast<double>(trunc_peak));
    fmt::print("{}\n", j.str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return guarded_main("memory", argc, argv, run, on_error<unroll::Error>(ErrorPrefix::argv0, 2));
}
