// Pieces the train-step benchmarks share (bench_rnn, bench_transformer): the recurrent
// language model of every recurrent workload and the best-of-N step timer. Header-only,
// benchmarks only.
#pragma once

#include <unroll.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

namespace unroll_bench {

enum class Kind { Lstm, Gru, Rnn };
inline const char* kind_name(Kind k) { return k == Kind::Lstm ? "lstm" : k == Kind::Gru ? "gru" : "rnn"; }

/// Embedding -> one recurrent layer -> Linear: idx [T,B] -> logits [T*B, V]. Parameters
/// emb.*, rnn.*, head.*, made in that order (so a seed gives the same weights as before).
class LanguageModel : public unroll::Module {
public:
  LanguageModel(Kind kind, int64_t V, int64_t E, int64_t H) {
    using namespace unroll;
    emb_ = register_module("emb", std::make_shared<Embedding>(V, E));
    std::shared_ptr<RecurrentStack> rnn;
    if (kind == Kind::Lstm) rnn = std::make_shared<LSTM>(LSTMOptions{.input_size = E, .hidden_size = H});
    if (kind == Kind::Gru) rnn = std::make_shared<GRU>(GRUOptions{.input_size = E, .hidden_size = H});
    if (kind == Kind::Rnn) rnn = std::make_shared<RNN>(RNNOptions{.input_size = E, .hidden_size = H});
    rnn_ = register_module("rnn", rnn);
    head_ = register_module("head", std::make_shared<Linear>(H, V));
  }
  unroll::Variable forward(const unroll::Tensor& idx, const std::vector<int64_t>& lengths = {}) {
    const unroll::Variable h = rnn_->forward((*emb_)(idx), {}, lengths).output;  // [T,B,H]
    return (*head_)(unroll::reshape(h, {-1, h.size(2)}));
  }

private:
  std::shared_ptr<unroll::Embedding> emb_;
  std::shared_ptr<unroll::RecurrentStack> rnn_;
  std::shared_ptr<unroll::Linear> head_;
};

/// Best milliseconds of `steps` calls of step(), after one warm-up call.
template <typename Step>
double best_ms(int steps, Step&& step) {
  using Clock = std::chrono::steady_clock;
  step();
  double best = 1e30;
  for (int s = 0; s < steps; ++s) {
    const auto t0 = Clock::now();
    step();
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return best;
}

}  // namespace unroll_bench
