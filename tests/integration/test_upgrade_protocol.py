"""Protocol upgrades at the byte level (docs/HTTP.md, "Upgrades and WebSockets").

A raw client against the test backend's /upgrade/MODE routes (backend.py): a
101 that names the requested protocol opens a tunnel (bytes both ways,
pipelined bytes included, half-close passed on); every other answer is an
ordinary response and the connection stays HTTP, so bytes the client sent
behind its upgrade request are parsed as the next request, never tunnelled
(the WebSocket-smuggling pattern). Cross-origin handshakes get 403.
"""

import json
import signal
import socket
import time
import urllib.parse

from harness import SLOW, check, check_eq, wait_until
from ws_util import header, read_exactly, read_head, upgrade_request

SECOND = b"GET /echo?second HTTP/1.1\r\nHost: test.local\r\n\r\n"


def _open_tunnel(t, proxy, target="/upgrade/accept", extra=(), early=b""):
    conn = t.connect(proxy.port)
    conn.send(upgrade_request(target, extra=extra) + early)
    status, headers = read_head(conn)
    return conn, status, headers


def test_tunnel_relays_both_ways_with_pipelined_bytes_and_half_close(t):
    proxy = t.sessiond()
    conn, status, headers = _open_tunnel(t, proxy, early=b"early bytes|")
    check_eq(status, 101, "status of the handshake")
    check_eq(header(headers, "Upgrade"), ["websocket"], "Upgrade on the 101")
    check_eq([v.lower() for v in header(headers, "Connection")], ["upgrade"], "Connection on the 101")
    check_eq(header(headers, "Content-Length") + header(headers, "Transfer-Encoding"), [],
             "framing headers on a 101")
    # Sent behind the request, before the 101: it belongs to the new protocol.
    check_eq(read_exactly(conn, 12), b"early bytes|", "pipelined bytes echoed through the tunnel")
    big = bytes(range(256)) * 4096  # 1 MiB
    conn.send(big)
    check_eq(read_exactly(conn, len(big), timeout=20), big, "1 MiB echoed through the tunnel")
    conn.sock.shutdown(socket.SHUT_WR)  # half-close: the backend sees EOF, answers, closes
    check_eq(read_exactly(conn, 4), b"bye\n", "bytes the backend sent after the client's FIN")
    check(conn.wait_closed(5 * SLOW), "the tunnel did not close after both sides sent FIN")
    req = proxy.backend.requests("/upgrade/accept")[-1]
    check_eq(req.header_values("Upgrade"), ["websocket"], "Upgrade at the backend")
    check_eq([v.lower() for v in req.header_values("Connection")], ["upgrade"], "Connection at the backend")
    check_eq(req.header_values("Sec-WebSocket-Key"), ["dGhlIHNhbXBsZSBub25jZQ=="], "Sec-WebSocket-Key")


def test_connection_is_a_token_list_in_any_case(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    conn.send(upgrade_request("/upgrade/accept", connection="keep-alive, UPGRADE"))
    status, _ = read_head(conn)
    check_eq(status, 101, "status with Connection: keep-alive, UPGRADE")
    conn.send(b"ping")
    check_eq(read_exactly(conn, 4), b"ping", "bytes through the tunnel")


def _check_stays_http(t, proxy, target, want_status):
    conn = t.connect(proxy.port)
    # The second request rides behind the upgrade request, as a smuggler would send it.
    conn.send(upgrade_request(target) + SECOND)
    status, headers = read_head(conn)
    check_eq(status, want_status, "status of the answer to the upgrade request")
    length = int((header(headers, "Content-Length") or ["0"])[0])
    read_exactly(conn, length)
    second = conn.read_response("GET", timeout=10)
    check_eq(second.status, 200, "the pipelined request after a non-upgrade (parsed as HTTP)")
    check_eq(second.json()["target"], "/echo?second", "the second request reached the backend as HTTP")
    check(not any(b"GET /echo?second" in r.body for r in proxy.backend.requests()),
          "the second request was carried as a body")
    return conn


def test_upgrade_answered_200_stays_http(t):
    proxy = t.sessiond()
    _check_stays_http(t, proxy, "/upgrade/ok", 200)


def test_bare_101_to_an_upgrade_request_is_502_and_stays_http(t):
    proxy = t.sessiond()
    _check_stays_http(t, proxy, "/upgrade/bare", 502)


def test_101_naming_another_protocol_is_502(t):
    proxy = t.sessiond()
    _check_stays_http(t, proxy, "/upgrade/accept?proto=h2c", 502)


def test_http10_upgrade_is_an_ordinary_request(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    conn.send(b"GET /echo HTTP/1.0\r\nHost: test.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    resp = conn.read_response("GET")
    check_eq(resp.status, 200, "status")
    check_eq(proxy.backend.requests("/echo")[-1].header_values("Upgrade"), [], "Upgrade forwarded for HTTP/1.0")


def test_upgrade_with_a_body_is_an_ordinary_request(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    conn.send(b"POST /echo HTTP/1.1\r\nHost: test.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
              b"Content-Length: 5\r\n\r\nhello")
    resp = conn.read_response("POST")
    check_eq(resp.status, 200, "status")
    check_eq(proxy.backend.requests("/echo")[-1].header_values("Upgrade"), [], "Upgrade forwarded with a body")


def test_cross_origin_handshake_is_refused(t):
    proxy = t.sessiond(overrides={"websocket": {"allowed_origins": ["https://app.example"]}})
    cases = [
        ("http://evil.example", 403),
        ("http://test.local.evil.example", 403),
        ("http://test.local:8080", 403),     # another port of the same host is another origin
        ("null", 403),
        ("http://test.local", 101),          # the request's own host
        ("https://test.local", 101),         # behind a TLS terminator
        ("https://APP.example:443", 101),    # listed (canonical form)
    ]
    for origin, want in cases:
        conn, status, _ = _open_tunnel(t, proxy, extra=[("Origin", origin)])
        check_eq(status, want, "handshake with Origin %s" % origin)
        conn.close()
    refused = [r for r in proxy.backend.requests("/upgrade/accept")
               if r.header_values("Origin")[0] in ("http://evil.example", "null")]
    check_eq(refused, [], "refused handshakes reached the backend")
    conn, status, _ = _open_tunnel(t, proxy, extra=[("Origin", "http://a.example"), ("Origin", "http://a.example")])
    check_eq(status, 403, "two Origin fields")


def test_session_step_runs_on_the_handshake(t):
    proxy = t.sessiond()
    target = "/upgrade/accept?" + urllib.parse.urlencode([("X-Session-Set", json.dumps({"ws": 1}))])
    conn, status, headers = _open_tunnel(t, proxy, target=target, extra=[("X-Session-Data", '{"admin":true}')])
    check_eq(status, 101, "handshake status")
    cookies = header(headers, "Set-Cookie")
    check_eq(len(cookies), 1, "Set-Cookie on the 101 for an X-Session-Set on it (%r)" % cookies)
    check_eq(header(headers, "X-Session-Set"), [], "instructions leaked to the client")
    req = proxy.backend.requests("/upgrade/accept")[-1]
    check_eq(req.header_values("X-Session-Status"), ["none"], "X-Session-Status on the handshake")
    check_eq(req.header_values("X-Session-Data"), ["{}"], "the client's spoofed X-Session-Data was stripped")
    cookie = cookies[0].split(";")[0]
    resp = proxy.request("GET", "/echo", [("Cookie", cookie)])
    data = [v for n, v in resp.json()["headers"] if n == "X-Session-Data"]
    check_eq(data, ['{"ws":1}'], "the session written by the 101")


def test_tunnel_idle_timeout_closes_it(t):
    proxy = t.sessiond(overrides={"timeouts": {"tunnel_idle": "1s", "shutdown": "2s"}})
    conn, status, _ = _open_tunnel(t, proxy)
    check_eq(status, 101, "status")
    conn.send(b"x")
    check_eq(read_exactly(conn, 1), b"x", "echo")
    start = time.monotonic()
    check(conn.wait_closed(6 * SLOW), "an idle tunnel was not closed after timeouts.tunnel_idle")
    check(time.monotonic() - start >= 0.8, "closed too early for a 1 s idle timeout")


def test_tunnel_max_closes_a_busy_tunnel(t):
    proxy = t.sessiond(overrides={"timeouts": {"tunnel_max": "1500ms", "tunnel_idle": "1m"}})
    conn, status, _ = _open_tunnel(t, proxy)
    check_eq(status, 101, "status")
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < 8 * SLOW:
        if not conn.try_send(b"keepalive"):
            closed = True
            break
        if conn.wait_closed(0.2):
            closed = True
            break
        conn.buf.clear()
    check(closed, "a busy tunnel outlived timeouts.tunnel_max")
    check(time.monotonic() - start >= 1.2, "closed before timeouts.tunnel_max")


def test_tunnel_metrics(t):
    admin = "127.0.0.1:%d" % __import__("harness").free_port()
    proxy = t.sessiond(overrides={"admin": {"listen": admin}})
    conn, status, _ = _open_tunnel(t, proxy)
    check_eq(status, 101, "status")
    conn.send(b"12345")
    check_eq(read_exactly(conn, 5), b"12345", "echo")

    def metric(text, name):
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None

    def scrape():
        from client import request
        return request(int(admin.rsplit(":", 1)[1]), "GET", "/metrics").body.decode()

    wait_until(lambda: metric(scrape(), "sessiond_tunnels_active") == 1, 5 * SLOW, "sessiond_tunnels_active 1")
    wait_until(lambda: (metric(scrape(), 'sessiond_tunnel_bytes_total{direction="to_upstream"}') or 0) >= 5,
               5 * SLOW, "bytes to the upstream counted")
    text = scrape()
    check((metric(text, 'sessiond_tunnel_bytes_total{direction="to_client"}') or 0) >= 5, "bytes to the client")
    check_eq(metric(text, "sessiond_tunnels_total"), 1.0, "sessiond_tunnels_total")
    check('sessiond_requests_total{code="101",method="GET"} 1' in text, "the handshake counted as a 101")
    conn.close()
    wait_until(lambda: metric(scrape(), "sessiond_tunnels_active") == 0, 5 * SLOW, "sessiond_tunnels_active 0")
    conn, status, _ = _open_tunnel(t, proxy, extra=[("Origin", "http://evil.example")])
    check_eq(status, 403, "cross-origin")
    check_eq(metric(scrape(), "sessiond_upgrades_refused_total"), 1.0, "sessiond_upgrades_refused_total")


def test_shutdown_ends_a_raw_tunnel_by_the_deadline(t):
    proxy = t.sessiond(overrides={"timeouts": {"shutdown": "1s"}})
    conn, status, _ = _open_tunnel(t, proxy)
    check_eq(status, 101, "status")
    start = time.monotonic()
    proxy.signal(signal.SIGTERM)
    rc = proxy.wait(8 * SLOW)
    check_eq(rc, 0, "exit status after SIGTERM with a tunnel open")
    check(time.monotonic() - start < 6 * SLOW, "shutdown took too long")
    check(conn.wait_closed(2), "the tunnel's client connection is still open")
