"""CSRF at the edge, from the attacker's side (docs/HEADER-PROTOCOL.md, CSRF
token).

With csrf.enabled, the backend gets X-Session-Csrf for the pages it renders;
an unsafe request of a session passes with that token in X-CSRF-Token, with
Sec-Fetch-Site: same-origin, or with an Origin equal to its own; a missing,
wrong, forged, other session's or pre-login token, a cross-site Origin or
Sec-Fetch-Site, or no evidence at all is a 403 that never reaches the
backend. Requests without a session, safe methods and csrf.exempt paths are
not checked. Without csrf the backend sees no X-Session-Csrf at all.
"""

from harness import check, check_eq
from session_util import Browser, SessionView, make_session, start_proxy


def _proxy(t, manager="cookie", csrf=None):
    return start_proxy(t, manager, session={"session_cookie_secure": False},
                       extra={"csrf": csrf or {"enabled": True, "exempt": ["/hooks"]}})


def _token(browser):
    view = browser.echo()
    tokens = [v for n, v in view.headers if n.lower() == "x-session-csrf"]
    check_eq(len(tokens), 1, "X-Session-Csrf headers the backend received")
    return tokens[0]


def _post(browser, path="/echo", headers=()):
    return browser.request(path, headers=list(headers) + [("Content-Length", "0")], method="POST")


def _posts_reaching_backend(proxy):
    return [r for r in proxy.backend.requests() if r.method != "GET"]


def _csrf(t, manager):
    proxy = _proxy(t, manager)
    ada = Browser(proxy)
    make_session(ada, {"user": "ada"})
    token = _token(ada)
    check_eq(len(token), 43, "length of the token (base64url of 32 bytes)")
    check_eq(_token(ada), token, "the token is stable for the session")

    eve = Browser(proxy)
    make_session(eve, {"user": "eve"})
    eve_token = _token(eve)
    check(eve_token != token, "two sessions have different tokens")

    refused = [
        ("no token, no Origin, no Sec-Fetch-Site", []),
        ("a wrong token", [("X-CSRF-Token", "A" * 43)]),
        ("a token with one character changed", [("X-CSRF-Token", ("B" if token[0] == "A" else "A") + token[1:])]),
        ("another session's token", [("X-CSRF-Token", eve_token)]),
        ("the token in another header", [("X-XSRF-Token", token)]),
        ("a cross-site Origin", [("Origin", "http://evil.example")]),
        ("a look-alike Origin", [("Origin", "http://test.local.evil.example")]),
        ("its Origin over https (another origin)", [("Origin", "https://test.local")]),
        ("Origin: null", [("Origin", "null")]),
        ("Sec-Fetch-Site: cross-site", [("Sec-Fetch-Site", "cross-site")]),
        ("Sec-Fetch-Site: same-site", [("Sec-Fetch-Site", "same-site")]),
        ("a spoofed X-Session-Csrf", [("X-Session-Csrf", token)]),
    ]
    before = len(_posts_reaching_backend(proxy))
    for what, headers in refused:
        resp = _post(ada, headers=headers)
        check_eq(resp.status, 403, "status with %s" % what)
        check_eq(resp.body, b"Forbidden\n", "body with %s" % what)
    for method in ("PUT", "PATCH", "DELETE"):
        check_eq(ada.request("/echo", headers=[("Content-Length", "0")], method=method).status, 403,
                 "%s without a token" % method)
    check_eq(len(_posts_reaching_backend(proxy)), before, "refused requests that reached the backend")

    passing = [
        ("the session's token", [("X-CSRF-Token", token)]),
        ("the token with a cross-site Sec-Fetch-Site", [("X-CSRF-Token", token), ("Sec-Fetch-Site", "cross-site")]),
        ("Sec-Fetch-Site: same-origin", [("Sec-Fetch-Site", "same-origin")]),
        ("its own Origin (Host: test.local, forwarded as http)", [("Origin", "http://test.local")]),
        ("its own Origin with the default port", [("Origin", "http://test.local:80")]),
    ]
    for what, headers in passing:
        check_eq(_post(ada, headers=headers).status, 200, "status with %s" % what)
    check_eq(_post(ada, "/hooks/stripe").status, 404, "an exempt path is not checked (the backend's 404)")
    check_eq(_post(Browser(proxy)).status, 200, "a request without a session is not checked")
    check_eq(ada.request("/echo", headers=[("Sec-Fetch-Site", "cross-site")]).status, 200, "GET is not checked")

    # Logging in again (Regenerate) changes the token: the old one, replayed, fails.
    check_eq(ada.write(("X-Session-Regenerate", "true")).status, 200, "status of the Regenerate")
    new_token = _token(ada)
    check(new_token != token, "Regenerate gives the session a new token")
    check_eq(_post(ada, headers=[("X-CSRF-Token", token)]).status, 403, "the token from before Regenerate")
    check_eq(_post(ada, headers=[("X-CSRF-Token", new_token)]).status, 200, "the new token")
    # After logout, a fresh session does not accept the old session's token.
    check_eq(ada.write(("X-Session-Destroy", "true")).status, 200, "status of the Destroy")
    make_session(ada, {"user": "ada"})
    check_eq(_post(ada, headers=[("X-CSRF-Token", new_token)]).status, 403, "a token of a destroyed session")


def test_csrf_cookie(t): _csrf(t, "cookie")
def test_csrf_memory(t): _csrf(t, "memory")


def test_csrf_custom_header(t):
    proxy = _proxy(t, csrf={"enabled": True, "header": "X-Token"})
    b = Browser(proxy)
    make_session(b, {"user": "ada"})
    token = _token(b)
    check_eq(_post(b, headers=[("X-CSRF-Token", token)]).status, 403, "the default header when another is set")
    check_eq(_post(b, headers=[("X-Token", token)]).status, 200, "the configured header")


def test_without_csrf_no_token_and_no_check(t):
    proxy = start_proxy(t, "cookie")
    b = Browser(proxy)
    view = make_session(b, {"user": "ada"})
    check(not any(n.lower() == "x-session-csrf" for n, _ in view.headers), "X-Session-Csrf without csrf")
    check_eq(_post(b).status, 200, "POST without a token when csrf is off")
    check_eq(SessionView(b.request("/echo")).status, "active", "the session still works")
