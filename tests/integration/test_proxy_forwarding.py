"""Proxy core: what sessiond forwards and how it uses connections (docs/HTTP.md, Hop-by-hop and
forwarding headers; docs/HTTP.md, Keep-alive and pipelining; docs/HTTP.md, Upstream pool)."""

import urllib.parse

from client import build_request
from harness import check, check_eq, echo_headers
from recording import pattern, pattern_sha256

def _connection_tokens(values):
    return {tok.strip().lower() for v in values for tok in v.split(",") if tok.strip()}


def test_get_reaches_backend_with_host_passed_through(t):
    proxy = t.sessiond()
    resp = proxy.request("GET", "/echo?a=1&b=two", [("Host", "app.example.test:8443"), ("X-Custom", "v 1")])
    check_eq(resp.status, 200, "status")
    doc = resp.json()
    check_eq(doc["method"], "GET", "method at the backend")
    check_eq(doc["target"], "/echo?a=1&b=two", "request target at the backend")
    check_eq(echo_headers(resp, "Host"), ["app.example.test:8443"], "Host at the backend")
    check_eq(echo_headers(resp, "X-Custom"), ["v 1"], "an ordinary header at the backend")
    check_eq(len(proxy.backend.requests("/echo")), 1, "requests the backend saw")


def test_post_body_reaches_backend(t):
    proxy = t.sessiond()
    body = pattern(10000)
    resp = proxy.request("POST", "/echo", [("Content-Type", "application/octet-stream")], body)
    check_eq(resp.status, 200, "status")
    doc = resp.json()
    check_eq(doc["method"], "POST", "method at the backend")
    check_eq(doc["body_sha256"], pattern_sha256(10000), "body sha256 at the backend")
    check_eq(echo_headers(resp, "Content-Type"), ["application/octet-stream"], "Content-Type at the backend")


def test_x_forwarded_for_from_an_untrusted_peer_is_replaced(t):
    # No trusted_proxies: a client's X-Forwarded-For is a claim anyone can
    # make (docs/HTTP.md, Forwarding and trusted proxies); the backend gets
    # only the peer's address.
    proxy = t.sessiond()
    resp = proxy.request("GET", "/echo", [("X-Forwarded-For", "1.2.3.4")])
    check_eq(resp.status, 200, "status")
    check_eq(echo_headers(resp, "X-Forwarded-For"), ["127.0.0.1"], "X-Forwarded-For")


def test_x_forwarded_for_set_when_client_sends_none(t):
    proxy = t.sessiond()
    resp = proxy.request("GET", "/echo")
    check_eq(echo_headers(resp, "X-Forwarded-For"), ["127.0.0.1"], "X-Forwarded-For")


def test_x_forwarded_proto_and_host_set(t):
    proxy = t.sessiond()
    resp = proxy.request("GET", "/echo", [("Host", "shop.example:8080")])
    check_eq(echo_headers(resp, "X-Forwarded-Proto"), ["http"], "X-Forwarded-Proto")
    check_eq(echo_headers(resp, "X-Forwarded-Host"), ["shop.example:8080"], "X-Forwarded-Host")


def test_x_forwarded_proto_and_host_replace_client_values(t):
    proxy = t.sessiond()
    resp = proxy.request("GET", "/echo", [("Host", "shop.example"), ("X-Forwarded-Proto", "https"),
                                          ("X-Forwarded-Host", "evil.example")])
    check_eq(echo_headers(resp, "X-Forwarded-Proto"), ["http"], "X-Forwarded-Proto (client sent https)")
    check_eq(echo_headers(resp, "X-Forwarded-Host"), ["shop.example"],
             "X-Forwarded-Host (client sent evil.example)")


def test_request_hop_by_hop_headers_removed(t):
    proxy = t.sessiond()
    resp = proxy.request("GET", "/echo", [
        ("Connection", "keep-alive, X-Hop-Custom"),
        ("X-Hop-Custom", "must-not-pass"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("Upgrade", "h2c"),
        ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
        ("Proxy-Foo", "bar"),
        ("Proxy-Connection", "keep-alive"),
        ("X-End-To-End", "kept"),
    ])
    check_eq(resp.status, 200, "status")
    names = [n.lower() for n, _ in resp.json()["headers"]]
    for bad in ("x-hop-custom", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization",
                "proxy-foo", "proxy-connection"):
        check(bad not in names, "hop-by-hop request header %s reached the backend: %r" % (bad, names))
    check("x-hop-custom" not in _connection_tokens(echo_headers(resp, "Connection")),
          "the client's Connection header reached the backend: %r" % echo_headers(resp, "Connection"))
    check_eq(echo_headers(resp, "X-End-To-End"), ["kept"], "end-to-end header")


def test_response_hop_by_hop_headers_removed(t):
    proxy = t.sessiond()
    query = urllib.parse.urlencode([
        ("Connection", "X-Resp-Hop"), ("X-Resp-Hop", "must-not-pass"), ("Keep-Alive", "timeout=5"),
        ("Trailer", "X-Checksum"), ("Upgrade", "h2c"), ("Proxy-Authenticate", "Basic realm=x"),
        ("Proxy-Foo", "bar"), ("X-End-To-End", "kept")])
    resp = proxy.request("GET", "/set-headers?" + query)
    check_eq(resp.status, 200, "status")
    names = [n.lower() for n, _ in resp.headers]
    for bad in ("x-resp-hop", "keep-alive", "trailer", "upgrade", "proxy-authenticate", "proxy-foo"):
        check(bad not in names, "hop-by-hop response header %s reached the client: %r" % (bad, resp.headers))
    check(_connection_tokens(resp.header_values("Connection")) <= {"keep-alive", "close"},
          "the upstream's Connection header reached the client: %r" % resp.header_values("Connection"))
    check_eq(resp.header_values("X-End-To-End"), ["kept"], "end-to-end response header")
    check_eq(resp.body, b"ok\n", "body")


def test_upstream_connection_close_does_not_close_client_connection(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    resp = conn.request("GET", "/set-headers?Connection=close&X-Marker=1")
    check_eq(resp.status, 200, "status")
    check("close" not in _connection_tokens(resp.header_values("Connection")),
          "upstream's Connection: close was passed to the client")
    resp = conn.request("GET", "/echo?second")
    check_eq(resp.status, 200, "second request on the same client connection")
    check_eq(resp.json()["target"], "/echo?second", "second request target")


def test_client_keepalive_serves_several_requests_on_one_connection(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    for i in range(5):
        resp = conn.request("GET", "/echo?n=%d" % i)
        check_eq(resp.status, 200, "status of request %d" % i)
        check_eq(resp.json()["target"], "/echo?n=%d" % i, "target of request %d" % i)
    check(conn.is_open(), "the client connection closed after 5 keep-alive requests")
    check_eq(len(proxy.backend.requests("/echo")), 5, "requests the backend saw")


def test_pipelined_requests_answered_in_order(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    body = pattern(30000)
    conn.send(build_request("GET", "/echo?n=1")
              + build_request("POST", "/echo?n=2", body=body)
              + build_request("GET", "/bytes/200000"))
    r1, r2, r3 = conn.read_responses(["GET", "POST", "GET"])
    check_eq((r1.status, r2.status, r3.status), (200, 200, 200), "statuses")
    check_eq(r1.json()["target"], "/echo?n=1", "first response answers the first request")
    check_eq(r2.json()["target"], "/echo?n=2", "second response answers the second request")
    check_eq(r2.json()["body_sha256"], pattern_sha256(30000), "second request's body at the backend")
    check_eq((r3.body_length, r3.body_sha256), (200000, pattern_sha256(200000)), "third response body")
    check(conn.is_open(), "connection closed after pipelined requests")


def test_upstream_connections_are_pooled(t):
    proxy = t.sessiond()
    for i in range(20):
        check_eq(proxy.request("GET", "/echo?fresh=%d" % i).status, 200, "status")
    conn = t.connect(proxy.port)
    for i in range(20):
        check_eq(conn.request("GET", "/echo?same=%d" % i).status, 200, "status")
    upstream = proxy.backend.connections_accepted()
    check(upstream <= 4, "40 sequential requests used %d upstream connections (want <= 4: pooling)" % upstream)


def test_head_response_has_no_body_and_connection_stays_usable(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    resp = conn.request("HEAD", "/bytes/5000")
    check_eq(resp.status, 200, "HEAD status")
    check(resp.header("Content-Length") in (None, "5000"),
          "HEAD Content-Length %r, want 5000 or none" % resp.header("Content-Length"))
    resp = conn.request("GET", "/echo?after-head")
    check_eq(resp.status, 200, "GET after HEAD")
    check_eq(resp.json()["target"], "/echo?after-head", "GET after HEAD target (stray HEAD body bytes?)")
    check_eq(proxy.backend.requests("/bytes/5000")[0].method, "HEAD", "method at the backend")


def test_204_and_304_have_no_body(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    for status in (204, 304):
        resp = conn.request("GET", "/status/%d" % status)
        check_eq(resp.status, status, "status")
        check(not resp.header_values("Transfer-Encoding"), "%d with Transfer-Encoding" % status)
    resp = conn.request("GET", "/echo?after")
    check_eq(resp.json()["target"], "/echo?after", "request after 204/304 (stray body bytes?)")
    check_eq(conn.read_available(0.1), b"", "bytes after the last response")


def test_expect_100_continue_body_gets_through(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    body = pattern(20000)
    conn.send(build_request("POST", "/echo", [("Expect", "100-continue"), ("Content-Length", str(len(body)))]))
    conn.wait_data(1.0)  # a client waits a moment for 100 Continue, then sends anyway
    conn.send(body)
    resp = conn.read_response("POST")
    check_eq(resp.status, 200, "final status")
    check(all(r.status == 100 for r in resp.interim), "interim responses %r" % resp.interim)
    check_eq(resp.json()["body_sha256"], pattern_sha256(20000), "body at the backend")
    check(conn.is_open(), "connection closed after an Expect: 100-continue request")


def test_http10_client_without_keepalive_gets_connection_closed(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    conn.send(b"GET /echo?old HTTP/1.0\r\nHost: test.local\r\n\r\n")
    resp = conn.read_response()
    check_eq(resp.status, 200, "status")
    check_eq(resp.json()["target"], "/echo?old", "target")
    check(conn.wait_closed(2.0), "HTTP/1.0 connection without keep-alive still open 2s after the response")


def test_client_connection_close_is_honoured(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    resp = conn.request("GET", "/echo", [("Connection", "close")])
    check_eq(resp.status, 200, "status")
    check(conn.wait_closed(2.0), "connection still open 2s after a Connection: close request")
