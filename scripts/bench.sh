#!/usr/bin/env bash
# The sessiond benchmark (issue 5): sessiond against nginx proxy_pass and the
# backend direct, in one run, reported as ratios to nginx proxy_pass.
#
#   scripts/bench.sh [all|wrk|callgrind|conns]     (make bench = all)
#
#   wrk        throughput and latency: wrk -t1 -cN -dS --latency against each
#              contender, scenarios read / write / no cookie, the contenders
#              interleaved over R rounds; medians over rounds; peak RSS; plus
#              sessiond workers:2 against workers:1 on the cookie read path.
#   conns      10,000 idle keep-alive connections to sessiond; its RSS.
#   callgrind  instructions per request (valgrind --tool=callgrind) for
#              sessiond (cookie manager, read path) and nginx proxy_pass: a run
#              with N requests minus a run with none, divided by N.
#   all        the three, in that order.
#
# Everything runs on 127.0.0.1 on free ports, from a temp dir; every process
# started here is stopped by its PID on exit (also on error or Ctrl-C) and the
# temp dir removed. Bars are reported PASS/FAIL, never asserted: the exit
# status is 0 whenever the benchmark itself could run.
#
# Results: build/bench/results.json (raw numbers, medians, bars) and
# build/bench/results.txt (the table, also printed); the callgrind profiles
# of the runs with requests stay in build/bench/callgrind.{nginx,sessiond}.out
# (callgrind_annotate --inclusive=yes FILE).
#
# Environment (defaults in brackets):
#   BENCH_SECONDS [10]        seconds per wrk run
#   BENCH_ROUNDS [3]          interleaved rounds
#   BENCH_CONNECTIONS [50]    wrk connections
#   BENCH_CG_REQUESTS [2000]  requests counted under callgrind
#   BENCH_IDLE_CONNS [10000]  connections of the connection-scale step
#   SESSIOND_BIN [build/release/sessiond]
# Quick run while developing: BENCH_SECONDS=2 BENCH_ROUNDS=1 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-all}
case "$MODE" in
  all|wrk|callgrind|conns) ;;
  *) echo "usage: $0 [all|wrk|callgrind|conns]" >&2; exit 2 ;;
esac
DURATION=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-50}
CG_REQUESTS=${BENCH_CG_REQUESTS:-2000}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
SESSIOND=${SESSIOND_BIN:-build/release/sessiond}
HERE=scripts/bench
OUT=build/bench
COOKIE_NAME=session_id   # sessiond's default session_cookie_name

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

for tool in nginx wrk valgrind redis-server python3 pgrep; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh bench installs it)"
done
[ -x "$SESSIOND" ] || die "$SESSIOND is missing (make build)"
SESSIOND=$(realpath "$SESSIOND")

# 10k client connections and 10k server connections, each side in its own
# process; every process started below inherits this.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((IDLE_CONNS + 100)) ] ||
  note "ulimit -n is $(ulimit -n): the connection-scale step may fall short of $IDLE_CONNS"

# --- processes: everything started is tracked and stopped by PID -------------

TMP=$(mktemp -d /tmp/sessiond-bench.XXXXXX)
mkdir -p "$TMP/wrk" "$TMP/logs" "$TMP/cg"
FACTS=$TMP/facts.txt
: >"$FACTS"
PIDS=()

cleanup() {
  local pid i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Others may rebuild the binary while this runs: every step uses this copy.
cp "$SESSIOND" "$TMP/sessiond"
SESSIOND_BUILT=$(date -u -r "$SESSIOND" +%FT%TZ)
SESSIOND=$TMP/sessiond

fact() { echo "$*" >>"$FACTS"; }
problem() { note "$*"; fact problem "$*"; }

# start NAME CMD...: runs CMD in the background with its output in
# $TMP/logs/NAME.{stdout,stderr}; the PID is left in STARTED.
start() {
  local name=$1; shift
  "$@" >"$TMP/logs/$name.stdout" 2>"$TMP/logs/$name.stderr" &
  STARTED=$!
  PIDS+=("$STARTED")
}

forget() {  # PID: no longer ours to stop
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# stop PID NAME [RESEND]: SIGTERM, wait for it, forget it; returns its exit
# status. A process that catches SIGTERM after it opened its sockets but before
# its event loop first blocks can sleep on (nginx with master_process off does,
# and valgrind widens that window): SIGTERM is sent again every RESEND seconds
# (default 15, above sessiond's default shutdown timeout), SIGKILL after 60.
stop() {
  local pid=$1 name=$2 resend=${3:-15} ticks=0 rc=0
  kill -TERM "$pid" 2>/dev/null || true
  while alive "$pid"; do
    sleep 0.1
    ticks=$((ticks + 1))
    if [ "$ticks" -ge 600 ]; then
      problem "$name did not exit within 60s of SIGTERM; killed"
      kill -KILL "$pid" 2>/dev/null || true
    elif [ $((ticks % (resend * 10))) -eq 0 ]; then
      note "$name still running ${resend}s after SIGTERM; sending it again"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  wait "$pid" || rc=$?
  forget "$pid"
  return "$rc"
}

# tracked CMD...: runs CMD to completion, returning its status. It runs in the
# background and is waited for, so that SIGINT/SIGTERM reach the trap at once
# (bash defers traps while a foreground child runs) and cleanup stops it too.
tracked() {
  local pid rc=0
  "$@" &
  pid=$!
  PIDS+=("$pid")
  wait "$pid" || rc=$?
  forget "$pid"
  return "$rc"
}

wait_listen() {  # PORT PID NAME [SECONDS]
  python3 "$HERE/net.py" wait-listen "$1" "${4:-10}" "$2" ||
    die "$3 did not start listening on 127.0.0.1:$1 (see its log: $(tail -n 3 "$TMP/logs/$3.stderr" 2>/dev/null))"
}

alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

worker_of() {  # nginx master PID -> its (one) worker's PID
  local w
  for _ in $(seq 100); do
    w=$(pgrep -P "$1" | head -n 1) && [ -n "$w" ] && { echo "$w"; return; }
    sleep 0.05
  done
  die "nginx (pid $1) started no worker"
}

mem_kb() {  # PID FIELD: VmHWM or VmRSS in kB
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# --- configs -------------------------------------------------------------------

read -r P_BACKEND P_NGINX P_COOKIE P_REDIS P_COOKIE_W2 P_REDIS_SERVER P_CG_NGINX P_CG_COOKIE P_IDLE \
  <<<"$(python3 "$HERE/net.py" free-ports 9)"
# As root, nginx workers would switch to "nobody" and lose the temp dir.
NGINX_USER=""
[ "$(id -u)" -eq 0 ] && NGINX_USER="user root;"
export SESSIOND_SECRET
SESSIOND_SECRET=$("$SESSIOND" gen-secret)

render_nginx() {  # TEMPLATE NAME PORT MODE -> config path
  local conf=$TMP/$2.conf
  sed -e "s|@DIR@|$TMP|g" -e "s|@NAME@|$2|g" -e "s|@PORT@|$3|g" -e "s|@BACKEND_PORT@|$P_BACKEND|g" \
      -e "s|@USER@|$NGINX_USER|" -e "s|@MODE@|$4|" "$HERE/$1" >"$conf"
  echo "$conf"
}

render_sessiond() {  # NAME PORT MANAGER WORKERS -> config path
  local conf=$TMP/$1.yaml
  sed -e "s|@PORT@|$2|" -e "s|@BACKEND_PORT@|$P_BACKEND|" -e "s|@MANAGER@|$3|" -e "s|@WORKERS@|$4|" \
      -e "s|@REDIS_PORT@|$P_REDIS_SERVER|" "$HERE/sessiond.yaml.in" >"$conf"
  "$SESSIOND" --check-config -c "$conf" >/dev/null 2>"$TMP/logs/$1.check" ||
    die "sessiond rejected $conf: $(cat "$TMP/logs/$1.check")"
  echo "$conf"
}

BACKEND_PID=""
start_backend() {
  [ -n "$BACKEND_PID" ] && return
  start backend nginx -e "$TMP/backend.startup.log" -c "$(render_nginx backend.nginx.conf.in backend "$P_BACKEND" "")"
  BACKEND_PID=$STARTED
  wait_listen "$P_BACKEND" "$BACKEND_PID" backend
}

REDIS_PID=""
start_redis() {
  [ -n "$REDIS_PID" ] && return
  start redis_server redis-server --bind 127.0.0.1 --port "$P_REDIS_SERVER" --save "" --appendonly no \
    --dir "$TMP" --daemonize no
  REDIS_PID=$STARTED
  wait_listen "$P_REDIS_SERVER" "$REDIS_PID" redis_server
}

start_sessiond() {  # NAME PORT MANAGER WORKERS -> STARTED
  local conf
  conf=$(render_sessiond "$1" "$2" "$3" "$4")
  start "$1" "$SESSIOND" -c "$conf"
  wait_listen "$2" "$STARTED" "$1"
}

# stop_sessiond NAME PID: a clean SIGTERM shutdown exits 0 (docs/OPERATIONS.md, Signals).
stop_sessiond() {
  local rc=0
  alive "$2" || problem "sessiond $1 was no longer running at the end of its step"
  stop "$2" "sessiond $1" || rc=$?
  [ "$rc" -eq 0 ] || problem "sessiond $1 exited with status $rc on SIGTERM"
}

COOKIE=""
# One cookie per manager, each issued by that sessiond through the write path;
# the read path is only measured if sessiond then reports the session active.
get_cookie() {  # PORT
  local c
  c=$(python3 "$HERE/net.py" get-cookie "$1" /write "$COOKIE_NAME") || die "could not obtain a session cookie"
  python3 "$HERE/net.py" expect-body "$1" /session-status "$c" active ||
    die "sessiond on port $1 does not accept the cookie it issued"
  echo "$c"
}

fact meta mode "$MODE"
fact meta seconds "$DURATION"
fact meta rounds "$ROUNDS"
fact meta connections "$CONNS"
fact meta machine "$(nproc) cores, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
fact meta sessiond "$("$SESSIOND" --version) (built $SESSIOND_BUILT)"
fact meta nginx "$(nginx -v 2>&1)"
fact meta wrk "$(wrk -v 2>&1 | head -n 1)"
fact meta started "$(date -u +%FT%TZ)"

# --- wrk: throughput, latency, memory -----------------------------------------

run_wrk() {
  local -A port=([direct]=$P_BACKEND [nginx]=$P_NGINX [cookie]=$P_COOKIE [redis]=$P_REDIS
                 [cookie_w2]=$P_COOKIE_W2)
  local -A pid
  local -A cookie
  local c s r i out path rps
  start_backend
  start_redis
  local nginx_master
  start nginx_proxy nginx -e "$TMP/nginx.startup.log" -c "$(render_nginx proxy.nginx.conf.in nginx "$P_NGINX" "daemon off;")"
  nginx_master=$STARTED
  wait_listen "$P_NGINX" "$nginx_master" nginx_proxy
  start_sessiond sessiond_cookie "$P_COOKIE" cookie 1; pid[cookie]=$STARTED
  start_sessiond sessiond_redis "$P_REDIS" redis 1; pid[redis]=$STARTED
  start_sessiond sessiond_cookie_w2 "$P_COOKIE_W2" cookie 2; pid[cookie_w2]=$STARTED
  # nginx's memory is its worker's; the backend direct is the backend's worker.
  pid[direct]=$(worker_of "$BACKEND_PID")
  pid[nginx]=$(worker_of "$nginx_master")

  cookie[cookie]=$(get_cookie "$P_COOKIE")
  cookie[redis]=$(get_cookie "$P_REDIS")
  # The same key signs for both cookie-manager instances; nginx and the
  # backend just pass the header along, so they get a cookie of the same size.
  cookie[cookie_w2]=${cookie[cookie]}
  python3 "$HERE/net.py" expect-body "$P_COOKIE_W2" /session-status "${cookie[cookie_w2]}" active ||
    die "sessiond workers:2 does not accept the cookie-manager cookie"
  cookie[direct]=${cookie[cookie]}
  cookie[nginx]=${cookie[cookie]}
  COOKIE=${cookie[cookie]}

  local contenders=(direct nginx cookie redis cookie_w2)
  note "warming up each contender (1s)"
  for c in "${contenders[@]}"; do
    tracked wrk -t1 -c"$CONNS" -d1s -H "Cookie: ${cookie[$c]}" "http://127.0.0.1:${port[$c]}/" >/dev/null 2>&1 ||
      problem "warm-up of $c failed"
  done

  for ((r = 1; r <= ROUNDS; r++)); do
    for s in read write nocookie; do
      # Rotate the order each round so no contender always runs first.
      for ((i = 0; i < ${#contenders[@]}; i++)); do
        c=${contenders[$(((i + r - 1) % ${#contenders[@]}))]}
        [ "$c" = cookie_w2 ] && [ "$s" != read ] && continue
        local hdr=(-H "Cookie: ${cookie[$c]}")
        path=/
        [ "$s" = write ] && path=/write
        [ "$s" = nocookie ] && hdr=()
        out=$TMP/wrk/${s}__${c}__r$r.txt
        tracked wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "${hdr[@]}" "http://127.0.0.1:${port[$c]}$path" \
          >"$out" 2>&1 || problem "wrk against $c ($s, round $r) failed: $(tail -n 1 "$out")"
        rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
        note "round $r/$ROUNDS  $s  $c: ${rps:-?} req/s$(grep -o 'Non-2xx or 3xx responses: [0-9]*' "$out" |
          sed 's/^/, /')"
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
  stop "$nginx_master" "nginx proxy_pass" || problem "nginx proxy_pass did not exit cleanly"
}

# --- conns: idle connections --------------------------------------------------

run_conns() {
  local pid
  start_backend
  start_sessiond sessiond_idle "$P_IDLE" cookie 1; pid=$STARTED
  [ -n "$COOKIE" ] || COOKIE=$(get_cookie "$P_IDLE")
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
  python3 "$HERE/net.py" wait-listen "$listen_port" 120 "$pid" ||
    die "$name did not start under callgrind: $(tail -n 3 "$TMP/logs/cg_${name}_$n.stderr")"
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
  local nginx_conf sessiond_conf base
  start_backend
  if [ -z "$COOKIE" ]; then
    start_sessiond sessiond_cookie "$P_COOKIE" cookie 1
    COOKIE=$(get_cookie "$P_COOKIE")
    stop_sessiond cookie "$STARTED"
  fi
  nginx_conf=$(render_nginx proxy.nginx.conf.in cg_nginx "$P_CG_NGINX" "daemon off; master_process off;")
  sessiond_conf=$(render_sessiond cg_sessiond "$P_CG_COOKIE" cookie 1)

  note "callgrind: nginx proxy_pass, startup and shutdown only"
  callgrind_total nginx "$P_CG_NGINX" 0 nginx -e "$TMP/cg_nginx.startup.log" -c "$nginx_conf"
  base=$IR
  note "callgrind: nginx proxy_pass, $CG_REQUESTS requests"
  callgrind_total nginx "$P_CG_NGINX" "$CG_REQUESTS" nginx -e "$TMP/cg_nginx.startup.log" -c "$nginx_conf"
  fact callgrind nginx "$CG_REQUESTS" "$IR" "$base"

  note "callgrind: sessiond cookie, startup and shutdown only"
  callgrind_total sessiond "$P_CG_COOKIE" 0 "$SESSIOND" -c "$sessiond_conf"
  base=$IR
  note "callgrind: sessiond cookie, $CG_REQUESTS requests"
  callgrind_total sessiond "$P_CG_COOKIE" "$CG_REQUESTS" "$SESSIOND" -c "$sessiond_conf"
  fact callgrind cookie "$CG_REQUESTS" "$IR" "$base"
  # Kept for callgrind_annotate: where the instructions of each request go.
  mkdir -p "$OUT"
  cp "$TMP/cg/nginx.$CG_REQUESTS.out" "$OUT/callgrind.nginx.out"
  cp "$TMP/cg/sessiond.$CG_REQUESTS.out" "$OUT/callgrind.sessiond.out"
}

# --- main ---------------------------------------------------------------------

case "$MODE" in
  all) run_wrk; run_conns; run_callgrind ;;
  wrk) run_wrk ;;
  conns) run_conns ;;
  callgrind) run_callgrind ;;
esac
fact meta finished "$(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# Only sessiond's stderr is reported; nginx and valgrind logs stay behind.
find "$TMP/logs" -name '*.stderr' ! -name 'sessiond_*' -delete
python3 "$HERE/report.py" "$TMP" "$OUT/results.json" "$OUT/results.txt"
