"""workers: N event-loop threads behind one port; "auto" = one per core
(docs/CONFIGURATION.md, workers)."""

import os
import re
import threading

from harness import check, check_eq, echo_headers, wait_until
from test_ops_support import admin_overrides, cookie_value, scrape, set_headers_target


def _threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def _client(proxy, index, rounds, errors, ids):
    """One keep-alive connection: create a session, then read it back and
    extend it `rounds` times, checking every answer."""
    try:
        conn = proxy.connect(timeout=10)
        resp = conn.request("GET", set_headers_target(("X-Session-Set", '{"client":%d}' % index)))
        token = cookie_value(resp, "session_id")
        ids.append(resp.header("X-Request-Id") or "")
        if resp.status != 200 or not token:
            errors.append("client %d: create gave %d, cookie %r" % (index, resp.status, token))
            return
        for r in range(rounds):
            resp = conn.request("GET", "/echo?c=%d&r=%d" % (index, r),
                                headers=[("Cookie", "session_id=" + token)])
            data = echo_headers(resp, "X-Session-Data")
            if resp.status != 200 or data != ['{"client":%d}' % index]:
                errors.append("client %d round %d: %d %r" % (index, r, resp.status, data))
                return
            if resp.json()["target"] != "/echo?c=%d&r=%d" % (index, r):
                errors.append("client %d round %d: answer for %r" % (index, r, resp.json()["target"]))
                return
        conn.close()
    except Exception as e:  # reported by the test thread
        errors.append("client %d: %r" % (index, e))


def _run_clients(proxy, clients, rounds):
    errors, ids = [], []
    threads = [threading.Thread(target=_client, args=(proxy, i, rounds, errors, ids)) for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    check(not errors, "%d client failures, first: %s" % (len(errors), errors[:3]))
    return ids


def test_two_workers_serve_concurrent_connections_correctly(t):
    overrides, aport = admin_overrides({"workers": 2})
    proxy = t.sessiond(overrides=overrides)
    # The port accepts once the first worker listens; the other threads may
    # still be starting (slowly, under ThreadSanitizer).
    wait_until(lambda: _threads(proxy.pid) >= 3, 5, "3 threads in a 2-worker sessiond")
    before = scrape(aport)
    clients, rounds = 12, 10
    ids = _run_clients(proxy, clients, rounds)
    after = scrape(aport)
    check_eq(after.total("sessiond_requests_total", code="200") - before.total("sessiond_requests_total", code="200"),
             clients * (rounds + 1), "requests_total{code=200} delta summed over both workers")
    check_eq(after.value("sessiond_sessions_created_total") - before.value("sessiond_sessions_created_total"),
             clients, "sessions_created delta")
    # Both workers took connections. Generated request ids start with a
    # per-worker random prefix, so two workers show (at least) two prefixes;
    # the kernel spreads connections over SO_REUSEPORT listeners by hash, so
    # 12 connections all landing on one worker has odds of 1 in 2048.
    prefixes = {i[:16] for i in ids}
    check(len(prefixes) >= 2, "all %d connections were served by one worker (ids %r)" % (len(ids), ids[:4]))


def test_two_workers_share_memory_store_sessions(t):
    # A session written through one worker must be readable through the other.
    proxy = t.sessiond(overrides={"workers": 2, "session": {"manager": "memory"}})
    _run_clients(proxy, 10, 5)


def test_workers_auto_starts_one_worker_per_core(t):
    proxy = t.sessiond(overrides={"workers": "auto"})
    check_eq(proxy.request("GET", "/echo").status, 200, "request with workers: auto")
    # The main thread logs the startup line once every worker listens; the
    # port already accepts when the first one does.
    m = wait_until(lambda: re.search(r"(\d+) worker\(s\)", proxy.stderr_text()), 5,
                   "a startup line that states the worker count")
    workers = int(m.group(1))
    check_eq(workers, max(1, min(256, os.cpu_count() or 1)), "workers for auto (cores: %s)" % os.cpu_count())
    check(_threads(proxy.pid) >= workers + 1, "%d threads for %d workers" % (_threads(proxy.pid), workers))
    _run_clients(proxy, 4, 3)
