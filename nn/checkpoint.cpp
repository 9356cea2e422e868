#include "nn/checkpoint.h"

#include "core/atomic_file.h"
#include "core/json.h"

#include <fmt/ranges.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <numeric>
#include <set>
#include <string_view>
#include <system_error>
#include <vector>

namespace unroll {

// The byte buffer is copied as is: safetensors data is little-endian.
static_assert(std::endian::native == std::endian::little, "checkpoint: big-endian hosts are not supported");

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit
constexpr uint64_t kMaxInt64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

std::string errno_text() { return std::system_category().message(errno); }

// ---- dtypes --------------------------------------------------------------------------------

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::Bool: return "BOOL";
  }
  fail("save_safetensors: unknown dtype {}", static_cast<int>(t));
}

/// The other dtypes of the safetensors format: valid files, but not loadable here.
bool is_other_safetensors_dtype(std::string_view s) {
  static constexpr std::string_view kOthers[] = {"U8",      "I8",      "I16",     "U16",     "F16",
                                                 "BF16", "I32",     "U32",     "U64",     "F8_E5M2", "F8_E4M3",
                                                 "C64",  "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"};
  return std::find(std::begin(kOthers), std::end(kOthers), s) != std::end(kOthers);
}

// ---- the header reader ----------------------------------------------------------------------

struct Entry {
  std::string name;
  std::string dtype_text;
  std::vector<uint64_t> shape;
  std::vector<uint64_t> offsets;
  bool has_dtype = false, has_shape = false, has_offsets = false;
  DType dtype = DType::F32;
  uint64_t nbytes = 0;
};

/// One tensor entry {"dtype": ..., "shape": [...], "data_offsets": [b, e]}; other fields are
/// validated and ignored.
Entry read_entry(JsonReader& r, std::string name) {
  Entry e;
  e.name = std::move(name);
  const std::string who = "tensor " + printable(e.name);
  if (r.peek() != '{') r.error("{}: the entry must be an object", who);
  r.object(fmt::format("in the entry of {}", who), [&](std::string field) {
    auto once = [&](bool& seen) {
      if (seen) r.error("{}: duplicate field \"{}\"", who, field);
      seen = true;
    };
    if (field == "dtype") {
      once(e.has_dtype);
      if (r.peek() != '"') r.error("{}: \"dtype\" must be a string", who);
      e.dtype_text = r.string();
    } else if (field == "shape") {
      once(e.has_shape);
      e.shape = r.integer_array(fmt::format("{}: \"shape\"", who), kMaxDims);
    } else if (field == "data_offsets") {
      once(e.has_offsets);
      e.offsets = r.integer_array(fmt::format("{}: \"data_offsets\"", who), 2);
    } else {
      r.skip_value(2);
    }
  });
  if (!e.has_dtype) r.error("{}: missing field \"dtype\"", who);
  if (!e.has_shape) r.error("{}: missing field \"shape\"", who);
  if (!e.has_offsets) r.error("{}: missing field \"data_offsets\"", who);
  return e;
}

/// Checks an entry's dtype, shape and byte count against the buffer (semantic checks after
/// the JSON is known to be well formed).
void check_entry(Entry& e, uint64_t buffer_bytes, const std::string& what) {
  const std::string who = fmt::format("safetensors '{}': tensor {}", what, printable(e.name));
  if (e.dtype_text == "F32") e.dtype = DType::F32;
  else if (e.dtype_text == "F64") e.dtype = DType::F64;
  else if (e.dtype_text == "I64") e.dtype = DType::I64;
  else if (e.dtype_text == "BOOL") e.dtype = DType::Bool;
  else if (is_other_safetensors_dtype(e.dtype_text))
    fail("{}: unsupported dtype {} (unroll reads F32, F64, I64 and BOOL)", who, printable(e.dtype_text));
  else fail("{}: unknown dtype {}", who, printable(e.dtype_text));

  uint64_t numel = 1;
  for (uint64_t d : e.shape) {
    if (d > kMaxInt64 || __builtin_mul_overflow(numel, d, &numel) || numel > kMaxInt64)
      fail("{}: shape [{}] overflows: its element count does not fit in 64 bits", who, fmt::join(e.shape, ","));
  }
  if (__builtin_mul_overflow(numel, dtype_size(e.dtype), &e.nbytes) || e.nbytes > kMaxInt64)
    fail("{}: shape [{}] overflows: its byte count does not fit in 64 bits", who, fmt::join(e.shape, ","));

  if (e.offsets.size() != 2)
    fail("{}: \"data_offsets\" must be two integers [begin, end], got {}", who, e.offsets.size());
  const uint64_t begin = e.offsets[0], end = e.offsets[1];
  if (begin > end) fail("{}: data_offsets [{}, {}] begin after they end", who, begin, end);
  if (end > buffer_bytes)
    fail("{}: data_offsets [{}, {}] reach beyond the end of the {}-byte data buffer", who, begin, end, buffer_bytes);
  if (end - begin != e.nbytes)
    fail("{}: shape [{}] of {} needs {} bytes but data_offsets [{}, {}] hold {}", who, fmt::join(e.shape, ","),
         e.dtype_text, e.nbytes, begin, end, end - begin);
}

/// The spec: tensors cover the byte buffer exactly, without overlaps or holes.
void check_coverage(const std::vector<Entry>& entries, uint64_t buffer_bytes, const std::string& what) {
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return entries[a].offsets < entries[b].offsets; });
  uint64_t cursor = 0;
  const Entry* previous = nullptr;
  for (size_t i : order) {
    const Entry& e = entries[i];
    const uint64_t begin = e.offsets[0];
    if (begin < cursor)
      fail("safetensors '{}': tensors {} [{}, {}] and {} [{}, {}] overlap", what, printable(previous->name),
           previous->offsets[0], previous->offsets[1], printable(e.name), begin, e.offsets[1]);
    if (begin > cursor)
      fail("safetensors '{}': bytes [{}, {}) of the data buffer belong to no tensor (the spec forbids holes)", what,
           cursor, begin);
    previous = &e;
    cursor = e.offsets[1];
  }
  if (cursor != buffer_bytes)
    fail("safetensors '{}': the last {} bytes of the data buffer belong to no tensor", what, buffer_bytes - cursor);
}

// ---- the writer ------------------------------------------------------------------------------

/// s as a JSON string; checkpoint names and metadata must be valid UTF-8 (no byte is
/// silently replaced).
std::string json_string(std::string_view s, std::string_view role) {
  UNROLL_CHECK(valid_utf8(s), "save_safetensors: {} {} is not valid UTF-8", role, printable(s));
  return json_quote(s);
}

/// The header JSON, padded with spaces so that the data starts at a multiple of 8.
std::string make_header(const StateDict& tensors, const Metadata& metadata) {
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) h += ',';
      first = false;
      h += json_string(k, "metadata key") + ':' + json_string(v, "metadata value");
    }
    h += '}';
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    UNROLL_CHECK(name != "__metadata__", "save_safetensors: '__metadata__' is reserved and cannot name a tensor");
    UNROLL_CHECK(t.defined(), "save_safetensors: tensor '{}' is undefined", name);
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    if (h.size() > 1) h += ',';
    h += fmt::format("{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", json_string(name, "tensor name"),
                     safetensors_dtype(t.dtype()), fmt::join(t.shape(), ","), offset, offset + nbytes);
    offset += nbytes;
  }
  h += '}';
  while ((8 + h.size()) % 8 != 0) h += ' ';
  return h;
}

}  // namespace

// ---- public API ------------------------------------------------------------------------------

void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata) {
  const std::string header = make_header(tensors, metadata);
  uint8_t length[8];
  const uint64_t n = header.size();
  std::memcpy(length, &n, 8);

  AtomicFile file(path, "save_safetensors");  // Note [crash-safe save] in core/atomic_file.cpp
  file.write(length, 8);
  file.write(header);
  for (const auto& [name, t] : tensors) file.write(t.raw_data(), static_cast<size_t>(t.numel()) * dtype_size(t.dtype()));
  file.commit();
}

SafetensorsFile parse_safetensors(std::span<const uint8_t> bytes, const std::string& what) {
  UNROLL_CHECK(bytes.size() >= 8, "safetensors '{}': the file has {} bytes, shorter than the 8-byte header length",
               what, bytes.size());
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  UNROLL_CHECK(n <= kMaxHeaderBytes, "safetensors '{}': header length {} is absurd (the limit is {} bytes)", what, n,
               kMaxHeaderBytes);
  UNROLL_CHECK(n <= bytes.size() - 8, "safetensors '{}': header length {} reaches beyond the end of the {}-byte file",
               what, n, bytes.size());
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), static_cast<size_t>(n));
  const std::span<const uint8_t> buffer = bytes.subspan(8 + static_cast<size_t>(n));

  JsonReader r(text, fmt::format("safetensors '{}': header", what));
  if (text.empty() || text[0] != '{') r.error("the header must be a JSON object beginning with '{{'");
  SafetensorsFile out;
  std::vector<Entry> entries;
  std::set<std::string> names;
  bool seen_metadata = false;
  r.object("in the header", [&](std::string key) {
    if (key == "__metadata__") {
      if (seen_metadata) r.error("duplicate key \"__metadata__\"");
      seen_metadata = true;
      if (r.peek() != '{') r.error("\"__metadata__\" must be an object of strings");
      r.object("in \"__metadata__\"", [&](std::string mkey) {
        if (r.peek() != '"') r.error("metadata value of {} must be a string", printable(mkey));
        std::string value = r.string();
        if (!out.metadata.emplace(mkey, std::move(value)).second) r.error("duplicate metadata key {}", printable(mkey));
      });
      return;
    }
    if (!names.insert(key).second) r.error("duplicate tensor name {}", printable(key));
    entries.push_back(read_entry(r, std::move(key)));
  });
  r.expect_end();

  for (Entry& e : entries) check_entry(e, buffer.size(), what);
  check_coverage(entries, buffer.size(), what);

  for (const Entry& e : entries) {
    std::vector<int64_t> dims(e.shape.begin(), e.shape.end());
    Tensor t = Tensor::empty(Shape(std::span<const int64_t>(dims)), e.dtype);
    if (e.nbytes > 0) {
      const uint8_t* src = reinterpret_cast<const uint8_t*>(buffer.data()) + e.offsets[0];
      // A BOOL byte other than 0 or 1 is no bool (reading it as one is undefined behaviour).
      if (e.dtype == DType::Bool)
        for (uint64_t i = 0; i < e.nbytes; ++i)
          if (src[i] > 1)
            fail("safetensors '{}': tensor {}: BOOL element {} holds byte {}, not 0 or 1", what, printable(e.name), i,
                 src[i]);
      std::memcpy(t.raw_data(), src, static_cast<size_t>(e.nbytes));
    }
    out.tensors.insert(e.name, std::move(t));
  }
  return out;
}

SafetensorsFile load_safetensors(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  UNROLL_CHECK(fd >= 0, "load_safetensors: cannot open '{}': {}", path, errno_text());
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  UNROLL_CHECK(::fstat(fd, &st) == 0, "load_safetensors: cannot stat '{}': {}", path, errno_text());
  UNROLL_CHECK(S_ISREG(st.st_mode), "load_safetensors: '{}' is not a regular file", path);
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    UNROLL_CHECK(got >= 0, "load_safetensors: cannot read '{}': {}", path, errno_text());
    UNROLL_CHECK(got > 0, "load_safetensors: '{}' shrank while being read", path);
    done += static_cast<size_t>(got);
  }
  return parse_safetensors(bytes, path);
}

void save(const Module& m, const std::string& path, const Metadata& metadata) {
  save_safetensors(path, m.state_dict(), metadata);
}

Metadata load(Module& m, const std::string& path, bool strict) {
  SafetensorsFile file = load_safetensors(path);
  try {
    m.load_state_dict(file.tensors, strict);
  } catch (const Error& e) {
    fail("load '{}': {}", path, e.what());
  }
  return std::move(file.metadata);
}

}  // namespace unroll
