#!/usr/bin/env python3
"""Browser end-to-end test: headless Chromium against the demo (scripts/demo.sh).

For each example app (python, and node when `node` is installed) the demo runs
non-interactively on free ports (DEMO_PORT / DEMO_APP_PORT / DEMO_ADMIN_PORT),
exactly as `make demo` would run it, and a real browser:
  opens the page (logged out), signs in with a name, sees the name and what
  sessiond did (the X-Session-* headers the app received, the instructions it
  answered with, the session cookie as the browser holds it: the page's copy
  must equal WebDriver's), adds two items to the cart (the count and the
  instructions follow), reloads (all still there), follows the /metrics link
  to the admin listener, logs out and sees the login form again.
The demo turns HttpOnly off so the page can show the cookie; a second
sessiond with the stock configuration (sessiond.yaml.example, plain http)
in front of the same app proves the default: the cookie is HttpOnly,
document.cookie does not show it, and neither does the page.
Screenshots go to the output folder. Then the demo is stopped with SIGTERM
and must exit 0.

Then the python app again over TLS (the app with the live cart): the test
makes a CA and a certificate for 127.0.0.1 with openssl, the demo serves
https:// and wss:// with them (DEMO_TLS_CERT / DEMO_TLS_KEY) and a Secure
cookie, and Chromium is told to trust that certificate by the hash of its
public key (--ignore-certificate-errors-spki-list), nothing else. The same
scenario runs: the page is a secure context, the cookie is Secure, the live
count follows across tabs over wss://, a logout in one tab closes the other's
socket with 1008 within a second, a cross-origin socket is refused.

  tests/e2e/e2e.py [--out DIR] [--app python|node]... [--no-tls]
Environment: SESSIOND_BIN (default build/release/sessiond), CHROMIUM
(/usr/bin/chromium), CHROMEDRIVER (/usr/bin/chromedriver).
Last line: "e2e: N passed, M failed"; exit status 0 only if all passed.
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from webdriver import ELEMENT_KEY, ChromeDriver, WebDriverError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COOKIE = "session_id"                 # session_cookie_name in config/demo.yaml
NAME = 'Ada <Lovelace> & "co"'        # HTML specials must render as text
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer", "ThreadSanitizer")


class CheckFailed(Exception):
    """A recorded failed check: the scenario stops, the failure is counted."""


class Interrupted(BaseException):
    """SIGTERM (run.sh's timeout): unwinds past `except Exception`."""


def _on_sigterm(signum, frame):
    raise Interrupted()


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        """Records one check; a failed one raises so the scenario stops there
        (later steps depend on earlier ones)."""
        if cond:
            self.passed += 1
            print("  ok    %s" % what, flush=True)
            return
        self.failed += 1
        print("  FAIL  %s" % what, flush=True)
        raise CheckFailed(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# The demo, run non-interactively.

class Demo:
    """scripts/demo.sh APP on free ports; output captured to a log file.
    tls: a TestPki, for https:// with its server certificate."""

    def __init__(self, app, out_dir, sessiond_bin, tls=None, label=None):
        self.app = app
        self.log_path = os.path.join(out_dir, "demo-%s.log" % (label or app))
        self.url = None
        self.lines = []
        self.app_port = free_port()
        self.admin_port = free_port()
        env = dict(os.environ, SESSIOND_BIN=sessiond_bin, DEMO_PORT=str(free_port()),
                   DEMO_APP_PORT=str(self.app_port), DEMO_ADMIN_PORT=str(self.admin_port))
        env.pop("SESSIOND_SECRET", None)   # the demo generates its own
        env.pop("DEMO_TLS_CERT", None)
        env.pop("DEMO_TLS_KEY", None)
        if tls is not None:
            env.update(DEMO_TLS_CERT=tls.server_cert, DEMO_TLS_KEY=tls.server_key)
        self.proc = subprocess.Popen([os.path.join(REPO, "scripts", "demo.sh"), app], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        with open(self.log_path, "w") as log:
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace")
                log.write(line)
                log.flush()
                self.lines.append(line)
                if line.startswith("demo: ready at "):
                    self.url = line.split("demo: ready at ", 1)[1].strip()
                    self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout=30):
        self._ready.wait(timeout)
        return self.url

    def stop(self, timeout=10):
        """SIGTERM to demo.sh (it stops its children); its exit status, or
        None if it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
                return None
        return self.proc.returncode

    def tail(self, n=20):
        return "".join(self.lines[-n:])


# ---------------------------------------------------------------------------
# A test CA for the TLS run.

def _openssl(*args, stdin=None):
    p = subprocess.run(["openssl"] + list(args), input=stdin, capture_output=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (args[0], p.stderr.decode(errors="replace")[-1000:]))
    return p.stdout


class TestPki:
    """A CA (ECDSA P-256) and a server certificate it signs for 127.0.0.1 and
    localhost, in out_dir/tls/; spki is what Chromium's
    --ignore-certificate-errors-spki-list takes: the base64 SHA-256 of the
    certificate's SubjectPublicKeyInfo."""

    def __init__(self, out_dir):
        d = os.path.join(out_dir, "tls")
        os.makedirs(d, exist_ok=True)
        self.ca_cert, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
        self.server_cert, self.server_key = os.path.join(d, "server.pem"), os.path.join(d, "server.key")
        csr, ext = os.path.join(d, "server.csr"), os.path.join(d, "server.ext")
        curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        _openssl("req", "-x509", *curve, "-keyout", ca_key, "-out", self.ca_cert, "-days", "2",
                 "-subj", "/CN=sessiond e2e test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        _openssl("req", *curve, "-keyout", self.server_key, "-out", csr, "-subj", "/CN=127.0.0.1")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
                    "extendedKeyUsage=serverAuth\n")
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                 "-days", "1", "-out", self.server_cert, "-extfile", ext)
        pub = _openssl("x509", "-in", self.server_cert, "-noout", "-pubkey")
        der = _openssl("pkey", "-pubin", "-outform", "der", stdin=pub)
        self.spki = base64.b64encode(hashlib.sha256(der).digest()).decode()

    def chrome_args(self):
        return ["--ignore-certificate-errors-spki-list=%s" % self.spki]


# ---------------------------------------------------------------------------
# The scenario.

def cart_count(browser):
    return int(browser.text(browser.find("#cart-count")))


def received(browser, name):
    """The X-Session-* request header `name` as the page says the app got it."""
    return browser.text(browser.find("#received-%s" % name.lower()))


def instructions(browser):
    return [browser.text(e) for e in browser.find_all("#instructions li")]


def live_state(browser):
    """(data-state, data-code) of the page's live WebSocket, or None without the live cart."""
    if not browser.find_all("#live-status"):
        return None
    return browser.execute("var s = document.getElementById('live-status');"
                           "return [s.getAttribute('data-state'), s.getAttribute('data-code')];")


def live_count(browser):
    return int(browser.text(browser.find("#live-cart-count")))


def check_cookie_shown(app, browser, r, what):
    """The page's copy of the session cookie equals the browser's own."""
    cookies = {c["name"]: c for c in browser.cookies()}
    r.check(COOKIE in cookies, "[%s] %s: the browser holds the %s cookie" % (app, what, COOKIE))
    want = "%s=%s" % (COOKIE, cookies[COOKIE]["value"])
    shown = browser.wait_for(lambda: browser.text(browser.find("#browser-cookie")).startswith(COOKIE + "=")
                             and browser.text(browser.find("#browser-cookie")), "the page's cookie view")
    r.check(shown == want, "[%s] %s: the page shows the browser's cookie (%d chars)" % (app, what, len(want)))
    return cookies[COOKIE]


def run_scenario(app, browser, url, admin_port, out_dir, r, demo_lines=()):
    """app: the label of the run ("python", "node", "python-tls"); url's
    scheme says whether it is the TLS run."""
    tls = url.startswith("https://")
    # 1. Logged out.
    browser.get(url)
    r.check("sessiond demo" in browser.title(), "[%s] page title names the demo" % app)
    if tls:
        where = browser.execute("return [location.protocol, window.isSecureContext];")
        r.check(where == ["https:", True], "[%s] the page came over https:// and is a secure context (%r): "
                "Chromium trusts the test certificate" % (app, where))
    r.check(browser.find_all("#login-form") and not browser.find_all("#whoami"),
            "[%s] first visit shows the login form, nobody signed in" % app)
    r.check(browser.text(browser.find("#session-status")) == "none", "[%s] session status is none" % app)
    r.check(received(browser, "X-Session-Status") == "none" and received(browser, "X-Session-Id") == "(absent)",
            "[%s] the page shows the headers the app received: status none, no id" % app)
    r.check("no session yet" in browser.text(browser.find("#browser-cookie")),
            "[%s] no session cookie shown before there is one" % app)

    # 2. Sign in.
    browser.send_keys(browser.find("#name"), NAME)
    browser.click(browser.find("#login"))
    user = browser.wait_for(lambda: browser.find_all("#user") and browser.text(browser.find("#user")),
                            "the signed-in page")
    r.check(user == NAME, "[%s] page says signed in as the name, as text (got %r)" % (app, user))
    r.check(browser.text(browser.find("#session-status")) == "active", "[%s] session status is active" % app)

    # 3. What sessiond did, as the page shows it.
    session_id = browser.text(browser.find("#session-id"))
    r.check(received(browser, "X-Session-Status") == "active" and received(browser, "X-Session-Id") == session_id,
            "[%s] received headers: X-Session-Status active, X-Session-Id %s" % (app, session_id))
    data = json.loads(received(browser, "X-Session-Data"))
    r.check(data.get("user") == NAME, "[%s] received X-Session-Data holds the user (got %r)" % (app, data))
    r.check(received(browser, "X-Session-Expires").isdigit(), "[%s] received X-Session-Expires is a Unix time" % app)
    sent = instructions(browser)
    r.check(sent[:1] == ["X-Session-Regenerate: true"] and len(sent) == 2 and sent[1].startswith("X-Session-Set: ")
            and json.loads(sent[1].split(": ", 1)[1]) == {"user": NAME},
            "[%s] the login's instructions are shown: %r" % (app, sent))
    cookie = check_cookie_shown(app, browser, r, "after login")
    r.check(cookie.get("httpOnly") is False, "[%s] the demo's %s cookie is not HttpOnly (the page shows it)"
            % (app, COOKIE))
    r.check(cookie.get("sameSite") == "Lax", "[%s] the %s cookie is SameSite=Lax" % (app, COOKIE))
    r.check(cookie.get("secure") is tls, "[%s] the %s cookie is %s" % (app, COOKIE, "Secure" if tls else
                                                                        "not Secure (plain http)"))
    note = browser.text(browser.find("#httponly-note"))
    r.check("HttpOnly off" in note and "Keep it on in production" in note,
            "[%s] the page says the demo turns HttpOnly off, to keep it on in production" % app)

    # 4. Cart: each click adds one item, and the page shows the Set it caused.
    before = cart_count(browser)
    for n in (1, 2):
        old_cookie = browser.text(browser.find("#browser-cookie"))
        browser.click(browser.find("#add-item"))
        got = browser.wait_for(lambda: cart_count(browser) == before + n and cart_count(browser),
                               "cart count %d" % (before + n))
        r.check(got == before + n, "[%s] Add item #%d: cart count %d -> %d" % (app, n, before, got))
        sent = instructions(browser)
        r.check(len(sent) == 1 and sent[0].startswith("X-Session-Set: ")
                and len(json.loads(sent[0].split(": ", 1)[1]).get("cart", [])) == before + n,
                "[%s] Add item #%d: the page shows the X-Session-Set with %d items" % (app, n, before + n))
        check_cookie_shown(app, browser, r, "after add #%d" % n)
        r.check(browser.text(browser.find("#browser-cookie")) != old_cookie,
                "[%s] Add item #%d: a new sealed cookie (the data lives in it)" % (app, n))

    # 4b. Live cart across tabs, over a WebSocket through sessiond.
    live = live_state(browser) is not None
    if live:
        browser.wait_for(lambda: live_state(browser)[0] == "open", "the live WebSocket to open")
        r.check(live_count(browser) == before + 2, "[%s] live cart: the socket is open and shows %d items"
                % (app, before + 2))
        first_tab = browser.window()
        second_tab = browser.new_tab()
        browser.switch_to(second_tab)
        browser.get(url)
        browser.wait_for(lambda: live_state(browser) and live_state(browser)[0] == "open",
                         "the live WebSocket in the second tab")
        browser.click(browser.find("#add-item"))
        browser.wait_for(lambda: cart_count(browser) == before + 3, "cart count %d in the second tab" % (before + 3))
        browser.switch_to(first_tab)
        got = browser.wait_for(lambda: live_count(browser) == before + 3 and live_count(browser),
                               "the first tab's live count to follow", timeout=5)
        r.check(got == before + 3 and cart_count(browser) == before + 2,
                "[%s] live cart: an item added in another tab shows up without a reload (%d)" % (app, got))
        browser.refresh()
        browser.wait_for(lambda: browser.find_all("#user"), "the page after the live update")
        before += 1  # the cart has one more item from here on

    # 5. Reload: the session persists, and a plain GET carries no instructions.
    browser.refresh()
    browser.wait_for(lambda: browser.find_all("#user"), "the page after reload")
    r.check(browser.text(browser.find("#user")) == NAME and cart_count(browser) == before + 2,
            "[%s] after reload still signed in with %d items" % (app, before + 2))
    browser.get(url)
    browser.wait_for(lambda: browser.find_all("#instructions-none"), "a page without instructions")
    r.check(not browser.find_all("#instructions li"), "[%s] a plain GET shows no instructions" % app)
    png = browser.screenshot(os.path.join(out_dir, "%s-signed-in.png" % app))
    r.check(png.startswith(PNG_SIGNATURE) and len(png) > 2000,
            "[%s] screenshot %s-signed-in.png saved (%d bytes)" % (app, app, len(png)))

    # 6. The /metrics link leads to sessiond's admin listener.
    link = browser.find("#metrics-link")
    href = browser.execute("return arguments[0].href;", {ELEMENT_KEY: link})
    r.check(href == "http://127.0.0.1:%d/metrics" % admin_port, "[%s] the page links /metrics (got %r)" % (app, href))
    browser.click(link)
    body = browser.wait_for(lambda: "sessiond_requests_total" in browser.execute("return document.body.innerText;")
                            and browser.execute("return document.body.innerText;"), "the metrics page")
    r.check("sessiond_sessions_created_total" in body, "[%s] /metrics shows sessiond's metrics" % app)
    if live:
        # From the admin listener's origin (another port: another origin), a
        # socket to the demo carries the session cookie but is refused.
        browser.execute("window.probe = 'pending';"
                        "var ws = new WebSocket(arguments[0]);"
                        "ws.onopen = function () { window.probe = 'opened'; };"
                        "ws.onclose = function (e) { if (window.probe !== 'opened') window.probe = 'refused ' + e.code; };",
                        ("wss://" + url[len("https://"):] if tls else "ws://" + url[len("http://"):])
                        .rstrip("/") + "/live")
        probe = browser.wait_for(lambda: browser.execute("return window.probe;") != "pending"
                                 and browser.execute("return window.probe;"), "the cross-origin WebSocket probe")
        r.check(probe.startswith("refused"), "[%s] a cross-origin WebSocket (page on the admin port) is refused: %s"
                % (app, probe))
        refused = browser.wait_for(lambda: [ln for ln in demo_lines if '"GET /live HTTP/1.1" 403' in ln],
                                   "sessiond's access log line for the refused handshake", timeout=5)
        r.check(len(refused) == 1, "[%s] ... by sessiond: 403 in its access log" % app)
    browser.get(url)
    browser.wait_for(lambda: browser.find_all("#user"), "the page after /metrics")

    # 7. Log out (with the live cart: in one tab, while another tab holds its socket).
    if live:
        browser.switch_to(second_tab)
        browser.get(url)
        browser.wait_for(lambda: live_state(browser) and live_state(browser)[0] == "open",
                         "the second tab's socket before logout")
        browser.switch_to(first_tab)
        browser.wait_for(lambda: live_state(browser) and live_state(browser)[0] == "open",
                         "the first tab's socket before logout")
        clicked_at = browser.execute("return Date.now();")
    browser.click(browser.find("#logout"))
    browser.wait_for(lambda: browser.find_all("#login-form"), "the login form after logout")
    r.check(not browser.find_all("#whoami") and cart_count(browser) == 0,
            "[%s] after logout: login form, nobody signed in, empty cart" % app)
    r.check(instructions(browser) == ["X-Session-Destroy: true"], "[%s] the logout's instruction is shown" % app)
    names = [c["name"] for c in browser.cookies()]
    r.check(COOKIE not in names, "[%s] logout removed the %s cookie (cookies now %r)" % (app, COOKIE, names))
    if live:
        browser.switch_to(second_tab)
        state = browser.wait_for(lambda: live_state(browser)[0] == "closed" and live_state(browser), 
                                 "the other tab's socket to close", timeout=5)
        closed_at = int(browser.execute("return document.getElementById('live-status').getAttribute('data-closed-at');"))
        r.check(state[1] == "1008", "[%s] logout in one tab closed the other tab's WebSocket with 1008 (got %s)"
                % (app, state[1]))
        r.check(closed_at - clicked_at <= 1000 + 500,
                "[%s] ... %d ms after the logout click (within 1 s of the logout response)" % (app, closed_at - clicked_at))
        browser.screenshot(os.path.join(out_dir, "%s-live-closed.png" % app))
        browser.close_tab()
        browser.switch_to(first_tab)
    browser.refresh()
    browser.wait_for(lambda: browser.find_all("#login-form"), "the login form after reload")
    r.check(browser.text(browser.find("#session-status")) == "none",
            "[%s] still logged out after reload" % app)
    browser.screenshot(os.path.join(out_dir, "%s-signed-out.png" % app))


def stock_config(listen_port, app_port):
    """sessiond.yaml.example, every default as shipped, but for the ports and
    session_cookie_secure (the test speaks plain http): HttpOnly stays on."""
    with open(os.path.join(REPO, "sessiond.yaml.example")) as f:
        text = f.read()
    replaced = text.replace("listen: 127.0.0.1:8080 ", "listen: 127.0.0.1:%d " % listen_port, 1)
    replaced = replaced.replace("upstream: http://127.0.0.1:3000 ", "upstream: http://127.0.0.1:%d " % app_port, 1)
    replaced = replaced.replace("session_cookie_secure: true ", "session_cookie_secure: false ", 1)
    if replaced.count("%d" % listen_port) != 1 or "session_cookie_secure: false" not in replaced:
        raise RuntimeError("sessiond.yaml.example changed: cannot derive the stock config")
    return replaced


def run_stock_httponly(app, browser, sessiond_bin, app_port, out_dir, r):
    """The default configuration keeps the cookie away from scripts."""
    port = free_port()
    config = os.path.join(out_dir, "stock-%s.yaml" % app)
    with open(config, "w") as f:
        f.write(stock_config(port, app_port))
    secret = subprocess.run([sessiond_bin, "gen-secret"], capture_output=True, text=True, check=True).stdout.strip()
    log = open(os.path.join(out_dir, "stock-sessiond-%s.log" % app), "wb")
    proc = subprocess.Popen([sessiond_bin, "-c", config], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                            env=dict(os.environ, SESSIOND_SECRET=secret))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the stock sessiond did not start (log in %s)" % out_dir)
                time.sleep(0.05)
        # "localhost": a cookie jar apart from the demo's 127.0.0.1.
        browser.get("http://localhost:%d/" % port)
        browser.send_keys(browser.find("#name"), "stock")
        browser.click(browser.find("#login"))
        browser.wait_for(lambda: browser.find_all("#user"), "the signed-in page (stock config)")
        cookies = {c["name"]: c for c in browser.cookies()}
        r.check(COOKIE in cookies, "[%s] stock config: the browser holds the %s cookie" % (app, COOKIE))
        r.check(cookies[COOKIE].get("httpOnly") is True, "[%s] stock config: the %s cookie is HttpOnly" % (app, COOKIE))
        # A script-set cookie shows document.cookie works at all on this page.
        visible = browser.execute("document.cookie = 'e2e_probe=1; path=/'; return document.cookie;")
        r.check("e2e_probe=1" in visible and COOKIE not in visible,
                "[%s] stock config: document.cookie shows other cookies but not %s (got %r)" % (app, COOKIE, visible))
        shown = browser.execute("return document.getElementById('browser-cookie').getAttribute('data-found');")
        r.check(shown == "no", "[%s] stock config: the page cannot show the HttpOnly cookie" % app)
        browser.click(browser.find("#logout"))
        browser.wait_for(lambda: browser.find_all("#login-form"), "the login form after logout (stock config)")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                status = proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                status = proc.wait(5)
        else:
            status = proc.returncode
        log.close()
    r.check(status == 0, "[%s] the stock sessiond exits 0 on SIGTERM (status %r)" % (app, status))


def check_untrusted_refused(label, driver, url, r):
    """Without the test certificate's hash on its command line, Chromium
    refuses the demo's https:// page: the trust comes from that flag alone."""
    profile = tempfile.mkdtemp(prefix="sessiond-e2e-profile-")
    browser = driver.new_session(profile)
    try:
        try:
            browser.get(url)
            outcome = "loaded, title %r" % browser.title()
            refused = "sessiond demo" not in browser.title()
        except WebDriverError as e:
            outcome = "WebDriver error %s" % e.error
            refused = e.error == "insecure certificate"
        r.check(refused, "[%s] a browser not told about the test certificate refuses the page (%s)" % (label, outcome))
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def run_app(app, driver, out_dir, sessiond_bin, r, tls=False):
    """The scenario against `app`'s demo; with tls, over https:// with a test CA."""
    label = app + ("-tls" if tls else "")
    pki = demo = None
    profile = tempfile.mkdtemp(prefix="sessiond-e2e-profile-")
    browser = None
    failed_before = r.failed
    status = None
    try:
        pki = TestPki(out_dir) if tls else None
        demo = Demo(app, out_dir, sessiond_bin, tls=pki, label=label)
        url = demo.wait_ready()
        r.check(url is not None, "[%s] scripts/demo.sh started (log %s)" % (label, demo.log_path))
        r.check(url.startswith("https://" if tls else "http://"), "[%s] the demo serves %s" % (label, url))
        if tls:
            check_untrusted_refused(label, driver, url, r)
        browser = driver.new_session(profile, pki.chrome_args() if pki else ())
        run_scenario(label, browser, url, demo.admin_port, out_dir, r, demo.lines)
        if not tls:  # the stock configuration is plain http: once is enough
            run_stock_httponly(app, browser, sessiond_bin, demo.app_port, out_dir, r)
    except CheckFailed:
        pass  # already counted
    except Exception as e:  # noqa: BLE001 - any error fails this app's run, not the whole report
        r.failed += 1
        print("  FAIL  [%s] %s: %s" % (label, type(e).__name__, e), flush=True)
        traceback.print_exc(limit=3, file=sys.stdout)
    finally:
        if browser is not None and r.failed > failed_before:
            try:
                browser.screenshot(os.path.join(out_dir, "%s-failure.png" % label))
            except (WebDriverError, OSError, ValueError):
                pass
        if browser is not None:
            browser.quit()
        if demo is not None:
            status = demo.stop()
        shutil.rmtree(profile, ignore_errors=True)
    if demo is None:
        return
    try:
        r.check(status == 0, "[%s] demo.sh exits 0 on SIGTERM (status %r)" % (label, status))
        output = "".join(demo.lines)
        r.check(not any(m in output for m in SANITIZER_MARKERS),
                "[%s] no sanitizer report in the demo's output" % label)
    except CheckFailed:
        print(demo.tail(40).rstrip(), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "build", "e2e"))
    ap.add_argument("--app", action="append", choices=["python", "node"])
    ap.add_argument("--no-tls", action="store_true", help="skip the run over TLS")
    args = ap.parse_args()

    sessiond_bin = os.environ.get("SESSIOND_BIN", "build/release/sessiond")
    if not os.path.isabs(sessiond_bin):
        sessiond_bin = os.path.join(REPO, sessiond_bin)
    chrome = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    chromedriver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
    apps = args.app or (["python", "node"] if shutil.which("node") else ["python"])
    if not args.app and "node" not in apps:
        print("e2e: node is not installed (Debian package nodejs): the Node.js app is not tested")

    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    r = Results()
    missing = [p for p in (sessiond_bin, chrome, chromedriver) if not os.access(p, os.X_OK)]
    if missing:
        print("e2e: missing %s (make build; apt-get install chromium chromium-driver)" % ", ".join(missing))
        print("e2e: 0 passed, 1 failed")
        return 1

    # run.sh's timeout sends SIGTERM: unwind through the finally blocks so
    # the browser, chromedriver and the demo (its own process group) stop too.
    signal.signal(signal.SIGTERM, _on_sigterm)
    t0 = time.monotonic()
    driver = None
    try:
        driver = ChromeDriver(chromedriver, chrome, os.path.join(args.out, "chromedriver.log"))
        for app in apps:
            print("e2e: %s app" % app, flush=True)
            run_app(app, driver, args.out, sessiond_bin, r)
        # Over TLS: the python app (the one with the live cart).
        if "python" in apps and not args.no_tls:
            print("e2e: python app over TLS (test CA)", flush=True)
            run_app("python", driver, args.out, sessiond_bin, r, tls=True)
    except RuntimeError as e:
        r.failed += 1
        print("  FAIL  %s" % e)
    except Interrupted:
        r.failed += 1
        print("  FAIL  interrupted by SIGTERM (timeout?)")
    finally:
        if driver is not None:
            driver.stop()
    print("e2e: output in %s (%.0fs)" % (os.path.relpath(args.out, os.getcwd()), time.monotonic() - t0))
    print("e2e: %d passed, %d failed" % (r.passed, r.failed), flush=True)
    return 0 if r.failed == 0 and r.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
