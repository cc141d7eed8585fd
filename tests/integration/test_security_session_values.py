"""Hostile session values never split or corrupt a header.

Values holding CR, LF, NUL and other control characters, non-ASCII text and
would-be header lines are stored and injected \\u-escaped: the backend's
next request carries exactly one X-Session-Data header whose JSON parses
back to the same values, and no header the values tried to inject. Raw
invalid UTF-8 inside an X-Session-Set value is refused with 502 and changes
nothing. Long values up to max_session_bytes round-trip whole.
"""

import json
import urllib.parse

from harness import check, check_eq
from session_util import Browser, check_rejected, log_mark, make_session, set_header, start_proxy

HOSTILE = {
    "crlf": "a\r\nX-Injected: crlf\r\n\r\nGET /smuggled HTTP/1.1",
    "lf": "b\nX-Injected: lf",
    "cr": "c\rX-Injected: cr",
    "nul": "d\u0000e",
    "controls": "".join(chr(c) for c in range(0x20)) + "\u007f",
    "unicode": "caf\u00e9 \u6f22\u5b57 \U0001f600 \u202e\u2028\u2029",
    "quote_backslash": "\"\\'",
    "json_in_string": '{"admin": true}',
    "header_like": "X-Session-Status: active",
    "nested": {"list": ["\r\n", "\u0000", {"deep": "\n\n"}], "n": -1.5e300, "t": True, "null": None},
    "k\u00e9y \u6f22": "non-ASCII key",
}


def _one_data_header(proxy, what):
    req = proxy.backend.requests("/echo")[-1]
    values = req.header_values("X-Session-Data")
    check_eq(len(values), 1, "%s: X-Session-Data headers at the backend" % what)
    text = values[0]
    check(all(0x20 <= ord(c) < 0x7F for c in text),
          "%s: X-Session-Data is not printable ASCII: %r" % (what, text[:200]))
    check(not req.header_values("X-Injected"), "%s: a value injected a header: %r" % (what, req.headers))
    return req, json.loads(text)


def _hostile_values_round_trip(t, manager):
    proxy = start_proxy(t, manager, session={"max_session_bytes": 3000})
    b = Browser(proxy)
    make_session(b, {"start": 1})
    resp = b.write(set_header(HOSTILE))
    check_eq(resp.status, 200, "status of a Set with hostile values (body %r)" % resp.body[:200])
    check(not resp.header_values("X-Injected"), "a value injected a response header")
    view = b.echo()
    req, data = _one_data_header(proxy, "after the hostile Set")
    want = dict(HOSTILE, start=1)
    check_eq(data, want, "the session as the backend parsed it")
    check_eq(len(req.header_values("X-Session-Status")), 1, "X-Session-Status headers")
    check_eq(view.status, "active", "status after the hostile Set")
    # The values survive a further write untouched (they were stored escaped,
    # not re-interpreted).
    check_eq(b.write(set_header({"more": 2})).status, 200, "status of a second Set")
    b.echo()
    _, data = _one_data_header(proxy, "after a second Set")
    check_eq(data, dict(want, more=2), "the session after a second Set")


def test_hostile_values_round_trip_cookie(t): _hostile_values_round_trip(t, "cookie")
def test_hostile_values_round_trip_memory(t): _hostile_values_round_trip(t, "memory")
def test_hostile_values_round_trip_file(t): _hostile_values_round_trip(t, "file")


def _raw_set_target(value_bytes):
    """/set-headers answering X-Session-Set with exactly these bytes (the
    backend writes header values as latin-1, byte for byte)."""
    return "/set-headers?" + urllib.parse.urlencode([("X-Session-Set", value_bytes.decode("latin-1"))])


INVALID_UTF8 = [
    ("lone_continuation_byte", b'{"v":"a\x80b"}'),
    ("invalid_byte_ff", b'{"v":"\xff\xfe"}'),
    ("truncated_sequence", b'{"v":"\xe2\x82"}'),
    ("overlong_slash", b'{"v":"\xc0\xaf"}'),
    ("utf8_encoded_surrogate", b'{"v":"\xed\xa0\x80"}'),
    ("beyond_u10ffff", b'{"v":"\xf4\x90\x80\x80"}'),
    ("invalid_in_key", b'{"\xff":"v"}'),
]


def _invalid_utf8_is_502(t, manager):
    proxy = start_proxy(t, manager)
    b = Browser(proxy)
    make_session(b, {"user": "ada"})
    for what, raw in INVALID_UTF8:
        mark = log_mark(proxy)
        resp = b.request(_raw_set_target(raw))
        check_rejected(proxy, resp, mark, "X-Session-Set", what)
        check_eq(b.echo().data, {"user": "ada"}, "%s: the session after a refused Set" % what)
        _one_data_header(proxy, what)
    # Raw valid UTF-8 is accepted and injected \u-escaped.
    resp = b.request(_raw_set_target('{"v":"caf\u00e9 \U0001f600"}'.encode("utf-8")))
    check_eq(resp.status, 200, "status of a Set with raw valid UTF-8")
    b.echo()
    _, data = _one_data_header(proxy, "raw valid UTF-8")
    check_eq(data, {"user": "ada", "v": "caf\u00e9 \U0001f600"}, "the session after a raw UTF-8 Set")


def test_invalid_utf8_in_set_is_502_cookie(t): _invalid_utf8_is_502(t, "cookie")
def test_invalid_utf8_in_set_is_502_memory(t): _invalid_utf8_is_502(t, "memory")


def test_lone_surrogate_escape_is_refused_or_round_trips(t):
    # "\ud800" is valid JSON text but no Unicode character: refusing it (502)
    # or storing it so that it parses back the same are both safe.
    proxy = start_proxy(t, "memory")
    b = Browser(proxy)
    make_session(b, {"user": "ada"})
    resp = b.write(("X-Session-Set", '{"v":"\\ud800x","w":"\\udc00"}'))
    b.echo()
    _, data = _one_data_header(proxy, "lone surrogates")
    if resp.status == 502:
        check_eq(data, {"user": "ada"}, "the session after a refused Set")
    else:
        check_eq(resp.status, 200, "status of a Set with lone surrogates")
        check_eq(data, {"user": "ada", "v": "\ud800x", "w": "\udc00"}, "lone surrogates after a round trip")


def test_values_up_to_max_session_bytes_round_trip(t):
    limit = 20000
    # The value travels in the /set-headers target (percent-encoded) and in
    # the backend's response head: both must fit max_header_bytes.
    proxy = start_proxy(t, "memory", session={"max_session_bytes": limit},
                        extra={"limits": {"max_header_bytes": 262144}})
    b = Browser(proxy)
    make_session(b, {"s": ""})
    # Escapes make the stored JSON much longer than the text: \r\n -> 4 bytes,
    # \u0001 -> 6. Grow a value until the limit refuses it, checking each
    # accepted size round-trips whole.
    accepted = 0
    for n in (500, 1000, 1500, 1990, 1999, 2000, 2500):
        value = "\r\n" * n + "\u0001" * n
        mark = log_mark(proxy)
        resp = b.write(set_header({"s": value}))
        size = len(json.dumps({"s": value}, separators=(",", ":")))
        if resp.status == 502:
            check(size > limit - 64, "a %d-byte session was refused under max_session_bytes %d" % (size, limit))
            check_rejected(proxy, resp, mark, "X-Session-Set", "a %d-byte session" % size,
                           reason="over max_session_bytes (%d)" % limit)
            continue
        check_eq(resp.status, 200, "status for a %d-byte session" % size)
        check(size <= limit, "a %d-byte session was accepted over max_session_bytes %d" % (size, limit))
        b.echo()
        _, data = _one_data_header(proxy, "a %d-byte value" % size)
        check(data["s"] == value, "a %d-byte value came back changed (%d chars)" % (size, len(data["s"])))
        accepted = max(accepted, size)
    check(accepted > limit - 100, "no value near max_session_bytes was accepted (largest %d)" % accepted)
