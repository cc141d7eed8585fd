#!/usr/bin/env bash
# The sessiond benchmark: sessiond against nginx proxy_pass and the backend
# direct, in one run, reported as ratios to nginx proxy_pass, with each bar of
# the core rebuild marked PASS/FAIL.
#
#   scripts/bench.sh [all|wrk|sweep|conns|callgrind|allocs|tls|ws]   (make bench = all)
#   scripts/bench.sh bundle DIR     a self-contained copy for another machine
#   scripts/bench.sh scale DIR      the many-core runner, from DIR (bundled first
#                                   when DIR holds no bundle yet)
#
#   wrk        throughput, latency and CPU time per request: wrk -t1 -cN -dS
#              --latency against each contender, scenarios read / write / no
#              cookie, the contenders interleaved over R rounds; medians over
#              rounds; peak RSS; redis-server's CPU time per request of the
#              redis manager's runs; plus sessiond workers:2 on the read path,
#              and the redis manager on a 3-master Redis Cluster started here
#              (read and write; the CPU of all three nodes).
#   sweep      client connections 50, 500, 1000, 2000 (keep-alive, cookie read
#              path), sessiond against nginx with W workers each: req/s, p99,
#              CPU time per request of the proxy, and new upstream connections
#              per request counted at the backend (its stub_status "accepts").
#   conns      10,000 idle keep-alive connections to sessiond; its RSS.
#   callgrind  instructions per request (valgrind --tool=callgrind) for
#              sessiond (cookie manager, read path), the same with the request
#              policy on (scripts/bench/policy.yaml.in: 10 routes, csrf, one
#              rate limit; reported as a ratio to the first) and nginx
#              proxy_pass: a run with N requests minus a run with none,
#              divided by N.
#   allocs     allocations per request (malloc, calloc, realloc, posix_memalign,
#              aligned_alloc, memalign; scripts/bench/malloc_count.c preloaded)
#              for sessiond (cookie read path, 1 worker) and nginx's worker:
#              counts after a wrk run minus counts before, over its requests.
#   tls        sessiond with its own TLS against nginx with TLS, both with
#              the same ECDSA P-256 certificate (made here with openssl) in
#              front of the same backend, interleaved over R rounds: wrk over
#              https, keep-alive on the cookie read path (tls_read), and a
#              new connection per request (-H "Connection: close", every one
#              a full handshake: scripts/bench/no_resume.c, preloaded into
#              wrk, stops it from resuming its last session; sessiond's
#              sessiond_tls_handshakes_total confirms it) (tls_handshake);
#              then BENCH_IDLE_CONNS idle TLS connections to each, RSS.
#   ws         WebSocket echo: BENCH_WS_CONNECTIONS connections each echoing
#              1 KiB binary messages one at a time (scripts/bench/ws_load.c)
#              through sessiond and through nginx proxying WebSockets, to a
#              small epoll echo server (scripts/bench/ws_echo.c), and to the
#              echo server direct; messages/s and the proxy's CPU time per
#              message, medians over the rounds, contenders interleaved.
#              Also over TLS (wss://, a reported row without a bar): sessiond
#              with its own TLS against nginx with TLS (ws_tls.nginx.conf.in),
#              the same ECDSA P-256 certificate, to the same plain echo server.
#   all        wrk, sweep, conns, callgrind, allocs, tls, ws, in that order
#              (about 15 minutes with the defaults on a 2-core machine).
#   bundle     DIR/bin: sessiond, nginx, wrk, redis-server, redis-cli, taskset (stripped);
#              DIR/lib: every shared library they load and the dynamic loader;
#              DIR/share: templates and helpers; DIR/run-scale.sh. Runs as
#              DIR/lib/ld-linux-x86-64.so.2 --library-path DIR/lib DIR/bin/X.
#   scale      DIR/run-scale.sh: workers 1, 2, 4 and the sweep at 4 workers,
#              pinned to disjoint cores on 16 or more; see its header.
#
# Everything runs on 127.0.0.1 on free ports, from a temp dir; every process
# started here is stopped by its PID on exit (also on error or Ctrl-C) and the
# temp dir removed. Bars are reported PASS/FAIL, never asserted: the exit
# status is 0 whenever the benchmark itself could run.
#
# Results: build/bench/results.json (raw numbers, medians, bars) and
# build/bench/results.txt (the table, also printed); the callgrind profiles
# of the runs with requests stay in build/bench/callgrind.{nginx,sessiond,sessiond_policy}.out
# (callgrind_annotate --inclusive=yes FILE).
#
# Environment (defaults in brackets):
#   BENCH_SECONDS [10]        seconds per wrk run
#   BENCH_ROUNDS [3]          interleaved rounds of the wrk step
#   BENCH_CONNECTIONS [50]    wrk connections of the wrk step
#   BENCH_WRK_THREADS [1]     wrk threads (at most the connections)
#   BENCH_SWEEP ["50 500 1000 2000"]  client connections of the sweep
#   BENCH_SWEEP_WORKERS [1]   workers of both contenders in the sweep
#   BENCH_SWEEP_SECONDS [BENCH_SECONDS]  seconds per sweep point
#   BENCH_SWEEP_ROUNDS [1]    rounds of the sweep
#   BENCH_WARMUP_SECONDS [2]  unmeasured wrk run before each sweep point and
#                             allocation count, at the same concurrency
#   BENCH_ALLOC_SECONDS [5]   seconds of the counted wrk run of the allocs step
#   BENCH_NGINX_KEEPALIVE [largest of BENCH_SWEEP and BENCH_CONNECTIONS]
#                             nginx's upstream keepalive pool per worker
#   BENCH_CG_REQUESTS [2000]  requests counted under callgrind
#   BENCH_IDLE_CONNS [10000]  connections of the connection-scale step
#   BENCH_WS_CONNECTIONS [50] WebSocket connections of the ws step
#   BENCH_WS_SECONDS [BENCH_SECONDS]  seconds per ws run (after a 1 s warm-up)
#   BENCH_WS_SIZE [1024]      bytes per WebSocket message
#   SESSIOND_BIN [build/release/sessiond]
#   BENCH_KEEP [unset]        set: keep the temp dir (wrk outputs, facts, logs)
#   scale mode reads more (BENCH_SCALE_*, BENCH_RESULTS): see run-scale.sh.
# Quick run while developing:
#   BENCH_SECONDS=2 BENCH_ROUNDS=1 BENCH_CG_REQUESTS=200 BENCH_IDLE_CONNS=1000 \
#   BENCH_WARMUP_SECONDS=1 BENCH_ALLOC_SECONDS=2 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: $0 [all|wrk|sweep|conns|callgrind|allocs|tls|ws] | bundle DIR | scale DIR" >&2
  exit 2
}
MODE=${1:-all}
case "$MODE" in
  all|wrk|sweep|conns|callgrind|allocs|tls|ws) [ $# -le 1 ] || usage ;;
  bundle|scale) [ $# -eq 2 ] || usage ;;
  *) usage ;;
esac
SESSIOND=${SESSIOND_BIN:-build/release/sessiond}
HERE=scripts/bench
OUT=build/bench

# --- bundle: everything the scale runner needs, for a machine with nothing ----

# bundle DIR: see the header. Libraries are found with ldd, copied under their
# soname (symlinks resolved) and stripped of what the loader does not need.
bundle() {
  local dir=$1 tool path lib bin loader=""
  for tool in nginx wrk redis-server redis-cli taskset ldd strip; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh bench installs it)"
  done
  [ -x "$SESSIOND" ] || die "$SESSIOND is missing (make build)"
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ] && [ ! -e "$dir/run-scale.sh" ]; then
    die "$dir is not empty and holds no bundle: not writing into it"
  fi
  rm -rf "${dir:?}/bin" "${dir:?}/lib" "${dir:?}/share" "$dir/run-scale.sh" "$dir/README.txt"
  mkdir -p "$dir/bin" "$dir/lib" "$dir/share"
  cp "$SESSIOND" "$dir/bin/sessiond"
  for tool in nginx wrk redis-server redis-cli taskset; do
    cp "$(command -v "$tool")" "$dir/bin/$tool"
  done
  for bin in "$dir"/bin/*; do
    chmod u+w "$bin"
    strip --strip-all "$bin" 2>/dev/null || note "could not strip $bin; bundling it as it is"
    # "libx.so => /path (addr)" for libraries, "/lib64/ld-linux... (addr)" for the loader.
    while read -r lib; do
      [ -e "$dir/lib/$(basename "$lib")" ] && continue
      cp -L "$lib" "$dir/lib/$(basename "$lib")"
      chmod u+w "$dir/lib/$(basename "$lib")"
      strip --strip-unneeded "$dir/lib/$(basename "$lib")" 2>/dev/null || true
    done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
    path=$(ldd "$bin" | awk '$1 ~ /^\/.*ld-linux/ { print $1 }')
    [ -n "$path" ] && loader=$(basename "$path")
  done
  [ "$loader" = ld-linux-x86-64.so.2 ] || die "the dynamic loader is '$loader', not ld-linux-x86-64.so.2"
  cp "$HERE/run-scale.sh" "$dir/run-scale.sh"
  chmod +x "$dir/run-scale.sh"
  cp "$HERE/lib.sh" "$HERE/report.awk" "$HERE"/*.in "$dir/share/"
  local run=("$dir/lib/$loader" --library-path "$dir/lib")
  env -i "${run[@]}" "$dir/bin/sessiond" --version >/dev/null 2>&1 ||
    die "the bundled sessiond does not run through the bundled loader"
  {
    echo "sessiond benchmark bundle, made $(date -u +%FT%TZ) on $(uname -srm)"
    echo "  $("${run[@]}" "$dir/bin/sessiond" --version)"
    echo "  $("${run[@]}" "$dir/bin/nginx" -v 2>&1)"
    echo "  $("${run[@]}" "$dir/bin/wrk" -v 2>&1 | head -n 1)"
    echo "  $("${run[@]}" "$dir/bin/redis-server" --version)"
    echo
    echo "Run: bash run-scale.sh (bash, coreutils, awk and /proc are all it needs)."
    echo "Results: results/ (or \$BENCH_RESULTS): results.txt, results.json, raw.txt."
    echo "Settings: the header of run-scale.sh. Every binary runs as"
    echo "  lib/$loader --library-path lib bin/X"
  } >"$dir/README.txt"
  local size
  size=$(du -sk "$dir" --exclude=results | awk '{ print $1 }')
  note "bundle in $dir: $((size / 1024)) MiB ($(find "$dir/lib" -type f | wc -l) libraries)"
  [ "$size" -le $((60 * 1024)) ] || note "the bundle is over 60 MiB"
}

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

if [ "$MODE" = bundle ]; then
  bundle "$2"
  exit 0
fi
if [ "$MODE" = scale ]; then
  [ -e "$2/run-scale.sh" ] || bundle "$2"
  exec bash "$2/run-scale.sh"
fi

# --- the benchmark on this machine --------------------------------------------

DURATION=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-50}
SWEEP=${BENCH_SWEEP:-50 500 1000 2000}
SWEEP_WORKERS=${BENCH_SWEEP_WORKERS:-1}
SWEEP_SECONDS=${BENCH_SWEEP_SECONDS:-$DURATION}
SWEEP_ROUNDS=${BENCH_SWEEP_ROUNDS:-1}
WARMUP=${BENCH_WARMUP_SECONDS:-2}
ALLOC_SECONDS=${BENCH_ALLOC_SECONDS:-5}
CG_REQUESTS=${BENCH_CG_REQUESTS:-2000}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
WS_CONNS=${BENCH_WS_CONNECTIONS:-50}
WS_SECONDS=${BENCH_WS_SECONDS:-$DURATION}
WS_SIZE=${BENCH_WS_SIZE:-1024}
COOKIE_NAME=session_id   # sessiond's default session_cookie_name
NGINX_KEEPALIVE=${BENCH_NGINX_KEEPALIVE:-$(echo "$CONNS $SWEEP" | tr ' ' '\n' | sort -n | tail -n 1)}
BACKEND_WORKERS=1

for tool in nginx wrk valgrind redis-server redis-cli python3 cc; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh bench installs it)"
done
[ -x "$SESSIOND" ] || die "$SESSIOND is missing (make build)"
SESSIOND=$(realpath "$SESSIOND")

TMP=$(mktemp -d /tmp/sessiond-bench.XXXXXX)
mkdir -p "$TMP/wrk" "$TMP/logs" "$TMP/cg" "$TMP/allocs"
FACTS=$TMP/facts.txt
: >"$FACTS"
# shellcheck source=scripts/bench/lib.sh
. "$HERE/lib.sh"
CONF_DIR=$HERE
NGINX=(nginx)
WRK=(wrk)
REDIS_SERVER=(redis-server)
REDIS_CLI=(redis-cli)
PIN_WRK=() PIN_PROXY=() PIN_BACKEND=() PIN_REDIS=() WRK_EXTRA=()

cleanup() {
  stop_all
  if [ -n "${BENCH_KEEP:-}" ]; then note "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Client and server connections of the sweep and the connection-scale step,
# each side in its own process; every process started below inherits this.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((IDLE_CONNS + 100)) ] ||
  note "ulimit -n is $(ulimit -n): the connection-scale step may fall short of $IDLE_CONNS"

# Others may rebuild the binary while this runs: every step uses this copy.
cp "$SESSIOND" "$TMP/sessiond"
SESSIOND_BUILT=$(date -u -r "$SESSIOND" +%FT%TZ)
SESSIOND=$TMP/sessiond
SESSIOND_CMD=("$SESSIOND")

read -r P_BACKEND P_BACKEND_STATUS P_NGINX P_COOKIE P_REDIS P_COOKIE_W2 P_REDIS_SERVER P_CG_NGINX \
  P_CG_COOKIE P_IDLE P_SW_NGINX P_SW_COOKIE P_AL_NGINX P_AL_COOKIE P_TLS_NGINX P_TLS_COOKIE P_TLS_ADMIN \
  P_TLS_PLAIN P_WS_ECHO P_WS_NGINX P_WS_COOKIE P_REDIS_CLUSTER P_CG_POLICY P_WS_NGINX_TLS P_WS_COOKIE_TLS \
  <<<"$(free_ports 25)"
# As root, nginx workers would switch to "nobody" and lose the temp dir.
NGINX_USER=""
[ "$(id -u)" -eq 0 ] && NGINX_USER="user root;"
export SESSIOND_SECRET
SESSIOND_SECRET=$("$SESSIOND" gen-secret)

# One cookie, issued by a cookie-manager sessiond through the write path; the
# same key signs for every cookie-manager instance, and nginx and the backend
# just pass the header along, so every read-path run sends one of this size.
COOKIE=""

fact meta mode "$MODE"
fact meta seconds "$DURATION"
fact meta rounds "$ROUNDS"
fact meta connections "$CONNS"
fact meta wrk_threads "$(wrk_threads "$CONNS")"
fact meta clk_tck "$(clk_tck)"
fact meta sweep_workers "$SWEEP_WORKERS"
fact meta sweep_seconds "$SWEEP_SECONDS"
fact meta nginx_keepalive "$NGINX_KEEPALIVE"
fact meta ws_connections "$WS_CONNS"
fact meta ws_size "$WS_SIZE"
fact meta ws_seconds "$WS_SECONDS"
fact meta machine "$(nproc) cores, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
fact meta sessiond "$("$SESSIOND" --version) (built $SESSIOND_BUILT)"
fact meta nginx "$(nginx -v 2>&1)"
fact meta wrk "$(wrk -v 2>&1 | head -n 1)"
fact meta started "$(date -u +%FT%TZ)"

# --- wrk: throughput, latency, CPU, memory -----------------------------------------

run_wrk() {
  local -A port=([direct]=$P_BACKEND [nginx]=$P_NGINX [cookie]=$P_COOKIE [redis]=$P_REDIS
                 [cookie_w2]=$P_COOKIE_W2 [redis_cluster]=$P_REDIS_CLUSTER)
  local -A pid      # the process whose memory is reported
  local -A cpu      # the processes whose CPU time is counted
  local -A cookie
  local c s r i path
  start_backend
  start_redis
  local nginx_master
  start_nginx_proxy nginx_proxy "$P_NGINX" 1; nginx_master=$STARTED
  pid[nginx]=${NGINX_PIDS[1]}; cpu[nginx]="${NGINX_PIDS[*]}"
  start_sessiond sessiond_cookie "$P_COOKIE" cookie 1; pid[cookie]=$STARTED
  start_sessiond sessiond_redis "$P_REDIS" redis 1; pid[redis]=$STARTED
  start_sessiond sessiond_cookie_w2 "$P_COOKIE_W2" cookie 2; pid[cookie_w2]=$STARTED
  start_redis_cluster 3
  SESSIOND_SEEDS=$REDIS_CLUSTER_SEEDS start_sessiond sessiond_redis_cluster "$P_REDIS_CLUSTER" redis 1
  pid[redis_cluster]=$STARTED
  for c in cookie redis cookie_w2 redis_cluster; do cpu[$c]=${pid[$c]}; done
  # The backend direct: its worker's memory, master and worker's CPU.
  pid[direct]=${BACKEND_PIDS[1]}; cpu[direct]="${BACKEND_PIDS[*]}"

  COOKIE=$(cookie_from "$P_COOKIE" "$COOKIE_NAME")
  cookie[redis]=$(cookie_from "$P_REDIS" "$COOKIE_NAME")
  cookie[redis_cluster]=$(cookie_from "$P_REDIS_CLUSTER" "$COOKIE_NAME")
  session_active "$P_COOKIE_W2" "$COOKIE" || die "sessiond workers:2 does not accept the cookie-manager cookie"
  for c in direct nginx cookie cookie_w2; do cookie[$c]=$COOKIE; done

  local contenders=(direct nginx cookie redis cookie_w2 redis_cluster)
  note "warming up each contender (1s)"
  for c in "${contenders[@]}"; do
    warm_up "${port[$c]}" "$CONNS" 1 "${cookie[$c]}"
  done

  for ((r = 1; r <= ROUNDS; r++)); do
    for s in read write nocookie; do
      # Rotate the order each round so no contender always runs first.
      for ((i = 0; i < ${#contenders[@]}; i++)); do
        c=${contenders[$(((i + r - 1) % ${#contenders[@]}))]}
        [ "$c" = cookie_w2 ] && [ "$s" != read ] && continue
        [ "$c" = redis_cluster ] && [ "$s" = nocookie ] && continue
        path=/
        [ "$s" = write ] && path=/write
        REDIS_MEASURE_PIDS=""
        [ "$c" = redis_cluster ] && REDIS_MEASURE_PIDS="${REDIS_CLUSTER_PIDS[*]}"
        # shellcheck disable=SC2086  # cpu[] holds a list of PIDs
        measure "$s" "$c" "$r" "$CONNS" "${port[$c]}" "$path" "$([ "$s" = nocookie ] || echo "${cookie[$c]}")" \
          ${cpu[$c]}
        REDIS_MEASURE_PIDS=""
      done
    done
  done

  for c in "${contenders[@]}"; do
    if alive "${pid[$c]}"; then
      fact mem "$c" "$(mem_kb "${pid[$c]}" VmHWM)" "$(mem_kb "${pid[$c]}" VmRSS)"
    else
      problem "$c (pid ${pid[$c]}) died during the wrk runs"
    fi
  done
  fact mem redis_server "$(mem_kb "$REDIS_PID" VmHWM)" "$(mem_kb "$REDIS_PID" VmRSS)"

  stop_sessiond cookie "${pid[cookie]}"
  stop_sessiond redis "${pid[redis]}"
  stop_sessiond cookie_w2 "${pid[cookie_w2]}"
  stop_sessiond redis_cluster "${pid[redis_cluster]}"
  stop "$nginx_master" "nginx proxy_pass" || problem "nginx proxy_pass did not exit cleanly"
}

# --- sweep: client connections ------------------------------------------------------

run_sweep() {
  local DURATION=$SWEEP_SECONDS w=$SWEEP_WORKERS n r c i nginx_master spid
  local -A port=([nginx]=$P_SW_NGINX [cookie]=$P_SW_COOKIE) cpu
  start_backend
  start_nginx_proxy sweep_nginx "$P_SW_NGINX" "$w"; nginx_master=$STARTED; cpu[nginx]="${NGINX_PIDS[*]}"
  start_sessiond sessiond_sweep "$P_SW_COOKIE" cookie "$w"; spid=$STARTED; cpu[cookie]=$spid
  [ -n "$COOKIE" ] || COOKIE=$(cookie_from "$P_SW_COOKIE" "$COOKIE_NAME")
  local contenders=(nginx cookie)
  i=0
  for n in $SWEEP; do
    for ((r = 1; r <= SWEEP_ROUNDS; r++)); do
      for c in "${contenders[@]:$((i % 2))}" "${contenders[@]:0:$((i % 2))}"; do
        warm_up "${port[$c]}" "$n" "$WARMUP" "$COOKIE"
        # shellcheck disable=SC2086
        measure "sweep_w${w}_c$n" "$c" "$r" "$n" "${port[$c]}" / "$COOKIE" ${cpu[$c]}
      done
      i=$((i + 1))
    done
  done
  alive "$spid" && fact mem sweep_cookie "$(mem_kb "$spid" VmHWM)" "$(mem_kb "$spid" VmRSS)"
  stop_sessiond sweep "$spid"
  stop "$nginx_master" "nginx proxy_pass (sweep)" || problem "nginx proxy_pass (sweep) did not exit cleanly"
}

# --- conns: idle connections --------------------------------------------------

run_conns() {
  local pid
  start_backend
  start_sessiond sessiond_idle "$P_IDLE" cookie 1; pid=$STARTED
  [ -n "$COOKIE" ] || COOKIE=$(cookie_from "$P_IDLE" "$COOKIE_NAME")
  note "opening $IDLE_CONNS idle keep-alive connections to sessiond"
  tracked python3 "$HERE/idle_conns.py" "$P_IDLE" "$IDLE_CONNS" "$pid" "$COOKIE" >"$TMP/idle.json" ||
    problem "the connection-scale step failed"
  stop_sessiond idle "$pid"
}

# --- callgrind: instructions per request --------------------------------------

# callgrind_total NAME PORT REQUESTS CMD...: runs CMD under callgrind, sends
# REQUESTS read-path requests over one keep-alive connection once it listens,
# stops it with SIGTERM and leaves the instructions it executed in IR.
# (Not run in a $(...) subshell: the process must be tracked for cleanup.)
callgrind_total() {
  local name=$1 listen_port=$2 n=$3 out rc=0 pid
  shift 3
  out=$TMP/cg/$name.$n.out
  start "cg_${name}_$n" valgrind --tool=callgrind --callgrind-out-file="$out" "$@"
  pid=$STARTED
  wait_listen "$listen_port" "$pid" "cg_${name}_$n" 120
  # Listening comes before the signal handlers in both servers; under valgrind
  # the gap is long enough for an early SIGTERM to hit the default action.
  sleep 1
  if [ "$n" -gt 0 ]; then
    tracked python3 "$HERE/net.py" requests "$listen_port" / "$n" "$COOKIE" >&2 ||
      problem "$name under callgrind: not every request answered 2xx"
  fi
  stop "$pid" "$name under callgrind" 3 || rc=$?
  [ "$rc" -eq 0 ] || problem "$name under callgrind exited with status $rc on SIGTERM"
  [ -s "$out" ] || die "callgrind wrote no output for $name"
  IR=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
}

run_callgrind() {
  local nginx_conf sessiond_conf policy_conf base
  start_backend
  if [ -z "$COOKIE" ]; then
    start_sessiond sessiond_cookie "$P_COOKIE" cookie 1
    COOKIE=$(cookie_from "$P_COOKIE" "$COOKIE_NAME")
    stop_sessiond cookie "$STARTED"
  fi
  nginx_conf=$(render_nginx proxy.nginx.conf.in cg_nginx "$P_CG_NGINX" "daemon off; master_process off;" 1)
  sessiond_conf=$(render_sessiond cg_sessiond "$P_CG_COOKIE" cookie 1)
  # The same sessiond with the request policy on (scripts/bench/policy.yaml.in).
  policy_conf=$(render_sessiond cg_policy "$P_CG_POLICY" cookie 1)
  cat "$HERE/policy.yaml.in" >>"$policy_conf"
  "${SESSIOND_CMD[@]}" --check-config -c "$policy_conf" >/dev/null 2>"$TMP/logs/cg_policy.check" ||
    die "sessiond rejected $policy_conf: $(cat "$TMP/logs/cg_policy.check")"

  note "callgrind: nginx proxy_pass, startup and shutdown only"
  callgrind_total nginx "$P_CG_NGINX" 0 nginx -p "$TMP/" -e "$TMP/cg_nginx.startup.log" -c "$nginx_conf"
  base=$IR
  note "callgrind: nginx proxy_pass, $CG_REQUESTS requests"
  callgrind_total nginx "$P_CG_NGINX" "$CG_REQUESTS" nginx -p "$TMP/" -e "$TMP/cg_nginx.startup.log" -c "$nginx_conf"
  fact callgrind nginx "$CG_REQUESTS" "$IR" "$base"

  note "callgrind: sessiond cookie, startup and shutdown only"
  callgrind_total sessiond "$P_CG_COOKIE" 0 "$SESSIOND" -c "$sessiond_conf"
  base=$IR
  note "callgrind: sessiond cookie, $CG_REQUESTS requests"
  callgrind_total sessiond "$P_CG_COOKIE" "$CG_REQUESTS" "$SESSIOND" -c "$sessiond_conf"
  fact callgrind cookie "$CG_REQUESTS" "$IR" "$base"

  note "callgrind: sessiond cookie with routes, csrf and a rate limit, startup and shutdown only"
  callgrind_total sessiond_policy "$P_CG_POLICY" 0 "$SESSIOND" -c "$policy_conf"
  base=$IR
  note "callgrind: sessiond cookie with routes, csrf and a rate limit, $CG_REQUESTS requests"
  callgrind_total sessiond_policy "$P_CG_POLICY" "$CG_REQUESTS" "$SESSIOND" -c "$policy_conf"
  fact callgrind policy "$CG_REQUESTS" "$IR" "$base"
  # Kept for callgrind_annotate: where the instructions of each request go.
  mkdir -p "$OUT"
  cp "$TMP/cg/nginx.$CG_REQUESTS.out" "$OUT/callgrind.nginx.out"
  cp "$TMP/cg/sessiond.$CG_REQUESTS.out" "$OUT/callgrind.sessiond.out"
  cp "$TMP/cg/sessiond_policy.$CG_REQUESTS.out" "$OUT/callgrind.sessiond_policy.out"
}

# --- allocs: allocations per request -----------------------------------------------

# alloc_snapshot PID SIGNAL FILE: the counts PID's malloc_count.so writes to
# FILE on SIGNAL, as "malloc calloc realloc posix_memalign aligned_alloc
# memalign free" on one line; fails if none come within 5 seconds.
alloc_snapshot() {
  rm -f "$3"
  kill -s "$2" "$1"
  for _ in $(seq 250); do
    [ -s "$3" ] && { awk '{ printf "%s%s", sep, $2; sep = " " } END { print "" }' "$3"; return; }
    sleep 0.02
  done
  return 1
}

# count_allocs NAME PID SIGNAL PORT: warm up, snapshot, a wrk run of
# ALLOC_SECONDS (read path, CONNS connections), snapshot; the fact
#   alloc NAME REQUESTS CONNECTIONS DELTA_MALLOC ... DELTA_FREE
count_allocs() {
  local name=$1 pid=$2 sig=$3 listen=$4 file=$TMP/allocs/$1 out=$TMP/allocs/$1.wrk before after requests i
  local -a b a d=()
  warm_up "$listen" "$CONNS" "$WARMUP" "$COOKIE"
  before=$(alloc_snapshot "$pid" "$sig" "$file") || { problem "$name wrote no allocation counts"; return; }
  tracked wrk -t"$(wrk_threads "$CONNS")" -c"$CONNS" -d"${ALLOC_SECONDS}s" -H "Cookie: $COOKIE" \
    "http://127.0.0.1:$listen/" >"$out" 2>&1 || problem "wrk against $name (allocs) failed: $(tail -n 1 "$out")"
  after=$(alloc_snapshot "$pid" "$sig" "$file") || { problem "$name wrote no allocation counts"; return; }
  read -ra b <<<"$before"
  read -ra a <<<"$after"
  for i in "${!a[@]}"; do d+=($((a[i] - b[i]))); done
  requests=$(wrk_summary "$out" | awk '{ print $4 }')
  fact alloc "$name" "$requests" "$CONNS" "${d[@]}"
  note "allocs  $name: ${d[*]} (malloc calloc realloc posix_memalign aligned_alloc memalign free) over $requests requests"
}

run_allocs() {
  local so=$TMP/malloc_count.so nginx_master nginx_worker spid rt
  cc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$so" "$HERE/malloc_count.c" 2>"$TMP/logs/malloc_count.cc" ||
    die "could not compile $HERE/malloc_count.c: $(head -n 5 "$TMP/logs/malloc_count.cc")"
  start_backend
  # nginx changes its binary on SIGUSR2: its counter answers a real-time signal.
  rt=$(kill -l RTMIN+3)
  start_nginx_proxy alloc_nginx "$P_AL_NGINX" 1 \
    env LD_PRELOAD="$so" MALLOC_COUNT_FILE="$TMP/allocs/nginx" MALLOC_COUNT_SIGNAL="$rt"
  nginx_master=$STARTED nginx_worker=${NGINX_PIDS[1]}
  start_sessiond sessiond_alloc "$P_AL_COOKIE" cookie 1 env LD_PRELOAD="$so" MALLOC_COUNT_FILE="$TMP/allocs/cookie"
  spid=$STARTED
  [ -n "$COOKIE" ] || COOKIE=$(cookie_from "$P_AL_COOKIE" "$COOKIE_NAME")
  count_allocs nginx "$nginx_worker" "$rt" "$P_AL_NGINX"
  count_allocs cookie "$spid" USR2 "$P_AL_COOKIE"
  stop_sessiond alloc "$spid"
  stop "$nginx_master" "nginx proxy_pass (allocs)" || problem "nginx proxy_pass (allocs) did not exit cleanly"
}

# --- tls: sessiond's own TLS against nginx's ----------------------------------

# make_tls_cert: TLS_CERT and TLS_KEY, one ECDSA P-256 certificate for every
# TLS contender (the clients do not verify it); made once per run.
make_tls_cert() {
  TLS_CERT=$TMP/tls.pem TLS_KEY=$TMP/tls.key
  [ -s "$TLS_CERT" ] && [ -s "$TLS_KEY" ] && return
  command -v openssl >/dev/null || die "openssl is missing"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TLS_KEY" -out "$TLS_CERT" \
    -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>"$TMP/logs/openssl.log" ||
    die "openssl could not make the benchmark certificate: $(tail -n 2 "$TMP/logs/openssl.log")"
}

# tls_handshakes RESUMED: sessiond_tls_handshakes_total{resumed=RESUMED} of the
# TLS contender, from its admin listener.
tls_handshakes() {
  http_get "$P_TLS_ADMIN" /metrics | awk -v r="$1" '$1 == "sessiond_tls_handshakes_total{resumed=\"" r "\"}" { print $2; f = 1 }
                                                    END { if (!f) print "-" }'
}

run_tls() {
  local c s r i nginx_master spid full0 full1 res0 res1 conf
  local -A port=([nginx_tls]=$P_TLS_NGINX [cookie_tls]=$P_TLS_COOKIE) cpu pid
  command -v openssl >/dev/null || die "openssl is missing"
  local shim=$TMP/no_resume.so
  cc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$shim" "$HERE/no_resume.c" -ldl -lssl 2>"$TMP/logs/no_resume.cc" ||
    die "could not compile $HERE/no_resume.c: $(head -n 5 "$TMP/logs/no_resume.cc")"
  local wrk_plain=("${WRK[@]}")
  make_tls_cert
  start_backend
  if [ -z "$COOKIE" ]; then
    start_sessiond sessiond_tls_cookie "$P_TLS_PLAIN" cookie 1
    COOKIE=$(cookie_from "$P_TLS_PLAIN" "$COOKIE_NAME")
    stop_sessiond tls_cookie "$STARTED"
  fi
  NGINX_TEMPLATE=proxy_tls.nginx.conf.in start_nginx_proxy nginx_tls "$P_TLS_NGINX" 1
  nginx_master=$STARTED; pid[nginx_tls]=${NGINX_PIDS[1]}; cpu[nginx_tls]="${NGINX_PIDS[*]}"
  conf=$(render_sessiond sessiond_tls "$P_TLS_COOKIE" cookie 1)
  printf 'tls:\n  certificate: %s\n  private_key: %s\nadmin:\n  listen: 127.0.0.1:%s\n' \
    "$TLS_CERT" "$TLS_KEY" "$P_TLS_ADMIN" >>"$conf"
  "$SESSIOND" --check-config -c "$conf" >/dev/null 2>"$TMP/logs/sessiond_tls.check" ||
    die "sessiond rejected $conf: $(cat "$TMP/logs/sessiond_tls.check")"
  start sessiond_tls "${PIN_PROXY[@]}" "${SESSIOND_CMD[@]}" -c "$conf"
  spid=$STARTED; pid[cookie_tls]=$spid; cpu[cookie_tls]=$spid
  wait_listen "$P_TLS_COOKIE" "$spid" sessiond_tls
  WRK_SCHEME=https
  local contenders=(nginx_tls cookie_tls)
  note "warming up each TLS contender (1s)"
  for c in "${contenders[@]}"; do warm_up "${port[$c]}" "$CONNS" 1 "$COOKIE"; done
  for ((r = 1; r <= ROUNDS; r++)); do
    for s in tls_read tls_handshake; do
      WRK_EXTRA=()
      WRK=("${wrk_plain[@]}")
      [ "$s" = tls_handshake ] && WRK_EXTRA=(-H "Connection: close") WRK=(env LD_PRELOAD="$shim" "${wrk_plain[@]}")
      for ((i = 0; i < ${#contenders[@]}; i++)); do
        c=${contenders[$(((i + r - 1) % ${#contenders[@]}))]}
        [ "$c" = cookie_tls ] && [ "$s" = tls_handshake ] && full0=$(tls_handshakes false) res0=$(tls_handshakes true)
        # shellcheck disable=SC2086  # cpu[] holds a list of PIDs
        measure "$s" "$c" "$r" "$CONNS" "${port[$c]}" / "$COOKIE" ${cpu[$c]}
        if [ "$c" = cookie_tls ] && [ "$s" = tls_handshake ]; then
          full1=$(tls_handshakes false) res1=$(tls_handshakes true)
          [ "$full0" != - ] && [ "$full1" != - ] &&
            fact tls_handshakes "$r" $((full1 - full0)) $((res1 - res0))
        fi
      done
    done
  done
  WRK_EXTRA=()
  WRK=("${wrk_plain[@]}")
  WRK_SCHEME=http
  for c in "${contenders[@]}"; do
    if alive "${pid[$c]}"; then
      fact mem "$c" "$(mem_kb "${pid[$c]}" VmHWM)" "$(mem_kb "${pid[$c]}" VmRSS)"
    else
      problem "$c (pid ${pid[$c]}) died during the TLS runs"
    fi
  done
  stop_sessiond tls "$spid"
  stop "$nginx_master" "nginx TLS" || problem "nginx TLS did not exit cleanly"

  # Idle TLS connections, each contender fresh (and alone) for its memory.
  start sessiond_tls_idle "${PIN_PROXY[@]}" "${SESSIOND_CMD[@]}" -c "$conf"
  spid=$STARTED
  wait_listen "$P_TLS_COOKIE" "$spid" sessiond_tls_idle
  note "opening $IDLE_CONNS idle TLS connections to sessiond"
  tracked python3 "$HERE/idle_conns.py" --tls "$P_TLS_COOKIE" "$IDLE_CONNS" "$spid" "$COOKIE" \
    >"$TMP/idle_tls_cookie.json" || problem "the idle TLS connections step (sessiond) failed"
  stop_sessiond tls_idle "$spid"
  NGINX_TEMPLATE=proxy_tls.nginx.conf.in start_nginx_proxy nginx_tls_idle "$P_TLS_NGINX" 1
  nginx_master=$STARTED
  note "opening $IDLE_CONNS idle TLS connections to nginx"
  tracked python3 "$HERE/idle_conns.py" --tls "$P_TLS_NGINX" "$IDLE_CONNS" "${NGINX_PIDS[1]}" "$COOKIE" \
    >"$TMP/idle_tls_nginx.json" || problem "the idle TLS connections step (nginx) failed"
  stop "$nginx_master" "nginx TLS (idle)" || problem "nginx TLS (idle) did not exit cleanly"
}

# --- ws: WebSocket echo through the proxies ------------------------------------

run_ws() {
  local echo_pid nginx_master nginx_tls_master spid spid_tls r i c out line rate msgs errs before after
  local -A port=([direct]=$P_WS_ECHO [nginx]=$P_WS_NGINX [cookie]=$P_WS_COOKIE [nginx_tls]=$P_WS_NGINX_TLS
                 [cookie_tls]=$P_WS_COOKIE_TLS) cpu
  cc -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$TMP/ws_echo" "$HERE/ws_echo.c" -lcrypto \
    2>"$TMP/logs/ws_echo.cc" || die "could not compile $HERE/ws_echo.c: $(head -n 5 "$TMP/logs/ws_echo.cc")"
  cc -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$TMP/ws_load" "$HERE/ws_load.c" -lssl -lcrypto \
    2>"$TMP/logs/ws_load.cc" || die "could not compile $HERE/ws_load.c: $(head -n 5 "$TMP/logs/ws_load.cc")"
  make_tls_cert
  start ws_echo "${PIN_BACKEND[@]}" "$TMP/ws_echo" "$P_WS_ECHO"; echo_pid=$STARTED
  wait_listen "$P_WS_ECHO" "$echo_pid" ws_echo
  cpu[direct]=$echo_pid
  # The templates' @BACKEND_PORT@ is the echo server for this step.
  local P_BACKEND=$P_WS_ECHO
  local conf
  conf=$(render_nginx ws.nginx.conf.in ws_nginx "$P_WS_NGINX" "daemon off;" 1)
  start ws_nginx "${PIN_PROXY[@]}" "${NGINX[@]}" -p "$TMP/" -e "$TMP/ws_nginx.startup.log" -c "$conf"
  nginx_master=$STARTED
  wait_listen "$P_WS_NGINX" "$nginx_master" ws_nginx
  cpu[nginx]="$nginx_master $(workers_of "$nginx_master" 1)"
  start_sessiond sessiond_ws "$P_WS_COOKIE" cookie 1; spid=$STARTED; cpu[cookie]=$spid
  # Over TLS: nginx and sessiond each with the same certificate.
  conf=$(render_nginx ws_tls.nginx.conf.in ws_nginx_tls "$P_WS_NGINX_TLS" "daemon off;" 1)
  start ws_nginx_tls "${PIN_PROXY[@]}" "${NGINX[@]}" -p "$TMP/" -e "$TMP/ws_nginx_tls.startup.log" -c "$conf"
  nginx_tls_master=$STARTED
  wait_listen "$P_WS_NGINX_TLS" "$nginx_tls_master" ws_nginx_tls
  cpu[nginx_tls]="$nginx_tls_master $(workers_of "$nginx_tls_master" 1)"
  conf=$(render_sessiond sessiond_ws_tls "$P_WS_COOKIE_TLS" cookie 1)
  printf 'tls:\n  certificate: %s\n  private_key: %s\n' "$TLS_CERT" "$TLS_KEY" >>"$conf"
  "$SESSIOND" --check-config -c "$conf" >/dev/null 2>"$TMP/logs/sessiond_ws_tls.check" ||
    die "sessiond rejected $conf: $(cat "$TMP/logs/sessiond_ws_tls.check")"
  start sessiond_ws_tls "${PIN_PROXY[@]}" "${SESSIOND_CMD[@]}" -c "$conf"
  spid_tls=$STARTED; cpu[cookie_tls]=$spid_tls
  wait_listen "$P_WS_COOKIE_TLS" "$spid_tls" sessiond_ws_tls
  local contenders=(direct nginx cookie nginx_tls cookie_tls) tls_arg
  for ((r = 1; r <= ROUNDS; r++)); do
    for ((i = 0; i < ${#contenders[@]}; i++)); do
      c=${contenders[$(((i + r - 1) % ${#contenders[@]}))]}
      out=$TMP/wrk/ws_${c}_$r.txt
      tls_arg=()
      [[ "$c" == *_tls ]] && tls_arg=(/ tls)
      # shellcheck disable=SC2086  # cpu[] holds a list of PIDs
      before=$(cpu_ticks ${cpu[$c]})
      tracked "${PIN_WRK[@]}" "$TMP/ws_load" "${port[$c]}" "$WS_CONNS" "$WS_SECONDS" "$WS_SIZE" 1 "${tls_arg[@]}" \
        >"$out" 2>&1 ||
        problem "ws_load against $c failed: $(tail -n 1 "$out")"
      # shellcheck disable=SC2086
      after=$(cpu_ticks ${cpu[$c]})
      line=$(grep '^messages ' "$out" || echo "messages 0 seconds 0 rate 0 errors -1")
      read -r _ msgs _ _ _ rate _ errs <<<"$line"
      fact ws "$c" "$r" "$rate" "$msgs" "$errs" "$((after - before))"
      note "ws      $c round $r: $rate messages/s ($msgs messages, $errs errors)"
    done
  done
  alive "$spid" && fact mem ws_cookie "$(mem_kb "$spid" VmHWM)" "$(mem_kb "$spid" VmRSS)"
  alive "$spid_tls" && fact mem ws_cookie_tls "$(mem_kb "$spid_tls" VmHWM)" "$(mem_kb "$spid_tls" VmRSS)"
  stop_sessiond ws "$spid"
  stop_sessiond ws_tls "$spid_tls"
  stop "$nginx_master" "nginx (ws)" || problem "nginx (ws) did not exit cleanly"
  stop "$nginx_tls_master" "nginx (ws, TLS)" || problem "nginx (ws, TLS) did not exit cleanly"
  stop "$echo_pid" "ws_echo" || true
}

# --- main ---------------------------------------------------------------------

case "$MODE" in
  all) run_wrk; run_sweep; run_conns; run_callgrind; run_allocs; run_tls; run_ws ;;
  tls) run_tls ;;
  wrk) run_wrk ;;
  sweep) run_sweep ;;
  conns) run_conns ;;
  callgrind) run_callgrind ;;
  allocs) run_allocs ;;
  ws) run_ws ;;
esac
fact meta finished "$(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# Only sessiond's stderr is reported; nginx, redis and valgrind logs stay behind.
find "$TMP/logs" -name '*.stderr' ! -name 'sessiond_*' -delete
python3 "$HERE/report.py" "$TMP" "$OUT/results.json" "$OUT/results.txt"
