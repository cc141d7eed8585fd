"""Verifies X-Session-Signature, sessiond's signature of the session headers
(docs/HEADER-PROTOCOL.md, Signed session headers), so that a backend reached
directly, not through sessiond, can refuse the request.

    from verify_signature import verify
    ok = verify(KEY, method, target, headers, max_age=60)

KEY is upstream_signature.key as bytes; method and target as the request
line has them; headers the request's (name, value) pairs, a dict, or an
http.server / email.message headers object (for WSGI, pass
headers_from_environ(environ)). True only when the signature is present,
at most max_age seconds old (or ahead), and matches every X-Session-*
header, the method and the target. Standard library only.

    python3 verify_signature.py KEY METHOD TARGET < headers.json
        checks a request whose headers are a JSON list of [name, value];
        prints "valid" (exit 0) or "invalid" (exit 1).
"""

import hashlib
import hmac
import json
import sys
import time

PREFIX = "x-session-"
SIGNATURE = "x-session-signature"


def canonical(t, method, target, session_headers):
    """The signed text: version, time, method, target, then each X-Session-*
    header but the signature, lower-cased and sorted by name."""
    lines = ["sessiond-signature-v1", t, method, target]
    lines += ["%s:%s" % nv for nv in sorted(session_headers, key=lambda nv: nv[0])]
    return "\n".join(lines) + "\n"


def verify(key, method, target, headers, max_age=60, now=None):
    items = headers.items() if hasattr(headers, "items") else headers
    signatures, session = [], []
    for name, value in items:
        lname = name.lower()
        if lname == SIGNATURE:
            signatures.append(value)
        elif lname.startswith(PREFIX):
            session.append((lname, value))
    if len(signatures) != 1:
        return False
    fields = dict(part.partition("=")[::2] for part in signatures[0].split(","))
    t, mac = fields.get("t", ""), fields.get("v1", "")
    if not t.isdigit() or len(mac) != 64:
        return False
    if abs((time.time() if now is None else now) - int(t)) > max_age:
        return False
    text = canonical(t, method, target, session).encode("latin-1")
    expected = hmac.new(key, text, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, mac)


def headers_from_environ(environ):
    """The X-Session-* request headers of a WSGI environ as (name, value)."""
    return [(k[5:].replace("_", "-").lower(), v) for k, v in environ.items()
            if k.startswith("HTTP_X_SESSION_")]


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    headers = json.load(sys.stdin)
    ok = verify(sys.argv[1].encode(), sys.argv[2], sys.argv[3], [tuple(h) for h in headers])
    print("valid" if ok else "invalid")
    sys.exit(0 if ok else 1)
