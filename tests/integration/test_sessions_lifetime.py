"""Session lifetime on every manager (docs/HEADER-PROTOCOL.md, Session lifetime;
docs/CONFIGURATION.md, session.session_expiration_time): a session expires
session_expiration_time after its creation, writes do not extend it, an
expired cookie reports `expired` and is cleared; with
session_refresh_each_request every request slides the expiry.

These tests sleep on purpose: expiry is the one thing that needs real time."""

import email.utils
import time

from harness import check, check_eq
from session_util import (Browser, SessionView, check_cleared, check_session, one_session_set_cookie, set_header,
                          start_proxy)


def _sleep_until(when):
    delay = when - time.time()
    if delay > 0:
        time.sleep(delay)


def _expiry(t, manager, permanent=True):
    # 3 s, not 2: expiry is counted in whole seconds from the current one, so
    # a session may live up to a second less than configured; the write at
    # +1 s must still land inside the lifetime on a loaded machine.
    proxy = start_proxy(t, manager, session={"session_expiration_time": "3s", "session_permanent": permanent})
    b = Browser(proxy)
    t0 = time.time()
    created = one_session_set_cookie(b.write(set_header({"a": 1})), "the creating response")
    if permanent:
        check_eq(created.attrs.get("max-age"), "3", "Max-Age for a 3s lifetime: %s" % created.raw)
    else:
        # A browser-session cookie: the browser keeps it, the server must refuse it.
        check("max-age" not in created.attrs, "Max-Age on a non-permanent cookie: %s" % created.raw)
    first_cookie = b.cookie
    view = b.echo()
    check_session(view, "active", {"a": 1}, "right after creation")
    check(t0 <= view.expires <= t0 + 4, "X-Session-Expires %d is not about now + 3 s" % view.expires)

    # A write one second in does not extend the lifetime.
    _sleep_until(t0 + 1.0)
    check_eq(b.write(set_header({"b": 2})).status, 200, "status of a write at +1 s")
    later = b.echo()
    check_session(later, "active", {"a": 1, "b": 2}, "at +1 s")
    check_eq(later.expires, view.expires, "X-Session-Expires after a write (writes do not extend it)")

    _sleep_until(max(t0 + 4.0, view.expires + 0.2))
    for what, cookie in (("the first cookie", first_cookie), ("the latest cookie", b.cookie)):
        probe = Browser(proxy, cookie=cookie)
        resp = probe.request("/echo")
        check_session(SessionView(resp), "expired", {}, "%s after the session expired" % what)
        check_cleared(resp, "%s after the session expired" % what)

    # A write with the expired cookie starts a new session without the old data.
    resp = b.write(set_header({"c": 3}))
    issued = one_session_set_cookie(resp, "a write with an expired cookie")
    check(not issued.clears, "the write with an expired cookie did not get a new session: %s" % issued.raw)
    check_session(b.echo(), "active", {"c": 3}, "the session created after expiry")


def test_expiry_cookie(t): _expiry(t, "cookie")
def test_expiry_memory(t): _expiry(t, "memory")
def test_expiry_file(t): _expiry(t, "file")
def test_expiry_redis(t): _expiry(t, "redis")
def test_expiry_enforced_without_max_age_cookie(t): _expiry(t, "cookie", permanent=False)
def test_expiry_enforced_without_max_age_memory(t): _expiry(t, "memory", permanent=False)
def test_expiry_enforced_without_max_age_file(t): _expiry(t, "file", permanent=False)
def test_expiry_enforced_without_max_age_redis(t): _expiry(t, "redis", permanent=False)


def _sliding_refresh(t, manager):
    proxy = start_proxy(t, manager, session={"session_expiration_time": "3s", "session_refresh_each_request": True})
    b = Browser(proxy)
    t0 = time.time()
    b.set({"user": "ada"})
    first_expiry = None
    last_expires_attr = None
    data = {"user": "ada"}
    for i in range(1, 6):
        _sleep_until(t0 + i)
        # Reads and writes alternate: both must slide the expiry.
        if i % 2:
            resp = b.request("/echo")
            view = SessionView(resp)
            check_session(view, "active", data, "read at +%d s with sliding expiry" % i)
            first_expiry = first_expiry or view.expires
        else:
            data["n"] = i
            resp = b.write(set_header({"n": i}))
            check_eq(resp.status, 200, "status of the write at +%d s" % i)
        c = one_session_set_cookie(resp, "request at +%d s with sliding expiry" % i)
        check(not c.clears, "request at +%d s: the cookie was cleared: %s" % (i, c.raw))
        check_eq(c.attrs.get("max-age"), "3", "request at +%d s: Max-Age" % i)
        expires_attr = email.utils.parsedate_to_datetime(c.attrs["expires"]).timestamp()
        # Expires follows each request: its time plus the lifetime, to the
        # second (Expires has one-second resolution; a slow machine may send
        # two requests within one second, so only "not earlier" between them).
        now = time.time()
        check(now + 3 - 2 <= expires_attr <= now + 3 + 1,
              "request at +%d s: Expires %r is not the request's time plus 3 s" % (i, c.attrs["expires"]))
        if last_expires_attr is not None:
            check(expires_attr >= last_expires_attr, "request at +%d s: Expires %r is earlier than before"
                  % (i, c.attrs["expires"]))
        last_expires_attr = expires_attr
    check(time.time() > first_expiry + 1, "the loop did not outlive the original expiry")
    last = b.echo()
    check_session(last, "active", data, "past the original expiry")
    check(last.expires > first_expiry + 1, "X-Session-Expires did not move: %d, first %d"
          % (last.expires, first_expiry))

    # Once requests stop, the session does expire.
    stale = b.cookie
    _sleep_until(time.time() + 3.3)
    probe = Browser(proxy, cookie=stale)
    resp = probe.request("/echo")
    check_session(SessionView(resp), "expired", {}, "3.3 s after the last request")
    check_cleared(resp, "an expired sliding session")


def test_sliding_refresh_cookie(t): _sliding_refresh(t, "cookie")
def test_sliding_refresh_memory(t): _sliding_refresh(t, "memory")
def test_sliding_refresh_file(t): _sliding_refresh(t, "file")
def test_sliding_refresh_redis(t): _sliding_refresh(t, "redis")
