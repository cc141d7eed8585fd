#!/usr/bin/env bash
# Installs the Debian package on this machine and checks it works, then
# purges it (CI runs it as root on a fresh machine: .ci/run).
#
#   scripts/test-deb.sh [PACKAGE.deb]      default: builds one with `make deb`
#
# Steps: build the package; dpkg -i; the system user, the key and the files
# are there; `sessiond --check-config` of the packaged configuration; start
# the installed binary as the sessiond user with a test configuration in
# front of a tiny backend (python3 -m http.server) and send one request
# through it; dpkg --purge; nothing is left but the user (Debian policy).
# Refuses to run where sessiond is already installed as a package.
# The last line is "deb: N passed, M failed"; the exit status is 1 if any
# check failed.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "  ok    $*"; }
bad() { failed=$((failed + 1)); echo "  FAIL  $*"; }
check() {  # check "what" command...
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}
finish() {
  echo "deb: $passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit
}

if [ "$(id -u)" -ne 0 ]; then
  echo "test-deb: needs root (dpkg -i); CI runs it as root"
  bad "running as root"
  finish
fi
if dpkg-query -W -f='${Status}' sessiond 2>/dev/null | grep -q "install ok installed"; then
  echo "test-deb: a sessiond package is installed already; not touching it"
  bad "no sessiond package installed before the test"
  finish
fi
# deb: dpkg-dev; demo: python3 (the tiny backend) and curl.
scripts/install-deps.sh build deb demo || { bad "installing the build, deb and demo sets"; finish; }

deb=${1:-}
if [ -z "$deb" ]; then
  deb=$(make --no-print-directory -s deb | tail -n 1)
fi
if [ -f "$deb" ]; then ok "package built: $deb"; else bad "package built (got '$deb')"; finish; fi

work=$(mktemp -d)
backend_pid=""
proxy_pid=""
cleanup() {
  [ -z "$proxy_pid" ] || kill "$proxy_pid" 2>/dev/null
  [ -z "$backend_pid" ] || kill "$backend_pid" 2>/dev/null
  wait 2>/dev/null
  if dpkg-query -W -f='${Status}' sessiond 2>/dev/null | grep -q installed; then
    dpkg --purge sessiond >/dev/null 2>&1
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- install ---------------------------------------------------------------------
if dpkg -i "$deb" >"$work/dpkg.log" 2>&1; then
  ok "dpkg -i"
else
  # Missing runtime libraries: let apt bring in what Depends names.
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -f >>"$work/dpkg.log" 2>&1 \
      && dpkg -s sessiond >/dev/null 2>&1; then
    ok "dpkg -i (Depends installed by apt-get -f install)"
  else
    bad "dpkg -i: $(tail -n 5 "$work/dpkg.log")"
    finish
  fi
fi
check "/usr/bin/sessiond runs (--version)" /usr/bin/sessiond --version
check "the sessiond system user exists" getent passwd sessiond
check "the key is root:sessiond 0640" test "$(stat -c '%U:%G %a' /etc/sessiond/secret)" = "root:sessiond 640"
check "the packaged configuration is a conffile" grep -qx /etc/sessiond/sessiond.yaml /var/lib/dpkg/info/sessiond.conffiles
check "the unit runs as User=sessiond" grep -qx User=sessiond /lib/systemd/system/sessiond.service
check "man sessiond finds the page" test -f /usr/share/man/man8/sessiond.8.gz
check "bash completion installed" test -f /usr/share/bash-completion/completions/sessiond
if /usr/bin/sessiond --check-config -c /etc/sessiond/sessiond.yaml >"$work/check.log" 2>&1; then
  ok "sessiond --check-config -c /etc/sessiond/sessiond.yaml"
else
  bad "sessiond --check-config: $(cat "$work/check.log")"
fi

# --- one request through the installed binary ------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
backend_port=$(free_port)
port=$(free_port)
mkdir "$work/site"
echo "hello from the test backend" >"$work/site/index.html"
python3 -m http.server "$backend_port" --bind 127.0.0.1 --directory "$work/site" >"$work/backend.log" 2>&1 &
backend_pid=$!
cat >"$work/test.yaml" <<YAML
listen: 127.0.0.1:$port
upstream: http://127.0.0.1:$backend_port
secret_key_file: /etc/sessiond/secret
session:
  session_cookie_secure: false
YAML
chmod 0644 "$work/test.yaml"
chmod 0755 "$work"
# As the system user: it must be able to read the key postinst made.
# setpriv execs sessiond itself, so $! is sessiond and gets the SIGTERM.
setpriv --reuid=sessiond --regid=sessiond --init-groups /usr/bin/sessiond -c "$work/test.yaml" \
  >"$work/sessiond.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$backend_port") 2>/dev/null && break
  kill -0 "$proxy_pid" 2>/dev/null || break
  sleep 0.1
done
body=$(curl -sS --max-time 5 "http://127.0.0.1:$port/" 2>&1)
if [ "$body" = "hello from the test backend" ]; then
  ok "a request through the installed sessiond (as user sessiond) reaches the backend"
else
  bad "request through sessiond: got '$body'; sessiond log: $(tail -n 5 "$work/sessiond.log")"
fi
kill -TERM "$proxy_pid" 2>/dev/null
status=0
wait "$proxy_pid" || status=$?
proxy_pid=""
if [ "$status" -eq 0 ]; then ok "sessiond exits 0 on SIGTERM"; else bad "sessiond exit status $status on SIGTERM"; fi

# --- purge -----------------------------------------------------------------------
if dpkg --purge sessiond >"$work/purge.log" 2>&1; then ok "dpkg --purge"; else bad "dpkg --purge: $(tail -n 3 "$work/purge.log")"; fi
check "the binary is gone" test ! -e /usr/bin/sessiond
check "/etc/sessiond is gone (configuration and key)" test ! -e /etc/sessiond
check "the unit is gone" test ! -e /lib/systemd/system/sessiond.service
finish
