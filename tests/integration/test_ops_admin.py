"""Admin listener: /healthz, /readyz against the session store, unknown paths
(docs/OPERATIONS.md, Admin endpoints; docs/OPERATIONS.md, Readiness)."""

import os
import re
import time

from client import request as client_request
from harness import check, check_eq, echo_headers, free_port
from test_ops_support import (RedisServer, admin_get, admin_overrides, cookie_value, scrape, set_headers_target,
                              wait_for)


def _status(port, path):
    return admin_get(port, path).status


def test_admin_healthz_answers_ok(t):
    overrides, aport = admin_overrides()
    t.sessiond(overrides=overrides)
    resp = admin_get(aport, "/healthz")
    check_eq(resp.status, 200, "/healthz status")
    check_eq(resp.body.strip(), b"ok", "/healthz body")
    check_eq(admin_get(aport, "/healthz?verbose=1").status, 200, "/healthz with a query string")


def test_admin_unknown_path_is_404(t):
    overrides, aport = admin_overrides()
    t.sessiond(overrides=overrides)
    for path in ("/nope", "/healthz/extra", "/metricsx", "/HEALTHZ", "//"):
        check_eq(admin_get(aport, path).status, 404, "status of admin %s" % path)


def test_admin_root_lists_the_endpoints(t):
    overrides, aport = admin_overrides()
    t.sessiond(overrides=overrides)
    resp = admin_get(aport, "/")
    check_eq(resp.status, 200, "admin / status")
    check((resp.header("Content-Type") or "").startswith("text/plain"),
          "admin / Content-Type %r" % resp.header("Content-Type"))
    listed = re.findall(r"^\s+(/\S+)", resp.body.decode(), re.M)
    check_eq(listed, ["/healthz", "/readyz", "/metrics", "/sessions?subject=S", "/sessions/PUBLIC_ID"],
             "endpoints listed at /")
    # Each probe it lists answers (/readyz once the workers are up: right
    # after the start it may still say 503, see
    # test_readyz_ready_with_cookie_manager); the sessions API needs admin.token
    # (docs/OPERATIONS.md, Sessions API), which this configuration lacks.
    wait_for(lambda: _status(aport, "/readyz") == 200, 3, "/readyz 200 with the cookie manager")
    for path in listed[:3]:
        check_eq(admin_get(aport, path).status, 200, "admin %s (listed at /)" % path)
    check_eq(admin_get(aport, "/sessions?subject=S").status, 403, "admin /sessions without admin.token")
    check_eq(admin_get(aport, "/?x=1").status, 200, "admin / with a query string")


def test_admin_other_methods_are_405_with_allow(t):
    overrides, aport = admin_overrides()
    t.sessiond(overrides=overrides)
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for path in ("/metrics", "/healthz", "/nope"):
            resp = admin_get(aport, path, method=method)
            check_eq(resp.status, 405, "admin %s %s" % (method, path))
            check_eq(resp.header("Allow"), "GET, HEAD", "Allow of admin %s %s" % (method, path))
            check((resp.header("Content-Type") or "").startswith("text/plain"),
                  "Content-Type of the 405: %r" % resp.header("Content-Type"))
    # A POST with a body is still a 405, not a 413 or a hang.
    resp = client_request(aport, "POST", "/metrics", headers=[("Connection", "close")], body=b"x=1" * 100)
    check_eq(resp.status, 405, "admin POST /metrics with a body")
    # HEAD is allowed: the headers of GET, no body.
    resp = admin_get(aport, "/healthz", method="HEAD")
    check_eq(resp.status, 200, "admin HEAD /healthz")
    check_eq(resp.body, b"", "body of HEAD /healthz")


def test_admin_is_not_served_on_the_proxy_port(t):
    # The admin paths belong to the admin listener only: on the proxy port
    # they are ordinary requests for the backend.
    overrides, aport = admin_overrides()
    proxy = t.sessiond(overrides=overrides)
    check_eq(proxy.request("GET", "/metrics").status, 404, "/metrics on the proxy port (backend 404)")
    check_eq(len(proxy.backend.requests(path="/metrics")), 1, "backend saw /metrics")


def _listening_ports(pid):
    """Local ports of the TCP sockets in LISTEN state that process pid holds."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:
                    ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def test_admin_listener_absent_without_admin_listen(t):
    proxy = t.sessiond()
    check_eq(_listening_ports(proxy.pid), [proxy.port], "listening ports without admin.listen")
    overrides, aport = admin_overrides()
    with_admin = t.sessiond(overrides=overrides)
    check_eq(_listening_ports(with_admin.pid), sorted([with_admin.port, aport]),
             "listening ports with admin.listen")


def test_readyz_ready_with_cookie_manager(t):
    overrides, aport = admin_overrides()
    t.sessiond(overrides=overrides)
    wait_for(lambda: _status(aport, "/readyz") == 200, 3, "/readyz 200 with the cookie manager")


def test_readyz_ready_with_memory_manager(t):
    overrides, aport = admin_overrides({"session": {"manager": "memory"}})
    t.sessiond(overrides=overrides)
    wait_for(lambda: _status(aport, "/readyz") == 200, 3, "/readyz 200 with the memory manager")


def test_readyz_follows_redis_availability(t):
    redis_port = free_port()  # nothing listens there yet
    overrides, aport = admin_overrides({
        "session": {"manager": "redis"},
        "redis": {"url": "redis://127.0.0.1:%d/0" % redis_port, "timeout": "300ms"},
    })
    proxy = t.sessiond(overrides=overrides)
    wait_for(lambda: _status(aport, "/readyz") == 503, 3, "/readyz 503 with redis down")
    # It stays 503 over several ping rounds, and the failed pings are counted.
    for _ in range(3):
        check_eq(_status(aport, "/readyz"), 503, "/readyz with redis still down")
        time.sleep(0.5)
    check(scrape(aport).value("sessiond_store_errors_total", op="ping") > 0, "failed pings not counted")
    check_eq(admin_get(aport, "/healthz").status, 200, "/healthz while the store is down")
    check_eq(proxy.request("GET", set_headers_target(("X-Session-Set", '{"a":1}'))).status, 503,
             "session write with redis down (fail_closed)")

    RedisServer(t, redis_port).start()
    wait_for(lambda: _status(aport, "/readyz") == 200, 8, "/readyz 200 once redis runs")
    resp = proxy.request("GET", set_headers_target(("X-Session-Set", '{"a":1}')))
    check_eq(resp.status, 200, "session write with redis up")
    check(cookie_value(resp, "session_id"), "no session cookie from the redis manager")


def test_redis_outage_counts_store_errors_and_readyz_drops(t):
    redis = RedisServer(t).start()
    overrides, aport = admin_overrides({
        "session": {"manager": "redis"},
        "redis": {"url": "redis://127.0.0.1:%d/0" % redis.port, "timeout": "300ms"},
    })
    proxy = t.sessiond(overrides=overrides)
    wait_for(lambda: _status(aport, "/readyz") == 200, 5, "/readyz 200 with redis up")
    resp = proxy.request("GET", set_headers_target(("X-Session-Set", '{"a":1}')))
    check_eq(resp.status, 200, "create a session")
    cookie = [("Cookie", "session_id=" + cookie_value(resp, "session_id"))]
    check_eq(echo_headers(proxy.request("GET", "/echo", headers=cookie), "X-Session-Status"), ["active"],
             "session status with redis up")

    redis.stop()
    before = scrape(aport)
    check_eq(proxy.request("GET", "/echo", headers=cookie).status, 503, "load with redis down (fail_closed)")
    after = scrape(aport)
    check_eq(after.value("sessiond_store_errors_total", op="load")
             - before.value("sessiond_store_errors_total", op="load"), 1.0, "store_errors_total{op=load} delta")
    check_eq(after.total("sessiond_requests_total", code="503")
             - before.total("sessiond_requests_total", code="503"), 1.0, "requests_total{code=503} delta")
    wait_for(lambda: _status(aport, "/readyz") == 503, 4, "/readyz 503 after redis went away")
