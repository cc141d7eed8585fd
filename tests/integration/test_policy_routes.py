"""Access rules at the edge, from the attacker's side (docs/HTTP.md, Access
rules; docs/HTTP.md, Path normalisation).

Every spelling of a protected path that a backend could resolve to it
either meets the rule or is refused with 400; nothing refused ever reaches
the backend; what the backend receives is exactly the path the rule was
matched against; return_to never leads off the host; rules follow methods;
a 401 speaks JSON to JSON clients; `require` keys are read from the session.
Without routes the target is forwarded as it came.
"""

import json
import urllib.parse

from client import RawConnection
from harness import check, check_eq
from session_util import Browser, make_session, start_proxy

RULES = [
    {"path": "/public", "require": "none"},
    {"path": "/login", "match": "exact", "require": "none"},
    {"path": "/admin", "require": ["admin"]},
    {"path": "/app", "on_denied": {"redirect": "/login?from=edge"}},
    {"path": "/api", "methods": ["POST", "DELETE"]},
    {"path": "/docs", "methods": ["GET"]},
]


def _proxy(t, manager="cookie", rules=RULES, **extra):
    return start_proxy(t, manager, session={"session_cookie_secure": False}, extra=dict({"routes": rules}, **extra))


def _raw(proxy, target, method="GET", headers=()):
    """One request with the target sent byte for byte."""
    with RawConnection(proxy.port) as conn:
        head = "%s %s HTTP/1.1\r\nHost: shop.example\r\n%s\r\n" % (
            method, target, "".join("%s: %s\r\n" % h for h in headers))
        conn.send(head.encode("latin-1"))
        return conn.read_response(method=method)


def _backend_targets(proxy):
    return [r.target for r in proxy.backend.requests()]


def test_every_bypass_spelling_of_admin_is_refused(t):
    proxy = _proxy(t)
    denied = ["/admin", "/admin/", "/ADMIN", "/Admin/users", "//admin", "///admin//x", "/admin;x", "/admin;jsessionid=1/x",
              "/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E/admin", "/public/.%2e/admin",
              "/public/..;/admin", "/public/..;x=1/admin", "/./admin", "/%61dmin", "/%41DMIN", "/;x/admin",
              "/login/../admin", "http://shop.example/admin", "http://shop.example//admin/x"]
    refused = ["/admin%2fx", "/public%2F..%2Fadmin", "/public/..%2Fadmin", "/admin.", "/admin./x", "/admin%2e",
               "/admin%20", "/public/%c0%ae%c0%ae/admin", "/public/%c0%2e%c0%2e/admin", "/public/\xc0\xae\xc0\xae/admin",
               "/public/%e0%80%ae%e0%80%ae/admin", "/public\\..\\admin", "/public/%5c..%5cadmin", "/admin%00",
               "/admin%3bx", "/public/%252e%252e/admin", "/public/%25%32%65%25%32%65/admin", "/admin#x", "/admin%zz"]
    for target in denied:
        resp = _raw(proxy, target)
        check_eq(resp.status, 401, "status for %r" % target)
        check_eq(resp.body, b"Unauthorized\n", "body for %r" % target)
    for target in refused:
        resp = _raw(proxy, target)
        check_eq(resp.status, 400, "status for %r" % target)
    check_eq(_backend_targets(proxy), [], "requests that reached the backend")
    # Close relatives that are not /admin pass (and reach the backend normalised).
    for target, forwarded in [("/administrator", "/administrator"), ("/adm", "/adm"), ("/x/admin", "/x/admin"),
                              ("/public/x/../admin-panel", "/public/admin-panel")]:
        resp = _raw(proxy, target)
        check_eq(resp.status, 404, "status for %r (the backend's)" % target)
        check_eq(_backend_targets(proxy)[-1], forwarded, "target forwarded for %r" % target)


def test_the_backend_receives_exactly_the_path_the_rules_saw(t):
    proxy = _proxy(t)
    cases = [
        ("/public/./a/../b", "/public/b"),
        ("/public//a///b/", "/public/a/b/"),
        ("/public/%7Euser/%61", "/public/~user/a"),
        ("/public/caf%c3%a9", "/public/caf%C3%A9"),
        ("/public/caf\xc3\xa9", "/public/caf%C3%A9"),
        ("/public/a;jsessionid=x/b", "/public/a;jsessionid=x/b"),
        ("/public/x?q=/../admin&r=%2e%2e", "/public/x?q=/../admin&r=%2e%2e"),
        ("/../../public/x", "/public/x"),
    ]
    for sent, forwarded in cases:
        resp = _raw(proxy, sent)
        check_eq(resp.status, 404, "status for %r" % sent)
        check_eq(_backend_targets(proxy)[-1], forwarded, "target the backend received for %r" % sent)
    # The rules saw the same path: /public/../admin was denied, not forwarded.
    check_eq(_raw(proxy, "/public/../admin").status, 401, "the resolved path is what the rule saw")


def test_without_routes_the_target_is_forwarded_unchanged(t):
    proxy = start_proxy(t, "cookie")
    for target in ["/a/../b", "//x", "/%2e%2e/y", "/A%2fB", "/p;q"]:
        resp = _raw(proxy, target)
        check_eq(resp.status, 404, "status for %r" % target)
        check_eq(_backend_targets(proxy)[-1], target, "target forwarded without routes")


def test_return_to_never_leaves_the_host(t):
    proxy = _proxy(t, rules=[{"path": "/login", "match": "exact", "require": "none"},
                             {"path": "/", "on_denied": {"redirect": "/login?from=edge"}}])
    resp = _raw(proxy, "/app/page?a=1&b=%2F%2Fx")
    check_eq(resp.status, 302, "status of a redirected request")
    check_eq(resp.header("Location"), "/login?from=edge&return_to=/app/page%3Fa%3D1%26b%3D%252F%252Fx",
             "Location")
    check_eq(resp.header("Cache-Control"), "no-store", "Cache-Control of the redirect")
    hostile = ["//evil.example", "//evil.example/x", "///evil.example", "/\\evil.example", "/%2F%2Fevil.example",
               "/%2f/evil.example", "/%5C%5Cevil.example", "/%252F%252Fevil.example", "/.//evil.example",
               "/x/..//evil.example", "/%2e/%2e//evil.example", "http://shop.example//evil.example",
               "http://evil.example/", "https://evil.example//evil.example", "/%09/evil.example", "/%0d%0aX:y",
               "/;//evil.example", "/javascript:alert(1)"]
    for target in hostile:
        resp = _raw(proxy, target)
        check(resp.status in (302, 400), "status for %r: %d" % (target, resp.status))
        if resp.status != 302:
            continue
        location = resp.header("Location")
        check(location.startswith("/login?from=edge&return_to="), "Location for %r: %r" % (target, location))
        check("\r" not in location and "\n" not in location, "CR/LF in Location for %r" % target)
        value = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["return_to"][0]
        for _ in range(3):  # however many times the login page decodes it
            check(value.startswith("/") and value[1:2] not in ("/", "\\") and value.isprintable(),
                  "return_to for %r leads off the host: %r" % (target, value))
            value = urllib.parse.unquote(value)
    check_eq(_backend_targets(proxy), [], "requests that reached the backend")
    # /login itself is open (exact), and so is the login URL the redirect points to.
    check_eq(_raw(proxy, "/login?from=edge&return_to=/x").status, 404, "status of /login (the backend's)")


def test_rules_follow_methods(t):
    proxy = _proxy(t)
    check_eq(_raw(proxy, "/api/items").status, 404, "GET /api (rule is for POST, DELETE)")
    check_eq(_raw(proxy, "/api/items", "POST", [("Content-Length", "0")]).status, 401, "POST /api")
    check_eq(_raw(proxy, "/api/items", "DELETE").status, 401, "DELETE /api")
    check_eq(_raw(proxy, "/api/items", "PUT", [("Content-Length", "0")]).status, 404, "PUT /api")
    check_eq(_raw(proxy, "/docs/x").status, 401, "GET /docs")
    check_eq(_raw(proxy, "/docs/x", "HEAD").status, 401, "HEAD /docs: a GET rule covers HEAD")
    check_eq(_raw(proxy, "/docs/x", "OPTIONS").status, 404, "OPTIONS /docs")
    check_eq(_raw(proxy, "*", "OPTIONS").status, 404, "OPTIONS * has no path: no rule applies")


def test_401_speaks_json_to_json_clients(t):
    proxy = _proxy(t)
    resp = _raw(proxy, "/admin", headers=[("Accept", "application/json")])
    check_eq(resp.status, 401, "status")
    check_eq(resp.header("Content-Type"), "application/json", "Content-Type")
    check_eq(json.loads(resp.body), {"error": "unauthorized"}, "body")
    resp = _raw(proxy, "/admin", headers=[("Accept", "text/html,*/*;q=0.8")])
    check_eq(resp.header("Content-Type"), "text/plain; charset=utf-8", "Content-Type for a browser")
    check(resp.header("X-Request-Id"), "a refused request still carries its X-Request-Id")


def _keys_required(t, manager):
    proxy = _proxy(t, manager)
    user = Browser(proxy)
    make_session(user, {"user": "ada"})
    check_eq(user.request("/admin/x").status, 401, "a session without the admin key")
    check_eq(user.request("/app/page").status, 404, "require: session with a session (the backend's 404)")
    admin = Browser(proxy)
    make_session(admin, {"user": "root", "admin": True})
    check_eq(admin.request("/admin/x").status, 404, "a session with the admin key reaches the backend")
    # Deleting the key closes the door again.
    check_eq(admin.write(("X-Session-Delete", "admin")).status, 200, "status of the Delete")
    check_eq(admin.request("/ADMIN/x").status, 401, "after the key was deleted")
    # A forged or expired cookie is no session.
    check_eq(Browser(proxy, cookie="forged").request("/app").status, 302, "a forged cookie is redirected")


def test_keys_required_cookie(t): _keys_required(t, "cookie")
def test_keys_required_memory(t): _keys_required(t, "memory")


def test_a_spoofed_session_header_cannot_satisfy_a_rule(t):
    proxy = _proxy(t)
    resp = _raw(proxy, "/admin", headers=[("X-Session-Data", '{"admin":true}'), ("X-Session-Status", "active")])
    check_eq(resp.status, 401, "status with spoofed X-Session-* headers")
