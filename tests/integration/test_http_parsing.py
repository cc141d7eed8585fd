"""Head parsing answers at the first impossible byte (docs/HTTP.md, Parsing).

A head that can never become valid (a NUL in the request line, a head that
ends in CRLF LF, a bare CR, an HTTP/0.9 request line, an unsupported
version...) is answered as soon as the offending byte arrives: the client
does not wait out timeouts.client_header for a silent close, and the
upstream's impossible response head gets its 502 without waiting for
timeouts.upstream_response. Every case keeps its connection open and sends
nothing more after the offending byte, with both timeouts set to 30 s and
the answer awaited for at most 5 s: an answer that only came at the timeout
fails the test. Nothing of such a request reaches the backend.
"""

import socket
import threading

from harness import check, check_eq, check_error_response

LONG_TIMEOUTS = {"timeouts": {"client_header": "30s", "upstream_response": "30s", "idle": "30s"}}
ANSWER_WITHIN = 5.0  # seconds; far below the 30 s timeouts


def _answered_at_once(t, raw, status, method="GET"):
    proxy = t.sessiond(overrides=LONG_TIMEOUTS)
    conn = t.connect(proxy.port, timeout=10)
    conn.send(raw)  # and nothing more: the connection stays open
    check(conn.wait_data(ANSWER_WITHIN), "no answer within %ss to %r (waiting for client_header?)" % (
        ANSWER_WITHIN, raw[:80]))
    resp = conn.read_response(method, timeout=ANSWER_WITHIN)
    check_error_response(resp, status)
    check(conn.wait_closed(3.0), "connection still open 3s after the %d" % status)
    check(not conn.buf, "bytes after the %d (a body to HEAD?): %r" % (status, bytes(conn.buf[:200])))
    check_eq(proxy.request("GET", "/echo?marker").status, 200, "status of a good request afterwards")
    targets = [r.target for r in proxy.backend.requests()]
    check_eq(targets, ["/echo?marker"], "requests at the backend")


def test_nul_in_request_line_gets_400_at_once(t):
    _answered_at_once(t, b"GET /echo?a\x00b HTTP/1.1\r\n", 400)


def test_nul_in_method_gets_400_before_the_request_line_ends(t):
    _answered_at_once(t, b"GE\x00", 400)


def test_head_ending_in_crlf_lf_gets_400_at_once(t):
    _answered_at_once(t, b"GET /echo?smuggled HTTP/1.1\r\nHost: test.local\r\n\n", 400)


def test_head_ending_in_lf_lf_gets_400_at_once(t):
    _answered_at_once(t, b"GET /echo?smuggled HTTP/1.1\r\nHost: test.local\n\n", 400)


def test_bare_cr_in_a_header_gets_400_at_once(t):
    _answered_at_once(t, b"GET /echo?smuggled HTTP/1.1\r\nHost: test.local\rX", 400)


def test_http09_request_line_gets_400_at_once(t):
    _answered_at_once(t, b"GET /echo?smuggled\r\n", 400)


def test_obs_fold_gets_400_at_once(t):
    _answered_at_once(t, b"GET /echo?smuggled HTTP/1.1\r\nHost: test.local\r\n ", 400)


def test_second_content_length_gets_400_at_once(t):
    _answered_at_once(t, b"POST /echo?smuggled HTTP/1.1\r\nHost: test.local\r\nContent-Length: 1\r\n"
                         b"Content-Length: 1\r\n", 400)


def test_unsupported_version_gets_505_at_once(t):
    _answered_at_once(t, b"GET /echo?smuggled HTTP/2.0\r\n", 505)


def test_connect_gets_405_once_the_request_line_is_complete(t):
    _answered_at_once(t, b"CONNECT test.local:443 HTTP/1.1\r\n", 405)


def test_error_to_a_head_request_has_no_body(t):
    _answered_at_once(t, b"HEAD /echo?smuggled HTTP/1.1\r\nHost: test.local\r\n\n", 400, method="HEAD")


# ---- the upstream side -----------------------------------------------------

class HangingUpstream:
    """Answers every request with `head` and then keeps the connection open,
    sending nothing more."""

    def __init__(self, t, head):
        self.head = head
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.socks = []
        threading.Thread(target=self._serve, daemon=True).start()
        t.on_cleanup(self.stop)

    def stop(self):
        for s in self.socks + [self.listener]:
            try:
                s.close()
            except OSError:
                pass

    def _serve(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.socks.append(sock)
            try:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    data = sock.recv(65536)
                    if not data:
                        break
                    buf += data
                sock.sendall(self.head)
            except OSError:
                pass


def _upstream_answered_at_once(t, head):
    up = HangingUpstream(t, head)
    proxy = t.sessiond(upstream=up.url, overrides=LONG_TIMEOUTS)
    conn = t.connect(proxy.port, timeout=10)
    conn.send(b"GET /x HTTP/1.1\r\nHost: test.local\r\n\r\n")
    check(conn.wait_data(ANSWER_WITHIN), "no answer within %ss to the upstream's %r (waiting for "
          "upstream_response?)" % (ANSWER_WITHIN, head[:80]))
    check_error_response(conn.read_response(timeout=ANSWER_WITHIN), 502)


def test_upstream_nul_in_status_line_gets_502_at_once(t):
    _upstream_answered_at_once(t, b"HTTP/1.1 200 O\x00")


def test_upstream_head_ending_in_crlf_lf_gets_502_at_once(t):
    _upstream_answered_at_once(t, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\n")


def test_upstream_duplicate_content_length_gets_502_at_once(t):
    _upstream_answered_at_once(t, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n")
