"""Session policy through the real binary: idle and absolute timeouts with a
sliding refresh (docs/HEADER-PROTOCOL.md, Session lifetime;
docs/CONFIGURATION.md, session.session_refresh_threshold), subjects and
revocation (docs/HEADER-PROTOCOL.md, Subjects), the admin sessions API
(docs/OPERATIONS.md, Sessions API), and chunked cookie-manager sessions
(docs/COOKIES.md, Chunked cookies). Every timeout test runs on every
manager, the http one against examples/python/session_store.py."""

import json
import os
import re
import subprocess
import sys
import time

from client import request as client_request
from harness import REPO, check, check_eq, free_port, wait_until
from session_util import (COOKIE_NAME, Browser, SessionView, check_cleared, check_no_set_cookie, check_session,
                          instructions_target, log_mark, make_session, manager_overrides, parse_set_cookie,
                          reload_proxy, restart_proxy, session_set_cookies, set_header, start_proxy)
from test_ops_support import admin_get, scrape

TOKEN = "admin-token-0123456789abcdef"
STORE_TOKEN = "store-token-0123456789"


# ---------------------------------------------------------------------------
# The reference http store (examples/python/session_store.py)

class StoreProcess:
    """The SQLite reference store as a child process, on a file database in
    the test's directory (so it survives its own restart)."""

    def __init__(self, t, token=STORE_TOKEN):
        self.t = t
        self.token = token
        self.port = None
        self.proc = None
        self.db = os.path.join(t.tmpdir, "store-%d.db" % id(self))
        t.on_cleanup(self.stop)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, port=0):
        args = [sys.executable, os.path.join(REPO, "examples", "python", "session_store.py"),
                "--port", str(port or self.port or 0), "--db", self.db]
        if self.token:
            args += ["--token", self.token]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"listening on [\d.]+:(\d+)", line)
        check(m, "the reference store did not start: %r" % line)
        self.port = int(m.group(1))
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None


def start_managed(t, manager, session=None, extra=None, store=None, redis=None, name=None):
    """sessiond with `manager`; for http a reference store (started unless given)."""
    extra = dict(extra or {})
    if manager == "http":
        store = store or StoreProcess(t).start()
        extra["http_store"] = dict({"url": store.url, "token": store.token, "timeout": "2s"},
                                   **extra.get("http_store", {}))
        o = manager_overrides(t, "memory", None, session, extra)
        o["session"]["manager"] = "http"
        proxy = t.sessiond(overrides=o, name=name)
        proxy.store = store
        proxy.manager = "http"
        proxy.redis = None
        return proxy
    proxy = start_proxy(t, manager, session=session, extra=extra, redis=redis, name=name)
    proxy.store = None
    return proxy


# ---------------------------------------------------------------------------
# Timeouts

def _idle_timeout(t, manager):
    """Requests inside session_idle_timeout keep the session; a refresh is
    sent at most once per session_refresh_threshold (the skipped ones are
    counted); a pause longer than the idle timeout expires it."""
    aport = free_port()
    proxy = start_managed(t, manager, session={"session_idle_timeout": "3s", "session_refresh_threshold": "1s"},
                          extra={"admin": {"listen": "127.0.0.1:%d" % aport}})
    b = Browser(proxy)
    skipped_before = scrape(aport).value("sessiond_session_refreshes_skipped_total")
    # Session times are whole seconds, so "within the 1 s threshold" means
    # within the second the session was made in: start as a second begins
    # (a slow store, the http one, once crossed into the next and refreshed).
    time.sleep(1.0 - time.time() % 1.0 + 0.01)
    started = time.time()
    make_session(b, {"user": "ada"})
    # Within the threshold: no refresh, no Set-Cookie, counted as skipped.
    resp = b.request("/echo")
    check(int(time.time()) == int(started), "the test machine took over a second to make and read a session")
    check_session(SessionView(resp), "active", {"user": "ada"}, "a request within the threshold")
    check_eq(session_set_cookies(resp), [], "Set-Cookie within the refresh threshold")
    check(scrape(aport).value("sessiond_session_refreshes_skipped_total") > skipped_before,
          "a skipped refresh is counted")
    # Active requests slide the idle deadline past the first 3 s.
    first_expiry = SessionView(b.request("/echo")).expires
    for _ in range(3):
        time.sleep(1.3)
        view = b.echo()
        check_session(view, "active", {"user": "ada"}, "a request inside the idle timeout")
    check(view.expires > first_expiry, "the idle deadline slid: %d then %d" % (first_expiry, view.expires))
    check(scrape(aport).value("sessiond_session_refreshes_total") >= 1, "refreshes are counted")
    # Idle for longer than the timeout: expired, cookie cleared.
    time.sleep(3.6)
    resp = b.request("/echo")
    check_session(SessionView(resp), "expired", {}, "after an idle pause longer than session_idle_timeout")
    check_eq(b.cookie, None, "the cookie after an idle expiry (cleared)")


def test_idle_timeout_cookie(t): _idle_timeout(t, "cookie")
def test_idle_timeout_memory(t): _idle_timeout(t, "memory")
def test_idle_timeout_file(t): _idle_timeout(t, "file")
def test_idle_timeout_redis(t): _idle_timeout(t, "redis")
def test_idle_timeout_http(t): _idle_timeout(t, "http")


def _absolute_timeout(t, manager):
    """session_absolute_timeout holds from creation however busy the session
    is, and a Regenerate starts it over."""
    proxy = start_managed(t, manager, session={"session_refresh_each_request": True,
                                               "session_absolute_timeout": "3s"})
    b = Browser(proxy)
    created = make_session(b, {"user": "ada"})
    check(created.expires <= int(time.time()) + 3, "the expiry is within the absolute timeout")
    deadline = time.time() + 4.2
    statuses = []
    while time.time() < deadline:
        statuses.append(b.echo().status)
        time.sleep(0.4)
    check_eq(statuses[0], "active", "status while the session is young")
    check_eq(statuses[-1] if statuses[-1] != "none" else "expired", "expired",
             "status after the absolute timeout, refreshed all along (%r)" % statuses)

    fresh = Browser(proxy)
    make_session(fresh, {"user": "bob"})
    time.sleep(1.5)
    check_eq(fresh.write(("X-Session-Regenerate", "true")).status, 200, "Regenerate")
    time.sleep(2.0)  # 3.5 s after creation, 2 s after the Regenerate
    check_session(fresh.echo(), "active", {"user": "bob"}, "a regenerated session, absolute timeout restarted")


def test_absolute_timeout_cookie(t): _absolute_timeout(t, "cookie")
def test_absolute_timeout_memory(t): _absolute_timeout(t, "memory")
def test_absolute_timeout_file(t): _absolute_timeout(t, "file")
def test_absolute_timeout_redis(t): _absolute_timeout(t, "redis")
def test_absolute_timeout_http(t): _absolute_timeout(t, "http")


def _timeouts_across_restart(t, manager):
    """The times travel with the session (sealed cookie or store), so a
    restart neither extends nor forgets them."""
    proxy = start_managed(t, manager, session={"session_absolute_timeout": "4s"})
    b = Browser(proxy)
    make_session(b, {"user": "ada"})
    proxy = restart_proxy(t, proxy)
    b.proxy = proxy
    b.close()
    check_session(b.echo(), "active", {"user": "ada"}, "the session after a restart")
    time.sleep(4.3)
    check(b.echo().status in ("expired", "none"), "the absolute timeout held across the restart")


def test_timeouts_across_restart_cookie(t): _timeouts_across_restart(t, "cookie")
def test_timeouts_across_restart_file(t): _timeouts_across_restart(t, "file")
def test_timeouts_across_restart_redis(t): _timeouts_across_restart(t, "redis")
def test_timeouts_across_restart_http(t): _timeouts_across_restart(t, "http")


def test_shorter_absolute_timeout_after_reload_holds_at_once(t):
    """A reload that shortens the absolute timeout expires older sessions at
    once, whatever expiry their cookie carries (docs/HEADER-PROTOCOL.md,
    Session lifetime)."""
    proxy = start_managed(t, "cookie")
    b = Browser(proxy)
    make_session(b, {"user": "ada"})
    time.sleep(2.1)
    reload_proxy(proxy, {"session": {"session_absolute_timeout": "2s"}})
    wait_until(lambda: b.echo().status == "expired", 5.0, "the session expired by the reloaded absolute timeout")


# ---------------------------------------------------------------------------
# Subjects, revocation, the admin API

def _login(proxy, user, ua=None):
    b = Browser(proxy)
    headers = [("User-Agent", ua)] if ua else None
    resp = b.request(instructions_target([set_header({"user_id": user})]), headers=headers)
    check_eq(resp.status, 200, "login of %r (body %r)" % (user, resp.body[:200]))
    return b


def _subject_proxy(t, manager, session=None, store=None, redis=None, name=None):
    aport = free_port()
    s = dict({"subject_key": "user_id"}, **(session or {}))
    proxy = start_managed(t, manager, session=s, store=store, redis=redis, name=name,
                          extra={"admin": {"listen": "127.0.0.1:%d" % aport, "token": TOKEN}})
    proxy.aport = aport
    return proxy


def _admin(proxy, method, path, token=TOKEN):
    headers = [("Connection", "close")]
    if token:
        headers.append(("Authorization", "Bearer " + token))
    return client_request(proxy.aport, method, path, headers=headers, timeout=10.0)


def _revoke(t, manager):
    proxy = _subject_proxy(t, manager)
    a, b, c = _login(proxy, 7), _login(proxy, 7), _login(proxy, 7)
    other = _login(proxy, 8)
    resp = a.write(("X-Session-Revoke", "others"))
    check_eq(resp.status, 200, "X-Session-Revoke: others")
    check_session(a.echo(), "active", {"user_id": 7}, "the revoking session")
    for who, br in (("b", b), ("c", c)):
        resp = br.request("/echo")
        check_session(SessionView(resp), "none", {}, "session %s after Revoke: others" % who)
        check_eq(br.cookie, None, "session %s's cookie after its revocation (cleared)" % who)
    check_session(other.echo(), "active", {"user_id": 8}, "another subject's session")
    check(scrape_admin(proxy).value("sessiond_sessions_revoked_total") >= 2, "revocations are counted")

    d = _login(proxy, 7)
    check_eq(d.write(("X-Session-Revoke", "all")).status, 200, "X-Session-Revoke: all")
    check_eq(d.cookie, None, "Revoke: all clears the revoking session's cookie")
    check_session(a.echo(), "none", {}, "a after Revoke: all")
    check_session(other.echo(), "active", {"user_id": 8}, "another subject after Revoke: all")


def scrape_admin(proxy):
    resp = _admin(proxy, "GET", "/metrics")
    check_eq(resp.status, 200, "/metrics with the token")
    from test_ops_support import Scrape
    return Scrape(resp.body.decode())


def test_revoke_others_and_all_memory(t): _revoke(t, "memory")
def test_revoke_others_and_all_file(t): _revoke(t, "file")
def test_revoke_others_and_all_redis(t): _revoke(t, "redis")
def test_revoke_others_and_all_http(t): _revoke(t, "http")


def _max_sessions(t, manager):
    proxy = _subject_proxy(t, manager, session={"max_sessions_per_subject": 2})
    first = _login(proxy, "ada")
    time.sleep(1.1)  # creation times are whole seconds: make the order plain
    second = _login(proxy, "ada")
    time.sleep(1.1)
    third = _login(proxy, "ada")
    check_session(first.echo(), "none", {}, "the oldest session beyond max_sessions_per_subject")
    check_session(second.echo(), "active", {"user_id": "ada"}, "the second session")
    check_session(third.echo(), "active", {"user_id": "ada"}, "the newest session")


def test_max_sessions_per_subject_memory(t): _max_sessions(t, "memory")
def test_max_sessions_per_subject_file(t): _max_sessions(t, "file")
def test_max_sessions_per_subject_redis(t): _max_sessions(t, "redis")
def test_max_sessions_per_subject_http(t): _max_sessions(t, "http")


def _admin_api(t, manager):
    proxy = _subject_proxy(t, manager)
    long_ua = "Mozilla/5.0 " + "x" * 300
    a = _login(proxy, "ada", ua=long_ua)
    b = _login(proxy, "ada", ua="curl/8")
    _login(proxy, "bob")
    resp = _admin(proxy, "GET", "/sessions?subject=ada")
    check_eq(resp.status, 200, "GET /sessions?subject=ada (body %r)" % resp.body[:200])
    check((resp.header("Content-Type") or "").startswith("application/json"), "listing Content-Type")
    listing = json.loads(resp.body)
    check_eq(listing["subject"], "ada", "listed subject")
    sessions = listing["sessions"]
    check_eq(len(sessions), 2, "sessions listed for ada")
    ids = {a.echo().id, b.echo().id}
    check_eq({s["id"] for s in sessions}, ids, "listed public ids")
    now = int(time.time())
    for s in sessions:
        check_eq(sorted(s), ["client_address", "created", "expires", "id", "last_seen", "user_agent"], "fields")
        check(now - 30 <= s["created"] <= now + 1, "created %r" % s["created"])
        check(s["last_seen"] >= s["created"], "last_seen")
        check(s["expires"] > now, "expires")
        check_eq(s["client_address"], "127.0.0.1", "client_address")
        check(len(s["user_agent"].encode()) <= 128, "user agent cut to 128 bytes")
    check(any(s["user_agent"] == long_ua[:128] for s in sessions), "the long user agent, cut")

    # One session by its public id.
    victim = b.echo().id
    check_eq(_admin(proxy, "DELETE", "/sessions/" + victim).status, 200, "DELETE /sessions/ID")
    check_session(b.echo(), "none", {}, "the session deleted by id")
    check_eq(_admin(proxy, "DELETE", "/sessions/" + victim).status, 404, "DELETE of a gone id")
    check_eq(_admin(proxy, "DELETE", "/sessions/../../etc").status, 404, "DELETE of a malformed id")
    # The whole subject.
    resp = _admin(proxy, "DELETE", "/sessions?subject=ada")
    check_eq(resp.status, 200, "DELETE /sessions?subject=ada")
    check_eq(json.loads(resp.body)["revoked"], 1, "sessions revoked")
    check_session(a.echo(), "none", {}, "a after DELETE /sessions?subject=ada")
    check_eq(json.loads(_admin(proxy, "GET", "/sessions?subject=ada").body)["sessions"], [], "listing after")
    check_eq(len(json.loads(_admin(proxy, "GET", "/sessions?subject=bob").body)["sessions"]), 1, "bob untouched")


def test_admin_sessions_api_memory(t): _admin_api(t, "memory")
def test_admin_sessions_api_file(t): _admin_api(t, "file")
def test_admin_sessions_api_redis(t): _admin_api(t, "redis")
def test_admin_sessions_api_http(t): _admin_api(t, "http")


def test_admin_token_guards_every_endpoint_but_the_probes(t):
    """docs/OPERATIONS.md, Sessions API: admin.token, compared in constant time."""
    proxy = _subject_proxy(t, "memory")
    for path in ("/healthz", "/readyz"):
        check_eq(_admin(proxy, "GET", path, token=None).status, 200, "%s without a token" % path)
    for path in ("/metrics", "/", "/sessions?subject=x"):
        resp = _admin(proxy, "GET", path, token=None)
        check_eq(resp.status, 401, "%s without a token" % path)
        check_eq(resp.header("WWW-Authenticate"), "Bearer", "%s WWW-Authenticate" % path)
        check_eq(_admin(proxy, "GET", path, token=TOKEN + "x").status, 401, "%s with a wrong token" % path)
        check_eq(_admin(proxy, "GET", path, token=TOKEN[:-1]).status, 401, "%s with a prefix of the token" % path)
        check_eq(_admin(proxy, "GET", path).status, 200, "%s with the token" % path)
    resp = client_request(proxy.aport, "GET", "/metrics",
                          headers=[("Connection", "close"), ("Authorization", "bearer " + TOKEN)])
    check_eq(resp.status, 200, "the scheme name is case-insensitive")
    check_eq(_admin(proxy, "POST", "/sessions?subject=x").status, 405, "POST /sessions")
    check_eq(_admin(proxy, "GET", "/sessions").status, 400, "GET /sessions without a subject")
    check(TOKEN not in proxy.stderr_text(), "the token never reaches the log")


def test_admin_sessions_refused_without_token_and_with_the_cookie_manager(t):
    aport = free_port()
    t.sessiond(overrides=manager_overrides(t, "memory", None, {"subject_key": "user_id"},
                                           {"admin": {"listen": "127.0.0.1:%d" % aport}}))
    check_eq(admin_get(aport, "/sessions?subject=x").status, 403, "/sessions without admin.token")
    aport2 = free_port()
    t.sessiond(overrides={"admin": {"listen": "127.0.0.1:%d" % aport2, "token": TOKEN}})
    resp = client_request(aport2, "GET", "/sessions?subject=x",
                          headers=[("Connection", "close"), ("Authorization", "Bearer " + TOKEN)])
    check_eq(resp.status, 501, "/sessions with the cookie manager")


def test_revoke_with_the_cookie_manager_is_refused(t):
    """The cookie manager cannot revoke other browsers' cookies: the
    instruction is refused rather than pass for done."""
    proxy = start_managed(t, "cookie")
    b = Browser(proxy)
    make_session(b, {"user_id": 7})
    old = b.cookie
    mark = log_mark(proxy)
    resp = b.write(("X-Session-Revoke", "others"))
    check_eq(resp.status, 502, "X-Session-Revoke with the cookie manager")
    check("X-Session-Revoke" in proxy.stderr_text()[mark:], "the log names the instruction")
    check_eq(b.cookie, old, "the cookie after a refused revocation")


def _two_instances(t, manager):
    """A revocation holds at once on every instance sharing the store."""
    one = _subject_proxy(t, manager, name="sessiond-a")
    if manager == "file":
        shared = {"file": one.config["file"], "session": one.config["session"]}
        two = t.sessiond(overrides=shared, name="sessiond-b")
    else:
        two = _subject_proxy(t, manager, store=one.store, redis=one.redis, name="sessiond-b")
    a = _login(one, 42)
    b_on_two = Browser(two, cookie=_login(one, 42).cookie)
    check_session(b_on_two.echo(), "active", {"user_id": 42}, "the session read on the second instance")
    check_eq(a.write(("X-Session-Revoke", "others")).status, 200, "Revoke: others on the first instance")
    check_session(b_on_two.echo(), "none", {}, "the revoked session on the second instance")


def test_revocation_holds_on_two_instances_redis(t): _two_instances(t, "redis")
def test_revocation_holds_on_two_instances_file(t): _two_instances(t, "file")
def test_revocation_holds_on_two_instances_http(t): _two_instances(t, "http")


def test_index_consistent_after_expiry(t):
    proxy = _subject_proxy(t, "file", session={"session_expiration_time": "2s"})
    _login(proxy, "eve")
    check_eq(len(json.loads(_admin(proxy, "GET", "/sessions?subject=eve").body)["sessions"]), 1, "listed live")
    time.sleep(2.5)
    check_eq(json.loads(_admin(proxy, "GET", "/sessions?subject=eve").body)["sessions"], [], "listed after expiry")


# ---------------------------------------------------------------------------
# Chunked cookie-manager sessions

class Jar:
    """Every cookie named NAME or NAME.k, kept as a browser would."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.cookies = {}
        self.last = []

    def request(self, target, order=None):
        names = order or sorted(self.cookies)
        header = "; ".join("%s=%s" % (n, self.cookies[n]) for n in names if n in self.cookies)
        headers = [("Cookie", "theme=dark; " + header)] if header else [("Cookie", "theme=dark")]
        resp = client_request(self.proxy.port, "GET", target, headers=headers, timeout=10.0)
        self.last = [parse_set_cookie(v) for v in resp.header_values("Set-Cookie")]
        for c in self.last:
            if c.clears:
                self.cookies.pop(c.name, None)
            else:
                self.cookies[c.name] = c.value
        return resp

    def echo(self):
        return SessionView(self.request("/echo"))

    def set(self, obj):
        resp = self.request(instructions_target([set_header(obj)]))
        check_eq(resp.status, 200, "status of a Set (body %r)" % resp.body[:200])
        return resp


def _chunk_proxy(t):
    return start_managed(t, "cookie", session={"max_session_bytes": 65536},
                         extra={"limits": {"max_header_bytes": 65536}})


def test_large_cookie_session_is_split_and_read_back(t):
    proxy = _chunk_proxy(t)
    jar = Jar(proxy)
    data = {"blob": "x" * 9000}
    resp = jar.set(data)
    lines = resp.header_values("Set-Cookie")
    check(len(lines) >= 3, "a 9000-byte session is sent as several cookies (%d)" % len(lines))
    check_eq(sorted(jar.cookies), sorted([COOKIE_NAME] + ["%s.%d" % (COOKIE_NAME, k) for k in range(1, len(lines))]),
             "cookie names")
    for line in lines:
        check(len("Set-Cookie: ") + len(line) <= 4096, "a Set-Cookie line over 4096 bytes (%d)" % len(line))
    view = jar.echo()
    check_session(view, "active", data, "the chunked session read back")
    check_eq([v for n, v in view.headers if n.lower() == "cookie"], ["theme=dark"],
             "the backend sees no session chunk")
    # Any order of the cookies in the header.
    names = sorted(jar.cookies, reverse=True)
    check_session(SessionView(jar.request("/echo", order=names)), "active", data, "chunks in reverse order")


def test_shrinking_cookie_session_clears_stale_chunks(t):
    proxy = _chunk_proxy(t)
    jar = Jar(proxy)
    jar.set({"blob": "x" * 9000})
    before = len(jar.cookies)
    resp = jar.set({"blob": "small"})
    cleared = sorted(c.name for c in jar.last if c.clears)
    check_eq(cleared, ["%s.%d" % (COOKIE_NAME, k) for k in range(1, before)], "stale chunks cleared")
    check_eq(sorted(jar.cookies), [COOKIE_NAME], "one cookie left")
    check_session(jar.echo(), "active", {"blob": "small"}, "the shrunk session")


def test_tampered_reordered_or_mixed_chunks_are_invalid(t):
    proxy = _chunk_proxy(t)
    one, two = Jar(proxy), Jar(proxy)
    one.set({"blob": "a" * 9000})
    two.set({"blob": "b" * 9000})
    name1 = "%s.1" % COOKIE_NAME
    cases = {
        "tampered": dict(one.cookies, **{name1: ("A" if one.cookies[name1][5] != "A" else "B").join(
            [one.cookies[name1][:5], one.cookies[name1][6:]])}),
        "mixed": dict(one.cookies, **{name1: two.cookies[name1]}),
        "swapped": dict(one.cookies, **{name1: one.cookies["%s.2" % COOKIE_NAME],
                                        "%s.2" % COOKIE_NAME: one.cookies[name1]}),
        "missing": {k: v for k, v in one.cookies.items() if k != name1},
    }
    for what, cookies in cases.items():
        jar = Jar(proxy)
        jar.cookies = dict(cookies)
        resp = jar.request("/echo")
        check_session(SessionView(resp), "invalid", {}, "%s chunks" % what)
        cleared = sorted(c.name for c in jar.last if c.clears)
        check(COOKIE_NAME in cleared, "%s chunks: the session cookie is cleared (%r)" % (what, cleared))
        check_eq(jar.cookies, {}, "%s chunks: every chunk is cleared" % what)
    check_session(one.echo(), "active", {"blob": "a" * 9000}, "the untouched session")
