"""Helpers for the upgrade and WebSocket tests (test_upgrade_*.py).

  websockets                 the `websockets` library (Debian's python3-websockets).
                             The python3 that runs the tests may be a pyenv build that
                             does not see Debian's dist-packages: they are appended to
                             sys.path (the same Python minor version reads them).
  WsBackend(t)               ws_backend.py on /usr/bin/python3 (see its docstring);
                             WsBackend(t, tls=(cert, key)) serves TLS (url https://...)
  run(coro)                  asyncio.run with a hard timeout
  ws_url(proxy, path, tls)   ws://127.0.0.1:PORT/path (wss:// with tls)
  upgrade_request(...)       the bytes of a raw upgrade request
  read_head(conn, timeout)   (status, [(name, value)]) of a response head read raw from a
                             RawConnection, leaving what follows in conn.buf
"""

import asyncio
import os
import subprocess
import sys
import time

from harness import SLOW, check

try:
    import websockets  # noqa: F401
except ImportError:
    for extra in ("/usr/lib/python3/dist-packages",):
        if os.path.isdir(extra) and extra not in sys.path:
            sys.path.append(extra)
    import websockets  # noqa: F401

import websockets.exceptions  # noqa: E402,F401

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


class WsBackend:
    """ws_backend.py in a subprocess; stopped by the test's cleanup."""

    def __init__(self, t, port=0, tls=None):
        self.t = t
        self.tls = tls
        self.log_path = os.path.join(t.tmpdir, "ws_backend.log")
        self.log = open(self.log_path, "ab")
        args = [SYSTEM_PYTHON, os.path.join(HERE, "ws_backend.py"), "--port", str(port)]
        if tls:
            args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.proc = subprocess.Popen(args,
                                     stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL)
        t.on_cleanup(self.stop)
        line = self.proc.stdout.readline().decode()
        check(line.startswith("ready "), "ws_backend.py did not start: %r (log %s)" % (line, self.log_path))
        self.port = int(line.split()[1])

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def protocol_errors(self):
        return []


def run(coro, timeout=30.0):
    async def bounded():
        return await asyncio.wait_for(coro, timeout * SLOW)
    return asyncio.run(bounded())


def ws_url(proxy, path, tls=False):
    return "%s://127.0.0.1:%d%s" % ("wss" if tls else "ws", proxy.port, path)


def cookie_header(browser):
    return [("Cookie", "%s=%s" % (browser.name, browser.cookie))] if browser.cookie else []


def connect(proxy, path, browser=None, headers=(), **kw):
    """websockets.connect through sessiond (no compression: bytes on the wire are the messages);
    wss:// when an ssl context is passed (ssl=...)."""
    extra = list(headers) + (cookie_header(browser) if browser else [])
    kw.setdefault("compression", None)
    kw.setdefault("max_size", None)
    kw.setdefault("open_timeout", 10 * SLOW)
    return websockets.connect(ws_url(proxy, path, tls=kw.get("ssl") is not None), extra_headers=extra, **kw)


def upgrade_request(target, host="test.local", protocol="websocket", extra=(), connection="Upgrade"):
    lines = ["GET %s HTTP/1.1" % target, "Host: %s" % host, "Connection: %s" % connection,
             "Upgrade: %s" % protocol]
    if protocol.lower() == "websocket":
        lines += ["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    lines += ["%s: %s" % h for h in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_head(conn, timeout=10.0):
    """Reads one response head from a RawConnection (any status, 101 included)."""
    deadline = time.monotonic() + timeout * SLOW
    while b"\r\n\r\n" not in conn.buf:
        if not conn._recv(deadline):
            raise AssertionError("connection closed before a response head; got %r" % bytes(conn.buf[:300]))
    i = conn.buf.index(b"\r\n\r\n")
    head = bytes(conn.buf[:i]).decode("latin-1")
    del conn.buf[:i + 4]
    lines = head.split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
    return status, headers


def header(headers, name):
    return [v for n, v in headers if n.lower() == name.lower()]


def read_exactly(conn, n, timeout=10.0):
    deadline = time.monotonic() + timeout * SLOW
    while len(conn.buf) < n:
        if not conn._recv(deadline):
            break
    out = bytes(conn.buf[:n])
    del conn.buf[:n]
    return out
