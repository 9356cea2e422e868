// Crash-safe checkpoints (Note [crash-safe save] in nn/checkpoint.cpp): a child process
// killed with SIGKILL at random points of a large save leaves the previous file loadable
// and, after the next save, no temporary at all; stale temporaries of dead writers are
// removed without touching a live writer's; a full file system and a read-only directory
// give a clear error and keep the previous file.
//
// The child processes are this executable re-run with UNROLL_CRASH_CHILD set: a static
// initializer below runs the child's job before doctest's main and exits.
#include <doctest/doctest.h>

#include <unroll.h>

#include "core/atomic_file.h"
#include "core/testing_hooks.h"
#include "nn/checkpoint.h"
#include "test_support.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

using namespace unroll;
namespace fs = std::filesystem;
using test_support::read_bytes;
using test_support::scratch;

namespace {

constexpr int64_t kBigFloats = 4 << 20;  // 16 MiB of float32 per checkpoint

/// A checkpoint whose every value is `version`, tagged with it in the metadata.
StateDict versioned(int64_t floats, int version) {
  StateDict s;
  s.insert("w", full({floats}, static_cast<double>(version)));
  s.insert("b", full({7}, static_cast<double>(version)));
  return s;
}

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

void say(char c) { (void)!::write(1, &c, 1); }

// ---- the child side ------------------------------------------------------------------------

/// UNROLL_CRASH_CHILD=save: announce 'R', save version UNROLL_CRASH_VERSION of a big
/// checkpoint to UNROLL_CRASH_PATH, announce 'D'.
/// UNROLL_CRASH_CHILD=hold: create and flock `<path>.tmp-<pid>-0` as a live writer does,
/// announce 'R', wait to be killed.
int run_child_if_asked() {
  const std::string mode = env_or("UNROLL_CRASH_CHILD", "");
  if (mode.empty()) return 0;
  const std::string path = env_or("UNROLL_CRASH_PATH", "");
  if (mode == "save") {
    if (env_or("UNROLL_CRASH_FALLBACK", "0") == "1") testing::set_atomic_anonymous_writes(false);
    const int version = std::atoi(env_or("UNROLL_CRASH_VERSION", "1").c_str());
    const StateDict s = versioned(kBigFloats, version);
    say('R');
    save_safetensors(path, s, {{"version", std::to_string(version)}});
    say('D');
    std::_Exit(0);
  }
  if (mode == "hold") {
    const std::string name = fmt::format("{}.tmp-{}-0", path, ::getpid());
    const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) std::_Exit(3);
    say('R');
    for (;;) ::pause();
  }
  std::_Exit(2);
}

[[maybe_unused]] const int g_child = run_child_if_asked();

// ---- the parent side -----------------------------------------------------------------------

/// A running child: this executable in `mode`, its stdout on a pipe.
struct Child {
  pid_t pid = -1;
  int out = -1;

  Child(const std::string& mode, const std::string& path, int version = 1, bool fallback = false) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
      if (std::strncmp(*e, "UNROLL_CRASH_", 13) != 0) env_strings.emplace_back(*e);
    env_strings.push_back("UNROLL_CRASH_CHILD=" + mode);
    env_strings.push_back("UNROLL_CRASH_PATH=" + path);
    env_strings.push_back(fmt::format("UNROLL_CRASH_VERSION={}", version));
    env_strings.push_back(fmt::format("UNROLL_CRASH_FALLBACK={}", fallback ? 1 : 0));
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string exe = fs::read_symlink("/proc/self/exe").string();
    char* argv[] = {exe.data(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    REQUIRE(::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv, envp.data()) == 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out = fds[0];
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      wait();
    }
    if (out >= 0) ::close(out);
  }

  /// The next byte the child announces, or 0 at end of file.
  char next() {
    char c = 0;
    while (true) {
      const ssize_t n = ::read(out, &c, 1);
      if (n < 0 && errno == EINTR) continue;
      return n == 1 ? c : 0;
    }
  }
  int wait() {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid = -1;
    return status;
  }
};

/// Every name in `dir` except `keep`.
std::vector<std::string> others(const fs::path& dir, const std::string& keep) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename() != keep) names.push_back(e.path().filename().string());
  return names;
}

/// The version of the checkpoint at `path`, after checking that every value is it.
int loaded_version(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  const int version = std::stoi(f.metadata.at("version"));
  const Tensor& w = f.tensors.at("w");
  REQUIRE(w.numel() == kBigFloats);
  const float* p = w.data<float>();
  for (int64_t i = 0; i < w.numel(); ++i)
    if (p[i] != static_cast<float>(version)) FAIL("element ", i, " is ", p[i], ", not the version ", version);
  CHECK(equal(f.tensors.at("b"), full({7}, static_cast<double>(version))));
  return version;
}

struct KillResult {
  int kills = 0;
  int completed = 0;       // children that finished their save before the signal
  int leftovers = 0;       // names beside the checkpoint, counted after each kill, summed
  int after_next_save = 0; // ... and after one more save
  double save_ms = 0;
};

/// `kills` children, each killed with SIGKILL after a random delay within one save's
/// duration; after each, the checkpoint must load whole, as the old or the new version.
KillResult kill_during_saves(const fs::path& dir, int kills, bool fallback, uint32_t seed) {
  const std::string path = (dir / "ckpt.safetensors").string();
  KillResult r;
  save_safetensors(path, versioned(kBigFloats, 0), {{"version", "0"}});
  int current = 0;
  {  // one uninterrupted save measures the window to aim at
    Child c("save", path, ++current, fallback);
    REQUIRE(c.next() == 'R');
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(c.next() == 'D');
    r.save_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const int status = c.wait();
    REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    REQUIRE(loaded_version(path) == current);
  }
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> delay_ms(0.0, r.save_ms);
  for (int k = 0; k < kills; ++k) {
    Child c("save", path, current + 1, fallback);
    REQUIRE(c.next() == 'R');
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(delay_ms(rng)));
    ::kill(c.pid, SIGKILL);
    const int status = c.wait();
    ++r.kills;
    if (WIFEXITED(status)) ++r.completed;
    r.leftovers += static_cast<int>(others(dir, "ckpt.safetensors").size());  // before the next save cleans up
    const int v = loaded_version(path);
    CHECK((v == current || v == current + 1));
    current = v;
  }
  save_safetensors(path, versioned(kBigFloats, current + 1), {{"version", std::to_string(current + 1)}});
  CHECK(loaded_version(path) == current + 1);
  r.after_next_save = static_cast<int>(others(dir, "ckpt.safetensors").size());
  return r;
}

/// A private mount namespace for this process, so that tmpfs mounts vanish with it: as
/// root a plain one, otherwise inside a user namespace. Empty on success, else the reason.
std::string enter_private_mount_namespace() {
  static std::string reason = [] {
    if (::unshare(CLONE_NEWNS) != 0) {
      const uid_t uid = ::getuid();
      const gid_t gid = ::getgid();
      if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return fmt::format("cannot create a mount namespace: {}", std::strerror(errno));
      auto write_file = [](const char* p, const std::string& s) {
        std::ofstream f(p);
        f << s;
        return static_cast<bool>(f.flush());
      };
      write_file("/proc/self/setgroups", "deny");
      if (!write_file("/proc/self/uid_map", fmt::format("0 {} 1\n", uid)) ||
          !write_file("/proc/self/gid_map", fmt::format("0 {} 1\n", gid)))
        return std::string("cannot map the user in a user namespace");
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      return fmt::format("cannot make the mounts private: {}", std::strerror(errno));
    return std::string();
  }();
  return reason;
}

/// Mounts a tmpfs of `size` at `dir`; empty on success, else the reason.
std::string mount_tmpfs(const fs::path& dir, const std::string& size) {
  if (std::string why = enter_private_mount_namespace(); !why.empty()) return why;
  const std::string opts = "size=" + size;
  if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) != 0)
    return fmt::format("cannot mount a tmpfs: {}", std::strerror(errno));
  return {};
}

}  // namespace

TEST_CASE("kill -9 at random points of a 16 MiB save: previous file intact, zero temporaries left") {
  const fs::path dir = scratch("kill");
  const bool anonymous = atomic_writes_anonymous(dir.string());
  const KillResult r = kill_during_saves(dir, 30, /*fallback=*/false, 17);
  MESSAGE(fmt::format("O_TMPFILE {}: {} kills ({} finished first; one save {:.1f} ms): {} names left beside the "
                      "checkpoint in all (counted after each kill), {} after the next save",
                      anonymous ? "on" : "unavailable", r.kills, r.completed, r.save_ms, r.leftovers, r.after_next_save));
  CHECK(r.kills == 30);
  CHECK(r.after_next_save == 0);
  // The kills must have hit saves in progress, not only finished ones.
  CHECK(r.completed < r.kills);
}

TEST_CASE("kill -9 with the named-temporary fallback: the next save removes what the kills left") {
  const fs::path dir = scratch("kill_fallback");
  const KillResult r = kill_during_saves(dir, 12, /*fallback=*/true, 29);
  MESSAGE(fmt::format("fallback: {} kills ({} finished first; one save {:.1f} ms): {} temporaries left in all (counted "
                      "after each kill), {} after the next save",
                      r.kills, r.completed, r.save_ms, r.leftovers, r.after_next_save));
  CHECK(r.kills == 12);
  CHECK(r.after_next_save == 0);
}

TEST_CASE("stale temporaries: dead writers' are removed, a live writer's and unrelated files are not") {
  const fs::path dir = scratch("stale");
  const std::string path = (dir / "m.safetensors").string();
  auto touch = [](const fs::path& p) { std::ofstream(p) << "partial"; };

  pid_t dead = -1;
  {
    Child c("hold", path);
    REQUIRE(c.next() == 'R');
    dead = c.pid;
  }  // killed and reaped: its pid is dead, its locked file is now stale
  REQUIRE(::kill(dead, 0) != 0);
  const fs::path dead_locked = fmt::format("{}.tmp-{}-0", path, dead);
  const fs::path dead_old_style = fmt::format("{}.tmp-{}", path, dead);  // names written before the lock
  touch(dead_old_style);

  Child live("hold", path);
  REQUIRE(live.next() == 'R');
  const fs::path live_locked = fmt::format("{}.tmp-{}-0", path, live.pid);
  const fs::path live_unlocked = fmt::format("{}.tmp-{}-5", path, live.pid);  // alive: not stale
  touch(live_unlocked);
  // A dead pid whose file someone still holds locked (another namespace's writer) is live.
  const fs::path dead_but_locked = fmt::format("{}.tmp-{}-9", path, dead);
  touch(dead_but_locked);
  const int lock_fd = ::open(dead_but_locked.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(lock_fd >= 0);
  REQUIRE(::flock(lock_fd, LOCK_EX) == 0);
  const std::vector<fs::path> unrelated = {
      fmt::format("{}/other.safetensors.tmp-{}", dir.string(), dead),
      fmt::format("{}.tmp-{}x", path, dead),
      fmt::format("{}.tmp-", path),
      fmt::format("{}.tmp-{}-0-1", path, dead),
      dir / "notes.txt",
  };
  for (const auto& p : unrelated) touch(p);
  REQUIRE(fs::exists(dead_locked));

  save_safetensors(path, versioned(16, 1), {{"version", "1"}});
  CHECK_FALSE(fs::exists(dead_locked));
  CHECK_FALSE(fs::exists(dead_old_style));
  CHECK(fs::exists(live_locked));
  CHECK(fs::exists(live_unlocked));
  CHECK(fs::exists(dead_but_locked));
  for (const auto& p : unrelated) CHECK(fs::exists(p));

  // Once the lock is released, the file of the dead pid is stale and goes at the next save.
  ::close(lock_fd);
  save_safetensors(path, versioned(16, 2), {{"version", "2"}});
  CHECK_FALSE(fs::exists(dead_but_locked));
  CHECK(fs::exists(live_locked));
  CHECK(load_safetensors(path).metadata.at("version") == "2");
}

TEST_CASE("a full file system: a clear error, the previous file intact, nothing left, the space given back") {
  const fs::path dir = scratch("full");
  if (std::string why = mount_tmpfs(dir, "1m"); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  const std::string path = (dir / "c.safetensors").string();
  save_safetensors(path, versioned(50'000, 1), {{"version", "1"}});  // 200 KB of the 1 MiB
  const std::vector<uint8_t> before = read_bytes(path);
  for (bool anonymous : {true, false}) {
    CAPTURE(anonymous);
    testing::set_atomic_anonymous_writes(anonymous);
    CHECK_THROWS_WITH_AS(save_safetensors(path, versioned(500'000, 2), {{"version", "2"}}),  // 2 MB
                         doctest::Contains("No space left on device"), Error);
    CHECK(read_bytes(path) == before);
    CHECK(others(dir, "c.safetensors").empty());
    // The failed save's blocks were given back: a save of 600 KB (which needs the old
    // file's 200 KB as well until the rename) fits.
    save_safetensors(path, versioned(150'000, 3), {{"version", "3"}});
    CHECK(load_safetensors(path).metadata.at("version") == "3");
    save_safetensors(path, versioned(50'000, 1), {{"version", "1"}});
    CHECK(read_bytes(path) == before);
  }
  testing::set_atomic_anonymous_writes(true);
  CHECK(::umount(dir.c_str()) == 0);
}

TEST_CASE("a read-only directory: a clear error naming the file, the previous file intact") {
  const fs::path dir = scratch("readonly");
  if (std::string why = mount_tmpfs(dir, "1m"); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  const std::string path = (dir / "c.safetensors").string();
  save_safetensors(path, versioned(1000, 1), {{"version", "1"}});
  const std::vector<uint8_t> before = read_bytes(path);
  // root ignores file permissions, so the directory is made read-only by remounting.
  REQUIRE(::mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0);
  for (bool anonymous : {true, false}) {
    CAPTURE(anonymous);
    testing::set_atomic_anonymous_writes(anonymous);
    CHECK_THROWS_WITH_AS(save_safetensors(path, versioned(1000, 2)),
                         doctest::Contains(fmt::format("cannot create '{}.tmp-", path).c_str()), Error);
    CHECK_THROWS_WITH_AS(save_safetensors(path, versioned(1000, 2)), doctest::Contains("Read-only file system"), Error);
    CHECK(read_bytes(path) == before);
    CHECK(others(dir, "c.safetensors").empty());
  }
  testing::set_atomic_anonymous_writes(true);
  CHECK(::umount(dir.c_str()) == 0);
}

// The same without a mount: a directory the writer may not write to (mode 0555). Root
// ignores permissions, so then the saves run in a child process that first drops to the
// user nobody (65534); the child reports by its exit status.
TEST_CASE("a directory without write permission (0555): a clear error naming the file, the previous file intact") {
  const fs::path dir = scratch("nowrite");
  const std::string path = (dir / "c.safetensors").string();
  save_safetensors(path, versioned(1000, 1), {{"version", "1"}});
  const std::vector<uint8_t> before = read_bytes(path);
  using fs::perms;
  fs::permissions(dir, perms::owner_read | perms::owner_exec | perms::group_read | perms::group_exec |
                           perms::others_read | perms::others_exec);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::geteuid() == 0 && ::setuid(65534) != 0) ::_exit(64);  // cannot drop root: skip
    int bad = 0;
    for (bool anonymous : {true, false}) {
      testing::set_atomic_anonymous_writes(anonymous);
      try {
        save_safetensors(path, versioned(1000, 2));
        bad |= 1;  // it wrote
      } catch (const Error& e) {
        const std::string what = e.what();
        if (what.find(fmt::format("cannot create '{}", path)) == std::string::npos) bad |= 2;
        if (what.find("Permission denied") == std::string::npos) bad |= 4;
      }
    }
    ::_exit(bad);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  fs::permissions(dir, perms::owner_all, fs::perm_options::add);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 64) {
    MESSAGE("skipped: running as root and cannot drop to uid 65534");
    return;
  }
  CHECK_MESSAGE(WEXITSTATUS(status) == 0, "child status " << WEXITSTATUS(status)
                                                           << " (1: the save succeeded, 2: the error names no file, 4: "
                                                              "no 'Permission denied')");
  CHECK(read_bytes(path) == before);
  CHECK(others(dir, "c.safetensors").empty());
}
