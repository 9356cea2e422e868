#pragma once
// Initialisers (torch.nn.init): each fills a parameter in place from a generator
// (default: default_generator(), see manual_seed).
#include "autograd/variable.h"

namespace unroll::init {

/// fan_in and fan_out of a weight as PyTorch computes them: for [out, in, ...],
/// fan_in = in * receptive field, fan_out = out * receptive field.
std::pair<int64_t, int64_t> fans(const Shape& shape);

void uniform_(Variable& p, double lo, double hi, Generator& gen = default_generator());
void normal_(Variable& p, double mean = 0.0, double stdev = 1.0, Generator& gen = default_generator());
void constant_(Variable& p, double value);
void zeros_(Variable& p);
void ones_(Variable& p);
/// U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))
void xavier_uniform_(Variable& p, double gain = 1.0, Generator& gen = default_generator());
/// N(0, s), s = gain * sqrt(2 / (fan_in + fan_out))
void xavier_normal_(Variable& p, double gain = 1.0, Generator& gen = default_generator());
/// U(-b, b), b = sqrt(6 / ((1 + a^2) fan_in)) (leaky-relu gain with slope a; PyTorch's mode fan_in)
void kaiming_uniform_(Variable& p, double a = 0.0, Generator& gen = default_generator());
/// N(0, s), s = sqrt(2 / ((1 + a^2) fan_in))
void kaiming_normal_(Variable& p, double a = 0.0, Generator& gen = default_generator());
/// A (semi-)orthogonal matrix times gain, from the QR decomposition of a Gaussian matrix
/// (rows of a [rows, cols] weight are orthonormal when rows <= cols, columns otherwise).
void orthogonal_(Variable& p, double gain = 1.0, Generator& gen = default_generator());

}  // namespace unroll::init
