"""Raw HTTP/1.1 client for the integration tests.

The parser is strict on purpose: it is the judge of what sessiond sends, so
anything RFC 9112 does not allow in a response (bare LF, obs-fold, both
Content-Length and Transfer-Encoding, a bad chunk) raises ProtocolError
instead of being tolerated. Every read has a deadline; nothing blocks forever.

  conn = RawConnection(port)
  conn.send(build_request("GET", "/echo"))
  resp = conn.read_response()            # Response: status, headers, body
  conn.wait_closed(2.0)                  # True once the server closed it
"""

import hashlib
import json
import socket
import time


class ProtocolError(Exception):
    """The server sent something that is not valid HTTP/1.1."""


class ConnectionClosed(ProtocolError):
    """The connection ended (EOF or reset) where a response byte was expected."""


class ReadTimeout(ProtocolError):
    """The deadline passed while waiting for response bytes."""


_TOKEN = set(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class Response:
    """One parsed response. body is None when the caller asked not to keep it
    (keep_body=False); body_length and body_sha256 are always set."""

    def __init__(self):
        self.version = ""
        self.status = 0
        self.reason = ""
        self.headers = []        # [(name, value)] in order, as received
        self.raw_head = b""
        self.body = b""
        self.body_length = 0
        self.body_sha256 = hashlib.sha256(b"").hexdigest()
        self.framing = "none"    # none | length | chunked | close
        self.trailers = []
        self.interim = []        # 1xx responses that preceded this one
        self.elapsed = 0.0       # seconds from the read call to the end of the body

    def header_values(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def header(self, name):
        """The single value of header `name`; None if absent; error if repeated."""
        values = self.header_values(name)
        if len(values) > 1:
            raise AssertionError("response has %d %s headers: %r" % (len(values), name, values))
        return values[0] if values else None

    def has_header(self, name):
        return bool(self.header_values(name))

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %s, %d body bytes (%s)>" % (
            self.status, self.reason, self.body_length, self.framing)


def build_request(method="GET", target="/", headers=None, body=None, version="HTTP/1.1",
                  host="test.local", chunked=False):
    """Serializes a request. A Host header is added unless headers has one or
    host is None; Content-Length is added for a body unless headers has a
    Content-Length or Transfer-Encoding, or chunked=True (then the body is
    sent as one chunk, or as the list of chunks body is)."""
    headers = list(headers or [])
    names = {n.lower() for n, _ in headers}
    if host is not None and "host" not in names:
        headers.insert(0, ("Host", host))
    payload = b""
    if chunked:
        if "transfer-encoding" not in names:
            headers.append(("Transfer-Encoding", "chunked"))
        pieces = body if isinstance(body, list) else ([body] if body else [])
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
    elif body is not None:
        if "content-length" not in names and "transfer-encoding" not in names:
            headers.append(("Content-Length", str(len(body))))
        payload = body
    head = "%s %s %s\r\n" % (method, target, version)
    head += "".join("%s: %s\r\n" % (n, v) for n, v in headers)
    return head.encode("latin-1") + b"\r\n" + payload


class RawConnection:
    """A client socket with a receive buffer and a strict response reader."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def set_recv_buffer(self, nbytes):
        """Shrinks SO_RCVBUF, so a slow reader pushes back on the server sooner."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, nbytes)

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """sendall that reports a broken connection as False instead of raising."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def request(self, method="GET", target="/", headers=None, body=None, **kw):
        """Sends one request and reads its response."""
        read_kw = {k: kw.pop(k) for k in ("timeout", "keep_body", "chunk_size", "reader_delay", "on_progress")
                   if k in kw}
        self.send(build_request(method, target, headers, body, **kw))
        return self.read_response(method, **read_kw)

    # -- low-level reading ---------------------------------------------------
    def _recv(self, deadline, size=65536):
        """Appends what arrives to buf; False on EOF/reset, ReadTimeout at deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise ReadTimeout("timed out waiting for data")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(size)
        except socket.timeout:
            raise ReadTimeout("timed out waiting for data")
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self, deadline, limit=65536):
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                if i == 0 or self.buf[i - 1] != 0x0D:
                    raise ProtocolError("line not terminated by CRLF: %r" % bytes(self.buf[:i + 1][-100:]))
                line = bytes(self.buf[:i - 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("line longer than %d bytes" % limit)
            start = len(self.buf)
            if not self._recv(deadline):
                raise ConnectionClosed("connection closed inside a line (%d bytes pending)" % len(self.buf))

    def read_available(self, timeout=0.2):
        """Whatever arrives within timeout (b"" if nothing); the buffer is emptied."""
        deadline = time.monotonic() + timeout
        try:
            while self._recv(deadline):
                pass
        except ReadTimeout:
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def wait_closed(self, timeout):
        """True when the server closes (FIN or RST) within timeout. Bytes that
        arrive meanwhile stay in buf (see read_available)."""
        deadline = time.monotonic() + timeout
        try:
            while self._recv(deadline):
                pass
            return True
        except ReadTimeout:
            return False

    def wait_data(self, timeout):
        """True once some response bytes are buffered (they stay buffered)."""
        deadline = time.monotonic() + timeout
        try:
            while not self.buf:
                if not self._recv(deadline):
                    return False
            return True
        except ReadTimeout:
            return False

    def is_open(self):
        """True if the server has not closed the connection (checked without waiting)."""
        return not self.wait_closed(0.001)

    # -- responses -------------------------------------------------------------
    def read_response(self, method="GET", timeout=None, keep_body=True, chunk_size=65536,
                      reader_delay=0.0, on_progress=None):
        """Reads one final response (1xx interim responses are collected into
        .interim). method decides whether a body follows (HEAD: never).

        Slow reader: chunk_size caps each recv and reader_delay sleeps after
        each; keep_body=False only hashes the body; on_progress(nbytes) is
        called after each piece of body.
        """
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        t0 = time.monotonic()
        interim = []
        while True:
            resp = self._read_head(deadline)
            if 100 <= resp.status < 200:
                if resp.status == 101:
                    raise ProtocolError("unexpected 101 Switching Protocols")
                interim.append(resp)
                continue
            break
        resp.interim = interim
        self._read_body(resp, method, deadline, keep_body, chunk_size, reader_delay, on_progress)
        resp.elapsed = time.monotonic() - t0
        return resp

    def read_responses(self, methods, **kw):
        """Reads len(methods) pipelined responses, one per request method."""
        return [self.read_response(m, **kw) for m in methods]

    def _read_head(self, deadline):
        resp = Response()
        raw = bytearray()
        if not self.buf and not self._recv(deadline):
            raise ConnectionClosed("connection closed before a response (reset=%s)" % self.reset)
        line = self._line(deadline)
        raw += line + b"\r\n"
        parts = line.split(b" ", 2)
        if (len(parts) < 3 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or len(parts[1]) != 3
                or not parts[1].isdigit()):
            raise ProtocolError("malformed status line %r" % line[:200])
        resp.version = parts[0].decode()
        resp.status = int(parts[1])
        resp.reason = parts[2].decode("latin-1")
        while True:
            line = self._line(deadline)
            raw += line + b"\r\n"
            if not line:
                break
            if line[:1] in (b" ", b"\t"):
                raise ProtocolError("obs-fold in response header: %r" % line[:200])
            name, sep, value = line.partition(b":")
            if not sep or not name or any(c not in _TOKEN for c in name):
                raise ProtocolError("malformed response header line %r" % line[:200])
            if b"\r" in value or b"\0" in value:
                raise ProtocolError("CR or NUL in response header value %r" % line[:200])
            resp.headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        resp.raw_head = bytes(raw)
        return resp

    def _read_body(self, resp, method, deadline, keep_body, chunk_size, reader_delay, on_progress):
        te = resp.header_values("Transfer-Encoding")
        cl = resp.header_values("Content-Length")
        if method == "HEAD" or resp.status in (204, 304):
            if resp.status == 204 and (te or cl):
                raise ProtocolError("204 response with %s" % ("Transfer-Encoding" if te else "Content-Length"))
            resp.framing = "none"
            return
        if te and cl:
            raise ProtocolError("response has both Transfer-Encoding and Content-Length")
        sink = _BodySink(keep_body, on_progress)
        if te:
            codings = [c.strip().lower() for c in ",".join(te).split(",")]
            if codings[-1] != "chunked":
                raise ProtocolError("response Transfer-Encoding %r does not end in chunked" % te)
            if codings != ["chunked"]:
                raise ProtocolError("unexpected response transfer coding %r" % te)
            resp.framing = "chunked"
            self._read_chunked(resp, sink, deadline)
        elif cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                raise ProtocolError("bad response Content-Length %r" % cl)
            resp.framing = "length"
            self._read_counted(int(cl[0]), sink, deadline, chunk_size, reader_delay)
        else:
            resp.framing = "close"
            while True:
                if self.buf:
                    sink.add(self.buf)
                    self.buf.clear()
                if not self._recv(deadline, chunk_size):
                    break
                if reader_delay:
                    time.sleep(reader_delay)
            if self.reset:
                raise ConnectionClosed("connection reset inside a close-delimited body")
        sink.finish(resp)

    def _read_counted(self, n, sink, deadline, chunk_size, reader_delay):
        while n > 0:
            if not self.buf:
                if not self._recv(deadline, min(chunk_size, n)):
                    raise ConnectionClosed("connection closed with %d body bytes missing" % n)
                if reader_delay:
                    time.sleep(reader_delay)
            take = min(n, len(self.buf))
            sink.add(memoryview(self.buf)[:take])
            del self.buf[:take]
            n -= take

    def _read_chunked(self, resp, sink, deadline):
        while True:
            line = self._line(deadline)
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not size_text or len(size_text) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
                raise ProtocolError("bad chunk size line %r" % line[:100])
            size = int(size_text, 16)
            if size == 0:
                break
            while len(self.buf) < size + 2:
                if not self._recv(deadline):
                    raise ConnectionClosed("connection closed inside a chunk")
            sink.add(memoryview(self.buf)[:size])
            if self.buf[size:size + 2] != b"\r\n":
                raise ProtocolError("chunk data not followed by CRLF")
            del self.buf[:size + 2]
        while True:
            line = self._line(deadline)
            if not line:
                break
            name, sep, value = line.partition(b":")
            if not sep:
                raise ProtocolError("malformed trailer line %r" % line[:100])
            resp.trailers.append((name.decode("latin-1"), value.strip().decode("latin-1")))


class _BodySink:
    def __init__(self, keep, on_progress):
        self.keep = keep
        self.on_progress = on_progress
        self.parts = []
        self.sha = hashlib.sha256()
        self.length = 0

    def add(self, data):
        self.sha.update(data)
        self.length += len(data)
        if self.keep:
            self.parts.append(bytes(data))
        if self.on_progress:
            self.on_progress(self.length)

    def finish(self, resp):
        resp.body = b"".join(self.parts) if self.keep else None
        resp.body_length = self.length
        resp.body_sha256 = self.sha.hexdigest()


def request(port, method="GET", target="/", headers=None, body=None, timeout=10.0, **kw):
    """One request on a fresh connection, closed afterwards."""
    with RawConnection(port, timeout=timeout) as conn:
        return conn.request(method, target, headers, body, **kw)
