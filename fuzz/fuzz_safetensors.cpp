// Fuzz target: safetensors checkpoints (nn/checkpoint.h) from arbitrary bytes.
//
// parse_safetensors must either throw unroll::Error or return tensors whose bytes all came
// from the input; load_safetensors must behave the same on the bytes written to a file; a
// parsed state_dict loaded into a Linear (strict and not) must either fit or throw. Any
// crash, sanitizer report or broken invariant (__builtin_trap) is a bug.
#include <unroll.h>

#include "nn/checkpoint.h"

#include <fmt/format.h>

#include <cstdint>
#include <span>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

using namespace unroll;

namespace {

/// Reads every element (ASan checks the storage) and prints small tensors.
void touch(const Tensor& t) {
  if (t.numel() > 4096) return;
  if (t.dtype() == DType::I64) {
    if (t.to_indices().size() != static_cast<size_t>(t.numel())) __builtin_trap();
  } else if (t.to_vector().size() != static_cast<size_t>(t.numel())) {
    __builtin_trap();
  }
  if (to_string(t).empty()) __builtin_trap();
}

void check(const SafetensorsFile& f, size_t input_bytes) {
  uint64_t total = 0;
  for (const auto& [name, t] : f.tensors) {
    total += static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    touch(t);
  }
  if (total > input_bytes) __builtin_trap();  // data that was not in the file
  Linear model(3, 2);
  for (bool strict : {false, true}) {
    try {
      model.load_state_dict(f.tensors, strict);
    } catch (const Error&) {
    }
  }
}

/// An in-memory file (memfd) holding data[0, size), named by its /proc/self/fd path: the file
/// path of load_safetensors without touching a disk.
const std::string* memory_file(const uint8_t* data, size_t size) {
  static const int fd = ::memfd_create("unroll-fuzz-safetensors", MFD_CLOEXEC);
  static const std::string path = fmt::format("/proc/self/fd/{}", fd);
  if (fd < 0 || ::ftruncate(fd, 0) != 0) return nullptr;
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) return nullptr;
    done += static_cast<size_t>(n);
  }
  return &path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  bool parsed = false;
  try {
    check(parse_safetensors(bytes, "fuzz"), size);
    parsed = true;
  } catch (const Error&) {
  }
  // The file path gives the same verdict.
  if (const std::string* path = memory_file(data, size)) {
    bool loaded = false;
    try {
      check(load_safetensors(*path), size);
      loaded = true;
    } catch (const Error&) {
    }
    if (loaded != parsed) __builtin_trap();
  }
  return 0;
}
