"""The session cookie (docs/COOKIES.md, Verification; docs/COOKIES.md, Attributes) on every
manager: tampering and
truncation give `invalid` and clear the cookie, the session cookie never
reaches the backend, Set-Cookie attributes follow the config, session_create
lazy/always, and the cookie manager's 4096-byte browser limit."""

import base64
import re
import email.utils
import os
import time

from harness import check, check_eq
from session_util import (COOKIE_NAME, URL_SAFE, Browser, SessionView, check_cleared, check_no_set_cookie,
                          check_rejected, check_session, log_mark, make_session, one_session_set_cookie, set_header,
                          start_proxy)


# ---------------------------------------------------------------------------
# Tampering

def _mutations(value):
    """(description, mutated value): every byte position changed to other
    URL-safe characters, then every truncation and one extension. For a
    base64url character the replacements flip its lowest bit (which, in the
    last character of a group, is where a lax decoder ignores padding bits)
    and its highest bit."""
    out = []
    for i, c in enumerate(value):
        if c in URL_SAFE:
            idx = URL_SAFE.index(c)
            alts = [URL_SAFE[idx ^ 1], URL_SAFE[idx ^ 32]]
        else:
            alts = ["A", "_"]
        for a in alts:
            if a != c:
                out.append(("byte %d %r -> %r" % (i, c, a), value[:i] + a + value[i + 1:]))
    for n in range(1, len(value)):
        out.append(("truncated to %d of %d bytes" % (n, len(value)), value[:n]))
    out.append(("one byte appended", value + "A"))
    out.append(("doubled", value + value))
    return out


def _tampered_cookie_is_invalid(t, manager):
    proxy = start_proxy(t, manager)
    owner = Browser(proxy)
    make_session(owner, {"user": "ada", "admin": False})
    good = owner.cookie
    probe = Browser(proxy)
    failures = []
    mutations = _mutations(good)
    for what, value in mutations:
        probe.cookie = value
        resp = probe.request("/echo")
        view = SessionView(resp)
        cleared = probe.last_set_cookie is not None and probe.last_set_cookie.clears
        if view.status != "invalid" or view.id is not None or view.data_text != "{}" or not cleared:
            failures.append("%s: status %s, id %r, data %r, Set-Cookie %r"
                            % (what, view.status, view.id, view.data_text, resp.header_values("Set-Cookie")))
    check(not failures, "%d of %d tampered cookies were not (invalid, no id, {}, cleared); first ones:\n%s"
          % (len(failures), len(mutations), "\n".join(failures[:10])))

    # The original still works: the loop above changed nothing.
    check_session(owner.echo(), "active", {"user": "ada", "admin": False}, "the untampered cookie")

    # An invalid cookie replaced by a new session: one Set-Cookie, not a clearing one.
    probe.cookie = good[:-1] + URL_SAFE[URL_SAFE.index(good[-1]) ^ 1]
    resp = probe.write(set_header({"fresh": 1}))
    check_eq(resp.status, 200, "status of a Set sent with an invalid cookie")
    issued = one_session_set_cookie(resp, "a Set answering a request with an invalid cookie")
    check(not issued.clears, "the new session's cookie is a clearing one: %s" % issued.raw)
    check_session(probe.echo(), "active", {"fresh": 1}, "the session that replaced an invalid cookie")


def test_tampered_cookie_is_invalid_cookie(t): _tampered_cookie_is_invalid(t, "cookie")
def test_tampered_cookie_is_invalid_memory(t): _tampered_cookie_is_invalid(t, "memory")
def test_tampered_cookie_is_invalid_file(t): _tampered_cookie_is_invalid(t, "file")
def test_tampered_cookie_is_invalid_redis(t): _tampered_cookie_is_invalid(t, "redis")


# ---------------------------------------------------------------------------
# The forwarded Cookie header

def _cookie_pairs(headers):
    pairs = []
    for n, v in headers:
        if n.lower() == "cookie":
            for part in v.split(";"):
                if part.strip():
                    k, _, val = part.strip().partition("=")
                    pairs.append((k, val))
    return pairs


def _session_cookie_not_forwarded(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    make_session(b, {"user": "ada"})
    token = b.cookie

    others = [("theme", "dark"), ("session_id2", "keep-me"), ("xsession_id", "keep-me-too")]
    view = b.echo(other_cookies=others)
    check_session(view, "active", {"user": "ada"}, "session cookie last among others")
    check_eq(_cookie_pairs(view.headers), others, "cookies the backend got")

    # Session cookie in the middle, other cookies spread over two Cookie headers.
    resp = proxy.request("GET", "/echo", [("Cookie", "a=1; %s=%s; b=2" % (COOKIE_NAME, token)), ("Cookie", "c=3")])
    view = SessionView(resp)
    check_session(view, "active", {"user": "ada"}, "session cookie in the middle")
    check_eq(_cookie_pairs(view.headers), [("a", "1"), ("b", "2"), ("c", "3")], "cookies the backend got")

    # Only the session cookie: nothing of it is forwarded.
    resp = proxy.request("GET", "/echo", [("Cookie", "%s=%s" % (COOKIE_NAME, token))])
    view = SessionView(resp)
    check_eq(_cookie_pairs(view.headers), [], "cookies the backend got when only the session cookie was sent")

    # An invalid session cookie is removed as well.
    resp = proxy.request("GET", "/echo", [("Cookie", "x=1; %s=%s" % (COOKIE_NAME, token[:-3]))])
    view = SessionView(resp)
    check_eq(view.status, "invalid", "status with a truncated cookie")
    check_eq(_cookie_pairs(view.headers), [("x", "1")], "cookies the backend got with an invalid session cookie")

    for req in proxy.backend.requests():
        for n, v in req.headers:
            check(token not in v and token[:40] not in v,
                  "the session cookie value reached the backend in %s: %r" % (n, v[:200]))


def test_session_cookie_not_forwarded_cookie(t): _session_cookie_not_forwarded(t, "cookie")
def test_session_cookie_not_forwarded_memory(t): _session_cookie_not_forwarded(t, "memory")
def test_session_cookie_not_forwarded_file(t): _session_cookie_not_forwarded(t, "file")
def test_session_cookie_not_forwarded_redis(t): _session_cookie_not_forwarded(t, "redis")


# ---------------------------------------------------------------------------
# Set-Cookie attributes

def _check_expires_attr(cookie, max_age, what):
    expires = cookie.attrs.get("expires")
    check(expires, "%s: Expires missing: %s" % (what, cookie.raw))
    when = email.utils.parsedate_to_datetime(expires).timestamp()
    check(abs(when - (time.time() + max_age)) <= 5,
          "%s: Expires %r is not now + %d s: %s" % (what, expires, max_age, cookie.raw))


def _cookie_attributes_permanent(t, manager):
    proxy = start_proxy(t, manager, session={"session_expiration_time": "30m"})
    b = Browser(proxy)
    c = one_session_set_cookie(b.write(set_header({"a": 1})), "the creating response")
    check_eq(c.attrs.get("max-age"), "1800", "Max-Age for session_expiration_time 30m: %s" % c.raw)
    _check_expires_attr(c, 1800, "permanent cookie")
    check_eq(c.attrs.get("path"), "/", "Path: %s" % c.raw)
    check_eq(c.attrs.get("samesite"), "Lax", "SameSite: %s" % c.raw)
    check("httponly" in c.attrs and "secure" in c.attrs, "HttpOnly and Secure by default: %s" % c.raw)
    check("domain" not in c.attrs, "Domain without session_cookie_domain: %s" % c.raw)
    check("partitioned" not in c.attrs, "Partitioned by default: %s" % c.raw)

    cleared = check_cleared(b.write(("X-Session-Destroy", "true")), "the Destroy response")
    check_eq(cleared.value, "", "value of the clearing cookie")
    check_eq(cleared.attrs.get("path"), "/", "Path of the clearing cookie: %s" % cleared.raw)


def test_cookie_attributes_permanent_cookie(t): _cookie_attributes_permanent(t, "cookie")
def test_cookie_attributes_permanent_memory(t): _cookie_attributes_permanent(t, "memory")
def test_cookie_attributes_permanent_file(t): _cookie_attributes_permanent(t, "file")
def test_cookie_attributes_permanent_redis(t): _cookie_attributes_permanent(t, "redis")


def _cookie_attributes_not_permanent(t, manager):
    proxy = start_proxy(t, manager, session={
        "session_permanent": False, "session_cookie_path": "/app", "session_cookie_domain": "example.test",
        "session_cookie_samesite": "Strict", "session_cookie_httponly": False, "session_cookie_partitioned": True,
        "session_cookie_name": "sid"})
    b = Browser(proxy, name="sid")
    c = one_session_set_cookie(b.write(set_header({"a": 1})), "the creating response", name="sid")
    check("max-age" not in c.attrs and "expires" not in c.attrs,
          "session_permanent false: want neither Max-Age nor Expires: %s" % c.raw)
    check_eq(c.attrs.get("path"), "/app", "Path: %s" % c.raw)
    check_eq(c.attrs.get("domain"), "example.test", "Domain: %s" % c.raw)
    check_eq(c.attrs.get("samesite"), "Strict", "SameSite: %s" % c.raw)
    check("httponly" not in c.attrs, "HttpOnly with session_cookie_httponly false: %s" % c.raw)
    check("secure" in c.attrs and "partitioned" in c.attrs, "Secure and Partitioned: %s" % c.raw)
    view = b.echo()
    check_session(view, "active", {"a": 1}, "a browser-session cookie")
    check(view.expires is not None, "the session still has a server-side expiry")
    resp = proxy.request("GET", "/echo", [("Cookie", "session_id=%s" % b.cookie)])
    check_eq(SessionView(resp).status, "none", "the value sent under the default cookie name")


def test_cookie_attributes_not_permanent_cookie(t): _cookie_attributes_not_permanent(t, "cookie")
def test_cookie_attributes_not_permanent_memory(t): _cookie_attributes_not_permanent(t, "memory")
def test_cookie_attributes_not_permanent_file(t): _cookie_attributes_not_permanent(t, "file")
def test_cookie_attributes_not_permanent_redis(t): _cookie_attributes_not_permanent(t, "redis")


# ---------------------------------------------------------------------------
# session_create

def _store_is_empty(proxy):
    if proxy.manager == "redis":
        return proxy.redis.keys() == []
    if proxy.manager == "file":
        d = proxy.config["file"]["directory"]
        return not os.path.isdir(d) or not [n for n in os.listdir(d) if not n.startswith(".")]
    return True


def _session_create_always(t, manager):
    proxy = start_proxy(t, manager, session={"session_create": "always"})
    b = Browser(proxy)
    resp = b.request("/echo")
    view = SessionView(resp)
    check_session(view, "new", {}, "first request with session_create always")
    issued = one_session_set_cookie(resp, "the response creating a session")
    check(not issued.clears and issued.value, "session_create always issued no cookie: %s" % issued.raw)
    again = b.echo()
    check_session(again, "active", {}, "the next request with the issued cookie")
    check_eq(again.id, view.id, "X-Session-Id of the created session on the next request")
    check_no_set_cookie(again.resp, "a request of an existing session without writes")

    # An invalid cookie is replaced by a new session, not merely cleared.
    bad = Browser(proxy, cookie=b.cookie[:-2])
    resp = bad.request("/echo")
    check_session(SessionView(resp), "new", {}, "an invalid cookie with session_create always")
    issued = one_session_set_cookie(resp, "the response replacing an invalid cookie")
    check(not issued.clears, "want a new cookie, not a clearing one: %s" % issued.raw)
    check_eq(bad.echo().status, "active", "status with the replacement cookie")


def test_session_create_always_cookie(t): _session_create_always(t, "cookie")
def test_session_create_always_memory(t): _session_create_always(t, "memory")
def test_session_create_always_file(t): _session_create_always(t, "file")
def test_session_create_always_redis(t): _session_create_always(t, "redis")


def _session_create_lazy(t, manager):
    proxy = start_proxy(t, manager, session={"session_create": "lazy"})
    b = Browser(proxy)
    for i in range(3):
        resp = b.request("/echo")
        check_session(SessionView(resp), "none", {}, "request %d with session_create lazy" % i)
        check_no_set_cookie(resp, "request %d with session_create lazy" % i)
    check(_store_is_empty(proxy), "session_create lazy wrote to the store without any write")
    resp = b.write(set_header({"first": "write"}))
    one_session_set_cookie(resp, "the first write")
    check_session(b.echo(), "active", {"first": "write"}, "after the first write")


def test_session_create_lazy_cookie(t): _session_create_lazy(t, "cookie")
def test_session_create_lazy_memory(t): _session_create_lazy(t, "memory")
def test_session_create_lazy_file(t): _session_create_lazy(t, "file")
def test_session_create_lazy_redis(t): _session_create_lazy(t, "redis")


# ---------------------------------------------------------------------------
# The cookie manager's browser limit

def _b64_len(nbytes):
    return (4 * nbytes + 2) // 3  # base64url without padding


def test_cookie_manager_over_browser_limit_is_502(t):
    """With session.max_cookie_chunks: 1 the sealed cookie must fit one
    Set-Cookie line of 4096 bytes, attributes included (docs/COOKIES.md,
    Chunked cookies); one byte more is a 502 that changes nothing."""
    proxy = start_proxy(t, "cookie", session={"max_session_bytes": 16384, "max_cookie_chunks": 1})
    b = Browser(proxy)
    make_session(b, {"user": "ada"})
    old = b.cookie

    # Calibrate: the sealed cookie grows one raw byte per data byte.
    n0 = 1000
    probe = Browser(proxy)
    probe.set({"blob": "x" * n0})
    check(probe.cookie.startswith("3."), "unexpected cookie format %r" % probe.cookie[:10])
    raw0 = len(base64.urlsafe_b64decode(probe.cookie[2:] + "=" * (-len(probe.cookie[2:]) % 4)))
    set_cookie = probe.last_set_cookie.raw
    attributes = set_cookie[len(COOKIE_NAME) + 1 + len(probe.cookie):]
    # sessiond sizes the line for the longest Max-Age (12 digits) and a
    # 5-digit year whatever this one holds.
    max_age = re.search(r"Max-Age=(\d+)", attributes).group(1)
    slack = (12 - len(max_age)) + 1

    def line_bytes(n):
        return len("Set-Cookie: ") + len(COOKIE_NAME) + 1 + len("3.") + _b64_len(raw0 + n - n0) + len(attributes)

    n_max = max(n for n in range(n0, 4096) if line_bytes(n) + slack <= 4096)

    fits = Browser(proxy)
    resp = fits.write(set_header({"blob": "x" * n_max}))
    check_eq(resp.status, 200, "status of a session whose cookie line is just within 4096 bytes (body %r)" % resp.body)
    check(len("Set-Cookie: ") + len(fits.last_set_cookie.raw) <= 4096, "an issued Set-Cookie line is over 4096 bytes")
    check_session(fits.echo(), "active", {"blob": "x" * n_max}, "a session at the browser limit")

    mark = log_mark(proxy)
    resp = b.write(set_header({"blob": "x" * (n_max + 1)}))
    line = check_rejected(proxy, resp, mark, "X-Session-Set", "a session over the browser's cookie limit")
    check("max_cookie_chunks" in line, "the log does not say the cookie needs too many cookies: %r" % line)
    check_no_set_cookie(resp, "a rejected oversize cookie")
    check_eq(b.cookie, old, "the client's cookie after a rejected write")
    check_session(b.echo(), "active", {"user": "ada"}, "the session after a rejected oversize write")
