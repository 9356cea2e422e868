// to_string: PyTorch-like text for a tensor.
//
//   tensor([[ 0.1000, -2.0000],
//           [ 1.5000,  3.0000]], shape=[2,2], dtype=float32)
//
// Like torch: floats get 4 decimals, or scientific notation (1.0000e+05) when the largest
// and smallest nonzero finite magnitudes are more than 1000 apart, the largest exceeds 1e8
// or the smallest is below 1e-4; every value is right-aligned to the widest one; rows wrap
// at 80 columns; tensors with more than 1000 elements show the first and last 3 entries
// along each dimension around "...". Unlike torch, integral floats still get 4 decimals
// ("2.0000", not "2.") and shape and dtype are always shown.
#include "core/tensor.h"

#include <algorithm>
#include <cmath>

namespace unroll {
namespace {

constexpr int64_t kThreshold = 1000;  // summarise above this many elements
constexpr int64_t kEdgeItems = 3;
constexpr int kLineWidth = 80;

class Printer {
public:
  explicit Printer(const Tensor& t) : t_(t), nd_(t.ndim()), summarize_(t.numel() > kThreshold) {
    int64_t s = 1;
    for (int d = nd_ - 1; d >= 0; --d) {
      stride_[d] = s;
      s *= t.shape()[d];
    }
  }

  std::string run() {
    choose_format();
    if (nd_ == 0) return element(0);
    return block(0, 0, 7);  // 7 = strlen("tensor(")
  }

private:
  double value(int64_t i) const {
    switch (t_.dtype()) {
      case DType::F32: return t_.data<float>()[i];
      case DType::F64: return t_.data<double>()[i];
      case DType::I64: return static_cast<double>(t_.data<int64_t>()[i]);
      case DType::Bool: return t_.data<bool>()[i] ? 1.0 : 0.0;
    }
    return 0;
  }

  std::string raw(int64_t i) const {
    if (t_.dtype() == DType::I64) return fmt::format("{}", t_.data<int64_t>()[i]);
    if (t_.dtype() == DType::Bool) return t_.data<bool>()[i] ? "true" : "false";
    const double v = value(i);
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    return sci_ ? fmt::format("{:.4e}", v) : fmt::format("{:.4f}", v);
  }

  std::string element(int64_t i) const {
    std::string s = raw(i);
    if (static_cast<int>(s.size()) < width_) s.insert(0, static_cast<size_t>(width_) - s.size(), ' ');
    return s;
  }

  /// Indices shown along a dimension of size n: all, or the first and last kEdgeItems.
  bool elided(int64_t n) const { return summarize_ && n > 2 * kEdgeItems; }

  /// Calls f(flat index) for every element that will be printed.
  template <typename F>
  void visit(int dim, int64_t off, F& f) const {
    if (dim == nd_) {
      f(off);
      return;
    }
    const int64_t n = t_.shape()[dim];
    for (int64_t i = 0; i < n; ++i) {
      if (elided(n) && i == kEdgeItems) i = n - kEdgeItems;
      visit(dim + 1, off + i * stride_[dim], f);
    }
  }

  void choose_format() {
    if (t_.is_floating()) {
      double lo = INFINITY, hi = 0;
      auto scan = [&](int64_t i) {
        const double a = std::abs(value(i));
        if (std::isfinite(a) && a != 0) {
          lo = std::min(lo, a);
          hi = std::max(hi, a);
        }
      };
      visit(0, 0, scan);
      sci_ = hi > 0 && (hi / lo > 1000.0 || hi > 1e8 || lo < 1e-4);
    }
    auto measure = [&](int64_t i) { width_ = std::max(width_, static_cast<int>(raw(i).size())); };
    visit(0, 0, measure);
  }

  /// The bracketed text of the sub-tensor at `off` starting at dimension `dim`.
  std::string block(int dim, int64_t off, int indent) const {
    const int64_t n = t_.shape()[dim];
    std::vector<std::string> items;
    for (int64_t i = 0; i < n; ++i) {
      if (elided(n) && i == kEdgeItems) {
        items.push_back(dim == nd_ - 1 ? " ..." : "...");
        i = n - kEdgeItems;
      }
      const int64_t o = off + i * stride_[dim];
      items.push_back(dim == nd_ - 1 ? element(o) : block(dim + 1, o, indent + 1));
    }
    std::string s = "[";
    if (dim == nd_ - 1) {  // a row: wrap so that lines stay within kLineWidth
      const size_t per_line = static_cast<size_t>(std::max(1, (kLineWidth - indent) / (width_ + 2)));
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0 && i % per_line == 0) {
          s += ",\n";
          s.append(static_cast<size_t>(indent + 1), ' ');
        } else if (i > 0) {
          s += ", ";
        }
        s += items[i];
      }
    } else {  // blocks: one newline between rows, two between matrices, ...
      std::string sep = ",";
      sep.append(static_cast<size_t>(nd_ - dim - 1), '\n');
      sep.append(static_cast<size_t>(indent + 1), ' ');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) s += sep;
        s += items[i];
      }
    }
    return s + "]";
  }

  const Tensor& t_;
  int nd_;
  bool summarize_;
  bool sci_ = false;
  int width_ = 0;
  int64_t stride_[kMaxDims] = {};
};

}  // namespace

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "tensor(undefined)";
  const std::string body = t.numel() == 0 ? "[]" : Printer(t).run();
  return fmt::format("tensor({}, shape={}, dtype={})", body, t.shape(), t.dtype());
}

}  // namespace unroll
