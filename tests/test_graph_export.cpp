// Graph export with module names (to_dot / to_html with names), and the per-step memory
// meter (MemoryMeter, Note [memory per step] in autograd/graph.cpp).
#include <doctest/doctest.h>
#include <unroll.h>

#include <regex>
#include <string>

using namespace unroll;

namespace {

struct Net : Module {
  std::shared_ptr<RNN> rnn = register_module("rnn", std::make_shared<RNN>(RNNOptions{.input_size = 1, .hidden_size = 3}));
  std::shared_ptr<Linear> head = register_module("head", std::make_shared<Linear>(3, 1));
};

// The DOT line of the node whose label starts with `label`.
std::string dot_line(const std::string& dot, const std::string& label) {
  const size_t at = dot.find("label=\"" + label);
  if (at == std::string::npos) return {};
  const size_t begin = dot.rfind('\n', at) + 1;
  return dot.substr(begin, dot.find('\n', at) - begin);
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("to_dot names leaves by their module names and marks parameters and inputs") {
  manual_seed(3);
  Net net;
  Variable x(zeros({4, 2, 1}));                           // [T,B,I], no grad: not recorded
  Variable h0(zeros({1, 2, 3}), /*requires_grad=*/true);  // an input that requires grad
  Variable loss = sum(net.head->forward(net.rnn->forward(x, h0).output));

  const std::string plain = to_dot(loss);  // without names: leaves are "leaf", as before
  CHECK(plain.find("rnn.weight_ih_l0") == std::string::npos);
  CHECK(plain.find("label=\"leaf\\n[3,1]\"") != std::string::npos);

  const std::string dot = to_dot(loss, {.names = net.named_parameters()});
  for (const char* name : {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0", "head.weight",
                           "head.bias"}) {
    const std::string line = dot_line(dot, name);
    CAPTURE(name);
    CHECK(line.find("shape=ellipse") != std::string::npos);  // parameter: green ellipse
    CHECK(line.find("#b8e0b8") != std::string::npos);
  }
  CHECK(dot_line(dot, "rnn.weight_ih_l0\\n[3,1]").size() > 0);
  CHECK(dot.find("label=\"leaf") == std::string::npos);  // every leaf is a parameter or an input now
  // h0: a leaf that requires grad but is no module parameter -> an input parallelogram.
  const std::string input = dot_line(dot, "input\\n[1,2,3]");
  CHECK(input.find("shape=parallelogram") != std::string::npos);
  CHECK(input.find("#f7e3a1") != std::string::npos);
  // x does not require grad: the graph keeps no edge to it, so each op slot it fed is an
  // "input (no grad)" placeholder: one here, the rnn's input projection of all steps at
  // once (Note [input projections] in nn/recurrent.h), + the legend's.
  CHECK(count(dot, "label=\"input\\n(no grad)\", shape=parallelogram, style=\"dashed") == 1 + 1);
  // The legend explains every mark.
  CHECK(dot.find("subgraph cluster_legend") != std::string::npos);
  CHECK(dot.find("parameter\\n(module name)") != std::string::npos);
  CHECK(dot.find("input\\n(requires grad)") != std::string::npos);
  CHECK(to_dot(loss, {.legend = false}).find("cluster_legend") == std::string::npos);

  // set_name wins over the module name.
  Variable w = net.rnn->named_parameters()[1].second;  // weight_hh_l0
  w.set_name("W_hh (mine)");
  const std::string renamed = to_dot(loss, {.names = net.named_parameters()});
  CHECK(renamed.find("rnn.weight_hh_l0") == std::string::npos);
  CHECK(dot_line(renamed, "W_hh (mine)").find("shape=ellipse") != std::string::npos);
}

TEST_CASE("to_html carries module names and the parameter/input kind") {
  manual_seed(4);
  Net net;
  Variable h0(zeros({1, 1, 3}), true);
  Variable loss = sum(net.head->forward(net.rnn->forward(Variable(zeros({3, 1, 1})), h0).output));
  const std::string page = to_html(loss, {.title = "named", .names = net.named_parameters()});
  CHECK(page.find("\"name\":\"rnn.weight_ih_l0\",\"kind\":\"parameter\"") != std::string::npos);
  CHECK(page.find("\"name\":\"head.bias\",\"kind\":\"parameter\"") != std::string::npos);
  CHECK(count(page, "\"kind\":\"input\"") == 1);  // h0
  CHECK(count(page, "\"kind\":\"parameter\"") == 6);
  const std::string unnamed = to_html(loss);
  CHECK(unnamed.find("rnn.weight_ih_l0") == std::string::npos);
  CHECK(count(unnamed, "\"kind\":\"leaf\"") == 7);
}

// ---- the memory meter ----------------------------------------------------------------------

namespace {

// A tanh RNN cell (B=2, I=3, H=4, float32) unrolled T steps from a given state, under
// StepScope(t). Per step the cell records linear (its input projection x W_ih^T + b_ih),
// add_linear (+ h W_hh^T + b_hh) and tanh.
Variable unroll_cell(RNNCell& cell, const std::vector<Variable>& xs, Variable h, int t0, int T) {
  for (int t = t0; t < t0 + T; ++t) {
    StepScope step(t);
    h = cell.forward(xs[static_cast<size_t>(t)], h);
  }
  return h;
}

}  // namespace

TEST_CASE("MemoryMeter: a tiny RNN's nodes and bytes per step equal the hand count") {
  manual_seed(5);
  constexpr int64_t B = 2, I = 3, H = 4;
  constexpr int T = 6;
  RNNCell cell(I, H);
  Generator gen(1);
  std::vector<Variable> xs;
  for (int t = 0; t < T; ++t) xs.emplace_back(randn({B, I}, gen));  // made before the meter
  Variable h0(zeros({B, H}));

  MemoryMeter meter;
  Variable loss = sum(unroll_cell(cell, xs, h0, 0, T));  // outside any step
  const MemoryReport r = meter.report(loss);
  MESSAGE("\n" << r.table());
  // By hand: per step, 3 nodes (linear, add_linear, tanh). Saved: linear keeps x_t and
  // W_ih, add_linear h_{t-1} and W_hh (all made before the step: x_t and the weights
  // before the meter, h_{t-1} by the step before); tanh keeps its output h_t [B,H] float32
  // = 32 bytes, which step t+1's add_linear keeps too (the same storage, counted once).
  // The outputs of linear and add_linear are freed when the cell returns (nobody holds or
  // saved them). So 1 tensor of 32 bytes per step, saved state (no
  // handle to any h_t is left once the loop moved on, and the last one was only a
  // temporary passed to sum). Outside the steps: sum's output, 4 bytes, held by `loss`.
  REQUIRE(r.steps.size() == T + 1);
  CHECK(r.steps[0].step == -1);
  CHECK(r.steps[0].nodes == 1);
  CHECK(r.steps[0].tensors == 1);
  CHECK(r.steps[0].value_bytes == 4);
  CHECK(r.steps[0].saved_bytes == 0);
  for (int t = 0; t < T; ++t) {
    const StepMemory& m = r.steps[static_cast<size_t>(t + 1)];
    CAPTURE(t);
    CHECK(m.step == t);
    CHECK(m.nodes == 3);
    CHECK(m.tensors == 1);
    CHECK(m.saved_bytes == B * H * 4);
    CHECK(m.value_bytes == 0);
  }
  CHECK(r.nodes() == 3 * T + 1);
  CHECK(r.bytes() == T * B * H * 4 + 4);
  CHECK(r.table().find("running B") != std::string::npos);

  // Sound: what the meter counts is exactly what freeing the graph gives back.
  const int64_t before = memory_stats().live_bytes;
  loss = Variable();
  CHECK(before - memory_stats().live_bytes == r.bytes());
}

TEST_CASE("MemoryMeter: values held by handles, shared storage counted once, truncation saves") {
  manual_seed(6);
  constexpr int64_t B = 2, I = 3, H = 4;
  RNNCell cell(I, H);
  Generator gen(2);
  std::vector<Variable> xs;
  for (int t = 0; t < 8; ++t) xs.emplace_back(randn({B, I}, gen));

  SUBCASE("a held hidden state is a value; a reshape of it adds nothing") {
    MemoryMeter meter;
    std::vector<Variable> hs;
    Variable h(zeros({B, H}));
    for (int t = 0; t < 3; ++t) {
      StepScope step(t);
      h = cell.forward(xs[static_cast<size_t>(t)], h);
      hs.push_back(h);
      hs.push_back(reshape(h, {H, B}));  // shares h's storage: a node, no new bytes
    }
    Variable loss = sum(hs[5]);
    const MemoryReport r = meter.report(loss);
    for (int t = 0; t < 3; ++t) {
      const StepMemory& m = r.steps[static_cast<size_t>(t + 1)];
      CAPTURE(t);
      CHECK(m.nodes == (t == 2 ? 4 : 3));  // linear, add_linear, tanh (+ the reshape loss is made from)
      CHECK(m.tensors == 1);
      CHECK(m.value_bytes == B * H * 4);  // held by hs[2t] (and the reshape's node)
      CHECK(m.saved_bytes == 0);
    }
  }

  SUBCASE("a custom op's capture is saved state of its step") {
    Variable w(ones({5}), true);
    MemoryMeter meter;
    Variable y;
    {
      StepScope step(7);
      const Tensor scale = full({5}, 2.0);  // 20 bytes, only the lambda keeps it
      y = record("scaled", w.data() * scale, {w}, [scale](const Tensor& dy, Grads& g) { g.add(0, dy * scale); });
    }
    const MemoryReport r = meter.report(y);
    REQUIRE(r.steps.size() == 1);
    CHECK(r.steps[0].step == 7);
    CHECK(r.steps[0].nodes == 1);
    CHECK(r.steps[0].value_bytes == 20);  // y, held by its handle
    CHECK(r.steps[0].saved_bytes == 20);  // scale
    y.backward(ones({5}));                // backward frees what the lambda saved
    CHECK(meter.report(y).bytes() == 20 + 20);  // y's value and w's new gradient (made after the meter)
  }

  SUBCASE("truncated BPTT: a window of 4 keeps 4 steps, full BPTT all 8") {
    Variable h0(zeros({B, H}));
    int64_t full_bytes = 0, window_bytes = 0;
    {
      MemoryMeter meter;
      Variable loss = sum(unroll_cell(cell, xs, h0, 0, 8));
      full_bytes = meter.report(loss).bytes();
    }
    {
      Variable h = h0;
      for (int t0 = 0; t0 < 8; t0 += 4) {
        MemoryMeter meter;
        Variable last = unroll_cell(cell, xs, h, t0, 4);
        Variable loss = sum(last);
        const MemoryReport r = meter.report(loss);
        CHECK(r.steps.front().step == -1);
        CHECK(r.steps[1].step == t0);
        CHECK(r.nodes() == 3 * 4 + 1);  // per step: linear, add_linear, tanh
        window_bytes = std::max(window_bytes, r.bytes());
        loss.backward();
        h = last.detach();
      }
    }
    CHECK(full_bytes == 8 * B * H * 4 + 4);
    CHECK(window_bytes == 4 * B * H * 4 + 4);
    CHECK(window_bytes < full_bytes);
  }
}

TEST_CASE("MemoryMeter: nested meters each see their own allocations; bad input named") {
  Variable w(ones({3}), true);
  MemoryMeter outer;
  Variable a = w * 2.0;
  int64_t inner_bytes = 0;
  {
    MemoryMeter inner;
    Variable b = a * 3.0;
    inner_bytes = inner.report(b).bytes();
    CHECK(outer.report(b).bytes() == 2 * 12);  // a and b
  }
  CHECK(inner_bytes == 12);  // b only
  CHECK_THROWS_WITH_AS(outer.report(Variable()), "MemoryMeter::report: the Variable is undefined", Error);
}
