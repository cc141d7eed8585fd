"""X-Request-Id: a valid client value (1..128 of [A-Za-z0-9._:-]) is kept,
anything else is replaced by a generated one (32 hex); the id reaches the
backend exactly once, comes back in the response and is in the access log."""

import json
import re

from harness import check, check_eq, echo_headers
from test_ops_support import set_headers_target

GENERATED = re.compile(r"[0-9a-f]{32}")


def _json_proxy(t, **kw):
    return t.sessiond(overrides={"log": {"access": "json"}}, **kw)


def _last_log(proxy):
    return json.loads([line for line in proxy.stdout_text().split("\n") if line][-1])


def _roundtrip(proxy, headers):
    """(id the backend saw, id in the response, id in the access log)."""
    resp = proxy.request("GET", "/echo", headers=headers)
    check_eq(resp.status, 200, "status")
    seen = echo_headers(resp, "X-Request-Id")
    check_eq(len(seen), 1, "X-Request-Id headers the backend saw (%r)" % seen)
    return seen[0], resp.header("X-Request-Id"), _last_log(proxy)["request_id"]


def test_request_id_valid_client_value_is_kept(t):
    proxy = _json_proxy(t)
    for rid in ("abc", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace.id_1:span-2", "x" * 128, "A"):
        check_eq(_roundtrip(proxy, [("X-Request-Id", rid)]), (rid, rid, rid),
                 "backend / response / log id for client id %r" % rid[:40])
    check_eq(_roundtrip(proxy, [("x-request-id", "lower-case-name")]), ("lower-case-name",) * 3,
             "id sent with a lower-case header name")


def test_request_id_invalid_client_value_is_replaced(t):
    proxy = _json_proxy(t)
    for bad in ("x" * 129, "has space", "semi;colon", "slash/id", "quote\"id", "brace{}", "tab\tid",
                "caf\xe9", "%41"):
        got = _roundtrip(proxy, [("X-Request-Id", bad)])
        check(GENERATED.fullmatch(got[0]), "client id %r was not replaced: backend saw %r" % (bad, got[0]))
        check_eq(got, (got[0],) * 3, "backend / response / log id after replacing %r" % bad)
    got = _roundtrip(proxy, [("X-Request-Id", "")])
    check(GENERATED.fullmatch(got[0]), "empty client id not replaced: %r" % (got,))
    # Two ids are ambiguous: neither is kept.
    got = _roundtrip(proxy, [("X-Request-Id", "first-id"), ("X-Request-Id", "second-id")])
    check(GENERATED.fullmatch(got[0]), "duplicate client ids: backend saw %r" % (got[0],))
    check_eq(got, (got[0],) * 3, "backend / response / log id for duplicate client ids")


def test_request_id_generated_ids_are_unique_and_consistent(t):
    proxy = _json_proxy(t)
    ids = []
    conn = t.connect(proxy.port)
    for i in range(30):
        resp = proxy.request("GET", "/echo?fresh=%d" % i) if i % 2 else conn.request("GET", "/echo?ka=%d" % i)
        seen = echo_headers(resp, "X-Request-Id")
        check_eq(len(seen), 1, "X-Request-Id headers the backend saw")
        check(GENERATED.fullmatch(seen[0]), "generated id %r is not 32 lower-case hex digits" % seen[0])
        check_eq(resp.header("X-Request-Id"), seen[0], "response id vs backend id")
        ids.append(seen[0])
    check_eq(len(set(ids)), len(ids), "distinct generated ids among %d requests" % len(ids))
    logged = [json.loads(line)["request_id"] for line in proxy.stdout_text().split("\n") if line]
    check_eq(logged, ids, "request ids in the access log, in order")


def test_request_id_upstream_value_wins_in_the_response(t):
    proxy = _json_proxy(t)
    resp = proxy.request("GET", set_headers_target(("X-Request-Id", "from-upstream")),
                         headers=[("X-Request-Id", "from-client")])
    check_eq(resp.header_values("X-Request-Id"), ["from-upstream"], "response X-Request-Id")
    check_eq(proxy.backend.requests(path="/set-headers")[0].header_values("X-Request-Id"), ["from-client"],
             "X-Request-Id the backend saw")
    check_eq(_last_log(proxy)["request_id"], "from-client", "logged request id")


def test_request_id_in_the_combined_access_log(t):
    proxy = t.sessiond(overrides={"log": {"access": "combined"}})
    proxy.request("GET", "/echo", headers=[("X-Request-Id", "combined-kept-1")])
    resp = proxy.request("GET", "/echo", headers=[("X-Request-Id", "bad id")])
    generated = resp.header("X-Request-Id")
    lines = [line for line in proxy.stdout_text().split("\n") if line]
    check_eq(len(lines), 2, "access log lines")
    check(lines[0].endswith(" rid=combined-kept-1"), "first line does not end with the kept id: %r" % lines[0])
    check(lines[1].endswith(" rid=" + generated), "second line does not end with the generated id %r: %r"
          % (generated, lines[1]))
    check("bad id" not in lines[1], "the rejected id was logged: %r" % lines[1])


def test_request_id_on_responses_sessiond_makes_itself(t):
    # The id must also reach the client on sessiond's own answers (502 with
    # the upstream down, 502 for a malformed instruction), where an operator
    # needs it most to find the log line.
    proxy = _json_proxy(t)
    resp = proxy.request("GET", set_headers_target(("X-Session-Set", "{bad")), headers=[("X-Request-Id", "rid-502a")])
    check_eq(resp.status, 502, "malformed instruction")
    check_eq(_last_log(proxy)["request_id"], "rid-502a", "logged id of the 502")
    missing = []
    if resp.header("X-Request-Id") != "rid-502a":
        missing.append("malformed-instruction 502 has X-Request-Id %r" % resp.header("X-Request-Id"))
    proxy.backend.stop()
    resp = proxy.request("GET", "/echo")
    check_eq(resp.status, 502, "upstream down")
    logged = _last_log(proxy)["request_id"]
    if resp.header("X-Request-Id") != logged:
        missing.append("upstream-down 502 has X-Request-Id %r, the log has %r" % (resp.header("X-Request-Id"), logged))
    check(not missing, "; ".join(missing))
