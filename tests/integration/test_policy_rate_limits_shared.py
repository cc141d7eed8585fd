"""Shared rate limits (docs/HTTP.md, Shared rate limits): `shared: true`
keeps a limit's buckets in the Redis store, so several sessiond instances
enforce one limit.

Two sessiond instances (2 workers each) on one redis-server, under 8
concurrent clients spread over both: a shared limit lets through at most
burst + rate * elapsed in all, where a limit that is not shared lets each
instance count on its own. A session's shared bucket follows it from one
instance to the other. The buckets' keys carry no client address and expire.
With Redis down, redis.on_error decides: fail_closed answers 503,
fail_open lets the request through and counts the failure.
"""

import re
import threading
import time

from harness import check, check_eq, wait_until
from session_util import Browser, RedisServer, make_session, start_proxy
from test_ops_support import admin_overrides, scrape


def _pair(t, limits, on_error="fail_closed"):
    """Two sessiond instances with `limits` on one Redis."""
    redis = RedisServer(t).start()
    extra = {"rate_limits": limits, "workers": 2, "redis": {"on_error": on_error}}
    a = start_proxy(t, "redis", redis=redis, extra=extra, name="sessiond-a",
                    session={"session_cookie_secure": False})
    b = start_proxy(t, "redis", redis=redis, extra=extra, name="sessiond-b",
                    session={"session_cookie_secure": False})
    return a, b, redis


def _concurrent(proxies, clients, each, target="/echo"):
    """`clients` threads, on the proxies in turn, each sending `each` requests
    on its own keep-alive connection at once. Returns (responses, seconds from
    the first request sent to the last answer)."""
    results, errors = [], []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def run(proxy):
        try:
            with proxy.connect() as conn:
                start.wait(10)
                for _ in range(each):
                    resp = conn.request("GET", target)
                    with lock:
                        results.append(resp)
                    if any(v.lower() == "close" for v in resp.header_values("Connection")):
                        break
        except Exception as e:  # reported below, with the others
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(proxies[i % len(proxies)],)) for i in range(clients)]
    for th in threads:
        th.start()
    start.wait(10)
    t0 = time.monotonic()
    for th in threads:
        th.join(60)
    elapsed = time.monotonic() - t0
    check(not errors, "client errors: %r" % errors[:3])
    return results, elapsed


def _statuses(responses):
    ok = sum(r.status == 200 for r in responses)
    limited = sum(r.status == 429 for r in responses)
    check_eq(ok + limited, len(responses), "every answer a 200 or a 429: %r" %
             sorted(set(r.status for r in responses)))
    return ok, limited


def test_shared_limit_holds_across_two_instances_under_8_concurrent_clients(t):
    a, b, redis = _pair(t, [{"key": "client_address", "rate": "20/1h", "burst": 20, "shared": True}])
    responses, _ = _concurrent([a, b], clients=8, each=10)
    check_eq(len(responses), 80, "responses")
    ok, limited = _statuses(responses)
    # One token per 180 s: nothing refills during the test.
    check_eq(ok, 20, "requests let through over both instances (the burst, once)")
    check_eq(limited, 60, "requests refused")
    for r in responses:
        if r.status == 429:
            check_eq(r.body, b"Too Many Requests\n", "429 body")
            retry = int(r.header("Retry-After"))
            check(170 <= retry <= 180, "Retry-After %d: one token per 180 s" % retry)
    check_eq(len(a.backend.requests("/echo")) + len(b.backend.requests("/echo")), 20,
             "requests that reached the backends")
    # The bucket's key: the prefix, rate: and a hash tag of 32 hex digits; no
    # client address; a TTL (idle buckets vanish).
    keys = [k for k in redis.keys() if k.startswith("sessiond:rate:")]
    check_eq(len(keys), 1, "one bucket for the one client address: %r" % keys)
    check(re.match(r"^sessiond:rate:\{[0-9a-f]{32}\}$", keys[0]), "bucket key %r" % keys[0])
    check("127.0.0.1" not in keys[0], "no address in the key")
    ttl = redis.command("PTTL", keys[0])
    check(0 < ttl <= 3600 * 1000 + 1, "the bucket expires once full again (PTTL %r)" % ttl)


def test_shared_limit_refills_within_burst_plus_rate_times_elapsed(t):
    burst, rate = 10, 40
    a, b, _ = _pair(t, [{"key": "client_address", "rate": "%d/1s" % rate, "burst": burst, "shared": True}])
    responses, elapsed = _concurrent([a, b], clients=8, each=25)
    ok, _ = _statuses(responses)
    bound = burst + rate * elapsed
    check(ok <= bound, "%d requests let through in %.2f s over both instances; the bound is %.1f" % (ok, elapsed, bound))
    check(ok >= burst, "%d let through: at least the burst (%d)" % (ok, burst))


def test_a_limit_that_is_not_shared_counts_per_instance(t):
    a, b, _ = _pair(t, [{"key": "client_address", "rate": "20/1h", "burst": 20}])
    responses, _ = _concurrent([a, b], clients=8, each=10)
    ok, limited = _statuses(responses)
    check_eq(ok, 40, "requests let through: each instance's own burst")
    check_eq(limited, 40, "requests refused")
    check_eq(len(a.backend.requests("/echo")), 20, "requests through instance A")
    check_eq(len(b.backend.requests("/echo")), 20, "requests through instance B")


def test_a_shared_session_limit_follows_the_session_across_instances(t):
    a, b, _ = _pair(t, [{"key": "session", "rate": "5/1h", "shared": True}])
    on_a = Browser(a)
    make_session(on_a, {"user": "ada"})  # the Set comes without a session; the echo is its 1st request
    on_b = Browser(b, cookie=on_a.cookie)
    for i, browser in enumerate([on_b, on_a, on_b, on_a]):
        check_eq(browser.request("/echo").status, 200, "request %d of the session's 5" % (i + 2))
    for browser, where in ((on_b, "B"), (on_a, "A")):
        resp = browser.request("/echo")
        check_eq(resp.status, 429, "the session's next request, on %s" % where)
        check(int(resp.header("Retry-After")) >= 700, "Retry-After: one token per 720 s")
    other = Browser(b)
    make_session(other, {"user": "eve"})
    check_eq(other.request("/echo").status, 200, "another session has its own bucket")
    check_eq(Browser(a).request("/echo").status, 200, "no session: not limited by a session limit")


def _with_admin(t, on_error):
    redis = RedisServer(t).start()
    overrides, admin_port = admin_overrides({
        "rate_limits": [{"key": "client_address", "rate": "100/1s", "shared": True}],
        "redis": {"on_error": on_error, "timeout": "300ms"}})
    proxy = start_proxy(t, "redis", redis=redis, extra=overrides)
    return proxy, redis, admin_port


def test_redis_down_fail_closed_answers_503(t):
    proxy, redis, admin_port = _with_admin(t, "fail_closed")
    check_eq(proxy.request("GET", "/echo").status, 200, "with Redis up")
    redis.stop()
    resp = proxy.request("GET", "/echo")
    check_eq(resp.status, 503, "a request with Redis down")
    check_eq(resp.body, b"session store unavailable\n", "503 body")
    check_eq(len(proxy.backend.requests("/echo")), 1, "the refused request never reached the backend")
    check(scrape(admin_port).value("sessiond_store_errors_total", op="rate_limit") >= 1,
          "failed takes counted as rate_limit store errors")
    redis.start()
    wait_until(lambda: proxy.request("GET", "/echo").status == 200, 5, "service once Redis is back")


def test_redis_down_fail_open_lets_requests_through_and_counts(t):
    proxy, redis, admin_port = _with_admin(t, "fail_open")
    redis.stop()
    for i in range(3):
        check_eq(proxy.request("GET", "/echo").status, 200, "request %d with Redis down (fail_open)" % i)
    check_eq(len(proxy.backend.requests("/echo")), 3, "requests that reached the backend")
    check(scrape(admin_port).value("sessiond_store_errors_total", op="rate_limit") >= 3,
          "every failed take counted")
