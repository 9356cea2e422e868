#pragma once
// Basic layers, with PyTorch's parameter names, shapes and default initialisation.
#include "autograd/ops.h"
#include "nn/module.h"

#include <optional>

namespace unroll {

/// y = x W^T + b (torch.nn.Linear). weight [out, in], bias [out]; both U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Variable forward(const Variable& x) const;  ///< x [..., in] -> [..., out]
  Variable operator()(const Variable& x) const { return forward(x); }
  Variable weight, bias;
};

/// A lookup table (torch.nn.Embedding): weight [num_embeddings, dim] ~ N(0, 1). The row of
/// padding_idx starts at zero and receives no gradient.
class Embedding : public Module {
public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt);
  /// idx: an int64 tensor of any shape -> [idx.shape..., dim]
  Variable forward(const Tensor& idx) const;
  Variable operator()(const Tensor& idx) const { return forward(idx); }
  Variable weight;
  std::optional<int64_t> padding_idx;
};

/// Zeroes each element with probability p in training mode and scales the rest by
/// 1/(1-p) (torch.nn.Dropout); the identity in eval mode. The masks come from its own
/// generator, seeded from default_generator() at construction.
class Dropout : public Module {
public:
  explicit Dropout(double p = 0.5);
  Variable forward(const Variable& x);
  Variable operator()(const Variable& x) { return forward(x); }
  double p;
  /// The mask generator; save generator().get_state() with a checkpoint to resume exactly.
  Generator& generator() { return gen_; }
private:
  Generator gen_;
};

/// Normalises over the last dimension: (x - mean) / sqrt(var + eps) * weight + bias
/// (torch.nn.LayerNorm(normalized_shape=[dim]), biased variance). weight ones, bias zeros.
class LayerNorm : public Module {
public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool elementwise_affine = true);
  Variable forward(const Variable& x) const;
  Variable operator()(const Variable& x) const { return forward(x); }
  Variable weight, bias;
  double eps;
};

/// Activations as modules (for composing models); the functions tanh/relu/sigmoid are the same.
struct Tanh : Module {
  Variable forward(const Variable& x) const { return tanh(x); }
};
struct ReLU : Module {
  Variable forward(const Variable& x) const { return relu(x); }
};
struct Sigmoid : Module {
  Variable forward(const Variable& x) const { return sigmoid(x); }
};

/// A dropout mask as a tensor: 0 with probability p, else 1/(1-p). Shared by Dropout and
/// the sequence modules' between-layer dropout.
Tensor dropout_mask(const Shape& shape, double p, DType dtype, Generator& gen);

}  // namespace unroll
