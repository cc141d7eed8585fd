"""sessiond on a master found through Redis Sentinel (docs/CONFIGURATION.md,
redis.sentinel): real sentinels (three, quorum 2, down-after 1 s) watching a
master and its replicas, under the session load of fault_util.SessionLoad.

  - SENTINEL FAILOVER under load: errors only while the master switches;
  - SIGKILL of the master under load: service back within the sentinels'
    down-after plus their failover (figures printed), and with
    redis.wait_replicas: 1 no acknowledged write is lost;
  - sentinels that require a password (redis.sentinel.password) and an ACL
    user on the data nodes (AUTH user password from redis.url).
"""

import time

from fault_util import SessionLoad
from harness import SLOW, check, check_eq, wait_until
from redis_topology import RedisSentinelSet
from session_util import COOKIE_NAME, instructions_target, session_set_cookies, set_header
from test_ops_support import admin_overrides, scrape


def _overrides(sentinels, url="redis://127.0.0.1/0", extra=None, sentinel_extra=None):
    redis = {"url": url, "timeout": "1s",
             "sentinel": dict({"master_name": sentinels.name, "addresses": sentinels.addresses},
                              **(sentinel_extra or {}))}
    redis.update(extra or {})
    overrides, port = admin_overrides({"session": {"manager": "redis"}, "workers": 2, "redis": redis})
    return overrides, port


def _failures(samples):
    return [s for s in samples if s.error or s.status != 200]


def test_sentinel_failover_under_load_fails_requests_only_during_the_switch(t):
    sentinels = RedisSentinelSet(t).start()
    overrides, admin_port = _overrides(sentinels)
    proxy = t.sessiond(overrides=overrides)
    load = SessionLoad(proxy, clients=10, weights={"read": 1, "write": 2}, check_reads=False).start()
    time.sleep(1.5)
    old = sentinels.master_address()
    started = time.monotonic()
    sentinels.failover()
    named = time.monotonic()
    time.sleep(2.0)
    load.stop()

    samples = load.completed()
    failed = _failures(samples)
    last = max((s.t1 for s in failed), default=started) - started
    print("SENTINEL FAILOVER: the sentinels named %s %.2fs after the command (was %s); %d of %d requests failed, "
          "the last %.2fs after the command; %s"
          % (sentinels.master_address(), named - started, old, len(failed), len(samples), last, load.summary()))
    outside = [s for s in failed if s.t1 < started or s.t0 > named + 1.0]
    check(not outside, "requests failed outside the switch: %s" % outside[:5])
    check(not [s for s in samples if s.error], "requests got no response at all")
    after = [s for s in samples if s.t0 > named + 1.0]
    check(len(after) >= 20, "too little load after the switch: %s" % load.summary(after))
    m = scrape(admin_port)
    check(m.value("sessiond_redis_failovers_total") >= 1, "sessiond_redis_failovers_total after a failover")
    check(m.value("sessiond_redis_connections", node=sentinels.master_address(), role="master", state="ready") == 2,
          "both workers connected to the new master")


test_sentinel_failover_under_load_fails_requests_only_during_the_switch.exclusive = True
test_sentinel_failover_under_load_fails_requests_only_during_the_switch.sanitizers = False
test_sentinel_failover_under_load_fails_requests_only_during_the_switch.timeout = 120


def test_sentinel_master_sigkill_recovers_within_down_after_plus_failover_and_wait_loses_nothing(t):
    sentinels = RedisSentinelSet(t, replicas=2).start()
    backend = t.backend_process()
    plain_overrides, _ = _overrides(sentinels)
    plain = t.sessiond(upstream=backend, overrides=plain_overrides, name="plain")
    durable_overrides, _ = _overrides(sentinels, extra={"wait_replicas": 1, "wait_timeout": "300ms"})
    durable = t.sessiond(upstream=backend, overrides=durable_overrides, name="durable")
    load = SessionLoad(plain, clients=8, weights={"read": 1, "write": 2}, check_reads=False).start()
    durable_load = SessionLoad(durable, clients=6, weights={"read": 1, "write": 2}, seed=2).start()
    time.sleep(1.5)
    old = sentinels.master_address()
    killed_at = time.monotonic()
    sentinels.node_at(old).kill()
    sentinels.wait_master_change(old)
    named_at = time.monotonic()
    time.sleep(3.0)
    load.stop()
    durable_load.stop()

    samples = load.completed()
    failed = _failures(samples)
    recovered = min((s.t0 for s in samples if s.t0 > killed_at and s.status == 200 and s.op == "write"),
                    default=None)
    last_failure = max((s.t1 for s in failed), default=killed_at)
    print("master SIGKILL: the sentinels named %s %.2fs after the kill (down-after %d ms); %d of %d requests "
          "failed, the last %.2fs after the kill; %s"
          % (sentinels.master_address(), named_at - killed_at, sentinels.down_after_ms, len(failed), len(samples),
             last_failure - killed_at, load.summary()))
    check(last_failure <= named_at + 1.0 * SLOW, "requests failed %.2fs after the sentinels named the new master"
          % (last_failure - named_at))
    check(recovered is not None, "no write succeeded after the kill")
    check(not [s for s in samples if s.error], "requests got no response at all")

    durable_failed = _failures(durable_load.completed())
    acked = durable_load.verify_acked(what="with wait_replicas: 1 after the master was killed")
    print("wait_replicas 1: %d acknowledged writes all present after the failover; %d requests failed around it; %s"
          % (acked, len(durable_failed), durable_load.summary()))
    check(acked >= 20, "only %d acknowledged writes with wait_replicas: 1" % acked)
    check(not durable_load.lost, "reads missed acknowledged keys: %s" % durable_load.lost[:3])


test_sentinel_master_sigkill_recovers_within_down_after_plus_failover_and_wait_loses_nothing.exclusive = True
test_sentinel_master_sigkill_recovers_within_down_after_plus_failover_and_wait_loses_nothing.sanitizers = False
test_sentinel_master_sigkill_recovers_within_down_after_plus_failover_and_wait_loses_nothing.timeout = 120


def test_sentinels_with_a_password_and_an_acl_user_on_the_data_nodes(t):
    acl = ["--user", "app", "on", ">app-pw", "~sessiond:*", "+@all"]
    sentinels = RedisSentinelSet(t, data_args=acl, sentinel_auth=(None, "sentinel-pw")).start()
    # The sentinels themselves reach the data nodes as the default user (no password).
    overrides, _ = _overrides(sentinels, url="redis://app:app-pw@unused/0",
                              sentinel_extra={"password": "sentinel-pw"})
    proxy = t.sessiond(overrides=overrides)
    resp = proxy.request("GET", instructions_target([set_header({"a": 1})]), timeout=10)
    check_eq(resp.status, 200, "a session write through an ACL user found through a password-protected sentinel")
    cookie = session_set_cookies(resp)[0].value
    resp = proxy.request("GET", "/echo", [("Cookie", "%s=%s" % (COOKIE_NAME, cookie))], timeout=10)
    check_eq(resp.status, 200, "the session read back")
    check("app-pw" not in proxy.stderr_text() and "sentinel-pw" not in proxy.stderr_text(), "a password was logged")

    wrong, _ = _overrides(sentinels, url="redis://app:app-pw@unused/0", sentinel_extra={"password": "nope-pw"})
    refused = t.sessiond(overrides=wrong, name="wrong")
    resp = refused.request("GET", instructions_target([set_header({"a": 1})]), timeout=10)
    check_eq(resp.status, 503, "a session write when the sentinels refuse the password")
    wait_until(lambda: "no sentinel could name master" in refused.stderr_text(), 5 * SLOW, "the error log line")
    check("nope-pw" not in refused.stderr_text(), "the wrong password was logged")
