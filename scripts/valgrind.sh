#!/usr/bin/env bash
# Valgrind memcheck of example programs end to end: builds four examples (RelWithDebInfo,
# own build dir) and runs them with tiny settings under
#   valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
# (99 rather than 1, so a memcheck error is told apart from a program's own exit 1 on bad
# input). The script fails on any memcheck error (invalid read/write, use of uninitialised
# values, a definite or indirect leak) and on any unexpected exit code of a program.
#
# What runs (each a few seconds under valgrind): char_lm trains (Embedding, LSTM, dropout,
# cross-entropy, Adam, clipping, truncated BPTT), saves a safetensors checkpoint, resumes
# from it, samples from it alone, and rejects a truncated copy of it (the error path);
# char_lm also trains a 2-layer GRU; adding trains a tanh RNN, an LSTM and a GRU cell driven
# by a plain loop; classify reads a `label<TAB>text` file into padded variable-length batches
# (LSTM with lengths, dropout, AdamW); seq2seq runs a bidirectional GRU encoder and an
# additive-attention GRUCell decoder.
#
# GEMM: valgrind 3.19 does not implement AVX-512 and hides it from CPUID, so the runtime
# dispatch in core/gemm.cpp picks the AVX2 (or portable) kernels by itself under valgrind.
#
# Environment knobs (all optional):
#   UNROLL_VALGRIND_BUILD_DIR   default build-valgrind
#   UNROLL_JOBS=N               build parallelism (default 2)
#   UNROLL_SKIP_DEPS=1          do not check or install Debian packages
#   UNROLL_VALGRIND_ARGS="..."  extra valgrind arguments (word-split), e.g. --track-origins=yes
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

JOBS=${UNROLL_JOBS:-2}
BUILD_DIR=${UNROLL_VALGRIND_BUILD_DIR:-build-valgrind}
PACKAGES=(cmake g++ ninja-build libfmt-dev valgrind)

# log, die, run; install_debian_packages
source "$ROOT/scripts/lib/log.sh"
source "$ROOT/scripts/lib/deps.sh"

start=$(date +%s)
install_debian_packages --hint "cmake, a C++20 compiler, fmt and valgrind" --require valgrind "${PACKAGES[@]}"

log "build: $BUILD_DIR (RelWithDebInfo: -O2 -g), examples char_lm adding classify seq2seq"
args=(-S "$ROOT" -B "$BUILD_DIR")
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then args+=(-G Ninja); fi
run cmake "${args[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUNROLL_WERROR=OFF \
  -DUNROLL_BUILD_TESTS=OFF -DUNROLL_BUILD_BENCH=OFF -DUNROLL_BUILD_EXAMPLES=ON -DUNROLL_BUILD_TOOLS=OFF \
  -DUNROLL_BUILD_FUZZ=OFF -DUNROLL_SANITIZE=OFF
run cmake --build "$BUILD_DIR" -j "$JOBS" --target char_lm adding classify seq2seq
built=$(date +%s)

OUT=$(mktemp -d "${TMPDIR:-/tmp}/unroll-valgrind.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
VALGRIND=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
  --show-leak-kinds=definite,indirect)
if [ -n "${UNROLL_VALGRIND_ARGS:-}" ]; then
  # shellcheck disable=SC2206  # word splitting is intended
  VALGRIND+=(${UNROLL_VALGRIND_ARGS})
fi
EX="$BUILD_DIR/examples"
LM=(--batch 4 --seq 16 --embed 8 --hidden 16 --eval-every 2 --sample-len 20 --out "$OUT")
runs=0

# vg <expected exit code> <program> [args...]: memcheck errors exit 99 (never a program's code).
vg() {
  local want=$1
  shift
  log "valgrind: $* (expecting exit $want)"
  local t0=$SECONDS
  set +e
  run "${VALGRIND[@]}" "$@"
  local rc=$?
  set -e
  runs=$((runs + 1))
  log "valgrind: exit $rc after $((SECONDS - t0)) s"
  [ "$rc" -ne 99 ] || die "memcheck found errors in: $*"
  [ "$rc" -eq "$want" ] || die "exit code $rc (expected $want) from: $*"
}

vg 0 "$EX/char_lm" --steps 4 "${LM[@]}"
vg 0 "$EX/char_lm" --steps 2 --resume "$OUT/char_lm.safetensors" --save "$OUT/resumed.safetensors" "${LM[@]}"
vg 0 "$EX/char_lm" --sample-only "$OUT/resumed.safetensors" --sample-len 20 --out "$OUT"
head -c 2000 "$OUT/char_lm.safetensors" >"$OUT/truncated.safetensors"
vg 1 "$EX/char_lm" --sample-only "$OUT/truncated.safetensors" --out "$OUT"
vg 0 "$EX/char_lm" --steps 2 --cell gru --layers 2 --save "$OUT/gru.safetensors" "${LM[@]}"
vg 0 "$EX/adding" --T 12 --steps 6 --batch 4 --hidden 8 --test 16 --log-every 2 --out "$OUT"
printf 'pos\tthe film was good\nneg\tthe plot was dull and slow\npos\tgreat\nneg\tbad film\n' >"$OUT/tiny.tsv"
vg 0 "$EX/classify" --train "$OUT/tiny.tsv" --test "$OUT/tiny.tsv" --epochs 2 --embed 4 --hidden 8 --batch 2 \
  --dropout 0.2 --weight-decay 0.01 --out "$OUT"
vg 0 "$EX/seq2seq" --len 4 --symbols 5 --embed 4 --hidden 8 --steps 3 --batch 4 --test 8 --eval-every 2 \
  --heatmaps 1 --out "$OUT"

log "valgrind: $runs runs, no memcheck errors, no definite or indirect leaks ($(($(date +%s) - built)) s under valgrind, $(($(date +%s) - start)) s in total)"
