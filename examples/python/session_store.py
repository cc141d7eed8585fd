#!/usr/bin/env python3
"""A session store for sessiond's `session.manager: http`, on SQLite.

The reference implementation of the store protocol (docs/STORE-PROTOCOL.md),
Python 3 standard library only. sessiond keeps sessions here instead of in
Redis, files or memory:

  GET    PREFIX/sessions/KEY          200 the record, with ETag: "VERSION"; 404 none
  PUT    PREFIX/sessions/KEY          write the record; If-Match: "VERSION" (replace
                                      exactly that version) or If-None-Match: *
                                      (create); 412 when the precondition fails
  DELETE PREFIX/sessions/KEY          204; If-Match as for PUT; 404 when absent
  GET    PREFIX/sessions?subject=S    {"sessions": [{"key", "version", "record"}...]}
  GET    PREFIX/sessions?public_id=P  the same, for one public id
  GET    PREFIX/health                200 while the database answers

A record is {"data": "<session JSON, as a string>", "expires_at": <Unix ms>,
"subject": "...", "public_id": "...", "meta": {...}}. The store keeps it
whole and indexes "subject" and "public_id"; an expired record counts as
absent everywhere. Every write is one SQLite transaction that checks the
version and bumps it, so concurrent writers never lose an acknowledged write:
the loser of a race gets 412 and sessiond retries its batch on the new
version.

  python3 session_store.py [--host H] [--port P] [--db FILE] [--token T] [--prefix /p]
      env STORE_HOST, STORE_PORT (127.0.0.1:7000), STORE_DB (sessions.db; ":memory:"
      works too), STORE_TOKEN (when set, every request needs
      "Authorization: Bearer TOKEN"), STORE_PREFIX (path prefix, default none)

On start it prints "listening on HOST:PORT" (with the port chosen when
--port 0) and serves until SIGTERM or SIGINT.
"""

import argparse
import hmac
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 8 * 1024 * 1024
KEY_CHARS = set("0123456789abcdef")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
  key        TEXT PRIMARY KEY,
  version    INTEGER NOT NULL,
  record     TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  subject    TEXT NOT NULL DEFAULT '',
  public_id  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_subject ON sessions (subject) WHERE subject != '';
CREATE INDEX IF NOT EXISTS sessions_public_id ON sessions (public_id) WHERE public_id != '';
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires_at);
"""


def now_ms():
    return int(time.time() * 1000)


class Store:
    """The sessions table. One connection, one lock: every call is one
    transaction, so a check of a version and the write that depends on it
    cannot interleave with another writer's."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.writes = 0

    def _live(self, key):
        row = self.db.execute("SELECT version, record, expires_at FROM sessions WHERE key = ?", (key,)).fetchone()
        if row is None or row[2] <= now_ms():
            return None
        return row

    def get(self, key):
        with self.lock:
            row = self._live(key)
            return None if row is None else (row[0], row[1])

    def put(self, key, record, if_match, if_none_match):
        """(status, version): 200 or 201 and the new version, or 412."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self._live(key)
                if if_match is not None and (row is None or str(row[0]) != if_match):
                    self.db.execute("ROLLBACK")
                    return 412, None
                if if_none_match and row is not None:
                    self.db.execute("ROLLBACK")
                    return 412, None
                version = 1 if row is None else row[0] + 1
                # A dead (expired) row under the key is simply replaced.
                existing = self.db.execute("SELECT version FROM sessions WHERE key = ?", (key,)).fetchone()
                if existing is not None:
                    version = max(version, existing[0] + 1)
                self.db.execute(
                    "INSERT OR REPLACE INTO sessions (key, version, record, expires_at, subject, public_id) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (key, version, record["raw"], record["expires_at"], record["subject"], record["public_id"]))
                self._purge_some()
                self.db.execute("COMMIT")
                self.writes += 1
                return (201 if row is None else 200), version
            except Exception:
                self.db.execute("ROLLBACK")
                raise

    def delete(self, key, if_match):
        """204, 404 or 412."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self._live(key)
                if row is None:
                    self.db.execute("DELETE FROM sessions WHERE key = ?", (key,))
                    self.db.execute("COMMIT")
                    return 404
                if if_match is not None and str(row[0]) != if_match:
                    self.db.execute("ROLLBACK")
                    return 412
                self.db.execute("DELETE FROM sessions WHERE key = ?", (key,))
                self.db.execute("COMMIT")
                return 204
            except Exception:
                self.db.execute("ROLLBACK")
                raise

    def find(self, column, value):
        with self.lock:
            rows = self.db.execute(
                "SELECT key, version, record FROM sessions WHERE %s = ? AND expires_at > ? ORDER BY key" % column,
                (value, now_ms())).fetchall()
        return [{"key": k, "version": str(v), "record": json.loads(r)} for k, v, r in rows]

    def _purge_some(self):
        # Expired rows are invisible already; drop a few per write so the
        # table does not grow without bound.
        self.db.execute("DELETE FROM sessions WHERE key IN "
                        "(SELECT key FROM sessions WHERE expires_at <= ? LIMIT 16)", (now_ms(),))


def parse_record(body):
    """The record sessiond sent, checked; None when malformed."""
    try:
        record = json.loads(body)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    data, expires = record.get("data"), record.get("expires_at")
    subject, public_id = record.get("subject", ""), record.get("public_id", "")
    if not isinstance(data, str) or not isinstance(expires, int) or isinstance(expires, bool):
        return None
    if not isinstance(subject, str) or not isinstance(public_id, str):
        return None
    return {"raw": json.dumps(record, separators=(",", ":")), "expires_at": expires, "subject": subject,
            "public_id": public_id}


def etag_value(header):
    """'"7"' -> '7'; None when absent."""
    if header is None:
        return None
    header = header.strip()
    if header.startswith("W/"):
        header = header[2:]
    return header[1:-1] if len(header) >= 2 and header[0] == '"' and header[-1] == '"' else header


def make_handler(store, token, prefix):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: sessiond reuses its connections
        server_version = "sessiond-sqlite-store"

        def log_message(self, fmt, *args):  # quiet: one line per request is too much
            pass

        def reply(self, code, body=b"", etag=None):
            if isinstance(body, (dict, list)):
                body = json.dumps(body, separators=(",", ":")).encode()
            self.send_response(code)
            if body:
                self.send_header("Content-Type", "application/json")
            if etag is not None:
                self.send_header("ETag", '"%s"' % etag)
            if code != 204:  # a 204 carries no body and no Content-Length (RFC 9110 8.6)
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def authorized(self):
            if not token:
                return True
            got = self.headers.get("Authorization", "")
            return hmac.compare_digest(got.encode(), ("Bearer " + token).encode())

        def route(self):
            """(path, query) below the prefix, or None."""
            parts = urlsplit(self.path)
            path = parts.path
            if prefix:
                if not path.startswith(prefix + "/"):
                    return None
                path = path[len(prefix):]
            return path, parse_qs(parts.query, keep_blank_values=True)

        def key_of(self, path):
            key = path[len("/sessions/"):] if path.startswith("/sessions/") else ""
            return key if len(key) == 64 and set(key) <= KEY_CHARS else None

        def body(self):
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit() or int(length) > MAX_BODY:
                return None
            return self.rfile.read(int(length))

        def handle_any(self, method):
            if not self.authorized():
                self.reply(401, {"error": "unauthorized"})
                return
            routed = self.route()
            if routed is None:
                self.reply(404, {"error": "not found"})
                return
            path, query = routed
            try:
                if path == "/health" and method == "GET":
                    store.get("0" * 64)  # the database answers
                    self.reply(200, {"ok": True})
                elif path == "/sessions" and method == "GET":
                    if "subject" in query:
                        self.reply(200, {"sessions": store.find("subject", query["subject"][0])})
                    elif "public_id" in query:
                        self.reply(200, {"sessions": store.find("public_id", query["public_id"][0])})
                    else:
                        self.reply(400, {"error": "expected ?subject= or ?public_id="})
                elif self.key_of(path) is None:
                    self.reply(404, {"error": "not found"})
                elif method == "GET":
                    found = store.get(self.key_of(path))
                    if found is None:
                        self.reply(404, {"error": "no such session"})
                    else:
                        self.reply(200, found[1].encode(), etag=found[0])
                elif method == "PUT":
                    body = self.body()
                    record = parse_record(body) if body is not None else None
                    if record is None:
                        self.reply(400, {"error": "malformed record"})
                        return
                    code, version = store.put(self.key_of(path), record, etag_value(self.headers.get("If-Match")),
                                              self.headers.get("If-None-Match", "").strip() == "*")
                    if code == 412:
                        self.reply(412, {"error": "version changed"})
                    else:
                        self.reply(code, {"version": str(version)}, etag=version)
                elif method == "DELETE":
                    code = store.delete(self.key_of(path), etag_value(self.headers.get("If-Match")))
                    self.reply(code, b"" if code == 204 else {"error": "precondition or absence"})
                else:
                    self.reply(405, {"error": "method not allowed"})
            except sqlite3.Error as e:
                self.reply(503, {"error": "database: %s" % e})

        def do_GET(self):
            self.handle_any("GET")

        def do_PUT(self):
            self.handle_any("PUT")

        def do_DELETE(self):
            self.handle_any("DELETE")

        def do_POST(self):
            self.handle_any("POST")

    return Handler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("STORE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("STORE_PORT", "7000")))
    parser.add_argument("--db", default=os.environ.get("STORE_DB", "sessions.db"))
    parser.add_argument("--token", default=os.environ.get("STORE_TOKEN", ""))
    parser.add_argument("--prefix", default=os.environ.get("STORE_PREFIX", ""))
    args = parser.parse_args(argv)
    prefix = args.prefix.rstrip("/")
    store = Store(args.db)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(store, args.token, prefix))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("listening on %s:%d" % server.server_address[:2], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
