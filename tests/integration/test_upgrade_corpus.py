"""The upgrade path over real sockets, with the backend's answer varied
(docs/HTTP.md, "Upgrades and WebSockets"): the socket-level companion of the
upgrade_path fuzz target.

Each case: a client sends an upgrade request with bytes pipelined behind it
(a second HTTP request, or protocol bytes); a scripted backend answers with
one of many heads (a matching 101, a bare 101, a 101 for another protocol, a
101 with a body length, interim responses, 200s of every framing, garbage)
and then sends bytes of its own. The invariants:

- a tunnel opens exactly for a 101 whose Upgrade names the requested
  protocol: the client then gets the 101 and the backend's bytes, and the
  backend gets the pipelined bytes on the same connection, untouched;
- otherwise the backend never receives the pipelined bytes on that
  connection; a pipelined HTTP request is answered as one (it reaches the
  backend as a request of its own), and the client sees the backend's status,
  or 502 for a 101 it must not relay;
- sessiond stays up and answers a plain request after every case.
"""

import random
import socket
import threading
import time

from harness import SLOW, check, check_eq
from ws_util import read_head, upgrade_request

SECOND = b"GET /second HTTP/1.1\r\nHost: test.local\r\n\r\n"
PROTOCOL_BYTES = b"\x82\x85\x01\x02\x03\x04iiiii"  # a masked WebSocket frame

# (name, head the backend answers with, whether it opens a tunnel, the status the client sees)
ANSWERS = [
    ("match", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", True, 101),
    ("match_case", b"HTTP/1.1 101 Go\r\nUpgrade: WebSocket\r\n\r\n", True, 101),
    ("match_after_100", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
     True, 101),
    ("match_with_length", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\n",
     True, 101),
    ("bare", b"HTTP/1.1 101 Switching Protocols\r\n\r\n", False, 502),
    ("bare_connection", b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", False, 502),
    ("other", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", False, 502),
    ("list", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket, h2c\r\n\r\n", False, 502),
    ("two_upgrades", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nUpgrade: websocket\r\n\r\n",
     False, 502),
    ("ok_length", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", False, 200),
    ("ok_chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", False, 200),
    ("ok_upgrade_header", b"HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n",
     False, 200),
    ("no_content", b"HTTP/1.1 204 No Content\r\n\r\n", False, 204),
    ("forbidden", b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope", False, 403),
    ("garbage", b"SSH-2.0-OpenSSH\r\n\r\n", False, 502),
    ("http10_101", b"HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", True, 101),
]


class ScriptedBackend:
    """Answers the first request on each connection with `answer` then `after`,
    and records every byte received afterwards on that connection. A request
    on a new connection (a pipelined request sessiond forwards on its own) gets
    a 200 "second"."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.answer = b""
        self.after = b""
        self.lock = threading.Lock()
        self.first_extra = bytearray()  # bytes after the first head, first connection of a case
        self.seconds = 0                # /second requests seen
        self.conns = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self, answer, after):
        with self.lock:
            self.answer, self.after = answer, after
            self.first_extra = bytearray()
            self.seconds = 0
            self.conns = 0

    def _accept(self):
        while True:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(5)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                data = c.recv(65536)
                if not data:
                    return
                buf += data
            head, _, rest = buf.partition(b"\r\n\r\n")
            if head.startswith(b"GET /second") or head.startswith(b"GET /plain"):
                with self.lock:
                    self.seconds += head.startswith(b"GET /second")
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecond")
                return
            with self.lock:
                self.conns += 1
                first = self.conns == 1
                answer, after = self.answer, self.after
            c.sendall(answer + after)
            extra = bytearray(rest)
            deadline = time.monotonic() + 0.5 * SLOW
            while time.monotonic() < deadline:
                try:
                    c.settimeout(max(0.01, deadline - time.monotonic()))
                    data = c.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not data:
                    break
                extra += data
            if first:
                with self.lock:
                    self.first_extra += extra
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.listener.close()


def _read_all(conn, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not conn._recv(deadline):
                break
        except Exception:  # ReadTimeout
            break
    out = bytes(conn.buf)
    conn.buf.clear()
    return out


def test_upgrade_corpus(t):
    backend = ScriptedBackend()
    t.on_cleanup(backend.close)
    proxy = t.sessiond(upstream="http://127.0.0.1:%d" % backend.port)
    rng = random.Random(20261204)
    cases = []
    for name, answer, tunnels, status in ANSWERS:
        for pipelined in (SECOND, PROTOCOL_BYTES):
            cases.append((name, answer, tunnels, status, pipelined))
    for _ in range(12):  # random protocol bytes behind the request, random bytes after the answer
        name, answer, tunnels, status = rng.choice(ANSWERS)
        cases.append((name + "_random", answer, tunnels, status, bytes(rng.randrange(256) for _ in range(40))))
    for name, answer, tunnels, status, pipelined in cases:
        what = "%s, pipelined %r" % (name, pipelined[:20])
        # Bytes behind every 101 (the new protocol's, or a smuggler's); none behind a final response.
        after = b"BACKEND-BYTES" if b" 101 " in answer else b""
        backend.reset(answer, after)
        conn = t.connect(proxy.port)
        conn.send(upgrade_request("/up") + pipelined)
        got_status, _ = read_head(conn, timeout=5)
        check_eq(got_status, status, "%s: the status the client sees" % what)
        rest = _read_all(conn, 1.0 * SLOW)
        time.sleep(0.1)
        with backend.lock:
            extra = bytes(backend.first_extra)
            seconds = backend.seconds
        if tunnels:
            check(rest.startswith(b"BACKEND-BYTES"),
                  "%s: the backend's bytes after the 101 did not reach the client: %r" % (what, rest[:80]))
            check_eq(extra, pipelined, "%s: the pipelined bytes at the backend, through the tunnel" % what)
        else:
            check(pipelined not in extra, "%s: pipelined bytes reached the backend on the upgrade connection: %r"
                  % (what, extra[:80]))
            if pipelined == SECOND:
                check(b"second" in rest, "%s: the pipelined request was not answered as HTTP: %r" % (what, rest[:200]))
                check_eq(seconds, 1, "%s: the pipelined request reached the backend as a request" % what)
        conn.close()
        check_eq(proxy.request("GET", "/plain").status, 200, "%s: sessiond answers afterwards" % what)
    check(proxy.returncode is None, "sessiond exited during the corpus")


test_upgrade_corpus.exclusive = True
test_upgrade_corpus.timeout = 300
