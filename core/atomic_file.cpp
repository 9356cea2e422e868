// Atomic, crash-safe file writes (core/atomic_file.h).
#include "core/atomic_file.h"

#include "core/error.h"
#include "core/testing_hooks.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <limits>
#include <system_error>
#include <vector>

namespace unroll {

// Note [crash-safe save]
//   A save must leave nothing behind, even when the process is killed (kill -9, OOM,
//   power loss) at any instruction. On Linux the data goes into an anonymous file
//   (open(dir, O_TMPFILE)), which the kernel frees if the process dies; only when it is
//   complete and synced is it given a name, `<path>.tmp-<pid>-<n>` (linkat), and renamed
//   over `<path>` (rename is atomic). A crash can leave a named temporary only in the few
//   microseconds between linkat and rename. Where O_TMPFILE is unsupported (other file
//   systems or kernels) the data is written to `<path>.tmp-<pid>-<n>` directly; a crash
//   then leaves that file.
//   Either way the next save to `<path>` removes the temporaries of dead writers: a
//   writer holds an exclusive flock on its temporary for its whole life (the kernel
//   drops it when the process dies), so a temporary is stale only if its flock can be
//   taken *and* the pid in its name is not a live process (the pid check covers the
//   instant between creating the file and locking it, and files written by versions
//   that did not lock). A live writer's file, in this or another process, is never
//   touched; a stale file whose pid has been reused by another process is left for a
//   later save.

namespace {

std::atomic<int64_t> g_write_fault{-1};
std::atomic<bool> g_use_tmpfile{true};
std::atomic<uint64_t> g_save_counter{0};

std::string errno_text() { return std::system_category().message(errno); }

std::string parent_directory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

/// `<base>.tmp-<pid>` or `<base>.tmp-<pid>-<n>`: the pid, else -1.
int64_t temporary_pid(std::string_view entry, std::string_view base) {
  const std::string prefix = fmt::format("{}.tmp-", base);
  if (entry.size() <= prefix.size() || entry.substr(0, prefix.size()) != prefix) return -1;
  std::string_view rest = entry.substr(prefix.size());
  const size_t dash = rest.find('-');
  std::string_view pid = rest.substr(0, dash);
  auto digits = [](std::string_view d) {
    return !d.empty() && d.size() <= 18 && std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(pid)) return -1;
  if (dash != std::string_view::npos && !digits(rest.substr(dash + 1))) return -1;
  return std::stoll(std::string(pid));
}

/// Removes the temporaries of dead writers beside `path` (Note [crash-safe save]). Best
/// effort: anything it cannot open, lock or remove is left alone.
void remove_stale_temporaries(const std::string& path) {
  const std::string dir = parent_directory(path);
  const std::string base = std::filesystem::path(path).filename().string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  DIR* d = ::fdopendir(dfd);
  if (d == nullptr) {
    ::close(dfd);
    return;
  }
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    const int64_t pid = temporary_pid(e->d_name, base);
    if (pid <= 0 || pid == ::getpid() || pid > std::numeric_limits<pid_t>::max()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to probe)
    const int fd = ::openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_EX | LOCK_NB) == 0) stale.emplace_back(e->d_name);
    ::close(fd);  // drops the lock; the writer is dead, nobody else creates this name
  }
  for (const std::string& name : stale) (void)::unlinkat(dfd, name.c_str(), 0);
  ::closedir(d);  // closes dfd
}

/// Makes a completed rename durable. Best effort: the new file is already in place, so a
/// directory that cannot be synced is not an error of the save.
void sync_parent_directory(const std::string& path) {
  const int fd = ::open(parent_directory(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(std::string path, std::string who)
    : path_(std::move(path)),
      who_(std::move(who)),
      name_(fmt::format("{}.tmp-{}-{}", path_, ::getpid(), g_save_counter.fetch_add(1))),
      fault_(g_write_fault.exchange(-1)) {
  remove_stale_temporaries(path_);
#ifdef O_TMPFILE
  if (g_use_tmpfile.load()) {
    fd_ = ::open(parent_directory(path_).c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    anonymous_ = fd_ >= 0;
  }
#endif
  if (fd_ < 0) {
    fd_ = ::open(name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    UNROLL_CHECK(fd_ >= 0, "{}: cannot create '{}': {}", who_, name_, errno_text());
    named_ = true;
  }
  (void)::flock(fd_, LOCK_EX | LOCK_NB);  // marks the file live (Note [crash-safe save])
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (named_ && !committed_) ::unlink(name_.c_str());
}

std::string AtomicFile::what() const { return anonymous_ ? fmt::format("{} (anonymous)", name_) : name_; }

void AtomicFile::write(const void* data, size_t n) {
  auto p = static_cast<const char*>(data);
  size_t allowed = n;
  if (fault_ >= 0) allowed = std::min<uint64_t>(n, static_cast<uint64_t>(std::max<int64_t>(fault_ - written_, 0)));
  while (allowed > 0) {
    const ssize_t w = ::write(fd_, p, allowed);
    if (w < 0 && errno == EINTR) continue;
    UNROLL_CHECK(w > 0, "{}: cannot write '{}': {}", who_, what(), errno_text());
    p += w;
    allowed -= static_cast<size_t>(w);
    n -= static_cast<size_t>(w);
    written_ += w;
  }
  UNROLL_CHECK(n == 0, "{}: cannot write '{}': simulated fault after {} bytes (unroll::testing)", who_, what(),
               written_);
}

void AtomicFile::commit() {
  UNROLL_CHECK(!committed_ && fd_ >= 0, "{}: '{}' was already committed", who_, path_);
  UNROLL_CHECK(::fsync(fd_) == 0, "{}: cannot sync '{}': {}", who_, what(), errno_text());
  if (anonymous_) link_anonymous();
  const int fd = fd_;
  fd_ = -1;
  UNROLL_CHECK(::close(fd) == 0, "{}: cannot close '{}': {}", who_, name_, errno_text());
  UNROLL_CHECK(::rename(name_.c_str(), path_.c_str()) == 0, "{}: cannot rename '{}' to '{}': {}", who_, name_, path_,
               errno_text());
  committed_ = true;
  sync_parent_directory(path_);
}

// Gives the anonymous file its temporary name: linkat(AT_EMPTY_PATH) needs
// CAP_DAC_READ_SEARCH, the /proc/self/fd link works for everyone with /proc.
void AtomicFile::link_anonymous() {
  int rc = ::linkat(fd_, "", AT_FDCWD, name_.c_str(), AT_EMPTY_PATH);
  if (rc != 0) {
    const std::string proc = fmt::format("/proc/self/fd/{}", fd_);
    rc = ::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, name_.c_str(), AT_SYMLINK_FOLLOW);
  }
  UNROLL_CHECK(rc == 0, "{}: cannot link the written file as '{}': {}", who_, name_, errno_text());
  named_ = true;
}

void write_file_atomic(const std::string& who, const std::string& path, std::string_view content) {
  AtomicFile f(path, who);
  f.write(content);
  f.commit();
}

bool atomic_writes_anonymous(const std::string& directory) {
#ifdef O_TMPFILE
  const int fd = ::open(directory.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  ::close(fd);
  return true;
#else
  (void)directory;
  return false;
#endif
}

}  // namespace unroll

namespace unroll::testing {
void set_atomic_write_fault(int64_t fail_after_bytes) { unroll::g_write_fault.store(fail_after_bytes); }
void set_atomic_anonymous_writes(bool enabled) { unroll::g_use_tmpfile.store(enabled); }
}  // namespace unroll::testing
