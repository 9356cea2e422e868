# shellcheck shell=bash
# Sourced by the scripts in scripts/ (after scripts/lib/log.sh): installs the Debian
# packages a script needs.
#
#   install_debian_packages [--hint TEXT] [--require COMMAND] PACKAGE...
#
# With UNROLL_SKIP_DEPS=1 it does nothing but say so. On a system without dpkg and apt-get
# it asks the user to install TEXT ("what the packages provide", e.g. "cmake, a C++20
# compiler and fmt") by hand, and stops the script unless COMMAND is on the PATH. Otherwise
# it installs the PACKAGEs dpkg does not list as installed, with apt-get (its `update` run
# once per script) as root or through sudo.

# True when packages are to be checked and installed: not skipped, and dpkg and apt-get exist.
debian_deps_enabled() {
  [ "${UNROLL_SKIP_DEPS:-0}" != 1 ] && command -v dpkg >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1
}

UNROLL_APT_UPDATED=0

install_debian_packages() {
  local hint="the packages" require=""
  while [ $# -gt 0 ]; do
    case $1 in
      --hint) hint=$2; shift 2 ;;
      --require) require=$2; shift 2 ;;
      *) break ;;
    esac
  done
  if [ "${UNROLL_SKIP_DEPS:-0}" = 1 ]; then
    log "deps: skipped (UNROLL_SKIP_DEPS=1)"
    return 0
  fi
  if ! debian_deps_enabled; then
    log "deps: not a Debian system; please install $hint yourself"
    if [ -n "$require" ]; then command -v "$require" >/dev/null 2>&1 || die "$require not found"; fi
    return 0
  fi
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "deps: all present ($*)"
    return 0
  fi
  log "deps: installing ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install ${missing[*]} by hand"
    sudo=(sudo)
  fi
  if [ "$UNROLL_APT_UPDATED" != 1 ]; then
    run ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update
    UNROLL_APT_UPDATED=1
  fi
  run ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}
