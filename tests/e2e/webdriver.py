"""A minimal W3C WebDriver client (standard library only) for chromedriver.

Only what the end-to-end test needs: start chromedriver, open a headless
Chromium session, navigate, find elements by CSS selector, type, click, run
a script, read cookies, take a screenshot. Every command is one HTTP request
to chromedriver (https://www.w3.org/TR/webdriver2/); an error answer raises
WebDriverError carrying the W3C error code and message.

  driver = ChromeDriver(log_path="build/e2e/chromedriver.log")
  browser = driver.new_session(profile_dir)
  browser.get("http://127.0.0.1:8080/")
  browser.click(browser.find("#login"))
  browser.quit(); driver.stop()
"""

import base64
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

# The W3C key under which an element reference travels.
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"

CHROME_ARGS = [
    "--headless=new",
    "--no-sandbox",                 # root in containers and CI has no usable sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",      # small /dev/shm in containers
    "--no-proxy-server",            # never route 127.0.0.1 through a proxy from the environment
    "--no-first-run",
    "--disable-extensions",
    "--window-size=1024,900",
]


class WebDriverError(Exception):
    def __init__(self, error, message):
        super().__init__("%s: %s" % (error, message.split("\n", 1)[0][:500]))
        self.error = error


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(base, method, path, payload=None, timeout=60):
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            value = json.loads(body)["value"]
            raise WebDriverError(value.get("error", "http %d" % e.code), value.get("message", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise WebDriverError("http %d" % e.code, body.decode("utf-8", "replace"))
    return json.loads(body)["value"]


class ChromeDriver:
    """A chromedriver process on a free loopback port."""

    def __init__(self, chromedriver="/usr/bin/chromedriver", chrome="/usr/bin/chromium", log_path=None):
        self.chrome = chrome
        self.port = _free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        log = open(log_path or os.devnull, "ab")
        try:
            # Its own process group, which the browsers it launches inherit:
            # stop() can then end them all even if a session was never quit.
            self.proc = subprocess.Popen([chromedriver, "--port=%d" % self.port], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("chromedriver exited with status %s" % self.proc.returncode)
            try:
                if _call(self.base, "GET", "/status", timeout=2).get("ready"):
                    return
            except (OSError, WebDriverError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("chromedriver not ready after 20s")
            time.sleep(0.1)

    def new_session(self, profile_dir, extra_args=()):
        """A headless Chromium with a fresh profile in profile_dir (and
        extra_args on its command line)."""
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": 20000, "script": 10000, "implicit": 0},
            "goog:chromeOptions": {"binary": self.chrome,
                                   "args": CHROME_ARGS + list(extra_args)
                                   + ["--user-data-dir=%s" % profile_dir]},
        }}}
        value = _call(self.base, "POST", "/session", caps, timeout=60)
        return Browser(self.base + "/session/" + value["sessionId"])

    def stop(self):
        """Ends chromedriver and every browser process left in its group."""
        group = self.proc.pid
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                self.proc.poll()  # reaps chromedriver itself
                try:
                    os.killpg(group, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                continue
            break
        self.proc.poll()


class Browser:
    """One WebDriver session (one browser window)."""

    def __init__(self, base):
        self.base = base

    def _cmd(self, method, path, payload=None):
        return _call(self.base, method, path, payload)

    def get(self, url):
        self._cmd("POST", "/url", {"url": url})

    def refresh(self):
        self._cmd("POST", "/refresh", {})

    def current_url(self):
        return self._cmd("GET", "/url")

    def title(self):
        return self._cmd("GET", "/title")

    def find_all(self, css):
        """Element references matching css (possibly none)."""
        found = self._cmd("POST", "/elements", {"using": "css selector", "value": css})
        return [e[ELEMENT_KEY] for e in found]

    def find(self, css):
        """The first element matching css; WebDriverError 'no such element' if none."""
        return self._cmd("POST", "/element", {"using": "css selector", "value": css})[ELEMENT_KEY]

    def text(self, element):
        return self._cmd("GET", "/element/%s/text" % element)

    def send_keys(self, element, text):
        self._cmd("POST", "/element/%s/value" % element, {"text": text})

    def click(self, element):
        self._cmd("POST", "/element/%s/click" % element, {})

    def execute(self, script, *args):
        """Runs script (a function body; `arguments` holds args) and returns its result."""
        return self._cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def window(self):
        """The handle of the current window (tab)."""
        return self._cmd("GET", "/window")

    def new_tab(self):
        """Opens a tab in the same browser (same cookies) and returns its handle; the current tab stays."""
        return self._cmd("POST", "/window/new", {"type": "tab"})["handle"]

    def switch_to(self, handle):
        self._cmd("POST", "/window", {"handle": handle})

    def close_tab(self):
        """Closes the current tab; switch_to another one afterwards."""
        self._cmd("DELETE", "/window")

    def cookies(self):
        """All cookies of the current page, HttpOnly ones included."""
        return self._cmd("GET", "/cookie")

    def screenshot(self, path):
        """Saves a PNG of the viewport; returns its bytes."""
        png = base64.b64decode(self._cmd("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)
        return png

    def wait_for(self, predicate, what, timeout=10.0):
        """Polls predicate() (WebDriver errors count as false) until it returns
        a true value, which is returned; AssertionError after timeout."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                value = predicate()
                if value:
                    return value
            except WebDriverError as e:
                last = e
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %.0fs waiting for %s%s"
                                     % (timeout, what, " (last error: %s)" % last if last else ""))
            time.sleep(0.05)

    def quit(self):
        try:
            self._cmd("DELETE", "")
        except (OSError, WebDriverError):
            pass
