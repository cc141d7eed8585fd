#!/usr/bin/env python3
"""A small web app with sessions and no session library: it runs behind sessiond.

The app never reads or writes a cookie. sessiond hands it the session as request
headers and takes instructions back as response headers (docs/HEADER-PROTOCOL.md):

  request   X-Session-Status   none | new | active | expired | invalid
            X-Session-Id       public id of the session (absent without one)
            X-Session-Data     the session as a JSON object ("{}" when empty)
            X-Session-Expires  Unix time the session expires (absent without one)
  response  X-Session-Set: {"k": v}     merge keys (null deletes a key)
            X-Session-Delete: k1, k2    delete keys
            X-Session-Destroy: true     end the session (log out)
            X-Session-Regenerate: true  new id, same data (log in)

The request headers are trustworthy only because sessiond removes every
X-Session-* header a client sends: the app must be reachable through sessiond
alone, which is why it listens on 127.0.0.1 by default.

  python3 app.py [--host HOST] [--port PORT] [--admin-url URL] [--cookie-name NAME]
      env APP_HOST, APP_PORT (default 127.0.0.1:3000); --admin-url: sessiond's
      admin listener, linked from the page for /metrics (scripts/demo.sh
      passes it); --cookie-name: the session_cookie_name, for the page's view
      of the cookie (default session_id)
Standard library only.

Live cart (GET /live, a WebSocket): every page of a session opens one, and a
cart change in any tab is pushed to all of them at once. sessiond passes the
WebSocket handshake through its session step like any request (the socket is
bound to the session), and closes the socket itself, with a 1008 Close, when
the session ends: log out in one tab and the others see "closed 1008" within a
second. The WebSocket server is a minimal RFC 6455 one in this file (standard
library only).

The page shows what sessiond does on each request: the X-Session-* headers
the app received, the instructions it answered with (the redirect after a
form carries them to the next page as ?sent=...), and the session cookie as
the browser holds it. That last part needs JavaScript to read document.cookie,
which works only because config/demo.yaml turns HttpOnly off, for the demo
alone.
"""

import argparse
import base64
import hashlib
import html
import json
import os
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LANGUAGE = "Python"
MAX_NAME_CHARS = 64
MAX_CART_ITEMS = 12          # keeps the session well under max_session_bytes
MAX_FORM_BYTES = 4096
PRODUCTS = ["teapot", "notebook", "lamp", "kettle", "mug", "scarf"]
SESSION_HEADERS = ("X-Session-Status", "X-Session-Id", "X-Session-Data", "X-Session-Expires")
MAX_SENT_SHOWN = 8           # instruction lines taken from ?sent=


# ---------------------------------------------------------------------------
# The session as sessiond presents it.

class Session:
    """The X-Session-* request headers of one request, decoded."""

    def __init__(self, headers):
        self.status = headers.get("X-Session-Status") or "none"
        self.id = headers.get("X-Session-Id")
        self.expires = headers.get("X-Session-Expires")
        self.raw_data = headers.get("X-Session-Data")
        try:
            data = json.loads(self.raw_data or "{}")
        except ValueError:
            data = {}
        self.data = data if isinstance(data, dict) else {}

    @property
    def user(self):
        user = self.data.get("user")
        return user if isinstance(user, str) and user else None

    @property
    def cart(self):
        cart = self.data.get("cart")
        return [str(item) for item in cart] if isinstance(cart, list) else []


def instruction(value):
    """A header value for X-Session-Set: compact JSON, ASCII only (non-ASCII
    characters \\u-escaped), so it is a valid HTTP header value."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


# ---------------------------------------------------------------------------
# Live cart: a minimal RFC 6455 server side, enough for short text messages.

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_WS_FRAME = 4096          # the page sends nothing but pings and its Close


class LiveSocket:
    """One open WebSocket; send() is safe from any thread."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, opcode, payload=b""):
        frame = bytes([0x80 | opcode]) + (bytes([len(payload)]) if len(payload) < 126
                                          else b"\x7e" + struct.pack(">H", len(payload))) + payload
        with self.lock:
            try:
                self.sock.sendall(frame)
                return True
            except OSError:
                return False

    def send_json(self, obj):
        return self.send(0x1, json.dumps(obj).encode())

    def read_frame(self, rfile):
        """(opcode, payload) of the next frame from the client, or None at EOF or on a bad frame."""
        head = rfile.read(2)
        if len(head) < 2 or not head[1] & 0x80:
            return None  # closed, or unmasked (a client must mask)
        length = head[1] & 0x7f
        if length == 126:
            length = struct.unpack(">H", rfile.read(2))[0]
        elif length == 127:
            return None
        if length > MAX_WS_FRAME:
            return None
        mask = rfile.read(4)
        data = rfile.read(length)
        if len(mask) < 4 or len(data) < length:
            return None
        return head[0] & 0x0f, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class LiveHub:
    """The open live sockets, by session id: a cart change reaches every tab."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sockets = {}

    def add(self, session_id, live):
        with self.lock:
            self.sockets.setdefault(session_id, set()).add(live)

    def remove(self, session_id, live):
        with self.lock:
            self.sockets.get(session_id, set()).discard(live)
            if not self.sockets.get(session_id):
                self.sockets.pop(session_id, None)

    def publish(self, session_id, message):
        with self.lock:
            targets = list(self.sockets.get(session_id, ()))
        for live in targets:
            live.send_json(message)


HUB = LiveHub()


# ---------------------------------------------------------------------------
# The page. Every piece of user or session data goes through esc().

def esc(text):
    return html.escape(str(text), quote=True)


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; } h3 { font-size: 1rem; }
pre { background: #f4f4f4; padding: .75rem; overflow-x: auto; }
form.inline { display: inline; } button { margin-right: .5rem; }
.notice { background: #fff3cd; padding: .5rem .75rem; } .error { background: #f8d7da; padding: .5rem .75rem; }
dl { display: grid; grid-template-columns: 6rem 1fr; gap: .3rem .5rem; }
dt { font-weight: bold; } dd { margin: 0; font-family: monospace; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .2rem .4rem; vertical-align: top; }
td code, li code, #browser-cookie { font-family: monospace; overflow-wrap: anywhere; word-break: break-all; }
.demo-note { background: #e7f1ff; padding: .5rem .75rem; font-size: .9rem; }
"""

# Fills #browser-cookie from document.cookie. A file, not inline, so the
# Content-Security-Policy can stay "script-src 'self'".
DEMO_JS = """'use strict';
(function () {
  var out = document.getElementById('browser-cookie');
  var name = out.getAttribute('data-cookie-name');
  var found = null;
  document.cookie.split(';').forEach(function (pair) {
    var eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) found = pair.slice(eq + 1).trim();
  });
  out.textContent = found === null
    ? '(none: no session yet, or the cookie is HttpOnly as it should be in production)'
    : name + '=' + found;
  out.setAttribute('data-found', found === null ? 'no' : 'yes');
})();
(function () {
  // Live cart: the count follows changes made in other tabs, through sessiond.
  var status = document.getElementById('live-status');
  var count = document.getElementById('live-cart-count');
  if (!status || !window.WebSocket) return;
  var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/live');
  ws.onopen = function () { status.textContent = 'connected'; status.setAttribute('data-state', 'open'); };
  ws.onmessage = function (e) {
    var msg = JSON.parse(e.data);
    if (typeof msg.cart === 'number') count.textContent = String(msg.cart);
  };
  ws.onclose = function (e) {
    status.textContent = 'closed ' + e.code + (e.reason ? ' (' + e.reason + ')' : '');
    status.setAttribute('data-state', 'closed');
    status.setAttribute('data-code', String(e.code));
    status.setAttribute('data-closed-at', String(Date.now()));
  };
})();
"""

NOTICES = {
    "expired": "Your session has expired. Please sign in again.",
    "invalid": "Your session cookie could not be verified and was discarded.",
}


def render_page(session, error=None, received=None, sent=(), admin_url=None, cookie_name="session_id"):
    """received: the X-Session-* request headers as sent by sessiond (name ->
    value or None); sent: the instruction lines of the previous response."""
    parts = ['<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>sessiond demo (%s)</title><style>%s</style></head><body><main>" % (LANGUAGE, STYLE),
             "<h1>sessiond demo <small>(%s backend)</small></h1>" % LANGUAGE]
    if session.status in NOTICES:
        parts.append('<p class="notice" id="notice">%s</p>' % esc(NOTICES[session.status]))
    if error:
        parts.append('<p class="error" id="error">%s</p>' % esc(error))

    user = session.user
    if user:
        parts.append('<p id="whoami">Signed in as <strong id="user">%s</strong></p>' % esc(user))
        parts.append('<form method="post" action="/logout" class="inline">'
                     '<button id="logout" type="submit">Log out</button></form>')
    else:
        parts.append('<form method="post" action="/login" id="login-form">'
                     '<label for="name">Name</label> '
                     '<input id="name" name="name" required maxlength="%d" autocomplete="username"> '
                     '<button id="login" type="submit">Sign in</button></form>' % MAX_NAME_CHARS)

    cart = session.cart
    parts.append("<h2>Cart</h2>")
    parts.append('<p>Items in cart: <span id="cart-count">%d</span></p>' % len(cart))
    if cart:
        parts.append('<ul id="cart">%s</ul>' % "".join("<li>%s</li>" % esc(item) for item in cart))
    if session.id:
        parts.append('<p id="live">Live in every tab: <span id="live-cart-count">%d</span> item(s), '
                     'WebSocket <span id="live-status" data-state="connecting">connecting</span></p>' % len(cart))
    parts.append('<form method="post" action="/cart/add" class="inline">'
                 '<button id="add-item" type="submit">Add item</button></form>')
    parts.append('<form method="post" action="/cart/clear" class="inline">'
                 '<button id="clear-cart" type="submit">Empty cart</button></form>')

    parts.append("<h2>Session</h2><dl>")
    parts.append('<dt>status</dt><dd id="session-status">%s</dd>' % esc(session.status))
    parts.append('<dt>id</dt><dd id="session-id">%s</dd>' % esc(session.id or "-"))
    parts.append('<dt>expires</dt><dd id="session-expires">%s</dd>' % esc(_format_expiry(session.expires)))
    parts.append("</dl>")
    parts.append('<pre id="session-data">%s</pre>'
                 % esc(json.dumps(session.data, indent=2, sort_keys=True, ensure_ascii=False)))
    parts.append(render_wire(received or {}, sent, admin_url, cookie_name))
    parts.append('<script src="/demo.js"></script>')
    parts.append("</main></body></html>\n")
    return "".join(parts)


def render_wire(received, sent, admin_url, cookie_name):
    """What sessiond did on this request, as the app and the browser see it."""
    parts = ["<h2>On the wire</h2>",
             "<h3>Request headers sessiond added for the app</h3>",
             '<table id="received-headers"><tbody>']
    for name in SESSION_HEADERS:
        value = received.get(name)
        parts.append('<tr><th>%s</th><td><code id="received-%s">%s</code></td></tr>'
                     % (name, name.lower(), esc(value) if value is not None else "(absent)"))
    parts.append("</tbody></table>")
    parts.append("<h3>Instructions the app answered with</h3>")
    if sent:
        parts.append('<p>The last form\'s response (a redirect to this page) carried:</p><ul id="instructions">%s</ul>'
                     % "".join("<li><code>%s</code></li>" % esc(line) for line in sent))
    else:
        parts.append('<p id="instructions-none">None on the last response: the session stayed as it was.</p>')
    parts.append("<p>sessiond applied them to the session, set or cleared the cookie, and removed them "
                 "before the response reached the browser.</p>")
    parts.append("<h3>The session cookie in your browser</h3>")
    parts.append('<p><code id="browser-cookie" data-cookie-name="%s">(needs JavaScript)</code></p>'
                 % esc(cookie_name))
    parts.append('<p class="demo-note" id="httponly-note">The demo turns HttpOnly off '
                 "(<code>session_cookie_httponly: false</code> in config/demo.yaml) only so that this page "
                 "can show the cookie. Keep it on in production: then no script, yours or an injected one, "
                 "can read the session cookie. sessiond removes the cookie from every request before it "
                 "reaches the app, which sees only the headers above.</p>")
    if admin_url:
        parts.append('<p>sessiond\'s own view: <a id="metrics-link" href="%s/metrics">%s/metrics</a> '
                     "(its admin listener: Prometheus metrics, also /healthz and /readyz).</p>"
                     % (esc(admin_url), esc(admin_url)))
    return "".join(parts)


def _format_expiry(expires):
    if not expires:
        return "-"
    try:
        return "%s (%s UTC)" % (expires, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(expires))))
    except (ValueError, OverflowError):
        return expires


# ---------------------------------------------------------------------------
# HTTP.

class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps sessiond's upstream connections alive; every response
    # therefore carries a Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "sessiond-demo-python"
    quiet = False
    admin_url = None
    cookie_name = "session_id"
    # Head and body in ONE write, and no Nagle. By default http.server sends
    # the head (end_headers) and the body as two writes; on a kept-alive
    # connection the second one then waits for the ACK of the first, which
    # the peer delays (delayed ACK): 40 ms added to every response sessiond
    # reads from its pool. A buffered wfile collects the whole response and
    # handle_one_request() flushes it in one send; TCP_NODELAY covers a
    # response larger than the buffer.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        session = Session(self.headers)
        if path == "/":
            self._send_html(200, self._page(session, sent=_sent_lines(url.query)))
        elif path == "/demo.js":
            self._send(200, "text/javascript; charset=utf-8", DEMO_JS.encode())
        elif path == "/live":
            self._live(session)
        elif path == "/api/session":
            raw = {name: self.headers.get(name) for name in SESSION_HEADERS}
            self._send(200, "application/json", json.dumps(raw, indent=2).encode() + b"\n")
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _page(self, session, error=None, sent=()):
        received = {name: self.headers.get(name) for name in SESSION_HEADERS}
        return render_page(session, error, received, sent, self.admin_url, self.cookie_name)

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        form = self._read_form()
        if form is None:
            return
        session = Session(self.headers)
        if path == "/login":
            name = form.get("name", "").strip()
            if not name or len(name) > MAX_NAME_CHARS or any(ord(c) < 0x20 for c in name):
                self._send_html(400, self._page(session, "Please enter a name of 1 to %d characters."
                                                % MAX_NAME_CHARS))
                return
            # A new session id at login: a session id planted before login
            # (session fixation) is worthless afterwards. The cart survives.
            self._redirect([("X-Session-Regenerate", "true"),
                            ("X-Session-Set", instruction({"user": name}))])
        elif path == "/logout":
            self._redirect([("X-Session-Destroy", "true")])
        elif path == "/cart/add":
            cart = session.cart
            if len(cart) < MAX_CART_ITEMS:
                cart.append(PRODUCTS[len(cart) % len(PRODUCTS)])
            # Set replaces the key whole, so the app sends the full new list.
            self._redirect([("X-Session-Set", instruction({"cart": cart}))])
            if session.id:
                HUB.publish(session.id, {"cart": len(cart)})
        elif path == "/cart/clear":
            self._redirect([("X-Session-Delete", "cart")])
            if session.id:
                HUB.publish(session.id, {"cart": 0})
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _live(self, session):
        """GET /live: the WebSocket handshake (RFC 6455 section 4.2), then the
        socket stays open until the client or sessiond closes it."""
        key = self.headers.get("Sec-WebSocket-Key", "")
        upgrade = (self.headers.get("Upgrade") or "").lower()
        if upgrade != "websocket" or self.headers.get("Sec-WebSocket-Version") != "13" or len(key) != 24:
            self._send(426, "text/plain; charset=utf-8", b"a WebSocket handshake is expected here\n")
            return
        if not session.id:
            self._send(403, "text/plain; charset=utf-8", b"sign in first\n")
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True  # after the socket, this connection is done
        live = LiveSocket(self.connection)
        HUB.add(session.id, live)
        try:
            live.send_json({"cart": len(session.cart)})
            while True:
                frame = live.read_frame(self.rfile)
                if frame is None:
                    break
                opcode, payload = frame
                if opcode == 0x8:      # Close: answer with the same code, then end
                    live.send(0x8, payload[:2])
                    break
                if opcode == 0x9:      # Ping
                    live.send(0xA, payload)
        finally:
            HUB.remove(session.id, live)

    def _read_form(self):
        """The urlencoded form body as a dict, or None after answering an error."""
        if self.headers.get("Transfer-Encoding"):
            # Browsers send forms with a Content-Length; refusing the rest
            # keeps this example's framing trivially correct.
            self.close_connection = True
            self._send(411, "text/plain; charset=utf-8", b"length required\n")
            return None
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0 or length > MAX_FORM_BYTES:
            self.close_connection = True
            self._send(413 if length > 0 else 400, "text/plain; charset=utf-8", b"bad form\n")
            return None
        body = self.rfile.read(length).decode("utf-8", "replace")
        return dict(urllib.parse.parse_qsl(body, keep_blank_values=True))

    def _redirect(self, session_headers):
        # The instructions also travel to the next page (?sent=...) so that
        # it can show them: sessiond strips them from this response.
        sent = urllib.parse.urlencode([("sent", "%s: %s" % pair) for pair in session_headers])
        self.send_response(303)
        self.send_header("Location", "/?" + sent)
        for name, value in session_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def _send_html(self, status, page):
        self._send(status, "text/html; charset=utf-8", page.encode("utf-8"))

    def _send(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # The page shows one visitor's session: no shared caches, no framing,
        # no script but /demo.js.
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy",
                         "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
                         "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, fmt, *args):
        # The request line only: never session data.
        if not self.quiet:
            sys.stderr.write("%s [%s] %s\n" % (self.address_string(), self.log_date_time_string(), fmt % args))


def _sent_lines(query):
    """The instruction lines of ?sent=..., only X-Session-* ones, bounded."""
    lines = [v for k, v in urllib.parse.parse_qsl(query) if k == "sent"]
    return [line for line in lines if line.lower().startswith("x-session-")][:MAX_SENT_SHOWN]


def main():
    ap = argparse.ArgumentParser(description="sessiond example backend (Python)")
    ap.add_argument("--host", default=os.environ.get("APP_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("APP_PORT", "3000")))
    ap.add_argument("--quiet", action="store_true", help="no access log on stderr")
    ap.add_argument("--admin-url", default=os.environ.get("APP_ADMIN_URL"),
                    help="sessiond's admin listener, e.g. http://127.0.0.1:9090, linked from the page")
    ap.add_argument("--cookie-name", default="session_id", help="session_cookie_name, shown on the page")
    args = ap.parse_args()
    Handler.quiet = args.quiet
    Handler.admin_url = args.admin_url.rstrip("/") if args.admin_url else None
    Handler.cookie_name = args.cookie_name
    ThreadingHTTPServer.daemon_threads = True
    try:
        server = ThreadingHTTPServer((args.host, args.port), Handler)
    except OSError as e:
        sys.stderr.write("app.py: cannot listen on %s:%d: %s\n" % (args.host, args.port, e.strerror))
        return 1
    sys.stderr.write("app.py: listening on http://%s:%d/\n" % (args.host, args.port))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
