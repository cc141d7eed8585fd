"""Slow request bodies (src/http/client_connection.h): a body must arrive
within timeouts.client_header from the end of the head plus 1 ms per byte
received, and with no gap longer than timeouts.idle; a miss is a 408 and
the backend never sees the body complete."""

import time

from harness import check, check_eq, check_error_response

BODY_LENGTH = 1000


def _trickle(conn, pieces, interval, limit):
    """Sends pieces one by one, `interval` seconds apart, until sessiond
    answers or closes; returns (seconds until it did, pieces sent) or
    (None, pieces sent) if it never did within `limit` seconds."""
    t0 = time.monotonic()
    sent = 0
    for piece in pieces:
        if time.monotonic() - t0 > limit:
            break
        if not conn.try_send(piece):
            return time.monotonic() - t0, sent
        sent += 1
        if conn.wait_data(interval):
            return time.monotonic() - t0, sent
    if conn.wait_data(max(0.0, limit - (time.monotonic() - t0))):
        return time.monotonic() - t0, sent
    return None, sent


def _check_body_never_complete(backend, target):
    reqs = backend.wait_requests(1, timeout=1.0, path="/echo")
    reqs = [r for r in reqs if r.target == target]
    for r in reqs:
        check(not r.complete, "the backend received the trickled body complete (%d bytes)" % len(r.body))
        check(len(r.body) < BODY_LENGTH, "the backend received %d of %d body bytes" % (len(r.body), BODY_LENGTH))


def test_body_trickled_byte_by_byte_gets_408_at_the_total_deadline(t):
    # idle 30s: the gap timer cannot be what fires; client_header 1s is the
    # body deadline (1s + 1 ms per byte: about 1.01s at this rate).
    proxy = t.sessiond(overrides={"timeouts": {"client_header": "1s", "idle": "30s"}})
    conn = t.connect(proxy.port, timeout=10)
    target = "/echo?trickle"
    conn.send(b"POST %s HTTP/1.1\r\nHost: test.local\r\nContent-Length: %d\r\n\r\n" % (target.encode(), BODY_LENGTH))
    elapsed, sent = _trickle(conn, (b"x" for _ in range(BODY_LENGTH)), 0.15, limit=6.0)
    check(elapsed is not None, "a body trickled at one byte per 150 ms for 6s (%d bytes) got no answer" % sent)
    check(elapsed < 3.0, "408 after %.1fs, want about 1s (client_header 1s + 1 ms per byte)" % elapsed)
    check(elapsed > 0.8, "answered after only %.2fs, before the body deadline" % elapsed)
    resp = conn.read_response("POST", timeout=5)
    check_error_response(resp, 408)
    check(conn.wait_closed(3.0), "connection still open after the 408")
    _check_body_never_complete(proxy.backend, target)


def test_body_trickled_with_gaps_longer_than_idle_gets_408(t):
    # The other timer: client_header 30s, idle 1s, and the client stops.
    proxy = t.sessiond(overrides={"timeouts": {"client_header": "30s", "idle": "1s"}})
    conn = t.connect(proxy.port, timeout=10)
    target = "/echo?stalled"
    conn.send(b"POST %s HTTP/1.1\r\nHost: test.local\r\nContent-Length: %d\r\n\r\nfirst bytes"
              % (target.encode(), BODY_LENGTH))
    t0 = time.monotonic()
    check(conn.wait_data(5.0), "a body that stopped arriving got no answer within 5s (idle 1s)")
    elapsed = time.monotonic() - t0
    check(0.7 < elapsed < 2.5, "408 after %.1fs, want about 1s (idle)" % elapsed)
    check_error_response(conn.read_response("POST", timeout=5), 408)
    _check_body_never_complete(proxy.backend, target)


def test_body_faster_than_the_minimum_rate_is_not_cut(t):
    # 200 bytes every 100 ms (2 KB/s, twice the 1 KB/s minimum) for about 3s:
    # longer than client_header, yet the deadline keeps ahead of it.
    proxy = t.sessiond(overrides={"timeouts": {"client_header": "1s", "idle": "30s"}})
    conn = t.connect(proxy.port, timeout=10)
    pieces = [bytes([65 + i % 26]) * 200 for i in range(30)]
    body = b"".join(pieces)
    conn.send(b"POST /echo?steady HTTP/1.1\r\nHost: test.local\r\nContent-Length: %d\r\n\r\n" % len(body))
    t0 = time.monotonic()
    for piece in pieces:
        check(not conn.wait_data(0.1), "sessiond answered %.1fs into a 2 KB/s body: %r"
              % (time.monotonic() - t0, bytes(conn.buf[:100])))
        conn.send(piece)
    resp = conn.read_response("POST", timeout=5)
    check_eq(resp.status, 200, "status of a 6000-byte body sent over %.1fs" % (time.monotonic() - t0))
    check_eq(resp.json()["body_length"], len(body), "body length at the backend")
