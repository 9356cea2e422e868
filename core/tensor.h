#pragma once
// Tensor: a dtype, a shape and contiguous row-major storage. Nothing here knows about
// gradients; autograd/ wraps Tensors into Variables.
//
// Note [tensor storage]
// A Tensor is a cheap handle (pointer + shape + dtype) to a reference-counted Storage.
// Storage is always contiguous and row-major with no offset, so every kernel can treat a
// tensor as a flat array. Copying a Tensor shares the storage (like torch.Tensor); ops
// return new tensors; reshape of a contiguous tensor shares storage. Buffers come from a
// per-thread pool of power-of-two size classes, so the steady state of a training loop
// does not call malloc. Reference counts are not atomic: a Tensor belongs to one thread at
// a time (kernels may still split work on raw pointers across threads).
#include "core/error.h"

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace unroll {

/// Element types. F32 is the default; F64 is used for gradient checks; I64 holds indices
/// (gather/index_select/targets) and is not accepted by arithmetic ops. Bool holds 0 or 1
/// in one byte (C++ bool): what comparisons return and what masks are (where, masked_fill,
/// attention masks); arithmetic with a floating tensor converts it to that tensor's dtype
/// first, as PyTorch's type promotion does.
enum class DType : uint8_t { F32, F64, I64, Bool };
const char* dtype_name(DType t);  ///< "float32", "float64", "int64", "bool"
size_t dtype_size(DType t);

constexpr int kMaxDims = 8;

/// A shape of up to kMaxDims dimensions, stored inline (no allocation).
class Shape {
public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(std::span<const int64_t> dims);
  int ndim() const { return n_; }
  int64_t operator[](int i) const { return d_[static_cast<size_t>(i)]; }
  int64_t& operator[](int i) { return d_[static_cast<size_t>(i)]; }
  int64_t numel() const;
  const int64_t* begin() const { return d_.data(); }
  const int64_t* end() const { return d_.data() + n_; }
  void push_back(int64_t v);
  bool operator==(const Shape& o) const;
  std::string str() const;  ///< "[2,3]"
private:
  std::array<int64_t, kMaxDims> d_{};
  int n_ = 0;
};

/// Turns a possibly negative axis into 0..ndim-1, or throws naming the op.
int normalize_axis(const char* op, int axis, int ndim);

namespace detail {
struct Storage;  // core/storage.h
}

class Tensor {
public:
  Tensor() = default;  ///< an undefined tensor (defined() == false)
  Tensor(const Tensor& o);
  Tensor(Tensor&& o) noexcept;
  Tensor& operator=(const Tensor& o);
  Tensor& operator=(Tensor&& o) noexcept;
  ~Tensor();

  /// Uninitialised tensor of the given shape (torch.empty).
  static Tensor empty(const Shape& shape, DType dtype = DType::F32);

  bool defined() const { return st_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.ndim(); }
  int64_t size(int axis) const;  ///< negative axes count from the end
  int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  bool is_floating() const { return dtype_ == DType::F32 || dtype_ == DType::F64; }

  /// Typed pointer to the elements; throws if T does not match the dtype. The non-const
  /// accessors count as a write: they give the storage a new write_stamp().
  template <typename T> T* data();
  template <typename T> const T* data() const;
  void* raw_data();
  const void* raw_data() const;

  double item() const;                          ///< the value of a one-element tensor
  double at(std::initializer_list<int64_t> index) const;  ///< one element, bounds-checked
  std::vector<double> to_vector() const;       ///< all elements as doubles
  std::vector<int64_t> to_indices() const;     ///< all elements of an I64 tensor

  Tensor clone() const;                   ///< deep copy
  Tensor to(DType dtype) const;           ///< converted copy (or *this if same dtype)
  Tensor reshape(const Shape& shape) const;  ///< shares storage; one dim may be -1

  /// True when no other Tensor shares this storage (safe to modify in place).
  bool unique() const;
  bool same_storage(const Tensor& o) const { return st_ == o.st_; }
  /// The storage's identity (nullptr when undefined): equal for tensors that share storage.
  const void* storage_id() const { return st_; }
  /// The storage's write stamp (0 when undefined): new at allocation and at every non-const
  /// data()/raw_data() call, never reused (Note [write stamps] in core/tensor.cpp). Equal
  /// stamps of one storage mean it was not written through a Tensor in between.
  uint64_t write_stamp() const;

private:
  detail::Storage* st_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::F32;
};

// ---- threads and memory ----------------------------------------------------------------
/// How many threads the kernels may split one op across (GEMM, large elementwise ops);
/// default 1, like torch.set_num_threads. Work is split into pieces that depend only on the
/// shapes and this count, so the same thread count gives bit-identical results.
void set_num_threads(int n);
int num_threads();  ///< like torch.get_num_threads

/// Bytes of live tensor storage this thread allocated (requested sizes, not pool blocks),
/// wherever it is freed (Note [storage across threads], core/storage.cpp), and the largest
/// value since the last reset_peak_memory().
struct MemoryStats {
  int64_t live_bytes = 0;
  int64_t peak_bytes = 0;
};
MemoryStats memory_stats();
void reset_peak_memory();  ///< peak_bytes = live_bytes

namespace detail {
/// Told of every tensor storage allocated or freed on this thread while installed (the
/// per-step memory meter, MemoryMeter in autograd/graph.h): the storage's identity (as
/// Tensor::storage_id) and its requested bytes. One pointer test per allocation and per
/// final release when nobody watches. A storage freed on another thread is not reported.
struct StorageWatcher {
  virtual ~StorageWatcher() = default;
  virtual void on_alloc(const void* storage, size_t bytes) = 0;
  virtual void on_free(const void* storage) = 0;
};
StorageWatcher*& storage_watcher();  ///< this thread's watcher (nullptr: none)
}  // namespace detail

// ---- creation -------------------------------------------------------------------------
Tensor zeros(const Shape& shape, DType dtype = DType::F32);
Tensor ones(const Shape& shape, DType dtype = DType::F32);
Tensor full(const Shape& shape, double value, DType dtype = DType::F32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor arange(double start, double stop, double step = 1.0, DType dtype = DType::F32);
Tensor arange(int64_t n, DType dtype = DType::F32);  ///< 0, 1, ..., n-1
/// From values and a shape: tensor({1,2,3,4}, {2,2}). Shape defaults to 1-D.
Tensor tensor(std::span<const double> values, const Shape& shape, DType dtype = DType::F32);
Tensor tensor(std::initializer_list<double> values, const Shape& shape, DType dtype = DType::F32);
Tensor tensor(std::initializer_list<double> values, DType dtype = DType::F32);
/// An I64 tensor of indices: indices({2,0,1}) or indices(v, {2,3}).
Tensor indices(std::span<const int64_t> values, const Shape& shape);
Tensor indices(std::initializer_list<int64_t> values);
Tensor indices(std::initializer_list<int64_t> values, const Shape& shape);
Tensor indices(const std::vector<int64_t>& values);
Tensor scalar_tensor(double value, DType dtype = DType::F32);

/// A seeded random number generator (xoshiro256**): same seed, same numbers everywhere.
class Generator {
public:
  explicit Generator(uint64_t seed = 0);
  uint64_t next_u64();
  double uniform();                     ///< [0, 1), 53 random bits
  double uniform(double lo, double hi); ///< [lo, hi)
  double normal();                      ///< standard normal (Box-Muller)
  int64_t randint(int64_t lo, int64_t hi);  ///< [lo, hi)
  uint64_t seed() const { return seed_; }
  /// The whole state as an int64 tensor [7] (torch.Generator.get_state): the four xoshiro
  /// words, the seed, and the cached second normal. Save it with a checkpoint to resume
  /// a run bit for bit.
  Tensor get_state() const;
  /// Restores a state from get_state(); errors on any other tensor.
  void set_state(const Tensor& state);
private:
  uint64_t s_[4];
  uint64_t seed_;
  bool has_spare_ = false;
  double spare_ = 0;
};
/// The generator layers use for their initial weights (per thread; seed 0 until
/// manual_seed is called), like torch.manual_seed.
Generator& default_generator();
void manual_seed(uint64_t seed);
Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::F32);   ///< U[0,1)
Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::F32);  ///< N(0,1)
Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype = DType::F32);

// ---- elementwise ----------------------------------------------------------------------
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor pow(const Tensor& x, double p);
Tensor clamp(const Tensor& x, double lo, double hi);
/// Backward helpers in one pass: dy * (1 - y^2) and dy * y * (1 - y), y the op's output.
Tensor tanh_backward(const Tensor& dy, const Tensor& y);
Tensor sigmoid_backward(const Tensor& dy, const Tensor& y);

// Binary ops broadcast like NumPy: shapes are aligned from the right; a dimension of 1
// stretches to match. The result has the broadcast shape.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor sub(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
Tensor rsub(double s, const Tensor& a);  ///< s - a
Tensor rdiv(double s, const Tensor& a);  ///< s / a
/// Comparisons of two tensors of one dtype (int64 and bool too), broadcasting: a Bool tensor.
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
/// The same against a scalar (taken in a's dtype): gt(x, 0.0) is x > 0.
Tensor gt(const Tensor& a, double s);
Tensor ge(const Tensor& a, double s);
Tensor eq(const Tensor& a, double s);
Tensor lt(const Tensor& a, double s);
Tensor le(const Tensor& a, double s);
Tensor ne(const Tensor& a, double s);
/// Logical ops on Bool tensors (other dtypes are an error: compare them first).
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& a);
bool any(const Tensor& a);  ///< some element of a Bool tensor is true
bool all(const Tensor& a);  ///< every element of a Bool tensor is true (true when empty)
int64_t count_nonzero(const Tensor& a);  ///< any dtype
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
/// Sums x down to `shape` (the reverse of broadcasting `shape` up to x's shape).
Tensor sum_to(const Tensor& x, const Shape& shape);
/// Repeats x up to `shape` by broadcasting (a copy).
Tensor broadcast_to(const Tensor& x, const Shape& shape);

Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);

// In place (used by gradient accumulation and optimizers): dst and src same shape+dtype.
void add_(Tensor& dst, const Tensor& src, double alpha = 1.0);  ///< dst += alpha * src
void mul_(Tensor& dst, double s);                               ///< dst *= s
void fill_(Tensor& dst, double value);
void copy_(Tensor& dst, const Tensor& src);

// ---- matmul ---------------------------------------------------------------------------
/// Matrix product. 2-D x 2-D: [M,K] x [K,N] -> [M,N]; 3-D x 3-D batched: [B,M,K] x [B,K,N];
/// 3-D x 2-D: [B,M,K] x [K,N] -> [B,M,N]. trans_a / trans_b use the transpose of the last
/// two dimensions of an operand without copying it (e.g. x W^T is matmul(x, W, false, true)).
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
/// bias + op(a) op(b) for 2-D a, b and a 1-D bias [N] added to every row, with the bias
/// loaded into the output before the GEMM accumulates onto it (torch.addmm).
Tensor addmm(const Tensor& bias, const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
/// c += op(a) op(b) in place for 2-D a, b, c (GEMM with beta = 1; no temporary).
void addmm_(Tensor& c, const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

// ---- reductions -----------------------------------------------------------------------
Tensor sum(const Tensor& x);                                   ///< all elements -> []
Tensor sum(const Tensor& x, int axis, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, int axis, bool keepdim = false);
Tensor max(const Tensor& x);                                   ///< all elements -> []
Tensor max(const Tensor& x, int axis, bool keepdim = false);
Tensor min(const Tensor& x, int axis, bool keepdim = false);
Tensor argmax(const Tensor& x, int axis, bool keepdim = false);  ///< I64; first maximum
/// softmax / log_softmax along an axis, stable (the maximum is subtracted first).
Tensor softmax(const Tensor& x, int axis);
Tensor log_softmax(const Tensor& x, int axis);
/// Their backward in one pass, y the op's output: softmax dy -> y * (dy - sum(dy * y)),
/// log_softmax dy -> dy - e^y * sum(dy) (sums along the axis).
Tensor softmax_backward(const Tensor& dy, const Tensor& y, int axis);
Tensor log_softmax_backward(const Tensor& dy, const Tensor& y, int axis);

// ---- shape ops (all return contiguous tensors) -----------------------------------------
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x);
Tensor unsqueeze(const Tensor& x, int axis);
Tensor squeeze(const Tensor& x, int axis);
Tensor transpose(const Tensor& x, int a, int b);
Tensor permute(const Tensor& x, std::span<const int> dims);
Tensor permute(const Tensor& x, std::initializer_list<int> dims);
/// Elements start..start+length-1 along axis (torch.narrow).
Tensor narrow(const Tensor& x, int axis, int64_t start, int64_t length);
/// dst[..., start:start+src.size(axis), ...] += src, in place (the adjoint of narrow).
void narrow_add_(Tensor& dst, int axis, int64_t start, const Tensor& src);
/// Python-style slice x[start:stop] along axis (negative indices count from the end).
Tensor slice(const Tensor& x, int axis, int64_t start, int64_t stop);
/// The (start, length) that the Python slice [start:stop] selects from n elements:
/// negative indices count from the end, both ends are clamped to [0, n].
std::pair<int64_t, int64_t> slice_range(int64_t n, int64_t start, int64_t stop);
Tensor concat(std::span<const Tensor> xs, int axis);
Tensor concat(std::initializer_list<Tensor> xs, int axis);
Tensor stack(std::span<const Tensor> xs, int axis);
Tensor stack(std::initializer_list<Tensor> xs, int axis);
/// Pieces of `size` along axis (the last may be smaller), like torch.split.
std::vector<Tensor> split(const Tensor& x, int64_t size, int axis);
/// n pieces along axis, like torch.chunk.
std::vector<Tensor> chunk(const Tensor& x, int64_t n, int axis);
/// Rows `idx` (1-D I64) along axis: out.shape[axis] = idx.numel().
Tensor index_select(const Tensor& x, int axis, const Tensor& idx);
/// out[..., i, ...] = x[..., idx[..., i, ...], ...] along axis; idx (I64) has x's shape
/// except along axis (torch.gather).
Tensor gather(const Tensor& x, int axis, const Tensor& idx);
/// The adjoints: dst (a copy, returned) += src at the indexed positions.
Tensor index_add(const Tensor& dst, int axis, const Tensor& idx, const Tensor& src);
Tensor scatter_add(const Tensor& dst, int axis, const Tensor& idx, const Tensor& src);
/// The same, adding into dst in place (no copy).
void index_add_(Tensor& dst, int axis, const Tensor& idx, const Tensor& src);
void scatter_add_(Tensor& dst, int axis, const Tensor& idx, const Tensor& src);
/// cond ? a : b elementwise, cond nonzero meaning true; all three broadcast.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
/// x with `value` where mask is nonzero (mask broadcasts to x).
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// ---- comparison helpers ------------------------------------------------------------------
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
bool equal(const Tensor& a, const Tensor& b);  ///< same shape, dtype and bits

}  // namespace unroll

template <>
struct fmt::formatter<unroll::Shape> : fmt::formatter<std::string_view> {
  auto format(const unroll::Shape& s, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(s.str(), ctx);
  }
};
template <>
struct fmt::formatter<unroll::DType> : fmt::formatter<std::string_view> {
  auto format(unroll::DType t, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(unroll::dtype_name(t), ctx);
  }
};
namespace unroll {
/// PyTorch-like text: values (elided past 1000 elements), shape and dtype.
std::string to_string(const Tensor& t);
}
template <>
struct fmt::formatter<unroll::Tensor> : fmt::formatter<std::string_view> {
  auto format(const unroll::Tensor& t, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(unroll::to_string(t), ctx);
  }
};
