#!/usr/bin/env bash
# Reruns every example's default configuration, one after the other, and prints the figures
# and wall times the README quotes, so that the README can be checked against one run:
#
#   ./scripts/readme_figures.sh                 # all examples, defaults (about 5 min on 1 core)
#   ./scripts/readme_figures.sh adding seq2seq  # only these
#   ./scripts/readme_figures.sh --sweeps        # also the multi-seed tables (adding --seeds 5 at
#                                               # T=100 and 200, compare --seeds 5, bert_toy
#                                               # --runs 5 at 2000 and 1000 pretraining steps,
#                                               # caption seeds 1-4, char_lm on PTB seeds 1-2): ~50 min more
#   ./scripts/readme_figures.sh --only-sweeps bert_toy  # the multi-seed rows alone, no defaults
#   ./scripts/readme_figures.sh --forget-bias-sweeps adding  # the LSTM alone over seeds 0-4 with
#                                               # other forget-gate biases (pytorch, 1, 3): ~15 min
#
# Examples whose data is not in the repository run only when it is there (digits:
# ../shared/data/digits/digits.csv; char_lm's PTB row: ../shared/data/ptb/; classify's SST-5 row:
# ../shared/data/sst/). Needs jq and a
# Release build (build/examples; `cmake --build build --target unroll_examples`).
# Output: one Markdown row per run: program, flags, wall and CPU seconds, the numbers of its
# --json line. Figures: the defaults' in $OUT/<program>/, a run with flags in $OUT/flags/.
# Each run's full printed output (its closing lines, the per-seed tables) is kept in
# $OUT/logs/<program>[_<flags>].txt, so that a sentence quoting it can be checked too.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${UNROLL_EXAMPLES_BIN:-$ROOT/build/examples}
OUT=${UNROLL_FIGURES_OUT:-$ROOT/build/examples/out}
DATA=${UNROLL_DATA:-$ROOT/../shared/data}  # from a worktree: UNROLL_DATA=/path/to/shared/data
command -v jq >/dev/null || { echo "readme_figures.sh: needs jq (apt-get install jq)" >&2; exit 2; }

sweeps=0
fb_sweeps=0
defaults=1
names=()
for a in "$@"; do
  case $a in
    --sweeps) sweeps=1 ;;
    --forget-bias-sweeps) fb_sweeps=1 ;;
    --only-sweeps) sweeps=1 defaults=0 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) names+=("$a") ;;
  esac
done
wanted() { [ ${#names[@]} -eq 0 ] && return 0; local n; for n in "${names[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }

# run_tag [flags...]: the flags as a file name ("" for the defaults).
run_tag() { printf '%s' "$*" | sed "s|$DATA/||g" | tr -c 'A-Za-z0-9.=-' '_'; }
# log_path <program> [flags...]: where a run's printed output is kept.
log_path() {
  local prog=$1
  shift
  local tag
  tag=$(run_tag "$@")
  mkdir -p "$OUT/logs"
  printf '%s/logs/%s%s.txt\n' "$OUT" "$prog" "${tag:+_$tag}"
}
# fig_dir <program> [flags...]: its figures; the defaults' in $OUT/<program> (the paths the
# README and docs/story.md name), a run with flags in $OUT/flags/<program>_<flags>.
fig_dir() {
  local prog=$1
  shift
  local tag
  tag=$(run_tag "$@")
  if [ -z "$tag" ]; then printf '%s/%s\n' "$OUT" "$prog"; else printf '%s/flags/%s_%s\n' "$OUT" "$prog" "$tag"; fi
}

# timed <log> <command...>: runs the command, its output to <log>; sets CPU to its user+system
# seconds (what it would take alone on one core; wall time grows with the machine's load).
CPU=0
timed() {
  local log=$1 TIMEFORMAT='%U %S' t
  shift
  t=$( { time "$@" >"$log" 2>&1; } 2>&1 ) || true
  t=${t##*$'\n'}
  CPU=$(echo "${t% *} + ${t#* }" | bc)
}

echo "| program | flags | wall s | cpu s | figures (from --json) |"
echo "| --- | --- | ---: | ---: | --- |"
# row <program> [flags...]: runs it with --json, prints the row (numbers to 4 significant digits).
row() {
  local prog=$1
  shift
  [ -x "$BIN/$prog" ] || { echo "| $prog | $* | - | - | not built ($BIN/$prog) |"; return; }
  local t0 t1 json log
  log=$(log_path "$prog" "$@")
  t0=$(date +%s.%N)
  timed "$log" "$BIN/$prog" "$@" --json --out "$(fig_dir "$prog" "$@")"
  json=$(grep '^{' "$log" | tail -1) || true
  t1=$(date +%s.%N)
  local wall
  wall=$(echo "$t1 - $t0" | bc)
  local figs
  figs=$(printf '%s' "${json:-{\}}" | jq -r '
      def sig: if type == "number" then (if . == 0 or (fabs >= 0.001 and fabs < 1e5) then ((. * 10000 | round) / 10000 | tostring)
               else tostring end) else tostring end;
      [paths(type == "number") as $p | "\($p | map(tostring) | join("."))=\(getpath($p) | sig)"] | join(", ")')
  printf '| %s | %s | %.1f | %.1f | %s |\n' "$prog" "$*" "$wall" "$CPU" "$figs"
}

# plain_row <program> [flags...]: for a program without --json: wall time and exit code only.
plain_row() {
  local prog=$1
  shift
  [ -x "$BIN/$prog" ] || { echo "| $prog | $* | - | - | not built ($BIN/$prog) |"; return; }
  local t0 t1
  t0=$(date +%s.%N)
  timed "$(log_path "$prog" "$@")" "$BIN/$prog" "$@" --out "$(fig_dir "$prog" "$@")"
  t1=$(date +%s.%N)
  printf '| %s | %s | %.1f | %.1f | (no --json) |\n' "$prog" "$*" "$(echo "$t1 - $t0" | bc)" "$CPU"
}

if [ $defaults = 1 ]; then
wanted demo && row demo
wanted adding && row adding
wanted gradient_flow && row gradient_flow
if wanted gradient_flow; then
  for s in 1 2 3 4; do row gradient_flow --seed "$s"; done  # the no-clip NaN step over seeds
fi
wanted char_lm && row char_lm
if wanted char_lm && [ -f "$DATA/ptb/valid.txt" ] && [ -f "$DATA/ptb/test.txt" ]; then
  row char_lm --text "$DATA/ptb/valid.txt" --steps 1500 --valid "$DATA/ptb/test.txt"
fi
wanted one_to_many && row one_to_many
wanted time_series && row time_series
wanted classify && row classify
if wanted classify && [ -f "$DATA/sst/train.txt" ]; then  # the README's SST-5 row (the command in classify.cpp)
  row classify --format sst --train "$DATA/sst/train.txt" --dev "$DATA/sst/dev.txt" --test "$DATA/sst/test.txt" \
    --epochs 6 --dropout 0.3
fi
wanted seq2seq && row seq2seq
wanted seq2seq && row seq2seq --min-len 4 --len 8 --test-len 2-12
wanted mlp && row mlp
wanted bptt_by_hand && row bptt_by_hand
wanted memory && row memory
wanted dates && row dates
wanted dtmf && row dtmf
if wanted digits && [ -f "$DATA/digits/digits.csv" ]; then row digits; fi
wanted caption && row caption
wanted explore && plain_row explore
wanted transformer && row transformer
wanted bert_toy && row bert_toy
wanted jacobian && row jacobian
fi
if [ $sweeps = 1 ]; then
  wanted adding && row adding --T 100 --seeds 5
  wanted adding && row adding --T 200 --seeds 5
  wanted compare && row compare --seeds 5
  wanted bert_toy && row bert_toy --runs 5                  # seeds 0-4, pretraining 2000 steps
  wanted bert_toy && row bert_toy --runs 5 --pt-steps 1000  # half of it: the gain is not robust
  if wanted caption; then for s in 1 2 3 4; do row caption --seed "$s"; done; fi  # with the default row: seeds 0-4
  if wanted char_lm && [ -f "$DATA/ptb/valid.txt" ] && [ -f "$DATA/ptb/test.txt" ]; then
    for s in 1 2; do row char_lm --text "$DATA/ptb/valid.txt" --steps 1500 --valid "$DATA/ptb/test.txt" --seed "$s"; done
  fi
fi
if [ $fb_sweeps = 1 ] && wanted adding; then
  for fb in pytorch 1 3; do
    for T in 100 200; do row adding --T "$T" --seeds 5 --cells lstm --forget-bias "$fb"; done
  done
fi
