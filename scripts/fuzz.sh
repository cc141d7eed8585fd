#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ and runs each for a while.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 60 seconds, every target
#   scripts/fuzz.sh --build-only [TARGET...]
#
# Targets are compiled with clang++-14 -fsanitize=fuzzer,address,undefined,
# linking only the src/ files each one needs, into build/fuzz/<target>.
# Objects are cached under build/fuzz/obj and rebuilt when a source or a
# header it includes changes.
#
# Each run reads the committed seeds (tests/fuzz/corpus/<target>/, never
# written to) and writes what it discovers to build/fuzz/corpus/<target>/, so
# later runs resume from there. A crash, leak, UB report, timeout or violated
# invariant is saved under build/fuzz/artifacts/<target>/ and the log under
# build/fuzz/logs/<target>.log; the summary prints each artifact in base64.
# Two targets run at a time (one per core).
#
# Exit status: 0 when every target ran clean, 1 when any crashed (each one is
# named, with its artifacts), 2 for usage or build errors.
#
# Environment: FUZZ_CXX (default clang++-14), FUZZ_JOBS (targets at once,
# default 2), FUZZ_ARGS (extra libFuzzer flags for every run).
set -u
cd "$(dirname "$0")/.."

ALL_TARGETS=(request_head response_head head_split request_framing response_framing cookie_decoder instruction_parser
  cookie_header cookie_chunks config_loader tls_first_bytes upgrade_path path_routes)

# The src/ files and pkg-config packages each target links. Only what it
# needs: a target never depends on code it does not exercise.
HTTP_SRCS="src/http/head_parser.cc src/http/message.cc src/http/body.cc src/http/headers.cc src/http/hop_by_hop.cc
  src/http/forwarding.cc src/base/ip_address.cc"
CRYPTO_SRCS="src/crypto/crypto.cc src/crypto/keys.cc"
CODEC_SRCS="src/session/cookie_codec.cc src/store/session_data.cc src/base/json_text.cc src/base/utc_time.cc $CRYPTO_SRCS"
CHUNK_SRCS="src/session/cookie_chunks.cc src/session/cookie_header.cc"
declare -A SRCS=(
  [request_head]="$HTTP_SRCS"
  [response_head]="$HTTP_SRCS"
  [head_split]="$HTTP_SRCS"
  [request_framing]="$HTTP_SRCS"
  [response_framing]="$HTTP_SRCS"
  [cookie_decoder]="$CODEC_SRCS"
  [instruction_parser]="src/session/header_protocol.cc src/session/set_json.cc src/store/session_data.cc src/base/json_text.cc"
  [cookie_header]="src/session/cookie_header.cc"
  [cookie_chunks]="$CHUNK_SRCS $CODEC_SRCS"
  [config_loader]="$(ls src/config/*.cc | tr '\n' ' ') $CODEC_SRCS src/base/ip_address.cc src/base/web_origin.cc src/base/path_normalize.cc"
  [tls_first_bytes]="src/net/tls_transport.cc src/net/tls_context.cc src/net/buffer.cc src/net/block.cc"
  [upgrade_path]="$HTTP_SRCS src/http/upgrade.cc src/http/websocket_frames.cc src/base/web_origin.cc"
  [path_routes]="src/base/path_normalize.cc src/session/routes.cc src/store/session_data.cc src/base/json_text.cc src/http/headers.cc"
)
declare -A PKGS=(
  [request_head]="" [response_head]="" [head_split]=""
  [request_framing]="" [response_framing]="" [cookie_decoder]="openssl zlib"
  [instruction_parser]="nlohmann_json" [cookie_header]="" [cookie_chunks]="openssl zlib"
  [config_loader]="yaml-cpp openssl zlib"
  [tls_first_bytes]="openssl" [upgrade_path]="" [path_routes]=""
)
# http-parser is the differential oracle of the head targets, and nothing else.
declare -A LIBS=([request_head]="-lhttp_parser" [response_head]="-lhttp_parser")
# Inputs larger than the default (4096) for the YAML files; smaller for
# head_split, whose work per input grows with the square of its length.
declare -A MAX_LEN=([config_loader]=16384 [head_split]=1025)

CXX=${FUZZ_CXX:-clang++-14}
JOBS=${FUZZ_JOBS:-2}
OUT=build/fuzz
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# src/ may be mid-edit by others: its warnings are shown, not fatal. The fuzz
# targets themselves build with -Werror.
CXXFLAGS="-std=c++17 -O1 -g -Wall -Wextra -Wno-unused-parameter -Isrc $SAN"

build_only=0
seconds=60
if [ "${1:-}" = "--build-only" ]; then
  build_only=1
  shift
elif [ $# -gt 0 ]; then
  seconds=${1:-60}
  shift
fi
[ -z "$seconds" ] && seconds=60
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [SECONDS] [TARGET...] | --build-only [TARGET...]" >&2
  exit 2
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  if [ -z "${SRCS[$t]+x}" ]; then
    echo "fuzz: unknown target '$t' (known: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done

if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "fuzz: $CXX not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi

# ---- build ---------------------------------------------------------------------

# True when $1 (an object) is missing or older than anything in its .d file.
stale() {
  local obj=$1 dep
  [ -f "$obj" ] && [ -f "${obj%.o}.d" ] || return 0
  for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "${obj%.o}.d"); do
    [ "$dep" -nt "$obj" ] && return 0
  done
  return 1
}

# Runs each argument (a shell command) $JOBS at a time; false if any failed.
run_parallel() {
  printf '%s\0' "$@" | xargs -0 -n 1 -P "$JOBS" bash -c
}

mkdir -p "$OUT/obj"
ALL_CFLAGS=$(pkg-config --cflags yaml-cpp openssl nlohmann_json zlib) || exit 2
compile=()
declare -A seen=()
for t in "${targets[@]}"; do
  cflags=""
  [ -n "${PKGS[$t]}" ] && cflags=$(pkg-config --cflags ${PKGS[$t]})
  for src in ${SRCS[$t]}; do
    [ -n "${seen[$src]+x}" ] && continue
    seen[$src]=1
    obj="$OUT/obj/${src%.cc}.o"
    mkdir -p "$(dirname "$obj")"
    if stale "$obj"; then
      compile+=("echo '  CXX $src' && $CXX $CXXFLAGS -fsanitize=fuzzer-no-link $ALL_CFLAGS -MMD -c $src -o $obj")
    fi
  done
  target_src="tests/fuzz/${t}_fuzz.cc"
  target_obj="$OUT/obj/tests/fuzz/${t}_fuzz.o"
  mkdir -p "$(dirname "$target_obj")"
  if stale "$target_obj"; then
    compile+=("echo '  CXX $target_src' && $CXX $CXXFLAGS -Werror -fsanitize=fuzzer-no-link $cflags -MMD -c $target_src -o $target_obj")
  fi
done
if [ ${#compile[@]} -gt 0 ]; then
  echo "== building fuzz targets (${#compile[@]} files)"
  run_parallel "${compile[@]}" || { echo "fuzz: build failed" >&2; exit 2; }
fi
for t in "${targets[@]}"; do
  objs="$OUT/obj/tests/fuzz/${t}_fuzz.o"
  for src in ${SRCS[$t]}; do objs+=" $OUT/obj/${src%.cc}.o"; done
  libs="${LIBS[$t]:-}"
  [ -n "${PKGS[$t]}" ] && libs="$(pkg-config --libs ${PKGS[$t]}) $libs"
  newest=$(ls -t $objs "$OUT/$t" 2>/dev/null | head -n 1)
  if [ ! -x "$OUT/$t" ] || [ "$newest" != "$OUT/$t" ]; then
    echo "  LINK $OUT/$t"
    $CXX $SAN -fsanitize=fuzzer -o "$OUT/$t" $objs $libs || { echo "fuzz: link of $t failed" >&2; exit 2; }
  fi
done
[ $build_only -eq 1 ] && exit 0

# ---- run -----------------------------------------------------------------------

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$OUT/logs"

run_target() {
  local t=$1 dict="" max_len=""
  mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t"
  [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
  [ -n "${MAX_LEN[$t]:-}" ] && max_len="-max_len=${MAX_LEN[$t]}"
  # New inputs go to the first directory only: the seeds stay untouched.
  "$OUT/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/$t/" $dict $max_len ${FUZZ_ARGS:-} \
    "$OUT/corpus/$t" "tests/fuzz/corpus/$t" >"$OUT/logs/$t.log" 2>&1 </dev/null
  echo $? >"$OUT/logs/$t.rc"
}

echo "== fuzzing ${#targets[@]} target(s) for ${seconds}s each, $JOBS at a time"
for t in "${targets[@]}"; do
  rm -f "$OUT/logs/$t.rc"
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  run_target "$t" &
done
wait
crashed=()
for t in "${targets[@]}"; do
  if [ "$(cat "$OUT/logs/$t.rc" 2>/dev/null)" = 0 ]; then
    execs=$(grep -E '^stat::number_of_executed_units' "$OUT/logs/$t.log" | awk '{print $2}')
    echo "  ok      $t (${execs:-?} inputs)"
  else
    crashed+=("$t")
    echo "  CRASHED $t: see $OUT/logs/$t.log"
    grep -E 'ERROR: |runtime error|fuzz invariant violated|SUMMARY' "$OUT/logs/$t.log" | head -n 5 | sed 's/^/          /'
    # The artifact itself, base64, so a crash in a throw-away CI clone can be
    # recreated from the log alone (bounded: an input is at most max_len).
    for a in "$OUT/artifacts/$t"/*; do
      [ -f "$a" ] || continue
      echo "          artifact: $a ($(stat -c %s "$a") bytes), recreate with: echo <base64> | base64 -d > crash"
      base64 -w 100 "$a" | head -n 200 | sed 's/^/          base64: /'
    done
  fi
done
if [ ${#crashed[@]} -gt 0 ]; then
  echo "fuzz: ${#crashed[@]} target(s) crashed: ${crashed[*]}"
  echo "reproduce: build/fuzz/<target> <artifact>; minimise: build/fuzz/<target> -minimize_crash=1 -runs=100000 <artifact>"
  exit 1
fi
echo "fuzz: all ${#targets[@]} target(s) clean"
