#pragma once
// Fault injection for the test suite (tests/ only). Not part of the API: nothing in
// unroll.h includes this header.
#include <cstdint>

namespace unroll::testing {
/// The next AtomicFile (core/atomic_file.h) to be opened fails with an error once it has
/// written this many bytes (-1: off), as a full disk would.
void set_atomic_write_fault(int64_t fail_after_bytes);
/// Off: write named temporaries even where O_TMPFILE works (the fallback path).
void set_atomic_anonymous_writes(bool enabled);
}  // namespace unroll::testing
