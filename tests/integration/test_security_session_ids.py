"""Session ids: 256 bits from a CSPRNG, and the public X-Session-Id is not a
credential (docs/COOKIES.md, Verification; docs/COOKIES.md, Public id).

Store-manager cookies are "1." b64url(id) "." expiry "." b64url(mac): the id
is visible to the cookie's owner (43 base64url characters = 32 bytes), so its
randomness can be inspected from outside. The 100,000-id uniqueness check is
a unit test; here 2,000 ids issued over HTTP are checked for duplicates and
for a byte and bit distribution no biased or counter-based generator passes.
"""

import base64
import json

from harness import check, check_eq
from session_util import Browser, SessionView, check_session, instructions_target, make_session, \
    session_set_cookies, set_header, start_proxy

ID_CHARS = 43
COUNT = 2000


def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _token_id(value):
    parts = value.split(".")
    check(len(parts) == 4 and parts[0] == "1", "not a store-manager token: %r" % value[:20])
    check_eq(len(parts[1]), ID_CHARS, "length of the id field of a token")
    raw = _b64url_decode(parts[1])
    check_eq(len(raw), 32, "decoded id length")
    check_eq(base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), parts[1], "canonical base64url id")
    return raw


def _collect_cookies(proxy, count, batch=100):
    """count fresh session cookies: pipelined Sets on one connection, no cookie sent."""
    conn = proxy.connect(timeout=30)
    target = instructions_target([set_header({"n": 1})])
    request = b"GET %s HTTP/1.1\r\nHost: test.local\r\n\r\n" % target.encode()
    values = []
    while len(values) < count:
        n = min(batch, count - len(values))
        conn.send(request * n)
        for resp in conn.read_responses(["GET"] * n, timeout=30):
            check_eq(resp.status, 200, "status of a session-creating request")
            cookies = session_set_cookies(resp)
            check_eq(len(cookies), 1, "session Set-Cookie headers in a creating response")
            values.append(cookies[0].value)
    conn.close()
    return values


def test_2000_session_ids_are_distinct_and_uniformly_random(t):
    proxy = start_proxy(t, "memory")
    values = _collect_cookies(proxy, COUNT)
    check_eq(len(set(values)), COUNT, "distinct cookie values among %d issued" % COUNT)
    ids = [_token_id(v) for v in values]
    check_eq(len(set(ids)), COUNT, "distinct session ids among %d issued" % COUNT)
    # No shared 8-byte prefix or suffix: a counter or a time-seeded generator
    # would repeat its high or low bytes.
    check_eq(len({i[:8] for i in ids}), COUNT, "distinct 8-byte id prefixes")
    check_eq(len({i[-8:] for i in ids}), COUNT, "distinct 8-byte id suffixes")

    # Byte distribution: chi-square over 256 values, 64,000 bytes, 255 degrees
    # of freedom (mean 255, sd 22.6); 420 is beyond p = 1e-9.
    counts = [0] * 256
    for i in ids:
        for byte in i:
            counts[byte] += 1
    expected = COUNT * 32 / 256.0
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    check(chi2 < 420, "session id bytes are not uniform: chi-square %.1f over 255 dof" % chi2)
    # Every one of the 256 bit positions is set in about half the ids
    # (binomial sd 22.4 around 1000; 6.5 sd is beyond p = 1e-10 per bit).
    for bit in range(256):
        ones = sum((i[bit // 8] >> (7 - bit % 8)) & 1 for i in ids)
        check(abs(ones - COUNT / 2) < 146, "id bit %d is set in %d of %d ids" % (bit, ones, COUNT))


def test_sealed_cookies_never_repeat(t):
    # Cookie manager: the same data sealed again must never give the same
    # value (fresh id and nonce each time), or equal sessions would be linkable.
    proxy = start_proxy(t, "cookie")
    values = _collect_cookies(proxy, 300)
    check_eq(len(set(values)), 300, "distinct sealed cookies for identical data")
    check(all(v.startswith("3.") for v in values), "sealed cookies do not use the 3. format (docs/COOKIES.md, Sealed cookie)")


def _public_id_forgeries(public_id, cookie):
    """Every plausible way to present the public id as a session cookie."""
    raw = _b64url_decode(public_id)
    padded = base64.urlsafe_b64encode(raw + bytes(32 - len(raw))).rstrip(b"=").decode()
    out = [("raw", public_id), ("1.id", "1." + public_id), ("2.id", "2." + public_id),
           ("1.id.", "1.%s." % public_id), ("id padded to 32 bytes", "1." + padded),
           ("hex", raw.hex()), ("1.hex", "1." + raw.hex())]
    parts = cookie.split(".")
    if len(parts) == 4:  # a store token: splice the public id into a real one
        out += [("token with the id swapped", "1.%s.%s.%s" % (public_id, parts[2], parts[3])),
                ("token with the padded id swapped", "1.%s.%s.%s" % (padded, parts[2], parts[3])),
                ("id field replaced by the public id", "1.%s%s.%s.%s" % (public_id, parts[1][len(public_id):],
                                                                         parts[2], parts[3]))]
    else:
        out += [("sealed cookie prefixed", "2." + public_id + cookie[2:])]
    return out


def _public_id_is_not_a_cookie(t, manager):
    proxy = start_proxy(t, manager)
    owner = Browser(proxy)
    view = make_session(owner, {"user": "ada", "role": "admin"})
    public_id, cookie = view.id, owner.cookie
    check(public_id and len(public_id) >= 22, "X-Session-Id %r is shorter than 128 bits" % public_id)
    check(public_id not in cookie, "the public id appears inside the cookie value")
    if manager != "cookie":
        check(not _token_id(cookie).startswith(_b64url_decode(public_id)[:8]),
              "the public id is a prefix of the raw session id")
    check_eq(owner.echo().id, public_id, "X-Session-Id is stable for one session")

    failures = []
    for what, value in _public_id_forgeries(public_id, cookie):
        forger = Browser(proxy, cookie=value)
        got = forger.echo()
        if got.status != "invalid" or got.id is not None or got.data != {}:
            failures.append("%s (%r): status %s, id %r, data %r" % (what, value[:60], got.status, got.id, got.data))
    check(not failures, "the public id worked as a cookie:\n" + "\n".join(failures))

    other = Browser(proxy)
    other_view = make_session(other, {"user": "bob"})
    check(other_view.id != public_id, "two sessions share an X-Session-Id")
    resp = owner.write(("X-Session-Regenerate", "true"))
    check_eq(resp.status, 200, "status of a Regenerate")
    check_session(owner.echo(), "active", {"user": "ada", "role": "admin"}, "after Regenerate")
    check(owner.echo().id != public_id, "X-Session-Id unchanged by Regenerate")


def test_public_id_is_not_a_cookie_memory(t): _public_id_is_not_a_cookie(t, "memory")
def test_public_id_is_not_a_cookie_file(t): _public_id_is_not_a_cookie(t, "file")
def test_public_id_is_not_a_cookie_cookie(t): _public_id_is_not_a_cookie(t, "cookie")


def test_public_id_in_a_spoofed_header_grants_nothing(t):
    # The backend-facing id sent back by a client as a header is stripped and
    # has no effect on which session the request gets.
    proxy = start_proxy(t, "memory")
    owner = Browser(proxy)
    view = make_session(owner, {"user": "ada"})
    resp = proxy.request("GET", "/echo", [("X-Session-Id", view.id), ("Cookie", "session_id=" + view.id)])
    got = SessionView(resp)
    check_eq((got.status, got.id, got.data), ("invalid", None, {}), "a request carrying only the public id")
    check(json.dumps(got.headers).count(view.id) == 0, "the public id was forwarded: %r" % got.headers)
