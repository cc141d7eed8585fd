"""TLS on the listener (docs/HTTP.md, TLS; docs/CONFIGURATION.md, tls), with real
clients: openssl s_client for versions, ALPN, resumption and client certificates,
curl for a session over HTTPS, Python's ssl for load and hostile handshakes."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

from harness import check, check_eq, echo_headers, wait_until
from test_ops_support import admin_overrides, scrape, set_headers_target
from tls_util import (Pki, TlsConnection, client_context, client_hello, peer_common_name, read_response,
                      s_client, tls_connect, tls_overrides)


def _tls_sessiond(t, pki=None, name="server", **tls_extra):
    pki = pki or Pki(t.tmpdir)
    cert, key = pki.issue(name)
    overrides, admin = admin_overrides(tls_overrides(cert, key, **tls_extra))
    proxy = t.sessiond(overrides=overrides)
    return proxy, admin, pki


def _failures(admin, reason):
    return scrape(admin).value("sessiond_tls_handshake_failures_total", reason=reason)


def _handshakes(admin, resumed):
    return scrape(admin).value("sessiond_tls_handshakes_total", resumed="true" if resumed else "false")


def _check_settles(count, want, what, timeout=5):
    """A worker counts a handshake when it reads the client's last flight, which
    can be after the client has closed (a resumed TLS 1.2 or any TLS 1.3
    handshake ends with the client's Finished): wait for the count to reach
    want, then check it is exactly want (an overcount still fails)."""
    wait_until(lambda: count() >= want, timeout, "%s to reach %d (at %s)" % (what, want, count()))
    check_eq(count(), want, what)


def _get_over_tls(proxy, pki, target="/echo", headers=None):
    with TlsConnection(proxy.port, client_context(ca=pki.ca_cert)) as c:
        return c.request("GET", target, headers=headers)


def test_tls_12_and_13_accepted_10_and_11_refused(t):
    proxy, admin, pki = _tls_sessiond(t)
    for flag, name in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        rc, out = s_client(proxy.port, flag, "-CAfile", pki.ca_cert,
                           stdin=b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        check("Protocol  : %s" % name in out or "New, %s" % name in out, "%s not negotiated:\n%s" % (name, out[-1500:]))
        check("Verify return code: 0 (ok)" in out, "certificate not verified with %s:\n%s" % (name, out[-1500:]))
        check("HTTP/1.1 200 OK" in out, "no response over %s:\n%s" % (name, out[-1500:]))
    before = _failures(admin, "protocol")
    # The client must be allowed to try the old versions (security level 0),
    # so that the refusal seen is the server's.
    for flag in ("-tls1", "-tls1_1"):
        rc, out = s_client(proxy.port, flag, "-cipher", "DEFAULT@SECLEVEL=0")
        check(rc != 0 and "HTTP/1.1" not in out, "%s was accepted:\n%s" % (flag, out[-1500:]))
        check("protocol version" in out or "unsupported protocol" in out,
              "%s: no protocol-version refusal:\n%s" % (flag, out[-1500:]))
    wait_until(lambda: _failures(admin, "protocol") - before == 2, 5, "two protocol failures counted")
    check("TLS handshake failed (unsupported protocol)" in proxy.stderr_text(),
          "the refusal is not logged:\n%s" % proxy.stderr_text()[-2000:])


def test_tls_min_version_13_refuses_12(t):
    proxy, admin, pki = _tls_sessiond(t, min_version="1.3")
    rc, out = s_client(proxy.port, "-tls1_2", "-CAfile", pki.ca_cert)
    check(rc != 0 and "protocol version" in out, "TLS 1.2 accepted with min_version 1.3:\n%s" % out[-1500:])
    rc, out = s_client(proxy.port, "-tls1_3", "-CAfile", pki.ca_cert, stdin=b"GET /echo HTTP/1.0\r\n\r\n")
    check("HTTP/1.1 200 OK" in out, "TLS 1.3 refused with min_version 1.3:\n%s" % out[-1500:])
    _check_settles(lambda: _failures(admin, "protocol"), 1, "protocol failures")


def test_tls_alpn_offers_only_http11(t):
    proxy, admin, pki = _tls_sessiond(t)
    rc, out = s_client(proxy.port, "-alpn", "h2,http/1.1", "-CAfile", pki.ca_cert)
    check("ALPN protocol: http/1.1" in out, "http/1.1 not selected:\n%s" % out[-1500:])
    rc, out = s_client(proxy.port, "-alpn", "h2", "-CAfile", pki.ca_cert)
    check(rc != 0 and "no application protocol" in out, "an h2-only client was not refused:\n%s" % out[-1500:])
    # No ALPN at all is fine (HTTP/1.1 is assumed).
    rc, out = s_client(proxy.port, "-CAfile", pki.ca_cert, stdin=b"GET /echo HTTP/1.0\r\n\r\n")
    check("HTTP/1.1 200 OK" in out, "a client without ALPN was refused:\n%s" % out[-1500:])


def test_tls_session_resumption_with_tickets(t):
    proxy, admin, pki = _tls_sessiond(t)
    for flag in ("-tls1_2", "-tls1_3"):
        sess = os.path.join(t.tmpdir, "session%s" % flag)
        rc, out = s_client(proxy.port, flag, "-CAfile", pki.ca_cert, "-sess_out", sess)
        check("\nNew, " in out, "first handshake not new:\n%s" % out[-1500:])
        rc, out = s_client(proxy.port, flag, "-CAfile", pki.ca_cert, "-sess_in", sess,
                           stdin=b"GET /echo HTTP/1.0\r\n\r\n")
        check("\nReused, " in out, "%s session not resumed:\n%s" % (flag, out[-1500:]))
        check("HTTP/1.1 200 OK" in out, "no response on the resumed session:\n%s" % out[-1500:])
    _check_settles(lambda: _handshakes(admin, resumed=True), 2, "resumed handshakes")
    _check_settles(lambda: _handshakes(admin, resumed=False), 2, "full handshakes")


def test_tls_tickets_are_shared_by_workers(t):
    """One ticket-key set per process: a ticket from one worker resumes on any."""
    pki = Pki(t.tmpdir)
    cert, key = pki.issue("server")
    overrides, admin = admin_overrides(tls_overrides(cert, key))
    overrides["workers"] = 4
    proxy = t.sessiond(overrides=overrides)
    ctx = client_context(ca=pki.ca_cert, max_version=ssl.TLSVersion.TLSv1_2)
    first = tls_connect(proxy.port, ctx)
    session = first.session
    first.close()
    # SO_REUSEPORT spreads new connections over the workers' sockets: twenty
    # connections reach more than one of four workers (all twenty landing on
    # the first one's worker has a chance of 4^-19).
    for _ in range(20):
        s = tls_connect(proxy.port, ctx, session=session)
        check(s.session_reused, "a ticket issued by one worker was not accepted")
        s.close()
    _check_settles(lambda: _handshakes(admin, resumed=True), 20, "resumed handshakes")
    # TLS 1.3 tickets are used once: every resumed session hands out a new
    # one, so a client resumes connection after connection.
    ctx13 = client_context(ca=pki.ca_cert, min_version=ssl.TLSVersion.TLSv1_3)
    session = None
    for i in range(6):
        with TlsConnection(proxy.port, ctx13, session=session) as c:
            check_eq(c.sock.session_reused, i > 0, "TLS 1.3 connection %d resumed" % i)
            check_eq(c.request("GET", "/echo").status, 200, "status")  # the ticket comes with the reply
            session = c.sock.session
    _check_settles(lambda: _handshakes(admin, resumed=True), 25, "resumed handshakes")


def test_tls_mutual_client_certificates(t):
    server_pki = Pki(t.tmpdir, "server-ca")
    client_pki = Pki(t.tmpdir, "client-ca")
    other_pki = Pki(t.tmpdir, "other-ca")
    proxy, admin, _ = _tls_sessiond(t, pki=server_pki, client_ca=client_pki.ca_cert)
    good_cert, good_key = client_pki.issue("alice")
    bad_cert, bad_key = other_pki.issue("mallory")
    url = "https://localhost:%d/echo" % proxy.port
    ok = subprocess.run(["curl", "-sS", "--cacert", server_pki.ca_cert, "--cert", good_cert, "--key", good_key, url],
                        capture_output=True, timeout=15)
    check_eq(ok.returncode, 0, "curl with a client certificate (stderr %r)" % ok.stderr[-500:])
    check_eq(json.loads(ok.stdout)["method"], "GET", "the request reached the backend")
    for args, what in (([], "no client certificate"), (["--cert", bad_cert, "--key", bad_key], "an unknown CA")):
        p = subprocess.run(["curl", "-sS", "--cacert", server_pki.ca_cert] + args + [url],
                           capture_output=True, timeout=15)
        check(p.returncode != 0 and b'"method"' not in p.stdout, "%s was let through: %r" % (what, p.stdout[:300]))
    rc, out = s_client(proxy.port, "-CAfile", server_pki.ca_cert, stdin=b"GET /echo HTTP/1.0\r\n\r\n")
    check("HTTP/1.1" not in out and ("certificate required" in out or "alert" in out),
          "s_client without a certificate got through:\n%s" % out[-1500:])
    rc, out = s_client(proxy.port, "-CAfile", server_pki.ca_cert, "-cert", good_cert, "-key", good_key,
                       stdin=b"GET /echo HTTP/1.0\r\n\r\n")
    check("HTTP/1.1 200 OK" in out, "s_client with a certificate refused:\n%s" % out[-1500:])
    wait_until(lambda: _failures(admin, "protocol") >= 3, 5, "three refused handshakes counted")
    check_eq(len(proxy.backend.requests()), 2, "requests that reached the backend")


def test_tls_curl_session_cookie_issued_and_read_back(t):
    proxy, admin, pki = _tls_sessiond(t)
    jar = os.path.join(t.tmpdir, "jar")
    base = "https://localhost:%d" % proxy.port
    target = set_headers_target(("X-Session-Set", '{"user":"ada"}'))
    p = subprocess.run(["curl", "-sS", "--cacert", pki.ca_cert, "-c", jar, "-D", "-", base + target],
                       capture_output=True, timeout=15)
    check_eq(p.returncode, 0, "curl exit status (stderr %r)" % p.stderr[-500:])
    head = p.stdout.decode("latin-1").lower()
    check("set-cookie: session_id=" in head and "; secure" in head, "no Secure session cookie over TLS:\n%s" % head)
    p = subprocess.run(["curl", "-sS", "--cacert", pki.ca_cert, "-b", jar, base + "/echo"],
                       capture_output=True, timeout=15)
    doc = json.loads(p.stdout)
    headers = {n.lower(): v for n, v in doc["headers"]}
    check_eq(headers.get("x-session-status"), "active", "session status read back over TLS")
    check_eq(json.loads(headers.get("x-session-data", "{}")), {"user": "ada"}, "session data")
    check_eq(headers.get("x-forwarded-proto"), "https", "X-Forwarded-Proto from the TLS listener")


def test_tls_x_forwarded_proto_https_replaces_the_clients(t):
    proxy, admin, pki = _tls_sessiond(t)
    resp = _get_over_tls(proxy, pki, headers=[("Host", "example.test"), ("X-Forwarded-Proto", "http")])
    check_eq(resp.status, 200, "status")
    check_eq(echo_headers(resp, "X-Forwarded-Proto"), ["https"], "X-Forwarded-Proto")


def test_tls_keep_alive_large_bodies_and_pipelining(t):
    """Bodies larger than the socket buffers both ways, several requests on one
    connection, and pipelined requests: the partial writes and the reads that
    stop at the read limit (docs/ARCHITECTURE.md, TLS)."""
    proxy, admin, pki = _tls_sessiond(t)
    import hashlib
    from recording import pattern_sha256
    with TlsConnection(proxy.port, client_context(ca=pki.ca_cert), timeout=30) as c:
        body = os.urandom(3 << 20)
        resp = c.request("POST", "/echo", body=body)
        check_eq(resp.status, 200, "upload status")
        check_eq(resp.json()["body_sha256"], hashlib.sha256(body).hexdigest(), "upload digest at the backend")
        resp = c.request("GET", "/bytes/%d" % (5 << 20))
        check_eq(resp.body_sha256, pattern_sha256(5 << 20), "download digest")
        resp = c.request("GET", "/chunked/50/10000")
        check_eq(resp.body_sha256, pattern_sha256(500000), "chunked download digest")
        c.send(b"GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?n=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        r1 = c.read_response()
        r2 = c.read_response()
        check_eq([r1.json()["target"], r2.json()["target"]], ["/echo?n=1", "/echo?n=2"], "pipelined order")
    check_eq(_handshakes(admin, resumed=False), 1, "one handshake for the whole connection")


def test_tls_plain_http_on_the_tls_port_gets_a_400_that_says_so(t):
    proxy, admin, pki = _tls_sessiond(t)
    resp = proxy.request("GET", "/echo")
    check_eq(resp.status, 400, "status")
    check("HTTPS" in resp.body.decode() and "plain HTTP" in resp.body.decode(), "body %r" % resp.body)
    check_eq(resp.header("Connection"), "close", "Connection")
    # A request trickled one byte at a time is recognised from its first byte.
    with proxy.connect() as c:
        c.send(b"P")
        time.sleep(0.2)
        c.send(b"OST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        check_eq(c.read_response().status, 400, "status of a trickled plain request")
    _check_settles(lambda: _failures(admin, "plain_http"), 2, "plain-HTTP attempts counted")
    check_eq(len(proxy.backend.requests()), 0, "requests that reached the backend")
    # TLS still works afterwards.
    check_eq(_get_over_tls(proxy, pki).status, 200, "a TLS request after the plain ones")


def test_tls_garbage_and_truncated_handshakes_are_counted_never_fatal(t):
    proxy, admin, pki = _tls_sessiond(t)
    hello = client_hello()
    check(len(hello) > 100 and hello[0] == 0x16, "not a ClientHello: %r" % hello[:10])
    garbage = [
        b"\x16\x03\x01\x00\x05hello",             # a handshake record holding no ClientHello
        b"\x16\x03\x01\xff\xff" + os.urandom(600),  # an oversized record, random bytes
        os.urandom(1024).replace(b"\x16", b"\x17"),  # not even a record
        b"\x80\x2e\x01\x00\x02" + os.urandom(43),  # an SSLv2-style hello of random contents
        [hello, b"\x17\x03\x03\x00\x20" + os.urandom(32)],  # a hello, then a record no key opens
    ]
    for data in garbage:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
            for piece in (data if isinstance(data, list) else [data]):
                s.sendall(piece)
                time.sleep(0.1)
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass  # an alert, then the close
            except (ConnectionResetError, socket.timeout):
                pass
    truncated = [hello[:5], hello[:40], hello[:len(hello) - 1]]
    for data in truncated:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)  # the rest never comes
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass
    # A bare connect and close is no handshake at all: not counted.
    socket.create_connection(("127.0.0.1", proxy.port)).close()
    wait_until(lambda: _failures(admin, "protocol") + _failures(admin, "closed") == len(garbage) + len(truncated),
               5, "every bad handshake counted")
    check_eq(_failures(admin, "closed"), len(truncated), "truncated handshakes counted as closed")
    check(proxy.returncode is None, "sessiond exited")
    check_eq(_get_over_tls(proxy, pki).status, 200, "a good client after the bad ones")
    check("TLS handshake failed" in proxy.stderr_text(), "failures not logged")
    # Rate limited: at most a line a second, with a count of the rest.
    lines = [ln for ln in proxy.stderr_text().splitlines() if "TLS handshake failed" in ln]
    check(len(lines) < len(garbage) + len(truncated), "every failure logged: %d lines" % len(lines))


def test_tls_slow_handshake_is_cut_at_client_header(t):
    pki = Pki(t.tmpdir)
    cert, key = pki.issue("server")
    overrides, admin = admin_overrides(tls_overrides(cert, key))
    overrides["timeouts"] = {"client_header": "1s", "shutdown": "2s"}
    proxy = t.sessiond(overrides=overrides)
    hello = client_hello()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(hello[:30])  # and nothing more
        s.settimeout(10)
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        check_eq(data, b"", "what a stalled handshake gets before the close")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:  # not a single byte
        s.settimeout(10)
        check_eq(s.recv(4096), b"", "a silent connection is closed too")
    _check_settles(lambda: _failures(admin, "timeout"), 2, "handshake timeouts counted")
    check_eq(scrape(admin).value("sessiond_timeouts_total", kind="client_header"), 2, "client_header timeouts")


def _serial(cert_path):
    p = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout", "-serial"], capture_output=True, timeout=10)
    return p.stdout.decode().strip().split("=")[1]


def test_tls_certificate_reload_under_load_drops_nothing(t):
    pki = Pki(t.tmpdir)
    cert, key = pki.issue("first")
    live_cert = os.path.join(t.tmpdir, "live.pem")
    live_key = os.path.join(t.tmpdir, "live.key")
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    overrides, admin = admin_overrides(tls_overrides(live_cert, live_key))
    proxy = t.sessiond(overrides=overrides)
    check_eq(peer_common_name(proxy.port, pki.ca_cert), "first", "certificate served at start")

    ctx = client_context(ca=pki.ca_cert)
    stop = threading.Event()
    results = {"ok": 0, "failed": []}
    lock = threading.Lock()
    # A keep-alive connection opened before the reload must go on working.
    held = TlsConnection(proxy.port, ctx)
    check_eq(held.request("GET", "/echo").status, 200, "held connection before the reload")

    def client_loop(fresh):
        conn = None
        while not stop.is_set():
            try:
                if conn is None or fresh:
                    if conn:
                        conn.close()
                    conn = TlsConnection(proxy.port, ctx)
                resp = conn.request("GET", "/echo")
                with lock:
                    if resp.status == 200:
                        results["ok"] += 1
                    else:
                        results["failed"].append(resp.status)
            except Exception as e:  # any failure is what this test looks for
                with lock:
                    results["failed"].append(repr(e))
                conn = None
        if conn:
            conn.close()

    threads = [threading.Thread(target=client_loop, args=(fresh,)) for fresh in (True, True, False, False)]
    for th in threads:
        th.start()
    try:
        time.sleep(0.5)
        second_cert, second_key = pki.issue("second")
        # Replace the files the way an ACME client does: write aside, rename over.
        shutil.copy(second_cert, live_cert + ".new")
        shutil.copy(second_key, live_key + ".new")
        os.rename(live_key + ".new", live_key)
        os.rename(live_cert + ".new", live_cert)
        proxy.signal(signal.SIGHUP)
        wait_until(lambda: peer_common_name(proxy.port, pki.ca_cert) == "second", 10, "the new certificate served")
        time.sleep(0.5)
    finally:
        stop.set()
        for th in threads:
            th.join(30)
    check_eq(results["failed"], [], "failed requests during the reload")
    check(results["ok"] > 20, "too few requests ran during the reload: %d" % results["ok"])
    check_eq(held.request("GET", "/echo").status, 200, "held connection after the reload")
    held.close()
    check("TLS certificate from %s" % live_cert in proxy.stderr_text(), "the reload does not name the certificate")


def test_tls_bad_certificate_on_reload_keeps_the_old_one(t):
    pki = Pki(t.tmpdir)
    cert, key = pki.issue("first")
    live_cert = os.path.join(t.tmpdir, "live.pem")
    shutil.copy(cert, live_cert)
    overrides, admin = admin_overrides(tls_overrides(live_cert, key))
    proxy = t.sessiond(overrides=overrides)
    other_cert, _ = pki.issue("unmatched")
    for bad in (b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n", open(other_cert, "rb").read()):
        with open(live_cert, "wb") as f:
            f.write(bad)
        proxy.signal(signal.SIGHUP)
        wait_until(lambda: scrape(admin).value("sessiond_config_last_reload_successful") == 0, 5, "reload refused")
        check_eq(peer_common_name(proxy.port, pki.ca_cert), "first", "certificate after a bad reload")
        shutil.copy(cert, live_cert)
        proxy.signal(signal.SIGHUP)
        wait_until(lambda: scrape(admin).value("sessiond_config_last_reload_successful") == 1, 5, "reload applied")
    err = proxy.stderr_text()
    check("reload failed, keeping the running configuration" in err and "tls.certificate" in err,
          "a bad certificate on reload is not reported:\n%s" % err[-2000:])
    check("tls.private_key: %s: it is not the private key" % key in err, "a mismatched key is not reported")
    check_eq(_get_over_tls(proxy, pki).status, 200, "serving after the refused reloads")


def test_tls_config_errors_name_the_file_and_position(t):
    pki = Pki(t.tmpdir)
    cert, key = pki.issue("server")
    path = t.write_file("bad.yaml", "upstream: http://127.0.0.1:1\nsecret_key: %s\ntls:\n  certificate: %s\n"
                        "  private_key: %s\n" % ("k" * 40, cert, os.path.join(t.tmpdir, "missing.key")))
    p = t.run_cli(["--check-config", "-c", path])
    check_eq(p.returncode, 2, "exit status")
    check("%s:5:16: tls.private_key: cannot read" % path in p.stderr, "stderr %r" % p.stderr)
    good = t.write_file("good.yaml", "upstream: http://127.0.0.1:1\nsecret_key: %s\ntls:\n  certificate: %s\n"
                        "  private_key: %s\n" % ("k" * 40, cert, key))
    p = t.run_cli(["--check-config", "-c", good])
    check_eq(p.returncode, 0, "exit status of a good file (stderr %r)" % p.stderr)
    check(cert in p.stdout and "BEGIN" not in p.stdout, "summary %r" % p.stdout)
