#!/usr/bin/env bash
# Developer entry point for unroll. Run `./scripts/dev.sh help` for the list of commands.
#
# Environment knobs (all optional):
#   UNROLL_WERROR=ON          add -Werror (default OFF; passed at every configure, so it
#                             does not stick in the build directory's cache)
#   UNROLL_CMAKE_ARGS="..."   extra arguments for every CMake configure (word-split)
#   UNROLL_JOBS=N             build/test parallelism (default 2)
#   UNROLL_BUILD_DIR          default build
#   UNROLL_ASAN_BUILD_DIR     default build-asan
#   UNROLL_TSAN_BUILD_DIR     default build-tsan
#   UNROLL_TSAN_TESTS         tests built and run by `tsan` (default "test_threads test_determinism")
#   UNROLL_CONSUMER_DIR       default build-consumer (library build used by `consumer`)
#   UNROLL_SKIP_DEPS=1        do not check or install Debian packages
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

JOBS=${UNROLL_JOBS:-2}
BUILD_DIR=${UNROLL_BUILD_DIR:-build}
ASAN_DIR=${UNROLL_ASAN_BUILD_DIR:-build-asan}
TSAN_DIR=${UNROLL_TSAN_BUILD_DIR:-build-tsan}
TSAN_TESTS=${UNROLL_TSAN_TESTS:-test_threads test_determinism}
CONSUMER_DIR=${UNROLL_CONSUMER_DIR:-build-consumer}

# Debian packages needed to build and test.
PACKAGES=(cmake g++ ninja-build libfmt-dev doctest-dev)

usage() {
  cat <<'EOF'
usage: ./scripts/dev.sh <command> [args...]

  deps               install the missing Debian packages (cmake g++ ninja-build libfmt-dev doctest-dev)
  demo [args...]     build (Release, build/) and run build/examples/demo with the args
  test [ctest args]  build everything (Release, build/) and run all tests with ctest
  asan [ctest args]  build with ASan+UBSan (build-asan/) and run all tests
  tsan [ctest args]  build the thread tests with clang ThreadSanitizer (build-tsan/) and run them
  consumer           install the library to a temp prefix, build and run tests/consumer against it
  bench [args...]    build (Release, build/) and run every bench program with the args
  help               this text

Every command except help and deps runs `deps` first. See the top of this script for
environment knobs (UNROLL_WERROR=ON, UNROLL_CMAKE_ARGS, UNROLL_JOBS, ...).
EOF
}

# log, die, run; install_debian_packages
source "$ROOT/scripts/lib/log.sh"
source "$ROOT/scripts/lib/deps.sh"
abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$ROOT/$1" ;; esac; }

# ---------------------------------------------------------------------------------------
cmd_deps() {
  install_debian_packages --hint "cmake, a C++20 compiler, fmt, doctest (and ninja)" --require cmake "${PACKAGES[@]}"
}

# configure <build dir> [cmake args...]
configure() {
  local dir=$1
  shift
  local args=(-S "$ROOT" -B "$dir")
  # Pick Ninja for a fresh build dir only; an existing dir keeps its generator.
  if [ ! -f "$dir/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then
    args+=(-G Ninja)
  fi
  args+=("-DUNROLL_WERROR=${UNROLL_WERROR:-OFF}" "$@")
  if [ -n "${UNROLL_CMAKE_ARGS:-}" ]; then
    # shellcheck disable=SC2206  # word splitting is intended
    args+=(${UNROLL_CMAKE_ARGS})
  fi
  run cmake "${args[@]}"
}

build() { # build <dir> [cmake --build args...]
  local dir=$1
  shift
  run cmake --build "$dir" -j "$JOBS" "$@"
}

configure_main() {
  configure "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
    -DUNROLL_BUILD_TESTS=ON -DUNROLL_BUILD_BENCH=ON -DUNROLL_BUILD_EXAMPLES=ON
}

# ---------------------------------------------------------------------------------------
cmd_demo() {
  cmd_deps
  [ -f examples/demo.cpp ] || die "examples/demo.cpp does not exist yet"
  log "demo: configure + build ($BUILD_DIR, Release)"
  configure_main
  build "$BUILD_DIR" --target demo
  log "demo: run"
  run "$BUILD_DIR/examples/demo" "$@"
}

cmd_test() {
  cmd_deps
  # tests/test_html.cpp opens the generated pages in a headless browser; it skips, saying
  # why, where chromium is missing, so a failed install here is not fatal.
  ( install_debian_packages --hint "chromium (for the browser test)" chromium ) ||
    log "test: chromium could not be installed: tests/test_html.cpp will skip its browser check"
  log "test: configure + build everything ($BUILD_DIR, Release)"
  configure_main
  build "$BUILD_DIR"
  log "test: ctest"
  run ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@"
}

cmd_asan() {
  cmd_deps
  log "asan: configure + build with AddressSanitizer + UBSan ($ASAN_DIR, Debug at -O1)"
  configure "$ASAN_DIR" -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g" \
    -DUNROLL_SANITIZE=ON -DUNROLL_BUILD_TESTS=ON -DUNROLL_BUILD_BENCH=OFF -DUNROLL_BUILD_EXAMPLES=ON
  build "$ASAN_DIR"
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:strict_init_order=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  log "asan: ctest (ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS)"
  run ctest --test-dir "$ASAN_DIR" --output-on-failure -j "$JOBS" "$@"
}

cmd_tsan() {
  cmd_deps
  install_debian_packages --hint "clang (for ThreadSanitizer)" --require clang++ clang
  command -v clang++ >/dev/null 2>&1 || die "tsan needs clang++ (apt-get install clang)"
  # shellcheck disable=SC2206  # word splitting is intended
  local tests=(${TSAN_TESTS})
  log "tsan: configure + build ${tests[*]} with ThreadSanitizer ($TSAN_DIR, clang, Debug at -O1)"
  if [ ! -f "$TSAN_DIR/CMakeCache.txt" ]; then
    CC=clang CXX=clang++ configure "$TSAN_DIR" -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g" \
      -DUNROLL_TSAN=ON -DUNROLL_BUILD_TESTS=ON -DUNROLL_BUILD_BENCH=OFF -DUNROLL_BUILD_EXAMPLES=OFF \
      -DUNROLL_BUILD_TOOLS=OFF
  else
    configure "$TSAN_DIR"
  fi
  build "$TSAN_DIR" --target "${tests[@]}"
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
  local regex
  regex="^($(IFS='|'; echo "${tests[*]}"))\$"
  log "tsan: ctest (TSAN_OPTIONS=$TSAN_OPTIONS)"
  if [ $# -eq 0 ]; then set -- -R "$regex"; fi
  run ctest --test-dir "$TSAN_DIR" --output-on-failure -j "$JOBS" "$@"
}

CONSUMER_TMP=""
cleanup_consumer() { if [ -n "$CONSUMER_TMP" ]; then rm -rf "$CONSUMER_TMP"; fi; }

cmd_consumer() {
  cmd_deps
  [ -f unroll.h ] || die "unroll.h (the umbrella header) does not exist yet; tests/consumer includes it"
  local lib
  lib=$(abspath "$CONSUMER_DIR")
  CONSUMER_TMP=$(mktemp -d "${TMPDIR:-/tmp}/unroll-consumer.XXXXXX")
  trap cleanup_consumer EXIT
  local prefix="$CONSUMER_TMP/prefix" app="$CONSUMER_TMP/app"

  log "consumer: build the library alone ($CONSUMER_DIR, Release, no tests/bench/examples)"
  configure "$lib" -DCMAKE_BUILD_TYPE=Release \
    -DUNROLL_BUILD_TESTS=OFF -DUNROLL_BUILD_BENCH=OFF -DUNROLL_BUILD_EXAMPLES=OFF -DUNROLL_INSTALL=ON
  build "$lib"

  log "consumer: install to $prefix"
  run cmake --install "$lib" --prefix "$prefix"
  [ -f "$prefix/include/unroll/unroll.h" ] || die "install did not produce include/unroll/unroll.h"
  if grep -rlF -- "$ROOT" "$prefix"/lib*/cmake/unroll; then
    die "the installed CMake package refers to the source tree ($ROOT)"
  fi

  log "consumer: build tests/consumer against the installed package"
  local gen=()
  if command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); fi
  run cmake -S tests/consumer -B "$app" ${gen[@]+"${gen[@]}"} -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_PREFIX_PATH=$prefix"
  build "$app"
  log "consumer: run"
  run "$app/unroll_consumer"
  log "consumer: OK"
}

cmd_bench() {
  cmd_deps
  log "bench: configure + build ($BUILD_DIR, Release)"
  configure_main
  build "$BUILD_DIR" --target unroll_benches
  local src name ran=0
  shopt -s nullglob
  for src in bench/bench_*.cpp; do
    name=$(basename "$src" .cpp)
    log "bench: $name"
    run "$BUILD_DIR/bench/$name" "$@"
    ran=$((ran + 1))
  done
  if [ "$ran" -eq 0 ]; then log "bench: no bench/bench_*.cpp yet"; fi
}

# ---------------------------------------------------------------------------------------
cmd=${1:-help}
if [ $# -gt 0 ]; then shift; fi
case $cmd in
  deps) cmd_deps ;;
  demo) cmd_demo "$@" ;;
  test) cmd_test "$@" ;;
  asan) cmd_asan "$@" ;;
  tsan) cmd_tsan "$@" ;;
  consumer) cmd_consumer ;;
  bench) cmd_bench "$@" ;;
  help | -h | --help) usage ;;
  *)
    usage >&2
    die "unknown command '$cmd'"
    ;;
esac
