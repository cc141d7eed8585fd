#!/usr/bin/env python3
"""Turns the raw output of one scripts/bench.sh run into the results.

  report.py RUN_DIR OUT_JSON OUT_TXT

RUN_DIR holds what bench.sh collected:
  wrk/SCENARIO__CONTENDER__rROUND.txt   wrk --latency output of one run
  facts.txt                             one fact per line, whitespace-separated:
      meta KEY VALUE...                 run parameters (seconds, rounds, ...)
      mem CONTENDER HWM_KB RSS_KB       server memory after the wrk part
      callgrind NAME REQUESTS IR_WITH IR_WITHOUT
                                        instructions with N requests and with none
      problem TEXT...                   something that went wrong during the run
  idle.json                             idle_conns.py's output (optional)
  logs/*.stderr                         the servers' stderr (optional)

Writes the raw numbers and medians as JSON and the table as text, and prints
the table. Every ratio is to nginx proxy_pass. The bars are reported as
PASS/FAIL/n/a; this never fails because a bar was missed (exit 0), only when
its input is unreadable.
"""

import glob
import json
import os
import re
import statistics
import sys

SCENARIOS = [
    ("read", "read (valid session cookie)"),
    ("write", "write (every response sets a key)"),
    ("nocookie", "no cookie"),
]
CONTENDERS = [
    ("direct", "backend direct"),
    ("nginx", "nginx proxy_pass"),
    ("cookie", "sessiond cookie"),
    ("redis", "sessiond redis"),
    ("cookie_w2", "sessiond cookie workers:2"),
]
LABEL = dict(CONTENDERS)
ANCHOR = "nginx"
MIB = 1024  # kB per MiB


# --- parsing -----------------------------------------------------------------

def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError("unknown wrk duration %r" % text)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    return float(m.group(1)) * scale


def parse_wrk(text):
    run = {"rps": None, "p50_ms": None, "p99_ms": None, "requests": None,
           "non2xx": 0, "socket_errors": 0}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if m:
        run["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        if m:
            run[key] = to_ms(m.group(1))
    m = re.search(r"^\s+(\d+) requests in", text, re.M)
    if m:
        run["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        run["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        run["socket_errors"] = sum(int(g) for g in m.groups())
        run["socket_errors_detail"] = dict(zip(("connect", "read", "write", "timeout"),
                                               (int(g) for g in m.groups())))
    return run


def load_runs(run_dir):
    runs = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "wrk", "*.txt"))):
        m = re.fullmatch(r"(\w+?)__(\w+?)__r(\d+)\.txt", os.path.basename(path))
        if not m:
            continue
        with open(path, errors="replace") as f:
            run = parse_wrk(f.read())
        run["round"] = int(m.group(3))
        runs.setdefault((m.group(1), m.group(2)), []).append(run)
    return runs


def load_facts(run_dir):
    facts = {"meta": {}, "mem": {}, "callgrind": {}, "problems": []}
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
            elif kind == "mem" and len(parts) == 4:
                facts["mem"][parts[1]] = {"hwm_kb": int(parts[2]), "rss_kb": int(parts[3])}
            elif kind == "callgrind" and len(parts) == 5:
                n, with_, without = int(parts[2]), int(parts[3]), int(parts[4])
                facts["callgrind"][parts[1]] = {
                    "requests": n, "ir_with_requests": with_, "ir_without_requests": without,
                    "ir_per_request": (with_ - without) / n if n else None}
            elif kind == "problem":
                facts["problems"].append(" ".join(parts[1:]))
    return facts


def load_logs(run_dir):
    logs = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "logs", "*.stderr"))):
        with open(path, errors="replace") as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
        if lines:
            logs[os.path.basename(path)[:-len(".stderr")]] = lines
    return logs


# --- summarising -------------------------------------------------------------

def median_of(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def spread(runs, key):
    """Half the range over rounds, relative to the median: how noisy the median is."""
    values = [r[key] for r in runs if r.get(key) is not None]
    if len(values) < 2:
        return None
    return (max(values) - min(values)) / 2 / statistics.median(values)


def ratio(a, b):
    return a / b if a is not None and b else None


def summarise(runs):
    summary = {}
    for (scenario, contender), rs in runs.items():
        summary.setdefault(scenario, {})[contender] = {
            "rounds": len(rs),
            "rps": median_of(rs, "rps"),
            "rps_spread": spread(rs, "rps"),
            "p50_ms": median_of(rs, "p50_ms"),
            "p99_ms": median_of(rs, "p99_ms"),
            "non2xx": sum(r["non2xx"] for r in rs),
            "socket_errors": sum(r["socket_errors"] for r in rs),
            "requests": sum(r["requests"] or 0 for r in rs),
        }
    for per in summary.values():
        anchor = per.get(ANCHOR, {})
        for s in per.values():
            for key in ("rps", "p50_ms", "p99_ms"):
                s[key + "_x_nginx"] = ratio(s[key], anchor.get(key))
    return summary


def bar(name, value, op, limit, note=""):
    if value is None:
        verdict = "n/a"
    else:
        verdict = "PASS" if (value >= limit if op == ">=" else value <= limit) else "FAIL"
    return {"bar": name, "value": value, "op": op, "limit": limit, "verdict": verdict, "note": note}


def bars(summary, facts, idle):
    def get(scenario, contender, key):
        return summary.get(scenario, {}).get(contender, {}).get(key)

    out = [
        bar("cookie read req/s (x nginx)", get("read", "cookie", "rps_x_nginx"), ">=", 1.0),
        bar("cookie instructions/request (x nginx)",
            ratio(facts["callgrind"].get("cookie", {}).get("ir_per_request"),
                  facts["callgrind"].get("nginx", {}).get("ir_per_request")), "<=", 1.0),
        bar("redis read req/s (x nginx)", get("read", "redis", "rps_x_nginx"), ">=", 0.8),
        bar("redis write req/s (x nginx)", get("write", "redis", "rps_x_nginx"), ">=", 0.6),
        bar("cookie p99 read (x nginx p99)", get("read", "cookie", "p99_ms_x_nginx"), "<=", 1.25),
        bar("redis p99 read (x nginx p99)", get("read", "redis", "p99_ms_x_nginx"), "<=", 1.25),
    ]
    after = [(facts["mem"][c]["rss_kb"], c) for c in ("cookie", "redis") if c in facts["mem"]]
    worst = max(after) if after else None
    out.append(bar("sessiond RSS after the benchmark (MiB)", worst[0] / MIB if worst else None,
                   "<=", 16, "worst of cookie/redis: %s" % LABEL[worst[1]] if worst else ""))
    held, note = None, ""
    if idle and idle["requested"] < 10000:
        out.append({"bar": "10k idle connections RSS (MiB)", "value": None, "op": "<=", "limit": 64,
                    "verdict": "n/a", "note": "this run held only %d (BENCH_IDLE_CONNS)" % idle["requested"]})
        return out
    if idle:
        held = idle["rss_kb_held"] / MIB
        note = "%d of %d connections open" % (idle["still_open"], idle["requested"])
        if idle["still_open"] < idle["requested"]:
            out.append({"bar": "10k idle connections RSS (MiB)", "value": held, "op": "<=",
                        "limit": 64, "verdict": "FAIL", "note": note + ": not all held"})
            return out
    out.append(bar("10k idle connections RSS (MiB)", held, "<=", 64, note))
    return out


# --- formatting --------------------------------------------------------------

def fmt(value, spec, width):
    return ("n/a" if value is None else format(value, spec)).rjust(width)


def fmt_x(value, width=7):
    return ("" if value is None else "%.2fx" % value).rjust(width)


def table(meta, summary, facts, idle, bar_list, logs, w2_ratio):
    out = []
    add = out.append
    add("sessiond benchmark (%s): every ratio (x) is to nginx proxy_pass" % meta.get("mode", "?"))
    add("%s; %s; %s" % (meta.get("sessiond", "?"), meta.get("nginx", "?"), meta.get("machine", "?")))
    if summary:
        add("")
        add("wrk -t1 -c%s -d%ss --latency, %s round(s), contenders interleaved; medians over rounds"
            % (meta.get("connections", "?"), meta.get("seconds", "?"), meta.get("rounds", "?")))
        add("(+- is half the req/s range over the rounds, relative to the median)")
        add("%-30s %9s %6s %7s %8s %7s %8s %7s %8s %7s" % (
            "scenario / contender", "req/s", "+-", "x", "p50 ms", "x", "p99 ms", "x", "non-2xx", "sockerr"))
    for scenario, title in SCENARIOS:
        per = summary.get(scenario)
        if not per:
            continue
        add(title)
        for contender, label in CONTENDERS:
            s = per.get(contender)
            if not s:
                continue
            add("  %-28s %9s %6s %7s %8s %7s %8s %7s %8d %7d" % (
                label, fmt(s["rps"], ".0f", 9),
                "" if s["rps_spread"] is None else "%.0f%%" % (100 * s["rps_spread"]),
                fmt_x(s["rps_x_nginx"]),
                fmt(s["p50_ms"], ".2f", 8), fmt_x(s["p50_ms_x_nginx"]),
                fmt(s["p99_ms"], ".2f", 8), fmt_x(s["p99_ms_x_nginx"]),
                s["non2xx"], s["socket_errors"]))
    if w2_ratio is not None:
        add("  workers:2 / workers:1, sessiond cookie read req/s: %.2fx" % w2_ratio)

    mem = facts["mem"]
    if mem:
        add("")
        add("%-34s %14s %7s %14s" % ("memory after the wrk part", "peak RSS MiB", "x", "RSS now MiB"))
        anchor = mem.get(ANCHOR, {}).get("hwm_kb")
        labels = dict(CONTENDERS, redis_server="redis-server (for sessiond redis)")
        for key in [c for c, _ in CONTENDERS] + ["redis_server"]:
            if key in mem:
                m = mem[key]
                add("  %-32s %14.1f %7s %14.1f" % (labels[key], m["hwm_kb"] / MIB,
                                                  fmt_x(ratio(m["hwm_kb"], anchor)), m["rss_kb"] / MIB))
        add("  (nginx and the backend: the worker process; sessiond: its one process)")

    cg = facts["callgrind"]
    if cg:
        add("")
        add("%-34s %14s %16s %16s %7s" % ("instructions (callgrind), read path", "per request",
                                           "with requests", "without", "x"))
        anchor = cg.get(ANCHOR, {}).get("ir_per_request")
        for key in ("nginx", "cookie"):
            if key in cg:
                c = cg[key]
                add("  %-32s %14.0f %16d %16d %7s" % (
                    "%s (%d req)" % (LABEL[key], c["requests"]), c["ir_per_request"],
                    c["ir_with_requests"], c["ir_without_requests"],
                    fmt_x(ratio(c["ir_per_request"], anchor))))

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

    add("")
    add("bars")
    for b in bar_list:
        value = "n/a" if b["value"] is None else "%.2f" % b["value"]
        add("  [%-4s] %-42s %8s  (%s %g)%s" % (b["verdict"], b["bar"], value, b["op"], b["limit"],
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
    runs = load_runs(run_dir)
    facts = load_facts(run_dir)
    logs = load_logs(run_dir)
    idle = None
    idle_path = os.path.join(run_dir, "idle.json")
    if os.path.exists(idle_path) and os.path.getsize(idle_path):
        with open(idle_path) as f:
            idle = json.load(f)
    summary = summarise(runs)
    read = summary.get("read", {})
    w2_ratio = ratio(read.get("cookie_w2", {}).get("rps"), read.get("cookie", {}).get("rps"))
    bar_list = bars(summary, facts, idle)
    text = table(facts["meta"], summary, facts, idle, bar_list, logs, w2_ratio)

    raw = {
        "meta": facts["meta"],
        "runs": {"%s/%s" % k: v for k, v in sorted(runs.items())},
        "medians": summary,
        "workers2_over_workers1_cookie_read_rps": w2_ratio,
        "memory_kb": facts["mem"],
        "callgrind": facts["callgrind"],
        "idle_connections": idle,
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
