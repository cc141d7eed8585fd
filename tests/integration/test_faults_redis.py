"""Redis failures under load (docs/CONFIGURATION.md, redis.timeout;
docs/HEADER-PROTOCOL.md, Store failures: redis.timeout bounds connect and every
command; fail_closed answers 503, fail_open carries on with no session; "the
response to the client is sent only after the store has
acknowledged the write").

Each test runs a SessionLoad (keep-alive clients doing session reads and
writes) against a 2-worker sessiond while Redis is SIGKILLed and restarted,
frozen with DEBUG SLEEP, or replaced by a listener that never answers. They
check what clients saw during the fault, how soon full service returns, that
no acknowledged write was lost, and that sessiond's fds return to where they
were before the traffic.

Each runs three times: with the Redis at redis.url, with the Redis named by a
sentinel (redis.sentinel; no replica, so it stays the master through the
fault), and as a one-node Redis Cluster (redis.cluster). The silent listener
stands in for the Redis, for the sentinel, and for the cluster's seed.
"""

import time

from fault_util import (FaultRedis, SessionLoad, SilentListener, echo_session, settle_fd_baseline,
                        wait_fds_at_most)
from harness import SLOW, check, check_eq, check_error_response, wait_until
from session_util import COOKIE_NAME, instructions_target, session_set_cookies, set_header, start_proxy
from test_ops_support import admin_get, admin_overrides

IDLE = 2.0            # timeouts.idle: pooled upstream connections close this long after use
RECOVERY = 2.0        # full service this soon after Redis accepts connections again
FD_SLACK = 2


MODES = ("standalone", "sentinel", "cluster")


def _proxy(t, redis, on_error, timeout="1s", workers=2):
    backend = t.backend_process()
    section = dict(redis.redis_overrides(), timeout=timeout, on_error=on_error)
    proxy = start_proxy(t, "redis", redis=redis, upstream=backend,
                        extra={"workers": workers, "redis": section, "timeouts": {"idle": "%ds" % IDLE}})
    return proxy


def _probe_write_read(proxy, n):
    """A fresh session: write {"probe": n} then read it back. True on success."""
    try:
        resp = proxy.request("GET", instructions_target([set_header({"probe": n})]), timeout=5)
        cookies = session_set_cookies(resp)
        if resp.status != 200 or not cookies or cookies[0].clears:
            return False
        resp = proxy.request("GET", "/echo", [("Cookie", "%s=%s" % (COOKIE_NAME, cookies[0].value))], timeout=5)
        if resp.status != 200:
            return False
        status, data = echo_session(resp)
        return status == "active" and data == {"probe": n}
    except OSError:
        return False


def _time_to_service(proxy, since, limit):
    """Seconds from `since` to the first successful probe write+read (polled),
    or fails after `limit` seconds."""
    n = 0
    while True:
        n += 1
        if _probe_write_read(proxy, n):
            return time.monotonic() - since
        took = time.monotonic() - since
        check(took < limit, "no successful session write+read within %.1fs of Redis accepting connections"
              % limit)
        time.sleep(0.01)


def _check_no_client_errors(load, what):
    errors = [s for s in load.completed() if s.error]
    check(not errors, "%s: %d requests failed without a response, e.g. %s" % (what, len(errors), errors[:5]))


def _check_full_service_after(load, since, what):
    after = [s for s in load.completed() if s.t0 >= since]
    check(len(after) >= 10, "%s: only %d requests after %.1fs (load too slow to judge)" % (what, len(after), since))
    bad = [s for s in after if s.status != 200]
    check(not bad, "%s: %d of %d requests failed, e.g. %s" % (what, len(bad), len(after), bad[:5]))


def _check_outage_window(load, t0, t1, want_status, what):
    """Every request that started after t0 and ended before t1 and touched
    the store (had a cookie, or wrote) got want_status; returns them."""
    window = [s for s in load.between(t0, t1) if s.had_cookie or s.op != "read"]
    check(len(window) >= 5, "%s: only %d store requests during the outage (%s)" % (what, len(window),
                                                                                   load.summary()))
    bad = [s for s in window if s.status != want_status]
    check(not bad, "%s: %d of %d requests during the outage did not get %d: %s"
          % (what, len(bad), len(window), want_status, bad[:5]))
    return window


def _check_latency(samples, limit, what):
    slow = sorted((s for s in samples if s.elapsed > limit), key=lambda s: -s.elapsed)
    check(not slow, "%s: %d of %d requests took longer than %.2fs: %s"
          % (what, len(slow), len(samples), limit, ["%s %.2fs" % (s.op, s.elapsed) for s in slow[:8]]))


def _crash_redis_under(load, redis, proxy):
    """With `load` running: 1.5 s of traffic, SIGKILL Redis, 1.5 s of outage,
    restart it, wait for service, 1 s more past the recovery bound, stop the
    load. Returns (killed_at, restarting_at, seconds from Redis readiness to
    the first successful session write and read)."""
    time.sleep(1.5)
    killed_at = time.monotonic()
    redis.stop()
    time.sleep(1.5)
    restarting_at = time.monotonic()
    redis.start()
    recovery = _time_to_service(proxy, redis.ready_at, 10.0)
    time.sleep(RECOVERY + 1.0)
    load.stop()
    return killed_at, restarting_at, recovery


# ---------------------------------------------------------------------------

def _sigkill_fail_closed(t, mode):
    redis = FaultRedis(t, persistent=True, mode=mode).start()
    proxy = _proxy(t, redis, "fail_closed")
    fd_base = settle_fd_baseline(proxy)
    load = SessionLoad(proxy, clients=12).start()
    killed_at, restarting_at, recovery = _crash_redis_under(load, redis, proxy)

    check_eq(proxy.returncode, None, "sessiond exit status after a Redis crash under load (want: running)")
    _check_no_client_errors(load, "Redis SIGKILL under load")
    check(not load.lost, "reads missed acknowledged keys: %s" % load.lost[:3])
    window = _check_outage_window(load, killed_at + 0.05, restarting_at, 503, "fail_closed, Redis down")
    check_error_response(window[0].resp, 503)
    _check_latency(window, 1.0, "503s while Redis is down")
    check(recovery <= RECOVERY, "first successful session write+read %.2fs after Redis accepted "
          "connections again, want <= %.1fs" % (recovery, RECOVERY))
    _check_full_service_after(load, redis.ready_at + RECOVERY, "requests %.0fs after Redis returned" % RECOVERY)
    acked = load.verify_acked(what="after a Redis SIGKILL and restart with appendfsync always")
    print("recovery %.3fs after Redis readiness; %d acknowledged writes verified; %s"
          % (recovery, acked, load.summary()))
    check(acked >= 50, "only %d acknowledged writes: the load was too light to prove anything" % acked)
    wait_fds_at_most(proxy, fd_base + FD_SLACK, IDLE + 5 * SLOW, "fds after the Redis crash and the load")


def _sigkill_fail_open(t, mode):
    redis = FaultRedis(t, persistent=True, mode=mode).start()
    proxy = _proxy(t, redis, "fail_open")
    fd_base = settle_fd_baseline(proxy)
    # fail_open acknowledges writes it had to drop: no read-your-writes check.
    load = SessionLoad(proxy, clients=12, check_reads=False).start()
    killed_at, restarting_at, recovery = _crash_redis_under(load, redis, proxy)

    print("recovery %.3fs after Redis readiness; %s" % (recovery, load.summary()))
    check_eq(proxy.returncode, None, "sessiond exit status after a Redis crash under load (want: running)")
    _check_no_client_errors(load, "Redis SIGKILL under load")
    window = _check_outage_window(load, killed_at + 0.05, restarting_at, 200, "fail_open, Redis down")
    reads = [s for s in window if s.op == "read"]
    check(reads, "no session reads during the outage")
    wrong = [s for s in reads if s.session_status != "none"]
    check(not wrong, "reads with a cookie during the outage must reach the backend with status none: %s"
          % wrong[:5])
    _check_latency(window, 1.0, "fail_open answers while Redis is down")
    check(recovery <= RECOVERY, "first successful session write+read %.2fs after Redis accepted "
          "connections again, want <= %.1fs" % (recovery, RECOVERY))
    _check_full_service_after(load, redis.ready_at + RECOVERY, "requests %.0fs after Redis returned" % RECOVERY)
    recovered = [s for s in load.completed() if s.t0 >= redis.ready_at + RECOVERY and s.op == "read"
                 and s.had_cookie]
    check(recovered and all(s.session_status == "active" for s in recovered),
          "reads with a cookie after recovery should see active sessions: %s"
          % [s for s in recovered if s.session_status != "active"][:5])
    wait_fds_at_most(proxy, fd_base + FD_SLACK, IDLE + 5 * SLOW, "fds after the Redis crash and the load")


def _hang_under_load(t, on_error, mode):
    """Redis frozen by DEBUG SLEEP 5 while 12 clients run; redis.timeout 500ms."""
    redis = FaultRedis(t, persistent=False, mode=mode).start()
    proxy = _proxy(t, redis, on_error, timeout="500ms")
    fd_base = settle_fd_baseline(proxy)
    load = SessionLoad(proxy, clients=12, check_reads=(on_error == "fail_closed")).start()
    time.sleep(1.0)

    sleeper, hung_at = redis.hang(5)
    sleeper.join(15)
    check(not sleeper.is_alive(), "DEBUG SLEEP did not return")
    check_eq(sleeper.reply(), b"+OK\r\n", "reply to DEBUG SLEEP 5")
    woke_at = time.monotonic()  # a bound from above: the join can return late
    time.sleep(RECOVERY + 1.0)
    load.stop()

    check_eq(proxy.returncode, None, "sessiond exit status after a Redis hang under load (want: running)")
    _check_no_client_errors(load, "Redis hung under load")
    during = [s for s in load.completed() if s.t1 >= hung_at and s.t0 <= woke_at]
    print("%d requests during the hang, slowest %.3fs; %s"
          % (len(during), max([s.elapsed for s in during] or [0]), load.summary(during)))
    _check_latency(during, 0.5 + 0.5 * SLOW, "requests while Redis hung (redis.timeout 500ms)")
    want = 503 if on_error == "fail_closed" else 200
    # From one timeout into the hang, every store request fails over.
    # Until Redis surely still slept: under ThreadSanitizer the join above
    # returned some 0.3 s after Redis woke and served a write.
    _check_outage_window(load, hung_at + 0.6, min(woke_at, sleeper.wakes_no_earlier_than), want,
                         "%s, Redis hung" % on_error)
    _check_full_service_after(load, woke_at + RECOVERY, "requests %.0fs after Redis woke up" % RECOVERY)
    if on_error == "fail_closed":
        check(not load.lost, "reads missed acknowledged keys: %s" % load.lost[:3])
        load.verify_acked(what="after a Redis hang")
    wait_fds_at_most(proxy, fd_base + FD_SLACK, IDLE + 5 * SLOW, "fds after the Redis hang and the load")


def _silent_handshake(t, mode):
    """Only sessiond's timer ends a handshake that a silent server never answers."""
    silent = SilentListener(t)

    class Silent:
        url = "redis://127.0.0.1:%d/0" % silent.port

        @staticmethod
        def redis_overrides():
            if mode == "sentinel":
                return {"url": "redis://127.0.0.1/0",
                        "sentinel": {"master_name": "silent", "addresses": ["127.0.0.1:%d" % silent.port]}}
            if mode == "cluster":
                return {"url": "redis://127.0.0.1/0", "cluster": {"seeds": ["127.0.0.1:%d" % silent.port]}}
            return {"url": Silent.url}

    proxy = _proxy(t, Silent, "fail_closed", timeout="500ms", workers=1)
    fd_base = settle_fd_baseline(proxy)
    load = SessionLoad(proxy, clients=8, weights={"write": 1}).start()
    time.sleep(3.0)
    load.stop()
    plain = proxy.request("GET", "/echo?no-session", timeout=5)

    check_eq(proxy.returncode, None, "sessiond exit status with a silent Redis (want: running)")
    _check_no_client_errors(load, "silent Redis")
    samples = load.completed()
    check(len(samples) >= 16, "only %d writes in 3 s: %s" % (len(samples), load.summary()))
    bad = [s for s in samples if s.status != 503]
    check(not bad, "writes with a silent Redis must get 503: %s" % bad[:5])
    check_error_response(samples[0].resp, 503)
    _check_latency(samples, 0.5 + 0.5 * SLOW, "503s with a silent Redis (redis.timeout 500ms)")
    check_eq(plain.status, 200, "a request that needs no session with a silent Redis")
    check(len(silent.accepted) >= 2, "sessiond connected to the silent Redis %d times in 3 s: it should "
          "give up on each handshake after 500ms and try again" % len(silent.accepted))
    check(silent.open_count() <= 1, "%d of %d connections to the silent Redis are still open: timed-out "
          "handshakes must be closed" % (silent.open_count(), len(silent.accepted)))
    wait_fds_at_most(proxy, fd_base + FD_SLACK, IDLE + 5 * SLOW, "fds after 3 s of timed-out handshakes")


# One test per fault and mode. Timing bounds (1 s answers, 2 s recovery) are
# judged on a quiet machine: alone.

def test_redis_sigkill_under_load_fail_closed_503_then_recovers_losing_no_acknowledged_write(t):
    _sigkill_fail_closed(t, "standalone")


def test_sentinel_sigkill_under_load_fail_closed_503_then_recovers_losing_no_acknowledged_write(t):
    _sigkill_fail_closed(t, "sentinel")


def test_cluster_sigkill_under_load_fail_closed_503_then_recovers_losing_no_acknowledged_write(t):
    _sigkill_fail_closed(t, "cluster")


def test_redis_sigkill_under_load_fail_open_serves_without_session_then_recovers(t):
    _sigkill_fail_open(t, "standalone")


def test_sentinel_sigkill_under_load_fail_open_serves_without_session_then_recovers(t):
    _sigkill_fail_open(t, "sentinel")


def test_cluster_sigkill_under_load_fail_open_serves_without_session_then_recovers(t):
    _sigkill_fail_open(t, "cluster")


def test_redis_debug_sleep_under_load_fail_closed_answers_within_timeout_then_recovers(t):
    _hang_under_load(t, "fail_closed", "standalone")


def test_sentinel_debug_sleep_under_load_fail_closed_answers_within_timeout_then_recovers(t):
    _hang_under_load(t, "fail_closed", "sentinel")


def test_cluster_debug_sleep_under_load_fail_closed_answers_within_timeout_then_recovers(t):
    _hang_under_load(t, "fail_closed", "cluster")


def test_redis_debug_sleep_under_load_fail_open_answers_within_timeout_then_recovers(t):
    _hang_under_load(t, "fail_open", "standalone")


def test_sentinel_debug_sleep_under_load_fail_open_answers_within_timeout_then_recovers(t):
    _hang_under_load(t, "fail_open", "sentinel")


def test_cluster_debug_sleep_under_load_fail_open_answers_within_timeout_then_recovers(t):
    _hang_under_load(t, "fail_open", "cluster")


def test_redis_that_accepts_but_never_answers_the_handshake_is_503_within_timeout(t):
    _silent_handshake(t, "standalone")


def test_sentinel_that_accepts_but_never_answers_is_503_within_timeout(t):
    _silent_handshake(t, "sentinel")


def test_cluster_seed_that_accepts_but_never_answers_is_503_within_timeout(t):
    _silent_handshake(t, "cluster")


test_redis_sigkill_under_load_fail_closed_503_then_recovers_losing_no_acknowledged_write.exclusive = True
test_redis_sigkill_under_load_fail_closed_503_then_recovers_losing_no_acknowledged_write.sanitizers = False
test_redis_sigkill_under_load_fail_closed_503_then_recovers_losing_no_acknowledged_write.timeout = 90
test_sentinel_sigkill_under_load_fail_closed_503_then_recovers_losing_no_acknowledged_write.exclusive = True
test_sentinel_sigkill_under_load_fail_closed_503_then_recovers_losing_no_acknowledged_write.sanitizers = False
test_sentinel_sigkill_under_load_fail_closed_503_then_recovers_losing_no_acknowledged_write.timeout = 90
test_cluster_sigkill_under_load_fail_closed_503_then_recovers_losing_no_acknowledged_write.exclusive = True
test_cluster_sigkill_under_load_fail_closed_503_then_recovers_losing_no_acknowledged_write.sanitizers = False
test_cluster_sigkill_under_load_fail_closed_503_then_recovers_losing_no_acknowledged_write.timeout = 90
test_redis_sigkill_under_load_fail_open_serves_without_session_then_recovers.exclusive = True
test_redis_sigkill_under_load_fail_open_serves_without_session_then_recovers.sanitizers = False
test_redis_sigkill_under_load_fail_open_serves_without_session_then_recovers.timeout = 90
test_sentinel_sigkill_under_load_fail_open_serves_without_session_then_recovers.exclusive = True
test_sentinel_sigkill_under_load_fail_open_serves_without_session_then_recovers.sanitizers = False
test_sentinel_sigkill_under_load_fail_open_serves_without_session_then_recovers.timeout = 90
test_cluster_sigkill_under_load_fail_open_serves_without_session_then_recovers.exclusive = True
test_cluster_sigkill_under_load_fail_open_serves_without_session_then_recovers.sanitizers = False
test_cluster_sigkill_under_load_fail_open_serves_without_session_then_recovers.timeout = 90
test_redis_debug_sleep_under_load_fail_closed_answers_within_timeout_then_recovers.exclusive = True
test_redis_debug_sleep_under_load_fail_closed_answers_within_timeout_then_recovers.sanitizers = False
test_redis_debug_sleep_under_load_fail_closed_answers_within_timeout_then_recovers.timeout = 90
test_sentinel_debug_sleep_under_load_fail_closed_answers_within_timeout_then_recovers.exclusive = True
test_sentinel_debug_sleep_under_load_fail_closed_answers_within_timeout_then_recovers.sanitizers = False
test_sentinel_debug_sleep_under_load_fail_closed_answers_within_timeout_then_recovers.timeout = 90
test_cluster_debug_sleep_under_load_fail_closed_answers_within_timeout_then_recovers.exclusive = True
test_cluster_debug_sleep_under_load_fail_closed_answers_within_timeout_then_recovers.sanitizers = False
test_cluster_debug_sleep_under_load_fail_closed_answers_within_timeout_then_recovers.timeout = 90
test_redis_debug_sleep_under_load_fail_open_answers_within_timeout_then_recovers.exclusive = True
test_redis_debug_sleep_under_load_fail_open_answers_within_timeout_then_recovers.sanitizers = False
test_redis_debug_sleep_under_load_fail_open_answers_within_timeout_then_recovers.timeout = 90
test_sentinel_debug_sleep_under_load_fail_open_answers_within_timeout_then_recovers.exclusive = True
test_sentinel_debug_sleep_under_load_fail_open_answers_within_timeout_then_recovers.sanitizers = False
test_sentinel_debug_sleep_under_load_fail_open_answers_within_timeout_then_recovers.timeout = 90
test_cluster_debug_sleep_under_load_fail_open_answers_within_timeout_then_recovers.exclusive = True
test_cluster_debug_sleep_under_load_fail_open_answers_within_timeout_then_recovers.sanitizers = False
test_cluster_debug_sleep_under_load_fail_open_answers_within_timeout_then_recovers.timeout = 90
test_redis_that_accepts_but_never_answers_the_handshake_is_503_within_timeout.exclusive = True
test_redis_that_accepts_but_never_answers_the_handshake_is_503_within_timeout.sanitizers = False
test_redis_that_accepts_but_never_answers_the_handshake_is_503_within_timeout.timeout = 90
test_sentinel_that_accepts_but_never_answers_is_503_within_timeout.exclusive = True
test_sentinel_that_accepts_but_never_answers_is_503_within_timeout.sanitizers = False
test_sentinel_that_accepts_but_never_answers_is_503_within_timeout.timeout = 90
test_cluster_seed_that_accepts_but_never_answers_is_503_within_timeout.exclusive = True
test_cluster_seed_that_accepts_but_never_answers_is_503_within_timeout.sanitizers = False
test_cluster_seed_that_accepts_but_never_answers_is_503_within_timeout.timeout = 90


def test_redis_killed_first_503_is_followed_by_readyz_503_and_first_success_by_readyz_200(t):
    """docs/OPERATIONS.md, Readiness: a store failure seen by a request marks
    the worker not ready before the request is answered, and the next
    successful store call marks it ready again, without waiting for the
    once-a-second ping. One worker, so /readyz is that worker's state. Two
    rounds: a ping that happens to fall between the kill and the request
    could hide a missing fix once, hardly twice."""
    redis = FaultRedis(t, persistent=True).start()
    overrides, aport = admin_overrides()
    proxy = start_proxy(t, "redis", redis=redis,
                        extra={"workers": 1, "admin": overrides["admin"],
                               "redis": {"timeout": "1s", "on_error": "fail_closed"}})
    readyz = lambda: admin_get(aport, "/readyz").status
    wait_until(lambda: readyz() == 200, 5 * SLOW, "/readyz 200 with Redis up")
    resp = proxy.request("GET", instructions_target([set_header({"user": "ada"})]), timeout=5)
    check_eq(resp.status, 200, "create a session")
    jar = [("Cookie", "%s=%s" % (COOKIE_NAME, session_set_cookies(resp)[0].value))]

    for round_ in range(2):
        check_eq(proxy.request("GET", "/echo", jar, timeout=5).status, 200, "round %d: read with Redis up" % round_)
        redis.stop()
        mark = len(proxy.stderr_text())
        statuses = []
        deadline = time.monotonic() + 3 * SLOW
        while True:
            rid = "readyz-%d-%d" % (round_, len(statuses))
            resp = proxy.request("GET", "/echo", jar + [("X-Request-Id", rid)], timeout=5)
            statuses.append(resp.status)
            if resp.status == 503:
                break
            check(time.monotonic() < deadline, "round %d: no 503 with Redis killed: %r" % (round_, statuses))
        check_eq(readyz(), 503, "round %d: /readyz right after the first 503 (statuses %r)" % (round_, statuses))
        failed = [line for line in proxy.stderr_text()[mark:].splitlines() if "session store load failed" in line]
        check(failed and ('rid=%s, "GET /echo HTTP/1.1"' % rid) in failed[-1],
              "round %d: the store failure line does not name the request: %r" % (round_, failed))

        redis.start()
        statuses = []
        deadline = time.monotonic() + 5 * SLOW
        while True:
            status = proxy.request("GET", "/echo", jar, timeout=5).status
            statuses.append(status)
            if status == 200:
                break
            check(time.monotonic() < deadline, "round %d: no 200 after Redis returned: %r" % (round_, statuses))
        check_eq(readyz(), 200, "round %d: /readyz right after the first success (statuses %r)" % (round_, statuses))
