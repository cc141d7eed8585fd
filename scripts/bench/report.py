#!/usr/bin/env python3
"""Turns the raw output of one scripts/bench.sh run into the results.

  report.py RUN_DIR OUT_JSON OUT_TXT

RUN_DIR holds what bench.sh collected:
  facts.txt                             one fact per line, whitespace-separated:
      meta KEY VALUE...                 run parameters (seconds, rounds, clk_tck, ...)
      run SCENARIO CONTENDER ROUND PROXY_TICKS BACKEND_ACCEPTS REDIS_TICKS
          RPS P50_MS P99_MS REQUESTS NON2XX SOCKET_ERRORS
                                        one wrk run (lib.sh, measure); ticks are
                                        utime+stime in 1/clk_tck s; "-" = not measured
      mem CONTENDER HWM_KB RSS_KB       server memory after its step
      callgrind NAME REQUESTS IR_WITH IR_WITHOUT
                                        instructions with N requests and with none
      alloc NAME REQUESTS CONNECTIONS MALLOC CALLOC REALLOC POSIX_MEMALIGN
            ALIGNED_ALLOC MEMALIGN FREE calls during one wrk run of REQUESTS
      tls_handshakes ROUND FULL RESUMED handshakes sessiond counted during one
                                        tls_handshake run (its admin metrics)
      ws CONTENDER ROUND RATE MESSAGES ERRORS PROXY_TICKS
                                        one WebSocket echo run (bench.sh, run_ws): messages/s,
                                        echoes counted, failed connections, the server's CPU
                                        ticks over the run (warm-up included); CONTENDER
                                        nginx_tls / cookie_tls: over TLS (wss://), whose
                                        anchor is nginx_tls
      problem TEXT...                   something that went wrong during the run
  idle.json                             idle_conns.py's output (optional)
  idle_tls_cookie.json, idle_tls_nginx.json
                                        the same over TLS, for sessiond and nginx (optional)
  logs/*.stderr                         the servers' stderr (optional)

Scenarios: read, write, nocookie (the wrk step), sweep_wW_cN (the sweep:
W workers, N client connections) and tls_read, tls_handshake (the tls step,
whose anchor is nginx with TLS). Writes the raw numbers and medians as JSON
and the table as text, and prints the table. Every ratio is to nginx
proxy_pass in the same run. The bars are reported PASS/FAIL (or n/a, "scale"
for the rows only scale mode measures, "info" for figures without a bar);
this never fails because a bar was missed (exit 0), only when its input is
unreadable.
"""

import json
import os
import re
import statistics
import sys

SCENARIOS = [
    ("read", "read (valid session cookie)"),
    ("write", "write (every response sets a key)"),
    ("nocookie", "no cookie"),
    ("tls_read", "TLS, keep-alive, read (valid session cookie)"),
    ("tls_handshake", "TLS, a new connection (full handshake) per request"),
]
CONTENDERS = [
    ("direct", "backend direct"),
    ("nginx", "nginx proxy_pass"),
    ("cookie", "sessiond cookie"),
    ("redis", "sessiond redis"),
    ("cookie_w2", "sessiond cookie workers:2"),
    ("nginx_tls", "nginx TLS proxy_pass"),
    ("cookie_tls", "sessiond cookie TLS"),
    ("redis_cluster", "sessiond redis cluster"),
]
LABEL = dict(CONTENDERS, policy="sessiond cookie + policy")
ANCHOR = "nginx"
TLS_ANCHOR = "nginx_tls"  # the anchor of the tls step's scenarios
MIB = 1024  # kB per MiB
ALLOC_KINDS = ["malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign"]
SWEEP = re.compile(r"sweep_w(\d+)_c(\d+)$")


# --- parsing -----------------------------------------------------------------

def number(text, kind=float):
    return None if text == "-" else kind(text)


def load_facts(run_dir):
    facts = {"meta": {}, "mem": {}, "callgrind": {}, "alloc": {}, "runs": {}, "ws": {}, "problems": [],
             "tls_handshakes": []}
    path = os.path.join(run_dir, "facts.txt")
    if not os.path.exists(path):
        return facts
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            kind = parts[0]
            if kind == "meta" and len(parts) >= 3:
                facts["meta"][parts[1]] = " ".join(parts[2:])
            elif kind == "run" and len(parts) == 13:
                run = {"round": int(parts[3]),
                       "proxy_ticks": number(parts[4], int),
                       "backend_accepts": number(parts[5], int),
                       "redis_ticks": number(parts[6], int),
                       "rps": number(parts[7]), "p50_ms": number(parts[8]), "p99_ms": number(parts[9]),
                       "requests": number(parts[10], int),
                       "non2xx": number(parts[11], int) or 0, "socket_errors": number(parts[12], int) or 0}
                facts["runs"].setdefault((parts[1], parts[2]), []).append(run)
            elif kind == "mem" and len(parts) == 4:
                facts["mem"][parts[1]] = {"hwm_kb": int(parts[2]), "rss_kb": int(parts[3])}
            elif kind == "callgrind" and len(parts) == 5:
                n, with_, without = int(parts[2]), int(parts[3]), int(parts[4])
                facts["callgrind"][parts[1]] = {
                    "requests": n, "ir_with_requests": with_, "ir_without_requests": without,
                    "ir_per_request": (with_ - without) / n if n else None}
            elif kind == "alloc" and len(parts) == 11:
                requests = number(parts[2], int)
                counts = dict(zip(ALLOC_KINDS + ["free"], (int(p) for p in parts[4:])))
                total = sum(counts[k] for k in ALLOC_KINDS)
                facts["alloc"][parts[1]] = {
                    "requests": requests, "connections": int(parts[3]), "calls": counts,
                    "allocations": total,
                    "per_request": total / requests if requests else None}
            elif kind == "tls_handshakes" and len(parts) == 4:
                facts["tls_handshakes"].append({"round": int(parts[1]), "full": int(parts[2]),
                                                "resumed": int(parts[3])})
            elif kind == "ws" and len(parts) == 7:
                facts["ws"].setdefault(parts[1], []).append({
                    "round": int(parts[2]), "rate": float(parts[3]), "messages": int(parts[4]),
                    "errors": int(parts[5]), "proxy_ticks": int(parts[6])})
            elif kind == "problem":
                facts["problems"].append(" ".join(parts[1:]))
    return facts


def load_logs(run_dir):
    logs = {}
    logs_dir = os.path.join(run_dir, "logs")
    if not os.path.isdir(logs_dir):
        return logs
    for name in sorted(os.listdir(logs_dir)):
        if not name.endswith(".stderr"):
            continue
        with open(os.path.join(logs_dir, name), errors="replace") as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
        if lines:
            logs[name[:-len(".stderr")]] = lines
    return logs


# --- summarising -------------------------------------------------------------

def median_of(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def spread(runs, key):
    """Half the range over rounds, relative to the median: how noisy the median is."""
    values = [r[key] for r in runs if r.get(key) is not None]
    if len(values) < 2 or not statistics.median(values):
        return None
    return (max(values) - min(values)) / 2 / statistics.median(values)


def per_request(runs, key, scale=1.0):
    """sum(key) * scale / sum(requests) over the runs that measured key."""
    measured = [r for r in runs if r.get(key) is not None and r.get("requests")]
    requests = sum(r["requests"] for r in measured)
    return sum(r[key] for r in measured) * scale / requests if requests else None


def ratio(a, b):
    return a / b if a is not None and b else None


def summarise(runs, clk_tck):
    us_per_tick = 1e6 / clk_tck
    summary = {}
    for (scenario, contender), rs in runs.items():
        summary.setdefault(scenario, {})[contender] = {
            "rounds": len(rs),
            "rps": median_of(rs, "rps"),
            "rps_spread": spread(rs, "rps"),
            "p50_ms": median_of(rs, "p50_ms"),
            "p99_ms": median_of(rs, "p99_ms"),
            "cpu_us_per_request": per_request(rs, "proxy_ticks", us_per_tick),
            "new_upstream_per_request": per_request(rs, "backend_accepts"),
            "redis_cpu_us_per_request": per_request(rs, "redis_ticks", us_per_tick),
            "non2xx": sum(r["non2xx"] for r in rs),
            "socket_errors": sum(r["socket_errors"] for r in rs),
            "requests": sum(r["requests"] or 0 for r in rs),
        }
    for per in summary.values():
        anchor = per.get(ANCHOR) or per.get(TLS_ANCHOR) or {}
        for s in per.values():
            for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request"):
                s[key + "_x_nginx"] = ratio(s[key], anchor.get(key))
    return summary


def sweep_points(summary):
    """[(workers, connections, scenario)] of the sweep, in order."""
    points = []
    for scenario in summary:
        m = SWEEP.match(scenario)
        if m:
            points.append((int(m.group(1)), int(m.group(2)), scenario))
    return sorted(points)


def bar(name, value, op, limit, note=""):
    if value is None:
        verdict = "n/a"
    else:
        verdict = "PASS" if (value >= limit if op == ">=" else value <= limit) else "FAIL"
    return {"bar": name, "value": value, "op": op, "limit": limit, "verdict": verdict, "note": note}


def only(name, op, limit, verdict, note=""):
    return {"bar": name, "value": None, "op": op, "limit": limit, "verdict": verdict, "note": note}


def tls_bars(summary, facts, idle_tls):
    """The TLS bars (issue "Production reach", item 4), ratios to nginx with TLS."""
    def get(scenario, key):
        return summary.get(scenario, {}).get("cookie_tls", {}).get(key)

    out = []
    if not summary.get("tls_read") and not idle_tls:
        return out
    out.append(bar("TLS keep-alive, cookie read path, req/s (x nginx TLS)", get("tls_read", "rps_x_nginx"),
                   ">=", 1.0))
    hs = facts.get("tls_handshakes") or []
    full = sum(h["full"] for h in hs)
    resumed = sum(h["resumed"] for h in hs)
    note = "%d full, %d resumed handshakes at sessiond" % (full, resumed) if hs else ""
    out.append(bar("TLS full handshakes/s, a connection per request (x nginx TLS)",
                   get("tls_handshake", "rps_x_nginx"), ">=", 0.9, note))
    cookie, nginx = idle_tls.get("cookie"), idle_tls.get("nginx")
    if cookie:
        n = cookie["requested"]
        held = "" if cookie["still_open"] == n else "; only %d of %d held" % (cookie["still_open"], n)
        out.append({"bar": "RSS with %d idle TLS connections (MiB)" % n, "value": cookie["rss_kb_held"] / MIB,
                    "op": "", "limit": None, "verdict": "info",
                    "note": "nginx's worker: %s MiB%s" % (
                        "%.1f" % (nginx["rss_kb_held"] / MIB) if nginx else "?", held)})
    return out


def bars(summary, facts, idle):
    """The bars of the core rebuild, in the order of its table."""
    def get(scenario, contender, key):
        return summary.get(scenario, {}).get(contender, {}).get(key)

    meta = facts["meta"]
    cg = facts["callgrind"]
    conns = meta.get("connections", "?")
    out = [
        bar("cookie read path, instructions/request (x nginx)",
            ratio(cg.get("cookie", {}).get("ir_per_request"), cg.get("nginx", {}).get("ir_per_request")),
            "<=", 1.0),
        bar("cookie read path, req/s, 1 worker (x nginx)", get("read", "cookie", "rps_x_nginx"), ">=", 1.0),
        bar("no cookie (nothing stored), req/s (x nginx)", get("nocookie", "cookie", "rps_x_nginx"), ">=", 1.1),
        bar("cookie write path (re-seals), req/s (x nginx)", get("write", "cookie", "rps_x_nginx"), ">=", 0.9),
        bar("redis read path, req/s (x nginx)", get("read", "redis", "rps_x_nginx"), ">=", 0.9),
        bar("p99, cookie read path, %s connections (x nginx)" % conns, get("read", "cookie", "p99_ms_x_nginx"),
            "<=", 1.0, "" if conns == "50" else "the bar is at 50 connections"),
        only("4 workers, 16 cores: cookie read req/s (x nginx)", ">=", 1.0, "scale", "scale mode only"),
        only("4 workers, 16 cores: CPU time/request (x nginx)", "<=", 1.0, "scale", "scale mode only"),
        bar("allocations per request, cookie read path", facts["alloc"].get("cookie", {}).get("per_request"),
            "<=", 0, alloc_note(facts["alloc"].get("cookie"))),
        bar("cookie read path + routes, csrf, rate limit: instructions (x without)",
            ratio(cg.get("policy", {}).get("ir_per_request"), cg.get("cookie", {}).get("ir_per_request")),
            "<=", 1.10, "issue 13's bar"),
    ]
    points = sweep_points(summary)
    for n in (1000, 2000):
        at = [(w, s) for w, c, s in points if c == n]
        for key, op, what in (("rps_x_nginx", ">=", "req/s"), ("p99_ms_x_nginx", "<=", "p99")):
            name = "%s connections, 4 workers: %s (x nginx)" % (format(n, ","), what)
            four = [s for w, s in at if w == 4]
            if four:
                out.append(bar(name, get(four[0], "cookie", key), op, 1.0,
                               "unpinned, %s" % meta.get("machine", "?").split(",")[0]))
            else:
                here = ", ".join("%d worker(s) here: %s" % (w, fmt_x(get(s, "cookie", key)).strip() or "n/a")
                                 for w, s in at)
                out.append(only(name, op, 1.0, "scale", "scale mode only" + ("; " + here if here else "")))
    worst = None
    for w, c, s in points:
        v = get(s, "cookie", "new_upstream_per_request")
        if c in (1000, 2000) and v is not None and (worst is None or v > worst[0]):
            worst = (v, c, w)
    out.append(bar("new upstream connections/request, 1,000 and 2,000 conns", worst and worst[0], "<=", 0.001,
                   "worst: %d connections, %d worker(s)" % (worst[1], worst[2]) if worst else ""))

    after = [(facts["mem"][c]["rss_kb"], c) for c in ("cookie", "redis") if c in facts["mem"]]
    worst_rss = max(after) if after else None
    out.append(bar("sessiond RSS after the benchmark (MiB)", worst_rss[0] / MIB if worst_rss else None,
                   "<=", 16, "worst of cookie/redis: %s" % LABEL[worst_rss[1]] if worst_rss else ""))
    name = "RSS with 10,000 idle keep-alive connections (MiB)"
    if idle and idle["requested"] < 10000:
        out.append(only(name, "<=", 24, "n/a", "this run held only %d (BENCH_IDLE_CONNS)" % idle["requested"]))
    elif idle and idle["still_open"] < idle["requested"]:
        out.append({"bar": name, "value": idle["rss_kb_held"] / MIB, "op": "<=", "limit": 24, "verdict": "FAIL",
                    "note": "%d of %d connections open: not all held" % (idle["still_open"], idle["requested"])})
    else:
        out.append(bar(name, idle["rss_kb_held"] / MIB if idle else None, "<=", 24))
    out.append(bar("Redis CPU per session write (us)", get("write", "redis", "redis_cpu_us_per_request"),
                   "<=", 3, "redis-server utime+stime / requests of the redis write runs"))
    v = get("read", "redis", "redis_cpu_us_per_request")
    out.append({"bar": "Redis CPU per read request (us)", "value": v, "op": "", "limit": None,
                "verdict": "info" if v is not None else "n/a", "note": "no bar"})
    ws = summarise_ws(facts["ws"], meta)
    out.append(bar("WebSocket echo, %s B messages, %s conns, msgs/s (x nginx)"
                   % (meta.get("ws_size", "1024"), meta.get("ws_connections", "50")),
                   ws.get("cookie", {}).get("rate_x_nginx"), ">=", 0.9,
                   "" if ws else "the ws step did not run"))
    v = ws.get("cookie_tls", {}).get("rate_x_nginx")
    out.append({"bar": "WebSocket echo over TLS (wss), msgs/s (x nginx with TLS)", "value": v, "op": "",
                "limit": None, "verdict": "info" if v is not None else "n/a",
                "note": "no bar" if v is not None else "the ws step did not run over TLS"})
    out.append(bar("redis write path, req/s, 1 worker (x nginx)", get("write", "redis", "rps_x_nginx"), ">=", 0.6))
    out.append(bar("redis read path, 3-master cluster (x one Redis)",
                   ratio(get("read", "redis_cluster", "rps"), get("read", "redis", "rps")), ">=", 0.95,
                   "req/s of sessiond redis on the cluster over on one Redis"))
    v = get("write", "redis_cluster", "redis_cpu_us_per_request")
    out.append({"bar": "Redis CPU per session write, cluster (us)", "value": v, "op": "", "limit": None,
                "verdict": "info" if v is not None else "n/a", "note": "the three nodes together"})
    out.append(only("redis write path, 3-master cluster (x one Redis), 4 workers", ">=", 2.5, "scale",
                    "scale mode only: Redis the bottleneck"))
    return out


WS_CONTENDERS = [("direct", "echo server direct"), ("nginx", "nginx proxying WebSockets"),
                 ("cookie", "sessiond (cookie manager)"), ("nginx_tls", "nginx with TLS (wss)"),
                 ("cookie_tls", "sessiond with TLS (wss)")]


def summarise_ws(ws, meta):
    """Medians of the ws runs: messages/s, and the server's CPU time per message
    (its ticks over warm-up and measured run, scaled to the measured part).
    Ratios are to nginx, or for the TLS contenders (..._tls) to nginx with TLS."""
    clk = int(meta.get("clk_tck", "100"))
    seconds = float(meta.get("ws_seconds", meta.get("seconds", "10")))
    out = {}
    for contender, runs in ws.items():
        cpu = [r["proxy_ticks"] / clk * 1e6 * seconds / (seconds + 1.0) / r["messages"]
               for r in runs if r["messages"] > 0]
        out[contender] = {"rate": statistics.median(r["rate"] for r in runs),
                          "cpu_us_per_message": statistics.median(cpu) if cpu else None,
                          "errors": sum(r["errors"] for r in runs), "rounds": len(runs)}
    for contender, s in out.items():
        anchor = out.get(TLS_ANCHOR if contender.endswith("_tls") else ANCHOR, {})
        s["rate_x_nginx"] = ratio(s["rate"], anchor.get("rate"))
        s["cpu_x_nginx"] = ratio(s["cpu_us_per_message"], anchor.get("cpu_us_per_message"))
    return out


def alloc_note(a):
    if not a:
        return ""
    return "%d allocations over %d requests on %d connections (opened inside the counted run)" % (
        a["allocations"], a["requests"] or 0, a["connections"])


# --- formatting --------------------------------------------------------------

def fmt(value, spec, width):
    return ("n/a" if value is None else format(value, spec)).rjust(width)


def fmt_x(value, width=7):
    return ("" if value is None else "%.2fx" % value).rjust(width)


def fmt_value(v):
    if v is None:
        return "n/a"
    if v == 0:
        return "0"
    if abs(v) < 0.1:
        return "%.4f" % v
    return "%.2f" % v


def table(meta, summary, facts, idle, bar_list, logs, w2_ratio, idle_tls=None):
    out = []
    add = out.append
    add("sessiond benchmark (%s): every ratio (x) is to nginx proxy_pass" % meta.get("mode", "?"))
    add("%s; %s; %s" % (meta.get("sessiond", "?"), meta.get("nginx", "?"), meta.get("machine", "?")))
    head = "%-30s %9s %5s %6s %7s %7s %6s %7s %6s %7s %7s"
    row = "  %-28s %9s %5s %6s %7s %7s %6s %7s %6s %7d %7d"
    if any(s in summary for s, _ in SCENARIOS):
        add("")
        add("wrk -t%s -c%s -d%ss --latency, %s round(s), contenders interleaved; medians over rounds"
            % (meta.get("wrk_threads", "1"), meta.get("connections", "?"), meta.get("seconds", "?"),
               meta.get("rounds", "?")))
        add("(+- is half the req/s range over the rounds, relative to the median; CPU is the utime+stime of")
        add(" the server under test per request: nginx master and worker, sessiond's process, the backend's)")
        add(head % ("scenario / contender", "req/s", "+-", "x", "p50 ms", "p99 ms", "x", "CPU us", "x",
                    "non-2xx", "sockerr"))
    for scenario, title in SCENARIOS:
        per = summary.get(scenario)
        if not per:
            continue
        add(title)
        for contender, label in CONTENDERS:
            s = per.get(contender)
            if not s:
                continue
            add(row % (
                label, fmt(s["rps"], ".0f", 9),
                "" if s["rps_spread"] is None else "%.0f%%" % (100 * s["rps_spread"]),
                fmt_x(s["rps_x_nginx"], 6), fmt(s["p50_ms"], ".2f", 7), fmt(s["p99_ms"], ".2f", 7),
                fmt_x(s["p99_ms_x_nginx"], 6), fmt(s["cpu_us_per_request"], ".1f", 7),
                fmt_x(s["cpu_us_per_request_x_nginx"], 6), s["non2xx"], s["socket_errors"]))
    if w2_ratio is not None:
        add("  workers:2 / workers:1, sessiond cookie read req/s: %.2fx" % w2_ratio)
    for contender, what in (("redis", "sessiond redis"), ("redis_cluster", "sessiond redis cluster (3 nodes)")):
        redis = [(s, summary.get(s, {}).get(contender, {}).get("redis_cpu_us_per_request")) for s in ("read", "write")]
        if any(v is not None for _, v in redis):
            add("  redis-server CPU per request of %s: %s"
                % (what, ", ".join("%s %s us" % (s, fmt(v, ".1f", 0)) for s, v in redis)))

    points = sweep_points(summary)
    if points:
        add("")
        add("client connections sweep: keep-alive, cookie read path, wrk -t%s -d%ss, %s round(s);"
            % (meta.get("wrk_threads", "1"), meta.get("sweep_seconds", "?"), max(
                summary[s].get("cookie", {}).get("rounds", 0) for _, _, s in points)))
        add("upstream: connections the backend accepted during the run (stub_status), per request;"
            " nginx keepalive %s" % meta.get("nginx_keepalive", "?"))
        add("%-7s %-5s %-20s %9s %6s %7s %6s %7s %6s %10s %7s %7s" % (
            "workers", "conns", "contender", "req/s", "x", "p99 ms", "x", "CPU us", "x", "upstream/r",
            "non-2xx", "sockerr"))
        for w, c, scenario in points:
            for contender in ("nginx", "cookie"):
                s = summary[scenario].get(contender)
                if not s:
                    continue
                add("%7d %5d %-20s %9s %6s %7s %6s %7s %6s %10s %7d %7d" % (
                    w, c, LABEL[contender], fmt(s["rps"], ".0f", 9), fmt_x(s["rps_x_nginx"], 6),
                    fmt(s["p99_ms"], ".2f", 7), fmt_x(s["p99_ms_x_nginx"], 6),
                    fmt(s["cpu_us_per_request"], ".1f", 7), fmt_x(s["cpu_us_per_request_x_nginx"], 6),
                    fmt(s["new_upstream_per_request"], ".4f", 10), s["non2xx"], s["socket_errors"]))

    mem = facts["mem"]
    if mem:
        add("")
        add("%-34s %14s %7s %14s" % ("memory after its step", "peak RSS MiB", "x", "RSS now MiB"))
        anchor = mem.get(ANCHOR, {}).get("hwm_kb")
        labels = dict(CONTENDERS, redis_server="redis-server (for sessiond redis)",
                      sweep_cookie="sessiond cookie after the sweep")
        for key in [c for c, _ in CONTENDERS] + ["redis_server", "sweep_cookie"]:
            if key in mem:
                m = mem[key]
                add("  %-32s %14.1f %7s %14.1f" % (labels[key], m["hwm_kb"] / MIB,
                                                  fmt_x(ratio(m["hwm_kb"], anchor)), m["rss_kb"] / MIB))
        add("  (nginx and the backend: the worker process; sessiond: its one process)")

    cg, allocs = facts["callgrind"], facts["alloc"]
    if cg or allocs:
        add("")
        add("%-30s %12s %7s %15s %15s %11s %7s" % ("per request, cookie read path", "instructions", "x",
                                                 "with requests", "without", "allocations", "x"))
        cg_anchor = cg.get(ANCHOR, {}).get("ir_per_request")
        alloc_anchor = allocs.get(ANCHOR, {}).get("per_request")
        for key in ("nginx", "cookie", "policy"):
            if key not in cg and key not in allocs:
                continue
            c, a = cg.get(key, {}), allocs.get(key, {})
            add("  %-28s %12s %7s %15s %15s %11s %7s" % (
                LABEL[key], fmt(c.get("ir_per_request"), ".0f", 12),
                fmt_x(ratio(c.get("ir_per_request"), cg_anchor)),
                fmt(c.get("ir_with_requests"), "d", 15), fmt(c.get("ir_without_requests"), "d", 15),
                fmt(a.get("per_request"), ".3f", 11), fmt_x(ratio(a.get("per_request"), alloc_anchor))))
        if cg:
            add("  instructions: callgrind, %s requests on one keep-alive connection, startup and shutdown"
                " subtracted" % next(iter(cg.values()))["requests"])
        if "policy" in cg:
            add("  + policy: 10 routes, csrf, one rate limit (scripts/bench/policy.yaml.in): %s the instructions"
                " of sessiond cookie" % fmt_x(ratio(cg["policy"].get("ir_per_request"),
                                                   cg.get("cookie", {}).get("ir_per_request"))).strip())
        for key in ("nginx", "cookie"):
            if key in allocs:
                a = allocs[key]
                add("  allocations, %s: %s; %d requests of wrk -c%d (malloc_count.so%s)" % (
                    LABEL[key], ", ".join("%s %d" % (k, a["calls"][k]) for k in ALLOC_KINDS if a["calls"][k])
                    or "none", a["requests"] or 0, a["connections"], ", the worker" if key == "nginx" else ""))

    if idle:
        add("")
        add("connection scale: %d idle keep-alive connections to sessiond cookie (one request each)"
            % idle["requested"])
        add("  opened %d in %.1fs, still open a second later: %d; sessiond fds %d; responses %s;"
            " errors: connect %d, request %d"
            % (idle["opened"], idle["open_seconds"], idle["still_open"], idle["server_fds_held"],
               ", ".join("%s x%d" % (k[7:], v) for k, v in sorted(idle.items()) if k.startswith("status_")),
               idle["connect_errors"], idle["request_errors"]))
        add("  sessiond RSS: %.1f MiB before, %.1f MiB holding them (peak %.1f MiB)"
            % (idle["rss_kb_before"] / MIB, idle["rss_kb_held"] / MIB, idle["hwm_kb_held"] / MIB))

    for key, label in (("cookie", "sessiond"), ("nginx", "nginx (its worker)")):
        t = (idle_tls or {}).get(key)
        if not t:
            continue
        add("")
        add("connection scale over TLS: %d idle TLS keep-alive connections to %s (one request each)"
            % (t["requested"], label))
        add("  opened %d in %.1fs, still open a second later: %d; fds %d; responses %s; errors: connect %d,"
            " request %d" % (t["opened"], t["open_seconds"], t["still_open"], t["server_fds_held"],
                             ", ".join("%s x%d" % (k[7:], v) for k, v in sorted(t.items()) if k.startswith("status_")),
                             t["connect_errors"], t["request_errors"]))
        add("  RSS: %.1f MiB before, %.1f MiB holding them (peak %.1f MiB)"
            % (t["rss_kb_before"] / MIB, t["rss_kb_held"] / MIB, t["hwm_kb_held"] / MIB))
    hs = facts.get("tls_handshakes") or []
    if hs:
        add("  TLS handshakes at sessiond during its tls_handshake runs: %d full, %d resumed"
            % (sum(h["full"] for h in hs), sum(h["resumed"] for h in hs)))
    ws = summarise_ws(facts["ws"], meta)
    if ws:
        add("")
        add("WebSocket echo: %s connections, each echoing one %s-byte binary message at a time, %ss per run,"
            % (meta.get("ws_connections", "?"), meta.get("ws_size", "?"), meta.get("ws_seconds", "?")))
        add("%s round(s), contenders interleaved; medians (CPU: the server under test per message;"
            % meta.get("rounds", "?"))
        add("the TLS rows' x is to nginx with TLS)")
        add("  %-28s %10s %6s %8s %6s %7s" % ("contender", "msgs/s", "x", "CPU us", "x", "errors"))
        for key, label in WS_CONTENDERS:
            w = ws.get(key)
            if not w:
                continue
            add("  %-28s %10.0f %6s %8s %6s %7d" % (label, w["rate"], fmt_x(w["rate_x_nginx"], 6),
                                                    fmt(w["cpu_us_per_message"], ".1f", 8),
                                                    fmt_x(w["cpu_x_nginx"], 6), w["errors"]))

    add("")
    add("bars (the core rebuild's, then TLS's; ratios to nginx proxy_pass, or nginx with TLS, in this run)")
    for b in bar_list:
        limit = "" if b["limit"] is None else "(%s %g)" % (b["op"], b["limit"])
        add("  [%-5s] %-56s %8s  %-8s%s" % (b["verdict"], b["bar"], fmt_value(b["value"]), limit,
                                            "  " + b["note"] if b["note"] else ""))

    bad = [(scenario, contender, s) for scenario, per in summary.items()
           for contender, s in per.items() if s["non2xx"] or s["socket_errors"]]
    if bad or facts["problems"] or logs:
        add("")
        add("problems")
        for scenario, contender, s in bad:
            add("  %s / %s: %d non-2xx responses, %d socket errors over %d requests"
                % (scenario, LABEL.get(contender, contender), s["non2xx"], s["socket_errors"], s["requests"]))
        for p in facts["problems"]:
            add("  " + p)
        for name, lines in logs.items():
            add("  %s stderr: %d line(s), first: %s" % (name, len(lines), lines[0][:160]))
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    run_dir, out_json, out_txt = argv[1:]
    facts = load_facts(run_dir)
    logs = load_logs(run_dir)
    idle = None
    idle_path = os.path.join(run_dir, "idle.json")
    if os.path.exists(idle_path) and os.path.getsize(idle_path):
        with open(idle_path) as f:
            idle = json.load(f)
    idle_tls = {}
    for key in ("cookie", "nginx"):
        path = os.path.join(run_dir, "idle_tls_%s.json" % key)
        if os.path.exists(path) and os.path.getsize(path):
            with open(path) as f:
                idle_tls[key] = json.load(f)
    summary = summarise(facts["runs"], int(facts["meta"].get("clk_tck", "100")))
    read = summary.get("read", {})
    w2_ratio = ratio(read.get("cookie_w2", {}).get("rps"), read.get("cookie", {}).get("rps"))
    bar_list = bars(summary, facts, idle) + tls_bars(summary, facts, idle_tls)
    text = table(facts["meta"], summary, facts, idle, bar_list, logs, w2_ratio, idle_tls)

    raw = {
        "meta": facts["meta"],
        "runs": {"%s/%s" % k: v for k, v in sorted(facts["runs"].items())},
        "medians": summary,
        "workers2_over_workers1_cookie_read_rps": w2_ratio,
        "memory_kb": facts["mem"],
        "callgrind": facts["callgrind"],
        "allocations": facts["alloc"],
        "websocket": {"runs": facts["ws"], "medians": summarise_ws(facts["ws"], facts["meta"])},
        "idle_connections": idle,
        "idle_tls_connections": idle_tls,
        "tls_handshakes": facts["tls_handshakes"],
        "bars": bar_list,
        "problems": facts["problems"],
        "stderr": logs,
    }
    for path in (out_json, out_txt):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(out_json, "w") as f:
        json.dump(raw, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(out_txt, "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv)
