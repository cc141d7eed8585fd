"""Helpers for the fault-injection tests (test_faults_*.py): faults to inject,
a concurrent session load to run while they happen, and resource checks.

  FaultRedis(t, persistent=True)   redis-server with AOF (appendfsync always) so a
                                   SIGKILL keeps every acknowledged write; DEBUG enabled
                                   (hang() runs DEBUG SLEEP from another connection)
  SilentListener(t)                accepts TCP connections and never says a word
  SessionLoad(proxy, clients=12)   keep-alive clients doing mixed session reads and
                                   writes; every request becomes a Sample, every
                                   acknowledged write is remembered per session
  raise_nofile(n)                  RLIMIT_NOFILE of this process (and so of the
                                   sessiond it starts afterwards) to at least n
  wait_fds_at_most / wait_rss_at_most   poll sessiond's /proc with a bound
  Prober(proxy)                    one plain request after another, in a thread,
                                   for "it still serves while ..." checks

Times are time.monotonic() seconds throughout, so samples, fault instants and
readiness instants compare directly.
"""

import json
import os
import random
import resource
import socket
import subprocess
import threading
import time
import traceback

from client import ProtocolError, RawConnection
from harness import SLOW, check, wait_until
from session_util import COOKIE_NAME, RedisServer, instructions_target, session_set_cookies, set_header


# ---------------------------------------------------------------------------
# Redis

class FaultRedis(RedisServer):
    """A RedisServer (stop() is SIGKILL, start() reuses the port) that can
    persist and can be frozen with DEBUG SLEEP.

    persistent: appendonly yes + appendfsync always, so every write Redis
    acknowledged is on disk before the reply leaves, and a restart after
    SIGKILL holds it again. ready_at is the monotonic time at which the last
    start() saw Redis answer PING (and, for a cluster node, report
    cluster_state:ok).

    mode says how sessiond reaches it (redis_overrides()):
      standalone  redis.url
      sentinel    a sentinel (down-after 1 s, quorum 1, started with the first
                  start() and kept running) names it; there is no replica to
                  fail over to, so it stays the master through its faults
      cluster     a one-node Redis Cluster holding every slot (its nodes.conf
                  persists the slots across restarts), reached through
                  redis.cluster.seeds"""

    def __init__(self, t, persistent=True, port=None, mode="standalone"):
        if port is None and mode == "cluster":
            from redis_topology import cluster_port
            port = cluster_port()
        RedisServer.__init__(self, t, port)
        self.persistent = persistent
        self.mode = mode
        self.sentinel = None
        self.ready_at = None
        self.data_dir = os.path.join(t.tmpdir, "redis-data-%d" % self.port)
        os.makedirs(self.data_dir, exist_ok=True)

    def redis_overrides(self):
        """The redis section keys that point sessiond at it."""
        if self.mode == "cluster":
            return {"url": "redis://127.0.0.1/0", "cluster": {"seeds": ["127.0.0.1:%d" % self.port]}}
        if self.mode == "sentinel":
            return {"url": "redis://127.0.0.1/0",
                    "sentinel": {"master_name": "faulty", "addresses": [self.sentinel.address]}}
        return {"url": self.url}

    def start(self, timeout=5.0):
        check(self.proc is None or self.proc.poll() is not None, "redis-server already running")
        persistence = (["--appendonly", "yes", "--appendfsync", "always"] if self.persistent
                       else ["--appendonly", "no"])
        if self.mode == "cluster":
            persistence += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                            "--cluster-node-timeout", "1000"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--dir", self.data_dir, "--daemonize", "no", "--enable-debug-command", "yes"] + persistence,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(self._answers_ping, timeout * SLOW, "redis-server to answer PING on port %d" % self.port,
                   interval=0.005)
        if self.mode == "cluster":
            if "cluster_slots_assigned:0" in self.command("CLUSTER", "INFO"):
                self.command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            wait_until(lambda: "cluster_state:ok" in self.command("CLUSTER", "INFO"), timeout * SLOW,
                       "the one-node cluster on port %d to be ok" % self.port, interval=0.005)
        if self.mode == "sentinel" and self.sentinel is None:
            from redis_topology import RedisNode
            conf = ("sentinel monitor faulty 127.0.0.1 %d 1\n" % self.port +
                    "sentinel down-after-milliseconds faulty 1000\n")
            self.sentinel = RedisNode(self.t, name="sentinel", sentinel_conf=conf).start()
        self.ready_at = time.monotonic()
        return self

    def _answers_ping(self):
        try:
            return self.command("PING") == "PONG"
        except (OSError, AssertionError):  # refused, or -LOADING while it reads the AOF
            return self._check_alive()

    def hang(self, seconds):
        """Freezes Redis for `seconds` with DEBUG SLEEP, sent from another
        connection in a thread. Returns (thread, started_at): Redis is frozen
        from about started_at; join the thread to know it woke up. Joining
        can return late on a loaded machine, so thread.wakes_no_earlier_than
        bounds the wake-up from below: the command was not sent before it."""
        started = threading.Event()
        box = {}

        def run():
            with socket.create_connection(("127.0.0.1", self.port), timeout=seconds + 10) as s:
                box["sending"] = time.monotonic()
                s.sendall(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$%d\r\n%s\r\n"
                          % (len(str(seconds)), str(seconds).encode()))
                box["at"] = time.monotonic()
                started.set()
                box["reply"] = s.recv(100)

        th = threading.Thread(target=run, daemon=True)
        th.start()
        check(started.wait(5), "could not send DEBUG SLEEP to redis")
        th.reply = lambda: box.get("reply")
        th.wakes_no_earlier_than = box["sending"] + seconds
        return th, box["at"]


# ---------------------------------------------------------------------------
# A TCP listener that never answers

class SilentListener:
    """Accepts every connection and never sends or closes (until the test
    ends): to a client waiting for a greeting or a reply, a hung server."""

    def __init__(self, t):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.received = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        t.on_cleanup(self.close)

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                conn.setblocking(False)
                self.accepted.append(conn)
            except socket.timeout:
                pass
            except OSError:
                return
            for c in self.accepted:
                try:
                    data = c.recv(65536)
                    if data:
                        self.received += data
                except (BlockingIOError, OSError):
                    pass

    def open_count(self):
        """Accepted connections the client has not closed yet."""
        n = 0
        for c in list(self.accepted):
            try:
                if c.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b"":
                    n += 1  # data pending: still open
            except BlockingIOError:
                n += 1
            except OSError:
                pass
        return n

    def close(self):
        self._stop.set()
        self._thread.join(2)
        for c in self.accepted + [self.sock]:
            c.close()


# ---------------------------------------------------------------------------
# Concurrent session load

class Sample:
    """One request of a SessionLoad: op is read|write|regenerate|destroy;
    status 0 with error set when no response arrived."""
    __slots__ = ("client", "op", "t0", "t1", "status", "key", "error", "session_status", "connection",
                 "had_cookie", "resp")

    def __init__(self, client, op, t0):
        self.client, self.op, self.t0 = client, op, t0
        self.t1 = None
        self.status = 0
        self.key = None
        self.error = None
        self.session_status = None
        self.connection = None
        self.had_cookie = False
        self.resp = None  # kept for non-200 answers, to inspect their bodies

    @property
    def elapsed(self):
        return self.t1 - self.t0

    def __repr__(self):
        return "<%s c%d %s t=+%.3f..+%.3f %s%s>" % (
            self.op, self.client, self.status, self.t0, self.t1 or -1, self.session_status or "",
            " " + self.error if self.error else "")


class _Session:
    """What one client knows of its session: the cookie and every key whose
    write the proxy acknowledged with 200."""

    def __init__(self, cookie):
        self.cookie = cookie
        self.acked = {}


class SessionLoad:
    """`clients` threads, each on its own keep-alive connection, each with its
    own session, issuing requests back to back (plus `think` seconds) until
    stop(). Each picks an op by `weights` (read: GET /echo; write: set one new
    unique key {"cCnN": N}; regenerate; destroy) and starts a fresh session
    after `keys_per_session` acknowledged writes, so sessions stay under
    max_session_bytes.

    With check_reads, reads check read-your-writes on the fly: a 200 /echo of
    an active session that lacks a key this client saw acknowledged is
    recorded in `lost` (turn it off where a 200 does not promise durability,
    e.g. fail_open with the store down).
    """

    def __init__(self, proxy, clients=12, weights=None, timeout=10.0, keys_per_session=40, think=0.0,
                 seed=1, check_reads=True):
        self.proxy = proxy
        self.clients = clients
        self.weights = weights or {"read": 1, "write": 1}
        self.timeout = timeout
        self.keys_per_session = keys_per_session
        self.think = think
        self.seed = seed
        self.check_reads = check_reads
        self.samples = []
        self.sessions = []         # every _Session ever used, for verify_acked()
        self.lost = []             # (sample, missing keys) seen by reads during the load
        self.crashes = []          # exceptions that escaped a client thread (harness bugs)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self.started_at = None

    # -- control ---------------------------------------------------------------
    def start(self):
        self.started_at = time.monotonic()
        for i in range(self.clients):
            th = threading.Thread(target=self._client_main, args=(i,), daemon=True, name="load-%d" % i)
            th.start()
            self._threads.append(th)
        return self

    def stop(self, join_timeout=None):
        self._stop.set()
        for th in self._threads:
            th.join(join_timeout if join_timeout is not None else self.timeout + 5)
        check(not any(th.is_alive() for th in self._threads), "load client threads did not stop")
        check(not self.crashes, "load client crashed: %s" % self.crashes[:3])
        return self

    def run_for(self, seconds):
        self.start()
        time.sleep(seconds)
        return self.stop()

    # -- views -------------------------------------------------------------------
    def completed(self):
        with self._lock:
            return [s for s in self.samples if s.t1 is not None]

    def between(self, t0, t1):
        """Samples that started at or after t0 and ended by t1."""
        return [s for s in self.completed() if s.t0 >= t0 and s.t1 <= t1]

    def count(self, pred=lambda s: True, samples=None):
        return sum(1 for s in (self.completed() if samples is None else samples) if pred(s))

    def summary(self, samples=None):
        out = {}
        for s in (self.completed() if samples is None else samples):
            k = "%s:%s" % (s.op, s.status if s.status else "error")
            out[k] = out.get(k, 0) + 1
        return out

    # -- verification --------------------------------------------------------
    def verify_acked(self, proxy=None, what="acknowledged writes"):
        """Reads every session through the proxy; fails when a key whose write
        was acknowledged (200) is missing or has another value."""
        proxy = proxy or self.proxy
        problems = []
        checked = 0
        with self._lock:
            sessions = [s for s in self.sessions if s.acked and s.cookie]
        for sess in sessions:
            resp = proxy.request("GET", "/echo", [("Cookie", "%s=%s" % (COOKIE_NAME, sess.cookie))], timeout=10)
            if resp.status != 200:
                problems.append("status %d reading a session with %d acknowledged keys" % (resp.status, len(sess.acked)))
                continue
            status, data = echo_session(resp)
            missing = sorted(k for k, v in sess.acked.items() if (data or {}).get(k) != v)
            if status != "active" or missing:
                problems.append("session (status %s) lost %d of %d acknowledged keys: %s"
                                % (status, len(missing), len(sess.acked), missing[:8]))
            checked += len(sess.acked)
        check(not problems, "%s: %d problems, e.g. %s" % (what, len(problems), problems[:3]))
        return checked

    # -- the client threads ----------------------------------------------------
    def _client_main(self, i):
        rng = random.Random(self.seed * 1000 + i)
        ops, weights = zip(*self.weights.items())
        conn = None
        sess = self._new_session()
        n = 0
        try:
            while not self._stop.is_set():
                if len(sess.acked) >= self.keys_per_session:
                    sess = self._new_session()
                op = rng.choices(ops, weights)[0]
                if op in ("regenerate", "destroy") and not sess.cookie:
                    op = "write"
                n += 1
                s = Sample(i, op, 0.0)
                target, key, value = self._target(op, i, n)
                s.key = key
                headers = [("Cookie", "%s=%s" % (COOKIE_NAME, sess.cookie))] if sess.cookie else []
                s.had_cookie = bool(sess.cookie)
                s.t0 = time.monotonic()
                try:
                    if conn is None:
                        conn = RawConnection(self.proxy.port, timeout=self.timeout)
                    s.connection = id(conn)
                    resp = conn.request("GET", target, headers, timeout=self.timeout)
                    s.t1 = time.monotonic()
                    s.status = resp.status
                    if resp.status != 200:
                        s.resp = resp
                except (ProtocolError, OSError) as e:
                    s.t1 = time.monotonic()
                    s.error = "%s: %s" % (type(e).__name__, e)
                    if conn is not None:
                        conn.close()
                    conn = None
                    self._add(s)
                    continue
                if any(v.lower() == "close" for v in resp.header_values("Connection")):
                    conn.close()
                    conn = None
                sess = self._observe(s, resp, sess, value)
                self._add(s)
                if self.think:
                    time.sleep(self.think)
        except Exception:  # a bug in this helper: reported by stop()
            self.crashes.append(traceback.format_exc())
        finally:
            if conn is not None:
                conn.close()

    def _new_session(self):
        sess = _Session(None)
        with self._lock:
            self.sessions.append(sess)
        return sess

    def _target(self, op, i, n):
        if op == "read":
            return "/echo?c=%d&n=%d" % (i, n), None, None
        if op == "write":
            key = "c%dn%d" % (i, n)
            return instructions_target([set_header({key: n})]), key, n
        if op == "regenerate":
            return instructions_target([("X-Session-Regenerate", "true")]), None, None
        if op == "destroy":
            return instructions_target([("X-Session-Destroy", "true")]), None, None
        raise ValueError(op)

    def _observe(self, s, resp, sess, value):
        """Updates the client's session from one response; returns the session
        the client continues with."""
        cookies = session_set_cookies(resp)
        new_cookie = cookies[-1] if cookies else None
        if s.op == "read" and resp.status == 200:
            s.session_status, data = echo_session(resp)
            if s.session_status == "active" and self.check_reads:
                missing = sorted(k for k, v in sess.acked.items() if (data or {}).get(k) != v)
                if missing:
                    self.lost.append((s, missing))
        if resp.status != 200:
            if new_cookie is not None and new_cookie.clears:
                sess = self._replace(sess, None, keep=False)
            return sess
        if s.op == "destroy":
            return self._replace(sess, None, keep=False, ended=True)
        if new_cookie is not None:
            if new_cookie.clears:
                sess = self._replace(sess, None, keep=False)
            elif new_cookie.value != sess.cookie:
                # A new session (first write, or one minted because the old one
                # was gone) or the same session under a new id (regenerate).
                sess = self._replace(sess, new_cookie.value, keep=(s.op == "regenerate"))
        if s.op == "write":
            if sess.cookie is None:
                # Only fail_open may answer 200 to a write it dropped.
                if self.check_reads:
                    s.error = "write acknowledged with 200 but no session cookie was issued"
            else:
                with self._lock:
                    sess.acked[s.key] = value
        return sess

    def _replace(self, sess, cookie, keep, ended=False):
        """The client continues with a new session under `cookie`. keep: the
        data moved with it (regenerate); ended: the old session was meant to
        go (destroy), so its acknowledged keys are no longer expected."""
        nxt = _Session(cookie)
        with self._lock:
            if keep:
                nxt.acked = sess.acked
            if keep or ended:
                sess.acked = {}
            self.sessions.append(nxt)
        return nxt

    def _add(self, s):
        with self._lock:
            self.samples.append(s)


def echo_session(resp):
    """(X-Session-Status, X-Session-Data as a dict) from a backend /echo response."""
    headers = resp.json()["headers"]
    status = [v for n, v in headers if n.lower() == "x-session-status"]
    data = [v for n, v in headers if n.lower() == "x-session-data"]
    return (status[0] if status else None), (json.loads(data[0]) if data else None)


def write_session(proxy, data, cookie=None):
    """Sets the keys of `data` in the session of `cookie` (a new session when
    None) through `proxy`; returns the session's cookie value afterwards."""
    headers = [("Cookie", "%s=%s" % (COOKIE_NAME, cookie))] if cookie else []
    resp = proxy.request("GET", instructions_target([set_header(data)]), headers, timeout=10)
    check(resp.status == 200, "a session write through %s: status %s" % (proxy.name, resp.status))
    cookies = session_set_cookies(resp)
    return cookies[0].value if cookies else cookie


def read_session(proxy, cookie):
    """(status, data) of the session of `cookie` as the backend saw it through `proxy`."""
    resp = proxy.request("GET", "/echo", [("Cookie", "%s=%s" % (COOKIE_NAME, cookie))], timeout=10)
    check(resp.status == 200, "a session read through %s: status %s" % (proxy.name, resp.status))
    return echo_session(resp)



# ---------------------------------------------------------------------------
# "It still serves"

class Prober:
    """GET /echo on a fresh connection, again and again until stop(), each
    with its latency; for checking that sessiond serves normal requests while
    something else is going on."""

    def __init__(self, proxy, interval=0.05, timeout=10.0, target="/echo?probe=1"):
        self.proxy = proxy
        self.interval = interval
        self.timeout = timeout
        self.target = target
        self.results = []  # (t0, elapsed, status or error text)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                status = self.proxy.request("GET", self.target, timeout=self.timeout).status
            except (ProtocolError, OSError) as e:
                status = "%s: %s" % (type(e).__name__, e)
            self.results.append((t0, time.monotonic() - t0, status))
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(self.timeout + 5)
        return self

    def check_all_ok(self, max_latency, what):
        check(self.results, "no probe request completed %s" % what)
        bad = [r for r in self.results if r[2] != 200]
        check(not bad, "%d of %d probe requests %s failed: %s" % (len(bad), len(self.results), what, bad[:5]))
        slow = [r for r in self.results if r[1] > max_latency]
        check(not slow, "%d of %d probe requests %s took longer than %.1fs: %s"
              % (len(slow), len(self.results), what, max_latency, ["%.2fs" % r[1] for r in slow[:8]]))


# ---------------------------------------------------------------------------
# Resources

def raise_nofile(need):
    """Raises RLIMIT_NOFILE of this process to at least `need` (the hard limit
    too, which root may do); processes started afterwards inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))
    except (ValueError, OSError) as e:
        raise AssertionError("cannot raise RLIMIT_NOFILE to %d (soft %d, hard %d): %s" % (need, soft, hard, e))
    return need


def process_nofile(pid):
    """The soft 'Max open files' limit of process pid."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no 'Max open files' in /proc/%d/limits" % pid)


def wait_fds_at_most(proxy, limit, timeout, what):
    """Polls sessiond's open fd count until it is <= limit (fails at timeout)."""
    last = [None]

    def ok():
        last[0] = proxy.fd_count()
        return last[0] <= limit

    try:
        wait_until(ok, timeout, what, interval=0.1)
    except AssertionError:
        raise AssertionError("%s: sessiond still has %d open fds after %.1fs, want <= %d; fds:\n%s"
                             % (what, last[0], timeout, limit, describe_fds(proxy.pid)))


def wait_rss_at_most(proxy, limit_kb, timeout, what):
    last = [None]

    def ok():
        last[0] = proxy.vm_kb("VmRSS")
        return last[0] <= limit_kb

    try:
        wait_until(ok, timeout, what, interval=0.2)
    except AssertionError:
        raise AssertionError("%s: sessiond's RSS is %d KiB after %.1fs, want <= %d KiB"
                             % (what, last[0], timeout, limit_kb))


def describe_fds(pid, limit=40):
    """What sessiond's fds point to, counted by kind (socket, pipe, file)."""
    kinds = {}
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            kind = target.split(":", 1)[0] if ":" in target else target
            kinds[kind] = kinds.get(kind, 0) + 1
    except OSError as e:
        return "  (cannot list: %s)" % e
    return "\n".join("  %5d %s" % (n, k) for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:limit])


def settle_fd_baseline(proxy, seconds=0.3):
    """sessiond's fd count once it has not changed for `seconds`."""
    prev = proxy.fd_count()
    deadline = time.monotonic() + 5 * SLOW
    while time.monotonic() < deadline:
        time.sleep(seconds)
        cur = proxy.fd_count()
        if cur == prev:
            return cur
        prev = cur
    return prev
