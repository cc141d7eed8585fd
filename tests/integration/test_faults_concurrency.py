"""Concurrency under traffic: two workers sharing the memory store's table,
the file store's I/O threads, per-worker Redis connections, reloads (SIGHUP)
and shutdown (SIGTERM) while requests are in flight.

These are the ThreadSanitizer targets (tests/integration/tsan_subset.txt)
and also run on every build: each checks what clients saw (every request
answered 200, reads see every acknowledged write, sessions intact
afterwards), and the harness fails the test on any sanitizer report.
"""

import signal
import time

from client import ConnectionClosed
from fault_util import SessionLoad
from harness import SLOW, check, check_eq
from session_util import reload_proxy, start_proxy

MIX = {"read": 5, "write": 4, "regenerate": 1, "destroy": 1}


def _check_clean(load, what, min_requests=30):
    done = load.completed()
    check(len(done) >= min_requests, "%s: only %d requests (%s)" % (what, len(done), load.summary()))
    bad = [s for s in done if s.error or s.status != 200]
    check(not bad, "%s: %d of %d requests failed, e.g. %s" % (what, len(bad), len(done), bad[:5]))
    check(not load.lost, "%s: reads missed acknowledged keys: %s" % (what, load.lost[:3]))


def _two_workers_traffic(t, manager):
    proxy = start_proxy(t, manager, upstream=t.backend_process(), extra={"workers": 2})
    load = SessionLoad(proxy, clients=12, weights=MIX).run_for(3.0)
    _check_clean(load, "2 workers, %s store" % manager)
    acked = load.verify_acked(what="sessions after 2-worker traffic (%s store)" % manager)
    check(acked >= 10, "only %d acknowledged writes" % acked)
    check(load.count(lambda s: s.op == "regenerate") and load.count(lambda s: s.op == "destroy"),
          "the mix ran no regenerate or no destroy: %s" % load.summary())


def test_two_workers_concurrent_sessions_memory_store(t): _two_workers_traffic(t, "memory")
def test_two_workers_concurrent_sessions_file_store(t): _two_workers_traffic(t, "file")
def test_two_workers_concurrent_sessions_redis_store(t): _two_workers_traffic(t, "redis")


def _reload_during_traffic(t, manager):
    """Five SIGHUPs 0.3 s apart while 12 clients run; each reload changes
    log.level, so every one is a real swap of the config and of each
    worker's session step (and, for Redis, its connection)."""
    proxy = start_proxy(t, manager, upstream=t.backend_process(), extra={"workers": 2})
    load = SessionLoad(proxy, clients=12, weights=MIX).start()
    time.sleep(0.5)
    for i in range(5):
        reload_proxy(proxy, {"log": {"level": "debug" if i % 2 == 0 else "info"}})
        time.sleep(0.3)
    time.sleep(0.5)
    load.stop()
    check_eq(proxy.returncode, None, "sessiond exit status after reloads under traffic (want: running)")
    check("configuration reloaded" in proxy.stderr_text(), "no reload was logged")
    _check_clean(load, "reloads during traffic (%s store)" % manager)
    load.verify_acked(what="sessions after reloads during traffic (%s store)" % manager)


def test_reload_during_traffic_memory_store(t): _reload_during_traffic(t, "memory")
def test_reload_during_traffic_file_store(t): _reload_during_traffic(t, "file")
def test_reload_during_traffic_redis_store(t): _reload_during_traffic(t, "redis")


def _shutdown_during_traffic(t, manager):
    """SIGTERM while 12 clients run: sessiond exits 0 well before the
    shutdown timeout, and every request got either a whole response or a
    connection closed (or refused) before any byte of one: never a torn
    response."""
    proxy = start_proxy(t, manager, upstream=t.backend_process(),
                        extra={"workers": 2, "timeouts": {"shutdown": "5s"}})
    load = SessionLoad(proxy, clients=12, weights=MIX).start()
    time.sleep(1.0)
    t0 = time.monotonic()
    proxy.signal(signal.SIGTERM)
    rc = proxy.wait(10 * SLOW)
    took = time.monotonic() - t0
    load.stop()
    check_eq(rc, 0, "exit status after SIGTERM under traffic")
    check(took < 5.0, "exit %.1fs after SIGTERM: the in-flight requests are short, the 5 s shutdown timeout "
          "should not be reached" % took)
    done = load.completed()
    before = [s for s in done if s.t1 < t0]
    check(len(before) >= 20, "only %d requests before the SIGTERM" % len(before))
    bad = [s for s in before if s.error or s.status != 200]
    check(not bad, "requests before the SIGTERM failed: %s" % bad[:5])
    torn = [s for s in done if s.error and not _clean_refusal(s.error)]
    check(not torn, "requests torn by the shutdown: %s" % torn[:5])
    check(not load.lost, "reads missed acknowledged keys: %s" % load.lost[:3])


def _clean_refusal(error):
    return (error.startswith(ConnectionClosed.__name__ + ": connection closed before a response")
            or error.startswith("ConnectionRefusedError") or error.startswith("ConnectionResetError"))


def test_shutdown_during_traffic_memory_store(t): _shutdown_during_traffic(t, "memory")
def test_shutdown_during_traffic_redis_store(t): _shutdown_during_traffic(t, "redis")
