"""WebSockets through sessiond with a real client and a real server (the
`websockets` library on both sides: ws_backend.py), docs/HTTP.md "Upgrades
and WebSockets":

- messages of every shape pass unchanged (text, binary, 4 MiB, fragmented,
  ping/pong), closes from either side keep their code;
- a slow reader holds back the writer through sessiond without sessiond's
  memory growing with what is pending;
- the handshake goes through the session step (the backend sees the session,
  never the cookie or a spoofed X-Session-*), and the socket is bound to the
  session: logout (Destroy) or Regenerate in another tab, here or through
  another sessiond sharing the store, a revocation (X-Session-Revoke from
  another session of the same user, session.max_sessions_per_subject, the
  admin listener's DELETE /sessions) and expiry close it with a 1008 Close
  within 1 s;
- SIGTERM sends 1001 and sessiond exits 0; a cross-origin handshake gets 403.
"""

import asyncio
import json
import signal
import time

from client import request as client_request
from harness import SLOW, check, check_eq, free_port
from session_util import Browser, RedisServer, start_proxy
from ws_util import WsBackend, connect, run, websockets

# "Within 1 s": sessiond checks the sessions of open sockets twice a second.
CLOSE_DEADLINE = 1.0 * SLOW


def _proxy(t, manager="cookie", session=None, extra=None, redis=None, backend=None):
    backend = backend or WsBackend(t)
    return start_proxy(t, manager, session=dict({"session_cookie_secure": False}, **(session or {})),
                       extra=extra, redis=redis, upstream=backend.url), backend


def _whoami(browser):
    """The X-Session-* headers the backend gets for an HTTP request of `browser`."""
    resp = browser.request("/whoami")
    check_eq(resp.status, 200, "status of /whoami")
    return json.loads(resp.body)


def _login(proxy, user="ada"):
    b = Browser(proxy)
    resp = b.request("/login?user=%s" % user)
    check_eq(resp.status, 200, "login status")
    check(b.cookie, "no session cookie after login")
    return b


def test_messages_pass_unchanged(t):
    proxy, _ = _proxy(t)

    async def scenario():
        async with connect(proxy, "/echo") as ws:
            await ws.send("hello, ünïcode")
            check_eq(await ws.recv(), "hello, ünïcode", "text message")
            blob = bytes(range(256)) * 16384  # 4 MiB
            await ws.send(blob)
            check_eq(await ws.recv(), blob, "4 MiB binary message")
            await ws.send(["frag", "mented ", "message"])  # one message in three frames
            check_eq(await ws.recv(), "fragmented message", "fragmented message")
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 5 * SLOW)
            for i in range(200):
                await ws.send("m%d" % i)
            got = [await ws.recv() for _ in range(200)]
            check_eq(got, ["m%d" % i for i in range(200)], "200 messages in order")
    run(scenario())


def test_closes_keep_their_codes(t):
    proxy, _ = _proxy(t)

    async def scenario():
        ws = await connect(proxy, "/close/4001")
        try:
            await ws.recv()
            raise AssertionError("the backend's close did not arrive")
        except websockets.ConnectionClosed as e:
            check_eq(e.code, 4001, "close code from the backend")
            check_eq(e.reason, "backend closes", "close reason from the backend")
        ws = await connect(proxy, "/echo")
        await ws.close(code=4002, reason="client done")
        check_eq(ws.close_code, 4002, "the backend's answer to the client's close")
    run(scenario())


def test_slow_reader_keeps_memory_bounded(t):
    proxy, _ = _proxy(t)
    total = 64 << 20

    async def scenario():
        async with connect(proxy, "/flood/%d" % total, max_queue=1, read_limit=1 << 16) as ws:
            await asyncio.sleep(0.5)
            base = proxy.vm_kb("VmRSS")
            peak = base
            for _ in range(20):  # 2 s of not reading while the backend pushes 64 MiB
                await asyncio.sleep(0.1)
                peak = max(peak, proxy.vm_kb("VmRSS"))
            check(peak - base < 8 * 1024, "sessiond grew by %d KiB while a reader stalled" % (peak - base))
            got = 0
            while True:
                msg = await ws.recv()
                if msg == "done":
                    break
                got += len(msg)
            check_eq(got, total, "bytes received once the reader read")
    run(scenario(), timeout=120)


test_slow_reader_keeps_memory_bounded.exclusive = True


def test_handshake_carries_the_session_and_strips_spoofing(t):
    proxy, _ = _proxy(t, manager="memory")
    b = _login(proxy)

    async def scenario():
        async with connect(proxy, "/echo", browser=b,
                           headers=[("X-Session-Data", '{"user":"mallory"}'), ("X-Session-Id", "forged")]) as ws:
            await ws.send("whoami")
            seen = json.loads(await ws.recv())
            check_eq(seen["X-Session-Status"], ["active"], "X-Session-Status on the handshake")
            check_eq(seen["X-Session-Data"], ['{"user":"ada"}'], "X-Session-Data on the handshake")
            check(seen["X-Session-Id"] != ["forged"] and len(seen["X-Session-Id"]) == 1, "X-Session-Id spoofed")
            check_eq(seen["Cookie"], [], "the session cookie reached the backend")
            check_eq(len(seen["Via"]), 1, "Via added once")
    run(scenario())


def test_instructions_on_the_101_are_applied(t):
    proxy, _ = _proxy(t, manager="memory")
    b = _login(proxy)

    async def scenario():
        async with connect(proxy, "/echo?set=%7B%22ws%22%3Atrue%7D", browser=b) as ws:
            cookies = ws.response_headers.get_all("Set-Cookie")
            check_eq(ws.response_headers.get_all("X-Session-Set"), [], "instruction leaked to the client")
            await ws.send("x")
            check_eq(await ws.recv(), "x", "echo")
            return cookies
    run(scenario())
    data = json.loads(_whoami(b)["X-Session-Data"][0])
    check_eq(data, {"user": "ada", "ws": True}, "the session after an X-Session-Set on the 101")


async def _closed_within(ws, deadline):
    start = time.monotonic()
    try:
        while True:
            await asyncio.wait_for(ws.recv(), deadline + 2)
    except websockets.ConnectionClosed as e:
        return e.code, time.monotonic() - start
    except asyncio.TimeoutError:
        return None, time.monotonic() - start


def _logout_closes_other_tab(t, manager):
    proxy, _ = _proxy(t, manager=manager)
    tab1 = _login(proxy)
    tab2 = Browser(proxy, cookie=tab1.cookie)  # the same session in another tab
    other = _login(proxy, "grace")             # another user's session stays

    async def scenario():
        async with connect(proxy, "/echo", browser=tab2) as ws, connect(proxy, "/echo", browser=other) as ws_other:
            await ws.send("up")
            check_eq(await ws.recv(), "up", "echo before logout")
            resp = tab1.request("/logout")
            check_eq(resp.status, 200, "logout")
            code, took = await _closed_within(ws, CLOSE_DEADLINE)
            check_eq(code, 1008, "close code after logout in another tab (%s)" % manager)
            check(took <= CLOSE_DEADLINE, "closed %.2f s after logout, want within %.1f s" % (took, CLOSE_DEADLINE))
            await ws_other.send("still here")
            check_eq(await ws_other.recv(), "still here", "another session's socket after the logout")
    run(scenario())


def test_logout_closes_other_tab_cookie(t): _logout_closes_other_tab(t, "cookie")
def test_logout_closes_other_tab_memory(t): _logout_closes_other_tab(t, "memory")
def test_logout_closes_other_tab_file(t): _logout_closes_other_tab(t, "file")
def test_logout_closes_other_tab_redis(t): _logout_closes_other_tab(t, "redis")


test_logout_closes_other_tab_cookie.exclusive = True
test_logout_closes_other_tab_memory.exclusive = True
test_logout_closes_other_tab_file.exclusive = True
test_logout_closes_other_tab_redis.exclusive = True


def _regenerate_closes(t, manager):
    proxy, _ = _proxy(t, manager=manager)
    b = _login(proxy)
    old = b.cookie

    async def scenario():
        async with connect(proxy, "/echo", browser=Browser(proxy, cookie=old)) as ws:
            resp = b.request("/regenerate")
            check_eq(resp.status, 200, "regenerate")
            check(b.cookie and b.cookie != old, "no new cookie after Regenerate")
            code, took = await _closed_within(ws, CLOSE_DEADLINE)
            check_eq(code, 1008, "close code after Regenerate (%s)" % manager)
            check(took <= CLOSE_DEADLINE, "closed %.2f s after Regenerate" % took)
        async with connect(proxy, "/echo", browser=b) as ws:  # the new id opens a socket fine
            await ws.send("new id")
            check_eq(await ws.recv(), "new id", "echo on the regenerated session")
    run(scenario())


def test_regenerate_closes_the_old_sessions_socket_cookie(t): _regenerate_closes(t, "cookie")
def test_regenerate_closes_the_old_sessions_socket_redis(t): _regenerate_closes(t, "redis")


test_regenerate_closes_the_old_sessions_socket_cookie.exclusive = True
test_regenerate_closes_the_old_sessions_socket_redis.exclusive = True


def _expiry_closes(t, manager):
    proxy, _ = _proxy(t, manager=manager, session={"session_expiration_time": "2s"})
    b = _login(proxy)

    async def scenario():
        async with connect(proxy, "/echo", browser=b) as ws:
            start = time.monotonic()
            code, took = await _closed_within(ws, 2 + CLOSE_DEADLINE + 1)
            check_eq(code, 1008, "close code at the session's expiry (%s)" % manager)
            check(time.monotonic() - start <= 2 + CLOSE_DEADLINE + 1, "closed long after expiry")
    run(scenario())


def test_expiry_closes_the_socket_cookie(t): _expiry_closes(t, "cookie")
def test_expiry_closes_the_socket_memory(t): _expiry_closes(t, "memory")


def _other_instance_logout(t, manager):
    backend = WsBackend(t)
    redis = RedisServer(t).start() if manager == "redis" else None
    a, _ = _proxy(t, manager=manager, redis=redis, backend=backend)
    # The same store: the file manager's directory, or the same Redis.
    extra = {"file": a.config["file"]} if manager == "file" else None
    b_proxy, _ = _proxy(t, manager=manager, redis=redis, backend=backend, extra=extra)
    tab = _login(a)

    async def scenario():
        async with connect(a, "/echo", browser=tab) as ws:
            via_b = Browser(b_proxy, cookie=tab.cookie)
            check_eq(_whoami(via_b)["X-Session-Status"], ["active"], "the session seen through the other instance")
            check_eq(via_b.request("/logout").status, 200, "logout through the other instance")
            code, took = await _closed_within(ws, CLOSE_DEADLINE)
            check_eq(code, 1008, "close code after a logout through another instance (%s)" % manager)
            check(took <= CLOSE_DEADLINE, "closed %.2f s after the other instance's logout" % took)
    run(scenario())


def test_logout_through_another_instance_redis(t): _other_instance_logout(t, "redis")
def test_logout_through_another_instance_file(t): _other_instance_logout(t, "file")


test_logout_through_another_instance_redis.exclusive = True
test_logout_through_another_instance_file.exclusive = True


def _revocation_closes(t, manager):
    """docs/HEADER-PROTOCOL.md, Subjects: a revocation closes the revoked
    sessions' sockets like a logout, and no other."""
    token = "admin-token-0123456789abcdef"
    aport = free_port()
    proxy, _ = _proxy(t, manager=manager, session={"subject_key": "user"},
                      extra={"admin": {"listen": "127.0.0.1:%d" % aport, "token": token}})

    def admin(method, path):
        return client_request(aport, method, path, headers=[("Authorization", "Bearer " + token),
                                                            ("Connection", "close")], timeout=10.0)

    a, b, c = _login(proxy, "ada"), _login(proxy, "ada"), _login(proxy, "ada")
    grace = _login(proxy, "grace")

    async def scenario():
        async with connect(proxy, "/echo", browser=a) as ws_a, connect(proxy, "/echo", browser=b) as ws_b, \
                connect(proxy, "/echo", browser=c) as ws_c, connect(proxy, "/echo", browser=grace) as ws_grace:
            # B logs ada's other sessions out: A's and C's sockets close, B's stays.
            check_eq(b.request("/revoke?scope=others").status, 200, "X-Session-Revoke: others from B")
            for name, ws in (("A", ws_a), ("C", ws_c)):
                code, took = await _closed_within(ws, CLOSE_DEADLINE)
                check_eq(code, 1008, "close code of %s's socket after B's Revoke: others (%s)" % (name, manager))
                check(took <= CLOSE_DEADLINE, "%s's socket closed %.2f s after the revocation" % (name, took))
            for name, ws in (("B", ws_b), ("grace", ws_grace)):
                await ws.send("still here")
                check_eq(await ws.recv(), "still here", "%s's socket after Revoke: others" % name)
            check_eq(_whoami(a)["X-Session-Status"], ["none"], "A's session after the revocation")

            # The admin listener: one session by its public id, then a whole subject.
            b2 = _login(proxy, "ada")
            async with connect(proxy, "/echo", browser=b2) as ws_b2:
                pid = _whoami(b2)["X-Session-Id"][0]
                check_eq(admin("DELETE", "/sessions/" + pid).status, 200, "DELETE /sessions/ID")
                code, took = await _closed_within(ws_b2, CLOSE_DEADLINE)
                check_eq(code, 1008, "close code after DELETE /sessions/ID (%s)" % manager)
                check(took <= CLOSE_DEADLINE, "closed %.2f s after DELETE /sessions/ID" % took)
            check_eq(admin("DELETE", "/sessions?subject=ada").status, 200, "DELETE /sessions?subject=ada")
            code, took = await _closed_within(ws_b, CLOSE_DEADLINE)
            check_eq(code, 1008, "close code of B's socket after DELETE /sessions?subject=ada (%s)" % manager)
            check(took <= CLOSE_DEADLINE, "closed %.2f s after DELETE /sessions?subject=ada" % took)
            await ws_grace.send("untouched")
            check_eq(await ws_grace.recv(), "untouched", "another user's socket after the admin DELETE")
    run(scenario())


def test_revocation_closes_the_revoked_sessions_sockets_memory(t): _revocation_closes(t, "memory")
def test_revocation_closes_the_revoked_sessions_sockets_redis(t): _revocation_closes(t, "redis")


test_revocation_closes_the_revoked_sessions_sockets_memory.exclusive = True
test_revocation_closes_the_revoked_sessions_sockets_redis.exclusive = True


def test_max_sessions_per_subject_closes_the_oldest_sessions_socket(t):
    proxy, _ = _proxy(t, manager="redis", session={"subject_key": "user", "max_sessions_per_subject": 1})
    first = _login(proxy, "ada")

    async def scenario():
        async with connect(proxy, "/echo", browser=first) as ws:
            await asyncio.sleep(1.1)  # creation times are whole seconds: the first is plainly the oldest
            second = _login(proxy, "ada")
            code, took = await _closed_within(ws, CLOSE_DEADLINE)
            check_eq(code, 1008, "close code of the oldest session's socket beyond the limit")
            check(took <= CLOSE_DEADLINE, "closed %.2f s after the new login" % took)
            check_eq(_whoami(second)["X-Session-Status"], ["active"], "the new login")
    run(scenario())


test_max_sessions_per_subject_closes_the_oldest_sessions_socket.exclusive = True


def test_shutdown_sends_going_away(t):
    proxy, _ = _proxy(t)

    async def scenario():
        ws = await connect(proxy, "/echo")
        await ws.send("x")
        await ws.recv()
        proxy.signal(signal.SIGTERM)
        code, _ = await _closed_within(ws, 5 * SLOW)
        check_eq(code, 1001, "close code at shutdown")
    run(scenario())
    check_eq(proxy.wait(10 * SLOW), 0, "exit status after SIGTERM with a WebSocket open")


def test_cross_origin_websocket_is_refused(t):
    proxy, _ = _proxy(t)

    async def scenario():
        try:
            await connect(proxy, "/echo", origin="http://evil.example")
            raise AssertionError("a cross-origin WebSocket was accepted")
        except websockets.exceptions.InvalidStatusCode as e:
            check_eq(e.status_code, 403, "status of a cross-origin handshake")
        async with connect(proxy, "/echo", origin="http://127.0.0.1:%d" % proxy.port) as ws:
            await ws.send("same origin")
            check_eq(await ws.recv(), "same origin", "a same-origin WebSocket")
    run(scenario())


def test_logout_closes_sockets_on_every_worker(t):
    # Sockets of one session spread over 4 workers (SO_REUSEPORT); the logout
    # is handled by one of them, and every worker closes its own.
    proxy, _ = _proxy(t, manager="cookie", extra={"workers": 4})
    b = _login(proxy)

    async def scenario():
        sockets = [await connect(proxy, "/echo", browser=b) for _ in range(12)]
        for ws in sockets:
            await ws.send("up")
            check_eq(await ws.recv(), "up", "echo before logout")
        check_eq(b.request("/logout").status, 200, "logout")
        results = await asyncio.gather(*[_closed_within(ws, CLOSE_DEADLINE) for ws in sockets])
        codes = [code for code, _ in results]
        check_eq(codes, [1008] * len(sockets), "close codes of the session's sockets across workers")
        slowest = max(took for _, took in results)
        check(slowest <= CLOSE_DEADLINE, "the last socket closed %.2f s after logout" % slowest)
    run(scenario())


test_logout_closes_sockets_on_every_worker.exclusive = True
