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

  python3 app.py [--host HOST] [--port PORT]    (env APP_HOST, APP_PORT;
                                                 default 127.0.0.1:3000)
Standard library only.
"""

import argparse
import html
import json
import os
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LANGUAGE = "Python"
MAX_NAME_CHARS = 64
MAX_CART_ITEMS = 12          # keeps the session well under max_session_bytes
MAX_FORM_BYTES = 4096
PRODUCTS = ["teapot", "notebook", "lamp", "kettle", "mug", "scarf"]


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
# The page. Every piece of user or session data goes through esc().

def esc(text):
    return html.escape(str(text), quote=True)


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
pre { background: #f4f4f4; padding: .75rem; overflow-x: auto; }
form.inline { display: inline; } button { margin-right: .5rem; }
.notice { background: #fff3cd; padding: .5rem .75rem; } .error { background: #f8d7da; padding: .5rem .75rem; }
dl { display: grid; grid-template-columns: 6rem 1fr; gap: .3rem .5rem; }
dt { font-weight: bold; } dd { margin: 0; font-family: monospace; overflow-wrap: anywhere; }
"""

NOTICES = {
    "expired": "Your session has expired. Please sign in again.",
    "invalid": "Your session cookie could not be verified and was discarded.",
}


def render_page(session, error=None):
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
    parts.append("</main></body></html>\n")
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

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        session = Session(self.headers)
        if path == "/":
            self._send_html(200, render_page(session))
        elif path == "/api/session":
            raw = {name: self.headers.get(name) for name in
                   ("X-Session-Status", "X-Session-Id", "X-Session-Data", "X-Session-Expires")}
            self._send(200, "application/json", json.dumps(raw, indent=2).encode() + b"\n")
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

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
                self._send_html(400, render_page(session, "Please enter a name of 1 to %d characters."
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
        elif path == "/cart/clear":
            self._redirect([("X-Session-Delete", "cart")])
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

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
        self.send_response(303)
        self.send_header("Location", "/")
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
        # no scripts at all.
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                         "frame-ancestors 'none'; base-uri 'none'")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, fmt, *args):
        # The request line only: never session data.
        if not self.quiet:
            sys.stderr.write("%s [%s] %s\n" % (self.address_string(), self.log_date_time_string(), fmt % args))


def main():
    ap = argparse.ArgumentParser(description="sessiond example backend (Python)")
    ap.add_argument("--host", default=os.environ.get("APP_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("APP_PORT", "3000")))
    ap.add_argument("--quiet", action="store_true", help="no access log on stderr")
    args = ap.parse_args()
    Handler.quiet = args.quiet
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
