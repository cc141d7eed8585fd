"""Helpers for the session integration tests (test_sessions_*.py).

  RedisServer(t)            a real redis-server on a free port in the test's temp dir;
                            stop() / start() on the same port, keys(), flush()
  start_proxy(t, manager)   sessiond with that session manager (a RedisServer is started
                            for "redis" unless one is passed) -> Sessiond, .redis set
  GateBackend(t)            an upstream that holds a response until the test releases it
  Browser(proxy)            a client that keeps the session cookie like a browser does:
                            echo() -> SessionView, write(instructions) -> Response
  parse_set_cookie(value)   Set-Cookie header -> SetCookie(name, value, attrs)
  log_mark(proxy), check_rejected(...)
                            a 502 "Bad Gateway" for instructions sessiond refused, and
                            the error log line saying why

Every process a helper starts is registered with the TestContext, so the
runner stops it (and checks its exit) after the test.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

from client import ConnectionClosed
from harness import SLOW, check, check_eq, check_error_response, free_port, wait_until

MANAGERS = ("cookie", "memory", "file", "redis")
STORE_MANAGERS = ("memory", "file", "redis")
COOKIE_NAME = "session_id"
# The characters a URL-safe cookie value is made of (base64url plus '.').
URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# ---------------------------------------------------------------------------
# redis-server

class RedisServer:
    """redis-server --port P --save "" --appendonly no, in t.tmpdir. Nothing is
    persisted: stop() loses every key, like a crash of a cache-only Redis."""

    def __init__(self, t, port=None):
        self.t = t
        self.port = port or free_port()
        self.proc = None
        self.log_path = os.path.join(t.tmpdir, "redis-%d.log" % self.port)
        t.on_cleanup(self.stop)

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self, timeout=5.0):
        check(self.proc is None or self.proc.poll() is not None, "redis-server already running")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.t.tmpdir, "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(lambda: self._pong() or self._check_alive(), timeout * SLOW,
                   "redis-server to answer PING on port %d" % self.port, interval=0.02)
        return self

    def _check_alive(self):
        if self.proc.poll() is not None:
            with open(self.log_path, "rb") as f:
                tail = f.read()[-2000:].decode("utf-8", "replace")
            raise AssertionError("redis-server exited with status %s:\n%s" % (self.proc.returncode, tail))
        return False

    def _pong(self):
        try:
            return self.command("PING") == "PONG"
        except OSError:
            return False

    def stop(self):
        """SIGKILL (no shutdown courtesy): clients see the connection drop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def restart(self, timeout=5.0):
        self.stop()
        return self.start(timeout)

    # -- a minimal RESP client, enough for inspecting the store -------------
    def command(self, *args):
        """Runs one command; returns str, int, list or None (errors raise AssertionError)."""
        payload = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (x if isinstance(x, bytes) else str(x).encode() for x in args))
        with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as s:
            s.sendall(payload)
            reader = s.makefile("rb")
            return _read_resp(reader)

    def keys(self):
        return sorted(self.command("KEYS", "*"))


def _read_resp(reader):
    line = reader.readline()
    if not line:
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise AssertionError("redis error: %s" % rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = reader.read(n + 2)[:-2]
        return data.decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_resp(reader) for _ in range(n)]
    raise OSError("unexpected RESP reply %r" % line[:50])


# ---------------------------------------------------------------------------
# A backend whose answer the test can hold back

class GateBackend:
    """A minimal upstream for race tests (GET only, keep-alive).

      /echo           200, JSON {"headers": [[name, value], ...]} of the request
      /gated?N=V&...  sets `arrived`, waits for `release`, then answers like /set
      anything else   200 with the query's (name, value) pairs as response headers

    Holding a response at /gated keeps that exchange between its session load
    and its session write for as long as the test wants."""

    def __init__(self, t):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.stopping = threading.Event()
        self.errors = []
        threading.Thread(target=self._accept, daemon=True).start()
        t.on_cleanup(self.stop)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.stopping.set()
        self.release.set()
        self.listener.close()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        buf = b""
        with sock:
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
                if any(n.lower() in ("content-length", "transfer-encoding") for n, _ in headers):
                    self.errors.append("GateBackend got a request body: %r" % lines[0])
                    return
                path, _, query = target.partition("?")
                out, body = [], b""
                if path == "/echo":
                    body = json.dumps({"headers": [list(h) for h in headers]}).encode()
                    out.append(("Content-Type", "application/json"))
                else:
                    if path == "/gated":
                        self.arrived.set()
                        self.release.wait(30)
                    out += urllib.parse.parse_qsl(query, keep_blank_values=True)
                text = "HTTP/1.1 200 OK\r\n" + "".join("%s: %s\r\n" % h for h in out)
                text += "Content-Length: %d\r\n\r\n" % len(body)
                try:
                    sock.sendall(text.encode("latin-1") + body)
                except OSError:
                    return


# ---------------------------------------------------------------------------
# sessiond with a session manager

def manager_overrides(t, manager, redis=None, session=None, extra=None):
    """Config overrides selecting `manager`, its store settings and `session` keys."""
    o = {"session": dict({"manager": manager}, **(session or {}))}
    if manager == "file":
        o["file"] = {"directory": os.path.join(t.tmpdir, "sessions")}
    if manager == "redis":
        o["redis"] = {"url": redis.url, "timeout": "1s"}
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(o.get(k), dict):
            o[k] = dict(o[k], **v)
        else:
            o[k] = v
    return o


def start_proxy(t, manager, session=None, extra=None, redis=None, upstream=None, name=None):
    """Starts sessiond with `manager`; for redis starts a RedisServer unless
    one is passed. The proxy's .redis is the RedisServer (or None)."""
    if manager == "redis" and redis is None:
        redis = RedisServer(t).start()
    proxy = t.sessiond(upstream=upstream, overrides=manager_overrides(t, manager, redis, session, extra),
                       name=name)
    proxy.redis = redis
    proxy.manager = manager
    return proxy


def restart_proxy(t, proxy, overrides_update=None):
    """Stops proxy (checking its clean exit) and starts a new sessiond on the
    same port and backend with the same config, updated by overrides_update
    (top-level keys replaced, nested dicts merged one level)."""
    proxy.stop()
    check_eq(proxy.term_status, 0, "exit status of the stopped sessiond")
    config = json.loads(json.dumps(proxy.config))
    for k, v in (overrides_update or {}).items():
        if isinstance(v, dict) and isinstance(config.get(k), dict):
            config[k] = dict(config[k], **v)
        else:
            config[k] = v
    nxt = t.sessiond(upstream=proxy.backend, overrides=config, start=False)
    nxt.redis = getattr(proxy, "redis", None)
    nxt.manager = getattr(proxy, "manager", None)
    _start_on_same_port(nxt)
    return nxt


def _start_on_same_port(proxy, timeout=5.0):
    """The old process just closed the port; a restart may briefly see EADDRINUSE."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        try:
            proxy.start()
            return
        except AssertionError:
            if time.monotonic() > deadline or proxy.returncode != 1:
                raise
            time.sleep(0.1)


def reload_proxy(proxy, config_update):
    """Rewrites proxy's config with config_update merged in and sends SIGHUP.
    The reload is asynchronous: callers poll for its effect."""
    for k, v in config_update.items():
        if isinstance(v, dict) and isinstance(proxy.config.get(k), dict):
            proxy.config[k] = dict(proxy.config[k], **v)
        else:
            proxy.config[k] = v
    proxy.write_config()
    proxy.signal(signal.SIGHUP)


# ---------------------------------------------------------------------------
# Cookies

class SetCookie:
    def __init__(self, name, value, attrs, raw):
        self.name = name
        self.value = value
        self.attrs = attrs  # lower-case attribute name -> value ("" for flags)
        self.raw = raw

    @property
    def clears(self):
        return self.attrs.get("max-age") == "0"

    def __repr__(self):
        return "<Set-Cookie %s>" % self.raw


def parse_set_cookie(raw):
    parts = [p.strip() for p in raw.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip()
    return SetCookie(name.strip(), value.strip(), attrs, raw)


def session_set_cookies(resp, name=COOKIE_NAME):
    return [c for c in (parse_set_cookie(v) for v in resp.header_values("Set-Cookie")) if c.name == name]


def one_session_set_cookie(resp, what, name=COOKIE_NAME):
    """The single Set-Cookie of the session cookie in resp (fails if none or several)."""
    cookies = session_set_cookies(resp, name)
    check(len(cookies) == 1, "%s: want one Set-Cookie for %s, got %r (status %d)"
          % (what, name, [c.raw for c in cookies], resp.status))
    return cookies[0]


def check_cleared(resp, what, name=COOKIE_NAME):
    c = one_session_set_cookie(resp, what, name)
    check(c.clears, "%s: Set-Cookie should clear the cookie with Max-Age=0: %s" % (what, c.raw))
    return c


def check_no_set_cookie(resp, what, name=COOKIE_NAME):
    cookies = session_set_cookies(resp, name)
    check(not cookies, "%s: want no Set-Cookie for the session, got %r" % (what, [c.raw for c in cookies]))


# ---------------------------------------------------------------------------
# A browser-like client

class SessionView:
    """The X-Session-* headers the backend received, from an /echo response."""

    def __init__(self, resp):
        check_eq(resp.status, 200, "status of /echo (body %r)" % (resp.body[:200] if resp.body else b""))
        self.resp = resp
        self.headers = resp.json()["headers"]
        self.status = self._one("X-Session-Status")
        self.id = self._one("X-Session-Id")
        self.data_text = self._one("X-Session-Data")
        self.expires_text = self._one("X-Session-Expires")
        self.data = json.loads(self.data_text) if self.data_text is not None else None
        self.expires = int(self.expires_text) if self.expires_text is not None else None

    def _one(self, name):
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        check(len(values) <= 1, "the backend got %d %s headers: %r" % (len(values), name, values))
        return values[0] if values else None

    def __repr__(self):
        return "<session status=%s id=%s data=%s>" % (self.status, self.id, self.data_text)


def instructions_target(instructions, path="/set-headers"):
    """/set-headers URL making the backend answer with these (name, value)
    headers, in order. A value may hold any Unicode: it is sent as UTF-8."""
    pairs = [(n, v.encode("utf-8").decode("latin-1")) for n, v in instructions]
    return path + "?" + urllib.parse.urlencode(pairs)


def set_header(obj):
    """An X-Session-Set instruction for a dict."""
    return ("X-Session-Set", json.dumps(obj))


# ---------------------------------------------------------------------------
# Refused instructions

def log_mark(proxy):
    """Where sessiond's error log ends now; check_rejected reads what follows."""
    return len(proxy.stderr_text())


def check_rejected(proxy, resp, mark, header, what, reason=None, path="/set-headers"):
    """docs/HEADER-PROTOCOL.md, Malformed instructions: the client got a 502
    whose body is only "Bad Gateway", and the error log (after `mark`) has a
    line naming the header, the reason (when given), the request path and the
    request id the response carries. Returns that line."""
    check_error_response(resp, 502)
    check_eq(resp.body, b"Bad Gateway\n", "%s: the 502 body" % what)
    lines = [line for line in proxy.stderr_text()[mark:].splitlines()
             if "rejected session instructions" in line]
    check(lines, "%s: no error log line for the refused instructions" % what)
    line = lines[-1]
    check(header.lower() + ":" in line.lower(), "%s: the log line does not name %s: %r" % (what, header, line))
    if reason is not None:
        check(reason in line, "%s: the log line does not give the reason %r: %r" % (what, reason, line))
    check("path " + path in line, "%s: the log line does not give the path %s: %r" % (what, path, line))
    rid = resp.header("X-Request-Id")
    check(rid and ("request id %s" % rid) in line,
          "%s: the log line does not give the request id %r: %r" % (what, rid, line))
    return line


class Browser:
    """Keeps the session cookie between requests the way a browser would:
    a Set-Cookie with Max-Age=0 deletes it, any other replaces it. One
    keep-alive connection unless fresh_connections."""

    def __init__(self, proxy, cookie=None, name=COOKIE_NAME, fresh_connections=False):
        self.proxy = proxy
        self.name = name
        self.cookie = cookie
        self.fresh = fresh_connections
        self.conn = None
        self.last_set_cookie = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, target, headers=None, other_cookies=None, method="GET", timeout=10.0):
        headers = list(headers or [])
        pairs = list(other_cookies or [])
        if self.cookie is not None:
            pairs.append((self.name, self.cookie))
        if pairs:
            headers.append(("Cookie", "; ".join("%s=%s" % p for p in pairs)))
        resp = self._send(method, target, headers, timeout)
        cookies = session_set_cookies(resp, self.name)
        check(len(cookies) <= 1, "several Set-Cookie headers for the session: %r" % [c.raw for c in cookies])
        if cookies:
            self.last_set_cookie = cookies[0]
            self.cookie = None if cookies[0].clears else cookies[0].value
        else:
            self.last_set_cookie = None
        return resp

    def _send(self, method, target, headers, timeout):
        if self.fresh:
            return self.proxy.request(method, target, headers, timeout=timeout)
        for attempt in range(2):
            reused = self.conn is not None
            if self.conn is None:
                self.conn = self.proxy.connect(timeout=timeout)
            try:
                resp = self.conn.request(method, target, headers, timeout=timeout)
            except (ConnectionError, ConnectionClosed):
                # A server may close an idle keep-alive connection just as a
                # request is sent (RFC 9112 9.3.1); retry that once, fresh.
                self.close()
                if attempt or not reused:
                    raise
                continue
            if any(v.lower() == "close" for v in resp.header_values("Connection")):
                self.close()
            return resp

    def echo(self, headers=None, other_cookies=None):
        return SessionView(self.request("/echo", headers, other_cookies))

    def write(self, *instructions):
        """One response carrying these instruction headers; returns it."""
        return self.request(instructions_target(instructions))

    def set(self, obj):
        resp = self.write(set_header(obj))
        check_eq(resp.status, 200, "status of a response setting %r (body %r)" % (obj, resp.body[:200]))
        return resp


def check_session(view, status, data=None, what="session"):
    """view has `status`; with a session also an id, an Expires and `data`."""
    check_eq(view.status, status, "%s: X-Session-Status" % what)
    if status in ("new", "active"):
        check(view.id, "%s: X-Session-Id missing with status %s" % (what, status))
        check(view.expires is not None, "%s: X-Session-Expires missing with status %s" % (what, status))
    else:
        check(view.id is None, "%s: X-Session-Id %r present with status %s" % (what, view.id, status))
        check(view.expires is None, "%s: X-Session-Expires present with status %s" % (what, status))
    if data is not None:
        check_eq(view.data, data, "%s: X-Session-Data" % what)


def make_session(browser, data):
    """Creates a session holding `data` (through the backend); returns its view."""
    browser.set(data)
    check(browser.cookie, "no session cookie issued for a first X-Session-Set")
    view = browser.echo()
    check_session(view, "active", data, "the session just created")
    return view


HEX64 = re.compile(r"^[0-9a-f]{64}$")
