"""trusted_proxies (docs/HTTP.md, "Forwarding and trusted proxies").

Behind a TLS terminator the backend must learn the scheme, host, port and
client the balancer saw; from anyone else the same headers are spoofing.
Every combination: a trusted or untrusted peer (IPv4 and IPv6), each
forwarding header sent or not, well-formed or malformed, and the client
address that the access log shows.
"""

import json
import socket

from client import RawConnection, build_request
from harness import SLOW, check, check_eq, free_port, wait_until

SPOOF = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"),
         ("X-Forwarded-Host", "shop.example"), ("X-Forwarded-Port", "443"),
         ("Forwarded", 'for=203.0.113.7;proto=https;host="shop.example"')]
FORWARDING = ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "Forwarded")


def _proxy(t, trusted, listen_host="127.0.0.1"):
    overrides = {"log": {"access": "json", "level": "debug"}}
    if trusted is not None:
        overrides["trusted_proxies"] = trusted
    if listen_host != "127.0.0.1":
        overrides["listen"] = "[%s]:%d" % (listen_host, free_port())
        proxy = t.sessiond(overrides=overrides, start=False)
        proxy.start(wait=False)
        wait_until(lambda: _accepts(listen_host, proxy.port), 5 * SLOW, "sessiond on [%s]" % listen_host)
        return proxy
    return t.sessiond(overrides=overrides)


def _accepts(host, port):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _send(t, proxy, headers, host="127.0.0.1"):
    """One request; returns (the backend's view as {name: [values]}, the access log client)."""
    conn = RawConnection(proxy.port, host=host)
    try:
        conn.send(build_request("GET", "/echo", [("Host", "app.example")] + list(headers)))
        resp = conn.read_response("GET")
    finally:
        conn.close()
    check_eq(resp.status, 200, "status")
    seen = {}
    for name, value in resp.json()["headers"]:
        seen.setdefault(name.lower(), []).append(value)
    rid = resp.header("X-Request-Id")
    line = wait_until(lambda: [ln for ln in proxy.stdout_text().splitlines() if rid in ln], 5 * SLOW,
                      "the access log line")[0]
    return seen, json.loads(line)["client"]


def _check_overwritten(seen, client, peer, port, what):
    check_eq(seen.get("x-forwarded-for"), [peer], "%s: X-Forwarded-For" % what)
    check_eq(seen.get("x-forwarded-proto"), ["http"], "%s: X-Forwarded-Proto" % what)
    check_eq(seen.get("x-forwarded-host"), ["app.example"], "%s: X-Forwarded-Host" % what)
    check_eq(seen.get("x-forwarded-port"), [str(port)], "%s: X-Forwarded-Port" % what)
    check_eq(seen.get("forwarded"), None, "%s: Forwarded" % what)
    check_eq(client, peer, "%s: the client address in the access log" % what)


def test_untrusted_peer_overwrites_every_forwarding_header(t):
    for trusted in (None, [], ["10.0.0.0/8", "::1"]):  # default, empty, a list without the peer
        proxy = _proxy(t, trusted)
        seen, client = _send(t, proxy, SPOOF)
        _check_overwritten(seen, client, "127.0.0.1", proxy.port, "untrusted (trusted_proxies %r)" % trusted)
        # Each spoofed header on its own, and several copies of each.
        for name, value in SPOOF:
            seen, client = _send(t, proxy, [(name, value), (name, value)])
            _check_overwritten(seen, client, "127.0.0.1", proxy.port, "untrusted, two %s" % name)
        proxy.stop()


def test_trusted_peer_keeps_its_forwarding_headers(t):
    proxy = _proxy(t, ["127.0.0.1"])
    seen, client = _send(t, proxy, SPOOF)
    check_eq(seen["x-forwarded-for"], ["203.0.113.7, 127.0.0.1"], "X-Forwarded-For appended to")
    check_eq(seen["x-forwarded-proto"], ["https"], "X-Forwarded-Proto kept")
    check_eq(seen["x-forwarded-host"], ["shop.example"], "X-Forwarded-Host kept")
    check_eq(seen["x-forwarded-port"], ["443"], "X-Forwarded-Port kept")
    check_eq(seen["forwarded"], ['for=203.0.113.7;proto=https;host="shop.example"'], "Forwarded kept")
    check_eq(client, "203.0.113.7", "client address from X-Forwarded-For")
    # Headers the balancer did not send: sessiond's own values.
    seen, client = _send(t, proxy, [])
    check_eq(seen["x-forwarded-for"], ["127.0.0.1"], "X-Forwarded-For without one from the peer")
    check_eq(seen["x-forwarded-proto"], ["http"], "X-Forwarded-Proto without one from the peer")
    check_eq(seen["x-forwarded-host"], ["app.example"], "X-Forwarded-Host without one from the peer")
    check_eq(seen["x-forwarded-port"], [str(proxy.port)], "X-Forwarded-Port without one from the peer")
    check_eq(client, "127.0.0.1", "client address without X-Forwarded-For")


def test_client_address_is_the_rightmost_untrusted_entry(t):
    proxy = _proxy(t, ["127.0.0.0/8", "10.0.0.0/8"])
    cases = [
        ("198.51.100.1, 10.1.2.3", "198.51.100.1"),          # a second trusted hop
        ("6.6.6.6, 198.51.100.1, 10.1.2.3", "198.51.100.1"),  # a spoofed leftmost entry is ignored
        ("10.0.0.5, 10.0.0.6", "10.0.0.5"),                  # all trusted: the leftmost
        ("198.51.100.1:5555", "198.51.100.1"),               # with a port, as some balancers write it
        ("[2001:db8::5]:443, 10.9.9.9", "2001:db8::5"),
    ]
    for xff, want in cases:
        seen, client = _send(t, proxy, [("X-Forwarded-For", xff)])
        check_eq(client, want, "client address for X-Forwarded-For %r" % xff)
        check_eq(seen["x-forwarded-for"], [xff + ", 127.0.0.1"], "X-Forwarded-For %r appended to" % xff)
    seen, client = _send(t, proxy, [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "10.2.2.2")])
    check_eq(client, "198.51.100.1", "two X-Forwarded-For fields read as one list")
    check_eq(seen["x-forwarded-for"], ["198.51.100.1, 10.2.2.2, 127.0.0.1"], "two fields joined")


def test_malformed_headers_from_a_trusted_peer_are_absent(t):
    proxy = _proxy(t, ["127.0.0.1"])
    bad = [
        ("X-Forwarded-For", "not-an-address", "x-forwarded-for", ["127.0.0.1"]),
        ("X-Forwarded-For", "1.2.3.4, , 5.6.7.8", "x-forwarded-for", ["127.0.0.1"]),
        ("X-Forwarded-For", "unknown", "x-forwarded-for", ["127.0.0.1"]),
        ("X-Forwarded-Proto", "ftp", "x-forwarded-proto", ["http"]),
        ("X-Forwarded-Proto", "https, http", "x-forwarded-proto", ["http"]),
        ("X-Forwarded-Host", "evil.example/path", "x-forwarded-host", ["app.example"]),
        ("X-Forwarded-Host", "a b", "x-forwarded-host", ["app.example"]),
        ("X-Forwarded-Port", "99999", "x-forwarded-port", None),
        ("X-Forwarded-Port", "443x", "x-forwarded-port", None),
        ("Forwarded", 'for="unterminated', "forwarded", None),
        ("Forwarded", "for", "forwarded", None),
    ]
    for name, value, key, want in bad:
        seen, client = _send(t, proxy, [(name, value)])
        check_eq(seen.get(key), want if want is not None else ([str(proxy.port)] if key == "x-forwarded-port" else None),
                 "%s: %r from a trusted peer" % (name, value))
        check_eq(client, "127.0.0.1", "client address after a malformed %s" % name)
    seen, _ = _send(t, proxy, [("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "https")])
    check_eq(seen["x-forwarded-proto"], ["http"], "two X-Forwarded-Proto fields")
    chain = ", ".join("10.0.0.%d" % i for i in range(70))
    seen, client = _send(t, proxy, [("X-Forwarded-For", chain)])
    check_eq(seen["x-forwarded-for"], ["127.0.0.1"], "an X-Forwarded-For chain over 64 entries")
    check("sent a malformed" in proxy.stderr_text(), "no debug line for a malformed forwarding header")
    lines = [ln for ln in proxy.stderr_text().splitlines() if "sent a malformed" in ln]
    check(len(lines) < len(bad), "the malformed-header log line is not rate-limited (%d lines)" % len(lines))


def test_ipv6_peers(t):
    proxy = _proxy(t, ["::1"], listen_host="::1")
    seen, client = _send(t, proxy, [("X-Forwarded-For", "2001:db8::7"), ("X-Forwarded-Proto", "https")], host="::1")
    check_eq(seen["x-forwarded-for"], ["2001:db8::7, ::1"], "X-Forwarded-For from a trusted IPv6 peer")
    check_eq(seen["x-forwarded-proto"], ["https"], "X-Forwarded-Proto from a trusted IPv6 peer")
    check_eq(client, "2001:db8::7", "client address from a trusted IPv6 peer")
    proxy.stop()

    proxy = _proxy(t, ["::1/128", "2001:db8::/32"], listen_host="::1")
    seen, client = _send(t, proxy, [("X-Forwarded-For", "2001:db9::1, 2001:db8::9")], host="::1")
    check_eq(client, "2001:db9::1", "the rightmost entry outside 2001:db8::/32")
    proxy.stop()

    proxy = _proxy(t, ["127.0.0.1", "2001:db8::/32"], listen_host="::1")
    seen, client = _send(t, proxy, SPOOF, host="::1")
    _check_overwritten(seen, client, "::1", proxy.port, "an untrusted IPv6 peer")


def test_invalid_trusted_proxies_are_config_errors(t):
    for value, why in (("10.0.0.1/8", "host bits"), ("10.0.0.0/33", "out of range"), ("example.com", "expected"),
                       ("::1/129", "out of range")):
        path = t.write_file("bad.yaml", "listen: 127.0.0.1:%d\nupstream: http://127.0.0.1:9\n"
                            "secret_key: %s\ntrusted_proxies: [\"%s\"]\n"
                            % (free_port(), "k" * 40, value))
        p = t.run_cli(["--check-config", "-c", path])
        check_eq(p.returncode, 2, "exit status for trusted_proxies %r" % value)
        check("bad.yaml:4:" in p.stderr and "trusted_proxies[0]" in p.stderr and why in p.stderr,
              "error for trusted_proxies %r: %r" % (value, p.stderr))
