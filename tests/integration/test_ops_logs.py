"""Logs: the access log on stdout (combined | json | off), the error log on
stderr with levels, and that neither ever carries a secret, a cookie value,
session data or the redis password."""

import errno
import json
import os
import re

from harness import REMOVE, check, check_eq, echo_headers, free_port
from test_ops_support import RedisServer, cookie_value, set_headers_target

COMBINED_RE = re.compile(
    r'^(?P<client>\S+) - - \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
    r'"(?P<method>\S+) (?P<target>\S+) HTTP/1\.(?P<minor>[01])" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'"(?P<referer>[^"]*)" "(?P<ua>[^"]*)" rt=(?P<rt>\d+\.\d{3}) urt=(?P<urt>\d+\.\d{3}|-) '
    r'session=(?P<session>\S+) rid=(?P<rid>\S+)$')
ERROR_LOG_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z \[(debug|info|warn|error)\] \S")
JSON_FIELDS = ("time", "client", "host", "method", "path", "protocol", "status", "bytes", "duration",
               "upstream_duration", "session", "request_id", "referer", "user_agent")


def _lines(text):
    return [line for line in text.split("\n") if line]


def _session_traffic(proxy, cookie_name, marker, bad_cookie_marker, other_cookie_marker):
    """Drives every session path that could leak; returns the cookie values seen."""
    issued = []

    def set_cookie(resp):
        v = cookie_value(resp, cookie_name)
        if v:
            issued.append(v)
        return v

    resp = proxy.request("GET", set_headers_target(("X-Session-Set", json.dumps({"note": marker}))))
    check_eq(resp.status, 200, "create a session holding the marker")
    token = set_cookie(resp)
    check(token, "no session cookie issued")
    jar = [("Cookie", "%s=%s; tracking=%s" % (cookie_name, token, other_cookie_marker))]
    resp = proxy.request("GET", "/echo", headers=jar + [("X-Session-Data", '{"spoof":"%s"}' % marker)])
    check_eq(echo_headers(resp, "X-Session-Status"), ["active"], "status with the issued cookie")
    check(marker in echo_headers(resp, "X-Session-Data")[0], "the backend did not get the session data")

    for bad in ("%s=%s" % (cookie_name, bad_cookie_marker),
                "%s=%s" % (cookie_name, token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))):
        resp = proxy.request("GET", "/echo", headers=[("Cookie", bad)])
        check_eq(echo_headers(resp, "X-Session-Status"), ["invalid"], "status with a bad cookie")
        issued.append(bad.split("=", 1)[1])

    malformed = [('X-Session-Set', '{"note":"%s"' % marker),            # bad JSON
                 ('X-Session-Set', '["%s"]' % marker),                  # not an object
                 ('X-Session-Set', json.dumps({"note": marker * 120})),  # over max_session_bytes
                 ('X-Session-Destroy', marker)]                           # not true/false
    for name, value in malformed:
        resp = proxy.request("GET", set_headers_target((name, value)), headers=jar)
        check_eq(resp.status, 502, "malformed %s" % name)
        check(marker.encode() not in resp.body, "502 body echoes the instruction value: %r" % resp.body)

    resp = proxy.request("GET", set_headers_target(("X-Session-Regenerate", "true")), headers=jar)
    check_eq(resp.status, 200, "regenerate")
    token2 = set_cookie(resp)
    check(token2 and token2 != token, "regenerate issued no new cookie")
    resp = proxy.request("GET", set_headers_target(("X-Session-Destroy", "true")),
                         headers=[("Cookie", "%s=%s" % (cookie_name, token2))])
    check_eq(resp.status, 200, "destroy")
    return issued


def _check_no_leaks(proc, forbidden):
    out, err = proc.stdout_text(), proc.stderr_text()
    check(out.strip(), "%s wrote no access log at all" % proc.name)
    for label, text in forbidden.items():
        for stream, data in (("stdout", out), ("stderr", err)):
            check(text not in data, "%s's %s contains the %s (%r)" % (proc.name, stream, label, text[:40]))


def test_logs_never_contain_secrets_cookies_or_session_data(t):
    marker = "SESSION-MARKER-5d1e9a"
    bad_cookie = "BADCOOKIE-MARKER-aa71c0"
    other_cookie = "OTHERCOOKIE-MARKER-3b6f"

    # A: cookie manager, inline secret_key.
    secret_a = "SECRETKEY-MARKER-inline-0123456789abcdef0123456789"
    a = t.sessiond(overrides={"secret_key": secret_a, "log": {"level": "debug", "access": "combined"},
                              "session": {"max_session_bytes": 2048}})
    issued_a = _session_traffic(a, "session_id", marker, bad_cookie, other_cookie)

    # B: redis manager with a password, secret_key_file readable by everyone.
    password = "REDISPASS-MARKER-8c2d"
    redis = RedisServer(t, password=password).start()
    secret_b = "SECRETKEY-MARKER-file-fedcba9876543210fedcba987654"
    key_file = t.write_file("secret.key", secret_b + "\n")
    os.chmod(key_file, 0o644)
    b = t.sessiond(overrides={"secret_key": REMOVE, "secret_key_file": key_file,
                              "session": {"manager": "redis", "max_session_bytes": 2048},
                              "redis": {"url": "redis://:%s@127.0.0.1:%d/0" % (password, redis.port)},
                              "log": {"level": "debug", "access": "json"}})
    issued_b = _session_traffic(b, "session_id", marker, bad_cookie, other_cookie)

    # C: redis with a wrong password, D: redis unreachable with a password.
    wrong = "WRONGPASS-MARKER-41f0"
    c = t.sessiond(overrides={"session": {"manager": "redis"}, "log": {"level": "debug"},
                              "redis": {"url": "redis://:%s@127.0.0.1:%d/0" % (wrong, redis.port)}})
    d = t.sessiond(overrides={"session": {"manager": "redis"}, "log": {"level": "debug"},
                              "redis": {"url": "redis://:%s@127.0.0.1:%d/0" % (password, free_port())}})
    for proc in (c, d):
        resp = proc.request("GET", set_headers_target(("X-Session-Set", json.dumps({"note": marker}))))
        check_eq(resp.status, 503, "%s: session write with a failing redis" % proc.name)

    for proc in (a, b, c, d):
        check_eq(proc.stop(), 0, "%s exit status" % proc.name)
    check("readable by other users" in b.stderr_text() and key_file in b.stderr_text(),
          "no warning about the world-readable secret_key_file:\n" + b.stderr_text()[-1500:])
    check("[debug]" in a.stderr_text(), "log.level debug produced no debug line")
    check("[warn]" in c.stderr_text(), "the redis AUTH failure was not logged")

    forbidden = {"session data marker": marker, "invalid cookie value": bad_cookie,
                 "non-session cookie value": other_cookie, "redis password": password,
                 "wrong redis password": wrong, "inline secret_key": secret_a, "file secret_key": secret_b}
    for i, v in enumerate(issued_a + issued_b):
        forbidden["cookie value #%d" % i] = v
    for proc in (a, b, c, d):
        _check_no_leaks(proc, forbidden)


def test_access_log_json_lines_carry_request_fields(t):
    proxy = t.sessiond(overrides={"log": {"access": "json"}})
    sent = []
    resp = proxy.request("GET", "/echo?x=1", headers=[("X-Request-Id", "json-rid-1"), ("User-Agent", "ops/\"1\""),
                                                      ("Referer", "http://r.example/a")])
    sent.append(("GET", "/echo?x=1", 200, resp, "none", "json-rid-1"))
    resp = proxy.request("POST", "/status/404", body=b"hello", headers=[("X-Request-Id", "json-rid-2")])
    sent.append(("POST", "/status/404", 404, resp, "none", "json-rid-2"))
    resp = proxy.request("GET", set_headers_target(("X-Session-Set", '{"a":1}')),
                         headers=[("X-Request-Id", "json-rid-3")])
    sent.append(("GET", set_headers_target(("X-Session-Set", '{"a":1}')), 200, resp, "none", "json-rid-3"))
    token = cookie_value(resp, "session_id")
    resp = proxy.request("GET", "/echo", headers=[("X-Request-Id", "json-rid-4"),
                                                  ("Cookie", "session_id=" + token)])
    sent.append(("GET", "/echo", 200, resp, "active", "json-rid-4"))
    resp = proxy.request("GET", "/bytes/1000", headers=[("X-Request-Id", "json-rid-5"),
                                                        ("Cookie", "session_id=garbage")])
    sent.append(("GET", "/bytes/1000", 200, resp, "invalid", "json-rid-5"))

    lines = _lines(proxy.stdout_text())
    check_eq(len(lines), len(sent), "access log lines (stdout: %r)" % lines)
    for line, (method, target, status, resp, session, rid) in zip(lines, sent):
        try:
            doc = json.loads(line)
        except ValueError:
            raise AssertionError("access log line is not JSON: %r" % line)
        check_eq(sorted(doc), sorted(JSON_FIELDS), "fields of %r" % line)
        check(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", doc["time"]),
              "time %r is not RFC 3339" % doc["time"])
        check_eq(doc["client"], "127.0.0.1", "client")
        check_eq(doc["method"], method, "method")
        check_eq(doc["path"], target, "path")
        check_eq(doc["status"], status, "status")
        check_eq(doc["bytes"], resp.body_length, "bytes (the response body length)")
        check(isinstance(doc["duration"], (int, float)) and 0 <= doc["duration"] < 5, "duration %r" % doc["duration"])
        ud = doc["upstream_duration"]
        check(isinstance(ud, (int, float)) and 0 <= ud <= doc["duration"] + 0.001,
              "upstream_duration %r (duration %r)" % (ud, doc["duration"]))
        check_eq(doc["session"], session, "session")
        check_eq(doc["request_id"], rid, "request_id")
        check_eq((doc["host"], doc["protocol"]), ("test.local", "HTTP/1.1"), "host and protocol")
        if rid == "json-rid-1":
            check_eq((doc["user_agent"], doc["referer"]), ('ops/"1"', "http://r.example/a"), "user_agent, referer")
        else:
            check_eq((doc["user_agent"], doc["referer"]), (None, None), "user_agent, referer of a request without")

    conn = t.connect(proxy.port)  # HTTP/1.0 without Host
    conn.send(b"GET /echo HTTP/1.0\r\n\r\n")
    check_eq(conn.read_response().status, 200, "HTTP/1.0 request without Host")
    doc = json.loads(_lines(proxy.stdout_text())[-1])
    check_eq((doc["protocol"], doc["host"]), ("HTTP/1.0", None), "protocol and host of an HTTP/1.0 request")

    proxy.backend.stop()  # a local 502: no upstream answer
    resp = proxy.request("GET", "/echo", headers=[("X-Request-Id", "json-rid-6")])
    check_eq(resp.status, 502, "status with the backend stopped")
    doc = json.loads(_lines(proxy.stdout_text())[-1])
    check_eq((doc["status"], doc["request_id"], doc["upstream_duration"]), (502, "json-rid-6", None),
             "status, request_id, upstream_duration of a local 502")


def test_access_log_combined_lines_match_format(t):
    proxy = t.sessiond(overrides={"log": {"access": "combined"}})
    proxy.request("GET", "/echo?q=1", headers=[("User-Agent", "ops-test/1.0"), ("Referer", "http://r.example/")])
    proxy.request("GET", "/status/404")
    # A user agent with a quote and a backslash must not end its field early.
    proxy.request("GET", "/echo", headers=[("User-Agent", 'evil" 200 0 "x\\y'), ("X-Request-Id", "comb-rid")])
    conn = t.connect(proxy.port)
    conn.send(b"GET /echo HTTP/1.0\r\nHost: x\r\n\r\n")
    check_eq(conn.read_response().status, 200, "HTTP/1.0 request")

    lines = _lines(proxy.stdout_text())
    check_eq(len(lines), 4, "access log lines (stdout: %r)" % lines)
    fields = []
    for line in lines:
        m = COMBINED_RE.match(line)
        check(m, "access log line does not match the combined format: %r" % line)
        fields.append(m.groupdict())
    f = fields[0]
    check_eq((f["client"], f["method"], f["target"], f["minor"], f["status"], f["referer"], f["ua"], f["session"]),
             ("127.0.0.1", "GET", "/echo?q=1", "1", "200", "http://r.example/", "ops-test/1.0", "none"),
             "fields of the first line")
    check(f["urt"] != "-" and float(f["urt"]) <= float(f["rt"]) + 0.001, "urt %s vs rt %s" % (f["urt"], f["rt"]))
    check(re.fullmatch(r"[0-9a-f]{32}", f["rid"]), "generated rid %r" % f["rid"])
    check_eq((fields[1]["status"], fields[1]["referer"], fields[1]["ua"]), ("404", "-", "-"),
             "status, referer, user agent of the 404 line")
    check_eq(fields[2]["rid"], "comb-rid", "rid of the third line")
    check('"' not in fields[2]["ua"] and "evil" in fields[2]["ua"], "escaped user agent %r" % fields[2]["ua"])
    check_eq(fields[3]["minor"], "0", "HTTP version of the HTTP/1.0 line")


def test_access_log_records_requests_rejected_before_forwarding(t):
    # A malformed request answered 400 by sessiond itself is still a request
    # an operator wants to see in the access log (as nginx logs its 400s).
    proxy = t.sessiond(overrides={"log": {"access": "json"}})
    conn = t.connect(proxy.port)
    conn.send(b"GET /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
    check_eq(conn.read_response().status, 400, "CL+TE request")
    lines = _lines(proxy.stdout_text())
    check_eq(len(lines), 1, "access log lines after one rejected request")
    check_eq(json.loads(lines[0])["status"], 400, "logged status")


def test_access_log_off_writes_no_access_lines(t):
    proxy = t.sessiond(overrides={"log": {"access": "off"}})
    check_eq(proxy.request("GET", "/echo").status, 200, "request")
    check_eq(proxy.request("GET", "/status/404").status, 404, "request")
    check_eq(proxy.request("GET", "/echo", headers=[("Cookie", "session_id=bad")]).status, 200, "request")
    proxy.backend.stop()
    check_eq(proxy.request("GET", "/echo").status, 502, "request with the backend stopped")
    check_eq(proxy.stop(), 0, "exit status")
    check_eq(proxy.stdout_text(), "", "stdout with log.access off")


def test_error_log_lines_have_levels_and_respect_log_level(t):
    def traffic(proc):
        proc.request("GET", "/echo", headers=[("Cookie", "session_id=bad")])       # debug line
        proc.request("GET", set_headers_target(("X-Session-Set", "{bad")))         # warn line

    debug = t.sessiond(overrides={"log": {"level": "debug"}})
    traffic(debug)
    errors_only = t.sessiond(overrides={"log": {"level": "error"}})
    traffic(errors_only)
    for proc in (debug, errors_only):
        check_eq(proc.stop(), 0, "%s exit status" % proc.name)

    lines = _lines(debug.stderr_text())
    for line in lines:
        check(ERROR_LOG_RE.match(line), "error log line without time and level: %r" % line)
    levels = {ERROR_LOG_RE.match(line).group(1) for line in lines}
    check({"debug", "info", "warn"} <= levels, "log.level debug shows levels %r, want debug, info, warn" % levels)
    for line in _lines(errors_only.stderr_text()):
        m = ERROR_LOG_RE.match(line)
        check(m and m.group(1) == "error", "log.level error let through %r" % line)


def test_every_malformed_instruction_is_logged(t):
    # docs/HEADER-PROTOCOL.md, Malformed instructions: a malformed instruction (bad JSON, non-object Set,
    # session over max_session_bytes) gets a 502 "and the error is logged".
    cases = [("X-Session-Set", '{"a":'), ("X-Session-Set", '["a"]'),
             ("X-Session-Set", json.dumps({"big": "x" * 300}))]
    missing = []
    for manager in ("cookie", "memory"):
        proxy = t.sessiond(overrides={"session": {"manager": manager, "max_session_bytes": 128}})
        for name, value in cases:
            before = _lines(proxy.stderr_text())
            resp = proxy.request("GET", set_headers_target((name, value)))
            check_eq(resp.status, 502, "%s: status for %s: %s" % (manager, name, value[:30]))
            new = _lines(proxy.stderr_text())[len(before):]
            if not any(name.lower() in line.lower() for line in new):
                missing.append("%s manager, %s: %s" % (manager, name, value[:30]))
    check(not missing, "502 for a malformed instruction left no stderr line naming the header: %s" % missing)


# ---------------------------------------------------------------------------
# Error log lines an operator can act on (docs/OPERATIONS.md, Error log): an
# upstream failure names the upstream, the errno and its text, the client, the
# request id and the request line, as nginx does; log.format: json writes the
# same as one object per line.

def _new_lines(proc, mark):
    return _lines(proc.stderr_text()[mark:])


def _failure_line(proc, mark, what):
    lines = [line for line in _new_lines(proc, mark) if "[warn] upstream " in line]
    check(len(lines) == 1, "%s: want one upstream failure line, got %r" % (what, lines))
    return lines[0]


def _errno_text(code):
    return "(%d: %s)" % (code, os.strerror(code))


def test_upstream_failure_lines_name_errno_request_line_and_request_id(t):
    proxy = t.sessiond(overrides={"timeouts": {"upstream_response": "300ms"}})
    upstream = "upstream 127.0.0.1:%d: " % proxy.backend.port
    cases = [  # target, status, what the line must say after "upstream ADDR: "
        ("/reset?a=1", 502, "connection failed before a complete response head " + _errno_text(errno.ECONNRESET)),
        ("/raw/empty", 502, "closed the connection before a complete response head, "),
        ("/raw/garbage-status", 502, "malformed response head: "),
        ("/hang", 504, "no response head within 300 ms (timeouts.upstream_response) "
         + _errno_text(errno.ETIMEDOUT)),
    ]
    for i, (target, status, says) in enumerate(cases):
        rid = "ops-fail-%d" % i
        mark = len(proxy.stderr_text())
        resp = proxy.request("GET", target, headers=[("X-Request-Id", rid)], timeout=5)
        check_eq(resp.status, status, "status for %s" % target)
        line = _failure_line(proxy, mark, target)
        check(ERROR_LOG_RE.match(line), "not an error log line: %r" % line)
        check(upstream + says in line, "%s: want %r in %r" % (target, upstream + says, line))
        check(line.endswith(', client=127.0.0.1, rid=%s, "GET %s HTTP/1.1"' % (rid, target)),
              "%s: the line does not end with the client, rid and request line: %r" % (target, line))

    # Refused: nothing listens. The target is cut to 256 bytes in the line.
    dead = t.sessiond("http://127.0.0.1:%d" % free_port())
    long_target = "/" + "x" * 600
    mark = len(dead.stderr_text())
    check_eq(dead.request("GET", long_target, headers=[("X-Request-Id", "ops-refused")]).status, 502,
             "status with nothing listening upstream")
    line = _failure_line(dead, mark, "refused")
    check("connect failed %s, client=127.0.0.1, rid=ops-refused, " % _errno_text(errno.ECONNREFUSED) in line,
          "refused connect line: %r" % line)
    check(line.endswith('"GET /%s... HTTP/1.1"' % ("x" * 255)), "long target not cut at 256 bytes: %r" % line[-300:])


def test_upstream_connect_timeout_line_names_the_timeout(t):
    upstream = t.unresponsive_upstream()
    proxy = t.sessiond(upstream, {"timeouts": {"upstream_connect": "300ms"}})
    mark = len(proxy.stderr_text())
    check_eq(proxy.request("POST", "/form", body=b"a=1", headers=[("X-Request-Id", "ops-ct")], timeout=10).status,
             502, "status for an unanswered connect")
    line = _failure_line(proxy, mark, "connect timeout")
    want = "upstream %s: connect timed out after 300 ms (timeouts.upstream_connect) %s" % (
        upstream.split("://", 1)[1], _errno_text(errno.ETIMEDOUT))
    check(want in line, "want %r in %r" % (want, line))
    check(line.endswith(', rid=ops-ct, "POST /form HTTP/1.1"'), "rid and request line: %r" % line)


def test_client_refusals_at_debug_carry_client_and_reason(t):
    proxy = t.sessiond(overrides={"log": {"level": "debug"}, "limits": {"max_body_bytes": 16}})
    mark = len(proxy.stderr_text())
    conn = t.connect(proxy.port)
    conn.send(b"GET /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
    check_eq(conn.read_response().status, 400, "CL+TE request")
    lines = [line for line in _new_lines(proxy, mark) if "[debug] refused the request head (400): " in line]
    check(len(lines) == 1 and lines[0].endswith(", client=127.0.0.1"),
          "no debug line naming the 400, its reason and the client: %r" % _new_lines(proxy, mark))
    check("/smuggle" not in lines[0], "a refused head is quoted in the log: %r" % lines[0])

    # Refused after the head was accepted: the request line and id are known.
    mark = len(proxy.stderr_text())
    conn = t.connect(proxy.port)
    conn.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nX-Request-Id: ops-413\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"20\r\n" + b"a" * 32 + b"\r\n0\r\n\r\n")
    check_eq(conn.read_response().status, 413, "chunked body over max_body_bytes")
    lines = [line for line in _new_lines(proxy, mark) if "[debug] refused the request (413): " in line]
    check(len(lines) == 1 and lines[0].endswith(', client=127.0.0.1, rid=ops-413, "POST /upload HTTP/1.1"'),
          "no debug line with the 413, client, rid and request line: %r" % _new_lines(proxy, mark))


def test_log_format_json_writes_the_error_log_as_json_objects(t):
    proxy = t.sessiond(overrides={"log": {"format": "json", "access": "combined", "level": "debug"}})
    mark = len(proxy.stderr_text())
    check_eq(proxy.request("GET", "/reset?j=1", headers=[("X-Request-Id", "ops-json")], timeout=5).status, 502,
             "status for a reset upstream")
    check_eq(proxy.stop(), 0, "exit status")
    docs = []
    for line in _lines(proxy.stderr_text()):
        try:
            docs.append(json.loads(line))
        except ValueError:
            raise AssertionError("log.format json wrote a line that is not JSON: %r" % line)
    for doc in docs:
        check(isinstance(doc, dict) and {"time", "level", "message"} <= set(doc),
              "error log object without time, level, message: %r" % doc)
        check(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", doc["time"]), "time %r" % doc["time"])
        check(doc["level"] in ("debug", "info", "warn", "error"), "level %r" % doc["level"])
    check(any(d["level"] == "info" and "listening" in d["message"] for d in docs), "no start line in %r" % docs)
    failures = [d for d in docs if d.get("upstream")]
    check_eq(len(failures), 1, "upstream failure objects")
    f = failures[0]
    check_eq((f["level"], f["message"], f["upstream"], f["errno"], f["error"], f["client"], f["rid"], f["request"]),
             ("warn", "connection failed before a complete response head", "127.0.0.1:%d" % proxy.backend.port,
              errno.ECONNRESET, os.strerror(errno.ECONNRESET), "127.0.0.1", "ops-json", "GET /reset?j=1 HTTP/1.1"),
             "fields of the upstream failure")
    # log.format governs the error log only: the access log stays combined.
    access = _lines(proxy.stdout_text())
    check(access and all(COMBINED_RE.match(line) for line in access), "access log not combined: %r" % access)


def test_log_access_json_alone_leaves_the_error_log_text(t):
    proxy = t.sessiond(overrides={"log": {"access": "json"}})
    check_eq(proxy.request("GET", "/raw/empty", timeout=5).status, 502, "status for an empty upstream reply")
    check_eq(proxy.stop(), 0, "exit status")
    lines = _lines(proxy.stderr_text())
    check(any("[warn] upstream " in line for line in lines), "no upstream failure line: %r" % lines)
    for line in lines:
        check(ERROR_LOG_RE.match(line), "log.access json changed the error log: %r" % line)
    check(all(json.loads(line) for line in _lines(proxy.stdout_text())), "access log not JSON")
