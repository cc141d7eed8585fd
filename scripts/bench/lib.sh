# Bash helpers shared by scripts/bench.sh and the scale runner (run-scale.sh).
# Sourced, not run. Everything here needs only bash, coreutils, awk and /proc:
# the scale runner runs from a bundle on a machine where nothing else can be
# assumed (no python, curl, procps or valgrind).
#
# The sourcing script sets, before calling anything here:
#   TMP      a private temp dir with logs/ and wrk/ in it
#   FACTS    the facts file (one fact per line, see report.py)
#   WRK      the wrk command, an array (wrk, or the bundled one via its loader)
#   PIN_WRK  a command prefix pinning wrk to its cores, an array (may be empty)
#   DURATION seconds per measured wrk run
# and, for measure(): P_BACKEND_STATUS (the backend's stub_status port; empty:
# upstream connections are not counted) and REDIS_PID (empty: none), or
# REDIS_MEASURE_PIDS (a space-separated list: a cluster's nodes) instead.
# measure() and warm_up() also read WRK_SCHEME (http or https; default http)
# and WRK_EXTRA (an array of more wrk arguments, e.g. -H "Connection: close").

note() { echo "bench: $*" >&2; }
die() { note "$*"; exit 1; }
fact() { echo "$*" >>"$FACTS"; }
problem() { note "$*"; fact problem "$*"; }

# --- processes: everything started is tracked and stopped by PID -------------

PIDS=()

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

alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

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

# stop_all: SIGTERM to every tracked process, newest first, then SIGKILL to
# any still running 5 seconds later. For the EXIT trap.
stop_all() {
  local pid i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}

# tracked CMD...: runs CMD to completion, returning its status. It runs in the
# background and is waited for, so that SIGINT/SIGTERM reach the trap at once
# (bash defers traps while a foreground child runs) and stop_all stops it too.
tracked() {
  local pid rc=0
  "$@" &
  pid=$!
  PIDS+=("$pid")
  wait "$pid" || rc=$?
  forget "$pid"
  return "$rc"
}

# --- /proc -----------------------------------------------------------------------

# listening PORT: something listens on 127.0.0.1:PORT (or any address). Reads
# /proc/net/tcp instead of connecting, so a server under callgrind sees no
# connection before the measured requests.
listening() {
  local want
  want=$(printf ':%04X' "$1")
  awk -v want="$want" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == want { found = 1 }
                       END { exit !found }' /proc/net/tcp
}

# wait_listen PORT PID NAME [SECONDS]: dies unless PID listens on PORT in time.
wait_listen() {
  local port=$1 pid=$2 name=$3 seconds=${4:-10} i
  for ((i = 0; i < seconds * 50; i++)); do
    listening "$port" && return 0
    alive "$pid" || break
    sleep 0.02
  done
  die "$name did not start listening on 127.0.0.1:$port (its log: $(tail -n 3 "$TMP/logs/$name.stderr" 2>/dev/null))"
}

# free_ports N: N distinct TCP ports that nothing uses now, below the
# ephemeral range (so no client connection of the run can take one).
free_ports() {
  local used port out=()
  used=$(awk 'FNR > 1 { n = split($2, a, ":"); print a[n] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  local -A taken=()
  for port in $used; do taken[$((16#$port))]=1; done
  port=$((20000 + RANDOM % 10000))
  while [ "${#out[@]}" -lt "$1" ]; do
    port=$((port + 1))
    [ -z "${taken[$port]:-}" ] && out+=("$port")
  done
  echo "${out[@]}"
}

# free_cluster_ports N: N free ports P with P + 10000 free too (a Redis
# Cluster node listens on both; P stays below 55536).
free_cluster_ports() {
  local used port out=()
  used=$(awk 'FNR > 1 { n = split($2, a, ":"); print a[n] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  local -A taken=()
  for port in $used; do taken[$((16#$port))]=1; done
  port=$((20000 + RANDOM % 10000))
  while [ "${#out[@]}" -lt "$1" ]; do
    port=$((port + 1))
    [ -z "${taken[$port]:-}" ] && [ -z "${taken[$((port + 10000))]:-}" ] && out+=("$port")
  done
  echo "${out[@]}"
}

# children_of PID: the PIDs whose parent is PID (nginx's workers), from /proc.
children_of() {
  local f s rest state ppid out=()
  for f in /proc/[0-9]*/stat; do
    { s=$(<"$f"); } 2>/dev/null || continue
    rest=${s##*) }
    read -r state ppid _ <<<"$rest"
    [ "$ppid" = "$1" ] && out+=("${f//[^0-9]/}")
  done
  echo "${out[@]}"
}

# workers_of MASTER_PID N: waits until the nginx master has N workers; prints them.
workers_of() {
  local kids=()
  for _ in $(seq 200); do
    read -ra kids <<<"$(children_of "$1")"
    [ "${#kids[@]}" -ge "$2" ] && { echo "${kids[@]}"; return; }
    sleep 0.05
  done
  die "nginx (pid $1) started ${#kids[@]} of $2 workers"
}

# cpu_ticks PID...: utime + stime of the processes (all their threads), in
# clock ticks (CLK_TCK a second). The fields after the ")" that closes the
# command name: state is the 1st, utime the 12th and stime the 13th.
cpu_ticks() {
  local p s rest f total=0
  for p in "$@"; do
    { s=$(<"/proc/$p/stat"); } 2>/dev/null || continue
    rest=${s##*) }
    read -ra f <<<"$rest"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

clk_tck() { getconf CLK_TCK 2>/dev/null || echo 100; }

mem_kb() {  # PID FIELD: VmHWM or VmRSS in kB
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# cpu_list: the CPUs this process may run on (its affinity), one per word.
cpu_list() {
  local spec part a b out=()
  spec=$(awk '$1 == "Cpus_allowed_list:" { print $2 }' /proc/self/status)
  for part in ${spec//,/ }; do
    a=${part%-*} b=${part#*-}
    for ((; a <= b; a++)); do out+=("$a"); done
  done
  echo "${out[@]}"
}

# --- HTTP over bash's /dev/tcp ------------------------------------------------

# http_get PORT PATH [COOKIE]: one GET to 127.0.0.1:PORT with Connection:
# close; prints the whole response (CRs removed). Bounded by 10 seconds.
http_get() {
  local fd extra="" rc=0
  [ -n "${3:-}" ] && extra="Cookie: $3"$'\r\n'
  exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: sessiond-bench\r\n%sConnection: close\r\n\r\n' \
    "$2" "$extra" >&"$fd"
  timeout 10 cat <&"$fd" | tr -d '\r' || rc=$?
  exec {fd}<&-
  return "$rc"
}

# session_cookie PORT NAME: GET /write through PORT (the backend sets a session
# key there); prints NAME=VALUE from the response's Set-Cookie.
session_cookie() {
  http_get "$1" /write | awk -v name="$2" '
    NR == 1 && $2 != "200" { exit 1 }
    /^$/ { exit }
    tolower($1) == "set-cookie:" && index($2, name "=") == 1 { sub(/;.*/, "", $2); print $2; found = 1; exit }
    END { exit !found }'
}

# session_active PORT COOKIE: the backend's /session-status, reached through
# PORT with COOKIE, answers 200 "active" (sessiond accepted the cookie).
session_active() {
  http_get "$1" /session-status "$2" | awk '
    NR == 1 { status = $2 }
    body { text = text $0 }
    /^$/ && !body { body = 1 }
    END { exit !(status == "200" && text == "active") }'
}

# stub_accepts PORT: the "accepts" counter of the nginx stub_status on PORT.
# The query's own connection is counted in it.
stub_accepts() {
  http_get "$1" /status | awk 'seen { print $1; found = 1; exit } /^server accepts/ { seen = 1 }
                               END { exit !found }'
}

# --- wrk --------------------------------------------------------------------------

# wrk_summary FILE: "rps p50_ms p99_ms requests non2xx socket_errors" from the
# output of wrk --latency ("-" where a figure is missing).
wrk_summary() {
  awk '
    function ms(t,   v, u) {
      if (!match(t, /^[0-9.]+/)) return "-"
      v = substr(t, 1, RLENGTH); u = substr(t, RLENGTH + 1)
      if (u == "us") return v / 1000
      if (u == "ms") return v + 0
      if (u == "s") return v * 1000
      if (u == "m") return v * 60000
      return "-"
    }
    BEGIN { rps = p50 = p99 = req = "-"; non2xx = 0; sockerr = 0 }
    /^Requests\/sec:/ { rps = $2 }
    /^ +50% / { p50 = ms($2) }
    /^ +99% / { p99 = ms($2) }
    / requests in / { req = $1 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { gsub(/,/, ""); sockerr = $4 + $6 + $8 + $10 }
    END { print rps, p50, p99, req, non2xx, sockerr }' "$1"
}

# wrk_threads CONNS: BENCH_WRK_THREADS (default 1), at most CONNS.
wrk_threads() {
  local t=${BENCH_WRK_THREADS:-1}
  [ "$t" -gt "$1" ] && t=$1
  echo "$t"
}

# measure SCENARIO CONTENDER ROUND CONNS PORT PATH COOKIE PID...: one wrk run
# (keep-alive, --latency, DURATION seconds) against 127.0.0.1:PORT, with the
# CPU time of PID... (the proxy under test: sessiond, or nginx's master and
# workers), redis-server's CPU time (every node's, for a cluster) and the backend's accepted connections
# sampled before and after it. Leaves wrk's output in
# $TMP/wrk/SCENARIO__CONTENDER__rROUND.txt and the fact
#   run SCENARIO CONTENDER ROUND PROXY_TICKS BACKEND_ACCEPTS REDIS_TICKS
#       RPS P50_MS P99_MS REQUESTS NON2XX SOCKET_ERRORS
# ("-" for what is not measured; the last six are wrk_summary's). Prints a
# progress line.
measure() {
  local scenario=$1 contender=$2 round=$3 conns=$4 port=$5 path=$6 cookie=$7
  shift 7
  local out=$TMP/wrk/${scenario}__${contender}__r$round.txt hdr=()
  local t0 t1 a0=- a1=- r0=- r1=- accepts=- redis=- rps
  [ -n "$cookie" ] && hdr=(-H "Cookie: $cookie")
  [ -n "${P_BACKEND_STATUS:-}" ] && a0=$(stub_accepts "$P_BACKEND_STATUS")
  # shellcheck disable=SC2206  # a list of PIDs
  local redis_pids=(${REDIS_MEASURE_PIDS:-${REDIS_PID:-}})
  [ "${#redis_pids[@]}" -gt 0 ] && r0=$(cpu_ticks "${redis_pids[@]}")
  t0=$(cpu_ticks "$@")
  tracked "${PIN_WRK[@]}" "${WRK[@]}" -t"$(wrk_threads "$conns")" -c"$conns" -d"${DURATION}s" --latency \
    "${hdr[@]}" "${WRK_EXTRA[@]}" "${WRK_SCHEME:-http}://127.0.0.1:$port$path" >"$out" 2>&1 ||
    problem "wrk against $contender ($scenario, round $round) failed: $(tail -n 1 "$out")"
  t1=$(cpu_ticks "$@")
  [ "${#redis_pids[@]}" -gt 0 ] && r1=$(cpu_ticks "${redis_pids[@]}") && redis=$((r1 - r0))
  if [ -n "${P_BACKEND_STATUS:-}" ]; then
    a1=$(stub_accepts "$P_BACKEND_STATUS")
    # The second query's own connection is in a1; the first one's in a0.
    [ "$a0" != - ] && [ -n "$a1" ] && accepts=$((a1 - a0 - 1))
  fi
  local summary
  summary=$(wrk_summary "$out")
  fact run "$scenario" "$contender" "$round" "$((t1 - t0))" "$accepts" "$redis" "$summary"
  note "$scenario  $contender  round $round: ${summary%% *} req/s$(grep -o 'Non-2xx or 3xx responses: [0-9]*' "$out" |
    sed 's/^/, /')"
}

# warm_up PORT CONNS SECONDS COOKIE: an unmeasured wrk run.
warm_up() {
  local hdr=()
  [ -n "$4" ] && hdr=(-H "Cookie: $4")
  tracked "${PIN_WRK[@]}" "${WRK[@]}" -t"$(wrk_threads "$2")" -c"$2" -d"${3}s" "${hdr[@]}" "${WRK_EXTRA[@]}" \
    "${WRK_SCHEME:-http}://127.0.0.1:$1/" >/dev/null 2>&1 || problem "warm-up against port $1 failed"
}

# --- servers ------------------------------------------------------------------------
# The sourcing script also sets: CONF_DIR (the *.in templates), NGINX,
# SESSIOND_CMD and REDIS_SERVER (command arrays), PIN_PROXY, PIN_BACKEND and
# PIN_REDIS (command prefixes pinning each to its cores; may be empty),
# NGINX_USER ("user root;" when run as root, else empty), NGINX_KEEPALIVE,
# BACKEND_WORKERS, and the ports P_BACKEND, P_BACKEND_STATUS, P_REDIS_SERVER.

render_nginx() {  # TEMPLATE NAME PORT MODE WORKERS -> config path
  local conf=$TMP/$2.conf
  sed -e "s|@DIR@|$TMP|g" -e "s|@NAME@|$2|g" -e "s|@PORT@|$3|g" -e "s|@BACKEND_PORT@|$P_BACKEND|g" \
      -e "s|@STATUS_PORT@|$P_BACKEND_STATUS|g" -e "s|@USER@|$NGINX_USER|" -e "s|@MODE@|$4|" \
      -e "s|@WORKERS@|$5|" -e "s|@KEEPALIVE@|$NGINX_KEEPALIVE|" -e "s|@CERT@|${TLS_CERT:-}|" \
      -e "s|@KEY@|${TLS_KEY:-}|" "$CONF_DIR/$1" >"$conf"
  echo "$conf"
}

render_sessiond() {  # NAME PORT MANAGER WORKERS [SEEDS] -> config path (SEEDS: a cluster's host:port list)
  local conf=$TMP/$1.yaml cluster=""
  [ -n "${5:-}" ] && cluster="  cluster: {seeds: [${5// /, }]}"
  sed -e "s|@PORT@|$2|" -e "s|@BACKEND_PORT@|$P_BACKEND|" -e "s|@MANAGER@|$3|" -e "s|@WORKERS@|$4|" \
      -e "s|@REDIS_PORT@|$P_REDIS_SERVER|" -e "s|@REDIS_CLUSTER@|$cluster|" "$CONF_DIR/sessiond.yaml.in" >"$conf"
  "${SESSIOND_CMD[@]}" --check-config -c "$conf" >/dev/null 2>"$TMP/logs/$1.check" ||
    die "sessiond rejected $conf: $(cat "$TMP/logs/$1.check")"
  echo "$conf"
}

BACKEND_PID=""
BACKEND_PIDS=()
start_backend() {  # the backend: nginx, BACKEND_WORKERS workers, stub_status on P_BACKEND_STATUS
  [ -n "$BACKEND_PID" ] && return
  local conf
  conf=$(render_nginx backend.nginx.conf.in backend "$P_BACKEND" "" "$BACKEND_WORKERS")
  start backend "${PIN_BACKEND[@]}" "${NGINX[@]}" -p "$TMP/" -e "$TMP/backend.startup.log" -c "$conf"
  BACKEND_PID=$STARTED
  wait_listen "$P_BACKEND" "$BACKEND_PID" backend
  wait_listen "$P_BACKEND_STATUS" "$BACKEND_PID" backend
  read -ra BACKEND_PIDS <<<"$BACKEND_PID $(workers_of "$BACKEND_PID" "$BACKEND_WORKERS")"
}

REDIS_PID=""
start_redis() {
  [ -n "$REDIS_PID" ] && return
  start redis_server "${PIN_REDIS[@]}" "${REDIS_SERVER[@]}" --bind 127.0.0.1 --port "$P_REDIS_SERVER" \
    --save "" --appendonly no --dir "$TMP" --daemonize no
  REDIS_PID=$STARTED
  wait_listen "$P_REDIS_SERVER" "$REDIS_PID" redis_server
}

# start_redis_cluster N: a Redis Cluster of N masters (no replicas) made with
# redis-cli --cluster create (REDIS_CLI, an array), started once. Node i runs
# under the prefix PIN_REDIS_NODES[i] (a string of words; may be unset).
# Leaves the nodes' PIDs in REDIS_CLUSTER_PIDS and "127.0.0.1:port ..." in
# REDIS_CLUSTER_SEEDS.
REDIS_CLUSTER_PIDS=()
REDIS_CLUSTER_SEEDS=""
start_redis_cluster() {
  [ "${#REDIS_CLUSTER_PIDS[@]}" -gt 0 ] && return
  local n=$1 i port ports=() addrs=() pin
  read -ra ports <<<"$(free_cluster_ports "$n")"
  for ((i = 0; i < n; i++)); do
    port=${ports[i]}
    mkdir -p "$TMP/cluster-$port"
    read -ra pin <<<"${PIN_REDIS_NODES[i]:-}"
    start "redis_cluster_$port" "${pin[@]}" "${REDIS_SERVER[@]}" --bind 127.0.0.1 --port "$port" --save "" \
      --appendonly no --dir "$TMP/cluster-$port" --daemonize no --cluster-enabled yes \
      --cluster-config-file nodes.conf
    REDIS_CLUSTER_PIDS+=("$STARTED")
    wait_listen "$port" "$STARTED" "redis_cluster_$port"
    addrs+=("127.0.0.1:$port")
  done
  tracked "${REDIS_CLI[@]}" --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
    >"$TMP/logs/redis_cluster_create.log" 2>&1 ||
    die "redis-cli --cluster create failed: $(tail -n 3 "$TMP/logs/redis_cluster_create.log")"
  for port in "${ports[@]}"; do
    for ((i = 0; i < 200; i++)); do
      "${REDIS_CLI[@]}" -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && break
      sleep 0.05
    done
    [ "$i" -lt 200 ] || die "the Redis Cluster node on port $port did not reach cluster_state:ok"
  done
  REDIS_CLUSTER_SEEDS="${addrs[*]}"
}

# start_nginx_proxy NAME PORT WORKERS [PREFIX...]: nginx proxy_pass (master
# and WORKERS workers) in front of the backend, PREFIX words before the command
# (env assignments for the allocation counter). Leaves the master in STARTED
# and master + workers in NGINX_PIDS. NGINX_TEMPLATE (default
# proxy.nginx.conf.in) picks the configuration.
start_nginx_proxy() {
  local name=$1 port=$2 workers=$3 conf
  shift 3
  conf=$(render_nginx "${NGINX_TEMPLATE:-proxy.nginx.conf.in}" "$name" "$port" "daemon off;" "$workers")
  start "$name" "$@" "${PIN_PROXY[@]}" "${NGINX[@]}" -p "$TMP/" -e "$TMP/$name.startup.log" -c "$conf"
  local master=$STARTED
  wait_listen "$port" "$master" "$name"
  read -ra NGINX_PIDS <<<"$master $(workers_of "$master" "$workers")"
  STARTED=$master
}

# start_sessiond NAME PORT MANAGER WORKERS [PREFIX...] -> STARTED. With
# SESSIOND_SEEDS set (a cluster's host:port list), the redis manager uses
# that Redis Cluster.
start_sessiond() {
  local name=$1 port=$2 conf
  conf=$(render_sessiond "$1" "$2" "$3" "$4" "${SESSIOND_SEEDS:-}")
  shift 4
  start "$name" "$@" "${PIN_PROXY[@]}" "${SESSIOND_CMD[@]}" -c "$conf"
  wait_listen "$port" "$STARTED" "$name"
}

# stop_sessiond NAME PID: sessiond drains and exits 0 on SIGTERM (README.md, Operations).
stop_sessiond() {
  local rc=0
  alive "$2" || problem "sessiond $1 was no longer running at the end of its step"
  stop "$2" "sessiond $1" || rc=$?
  [ "$rc" -eq 0 ] || problem "sessiond $1 exited with status $rc on SIGTERM"
}

# cookie_from PORT NAME: a session cookie issued by the sessiond on PORT
# through the write path, checked to be accepted on the read path.
cookie_from() {
  local c
  c=$(session_cookie "$1" "$2") || die "could not obtain a session cookie from port $1"
  session_active "$1" "$c" || die "sessiond on port $1 does not accept the cookie it issued"
  echo "$c"
}
