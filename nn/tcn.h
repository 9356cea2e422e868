#pragma once
// A temporal convolutional network (Bai, Kolter and Koltun 2018, "An Empirical Evaluation of
// Generic Convolutional and Recurrent Networks for Sequence Modeling"), composed of the
// layers in nn/conv.h. No backward code: autograd differentiates the composition.
//
// Level i is a residual block with dilation 2^i:
//   h   = dropout(relu(conv1(causal_pad(x))))       conv1: Conv1d(in, out, K, dilation 2^i)
//   h   = dropout(relu(conv2(causal_pad(h))))       conv2: Conv1d(out, out, K, dilation 2^i)
//   out = relu(h + (in == out ? x : downsample(x)))  downsample: Conv1d(in, out, 1)
// causal_pad puts (K - 1) 2^i zeros on the left of the time axis only, so output t sees
// inputs 0..t and nothing later. The receptive field of L levels is 1 + 2 (K - 1)(2^L - 1).
// Left out from the paper: weight normalisation (the paper wraps each conv in it) and the
// paper's N(0, 0.01) init (PyTorch's Conv1d default is kept, so that the plain layers are
// the only init in play).
#include "nn/conv.h"
#include "nn/layers.h"

#include <memory>
#include <vector>

namespace unroll {

class TemporalBlock : public Module {
public:
  TemporalBlock(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t dilation, double dropout);
  Variable forward(const Variable& x);  ///< [B, in, T] -> [B, out, T]
  Variable operator()(const Variable& x) { return forward(x); }
  std::shared_ptr<Conv1d> conv1, conv2, downsample;  // downsample: null when in == out
  std::shared_ptr<Dropout> dropout1, dropout2;
  int64_t kernel_size, dilation;
};

struct TCNOptions {
  int64_t kernel_size = 2;
  double dropout = 0.0;
};

/// Parameters are named blocks.<level>.conv1.weight, blocks.<level>.conv2.bias,
/// blocks.<level>.downsample.weight, ... (a torch module list named `blocks` of blocks with
/// those attributes loads them with strict=True).
class TCN : public Module {
public:
  /// channels[i] is the width of level i; the output has channels.back() channels.
  TCN(int64_t input_size, std::vector<int64_t> channels, TCNOptions options = {});
  Variable forward(const Variable& x);  ///< [B, input_size, T] -> [B, channels.back(), T]
  Variable operator()(const Variable& x) { return forward(x); }
  /// How many past inputs (the current one included) each output can see.
  int64_t receptive_field() const;
  std::vector<std::shared_ptr<TemporalBlock>> blocks;
  TCNOptions options;
};

}  // namespace unroll
