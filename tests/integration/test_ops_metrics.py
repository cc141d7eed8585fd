"""Admin /metrics (docs/OPERATIONS.md, Metrics): the metrics below are exposed in valid
Prometheus text, and the values move exactly with the traffic that passed."""

import json
import os
import re
import signal
import time

from harness import REPO, check, check_eq, echo_headers, to_yaml
from test_ops_support import (admin_overrides, admin_get, check_histogram, cookie_attrs, cookie_value, scrape,
                              set_headers_target, wait_for)

# The metrics every sessiond has always exposed, then the per-failure counters
# (all in docs/OPERATIONS.md, Metrics).
DOCUMENTED_METRICS = {
    "sessiond_requests_total": "counter",
    "sessiond_request_duration_seconds": "histogram",
    "sessiond_upstream_errors_total": "counter",
    "sessiond_sessions_created_total": "counter",
    "sessiond_sessions_destroyed_total": "counter",
    "sessiond_store_errors_total": "counter",
    "sessiond_store_duration_seconds": "histogram",
    "sessiond_connections_active": "gauge",
}
FAILURE_METRICS = {
    "sessiond_invalid_cookies_total": "counter",
    "sessiond_expired_cookies_total": "counter",
    "sessiond_malformed_instructions_total": "counter",
    "sessiond_timeouts_total": "counter",
    "sessiond_bad_requests_total": "counter",
    "sessiond_sessions_too_large_total": "counter",
}
# Unlabelled counters whose deltas the traffic test pins down.
PLAIN_COUNTERS = ["sessiond_upstream_errors_total", "sessiond_sessions_created_total",
                  "sessiond_sessions_destroyed_total", "sessiond_invalid_cookies_total",
                  "sessiond_expired_cookies_total", "sessiond_malformed_instructions_total",
                  "sessiond_bad_requests_total", "sessiond_sessions_too_large_total"]


def _label_deltas(before, after, label):
    """requests_total deltas summed by one label: {value of label: delta}."""
    out = {}
    for labels, v in after.labelled("sessiond_requests_total").items():
        d = v - before.value("sessiond_requests_total", **dict(labels))
        if d:
            key = dict(labels)[label]
            out[key] = out.get(key, 0) + d
    return out


def _code_deltas(before, after):
    return _label_deltas(before, after, "code")


def test_metrics_exposition_declares_every_contract_metric(t):
    overrides, aport = admin_overrides()
    proxy = t.sessiond(overrides=overrides)
    check_eq(proxy.request("GET", "/echo").status, 200, "proxied request")
    resp = admin_get(aport, "/metrics")
    check_eq(resp.status, 200, "/metrics status")
    ctype = resp.header("Content-Type") or ""
    check(ctype.startswith("text/plain") and "version=0.0.4" in ctype,
          "/metrics Content-Type %r, want text/plain; version=0.0.4" % ctype)
    s = scrape(aport)
    for name, kind in list(DOCUMENTED_METRICS.items()) + list(FAILURE_METRICS.items()):
        fam = s.families.get(name)
        check(fam is not None and fam["type"] is not None, "no # TYPE line for %s" % name)
        check_eq(fam["type"], kind, "# TYPE of %s" % name)
        check(fam["samples"], "%s has no samples" % name)
        check(fam["help"], "%s has no # HELP text" % name)
        if kind == "counter":
            for sname, labels, value in fam["samples"]:
                check(value >= 0 and value == int(value), "counter %s%r = %r" % (sname, labels, value))
    check_eq(s.value("sessiond_requests_total", code="200", method="GET"), 1.0,
             'requests_total{code="200",method="GET"}')
    for _, labels, _ in s.families["sessiond_requests_total"]["samples"]:
        check_eq(sorted(labels), ["code", "method"], "labels of sessiond_requests_total")
    check_histogram(s.families, "sessiond_request_duration_seconds")
    store = check_histogram(s.families, "sessiond_store_duration_seconds")
    ops = sorted(dict(k)["op"] for k in store)
    check("load" in ops and "apply" in ops, "store_duration_seconds op labels %r lack load/apply" % ops)
    err_ops = sorted(dict(k)["op"] for k in s.labelled("sessiond_store_errors_total"))
    check_eq(err_ops, ops, "op labels of store_errors_total vs store_duration_seconds")
    kinds = sorted(dict(k)["kind"] for k in s.labelled("sessiond_timeouts_total"))
    for kind in ("client_header", "upstream_connect", "upstream_response"):
        check(kind in kinds, "sessiond_timeouts_total has no kind=%r (has %r)" % (kind, kinds))


def test_metrics_counters_move_by_exact_deltas(t):
    overrides, aport = admin_overrides()
    proxy = t.sessiond(overrides=overrides)
    # The harness's readiness probe connection may still be in the accept
    # queue; let it be counted (and closed) before the baseline.
    wait_for(lambda: (lambda s: s.value("sessiond_connections_total") >= 1
                      and s.value("sessiond_connections_active") == 0)(scrape(aport)),
             3, "the readiness probe connection to be accepted and closed")
    before = scrape(aport)
    connections = 0

    for i in range(3):
        check_eq(proxy.request("GET", "/echo?n=%d" % i).status, 200, "plain request %d" % i)
    for i in range(2):
        check_eq(proxy.request("GET", "/status/404").status, 404, "backend 404 #%d" % i)
    connections += 5

    conn = t.connect(proxy.port)  # CL + TE together: 400 before forwarding
    conn.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    check_eq(conn.read_response().status, 400, "CL+TE request")
    conn.close()
    connections += 1

    resp = proxy.request("GET", "/echo", headers=[("Cookie", "session_id=this-is-not-a-valid-token")])
    check_eq(resp.status, 200, "request with an invalid cookie")
    check_eq(echo_headers(resp, "X-Session-Status"), ["invalid"], "X-Session-Status for the invalid cookie")

    resp = proxy.request("GET", set_headers_target(("X-Session-Set", '{"user":"ada"}')))
    check_eq(resp.status, 200, "session-creating request")
    token = cookie_value(resp, "session_id")
    check(token, "no session cookie set: %r" % resp.header_values("Set-Cookie"))

    resp = proxy.request("GET", "/echo", headers=[("Cookie", "session_id=" + token)])
    check_eq(echo_headers(resp, "X-Session-Status"), ["active"], "X-Session-Status with the new cookie")

    resp = proxy.request("GET", set_headers_target(("X-Session-Destroy", "true")),
                         headers=[("Cookie", "session_id=" + token)])
    check_eq(resp.status, 200, "destroying request")
    check_eq((cookie_attrs(resp, "session_id") or {}).get("max-age"), "0", "Max-Age of the cleared cookie")

    resp = proxy.request("GET", set_headers_target(("X-Session-Set", '{"broken":')))
    check_eq(resp.status, 502, "malformed X-Session-Set")
    connections += 5

    proxy.backend.stop()
    check_eq(proxy.request("GET", "/echo").status, 502, "request with the backend stopped")
    connections += 1

    after = scrape(aport)
    check_eq(_code_deltas(before, after), {"200": 7, "404": 2, "400": 1, "502": 2},
             "requests_total deltas by code")
    want = {"sessiond_upstream_errors_total": 1, "sessiond_sessions_created_total": 1,
            "sessiond_sessions_destroyed_total": 1, "sessiond_invalid_cookies_total": 1,
            "sessiond_expired_cookies_total": 0, "sessiond_malformed_instructions_total": 1,
            "sessiond_bad_requests_total": 1, "sessiond_sessions_too_large_total": 0}
    got = {name: after.value(name) - before.value(name) for name in PLAIN_COUNTERS}
    check_eq(got, want, "counter deltas")
    timeouts = {dict(k)["kind"]: v - before.value("sessiond_timeouts_total", **dict(k))
                for k, v in after.labelled("sessiond_timeouts_total").items()}
    check(not any(timeouts.values()), "timeouts_total moved without any timeout: %r" % timeouts)
    errors = {dict(k)["op"]: v for k, v in after.labelled("sessiond_store_errors_total").items()}
    check(not any(errors.values()), "store_errors_total with the cookie manager: %r" % errors)
    if after.has("sessiond_connections_total"):
        check_eq(after.value("sessiond_connections_total") - before.value("sessiond_connections_total"),
                 connections, "connections_total delta")


STANDARD_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}


def test_requests_total_has_a_method_label_from_a_fixed_set(t):
    # docs/OPERATIONS.md, Metrics: method is one of the standard methods or
    # "other", whatever the clients send, so the label space stays bounded.
    overrides, aport = admin_overrides()
    proxy = t.sessiond(overrides=overrides)
    before = scrape(aport)
    for method in ("GET", "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"):
        body = b"x" if method in ("POST", "PUT", "PATCH") else None
        check_eq(proxy.request(method, "/echo", body=body).status, 200, "%s /echo" % method)
    for method in ("PROPFIND", "MKCOL", "PURGE", "MERGE", "CHECKOUT", "M-SEARCH"):
        check_eq(proxy.request(method, "/status/404").status, 404, "%s /status/404" % method)
    conn = t.connect(proxy.port)  # a lowercase method is refused with the head
    conn.send(b"get /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    check_eq(conn.read_response().status, 400, "lowercase method")
    after = scrape(aport)

    deltas = {}
    for labels, v in after.labelled("sessiond_requests_total").items():
        d = v - before.value("sessiond_requests_total", **dict(labels))
        if d:
            deltas[(dict(labels)["code"], dict(labels)["method"])] = d
    check_eq(deltas, {("200", "GET"): 2, ("200", "POST"): 1, ("200", "HEAD"): 1, ("200", "PUT"): 1,
                      ("200", "DELETE"): 1, ("200", "OPTIONS"): 1, ("200", "PATCH"): 1, ("404", "other"): 6,
                      ("400", "other"): 1}, "requests_total deltas by code and method")
    methods = {dict(k)["method"] for k in after.labelled("sessiond_requests_total")}
    check(methods <= STANDARD_METHODS | {"other"}, "method label values outside the fixed set: %r" % methods)


def test_metrics_duration_histogram_buckets_track_requests(t):
    overrides, aport = admin_overrides()
    proxy = t.sessiond(overrides=overrides)
    before = scrape(aport)
    for i in range(5):
        check_eq(proxy.request("GET", "/echo?fast=%d" % i).status, 200, "fast request %d" % i)
    resp = proxy.request("GET", "/slow-headers/400")
    check_eq(resp.status, 200, "slow request")
    after = scrape(aport)

    name = "sessiond_request_duration_seconds"
    b = check_histogram(before.families, name)[()]
    a = check_histogram(after.families, name)[()]
    answered = sum(_code_deltas(before, after).values())
    check_eq(answered, 6, "requests_total delta")
    check_eq(a["count"] - b["count"], answered, "%s_count delta (requests answered meanwhile)" % name)
    deltas = {le: n - dict(b["buckets"])[le] for le, n in a["buckets"]}
    check(a["sum"] - b["sum"] >= 0.4, "%s_sum grew by %.3f, want >= 0.4 (one 400 ms request)"
          % (name, a["sum"] - b["sum"]))
    # The 400 ms request lands above le=0.25 and at or below le=5; the others well below 0.25.
    check_eq(deltas[0.25], 5, "le=0.25 bucket delta")
    check_eq(deltas[5.0], 6, "le=5 bucket delta")
    check_eq(deltas[float("inf")], 6, "le=+Inf bucket delta")


def test_metrics_duration_histogram_includes_rejected_requests(t):
    # Requests sessiond answers itself before forwarding (400, 431) are counted
    # in requests_total; the duration histogram must observe them too, so that
    # rate(_count) equals rate(requests_total).
    overrides, aport = admin_overrides({"limits": {"max_header_bytes": 1024}})
    proxy = t.sessiond(overrides=overrides)
    before = scrape(aport)
    conn = t.connect(proxy.port)
    conn.send(b"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
    check_eq(conn.read_response().status, 400, "duplicate Content-Length")
    conn = t.connect(proxy.port)
    conn.send(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
    check_eq(conn.read_response().status, 431, "oversized head")
    after = scrape(aport)
    check_eq(_code_deltas(before, after), {"400": 1, "431": 1}, "requests_total deltas")
    name = "sessiond_request_duration_seconds"
    a = check_histogram(after.families, name)[()]
    b = check_histogram(before.families, name)[()]
    check_eq(a["count"] - b["count"], 2, "%s_count delta for 2 answered (rejected) requests" % name)


def test_metrics_connections_active_follows_open_connections(t):
    overrides, aport = admin_overrides()
    proxy = t.sessiond(overrides=overrides)
    active = lambda: scrape(aport).value("sessiond_connections_active", default=None)
    wait_for(lambda: active() == 0, 3, "connections_active == 0 at start (it is %r)" % active())

    idle = [t.connect(proxy.port) for _ in range(3)]
    kept = [t.connect(proxy.port) for _ in range(2)]
    for c in kept:
        check_eq(c.request("GET", "/echo").status, 200, "keep-alive request")
    wait_for(lambda: active() == 5, 3, "connections_active == 5")

    slow = t.connect(proxy.port)
    slow.send(b"GET /slow-headers/1500 HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(lambda: active() == 6, 3, "connections_active == 6 with a request in flight")
    check_eq(slow.read_response().status, 200, "slow request")
    check_eq(active(), 6.0, "connections_active after the slow response (connection kept alive)")

    for c in idle + kept:
        c.close()
    wait_for(lambda: active() == 1, 3, "connections_active back to 1")
    slow.close()
    wait_for(lambda: active() == 0, 3, "connections_active back to 0")


def test_metrics_store_histogram_and_errors_with_memory_manager(t):
    overrides, aport = admin_overrides({"session": {"manager": "memory"}})
    proxy = t.sessiond(overrides=overrides)
    before = scrape(aport)
    resp = proxy.request("GET", set_headers_target(("X-Session-Set", '{"a":1}')))
    check_eq(resp.status, 200, "create")
    token = cookie_value(resp, "session_id")
    check(token, "no cookie from the memory manager")
    cookie = [("Cookie", "session_id=" + token)]
    resp = proxy.request("GET", "/echo", headers=cookie)
    check_eq(echo_headers(resp, "X-Session-Data"), ['{"a":1}'], "session data")
    resp = proxy.request("GET", set_headers_target(("X-Session-Set", '{"b":2}')), headers=cookie)
    check_eq(resp.status, 200, "update")
    after = scrape(aport)

    name = "sessiond_store_duration_seconds"
    b = check_histogram(before.families, name)
    a = check_histogram(after.families, name)
    count = lambda series, op: series[(("op", op),)]["count"]
    check_eq(count(a, "load") - count(b, "load"), 2, "store load observations")
    check_eq(count(a, "apply") - count(b, "apply"), 2, "store apply observations")
    errors = {dict(k)["op"]: v for k, v in after.labelled("sessiond_store_errors_total").items()}
    check(not any(errors.values()), "store errors with a healthy memory store: %r" % errors)
    check_eq(after.value("sessiond_sessions_created_total") - before.value("sessiond_sessions_created_total"),
             1, "sessions_created delta")


def test_exposition_parser_rejects_malformed_text():
    # The checks above are only as strict as this parser: prove it refuses
    # what Prometheus would refuse or what breaks histogram semantics.
    from test_ops_support import ExpositionError, parse_exposition
    good = "# TYPE a_total counter\na_total{code=\"200\"} 3\n"
    check_eq(parse_exposition(good)["a_total"]["samples"], [("a_total", {"code": "200"}, 3.0)], "parsed sample")
    bad = {
        "no TYPE line": "a_total 1\n",
        "bad value": "# TYPE a counter\na x\n",
        "unterminated label": "# TYPE a counter\na{code=\"1} 1\n",
        "duplicate sample": "# TYPE a counter\na 1\na 2\n",
        "TYPE after samples": "# TYPE a counter\na 1\n# TYPE a gauge\n",
        "no final newline": "# TYPE a counter\na 1",
        "split family": "# TYPE a gauge\n# TYPE b gauge\na{x=\"1\"} 1\nb 1\na{x=\"2\"} 1\n",
    }
    for what, text in bad.items():
        try:
            parse_exposition(text)
        except (ExpositionError, AssertionError):
            continue
        raise AssertionError("parser accepted %s: %r" % (what, text))
    hist = ("# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 4\nh_sum 1\nh_count 4\n")
    try:
        check_histogram(parse_exposition(hist), "h")
    except AssertionError:
        pass
    else:
        raise AssertionError("check_histogram accepted non-cumulative buckets")


# ---------------------------------------------------------------------------
# What a Prometheus user expects beyond sessiond's own metrics: the process
# collector, build info, and the configuration reload status.

PROCESS_METRICS = {
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
    "sessiond_build_info": "gauge",
    "sessiond_config_last_reload_successful": "gauge",
    "sessiond_config_last_reload_success_timestamp_seconds": "gauge",
}


def _proc_status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def _soft_nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return line.split()[3]
    raise AssertionError("no 'Max open files' in /proc/%d/limits" % pid)


def test_process_and_build_metrics_describe_this_process(t):
    started_before = time.time()
    overrides, aport = admin_overrides()
    proxy = t.sessiond(overrides=overrides)
    s = scrape(aport)
    for name, kind in PROCESS_METRICS.items():
        fam = s.families.get(name)
        check(fam is not None and fam["samples"], "no samples of %s" % name)
        check_eq(fam["type"], kind, "# TYPE of %s" % name)
        check(fam["help"], "%s has no # HELP" % name)

    # Values that /proc of the sessiond process confirms.
    start = s.value("process_start_time_seconds")
    check(started_before - 2 <= start <= time.time() + 1,
          "process_start_time_seconds %.2f is not when sessiond started (~%.2f)" % (start, started_before))
    check_eq(str(int(s.value("process_max_fds"))), _soft_nofile(proxy.pid), "process_max_fds vs /proc limits")
    fds = len(os.listdir("/proc/%d/fd" % proxy.pid))
    # The scrape's own connection may come and go between the two counts.
    check(abs(s.value("process_open_fds") - fds) <= 2, "process_open_fds %r, /proc/PID/fd has %d"
          % (s.value("process_open_fds"), fds))
    rss = s.value("process_resident_memory_bytes")
    vm_rss = _proc_status_kib(proxy.pid, "VmRSS") * 1024
    check(vm_rss / 2 <= rss <= vm_rss * 2, "process_resident_memory_bytes %d vs VmRSS %d" % (rss, vm_rss))
    cpu = s.value("process_cpu_seconds_total")
    for i in range(20):
        proxy.request("GET", "/echo?n=%d" % i)
    check(0 <= cpu <= scrape(aport).value("process_cpu_seconds_total"), "process_cpu_seconds_total went backwards")

    # Build info: the version of the VERSION file and the commit --version shows.
    ((_, labels, value),) = s.families["sessiond_build_info"]["samples"]
    check_eq(value, 1.0, "sessiond_build_info value")
    with open(os.path.join(REPO, "VERSION")) as f:
        check_eq(labels.get("version"), f.read().strip(), "sessiond_build_info version")
    version = t.run_cli(["--version"]).stdout
    commit = re.search(r"^commit\s+(\S+)$", version, re.M)
    check(commit, "no commit line in --version: %r" % version)
    check_eq(labels.get("commit"), commit.group(1), "sessiond_build_info commit")


def test_config_reload_metrics_follow_sighup(t):
    started_before = int(time.time())
    overrides, aport = admin_overrides()
    proxy = t.sessiond(overrides=overrides)
    s = scrape(aport)
    check_eq(s.value("sessiond_config_last_reload_successful", default=None), 1.0, "reload_successful at start")
    loaded = s.value("sessiond_config_last_reload_success_timestamp_seconds")
    check(started_before - 1 <= loaded <= time.time() + 1,
          "success timestamp %r is not the start-up load (~%d)" % (loaded, started_before))

    good = proxy.config
    proxy.config = to_yaml(good) + "\nbogus_key: 1\n"
    proxy.write_config()
    proxy.signal(signal.SIGHUP)
    wait_for(lambda: scrape(aport).value("sessiond_config_last_reload_successful", default=None) == 0, 5,
             "reload_successful 0 after a broken file")
    check_eq(scrape(aport).value("sessiond_config_last_reload_success_timestamp_seconds"), loaded,
             "success timestamp after a failed reload")

    time.sleep(1.1)  # whole seconds: the next load must show a later timestamp
    proxy.config = good
    proxy.write_config()
    proxy.signal(signal.SIGHUP)
    wait_for(lambda: scrape(aport).value("sessiond_config_last_reload_successful", default=None) == 1, 5,
             "reload_successful 1 after a good file")
    check(scrape(aport).value("sessiond_config_last_reload_success_timestamp_seconds") > loaded,
          "success timestamp did not move with the good reload")
    check_eq(proxy.request("GET", "/echo").status, 200, "request after the reloads")


# ---------------------------------------------------------------------------
# The Grafana dashboard in config/ queries only what sessiond emits.

DASHBOARD = os.path.join(REPO, "config", "grafana-dashboard.json")
PROMQL_WORDS = {"sum", "rate", "irate", "increase", "by", "without", "histogram_quantile", "le", "code", "method",
                "op", "kind", "instance", "job", "max", "min", "avg", "time", "clamp_min", "on", "ignoring",
                "group_left", "topk", "count", "delta", "deriv", "abs", "or", "and", "unless", "bool",
                "version", "commit", "vector", "scalar", "label_replace", "changes", "resets"}


def _dashboard_queries():
    with open(DASHBOARD) as f:
        board = json.load(f)
    queries = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                queries.append(node["expr"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(board)
    return board, queries


def test_grafana_dashboard_queries_only_emitted_metrics(t):
    board, queries = _dashboard_queries()
    check(board.get("title") and board.get("panels"), "dashboard without title or panels")
    check(len(queries) >= 8, "dashboard has only %d queries" % len(queries))
    # Traffic of every kind, so that every family has samples to find.
    overrides, aport = admin_overrides({"session": {"manager": "memory"}})
    proxy = t.sessiond(overrides=overrides)
    proxy.request("GET", set_headers_target(("X-Session-Set", '{"a":1}')))
    s = scrape(aport)
    emitted = set()
    for family, fam in s.families.items():
        emitted.add(family)
        emitted.update(name for name, _, _ in fam["samples"])
    used = set()
    for q in queries:
        # Metric names: identifiers not inside a label matcher or a string,
        # and not PromQL functions, keywords or label names.
        bare = re.sub(r'"[^"]*"', "", re.sub(r"\{[^}]*\}", "", q))
        bare = re.sub(r"\[[^\]]*\]", "", bare)
        for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare):
            if word in PROMQL_WORDS or not ("_" in word):
                continue
            used.add(word)
    missing = sorted(used - emitted)
    check(not missing, "the dashboard queries metrics sessiond does not emit: %r" % missing)
    check(any(re.search(r"by \(method\)", q) for q in queries), "the dashboard charts no requests by method")
    for want in ("sessiond_requests_total", "sessiond_request_duration_seconds_bucket", "process_resident_memory_bytes",
                 "sessiond_config_last_reload_successful", "sessiond_store_errors_total"):
        check(want in used, "the dashboard does not chart %s" % want)
