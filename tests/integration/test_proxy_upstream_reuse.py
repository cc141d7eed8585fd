"""Upstream keep-alive under load (docs/PERFORMANCE.md): however many requests
are in flight, finished upstream connections go back to the pool and are
reused, instead of being closed beyond a fixed idle cap and reopened for the
next requests (a connect per request and a TIME-WAIT storm).

Measured with sessiond_upstream_connections_opened_total on the admin port.
"""

import asyncio

from fault_util import raise_nofile
from harness import SLOW, check, check_eq
from test_ops_support import admin_overrides, scrape

CLIENTS = 600
ROUNDS = 5
# Every request waits this long at the backend, so that all CLIENTS requests
# of a round are in flight at once and their upstream connections are all
# released together when the round ends.
DELAY_MS = 150


async def _request(reader, writer, target):
    writer.write(("GET %s HTTP/1.1\r\nHost: reuse\r\n\r\n" % target).encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length)
    return status, body


async def _drive(port):
    gate = asyncio.Semaphore(200)  # connects at once: never the listen queue being measured

    async def connect():
        async with gate:
            return await asyncio.open_connection("127.0.0.1", port)

    conns = await asyncio.gather(*(connect() for _ in range(CLIENTS)))
    results = []
    for r in range(ROUNDS):
        # Every client sends at the same moment; the round ends when all are answered.
        results += await asyncio.wait_for(asyncio.gather(
            *(_request(rd, wr, "/slow-headers/%d?r=%d&c=%d" % (DELAY_MS, r, i)) for i, (rd, wr) in enumerate(conns)),
            return_exceptions=True), timeout=60 * SLOW)
    for _, wr in conns:
        wr.close()
    return results


def test_upstream_connections_are_reused_with_600_requests_in_flight(t):
    raise_nofile(4 * CLIENTS + 1024)
    overrides, aport = admin_overrides({"workers": 1})
    proxy = t.sessiond(upstream=t.backend_process(), overrides=overrides)
    before = scrape(aport).value("sessiond_upstream_connections_opened_total")
    results = asyncio.run(_drive(proxy.port))
    failures = [r for r in results if isinstance(r, BaseException) or r[0] != 200]
    check(not failures, "%d of %d requests failed, e.g. %r" % (len(failures), len(results), failures[:3]))
    check_eq(len(results), CLIENTS * ROUNDS, "requests answered")
    opened = scrape(aport).value("sessiond_upstream_connections_opened_total") - before
    print("%d requests, %d in flight at once: %d upstream connections opened (%.3f per request)"
          % (len(results), CLIENTS, opened, opened / len(results)))
    check(opened >= 1, "no upstream connection was counted at all (the metric is not wired)")
    # One connection per request in flight (the first round), and then reuse:
    # a little slack for a connection the backend closed early.
    check(opened <= CLIENTS * 1.1, "%d upstream connections opened for %d requests with %d in flight: connections "
          "were closed after their response and reopened" % (opened, len(results), CLIENTS))


test_upstream_connections_are_reused_with_600_requests_in_flight.exclusive = True
test_upstream_connections_are_reused_with_600_requests_in_flight.timeout = 180
