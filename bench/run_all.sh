#!/usr/bin/env bash
# The one benchmark command: builds Release, runs bench_autograd, bench_gemm, bench_sample, bench_transformer, bench_conv and bench_rnn,
# runs bench/reference.py (PyTorch) on the same workloads, and prints one table of
# unroll vs PyTorch with ratios and targets.
#
#   ./bench/run_all.sh [--quick] [--reps N] [--threads N] [--text FILE]
#
#   --quick      fewer steps and one repetition (a smoke run, about two minutes)
#   --reps N     repetitions of every recurrent workload (default 3); each repetition runs
#                unroll then PyTorch back to back, and the table keeps each side's best
#   --threads N  thread count of both sides (default 1); the threads_* rows always compare
#                1 and 2 threads
#   --text FILE  word-LM corpus (default ../shared/data/ptb/valid.txt if present, relative
#                to the project root; otherwise a generated corpus)
#
# Environment: UNROLL_BENCH_BUILD_DIR (default build-bench), UNROLL_JOBS (default 2).
# PyTorch is looked for in `python3`, then `/usr/bin/python3`, run with
# OPENBLAS_CORETYPE=Cooperlake and OPENBLAS_NUM_THREADS/OMP_NUM_THREADS = the thread count.
# Without torch, unroll's side still runs and the table says the reference is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${UNROLL_BENCH_BUILD_DIR:-build-bench}
JOBS=${UNROLL_JOBS:-2}
QUICK=""
REPS=3
THREADS=1
TEXT=""
[ -f ../shared/data/ptb/valid.txt ] && TEXT=../shared/data/ptb/valid.txt
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=--quick; REPS=1 ;;
    --reps) REPS=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --text) TEXT=$2; shift ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '==> %s\n' "$*" >&2; }

log "build ($BUILD, Release)"
GEN=()
if [ ! -f "$BUILD/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); fi
cmake -S . -B "$BUILD" ${GEN[@]+"${GEN[@]}"} -DCMAKE_BUILD_TYPE=Release -DUNROLL_BUILD_TESTS=OFF \
  -DUNROLL_BUILD_BENCH=ON -DUNROLL_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD" --target unroll_benches -j "$JOBS" >/dev/null

PY=""
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 && OPENBLAS_CORETYPE=Cooperlake "$cand" -c "import torch" >/dev/null 2>&1; then
    PY=$cand
    break
  fi
done
if [ -z "$PY" ]; then log "PyTorch not found (tried python3, /usr/bin/python3): the reference columns will be empty"; fi

# Which BLAS PyTorch's matrix products run on. Debian's python3-torch links libblas.so.3,
# which the alternatives system points at OpenBLAS only when OpenBLAS is installed; without
# it, the netlib reference BLAS answers at ~3 GFLOP/s and every ratio is meaningless (it
# happened: bench/RESULTS.md, "A run on a different machine").
torch_blas() {
  OPENBLAS_CORETYPE=Cooperlake "$PY" -c '
import torch
torch.ones(8, 8) @ torch.ones(8, 8)
libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.split()[-1]})
print(" ".join(libs) or "none")'
}
if [ -n "$PY" ]; then
  BLAS=$(torch_blas)
  if [[ $BLAS != *openblas* ]] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "PyTorch's BLAS is '$BLAS', not OpenBLAS: installing libopenblas0-pthread"
    apt-get install -y -q libopenblas0-pthread >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libopenblas0-pthread >/dev/null 2>&1; } || true
    BLAS=$(torch_blas)
  fi
  log "PyTorch's BLAS: $BLAS"
  [[ $BLAS == *openblas* ]] || log "WARNING: PyTorch is not running on OpenBLAS: its times are not a fair reference"
fi

OUT=$(mktemp "${TMPDIR:-/tmp}/unroll-bench.XXXXXX")
trap 'rm -f "$OUT"' EXIT

torch_run() {  # torch_run <threads> <reference.py args...>
  local t=$1
  shift
  [ -n "$PY" ] || return 0
  OPENBLAS_CORETYPE=Cooperlake OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$PY" bench/reference.py --json \
    --threads "$t" "$@" >>"$OUT"
}

TEXT_ARGS=()
[ -n "$TEXT" ] && TEXT_ARGS=(--text "$TEXT")

log "small ops and GEMM (threads $THREADS)"
"$BUILD/bench/bench_autograd" --json >>"$OUT"
torch_run "$THREADS" --workload small_op
"$BUILD/bench/bench_gemm" --json $QUICK >>"$OUT" || true
torch_run "$THREADS" --workload gemm

log "sampling (threads $THREADS)"
for rep in $(seq 1 "$REPS"); do
  "$BUILD/bench/bench_sample" --json --threads "$THREADS" $QUICK >>"$OUT"
  torch_run "$THREADS" --workload sample $QUICK
done

log "transformer LM (threads $THREADS)"
for rep in $(seq 1 "$REPS"); do
  "$BUILD/bench/bench_transformer" --json --threads "$THREADS" $QUICK >>"$OUT"
  torch_run "$THREADS" --workload transformer $QUICK
done

log "convolutions (threads $THREADS)"
for rep in $(seq 1 "$REPS"); do
  "$BUILD/bench/bench_conv" --json --threads "$THREADS" $QUICK >>"$OUT"
  torch_run "$THREADS" --workload conv $QUICK
done

WORKLOADS=(charlm_lstm_b32_h256 charlm_gru_b32_h256 charlm_rnn_b32_h256 charlm_lstm_b1_h64 charlm_gru_b1_h64
  charlm_rnn_b1_h64 wordlm_mb64 wordlm_mb16 wordlm_mb1 scaling_lstm_t100 scaling_lstm_t1000 scaling_lstm_t10000
  threads_lstm_b32_h512_t1 threads_lstm_b32_h512_t2)
for rep in $(seq 1 "$REPS"); do
  for w in "${WORKLOADS[@]}"; do
    log "rep $rep/$REPS: $w"
    t=$THREADS
    case $w in threads_*_t1) t=1 ;; threads_*_t2) t=2 ;; esac
    "$BUILD/bench/bench_rnn" --json --threads "$THREADS" --workload "$w" $QUICK ${TEXT_ARGS[@]+"${TEXT_ARGS[@]}"} >>"$OUT"
    torch_run "$t" --workload "$w" $QUICK ${TEXT_ARGS[@]+"${TEXT_ARGS[@]}"}
  done
done

python3 - "$OUT" "$THREADS" "${PY:-}" <<'EOF'
import json, sys
path, threads, py = sys.argv[1], sys.argv[2], sys.argv[3]
best = {}
for line in open(path):
    line = line.strip()
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    higher = m["unit"] in ("words/s", "GFLOP/s", "tokens/s") or m["name"].endswith("_peak_fraction")
    old = best.get(m["name"])
    if old is None or (m["value"] > old[0] if higher else m["value"] < old[0]):
        best[m["name"]] = (m["value"], m["unit"])

def get(name):
    return best.get(name, (None, ""))[0]

rows = []
def row(label, u, t, unit, ratio, target, met):
    rows.append((label, u, t, unit, ratio, target, met))

def speed_row(name, target):  # time-like: ratio = torch / unroll
    u, t = get(name), get("torch_" + name)
    unit = best.get(name, (0, ""))[1]
    ratio = t / u if u and t else None
    row(name, u, t, unit, ratio, f">= {target}x" if target else "-",
        "-" if ratio is None or not target else ("yes" if ratio >= target else "NO"))

def rate_row(name, target, unit="words/s"):  # rate-like: ratio = unroll / torch
    u, t = get(name), get("torch_" + name)
    ratio = u / t if u and t else None
    row(name, u, t, unit, ratio, f">= {target}x", "-" if ratio is None else ("yes" if ratio >= target else "NO"))

speed_row("small_op_forward_plus_backward_1x16", None)
for k in ("lstm", "gru", "rnn"):
    speed_row(f"charlm_{k}_b32_h256", None)
for k in ("lstm", "gru", "rnn"):  # issue #16: the whole step at >= 85% of one core's FMA peak
    name = f"charlm_{k}_b32_h256"
    frac = get(name + "_peak_fraction")
    if frac:
        row(f"{name}: matrix GFLOP/s over the whole step (ratio: of FMA peak {get('fma_peak') or 0:.0f})",
            get(name + "_gflops"), None, "GFLOP/s", frac, ">= 0.85 of peak", "yes" if frac >= 0.85 else "NO")
for k in ("lstm", "gru", "rnn"):
    speed_row(f"charlm_{k}_b1_h64", 15.0)
rate_row("wordlm_mb64", 2.5)
rate_row("wordlm_mb16", 3.5)
rate_row("wordlm_mb1", 4.0)
for H in (64, 256):
    rate_row(f"sample_lstm_b1_h{H}", 10.0, "tokens/s")
speed_row("transformer_lm_b16_t64", 2.0)  # the transformer example's char LM vs nn.TransformerEncoder
speed_row("lstm_lm_h64_b16_t64", None)    # an LSTM LM of the same width, same tokens
tl = get("transformer_over_lstm_b16_t64")
if tl:
    row("transformer step / LSTM step (same width and tokens)", tl, get("torch_transformer_over_lstm_b16_t64"), "x",
        None, "-", "-")
for T in (100, 1000, 10000):
    speed_row(f"scaling_lstm_t{T}", None)
t100, t10k = get("scaling_lstm_t100"), get("scaling_lstm_t10000")
if t100 and t10k:
    lin = (t10k / 10000) / (t100 / 100)
    row("scaling: (ms/T at T=10000)/(ms/T at T=100)", lin, None, "x", None, "~1 (linear)", "yes" if lin < 1.5 else "NO")
for T in (100, 1000, 10000):
    pb = get(f"scaling_lstm_t{T}_peak_bytes_per_t")
    if pb:
        row(f"scaling_lstm_t{T}: peak bytes per step", pb, None, "bytes", get(f"scaling_lstm_t{T}_peak_over_needed"),
            "ratio = peak / needed", "-")
speed_row("threads_lstm_b32_h512_t1", None)
speed_row("threads_lstm_b32_h512_t2", None)
u1, u2 = get("threads_lstm_b32_h512_t1"), get("threads_lstm_b32_h512_t2")
p1, p2 = get("torch_threads_lstm_b32_h512_t1"), get("torch_threads_lstm_b32_h512_t2")
if u1 and u2:
    s = u1 / u2
    row("threads: 2-thread speedup (1 thread / 2 threads)", s, p1 / p2 if p1 and p2 else None, "x", None, ">= 1.8x",
        "yes" if s >= 1.8 else "NO")

CONVS = ["conv1d_b32_c32_t200_k3_d1", "conv1d_b32_c64_t200_k3_d4", "conv1d_b32_c64_t600_k3_d1",
         "conv1d_b32_c32_t600_k7_d8", "conv1d_b32_c64_t600_k7_d32", "conv2d_b64_1to16_8x8_k3",
         "conv2d_b64_16to32_8x8_k3", "conv2d_b64_1to16_28x28_k3", "conv2d_b64_16to32_14x14_k3",
         "conv2d_b64_16to32_28x28_k3"]
for name in CONVS + ["maxpool2d_b64_c16_28x28_k2", "tcn_b32_c32_t600_k7_l8"]:
    speed_row(name, 1.0)
for name in CONVS:
    gf, gemm = get(name + "_gflops"), get(name + "_gemm_gflops")
    if gf and gemm:
        row(f"{name}: GFLOP/s (unroll column: conv; ratio: of its GEMM)", gf, None, "GFLOP/s", gf / gemm, "-", "-")

def fmt(v):
    if v is None:
        return "missing" if not py else "-"
    return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3g}"

print(f"\nunroll vs PyTorch, {threads} thread(s) (threads_* rows: 1 and 2); best of the repetitions")
if not py:
    print("PyTorch reference: MISSING (no interpreter that imports torch); unroll's side only")
hdr = ("workload", "unroll", "PyTorch", "unit", "ratio", "target", "met?")
w = [52, 12, 12, 8, 7, 22, 5]
print(" | ".join(h.ljust(n) for h, n in zip(hdr, w)))
print("-|-".join("-" * n for n in w))
for label, u, t, unit, ratio, target, met in rows:
    cells = (label, fmt(u), fmt(t) if t is not None or not py else "-", unit, fmt(ratio) if ratio is not None else "-",
             target, met)
    print(" | ".join(str(c).ljust(n) for c, n in zip(cells, w)))
print("ratio: PyTorch time / unroll time (or unroll words/s / PyTorch words/s); > 1 means unroll is faster")
EOF
