"""Misbehaving clients (docs/HTTP.md, Keep-alive and pipelining: streaming with bounded buffers;
docs/HTTP.md, Timeouts: timeouts.client_header against slowloris): clients that vanish half-way
through a request body or a response, half-closed connections, ten thousand
connections opened and abandoned, slow readers, and slowloris on 500
connections at once.

Each test measures sessiond's fd count and RSS after a warm-up, injects the
misbehaviour (mostly while a SessionLoad or a Prober keeps normal traffic
going, which must keep being served), and then polls, with a bound, until
the fd count is back at the baseline and the RSS near it.

Also: a burst of 1,000 simultaneous connects must fit the listen queue, and
running out of fds (RLIMIT_NOFILE) must not turn accept() into a busy loop.
"""

import errno
import os
import resource
import socket
import struct
import time

from client import ProtocolError, RawConnection, build_request
from fault_util import (Prober, SessionLoad, process_nofile, raise_nofile, settle_fd_baseline, wait_fds_at_most,
                        wait_rss_at_most)
from harness import SANITIZED, SLOW, check, check_eq, wait_until
from recording import pattern_sha256
from session_util import Browser, instructions_target, set_header, start_proxy

IDLE = 2.0
# "Near the baseline" for RSS once everything is closed. What connections
# cost is freed, but glibc keeps pages of its worker-thread arenas that still
# hold a few live chunks: after 20 slow readers or 60 aborted 32 MiB
# downloads about 8 MiB stays resident (measured; it is reused, not leaked).
# A leak is LeakSanitizer's to find at exit under make test SANITIZE=1; this
# bound catches memory that is still held.
RSS_SLACK_KB = 12 * 1024


def _proxy(t, workers=2, extra_timeouts=None):
    if SANITIZED:
        # ASan holds freed memory in its quarantine (256 MiB by default), which
        # would count every freed buffer as resident; cap it.
        os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16").lstrip(":")
    timeouts = {"idle": "%ds" % IDLE}
    timeouts.update(extra_timeouts or {})
    return start_proxy(t, "memory", upstream=t.backend_process(), extra={"workers": workers, "timeouts": timeouts})


def _baselines(proxy, warm_seconds=1.0):
    """(fds, rss_kb) after a short session load has warmed the allocator and
    the pooled upstream connections have gone idle and closed."""
    load = SessionLoad(proxy, clients=8).run_for(warm_seconds)
    check(load.count(lambda s: s.status == 200) >= 20, "warm-up load: %s" % load.summary())
    time.sleep(IDLE + 0.3)
    return settle_fd_baseline(proxy), proxy.vm_kb("VmRSS")


def _close(sock, reset):
    """Closes like a vanished client: reset=True sends RST (SO_LINGER 0), else FIN."""
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


def _check_recovered(proxy, fd_base, rss_base, what):
    wait_fds_at_most(proxy, fd_base + 2, IDLE + 8 * SLOW, "fds after " + what)
    print("%s: fds %d (baseline %d), RSS %d KiB (baseline %d)"
          % (what, proxy.fd_count(), fd_base, proxy.vm_kb("VmRSS"), rss_base))
    # Under sanitizers the allocator is the sanitizer's (shadow memory, its
    # own caching): RSS says nothing about sessiond there, and leaks are
    # LeakSanitizer's job at exit.
    if not SANITIZED:
        wait_rss_at_most(proxy, rss_base + RSS_SLACK_KB, 10 * SLOW, "RSS after " + what)
    check_eq(proxy.request("GET", "/echo?after", timeout=5).status, 200, "a request after " + what)


def _check_load_clean(load, what):
    errors = [s for s in load.completed() if s.error or s.status != 200]
    check(not errors, "normal traffic during %s: %d of %d requests failed, e.g. %s"
          % (what, len(errors), len(load.completed()), errors[:5]))
    check(len(load.completed()) >= 20, "normal traffic during %s: only %d requests" % (what, len(load.completed())))
    check(not load.lost, "reads missed acknowledged keys during %s: %s" % (what, load.lost[:3]))


# ---------------------------------------------------------------------------

def test_clients_vanishing_mid_request_body_under_load_leak_nothing(t):
    proxy = _proxy(t)
    fd_base, rss_base = _baselines(proxy)
    load = SessionLoad(proxy, clients=8).start()
    body_len = 1 << 20
    head = build_request("POST", "/echo", [("Content-Type", "application/octet-stream"),
                                          ("Content-Length", str(body_len))])
    chunk = b"x" * (256 << 10)
    for batch in range(4):
        socks = []
        for i in range(50):
            s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            s.sendall(head + chunk)  # a quarter of the body, then gone
            socks.append(s)
        time.sleep(0.2)  # let the partial bodies reach the upstream
        for i, s in enumerate(socks):
            _close(s, reset=(i % 2 == 0))
    load.stop()
    check_eq(proxy.returncode, None, "sessiond exit status after 200 aborted uploads (want: running)")
    _check_load_clean(load, "200 aborted uploads")
    _check_recovered(proxy, fd_base, rss_base, "200 clients vanished mid-body")
    # The bodies were streaming to the backend: sessiond must have ended those
    # upstream requests too (the backend saw each connection close mid-body).
    cut = [r for r in proxy.backend.requests() if r.method == "POST" and not r.complete]
    check(len(cut) >= 150, "the backend saw %d of 200 uploads cut off mid-body, want (nearly) all; "
          "complete POSTs: %d" % (len(cut), len([r for r in proxy.backend.requests()
                                                if r.method == "POST" and r.complete])))


def test_clients_vanishing_mid_response_under_load_leak_nothing(t):
    proxy = _proxy(t)
    fd_base, rss_base = _baselines(proxy)
    load = SessionLoad(proxy, clients=8).start()
    for batch in range(3):
        conns = []
        for i in range(20):
            c = RawConnection(proxy.port, timeout=10)
            c.set_recv_buffer(64 << 10)
            c.send(build_request("GET", "/bytes/%d?b=%d&i=%d" % (32 << 20, batch, i)))
            conns.append(c)
        for c in conns:
            check(c.wait_data(5 * SLOW), "no response bytes for a 32 MiB body")
            c.read_available(0.02)
        for i, c in enumerate(conns):
            _close(c.sock, reset=(i % 2 == 0))
    load.stop()
    check_eq(proxy.returncode, None, "sessiond exit status after 60 aborted downloads (want: running)")
    _check_load_clean(load, "60 aborted downloads")
    _check_recovered(proxy, fd_base, rss_base, "60 clients vanished mid-response")


def test_half_closed_clients_still_get_their_responses(t):
    """shutdown(SHUT_WR) right after the request says "no more requests", not
    "stop": the response must arrive whole, even when the upstream is slow or
    the request writes the session."""
    proxy = _proxy(t, workers=2)
    b = Browser(proxy)
    b.set({"user": "ada"})
    cookie = ("Cookie", "session_id=%s" % b.cookie)
    cases = [
        ("GET /echo", build_request("GET", "/echo?half"), "GET", lambda r: r.json()["target"] == "/echo?half"),
        ("a slow upstream", build_request("GET", "/slow-headers/400"), "GET",
         lambda r: r.json()["target"] == "/slow-headers/400"),
        ("a 4 MiB response", build_request("GET", "/bytes/%d" % (4 << 20)), "GET",
         lambda r: r.body_sha256 == pattern_sha256(4 << 20)),
        ("a POST body", build_request("POST", "/echo", body=b"y" * 100000), "POST",
         lambda r: r.json()["body_length"] == 100000),
        ("a session write", build_request("GET", instructions_target([set_header({"half": 1})]), [cookie]), "GET",
         lambda r: r.status == 200),
    ]
    for what, raw, method, ok in cases:
        conns = []
        for i in range(10):
            c = t.connect(proxy.port, timeout=10)
            c.send(raw)
            c.sock.shutdown(socket.SHUT_WR)
            conns.append(c)
        for i, c in enumerate(conns):
            try:
                resp = c.read_response(method, timeout=10 * SLOW)
            except ProtocolError as e:
                raise AssertionError("%s on half-closed connection %d: %s: %s" % (what, i, type(e).__name__, e))
            check_eq(resp.status, 200, "status of %s on half-closed connection %d" % (what, i))
            check(ok(resp), "response of %s on half-closed connection %d is wrong: %r" % (what, i, resp))
            check(c.wait_closed(3 * SLOW), "sessiond kept a half-closed connection open after its response (%s)"
                  % what)
    # Two pipelined requests, then the half-close: both answered, in order.
    c = t.connect(proxy.port, timeout=10)
    c.send(build_request("GET", "/slow-headers/200?n=1") + build_request("GET", "/echo?n=2"))
    c.sock.shutdown(socket.SHUT_WR)
    first, second = c.read_responses(["GET", "GET"], timeout=10 * SLOW)
    check_eq([first.status, second.status], [200, 200], "statuses of two pipelined requests before a half-close")
    check_eq([first.json()["target"], second.json()["target"]], ["/slow-headers/200?n=1", "/echo?n=2"],
             "the pipelined responses, in order")
    check_eq(b.echo().data, {"user": "ada", "half": 1}, "the session after half-closed writes")


def _open_and_abandon(proxy, fd_base, n):
    """Opens n connections in batches of 500 (a third send nothing, a third a
    partial head, a third a bare request line), waits until sessiond holds
    them all, then closes them (half with RST). Returns (seconds to open,
    sessiond's RSS while it held them)."""
    socks = []
    partial = [b"", b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Pad: abc", b"POST /echo HTTP/1.1\r\n"]
    t0 = time.monotonic()
    try:
        for start in range(0, n, 500):
            batch = []
            for i in range(start, min(n, start + 500)):
                s = socket.socket()
                s.setblocking(False)
                err = s.connect_ex(("127.0.0.1", proxy.port))
                check(err in (0, errno.EINPROGRESS), "connect %d failed: errno %d" % (i, err))
                batch.append(s)
            socks += batch
            time.sleep(0.02)
            for i, s in enumerate(batch):
                data = partial[(start + i) % 3]
                if data:
                    try:
                        s.send(data)
                    except OSError:
                        pass
        opened = time.monotonic() - t0
        # client_header is 60 s: sessiond holds every connection until we close it.
        deadline = time.monotonic() + 30 * SLOW
        while proxy.fd_count() < fd_base + n - 50:
            check(time.monotonic() < deadline, "sessiond accepted only %d of %d connections"
                  % (proxy.fd_count() - fd_base, n))
            time.sleep(0.1)
        held_rss = proxy.vm_kb("VmRSS")
        for i, s in enumerate(socks):
            _close(s, reset=(i % 2 == 0))
        socks = []
    finally:
        for s in socks:
            s.close()
    return opened, held_rss


def test_ten_thousand_connections_opened_and_abandoned_leak_nothing(t):
    """Two rounds of 10,000 abandoned connections: the fds must all be closed
    after each; RSS must not grow from the first round to the second (a
    leak), and must come back near the baseline."""
    n = 10000
    raise_nofile(n + 4096)
    proxy = _proxy(t, extra_timeouts={"client_header": "60s"})
    check(process_nofile(proxy.pid) >= n + 1024, "sessiond's RLIMIT_NOFILE is %d, too low for %d connections"
          % (process_nofile(proxy.pid), n))
    fd_base, rss_base = _baselines(proxy)
    prober = Prober(proxy, interval=0.1).start()
    after = []
    for round_ in (1, 2):
        opened, held = _open_and_abandon(proxy, fd_base, n)
        wait_fds_at_most(proxy, fd_base + 2, IDLE + 8 * SLOW, "fds after %d abandoned connections (round %d)"
                         % (n, round_))
        # Freed memory goes back to the OS from the main thread's periodic
        # trim (every 2 s once the connection count has fallen), not at once.
        if not SANITIZED:
            try:
                wait_rss_at_most(proxy, rss_base + RSS_SLACK_KB, 6.0 * SLOW, "RSS after round %d" % round_)
            except AssertionError:
                pass  # reported with the numbers below
        after.append((opened, held, proxy.vm_kb("VmRSS")))
    prober.stop()
    prober.check_all_ok(2.0 * SLOW, "while %d connections were opened (in %.1fs) and abandoned" % (n, after[0][0]))
    rss_text = "RSS KiB: baseline %d; round 1 held %d, after %d; round 2 held %d, after %d" % (
        rss_base, after[0][1], after[0][2], after[1][1], after[1][2])
    check_eq(proxy.request("GET", "/echo?after", timeout=5).status, 200, "a request after the abandoned connections")
    if SANITIZED:
        return  # RSS is the sanitizer allocator's (see _check_recovered)
    check(after[1][2] <= after[0][2] + 2048, "RSS grew from one round of %d abandoned connections to the next "
          "(a leak): %s" % (n, rss_text))
    check(after[1][2] <= rss_base + RSS_SLACK_KB, "RSS did not come back near the baseline (+%d KiB allowed) "
          "after %d abandoned connections: %s" % (RSS_SLACK_KB, n, rss_text))


test_ten_thousand_connections_opened_and_abandoned_leak_nothing.exclusive = True
test_ten_thousand_connections_opened_and_abandoned_leak_nothing.timeout = 150


def test_burst_of_1000_connects_is_accepted_without_listen_queue_overflow(t):
    """1,000 clients connecting at the same instant are all accepted at once.
    The listen queue must hold such a burst: a SYN or handshake ACK dropped
    on overflow costs a client a retransmission (1 s and more), and a client
    that waits for the server to speak first may never be accepted."""
    n = 1000
    with open("/proc/sys/net/core/somaxconn") as f:
        somaxconn = int(f.read())
    check(somaxconn >= n, "net.core.somaxconn is %d: this machine cannot queue a burst of %d" % (somaxconn, n))
    raise_nofile(n + 1024)
    proxy = _proxy(t, workers=1, extra_timeouts={"client_header": "30s"})
    fd_base = settle_fd_baseline(proxy)
    socks = []
    try:
        t0 = time.monotonic()
        for i in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", proxy.port))
            socks.append(s)
        deadline = t0 + 1.0 * SLOW
        while proxy.fd_count() < fd_base + n and time.monotonic() < deadline:
            time.sleep(0.01)
        accepted = proxy.fd_count() - fd_base
        check(accepted >= n, "sessiond accepted %d of a burst of %d connections within %.1fs (listen queue "
              "overflow?)" % (accepted, n, 1.0 * SLOW))
    finally:
        for s in socks:
            s.close()
    wait_fds_at_most(proxy, fd_base + 2, 5 * SLOW, "fds after the burst closed")


test_burst_of_1000_connects_is_accepted_without_listen_queue_overflow.exclusive = True


def test_slow_readers_keep_memory_bounded_while_others_are_served(t):
    proxy = _proxy(t)
    fd_base, rss_base = _baselines(proxy)
    size = 16 << 20
    readers = []
    for i in range(20):
        c = t.connect(proxy.port, timeout=20)
        c.set_recv_buffer(16 << 10)
        c.send(build_request("GET", "/bytes/%d?r=%d" % (size, i)))
        readers.append(c)
    prober = Prober(proxy, interval=0.05).start()
    peak = 0
    got = [0] * len(readers)
    t_end = time.monotonic() + 3.0
    while time.monotonic() < t_end:
        for i, c in enumerate(readers):
            got[i] += len(c.read_available(0.001))
        peak = max(peak, proxy.vm_kb("VmRSS"))
        time.sleep(0.1)
    prober.stop()
    check(all(g > 0 for g in got), "some slow readers received nothing: %s" % got)
    check(max(got) < size, "a slow reader got its whole body in 3 s; not slow enough to test anything (%d)"
          % max(got))
    # 20 x 16 MiB of pending bodies: sessiond may buffer a bounded window per
    # connection (Exchange::kOutputHigh, 256 KiB, plus the upstream side),
    # never the bodies.
    # (Sanitizer builds: twice the bound for redzones and shadow memory.)
    limit_kb = 40 * 1024 * (2 if SANITIZED else 1)
    check(peak - rss_base < limit_kb, "RSS grew by %d KiB (limit %d) with 20 slow readers of 16 MiB each"
          % (peak - rss_base, limit_kb))
    print("slow readers: peak RSS %d KiB (baseline %d), received %d..%d bytes each"
          % (peak, rss_base, min(got), max(got)))
    prober.check_all_ok(1.0 * SLOW, "while 20 slow readers were connected")
    for i, c in enumerate(readers):
        _close(c.sock, reset=(i % 2 == 0))
    _check_recovered(proxy, fd_base, rss_base, "20 slow readers went away")


def test_slowloris_on_500_connections_is_cut_at_client_header_timeout(t):
    n = 500
    raise_nofile(n + 1024)
    proxy = _proxy(t, extra_timeouts={"client_header": "2s"})
    fd_base, rss_base = _baselines(proxy)
    prober = Prober(proxy, interval=0.05).start()
    conns = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        s.setblocking(False)
        s.send(b"GET /echo?loris=%d HTTP/1.1\r\nHost: x\r\n" % i)
        conns.append(s)
    started = time.monotonic()
    open_ = set(range(n))
    answered = []
    line = b"X-Slow: " + b"a" * 200 + b"\r\n"
    pos = 0
    while open_ and time.monotonic() - started < 2.0 + 4.0 * SLOW:
        # One more byte per connection every 0.25 s: never a complete head.
        for i in list(open_):
            s = conns[i]
            try:
                data = s.recv(4096)
                if data:
                    answered.append((i, data[:80]))
                open_.discard(i)  # EOF or an answer: sessiond ended it
                continue
            except BlockingIOError:
                pass
            except OSError:
                open_.discard(i)
                continue
            try:
                s.send(line[pos % len(line):pos % len(line) + 1])
            except OSError:
                open_.discard(i)
        pos += 1
        time.sleep(0.25)
    took = time.monotonic() - started
    prober.stop()
    for s in conns:
        _close(s, reset=False)
    check(not open_, "%d of %d slowloris connections still open %.1fs after the first byte (client_header 2s)"
          % (len(open_), n, took))
    prober.check_all_ok(1.0 * SLOW, "during slowloris on %d connections" % n)
    _check_recovered(proxy, fd_base, rss_base, "slowloris on %d connections" % n)
    check(not answered or all(a[1].startswith(b"HTTP/1.1 408") for a in answered),
          "slowloris connections got something other than a close or a 408: %s" % answered[:3])


test_slowloris_on_500_connections_is_cut_at_client_header_timeout.exclusive = True


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_fd_exhaustion_neither_spins_nor_floods_the_log_and_recovers(t):
    """More clients than sessiond may open fds: accept() fails with EMFILE
    while the pending connections stay queued. sessiond must back off (not
    retry accept() in a tight loop, burning a core and writing a warning per
    try) and serve again once fds are free."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))  # inherited by the sessiond started now
    try:
        proxy = _proxy(t, workers=1, extra_timeouts={"client_header": "30s"})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    check_eq(process_nofile(proxy.pid), 64, "sessiond's RLIMIT_NOFILE")
    check_eq(proxy.request("GET", "/echo", timeout=5).status, 200, "a request before the fds run out")
    socks = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5) for _ in range(100)]
    wait_until(lambda: proxy.fd_count() >= 60, 5 * SLOW, "sessiond to use up its fds (%d open)" % proxy.fd_count())
    err_before = os.path.getsize(proxy.stderr_path)
    cpu_before = _cpu_seconds(proxy.pid)
    time.sleep(1.5)
    cpu = _cpu_seconds(proxy.pid) - cpu_before
    logged = os.path.getsize(proxy.stderr_path) - err_before
    for s in socks:
        _close(s, reset=True)
    check(cpu < 0.2 * SLOW, "sessiond used %.2f s of CPU in 1.5 s while out of fds with connections queued "
          "(accept() retried in a loop?)" % cpu)
    check(logged < 16384, "sessiond wrote %d bytes to stderr in 1.5 s while out of fds" % logged)
    wait_until(lambda: proxy.request("GET", "/echo?after", timeout=5).status == 200, 5 * SLOW,
               "a request to succeed once the fds are free again")
