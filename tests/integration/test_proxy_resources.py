"""Proxy core: aborted and failed exchanges release their connections."""

from client import ConnectionClosed, ProtocolError, build_request
from harness import check, check_eq, wait_until


def test_client_abort_mid_response_leaves_proxy_healthy(t):
    proxy = t.sessiond()
    check_eq(proxy.request("GET", "/echo").status, 200, "warm-up status")
    baseline = proxy.fd_count()
    for _ in range(5):
        conn = t.connect(proxy.port)
        conn.send(build_request("GET", "/bytes/%d" % (64 << 20)))
        check(conn.wait_data(5.0), "no response bytes for a 64 MiB body")
        conn.close()  # with most of the body still to come
    resp = proxy.request("GET", "/echo?after-aborts")
    check_eq(resp.status, 200, "status after 5 aborted downloads")
    wait_until(lambda: proxy.fd_count() <= baseline + 4, 5.0,
               "sessiond's open fds to fall back near %d (now %d) after aborted downloads"
               % (baseline, proxy.fd_count()))


def test_no_fd_leak_after_upstream_errors_and_rejected_requests(t):
    proxy = t.sessiond(overrides={"timeouts": {"upstream_response": "1s"}})
    check_eq(proxy.request("GET", "/echo").status, 200, "warm-up status")
    baseline = proxy.fd_count()
    for i in range(10):
        for target, want in (("/reset", 502), ("/raw/garbage-status", 502), ("/raw/empty", 502),
                             ("/hang", 504), ("/echo", 200)):
            check_eq(proxy.request("GET", target, timeout=5).status, want, "status of %s (round %d)" % (target, i))
        conn = t.connect(proxy.port)
        conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
        check_eq(conn.read_response(timeout=5).status, 400, "status of a conflicting-length request")
        conn.close()
        conn = t.connect(proxy.port)
        conn.send(b"GET /echo HTTP/1.1\r\nHost: x\r\n")  # abandoned half-way through the head
        conn.close()
    wait_until(lambda: proxy.fd_count() <= baseline + 4, 5.0,
               "sessiond's open fds to fall back near %d (now %d) after 60 failed exchanges"
               % (baseline, proxy.fd_count()))


def test_client_abort_while_upstream_is_slow_does_not_break_later_requests(t):
    proxy = t.sessiond()
    for _ in range(3):
        conn = t.connect(proxy.port)
        conn.send(build_request("GET", "/slow-headers/300"))
        conn.close()
    conn = t.connect(proxy.port)
    try:
        resp = conn.request("GET", "/echo?next", timeout=5)
    except (ConnectionClosed, ProtocolError) as e:
        raise AssertionError("request after aborted slow exchanges failed: %s" % e)
    check_eq(resp.status, 200, "status after aborted slow exchanges")
    check_eq(resp.json()["target"], "/echo?next", "the response belongs to this request")
