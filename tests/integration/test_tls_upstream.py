"""HTTPS upstreams (docs/HTTP.md, TLS to the upstream; docs/CONFIGURATION.md,
upstream_tls): a Python ssl backend with a test CA; verification against the
CA file or the system's CAs, the name, client certificates, pooled keep-alive
over TLS and session resumption for new connections."""

import os
import ssl

from backend import Backend
from harness import check, check_eq, check_error_response, echo_headers, wait_until
from test_ops_support import admin_overrides, scrape
from tls_util import Pki, self_signed


def _tls_backend(t, cert, key, client_ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    b = Backend(tls=ctx)
    t.backends.append(b)
    return b


def _upstream_handshakes(admin, resumed):
    return scrape(admin).value("sessiond_upstream_tls_handshakes_total", resumed="true" if resumed else "false")


def test_https_upstream_verified_with_ca_file(t):
    pki = Pki(t.tmpdir)
    backend = _tls_backend(t, *pki.issue("backend"))
    overrides, admin = admin_overrides({"upstream_tls": {"ca_file": pki.ca_cert}})
    proxy = t.sessiond(upstream=backend, overrides=overrides)
    check(proxy.config["upstream"].startswith("https://127.0.0.1:"), "upstream %r" % proxy.config["upstream"])
    resp = proxy.request("GET", "/echo", headers=[("Host", "app.test")])
    check_eq(resp.status, 200, "status")
    check_eq(echo_headers(resp, "Host"), ["app.test"], "Host forwarded over TLS")
    resp = proxy.request("POST", "/echo", body=os.urandom(2 << 20))
    check_eq(resp.json()["body_length"], 2 << 20, "a 2 MiB body over the upstream TLS")
    check_eq(backend.tls_errors, [], "handshake errors at the backend")
    check_eq(_upstream_handshakes(admin, resumed=False), 1, "full upstream handshakes")


def test_https_upstream_name_defaults_to_the_url_host(t):
    pki = Pki(t.tmpdir)
    backend = _tls_backend(t, *pki.issue("backend", dns=("localhost",), ips=()))
    proxy = t.sessiond(upstream="https://localhost:%d" % backend.port,
                       overrides={"upstream_tls": {"ca_file": pki.ca_cert}})
    check_eq(proxy.request("GET", "/echo").status, 200, "status with the name localhost verified")


def test_https_upstream_wrong_ca_is_a_502_naming_the_reason(t):
    pki = Pki(t.tmpdir)
    other = Pki(t.tmpdir, "other")
    cert, key = self_signed(t.tmpdir, "selfie")
    for backend_cert, reason in (((cert, key), "certificate verify failed: self-signed certificate"),
                                 (other.issue("backend"), "certificate verify failed: unable to get local issuer "
                                                          "certificate")):
        backend = _tls_backend(t, *backend_cert)
        overrides, admin = admin_overrides({"upstream_tls": {"ca_file": pki.ca_cert}})
        proxy = t.sessiond(upstream=backend, overrides=overrides)
        resp = proxy.request("GET", "/echo")
        check_error_response(resp, 502)
        check("TLS" not in resp.body.decode() and "certificate" not in resp.body.decode(),
              "the 502 body reveals the reason: %r" % resp.body)
        line = "upstream https://127.0.0.1:%d: TLS handshake failed (%s)" % (backend.port, reason)
        wait_until(lambda: line in proxy.stderr_text(), 5, "the error line %r" % line)
        check_eq(scrape(admin).value("sessiond_upstream_errors_total"), 1, "upstream errors")
        check_eq(len(backend.requests()), 0, "requests that reached an unverified backend")


def test_https_upstream_system_cas_do_not_trust_a_test_ca(t):
    pki = Pki(t.tmpdir)
    backend = _tls_backend(t, *pki.issue("backend"))
    proxy = t.sessiond(upstream=backend)  # no upstream_tls: the system's CAs
    check_error_response(proxy.request("GET", "/echo"), 502)
    wait_until(lambda: "TLS handshake failed (certificate verify failed: unable to get local issuer certificate)"
               in proxy.stderr_text(), 5, "the verify error line")


def test_https_upstream_wrong_name_is_a_502(t):
    pki = Pki(t.tmpdir)
    backend = _tls_backend(t, *pki.issue("backend", dns=("backend.internal",), ips=()))
    # By address: the certificate has no IP address.
    proxy = t.sessiond(upstream=backend, overrides={"upstream_tls": {"ca_file": pki.ca_cert}})
    check_error_response(proxy.request("GET", "/echo"), 502)
    wait_until(lambda: "TLS handshake failed (certificate verify failed: IP address mismatch)" in proxy.stderr_text(),
               5, "IP address mismatch logged")
    # A name the certificate does not carry.
    proxy2 = t.sessiond(upstream=backend,
                        overrides={"upstream_tls": {"ca_file": pki.ca_cert, "server_name": "other.internal"}})
    check_error_response(proxy2.request("GET", "/echo"), 502)
    wait_until(lambda: "TLS handshake failed (certificate verify failed: hostname mismatch)" in proxy2.stderr_text(),
               5, "hostname mismatch logged")
    # The right name, given explicitly, while connecting to 127.0.0.1.
    proxy3 = t.sessiond(upstream=backend,
                        overrides={"upstream_tls": {"ca_file": pki.ca_cert, "server_name": "backend.internal"}})
    check_eq(proxy3.request("GET", "/echo").status, 200, "status with server_name backend.internal")


def test_https_upstream_client_certificate_presented_when_configured(t):
    pki = Pki(t.tmpdir)
    client_pki = Pki(t.tmpdir, "clients")
    backend = _tls_backend(t, *pki.issue("backend"), client_ca=client_pki.ca_cert)
    cert, key = client_pki.issue("sessiond-client")
    proxy = t.sessiond(upstream=backend, overrides={"upstream_tls": {
        "ca_file": pki.ca_cert, "client_certificate": cert, "client_key": key}})
    check_eq(proxy.request("GET", "/echo").status, 200, "status with a client certificate")
    subject = dict(x[0] for x in backend.tls_peers[0]["subject"])
    check_eq(subject.get("commonName"), "sessiond-client", "the certificate the backend saw")
    # Without one, the backend refuses the handshake: a 502.
    bare = t.sessiond(upstream=backend, overrides={"upstream_tls": {"ca_file": pki.ca_cert}})
    check_error_response(bare.request("GET", "/echo"), 502)


def test_https_upstream_pooled_connections_one_handshake(t):
    pki = Pki(t.tmpdir)
    backend = _tls_backend(t, *pki.issue("backend"))
    overrides, admin = admin_overrides({"upstream_tls": {"ca_file": pki.ca_cert}})
    proxy = t.sessiond(upstream=backend, overrides=overrides)
    for i in range(40):
        with proxy.connect() as c:  # a new client connection each time
            check_eq(c.request("GET", "/echo?i=%d" % i).status, 200, "status of request %d" % i)
    check_eq(backend.connections_accepted(), 1, "TLS connections the backend accepted for 40 requests")
    check_eq(_upstream_handshakes(admin, resumed=False) + _upstream_handshakes(admin, resumed=True), 1,
             "upstream handshakes")


def test_https_upstream_new_connections_resume_the_session(t):
    pki = Pki(t.tmpdir)
    backend = _tls_backend(t, *pki.issue("backend"))
    overrides, admin = admin_overrides({"upstream_tls": {"ca_file": pki.ca_cert}})
    proxy = t.sessiond(upstream=backend, overrides=overrides)
    # The backend closes after every response: each request needs a new
    # upstream connection, and all but the first resume.
    for i in range(10):
        resp = proxy.request("GET", "/echo?close=1")
        check_eq(resp.status, 200, "status of request %d" % i)
    check_eq(backend.connections_accepted(), 10, "connections the backend accepted")
    check_eq(_upstream_handshakes(admin, resumed=False), 1, "full upstream handshakes")
    check_eq(_upstream_handshakes(admin, resumed=True), 9, "resumed upstream handshakes")


def test_https_upstream_config_errors(t):
    p = t.run_cli(["--check-config", "-c", t.write_file("c.yaml", "upstream: http://127.0.0.1:1\nsecret_key: %s\n"
                                                      "upstream_tls: {server_name: x}\n" % ("k" * 40))])
    check_eq(p.returncode, 2, "exit status")
    check("c.yaml:3:1: upstream_tls: applies only to an https:// upstream" in p.stderr, "stderr %r" % p.stderr)


def test_https_upstream_under_concurrency_with_two_workers(t):
    """Both workers share one client context (its latest session) and each
    keeps its own pool: concurrent requests all succeed."""
    import threading
    pki = Pki(t.tmpdir)
    backend = _tls_backend(t, *pki.issue("backend"))
    overrides, admin = admin_overrides({"upstream_tls": {"ca_file": pki.ca_cert}, "workers": 2})
    proxy = t.sessiond(upstream=backend, overrides=overrides)
    failures = []

    def client(n):
        for i in range(25):
            target = "/echo?close=1" if i % 5 == 0 else "/echo"  # some new upstream connections too
            try:
                resp = proxy.request("GET", target)
                if resp.status != 200:
                    failures.append(resp.status)
            except Exception as e:  # any failure is what this test looks for
                failures.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    check_eq(failures, [], "failed requests")
    full = _upstream_handshakes(admin, resumed=False)
    resumed = _upstream_handshakes(admin, resumed=True)
    check(resumed > 0, "no upstream connection resumed a session (full %d)" % full)
    check_eq(full + resumed, backend.connections_accepted(), "handshakes against connections accepted")
