"""Listener safety and loops (docs/OPERATIONS.md, Starting and stopping;
docs/HTTP.md, Loops).

- A second process on a port already listened on refuses to start (exit 1,
  "sessiond: ADDRESS: Address already in use"), even though sessiond's own
  sockets use SO_REUSEPORT, and the first keeps every connection.
- `upstream` pointing at sessiond's own listener is a configuration error.
- A request that comes back through the same sessiond (a loop through other
  hops) is answered 508; two different sessiond in a chain are not a loop.
"""

import socket
import threading

from harness import SLOW, check, check_eq, free_port


def _start_expecting_failure(t, overrides):
    second = t.sessiond(overrides=overrides, start=False, name="second")
    second.start(wait=False)
    rc = second.wait(10 * SLOW)
    check(rc is not None, "the second sessiond is still running")
    return rc, second.stderr_text()


def _all_answered_by(proxy, n=10):
    statuses = [proxy.request("GET", "/echo").status for _ in range(n)]
    check_eq(statuses, [200] * n, "answers on the first sessiond's port")


def test_second_instance_on_the_same_port_exits_1(t):
    for workers in (1, 3):
        first = t.sessiond(overrides={"workers": workers})
        rc, err = _start_expecting_failure(t, {"listen": first.config["listen"], "workers": workers})
        check_eq(rc, 1, "exit status of a second sessiond on %s (workers %d)" % (first.config["listen"], workers))
        check("sessiond: %s: Address already in use" % first.config["listen"] in err,
              "the error line: %r" % err[-500:])
        _all_answered_by(first)
        first.stop()


def test_another_process_with_so_reuseport_blocks_the_port(t):
    port = free_port()
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    other.bind(("127.0.0.1", port))
    other.listen(16)
    t.on_cleanup(other.close)
    rc, err = _start_expecting_failure(t, {"listen": "127.0.0.1:%d" % port})
    check_eq(rc, 1, "exit status when another process listens with SO_REUSEPORT")
    check("sessiond: 127.0.0.1:%d: Address already in use" % port in err, "the error line: %r" % err[-500:])


def test_wildcard_listener_in_use_blocks_a_specific_address(t):
    port = free_port()
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    other.bind(("0.0.0.0", port))
    other.listen(16)
    t.on_cleanup(other.close)
    rc, err = _start_expecting_failure(t, {"listen": "127.0.0.1:%d" % port})
    check_eq(rc, 1, "exit status when 0.0.0.0 is taken")
    check("Address already in use" in err, "the error line: %r" % err[-500:])


def test_admin_port_in_use_exits_1(t):
    first = t.sessiond(overrides={"admin": {"listen": "127.0.0.1:%d" % free_port()}})
    admin = first.config["admin"]["listen"]
    rc, err = _start_expecting_failure(t, {"listen": "127.0.0.1:%d" % free_port(), "admin": {"listen": admin}})
    check_eq(rc, 1, "exit status when admin.listen is taken")
    check("sessiond: %s: Address already in use" % admin in err, "the error line: %r" % err[-500:])


def test_a_port_freed_by_an_earlier_run_is_reused(t):
    first = t.sessiond()
    listen = first.config["listen"]
    first.request("GET", "/echo")  # leaves a TIME-WAIT connection behind
    first.stop()
    again = t.sessiond(overrides={"listen": listen})
    _all_answered_by(again, 3)


def _config(listen, upstream):
    return ('listen: "%s"\nupstream: "%s"\nsecret_key: %s\n' % (listen, upstream, "k" * 40))


def test_upstream_equal_to_listen_is_a_config_error(t):
    port = free_port()
    for listen, upstream in (("127.0.0.1:%d" % port, "http://127.0.0.1:%d" % port),
                             ("127.0.0.1:%d" % port, "http://localhost:%d/" % port),
                             ("0.0.0.0:%d" % port, "http://127.0.0.1:%d" % port),
                             ("[::]:%d" % port, "http://[::1]:%d" % port),
                             ("[::1]:%d" % port, "http://[::1]:%d" % port)):
        path = t.write_file("loop.yaml", _config(listen, upstream))
        p = t.run_cli(["--check-config", "-c", path])
        check_eq(p.returncode, 2, "exit status for listen %s, upstream %s" % (listen, upstream))
        check("loop.yaml:2:" in p.stderr and "own listen address" in p.stderr,
              "the error for upstream %s: %r" % (upstream, p.stderr))
    for listen, upstream in (("127.0.0.1:%d" % port, "http://127.0.0.1:%d" % (port + 1)),
                             ("[::]:%d" % port, "http://127.0.0.1:%d" % port)):  # IPv6-only listener
        path = t.write_file("ok.yaml", _config(listen, upstream))
        p = t.run_cli(["--check-config", "-c", path])
        check_eq(p.returncode, 0, "exit status for listen %s, upstream %s: %s" % (listen, upstream, p.stderr))


class _Relay:
    """A plain TCP relay (a load balancer, say) from its port to `target_port`."""

    def __init__(self, target_port):
        self.target = target_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    b.shutdown(socket.SHUT_WR)
                    return
                b.sendall(data)
        except OSError:
            return

    def close(self):
        for s in [self.listener] + self.socks:
            try:
                s.close()
            except OSError:
                pass


def test_a_loop_through_another_hop_is_508(t):
    port = free_port()
    relay = _Relay(port)  # sessiond -> relay -> the same sessiond
    t.on_cleanup(relay.close)
    proxy = t.sessiond(upstream="http://127.0.0.1:%d" % relay.port,
                       overrides={"listen": "127.0.0.1:%d" % port, "log": {"level": "warn"}})
    resp = proxy.request("GET", "/anything", timeout=10)
    check_eq(resp.status, 508, "status of a request that loops")
    check(b"Loop Detected" in resp.body, "508 body %r" % resp.body)
    check("request loop" in proxy.stderr_text(), "no warning about the loop in the error log")


def test_two_sessiond_in_a_chain_are_not_a_loop(t):
    inner = t.sessiond()
    outer = t.sessiond(upstream="http://127.0.0.1:%d" % inner.port)
    resp = outer.request("GET", "/echo")
    check_eq(resp.status, 200, "status through two sessiond")
    via = inner.backend.requests("/echo")[-1].header_values("Via")
    check_eq(len(via), 2, "Via entries at the backend: %r" % via)
    check(via[0] != via[1] and all(v.startswith("1.1 sessiond-") for v in via), "Via entries %r" % via)
