#!/usr/bin/env bash
# Installs every build and test dependency of sessiond from Debian packages.
# Idempotent: packages already present are skipped, so this is cheap to re-run.
# Needs root (or sudo) only when something is actually missing.
set -euo pipefail

PKGS=(
  build-essential pkg-config
  libevent-dev libssl-dev libyaml-cpp-dev libhiredis-dev
  doctest-dev nlohmann-json3-dev
  redis-server python3 curl procps nodejs
)
# Extra sets, selected by arguments: "bench" (nginx, wrk), "e2e" (chromium), "fuzz" (clang, and http-parser as
# the fuzzers' differential oracle).
for extra in "$@"; do
  case "$extra" in
    bench) PKGS+=(nginx-light wrk valgrind) ;;
    e2e)   PKGS+=(chromium chromium-driver nodejs) ;;
    fuzz)  PKGS+=(clang-14 libclang-rt-14-dev libhttp-parser-dev) ;;
    *) echo "install-deps.sh: unknown set '$extra'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
