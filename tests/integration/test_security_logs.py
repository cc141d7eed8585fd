"""No secret, cookie value or session value in any log line or error body,
and a secret_key_file others can read is warned about.

test_ops_logs.py drives the ordinary session paths; this file adds hostile
traffic carrying the same secrets: requests rejected before forwarding
(400, 413, 431) that hold a valid session cookie, malformed instructions
whose values hold session data, invalid cookies, spoofed X-Session-* headers,
upstream failures with a live session, at log.level debug with both access
log formats. Every error body is checked as it arrives. Instruction values
travel fully percent-encoded in the backend's /set-headers target, so they
never appear literally in a request target (which the access log records).
"""

import json
import os

from client import build_request
from harness import REMOVE, check, check_eq, free_port
from session_util import Browser, SessionView, start_proxy
from test_ops_support import set_headers_target

SECRET = "SECRETKEY-MARKER-security-logs-0123456789abcdef0123"
VALUE = "SESSIONVALUE-MARKER-71c4e"
BAD_COOKIE = "BADCOOKIE-MARKER-9f02d"


def _error_body_clean(resp, forbidden, what):
    body = (resp.body or b"").decode("latin-1")
    for label, text in forbidden.items():
        check(text not in body, "%s: the %d body holds the %s: %r" % (what, resp.status, label, body[:200]))


def _hostile_traffic(t, proxy, forbidden):
    b = Browser(proxy)
    check_eq(b.request(set_headers_target(("X-Session-Set", json.dumps({"note": VALUE})))).status, 200,
             "status of the Set creating the session")
    cookie = b.cookie
    check(cookie, "no session cookie issued")
    check_eq(SessionView(b.request("/echo")).data, {"note": VALUE}, "the session")
    forbidden["session cookie"] = cookie
    jar = "session_id=%s; other=%s" % (cookie, BAD_COOKIE)
    conn = lambda: proxy.connect(timeout=5)  # noqa: E731

    # Rejected before forwarding, with the valid cookie and the value aboard.
    rejected = [
        ("CL+TE", build_request("POST", "/echo", [("Cookie", jar), ("Content-Length", "5"),
                                                   ("Transfer-Encoding", "chunked"), ("X-Note", VALUE)], b"0\r\n\r\n"),
         400),
        ("bad header", build_request("GET", "/echo", [("Cookie", jar), ("X-Bad ", VALUE)]), 400),
        ("oversize head", build_request("GET", "/echo", [("Cookie", jar), ("X-Big", VALUE * 2000)]), 431),
        ("oversize body", build_request("POST", "/echo", [("Cookie", jar), ("Content-Length", "99999999999")], b""),
         413),
        ("bad chunk", build_request("POST", "/echo", [("Cookie", jar), ("Transfer-Encoding", "chunked")],
                                    b"zz\r\n" + VALUE.encode() + b"\r\n0\r\n\r\n"), 400),
    ]
    for what, raw, status in rejected:
        c = conn()
        c.try_send(raw)
        resp = c.read_response(timeout=5)
        check_eq(resp.status, status, "status for %s" % what)
        _error_body_clean(resp, forbidden, what)
        c.close()

    # Invalid cookies: tampered, foreign, marker text.
    for value in (cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"), BAD_COOKIE, cookie + BAD_COOKIE):
        forbidden["invalid cookie %d" % len(forbidden)] = value
        view = Browser(proxy, cookie=value).echo()
        check_eq(view.status, "invalid", "status for an invalid cookie")

    # Spoofed session headers and malformed instructions holding the value.
    resp = b.request("/echo", [("X-Session-Data", json.dumps({"note": VALUE})), ("x_session_id", VALUE)])
    check_eq(resp.status, 200, "status with spoofed headers")
    for name, value in [("X-Session-Set", '{"note":"%s"' % VALUE), ("X-Session-Set", '["%s"]' % VALUE),
                        ("X-Session-Set", json.dumps({"note": VALUE * 100})),  # over max_session_bytes
                        ("X-Session-Delete", "\u0001" + VALUE), ("X-Session-Destroy", VALUE),
                        ("X-Session-Regenerate", VALUE)]:
        resp = b.request(set_headers_target((name, value)))
        check_eq(resp.status, 502, "status for a malformed %s" % name)
        _error_body_clean(resp, forbidden, "malformed %s" % name)

    # Regenerate, then destroy: the cookies issued on the way are secrets too.
    check_eq(b.request(set_headers_target(("X-Session-Regenerate", "true"))).status, 200, "Regenerate")
    forbidden["regenerated cookie"] = b.cookie
    check_eq(b.request(set_headers_target(("X-Session-Destroy", "true"),
                                          ("X-Session-Set", json.dumps({"note": VALUE})))).status, 200,
             "Destroy + Set")
    forbidden["cookie after destroy"] = b.cookie


def _check_output(proc, forbidden, debug_expected=True):
    out, err = proc.stdout_text(), proc.stderr_text()
    check(out.strip(), "%s wrote no access log" % proc.name)
    check("[debug]" in err or not debug_expected, "%s: log.level debug produced no debug line" % proc.name)
    for label, text in forbidden.items():
        for stream, data in (("stdout", out), ("stderr", err)):
            check(text not in data, "%s's %s holds the %s (%r...)" % (proc.name, stream, label, text[:24]))


def _logs_hold_no_secrets(t, manager, access):
    forbidden = {"secret_key": SECRET, "session value": VALUE, "invalid cookie marker": BAD_COOKIE}
    proxy = start_proxy(t, manager, session={"max_session_bytes": 2048},
                        extra={"secret_key": SECRET, "log": {"level": "debug", "access": access}})
    _hostile_traffic(t, proxy, forbidden)

    # An upstream that is gone, with a live session: 502 bodies and warn lines.
    dead = start_proxy(t, manager, upstream="http://127.0.0.1:%d" % free_port(),
                       extra={"secret_key": SECRET, "log": {"level": "debug", "access": access}},
                       redis=getattr(proxy, "redis", None))
    resp = dead.request("GET", "/echo", [("Cookie", "session_id=" + forbidden["regenerated cookie"])])
    check_eq(resp.status, 502, "status with the upstream down")
    _error_body_clean(resp, forbidden, "upstream down")

    for p in (proxy, dead):
        check_eq(p.stop(), 0, "%s exit status" % p.name)
    _check_output(proxy, forbidden)
    _check_output(dead, forbidden, debug_expected=False)


def test_logs_hold_no_secrets_cookie_json(t): _logs_hold_no_secrets(t, "cookie", "json")
def test_logs_hold_no_secrets_cookie_combined(t): _logs_hold_no_secrets(t, "cookie", "combined")
def test_logs_hold_no_secrets_memory_json(t): _logs_hold_no_secrets(t, "memory", "json")
def test_logs_hold_no_secrets_memory_combined(t): _logs_hold_no_secrets(t, "memory", "combined")


# ---------------------------------------------------------------------------
# secret_key_file permissions

def _start_with_key_file(t, mode):
    path = t.write_file("secret-%o.key" % mode, SECRET + "\n")
    os.chmod(path, mode)
    proxy = t.sessiond(overrides={"secret_key": REMOVE, "secret_key_file": path})
    check_eq(proxy.request("GET", "/echo").status, 200, "sessiond with a %o secret_key_file serves" % mode)
    check_eq(proxy.stop(), 0, "exit status")
    err = proxy.stderr_text()
    check(SECRET not in err + proxy.stdout_text(), "the key file's secret appears in sessiond's output")
    return path, err


def test_world_readable_secret_key_file_warns(t):
    for mode in (0o644, 0o604, 0o640):
        path, err = _start_with_key_file(t, mode)
        lines = [line for line in err.splitlines() if path in line]
        check(lines and "warning" in lines[0].lower(),
              "no warning on stderr for a %o secret_key_file:\n%s" % (mode, err[-1500:]))


def test_private_secret_key_file_does_not_warn(t):
    for mode in (0o600, 0o400):
        path, err = _start_with_key_file(t, mode)
        check(path not in err and "readable" not in err.lower(),
              "a %o secret_key_file produced a warning:\n%s" % (mode, err[-1500:]))
