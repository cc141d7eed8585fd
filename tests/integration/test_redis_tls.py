"""sessiond's redis store over TLS (docs/CONFIGURATION.md, redis.tls) against
real redis-server processes listening only on a TLS port (--port 0
--tls-port P), with a test CA made by the openssl CLI (tls_util.Pki):

  - rediss:// to one Redis: sessions written and read, through an ACL user;
    a reconnect resumes the TLS session;
  - a CA that did not sign the server's certificate, and a name it does not
    carry: 503 under fail_closed, an error line that names the node and the
    reason, sessiond_redis_tls_connections_total{outcome="failed"} and
    sessiond_store_errors_total counted;
  - tls-auth-clients yes: refused without a client certificate, served with one;
  - Sentinel with TLS on the sentinels and the data nodes (tls-replication):
    sessions survive a SENTINEL FAILOVER to a master verified by its own host;
  - Redis Cluster with tls-cluster yes (3 masters): sessions across slots on
    every master, each node verified by the address the slot map gives;
  - for both, a CA that did not sign the nodes' certificates: 503 and the
    error line.
"""

from harness import SLOW, check, check_eq, wait_until
from redis_topology import RedisClusterSet, RedisNode, RedisSentinelSet, RedisTls
from session_util import COOKIE_NAME, instructions_target, session_set_cookies, set_header
from fault_util import read_session, write_session
from test_ops_support import admin_overrides, scrape
from tls_util import Pki

ACL = ["--user", "app", "on", ">app-pw", "~*", "+@all"]


def _proxy(t, redis, workers=1, name=None):
    section = dict({"timeout": "1s", "on_error": "fail_closed"}, **redis)
    overrides, admin_port = admin_overrides({"session": {"manager": "redis"}, "workers": workers, "redis": section})
    return t.sessiond(overrides=overrides, name=name), admin_port


def _read(proxy, cookie):
    status, data = read_session(proxy, cookie)
    check_eq(status, "active", "the session's status")
    return data


def _tls_count(admin_port, outcome):
    return scrape(admin_port).value("sessiond_redis_tls_connections_total", outcome=outcome)


def _check_refused_by_verification(t, redis, name):
    """A sessiond whose redis.tls trusts another CA: 503 for a session write,
    an error line naming the TLS failure, counted; returns the line."""
    other_ca = Pki(t.tmpdir, name="other-" + name).ca_cert
    redis = dict(redis, tls=dict(redis["tls"], ca_file=other_ca))
    proxy, admin_port = _proxy(t, redis, name=name)
    resp = proxy.request("GET", instructions_target([set_header({"a": 1})]), timeout=10)
    check_eq(resp.status, 503, "%s: a session write with a CA that did not sign the nodes' certificates" % name)
    want = "TLS handshake with 127.0.0.1:"

    def error_lines():
        return [ln for ln in proxy.stderr_text().splitlines() if want in ln and "[error]" in ln]
    wait_until(error_lines, 5 * SLOW, "%s: an error line with %r" % (name, want))
    line = error_lines()[0]
    check("certificate verify failed: " in line, "%s: the line %r" % (name, line))
    check(_tls_count(admin_port, "failed") >= 1, "%s: TLS failures counted" % name)
    return line


def test_rediss_standalone_sessions_written_and_read_through_an_acl_user(t):
    tls = RedisTls(Pki(t.tmpdir))
    redis = RedisNode(t, ACL, tls=tls).start()
    proxy, admin_port = _proxy(t, {"url": "rediss://app:app-pw@127.0.0.1:%d/0" % redis.port,
                                   "tls": {"ca_file": tls.ca}}, workers=2)
    cookie = write_session(proxy, {"user": "alice"})
    cookie = write_session(proxy, {"cart": [1, 2]}, cookie)
    check_eq(_read(proxy, cookie), {"user": "alice", "cart": [1, 2]}, "the session read back over TLS")
    check_eq(redis.command("DBSIZE"), 1, "keys in the TLS-only Redis")
    # Verified by the URL's host, 127.0.0.1 (an IP address of the certificate).
    check(_tls_count(admin_port, "full") >= 1, "sessiond_redis_tls_connections_total{outcome=\"full\"}")
    check_eq(_tls_count(admin_port, "resumed"), 0, "resumed TLS sessions before any reconnect")
    # Redis drops sessiond's connections: they come back by resuming the
    # TLS sessions Redis handed out, without a full handshake.
    check(redis.command("CLIENT", "KILL", "TYPE", "normal") >= 1, "CLIENT KILL found sessiond's connections")
    wait_until(lambda: _tls_count(admin_port, "resumed") >= 1, 5 * SLOW, "a reconnect that resumes its TLS session")
    check_eq(_read(proxy, cookie), {"user": "alice", "cart": [1, 2]}, "the session read after the reconnect")
    check_eq(_tls_count(admin_port, "failed"), 0, "TLS failures")
    check("app-pw" not in proxy.stderr_text(), "the password was logged")


def test_rediss_wrong_ca_or_wrong_name_is_503_with_a_log_line_naming_the_reason(t):
    pki = Pki(t.tmpdir)
    tls = RedisTls(pki)
    redis = RedisNode(t, tls=tls).start()
    other_ca = Pki(t.tmpdir, name="other").ca_cert
    url = "rediss://127.0.0.1:%d/0" % redis.port
    # Redis sends its CA with its certificate (OpenSSL builds the chain from
    # tls-ca-cert-file), so an unknown CA reads "self-signed certificate in
    # certificate chain" here, "unable to get local issuer certificate"
    # without it.
    cases = [
        ("wrong-ca", {"ca_file": other_ca}, "certificate verify failed: "),
        ("wrong-name", {"ca_file": tls.ca, "server_name": "redis.example.org"},
         "certificate verify failed: hostname mismatch)"),
    ]
    for name, section, reason in cases:
        proxy, admin_port = _proxy(t, {"url": url, "tls": section}, name=name)
        resp = proxy.request("GET", instructions_target([set_header({"a": 1})]), timeout=10)
        check_eq(resp.status, 503, "%s: a session write" % name)
        check_eq(proxy.request("GET", "/echo", timeout=10).status, 200, "%s: a request that needs no session" % name)
        want = "redis: TLS handshake with 127.0.0.1:%d failed (%s" % (redis.port, reason)
        wait_until(lambda: [ln for ln in proxy.stderr_text().splitlines() if want in ln and "[error]" in ln],
                   5 * SLOW, "%s: the error line %r" % (name, want))
        m = scrape(admin_port)
        check(m.value("sessiond_redis_tls_connections_total", outcome="failed") >= 1, "%s: TLS failures" % name)
        check_eq(m.value("sessiond_redis_tls_connections_total", outcome="full"), 0, "%s: TLS sessions" % name)
        check(m.total("sessiond_store_errors_total") >= 1, "%s: sessiond_store_errors_total" % name)
    check_eq(redis.command("DBSIZE"), 0, "keys written past a failed verification")


def test_rediss_client_certificates_required_by_redis(t):
    pki = Pki(t.tmpdir)
    tls = RedisTls(pki, auth_clients=True)
    redis = RedisNode(t, tls=tls).start()
    url = "rediss://127.0.0.1:%d/0" % redis.port

    without, admin_port = _proxy(t, {"url": url, "tls": {"ca_file": tls.ca}}, name="without")
    resp = without.request("GET", instructions_target([set_header({"a": 1})]), timeout=10)
    check_eq(resp.status, 503, "a session write without a client certificate")
    want = "redis: TLS handshake with 127.0.0.1:%d failed (" % redis.port
    wait_until(lambda: want in without.stderr_text(), 5 * SLOW, "the log line %r" % want)
    check(_tls_count(admin_port, "failed") >= 1, "TLS failures counted")

    cert, key = pki.issue("sessiond-client", dns=("sessiond",), ips=())
    with_cert, _ = _proxy(t, {"url": url, "tls": {"ca_file": tls.ca, "client_certificate": cert,
                                                  "client_key": key}}, name="with")
    cookie = write_session(with_cert, {"a": 1})
    check_eq(_read(with_cert, cookie), {"a": 1}, "the session read back with a client certificate")


def test_sentinel_with_tls_on_sentinels_and_data_nodes_survives_a_failover(t):
    tls = RedisTls(Pki(t.tmpdir))
    sentinels = RedisSentinelSet(t, data_args=ACL, tls=tls).start()
    section = {"url": "redis://app:app-pw@unused/0", "tls": {"enabled": True, "ca_file": tls.ca},
               "sentinel": {"master_name": sentinels.name, "addresses": sentinels.addresses}}
    line = _check_refused_by_verification(t, section, "sentinel-wrong-ca")
    check("no sentinel could name master" in line, "the sentinels' failure is what the line reports: %r" % line)
    proxy, admin_port = _proxy(t, section, workers=2)
    cookie = write_session(proxy, {"before": 1})
    check_eq(_read(proxy, cookie), {"before": 1}, "the session read back through the sentinels' master")
    old = sentinels.failover()
    new = sentinels.master_address()
    check(new != old, "the master moved")
    # The first requests may still meet the switch; the session itself was
    # replicated (over TLS) before the failover.
    wait_until(lambda: proxy.request("GET", instructions_target([set_header({"after": 2})]),
                                     [("Cookie", "%s=%s" % (COOKIE_NAME, cookie))], timeout=10).status == 200,
               10 * SLOW, "a session write on the new master")
    check_eq(_read(proxy, cookie), {"before": 1, "after": 2}, "the session after the failover")
    m = scrape(admin_port)
    check_eq(m.value("sessiond_redis_connections", node=new, role="master", state="ready"), 2,
             "both workers connected to the new master")
    # Sentinel queries, the subscription and the data nodes: all TLS, none failed.
    check(m.value("sessiond_redis_tls_connections_total", outcome="full") +
          m.value("sessiond_redis_tls_connections_total", outcome="resumed") >= 6,
          "TLS connections to sentinels and masters")
    check_eq(m.value("sessiond_redis_tls_connections_total", outcome="failed"), 0, "TLS failures")


test_sentinel_with_tls_on_sentinels_and_data_nodes_survives_a_failover.timeout = 120


def test_cluster_with_tls_cluster_serves_sessions_on_every_master(t):
    tls = RedisTls(Pki(t.tmpdir))
    cluster = RedisClusterSet(t, masters=3, replicas=0, extra_args=ACL, tls=tls).start()
    section = {"url": "rediss://app:app-pw@unused/0", "tls": {"ca_file": tls.ca}, "cluster": {"seeds": cluster.seeds}}
    _check_refused_by_verification(t, section, "cluster-wrong-ca")
    proxy, admin_port = _proxy(t, section, workers=2)
    sessions = {}
    for i in range(30):
        sessions[write_session(proxy, {"n": i})] = i
    for cookie, i in sessions.items():
        check_eq(_read(proxy, cookie), {"n": i}, "session %d read back" % i)
    per_master = {m: cluster.node_at(m).command("DBSIZE") for m in cluster.masters()}
    check_eq(sum(per_master.values()), 30, "sessions stored in the cluster (%s)" % per_master)
    check(all(n > 0 for n in per_master.values()), "every master holds sessions: %s" % per_master)
    m = scrape(admin_port)
    for master in cluster.masters():
        check(m.value("sessiond_redis_connections", node=master, role="master", state="ready") >= 1,
              "a TLS connection to %s is ready" % master)
    check(m.value("sessiond_redis_tls_connections_total", outcome="full") >= 3, "TLS connections to the masters")
    check_eq(m.value("sessiond_redis_tls_connections_total", outcome="failed"), 0, "TLS failures")


test_cluster_with_tls_cluster_serves_sessions_on_every_master.timeout = 120
