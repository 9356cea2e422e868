#pragma once
// Internal (not part of the public API; not included by unroll.h): how the convolution
// (core/conv.cpp) and pooling (core/pool.cpp) kernels name sizes and shapes. Both compute
// in 2-D, a 1-D op's [B, C, T] being [B, C, 1, T] inside, and say it the user's way.
#include "core/conv.h"

#include <string>

namespace unroll::detail {

/// A size pair as the user wrote it: "(h, w)", or "w" for a 1-D op.
inline std::string str2(Size2 s, bool one_d) {
  return one_d ? fmt::format("{}", s.w) : fmt::format("({}, {})", s.h, s.w);
}

/// Shapes as the user wrote them: a 1-D op's [B, C, 1, T] is shown as [B, C, T].
inline Shape shown(const Shape& s, bool one_d) {
  if (!one_d || s.ndim() != 4) return s;
  return Shape({s[0], s[1], s[3]});
}

/// [B, C, T] -> [B, C, 1, T]: a 1-D operand in the 2-D kernels' layout.
inline Shape as_2d(const Shape& s) { return Shape({s[0], s[1], 1, s[2]}); }

}  // namespace unroll::detail
