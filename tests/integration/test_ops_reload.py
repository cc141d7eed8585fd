"""SIGHUP reloads the config file (docs/CONFIGURATION.md, Reload): a valid new file
applies to new requests; an invalid one is reported on stderr and the
running configuration keeps serving."""

import json
import signal

from harness import check, check_eq, echo_headers, to_yaml
from test_ops_support import cookie_attrs, cookie_value, set_headers_target, wait_for

SECRET_2 = "second-reload-secret-0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def _reload(proxy, config=None):
    if config is not None:
        proxy.config = config
    proxy.write_config()
    proxy.signal(signal.SIGHUP)


def _create(proxy, conn=None):
    target = set_headers_target(("X-Session-Set", '{"k":"v"}'))
    return conn.request("GET", target) if conn else proxy.request("GET", target)


def test_reload_applies_cookie_attributes_upstream_and_log_settings(t):
    a, b = t.backend(), t.backend()
    proxy = t.sessiond(upstream=a, overrides={
        "session": {"session_cookie_name": "sid_a", "session_cookie_samesite": "Lax"},
        "log": {"access": "combined", "level": "info"}})
    resp = _create(proxy)
    check_eq(cookie_attrs(resp, "sid_a").get("samesite"), "Lax", "SameSite before the reload")
    check_eq(len(a.requests()), 1, "backend A requests before the reload")
    kept = t.connect(proxy.port)
    check_eq(kept.request("GET", "/echo").status, 200, "keep-alive request before the reload")

    config = json.loads(json.dumps(proxy.config))
    config["upstream"] = b.url
    config["session"].update({"session_cookie_name": "sid_b", "session_cookie_samesite": "Strict",
                              "session_expiration_time": "10m"})
    config["log"] = {"access": "json", "level": "debug"}
    stdout_before = len(proxy.stdout_text())
    _reload(proxy, config)
    wait_for(lambda: "configuration reloaded" in proxy.stderr_text(), 5, "the reload notice")

    def switched():
        resp = _create(proxy)
        return resp if cookie_value(resp, "sid_b") else None
    wait_for(switched, 5, "a session cookie named sid_b after SIGHUP")
    b_sets = len(b.requests(path="/set-headers"))
    resp = _create(proxy)
    attrs = cookie_attrs(resp, "sid_b") or {}
    check_eq((attrs.get("samesite"), attrs.get("max-age")), ("Strict", "600"), "SameSite, Max-Age after the reload")
    check_eq(cookie_value(resp, "sid_a"), None, "a cookie still named sid_a")
    check_eq(len(b.requests(path="/set-headers")), b_sets + 1, "backend B /set-headers requests after the reload")
    a_count = len(a.requests())
    for i in range(3):
        check_eq(proxy.request("GET", "/echo?after=%d" % i).status, 200, "request after the reload")
    check_eq(kept.request("GET", "/echo?kept=1").status, 200, "keep-alive request after the reload")
    check_eq(len(a.requests()), a_count, "backend A requests after the switch")
    check_eq(len(b.requests(path="/echo")), 4, "backend B /echo requests (incl. the kept-alive connection)")
    check("configuration reloaded" in proxy.stderr_text(), "no reload notice on stderr")

    new_lines = [line for line in proxy.stdout_text()[stdout_before:].split("\n") if line]
    last = json.loads(new_lines[-1])
    check_eq((last["path"], last["status"]), ("/echo?kept=1", 200), "last access log entry, now JSON")
    proxy.request("GET", "/echo", headers=[("Cookie", "sid_b=not-valid")])
    check("[debug]" in proxy.stderr_text(), "log.level debug after the reload shows no debug line")


def test_reload_invalid_file_keeps_serving_the_old_config(t):
    a, b = t.backend(), t.backend()
    proxy = t.sessiond(upstream=a, overrides={"session": {"session_cookie_name": "sid_old"}})
    check(cookie_value(_create(proxy), "sid_old"), "no sid_old cookie at start")
    conn = t.connect(proxy.port)
    check_eq(conn.request("GET", "/echo").status, 200, "keep-alive request")

    def variant(**changes):
        cfg = json.loads(json.dumps(proxy.config))
        cfg["upstream"] = b.url
        cfg["session"] = {"session_cookie_name": "sid_new"}
        for k, v in changes.items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = v
        return to_yaml(cfg) + "\n"
    broken_files = [
        variant() + "no_such_key: 1\n",                                        # unknown key
        variant() + "session: [unclosed\n",                                    # YAML syntax
        variant(secret_key=None, secret_key_file="/nonexistent/sessiond.key"),  # unreadable secret
        variant(secret_key="too-short"),                                        # secret < 32 bytes
        variant(upstream="ftp://127.0.0.1:1"),                                  # bad upstream
        "",                                                                     # empty file
    ]
    for i, text in enumerate(broken_files):
        failures = proxy.stderr_text().count("reload failed")
        with open(proxy.config_path, "w") as f:
            f.write(text)
        proxy.signal(signal.SIGHUP)
        wait_for(lambda: proxy.stderr_text().count("reload failed") > failures, 5,
                 "'reload failed' on stderr for broken file #%d" % i)
        check_eq(proxy.returncode, None, "sessiond exited after broken file #%d" % i)
        resp = _create(proxy)
        check_eq(resp.status, 200, "request after broken file #%d" % i)
        check(cookie_value(resp, "sid_old"), "cookie name changed by broken file #%d: %r"
              % (i, resp.header_values("Set-Cookie")))
        check_eq(conn.request("GET", "/echo?i=%d" % i).status, 200, "keep-alive request after broken file #%d" % i)
    check_eq(len(b.requests()), 0, "requests that reached the upstream of a broken file")
    line = [x for x in proxy.stderr_text().split("\n") if "reload failed" in x][0]
    check(line.startswith("sessiond: ") and proxy.config_path in line,
          "reload failure line does not name the file: %r" % line)

    # A good file after the broken ones still applies.
    _reload(proxy)
    proxy.config["session"]["session_cookie_name"] = "sid_fixed"
    _reload(proxy)
    wait_for(lambda: cookie_value(_create(proxy), "sid_fixed"), 5, "sid_fixed after a good reload")
    check_eq(proxy.stop(), 0, "exit status after the reloads")


def test_reload_new_secret_invalidates_old_cookies_unless_listed_as_fallback(t):
    proxy = t.sessiond()
    token = cookie_value(_create(proxy), "session_id")
    jar = [("Cookie", "session_id=" + token)]
    check_eq(echo_headers(proxy.request("GET", "/echo", headers=jar), "X-Session-Status"), ["active"],
             "status before the reload")
    old_secret = proxy.config["secret_key"]

    proxy.config["secret_key"] = SECRET_2
    _reload(proxy)
    wait_for(lambda: echo_headers(proxy.request("GET", "/echo", headers=jar), "X-Session-Status") == ["invalid"],
             5, "the old cookie to be invalid under the new secret")

    proxy.config["secret_key_fallbacks"] = [old_secret]
    _reload(proxy)
    resp = wait_for(lambda: (lambda r: r if echo_headers(r, "X-Session-Status") == ["active"] else None)(
        proxy.request("GET", "/echo", headers=jar)), 5, "the old cookie to verify under the fallback secret")
    check_eq(echo_headers(resp, "X-Session-Data"), ['{"k":"v"}'], "session data under the fallback key")
    reissued = cookie_value(resp, "session_id")
    check(reissued and reissued != token,
          "a fallback-key cookie was not re-issued: %r" % resp.header_values("Set-Cookie"))
    out = proxy.stdout_text() + proxy.stderr_text()
    check(SECRET_2 not in out and old_secret not in out, "a secret appears in the output")


def test_reload_applies_session_size_limit(t):
    proxy = t.sessiond(overrides={"session": {"manager": "memory", "max_session_bytes": 4096}})
    big = set_headers_target(("X-Session-Set", json.dumps({"blob": "x" * 1000})))
    check_eq(proxy.request("GET", big).status, 200, "1 KB session under a 4 KB limit")
    proxy.config["session"]["max_session_bytes"] = 512
    _reload(proxy)
    wait_for(lambda: proxy.request("GET", big).status == 502, 5, "502 for a 1 KB session under a 512 B limit")


def test_reload_switches_the_session_manager(t):
    # Under the cookie manager a destroyed session's old cookie still verifies
    # (it carries its own data); under a store manager the store forgets it.
    proxy = t.sessiond()
    proxy.config["session"] = {"manager": "memory"}
    _reload(proxy)
    wait_for(lambda: "configuration reloaded" in proxy.stderr_text(), 5, "the reload notice")
    resp = _create(proxy)
    token = cookie_value(resp, "session_id")
    jar = [("Cookie", "session_id=" + token)]
    check_eq(echo_headers(proxy.request("GET", "/echo", headers=jar), "X-Session-Data"), ['{"k":"v"}'],
             "session data from the memory store")
    check_eq(proxy.request("GET", set_headers_target(("X-Session-Destroy", "true")), headers=jar).status, 200,
             "destroy")
    check_eq(echo_headers(proxy.request("GET", "/echo", headers=jar), "X-Session-Status"), ["none"],
             "status of a destroyed memory-store session's old cookie")


def test_reload_of_listen_or_workers_keeps_the_running_listener(t):
    proxy = t.sessiond()
    old_port = proxy.port
    changed = json.loads(json.dumps(proxy.config))
    changed["listen"] = "127.0.0.1:1"
    changed["workers"] = 3
    with open(proxy.config_path, "w") as f:
        f.write(to_yaml(changed) + "\n")
    proxy.signal(signal.SIGHUP)
    wait_for(lambda: "restart" in proxy.stderr_text(), 5, "a warning that listen/workers need a restart")
    check_eq(proxy.request("GET", "/echo").status, 200, "request on the original port %d" % old_port)


def test_reload_applies_to_the_first_request_of_an_earlier_connection(t):
    # A connection accepted before the reload whose first request arrives
    # after it: that request is new, so all of it follows the new file (the
    # access log format as well as the session settings), never a mix.
    proxy = t.sessiond(overrides={"session": {"session_cookie_name": "sid_a"}, "log": {"access": "combined"}})
    early = t.connect(proxy.port)  # accepted now, first request after the reload
    check_eq(proxy.request("GET", "/echo").status, 200, "request before the reload")
    proxy.config["session"]["session_cookie_name"] = "sid_b"
    proxy.config["log"]["access"] = "json"
    _reload(proxy)
    wait_for(lambda: "configuration reloaded" in proxy.stderr_text(), 5, "the reload notice")
    wait_for(lambda: cookie_value(_create(proxy), "sid_b"), 5, "new connections to use the new config")
    resp = _create(proxy, early)
    check_eq(resp.status, 200, "first request on the early connection")
    names = [v.split("=", 1)[0] for v in resp.header_values("Set-Cookie")]
    last = [line for line in proxy.stdout_text().split("\n") if line][-1]
    check_eq((names, last.startswith("{")), (["sid_b"], True),
             "(cookie names, access line is JSON) for the first request on a connection accepted before the "
             "reload; its log line: %r" % last[:120])


def test_reload_upstream_change_survives_requests_in_flight_during_it(t):
    # A request to the old upstream that is in flight during the reload ends
    # after it; its upstream connection must not go back into the pool that
    # new requests (for the new upstream) draw from.
    a, b = t.backend(), t.backend()
    proxy = t.sessiond(upstream=a)
    slow = t.connect(proxy.port)
    slow.send(b"GET /slow-headers/800 HTTP/1.1\r\nHost: x\r\n\r\n")
    check_eq(len(a.wait_requests(1, path="/slow-headers/800")), 1, "slow request at backend A")
    proxy.config["upstream"] = b.url
    _reload(proxy)
    wait_for(lambda: "configuration reloaded" in proxy.stderr_text(), 5, "the reload notice")
    check_eq(slow.read_response(timeout=5).status, 200, "the slow request (old upstream)")
    a_before = len(a.requests())
    for i in range(5):
        check_eq(proxy.request("GET", "/echo?after=%d" % i).status, 200, "request %d after the reload" % i)
    check_eq((len(a.requests()) - a_before, len(b.requests(path="/echo"))), (0, 5),
             "(requests to old upstream A, to new upstream B) after the reload")
