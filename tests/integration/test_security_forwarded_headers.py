"""Connection-named headers cannot remove what sessiond injects.

A client may list any field in Connection to make a proxy drop it as
hop-by-hop (RFC 9110 7.6.1). Dropping happens to the CLIENT's fields only:
the X-Session-* and X-Forwarded-* headers sessiond adds afterwards always
reach the backend, with sessiond's values. The same holds on the way back:
a backend's Connection header cannot remove the session Set-Cookie.
"""

import json

from harness import check, check_eq
from session_util import Browser, instructions_target, make_session, one_session_set_cookie, start_proxy

INJECTED = ("X-Session-Status", "X-Session-Id", "X-Session-Data", "X-Session-Expires")
FORWARDED = ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host")

# (what, the client's extra headers).
CONNECTION_VARIANTS = [
    ("data", [("Connection", "X-Session-Data")]),
    ("all_session_headers", [("Connection", "X-Session-Status, X-Session-Id, X-Session-Data, X-Session-Expires")]),
    ("odd_case", [("Connection", "x-SeSsIoN-dAtA, X-SESSION-STATUS")]),
    ("underscores", [("Connection", "X_Session_Data, X_Session_Id")]),
    ("forwarded_headers", [("Connection", "X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host")]),
    ("second_connection_field", [("Connection", "keep-alive"), ("Connection", "X-Session-Id, x-forwarded-for")]),
    ("named_and_sent", [("Connection", "X-Session-Data, X-Forwarded-For"), ("X-Session-Data", '{"admin":true}'),
                        ("X-Forwarded-For", "6.6.6.6")]),
    ("every_prefix_form", [("Connection", "X-Session-, X-Session-*, X-Session")]),
]


def _values(req, name):
    return req.header_values(name)


def _check_injected(req, what, status, data, public_id, client_xff=None):
    for name in INJECTED + FORWARDED:
        values = _values(req, name)
        if name in ("X-Session-Id", "X-Session-Expires") and status not in ("new", "active"):
            check_eq(values, [], "%s: %s without a session" % (what, name))
            continue
        check_eq(len(values), 1, "%s: number of %s headers at the backend (%r)" % (what, name, values))
    check_eq(_values(req, "X-Session-Status"), [status], "%s: X-Session-Status" % what)
    check_eq(json.loads(_values(req, "X-Session-Data")[0]), data, "%s: X-Session-Data" % what)
    if public_id is not None:
        check_eq(_values(req, "X-Session-Id"), [public_id], "%s: X-Session-Id" % what)
    xff = _values(req, "X-Forwarded-For")[0]
    check(xff.endswith("127.0.0.1"), "%s: X-Forwarded-For %r does not end with the client address" % (what, xff))
    if client_xff is None:
        check_eq(xff, "127.0.0.1", "%s: X-Forwarded-For" % what)
    check_eq(_values(req, "X-Forwarded-Proto"), ["http"], "%s: X-Forwarded-Proto" % what)
    check_eq(_values(req, "X-Forwarded-Host"), ["test.local"], "%s: X-Forwarded-Host" % what)
    check("admin" not in _values(req, "X-Session-Data")[0], "%s: the client's X-Session-Data got through" % what)


def _connection_cannot_remove_injected(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    for what, headers in CONNECTION_VARIANTS:  # no session yet
        check_eq(b.request("/echo", headers).status, 200, "%s: status without a session" % what)
        _check_injected(proxy.backend.requests("/echo")[-1], what + " (no session)", "none", {}, None,
                        client_xff=dict(headers).get("X-Forwarded-For"))
    view = make_session(b, {"user": "ada", "n": 1})
    for what, headers in CONNECTION_VARIANTS:
        check_eq(b.request("/echo", headers).status, 200, "%s: status with a session" % what)
        _check_injected(proxy.backend.requests("/echo")[-1], what, "active", {"user": "ada", "n": 1}, view.id,
                        client_xff=dict(headers).get("X-Forwarded-For"))


def test_connection_cannot_remove_injected_headers_cookie(t): _connection_cannot_remove_injected(t, "cookie")
def test_connection_cannot_remove_injected_headers_memory(t): _connection_cannot_remove_injected(t, "memory")


def test_client_x_forwarded_for_named_in_connection_is_replaced_not_appended(t):
    # The client's own X-Forwarded-For is dropped because Connection names it,
    # so the backend sees sessiond's value alone: never the client's claim.
    proxy = t.sessiond()
    resp = proxy.request("GET", "/echo", [("Connection", "X-Forwarded-For"), ("X-Forwarded-For", "6.6.6.6")])
    check_eq(resp.status, 200, "status")
    check_eq(proxy.backend.requests("/echo")[-1].header_values("X-Forwarded-For"), ["127.0.0.1"],
             "X-Forwarded-For at the backend")


def _backend_connection_cannot_remove_cookie(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    target = instructions_target([("Connection", "Set-Cookie, X-Session-Status"),
                                  ("X-Session-Set", json.dumps({"user": "ada"}))])
    resp = b.request(target)
    check_eq(resp.status, 200, "status of a Set with Connection: Set-Cookie (body %r)" % resp.body[:200])
    cookie = one_session_set_cookie(resp, "a Set whose response names Set-Cookie in Connection")
    check(not cookie.clears, "the session cookie was cleared: %s" % cookie.raw)
    check_eq(b.echo().data, {"user": "ada"}, "the session after the response")


def test_backend_connection_cannot_remove_set_cookie_cookie(t): _backend_connection_cannot_remove_cookie(t, "cookie")
def test_backend_connection_cannot_remove_set_cookie_memory(t): _backend_connection_cannot_remove_cookie(t, "memory")
