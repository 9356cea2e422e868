// Shape ops: reshape and friends (sharing storage), and the copying ones (transpose,
// permute, narrow/slice, concat/stack/split/chunk, index_select/gather and their adjoints
// index_add/scatter_add). where and masked_fill live in ops.cpp with the broadcasting code
// (core/loops.h).
//
// Pure data movement works on every dtype: it copies elements of 4 or 8 bytes (or whole
// rows with memcpy) without looking at their values.
#include "core/dispatch.h"
#include "core/tensor.h"

#include <algorithm>
#include <cstring>

namespace unroll {
namespace {

using detail::Axis3;
using detail::check_defined;
using detail::dispatch_bytes;
using detail::dispatch_float;
using detail::view3;

size_t bytes_of(const Tensor& t, int64_t elements) { return static_cast<size_t>(elements) * dtype_size(t.dtype()); }

/// "x[..., i, ...]" coordinates of flat element `flat` of shape s, for error messages.
std::string coords(const Shape& s, int64_t flat) {
  Shape c = s;
  for (int d = s.ndim() - 1; d >= 0; --d) {
    c[d] = s[d] ? flat % s[d] : 0;
    flat = s[d] ? flat / s[d] : 0;
  }
  return c.str();
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) { return x.reshape(shape); }

Tensor flatten(const Tensor& x) {
  check_defined("flatten", x);
  return x.reshape(Shape{x.numel()});
}

Tensor unsqueeze(const Tensor& x, int axis) {
  check_defined("unsqueeze", x);
  UNROLL_CHECK(x.ndim() < kMaxDims, "unsqueeze: a tensor of shape {} already has the maximum of {} dimensions",
               x.shape(), kMaxDims);
  const int ax = normalize_axis("unsqueeze", axis, x.ndim() + 1);
  Shape s;
  for (int d = 0; d < x.ndim(); ++d) {
    if (d == ax) s.push_back(1);
    s.push_back(x.shape()[d]);
  }
  if (ax == x.ndim()) s.push_back(1);
  return x.reshape(s);
}

Tensor squeeze(const Tensor& x, int axis) {
  check_defined("squeeze", x);
  const int ax = normalize_axis("squeeze", axis, x.ndim());
  UNROLL_CHECK(x.shape()[ax] == 1, "squeeze: dimension {} of shape {} has size {}, not 1", axis, x.shape(),
               x.shape()[ax]);
  Shape s;
  for (int d = 0; d < x.ndim(); ++d)
    if (d != ax) s.push_back(x.shape()[d]);
  return x.reshape(s);
}

// ---- permute / transpose --------------------------------------------------------------

Tensor permute(const Tensor& x, std::span<const int> dims) {
  check_defined("permute", x);
  const int nd = x.ndim();
  auto bad = [&] {
    std::string s = "[";
    for (size_t i = 0; i < dims.size(); ++i) {
      if (i) s += ',';
      s += std::to_string(dims[i]);
    }
    s += ']';
    return s;
  };
  UNROLL_CHECK(static_cast<int>(dims.size()) == nd, "permute: {} is not a permutation of the {} dimensions of {}",
               bad(), nd, x.shape());
  int perm[kMaxDims];
  bool seen[kMaxDims] = {};
  for (int i = 0; i < nd; ++i) {
    const int d = dims[static_cast<size_t>(i)];
    UNROLL_CHECK(d >= -nd && d < nd && !seen[d < 0 ? d + nd : d],
                 "permute: {} is not a permutation of the {} dimensions of {}", bad(), nd, x.shape());
    perm[i] = d < 0 ? d + nd : d;
    seen[perm[i]] = true;
  }
  int64_t xstride[kMaxDims];
  int64_t stride = 1;
  for (int d = nd - 1; d >= 0; --d) {
    xstride[d] = stride;
    stride *= x.shape()[d];
  }
  Shape os;
  for (int i = 0; i < nd; ++i) os.push_back(x.shape()[perm[i]]);
  Tensor out = Tensor::empty(os, x.dtype());
  if (out.numel() == 0) return out;

  // Output dims with their input strides; drop size-1 dims and merge dims that stay
  // adjacent in the input, so the inner loop is as long as possible.
  int64_t size[kMaxDims], st[kMaxDims];
  int m = 0;
  for (int i = 0; i < nd; ++i) {
    const int64_t n = os[i], s = xstride[perm[i]];
    if (n == 1) continue;
    if (m > 0 && st[m - 1] == s * n) {
      size[m - 1] *= n;
      st[m - 1] = s;
    } else {
      size[m] = n;
      st[m] = s;
      ++m;
    }
  }
  if (m == 0) {
    size[0] = 1;
    st[0] = 1;
    m = 1;
  }
  dispatch_bytes(x.dtype(), [&]<typename E>() {
    const E* src = static_cast<const E*>(x.raw_data());
    E* dst = static_cast<E*>(out.raw_data());
    const int last = m - 1;
    const int64_t n = size[last], s = st[last];
    int64_t outer = 1;
    for (int d = 0; d < last; ++d) outer *= size[d];
    int64_t idx[kMaxDims] = {};
    int64_t off = 0;
    for (int64_t r = 0; r < outer; ++r, dst += n) {
      const E* row = src + off;
      if (s == 1) std::memcpy(dst, row, static_cast<size_t>(n) * sizeof(E));
      else
        for (int64_t i = 0; i < n; ++i) dst[i] = row[i * s];
      for (int d = last - 1; d >= 0; --d) {
        off += st[d];
        if (++idx[d] < size[d]) break;
        off -= st[d] * size[d];
        idx[d] = 0;
      }
    }
  });
  return out;
}

Tensor permute(const Tensor& x, std::initializer_list<int> dims) {
  return permute(x, std::span<const int>(dims.begin(), dims.size()));
}

Tensor transpose(const Tensor& x, int a, int b) {
  check_defined("transpose", x);
  const int nd = x.ndim();
  const int ia = normalize_axis("transpose", a, nd), ib = normalize_axis("transpose", b, nd);
  int perm[kMaxDims];
  for (int d = 0; d < nd; ++d) perm[d] = d;
  std::swap(perm[ia], perm[ib]);
  return permute(x, std::span<const int>(perm, static_cast<size_t>(nd)));
}

// ---- narrow / slice -------------------------------------------------------------------

Tensor narrow(const Tensor& x, int axis, int64_t start, int64_t length) {
  check_defined("narrow", x);
  const int ax = normalize_axis("narrow", axis, x.ndim());
  const Axis3 v = view3(x.shape(), ax);
  UNROLL_CHECK(start >= 0 && length >= 0 && start <= v.n && length <= v.n - start,
               "narrow: start {} and length {} are out of range for size {} of axis {} in shape {}", start, length,
               v.n, axis, x.shape());
  Shape os = x.shape();
  os[ax] = length;
  Tensor out = Tensor::empty(os, x.dtype());
  const size_t row = bytes_of(x, length * v.inner);
  if (row == 0) return out;
  const char* src = static_cast<const char*>(x.raw_data()) + bytes_of(x, start * v.inner);
  char* dst = static_cast<char*>(out.raw_data());
  const size_t src_step = bytes_of(x, v.n * v.inner);
  for (int64_t o = 0; o < v.outer; ++o) std::memcpy(dst + static_cast<size_t>(o) * row, src + static_cast<size_t>(o) * src_step, row);
  return out;
}

void narrow_add_(Tensor& dst, int axis, int64_t start, const Tensor& src) {
  check_defined("narrow_add_", dst);
  check_defined("narrow_add_", src);
  const int ax = normalize_axis("narrow_add_", axis, dst.ndim());
  const Axis3 v = view3(dst.shape(), ax);
  const int64_t length = src.ndim() == dst.ndim() ? src.shape()[ax] : -1;
  bool ok = length >= 0 && start >= 0 && start <= v.n && length <= v.n - start;
  for (int d = 0; ok && d < dst.ndim(); ++d) ok = d == ax || src.shape()[d] == dst.shape()[d];
  UNROLL_CHECK(ok, "narrow_add_: source {} does not fit destination {} at offset {} along axis {}", src.shape(),
               dst.shape(), start, axis);
  UNROLL_CHECK(src.dtype() == dst.dtype(), "narrow_add_: dtypes {} and {} differ", dst.dtype(), src.dtype());
  dispatch_float("narrow_add_", dst.dtype(), [&]<typename T>() {
    T* pd = dst.data<T>() + start * v.inner;
    const T* ps = src.data<T>();
    const int64_t row = length * v.inner;
    for (int64_t o = 0; o < v.outer; ++o) {
      T* d = pd + o * v.n * v.inner;
      const T* s2 = ps + o * row;
      for (int64_t j = 0; j < row; ++j) d[j] += s2[j];
    }
  });
}

std::pair<int64_t, int64_t> slice_range(int64_t n, int64_t start, int64_t stop) {
  auto clampi = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  const int64_t b = clampi(start), e = clampi(stop);
  return {b, std::max<int64_t>(e - b, 0)};
}

Tensor slice(const Tensor& x, int axis, int64_t start, int64_t stop) {
  check_defined("slice", x);
  const auto [b, len] = slice_range(x.shape()[normalize_axis("slice", axis, x.ndim())], start, stop);
  return narrow(x, axis, b, len);
}

// ---- concat / stack / split / chunk ---------------------------------------------------

Tensor concat(std::span<const Tensor> xs, int axis) {
  UNROLL_CHECK(!xs.empty(), "concat: no tensors given");
  for (size_t i = 0; i < xs.size(); ++i) UNROLL_CHECK(xs[i].defined(), "concat: tensor {} is undefined", i);
  const Tensor& x0 = xs[0];
  const int ax = normalize_axis("concat", axis, x0.ndim());
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    bool ok = s.ndim() == x0.ndim();
    for (int d = 0; ok && d < s.ndim(); ++d) ok = d == ax || s[d] == x0.shape()[d];
    UNROLL_CHECK(ok, "concat: tensor {} has shape {} but tensor 0 has shape {} (shapes must agree except along axis {})",
                 i, s, x0.shape(), axis);
    UNROLL_CHECK(xs[i].dtype() == x0.dtype(), "concat: tensor {} is {} but tensor 0 is {}", i, xs[i].dtype(),
                 x0.dtype());
    total += s[ax];
  }
  Shape os = x0.shape();
  os[ax] = total;
  Tensor out = Tensor::empty(os, x0.dtype());
  if (out.numel() == 0) return out;
  const Axis3 v = view3(os, ax);
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < v.outer; ++o)
    for (const Tensor& t : xs) {
      const size_t row = bytes_of(t, t.shape()[ax] * v.inner);
      std::memcpy(dst, static_cast<const char*>(t.raw_data()) + static_cast<size_t>(o) * row, row);
      dst += row;
    }
  return out;
}

Tensor concat(std::initializer_list<Tensor> xs, int axis) {
  return concat(std::span<const Tensor>(xs.begin(), xs.size()), axis);
}

Tensor stack(std::span<const Tensor> xs, int axis) {
  UNROLL_CHECK(!xs.empty(), "stack: no tensors given");
  for (size_t i = 0; i < xs.size(); ++i) UNROLL_CHECK(xs[i].defined(), "stack: tensor {} is undefined", i);
  const Tensor& x0 = xs[0];
  UNROLL_CHECK(x0.ndim() < kMaxDims, "stack: tensors of shape {} already have the maximum of {} dimensions",
               x0.shape(), kMaxDims);
  const int ax = normalize_axis("stack", axis, x0.ndim() + 1);
  for (size_t i = 0; i < xs.size(); ++i) {
    UNROLL_CHECK(xs[i].shape() == x0.shape(), "stack: tensor {} has shape {} but tensor 0 has shape {} (all must be equal)",
                 i, xs[i].shape(), x0.shape());
    UNROLL_CHECK(xs[i].dtype() == x0.dtype(), "stack: tensor {} is {} but tensor 0 is {}", i, xs[i].dtype(),
                 x0.dtype());
  }
  Shape os;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < x0.ndim(); ++d) {
    if (d == ax) os.push_back(static_cast<int64_t>(xs.size()));
    os.push_back(x0.shape()[d]);
    (d < ax ? outer : inner) *= x0.shape()[d];
  }
  if (ax == x0.ndim()) os.push_back(static_cast<int64_t>(xs.size()));
  Tensor out = Tensor::empty(os, x0.dtype());
  const size_t row = bytes_of(x0, inner);
  if (row == 0) return out;
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o)
    for (const Tensor& t : xs) {
      std::memcpy(dst, static_cast<const char*>(t.raw_data()) + static_cast<size_t>(o) * row, row);
      dst += row;
    }
  return out;
}

Tensor stack(std::initializer_list<Tensor> xs, int axis) {
  return stack(std::span<const Tensor>(xs.begin(), xs.size()), axis);
}

std::vector<Tensor> split(const Tensor& x, int64_t size, int axis) {
  check_defined("split", x);
  const int ax = normalize_axis("split", axis, x.ndim());
  const int64_t n = x.shape()[ax];
  UNROLL_CHECK(size > 0 || (size == 0 && n == 0), "split: piece size {} must be positive (axis {} of shape {})", size,
               axis, x.shape());
  std::vector<Tensor> pieces;
  if (n == 0) {  // torch.split gives one empty piece
    pieces.push_back(narrow(x, ax, 0, 0));
    return pieces;
  }
  pieces.reserve(static_cast<size_t>(n / size + (n % size != 0)));
  for (int64_t start = 0; start < n; start += size) pieces.push_back(narrow(x, ax, start, std::min(size, n - start)));
  return pieces;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t n, int axis) {
  check_defined("chunk", x);
  UNROLL_CHECK(n > 0, "chunk: the number of chunks must be positive, got {}", n);
  const int ax = normalize_axis("chunk", axis, x.ndim());
  const int64_t len = x.shape()[ax];
  // torch.chunk: pieces of ceil(len / n), so there may be fewer than n of them; an empty
  // axis gives n empty pieces.
  if (len == 0) return std::vector<Tensor>(static_cast<size_t>(n), narrow(x, ax, 0, 0));
  return split(x, len / n + (len % n != 0), ax);
}

// ---- index_select / gather and their adjoints --------------------------------------------

namespace {

void check_index_vector(const char* op, const Tensor& idx) {
  check_defined(op, idx);
  UNROLL_CHECK(idx.dtype() == DType::I64, "{}: indices must be int64, got {}", op, idx.dtype());
  UNROLL_CHECK(idx.ndim() == 1, "{}: indices must be 1-D, got shape {}", op, idx.shape());
}

/// Every index in [0, n) or an error naming the bad one, its position and the range.
void check_index_range(const char* op, const Tensor& idx, int64_t n, int axis, const Shape& shape) {
  const int64_t* p = idx.data<int64_t>();
  for (int64_t i = 0; i < idx.numel(); ++i)
    UNROLL_CHECK(p[i] >= 0 && p[i] < n, "{}: index {} at position {} is out of range [0, {}) for axis {} of shape {}",
                 op, p[i], idx.ndim() == 1 ? std::to_string(i) : coords(idx.shape(), i), n, axis, shape);
}

}  // namespace

Tensor index_select(const Tensor& x, int axis, const Tensor& idx) {
  check_defined("index_select", x);
  check_index_vector("index_select", idx);
  const int ax = normalize_axis("index_select", axis, x.ndim());
  const Axis3 v = view3(x.shape(), ax);
  check_index_range("index_select", idx, v.n, axis, x.shape());
  Shape os = x.shape();
  os[ax] = idx.numel();
  Tensor out = Tensor::empty(os, x.dtype());
  const size_t row = bytes_of(x, v.inner);
  if (out.numel() == 0) return out;
  const int64_t* pi = idx.data<int64_t>();
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t i = 0; i < idx.numel(); ++i, dst += row)
      std::memcpy(dst, src + static_cast<size_t>(o * v.n + pi[i]) * row, row);
  return out;
}

Tensor index_add(const Tensor& dst, int axis, const Tensor& idx, const Tensor& src) {
  check_defined("index_add", dst);
  Tensor out = dst.clone();
  index_add_(out, axis, idx, src);
  return out;
}

void index_add_(Tensor& dst, int axis, const Tensor& idx, const Tensor& src) {
  check_defined("index_add", dst);
  check_defined("index_add", src);
  check_index_vector("index_add", idx);
  const int ax = normalize_axis("index_add", axis, dst.ndim());
  bool ok = src.ndim() == dst.ndim();
  for (int d = 0; ok && d < dst.ndim(); ++d) ok = src.shape()[d] == (d == ax ? idx.numel() : dst.shape()[d]);
  UNROLL_CHECK(ok, "index_add: source of shape {} does not match destination {} with {} indices along axis {}",
               src.shape(), dst.shape(), idx.numel(), axis);
  UNROLL_CHECK(src.dtype() == dst.dtype(), "index_add: dtypes {} and {} differ", dst.dtype(), src.dtype());
  const Axis3 v = view3(dst.shape(), ax);
  check_index_range("index_add", idx, v.n, axis, dst.shape());
  dispatch_float("index_add", dst.dtype(), [&]<typename T>() {
    T* po = dst.data<T>();
    const T* ps = src.data<T>();
    const int64_t* pi = idx.data<int64_t>();
    const int64_t m = idx.numel();
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t i = 0; i < m; ++i) {  // sequential, so duplicate indices accumulate
        T* orow = po + (o * v.n + pi[i]) * v.inner;
        const T* srow = ps + (o * m + i) * v.inner;
        for (int64_t j = 0; j < v.inner; ++j) orow[j] += srow[j];
      }
  });
}

namespace {

/// gather / scatter_add: idx (I64) has x's shape except along axis; returns its [outer, m, inner].
Axis3 check_gather_index(const char* op, const Tensor& x, int ax, int axis, const Tensor& idx) {
  check_defined(op, idx);
  UNROLL_CHECK(idx.dtype() == DType::I64, "{}: indices must be int64, got {}", op, idx.dtype());
  bool ok = idx.ndim() == x.ndim();
  for (int d = 0; ok && d < x.ndim(); ++d) ok = d == ax || idx.shape()[d] == x.shape()[d];
  UNROLL_CHECK(ok, "{}: indices of shape {} must match the tensor's shape {} except along axis {}", op, idx.shape(),
               x.shape(), axis);
  check_index_range(op, idx, x.shape()[ax], axis, x.shape());
  return view3(idx.shape(), ax);
}

}  // namespace

Tensor gather(const Tensor& x, int axis, const Tensor& idx) {
  check_defined("gather", x);
  const int ax = normalize_axis("gather", axis, x.ndim());
  const Axis3 vi = check_gather_index("gather", x, ax, axis, idx);
  const int64_t n = x.shape()[ax];
  Tensor out = Tensor::empty(idx.shape(), x.dtype());
  if (out.numel() == 0) return out;
  dispatch_bytes(x.dtype(), [&]<typename E>() {
    const E* px = static_cast<const E*>(x.raw_data());
    E* po = static_cast<E*>(out.raw_data());
    const int64_t* pi = idx.data<int64_t>();
    for (int64_t o = 0; o < vi.outer; ++o)
      for (int64_t k = 0; k < vi.n; ++k) {
        const int64_t base = (o * vi.n + k) * vi.inner;
        for (int64_t j = 0; j < vi.inner; ++j) po[base + j] = px[(o * n + pi[base + j]) * vi.inner + j];
      }
  });
  return out;
}

Tensor scatter_add(const Tensor& dst, int axis, const Tensor& idx, const Tensor& src) {
  check_defined("scatter_add", dst);
  Tensor out = dst.clone();
  scatter_add_(out, axis, idx, src);
  return out;
}

void scatter_add_(Tensor& dst, int axis, const Tensor& idx, const Tensor& src) {
  check_defined("scatter_add", dst);
  check_defined("scatter_add", src);
  const int ax = normalize_axis("scatter_add", axis, dst.ndim());
  const Axis3 vi = check_gather_index("scatter_add", dst, ax, axis, idx);
  UNROLL_CHECK(src.shape() == idx.shape(), "scatter_add: source of shape {} must have the indices' shape {}",
               src.shape(), idx.shape());
  UNROLL_CHECK(src.dtype() == dst.dtype(), "scatter_add: dtypes {} and {} differ", dst.dtype(), src.dtype());
  const int64_t n = dst.shape()[ax];
  dispatch_float("scatter_add", dst.dtype(), [&]<typename T>() {
    T* po = dst.data<T>();
    const T* ps = src.data<T>();
    const int64_t* pi = idx.data<int64_t>();
    for (int64_t o = 0; o < vi.outer; ++o)
      for (int64_t k = 0; k < vi.n; ++k) {  // sequential, so duplicate indices accumulate
        const int64_t base = (o * vi.n + k) * vi.inner;
        for (int64_t j = 0; j < vi.inner; ++j) po[(o * n + pi[base + j]) * vi.inner + j] += ps[base + j];
      }
  });
}

}  // namespace unroll
