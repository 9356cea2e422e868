// Downstream smoke test: an outside project that did find_package(unroll) builds a small
// graph, back-propagates and checks one gradient against the formula.
#include <unroll.h>

#include <cmath>

int main() {
  using namespace unroll;
  Variable x(tensor({0.5, -1.0}, {2}), true);
  Variable y = sum(tanh(x) * 3.0);
  y.backward();
  const double expected = 3.0 * (1.0 - std::tanh(0.5) * std::tanh(0.5));
  const double got = x.grad().at({0});
  fmt::print("consumer: d/dx sum(3 tanh x) at 0.5 = {:.6f} (expected {:.6f})\n", got, expected);
  return std::abs(got - expected) < 1e-5 ? 0 : 1;
}
