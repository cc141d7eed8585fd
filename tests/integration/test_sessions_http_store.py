"""session.manager: http against examples/python/session_store.py
(docs/STORE-PROTOCOL.md; docs/CONFIGURATION.md, http_store): the protocol
flow seen from the store, its token, outages under on_error as for Redis, and
the reference store's own answers to what sessiond never sends."""

import json
import os
import subprocess
import sys
import time

from client import request as client_request
from harness import check, check_eq, free_port
from session_util import Browser, SessionView, check_session, make_session
from test_sessions_policy import StoreProcess, start_managed

KEY = "ab" * 32


def _store_get(store, path, method="GET", headers=None, body=None):
    h = [("Connection", "close")] + list(headers or [])
    if store.token:
        h.append(("Authorization", "Bearer " + store.token))
    return client_request(store.port, method, path, headers=h, body=body, timeout=5.0)


def test_http_store_keeps_sessions_in_the_service(t):
    proxy = start_managed(t, "http")
    b = Browser(proxy)
    view = make_session(b, {"user": "ada", "cart": [1, 2]})
    b.set({"cart": [1, 2, 3]})
    check_session(b.echo(), "active", {"user": "ada", "cart": [1, 2, 3]}, "after a write")
    # The store holds the record: data as a string, no cookie, no id.
    db_rows = subprocess.run([sys.executable, "-c",
                              "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]);"
                              "print('\\n'.join(r[0]+' '+r[1] for r in c.execute('select key, record from sessions')))",
                              proxy.store.db], capture_output=True, text=True).stdout.strip().splitlines()
    check_eq(len(db_rows), 1, "rows in the store after one session")
    key, record = db_rows[0].split(" ", 1)
    check(len(key) == 64 and b.cookie.split(".")[1] not in record and view.id not in record,
          "the store holds a keyed hash, no cookie part and no public id: %r" % db_rows[0][:200])
    check_eq(json.loads(json.loads(record)["data"]), {"cart": [1, 2, 3], "user": "ada"}, "the stored data")
    b.write(("X-Session-Destroy", "true"))
    check_session(b.echo(), "none", {}, "after Destroy")


def test_http_store_token_is_required_and_never_logged(t):
    store = StoreProcess(t, token="right-token-123456").start()
    proxy = start_managed(t, "http", store=store)
    make_session(Browser(proxy), {"user": "ada"})
    check_eq(_store_get(store, "/sessions/" + KEY, headers=[("Authorization", "Bearer wrong")]).status, 401,
             "the store refuses a wrong token")
    # sessiond with the wrong token: every store call is refused, which is an outage (503).
    wrong = StoreProcess(t, token="another-token-12345").start()
    aport = free_port()
    bad = start_managed(t, "http", store=wrong,
                        extra={"http_store": {"url": wrong.url, "token": "not-the-token-1234"},
                               "admin": {"listen": "127.0.0.1:%d" % aport}})
    bad_store = dict(bad.config["http_store"])
    check_eq(bad_store["token"], "not-the-token-1234", "the test config holds the wrong token")
    resp = Browser(bad).write(("X-Session-Set", '{"a":1}'))
    check_eq(resp.status, 503, "a write through a store that refuses the token")
    check("not-the-token-1234" not in bad.stderr_text(), "the store token never reaches the log")


def test_http_store_outage_fail_closed_then_recovers(t):
    store = StoreProcess(t).start()
    proxy = start_managed(t, "http", store=store, extra={"http_store": {"timeout": "500ms"}})
    b = Browser(proxy)
    make_session(b, {"user": "ada"})
    port = store.port
    store.stop()
    resp = b.request("/echo")
    check_eq(resp.status, 503, "a read with the store down (fail_closed)")
    check_eq(b.cookie is not None, True, "the cookie survives an outage")
    store.start(port=port)
    deadline = time.time() + 5
    while time.time() < deadline and b.request("/echo").status != 200:
        time.sleep(0.1)
    check_session(b.echo(), "active", {"user": "ada"}, "the session once the store is back (its file database)")


def test_http_store_outage_fail_open_reaches_backend(t):
    store = StoreProcess(t).start()
    proxy = start_managed(t, "http", store=store, extra={"http_store": {"timeout": "500ms", "on_error": "fail_open"}})
    b = Browser(proxy)
    make_session(b, {"user": "ada"})
    store.stop()
    resp = b.request("/echo")
    check_session(SessionView(resp), "none", {}, "a read with the store down (fail_open)")
    check(b.cookie is not None, "fail_open leaves the cookie alone")


def test_http_store_hung_service_times_out(t):
    """A service that accepts and never answers: http_store.timeout bounds
    each call, the client gets 503 (fail_closed)."""
    import socket
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    t.on_cleanup(hung.close)
    port = hung.getsockname()[1]
    o = {"session": {"manager": "http"}, "http_store": {"url": "http://127.0.0.1:%d" % port, "timeout": "300ms"}}
    proxy = t.sessiond(overrides=o)
    started = time.monotonic()
    resp = Browser(proxy).write(("X-Session-Set", '{"a":1}'))
    check_eq(resp.status, 503, "a write to a store that never answers")
    check(time.monotonic() - started < 5, "the call was bounded by http_store.timeout")


def test_reference_store_protocol_answers(t):
    """The reference store's side of docs/STORE-PROTOCOL.md, Overview."""
    store = StoreProcess(t).start()
    record = json.dumps({"data": "{\"a\":1}", "expires_at": int(time.time() * 1000) + 60000, "subject": "s1",
                         "public_id": "p1", "meta": {"created": 1}})
    check_eq(_store_get(store, "/sessions/" + KEY).status, 404, "GET of a missing session")
    created = _store_get(store, "/sessions/" + KEY, "PUT", [("If-None-Match", "*"), ("Content-Type", "application/json")],
                         record.encode())
    check_eq(created.status, 201, "PUT If-None-Match: * creates")
    etag = created.header("ETag")
    check(etag and etag.startswith('"'), "a version comes back: %r" % etag)
    check_eq(_store_get(store, "/sessions/" + KEY, "PUT", [("If-None-Match", "*")], record.encode()).status, 412,
             "If-None-Match: * on an existing session")
    check_eq(_store_get(store, "/sessions/" + KEY, "PUT", [("If-Match", '"999"')], record.encode()).status, 412,
             "If-Match with a stale version")
    got = _store_get(store, "/sessions/" + KEY)
    check_eq((got.status, got.header("ETag")), (200, etag), "GET returns the record and its version")
    listed = json.loads(_store_get(store, "/sessions?subject=s1").body)["sessions"]
    check_eq([s["key"] for s in listed], [KEY], "listing by subject")
    check_eq([s["key"] for s in json.loads(_store_get(store, "/sessions?public_id=p1").body)["sessions"]], [KEY],
             "listing by public id")
    check_eq(_store_get(store, "/sessions/" + KEY, "DELETE", [("If-Match", '"999"')]).status, 412, "stale DELETE")
    check_eq(_store_get(store, "/sessions/" + KEY, "DELETE", [("If-Match", etag)]).status, 204, "DELETE")
    check_eq(_store_get(store, "/sessions/" + KEY, "PUT", [("If-Match", etag)], record.encode()).status, 412,
             "If-Match on a deleted session never brings it back")
    check_eq(_store_get(store, "/sessions/" + KEY, "PUT", [], b"{not json").status, 400, "a malformed record")
    check_eq(_store_get(store, "/sessions/../etc", "GET").status, 404, "a malformed key")
    expired = json.dumps({"data": "{}", "expires_at": int(time.time() * 1000) - 1, "subject": "", "public_id": ""})
    check_eq(_store_get(store, "/sessions/" + KEY, "PUT", [], expired.encode()).status, 201, "an expired record")
    check_eq(_store_get(store, "/sessions/" + KEY).status, 404, "an expired record is absent")
    check_eq(_store_get(store, "/health").status, 200, "/health")
