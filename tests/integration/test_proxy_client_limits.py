"""Proxy core: limits and timeouts on the client side (docs/HTTP.md, Limits; docs/HTTP.md, Timeouts)."""

import time

from client import build_request
from harness import check, check_eq, check_error_response
from recording import pattern


def _check_no_complete_oversize_body(backend, limit):
    for req in backend.requests():
        check(not (req.complete and len(req.body) > limit),
              "the backend received a complete %d-byte body over max_body_bytes %d" % (len(req.body), limit))


def test_body_over_max_body_bytes_with_content_length_gets_413(t):
    proxy = t.sessiond(overrides={"limits": {"max_body_bytes": 1000}})
    conn = t.connect(proxy.port)
    conn.try_send(build_request("POST", "/echo", body=pattern(2000)))
    resp = conn.read_response("POST")
    check_error_response(resp, 413)
    _check_no_complete_oversize_body(proxy.backend, 1000)


def test_chunked_body_exceeding_max_body_bytes_midstream_gets_413(t):
    proxy = t.sessiond(overrides={"limits": {"max_body_bytes": 1000}})
    conn = t.connect(proxy.port)
    conn.try_send(build_request("POST", "/echo", body=[pattern(400), pattern(400), pattern(400), pattern(300)],
                                chunked=True))
    resp = conn.read_response("POST")
    check_error_response(resp, 413)
    _check_no_complete_oversize_body(proxy.backend, 1000)


def test_body_of_exactly_max_body_bytes_is_accepted(t):
    proxy = t.sessiond(overrides={"limits": {"max_body_bytes": 1000}})
    resp = proxy.request("POST", "/echo", body=pattern(1000))
    check_eq(resp.status, 200, "status for a body of exactly max_body_bytes")
    check_eq(resp.json()["body_length"], 1000, "body length at the backend")
    resp = proxy.request("POST", "/echo", body=[pattern(500), pattern(500)], chunked=True)
    check_eq(resp.status, 200, "status for a chunked body of exactly max_body_bytes")


def test_headers_over_max_header_bytes_get_431(t):
    proxy = t.sessiond(overrides={"limits": {"max_header_bytes": 4096}})
    conn = t.connect(proxy.port)
    conn.try_send(build_request("GET", "/echo", [("X-Big", "b" * 6000)]))
    check_error_response(conn.read_response(), 431)
    check_eq(proxy.backend.requests(), [], "requests that reached the backend")


def test_many_headers_summing_over_max_header_bytes_get_431(t):
    proxy = t.sessiond(overrides={"limits": {"max_header_bytes": 4096}})
    conn = t.connect(proxy.port)
    conn.try_send(build_request("GET", "/echo", [("X-H%d" % i, "v" * 90) for i in range(60)]))
    check_error_response(conn.read_response(), 431)
    check_eq(proxy.backend.requests(), [], "requests that reached the backend")


def test_request_line_over_max_header_bytes_gets_431(t):
    proxy = t.sessiond(overrides={"limits": {"max_header_bytes": 4096}})
    conn = t.connect(proxy.port)
    conn.try_send(build_request("GET", "/echo?" + "q" * 5000))
    check_error_response(conn.read_response(), 431)
    check_eq(proxy.backend.requests(), [], "requests that reached the backend")


def test_headers_under_max_header_bytes_are_accepted(t):
    proxy = t.sessiond(overrides={"limits": {"max_header_bytes": 4096}})
    resp = proxy.request("GET", "/echo", [("X-Big", "b" * 3000)])
    check_eq(resp.status, 200, "status for 3 KB of headers under a 4 KiB limit")


def test_slowloris_closed_after_client_header_timeout(t):
    # The deadline covers the whole head: a byte every 200ms must not keep
    # extending it (a per-read idle timer would).
    proxy = t.sessiond(overrides={"timeouts": {"client_header": "1s"}})
    conn = t.connect(proxy.port)
    t0 = time.monotonic()
    conn.send(b"GET /echo HTTP/1.1\r\nHost: test.local\r\nX-Slow: ")
    closed = False
    while time.monotonic() - t0 < 4.0:
        if conn.wait_closed(0.2) or not conn.try_send(b"a"):
            closed = True
            break
    elapsed = time.monotonic() - t0
    check(closed, "a head trickled for 4s is still being accepted (client_header 1s)")
    check(elapsed <= 2.2, "slowloris connection closed after %.2fs, want within client_header + 1s" % elapsed)
    if conn.buf:
        check(conn.buf.startswith(b"HTTP/1.1 408") or conn.buf.startswith(b"HTTP/1.1 400"),
              "unexpected bytes before the close: %r" % bytes(conn.buf[:100]))
    check_eq(proxy.backend.connections_accepted(), 0, "upstream connections opened for a slowloris head")


def test_silent_connection_closed_after_client_header_timeout(t):
    proxy = t.sessiond(overrides={"timeouts": {"client_header": "1s", "idle": "1s"}})
    conn = t.connect(proxy.port)
    t0 = time.monotonic()
    check(conn.wait_closed(4.0), "a connection that sends nothing is still open after 4s")
    check(time.monotonic() - t0 <= 2.2, "silent connection closed after %.2fs" % (time.monotonic() - t0))


def test_idle_keepalive_connection_closed_after_idle_timeout(t):
    proxy = t.sessiond(overrides={"timeouts": {"idle": "1s"}})
    conn = t.connect(proxy.port)
    check_eq(conn.request("GET", "/echo").status, 200, "status")
    t0 = time.monotonic()
    check(conn.wait_closed(4.0), "idle keep-alive connection still open 4s after the response (idle 1s)")
    elapsed = time.monotonic() - t0
    check(0.7 <= elapsed <= 2.2, "idle connection closed after %.2fs, want about 1s" % elapsed)
    check_eq(conn.buf, bytearray(), "bytes sent on the idle connection before closing")


def test_active_keepalive_connection_not_closed_by_idle_timeout(t):
    proxy = t.sessiond(overrides={"timeouts": {"idle": "1s"}})
    conn = t.connect(proxy.port)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.0:
        check_eq(conn.request("GET", "/echo").status, 200, "status after %.1fs of activity" % (time.monotonic() - t0))
        conn.wait_closed(0.3)
    check_eq(conn.request("GET", "/echo").status, 200, "status after 2s of activity")
