"""What the test backend saw, and the deterministic bytes it serves.

pattern(n) / pattern_sha256(n): the body content of /bytes, /chunked, ... so a
test can check a body it streamed without keeping it. RecordedRequest and
Recorder: the backend's log of connections, requests and framing violations.
"""

import base64
import hashlib
import random
import threading
import time

# ---------------------------------------------------------------------------
# Deterministic body content. The block length is prime so that a proxy that
# drops or repeats a power-of-two sized buffer cannot produce the same bytes.

_PATTERN_BLOCK_LEN = 1000003
_PATTERN = random.Random(20240611).randbytes(_PATTERN_BLOCK_LEN)
_PATTERN2 = _PATTERN + _PATTERN  # any window of <= block length is a slice of this
_sha_cache = {}


def pattern_pieces(n, piece=_PATTERN_BLOCK_LEN, offset=0):
    """Yields memoryviews that together are the n pattern bytes starting at offset."""
    view = memoryview(_PATTERN2)
    pos = offset
    end = offset + n
    while pos < end:
        start = pos % _PATTERN_BLOCK_LEN
        take = min(piece, end - pos, _PATTERN_BLOCK_LEN)
        yield view[start:start + take]
        pos += take


def pattern(n, offset=0):
    """The n pattern bytes starting at offset, as one bytes object."""
    return b"".join(bytes(p) for p in pattern_pieces(n, offset=offset))


def pattern_sha256(n):
    """Hex sha256 of pattern(n), without building it."""
    if n not in _sha_cache:
        h = hashlib.sha256()
        for p in pattern_pieces(n):
            h.update(p)
        _sha_cache[n] = h.hexdigest()
    return _sha_cache[n]


# ---------------------------------------------------------------------------
# What the backend saw.

class RecordedRequest:
    """One request as it reached the backend.

    complete is False when the connection ended (or broke the framing rules)
    before the whole body arrived; error then says why.
    """

    def __init__(self, conn_id, index):
        self.conn_id = conn_id
        self.index = index          # position among all requests this backend saw
        self.method = ""
        self.target = ""
        self.version = ""
        self.headers = []           # [(name, value)] in order, original case
        self.body = b""
        self.framing = "none"       # none | length | chunked
        self.trailers = []
        self.complete = False
        self.error = None
        self.time = time.monotonic()

    @property
    def path(self):
        return self.target.split("?", 1)[0]

    def header_values(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def header(self, name):
        """The value of the single header `name`, None if absent, error if repeated."""
        values = self.header_values(name)
        if len(values) > 1:
            raise AssertionError("backend saw %d %s headers: %r" % (len(values), name, values))
        return values[0] if values else None

    def header_names(self):
        return [n for n, _ in self.headers]

    def to_json(self):
        d = dict(self.__dict__)
        d["body"] = base64.b64encode(self.body).decode()
        return d

    @classmethod
    def from_json(cls, d):
        r = cls(d["conn_id"], d["index"])
        r.__dict__.update(d)
        r.body = base64.b64decode(d["body"])
        r.headers = [tuple(h) for h in d["headers"]]
        r.trailers = [tuple(h) for h in d["trailers"]]
        return r

    def __repr__(self):
        return "<%s %s %s, %d body bytes%s>" % (
            self.method, self.target, self.version, len(self.body),
            "" if self.complete else ", INCOMPLETE: %s" % self.error)


class Recorder:
    """Thread-safe log of connections, requests and protocol violations."""

    def __init__(self):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.connections_accepted = 0  # control connections (/__ paths) excluded
        self._next_id = 0
        self.raw = {}                # conn_id -> bytearray of everything received
        self.requests = []           # RecordedRequest, complete or not, in arrival order
        self.protocol_errors = []    # strings: framing sessiond must never send

    def new_connection(self):
        with self.lock:
            self.connections_accepted += 1
            self._next_id += 1
            conn_id = self._next_id
            self.raw[conn_id] = bytearray()
            self.changed.notify_all()
            return conn_id

    def forget_connection(self, conn_id):
        """Un-counts a connection of the test itself (a /__ control request)."""
        with self.lock:
            if self.raw.pop(conn_id, None) is not None:
                self.connections_accepted -= 1

    def received(self, conn_id, data):
        with self.lock:
            if conn_id in self.raw:
                self.raw[conn_id] += data

    def add(self, req):
        with self.lock:
            self.requests.append(req)
            self.changed.notify_all()

    def protocol_error(self, conn_id, message):
        with self.lock:
            self.protocol_errors.append("connection %d: %s" % (conn_id, message))
            self.changed.notify_all()

    def clear(self):
        with self.lock:
            self.connections_accepted = 0
            self.raw = {}
            self.requests = []
            self.protocol_errors = []

    def snapshot(self):
        with self.lock:
            return {
                "connections_accepted": self.connections_accepted,
                "raw": {str(k): base64.b64encode(bytes(v)).decode() for k, v in self.raw.items()},
                "requests": [r.to_json() for r in self.requests],
                "protocol_errors": list(self.protocol_errors),
            }
