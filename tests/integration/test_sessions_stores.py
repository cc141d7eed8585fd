"""The store managers under load and failure (docs/HEADER-PROTOCOL.md, Concurrency;
docs/HEADER-PROTOCOL.md, Store failures; docs/COOKIES.md, Store keys):
concurrent writers of one session keep every write, two sessiond processes
share sessions through one Redis, Redis outages under fail_closed /
fail_open and the recovery afterwards, the file store across restarts and
its file names, the memory store's max_sessions bound, store keys that
reveal no cookie value, and a Destroy or Regenerate racing a write of the
same session."""

import os
import signal
import threading
import time

from harness import SLOW, check, check_eq, check_error_response, wait_until
from session_util import (COOKIE_NAME, HEX64, Browser, GateBackend, SessionView, check_cleared, check_session,
                          instructions_target, make_session, restart_proxy, session_set_cookies, set_header,
                          start_proxy)

WRITERS = 30


# ---------------------------------------------------------------------------
# Concurrent writers

def _concurrent_writes(proxies, cookie, what):
    """WRITERS threads, each on its own connection to proxies[i % len],
    start together and each sets {"kI": I} on the session of `cookie`."""
    cookie_header = ("Cookie", "%s=%s" % (COOKIE_NAME, cookie))
    barrier = threading.Barrier(WRITERS)
    results = [None] * WRITERS

    def writer(i):
        try:
            conn = proxies[i % len(proxies)].connect(timeout=15.0)
            try:
                barrier.wait(10)
                resp = conn.request("GET", instructions_target([set_header({"k%d" % i: i})]), [cookie_header],
                                    timeout=15.0)
                results[i] = resp.status
            finally:
                conn.close()
        except Exception as e:  # reported below; a thread cannot fail the test itself
            results[i] = repr(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    check_eq(results, [200] * WRITERS, "statuses of the %d concurrent writes (%s)" % (WRITERS, what))


def _check_every_key_kept(b, what):
    want = {"base": True}
    want.update({"k%d" % i: i for i in range(WRITERS)})
    view = b.echo()
    missing = sorted(set(want) - set(view.data or {}), key=lambda k: (len(k), k))
    check(not missing, "keys lost by %d concurrent writers (%s): %s" % (WRITERS, what, missing))
    check_session(view, "active", want, "the session after %d concurrent writers (%s)" % (WRITERS, what))


def _concurrent_writers_keep_every_key(t, manager):
    proxy = start_proxy(t, manager, extra={"workers": 4})
    b = Browser(proxy)
    make_session(b, {"base": True})
    _concurrent_writes([proxy], b.cookie, "one sessiond, 4 workers")
    _check_every_key_kept(b, "one sessiond, 4 workers")


def test_concurrent_writers_keep_every_key_memory(t): _concurrent_writers_keep_every_key(t, "memory")
def test_concurrent_writers_keep_every_key_file(t): _concurrent_writers_keep_every_key(t, "file")
def test_concurrent_writers_keep_every_key_redis(t): _concurrent_writers_keep_every_key(t, "redis")


def _two_processes_concurrent_writers(t, manager):
    """Two sessiond processes on one store (Redis, or one file directory, which
    src/store/file_store.h says processes may share): writers spread over both."""
    a = start_proxy(t, manager, extra={"workers": 2}, name="sessiond-a")
    b_proxy = start_proxy(t, manager, extra={"workers": 2}, redis=a.redis, name="sessiond-b")
    b = Browser(a)
    make_session(b, {"base": True})
    _concurrent_writes([a, b_proxy], b.cookie, "two sessiond processes")
    _check_every_key_kept(b, "two sessiond processes, read on A")
    _check_every_key_kept(Browser(b_proxy, cookie=b.cookie), "two sessiond processes, read on B")


def test_two_processes_concurrent_writers_file(t): _two_processes_concurrent_writers(t, "file")
def test_two_processes_concurrent_writers_redis(t): _two_processes_concurrent_writers(t, "redis")


# ---------------------------------------------------------------------------
# Redis

def test_two_sessiond_share_sessions_through_redis(t):
    a = start_proxy(t, "redis", name="sessiond-a")
    b_proxy = start_proxy(t, "redis", redis=a.redis, name="sessiond-b")
    on_a = Browser(a)
    created = make_session(on_a, {"user": "ada"})
    on_b = Browser(b_proxy, cookie=on_a.cookie)
    view = on_b.echo()
    check_session(view, "active", {"user": "ada"}, "the session created on A, read on B")
    check_eq(view.id, created.id, "X-Session-Id on B")

    on_b.set({"cart": [1, 2]})
    on_a.cookie = on_b.cookie
    check_session(on_a.echo(), "active", {"user": "ada", "cart": [1, 2]}, "a write on B, read on A")

    check_cleared(on_b.write(("X-Session-Destroy", "true")), "Destroy on B")
    resp = Browser(a, cookie=on_a.cookie).request("/echo")
    check_session(SessionView(resp), "none", {}, "the session destroyed on B, read on A")


def test_redis_keys_reveal_no_cookie(t):
    proxy = start_proxy(t, "redis", extra={"redis": {"key_prefix": "myapp:"}})
    b = Browser(proxy)
    view = make_session(b, {"user": "ada"})
    keys = proxy.redis.keys()
    check_eq(len(keys), 1, "keys in Redis after one session (%r)" % keys)
    parts = b.cookie.split(".")
    for key in keys:
        check(key.startswith("myapp:"), "key %r lacks the configured key_prefix" % key)
        for what, secret in [("cookie value", b.cookie), ("X-Session-Id", view.id)] + \
                [("cookie part %d" % i, p) for i, p in enumerate(parts) if len(p) >= 16]:
            check(secret not in key, "Redis key %r contains the %s" % (key, what))


def _redis_proxy(t, on_error):
    return start_proxy(t, "redis", extra={"redis": {"timeout": "1s", "on_error": on_error}})


def _recovers_within(proxy, seconds, what):
    """Polls until a new session can be written and read back."""
    def works():
        b = Browser(proxy, fresh_connections=True)
        try:
            resp = b.write(set_header({"probe": 1}))
            if resp.status != 200 or not b.cookie:
                return False
            view = b.echo()
        except (OSError, AssertionError):
            return False
        return view.status == "active" and view.data == {"probe": 1}
    t0 = time.monotonic()
    wait_until(works, seconds * SLOW, what, interval=0.1)
    return time.monotonic() - t0


def _check_not_cleared(resp, what):
    """fail_open proceeds without the session, but the client's cookie is
    neither invalid nor expired (docs/COOKIES.md, When the cookie is set, re-issued or cleared:
    only those are cleared): clearing it
    would log every user out for good because of a passing store outage."""
    for c in session_set_cookies(resp):
        check(not c.clears, "%s, fail_open: the response clears the client's valid session cookie: %s"
              % (what, c.raw))


def _timed(fn):
    t0 = time.monotonic()
    out = fn()
    return out, time.monotonic() - t0


LIMIT = 2.0 * SLOW  # redis.timeout (1 s) + 1 s


def test_redis_down_fail_closed_is_503_then_recovers(t):
    proxy = _redis_proxy(t, "fail_closed")
    b = Browser(proxy, fresh_connections=True)
    make_session(b, {"user": "ada"})
    proxy.redis.stop()

    resp, took = _timed(lambda: b.request("/echo"))
    check_error_response(resp, 503)
    check(took < LIMIT, "503 for a session load took %.2fs, want < %.1fs" % (took, LIMIT))
    resp, took = _timed(lambda: Browser(proxy, fresh_connections=True).write(set_header({"x": 1})))
    check_error_response(resp, 503)
    check(took < LIMIT, "503 for a session write took %.2fs, want < %.1fs" % (took, LIMIT))

    proxy.redis.start()
    _recovers_within(proxy, 5.0, "sessiond to write and read sessions again after Redis restarted")
    # Redis restarted empty (no persistence): the old cookie loads nothing.
    resp = b.request("/echo")
    check_session(SessionView(resp), "none", {}, "the old cookie after Redis lost its data")
    check_cleared(resp, "the old cookie after Redis lost its data")


def test_redis_down_fail_open_reaches_backend_then_recovers(t):
    proxy = _redis_proxy(t, "fail_open")
    b = Browser(proxy, fresh_connections=True)
    make_session(b, {"user": "ada"})
    cookie = b.cookie
    proxy.redis.stop()

    resp, took = _timed(lambda: Browser(proxy, cookie=cookie, fresh_connections=True).request("/echo"))
    check_session(SessionView(resp), "none", {}, "a session load with Redis down under fail_open")
    check(took < LIMIT, "fail_open answer took %.2fs, want < %.1fs" % (took, LIMIT))
    outage_resp = resp
    resp, took = _timed(lambda: Browser(proxy, fresh_connections=True).write(set_header({"x": 1})))
    check_eq(resp.status, 200, "status of a write with Redis down under fail_open")
    check(took < LIMIT, "fail_open write took %.2fs, want < %.1fs" % (took, LIMIT))

    proxy.redis.start()
    _recovers_within(proxy, 5.0, "sessiond to write and read sessions again after Redis restarted")
    _check_not_cleared(outage_resp, "Redis down")


def _hung_redis(t, on_error):
    """Redis frozen with SIGSTOP: connections stay open but nothing answers,
    so only sessiond's own timeout ends the wait."""
    proxy = _redis_proxy(t, on_error)
    b = Browser(proxy, fresh_connections=True)
    make_session(b, {"user": "ada"})
    cookie = b.cookie
    proxy.redis.proc.send_signal(signal.SIGSTOP)
    t.on_cleanup(lambda: proxy.redis.proc.poll() is None and proxy.redis.proc.send_signal(signal.SIGCONT))
    try:
        resp, took = _timed(lambda: Browser(proxy, cookie=cookie, fresh_connections=True).request("/echo"))
        outage_resp = resp
        if on_error == "fail_closed":
            check_error_response(resp, 503)
        else:
            check_session(SessionView(resp), "none", {}, "a session load with Redis hung under fail_open")
        check(took < LIMIT, "answer with Redis hung took %.2fs, want < %.1fs" % (took, LIMIT))
        resp, took = _timed(lambda: Browser(proxy, fresh_connections=True).write(set_header({"x": 1})))
        check_eq(resp.status, 503 if on_error == "fail_closed" else 200, "status of a write with Redis hung")
        check(took < LIMIT, "write with Redis hung took %.2fs, want < %.1fs" % (took, LIMIT))
    finally:
        proxy.redis.proc.send_signal(signal.SIGCONT)
    _recovers_within(proxy, 5.0, "sessiond to work again after Redis resumed")
    check_session(Browser(proxy, cookie=cookie).echo(), "active", {"user": "ada"},
                  "the session kept by Redis while it was frozen")
    if on_error == "fail_open":
        _check_not_cleared(outage_resp, "Redis hung")
    else:
        check(not session_set_cookies(outage_resp), "the 503 touches the session cookie: %r"
              % outage_resp.header_values("Set-Cookie"))


def test_redis_hung_fail_closed_is_503_then_recovers(t): _hung_redis(t, "fail_closed")
def test_redis_hung_fail_open_reaches_backend_then_recovers(t): _hung_redis(t, "fail_open")


# ---------------------------------------------------------------------------
# File store

def _session_files(proxy):
    out = []
    for root, _, files in os.walk(proxy.config["file"]["directory"]):
        out += [os.path.join(root, f) for f in files]
    return sorted(out)


def test_file_sessions_survive_restart(t):
    proxy = start_proxy(t, "file")
    b = Browser(proxy)
    before = make_session(b, {"user": "ada", "cart": [1]})
    proxy = restart_proxy(t, proxy)
    b.close()
    after = b.echo()
    check_session(after, "active", {"user": "ada", "cart": [1]}, "the session after a restart")
    check_eq(after.id, before.id, "X-Session-Id after a restart")
    b.set({"cart": [1, 2]})
    check_session(b.echo(), "active", {"user": "ada", "cart": [1, 2]}, "a write after a restart")


def test_file_names_are_keyed_hashes(t):
    """Session files are named by the 64-hex keyed store key; the only other
    files are their "KEY.lock" companions (src/store/file_store.h), which go
    away with the session."""
    proxy = start_proxy(t, "file")
    browsers = [Browser(proxy) for _ in range(3)]
    views = [make_session(b, {"n": i}) for i, b in enumerate(browsers)]
    files = _session_files(proxy)
    names = [os.path.basename(p) for p in files]
    sessions = [n for n in names if HEX64.match(n)]
    check_eq(len(sessions), 3, "session files for 3 sessions (%r)" % names)
    for name in names:
        check(HEX64.match(name) or (name.endswith(".lock") and name[:-5] in sessions),
              "file %r in the session directory is neither a 64-hex session file nor its lock" % name)
    for path in files:
        name = os.path.basename(path)
        with open(path, "rb") as f:
            content = f.read().decode("latin-1")
        for b, view in zip(browsers, views):
            for what, secret in [("cookie value", b.cookie), ("X-Session-Id", view.id)] + \
                    [("cookie part %d" % i, p) for i, p in enumerate(b.cookie.split(".")) if len(p) >= 16]:
                check(secret not in name, "file name %r contains the %s" % (name, what))
                check(secret not in content, "file %s contains the %s" % (name, what))

    check_cleared(browsers[0].write(("X-Session-Destroy", "true")), "Destroy")
    left = [os.path.basename(p) for p in _session_files(proxy)]
    check_eq(len([n for n in left if HEX64.match(n)]), 2, "session files after destroying one of 3 (%r)" % left)
    gone = [n for n in sessions if n not in left]
    check_eq(len(gone), 1, "session files removed by Destroy (%r)" % left)
    check(gone[0] + ".lock" not in left, "the destroyed session's lock file is left behind: %r" % left)


# ---------------------------------------------------------------------------
# Memory store

def test_memory_max_sessions_evicts_oldest(t):
    proxy = start_proxy(t, "memory", extra={"memory": {"max_sessions": 3}})
    browsers = [Browser(proxy) for _ in range(5)]
    for i, b in enumerate(browsers):
        make_session(b, {"n": i})
    for i in (0, 1):
        resp = Browser(proxy, cookie=browsers[i].cookie).request("/echo")
        check_session(SessionView(resp), "none", {}, "session %d of 5 with max_sessions 3" % i)
        check_cleared(resp, "the evicted session %d" % i)
    for i in (2, 3, 4):
        check_session(browsers[i].echo(), "active", {"n": i}, "session %d of 5 with max_sessions 3" % i)


# ---------------------------------------------------------------------------
# Destroy / Regenerate racing a write of the same session

def _race_behind_a_gate(t, manager, slow_instructions, fast_instruction, what):
    """Starts a session, sends `slow_instructions` with its cookie to a backend
    that holds the request, and, while it is held, `fast_instruction` through
    the same browser. Returns (proxy, browser, the old cookie, the held
    request's response, gate) once both are answered."""
    gate = GateBackend(t)
    proxy = start_proxy(t, manager, upstream=gate)
    b = Browser(proxy)
    make_session(b, {"user": "ada"})
    old = b.cookie
    late = {}

    def slow():
        late["resp"] = Browser(proxy, cookie=old, fresh_connections=True).request(
            instructions_target(slow_instructions, path="/gated"))
    th = threading.Thread(target=slow)
    th.start()
    try:
        check(gate.arrived.wait(5 * SLOW), "the slow %s never reached the backend" % what)
        resp = b.write((fast_instruction, "true"))
        check_eq(resp.status, 200, "status of %s while the %s of the session is in flight" % (fast_instruction, what))
    finally:
        gate.release.set()
        th.join(15)
    check("resp" in late, "the slow %s got no response" % what)
    return proxy, b, old, late["resp"], gate


def _ending_races_a_write(t, manager, instruction):
    """A write whose request loaded the session before a Destroy (logout) or
    Regenerate (login) of it, and whose response comes after, must not bring
    the old id back: afterwards the old cookie loads nothing."""
    proxy, b, old, _, gate = _race_behind_a_gate(t, manager, [set_header({"late": 1})], instruction, "write")
    resp = Browser(proxy, cookie=old).request("/echo")
    view = SessionView(resp)
    check(view.status != "active", "the old cookie works again after %s raced a write: the write recreated the "
          "session (status %s, data %s)" % (instruction, view.status, view.data_text))
    check_session(view, "none", {}, "the old cookie after %s raced a write" % instruction)
    if instruction == "X-Session-Regenerate":
        check_eq(b.echo().data.get("user"), "ada", "the regenerated session's data")
    check(not gate.errors, "GateBackend: %s" % gate.errors)


def test_destroy_racing_a_write_memory(t): _ending_races_a_write(t, "memory", "X-Session-Destroy")
def test_destroy_racing_a_write_file(t): _ending_races_a_write(t, "file", "X-Session-Destroy")
def test_destroy_racing_a_write_redis(t): _ending_races_a_write(t, "redis", "X-Session-Destroy")
def test_regenerate_racing_a_write_memory(t): _ending_races_a_write(t, "memory", "X-Session-Regenerate")
def test_regenerate_racing_a_write_file(t): _ending_races_a_write(t, "file", "X-Session-Regenerate")
def test_regenerate_racing_a_write_redis(t): _ending_races_a_write(t, "redis", "X-Session-Regenerate")


def _regenerate_racing_a_destroy(t, manager):
    """A Regenerate (login) whose request loaded the session before a Destroy
    (logout) of it completed must not move the destroyed session to a new id:
    its response clears the cookie and no cookie loads a session afterwards."""
    proxy, _, old, late, gate = _race_behind_a_gate(
        t, manager, [("X-Session-Regenerate", "true"), set_header({"role": "admin"})], "X-Session-Destroy",
        "regenerate")
    check_cleared(late, "the Regenerate of a session destroyed meanwhile")
    check_session(SessionView(Browser(proxy, cookie=old).request("/echo")), "none", {},
                  "the old cookie after a Regenerate raced a Destroy")
    check(not gate.errors, "GateBackend: %s" % gate.errors)


def test_regenerate_racing_a_destroy_memory(t): _regenerate_racing_a_destroy(t, "memory")
def test_regenerate_racing_a_destroy_file(t): _regenerate_racing_a_destroy(t, "file")
def test_regenerate_racing_a_destroy_redis(t): _regenerate_racing_a_destroy(t, "redis")
