#!/usr/bin/env bash
# The many-core runner of the sessiond benchmark. It runs from a bundle
# (scripts/bench.sh bundle DIR puts it at DIR/run-scale.sh) on a machine where
# nothing can be installed: bash, coreutils, awk and /proc are all it uses
# (no python, curl, procps or valgrind); every other program comes from the
# bundle, run as DIR/lib/ld-linux-x86-64.so.2 --library-path DIR/lib DIR/bin/X.
#
#   bash DIR/run-scale.sh            (or: scripts/bench.sh scale DIR)
#   env -i PATH=/usr/bin:/bin bash DIR/run-scale.sh    works the same
#
# Steps, on the cookie read path (a valid session cookie on every request):
#   for W in 1 2 4: sessiond (cookie manager, workers: W) against nginx
#     proxy_pass (worker_processes W), wrk keep-alive at C connections,
#     interleaved over R rounds; at the largest W also sessiond with the redis
#     manager (read path);
#   the client-connection sweep, 50 500 1000 2000 connections, at the largest W;
#   the redis write and read paths at the largest W, sessiond against one
#     redis-server and against a Redis Cluster of three masters started here,
#     each node on a CPU of its own (pinned: CPUs 8, 9, 10, wrk moving to
#     11-15 with 5 threads for this step): with one Redis, Redis is the
#     bottleneck of the write path; the cluster should take about three times
#     the writes.
# Per run: req/s, p99 (wrk --latency), CPU microseconds per request of the
# proxy under test (utime+stime from /proc of sessiond, or of nginx's master
# and workers, before and after), new upstream connections per request (the
# backend's stub_status "accepts" before and after), and redis-server's CPU
# per request. Ratios are to nginx with the same number of workers.
#
# With 16 or more CPUs (in this process's affinity list) every role is pinned
# with taskset to CPUs of its own, in the order of that list: the proxy under
# test (sessiond or nginx) 0-3, the backend (nginx, 4 workers) 4-7,
# redis-server 8, wrk 9-15 (7 threads). With fewer it says so and runs the
# same steps unpinned (backend 1 worker, wrk 1 thread): that tests the runner,
# not the bars.
#
# Results go to $BENCH_RESULTS (default DIR/results), three files:
# results.txt (the table, also printed), results.json, raw.txt (the facts,
# every wrk output and sessiond's stderr). Every process started here is
# stopped by its PID on exit; the exit status is 0 whenever the benchmark ran.
#
# Environment (defaults in brackets):
#   BENCH_SECONDS [10]             seconds per measured wrk run
#   BENCH_ROUNDS [3]               interleaved rounds of the workers steps
#   BENCH_SCALE_CONNECTIONS [256]  wrk connections of the workers steps
#   BENCH_SCALE_WORKERS ["1 2 4"]  workers of the workers steps
#   BENCH_SWEEP ["50 500 1000 2000"]  client connections of the sweep
#   BENCH_SWEEP_ROUNDS [1]         rounds of the sweep
#   BENCH_WARMUP_SECONDS [2]       unmeasured wrk run before each measured set
#   BENCH_SCALE_REDIS [1]          0: skip the redis manager
#   BENCH_SCALE_CLUSTER [1]        0: skip the redis write step (one Redis vs a cluster)
#   BENCH_WRK_THREADS [7 pinned, 1 unpinned]
#   BENCH_BACKEND_WORKERS [4 pinned, 1 unpinned]
#   BENCH_NGINX_KEEPALIVE [largest connection count]  nginx's upstream pool per worker
#   BENCH_RESULTS [DIR/results]    BENCH_KEEP [unset: remove the temp dir]
#   BENCH_SCALE_CPUS [this process's affinity list]  the CPUs to lay the roles
#                                  out on, e.g. "0 1 0 1 ..." (16 entries) to
#                                  try the pinned layout on a small machine
# Quick check of the runner:
#   BENCH_SECONDS=2 BENCH_ROUNDS=1 BENCH_WARMUP_SECONDS=1 bash DIR/run-scale.sh
set -euo pipefail

B=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOADER=$B/lib/ld-linux-x86-64.so.2
bundled() { echo "$LOADER" --library-path "$B/lib" "$B/bin/$1"; }
read -ra NGINX <<<"$(bundled nginx)"
read -ra WRK <<<"$(bundled wrk)"
read -ra SESSIOND_CMD <<<"$(bundled sessiond)"
read -ra REDIS_SERVER <<<"$(bundled redis-server)"
read -ra TASKSET <<<"$(bundled taskset)"
read -ra REDIS_CLI <<<"$(bundled redis-cli)"
CONF_DIR=$B/share
RESULTS=${BENCH_RESULTS:-$B/results}

DURATION=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_SCALE_CONNECTIONS:-256}
WORKERS_LIST=${BENCH_SCALE_WORKERS:-1 2 4}
SWEEP=${BENCH_SWEEP:-50 500 1000 2000}
SWEEP_ROUNDS=${BENCH_SWEEP_ROUNDS:-1}
WARMUP=${BENCH_WARMUP_SECONDS:-2}
WITH_REDIS=${BENCH_SCALE_REDIS:-1}
WITH_CLUSTER=${BENCH_SCALE_CLUSTER:-1}
COOKIE_NAME=session_id   # sessiond's default session_cookie_name
MAX_W=$(echo "$WORKERS_LIST" | tr ' ' '\n' | sort -n | tail -n 1)
NGINX_KEEPALIVE=${BENCH_NGINX_KEEPALIVE:-$(echo "$CONNS $SWEEP" | tr ' ' '\n' | sort -n | tail -n 1)}

for path in "$LOADER" "$B/bin/nginx" "$B/bin/wrk" "$B/bin/sessiond" "$B/bin/redis-server" "$B/bin/redis-cli" \
            "$B/bin/taskset" "$CONF_DIR/lib.sh" "$CONF_DIR/report.awk"; do
  [ -e "$path" ] || { echo "bench: $path is missing: not a complete bundle (scripts/bench.sh bundle DIR)" >&2; exit 1; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-scale.XXXXXX")
mkdir -p "$TMP/wrk" "$TMP/logs"
FACTS=$TMP/facts.txt
: >"$FACTS"
# shellcheck source=scripts/bench/lib.sh
. "$CONF_DIR/lib.sh"

cleanup() {
  stop_all
  if [ -n "${BENCH_KEEP:-}" ]; then note "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${SESSIOND_CMD[@]}" --version >/dev/null 2>&1 || die "the bundled sessiond does not run here"
"${NGINX[@]}" -v >/dev/null 2>&1 || die "the bundled nginx does not run here"

# Up to 2,000 client and 2,000 upstream connections per process.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 5000 ] || note "ulimit -n is $(ulimit -n): the sweep may run out of descriptors"

# --- cores ---------------------------------------------------------------------

read -ra CPUS <<<"${BENCH_SCALE_CPUS:-$(cpu_list)}"
join_cpus() { local IFS=,; echo "$*"; }
PIN_WRK=() PIN_PROXY=() PIN_BACKEND=() PIN_REDIS=() WRK_EXTRA=()
if [ "${#CPUS[@]}" -ge 16 ]; then
  PINNED=1
  PIN_PROXY=("${TASKSET[@]}" -c "$(join_cpus "${CPUS[@]:0:4}")")
  PIN_BACKEND=("${TASKSET[@]}" -c "$(join_cpus "${CPUS[@]:4:4}")")
  PIN_REDIS=("${TASKSET[@]}" -c "${CPUS[8]}")
  PIN_WRK=("${TASKSET[@]}" -c "$(join_cpus "${CPUS[@]:9:7}")")
  export BENCH_WRK_THREADS=${BENCH_WRK_THREADS:-7}
  BACKEND_WORKERS=${BENCH_BACKEND_WORKERS:-4}
  LAYOUT="pinned: proxy CPUs $(join_cpus "${CPUS[@]:0:4}"), backend $(join_cpus "${CPUS[@]:4:4}"),"
  LAYOUT+=" redis-server ${CPUS[8]}, wrk $(join_cpus "${CPUS[@]:9:7}")"
  siblings=/sys/devices/system/cpu/cpu${CPUS[0]}/topology/thread_siblings_list
  [ -r "$siblings" ] && LAYOUT+="; CPU ${CPUS[0]} shares its core with $(cat "$siblings")"
  [ -n "${BENCH_SCALE_CPUS:-}" ] && LAYOUT+="; CPU list from BENCH_SCALE_CPUS"
else
  PINNED=0
  note "only ${#CPUS[@]} CPUs (16 needed to pin wrk, the proxy, the backend and redis-server apart):"
  note "running the same steps unpinned; the numbers test the runner, not the 16-core bars"
  export BENCH_WRK_THREADS=${BENCH_WRK_THREADS:-1}
  BACKEND_WORKERS=${BENCH_BACKEND_WORKERS:-1}
  LAYOUT="unpinned: ${#CPUS[@]} CPUs, fewer than 16"
fi

read -r P_BACKEND P_BACKEND_STATUS P_REDIS_SERVER <<<"$(free_ports 3)"
NGINX_USER=""
[ "$(id -u)" -eq 0 ] && NGINX_USER="user root;"
export SESSIOND_SECRET
SESSIOND_SECRET=$("${SESSIOND_CMD[@]}" gen-secret)

fact meta mode scale
fact meta seconds "$DURATION"
fact meta rounds "$ROUNDS"
fact meta connections "$CONNS"
fact meta wrk_threads "$BENCH_WRK_THREADS"
fact meta clk_tck "$(clk_tck)"
fact meta pinned "$PINNED"
fact meta cpus "${#CPUS[@]}"
fact meta layout "$LAYOUT"
fact meta backend_workers "$BACKEND_WORKERS"
fact meta nginx_keepalive "$NGINX_KEEPALIVE"
fact meta sweep_workers "$MAX_W"
fact meta machine "$(uname -srm), $(nproc) CPUs online, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
fact meta sessiond "$("${SESSIOND_CMD[@]}" --version)"
fact meta nginx "$("${NGINX[@]}" -v 2>&1)"
fact meta wrk "$("${WRK[@]}" -v 2>&1 | head -n 1)"
fact meta started "$(date -u +%FT%TZ)"
note "$LAYOUT"

# --- the steps -------------------------------------------------------------------

affinity() { awk '$1 == "Cpus_allowed_list:" { print $2 }' "/proc/$1/status"; }
start_backend
fact meta affinity_backend "$(affinity "$BACKEND_PID")"
if [ "$WITH_REDIS" = 1 ]; then
  start_redis
  fact meta affinity_redis "$(affinity "$REDIS_PID")"
fi

COOKIE=""
for W in $WORKERS_LIST; do
  read -r P_NGINX P_COOKIE P_REDIS <<<"$(free_ports 3)"
  declare -A port=([nginx]=$P_NGINX [cookie]=$P_COOKIE [redis]=$P_REDIS) cpu=() cookie=()
  start_nginx_proxy "nginx_w$W" "$P_NGINX" "$W"; nginx_master=$STARTED; cpu[nginx]="${NGINX_PIDS[*]}"
  start_sessiond "sessiond_cookie_w$W" "$P_COOKIE" cookie "$W"; cookie_pid=$STARTED; cpu[cookie]=$cookie_pid
  fact meta "affinity_sessiond_w$W" "$(affinity "$cookie_pid")"
  fact meta "affinity_nginx_w$W" "$(affinity "$nginx_master")"
  [ -n "$COOKIE" ] || COOKIE=$(cookie_from "$P_COOKIE" "$COOKIE_NAME")
  session_active "$P_COOKIE" "$COOKIE" || die "sessiond workers:$W does not accept the session cookie"
  cookie[nginx]=$COOKIE cookie[cookie]=$COOKIE
  contenders=(nginx cookie)
  redis_pid=""
  if [ "$W" = "$MAX_W" ] && [ "$WITH_REDIS" = 1 ]; then
    start_sessiond "sessiond_redis_w$W" "$P_REDIS" redis "$W"; redis_pid=$STARTED; cpu[redis]=$redis_pid
    cookie[redis]=$(cookie_from "$P_REDIS" "$COOKIE_NAME")
    contenders+=(redis)
  fi
  for c in "${contenders[@]}"; do warm_up "${port[$c]}" "$CONNS" "$WARMUP" "${cookie[$c]}"; done
  for ((r = 1; r <= ROUNDS; r++)); do
    for ((i = 0; i < ${#contenders[@]}; i++)); do
      c=${contenders[$(((i + r - 1) % ${#contenders[@]}))]}
      # shellcheck disable=SC2086  # cpu[] holds a list of PIDs
      measure "scale_w$W" "$c" "$r" "$CONNS" "${port[$c]}" / "${cookie[$c]}" ${cpu[$c]}
    done
  done
  if [ "$W" = "$MAX_W" ]; then
    i=0
    for n in $SWEEP; do
      for ((r = 1; r <= SWEEP_ROUNDS; r++)); do
        order=(nginx cookie)
        [ $((i % 2)) -eq 1 ] && order=(cookie nginx)
        for c in "${order[@]}"; do
          warm_up "${port[$c]}" "$n" "$WARMUP" "$COOKIE"
          # shellcheck disable=SC2086
          measure "sweep_w${W}_c$n" "$c" "$r" "$n" "${port[$c]}" / "$COOKIE" ${cpu[$c]}
        done
        i=$((i + 1))
      done
    done
  fi
  alive "$cookie_pid" && fact mem "cookie_w$W" "$(mem_kb "$cookie_pid" VmHWM)" "$(mem_kb "$cookie_pid" VmRSS)"
  [ -n "$redis_pid" ] && stop_sessiond "redis_w$W" "$redis_pid"
  stop_sessiond "cookie_w$W" "$cookie_pid"
  stop "$nginx_master" "nginx proxy_pass workers:$W" || problem "nginx proxy_pass workers:$W did not exit cleanly"
  unset port cpu cookie
done
# --- redis: one Redis against a 3-master Redis Cluster ------------------------------

if [ "$WITH_REDIS" = 1 ] && [ "$WITH_CLUSTER" = 1 ]; then
  W=$MAX_W
  saved_pin_wrk=("${PIN_WRK[@]}")
  saved_threads=${BENCH_WRK_THREADS:-1}
  if [ "$PINNED" = 1 ]; then
    PIN_REDIS_NODES=("${TASKSET[*]} -c ${CPUS[8]}" "${TASKSET[*]} -c ${CPUS[9]}" "${TASKSET[*]} -c ${CPUS[10]}")
    PIN_WRK=("${TASKSET[@]}" -c "$(join_cpus "${CPUS[@]:11:5}")")
    export BENCH_WRK_THREADS=5
  fi
  start_redis_cluster 3
  fact meta redis_cluster "3 masters, no replicas: ${REDIS_CLUSTER_SEEDS}"
  read -r P_RW P_RCW <<<"$(free_ports 2)"
  declare -A port=([redis]=$P_RW [redis_cluster]=$P_RCW) cpu=() cookie=()
  start_sessiond "sessiond_redis_one_w$W" "$P_RW" redis "$W"; cpu[redis]=$STARTED
  SESSIOND_SEEDS=$REDIS_CLUSTER_SEEDS start_sessiond "sessiond_redis_cluster_w$W" "$P_RCW" redis "$W"
  cpu[redis_cluster]=$STARTED
  for c in redis redis_cluster; do
    cookie[$c]=$(cookie_from "${port[$c]}" "$COOKIE_NAME")
    warm_up "${port[$c]}" "$CONNS" "$WARMUP" "${cookie[$c]}"
  done
  contenders=(redis redis_cluster)
  for ((r = 1; r <= ROUNDS; r++)); do
    for s in write read; do
      for ((i = 0; i < 2; i++)); do
        c=${contenders[$(((i + r - 1) % 2))]}
        REDIS_MEASURE_PIDS=""
        [ "$c" = redis_cluster ] && REDIS_MEASURE_PIDS="${REDIS_CLUSTER_PIDS[*]}"
        path=/
        [ "$s" = write ] && path=/write
        # shellcheck disable=SC2086
        measure "scale_redis_${s}_w$W" "$c" "$r" "$CONNS" "${port[$c]}" "$path" "${cookie[$c]}" ${cpu[$c]}
        REDIS_MEASURE_PIDS=""
      done
    done
  done
  stop_sessiond "redis_one_w$W" "${cpu[redis]}"
  stop_sessiond "redis_cluster_w$W" "${cpu[redis_cluster]}"
  PIN_WRK=("${saved_pin_wrk[@]}")
  export BENCH_WRK_THREADS=$saved_threads
  unset port cpu cookie
fi
fact meta finished "$(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# --- results ----------------------------------------------------------------------

mkdir -p "$RESULTS"
awk -f "$CONF_DIR/report.awk" -v json="$RESULTS/results.json" "$FACTS" >"$RESULTS/results.txt"
{
  echo "# facts"
  cat "$FACTS"
  for f in "$TMP"/wrk/*.txt; do
    echo
    echo "# wrk: $(basename "$f" .txt)"
    cat "$f"
  done
  for f in "$TMP"/logs/sessiond_*.stderr; do
    [ -s "$f" ] || continue
    echo
    echo "# stderr: $(basename "$f" .stderr)"
    tail -n 50 "$f"
  done
} >"$RESULTS/raw.txt"
cat "$RESULTS/results.txt"
note "results in $RESULTS: results.txt, results.json, raw.txt"
