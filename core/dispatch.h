#pragma once
// Internal: calling a kernel template with the C++ element type of a runtime DType. Used by
// the core .cpp files (not part of the public API; not included by unroll.h).
//
//   dispatch_float(op, t.dtype(), [&]<typename T>() { ... T is float or double ... });
//
// Kernels are written once as templates over the element type; these helpers pick the
// instantiation and give the one error message for a dtype the op does not take.
#include "core/tensor.h"

#include <cstdint>

namespace unroll::detail {

inline void check_defined(const char* op, const Tensor& t) {
  UNROLL_CHECK(t.defined(), "{}: the tensor is undefined", op);
}

inline void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  UNROLL_CHECK(a.dtype() == b.dtype(), "{}: dtypes {} and {} differ (shapes {} and {})", op, a.dtype(), b.dtype(),
               a.shape(), b.shape());
}

/// A tensor of shape s viewed as [outer, n, inner] around `axis` (reductions, softmax,
/// concat, gather...).
struct Axis3 {
  int64_t outer = 1, n = 1, inner = 1;
};

inline Axis3 view3(const Shape& s, int axis) {
  Axis3 v;
  for (int d = 0; d < axis; ++d) v.outer *= s[d];
  v.n = s[axis];
  for (int d = axis + 1; d < s.ndim(); ++d) v.inner *= s[d];
  return v;
}

/// Calls f.template operator()<T>() with T = float or double; int64 and bool are rejected.
template <typename F>
void dispatch_float(const char* op, DType dt, F&& f) {
  switch (dt) {
    case DType::F32: f.template operator()<float>(); return;
    case DType::F64: f.template operator()<double>(); return;
    case DType::I64:
    case DType::Bool: break;
  }
  fail("{}: expected a floating tensor, got {}", op, dt);
}

/// Calls f.template operator()<T>() with T = float, double, int64_t or bool.
template <typename F>
void dispatch_any(DType dt, F&& f) {
  switch (dt) {
    case DType::F32: f.template operator()<float>(); return;
    case DType::F64: f.template operator()<double>(); return;
    case DType::I64: f.template operator()<int64_t>(); return;
    case DType::Bool: f.template operator()<bool>(); return;
  }
}

/// Calls f.template operator()<E>() with an unsigned integer type of the element's size
/// (for kernels that only move elements: copies, gathers, transposes).
template <typename F>
void dispatch_bytes(DType dt, F&& f) {
  switch (dtype_size(dt)) {
    case 1: f.template operator()<uint8_t>(); return;
    case 4: f.template operator()<uint32_t>(); return;
    default: f.template operator()<uint64_t>(); return;
  }
}

}  // namespace unroll::detail
