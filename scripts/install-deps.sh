#!/usr/bin/env bash
# Installs the Debian packages of the named sets, those that are missing.
#
#   scripts/install-deps.sh [SET...]        default: build
#
# Sets (each make target asks for the ones it needs):
#   build   compiler and libraries: what `make` needs, nothing more
#   test    doctest, redis-server, python3 (+ websockets), curl, nodejs, groff, dpkg-dev, nginx-light
#           and wrk (the bench bundle's tests), systemd (systemd-analyze verify): `make test`
#   demo    python3 (the demo app), curl: `make demo`
#   e2e     chromium, chromium-driver, nodejs: `make e2e`
#   bench   nginx-light, wrk, valgrind: `make bench`, `make soak`
#   fuzz    clang-14 and its runtime: `make fuzz`
#   deb     dpkg-dev (dpkg-shlibdeps): `make deb`
#
# Idempotent: packages already present are skipped, so this is cheap to
# re-run. Needs root (or sudo) only when something is actually missing.
#
# redis-server and nginx are for the tests and the benchmark, which start
# their own on free ports. Their Debian packages would also start a system
# Redis on port 6379 and an nginx on port 80; when this script installs
# either, a policy-rc.d keeps the services from starting, and they are
# disabled where systemd runs.
set -euo pipefail

sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(build)
PKGS=()
for set in "${sets[@]}"; do
  case "$set" in
    build) PKGS+=(build-essential pkg-config libevent-dev libssl-dev libyaml-cpp-dev libhiredis-dev zlib1g-dev
                  nlohmann-json3-dev) ;;
    test)  PKGS+=(doctest-dev redis-server python3 python3-websockets curl procps nodejs groff-base man-db dpkg-dev
                  nginx-light wrk systemd) ;;
    demo)  PKGS+=(python3 curl) ;;
    e2e)   PKGS+=(chromium chromium-driver nodejs python3) ;;
    bench) PKGS+=(nginx-light wrk valgrind python3 procps) ;;
    fuzz)  PKGS+=(clang-14 libclang-rt-14-dev libhttp-parser-dev) ;;  # http-parser: the head fuzzers' differential oracle
    deb)   PKGS+=(dpkg-dev) ;;
    *) echo "install-deps.sh: unknown set '$set' (build test demo e2e bench fuzz deb)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
# The same package may be in several sets.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive

# The tests point this elsewhere (tests/integration/test_packaging.py).
POLICY_RC_D=${SESSIOND_POLICY_RC_D:-/usr/sbin/policy-rc.d}
services=()
for svc in redis-server nginx-light; do
  [[ " ${missing[*]} " == *" $svc "* ]] && services+=("${svc%-light}")
done
policy_added=0
if [ ${#services[@]} -gt 0 ] && [ ! -e "$POLICY_RC_D" ]; then
  # exit 101: "action forbidden" (invoke-rc.d(8)): the package installs, its
  # service does not start.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY_RC_D" >/dev/null
  $SUDO chmod 0755 "$POLICY_RC_D"
  policy_added=1
fi
status=0
$SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || status=$?
[ "$policy_added" -eq 0 ] || $SUDO rm -f "$POLICY_RC_D"
if [ ${#services[@]} -gt 0 ] && [ -d /run/systemd/system ]; then
  for svc in "${services[@]}"; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
  done
fi
exit "$status"
