"""sessiond on Redis Cluster (docs/CONFIGURATION.md, redis.cluster): a real
3-master, 3-replica cluster made with redis-cli --cluster create, under the
session load of fault_util.SessionLoad (keep-alive clients writing unique keys
and reading them back).

  - three sessiond instances share sessions at once;
  - a reshard under load (redis-cli --cluster reshard: keys move one by one,
    so clients meet ASK, then MOVED): no failed request, no lost write;
  - CLUSTER FAILOVER of a replica under load: no failed request;
  - SIGKILL of a master under load: errors only until the cluster promotes
    its replica (the window is printed), and with redis.wait_replicas: 1 no
    acknowledged write is lost;
  - redis.url alone at a cluster node: refused loudly (error log, metric, 503);
  - session.subject_key: the subject index across slots (revocation, the
    admin API, Regenerate and a changed subject move the entries).

Each test makes its own cluster (about a second) because each disturbs it.
"""

import time

from fault_util import SessionLoad, read_session, write_session
from harness import SLOW, check, check_eq, wait_until
from redis_topology import RedisClusterSet, RedisNode
from session_util import COOKIE_NAME, instructions_target, session_set_cookies, set_header
from test_ops_support import admin_overrides, scrape


def _cluster_proxy_overrides(cluster, extra_redis=None, workers=2):
    redis = {"url": "redis://127.0.0.1/0", "timeout": "1s", "cluster": {"seeds": cluster.seeds}}
    redis.update(extra_redis or {})
    overrides, _ = admin_overrides({"session": {"manager": "redis"}, "workers": workers, "redis": redis})
    return overrides


class _Hammer:
    """One thread per session, writing a new key and reading the session back
    without pause; records every failure and every acknowledged key."""

    def __init__(self, proxy, cookies):
        import threading
        self.proxy = proxy
        self.cookies = cookies
        self.failures = []
        self.acked = {c: {} for c in cookies}
        self.count = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(c,), daemon=True) for c in cookies]

    def start(self):
        for th in self._threads:
            th.start()
        return self

    def stop(self):
        self._stop.set()
        for th in self._threads:
            th.join(20)

    def _run(self, cookie):
        n = 0
        while not self._stop.is_set():
            n += 1
            key = "k%d" % (n % 40)  # 40 keys, rewritten: the session stays far below max_session_bytes
            try:
                resp = self.proxy.request("GET", instructions_target([set_header({key: n})]),
                                          [("Cookie", "%s=%s" % (COOKIE_NAME, cookie))], timeout=10)
                self.count += 1
                if resp.status != 200:
                    self.failures.append("write %s: %d" % (key, resp.status))
                    continue
                self.acked[cookie][key] = n
                status, data = read_session(self.proxy, cookie)
                self.count += 1
                missing = [k for k, v in self.acked[cookie].items() if (data or {}).get(k) != v]
                if status != "active" or missing:
                    self.failures.append("read: %s, missing %s" % (status, missing[:5]))
            except (OSError, AssertionError) as e:
                self.failures.append("%s: %s" % (type(e).__name__, e))

    def verify(self):
        for cookie, acked in self.acked.items():
            status, data = read_session(self.proxy, cookie)
            missing = [k for k, v in acked.items() if (data or {}).get(k) != v]
            check(status == "active" and not missing, "a moved session lost %d keys: %s" % (len(missing), missing[:5]))


def _failures(samples):
    return [s for s in samples if s.error or s.status != 200]


def test_cluster_three_instances_share_sessions_and_a_reshard_under_load_loses_nothing(t):
    cluster = RedisClusterSet(t).start()
    backend = t.backend_process()
    proxies = [t.sessiond(upstream=backend, overrides=_cluster_proxy_overrides(cluster), name="node%d" % i)
               for i in range(3)]
    for p in proxies:
        p.admin_port = p.config["admin"]["listen"].rsplit(":", 1)[1]

    # A session written through one instance is read through the others at once.
    cookies = []
    for i in range(30):
        cookie = write_session(proxies[i % 3], {"n": i})
        cookies.append(cookie)
        for other in proxies:
            status, data = read_session(other, cookie)
            check_eq((status, data), ("active", {"n": i}), "session %d read through %s" % (i, other.name))
    cookie = write_session(proxies[1], {"m": 1}, cookies[0])
    check_eq(read_session(proxies[2], cookie), ("active", {"n": 0, "m": 1}), "a second write seen by a third instance")

    # Sessions in the first slots the reshard moves (the source's lowest),
    # each slot stuffed with other keys of the same hash tag so that moving
    # it takes a while: meanwhile its session is already on the target and
    # its commands get ASK; afterwards MOVED.
    masters = cluster.masters()
    source, target = masters[0], masters[1]
    first = min(f for f, _, m, _ in cluster.slot_map() if m == source)
    src = cluster.node_at(source)
    hot = {}  # cookie -> redis key
    known = set(src.command("KEYS", "sessiond:*"))
    for i in range(400):
        if len(hot) >= 6:
            break
        cookie = write_session(proxies[i % 3], {"hot": i})
        new = set(src.command("KEYS", "sessiond:*")) - known
        known |= new
        for key in new:
            if src.command("CLUSTER", "KEYSLOT", key) < first + 600:
                hot[cookie] = key
    check(len(hot) >= 3, "could not place sessions in the slots to be moved (%d)" % len(hot))
    for key in hot.values():
        tag = key[key.index("{") + 1:key.index("}")]
        for batch in range(6):
            args = []
            for j in range(500):
                args += ["filler:{%s}:%d:%d" % (tag, batch, j), "x"]
            src.command("MSET", *args)

    load = SessionLoad(proxies[0], clients=10, weights={"read": 2, "write": 2, "regenerate": 1}).start()
    hammer = _Hammer(proxies[1], list(hot)).start()
    time.sleep(1.0)
    moved_at = time.monotonic()
    cluster.reshard(source, target, 1000)
    reshard_s = time.monotonic() - moved_at
    time.sleep(1.0)
    load.stop()
    hammer.stop()
    check(not hammer.failures, "requests on the sessions being moved failed: %s" % hammer.failures[:5])
    check(hammer.count >= 50, "only %d requests on the sessions being moved" % hammer.count)
    hammer.verify()

    samples = load.completed()
    failed = _failures(samples)
    m = scrape(int(proxies[0].admin_port))
    moved = m.value("sessiond_redis_redirects_total", kind="moved")
    asked = m.value("sessiond_redis_redirects_total", kind="ask")
    print("reshard of 1000 slots took %.1fs under load: %d requests, %d failed; redirects moved %d, ask %d; %s"
          % (reshard_s, len(samples), len(failed), moved, asked, load.summary()))
    check(len(samples) >= 200, "too little load to judge: %s" % load.summary())
    check(not failed, "%d requests failed during the reshard, e.g. %s" % (len(failed), failed[:5]))
    check(not load.lost, "reads missed acknowledged keys during the reshard: %s" % load.lost[:3])
    acked = load.verify_acked(what="after the reshard")
    check(acked >= 50, "only %d acknowledged writes" % acked)
    m1 = scrape(int(proxies[1].admin_port))
    moved += m1.value("sessiond_redis_redirects_total", kind="moved")
    asked += m1.value("sessiond_redis_redirects_total", kind="ask")
    print("with the instance on the moving sessions: moved %d, ask %d; %d requests on them" % (moved, asked,
                                                                                              hammer.count))
    check(moved >= 1, "no MOVED redirect was followed during the reshard")
    check(asked >= 1, "no ASK redirect was followed during the reshard")
    # The other instances see everything too, through their own connections.
    for cookie_i, cookie in enumerate(cookies[1:10]):
        check_eq(read_session(proxies[2], cookie)[0], "active", "session %d through node2 after the reshard" % cookie_i)
    load.verify_acked(proxy=proxies[1], what="read through another instance after the reshard")


test_cluster_three_instances_share_sessions_and_a_reshard_under_load_loses_nothing.exclusive = True
test_cluster_three_instances_share_sessions_and_a_reshard_under_load_loses_nothing.sanitizers = False
test_cluster_three_instances_share_sessions_and_a_reshard_under_load_loses_nothing.timeout = 240


def test_cluster_replica_failover_costs_no_request_and_a_killed_master_only_until_promotion(t):
    cluster = RedisClusterSet(t).start()
    backend = t.backend_process()
    proxy = t.sessiond(upstream=backend, overrides=_cluster_proxy_overrides(cluster), name="plain")
    durable = t.sessiond(upstream=backend, overrides=_cluster_proxy_overrides(
        cluster, {"wait_replicas": 1, "wait_timeout": "200ms"}), name="durable")

    # CLUSTER FAILOVER: the replica takes over in agreement with its master.
    load = SessionLoad(proxy, clients=10, weights={"read": 1, "write": 2}).start()
    time.sleep(1.0)
    master = cluster.masters()[0]
    replica = cluster.replica_of(master)
    check_eq(replica.command("CLUSTER", "FAILOVER"), "OK", "CLUSTER FAILOVER")
    wait_until(lambda: replica.address in cluster.masters(), 20 * SLOW, "the replica to become a master")
    cluster.wait_ok()
    time.sleep(1.0)
    load.stop()
    failed = _failures(load.completed())
    print("CLUSTER FAILOVER under load: %d requests, %d failed; %s"
          % (len(load.completed()), len(failed), load.summary()))
    check(not failed, "%d requests failed during CLUSTER FAILOVER, e.g. %s" % (len(failed), failed[:5]))
    check(not load.lost, "reads missed acknowledged keys: %s" % load.lost[:3])
    load.verify_acked(what="after CLUSTER FAILOVER")

    # SIGKILL of a master: errors until the cluster promotes its replica.
    load = SessionLoad(proxy, clients=10, weights={"read": 1, "write": 2}).start()
    durable_load = SessionLoad(durable, clients=6, weights={"read": 1, "write": 2}, seed=2).start()
    time.sleep(1.0)
    victim_address = cluster.masters()[1]
    victim = cluster.node_at(victim_address)
    promoted = cluster.replica_of(victim_address)
    killed_at = time.monotonic()
    victim.kill()
    wait_until(lambda: promoted.address in cluster.masters(), 30 * SLOW, "the cluster to promote a replica")
    cluster.wait_ok()
    promoted_at = time.monotonic()
    time.sleep(2.0)
    # The killed node comes back, as a replica of the promoted one, so that
    # writes waiting for one replica go through again.
    victim.start()
    wait_until(lambda: len(cluster.replica_nodes()) >= 3, 30 * SLOW, "the restarted node to rejoin as a replica")
    time.sleep(1.5)
    load.stop()
    durable_load.stop()

    samples = load.completed()
    failed = _failures(samples)
    window = (max(s.t1 for s in failed) - killed_at) if failed else 0.0
    print("master SIGKILL: promotion seen %.2fs after the kill (cluster-node-timeout %d ms); %d of %d requests "
          "failed, the last %.2fs after the kill; %s"
          % (promoted_at - killed_at, cluster.node_timeout_ms, len(failed), len(samples), window, load.summary()))
    late = [s for s in failed if s.t0 > promoted_at + 1.0]
    check(not late, "requests still failed more than 1s after the cluster promoted the replica: %s" % late[:5])
    errors = [s for s in samples if s.error]
    check(not errors, "requests got no response at all: %s" % errors[:5])
    after = [s for s in samples if s.t0 > promoted_at + 1.0]
    check(len(after) >= 20, "too little load after the promotion: %s" % load.summary(after))

    # With wait_replicas: 1, nothing acknowledged was lost with the master.
    durable_failed = _failures(durable_load.completed())
    acked = durable_load.verify_acked(what="with wait_replicas: 1 after a master was killed")
    print("wait_replicas 1: %d acknowledged writes all present; %d requests failed around the kill; %s"
          % (acked, len(durable_failed), durable_load.summary()))
    check(acked >= 20, "only %d acknowledged writes with wait_replicas: 1" % acked)
    check(not durable_load.lost, "reads missed acknowledged keys with wait_replicas: 1: %s" % durable_load.lost[:3])


test_cluster_replica_failover_costs_no_request_and_a_killed_master_only_until_promotion.exclusive = True
test_cluster_replica_failover_costs_no_request_and_a_killed_master_only_until_promotion.sanitizers = False
test_cluster_replica_failover_costs_no_request_and_a_killed_master_only_until_promotion.timeout = 240


def test_redis_url_at_a_cluster_node_is_refused_loudly(t):
    node = RedisNode(t, ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"], name="lonely").start()
    node.command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    overrides, admin_port = admin_overrides({"session": {"manager": "redis"},
                                             "redis": {"url": "redis://%s/0" % node.address}})
    proxy = t.sessiond(overrides=overrides)
    resp = proxy.request("GET", instructions_target([set_header({"a": 1})]), timeout=10)
    check_eq(resp.status, 503, "a session write with redis.url at a cluster node")
    plain = proxy.request("GET", "/echo", timeout=10)
    check_eq(plain.status, 200, "a request that needs no session")
    wait_until(lambda: "is a Redis Cluster node: set redis.cluster.seeds" in proxy.stderr_text(), 5,
               "the error log line")
    line = [ln for ln in proxy.stderr_text().splitlines() if "is a Redis Cluster node" in ln][0]
    check("[error]" in line, "the line is logged at error level: %r" % line)
    m = scrape(admin_port)
    check(m.value("sessiond_redis_cluster_url_mismatch_total") >= 1, "sessiond_redis_cluster_url_mismatch_total")
    check(m.value("sessiond_redis_connections", node=node.address, role="master", state="ready") == 0,
          "no connection to the cluster node counts as ready")
    check_eq(node.command("DBSIZE"), 0, "keys written to the cluster node")


def _session_id(proxy, cookie):
    resp = proxy.request("GET", "/echo", [("Cookie", "%s=%s" % (COOKIE_NAME, cookie))], timeout=10)
    ids = [v for n, v in resp.json()["headers"] if n.lower() == "x-session-id"]
    return ids[0] if ids else None


def _admin_call(port, method, path, token):
    from client import request as client_request
    return client_request(port, method, path, headers=[("Authorization", "Bearer " + token),
                                                       ("Connection", "close")], timeout=10.0)


def test_cluster_subject_index_revocation_and_admin_api_across_slots(t):
    """docs/CONFIGURATION.md, redis.cluster: with subject_key the index keys
    lie in other slots than the sessions; sessiond keeps them with commands
    of one key each. Two instances, sessions spread over three masters."""
    cluster = RedisClusterSet(t, replicas=0).start()
    backend = t.backend_process()
    token = "admin-token-0123456789abcdef"
    proxies = []
    for i in range(2):
        overrides = _cluster_proxy_overrides(cluster)
        overrides["session"] = {"manager": "redis", "subject_key": "user_id"}
        overrides["admin"]["token"] = token
        p = t.sessiond(upstream=backend, overrides=overrides, name="node%d" % i)
        p.admin_port = int(p.config["admin"]["listen"].rsplit(":", 1)[1])
        proxies.append(p)
    a, b = proxies

    def listing(proxy, subject):
        resp = _admin_call(proxy.admin_port, "GET", "/sessions?subject=%s" % subject, token)
        check_eq(resp.status, 200, "GET /sessions?subject=%s through %s" % (subject, proxy.name))
        return sorted(s["id"] for s in resp.json()["sessions"])

    sevens = [write_session(proxies[i % 2], {"user_id": 7, "n": i}) for i in range(6)]
    eight = write_session(a, {"user_id": 8})
    ids = sorted(_session_id(a, c) for c in sevens)
    check_eq(listing(a, 7), ids, "user 7's sessions, listed through one instance")
    check_eq(listing(b, 7), ids, "and through the other")

    # Revoke others from the first session, through the other instance.
    resp = b.request("GET", instructions_target([("X-Session-Revoke", "others")]),
                     [("Cookie", "%s=%s" % (COOKIE_NAME, sevens[0]))], timeout=10)
    check_eq(resp.status, 200, "X-Session-Revoke: others")
    for i, cookie in enumerate(sevens):
        want = "active" if i == 0 else "none"
        check_eq(read_session(a, cookie)[0], want, "session %d of user 7 after Revoke: others" % i)
    check_eq(read_session(b, eight), ("active", {"user_id": 8}), "user 8's session")
    check_eq(listing(a, 7), [_session_id(a, sevens[0])], "the listing after Revoke: others")

    # Regenerate moves the entry (a new key in another slot, most likely).
    resp = a.request("GET", instructions_target([("X-Session-Regenerate", "true")]),
                     [("Cookie", "%s=%s" % (COOKIE_NAME, sevens[0]))], timeout=10)
    check_eq(resp.status, 200, "Regenerate")
    moved = session_set_cookies(resp)[0].value
    check_eq(read_session(b, sevens[0])[0], "none", "the old id after Regenerate")
    check_eq(read_session(b, moved), ("active", {"user_id": 7, "n": 0}), "the regenerated session")
    check_eq(listing(b, 7), [_session_id(b, moved)], "the listing follows the Regenerate")

    # Changing the subject moves the session between two indexes.
    moved = write_session(b, {"user_id": 8}, moved)
    check_eq(listing(a, 7), [], "user 7 after the session became user 8's")
    check_eq(listing(a, 8), sorted([_session_id(a, moved), _session_id(a, eight)]), "user 8's sessions")

    # The admin API: one session by its public id, then a whole subject.
    pid = _session_id(a, eight)
    check_eq(_admin_call(b.admin_port, "DELETE", "/sessions/" + pid, token).status, 200, "DELETE /sessions/ID")
    check_eq(read_session(a, eight)[0], "none", "the session deleted by its public id")
    check_eq(_admin_call(b.admin_port, "DELETE", "/sessions/" + pid, token).status, 404, "DELETE of a gone id")
    resp = _admin_call(a.admin_port, "DELETE", "/sessions?subject=8", token)
    check_eq(resp.status, 200, "DELETE /sessions?subject=8")
    check_eq(resp.json()["revoked"], 1, "sessions revoked by DELETE /sessions?subject=8")
    check_eq(read_session(b, moved)[0], "none", "the last session after DELETE /sessions?subject=8")
    check_eq(listing(b, 8), [], "the listing after DELETE /sessions?subject=8")
    # Nothing of the index is left behind for the revoked sessions.
    for pattern in ("sessiond:pid:*", "sessiond:subject:*"):
        left = [k for m in cluster.masters() for k in cluster.node_at(m).command("KEYS", pattern)]
        check_eq(left, [], "%s keys left after every indexed session was revoked" % pattern)
