#!/usr/bin/env bash
# Runs the demo: the example app behind sessiond, until Ctrl-C.
#
#   scripts/demo.sh [python|node]      (make demo runs it after the build)
#
# Starts the example backend (examples/python/app.py by default) on
# 127.0.0.1:3000 and sessiond on 127.0.0.1:8080 with config/demo.yaml (its
# admin listener, /metrics, on 127.0.0.1:9090), prints the URL, and stops both
# on Ctrl-C or SIGTERM (exit 0). If either process dies on its own, the other
# is stopped and the script exits 1.
#
# Environment:
#   SESSIOND_SECRET   the secret_key; a throwaway one is generated when unset
#   SESSIOND_BIN      the binary (default ./sessiond)
#   DEMO_PORT         sessiond's port (default 8080)
#   DEMO_APP_PORT     the app's port (default 3000)
#   DEMO_ADMIN_PORT   sessiond's admin port (default 9090)
#   DEMO_TLS_CERT, DEMO_TLS_KEY
#                     PEM files: sessiond serves https:// (and wss://) with them,
#                     and the session cookie is Secure (tests/e2e runs the demo
#                     this way with a test CA); unset: plain http
# With other ports than the defaults, or with TLS, a copy of config/demo.yaml
# with those settings is used. Works without a terminal (tests/e2e drives it
# that way): the line "demo: ready at URL" marks the moment both processes
# accept.
set -euo pipefail
# Relative to the caller's directory, so resolved before the cd.
TLS_CERT=${DEMO_TLS_CERT:+$(realpath -m -- "$DEMO_TLS_CERT")}
TLS_KEY=${DEMO_TLS_KEY:+$(realpath -m -- "$DEMO_TLS_KEY")}
cd "$(dirname "$0")/.."

HOST=127.0.0.1
PORT=${DEMO_PORT:-8080}
APP_PORT=${DEMO_APP_PORT:-3000}
ADMIN_PORT=${DEMO_ADMIN_PORT:-9090}
BIN=${SESSIOND_BIN:-./sessiond}
CONFIG=config/demo.yaml
APP=${1:-python}
SCHEME=http

die() {
  echo "demo: $*" >&2
  exit 1
}

case "$APP" in
  python) app_cmd=(python3 examples/python/app.py) ;;
  node) app_cmd=(node examples/node/app.js) ;;
  *) echo "usage: $0 [python|node]" >&2; exit 2 ;;
esac
[[ "$PORT" =~ ^[0-9]+$ && "$APP_PORT" =~ ^[0-9]+$ && "$ADMIN_PORT" =~ ^[0-9]+$ ]] \
  || die "DEMO_PORT, DEMO_APP_PORT and DEMO_ADMIN_PORT must be port numbers"
[ "$PORT" != "$APP_PORT" ] && [ "$PORT" != "$ADMIN_PORT" ] && [ "$APP_PORT" != "$ADMIN_PORT" ] \
  || die "DEMO_PORT, DEMO_APP_PORT and DEMO_ADMIN_PORT must differ"
if [ -n "$TLS_CERT$TLS_KEY" ]; then
  [ -r "$TLS_CERT" ] && [ -r "$TLS_KEY" ] || die "DEMO_TLS_CERT and DEMO_TLS_KEY must both name readable PEM files"
  case "$TLS_CERT$TLS_KEY" in *\"*|*\\*) die "DEMO_TLS_CERT and DEMO_TLS_KEY must not contain '\"' or '\\'" ;; esac
  SCHEME=https
fi
[ -x "$BIN" ] || die "$BIN not found: run 'make demo' (or 'make build' first)"
command -v "${app_cmd[0]}" >/dev/null || die "${app_cmd[0]} is not installed"
command -v python3 >/dev/null || die "python3 is not installed"

# True if nothing listens on HOST:$1. SO_REUSEADDR, as servers set it, so a
# leftover TIME_WAIT connection does not count as busy.
port_free() {
  python3 - "$HOST" "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
EOF
}

for p in "$APP_PORT" "$PORT" "$ADMIN_PORT"; do
  port_free "$p" || die "port $p on $HOST is already in use (see: ss -ltnp 'sport = :$p');" \
                        "stop that process, or pick other ports with DEMO_PORT / DEMO_APP_PORT / DEMO_ADMIN_PORT"
done

if [ -z "${SESSIOND_SECRET:-}" ]; then
  SESSIOND_SECRET=$("$BIN" gen-secret) || die "'$BIN gen-secret' failed"
  echo "demo: generated a throwaway secret_key (set SESSIOND_SECRET to keep sessions across runs)"
fi
export SESSIOND_SECRET

pids=()
tmp_config=""
# shellcheck disable=SC2317  # reached through the traps below
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  # Each pid on its own: `wait` with no argument would also wait for the
  # command substitutions' leftovers, and a dead pid is not an error here.
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  [ -z "$tmp_config" ] || rm -f "$tmp_config"
}
trap 'echo; echo "demo: stopping"; cleanup; exit 0' INT TERM
trap cleanup EXIT

if [ "$PORT" != 8080 ] || [ "$APP_PORT" != 3000 ] || [ "$ADMIN_PORT" != 9090 ] || [ "$SCHEME" = https ]; then
  tmp_config=$(mktemp "${TMPDIR:-/tmp}/sessiond-demo.XXXXXX.yaml")
  sed -e "s#^listen: 127\.0\.0\.1:8080\$#listen: $HOST:$PORT#" \
      -e "s#^upstream: http://127\.0\.0\.1:3000\$#upstream: http://$HOST:$APP_PORT#" \
      -e "s#^  listen: 127\.0\.0\.1:9090\$#  listen: $HOST:$ADMIN_PORT#" "$CONFIG" >"$tmp_config"
  if ! grep -q "^listen: $HOST:$PORT\$" "$tmp_config" \
      || ! grep -q "^upstream: http://$HOST:$APP_PORT\$" "$tmp_config" \
      || ! grep -q "^  listen: $HOST:$ADMIN_PORT\$" "$tmp_config"; then
    die "could not set the ports in a copy of $CONFIG (its listen/upstream/admin lines changed?)"
  fi
  if [ "$SCHEME" = https ]; then
    # The browser gets the cookie back over https: Secure, as in production.
    sed -i -e "s#^  session_cookie_secure: false\$#  session_cookie_secure: true#" "$tmp_config"
    grep -q "^  session_cookie_secure: true\$" "$tmp_config" \
      || die "could not set session_cookie_secure in a copy of $CONFIG"
    printf '\ntls:\n  certificate: "%s"\n  private_key: "%s"\n' "$TLS_CERT" "$TLS_KEY" >>"$tmp_config"
  fi
  CONFIG=$tmp_config
fi
"$BIN" --check-config -c "$CONFIG" >/dev/null || die "$CONFIG is not valid (see above)"

# Waits until process $1 accepts on port $2; false if it exits or 10s pass.
wait_listening() {
  local _
  for _ in $(seq 100); do
    kill -0 "$1" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/$HOST/$2") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

"${app_cmd[@]}" --host "$HOST" --port "$APP_PORT" --quiet --admin-url "http://$HOST:$ADMIN_PORT" \
  --cookie-name session_id &
pids+=("$!")
wait_listening "${pids[0]}" "$APP_PORT" || die "the $APP example app did not start on $HOST:$APP_PORT"

"$BIN" -c "$CONFIG" &
pids+=("$!")
wait_listening "${pids[1]}" "$PORT" || die "sessiond did not start on $HOST:$PORT"

cat <<EOF

  sessiond demo: open $SCHEME://$HOST:$PORT/ in a browser
  ($APP app on http://$HOST:$APP_PORT/ behind sessiond, config $CONFIG;
   sessiond's metrics on http://$HOST:$ADMIN_PORT/metrics;
   the access log follows. Ctrl-C stops both.)

EOF
echo "demo: ready at $SCHEME://$HOST:$PORT/"

status=0
wait -n "${pids[@]}" || status=$?
die "a demo process exited on its own (status $status); stopping the other"
