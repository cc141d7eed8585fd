"""Proxy core: an unreachable, broken or slow upstream gives 502/504 (docs/HTTP.md, Statuses)."""

import time

from client import ConnectionClosed
from harness import check, check_eq, check_error_response, free_port


def _timed(fn):
    t0 = time.monotonic()
    out = fn()
    return out, time.monotonic() - t0


def test_upstream_refused_gives_502_fast(t):
    dead_port = free_port()  # nothing listens there
    proxy = t.sessiond("http://127.0.0.1:%d" % dead_port)
    resp, elapsed = _timed(lambda: proxy.request("GET", "/echo", timeout=5))
    check_error_response(resp, 502, also_forbidden=[str(dead_port)])
    check(elapsed < 1.0, "502 for a refused upstream took %.2fs (want < 1s)" % elapsed)


def test_upstream_refused_leaves_client_connection_usable(t):
    proxy = t.sessiond("http://127.0.0.1:%d" % free_port())
    conn = t.connect(proxy.port)
    for i in range(2):
        check_eq(conn.request("GET", "/echo?%d" % i, timeout=5).status, 502, "status of request %d" % i)


def test_upstream_reset_gives_502(t):
    proxy = t.sessiond()
    resp = proxy.request("GET", "/reset", timeout=5)
    check_error_response(resp, 502, also_forbidden=[str(proxy.backend.port)])


def test_upstream_garbled_status_line_gives_502(t):
    proxy = t.sessiond()
    for name in ("garbage-status", "not-http", "http09"):
        resp = proxy.request("GET", "/raw/" + name, timeout=5)
        check_error_response(resp, 502)


def test_upstream_empty_reply_gives_502(t):
    proxy = t.sessiond()
    check_error_response(proxy.request("GET", "/raw/empty", timeout=5), 502)


def test_upstream_truncated_head_gives_502(t):
    proxy = t.sessiond()
    check_error_response(proxy.request("GET", "/raw/truncated-head", timeout=5), 502)


def test_upstream_conflicting_framing_gives_502(t):
    # RFC 9112 6.3: a proxy receiving a response with an invalid or
    # conflicting length MUST discard it and answer 502 (response splitting).
    proxy = t.sessiond()
    for name in ("cl-te", "double-cl", "bad-cl"):
        resp = proxy.request("GET", "/raw/" + name, timeout=5)
        check_eq(resp.status, 502, "status for upstream response %s" % name)


def test_upstream_truncated_body_is_not_passed_as_complete(t):
    # The upstream promises 100 bytes, sends 5 and closes. Either sessiond has
    # not answered yet (502), or it already streamed the head and must then
    # cut the client connection, never leave it hanging or complete it.
    proxy = t.sessiond()
    conn = t.connect(proxy.port, timeout=5)
    conn.send(b"GET /raw/truncated-body HTTP/1.1\r\nHost: test.local\r\n\r\n")
    try:
        resp = conn.read_response()
    except ConnectionClosed:
        return
    check_eq(resp.status, 502, "status (a complete response for a truncated upstream body)")


def test_upstream_hang_gives_504_after_response_timeout(t):
    proxy = t.sessiond(overrides={"timeouts": {"upstream_response": "500ms"}})
    resp, elapsed = _timed(lambda: proxy.request("GET", "/hang", timeout=10))
    check_error_response(resp, 504)
    check(0.4 <= elapsed <= 2.5, "504 after %.2fs, want about 0.5s (timeouts.upstream_response)" % elapsed)


def test_upstream_response_timeout_not_triggered_by_fast_upstream(t):
    proxy = t.sessiond(overrides={"timeouts": {"upstream_response": "500ms"}})
    resp = proxy.request("GET", "/slow-headers/100", timeout=5)
    check_eq(resp.status, 200, "status of a response that comes after 100ms")


def test_upstream_connect_timeout_gives_502(t):
    # The upstream's kernel drops our SYNs (see unresponsive_upstream), so
    # only timeouts.upstream_connect can end the attempt.
    upstream = t.unresponsive_upstream()
    proxy = t.sessiond(upstream, {"timeouts": {"upstream_connect": "300ms"}})
    resp, elapsed = _timed(lambda: proxy.request("GET", "/echo", timeout=10))
    check_error_response(resp, 502, also_forbidden=[upstream.rsplit(":", 1)[1]])
    check(0.25 <= elapsed < 1.5, "502 for an unanswered connect after %.2fs, want about 0.3s (upstream_connect)"
          % elapsed)
