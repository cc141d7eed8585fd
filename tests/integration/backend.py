"""The test upstream: a real HTTP/1.1 server with hand-written framing.

It records exactly what reached it (every request with its headers in order
and original case, the body, and the raw bytes of each connection) so tests
can assert on what sessiond forwarded, and its behaviour is chosen by the
request path (see ROUTES below). http.server is not used: its framing is too
forgiving to notice a proxy sending something malformed.

Two ways to run it:
  Backend()                      in-process, threads; the recorder is read directly
  Backend(tls=ssl_context)       the same over TLS (Python's ssl, server side): url is
                                 https://..., tls_peers/tls_errors record each handshake
  BackendProcess(workdir)        `python3 backend.py --port P` as a subprocess, for
                                 "upstream killed and restarted" tests; the recorder
                                 is read over the control paths /__requests, /__stats

Routes (the path selects the behaviour; control paths start with /__ and are not recorded):
  /echo                     200, JSON of the request (method, target, headers, body length/sha256)
                            ?close=1 answers with Connection: close and closes
  /status/NNN               status NNN; no body for 1xx/204/304 (and HEAD)
  /bytes/N                  Content-Length body of N pattern bytes (see pattern_sha256)
  /chunked/N/K              chunked body: N chunks of K pattern bytes; ?trailer=1 adds a trailer
  /close-delimited/N        N pattern bytes, no length, then close (?bare=1: no Connection header)
  /slow-headers/MS          wait MS milliseconds, then answer like /echo
  /slow-body/N/K/MS         Content-Length N*K, sent as N pieces of K bytes, MS ms apart
  /set-headers?Name=Value&  200 "ok\\n" with those response headers, in order; a
                            Transfer-Encoding: chunked one makes the body chunked and a
                            Connection: close one closes after the response
  /raw/<name>               send RAW_RESPONSES[name] verbatim, then close
  /reset                    read the request, then RST the connection (SO_LINGER 0)
  /hang                     read the request and never answer (until the client or stop())
  /upgrade/MODE             an answer to an upgrade request, then (for a 101) raw bytes echoed
                            back until the client's FIN, then "bye\n" and a FIN of its own
                            (over TLS: close_notify, then FIN):
                              accept   101 with Upgrade: <the request's Upgrade> (or ?proto=P)
                              bare     101 without an Upgrade header
                              ok       200 "not upgraded\n" (keep-alive, no tunnel)
                            other query items become response headers (as /set-headers)
  anything else             404

A request carrying Expect: 100-continue gets "100 Continue" before its body is read.
"""

import argparse
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

from recording import Recorder, RecordedRequest, pattern, pattern_pieces, pattern_sha256  # noqa: F401

# ---------------------------------------------------------------------------
# Canned upstream misbehaviour for /raw/<name>.

RAW_RESPONSES = {
    "garbage-status": b"HTTP/1.1 abc Garbage\r\nContent-Length: 2\r\n\r\nok",
    "not-http": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    "http09": b"hello from the nineties\n",
    "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "double-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
    "bad-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nab",
    "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "truncated-body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
    "truncated-head": b"HTTP/1.1 200 OK\r\nContent-Le",
    "empty": b"",
}


# ---------------------------------------------------------------------------
# One connection: strict request parsing, routing, responding.

class _Closed(Exception):
    """The peer closed (or reset) the connection."""


class _Violation(Exception):
    """The request broke HTTP/1.1 framing rules."""


_TOKEN = set(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class _Connection:
    def __init__(self, server, sock, conn_id):
        self.server = server
        self.sock = sock
        self.conn_id = conn_id
        self.rec = server.recorder
        self.buf = bytearray()

    # -- input --------------------------------------------------------------
    def _fill(self):
        try:
            data = self.sock.recv(262144)
        except OSError:
            data = b""
        if not data:
            raise _Closed()
        self.rec.received(self.conn_id, data)
        self.buf += data

    def _read_until(self, delim, limit):
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise _Violation("line or head longer than %d bytes" % limit)
            start = max(0, len(self.buf) - len(delim) + 1)
            self._fill()

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _read_head(self, req):
        head = self._read_until(b"\r\n\r\n", 1 << 20)
        if b"\n" in head.replace(b"\r\n", b"") or b"\r" in head.replace(b"\r\n", b""):
            raise _Violation("bare CR or LF in the request head")
        if b"\0" in head:
            raise _Violation("NUL in the request head")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise _Violation("malformed request line %r" % lines[0][:200])
        if parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
            raise _Violation("bad version in %r" % lines[0][:200])
        req.method, req.target, req.version = (p.decode("latin-1") for p in parts)
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):
                raise _Violation("obs-fold line %r" % line[:200])
            name, sep, value = line.partition(b":")
            if not sep or not name or any(c not in _TOKEN for c in name):
                raise _Violation("malformed header line %r" % line[:200])
            req.headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))

    def _read_chunked(self, req):
        body = bytearray()
        while True:
            line = self._read_until(b"\r\n", 4096)
            size_text = line.split(b";", 1)[0]
            if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
                raise _Violation("bad chunk size line %r" % line[:100])
            size = int(size_text, 16)
            if size == 0:
                break
            body += self._read_exact(size)
            if self._read_exact(2) != b"\r\n":
                raise _Violation("chunk data not followed by CRLF")
        while True:
            line = self._read_until(b"\r\n", 8192)
            if not line:
                break
            name, _, value = line.partition(b":")
            req.trailers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        return bytes(body)

    def _read_body(self, req):
        te = req.header_values("Transfer-Encoding")
        cl = req.header_values("Content-Length")
        if te and cl:
            raise _Violation("both Transfer-Encoding and Content-Length")
        if len(cl) > 1:
            raise _Violation("%d Content-Length headers" % len(cl))
        if te:
            if len(te) != 1 or te[0].lower() != "chunked":
                raise _Violation("unexpected Transfer-Encoding %r" % te)
            req.framing = "chunked"
            self._continue_if_expected(req)
            return self._read_chunked(req)
        if cl:
            if not cl[0].isdigit():
                raise _Violation("bad Content-Length %r" % cl[0])
            req.framing = "length"
            n = int(cl[0])
            if n:
                self._continue_if_expected(req)
            return self._read_exact(n)
        return b""

    def _continue_if_expected(self, req):
        expect = req.header_values("Expect")
        if expect and expect[0].lower() == "100-continue" and not self.buf:
            self._send(b"HTTP/1.1 100 Continue\r\n\r\n")

    # -- output -------------------------------------------------------------
    def _send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            raise _Closed()

    def _respond(self, req, status, headers, body=b"", reason=None):
        """Sends a Content-Length response (no length for 1xx/204/304)."""
        reason = reason or _REASONS.get(status, "Status")
        out = ["HTTP/1.1 %d %s\r\n" % (status, reason)]
        for n, v in headers:
            out.append("%s: %s\r\n" % (n, v))
        bodyless = status < 200 or status in (204, 304)
        if not bodyless and not any(n.lower() == "content-length" for n, _ in headers):
            out.append("Content-Length: %d\r\n" % len(body))
        out.append("\r\n")
        data = "".join(out).encode("latin-1")
        if not bodyless and req.method != "HEAD":
            data += body
        self._send(data)

    # -- main loop ------------------------------------------------------------
    def serve(self):
        try:
            while not self.server.stopping.is_set():
                req = RecordedRequest(self.conn_id, 0)
                try:
                    if not self.buf:
                        self._fill()
                    self._read_head(req)
                    req.body = self._read_body(req)
                    req.complete = True
                except _Closed:
                    if req.method:
                        req.error = "connection closed before the end of the body"
                        self.rec.add(req)
                    return
                except _Violation as e:
                    self.rec.protocol_error(self.conn_id, str(e))
                    if req.method:
                        req.error = str(e)
                        self.rec.add(req)
                    self._send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                if req.target.startswith("/__"):
                    self.rec.forget_connection(self.conn_id)
                    keep = self.server.control(self, req)
                else:
                    with self.rec.lock:
                        req.index = len(self.rec.requests)
                    self.rec.add(req)
                    keep = self.route(req)
                if not keep or not _wants_keepalive(req):
                    return
        except _Closed:
            return
        finally:
            try:
                self.sock.close()
            except OSError:
                pass

    def route(self, req):
        """Answers req; returns False when the connection must close afterwards."""
        url = urllib.parse.urlsplit(req.target)
        query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        q = dict(query)
        parts = [p for p in url.path.split("/") if p]
        head = parts[0] if parts else ""
        nums = []
        for p in parts[1:]:
            try:
                nums.append(int(p))
            except ValueError:
                pass

        if head == "echo":
            return self._echo(req, close=q.get("close") == "1")
        if head == "status" and nums:
            status = nums[0]
            body = b"" if status < 200 or status in (204, 304) else b"status %d\n" % status
            self._respond(req, status, [("Content-Type", "text/plain")], body)
            return True
        if head == "bytes" and nums:
            n = nums[0]
            self._send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                       b"Content-Length: %d\r\n\r\n" % n)
            if req.method != "HEAD":
                for piece in pattern_pieces(n, piece=1 << 20):
                    self._send(piece)
            return True
        if head == "chunked" and len(nums) >= 2:
            n, k = nums[0], nums[1]
            trailer = q.get("trailer") == "1"
            self._send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                       b"Transfer-Encoding: chunked\r\n" +
                       (b"Trailer: X-Checksum\r\n" if trailer else b"") + b"\r\n")
            if req.method != "HEAD":
                for i in range(n):
                    if k:
                        self._send(b"%x\r\n" % k + pattern(k, offset=i * k) + b"\r\n")
                self._send(b"0\r\n" + (b"X-Checksum: %s\r\n" % pattern_sha256(n * k).encode()
                                       if trailer else b"") + b"\r\n")
            return True
        if head == "close-delimited" and nums:
            n = nums[0]
            self._send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" +
                       (b"" if q.get("bare") == "1" else b"Connection: close\r\n") + b"\r\n")
            if req.method != "HEAD":
                for piece in pattern_pieces(n, piece=1 << 20):
                    self._send(piece)
            return False
        if head == "slow-headers" and nums:
            if self.server.stopping.wait(nums[0] / 1000.0):
                return False
            return self._echo(req, close=False)
        if head == "slow-body" and len(nums) >= 3:
            n, k, ms = nums[:3]
            self._send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                       b"Content-Length: %d\r\n\r\n" % (n * k))
            for i in range(n):
                if i and self.server.stopping.wait(ms / 1000.0):
                    return False
                self._send(pattern(k, offset=i * k))
            return True
        if head == "set-headers":
            return self._set_headers(req, query)
        if head == "raw" and len(parts) >= 2 and parts[1] in RAW_RESPONSES:
            self._send(RAW_RESPONSES[parts[1]])
            return False
        if head == "reset":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if head == "hang":
            self._hang()
            return False
        if head == "upgrade" and len(parts) >= 2:
            return self._upgrade(req, parts[1], query)
        self._respond(req, 404, [("Content-Type", "text/plain")], b"no such test route\n")
        return True

    def _echo(self, req, close):
        doc = {
            "method": req.method,
            "target": req.target,
            "version": req.version,
            "headers": [[n, v] for n, v in req.headers],
            "body_length": len(req.body),
            "body_sha256": hashlib.sha256(req.body).hexdigest(),
            "framing": req.framing,
            "conn_id": req.conn_id,
            "index": req.index,
        }
        headers = [("Content-Type", "application/json")]
        if close:
            headers.append(("Connection", "close"))
        self._respond(req, 200, headers, json.dumps(doc).encode())
        return not close

    def _set_headers(self, req, query):
        chunked = any(n.lower() == "transfer-encoding" and "chunked" in v.lower() for n, v in query)
        close = any(n.lower() == "connection" and "close" in v.lower() for n, v in query)
        out = ["HTTP/1.1 200 OK\r\n"]
        for n, v in query:
            out.append("%s: %s\r\n" % (n, v))
        body = b"ok\n"
        if not chunked:
            out.append("Content-Length: %d\r\n" % len(body))
        out.append("\r\n")
        data = "".join(out).encode("latin-1")
        if req.method != "HEAD":
            data += (b"3\r\nok\n\r\n0\r\n\r\n" if chunked else body)
        self._send(data)
        return not close

    def _upgrade(self, req, mode, query):
        extra = [(n, v) for n, v in query if n != "proto"]
        if mode == "ok":
            self._respond(req, 200, [("Content-Type", "text/plain")] + extra, b"not upgraded\n")
            return True
        headers = list(extra)
        if mode == "accept":
            proto = dict(query).get("proto") or (req.header_values("Upgrade") or ["none"])[0]
            headers = [("Upgrade", proto), ("Connection", "Upgrade")] + headers
        self._respond(req, 101, headers, reason="Switching Protocols")
        # The other protocol: echo raw bytes, half-close after the client's FIN.
        while True:
            if self.buf:
                data = bytes(self.buf)
                self.buf.clear()
                self._send(data)
            try:
                self._fill()
            except _Closed:
                break
        self._send(b"bye\n")
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                # Over TLS the end is close_notify, then FIN (the client's
                # close_notify came already, so unwrap does not wait).
                self.sock = self.sock.unwrap()
            self.sock.shutdown(socket.SHUT_WR)
        except (OSError, ValueError):
            pass
        return False

    def _hang(self):
        self.sock.settimeout(0.1)
        while not self.server.stopping.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            self.rec.received(self.conn_id, data)


def _wants_keepalive(req):
    conn = ",".join(req.header_values("Connection")).lower()
    tokens = [t.strip() for t in conn.split(",")]
    if req.version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


_REASONS = {100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently",
            302: "Found", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable"}


# ---------------------------------------------------------------------------
# The server.

class Backend:
    """The in-process backend. Listens on 127.0.0.1:port (0 = any free port)."""

    def __init__(self, port=0, host="127.0.0.1", tls=None):
        self.tls = tls
        self.tls_peers = []   # per TLS connection: the client's certificate (a dict, {} if none)
        self.tls_errors = []  # per failed TLS handshake: the reason
        self.recorder = Recorder()
        self.stopping = threading.Event()
        self._conns = set()
        self._conns_lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(256)
        self.host = host
        self.port = self.listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="backend-accept", daemon=True)
        self._thread.start()

    @property
    def url(self):
        return "%s://%s:%d" % ("https" if self.tls else "http", self.host, self.port)

    # Recorder views (the same names exist on BackendProcess).
    def requests(self, path=None):
        """Requests recorded so far (complete or not); path filters by exact path."""
        with self.recorder.lock:
            reqs = list(self.recorder.requests)
        return [r for r in reqs if path is None or r.path == path]

    def connections_accepted(self):
        with self.recorder.lock:
            return self.recorder.connections_accepted

    def raw_received(self):
        """All bytes received, per connection, in accept order."""
        with self.recorder.lock:
            return [bytes(self.recorder.raw[k]) for k in sorted(self.recorder.raw)]

    def protocol_errors(self):
        with self.recorder.lock:
            return list(self.recorder.protocol_errors)

    def clear(self):
        self.recorder.clear()

    def wait_requests(self, n, timeout=5.0, path=None):
        """Waits until at least n requests (matching path) were recorded; returns them."""
        deadline = time.monotonic() + timeout
        with self.recorder.lock:
            while True:
                reqs = [r for r in self.recorder.requests if path is None or r.path == path]
                left = deadline - time.monotonic()
                if len(reqs) >= n or left <= 0:
                    return reqs
                self.recorder.changed.wait(left)

    def _accept_loop(self):
        self.listener.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, sock, self.recorder.new_connection())
            with self._conns_lock:
                self._conns.add(sock)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            if self.tls is not None:
                # The handshake runs on the connection's own thread, so a slow
                # or failing one never holds up the accept loop.
                try:
                    conn.sock = self.tls.wrap_socket(conn.sock, server_side=True)
                    peer = conn.sock.getpeercert() or {}
                    with self._conns_lock:
                        self.tls_peers.append(peer)
                except (ssl.SSLError, OSError) as e:
                    with self._conns_lock:
                        self.tls_errors.append(str(e))
                    conn.sock.close()
                    return
            conn.serve()
        finally:
            with self._conns_lock:
                self._conns.discard(conn.sock)

    def control(self, conn, req):
        """The /__ paths: a view of the recorder for BackendProcess clients."""
        if req.path == "/__requests":
            body = json.dumps(self.recorder.snapshot()).encode()
        elif req.path == "/__clear":
            self.recorder.clear()
            body = b"{}"
        else:
            body = b"{}"
        conn._respond(req, 200, [("Content-Type", "application/json")], body)
        return True

    def stop(self):
        """Stops accepting and drops every open connection."""
        self.stopping.set()
        try:
            self.listener.close()
        except OSError:
            pass
        with self._conns_lock:
            socks = list(self._conns)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(2)


class BackendProcess:
    """The backend as a subprocess, so a test can kill and restart its upstream.

    Same recorder view as Backend (requests, connections_accepted, ...), read
    through the control paths; counts restart from zero with every start().
    """

    def __init__(self, workdir, port=0):
        self.workdir = workdir
        self.port = port
        self.proc = None
        self.host = "127.0.0.1"
        self._log = None

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def start(self, timeout=10.0):
        import subprocess
        self._log = open(os.path.join(self.workdir, "backend-%d.log" % time.time_ns()), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-u", __file__, "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=self._log)
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening ") or time.monotonic() > deadline:
            self.kill()
            raise RuntimeError("backend subprocess did not start: %r" % line)
        self.port = int(line.split()[1])
        return self

    def kill(self):
        """SIGKILL: the upstream vanishes without closing anything politely."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self._log:
            self._log.close()
            self._log = None

    stop = kill

    def _snapshot(self):
        import http.client
        c = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            c.request("GET", "/__requests")
            return json.loads(c.getresponse().read())
        finally:
            c.close()

    def requests(self, path=None):
        reqs = [RecordedRequest.from_json(d) for d in self._snapshot()["requests"]]
        return [r for r in reqs if path is None or r.path == path]

    def connections_accepted(self):
        return self._snapshot()["connections_accepted"]

    def raw_received(self):
        raw = self._snapshot()["raw"]
        return [base64.b64decode(raw[k]) for k in sorted(raw, key=int)]

    def protocol_errors(self):
        return self._snapshot()["protocol_errors"]

    def wait_requests(self, n, timeout=5.0, path=None):
        deadline = time.monotonic() + timeout
        while True:
            reqs = self.requests(path)
            if len(reqs) >= n or time.monotonic() >= deadline:
                return reqs
            time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser(description="sessiond integration-test backend")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    backend = Backend(args.port, args.host)
    print("listening %d" % backend.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        backend.stop()


if __name__ == "__main__":
    main()
