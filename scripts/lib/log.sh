# shellcheck shell=bash
# Sourced by the scripts in scripts/: the messages they print and the way they run commands.
#   log TEXT...   "==> TEXT" on stderr, after a blank line
#   die TEXT...   "<script>: error: TEXT" on stderr, then exit 1 (<script>: the running
#                 script's file name, e.g. dev.sh)
#   run CMD...    prints "+ CMD" (shell-quoted) on stderr, then runs CMD

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }
run() {
  printf '+' >&2
  printf ' %q' "$@" >&2
  printf '\n' >&2
  "$@"
}
