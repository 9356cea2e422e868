#pragma once
// Writing a file so that it is either the old one or the whole new one, never a half, and
// so that nothing is left behind when the writer is killed (Note [crash-safe save] in
// core/atomic_file.cpp). Checkpoints, graph exports and the examples' figures all go
// through it:
//
//   AtomicFile f("model.safetensors", "save_safetensors");  // errors name "save_safetensors"
//   f.write(header.data(), header.size());
//   f.commit();     // fsync, then rename over the path; without commit nothing changes
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace unroll {

class AtomicFile {
public:
  /// Removes the temporaries of dead writers beside `path`, then opens the new file's
  /// temporary (anonymous O_TMPFILE on Linux, else `<path>.tmp-<pid>-<n>`). Errors are
  /// unroll::Error messages that begin with `who`.
  AtomicFile(std::string path, std::string who);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  /// Without commit(): the temporary is removed and `path` is untouched.
  ~AtomicFile();

  void write(const void* data, size_t n);
  void write(std::string_view text) { write(text.data(), text.size()); }
  /// fsync, name (if anonymous), close, rename over the path, sync the directory.
  void commit();

private:
  std::string what() const;  ///< the temporary, for messages
  void link_anonymous();

  std::string path_, who_, name_;
  int fd_ = -1;
  int64_t fault_ = -1;
  int64_t written_ = 0;
  bool anonymous_ = false;
  bool named_ = false;
  bool committed_ = false;
};

/// All of `content` to `path` through an AtomicFile.
void write_file_atomic(const std::string& who, const std::string& path, std::string_view content);

/// Whether new files in `directory` are written anonymously (O_TMPFILE), so that even a
/// kill -9 in the middle of a write leaves nothing behind.
bool atomic_writes_anonymous(const std::string& directory);

}  // namespace unroll
