#!/usr/bin/env bash
# Runs the unit tests and then the integration tests of one build variant.
#
#   scripts/run-tests.sh release|san|tsan [integration filter...]
#
# Uses build/VARIANT/unit_tests and build/VARIANT/sessiond (make build-tests
# builds both). The very last line of output is "N passed, M failed", unit
# test cases and integration tests added up. The exit status is non-zero if
# anything failed or a runner could not run: a missing binary or a missing
# summary counts as a failure, never as zero tests.
#
# Environment: IT_JOBS (parallel integration tests, default 4; 3 under
# sanitizers), extra arguments are passed to tests/integration/run.py.
set -u
cd "$(dirname "$0")/.."

variant=${1:-release}
[ $# -gt 0 ] && shift
case "$variant" in
  release) ;;
  san)
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export SESSIOND_SANITIZE=address ;;
  tsan)
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp"
    export SESSIOND_SANITIZE=thread ;;
  *) echo "usage: $0 release|san|tsan [integration filter...]" >&2; exit 2 ;;
esac
[ "$variant" != release ] && export IT_JOBS=${IT_JOBS:-3}
# ThreadSanitizer runs the unit tests and the integration tests whose paths
# cross threads (tests/integration/tsan_subset.txt), unless filters are given.
if [ "$variant" = tsan ] && [ $# -eq 0 ] && [ -f tests/integration/tsan_subset.txt ]; then
  mapfile -t subset < <(grep -v -e '^#' -e '^[[:space:]]*$' tests/integration/tsan_subset.txt)
  set -- "${subset[@]}"
fi

build=build/$variant
export SESSIOND_BIN=$build/sessiond
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# --- layering (scripts/check-layers.sh): one test ------------------------------
echo "== layers: scripts/check-layers.sh"
if scripts/check-layers.sh; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi

# --- unit tests (doctest) ---------------------------------------------------
echo "== unit tests: $build/unit_tests"
if [ -x "$build/unit_tests" ]; then
  "$build/unit_tests" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  summary=$(grep -E '^\[doctest\] test cases:' "$log" | tail -n 1)
  if [[ "$summary" =~ ([0-9]+)\ passed\ *\|\ *([0-9]+)\ failed ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    # A clean summary but a bad exit (a sanitizer report at exit, a crash
    # after the last test) is one more failure.
    if [ "$status" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ]; then
      echo "run-tests: unit_tests exited with status $status" >&2
      failed=$((failed + 1))
    fi
  else
    echo "run-tests: no doctest summary from unit_tests (exit status $status)" >&2
    failed=$((failed + 1))
  fi
else
  echo "run-tests: $build/unit_tests is missing (make build-tests)" >&2
  failed=$((failed + 1))
fi

# --- integration tests --------------------------------------------------------
echo "== integration tests: $SESSIOND_BIN"
if [ -x "$SESSIOND_BIN" ]; then
  python3 tests/integration/run.py "$@" 2>&1 | tee "$log"
  summary=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
  if [[ "$summary" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]] \
      && [ $((BASH_REMATCH[1] + BASH_REMATCH[2])) -gt 0 ]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
  else
    echo "run-tests: the integration runner did not run any test" >&2
    failed=$((failed + 1))
  fi
else
  echo "run-tests: $SESSIOND_BIN is missing (make build)" >&2
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
