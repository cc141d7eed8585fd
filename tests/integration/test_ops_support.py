"""Helpers shared by the test_ops_* files (admin endpoints, logs, signals).

This file holds no tests; it is named test_ops_* only because the ops tests
own that prefix. Contents:
  parse_exposition(text)     a strict Prometheus text-format (0.0.4) parser
  Scrape                     one parsed /metrics answer with value lookups
  admin_overrides(...)       config overrides that enable the admin listener
  admin_get(port, path)      one GET to the admin listener
  RedisServer                a throwaway redis-server on a chosen port
  set_headers_target(...)    a backend /set-headers target whose values are
                             fully percent-encoded, so marker strings never
                             appear literally in the request target (which
                             the access log rightly records)
"""

import math
import os
import re
import socket
import subprocess
import time
import urllib.parse

from client import request as client_request
from harness import SLOW, check, free_port

# ---------------------------------------------------------------------------
# Prometheus text exposition format.

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE_RE = re.compile(r"^(%s)(\{(.*)\})?[ \t]+(\S+)([ \t]+-?\d+)?$" % _NAME)
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class ExpositionError(AssertionError):
    pass


def _parse_labels(text, line):
    labels = {}
    pos = 0
    while pos < len(text):
        m = _LABEL_RE.match(text, pos)
        if not m:
            raise ExpositionError("malformed label set in %r" % line)
        name, raw = m.group(1), m.group(2)
        if name in labels:
            raise ExpositionError("duplicate label %s in %r" % (name, line))
        labels[name] = raw.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        pos = m.end()
    return labels


def _parse_value(text, line):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        return float(text)
    except ValueError:
        raise ExpositionError("bad sample value in %r" % line)


def _family_of(sample_name, families):
    """The family a sample belongs to: itself, or a histogram/summary base."""
    if sample_name in families:
        return sample_name
    for suffix in ("_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix):
            base = sample_name[:-len(suffix)]
            if base in families and families[base]["type"] in ("histogram", "summary"):
                return base
    return None


def parse_exposition(text):
    """{family: {"type", "help", "samples": [(name, labels, value)]}}.

    Strict: every sample must follow the # TYPE line of its family, a family
    is declared once, samples of a family are contiguous, a (name, labels)
    pair appears once, and the text ends with a newline."""
    check(text.endswith("\n"), "metrics text does not end with a newline")
    families = {}
    seen = set()
    current = None
    closed = set()
    for line in text.split("\n")[:-1]:
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not re.fullmatch(_NAME, name):
                    raise ExpositionError("bad metric name in %r" % line)
                fam = families.setdefault(name, {"type": None, "help": None, "samples": []})
                if parts[1] == "TYPE":
                    kind = parts[3].strip() if len(parts) > 3 else ""
                    if kind not in _TYPES:
                        raise ExpositionError("unknown type in %r" % line)
                    if fam["type"] is not None:
                        raise ExpositionError("second TYPE line for %s" % name)
                    if fam["samples"]:
                        raise ExpositionError("TYPE line for %s after its samples" % name)
                    fam["type"] = kind
                else:
                    if fam["help"] is not None:
                        raise ExpositionError("second HELP line for %s" % name)
                    fam["help"] = parts[3] if len(parts) > 3 else ""
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise ExpositionError("malformed sample line %r" % line)
        name = m.group(1)
        labels = _parse_labels(m.group(3) or "", line)
        value = _parse_value(m.group(4), line)
        fam_name = _family_of(name, families)
        if fam_name is None or families[fam_name]["type"] is None:
            raise ExpositionError("sample %r has no preceding # TYPE line" % line)
        if fam_name != current:
            if fam_name in closed:
                raise ExpositionError("samples of %s are not contiguous" % fam_name)
            if current is not None:
                closed.add(current)
            current = fam_name
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ExpositionError("duplicate sample %r" % line)
        seen.add(key)
        families[fam_name]["samples"].append((name, labels, value))
    return families


def check_histogram(families, name):
    """Checks every series of histogram `name`: buckets sorted by le with a
    +Inf bucket, cumulative (non-decreasing), +Inf == _count, _sum present
    and >= 0. Returns {labels-without-le (tuple): {"buckets": [(le, n)],
    "count": n, "sum": s}}."""
    fam = families.get(name)
    check(fam is not None, "histogram %s missing" % name)
    check(fam["type"] == "histogram", "%s has type %r, want histogram" % (name, fam["type"]))
    series = {}
    for sname, labels, value in fam["samples"]:
        base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(base, {"buckets": [], "count": None, "sum": None})
        if sname == name + "_bucket":
            check("le" in labels, "%s_bucket sample without le: %r" % (name, labels))
            s["buckets"].append((_parse_value(labels["le"], labels["le"]), value))
        elif sname == name + "_count":
            s["count"] = value
        elif sname == name + "_sum":
            s["sum"] = value
        else:
            raise AssertionError("unexpected sample %s in histogram %s" % (sname, name))
    check(series, "histogram %s has no series" % name)
    for base, s in series.items():
        where = "%s%s" % (name, dict(base) if base else "")
        les = [le for le, _ in s["buckets"]]
        check(les == sorted(les), "%s buckets not in increasing le order: %r" % (where, les))
        check(les and math.isinf(les[-1]), "%s has no +Inf bucket" % where)
        counts = [n for _, n in s["buckets"]]
        for a, b in zip(counts, counts[1:]):
            check(a <= b, "%s buckets are not cumulative: %r" % (where, counts))
        check(s["count"] is not None, "%s has no _count" % where)
        check(s["sum"] is not None and s["sum"] >= 0, "%s has no (or a negative) _sum" % where)
        check(counts[-1] == s["count"], "%s +Inf bucket %r != _count %r" % (where, counts[-1], s["count"]))
    return series


class Scrape:
    """One /metrics answer: .families, and value(name, **labels)."""

    def __init__(self, text):
        self.text = text
        self.families = parse_exposition(text)
        self.index = {}
        for fam in self.families.values():
            for name, labels, value in fam["samples"]:
                self.index[(name, tuple(sorted(labels.items())))] = value

    def value(self, name, default=0.0, **labels):
        """The sample's value; default when absent (requests_total only lists
        codes that occurred)."""
        return self.index.get((name, tuple(sorted(labels.items()))), default)

    def total(self, name, **labels):
        """The sum of every sample named name whose labels include `labels`
        (requests_total{code="200"} summed over its methods, say); 0 when none."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.index.items() if n == name and want <= set(ls))

    def has(self, name, **labels):
        return (name, tuple(sorted(labels.items()))) in self.index

    def labelled(self, name):
        """{labels-tuple: value} for every sample named name."""
        return {k[1]: v for k, v in self.index.items() if k[0] == name}


# ---------------------------------------------------------------------------
# The admin listener.

def admin_overrides(overrides=None, port=None):
    """overrides plus admin.listen on a free port; returns (overrides, port)."""
    port = port or free_port()
    out = dict(overrides or {})
    out["admin"] = {"listen": "127.0.0.1:%d" % port}
    return out, port


def admin_get(port, path, method="GET", timeout=5.0):
    """One request to the admin listener (which listens before the proxy
    port, so it is up once the harness sees sessiond ready)."""
    return client_request(port, method, path, headers=[("Connection", "close")], timeout=timeout)


def scrape(port):
    resp = admin_get(port, "/metrics")
    check(resp.status == 200, "/metrics answered %d" % resp.status)
    return Scrape(resp.body.decode("utf-8"))


# ---------------------------------------------------------------------------
# Redis.

class RedisServer:
    """redis-server on `port` with no persistence, in the test's temp dir."""

    def __init__(self, t, port=None, password=None):
        self.t = t
        self.port = port or free_port()
        self.password = password
        self.proc = None

    def start(self, timeout=10.0):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.t.tmpdir]
        if self.password:
            args += ["--requirepass", self.password]
        log = open(os.path.join(self.t.tmpdir, "redis-%d.log" % self.port), "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.t.on_cleanup(self.stop)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited with %s" % self.proc.returncode)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    reply = s.recv(64)
                    if reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("redis-server did not answer on port %d" % self.port)
            time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


# ---------------------------------------------------------------------------
# Requests.

def _pct_all(text):
    return "".join("%%%02X" % b for b in text.encode("utf-8"))


def set_headers_target(*pairs):
    """/set-headers?Name=Value&... with every byte of each value percent-
    encoded, so the literal value text never appears in the target."""
    return "/set-headers?" + "&".join("%s=%s" % (urllib.parse.quote(n, safe=""), _pct_all(v)) for n, v in pairs)


def cookie_value(resp, name):
    """The value of the Set-Cookie for `name` (None when not set)."""
    for v in resp.header_values("Set-Cookie"):
        first = v.split(";", 1)[0]
        n, _, val = first.partition("=")
        if n.strip() == name:
            return val.strip()
    return None


def cookie_attrs(resp, name):
    """{attribute-lowercase: value} of the Set-Cookie for `name`, or None."""
    for v in resp.header_values("Set-Cookie"):
        parts = [p.strip() for p in v.split(";")]
        n, _, _ = parts[0].partition("=")
        if n.strip() == name:
            out = {}
            for p in parts[1:]:
                k, _, val = p.partition("=")
                out[k.strip().lower()] = val.strip()
            return out
    return None


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls predicate (scaled by SLOW); returns its true value or fails."""
    deadline = time.monotonic() + timeout * SLOW
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout * SLOW, what))
        time.sleep(interval)
