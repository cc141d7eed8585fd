"""Session instructions and the injected request headers, on every manager
(docs/HEADER-PROTOCOL.md, Instructions; docs/HEADER-PROTOCOL.md, Order of application;
docs/HEADER-PROTOCOL.md, Request headers): Set / Delete / null delete / Regenerate / Destroy,
Destroy + Set, several Sets, the order of application, X-Session-Status,
-Id, -Data and -Expires.

Each behaviour is one helper run once per manager by a one-line test
function (the runner discovers `def test_*` by name, so each manager is
reported on its own line)."""

import json
import time

from harness import check, check_eq
from session_util import (Browser, SessionView, check_cleared, check_no_set_cookie, check_session,
                          make_session, one_session_set_cookie, set_header, start_proxy)

DAY = 86400  # the default session_expiration_time (1440 minutes)


def _old_cookie_is_dead(proxy, cookie, what):
    """For store managers: a cookie whose session is gone loads nothing
    (status none, documented in session_filter.h) and is cleared."""
    b = Browser(proxy, cookie=cookie)
    resp = b.request("/echo")
    view = SessionView(resp)
    check_session(view, "none", {}, what)
    check_cleared(resp, what)


# ---------------------------------------------------------------------------
# Set and read

def _set_and_read(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    first = b.echo()
    check_session(first, "none", {}, "a request without a cookie")
    check_eq(first.data_text, "{}", "X-Session-Data without a session")

    resp = b.write(set_header({"user": "ada", "cart": [1, 2]}))
    check_eq(resp.status, 200, "status of the first write")
    created = one_session_set_cookie(resp, "the response creating the session")
    check(not created.clears and created.value, "the first write must issue a cookie: %s" % created.raw)
    check_eq(proxy.backend.requests("/set-headers")[-1].header_values("X-Session-Status"), ["none"],
             "status the backend saw on the request whose response created the session")

    view = b.echo()
    check_session(view, "active", {"user": "ada", "cart": [1, 2]}, "after the first write")
    again = b.echo()
    check_eq(again.id, view.id, "X-Session-Id of the same session on the next request")

    check_eq(b.write(set_header({"cart": [3]})).status, 200, "status of the second write")
    view2 = b.echo()
    check_session(view2, "active", {"user": "ada", "cart": [3]}, "a Set replaces a key whole, keeps the others")
    check_eq(view2.id, view.id, "X-Session-Id after a plain write")


def test_set_and_read_cookie(t): _set_and_read(t, "cookie")
def test_set_and_read_memory(t): _set_and_read(t, "memory")
def test_set_and_read_file(t): _set_and_read(t, "file")
def test_set_and_read_redis(t): _set_and_read(t, "redis")


# ---------------------------------------------------------------------------
# Delete and null delete

def _delete_header(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    view = make_session(b, {"a": 1, "b": 2, "c": 3, "d": 4})
    check_eq(b.write(("X-Session-Delete", "b, d,zz")).status, 200, "status of a Delete response")
    after = b.echo()
    check_session(after, "active", {"a": 1, "c": 3}, "after X-Session-Delete: b, d,zz")
    check_eq(after.id, view.id, "X-Session-Id after a Delete")
    check_eq(b.write(("x-session-delete", "a"), ("X-Session-Delete", " c ")).status, 200,
             "status of two Delete headers")
    empty = b.echo()
    check_session(empty, "active", {}, "after deleting every key")
    check_eq(empty.data_text, "{}", "X-Session-Data of an empty session")


def test_delete_header_cookie(t): _delete_header(t, "cookie")
def test_delete_header_memory(t): _delete_header(t, "memory")
def test_delete_header_file(t): _delete_header(t, "file")
def test_delete_header_redis(t): _delete_header(t, "redis")


def _null_delete(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    make_session(b, {"a": 1, "b": 2})
    b.set({"a": None, "c": 3})
    check_session(b.echo(), "active", {"b": 2, "c": 3}, 'after X-Session-Set {"a": null, "c": 3}')


def test_null_delete_cookie(t): _null_delete(t, "cookie")
def test_null_delete_memory(t): _null_delete(t, "memory")
def test_null_delete_file(t): _null_delete(t, "file")
def test_null_delete_redis(t): _null_delete(t, "redis")


# ---------------------------------------------------------------------------
# Regenerate

def _regenerate(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    data = {"user": "ada", "roles": ["admin"]}
    before = make_session(b, data)
    old_cookie = b.cookie
    resp = b.write(("X-Session-Regenerate", "true"))
    check_eq(resp.status, 200, "status of a Regenerate response")
    issued = one_session_set_cookie(resp, "the Regenerate response")
    check(not issued.clears, "Regenerate must issue a cookie, not clear it: %s" % issued.raw)
    check(issued.value != old_cookie, "Regenerate re-issued the same cookie value")
    after = b.echo()
    check_session(after, "active", data, "after Regenerate")
    check(after.id != before.id, "X-Session-Id unchanged by Regenerate: %r" % after.id)
    if manager != "cookie":
        # The cookie manager keeps no server state, so an old sealed cookie
        # stays verifiable until it expires; store managers drop the old id.
        _old_cookie_is_dead(proxy, old_cookie, "the cookie from before Regenerate")
        check_session(b.echo(), "active", data, "the regenerated session after the old cookie was tried")


def test_regenerate_cookie(t): _regenerate(t, "cookie")
def test_regenerate_memory(t): _regenerate(t, "memory")
def test_regenerate_file(t): _regenerate(t, "file")
def test_regenerate_redis(t): _regenerate(t, "redis")


def _regenerate_without_session_creates_one(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    resp = b.write(("X-Session-Regenerate", "true"))
    check_eq(resp.status, 200, "status")
    # docs/HEADER-PROTOCOL.md, Instructions: a Regenerate without a session creates one.
    check(b.cookie, "a Regenerate without a session must create one; Set-Cookie: %r"
          % resp.header_values("Set-Cookie"))
    check_session(b.echo(), "active", {}, "the session a Regenerate created")


def test_regenerate_without_session_creates_one_cookie(t): _regenerate_without_session_creates_one(t, "cookie")
def test_regenerate_without_session_creates_one_memory(t): _regenerate_without_session_creates_one(t, "memory")
def test_regenerate_without_session_creates_one_file(t): _regenerate_without_session_creates_one(t, "file")
def test_regenerate_without_session_creates_one_redis(t): _regenerate_without_session_creates_one(t, "redis")


# ---------------------------------------------------------------------------
# Destroy

def _destroy(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    make_session(b, {"user": "ada"})
    old_cookie = b.cookie
    resp = b.write(("X-Session-Destroy", "true"))
    check_eq(resp.status, 200, "status of a Destroy response")
    check_cleared(resp, "the Destroy response")
    check(b.cookie is None, "the browser still holds a cookie after Destroy")
    check_session(b.echo(), "none", {}, "the next request after Destroy")
    if manager != "cookie":
        _old_cookie_is_dead(proxy, old_cookie, "the destroyed session's cookie")

    # Destroy without a session changes nothing and sets no cookie.
    fresh = Browser(proxy)
    resp = fresh.write(("X-Session-Destroy", "true"))
    check_eq(resp.status, 200, "status of a Destroy without a session")
    check_no_set_cookie(resp, "a Destroy without a session")


def test_destroy_cookie(t): _destroy(t, "cookie")
def test_destroy_memory(t): _destroy(t, "memory")
def test_destroy_file(t): _destroy(t, "file")
def test_destroy_redis(t): _destroy(t, "redis")


def _destroy_then_set(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    before = make_session(b, {"user": "ada", "cart": [1]})
    old_cookie = b.cookie
    resp = b.write(("X-Session-Destroy", "true"), set_header({"flash": "bye"}))
    check_eq(resp.status, 200, "status of Destroy + Set")
    issued = one_session_set_cookie(resp, "the Destroy + Set response")
    check(not issued.clears and issued.value != old_cookie,
          "Destroy + Set must issue a new cookie: %s" % issued.raw)
    after = b.echo()
    check_session(after, "active", {"flash": "bye"}, "after Destroy + Set (only the new keys)")
    check(after.id != before.id, "Destroy + Set kept the old X-Session-Id")
    if manager != "cookie":
        _old_cookie_is_dead(proxy, old_cookie, "the cookie of the session destroyed before a Set")


def test_destroy_then_set_cookie(t): _destroy_then_set(t, "cookie")
def test_destroy_then_set_memory(t): _destroy_then_set(t, "memory")
def test_destroy_then_set_file(t): _destroy_then_set(t, "file")
def test_destroy_then_set_redis(t): _destroy_then_set(t, "redis")


# ---------------------------------------------------------------------------
# Several Set headers; the order of application

def _several_sets_in_order(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    resp = b.write(set_header({"a": 1, "b": 1}), set_header({"b": 2, "c": 2}), set_header({"c": 3, "a": None}))
    check_eq(resp.status, 200, "status of three Set headers")
    check_session(b.echo(), "active", {"b": 2, "c": 3}, "three Sets applied in order on a new session")
    resp = b.write(set_header({"x": "first"}), ("x-session-set", '{"x": "second", "y": 1}'),
                   ("X-SESSION-SET", '{"y": null}'))
    check_eq(resp.status, 200, "status of three Set headers in mixed case")
    check_session(b.echo(), "active", {"b": 2, "c": 3, "x": "second"}, "three Sets applied in order")


def test_several_sets_in_order_cookie(t): _several_sets_in_order(t, "cookie")
def test_several_sets_in_order_memory(t): _several_sets_in_order(t, "memory")
def test_several_sets_in_order_file(t): _several_sets_in_order(t, "file")
def test_several_sets_in_order_redis(t): _several_sets_in_order(t, "redis")


def _order_destroy_regenerate_delete_set(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    before = make_session(b, {"a": 1, "b": 2})
    # Headers in the reverse of the application order: Delete must still come
    # before Set (a survives) and Regenerate keeps the data.
    resp = b.write(set_header({"a": 9, "c": 3}), ("X-Session-Delete", "a, b"),
                   ("X-Session-Regenerate", "true"))
    check_eq(resp.status, 200, "status of Set, Delete, Regenerate")
    after = b.echo()
    check_session(after, "active", {"a": 9, "c": 3}, "Set+Delete+Regenerate sent in reverse order")
    check(after.id != before.id, "Regenerate did not change X-Session-Id")

    # Set before Destroy in the response: Destroy still applies first, so
    # the result is a fresh session holding only the new keys.
    resp = b.write(set_header({"x": 1}), ("X-Session-Destroy", "true"))
    check_eq(resp.status, 200, "status of Set then Destroy")
    fresh = b.echo()
    check_session(fresh, "active", {"x": 1}, "Set sent before Destroy")
    check(fresh.id != after.id, "Destroy + Set kept the old X-Session-Id")

    # All four at once, in reverse order.
    resp = b.write(set_header({"k": "v"}), ("X-Session-Delete", "k, x"), ("X-Session-Regenerate", "true"),
                   ("X-Session-Destroy", "true"))
    check_eq(resp.status, 200, "status of all four instructions")
    last = b.echo()
    check_session(last, "active", {"k": "v"}, "Destroy, Regenerate, Delete, Set sent in reverse order")
    check(last.id not in (fresh.id, after.id, before.id), "an old X-Session-Id came back")


def test_order_destroy_regenerate_delete_set_cookie(t): _order_destroy_regenerate_delete_set(t, "cookie")
def test_order_destroy_regenerate_delete_set_memory(t): _order_destroy_regenerate_delete_set(t, "memory")
def test_order_destroy_regenerate_delete_set_file(t): _order_destroy_regenerate_delete_set(t, "file")
def test_order_destroy_regenerate_delete_set_redis(t): _order_destroy_regenerate_delete_set(t, "redis")


# ---------------------------------------------------------------------------
# X-Session-Status, -Id, -Data, -Expires

def _status_id_and_expires(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    check_session(b.echo(), "none", {}, "no cookie")
    garbage = Browser(proxy, cookie="not-a-session")
    check_session(garbage.echo(), "invalid", {}, "a garbage cookie")
    check(garbage.last_set_cookie is not None and garbage.last_set_cookie.clears,
          "a garbage cookie is not cleared: %r" % garbage.last_set_cookie)

    t0 = int(time.time())
    view = make_session(b, {"n": 1})
    t1 = int(time.time())
    check(t0 + DAY - 2 <= view.expires <= t1 + DAY + 2,
          "X-Session-Expires %d is not creation time + 1 day (%d..%d)" % (view.expires, t0 + DAY, t1 + DAY))
    check(view.id != b.cookie and view.id not in b.cookie and b.cookie not in view.id,
          "X-Session-Id %r overlaps the cookie value" % view.id)
    check(len(view.id) >= 16, "X-Session-Id %r is too short to carry 128 bits" % view.id)

    other = Browser(proxy)
    other_view = make_session(other, {"n": 2})
    check(other_view.id != view.id, "two sessions share X-Session-Id %r" % view.id)
    check(other_view.id not in b.cookie and view.id not in other.cookie, "an X-Session-Id is inside a cookie")
    check_eq(b.echo().expires, view.expires, "X-Session-Expires on a later request (no sliding expiry)")


def test_status_id_and_expires_cookie(t): _status_id_and_expires(t, "cookie")
def test_status_id_and_expires_memory(t): _status_id_and_expires(t, "memory")
def test_status_id_and_expires_file(t): _status_id_and_expires(t, "file")
def test_status_id_and_expires_redis(t): _status_id_and_expires(t, "redis")


_UNICODE = {"name": "Ad\u00e9la\u00efde", "ctl": "a\u0001b\u001fc\u007f", "emoji": "\U0001F600",
            "quote": "\"\\/", "nl": "line1\nline2", "\u00fcber": "key"}


def _data_is_ascii(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    # Raw UTF-8 in the instruction; json.dumps still escapes the C0 controls,
    # and DEL is escaped by hand (a raw 0x7f is not allowed in a header value).
    raw = json.dumps(_UNICODE, ensure_ascii=False).replace("\x7f", "\\u007f")
    resp = b.write(("X-Session-Set", raw))
    check_eq(resp.status, 200, "status of a Set with raw UTF-8 (body %r)" % resp.body[:200])
    view = b.echo()
    check_session(view, "active", _UNICODE, "after a Set with non-ASCII values")
    text = view.data_text
    check(all(0x20 <= ord(c) < 0x7f for c in text), "X-Session-Data is not printable ASCII: %r" % text)
    for escape in ("\\u00e9", "\\u0001", "\\ud83d\\ude00", "\\u00fcber"):
        check(escape.lower() in text.lower(), "X-Session-Data lacks the escape %s: %r" % (escape, text))

    # The same values sent \u-escaped come back identical.
    other = Browser(proxy)
    check_eq(other.write(set_header(_UNICODE)).status, 200, "status of a Set with \\u escapes")
    check_eq(other.echo().data, _UNICODE, "X-Session-Data after a \\u-escaped Set")


def test_data_is_ascii_cookie(t): _data_is_ascii(t, "cookie")
def test_data_is_ascii_memory(t): _data_is_ascii(t, "memory")
def test_data_is_ascii_file(t): _data_is_ascii(t, "file")
def test_data_is_ascii_redis(t): _data_is_ascii(t, "redis")
