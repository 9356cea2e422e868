#include "nn/layers.h"

#include "autograd/ops.h"
#include "nn/init.h"

#include <cmath>

namespace unroll {

Linear::Linear(int64_t in_features, int64_t out_features, bool has_bias) {
  UNROLL_CHECK(in_features > 0 && out_features > 0, "Linear: sizes must be positive, got in={} out={}", in_features,
               out_features);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  weight = register_parameter("weight", zeros({out_features, in_features}));
  init::kaiming_uniform_(weight, std::sqrt(5.0));  // PyTorch's default: U(-1/sqrt(in), 1/sqrt(in))
  if (has_bias) {
    bias = register_parameter("bias", zeros({out_features}));
    init::uniform_(bias, -bound, bound);
  }
}

Variable Linear::forward(const Variable& x) const { return linear(x, weight, bias); }

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding)
    : padding_idx(padding) {
  UNROLL_CHECK(num_embeddings > 0 && embedding_dim > 0, "Embedding: sizes must be positive, got {} x {}",
               num_embeddings, embedding_dim);
  if (padding_idx) {
    if (*padding_idx < 0) *padding_idx += num_embeddings;
    UNROLL_CHECK(*padding_idx >= 0 && *padding_idx < num_embeddings,
                 "Embedding: padding_idx {} is out of range for {} embeddings", *padding, num_embeddings);
  }
  weight = register_parameter("weight", zeros({num_embeddings, embedding_dim}));
  init::normal_(weight);
  if (padding_idx) {
    NoGradGuard ng;
    Tensor& w = weight.data();
    float* row = w.data<float>() + *padding_idx * embedding_dim;
    std::fill(row, row + embedding_dim, 0.0f);  // parameters start as float32
  }
}

Variable Embedding::forward(const Tensor& idx) const {
  UNROLL_CHECK(idx.defined(), "Embedding: the indices are undefined");
  UNROLL_CHECK(idx.dtype() == DType::I64, "Embedding: indices must be int64, got {}", idx.dtype());
  const int64_t num = weight.shape()[0], dim = weight.shape()[1];
  const int64_t* all_ids = idx.data<int64_t>();
  for (int64_t i = 0; i < idx.numel(); ++i) {
    const int64_t id = all_ids[i];
    UNROLL_CHECK(id >= 0 && id < num, "Embedding: index {} at position {} of indices {} is out of range for {} embeddings",
                 id, i, idx.shape(), num);
  }
  Shape out_shape = idx.shape();
  out_shape.push_back(dim);
  Variable rows = index_select(weight, 0, idx.reshape({-1}));  // [N, dim]
  if (padding_idx) {
    // Multiplying the padding rows by 0 keeps their gradient at zero (the value already is).
    Tensor keep = Tensor::empty({idx.numel(), 1}, DType::F64);
    const int64_t* ids = idx.data<int64_t>();
    for (int64_t i = 0; i < idx.numel(); ++i) keep.data<double>()[i] = ids[i] == *padding_idx ? 0.0 : 1.0;
    keep = keep.to(weight.dtype());
    rows = rows * Variable(keep);
  }
  return reshape(rows, out_shape);
}

Tensor dropout_mask(const Shape& shape, double p, DType dtype, Generator& gen) {
  UNROLL_CHECK(p >= 0.0 && p <= 1.0, "dropout_mask: p must be in [0, 1], got {}", p);
  UNROLL_CHECK(dtype != DType::I64, "dropout_mask: dtype must be float32 or float64, got {}", dtype);
  Tensor u = rand(shape, gen, DType::F64);
  double* d = u.data<double>();
  const double scale = 1.0 / (1.0 - p);
  for (int64_t i = 0; i < u.numel(); ++i) d[i] = d[i] < p ? 0.0 : scale;
  return u.to(dtype);
}

Dropout::Dropout(double prob) : p(prob), gen_(default_generator().next_u64()) {
  UNROLL_CHECK(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got {}", p);
}

Variable Dropout::forward(const Variable& x) {
  if (!is_training() || p == 0.0) return x;
  UNROLL_CHECK(x.data().is_floating(), "Dropout: input must be float32 or float64, got {}", x.dtype());
  if (p == 1.0) return x * 0.0;
  return x * Variable(dropout_mask(x.shape(), p, x.dtype(), gen_));
}

LayerNorm::LayerNorm(int64_t dim, double eps_, bool elementwise_affine) : eps(eps_) {
  UNROLL_CHECK(dim > 0, "LayerNorm: dim must be positive, got {}", dim);
  UNROLL_CHECK(eps >= 0, "LayerNorm: eps must be >= 0, got {}", eps);
  if (elementwise_affine) {
    weight = register_parameter("weight", ones({dim}));
    bias = register_parameter("bias", zeros({dim}));
  }
}

Variable LayerNorm::forward(const Variable& x) const {
  UNROLL_CHECK(x.ndim() >= 1, "LayerNorm: input {} must have at least one dimension", x.shape());
  const int64_t dim = weight.defined() ? weight.shape()[0] : x.shape()[x.ndim() - 1];
  UNROLL_CHECK(x.shape()[x.ndim() - 1] == dim, "LayerNorm: input {} does not end in {}", x.shape(), dim);
  UNROLL_CHECK(dim > 0, "LayerNorm: input {} has an empty last dimension", x.shape());
  UNROLL_CHECK(!weight.defined() || x.dtype() == weight.dtype(),
               "LayerNorm: input is {} but the parameters are {} (convert with module.to())", x.dtype(), weight.dtype());
  Variable centred = x - mean(x, -1, true);
  Variable var = mean(centred * centred, -1, true);
  Variable y = centred / sqrt(var + eps);
  if (weight.defined()) y = y * weight + bias;
  return y;
}

}  // namespace unroll
