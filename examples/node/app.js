#!/usr/bin/env node
// A small web app with sessions and no session library: it runs behind sessiond.
//
// The app never reads or writes a cookie. sessiond hands it the session as
// request headers and takes instructions back as response headers
// (docs/HEADER-PROTOCOL.md):
//
//   request   X-Session-Status   none | new | active | expired | invalid
//             X-Session-Id       public id of the session (absent without one)
//             X-Session-Data     the session as a JSON object ("{}" when empty)
//             X-Session-Expires  Unix time the session expires (absent without one)
//   response  X-Session-Set: {"k": v}     merge keys (null deletes a key)
//             X-Session-Delete: k1, k2    delete keys
//             X-Session-Destroy: true     end the session (log out)
//             X-Session-Regenerate: true  new id, same data (log in)
//
// The request headers are trustworthy only because sessiond removes every
// X-Session-* header a client sends: the app must be reachable through
// sessiond alone, which is why it listens on 127.0.0.1 by default.
//
//   node app.js [--host HOST] [--port PORT] [--admin-url URL] [--cookie-name NAME]
//       env APP_HOST, APP_PORT (default 127.0.0.1:3000); --admin-url: sessiond's
//       admin listener, linked from the page for /metrics (scripts/demo.sh
//       passes it); --cookie-name: the session_cookie_name, for the page's
//       view of the cookie (default session_id)
// Node.js built-in modules only.
//
// The page shows what sessiond does on each request: the X-Session-* headers
// the app received, the instructions it answered with (the redirect after a
// form carries them to the next page as ?sent=...), and the session cookie as
// the browser holds it. That last part needs JavaScript to read
// document.cookie, which works only because config/demo.yaml turns HttpOnly
// off, for the demo alone.
'use strict';

const http = require('http');

const LANGUAGE = 'Node.js';
const MAX_NAME_CHARS = 64;
const MAX_CART_ITEMS = 12; // keeps the session well under max_session_bytes
const MAX_FORM_BYTES = 4096;
const PRODUCTS = ['teapot', 'notebook', 'lamp', 'kettle', 'mug', 'scarf'];
const SESSION_HEADERS = ['X-Session-Status', 'X-Session-Id', 'X-Session-Data', 'X-Session-Expires'];
const MAX_SENT_SHOWN = 8; // instruction lines taken from ?sent=
const options = { adminUrl: process.env.APP_ADMIN_URL || null, cookieName: 'session_id' };

// ---------------------------------------------------------------------------
// The session as sessiond presents it. Node lower-cases request header names.

function readSession(headers) {
  let data = {};
  try {
    const parsed = JSON.parse(headers['x-session-data'] || '{}');
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) data = parsed;
  } catch (e) {
    // Not JSON: treat as an empty session, as sessiond would never send it.
  }
  const user = typeof data.user === 'string' && data.user ? data.user : null;
  const cart = Array.isArray(data.cart) ? data.cart.map(String) : [];
  return {
    status: headers['x-session-status'] || 'none',
    id: headers['x-session-id'] || null,
    expires: headers['x-session-expires'] || null,
    data,
    user,
    cart,
  };
}

// A header value for X-Session-Set: compact JSON with every non-ASCII UTF-16
// unit \u-escaped. Node writes header values as latin-1, so raw non-ASCII
// text would be corrupted (or rejected) on the wire.
function instruction(value) {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g,
    (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

// ---------------------------------------------------------------------------
// The page. Every piece of user or session data goes through esc().

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;' };

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const STYLE = `
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
`;

// Fills #browser-cookie from document.cookie. A file, not inline, so the
// Content-Security-Policy can stay "script-src 'self'".
const DEMO_JS = `'use strict';
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
`;

const NOTICES = {
  expired: 'Your session has expired. Please sign in again.',
  invalid: 'Your session cookie could not be verified and was discarded.',
};

// received: the X-Session-* request headers as sessiond sent them (name ->
// value or null); sent: the instruction lines of the previous response.
function renderPage(session, error, received = {}, sent = []) {
  const parts = [
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>sessiond demo (${LANGUAGE})</title><style>${STYLE}</style></head><body><main>`,
    `<h1>sessiond demo <small>(${LANGUAGE} backend)</small></h1>`,
  ];
  if (NOTICES[session.status]) parts.push(`<p class="notice" id="notice">${esc(NOTICES[session.status])}</p>`);
  if (error) parts.push(`<p class="error" id="error">${esc(error)}</p>`);

  if (session.user) {
    parts.push(`<p id="whoami">Signed in as <strong id="user">${esc(session.user)}</strong></p>`);
    parts.push('<form method="post" action="/logout" class="inline">' +
               '<button id="logout" type="submit">Log out</button></form>');
  } else {
    parts.push('<form method="post" action="/login" id="login-form">' +
               '<label for="name">Name</label> ' +
               `<input id="name" name="name" required maxlength="${MAX_NAME_CHARS}" autocomplete="username"> ` +
               '<button id="login" type="submit">Sign in</button></form>');
  }

  parts.push('<h2>Cart</h2>');
  parts.push(`<p>Items in cart: <span id="cart-count">${session.cart.length}</span></p>`);
  if (session.cart.length) {
    parts.push(`<ul id="cart">${session.cart.map((item) => `<li>${esc(item)}</li>`).join('')}</ul>`);
  }
  parts.push('<form method="post" action="/cart/add" class="inline">' +
             '<button id="add-item" type="submit">Add item</button></form>');
  parts.push('<form method="post" action="/cart/clear" class="inline">' +
             '<button id="clear-cart" type="submit">Empty cart</button></form>');

  parts.push('<h2>Session</h2><dl>');
  parts.push(`<dt>status</dt><dd id="session-status">${esc(session.status)}</dd>`);
  parts.push(`<dt>id</dt><dd id="session-id">${esc(session.id || '-')}</dd>`);
  parts.push(`<dt>expires</dt><dd id="session-expires">${esc(formatExpiry(session.expires))}</dd>`);
  parts.push('</dl>');
  parts.push(`<pre id="session-data">${esc(JSON.stringify(sortKeys(session.data), null, 2))}</pre>`);
  parts.push(renderWire(received, sent));
  parts.push('<script src="/demo.js"></script>');
  parts.push('</main></body></html>\n');
  return parts.join('');
}

// What sessiond did on this request, as the app and the browser see it.
function renderWire(received, sent) {
  const parts = ['<h2>On the wire</h2>', '<h3>Request headers sessiond added for the app</h3>',
                 '<table id="received-headers"><tbody>'];
  for (const name of SESSION_HEADERS) {
    const value = received[name];
    parts.push(`<tr><th>${name}</th><td><code id="received-${name.toLowerCase()}">` +
               `${value == null ? '(absent)' : esc(value)}</code></td></tr>`);
  }
  parts.push('</tbody></table>', '<h3>Instructions the app answered with</h3>');
  if (sent.length) {
    parts.push('<p>The last form\'s response (a redirect to this page) carried:</p><ul id="instructions">' +
               sent.map((line) => `<li><code>${esc(line)}</code></li>`).join('') + '</ul>');
  } else {
    parts.push('<p id="instructions-none">None on the last response: the session stayed as it was.</p>');
  }
  parts.push('<p>sessiond applied them to the session, set or cleared the cookie, and removed them ' +
             'before the response reached the browser.</p>');
  parts.push('<h3>The session cookie in your browser</h3>');
  parts.push(`<p><code id="browser-cookie" data-cookie-name="${esc(options.cookieName)}">(needs JavaScript)</code></p>`);
  parts.push('<p class="demo-note" id="httponly-note">The demo turns HttpOnly off ' +
             '(<code>session_cookie_httponly: false</code> in config/demo.yaml) only so that this page ' +
             'can show the cookie. Keep it on in production: then no script, yours or an injected one, ' +
             'can read the session cookie. sessiond removes the cookie from every request before it ' +
             'reaches the app, which sees only the headers above.</p>');
  if (options.adminUrl) {
    parts.push(`<p>sessiond's own view: <a id="metrics-link" href="${esc(options.adminUrl)}/metrics">` +
               `${esc(options.adminUrl)}/metrics</a> (its admin listener: Prometheus metrics, also /healthz and /readyz).</p>`);
  }
  return parts.join('');
}

// The instruction lines of ?sent=..., only X-Session-* ones, bounded.
function sentLines(searchParams) {
  return searchParams.getAll('sent').filter((line) => line.toLowerCase().startsWith('x-session-'))
    .slice(0, MAX_SENT_SHOWN);
}

function receivedHeaders(headers) {
  const out = {};
  for (const name of SESSION_HEADERS) out[name] = headers[name.toLowerCase()] ?? null;
  return out;
}

function sortKeys(obj) {
  const out = {};
  for (const k of Object.keys(obj).sort()) out[k] = obj[k];
  return out;
}

function formatExpiry(expires) {
  if (!expires) return '-';
  const seconds = Number(expires);
  if (!Number.isSafeInteger(seconds)) return expires;
  return `${expires} (${new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 19)} UTC)`;
}

// ---------------------------------------------------------------------------
// HTTP.

// The page shows one visitor's session: no shared caches, no framing, no
// script but /demo.js.
const PAGE_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; " +
                             "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
};

function send(req, res, status, contentType, body) {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': bytes.length, ...PAGE_HEADERS });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

// The instructions also travel to the next page (?sent=...) so that it can
// show them: sessiond strips them from this response.
function redirect(res, sessionHeaders) {
  const sent = new URLSearchParams(Object.entries(sessionHeaders).map(([k, v]) => ['sent', `${k}: ${v}`]));
  res.writeHead(303, { Location: '/?' + sent.toString(), 'Content-Length': 0, 'Cache-Control': 'no-store',
                       ...sessionHeaders });
  res.end();
}

// Calls done(form) with the urlencoded body as an object, or answers an error.
function readForm(req, res, done) {
  const chunks = [];
  let size = 0;
  let failed = false;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_FORM_BYTES && !failed) {
      failed = true;
      res.setHeader('Connection', 'close');
      send(req, res, 413, 'text/plain; charset=utf-8', 'form too large\n');
      req.destroy();
      return;
    }
    if (!failed) chunks.push(chunk);
  });
  req.on('end', () => {
    if (!failed) done(Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
  });
}

function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const path = url.pathname;
  const session = readSession(req.headers);
  const received = receivedHeaders(req.headers);
  if (req.method === 'GET' || req.method === 'HEAD') {
    if (path === '/') {
      return send(req, res, 200, 'text/html; charset=utf-8',
        renderPage(session, null, received, sentLines(url.searchParams)));
    }
    if (path === '/demo.js') return send(req, res, 200, 'text/javascript; charset=utf-8', DEMO_JS);
    if (path === '/api/session') {
      const raw = {};
      for (const name of ['X-Session-Status', 'X-Session-Id', 'X-Session-Data', 'X-Session-Expires']) {
        raw[name] = req.headers[name.toLowerCase()] ?? null;
      }
      return send(req, res, 200, 'application/json', JSON.stringify(raw, null, 2) + '\n');
    }
    return send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }
  if (req.method !== 'POST') return send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');

  readForm(req, res, (form) => {
    if (path === '/login') {
      const name = (form.name || '').trim();
      // eslint-disable-next-line no-control-regex
      if (!name || name.length > MAX_NAME_CHARS || /[\u0000-\u001f]/.test(name)) {
        return send(req, res, 400, 'text/html; charset=utf-8',
          renderPage(session, `Please enter a name of 1 to ${MAX_NAME_CHARS} characters.`, received));
      }
      // A new session id at login: a session id planted before login
      // (session fixation) is worthless afterwards. The cart survives.
      return redirect(res, { 'X-Session-Regenerate': 'true', 'X-Session-Set': instruction({ user: name }) });
    }
    if (path === '/logout') return redirect(res, { 'X-Session-Destroy': 'true' });
    if (path === '/cart/add') {
      const cart = session.cart;
      if (cart.length < MAX_CART_ITEMS) cart.push(PRODUCTS[cart.length % PRODUCTS.length]);
      // Set replaces the key whole, so the app sends the full new list.
      return redirect(res, { 'X-Session-Set': instruction({ cart }) });
    }
    if (path === '/cart/clear') return redirect(res, { 'X-Session-Delete': 'cart' });
    return send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
  });
}

function main() {
  const args = process.argv.slice(2);
  let host = process.env.APP_HOST || '127.0.0.1';
  let port = Number(process.env.APP_PORT || 3000);
  let quiet = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--host' && i + 1 < args.length) host = args[++i];
    else if (args[i] === '--port' && i + 1 < args.length) port = Number(args[++i]);
    else if (args[i] === '--quiet') quiet = true;
    else if (args[i] === '--admin-url' && i + 1 < args.length) options.adminUrl = args[++i].replace(/\/+$/, '');
    else if (args[i] === '--cookie-name' && i + 1 < args.length) options.cookieName = args[++i];
    else {
      process.stderr.write('usage: node app.js [--host HOST] [--port PORT] [--quiet] [--admin-url URL] ' +
                           '[--cookie-name NAME]\n');
      process.exit(2);
    }
  }
  const server = http.createServer((req, res) => {
    // The request line only: never session data.
    if (!quiet) res.on('finish', () => process.stderr.write(`${req.method} ${req.url} ${res.statusCode}\n`));
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) send(req, res, 500, 'text/plain; charset=utf-8', 'internal error\n');
    }
  });
  // sessiond keeps upstream connections alive; keep them longer than it does
  // by default (timeouts.idle 60s) so the app is not the side that closes.
  server.keepAliveTimeout = 65000;
  server.on('error', (e) => {
    process.stderr.write(`app.js: cannot listen on ${host}:${port}: ${e.code}\n`);
    process.exit(1);
  });
  server.listen(port, host, () => process.stderr.write(`app.js: listening on http://${host}:${port}/\n`));
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      server.close(() => process.exit(0));
      server.closeAllConnections();
    });
  }
}

main();
