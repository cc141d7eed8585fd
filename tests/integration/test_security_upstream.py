"""A hostile upstream: malformed or ambiguous responses never reach the client
as a valid response, and the upstream connection that carried one is closed,
never reused (response-queue poisoning).

The upstream here is a raw socket server (ScriptedUpstream) rather than the
test backend: after its scripted answer it keeps the connection open, so a
proxy that wrongly returned it to its pool would send the next request on it.
Each test asks for /bad/<name>, then for /good on a fresh client connection,
and requires /good to arrive on a different upstream connection than the bad
answer, and the bad connection to be closed by sessiond.
"""

import socket
import threading
import time

from client import ProtocolError
from harness import check, check_eq, check_error_response

GOOD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\ngood"
POISON = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned"
MAX_HEADER_BYTES = 4096

# Answers sessiond must turn into a 502 before any byte reaches the client.
BAD_HEADS = {
    "cl_and_te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_and_cl": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "two_content_lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 8\r\n\r\nokpoisoned",
    "content_length_list": b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
    "content_length_sign": b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
    "te_twice": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_chunked_identity": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "status_two_digits": b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok",
    "status_four_digits": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    "status_letters": b"HTTP/1.1 abc Garbage\r\nContent-Length: 2\r\n\r\nok",
    "status_no_space_before_reason": b"HTTP/1.1 200OK\r\nContent-Length: 2\r\n\r\nok",
    "status_double_space": b"HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok",
    "status_below_100": b"HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok",
    "status_above_599": b"HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok",
    "version_http2": b"HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "version_lowercase": b"http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "not_http": b"ICY 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "nul_in_reason": b"HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok",
    "obs_fold_header": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok",
    "space_before_colon": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
    "nul_in_header": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    "bare_lf_in_one_header_line": b"HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\nok",
    "bare_cr_in_header": b"HTTP/1.1 200 OK\r\nX-A: 1\rSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok",
    "headers_over_max_header_bytes":
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * (MAX_HEADER_BYTES + 100) + b"\r\nContent-Length: 2\r\n\r\nok",
    "head_never_ends_over_limit": b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * (MAX_HEADER_BYTES + 100),
    # No CRLF CRLF ever arrives: a bad answer (502), not a slow one (504).
    "bare_lf_response": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    "switching_protocols_without_upgrade": b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    "switching_protocols_unrequested": b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                       b"Upgrade: websocket\r\n\r\n",
}

# Head fine, body framing broken after the head went out: the client must
# see a cut connection, never a complete response.
BAD_BODIES = {
    "chunk_size_not_hex": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk_longer_than_size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    "chunk_size_bare_lf": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
    "chunk_size_overflow": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"10000000000000005\r\nhello\r\n0\r\n\r\n",
}

# Valid answers followed by bytes that are not part of them: passed through,
# and the connection carrying the extra bytes is never reused.
EXTRA_BYTES = {
    "extra_response_same_write": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + POISON, None, "GET"),
    "extra_response_after_delay": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", POISON, "GET"),
    "head_response_with_body": (b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned", None, "HEAD"),
    "no_content_with_body": (b"HTTP/1.1 204 No Content\r\n\r\n" + POISON, None, "GET"),
    "not_modified_with_body": (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 8\r\n\r\npoisoned", None, "GET"),
    "connection_close_kept_open": (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", POISON,
                                   "GET"),
    "http10_response_kept_open": (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", POISON, "GET"),
}


class ScriptedUpstream:
    """A raw HTTP upstream. GET /good answers GOOD; /bad/<name> answers the
    scripted bytes (and, for EXTRA_BYTES, more bytes 100 ms later). Every
    connection stays open afterwards. Records (conn_id, method, target) per
    request and which connections the peer closed."""

    def __init__(self, t, scripts):
        self.scripts = scripts  # name -> (bytes, later bytes or None)
        self.lock = threading.Lock()
        self.requests = []
        self.closed = set()
        self.stopping = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.1)
        self.url = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self._socks = []
        threading.Thread(target=self._accept, daemon=True).start()
        t.on_cleanup(self.stop)

    def stop(self):
        self.stopping.set()
        self.listener.close()
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass

    def _accept(self):
        conn_id = 0
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn_id += 1
            self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock, conn_id), daemon=True).start()

    def _serve(self, sock, conn_id):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = sock.recv(65536)
                    if not data:
                        with self.lock:
                            self.closed.add(conn_id)
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                method, target = head.split(b"\r\n", 1)[0].split(b" ")[:2]
                with self.lock:
                    self.requests.append((conn_id, method.decode(), target.decode()))
                name = target.decode().rsplit("/", 1)[-1]
                now, later = (GOOD, None) if target == b"/good" else self.scripts[name]
                sock.sendall(now)
                if later:
                    time.sleep(0.1)
                    sock.sendall(later)
        except OSError:
            with self.lock:
                self.closed.add(conn_id)

    def conn_of(self, target):
        with self.lock:
            ids = [c for c, _, tg in self.requests if tg == target]
        check(len(ids) == 1, "upstream requests for %s: %d, want 1" % (target, len(ids)))
        return ids[0]

    def wait_closed(self, conn_id, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if conn_id in self.closed:
                    return True
            time.sleep(0.02)
        return False


def _start(t, scripts):
    up = ScriptedUpstream(t, scripts)
    proxy = t.sessiond(upstream=up.url, overrides={
        "limits": {"max_header_bytes": MAX_HEADER_BYTES},
        "timeouts": {"upstream_response": "4s", "idle": "10s"}})
    return up, proxy


def _check_not_reused(up, proxy, bad_target):
    resp = proxy.request("GET", "/good", timeout=5)
    check_eq((resp.status, resp.body), (200, b"good"), "the request after %s" % bad_target)
    bad = up.conn_of(bad_target)
    check(up.conn_of("/good") != bad,
          "the upstream connection that answered %s was reused for the next request" % bad_target)
    check(up.wait_closed(bad, 3.0), "sessiond kept the upstream connection of %s open" % bad_target)


def _bad_head(t, name):
    up, proxy = _start(t, {name: (BAD_HEADS[name], None)})
    t0 = time.monotonic()
    resp = proxy.request("GET", "/bad/" + name, timeout=8)
    elapsed = time.monotonic() - t0
    check_error_response(resp, 502, also_forbidden=["poisoned", "evil"])
    check(elapsed < 3.0, "502 for %s took %.1fs: sessiond waited for more of a broken answer" % (name, elapsed))
    _check_not_reused(up, proxy, "/bad/" + name)


def _bad_body(t, name):
    up, proxy = _start(t, {name: (BAD_BODIES[name], None)})
    conn = t.connect(proxy.port, timeout=5)
    conn.send(b"GET /bad/%s HTTP/1.1\r\nHost: test.local\r\n\r\n" % name.encode())
    try:
        resp = conn.read_response(timeout=5)
    except ProtocolError:
        resp = None  # cut short: what must happen
    check(resp is None, "a response with a broken body reached the client as complete: %r %r"
          % (resp, resp and resp.body))
    check(conn.wait_closed(3.0), "client connection still open after a broken upstream body")
    _check_not_reused(up, proxy, "/bad/" + name)


def _extra_bytes(t, name):
    now, later, method = EXTRA_BYTES[name]
    up, proxy = _start(t, {name: (now, later)})
    conn = t.connect(proxy.port, timeout=5)
    resp = conn.request(method, "/bad/" + name, timeout=5)
    check(resp.status in (200, 204, 304), "status %d for %s" % (resp.status, name))
    check(b"poisoned" not in (resp.body or b""), "the extra bytes reached the client: %r" % resp.body)
    time.sleep(0.3)  # the late bytes arrive while the connection would sit in the pool
    for c in (conn, proxy.connect(timeout=5)):  # the same client connection and a new one
        nxt = c.request("GET", "/good", timeout=5)
        check_eq((nxt.status, nxt.body), (200, b"good"), "the request after %s" % name)
        c.close()
    bad = up.conn_of("/bad/" + name)
    with up.lock:
        good_conns = [cid for cid, _, tg in up.requests if tg == "/good"]
    check(bad not in good_conns, "the upstream connection that sent extra bytes was reused")
    check(up.wait_closed(bad, 3.0), "sessiond kept the upstream connection of %s open" % name)


def test_upstream_connection_reused_after_a_clean_response(t):
    # The control case: without hostility the pool does reuse, so the
    # not-reused checks below can fail.
    up, proxy = _start(t, {})
    conn = t.connect(proxy.port, timeout=5)
    for _ in range(3):
        resp = conn.request("GET", "/good", timeout=5)
        check_eq((resp.status, resp.body), (200, b"good"), "a clean response")
    with up.lock:
        conns = {cid for cid, _, _ in up.requests}
    check_eq(len(conns), 1, "upstream connections used for three sequential requests")


def test_interim_100_before_the_response_passes(t):
    up, proxy = _start(t, {"continue": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                                        None)})
    resp = proxy.request("GET", "/bad/continue", timeout=5)
    check_eq((resp.status, resp.body), (200, b"ok"), "a response after an interim 100")


def test_upstream_cl_and_te_gives_502(t): _bad_head(t, "cl_and_te")
def test_upstream_te_and_cl_gives_502(t): _bad_head(t, "te_and_cl")
def test_upstream_two_content_lengths_gives_502(t): _bad_head(t, "two_content_lengths")
def test_upstream_content_length_list_gives_502(t): _bad_head(t, "content_length_list")
def test_upstream_content_length_sign_gives_502(t): _bad_head(t, "content_length_sign")
def test_upstream_te_twice_gives_502(t): _bad_head(t, "te_twice")
def test_upstream_te_chunked_identity_gives_502(t): _bad_head(t, "te_chunked_identity")
def test_upstream_status_two_digits_gives_502(t): _bad_head(t, "status_two_digits")
def test_upstream_status_four_digits_gives_502(t): _bad_head(t, "status_four_digits")
def test_upstream_status_letters_gives_502(t): _bad_head(t, "status_letters")
def test_upstream_status_no_space_before_reason_gives_502(t): _bad_head(t, "status_no_space_before_reason")
def test_upstream_status_double_space_gives_502(t): _bad_head(t, "status_double_space")
def test_upstream_status_below_100_gives_502(t): _bad_head(t, "status_below_100")
def test_upstream_status_above_599_gives_502(t): _bad_head(t, "status_above_599")
def test_upstream_version_http2_gives_502(t): _bad_head(t, "version_http2")
def test_upstream_version_lowercase_gives_502(t): _bad_head(t, "version_lowercase")
def test_upstream_not_http_gives_502(t): _bad_head(t, "not_http")
def test_upstream_nul_in_reason_gives_502(t): _bad_head(t, "nul_in_reason")
def test_upstream_obs_fold_header_gives_502(t): _bad_head(t, "obs_fold_header")
def test_upstream_space_before_colon_gives_502(t): _bad_head(t, "space_before_colon")
def test_upstream_nul_in_header_gives_502(t): _bad_head(t, "nul_in_header")
def test_upstream_bare_lf_in_one_header_line_gives_502(t): _bad_head(t, "bare_lf_in_one_header_line")
def test_upstream_bare_cr_in_header_gives_502(t): _bad_head(t, "bare_cr_in_header")
def test_upstream_headers_over_max_header_bytes_give_502(t): _bad_head(t, "headers_over_max_header_bytes")
def test_upstream_head_never_ending_over_limit_gives_502(t): _bad_head(t, "head_never_ends_over_limit")
def test_upstream_bare_lf_response_gives_502(t): _bad_head(t, "bare_lf_response")
def test_upstream_101_without_upgrade_gives_502(t): _bad_head(t, "switching_protocols_without_upgrade")
def test_upstream_101_to_a_request_without_upgrade_gives_502(t): _bad_head(t, "switching_protocols_unrequested")


def test_upstream_chunk_size_not_hex_cuts_the_response(t): _bad_body(t, "chunk_size_not_hex")
def test_upstream_chunk_longer_than_size_cuts_the_response(t): _bad_body(t, "chunk_longer_than_size")
def test_upstream_chunk_size_bare_lf_cuts_the_response(t): _bad_body(t, "chunk_size_bare_lf")
def test_upstream_chunk_size_overflow_cuts_the_response(t): _bad_body(t, "chunk_size_overflow")


def test_upstream_extra_response_in_same_write_not_reused(t): _extra_bytes(t, "extra_response_same_write")
def test_upstream_extra_response_after_delay_not_reused(t): _extra_bytes(t, "extra_response_after_delay")
def test_upstream_head_response_with_body_not_reused(t): _extra_bytes(t, "head_response_with_body")
def test_upstream_204_with_body_not_reused(t): _extra_bytes(t, "no_content_with_body")
def test_upstream_304_with_body_not_reused(t): _extra_bytes(t, "not_modified_with_body")
def test_upstream_connection_close_kept_open_not_reused(t): _extra_bytes(t, "connection_close_kept_open")
def test_upstream_http10_response_kept_open_not_reused(t): _extra_bytes(t, "http10_response_kept_open")
