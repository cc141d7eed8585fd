"""Secret rotation (docs/COOKIES.md, Key rotation): a cookie signed with a
secret_key_fallbacks entry is accepted, its session intact, and re-issued
under the current secret_key; the re-issued cookie then works with the new
secret alone, while the old one becomes invalid.

cookie, redis and file rotate by restarting sessiond (their sessions outlive
the process); memory loses everything on restart, so it rotates with a
SIGHUP reload instead."""

from harness import SECRET, check, check_eq, wait_until
from session_util import (Browser, SessionView, check_cleared, check_session, make_session, one_session_set_cookie,
                          reload_proxy, restart_proxy, start_proxy)

SECRET_B = "rotated-secret-b-0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b"


def _make_two_sessions(proxy):
    by_echo = Browser(proxy)      # first touched after rotation by a plain read
    by_write = Browser(proxy)     # first touched after rotation by a write
    make_session(by_echo, {"user": "ada"})
    make_session(by_write, {"user": "bob"})
    return by_echo, by_write


def _check_rotated(proxy, by_echo, by_write, old_echo, old_write):
    """proxy now runs secret B with fallback A: both sessions are accepted and
    get a new cookie on their first request."""
    by_echo.proxy = by_write.proxy = proxy
    resp = by_echo.request("/echo")
    check_session(SessionView(resp), "active", {"user": "ada"}, "a fallback-signed cookie after rotation")
    c = one_session_set_cookie(resp, "the first read with a fallback-signed cookie")
    check(not c.clears and c.value != old_echo, "the cookie was not re-issued under the new secret: %s" % c.raw)

    resp = by_write.write(("X-Session-Set", '{"cart": [1]}'))
    check_eq(resp.status, 200, "status of a write with a fallback-signed cookie")
    c = one_session_set_cookie(resp, "the first write with a fallback-signed cookie")
    check(not c.clears and c.value != old_write, "the cookie was not re-issued under the new secret: %s" % c.raw)
    check_session(by_write.echo(), "active", {"user": "bob", "cart": [1]}, "the written session after rotation")
    check_session(by_echo.echo(), "active", {"user": "ada"}, "the read session after rotation")


def _check_new_secret_alone(proxy, by_echo, by_write, old_echo, old_write):
    by_echo.proxy = by_write.proxy = proxy
    check_session(by_echo.echo(), "active", {"user": "ada"}, "the re-issued cookie under secret B alone")
    check_session(by_write.echo(), "active", {"user": "bob", "cart": [1]}, "the re-issued cookie under secret B alone")
    for what, old in (("read", old_echo), ("written", old_write)):
        resp = Browser(proxy, cookie=old).request("/echo")
        check_session(SessionView(resp), "invalid", {}, "the %s session's cookie signed with the retired secret" % what)
        check_cleared(resp, "a cookie signed with the retired secret")


def _key_rotation_by_restart(t, manager):
    proxy = start_proxy(t, manager)
    by_echo, by_write = _make_two_sessions(proxy)
    old_echo, old_write = by_echo.cookie, by_write.cookie
    by_echo.close()
    by_write.close()

    proxy = restart_proxy(t, proxy, {"secret_key": SECRET_B, "secret_key_fallbacks": [SECRET]})
    _check_rotated(proxy, by_echo, by_write, old_echo, old_write)
    by_echo.close()
    by_write.close()

    proxy = restart_proxy(t, proxy, {"secret_key": SECRET_B, "secret_key_fallbacks": []})
    _check_new_secret_alone(proxy, by_echo, by_write, old_echo, old_write)
    _check_secret_b_never_printed(t)


def test_key_rotation_cookie(t): _key_rotation_by_restart(t, "cookie")
def test_key_rotation_file(t): _key_rotation_by_restart(t, "file")
def test_key_rotation_redis(t): _key_rotation_by_restart(t, "redis")


def test_key_rotation_memory_by_reload(t):
    proxy = start_proxy(t, "memory")
    by_echo, by_write = _make_two_sessions(proxy)
    old_echo, old_write = by_echo.cookie, by_write.cookie

    # Before the reload takes effect a read re-issues nothing; the first
    # response that does is the rotation (so it is asserted on, not retried).
    reload_proxy(proxy, {"secret_key": SECRET_B, "secret_key_fallbacks": [SECRET]})
    probe = Browser(proxy, cookie=old_echo, fresh_connections=True)
    seen = []

    def rotated():
        resp = probe.request("/echo")
        view = SessionView(resp)
        if probe.last_set_cookie is None and view.status == "active":
            return False
        seen.append((resp, view))
        return True
    wait_until(rotated, 5.0, "the SIGHUP reload with a new secret to take effect")
    resp, view = seen[0]
    check_session(view, "active", {"user": "ada"}, "a fallback-signed cookie after the reload")
    c = one_session_set_cookie(resp, "the first read with a fallback-signed cookie")
    check(not c.clears and c.value != old_echo, "the cookie was not re-issued under the new secret: %s" % c.raw)
    by_echo.cookie = c.value

    resp = by_write.write(("X-Session-Set", '{"cart": [1]}'))
    check_eq(resp.status, 200, "status of a write with a fallback-signed cookie")
    c = one_session_set_cookie(resp, "the first write with a fallback-signed cookie")
    check(not c.clears and c.value != old_write, "the cookie was not re-issued under the new secret: %s" % c.raw)
    check_session(by_write.echo(), "active", {"user": "bob", "cart": [1]}, "the written session after rotation")

    reload_proxy(proxy, {"secret_key": SECRET_B, "secret_key_fallbacks": []})
    wait_until(lambda: Browser(proxy, cookie=old_write, fresh_connections=True).echo().status == "invalid", 5.0,
               "the reload dropping the old secret to take effect (old cookie -> invalid)")
    _check_new_secret_alone(proxy, by_echo, by_write, old_echo, old_write)
    _check_secret_b_never_printed(t)


def _check_secret_b_never_printed(t):
    for p in t.processes:
        check(SECRET_B not in p.stdout_text() + p.stderr_text(), "%s printed the rotated secret" % p.name)
