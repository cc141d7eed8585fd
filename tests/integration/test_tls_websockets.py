"""WebSockets over TLS (docs/HTTP.md, "Upgrades and WebSockets", "Over TLS"):
wss:// clients (Python `websockets` with the test CA) to sessiond's TLS
listener, and tunnels to a wss:// backend (an https:// upstream), with a real
`websockets` server (ws_backend.py) behind:

- messages of every shape pass unchanged, ping/pong, closes both ways keep
  their codes, over each of the three TLS topologies (client side, upstream
  side, both);
- a raw tunnel over TLS passes pipelined bytes and a half-close (the TLS
  close_notify and FIN) both ways;
- the handshake carries the session (and X-Forwarded-Proto: https), and the
  socket is bound to it: a logout in another tab closes it with 1008 within
  1 s; SIGTERM sends 1001;
- a slow reader holds back the writer through TLS as through TCP: sessiond's
  memory stays bounded while 64 MiB wait;
- the same-origin rule knows the scheme: on the TLS listener the request's
  own origin is https://HOST:PORT; http://HOST:PORT is another origin (403),
  and a trusted X-Forwarded-Proto names the scheme on a plain listener.
"""

import asyncio
import json
import os
import signal
import socket
import ssl
import time

from harness import SLOW, check, check_eq, wait_until
from session_util import Browser, start_proxy
from tls_util import Pki, TlsConnection, client_context, tls_overrides
from ws_util import WsBackend, connect, read_exactly, read_head, run, upgrade_request, websockets

CLOSE_DEADLINE = 1.0 * SLOW  # "within 1 s" (sessiond checks twice a second)

# Which sides speak TLS: (client to sessiond, sessiond to the backend).
TOPOLOGIES = {"listener": (True, False), "upstream": (False, True), "both": (True, True)}


class TlsProxy:
    """A Sessiond seen through TLS: what session_util.Browser needs (connect,
    request) over TlsConnection, verified against the test CA."""

    def __init__(self, proxy, ca):
        self.proxy = proxy
        self.port = proxy.port
        self.ctx = client_context(ca=ca)

    def connect(self, timeout=10.0):
        return TlsConnection(self.port, self.ctx, timeout=timeout)

    def request(self, method="GET", target="/", headers=None, body=None, timeout=10.0, **kw):
        with self.connect(timeout) as c:
            return c.request(method, target, headers, body, timeout=timeout, **kw)


class Setup:
    """sessiond between a wss-speaking client and ws_backend.py, TLS on the
    sides `topology` names; .ssl is the client's context (None: plain ws://)."""

    def __init__(self, t, topology="listener", manager="cookie", extra=None, session=None):
        client_tls, upstream_tls = TOPOLOGIES[topology]
        self.pki = Pki(t.tmpdir)
        self.backend = WsBackend(t, tls=self.pki.issue("backend") if upstream_tls else None)
        overrides = {}
        if client_tls:
            overrides.update(tls_overrides(*self.pki.issue("server")))
        if upstream_tls:
            overrides["upstream_tls"] = {"ca_file": self.pki.ca_cert}
        overrides.update(extra or {})
        session = dict(session or {})
        if not client_tls:
            session["session_cookie_secure"] = False
        self.proxy = start_proxy(t, manager, session=session, extra=overrides, upstream=self.backend.url)
        self.ssl = client_context(ca=self.pki.ca_cert) if client_tls else None
        self.http = TlsProxy(self.proxy, self.pki.ca_cert) if client_tls else self.proxy
        check(self.backend.url.startswith("https://" if upstream_tls else "http://"), "backend %s" % self.backend.url)

    def connect(self, path, **kw):
        return connect(self.proxy, path, ssl=self.ssl, **kw)

    def login(self, user="ada"):
        b = Browser(self.http)
        check_eq(b.request("/login?user=%s" % user).status, 200, "login status")
        check(b.cookie, "no session cookie after login")
        return b


async def _closed_within(ws, deadline):
    start = time.monotonic()
    try:
        while True:
            await asyncio.wait_for(ws.recv(), deadline + 2)
    except websockets.ConnectionClosed as e:
        return e.code, time.monotonic() - start
    except asyncio.TimeoutError:
        return None, time.monotonic() - start


# ---------------------------------------------------------------------------
# Messages and closes

def _messages(t, topology):
    s = Setup(t, topology)

    async def scenario():
        async with s.connect("/echo") as ws:
            await ws.send("hello, ünïcode")
            check_eq(await ws.recv(), "hello, ünïcode", "text message")
            blob = os.urandom(4 << 20)
            await ws.send(blob)
            check_eq(await ws.recv(), blob, "4 MiB binary message")
            await ws.send(["frag", "mented ", "message"])  # one message in three frames
            check_eq(await ws.recv(), "fragmented message", "fragmented message")
            await ws.send([b"\x00" * 70000, b"\x01" * 3, b"\x02" * 20000])  # frames across TLS records
            check_eq(await ws.recv(), b"\x00" * 70000 + b"\x01" * 3 + b"\x02" * 20000, "fragmented binary")
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 5 * SLOW)
            for i in range(200):
                await ws.send("m%d" % i)
            got = [await ws.recv() for _ in range(200)]
            check_eq(got, ["m%d" % i for i in range(200)], "200 messages in order")
    run(scenario(), timeout=60)


def test_wss_listener_messages_pass_unchanged(t): _messages(t, "listener")
def test_wss_upstream_messages_pass_unchanged(t): _messages(t, "upstream")
def test_wss_both_sides_messages_pass_unchanged(t): _messages(t, "both")


def _closes(t, topology):
    s = Setup(t, topology)

    async def scenario():
        ws = await s.connect("/close/4001")
        try:
            await ws.recv()
            raise AssertionError("the backend's close did not arrive")
        except websockets.ConnectionClosed as e:
            check_eq(e.code, 4001, "close code from the backend")
            check_eq(e.reason, "backend closes", "close reason from the backend")
        ws = await s.connect("/echo")
        await ws.send("x")
        check_eq(await ws.recv(), "x", "echo before the client closes")
        await ws.close(code=4002, reason="client done")
        check_eq(ws.close_code, 4002, "the backend's answer to the client's close")
    run(scenario())


def test_wss_listener_closes_keep_their_codes(t): _closes(t, "listener")
def test_wss_upstream_closes_keep_their_codes(t): _closes(t, "upstream")
def test_wss_both_sides_closes_keep_their_codes(t): _closes(t, "both")


# ---------------------------------------------------------------------------
# A raw tunnel over TLS: pipelined bytes, half-close with close_notify

def _tls_backend_ctx(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*pki.issue("backend"))
    return ctx


def test_raw_tunnel_over_tls_both_sides_pipelined_bytes_and_half_close(t):
    """backend.py's /upgrade/accept echoes and answers "bye" after the
    client's end; over TLS the end is close_notify then FIN, passed on as the
    same to the other side (docs/HTTP.md, Upgrades and WebSockets: Over TLS)."""
    from backend import Backend
    pki = Pki(t.tmpdir)
    backend = Backend(tls=_tls_backend_ctx(pki))
    t.backends.append(backend)
    overrides = tls_overrides(*pki.issue("server"))
    overrides["upstream_tls"] = {"ca_file": pki.ca_cert}
    proxy = t.sessiond(upstream=backend, overrides=overrides)
    # A memory-BIO TLS client, so the test sends close_notify and FIN itself
    # without waiting for the server's close_notify (ssl.SSLSocket.unwrap would).
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=10 * SLOW)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context(ca=pki.ca_cert).wrap_bio(incoming, outgoing, server_hostname="localhost")
    received = bytearray()
    peer_closed = [False]

    def pump(want_eof=False, until=None, timeout=10.0):
        """Moves TLS bytes both ways until `until()` or, with want_eof, the server's close_notify."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            if outgoing.pending:
                raw.sendall(outgoing.read())
            while True:
                try:
                    data = tls.read(65536)
                except (ssl.SSLWantReadError, ssl.SSLZeroReturnError) as e:
                    if isinstance(e, ssl.SSLZeroReturnError):
                        peer_closed[0] = True
                    break
                if not data:
                    peer_closed[0] = True
                    break
                received.extend(data)
            if until is not None and until():
                return
            if want_eof and peer_closed[0]:
                return
            check(time.monotonic() < deadline, "timed out; got %r" % bytes(received[-200:]))
            raw.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = raw.recv(65536)
            if not chunk:
                incoming.write_eof()
                peer_closed[0] = True
                if until is None or until():
                    return
                raise AssertionError("TCP closed early; got %r" % bytes(received[-200:]))
            incoming.write(chunk)

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            if outgoing.pending:
                raw.sendall(outgoing.read())
            incoming.write(raw.recv(65536))
    tls.write(upgrade_request("/upgrade/accept") + b"early bytes|")
    pump(until=lambda: b"\r\n\r\n" in received)
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 101 "), "handshake answer %r" % head[:200])
    del received[:len(head) + 4]
    pump(until=lambda: len(received) >= 12)
    check_eq(bytes(received[:12]), b"early bytes|", "pipelined bytes echoed through the tunnel")
    del received[:12]
    big = os.urandom(1 << 20)
    tls.write(big)
    pump(until=lambda: len(received) >= len(big), timeout=20)
    check_eq(bytes(received[:len(big)]) == big, True, "1 MiB echoed through the tunnel over TLS")
    del received[:len(big)]
    # Half-close: close_notify, then FIN; the tunnel must still carry the reply.
    try:
        tls.unwrap()
    except ssl.SSLWantReadError:
        pass
    raw.sendall(outgoing.read())
    raw.shutdown(socket.SHUT_WR)
    pump(want_eof=True)
    check_eq(bytes(received), b"bye\n", "bytes the backend sent after the client's close_notify")
    check(peer_closed[0], "sessiond did not end its side after the backend's end")
    raw.close()
    check_eq(backend.tls_errors, [], "TLS errors at the backend")


# ---------------------------------------------------------------------------
# The session

def test_wss_handshake_carries_the_session_and_https(t):
    s = Setup(t, "both", manager="memory")
    b = s.login()

    async def scenario():
        async with s.connect("/echo", browser=b, headers=[("X-Session-Data", '{"user":"mallory"}')]) as ws:
            await ws.send("whoami")
            seen = json.loads(await ws.recv())
            check_eq(seen["X-Session-Status"], ["active"], "X-Session-Status on the handshake")
            check_eq(seen["X-Session-Data"], ['{"user":"ada"}'], "X-Session-Data on the handshake")
            check_eq(seen["Cookie"], [], "the session cookie reached the backend")
            check_eq(seen["X-Forwarded-Proto"], ["https"], "X-Forwarded-Proto of a wss:// handshake")
    run(scenario())


def _logout_closes_other_tab(t, topology, manager):
    s = Setup(t, topology, manager=manager)
    tab1 = s.login()
    tab2 = Browser(s.http, cookie=tab1.cookie)  # the same session in another tab
    other = s.login("grace")

    async def scenario():
        async with s.connect("/echo", browser=tab2) as ws, s.connect("/echo", browser=other) as ws_other:
            await ws.send("up")
            check_eq(await ws.recv(), "up", "echo before logout")
            check_eq(tab1.request("/logout").status, 200, "logout")
            code, took = await _closed_within(ws, CLOSE_DEADLINE)
            check_eq(code, 1008, "close code after logout in another tab (%s, %s)" % (topology, manager))
            check(took <= CLOSE_DEADLINE, "closed %.2f s after logout, want within %.1f s" % (took, CLOSE_DEADLINE))
            await ws_other.send("still here")
            check_eq(await ws_other.recv(), "still here", "another session's socket after the logout")
    run(scenario())


def test_wss_logout_closes_other_tab_cookie(t): _logout_closes_other_tab(t, "listener", "cookie")
def test_wss_logout_closes_other_tab_memory_both_sides(t): _logout_closes_other_tab(t, "both", "memory")


test_wss_logout_closes_other_tab_cookie.exclusive = True
test_wss_logout_closes_other_tab_memory_both_sides.exclusive = True


def test_wss_shutdown_sends_going_away(t):
    s = Setup(t, "both")

    async def scenario():
        ws = await s.connect("/echo")
        await ws.send("x")
        await ws.recv()
        s.proxy.signal(signal.SIGTERM)
        code, _ = await _closed_within(ws, 5 * SLOW)
        check_eq(code, 1001, "close code at shutdown over TLS")
    run(scenario())
    check_eq(s.proxy.wait(10 * SLOW), 0, "exit status after SIGTERM with a wss:// socket open")


# ---------------------------------------------------------------------------
# Backpressure through TLS

def _slow_reader(t, topology):
    s = Setup(t, topology)
    total = 64 << 20

    async def scenario():
        async with s.connect("/flood/%d" % total, max_queue=1, read_limit=1 << 16) as ws:
            await asyncio.sleep(0.5)
            base = s.proxy.vm_kb("VmRSS")
            peak = base
            for _ in range(20):  # 2 s of not reading while the backend pushes 64 MiB
                await asyncio.sleep(0.1)
                peak = max(peak, s.proxy.vm_kb("VmRSS"))
            check(peak - base < 8 * 1024, "sessiond grew by %d KiB while a wss reader stalled" % (peak - base))
            got = 0
            while True:
                msg = await ws.recv()
                if msg == "done":
                    break
                got += len(msg)
            check_eq(got, total, "bytes received once the reader read")
    run(scenario(), timeout=180)


def test_wss_slow_reader_keeps_memory_bounded_listener(t): _slow_reader(t, "listener")
def test_wss_slow_reader_keeps_memory_bounded_both_sides(t): _slow_reader(t, "both")


test_wss_slow_reader_keeps_memory_bounded_listener.exclusive = True
test_wss_slow_reader_keeps_memory_bounded_both_sides.exclusive = True


# ---------------------------------------------------------------------------
# Origins and the scheme

async def _status_for_origin(s, origin):
    """101 or the refusal's status for a handshake with this Origin."""
    try:
        async with s.connect("/echo", origin=origin) as ws:
            await ws.send("same origin")
            check_eq(await ws.recv(), "same origin", "echo with Origin %s" % origin)
            return 101
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code


def test_wss_cross_origin_and_the_https_scheme(t):
    s = Setup(t, "listener")
    port = s.proxy.port

    async def scenario():
        got = {}
        for origin in ("https://127.0.0.1:%d" % port, "HTTPS://127.0.0.1:%d" % port,
                       "http://127.0.0.1:%d" % port, "https://evil.example", "https://127.0.0.1",
                       "https://localhost:%d" % port):
            got[origin] = await _status_for_origin(s, origin)
        check_eq(got, {"https://127.0.0.1:%d" % port: 101, "HTTPS://127.0.0.1:%d" % port: 101,
                       "http://127.0.0.1:%d" % port: 403, "https://evil.example": 403,
                       "https://127.0.0.1": 403, "https://localhost:%d" % port: 403},
                 "handshake status by Origin on the TLS listener (Host 127.0.0.1:%d)" % port)
    run(scenario())


def test_wss_allowed_origins_still_apply_on_tls(t):
    s = Setup(t, "listener", extra={"websocket": {"allowed_origins": ["https://app.example"]}})

    async def scenario():
        return [await _status_for_origin(s, o) for o in ("https://app.example", "http://app.example")]
    check_eq(run(scenario()), [101, 403], "statuses for a listed origin and the same host over http")


def test_trusted_x_forwarded_proto_names_the_scheme_on_a_plain_listener(t):
    """Behind a TLS terminator sessiond trusts, the browser's origin is
    https://HOST; from a peer it does not trust the scheme is unknown and
    either one is accepted (docs/HTTP.md, Upgrades and WebSockets)."""
    trusted = Setup(t, "upstream", extra={"trusted_proxies": ["127.0.0.1"]})
    untrusted = Setup(t, "upstream")

    async def scenario(s, proto):
        out = []
        host = "127.0.0.1:%d" % s.proxy.port
        for origin in ("https://%s" % host, "http://%s" % host):
            headers = [("X-Forwarded-Proto", proto)] if proto else []
            out.append(await _status_for_origin_with(s, origin, headers))
        return out
    check_eq(run(scenario(trusted, "https")), [101, 403], "trusted X-Forwarded-Proto: https (https, http origins)")
    check_eq(run(scenario(trusted, "http")), [403, 101], "trusted X-Forwarded-Proto: http (https, http origins)")
    check_eq(run(scenario(trusted, None)), [101, 101], "trusted peer without X-Forwarded-Proto")
    check_eq(run(scenario(untrusted, "https")), [101, 101], "untrusted peer (its X-Forwarded-Proto ignored)")


async def _status_for_origin_with(s, origin, headers):
    try:
        async with s.connect("/echo", origin=origin, headers=headers) as ws:
            await ws.send("x")
            await ws.recv()
            return 101
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code


def test_plain_http_upgrade_on_the_tls_port_is_refused(t):
    """A ws:// client on the wss:// port gets the plain-HTTP 400 and no tunnel."""
    s = Setup(t, "listener")
    conn = t.connect(s.proxy.port)
    conn.send(upgrade_request("/echo", host="127.0.0.1:%d" % s.proxy.port))
    status, _ = read_head(conn)
    check_eq(status, 400, "a plain upgrade request on the TLS port")
    check(conn.wait_closed(5 * SLOW), "the connection stays open after the 400")


# ---------------------------------------------------------------------------
# A client that vanishes after the handshake

def test_a_reset_after_the_handshake_is_not_a_failed_handshake(t):
    """A wss:// client (or an https one between requests) that resets its
    connection once TLS is up has not failed a handshake: nothing is counted
    in sessiond_tls_handshake_failures_total or logged as one, and the
    tunnel's upstream is closed."""
    import struct
    from test_ops_support import admin_overrides, scrape
    overrides, admin = admin_overrides()
    s = Setup(t, "listener", extra=overrides)
    ctx = client_context(ca=s.pki.ca_cert)
    host = "127.0.0.1:%d" % s.proxy.port

    def reset(conn):
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    for _ in range(3):
        with TlsConnection(s.proxy.port, ctx) as c:
            c.send(upgrade_request("/echo", host=host))
            status, _ = read_head(c)
            check_eq(status, 101, "wss handshake")
            c.send(b"\x81\x85\x00\x00\x00\x00hello")  # a masked text frame
            check_eq(read_exactly(c, 7), b"\x81\x05hello", "echo through the tunnel")
            reset(c)
        c = TlsConnection(s.proxy.port, ctx)
        check_eq(c.request("GET", "/whoami").status, 200, "an https request")
        reset(c)
    wait_until(lambda: scrape(admin).total("sessiond_tunnels_active") == 0, 5 * SLOW, "the reset tunnels to end")
    m = scrape(admin)
    check_eq(m.total("sessiond_tls_handshakes_total"), 6, "completed handshakes")
    check_eq(m.total("sessiond_tls_handshake_failures_total"), 0, "handshakes counted as failed after resets")
    check("TLS handshake failed" not in s.proxy.stderr_text(),
          "a reset after the handshake was logged as a failed handshake:\n%s" % s.proxy.stderr_text()[-1500:])
