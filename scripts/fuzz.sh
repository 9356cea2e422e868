#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.cpp) with clang + ASan + UBSan and runs each one,
# one process at a time, from its seed corpus fuzz/corpus/<target>/. Fails on any crash,
# sanitizer report, timeout or out-of-memory; the input that caused it is left in
# <build dir>/artifacts/ and the command to reproduce it is printed.
#
#   ./scripts/fuzz.sh              30 seconds per target
#   ./scripts/fuzz.sh 300          300 seconds per target
#   ./scripts/fuzz.sh --runs N     N executions per target (after replaying the corpus)
#
# New inputs that reach new code go to <build dir>/corpus/<target>/ (the committed seeds are
# only read), so later runs resume from them. A crash found and fixed: add its input to
# fuzz/corpus/<target>/ (and a regression test) so every later run replays it.
#
# Environment knobs (all optional):
#   UNROLL_FUZZ_BUILD_DIR   default build-fuzz
#   UNROLL_FUZZ_TARGETS     space-separated subset of targets (default: all)
#   UNROLL_JOBS=N           build parallelism (default 2)
#   UNROLL_SKIP_DEPS=1      do not check or install Debian packages
#   CXX                     the clang++ to use (default clang++)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

JOBS=${UNROLL_JOBS:-2}
BUILD_DIR=${UNROLL_FUZZ_BUILD_DIR:-build-fuzz}
CLANGXX=${CXX:-clang++}
case $CLANGXX in *clang*) ;; *) CLANGXX=clang++ ;; esac

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
# log, die, run; install_debian_packages
source "$ROOT/scripts/lib/log.sh"
source "$ROOT/scripts/lib/deps.sh"

SECONDS_PER_TARGET=30
RUNS=""
while [ $# -gt 0 ]; do
  case $1 in
    --runs)
      [ $# -ge 2 ] || die "--runs needs a number"
      RUNS=$2
      shift 2
      ;;
    --runs=*)
      RUNS=${1#--runs=}
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      SECONDS_PER_TARGET=$1
      shift
      ;;
  esac
done
[[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || die "seconds per target must be a whole number, got '$SECONDS_PER_TARGET'"
[ -z "$RUNS" ] || [[ $RUNS =~ ^[0-9]+$ ]] || die "--runs must be a whole number, got '$RUNS'"

# ---- dependencies: clang and the libFuzzer runtime (compiler-rt) ---------------------------
# True when clang can link a libFuzzer program with ASan and UBSan.
libfuzzer_works() {
  local tmp
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/unroll-fuzz-probe.XXXXXX")
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$tmp/p.cpp"
  local ok=1
  "$CLANGXX" -fsanitize=fuzzer,address,undefined "$tmp/p.cpp" -o "$tmp/p" >/dev/null 2>&1 || ok=0
  rm -rf "$tmp"
  [ "$ok" = 1 ]
}

deps() {
  install_debian_packages --hint "cmake, clang with libFuzzer and fmt" cmake ninja-build libfmt-dev clang
  if debian_deps_enabled && ! libfuzzer_works; then
    # Debian ships libFuzzer with compiler-rt: libclang-rt-<major>-dev for clang <major>.
    local major
    major=$("$CLANGXX" -dumpversion | cut -d. -f1)
    log "deps: clang $major cannot link -fsanitize=fuzzer; installing libclang-rt-$major-dev"
    install_debian_packages "libclang-rt-$major-dev"
  fi
  command -v "$CLANGXX" >/dev/null 2>&1 || die "$CLANGXX not found"
  libfuzzer_works || die "$CLANGXX cannot link -fsanitize=fuzzer,address,undefined (is compiler-rt installed?)"
  log "deps: $("$CLANGXX" --version | head -1) with libFuzzer"
}

start=$(date +%s)
deps

# ---- build ------------------------------------------------------------------------------
log "build: $BUILD_DIR (clang, -O1 -g, ASan + UBSan + libFuzzer; no tests, benches or examples)"
args=(-S "$ROOT" -B "$BUILD_DIR")
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then args+=(-G Ninja); fi
run cmake "${args[@]}" "-DCMAKE_CXX_COMPILER=$CLANGXX" -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g" \
  -DUNROLL_WERROR=OFF -DUNROLL_SANITIZE=OFF -DUNROLL_BUILD_FUZZ=ON -DUNROLL_BUILD_TESTS=OFF \
  -DUNROLL_BUILD_BENCH=OFF -DUNROLL_BUILD_EXAMPLES=OFF -DUNROLL_BUILD_TOOLS=OFF -DUNROLL_INSTALL=OFF
run cmake --build "$BUILD_DIR" -j "$JOBS" --target unroll_fuzzers

# ---- run ----------------------------------------------------------------------------------
if [ -n "${UNROLL_FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$UNROLL_FUZZ_TARGETS"
else
  targets=()
  for src in fuzz/fuzz_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
fi
[ ${#targets[@]} -gt 0 ] || die "no fuzz targets (fuzz/fuzz_*.cpp)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$BUILD_DIR/artifacts" "$BUILD_DIR/logs"
summary=()
failed=()
for t in "${targets[@]}"; do
  bin="$BUILD_DIR/fuzz/$t"
  [ -x "$bin" ] || die "no binary $bin"
  seeds="fuzz/corpus/$t"
  work="$BUILD_DIR/corpus/$t"
  mkdir -p "$work" "$seeds"
  flags=(-timeout=25 -rss_limit_mb=2048 -print_final_stats=1 "-artifact_prefix=$BUILD_DIR/artifacts/$t-")
  if [ -n "$RUNS" ]; then flags+=("-runs=$RUNS"); else flags+=("-max_total_time=$SECONDS_PER_TARGET"); fi
  if [ -n "$RUNS" ]; then what="$RUNS runs"; else what="$SECONDS_PER_TARGET s"; fi
  log "fuzz: $t ($what)"
  logf="$BUILD_DIR/logs/$t.log"
  set +e
  run "$bin" "${flags[@]}" "$work" "$seeds" >"$logf" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logf" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$logf" | tail -1)
  corpus=$(find "$work" -type f | wc -l)
  summary+=("$(printf '%-24s %12s execs %8s exec/s   %-22s corpus %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-cov: ?}" "$corpus")")
  if [ "$rc" -ne 0 ]; then
    tail -60 "$logf" >&2
    artifact=$(grep -Eo "Test unit written to [^ ]+" "$logf" | tail -1 | sed 's/Test unit written to //')
    failed+=("$t (exit $rc${artifact:+; reproduce: $bin $artifact})")
  fi
done

log "fuzz summary ($(($(date +%s) - start)) s in total, logs in $BUILD_DIR/logs/)"
printf '%s\n' "${summary[@]}" >&2
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
log "fuzz: no crash in ${#targets[@]} targets"
