"""Rate limits at the edge (docs/HTTP.md, Rate limits).

A limit holds under 8 concurrent clients, across 2 workers of one process
(the buckets are per process); refusals are 429 with Retry-After and never
reach the backend; a session's bucket follows the session whatever its
connection; a subject's bucket is shared by every session of that user;
paths narrow a limit; a reload starts the buckets afresh.
"""

import threading
import time

from harness import check, check_eq, wait_until
from session_util import Browser, make_session, reload_proxy, start_proxy


def _proxy(t, limits, workers=1, manager="cookie"):
    return start_proxy(t, manager, session={"session_cookie_secure": False},
                       extra={"rate_limits": limits, "workers": workers})


def _concurrent(proxy, clients, each, target="/echo", headers=()):
    """`clients` threads, each sending `each` requests on its own keep-alive
    connection at once; returns every response."""
    results, errors = [], []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def run():
        try:
            with proxy.connect() as conn:
                start.wait(10)
                for _ in range(each):
                    resp = conn.request("GET", target, list(headers))
                    with lock:
                        results.append(resp)
                    if any(v.lower() == "close" for v in resp.header_values("Connection")):
                        break
        except Exception as e:  # reported below, with the others
            errors.append(repr(e))

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    check(not errors, "client errors: %r" % errors[:3])
    return results


def test_client_address_limit_holds_under_8_concurrent_clients_and_2_workers(t):
    proxy = _proxy(t, [{"key": "client_address", "rate": "20/1h", "burst": 20}], workers=2)
    responses = _concurrent(proxy, clients=8, each=10)
    check_eq(len(responses), 80, "responses")
    ok = [r for r in responses if r.status == 200]
    limited = [r for r in responses if r.status == 429]
    check_eq(len(ok), 20, "requests let through (the burst), over both workers")
    check_eq(len(limited), 60, "requests refused")
    for r in limited:
        check_eq(r.body, b"Too Many Requests\n", "429 body")
        retry = int(r.header("Retry-After"))
        check(170 <= retry <= 180, "Retry-After %d: one token per 180 s" % retry)
    check_eq(len(proxy.backend.requests("/echo")), 20, "requests that reached the backend")


def test_session_limit_follows_the_session(t):
    proxy = _proxy(t, [{"key": "session", "rate": "5/1h"}], manager="memory")
    ada, eve = Browser(proxy), Browser(proxy)
    # The Set that creates a session comes without one (not counted); the
    # echo that follows is the session's first request.
    make_session(ada, {"user": "ada"})
    make_session(eve, {"user": "eve"})
    # Four more on new connections each: the session's bucket, not the connection's.
    fresh = Browser(proxy, cookie=ada.cookie, fresh_connections=True)
    for i in range(4):
        check_eq(fresh.request("/echo").status, 200, "request %d of the session's 5" % (i + 2))
    resp = fresh.request("/echo")
    check_eq(resp.status, 429, "the 6th request of the session")
    check(int(resp.header("Retry-After")) >= 1, "Retry-After present")
    check_eq(eve.request("/echo").status, 200, "another session has its own bucket (its 2nd request)")
    check_eq(Browser(proxy).request("/echo").status, 200, "no session: not limited by a session limit")
    # Concurrent requests of one session: exactly what is left of its burst passes.
    eve_headers = [("Cookie", "session_id=" + eve.cookie)]
    responses = _concurrent(proxy, clients=8, each=3, headers=eve_headers)
    check_eq(sum(r.status == 200 for r in responses), 3, "eve's remaining tokens under 8 concurrent clients")
    check_eq(sum(r.status == 429 for r in responses), 21, "eve's refused requests")


def test_subject_limit_is_shared_by_every_session_of_a_user(t):
    """docs/CONFIGURATION.md, rate_limits, key: subject (with session.subject_key)."""
    proxy = start_proxy(t, "redis", session={"session_cookie_secure": False, "subject_key": "user_id"},
                        extra={"rate_limits": [{"key": "subject", "rate": "6/1h"}], "workers": 2})
    laptop, phone = Browser(proxy), Browser(proxy, fresh_connections=True)
    # Each session's first request (the Set) has no session yet and is not counted.
    make_session(laptop, {"user_id": "ada"})   # 1
    make_session(phone, {"user_id": "ada"})    # 2
    for i in range(4):                         # 3 .. 6, from either device
        check_eq((laptop if i % 2 else phone).request("/echo").status, 200, "ada's request %d of 6" % (i + 3))
    for who, b in (("laptop", laptop), ("phone", phone)):
        resp = b.request("/echo")
        check_eq(resp.status, 429, "ada's %s past the subject's 6 requests" % who)
        check(int(resp.header("Retry-After")) >= 1, "Retry-After present")
    grace = Browser(proxy)
    make_session(grace, {"user_id": "grace"})
    check_eq(grace.request("/echo").status, 200, "another user has a bucket of their own")
    anonymous = Browser(proxy)
    make_session(anonymous, {"theme": "dark"})
    for i in range(8):
        check_eq(anonymous.request("/echo").status, 200, "a session without user_id is not limited by it (%d)" % i)
    check_eq(Browser(proxy).request("/echo").status, 200, "no session: not limited by a subject limit")
    check_eq(len(proxy.backend.requests("/echo")), 6 + 2 + 9 + 1,  # ada, grace, anonymous, no session
             "refused requests never reach the backend")


def test_paths_narrow_a_limit(t):
    proxy = _proxy(t, [{"key": "client_address", "rate": "2/1h", "paths": ["/login"]}])
    check_eq(proxy.request("GET", "/login").status, 404, "1st /login (the backend's 404)")
    check_eq(proxy.request("GET", "/LOGIN/").status, 404, "2nd /login, another spelling")
    check_eq(proxy.request("GET", "/x/../login").status, 429, "3rd /login")
    for _ in range(5):
        check_eq(proxy.request("GET", "/echo").status, 200, "other paths are not limited")


def test_json_clients_get_a_json_429_and_a_reload_starts_afresh(t):
    proxy = _proxy(t, [{"key": "client_address", "rate": "1/1h"}])
    check_eq(proxy.request("GET", "/echo").status, 200, "the one request")
    resp = proxy.request("GET", "/echo", [("Accept", "application/json")])
    check_eq(resp.status, 429, "the second")
    check_eq(resp.header("Content-Type"), "application/json", "Content-Type")
    check_eq(resp.json(), {"error": "rate_limited"}, "body")
    reload_proxy(proxy, {"rate_limits": [{"key": "client_address", "rate": "2/1h"}]})
    wait_until(lambda: proxy.request("GET", "/echo").status == 200, 5, "the reloaded limit to let a request through")
    check_eq(proxy.request("GET", "/echo").status, 200, "the second request of the new bucket")
    check_eq(proxy.request("GET", "/echo").status, 429, "the third")
