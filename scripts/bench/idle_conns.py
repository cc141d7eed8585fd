#!/usr/bin/env python3
"""The connection-scale step of scripts/bench.sh.

  idle_conns.py [--tls] PORT N SERVER_PID [COOKIE]

Opens N keep-alive connections to 127.0.0.1:PORT, sends one GET / on each
(with COOKIE when given: the read path) and reads its response, then keeps them
all open and idle. With every connection held it samples SERVER_PID's memory
(VmRSS, VmHWM) and open file descriptors, checks how many connections the server
has kept open, and prints one JSON object on stdout before closing them.

With --tls the connections speak TLS (the certificate is not verified: the
benchmark's own). Connects and requests are bounded to a few hundred at a time, so the
server's listen backlog is never the thing being measured. The caller raises
`ulimit -n` for this process and for the server (it needs N + a few each).
"""

import asyncio
import json
import os
import ssl
import sys
import time

IN_FLIGHT = 200     # connections being opened / answered at once
SETTLE_SECONDS = 1.0  # let the server finish any work before sampling it


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])  # kB
    out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    return out


async def open_one(port, request, gate, stats, tls):
    async with gate:
        try:
            if tls:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls,
                                                               server_hostname="localhost")
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            stats["connect_errors"] += 1
            return None
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            stats["request_errors"] += 1
            writer.close()
            return None
        stats["status_%d" % status] = stats.get("status_%d" % status, 0) + 1
        return reader, writer


async def run(port, n, pid, cookie, tls):
    lines = ["GET / HTTP/1.1", "Host: 127.0.0.1", "User-Agent: sessiond-bench-idle"]
    if cookie:
        lines.append("Cookie: " + cookie)
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    stats = {"connect_errors": 0, "request_errors": 0}
    before = proc_status(pid)
    gate = asyncio.Semaphore(IN_FLIGHT)
    started = time.monotonic()
    conns = await asyncio.gather(*(open_one(port, request, gate, stats, tls) for _ in range(n)))
    conns = [c for c in conns if c is not None]
    open_seconds = time.monotonic() - started
    await asyncio.sleep(SETTLE_SECONDS)
    held = proc_status(pid)
    # A connection the server closed meanwhile has seen EOF by now.
    still_open = sum(1 for reader, _ in conns if not reader.at_eof())
    for _, writer in conns:
        writer.close()
    return {
        "tls": bool(tls),
        "requested": n,
        "opened": len(conns),
        "still_open": still_open,
        "open_seconds": round(open_seconds, 2),
        "rss_kb_before": before["VmRSS"],
        "rss_kb_held": held["VmRSS"],
        "hwm_kb_held": held["VmHWM"],
        "server_fds_held": held["fds"],
        **stats,
    }


def main(argv):
    tls = None
    if len(argv) > 1 and argv[1] == "--tls":
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
        argv = argv[:1] + argv[2:]
    if len(argv) not in (4, 5):
        sys.exit(__doc__)
    port, n, pid = int(argv[1]), int(argv[2]), int(argv[3])
    cookie = argv[4] if len(argv) == 5 else None
    try:
        result = asyncio.run(run(port, n, pid, cookie, tls))
    except OSError as e:
        sys.exit("idle_conns.py: %s" % e)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv)
