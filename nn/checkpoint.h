#pragma once
// Checkpoints in the safetensors format, readable by PyTorch (safetensors.torch.load_file)
// and written by it (safetensors.torch.save_file / save_model).
//
// Note [safetensors layout]
//   8 bytes     N, the header length, a little-endian u64
//   N bytes     UTF-8 JSON object: {"__metadata__": {"k": "v", ...},           (optional)
//                 "name": {"dtype": "F32", "shape": [4, 3], "data_offsets": [begin, end]}, ...}
//               padded with trailing spaces (0x20)
//   the rest    the byte buffer; each tensor is row-major little-endian elements at
//               buffer[begin, end), offsets relative to the start of the buffer
// The writer keeps the state_dict order, lays tensors out contiguously in that order, and
// pads the header so the buffer starts at a multiple of 8 bytes.
// The reader trusts nothing: header length (at most 100,000,000 bytes, like the reference
// implementation), strict JSON (UTF-8, escapes, no trailing garbage, nesting at most 64
// deep, no duplicate keys), dtype, shape (non-negative integers, at most kMaxDims, no
// overflow), offsets (two integers, begin <= end, end - begin == numel * element size).
// Like the official spec, the tensors must cover the byte buffer exactly: sorted by
// offset, each begins where the previous one ends and the last ends at the end of the
// file, so overlaps, holes and trailing bytes are all errors. Unknown fields inside a
// tensor entry are validated as JSON and ignored (as the reference reader does).
// F32, F64 and I64 load; the other safetensors dtypes (F16, BF16, I32, ...) are rejected
// as unsupported. Every failure is an unroll::Error naming the file and the problem.
#include "nn/module.h"

#include <cstdint>
#include <map>
#include <span>
#include <string>

namespace unroll {

/// Free-form string -> string metadata (safetensors' "__metadata__").
using Metadata = std::map<std::string, std::string>;

/// Writes tensors (F32, F64 or I64) and metadata as a safetensors file
/// (safetensors.torch.save_file). Atomic and crash-safe (AtomicFile, Note [crash-safe save]
/// in core/atomic_file.cpp): the data goes to an anonymous O_TMPFILE file (Linux; else a named
/// `path.tmp-<pid>-<n>`), is fsynced, then named and renamed over `path`; on any failure
/// the previous file at `path` is untouched and nothing is left behind, and a process
/// killed mid-save leaves nothing (or, on the fallback, a temporary that the next save to
/// `path` removes; a live writer's temporary is never touched).
void save_safetensors(const std::string& path, const StateDict& tensors, const Metadata& metadata = {});

/// The contents of a safetensors file: tensors in header order, and the metadata.
struct SafetensorsFile {
  StateDict tensors;
  Metadata metadata;
};

/// Reads and validates a safetensors file (safetensors.torch.load_file); each tensor keeps
/// its stored dtype.
SafetensorsFile load_safetensors(const std::string& path);

/// The same from bytes in memory; `what` names the source in error messages.
SafetensorsFile parse_safetensors(std::span<const uint8_t> bytes, const std::string& what = "<memory>");

/// Saves m.state_dict() (each tensor in its own dtype) and metadata to `path`.
void save(const Module& m, const std::string& path, const Metadata& metadata = {});

/// Loads `path` into m with m.load_state_dict(tensors, strict) (values converted to each
/// parameter's dtype); returns the file's metadata.
Metadata load(Module& m, const std::string& path, bool strict = true);

}  // namespace unroll
