#!/usr/bin/env bash
# Soak test: sessiond (redis manager, 2 workers) under mixed session traffic
# for DURATION, watching its memory and file descriptors.
#
#   scripts/soak.sh DURATION        e.g. 10m, 600s, 1h, or a bare number of seconds
#
# Starts redis-server, a backend (nginx when installed, else the Python test
# backend tests/integration/backend.py), sessiond, and a load generator (wrk
# with a Lua script when installed, else a Python one), all on 127.0.0.1 on
# free ports, from a temp dir. The traffic: keep-alive clients, each slot
# keeping its own session cookie, doing reads (50 %), writes of one of 20 keys
# (35 %), regenerates (8 %) and destroys (7 %).
#
# Every 10 s it prints sessiond's RSS (KiB), open fds, requests served and
# sessions in Redis.
# At the end it reports the RSS growth from the end of the warm-up (the first
# minute, or a quarter of a shorter run) to the end of the load, in percent,
# and whether the fd count stayed flat: within 16 of its warm-up value during
# the load, and back within 2 of its pre-load value once the load stopped and
# idle connections timed out. The load's non-2xx answers and socket errors
# are counted too.
#
# Exit status: 0 if RSS grew < 5 %, fds stayed flat, the load saw no errors
# and sessiond exited 0 on SIGTERM; 1 otherwise; 2 for usage errors.
# Every process started here is stopped by its PID on exit (also on error or
# Ctrl-C) and the temp dir removed (SOAK_KEEP=1 keeps it).
#
# Environment (defaults in brackets):
#   SESSIOND_BIN [build/release/sessiond]
#   SOAK_CONNECTIONS [32]    concurrent keep-alive connections
#   SOAK_DELAY_MS [2]        pause between one connection's requests (wrk
#                            delay(); bounds the rate so the machine stays usable)
#   SOAK_BACKEND [auto]      nginx | python
#   SOAK_LOAD [auto]         wrk | python
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

usage() { echo "usage: scripts/soak.sh DURATION   (e.g. 10m, 600s, 1h)" >&2; exit 2; }
[ $# -eq 1 ] || usage
case "$1" in
  *h) DURATION=$(( ${1%h} * 3600 )) ;;
  *m) DURATION=$(( ${1%m} * 60 )) ;;
  *s) DURATION=${1%s} ;;
  *) DURATION=$1 ;;
esac
[[ "$DURATION" =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 20 ] || { echo "soak: DURATION must be at least 20s" >&2; usage; }

BIN=${SESSIOND_BIN:-build/release/sessiond}
[ -x "$BIN" ] || { echo "soak: $BIN is missing (make build)" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
CONNS=${SOAK_CONNECTIONS:-32}
DELAY_MS=${SOAK_DELAY_MS:-2}
BACKEND=${SOAK_BACKEND:-auto}
LOAD=${SOAK_LOAD:-auto}
if [ "$BACKEND" = auto ]; then command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] && BACKEND=nginx || BACKEND=python; fi
if [ "$LOAD" = auto ]; then command -v wrk >/dev/null && LOAD=wrk || LOAD=python; fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# Warm-up: the first minute (a quarter of a shorter run) is not judged.
WARMUP=$(( DURATION >= 240 ? 60 : DURATION / 4 ))
IDLE_SECONDS=5

DIR=$(mktemp -d /tmp/sessiond-soak.XXXXXX)
chmod 755 "$DIR"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "soak: kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # port seconds what
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),timeout=0.2).close()" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "soak: $3 did not listen on port $1" >&2
  exit 1
}

REDIS_PORT=$(free_port)
BACKEND_PORT=$(free_port)
PROXY_PORT=$(free_port)
ADMIN_PORT=$(free_port)

# --- redis ------------------------------------------------------------------
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" \
  --daemonize no >"$DIR/redis.log" 2>&1 &
PIDS+=($!)
wait_port "$REDIS_PORT" 10 redis-server

# --- backend ------------------------------------------------------------------
# Routes (nginx): /read, /write?k=K&v=V, /regen, /destroy; each echoes ?s=SLOT
# as X-Slot so the load generator knows which client slot a cookie belongs to.
if [ "$BACKEND" = nginx ]; then
  mkdir -p "$DIR/nginx"
  user=""; [ "$(id -u)" -eq 0 ] && user="user root;"
  cat >"$DIR/nginx.conf" <<EOF
$user
worker_processes 1;
daemon off;
pid $DIR/nginx.pid;
error_log $DIR/nginx.error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $DIR/nginx/body;
    proxy_temp_path $DIR/nginx/proxy;
    fastcgi_temp_path $DIR/nginx/fastcgi;
    uwsgi_temp_path $DIR/nginx/uwsgi;
    scgi_temp_path $DIR/nginx/scgi;
    default_type text/plain;
    server {
        listen 127.0.0.1:$BACKEND_PORT;
        add_header X-Slot \$arg_s always;
        location /read { add_header X-Slot \$arg_s always; return 200 "\$http_x_session_status\n"; }
        location /write {
            add_header X-Slot \$arg_s always;
            add_header X-Session-Set '{"k\$arg_k":\$arg_v}' always;
            return 200 "ok\n";
        }
        location /regen { add_header X-Slot \$arg_s always; add_header X-Session-Regenerate true always; return 200 "ok\n"; }
        location /destroy { add_header X-Slot \$arg_s always; add_header X-Session-Destroy true always; return 200 "ok\n"; }
    }
}
EOF
  "$NGINX" -p "$DIR/nginx" -c "$DIR/nginx.conf" >"$DIR/nginx.out" 2>&1 &
  PIDS+=($!)
else
  python3 "$REPO/tests/integration/backend.py" --port "$BACKEND_PORT" >"$DIR/backend.out" 2>&1 &
  PIDS+=($!)
fi
wait_port "$BACKEND_PORT" 10 "the $BACKEND backend"

# --- sessiond -------------------------------------------------------------------
cat >"$DIR/sessiond.yaml" <<EOF
listen: 127.0.0.1:$PROXY_PORT
upstream: http://127.0.0.1:$BACKEND_PORT
workers: 2
secret_key: soak-secret-0123456789abcdef0123456789abcdef
session:
  manager: redis
  session_cookie_secure: false
redis:
  url: redis://127.0.0.1:$REDIS_PORT/0
  timeout: 1s
admin:
  listen: 127.0.0.1:$ADMIN_PORT
timeouts:
  idle: ${IDLE_SECONDS}s
log:
  access: "off"
  level: warn
EOF
"$BIN" -c "$DIR/sessiond.yaml" >"$DIR/sessiond.out" 2>"$DIR/sessiond.err" &
SESSIOND=$!
PIDS+=($SESSIOND)
wait_port "$PROXY_PORT" 10 sessiond

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SESSIOND/status" 2>/dev/null || echo 0; }
fd_count() { ls "/proc/$SESSIOND/fd" 2>/dev/null | wc -l; }
requests_total() {
  python3 - "$ADMIN_PORT" <<'EOF' 2>/dev/null || echo "?"
import sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=2).read().decode()
print(int(sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("sessiond_requests_total"))))
EOF
}

redis_sessions() {  # keys in Redis: the live sessions, showing that the traffic really writes
  python3 - "$REDIS_PORT" <<'EOF' 2>/dev/null || echo "?"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(b"*1\r\n$6\r\nDBSIZE\r\n")
print(int(s.recv(64).strip()[1:]))
EOF
}

# --- load ---------------------------------------------------------------------
if [ "$BACKEND" = nginx ]; then MODE=nginx; else MODE=python; fi
if [ "$LOAD" = wrk ]; then
  cat >"$DIR/soak.lua" <<EOF
-- One Lua state per wrk thread; each thread keeps SLOTS cookies, one per
-- client slot, and learns which slot a response belongs to from X-Slot.
local MODE = "$MODE"
local SLOTS = 64
local DELAY = $DELAY_MS
local cookies = {}
local counter = 0

local function target(op, slot)
  if MODE == "nginx" then
    if op == "read" then return "/read?s=" .. slot end
    if op == "write" then return "/write?s=" .. slot .. "&k=" .. math.random(0, 19) .. "&v=" .. counter end
    if op == "regen" then return "/regen?s=" .. slot end
    return "/destroy?s=" .. slot
  end
  local h = "/set-headers?X-Slot=" .. slot
  if op == "read" then return h end
  if op == "write" then
    return h .. "&X-Session-Set=%7B%22k" .. math.random(0, 19) .. "%22%3A" .. counter .. "%7D"
  end
  if op == "regen" then return h .. "&X-Session-Regenerate=true" end
  return h .. "&X-Session-Destroy=true"
end

function init(args) math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000) end

function delay() return DELAY end

function request()
  counter = counter + 1
  local slot = math.random(1, SLOTS)
  local r = math.random(1, 100)
  local op = "read"
  if r > 50 then op = "write" end
  if r > 85 then op = "regen" end
  if r > 93 then op = "destroy" end
  local headers = {}
  if cookies[slot] then headers["Cookie"] = "session_id=" .. cookies[slot] end
  return wrk.format("GET", target(op, slot), headers)
end

function response(status, headers, body)
  local slot = tonumber(headers["X-Slot"] or headers["x-slot"] or "")
  local sc = headers["Set-Cookie"] or headers["set-cookie"]
  if slot and sc then
    local value = sc:match("^session_id=([^;]*)")
    if value == nil or value == "" or sc:find("Max%-Age=0") then cookies[slot] = nil else cookies[slot] = value end
  end
end
EOF
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 5s -s "$DIR/soak.lua" "http://127.0.0.1:$PROXY_PORT" \
    >"$DIR/load.out" 2>&1 &
else
  python3 - "$PROXY_PORT" "$DURATION" "$CONNS" "$MODE" "$DELAY_MS" >"$DIR/load.out" 2>&1 <<'EOF' &
# The Python load generator: one thread per connection, same mix as the Lua one.
import http.client, random, sys, threading, time, urllib.parse, json
port, duration, conns, mode, delay = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]) / 1000
end = time.monotonic() + duration
stats = {"requests": 0, "non2xx": 0, "errors": 0}
lock = threading.Lock()

def target(op, n):
    if mode == "nginx":
        return {"read": "/read", "write": "/write?k=%d&v=%d" % (random.randint(0, 19), n),
                "regen": "/regen", "destroy": "/destroy"}[op]
    h = {"read": [], "write": [("X-Session-Set", json.dumps({"k%d" % random.randint(0, 19): n}))],
         "regen": [("X-Session-Regenerate", "true")], "destroy": [("X-Session-Destroy", "true")]}[op]
    return "/set-headers?" + urllib.parse.urlencode(h)

def client(i):
    conn, cookie, n = None, None, 0
    while time.monotonic() < end:
        n += 1
        r = random.randint(1, 100)
        op = "read" if r <= 50 else "write" if r <= 85 else "regen" if r <= 93 else "destroy"
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", target(op, n), headers={"Cookie": "session_id=" + cookie} if cookie else {})
            resp = conn.getresponse()
            resp.read()
            sc = resp.getheader("Set-Cookie")
            if sc and sc.startswith("session_id="):
                value = sc.split(";", 1)[0].split("=", 1)[1]
                cookie = None if (not value or "Max-Age=0" in sc) else value
            with lock:
                stats["requests"] += 1
                stats["non2xx"] += resp.status >= 300
        except Exception:
            with lock:
                stats["errors"] += 1
            conn = None
        time.sleep(delay)

threads = [threading.Thread(target=client, args=(i,)) for i in range(conns)]
for t in threads: t.start()
for t in threads: t.join()
print("python load: %d requests, Non-2xx or 3xx responses: %d, socket errors: %d"
      % (stats["requests"], stats["non2xx"], stats["errors"]))
EOF
fi
LOADPID=$!
PIDS+=($LOADPID)

echo "soak: ${DURATION}s, sessiond $BIN (redis manager, 2 workers), backend $BACKEND, load $LOAD" \
     "($CONNS connections, ${DELAY_MS} ms delay); warm-up ${WARMUP}s; temp dir $DIR"
PRE_FDS=$(fd_count)
printf "%8s %10s %6s %12s %10s\n" "time(s)" "rss(KiB)" "fds" "requests" "sessions"
START=$(date +%s)
WARM_RSS=""; WARM_FDS=""; LAST_RSS=0; MAX_FDS=0; MIN_FDS=999999; DIED=0
while kill -0 "$LOADPID" 2>/dev/null; do
  sleep 10
  now=$(( $(date +%s) - START ))
  if ! kill -0 "$SESSIOND" 2>/dev/null; then DIED=1; echo "soak: sessiond died at ${now}s" >&2; break; fi
  rss=$(rss_kb); fds=$(fd_count)
  printf "%8d %10d %6d %12s %10s\n" "$now" "$rss" "$fds" "$(requests_total)" "$(redis_sessions)"
  if [ -z "$WARM_RSS" ] && [ "$now" -ge "$WARMUP" ]; then WARM_RSS=$rss; WARM_FDS=$fds; fi
  if [ -n "$WARM_RSS" ] && kill -0 "$LOADPID" 2>/dev/null; then
    LAST_RSS=$rss
    [ "$fds" -gt "$MAX_FDS" ] && MAX_FDS=$fds
    [ "$fds" -lt "$MIN_FDS" ] && MIN_FDS=$fds
  fi
done
wait "$LOADPID" || true

# After the load: idle client and upstream connections time out.
sleep $(( IDLE_SECONDS + 2 ))
END_FDS=$(fd_count); END_RSS=$(rss_kb)
echo "--- load generator ---"
cat "$DIR/load.out"
NON2XX=$(grep -oE "Non-2xx or 3xx responses: [0-9]+" "$DIR/load.out" | grep -oE "[0-9]+$" || echo 0)
SOCKERR=$(grep -oE "Socket errors: .*" "$DIR/load.out" | grep -oE "[0-9]+" | paste -sd+ | bc 2>/dev/null || echo 0)
PYERR=$(grep -oE "socket errors: [0-9]+" "$DIR/load.out" | grep -oE "[0-9]+$" || echo 0)
ERRORS=$(( ${NON2XX:-0} + ${SOCKERR:-0} + ${PYERR:-0} ))
REQS=$(requests_total)

kill -TERM "$SESSIOND" 2>/dev/null || true
set +e
wait "$SESSIOND"; EXIT=$?
set -e

echo "--- verdict ---"
status=0
if [ "$DIED" = 1 ] || [ -z "$WARM_RSS" ] || [ "$LAST_RSS" = 0 ]; then
  echo "FAIL: sessiond died or no sample after the warm-up"
  status=1
else
  growth=$(awk -v a="$WARM_RSS" -v b="$LAST_RSS" 'BEGIN { printf "%.2f", (b - a) * 100.0 / a }')
  echo "RSS: ${WARM_RSS} KiB after the ${WARMUP}s warm-up, ${LAST_RSS} KiB at the end of the load: growth ${growth} %" \
       "(after the load: ${END_RSS} KiB)"
  if awk -v g="$growth" 'BEGIN { exit !(g < 5.0) }'; then echo "PASS: RSS growth < 5 %"; else echo "FAIL: RSS growth >= 5 %"; status=1; fi
  echo "fds: ${PRE_FDS} before the load, ${WARM_FDS} after the warm-up, ${MIN_FDS}..${MAX_FDS} during the load," \
       "${END_FDS} after it"
  if [ $(( MAX_FDS - WARM_FDS )) -le 16 ] && [ "$END_FDS" -le $(( PRE_FDS + 2 )) ]; then
    echo "PASS: fds flat"
  else
    echo "FAIL: fds not flat"; status=1
  fi
fi
echo "requests served: $REQS; load errors (non-2xx + socket errors): $ERRORS"
[ "$ERRORS" -eq 0 ] || { echo "FAIL: the load saw errors"; status=1; }
echo "sessiond exit status after SIGTERM: $EXIT"
[ "$EXIT" -eq 0 ] || { echo "FAIL: sessiond did not exit 0"; status=1; }
[ -s "$DIR/sessiond.err" ] && { echo "--- sessiond stderr (last 10 lines) ---"; tail -n 10 "$DIR/sessiond.err"; }
exit $status
