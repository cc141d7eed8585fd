"""X-Session-* header hygiene on every manager (docs/HEADER-PROTOCOL.md, Stripping spoofed
headers; docs/HEADER-PROTOCOL.md, Malformed instructions): client
headers with the prefix never reach the backend, instruction headers never
reach the client, and a malformed instruction answers 502 "Bad Gateway",
changes nothing (all or nothing) and is explained in the error log."""

from harness import check, check_eq, check_error_response
from session_util import (Browser, check_no_set_cookie, check_rejected, check_session, log_mark, make_session,
                          set_header, start_proxy)

INJECTED = ("x-session-status", "x-session-id", "x-session-data", "x-session-expires")


def _normalized(name):
    return name.strip().lower().replace("_", "-")


def _session_headers(headers):
    return [(n, v) for n, v in headers if _normalized(n).startswith("x-session-")]


# Client headers that try to pass for session headers.
_SPOOFS = [
    ("X-Session-Data", '{"admin":true}'),
    ("x-session-status", "active"),
    ("X-SESSION-ID", "attacker-chosen-id"),
    ("X-Session-Expires", "99999999999"),
    ("X_Session_Data", '{"admin":"underscore"}'),
    ("x_session_status", "active"),
    ("X-Session_Id", "mixed-separators"),
    ("X-Session-Data", '{"admin":"repeated"}'),
    ("X-Session-Status", "   active   "),
    ("X-Session-Set", '{"admin":true}'),
    ("X-Session-Destroy", "true"),
    ("X-Session-Custom", "anything"),
    ("X-Session-", "bare prefix"),
]


def _check_backend_saw_only_injected(req, status, data_text, what):
    got = _session_headers(req.headers)
    names = sorted(_normalized(n) for n, _ in got)
    want = sorted(INJECTED) if status in ("new", "active") else ["x-session-data", "x-session-status"]
    check_eq(names, want, "%s: X-Session-* header names the backend got (%r)" % (what, got))
    values = {_normalized(n): v for n, v in got}
    check_eq(values["x-session-status"], status, "%s: X-Session-Status at the backend" % what)
    check_eq(values["x-session-data"], data_text, "%s: X-Session-Data at the backend" % what)
    for n, v in got:
        check("attacker" not in v and "underscore" not in v and "repeated" not in v and "admin" not in v
              and "99999999999" != v, "%s: a spoofed value reached the backend: %s: %s" % (what, n, v))


def _spoofed_request_headers_stripped(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    resp = b.request("/echo", _SPOOFS)
    check_eq(resp.status, 200, "status of a request with spoofed headers")
    _check_backend_saw_only_injected(proxy.backend.requests("/echo")[-1], "none", "{}", "no session")
    check_no_set_cookie(resp, "a request with a spoofed X-Session-Set/Destroy")

    make_session(b, {"user": "ada"})
    resp = b.request("/echo", _SPOOFS)
    _check_backend_saw_only_injected(proxy.backend.requests("/echo")[-1], "active", '{"user":"ada"}',
                                     "with a session")
    check_session(b.echo(), "active", {"user": "ada"}, "the session after requests with spoofed headers")

    # A header name with whitespace before the colon is malformed HTTP: it
    # must be refused (400), or at least never reach the backend.
    before = len(proxy.backend.requests())
    resp = proxy.request("GET", "/echo", [("X-Session-Data ", '{"admin":"space"}')])
    if resp.status != 400:
        check_eq(resp.status, 200, "status of a request with 'X-Session-Data :'")
        for req in proxy.backend.requests()[before:]:
            for n, v in req.headers:
                check("space" not in v, "a spoofed header with a space reached the backend: %r" % ((n, v),))


def test_spoofed_request_headers_stripped_cookie(t): _spoofed_request_headers_stripped(t, "cookie")
def test_spoofed_request_headers_stripped_memory(t): _spoofed_request_headers_stripped(t, "memory")
def test_spoofed_request_headers_stripped_file(t): _spoofed_request_headers_stripped(t, "file")
def test_spoofed_request_headers_stripped_redis(t): _spoofed_request_headers_stripped(t, "redis")


def _instruction_headers_hidden(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    responses = [
        b.write(("x-session-set", '{"a":1}'), ("X-Custom", "kept")),
        b.write(("X-SESSION-SET", '{"b":2}'), ("x-Session-Delete", "a")),
        b.write(("X_Session_Set", '{"c":3}')),
        b.write(("X-Session-Data", '{"echoed":true}'), ("x-session-id", "echoed"), ("X-Session-Status", "echoed"),
                ("X-Session-Expires", "1"), ("X-Session-Whatever", "x")),
        b.write(("X-Session-Regenerate", "true")),
        b.write(("x-session-destroy", "TRUE"), ("X-Session-Set", '{"d":4}')),
    ]
    for i, resp in enumerate(responses):
        check_eq(resp.status, 200, "status of response %d (body %r)" % (i, resp.body[:200]))
        check_eq(_session_headers(resp.headers), [], "X-Session-* headers the client got in response %d" % i)
    check_eq(responses[0].header_values("X-Custom"), ["kept"], "an ordinary response header")
    check_session(b.echo(), "active", {"d": 4}, "after the instruction sequence")


def test_instruction_headers_hidden_cookie(t): _instruction_headers_hidden(t, "cookie")
def test_instruction_headers_hidden_memory(t): _instruction_headers_hidden(t, "memory")
def test_instruction_headers_hidden_file(t): _instruction_headers_hidden(t, "file")
def test_instruction_headers_hidden_redis(t): _instruction_headers_hidden(t, "redis")


# ---------------------------------------------------------------------------
# Malformed instructions

_MALFORMED = [
    # (instructions, the header the 502 must name)
    ([("X-Session-Set", '{"a": ')], "X-Session-Set"),
    ([("X-Session-Set", "[1, 2]")], "X-Session-Set"),
    ([("X-Session-Set", '"text"')], "X-Session-Set"),
    ([("X-Session-Set", "null")], "X-Session-Set"),
    ([("X-Session-Set", '{"b": 2}'), ("X-Session-Set", "{oops}")], "X-Session-Set"),
    ([("X-Session-Delete", "a"), ("X-Session-Set", "not json")], "X-Session-Set"),
    ([("X-Session-Destroy", "true"), ("X-Session-Set", "[]")], "X-Session-Set"),
    ([("X-Session-Regenerate", "true"), ("X-Session-Set", "1")], "X-Session-Set"),
    ([("X-Session-Set", '{"b": 2}'), ("X-Session-Destroy", "maybe")], "X-Session-Destroy"),
    ([("X-Session-Set", '{"b": 2}'), ("X-Session-Regenerate", "yes")], "X-Session-Regenerate"),
    # Over max_session_bytes (1000 in this test): alone, and together with
    # a Delete that would free less than it adds.
    ([("X-Session-Set", '{"big": "%s"}' % ("x" * 1200))], "X-Session-Set"),
    ([("X-Session-Delete", "a"), ("X-Session-Set", '{"big": "%s"}' % ("y" * 1100))], "X-Session-Set"),
]


def _malformed_instruction_is_502_and_atomic(t, manager):
    proxy = start_proxy(t, manager, session={"max_session_bytes": 1000})
    b = Browser(proxy)
    base = make_session(b, {"a": 1})
    cookie = b.cookie
    for instructions, header in _MALFORMED:
        what = "response with %s" % ", ".join("%s: %.40s" % i for i in instructions)
        mark = log_mark(proxy)
        resp = b.write(*instructions)
        check_rejected(proxy, resp, mark, header, what)
        check_no_set_cookie(resp, what)
        check_eq(b.cookie, cookie, "%s: the client's cookie" % what)
        view = b.echo()
        check_session(view, "active", {"a": 1}, "%s: the session afterwards (nothing applied)" % what)
        check_eq(view.id, base.id, "%s: X-Session-Id afterwards" % what)

    # Without a session, a malformed instruction creates none.
    fresh = Browser(proxy)
    resp = fresh.write(("X-Session-Set", '{"b": 2}'), ("X-Session-Set", "{"))
    check_error_response(resp, 502)
    check_no_set_cookie(resp, "a malformed instruction without a session")


def test_malformed_instruction_is_502_and_atomic_cookie(t): _malformed_instruction_is_502_and_atomic(t, "cookie")
def test_malformed_instruction_is_502_and_atomic_memory(t): _malformed_instruction_is_502_and_atomic(t, "memory")
def test_malformed_instruction_is_502_and_atomic_file(t): _malformed_instruction_is_502_and_atomic(t, "file")
def test_malformed_instruction_is_502_and_atomic_redis(t): _malformed_instruction_is_502_and_atomic(t, "redis")


def _max_session_bytes_boundary(t, manager):
    """max_session_bytes limits the serialized (compact JSON) session: a
    session of exactly the limit is stored, one byte more is refused."""
    proxy = start_proxy(t, manager, session={"max_session_bytes": 1000})
    b = Browser(proxy)
    overhead = len('{"big":""}')
    exact = {"big": "x" * (1000 - overhead)}
    resp = b.write(set_header(exact))
    check_eq(resp.status, 200, "status of a session of exactly max_session_bytes (body %r)" % resp.body[:200])
    view = b.echo()
    check_session(view, "active", exact, "a session of exactly max_session_bytes")
    check_eq(len(view.data_text), 1000, "length of X-Session-Data of that session")
    mark = log_mark(proxy)
    resp = b.write(set_header({"big": "x" * (1001 - overhead)}))
    check_rejected(proxy, resp, mark, "X-Session-Set", "a write one byte over the limit",
                   reason="session would be 1001 bytes, over max_session_bytes (1000)")
    check_session(b.echo(), "active", exact, "the session after a write one byte over the limit")
    # A small Set that only the existing data pushes over the limit.
    mark = log_mark(proxy)
    resp = b.write(set_header({"z": 1}))
    check_rejected(proxy, resp, mark, "X-Session-Set", "a small Set over the limit",
                   reason="session would be 1006 bytes, over max_session_bytes (1000)")
    check_session(b.echo(), "active", exact, "the session after a small Set over the limit")


def test_max_session_bytes_boundary_cookie(t): _max_session_bytes_boundary(t, "cookie")
def test_max_session_bytes_boundary_memory(t): _max_session_bytes_boundary(t, "memory")
def test_max_session_bytes_boundary_file(t): _max_session_bytes_boundary(t, "file")
def test_max_session_bytes_boundary_redis(t): _max_session_bytes_boundary(t, "redis")
