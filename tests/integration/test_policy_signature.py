"""Signed session headers (docs/HEADER-PROTOCOL.md, Signed session headers),
checked by the verifiers of the examples (examples/python/verify_signature.py,
examples/node/verify_signature.js) on requests a real sessiond forwarded.

A request through sessiond verifies; the same request with a changed
X-Session-* header, an added or removed one, another method or target, an
old timestamp, another key, or no signature fails both verifiers. A client
cannot send its own X-Session-Signature.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import time

from harness import REPO, check, check_eq
from session_util import Browser, make_session, start_proxy

KEY = "signature-key-for-the-tests-0123456789abcdef"


def _python_verifier():
    path = os.path.join(REPO, "examples", "python", "verify_signature.py")
    spec = importlib.util.spec_from_file_location("verify_signature", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lambda key, method, target, headers, max_age=60, now=None: module.verify(
        key.encode(), method, target, headers, max_age=max_age, now=now)


def _node_verify(key, method, target, headers, max_age=60, now=None):
    """The Node verifier on the same input (its command-line mode, or its
    module for max_age and now)."""
    script = os.path.join(REPO, "examples", "node", "verify_signature.js")
    check(shutil.which("node"), "node is not installed (Debian package nodejs)")
    if max_age == 60 and now is None:
        proc = subprocess.run(["node", script, key, method, target], input=json.dumps(headers).encode(),
                              capture_output=True, timeout=20)
        check(proc.returncode in (0, 1), "node verifier failed: %r" % proc.stderr[-500:])
        return proc.returncode == 0 and proc.stdout.strip() == b"valid"
    code = ("const v = require(%s); const args = JSON.parse(process.argv[1]);"
            "process.exit(v.verify(args.key, args.method, args.target, args.headers,"
            " {maxAge: args.max_age, now: args.now}) ? 0 : 1)" % json.dumps(script))
    args = json.dumps({"key": key, "method": method, "target": target, "headers": headers, "max_age": max_age,
                       "now": now if now is not None else time.time()})
    proc = subprocess.run(["node", "-e", code, args], capture_output=True, timeout=20)
    check(proc.returncode in (0, 1), "node verifier failed: %r" % proc.stderr[-500:])
    return proc.returncode == 0


def _forwarded(proxy, path):
    """(method, target, headers) of the last request the backend received at path."""
    req = proxy.backend.requests(path)[-1]
    return req.method, req.target, [list(h) for h in req.headers]


def _replace(headers, name, value):
    return [[n, value] if n.lower() == name.lower() else [n, v] for n, v in headers]


def _signature(headers):
    values = [v for n, v in headers if n.lower() == "x-session-signature"]
    check_eq(len(values), 1, "X-Session-Signature headers at the backend")
    return values[0]


def test_signed_headers_verify_and_every_change_fails(t):
    python_verify = _python_verifier()
    proxy = start_proxy(t, "memory", session={"session_cookie_secure": False},
                        extra={"upstream_signature": {"key": KEY}, "csrf": {"enabled": True},
                               "routes": [{"path": "/", "require": "none"}]})
    b = Browser(proxy)
    make_session(b, {"user": "ada", "name": "Zo\u00eb"})
    resp = b.request("/echo/./x/../?q=1", headers=[("X-Session-Signature", "t=1,v1=" + "0" * 64)])
    check_eq(resp.status, 200, "status (the backend echoes /echo/)")
    method, target, headers = _forwarded(proxy, "/echo/")
    check_eq(target, "/echo/?q=1", "the normalised target, which is what is signed")
    signature = _signature(headers)  # the client's was stripped, sessiond's added
    check(signature.startswith("t=") and ",v1=" in signature, "signature format: %r" % signature)
    t_value = int(signature[2:signature.index(",")])
    check(abs(t_value - time.time()) < 30, "the signature's time is now: %d" % t_value)
    names = sorted(n.lower() for n, _ in headers if n.lower().startswith("x-session-"))
    check_eq(names, ["x-session-csrf", "x-session-data", "x-session-expires", "x-session-id",
                     "x-session-signature", "x-session-status"], "X-Session-* headers signed and sent")

    for name, verify in (("python", python_verify), ("node", _node_verify)):
        check(verify(KEY, method, target, headers), "%s: a request through sessiond verifies" % name)
        forged_data = _replace(headers, "X-Session-Data", '{"user":"admin"}')
        bad = [
            ("a changed X-Session-Data", KEY, method, target, forged_data),
            ("a changed X-Session-Status", KEY, method, target, _replace(headers, "X-Session-Status", "none")),
            ("an added X-Session-* header", KEY, method, target, headers + [["X-Session-Role", "admin"]]),
            ("a removed X-Session-Csrf", KEY, method, target,
             [h for h in headers if h[0].lower() != "x-session-csrf"]),
            ("another method", KEY, "POST", target, headers),
            ("another target", KEY, method, "/admin", headers),
            ("another query", KEY, method, "/echo/?q=2", headers),
            ("another key", KEY + "x", method, target, headers),
            ("no signature", KEY, method, target, [h for h in headers if h[0].lower() != "x-session-signature"]),
            ("two signatures", KEY, method, target, headers + [["X-Session-Signature", signature]]),
            ("a changed time", KEY, method, target,
             _replace(headers, "X-Session-Signature", "t=%d%s" % (t_value + 1, signature[signature.index(","):]))),
        ]
        for what, key, m, tg, hs in bad:
            check(not verify(key, m, tg, hs), "%s: %s must not verify" % (name, what))
        # Too old: the same request presented max_age + 1 seconds later.
        check(verify(KEY, method, target, headers, max_age=60, now=t_value + 60),
              "%s: 60 s old with max age 60" % name)
        check(not verify(KEY, method, target, headers, max_age=60, now=t_value + 61),
              "%s: an old timestamp must not verify" % name)
        check(not verify(KEY, method, target, headers, max_age=60, now=t_value - 61),
              "%s: a timestamp from the future must not verify" % name)


def test_requests_without_a_session_are_signed_too(t):
    python_verify = _python_verifier()
    proxy = start_proxy(t, "cookie", extra={"upstream_signature": {"key": KEY}})
    check_eq(proxy.request("GET", "/echo").status, 200, "status")
    method, target, headers = _forwarded(proxy, "/echo")
    names = sorted(n.lower() for n, _ in headers if n.lower().startswith("x-session-"))
    check_eq(names, ["x-session-data", "x-session-signature", "x-session-status"], "headers of a no-session request")
    check(python_verify(KEY, method, target, headers), "a request without a session verifies")
    check(not python_verify(KEY, method, target, _replace(headers, "X-Session-Status", "active")),
          "a status changed to active must not verify")


def test_without_upstream_signature_no_header(t):
    proxy = start_proxy(t, "cookie")
    resp = proxy.request("GET", "/echo", [("X-Session-Signature", "t=1,v1=" + "0" * 64)])
    check_eq(resp.status, 200, "status")
    _, _, headers = _forwarded(proxy, "/echo")
    check(not any(n.lower() == "x-session-signature" for n, _ in headers),
          "X-Session-Signature reached the backend without upstream_signature")
