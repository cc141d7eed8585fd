"""Redis deployments beyond one server for the integration tests
(docs/CONFIGURATION.md, redis.sentinel and redis.cluster): real redis-server
processes on free ports in the test's temp dir, stopped (SIGKILL) at cleanup.

  RedisNode(t, extra_args)        one redis-server; start(), kill(), command(...)
  RedisClusterSet(t)              masters + replicas made with redis-cli --cluster create
  RedisSentinelSet(t)             a master, a replica and three sentinels
  RedisTls(pki)                   TLS for any of them: the node listens only on a TLS
                                  port (--port 0 --tls-port P), replicas, sentinels and
                                  the cluster bus speak TLS too, and the helpers here
                                  (command(), redis-cli) connect over TLS

Debian's redis-server 7.0 runs all of them (sentinel mode is redis-server
--sentinel). No containers.
"""

import os
import signal
import subprocess
import time

from harness import SLOW, check, free_port, wait_until
from session_util import _read_resp


def cluster_port():
    """A free port whose cluster bus port (+10000) is free too, so at most 55535."""
    import socket
    for _ in range(1000):
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue
    raise AssertionError("no free port pair for a cluster node")


class RedisTls:
    """TLS for redis-server nodes, from a tls_util.Pki: one certificate (for
    localhost and 127.0.0.1, serving and client use) shared by every node.
    auth_clients: the nodes require a client certificate signed by the CA."""

    def __init__(self, pki, auth_clients=False):
        self.ca = pki.ca_cert
        self.cert, self.key = pki.issue("redis-node")
        self.auth_clients = auth_clients

    def server_args(self, port):
        """redis-server arguments: TLS on `port`, no plain port; replication
        (and so sentinels' links) over TLS."""
        return ["--port", "0", "--tls-port", str(port), "--tls-cert-file", self.cert, "--tls-key-file", self.key,
                "--tls-ca-cert-file", self.ca, "--tls-auth-clients", "yes" if self.auth_clients else "no",
                "--tls-replication", "yes"]

    def sentinel_conf(self, port):
        return ("port 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\n"
                "tls-auth-clients %s\ntls-replication yes\n"
                % (port, self.cert, self.key, self.ca, "yes" if self.auth_clients else "no"))

    def cli_args(self):
        return ["--tls", "--cacert", self.ca, "--cert", self.cert, "--key", self.key]

    def wrap(self, sock):
        import ssl
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


class RedisNode:
    """One redis-server (no persistence unless asked) in its own directory;
    with tls (a RedisTls), on a TLS port only."""

    def __init__(self, t, extra_args=(), port=None, name="redis", sentinel_conf=None, tls=None):
        self.t = t
        if port is None and "--cluster-enabled" in extra_args:
            port = cluster_port()
        self.port = port or free_port()
        self.tls = tls
        self.extra_args = list(extra_args)
        self.dir = os.path.join(t.tmpdir, "%s-%d" % (name, self.port))
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "log")
        self.sentinel_conf = sentinel_conf
        self.proc = None
        t.on_cleanup(self.kill)

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=5.0):
        if self.sentinel_conf is not None:
            conf = os.path.join(self.dir, "sentinel.conf")
            with open(conf, "w") as f:
                f.write(self.sentinel_conf)
                if self.tls:
                    f.write(self.tls.sentinel_conf(self.port))
            args = ["redis-server", conf, "--sentinel", "--bind", "127.0.0.1", "--dir", self.dir,
                    "--daemonize", "no"]
            if not self.tls:
                args += ["--port", str(self.port)]
        else:
            args = ["redis-server", "--bind", "127.0.0.1", "--save", "",
                    "--dir", self.dir, "--daemonize", "no", "--enable-debug-command", "yes"]
            args += self.tls.server_args(self.port) if self.tls else ["--port", str(self.port)]
            if "--appendonly" not in self.extra_args:
                args += ["--appendonly", "no"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args + self.extra_args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        wait_until(self._up, timeout * SLOW, "redis-server to answer PING on port %d" % self.port, interval=0.01)
        return self

    def _up(self):
        if self.proc.poll() is not None:
            with open(self.log_path, "rb") as f:
                tail = f.read()[-2000:].decode("utf-8", "replace")
            raise AssertionError("redis-server on %d exited with %s:\n%s" % (self.port, self.proc.returncode, tail))
        try:
            self.command("PING")
            return True
        except AssertionError as e:
            return "NOAUTH" in str(e)  # up, and wants a password
        except OSError:
            return False

    def kill(self):
        """SIGKILL: the node vanishes without a word to its clients or peers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def connect(self, timeout=5.0):
        """A socket to the node (TLS for a TLS node)."""
        import socket
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        if self.tls:
            try:
                return self.tls.wrap(sock)
            except Exception:
                sock.close()
                raise
        return sock

    def command(self, *args, timeout=5.0):
        """One command on a fresh connection; str, int, list or None. Errors raise AssertionError."""
        payload = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (x if isinstance(x, bytes) else str(x).encode() for x in args))
        with self.connect(timeout) as s:
            s.sendall(payload)
            return _read_resp(s.makefile("rb"))

    def info(self, section):
        text = self.command("INFO", section)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


# ---------------------------------------------------------------------------
# Cluster

class RedisClusterSet:
    """`masters` masters, each with `replicas` replicas, joined by redis-cli
    --cluster create. cluster-node-timeout is node_timeout_ms, so a killed
    master is failed over in a few seconds."""

    def __init__(self, t, masters=3, replicas=1, node_timeout_ms=1000, extra_args=(), tls=None):
        self.t = t
        self.node_timeout_ms = node_timeout_ms
        self.tls = tls
        n = masters * (1 + replicas)
        args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms)] + list(extra_args)
        if tls:
            args += ["--tls-cluster", "yes"]  # the bus over TLS, and CLUSTER SLOTS names the TLS ports
        self.nodes = [RedisNode(t, args, name="cluster", tls=tls) for _ in range(n)]
        self.masters_wanted = masters
        self.replicas = replicas

    def start(self):
        for node in self.nodes:
            node.start()
        out = subprocess.run(["redis-cli"] + self._cli_tls() + ["--cluster", "create"] + [n.address for n in self.nodes] +
                             ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60 * SLOW)
        check(out.returncode == 0, "redis-cli --cluster create failed:\n%s" % out.stdout.decode()[-3000:])
        self.wait_ok()
        # Every replica attached and in sync, so failovers have somewhere to go.
        wait_until(lambda: len(self.replica_nodes()) == self.masters_wanted * self.replicas, 20 * SLOW,
                   "every cluster replica to report its master link up", interval=0.1)
        return self

    def _cli_tls(self):
        return self.tls.cli_args() if self.tls else []

    @property
    def seeds(self):
        return [n.address for n in self.nodes[:2]]

    def node_at(self, address):
        for n in self.nodes:
            if n.address == address:
                return n
        raise AssertionError("no cluster node at %s" % address)

    def live(self):
        return [n for n in self.nodes if n.alive()]

    def wait_ok(self, timeout=20.0):
        """Every live node says cluster_state:ok and agrees on the slot owners."""
        def ok():
            views = set()
            for n in self.live():
                try:
                    if n.info("cluster").get("cluster_enabled") != "1":
                        return False
                    state = n.command("CLUSTER", "INFO")
                    if "cluster_state:ok" not in state:
                        return False
                    views.add(tuple(sorted((s[0], s[1], s[2][1]) for s in n.command("CLUSTER", "SLOTS"))))
                except (OSError, AssertionError):
                    return False
            return len(views) == 1
        wait_until(ok, timeout * SLOW, "the cluster to be ok and agree on its slot map", interval=0.05)

    def slot_map(self):
        """[(first, last, master address, [replica addresses])] as a live node sees it."""
        out = []
        for first, last, master, *replicas in self.live()[0].command("CLUSTER", "SLOTS"):
            out.append((first, last, "127.0.0.1:%d" % master[1], ["127.0.0.1:%d" % r[1] for r in replicas]))
        return sorted(out)

    def masters(self):
        return sorted({m for _, _, m, _ in self.slot_map()})

    def owner_of(self, slot):
        for first, last, master, _ in self.slot_map():
            if first <= slot <= last:
                return master
        return None

    def replica_nodes(self):
        out = []
        for n in self.live():
            try:
                info = n.info("replication")
            except (OSError, AssertionError):
                continue
            if info.get("role") == "slave" and info.get("master_link_status") == "up":
                out.append(n)
        return out

    def replica_of(self, master_address):
        port = int(master_address.rsplit(":", 1)[1])
        for n in self.replica_nodes():
            if int(n.info("replication").get("master_port", 0)) == port:
                return n
        raise AssertionError("no live replica of %s" % master_address)

    def reshard(self, source, target, slots):
        """Moves `slots` slots from master `source` to master `target` (node
        ids from CLUSTER MYID), key by key: clients see ASK for keys already
        moved, then MOVED once each slot is done. Blocks until done."""
        src_id = self.node_at(source).command("CLUSTER", "MYID")
        dst_id = self.node_at(target).command("CLUSTER", "MYID")
        out = subprocess.run(["redis-cli"] + self._cli_tls() + ["--cluster", "reshard", source, "--cluster-from", src_id,
                              "--cluster-to", dst_id, "--cluster-slots", str(slots), "--cluster-yes",
                              "--cluster-pipeline", "10"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120 * SLOW)
        check(out.returncode == 0, "redis-cli --cluster reshard failed:\n%s" % out.stdout.decode()[-3000:])


# ---------------------------------------------------------------------------
# Sentinel

class RedisSentinelSet:
    """A master, `replicas` replicas and `sentinels` sentinels monitoring the
    master as `name` with quorum 2. down-after-milliseconds is down_after_ms."""

    def __init__(self, t, name="mymaster", replicas=1, sentinels=3, down_after_ms=1000, failover_timeout_ms=3000,
                 data_args=(), sentinel_auth=None, tls=None):
        self.t = t
        self.name = name
        self.down_after_ms = down_after_ms
        self.master = RedisNode(t, data_args, name="master", tls=tls)
        self.replica_list = [RedisNode(t, list(data_args) + ["--replicaof", "127.0.0.1", str(self.master.port)],
                                       name="replica", tls=tls) for _ in range(replicas)]
        conf = ("sentinel monitor %s 127.0.0.1 %d 2\n" % (name, self.master.port) +
                "sentinel down-after-milliseconds %s %d\n" % (name, down_after_ms) +
                "sentinel failover-timeout %s %d\n" % (name, failover_timeout_ms) +
                "sentinel parallel-syncs %s 1\n" % name)
        if sentinel_auth:
            user, password = sentinel_auth
            conf += "requirepass %s\n" % password
            if user:
                conf += "user %s on >%s allcommands allchannels\n" % (user, password)
        self.sentinels = [RedisNode(t, name="sentinel", sentinel_conf=conf, tls=tls) for _ in range(sentinels)]
        self.sentinel_auth = sentinel_auth

    def start(self):
        self.master.start()
        for r in self.replica_list:
            r.start()
        wait_until(lambda: all(r.info("replication").get("master_link_status") == "up" for r in self.replica_list),
                   10 * SLOW, "the replicas to sync with the master", interval=0.05)
        for s in self.sentinels:
            s.start()
        # Each sentinel has found the replicas and the other sentinels.
        def known():
            for s in self.sentinels:
                try:
                    info = dict(zip(*[iter(self._sentinel(s, "SENTINEL", "MASTER", self.name))] * 2))
                except (OSError, AssertionError):
                    return False
                if int(info.get("num-slaves", 0)) < len(self.replica_list):
                    return False
                if int(info.get("num-other-sentinels", 0)) < len(self.sentinels) - 1:
                    return False
            return True
        wait_until(known, 20 * SLOW, "the sentinels to discover the replicas and each other", interval=0.1)
        return self

    def _sentinel(self, s, *args):
        if self.sentinel_auth:
            user, password = self.sentinel_auth
            auth = ["AUTH"] + ([user] if user else []) + [password]
            payload = b"".join(b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in c)
                               for c in (auth, [str(a) for a in args]))
            with s.connect() as sock:
                sock.sendall(payload)
                f = sock.makefile("rb")
                _read_resp(f)
                return _read_resp(f)
        return s.command(*args)

    @property
    def addresses(self):
        return [s.address for s in self.sentinels]

    def master_address(self):
        """The master as the first live sentinel names it."""
        for s in self.sentinels:
            if s.alive():
                host, port = self._sentinel(s, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
                return "%s:%s" % (host, port)
        raise AssertionError("no live sentinel")

    def node_at(self, address):
        for n in [self.master] + self.replica_list:
            if n.address == address:
                return n
        raise AssertionError("no data node at %s" % address)

    def failover(self):
        """SENTINEL FAILOVER; returns when every sentinel names the new master."""
        old = self.master_address()
        check(self._sentinel(self.sentinels[0], "SENTINEL", "FAILOVER", self.name) == "OK", "SENTINEL FAILOVER")
        self.wait_master_change(old)
        return old

    def wait_master_change(self, old, timeout=30.0):
        def changed():
            try:
                return all(s.alive() is False or
                           "%s:%s" % tuple(self._sentinel(s, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)) != old
                           for s in self.sentinels)
            except (OSError, AssertionError):
                return False
        wait_until(changed, timeout * SLOW, "the sentinels to name a master other than %s" % old, interval=0.05)
        return self.master_address()
