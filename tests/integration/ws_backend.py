#!/usr/bin/python3
"""A real WebSocket backend for the upgrade tests, on the `websockets` library
(Debian's python3-websockets, hence /usr/bin/python3: a pyenv python3 on PATH
may not see Debian's dist-packages).

  /usr/bin/python3 ws_backend.py --port 0        prints "ready PORT" once it listens
  ... --tls-cert CERT --tls-key KEY              the same over TLS (an https:// / wss:// backend)

It speaks sessiond's header protocol like any backend: plain HTTP requests
answer with session instructions, and a WebSocket handshake may carry them
on its 101.

HTTP (answered by process_request, no upgrade):
  /login?user=NAME        200, X-Session-Set: {"user": NAME}
  /logout                 200, X-Session-Destroy: true
  /regenerate             200, X-Session-Regenerate: true
  /revoke?scope=S         200, X-Session-Revoke: S (others or all)
  /whoami                 200, JSON of the X-Session-* headers received
WebSocket (any other path):
  /echo                   echoes every message; the text "whoami" is answered with
                          JSON of the handshake's X-Session-*, Origin, Cookie and
                          X-Forwarded-* headers instead
  /echo?set=JSON          the same, and the 101 carries X-Session-Set: JSON
  /flood/N                sends N bytes in 64 KiB binary messages as fast as the
                          connection takes them, then the text "done"
  /close/CODE             closes at once with CODE
  /count                  a live counter: each message "inc" adds one and every open
                          /count socket of the same X-Session-Id gets the new value
"""

import argparse
import asyncio
import http
import json
import ssl
import sys

import websockets
from websockets.datastructures import Headers

SESSION_HEADERS = ("X-Session-Status", "X-Session-Id", "X-Session-Data", "X-Session-Expires")
SEEN_HEADERS = SESSION_HEADERS + ("Origin", "Cookie", "X-Forwarded-For", "X-Forwarded-Proto",
                                  "X-Forwarded-Host", "Via")

counters = {}   # session id -> count
watchers = {}   # session id -> set of websockets


def _headers_doc(headers):
    return {name: headers.get_all(name) for name in SEEN_HEADERS}


def _http(status, body, extra=()):
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))] + list(extra))
    return http.HTTPStatus(status), headers, body


async def process_request(path, headers):
    route, _, query = path.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
    if route == "/login":
        return _http(200, b'{"ok":true}\n', [("X-Session-Set", json.dumps({"user": params.get("user", "ada")}))])
    if route == "/logout":
        return _http(200, b'{"ok":true}\n', [("X-Session-Destroy", "true")])
    if route == "/regenerate":
        return _http(200, b'{"ok":true}\n', [("X-Session-Regenerate", "true")])
    if route == "/revoke":
        return _http(200, b'{"ok":true}\n', [("X-Session-Revoke", params.get("scope", "others"))])
    if route == "/whoami":
        return _http(200, json.dumps(_headers_doc(headers)).encode())
    return None  # a WebSocket handshake


def extra_headers(path, headers):
    _, _, query = path.partition("?")
    for p in query.split("&"):
        if p.startswith("set="):
            from urllib.parse import unquote
            return [("X-Session-Set", unquote(p[4:]))]
    return []


async def handler(ws, path):
    route = path.partition("?")[0]
    parts = [p for p in route.split("/") if p]
    if parts[:1] == ["flood"] and len(parts) > 1:
        left = int(parts[1])
        chunk = bytes(range(256)) * 256  # 64 KiB
        while left > 0:
            piece = chunk[:min(left, len(chunk))]
            await ws.send(piece)
            left -= len(piece)
        await ws.send("done")
        await ws.wait_closed()
        return
    if parts[:1] == ["close"] and len(parts) > 1:
        await ws.close(code=int(parts[1]), reason="backend closes")
        return
    if parts[:1] == ["count"]:
        sid = ws.request_headers.get("X-Session-Id", "")
        watchers.setdefault(sid, set()).add(ws)
        try:
            await ws.send(json.dumps({"count": counters.get(sid, 0)}))
            async for msg in ws:
                if msg == "inc":
                    counters[sid] = counters.get(sid, 0) + 1
                    for other in list(watchers.get(sid, ())):
                        try:
                            await other.send(json.dumps({"count": counters[sid]}))
                        except websockets.ConnectionClosed:
                            pass
        finally:
            watchers.get(sid, set()).discard(ws)
        return
    try:
        async for msg in ws:
            if msg == "whoami":
                await ws.send(json.dumps(_headers_doc(ws.request_headers)))
            else:
                await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    async with websockets.serve(handler, "127.0.0.1", args.port, process_request=process_request,
                                extra_headers=extra_headers, max_size=None, compression=None,
                                ssl=tls) as server:
        port = server.sockets[0].getsockname()[1]
        print("ready %d" % port, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
