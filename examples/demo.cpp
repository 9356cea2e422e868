// The main demo (for now): tensors, a recorded forward pass, backward, and gradcheck —
// the three things the engine is for. Later the tour of the sequence tasks replaces it.
#include <unroll.h>

#include <cstdio>

using namespace unroll;

int main() {
  fmt::print("unroll demo: a tanh RNN of 5 steps, hidden size 3, back-propagated through time\n\n");

  // Data: one sequence of 5 scalar inputs; weights from a seeded generator.
  Generator gen(0);
  Variable w_ih(randn({3, 1}, gen) * 0.5, true);
  Variable w_hh(randn({3, 3}, gen) * 0.5, true);
  Variable b(zeros({3}), true);
  w_ih.set_name("weight_ih");
  w_hh.set_name("weight_hh");
  b.set_name("bias");
  const Tensor xs = tensor({0.5, -1.0, 0.25, 0.8, -0.3}, {5, 1, 1});

  // Forward: an ordinary loop; every op is recorded.
  Variable h(zeros({1, 3}));
  for (int t = 0; t < 5; ++t) {
    StepScope step(t);  // label the nodes of this step (for the graph picture)
    Variable x(narrow(xs, 0, t, 1).reshape({1, 1}));
    h = tanh(linear(x, w_ih) + linear(h, w_hh, b));
  }
  Variable loss = sum(h * h);
  fmt::print("h_5 = {}\nloss = {:.6f}, graph of {} nodes\n\n", h.data(), loss.item(), graph_size(loss));

  // Backward: one call walks the unrolled graph in reverse (BPTT).
  write_dot(loss, "demo_graph.dot", {.title = "5-step tanh RNN"});
  loss.backward();
  fmt::print("dloss/dW_hh = {}\n\n", w_hh.grad());

  // Gradcheck: the same computation in float64 against central differences.
  auto rnn_loss = [&](const std::vector<Variable>& p) {
    Variable hh(zeros({1, 3}, DType::F64));
    for (int t = 0; t < 5; ++t) {
      Variable x(narrow(xs, 0, t, 1).reshape({1, 1}).to(DType::F64));
      hh = tanh(linear(x, p[0]) + linear(hh, p[1], p[2]));
    }
    return sum(hh * hh);
  };
  GradcheckResult r = gradcheck(rnn_loss, {w_ih.data(), w_hh.data(), b.data()});
  fmt::print("{}", r.summary());
  fmt::print("\nThe graph is in demo_graph.dot (render: dot -Tsvg demo_graph.dot -o graph.svg).\n");
  return r.ok ? 0 : 1;
}
