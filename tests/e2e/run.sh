#!/usr/bin/env bash
# Browser end-to-end test: headless Chromium, driven through chromedriver
# (W3C WebDriver, Python standard library), against the demo of `make demo`,
# over plain HTTP and (the python app) over TLS with a test CA (--no-tls skips it).
#
#   tests/e2e/run.sh [--app python|node]... [--no-tls]     (`make e2e` runs it)
#
# Installs chromium, chromium-driver and nodejs with apt if missing (through
# scripts/install-deps.sh e2e). Needs the built binary: SESSIOND_BIN, default
# build/release/sessiond. Screenshots and logs go to build/e2e/. The last
# line is "e2e: N passed, M failed"; the exit status is non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

if ! command -v chromium >/dev/null || [ ! -x /usr/bin/chromedriver ] || ! command -v node >/dev/null; then
  if ! scripts/install-deps.sh e2e; then
    echo "e2e: could not install chromium/chromium-driver/nodejs"
    echo "e2e: 0 passed, 1 failed"
    exit 1
  fi
fi

# A hard limit, so a hung browser never blocks CI; e2e.py itself has
# shorter per-step deadlines. On SIGTERM e2e.py stops the browser and the
# demo and still prints its summary; only after a SIGKILL is it missing.
timeout --kill-after=10 180 python3 tests/e2e/e2e.py "$@"
status=$?
case "$status" in
  124) echo "e2e: timed out after 180s" >&2 ;;
  137) echo "e2e: killed after 180s"; echo "e2e: 0 passed, 1 failed" ;;
esac
exit "$status"
