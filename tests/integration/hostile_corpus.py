"""The hostile-HTTP corpus: malformed and ambiguous requests, as data.

Each Case is one conversation on a fresh client connection: the raw bytes
sent (optionally in timed parts, optionally followed by a half-close), the
responses sessiond must answer, what happens to the connection afterwards,
and exactly which requests may reach the backend (Up). test_hostile_http.py
runs every case as its own test; `python3 hostile_corpus.py --stubs` prints
the test functions that file must hold (a test there checks they match).

Expected outcomes follow RFC 9110/9112 and sessiond's documented strictness
(src/http/message.h, body.h, client_connection.h). Where the RFCs leave a
choice, the case names the one sessiond made, in a comment:
  - duplicate Content-Length is refused even when the values are equal, and
    a Content-Length list ("5, 5") too (RFC 9112 6.3 allows either);
  - Content-Length has at most 18 digits, a chunk size at most 15 hex digits
    (leading zeros included): longer ones are refused, never wrapped;
  - Transfer-Encoding must be exactly "chunked" (any case, surrounding OWS
    is not part of a field value) and appear once; anything else is 400,
    including codings RFC 9112 would allow before chunked (gzip, chunked);
  - a version other than HTTP/1.0 and HTTP/1.1 (HTTP/1.2, HTTP/2.0, an
    explicit HTTP/0.9) is 505; a request line without a version (an
    HTTP/0.9 request) is 400, at once;
  - unknown methods (for http-parser) are 400, CONNECT is 405.

Expectations per response: a status code, a tuple of acceptable codes, or
REJECTED for "400 then close, or a silent close" where both are safe and the
RFC prefers neither. A case with or_reject accepts a 400 (then a close and
nothing upstream) instead of its expected outcome: refusing is always safe,
and some valid-but-odd spellings are legitimately refused. After the
responses the connection is "closed" (closed by sessiond, nothing more sent)
or "open" (a marker request on it must still be answered correctly, which
proves the framing stayed in sync).

Every request target of a case is "/echo?<case name>" unless the case says
otherwise; anything that must never reach the backend carries the word
"smuggled" in its target, so it can be found in the raw upstream bytes.
"""

import sys

TARGET = b"@T@"  # replaced by the case's target
HOST = b"Host: test.local"
HIDDEN = b"GET /echo?smuggled HTTP/1.1\r\nHost: test.local\r\n\r\n"
SECOND = b"GET /echo?second HTTP/1.1\r\nHost: test.local\r\n\r\n"
CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"
REJECTED = "rejected"

# The sessiond limits the corpus runs with (test_hostile_http.CONFIG).
MAX_HEADER_BYTES = 4096
MAX_BODY_BYTES = 1000


class Up:
    """One request the backend is expected to receive. target None: the
    case's target. complete False: the request may arrive incomplete (its
    body a prefix of `body`) or not at all, e.g. when the client vanished
    mid-body. host: the Host the backend must see. absent: header names
    that must not reach the backend."""

    def __init__(self, method="GET", body=b"", target=None, host=None, complete=True, absent=()):
        self.method = method
        self.body = body
        self.target = target
        self.host = host
        self.complete = complete
        self.absent = tuple(a.lower() for a in absent)

    def __repr__(self):
        return "<Up %s %s %d body bytes%s>" % (self.method, self.target, len(self.body),
                                               "" if self.complete else " (may be partial or absent)")


class Case:
    def __init__(self, name, category, raw, expect, then, upstream, methods, half_close, gap, interim, or_reject,
                 note):
        self.name = name
        self.category = category
        self.target = "/echo?" + name
        t = self.target.encode()
        self.parts = [p.replace(TARGET, t) for p in (raw if isinstance(raw, list) else [raw])]
        self.raw = b"".join(self.parts)
        self.expect = expect            # [status | REJECTED, ...]
        self.then = then                # "closed" | "open"
        self.upstream = [u if u.target else _with_target(u, self.target) for u in upstream]
        self.methods = methods or ["GET"] * len(expect)
        self.half_close = half_close    # shutdown(SHUT_WR) after the last part
        self.gap = gap                  # seconds between parts
        self.interim = interim          # None: not checked; else the 1xx statuses before the first response
        self.or_reject = or_reject      # a 400, a close and nothing upstream is an accepted outcome too
        self.note = note

    def __repr__(self):
        return "<Case %s: %r>" % (self.name, self.raw[:120])


def _with_target(up, target):
    up.target = target
    return up


CASES = []


def add(name, category, raw, expect, then=None, upstream=(), methods=None, half_close=False, gap=0.15,
        interim=None, or_reject=False, note=""):
    if not name.isidentifier() or any(c.name == name for c in CASES):
        raise ValueError("bad or duplicate case name %r" % name)
    if not isinstance(expect, list):
        expect = [expect]
    if then is None:
        then = "open" if expect and all(isinstance(s, int) and s < 400 for s in expect) else "closed"
    CASES.append(Case(name, category, raw, expect, then, list(upstream), methods, half_close, gap, interim,
                      or_reject, note))


def req(method=b"GET", target=TARGET, version=b"HTTP/1.1", headers=(HOST,), body=b""):
    return b"%s %s %s\r\n" % (method, target, version) + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


def post(headers, body, version=b"HTTP/1.1"):
    return req(b"POST", headers=(HOST,) + tuple(headers), body=body, version=version)


def get_with(*headers):
    return req(headers=(HOST,) + tuple(headers))


# ---------------------------------------------------------------------------
# CL.TE and TE.CL: both framing headers present is always 400 (docs/HTTP.md, Framing and smuggling).

_SMUGGLE_BODY = b"0\r\n\r\n" + HIDDEN
add("cl_te", "cl_te", post([b"Content-Length: %d" % len(_SMUGGLE_BODY), b"Transfer-Encoding: chunked"],
                           _SMUGGLE_BODY), 400)
add("te_cl", "cl_te", post([b"Transfer-Encoding: chunked", b"Content-Length: %d" % len(_SMUGGLE_BODY)],
                           _SMUGGLE_BODY), 400)
add("cl_te_zero_length", "cl_te", post([b"Content-Length: 0", b"Transfer-Encoding: chunked"], _SMUGGLE_BODY), 400)
add("te_cl_short_length", "cl_te", post([b"Transfer-Encoding: chunked", b"Content-Length: 3"],
                                        b"5\r\nhello\r\n0\r\n\r\n" + HIDDEN), 400)
add("cl_te_lowercase_names", "cl_te", post([b"content-length: 5", b"transfer-encoding: chunked"],
                                           b"0\r\n\r\nX"), 400)
add("cl_te_uppercase_names", "cl_te", post([b"CONTENT-LENGTH: 5", b"TRANSFER-ENCODING: CHUNKED"],
                                           b"0\r\n\r\nX"), 400)
add("cl_te_separated_by_headers", "cl_te", post([b"Content-Length: 5", b"X-A: 1", b"X-B: 2",
                                                 b"Transfer-Encoding: chunked"], b"0\r\n\r\nX"), 400)
add("cl_te_http10", "cl_te", post([b"Content-Length: 5", b"Transfer-Encoding: chunked"], b"0\r\n\r\nX",
                                  version=b"HTTP/1.0"), 400)
add("cl_te_on_get", "cl_te", req(headers=(HOST, b"Content-Length: 5", b"Transfer-Encoding: chunked"),
                                 body=b"0\r\n\r\nX"), 400)
add("te_http10_chunked", "cl_te", post([b"Transfer-Encoding: chunked"], CHUNKED_HELLO, version=b"HTTP/1.0"), 400,
    note="HTTP/1.0 has no chunked coding: a 1.0 backend would read the body as the next request")

# Every Transfer-Encoding spelling, valid or not, next to a Content-Length.
TE_VALUES = [(b"chunked", "chunked"), (b"CHUNKED", "upper"), (b"xchunked", "xchunked"),
             (b"chunked, identity", "chunked_identity"), (b"chunked\t", "trailing_tab"),
             (b" chunked", "extra_leading_space"), (b"chunk", "chunk"), (b"identity", "identity"),
             (b"gzip", "gzip"), (b"gzip, chunked", "gzip_chunked"), (b"", "empty")]
for _v, _label in TE_VALUES:
    add("cl_with_te_%s" % _label, "cl_te",
        post([b"Content-Length: 5", b"Transfer-Encoding: " + _v], b"0\r\n\r\nX"), 400)

# ---------------------------------------------------------------------------
# TE.TE: obfuscated Transfer-Encoding alone. Leading/trailing OWS is not part
# of a field value (RFC 9110 5.5) and codings are case-insensitive, so those
# spellings ARE chunked and the body must be decoded and re-framed intact.

TE_VALID = [(b"chunked", "plain"), (b"CHUNKED", "upper"), (b"Chunked", "capitalised"), (b"cHuNkEd", "mixed_case")]
for _v, _label in TE_VALID:
    add("te_valid_%s" % _label, "te_te", post([b"Transfer-Encoding: " + _v], CHUNKED_HELLO), 200,
        upstream=[Up("POST", b"hello")])
# Surrounding whitespace: chunked as well, but refusing it is safe too.
TE_OWS = [(b"chunked\t", "trailing_tab"), (b"chunked ", "trailing_space"), (b"\tchunked", "leading_tab"),
          (b" chunked", "extra_leading_space"), (b"  chunked  \t", "ows_both_sides")]
for _v, _label in TE_OWS:
    add("te_ows_%s" % _label, "te_te", post([b"Transfer-Encoding: " + _v], CHUNKED_HELLO), 200,
        upstream=[Up("POST", b"hello")], or_reject=True)

TE_INVALID = [(b"xchunked", "xchunked"), (b"chunkedx", "chunkedx"), (b"chunked, identity", "chunked_identity"),
              (b"identity, chunked", "identity_chunked"), (b"chunked,chunked", "chunked_twice_in_list"),
              (b"chunked, chunked", "chunked_twice_in_list_spaced"), (b"gzip, chunked", "gzip_chunked"),
              (b"chunk", "chunk"), (b"identity", "identity"), (b"gzip", "gzip"), (b"deflate", "deflate"),
              (b"", "empty"), (b"chunked;q=1", "parameter"), (b'"chunked"', "quoted"),
              (b"ch unked", "inner_space"), (b"chunked\x0b", "vertical_tab"), (b"chunked\x0c", "form_feed"),
              (b"chunked\x00", "nul"), (b"\xffchunked", "obs_text_prefix"),
              (b"chun\xe2\x84\xaaed", "kelvin_sign_k"), (b"chunked,", "trailing_comma"), (b",chunked", "leading_comma")]
for _v, _label in TE_INVALID:
    add("te_invalid_%s" % _label, "te_te", post([b"Transfer-Encoding: " + _v], CHUNKED_HELLO + HIDDEN), 400)

add("te_duplicated_chunked", "te_te",
    post([b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"], CHUNKED_HELLO + HIDDEN), 400)
add("te_duplicated_chunked_identity", "te_te",
    post([b"Transfer-Encoding: chunked", b"Transfer-Encoding: identity"], CHUNKED_HELLO + HIDDEN), 400)
add("te_duplicated_identity_chunked", "te_te",
    post([b"Transfer-Encoding: identity", b"Transfer-Encoding: chunked"], CHUNKED_HELLO + HIDDEN), 400)
add("te_duplicated_different_case", "te_te",
    post([b"transfer-encoding: chunked", b"TRANSFER-ENCODING: chunked"], CHUNKED_HELLO + HIDDEN), 400)
add("te_line_folded_value", "te_te", post([b"Transfer-Encoding:\r\n chunked"], CHUNKED_HELLO + HIDDEN), 400)
add("te_line_folded_continuation", "te_te",
    post([b"Transfer-Encoding: chunked\r\n , identity"], CHUNKED_HELLO + HIDDEN), 400)
add("te_folded_with_tab", "te_te", post([b"Transfer-Encoding:\r\n\tchunked"], CHUNKED_HELLO + HIDDEN), 400)
add("te_space_before_colon", "te_te", post([b"Transfer-Encoding : chunked"], CHUNKED_HELLO + HIDDEN), 400)
add("te_tab_before_colon", "te_te", post([b"Transfer-Encoding\t: chunked"], CHUNKED_HELLO + HIDDEN), 400)
add("te_name_with_leading_space", "te_te", post([b" Transfer-Encoding: chunked"], CHUNKED_HELLO + HIDDEN), 400,
    note="a first header line starting with whitespace is obs-fold of the request line")
# Not a Transfer-Encoding field at all: the request has no body, so the
# chunked bytes are the next "request" ("5", not a request line: 400). The
# underscore spelling must not reach the backend, where a CGI-style server
# would read it as Transfer-Encoding and desynchronise.
add("te_name_with_underscore", "te_te", post([b"Transfer_Encoding: chunked"], CHUNKED_HELLO), [200, 400],
    upstream=[Up("POST", b"", absent=("transfer_encoding",))])

# ---------------------------------------------------------------------------
# Content-Length spellings.

add("cl_plain", "content_length", post([b"Content-Length: 5"], b"hello"), 200, upstream=[Up("POST", b"hello")])
add("cl_leading_zeros", "content_length", post([b"Content-Length: 005"], b"hello"), 200,
    upstream=[Up("POST", b"hello")])
add("cl_no_space", "content_length", post([b"Content-Length:5"], b"hello"), 200, upstream=[Up("POST", b"hello")])
add("cl_ows_both_sides", "content_length", post([b"Content-Length: \t5 \t"], b"hello"), 200,
    upstream=[Up("POST", b"hello")], or_reject=True)
add("cl_zero_on_get", "content_length", req(headers=(HOST, b"Content-Length: 0")), 200, upstream=[Up("GET")])
add("cl_body_on_get", "content_length", req(headers=(HOST, b"Content-Length: 5"), body=b"hello"), 200,
    upstream=[Up("GET", b"hello")])
add("cl_exactly_max_body", "content_length", post([b"Content-Length: %d" % MAX_BODY_BYTES], b"b" * MAX_BODY_BYTES),
    200, upstream=[Up("POST", b"b" * MAX_BODY_BYTES)])
add("cl_body_holds_a_request", "content_length", post([b"Content-Length: %d" % len(HIDDEN)], HIDDEN), 200,
    upstream=[Up("POST", HIDDEN)], note="a request inside a body is data, never a request of its own")
add("cl_body_with_nul_bytes", "content_length", post([b"Content-Length: 5"], b"a\x00b\x00c"), 200,
    upstream=[Up("POST", b"a\x00b\x00c")])
add("cl_body_with_crlfs", "content_length", post([b"Content-Length: 8"], b"\r\n\r\n\r\n\r\n"), 200,
    upstream=[Up("POST", b"\r\n\r\n\r\n\r\n")])

CL_INVALID = [(b"+5", "plus_sign"), (b"-5", "minus_sign"), (b"-0", "minus_zero"), (b"5 5", "inner_space"),
              (b"5,5", "list_equal"), (b"5, 5", "list_equal_spaced"), (b"5, 6", "list_different"),
              (b"0x5", "hex"), (b"5.0", "decimal_point"), (b"5e0", "exponent"), (b"", "empty"),
              (b"abc", "letters"), (b"5a", "trailing_letter"), (b"1_0", "underscore"),
              (b"\xef\xbc\x95", "fullwidth_digit"), (b"5\x0b", "vertical_tab"), (b"5\x00", "nul"),
              (b"\"5\"", "quoted"), (b"9999999999999999999", "nineteen_digits"),
              (b"0000000000000000005", "nineteen_digits_leading_zeros"),
              (b"18446744073709551616", "two_to_the_64"), (b"18446744073709551621", "wraps_to_5_in_64_bits"),
              (b"99999999999999999999999999999999", "thirty_two_digits")]
for _v, _label in CL_INVALID:
    add("cl_invalid_%s" % _label, "content_length", post([b"Content-Length: " + _v], b"hello" + HIDDEN), 400)

add("cl_duplicate_equal", "content_length", post([b"Content-Length: 5", b"Content-Length: 5"], b"hello"), 400)
add("cl_duplicate_different", "content_length",
    post([b"Content-Length: 5", b"Content-Length: %d" % (5 + len(HIDDEN))], b"hello" + HIDDEN), 400)
add("cl_duplicate_different_case", "content_length",
    post([b"content-length: 5", b"CONTENT-LENGTH: 5"], b"hello"), 400)
add("cl_duplicate_zero_then_length", "content_length",
    post([b"Content-Length: 0", b"Content-Length: %d" % len(HIDDEN)], HIDDEN), 400)
add("cl_space_before_colon", "content_length", post([b"Content-Length : 5"], b"hello"), 400)
add("cl_line_folded", "content_length", post([b"Content-Length:\r\n 5"], b"hello"), 400)
add("cl_over_max_body", "content_length", post([b"Content-Length: %d" % (MAX_BODY_BYTES + 1)], b"x" * 10), 413)
add("cl_huge_eleven_digits", "content_length", post([b"Content-Length: 99999999999"], b"hello"), 413)
add("cl_huge_eighteen_digits", "content_length", post([b"Content-Length: 999999999999999999"], b"hello"), 413)
# The body ends early and the client goes away: at most a partial request upstream.
add("cl_longer_than_data_then_eof", "content_length", post([b"Content-Length: 10"], b"hello"), [],
    upstream=[Up("POST", b"hello", complete=False)], half_close=True)
# The body is shorter than the data: the rest is the next request ("lo" and
# EOF: an incomplete head, closed without an answer).
add("cl_shorter_than_data", "content_length", post([b"Content-Length: 3"], b"hello"), [200],
    then="closed", upstream=[Up("POST", b"hel")], half_close=True)
add("cl_name_with_underscore", "content_length", post([b"Content_Length: 5"], b"hello"), [200],
    then="closed", upstream=[Up("POST", b"", absent=("content_length",))], half_close=True,
    note="no Content-Length: no body; the underscore spelling must not reach the backend either")

# ---------------------------------------------------------------------------
# Chunked bodies: valid ones are decoded and re-framed intact.

CHUNKED_VALID = [
    ("simple", CHUNKED_HELLO, b"hello"),
    ("several_chunks", b"2\r\nhe\r\n3\r\nllo\r\n1\r\n!\r\n0\r\n\r\n", b"hello!"),
    ("uppercase_hex", b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
    ("lowercase_hex", b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
    ("leading_zeros", b"0005\r\nhello\r\n000\r\n\r\n", b"hello"),
    ("fifteen_digit_size", b"00000000000005\r\nhello\r\n0\r\n\r\n", b"hello"),
    ("extension", b"5;foo=bar\r\nhello\r\n0\r\n\r\n", b"hello"),
    ("extension_quoted", b'5;foo="b a;r"\r\nhello\r\n0\r\n\r\n', b"hello"),
    ("extension_without_value", b"5;foo\r\nhello\r\n0\r\n\r\n", b"hello"),
    ("extension_with_bws", b"5 ;foo=bar\r\nhello\r\n0\r\n\r\n", b"hello"),
    ("extension_several", b"5;a=1;b=2\r\nhello\r\n0\r\n\r\n", b"hello"),
    ("extension_on_last_chunk", b"5\r\nhello\r\n0;end=1\r\n\r\n", b"hello"),
    ("extension_4000_bytes", b"5;x=" + b"e" * 4000 + b"\r\nhello\r\n0\r\n\r\n", b"hello"),
    ("empty_body", b"0\r\n\r\n", b""),
    ("one_byte_chunks", b"".join(b"1\r\n%c\r\n" % c for c in b"hello") + b"0\r\n\r\n", b"hello"),
    ("data_holds_crlf_and_request", b"%x\r\n" % len(HIDDEN) + HIDDEN + b"\r\n0\r\n\r\n", HIDDEN),
    ("trailer", b"5\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n", b"hello"),
    ("trailers_several", b"5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n", b"hello"),
    ("trailer_content_length", b"5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n", b"hello"),
    ("trailer_transfer_encoding", b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", b"hello"),
    ("trailer_session_data", b"5\r\nhello\r\n0\r\nX-Session-Data: {\"admin\":true}\r\n\r\n", b"hello"),
    ("trailer_empty_value", b"5\r\nhello\r\n0\r\nX-Empty:\r\n\r\n", b"hello"),
    ("exactly_max_body", b"%x\r\n" % MAX_BODY_BYTES + b"c" * MAX_BODY_BYTES + b"\r\n0\r\n\r\n",
     b"c" * MAX_BODY_BYTES),
]
for _label, _body, _data in CHUNKED_VALID:
    # Trailers are dropped (their fields could smuggle framing or session headers).
    add("chunked_valid_%s" % _label, "chunked", post([b"Transfer-Encoding: chunked"], _body), 200,
        upstream=[Up("POST", _data, absent=("x-trailer", "x-a", "x-b"))])

CHUNKED_INVALID = [
    ("size_not_hex", b"zz\r\nhello\r\n0\r\n\r\n"),
    ("size_negative", b"-5\r\nhello\r\n0\r\n\r\n"),
    ("size_plus_sign", b"+5\r\nhello\r\n0\r\n\r\n"),
    ("size_0x_prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("size_inner_space", b"5 5\r\nhello\r\n0\r\n\r\n"),
    ("size_leading_space", b" 5\r\nhello\r\n0\r\n\r\n"),
    ("size_trailing_space", b"5 \r\nhello\r\n0\r\n\r\n"),
    ("size_empty", b"\r\nhello\r\n0\r\n\r\n"),
    ("size_sixteen_digits", b"0000000000000005\r\nhello\r\n0\r\n\r\n"),
    ("size_overflows_64_bits", b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
    ("size_twenty_fs", b"ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    ("size_line_bare_lf", b"5\nhello\r\n0\r\n\r\n"),
    ("size_line_bare_cr", b"5\rhello\r\n0\r\n\r\n"),
    ("size_line_nul", b"5\x00\r\nhello\r\n0\r\n\r\n"),
    ("data_longer_than_size", b"3\r\nhello\r\n0\r\n\r\n"),
    ("data_without_crlf", b"5\r\nhelloXX0\r\n\r\n"),
    ("data_followed_by_bare_lf", b"5\r\nhello\n0\r\n\r\n"),
    ("data_followed_by_bare_cr", b"5\r\nhello\r0\r\n\r\n"),
    ("last_chunk_bare_lf", b"5\r\nhello\r\n0\n\r\n"),
    ("final_crlf_bare_lf", b"5\r\nhello\r\n0\r\n\n"),
    ("extension_bare_lf", b"5;a=b\nhello\r\n0\r\n\r\n"),
    ("extension_bare_cr", b"5;a=\rb\r\nhello\r\n0\r\n\r\n"),
    ("extension_nul", b"5;a=\x00\r\nhello\r\n0\r\n\r\n"),
    ("extension_over_4096_bytes", b"5;x=" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n"),
    ("trailer_obs_fold", b"5\r\nhello\r\n0\r\nX-A: 1\r\n 2\r\n\r\n"),
    ("trailer_bare_lf", b"5\r\nhello\r\n0\r\nX-A: 1\n\r\n"),
    ("trailer_bare_cr", b"5\r\nhello\r\n0\r\nX-A: 1\r2\r\n\r\n"),
    ("trailer_nul", b"5\r\nhello\r\n0\r\nX-A: \x00\r\n\r\n"),
    ("trailer_without_colon", b"5\r\nhello\r\n0\r\nnot-a-field\r\n\r\n"),
    ("trailer_space_before_colon", b"5\r\nhello\r\n0\r\nX-A : 1\r\n\r\n"),
    ("trailer_over_max_header_bytes", b"5\r\nhello\r\n0\r\nX-Big: " + b"t" * (MAX_HEADER_BYTES + 10) + b"\r\n\r\n"),
]
for _label, _body in CHUNKED_INVALID:
    add("chunked_invalid_%s" % _label, "chunked", post([b"Transfer-Encoding: chunked"], _body + HIDDEN), 400)

add("chunked_over_max_body", "chunked",
    post([b"Transfer-Encoding: chunked"], b"%x\r\n" % (MAX_BODY_BYTES + 1) + b"c" * (MAX_BODY_BYTES + 1)
         + b"\r\n0\r\n\r\n"), 413, upstream=[Up("POST", b"c" * MAX_BODY_BYTES, complete=False)],
    note="a streaming proxy may have forwarded the head; never the whole body")
add("chunked_size_announces_over_max_body", "chunked",
    post([b"Transfer-Encoding: chunked"], b"fffffffffffffff\r\nhello"), 413,
    upstream=[Up("POST", b"hello", complete=False)],
    note="the announced chunk size alone exceeds max_body_bytes: 413 at once, not a wait for the data")
add("chunked_size_longer_than_data_then_eof", "chunked", post([b"Transfer-Encoding: chunked"], b"a\r\nhello"),
    [], upstream=[Up("POST", b"hello", complete=False)], half_close=True)
add("chunked_missing_last_chunk_then_eof", "chunked", post([b"Transfer-Encoding: chunked"], b"5\r\nhello\r\n"),
    [], upstream=[Up("POST", b"hello", complete=False)], half_close=True)
add("chunked_missing_final_crlf_then_eof", "chunked", post([b"Transfer-Encoding: chunked"], b"5\r\nhello\r\n0\r\n"),
    [], upstream=[Up("POST", b"hello", complete=False)], half_close=True)

# ---------------------------------------------------------------------------
# Bare LF, bare CR and NUL in every position of the head.

LINE_BREAK_CASES = [
    ("request_line_ends_with_bare_lf", b"GET @T@ HTTP/1.1\nHost: test.local\r\n\r\n"),
    ("request_line_ends_with_bare_cr", b"GET @T@ HTTP/1.1\rHost: test.local\r\n\r\n"),
    ("request_line_cr_before_version", b"GET @T@\rHTTP/1.1\r\nHost: test.local\r\n\r\n"),
    ("request_line_lf_before_version", b"GET @T@\nHTTP/1.1\r\nHost: test.local\r\n\r\n"),
    ("request_line_cr_in_target", b"GET /ec\rho HTTP/1.1\r\nHost: test.local\r\n\r\n"),
    ("request_line_lf_in_target", b"GET /ec\nho HTTP/1.1\r\nHost: test.local\r\n\r\n"),
    ("request_line_cr_cr_lf", b"GET @T@ HTTP/1.1\r\r\nHost: test.local\r\n\r\n"),
    ("header_line_ends_with_bare_lf", b"GET @T@ HTTP/1.1\r\nHost: test.local\nX-A: 1\r\n\r\n"),
    ("header_line_ends_with_bare_cr", b"GET @T@ HTTP/1.1\r\nHost: test.local\rX-A: 1\r\n\r\n"),
    ("header_value_bare_cr", b"GET @T@ HTTP/1.1\r\nHost: test.local\r\nX-A: a\rb\r\n\r\n"),
    ("header_value_bare_lf", b"GET @T@ HTTP/1.1\r\nHost: test.local\r\nX-A: a\nb\r\n\r\n"),
    ("header_value_cr_before_crlf", b"GET @T@ HTTP/1.1\r\nHost: test.local\r\nX-A: a\r\r\n\r\n"),
    ("header_name_bare_lf", b"GET @T@ HTTP/1.1\r\nHost: test.local\r\nX-\nA: 1\r\n\r\n"),
    ("header_name_bare_cr", b"GET @T@ HTTP/1.1\r\nHost: test.local\r\nX-\rA: 1\r\n\r\n"),
    ("lf_injects_a_header", b"GET @T@ HTTP/1.1\r\nHost: test.local\r\nX-A: 1\nX-Session-Data: {}\r\n\r\n"),
    ("cr_injects_a_header", b"GET @T@ HTTP/1.1\r\nHost: test.local\r\nX-A: 1\rTransfer-Encoding: chunked\r\n\r\n"),
    ("leading_bare_lf", b"\nGET @T@ HTTP/1.1\r\nHost: test.local\r\n\r\n"),
    ("too_many_leading_empty_lines", b"\r\n" * 10 + b"GET @T@ HTTP/1.1\r\nHost: test.local\r\n\r\n"),
]
for _label, _raw in LINE_BREAK_CASES:
    add("bare_%s" % _label, "line_breaks", _raw + HIDDEN, 400)
# A head ending in LF-only lines never has its CRLF CRLF: 400, or closed at EOF.
add("bare_head_ends_with_lf_lf", "line_breaks", b"GET @T@ HTTP/1.1\r\nHost: test.local\n\n" + HIDDEN, REJECTED,
    half_close=True)
add("bare_head_ends_with_crlf_lf", "line_breaks", b"GET @T@ HTTP/1.1\r\nHost: test.local\r\n\n", REJECTED,
    half_close=True)
add("bare_head_ends_with_lf_crlf", "line_breaks", b"GET @T@ HTTP/1.1\r\nHost: test.local\n\r\n", REJECTED,
    half_close=True)
add("two_leading_empty_lines_are_skipped", "line_breaks", b"\r\n\r\nGET @T@ HTTP/1.1\r\nHost: test.local\r\n\r\n",
    200, upstream=[Up()], note="RFC 9112 2.2: a server SHOULD ignore empty lines before the request line")

NUL_CASES = [
    ("in_method", b"G\x00ET @T@ HTTP/1.1\r\nHost: test.local\r\n\r\n"),
    ("in_target", b"GET /echo\x00x HTTP/1.1\r\nHost: test.local\r\n\r\n"),
    ("in_version", b"GET @T@ HTTP/1.1\x00\r\nHost: test.local\r\n\r\n"),
    ("in_header_name", b"GET @T@ HTTP/1.1\r\nHost: test.local\r\nX-A\x00: 1\r\n\r\n"),
    ("in_header_value", b"GET @T@ HTTP/1.1\r\nHost: test.local\r\nX-A: a\x00b\r\n\r\n"),
    ("in_host", b"GET @T@ HTTP/1.1\r\nHost: test.local\x00.evil\r\n\r\n"),
    ("before_request_line", b"\x00GET @T@ HTTP/1.1\r\nHost: test.local\r\n\r\n"),
]
for _label, _raw in NUL_CASES:
    add("nul_%s" % _label, "nul", _raw + HIDDEN, 400)

# ---------------------------------------------------------------------------
# Header syntax: obs-fold, whitespace around names, non-token names.

HEADER_SYNTAX = [
    ("obs_fold_space", b"X-A: a\r\n b"),
    ("obs_fold_tab", b"X-A: a\r\n\tb"),
    ("obs_fold_of_host", b"Host: test.local\r\n .evil"),
    ("obs_fold_empty_first_line", b"X-A:\r\n b"),
    ("space_before_colon", b"X-A : 1"),
    ("tab_before_colon", b"X-A\t: 1"),
    ("empty_name", b": value"),
    ("no_colon", b"NoColonHere"),
    ("name_with_space", b"X A: 1"),
    ("name_with_parenthesis", b"X(A): 1"),
    ("name_with_slash", b"X/A: 1"),
    ("name_with_utf8", b"X-\xc3\xa9: 1"),
    ("value_with_del", b"X-A: a\x7fb"),
    ("value_with_escape", b"X-A: a\x1bb"),
    ("host_space_before_colon", b"Host : evil.example"),
]
for _label, _line in HEADER_SYNTAX:
    add("header_%s" % _label, "header_syntax", req(headers=(HOST, _line)) + HIDDEN, 400)

add("header_value_obs_text_passes", "header_syntax", get_with(b"X-Latin: caf\xe9 \xff"), 200, upstream=[Up()],
    note="obs-text (0x80-0xFF) is allowed in field values and forwarded")
add("header_empty_value_passes", "header_syntax", get_with(b"X-Empty:"), 200, upstream=[Up()])
add("header_duplicated_ordinary_field_passes", "header_syntax", get_with(b"X-Dup: 1", b"X-Dup: 2", b"x-dup: 3"), 200,
    upstream=[Up()])
add("header_tabs_around_host_value", "header_syntax", req(headers=(b"Host:\ttest.local\t",)), 200,
    upstream=[Up(host="test.local")])
add("header_tab_inside_value_passes", "header_syntax", get_with(b"X-Tab: a\tb"), 200, upstream=[Up()])
add("header_many_small_fields_under_limit", "header_syntax",
    req(headers=(HOST,) + tuple(b"X-%d: v" % i for i in range(300))), 200, upstream=[Up()])

# ---------------------------------------------------------------------------
# Over-long heads: the limit counts the request line plus every header line
# and the blank line (max_header_bytes); beyond it 431, never a forward.

def _head_of_size(n):
    """A GET /echo?exact-head head of exactly n bytes (request line, Host, padding, CRLF CRLF)."""
    base = req(target=b"/echo?exact-head", headers=(HOST, b"X-Pad: "))
    return req(target=b"/echo?exact-head", headers=(HOST, b"X-Pad: " + b"p" * (n - len(base))))


add("long_head_exactly_max", "long", _head_of_size(MAX_HEADER_BYTES), 200, upstream=[Up(target="/echo?exact-head")])
add("long_head_one_over_max", "long", _head_of_size(MAX_HEADER_BYTES + 1) + HIDDEN, 431)
add("long_request_line", "long", req(target=b"/echo?" + b"q" * 5000) + HIDDEN, 431)
add("long_method", "long", req(method=b"G" * 5000) + HIDDEN, 431)
add("long_header_value", "long", get_with(b"X-Big: " + b"b" * 5000) + HIDDEN, 431)
add("long_header_name", "long", get_with(b"X-" + b"n" * 5000 + b": 1") + HIDDEN, 431)
add("long_many_headers", "long", req(headers=(HOST,) + tuple(b"X-H%d: %s" % (i, b"v" * 90) for i in range(60)))
    + HIDDEN, 431)
add("long_head_never_ends", "long", b"GET @T@ HTTP/1.1\r\nHost: test.local\r\nX-Big: " + b"b" * 6000, 431)
add("long_request_line_never_ends", "long", b"GET /" + b"a" * 6000, 431)

# ---------------------------------------------------------------------------
# Methods and versions.

for _m in (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"HEAD"):
    add("method_%s_passes" % _m.decode().lower(), "method",
        req(method=_m, headers=(HOST, b"Content-Length: 2"), body=b"hi"), 200,
        upstream=[Up(_m.decode(), b"hi")], methods=[_m.decode()])

METHODS_INVALID = [(b"get", "lowercase"), (b"Get", "capitalised"), (b"FOO", "unknown"), (b"GE T", "inner_space"),
                   (b"G(T", "non_token"), (b"GET\t", "tab_separator"), (b"", "empty"),
                   (b"\xc3\x89T", "utf8")]
for _m, _label in METHODS_INVALID:
    add("method_invalid_%s" % _label, "method", req(method=_m) + HIDDEN, 400)
add("method_connect_rejected", "method", b"CONNECT test.local:443 HTTP/1.1\r\nHost: test.local:443\r\n\r\n" + HIDDEN,
    405)

VERSIONS = [(b"HTTP/1.2", 505, "1_2"), (b"HTTP/1.9", 505, "1_9"), (b"HTTP/2.0", 505, "2_0"),
            (b"HTTP/3.0", 505, "3_0"), (b"HTTP/9.9", 505, "9_9"), (b"HTTP/0.9", 505, "0_9_explicit"),
            (b"HTTP/1.10", 400, "1_10"), (b"HTTP/01.1", 400, "01_1"), (b"http/1.1", 400, "lowercase"),
            (b"HTTP/1", 400, "no_minor"), (b"HTTP/1.1x", 400, "trailing_garbage"), (b"HTTP /1.1", 400, "space"),
            (b"HTTP/1.1 ", 400, "trailing_space"), (b"HTTP\\1.1", 400, "backslash"), (b"HTTPS/1.1", 400, "https"),
            (b"HTTP/\xd9\xa1.1", 400, "arabic_digit")]
for _v, _status, _label in VERSIONS:
    add("version_%s" % _label, "version", req(version=_v) + HIDDEN, _status)
add("version_missing_http09", "version", b"GET @T@\r\n" + HIDDEN, 400,
    note="HTTP/0.9: answered at once, not after client_header")
add("version_missing_http09_alone", "version", b"GET /smuggled\r\n", 400)
add("request_line_double_space", "version", b"GET  @T@ HTTP/1.1\r\nHost: test.local\r\n\r\n" + HIDDEN, 400)
add("request_line_space_before_version", "version", b"GET @T@  HTTP/1.1\r\nHost: test.local\r\n\r\n" + HIDDEN, 400)
add("request_line_tabs", "version", b"GET\t@T@\tHTTP/1.1\r\nHost: test.local\r\n\r\n" + HIDDEN, 400)
add("request_line_leading_space", "version", b" GET @T@ HTTP/1.1\r\nHost: test.local\r\n\r\n" + HIDDEN, 400)
add("request_line_space_in_target", "version", b"GET /echo?a b HTTP/1.1\r\nHost: test.local\r\n\r\n" + HIDDEN, 400)
add("http2_preface", "version", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + HIDDEN, (400, 505))

# ---------------------------------------------------------------------------
# Request-target forms and Host.

ABSOLUTE = [
    ("plain", b"http://example.com@T@", "example.com"),
    ("with_port", b"http://example.com:8080@T@", "example.com:8080"),
    ("https", b"https://example.com@T@", "example.com"),
    ("uppercase_scheme", b"HTTP://Example.COM@T@", "Example.COM"),
    ("ipv6", b"http://[::1]:8080@T@", "[::1]:8080"),
]
for _label, _target, _host in ABSOLUTE:
    # The authority replaces any Host the client sent (RFC 9112 3.2.2).
    add("absolute_form_%s" % _label, "target", req(target=_target, headers=(b"Host: other.example",)), 200,
        upstream=[Up(host=_host)])
add("absolute_form_without_host_header", "target", req(target=b"http://example.com@T@", headers=()), 200,
    upstream=[Up(host="example.com")])
add("absolute_form_http10", "target", req(target=b"http://example.com@T@", headers=(), version=b"HTTP/1.0"),
    200, then="closed", upstream=[Up(host="example.com")])
add("absolute_form_no_path", "target", req(target=b"http://example.com", headers=()), 404,
    then="open", upstream=[Up(target="/", host="example.com")])
add("absolute_form_query_without_path", "target", req(target=b"http://example.com?x=1", headers=()), 404,
    then="open", upstream=[Up(target="/?x=1", host="example.com")])
add("absolute_form_userinfo", "target", req(target=b"http://user:pass@example.com@T@", headers=()) + HIDDEN, 400)
add("absolute_form_ftp_scheme", "target", req(target=b"ftp://example.com@T@", headers=()) + HIDDEN, 400)
add("absolute_form_empty_host", "target", req(target=b"http:///echo", headers=()) + HIDDEN, 400)
add("asterisk_form_options", "target", req(method=b"OPTIONS", target=b"*"), 404, then="open",
    upstream=[Up("OPTIONS", target="*")], note="OPTIONS * is forwarded; the test backend has no route for it")
for _m in (b"GET", b"HEAD", b"POST", b"DELETE"):
    add("asterisk_form_%s_rejected" % _m.decode().lower(), "target", req(method=_m, target=b"*") + HIDDEN, 400,
        methods=[_m.decode()])
# Errors to HEAD requests carry no body (RFC 9112 6.3): the bytes would be
# read as the start of the next response.
add("head_cl_over_max_body", "target",
    req(method=b"HEAD", headers=(HOST, b"Content-Length: %d" % (MAX_BODY_BYTES + 1))) + HIDDEN, 413,
    methods=["HEAD"])
add("head_cl_and_te", "target",
    req(method=b"HEAD", headers=(HOST, b"Content-Length: 5", b"Transfer-Encoding: chunked"), body=b"0\r\n\r\n")
    + HIDDEN, 400, methods=["HEAD"])
add("asterisk_with_query_rejected", "target", req(method=b"OPTIONS", target=b"*?x") + HIDDEN, 400)
add("authority_form_get_rejected", "target", req(target=b"test.local:80") + HIDDEN, 400)
add("relative_target_rejected", "target", req(target=b"echo") + HIDDEN, 400)
add("target_obs_text_passes", "target", req(target=b"/echo?caf\xc3\xa9"), 200,
    upstream=[Up(target="/echo?caf\xc3\xa9")])
add("target_del_rejected", "target", req(target=b"/echo?\x7f") + HIDDEN, 400)

add("host_missing_http11", "host", req(headers=()) + HIDDEN, 400)
add("host_missing_http10", "host", req(headers=(), version=b"HTTP/1.0"), 200, then="closed", upstream=[Up()])
add("host_duplicated", "host", get_with(b"Host: evil.example") + HIDDEN, 400)
add("host_duplicated_same_value", "host", get_with(HOST) + HIDDEN, 400)
add("host_empty_value", "host", req(headers=(b"Host:",)), 200, upstream=[Up(host="")],
    note="RFC 9112 3.2: an empty Host is valid when the target has no authority")
# RFC 9112 3.2: a Host with an invalid field value MUST get 400.
add("host_with_space", "host", req(headers=(b"Host: test.local evil.example",)) + HIDDEN, 400)
add("host_list", "host", req(headers=(b"Host: test.local, evil.example",)) + HIDDEN, 400)
add("host_with_path", "host", req(headers=(b"Host: evil.example/path",)) + HIDDEN, 400)

# ---------------------------------------------------------------------------
# Keep-alive: HTTP/1.0 and Connection tokens.

# Real HTTP/1.0 clients send Host; its absence is host_missing_http10.
H10 = b"HTTP/1.0"
KEEP10 = b"Connection: keep-alive"
add("http10_default_closes", "keepalive", req(version=H10), 200, then="closed", upstream=[Up()])
add("http10_keepalive_stays_open", "keepalive", req(version=H10, headers=(HOST, KEEP10)), 200, upstream=[Up()])
add("http10_keepalive_mixed_case", "keepalive", req(version=H10, headers=(HOST, b"Connection: Keep-Alive")), 200,
    upstream=[Up()])
add("http10_keepalive_and_close", "keepalive", req(version=H10, headers=(HOST, b"Connection: keep-alive, close")),
    200, then="closed", upstream=[Up()])
add("http10_keepalive_then_plain_request", "keepalive",
    req(version=H10, headers=(HOST, KEEP10)) + req(target=b"/echo?second", version=H10) + HIDDEN,
    [200, 200], then="closed", upstream=[Up(), Up(target="/echo?second")])
add("http10_keepalive_post_with_length", "keepalive",
    req(b"POST", version=H10, headers=(HOST, KEEP10, b"Content-Length: 5"), body=b"hello"), 200,
    upstream=[Up("POST", b"hello")])
add("http10_post_without_length_has_no_body", "keepalive", req(b"POST", version=H10, body=b"hello"),
    200, then="closed", upstream=[Up("POST", b"")])
# A chunked upstream response cannot be sent to an HTTP/1.0 client: it is
# delimited by closing the connection instead (checked for every 1.0 case).
add("http10_keepalive_chunked_response_closes", "keepalive",
    req(target=b"/chunked/3/5", version=H10, headers=(HOST, KEEP10)), 200, then="closed",
    upstream=[Up(target="/chunked/3/5")])
add("http11_connection_close", "keepalive", get_with(b"Connection: close") + HIDDEN, 200, then="closed",
    upstream=[Up()])
add("http11_connection_close_uppercase", "keepalive", get_with(b"Connection: CLOSE") + HIDDEN, 200,
    then="closed", upstream=[Up()])
add("http11_connection_list_with_close", "keepalive", get_with(b"Connection: foo, close") + HIDDEN, 200,
    then="closed", upstream=[Up()])
add("http11_connection_two_fields_with_close", "keepalive",
    get_with(b"Connection: keep-alive", b"Connection: close") + HIDDEN, 200, then="closed", upstream=[Up()])
add("http11_connection_closed_is_not_close", "keepalive", get_with(b"Connection: closed"), 200, upstream=[Up()])
add("http11_request_then_half_close", "keepalive", get_with(), 200, then="closed", upstream=[Up()],
    half_close=True, note="the response still arrives after the client's FIN")

# Connection may name end-to-end fields; it cannot remove framing or Host.
add("connection_names_content_length", "keepalive",
    post([b"Connection: Content-Length", b"Content-Length: 5"], b"hello"), 200, upstream=[Up("POST", b"hello")])
add("connection_names_transfer_encoding", "keepalive",
    post([b"Connection: Transfer-Encoding", b"Transfer-Encoding: chunked"], CHUNKED_HELLO), 200,
    upstream=[Up("POST", b"hello")])
add("connection_names_host", "keepalive", get_with(b"Connection: Host"), 200, upstream=[Up(host="test.local")])
add("upgrade_websocket_answered_200", "keepalive",
    get_with(b"Connection: Upgrade", b"Upgrade: websocket", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="), 200,
    upstream=[Up()], note="the upgrade is forwarded (docs/HTTP.md, Upgrades and WebSockets); the backend's 200 "
    "keeps the connection HTTP")
add("upgrade_h2c_not_forwarded", "keepalive",
    get_with(b"Connection: Upgrade, HTTP2-Settings", b"Upgrade: h2c", b"HTTP2-Settings: AAMAAABkAAQAAP__"), 200,
    upstream=[Up(absent=("upgrade", "http2-settings"))], note="h2c smuggling: the upgrade must not reach the backend")
add("proxy_connection_not_forwarded", "keepalive", get_with(b"Proxy-Connection: keep-alive"), 200,
    upstream=[Up(absent=("proxy-connection",))])

# ---------------------------------------------------------------------------
# Pipelining: requests behind a rejected one are never forwarded.

add("pipeline_two_valid", "pipeline", get_with() + SECOND, [200, 200], upstream=[Up(), Up(target="/echo?second")])
add("pipeline_post_between_gets", "pipeline",
    get_with() + b"POST /echo?second HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5\r\n\r\nhello"
    + b"GET /echo?third HTTP/1.1\r\nHost: test.local\r\n\r\n", [200, 200, 200],
    upstream=[Up(), Up("POST", b"hello", target="/echo?second"), Up(target="/echo?third")])
add("pipeline_head_then_get", "pipeline", req(method=b"HEAD") + SECOND, [200, 200], methods=["HEAD", "GET"],
    upstream=[Up("HEAD"), Up(target="/echo?second")])
add("pipeline_chunked_then_get", "pipeline", post([b"Transfer-Encoding: chunked"], CHUNKED_HELLO) + SECOND,
    [200, 200], upstream=[Up("POST", b"hello"), Up(target="/echo?second")])
PIPELINE_REJECTED = [
    ("space_before_colon", get_with(b"X-A : 1"), 400),
    ("bad_version", req(version=b"HTTP/2.0"), 505),
    ("cl_te", post([b"Content-Length: 5", b"Transfer-Encoding: chunked"], b"0\r\n\r\n"), 400),
    ("duplicate_cl", post([b"Content-Length: 3", b"Content-Length: 0"], b""), 400),
    ("oversize_head", get_with(b"X-Big: " + b"b" * 5000), 431),
    ("oversize_body", post([b"Content-Length: %d" % (MAX_BODY_BYTES + 1)], b""), 413),
    ("http09", b"GET /smuggled-09\r\n", 400),
    ("bad_chunk", post([b"Transfer-Encoding: chunked"], b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    ("unknown_method", req(method=b"FOO"), 400),
]
for _label, _first, _status in PIPELINE_REJECTED:
    add("pipeline_behind_%s" % _label, "pipeline", _first + HIDDEN + HIDDEN, _status)
add("pipeline_valid_then_rejected_then_valid", "pipeline", get_with() + get_with(b"X-A : 1") + HIDDEN, [200, 400],
    upstream=[Up()])
add("pipeline_behind_connection_close", "pipeline", get_with(b"Connection: close") + HIDDEN, 200, then="closed",
    upstream=[Up()])

# ---------------------------------------------------------------------------
# Expect: 100-continue is answered by sessiond once the upstream is ready.

_EXPECT_HEAD = b"POST @T@ HTTP/1.1\r\nHost: test.local\r\nExpect: %s\r\nContent-Length: 5\r\n\r\n"
add("expect_100_continue_waits_for_body", "expect", [_EXPECT_HEAD % b"100-continue", b"hello"], 200,
    upstream=[Up("POST", b"hello", absent=("expect",))], interim=[100], gap=0.3)
add("expect_100_continue_mixed_case", "expect", [_EXPECT_HEAD % b"100-Continue", b"hello"], 200,
    upstream=[Up("POST", b"hello")], interim=[100], gap=0.3)
add("expect_100_continue_body_sent_at_once", "expect", _EXPECT_HEAD % b"100-continue" + b"hello", 200,
    upstream=[Up("POST", b"hello")])
add("expect_100_continue_chunked", "expect",
    [b"POST @T@ HTTP/1.1\r\nHost: test.local\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
     CHUNKED_HELLO], 200, upstream=[Up("POST", b"hello")], interim=[100], gap=0.3)
add("expect_100_continue_without_body", "expect", get_with(b"Expect: 100-continue"), 200, upstream=[Up()],
    interim=[], note="no body to wait for: no 100")
add("expect_100_continue_body_too_large", "expect",
    b"POST @T@ HTTP/1.1\r\nHost: test.local\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
    % (MAX_BODY_BYTES + 1), 413, interim=[], note="the final status comes instead of 100, nothing upstream")
add("expect_100_continue_http10_ignored", "expect",
    [req(b"POST", version=H10, headers=(HOST, b"Expect: 100-continue", KEEP10, b"Content-Length: 5")), b"hello"],
    200, upstream=[Up("POST", b"hello")], interim=[], gap=0.3,
    note="RFC 9110 10.1.1: a 100-continue expectation in an HTTP/1.0 request MUST be ignored")
add("expect_unknown_expectation_forwarded", "expect", post([b"Expect: 200-ok", b"Content-Length: 5"], b"hello"),
    200, upstream=[Up("POST", b"hello")], note="RFC 9110 allows 417 or ignoring it; sessiond passes it on")

# ---------------------------------------------------------------------------
# The client goes away mid-head: nothing is answered, nothing forwarded.

add("eof_inside_request_line", "eof", b"GET @T@ HTT", [], half_close=True)
add("eof_inside_headers", "eof", b"GET @T@ HTTP/1.1\r\nHost: test.local\r\nX-A: 1\r\n", [], half_close=True)
add("eof_after_empty_lines", "eof", b"\r\n\r\n", [], half_close=True)


def stubs():
    """The test functions test_hostile_http.py holds, one per case."""
    return "".join("def test_%s(t): run_case(t, %r)\n" % (c.name, c.name) for c in CASES)


def by_name(name):
    for c in CASES:
        if c.name == name:
            return c
    raise KeyError(name)


if __name__ == "__main__":
    if sys.argv[1:] == ["--stubs"]:
        sys.stdout.write(stubs())
    else:
        for c in CASES:
            print("%-50s %-14s %-12s %r" % (c.name, c.category, c.expect, c.raw[:80]))
        print("%d cases" % len(CASES))
