// Tensor basics: handles, write stamps, shapes, creation, random numbers (the storage
// pool is core/storage.cpp).
#include "core/tensor.h"

#include "core/storage.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numbers>

namespace unroll {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::I64: return "int64";
    case DType::Bool: return "bool";
  }
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::Bool: return 1;
    default: return 8;
  }
}

// ---- Shape ----------------------------------------------------------------------------

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::span<const int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const int64_t> dims) {
  UNROLL_CHECK(dims.size() <= kMaxDims, "shape: {} dimensions given, at most {} are supported", dims.size(), kMaxDims);
  for (int64_t d : dims) push_back(d);
}

void Shape::push_back(int64_t v) {
  UNROLL_CHECK(n_ < kMaxDims, "shape: more than {} dimensions are not supported", kMaxDims);
  d_[static_cast<size_t>(n_++)] = v;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  bool overflow = false;
  for (int i = 0; i < n_; ++i) overflow |= __builtin_mul_overflow(n, d_[static_cast<size_t>(i)], &n);
  if (overflow) [[unlikely]] {
    if (std::find(begin(), end(), int64_t{0}) != end()) return 0;  // a zero dimension: empty after all
    fail("shape: {} has more than 2^63 elements", str());
  }
  return n;
}

bool Shape::operator==(const Shape& o) const { return n_ == o.n_ && std::equal(begin(), end(), o.begin()); }

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < n_; ++i) {
    if (i) s += ',';
    s += std::to_string(d_[static_cast<size_t>(i)]);
  }
  return s + "]";
}

int normalize_axis(const char* op, int axis, int ndim) {
  UNROLL_CHECK(axis >= -ndim && axis < ndim, "{}: axis {} is out of range for a tensor of {} dimensions", op, axis,
               ndim);
  return axis < 0 ? axis + ndim : axis;
}

// ---- write stamps -----------------------------------------------------------------------
// Storage and its pool: core/storage.{h,cpp}.

namespace {
using detail::Storage;
using detail::allocate_storage;
using detail::release_storage;

// Note [write stamps]
// Every storage carries a stamp that changes whenever its bytes may change: at allocation
// (a pooled block comes back with a new stamp) and at every mutable access, i.e. each call
// of the non-const Tensor::data<T>() or raw_data(). Reads through the const accessors leave
// it alone. A stamp is never handed out twice in a process: each thread takes blocks of
// 2^32 stamps from one atomic counter and counts within its block, so making a stamp costs
// one thread-local increment and compare. Two sightings of the same storage with the same
// stamp therefore mean "not written through a Tensor in between", which is what a cache of
// values derived from a tensor (the GEMM's transposed-operand cache, core/operand_cache.h)
// needs to be correct without any scope or rule. A raw pointer kept from an earlier
// data() call and written through later bypasses the stamp: write through data() again.
// The stamp is read and written with relaxed atomics, so threads that only share tensors
// (and call the non-const accessors to read them) do not race on it.
std::atomic<uint64_t> g_stamp_blocks{1};
thread_local uint64_t t_stamp_next = 0, t_stamp_end = 0;

uint64_t new_stamp() {
  if (t_stamp_next == t_stamp_end) [[unlikely]] {
    t_stamp_next = g_stamp_blocks.fetch_add(1, std::memory_order_relaxed) << 32;
    t_stamp_end = t_stamp_next + (uint64_t{1} << 32);
  }
  return t_stamp_next++;
}

void restamp(Storage* s) { std::atomic_ref<uint64_t>(s->stamp).store(new_stamp(), std::memory_order_relaxed); }

}  // namespace

// ---- Tensor -----------------------------------------------------------------------------

Tensor::Tensor(const Tensor& o) : st_(o.st_), shape_(o.shape_), dtype_(o.dtype_) {
  if (st_) ++st_->refs;
}
Tensor::Tensor(Tensor&& o) noexcept : st_(o.st_), shape_(o.shape_), dtype_(o.dtype_) { o.st_ = nullptr; }
Tensor& Tensor::operator=(const Tensor& o) {
  if (o.st_) ++o.st_->refs;
  if (st_) release_storage(st_);
  st_ = o.st_;
  shape_ = o.shape_;
  dtype_ = o.dtype_;
  return *this;
}
Tensor& Tensor::operator=(Tensor&& o) noexcept {
  if (this != &o) {
    if (st_) release_storage(st_);
    st_ = o.st_;
    shape_ = o.shape_;
    dtype_ = o.dtype_;
    o.st_ = nullptr;
  }
  return *this;
}
Tensor::~Tensor() {
  if (st_) release_storage(st_);
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (int64_t d : shape)
    UNROLL_CHECK(d >= 0, "empty: shape {} has a negative dimension", shape);
  const int64_t n = shape.numel();
  UNROLL_CHECK(n <= std::numeric_limits<int64_t>::max() / 8, "tensor: cannot allocate {} elements of shape {}", n,
               shape);
  Tensor t;
  t.st_ = allocate_storage(static_cast<size_t>(n) * dtype_size(dtype));
  restamp(t.st_);
  t.shape_ = shape;
  t.dtype_ = dtype;
  return t;
}

int64_t Tensor::size(int axis) const { return shape_[normalize_axis("size", axis, ndim())]; }

template <typename T>
static constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::F32;
  else if constexpr (std::is_same_v<T, double>) return DType::F64;
  else if constexpr (std::is_same_v<T, int64_t>) return DType::I64;
  else return DType::Bool;
}

template <typename T>
T* Tensor::data() {
  UNROLL_CHECK(st_, "data: the tensor is undefined");
  UNROLL_CHECK(dtype_ == dtype_of<T>(), "data: the tensor is {}, not {}", dtype_, dtype_of<T>());
  restamp(st_);
  return static_cast<T*>(st_->data());
}
template <typename T>
const T* Tensor::data() const {
  UNROLL_CHECK(st_, "data: the tensor is undefined");
  UNROLL_CHECK(dtype_ == dtype_of<T>(), "data: the tensor is {}, not {}", dtype_, dtype_of<T>());
  return static_cast<const T*>(st_->data());
}
template float* Tensor::data<float>();
template double* Tensor::data<double>();
template int64_t* Tensor::data<int64_t>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const int64_t* Tensor::data<int64_t>() const;
template bool* Tensor::data<bool>();
template const bool* Tensor::data<bool>() const;

void* Tensor::raw_data() {
  UNROLL_CHECK(st_, "data: the tensor is undefined");
  restamp(st_);
  return st_->data();
}
const void* Tensor::raw_data() const {
  UNROLL_CHECK(st_, "data: the tensor is undefined");
  return st_->data();
}

uint64_t Tensor::write_stamp() const {
  return st_ ? std::atomic_ref<uint64_t>(st_->stamp).load(std::memory_order_relaxed) : 0;
}

bool Tensor::unique() const { return st_ && st_->refs == 1; }

static double load(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::F32: return t.data<float>()[i];
    case DType::F64: return t.data<double>()[i];
    case DType::I64: return static_cast<double>(t.data<int64_t>()[i]);
    case DType::Bool: return t.data<bool>()[i] ? 1.0 : 0.0;
  }
  return 0;
}

double Tensor::item() const {
  UNROLL_CHECK(defined(), "item: the tensor is undefined");
  UNROLL_CHECK(numel() == 1, "item: a tensor of shape {} has {} elements, not one", shape_, numel());
  return load(*this, 0);
}

double Tensor::at(std::initializer_list<int64_t> index) const {
  UNROLL_CHECK(defined(), "at: the tensor is undefined");
  UNROLL_CHECK(static_cast<int>(index.size()) == ndim(), "at: {} indices given for a tensor of shape {}", index.size(),
               shape_);
  int64_t flat = 0;
  int i = 0;
  for (int64_t v : index) {
    UNROLL_CHECK(v >= 0 && v < shape_[i], "at: index {} is out of range for dimension {} of shape {}", v, i, shape_);
    flat = flat * shape_[i] + v;
    ++i;
  }
  return load(*this, flat);
}

std::vector<double> Tensor::to_vector() const {
  std::vector<double> v(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) v[static_cast<size_t>(i)] = load(*this, i);
  return v;
}

std::vector<int64_t> Tensor::to_indices() const {
  const int64_t* p = data<int64_t>();
  return std::vector<int64_t>(p, p + numel());
}

Tensor Tensor::clone() const {
  UNROLL_CHECK(defined(), "clone: the tensor is undefined");
  Tensor t = empty(shape_, dtype_);
  std::memcpy(t.raw_data(), raw_data(), static_cast<size_t>(numel()) * dtype_size(dtype_));
  return t;
}

Tensor Tensor::to(DType dtype) const {
  UNROLL_CHECK(defined(), "to: the tensor is undefined");
  if (dtype == dtype_) return *this;
  Tensor t = empty(shape_, dtype);
  const int64_t n = numel();
  for (int64_t i = 0; i < n; ++i) {
    double v = load(*this, i);
    switch (dtype) {
      case DType::F32: t.data<float>()[i] = static_cast<float>(v); break;
      case DType::F64: t.data<double>()[i] = v; break;
      case DType::I64:
        UNROLL_CHECK(v >= -0x1p63 && v < 0x1p63, "to: {} at position {} cannot be converted to int64", v, i);
        t.data<int64_t>()[i] = static_cast<int64_t>(v);
        break;
      case DType::Bool: t.data<bool>()[i] = v != 0; break;  // nonzero (and NaN) -> true, as in torch
    }
  }
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  UNROLL_CHECK(defined(), "reshape: the tensor is undefined");
  Shape s = shape;
  int infer = -1;
  for (int i = 0; i < s.ndim(); ++i) {
    if (s[i] == -1) {
      UNROLL_CHECK(infer < 0, "reshape: {} -> {}: only one dimension can be -1", shape_, shape);
      infer = i;
    } else {
      UNROLL_CHECK(s[i] >= 0, "reshape: {} -> {}: negative dimension", shape_, shape);
    }
  }
  if (infer >= 0) {
    Shape rest = s;
    rest[infer] = 1;
    const int64_t known = rest.numel();  // the other dimensions' product (throws past 2^63)
    UNROLL_CHECK(known > 0 && numel() % known == 0, "reshape: {} -> {}: {} elements do not fit", shape_, shape,
                 numel());
    s[infer] = numel() / known;
  }
  UNROLL_CHECK(s.numel() == numel(), "reshape: {} -> {}: {} elements cannot become {}", shape_, shape, numel(),
               s.numel());
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

// ---- creation -------------------------------------------------------------------------

template <typename F>
static Tensor make(const Shape& shape, DType dtype, F&& value_at) {
  Tensor t = Tensor::empty(shape, dtype);
  const int64_t n = t.numel();
  switch (dtype) {
    case DType::F32: { float* p = t.data<float>(); for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(value_at(i)); break; }
    case DType::F64: { double* p = t.data<double>(); for (int64_t i = 0; i < n; ++i) p[i] = value_at(i); break; }
    case DType::I64: {
      int64_t* p = t.data<int64_t>();
      for (int64_t i = 0; i < n; ++i) {
        const double v = value_at(i);
        UNROLL_CHECK(v >= -0x1p63 && v < 0x1p63, "tensor: {} cannot be stored as int64", v);
        p[i] = static_cast<int64_t>(v);
      }
      break;
    }
    case DType::Bool: { bool* p = t.data<bool>(); for (int64_t i = 0; i < n; ++i) p[i] = value_at(i) != 0; break; }
  }
  return t;
}

Tensor full(const Shape& shape, double value, DType dtype) {
  return make(shape, dtype, [value](int64_t) { return value; });
}
Tensor zeros(const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  std::memset(t.raw_data(), 0, static_cast<size_t>(t.numel()) * dtype_size(dtype));
  return t;
}
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& t) {
  UNROLL_CHECK(t.defined(), "zeros_like: the tensor is undefined");
  return zeros(t.shape(), t.dtype());
}
Tensor ones_like(const Tensor& t) {
  UNROLL_CHECK(t.defined(), "ones_like: the tensor is undefined");
  return ones(t.shape(), t.dtype());
}
Tensor full_like(const Tensor& t, double value) {
  UNROLL_CHECK(t.defined(), "full_like: the tensor is undefined");
  return full(t.shape(), value, t.dtype());
}
Tensor scalar_tensor(double value, DType dtype) { return full(Shape{}, value, dtype); }

Tensor arange(double start, double stop, double step, DType dtype) {
  UNROLL_CHECK(step != 0, "arange: step must not be zero");
  const double n = std::ceil((stop - start) / step);
  UNROLL_CHECK(std::isfinite(start) && std::isfinite(stop) && std::isfinite(step) && n < 0x1p62,
               "arange: start {}, stop {} and step {} do not give a finite number of elements", start, stop, step);
  const int64_t count = n > 0 ? static_cast<int64_t>(n) : 0;
  return make(Shape{count}, dtype, [=](int64_t i) { return start + static_cast<double>(i) * step; });
}
Tensor arange(int64_t n, DType dtype) { return arange(0.0, static_cast<double>(n), 1.0, dtype); }

Tensor tensor(std::span<const double> values, const Shape& shape, DType dtype) {
  UNROLL_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "tensor: {} values given for shape {} ({} elements)",
               values.size(), shape, shape.numel());
  return make(shape, dtype, [&](int64_t i) { return values[static_cast<size_t>(i)]; });
}
Tensor tensor(std::initializer_list<double> values, const Shape& shape, DType dtype) {
  return tensor(std::span<const double>(values.begin(), values.size()), shape, dtype);
}
Tensor tensor(std::initializer_list<double> values, DType dtype) {
  return tensor(values, Shape{static_cast<int64_t>(values.size())}, dtype);
}

Tensor indices(std::span<const int64_t> values, const Shape& shape) {
  UNROLL_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "indices: {} values given for shape {}",
               values.size(), shape);
  Tensor t = Tensor::empty(shape, DType::I64);
  std::copy(values.begin(), values.end(), t.data<int64_t>());
  return t;
}
Tensor indices(std::initializer_list<int64_t> values) {
  return indices(std::span<const int64_t>(values.begin(), values.size()), Shape{static_cast<int64_t>(values.size())});
}
Tensor indices(std::initializer_list<int64_t> values, const Shape& shape) {
  return indices(std::span<const int64_t>(values.begin(), values.size()), shape);
}
Tensor indices(const std::vector<int64_t>& values) {
  return indices(std::span<const int64_t>(values), Shape{static_cast<int64_t>(values.size())});
}

// ---- random -----------------------------------------------------------------------------

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Generator::Generator(uint64_t seed) : seed_(seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

uint64_t Generator::next_u64() {
  const uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = std::rotl(s_[3], 45);
  return result;
}

Tensor Generator::get_state() const {
  std::vector<int64_t> v;
  for (uint64_t w : s_) v.push_back(std::bit_cast<int64_t>(w));
  v.push_back(std::bit_cast<int64_t>(seed_));
  v.push_back(has_spare_ ? 1 : 0);
  v.push_back(std::bit_cast<int64_t>(spare_));
  return indices(v);
}

void Generator::set_state(const Tensor& state) {
  UNROLL_CHECK(state.defined() && state.dtype() == DType::I64 && state.shape() == Shape{7},
               "Generator::set_state: expected the int64 [7] tensor of get_state(), got {} {}",
               state.defined() ? dtype_name(state.dtype()) : "undefined", state.defined() ? state.shape().str() : "");
  const int64_t* v = state.data<int64_t>();
  UNROLL_CHECK(v[5] == 0 || v[5] == 1, "Generator::set_state: element 5 (has_spare) is {}, expected 0 or 1", v[5]);
  UNROLL_CHECK(v[0] != 0 || v[1] != 0 || v[2] != 0 || v[3] != 0,
               "Generator::set_state: the xoshiro state is all zero (not a state from get_state())");
  for (int i = 0; i < 4; ++i) s_[i] = std::bit_cast<uint64_t>(v[i]);
  seed_ = std::bit_cast<uint64_t>(v[4]);
  has_spare_ = v[5] == 1;
  spare_ = std::bit_cast<double>(v[6]);
}

double Generator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
double Generator::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = uniform();
  while (u1 <= 0.0) u1 = uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

int64_t Generator::randint(int64_t lo, int64_t hi) {
  UNROLL_CHECK(hi > lo, "randint: empty range [{}, {})", lo, hi);
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);  // no signed overflow
  // Rejection sampling removes the modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t r;
  do r = next_u64();
  while (r >= limit);
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + r % range);
}

Generator& default_generator() {
  thread_local Generator gen(0);
  return gen;
}
void manual_seed(uint64_t seed) { default_generator() = Generator(seed); }

static void check_random_dtype(const char* op, DType dtype) {
  UNROLL_CHECK(dtype == DType::F32 || dtype == DType::F64, "{}: dtype must be float32 or float64, got {}", op, dtype);
}

Tensor rand(const Shape& shape, Generator& gen, DType dtype) {
  check_random_dtype("rand", dtype);
  return make(shape, dtype, [&](int64_t) { return gen.uniform(); });
}
Tensor randn(const Shape& shape, Generator& gen, DType dtype) {
  check_random_dtype("randn", dtype);
  return make(shape, dtype, [&](int64_t) { return gen.normal(); });
}
Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype) {
  check_random_dtype("uniform", dtype);
  UNROLL_CHECK(lo <= hi, "uniform: lower bound {} is above upper bound {} (or one is NaN)", lo, hi);
  return make(shape, dtype, [&](int64_t) { return gen.uniform(lo, hi); });
}

}  // namespace unroll
