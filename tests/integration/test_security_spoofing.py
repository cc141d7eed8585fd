"""X-Session-* spoofing in both directions (docs/HEADER-PROTOCOL.md, Stripping spoofed headers).

Client side: every header whose name is X-Session-* in any case, with '_'
for '-', repeated, with whitespace around its value, is removed: the raw
bytes the backend received hold none of the spoofed values, and the only
X-Session-* headers there are sessiond's own. Backend side: instruction and
echoed X-Session-* headers in any spelling never reach the client.
test_sessions_headers.py covers the common spellings on every manager; this
file generates every spelling of every name.
"""

import itertools

from harness import check, check_eq
from session_util import Browser, make_session, start_proxy

NAMES = ["Status", "Id", "Data", "Expires", "Set", "Delete", "Destroy", "Regenerate", "Anything", ""]
MARK = "SPOOF"


def _spellings(suffix):
    """X-Session-<suffix> in lower, upper, alternating case, with '_' for each
    '-' (all and one at a time)."""
    base = "X-Session-" + suffix
    alt = "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(base))
    out = {base, base.lower(), base.upper(), alt, alt.swapcase(), base.replace("-", "_"),
           alt.replace("-", "_"), base.replace("-", "_", 1), "X-Session_" + suffix}
    return sorted(out)


def _spoofed_headers():
    headers = []
    values = ["%s-%d", " %s-%d", "%s-%d ", "\t%s-%d\t", "  %s-%d  \t "]
    for n, (suffix, fmt) in enumerate(itertools.product(NAMES, values)):
        for name in _spellings(suffix):
            headers.append((name, fmt % (MARK, n)))
    return headers


def _normalized(name):
    return name.lower().replace("_", "-")


def _check_clean(proxy, status, what):
    req = proxy.backend.requests("/echo")[-1]
    session = [(n, v) for n, v in req.headers if _normalized(n).startswith("x-session-")]
    names = sorted(n for n, _ in session)
    want = ["X-Session-Data", "X-Session-Expires", "X-Session-Id", "X-Session-Status"]
    if status not in ("new", "active"):
        want = ["X-Session-Data", "X-Session-Status"]
    check_eq(names, want, "%s: X-Session-* headers at the backend" % what)
    check_eq(dict(session)["X-Session-Status"], status, "%s: X-Session-Status" % what)
    for raw in proxy.backend.raw_received():
        check(MARK.encode() not in raw, "%s: a spoofed value reached the backend: %r"
              % (what, raw[raw.find(MARK.encode()) - 60:][:120]))


def _client_spoofing_never_reaches_backend(t, manager):
    proxy = start_proxy(t, manager)
    headers = _spoofed_headers()
    check(len(headers) > 300, "only %d spoofed headers generated" % len(headers))
    b = Browser(proxy)
    resp = b.request("/echo", headers)
    check_eq(resp.status, 200, "status of a request with %d spoofed headers" % len(headers))
    _check_clean(proxy, "none", "without a session")
    check(not resp.header_values("Set-Cookie"), "spoofed Set/Regenerate headers created a session")

    make_session(b, {"user": "ada"})
    resp = b.request("/echo", headers)
    check_eq(resp.status, 200, "status with a session")
    _check_clean(proxy, "active", "with a session")
    check_eq(b.echo().data, {"user": "ada"}, "the session after spoofed Set/Delete/Destroy headers")


def test_client_spoofing_never_reaches_backend_memory(t): _client_spoofing_never_reaches_backend(t, "memory")
def test_client_spoofing_never_reaches_backend_cookie(t): _client_spoofing_never_reaches_backend(t, "cookie")


def _instructions_never_reach_client(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    make_session(b, {"keep": 1})
    # Each spelling of each instruction in its own response, applied and hidden.
    steps = []
    for i, name in enumerate(_spellings("Set")):
        steps.append(([(name, '{"k%d": %d}' % (i, i))], {"k%d" % i: i}))
    for name in _spellings("Delete"):
        steps.append(([(name, " k0 ")], {"k0": None}))
    echoes = [(name, "%s-echo" % MARK) for s in ("Status", "Id", "Data", "Expires", "Anything", "")
              for name in _spellings(s)]
    expected = {"keep": 1}
    for headers, change in steps:
        resp = b.write(*(headers + echoes))
        check_eq(resp.status, 200, "status for %r (body %r)" % (headers, resp.body[:200]))
        leaked = [(n, v) for n, v in resp.headers if _normalized(n).startswith("x-session-") or MARK in v]
        check_eq(leaked, [], "X-Session-* headers the client got for %r" % (headers,))
        for k, v in change.items():
            if v is None:
                expected.pop(k, None)
            else:
                expected[k] = v
    check_eq(b.echo().data, expected, "the session after every spelling of Set and Delete")
    for name in _spellings("Regenerate") + _spellings("Destroy"):
        resp = b.write((name, "true"))
        check_eq(resp.status, 200, "status for %s" % name)
        check_eq([n for n, _ in resp.headers if _normalized(n).startswith("x-session-")], [],
                 "X-Session-* headers the client got for %s" % name)


def test_instructions_never_reach_client_memory(t): _instructions_never_reach_client(t, "memory")
def test_instructions_never_reach_client_cookie(t): _instructions_never_reach_client(t, "cookie")
