"""Integration-test harness: runs the sessiond binary against the test backend.

A test is a function test_*(t) in a test_*.py file; run.py calls it with a
fresh TestContext `t` whose temp dir holds configs and the process logs.
Everything a test starts through `t` is stopped by the runner afterwards,
and the test FAILS if, at that point:
  - sessiond did not exit 0 within the grace period after SIGTERM
    (docs/OPERATIONS.md, Signals: a clean shutdown exits 0),
  - sessiond's stderr holds a sanitizer report (ASan, UBSan, LSan, TSan),
  - the backend saw malformed HTTP from sessiond (backend protocol errors).

  def test_get_passes_through(t):
      proxy = t.sessiond()                      # + an in-process backend: proxy.backend
      resp = proxy.request("GET", "/echo")
      check_eq(resp.status, 200, "status")

Environment:
  SESSIOND_BIN       the binary (default build/release/sessiond, relative to the repo)
  SESSIOND_SANITIZE  set for sanitizer builds: start-up waits and grace periods
                     are multiplied by SLOW, memory tests measure growth instead
"""

import json
import os
import signal
import socket
import subprocess
import time

from backend import Backend, BackendProcess
from client import RawConnection, request as client_request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SANITIZED = os.environ.get("SESSIOND_SANITIZE", "") not in ("", "0")
SLOW = 3 if SANITIZED else 1

# 48 bytes; tests that must not see it in output search for this exact text.
SECRET = "integration-secret-7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer")

REMOVE = object()  # an override value that deletes the key from the defaults


def sessiond_bin():
    path = os.environ.get("SESSIOND_BIN", "build/release/sessiond")
    return path if os.path.isabs(path) else os.path.join(REPO, path)


# ---------------------------------------------------------------------------
# Assertions (plain AssertionError, so the runner reports the message).

def check(cond, message):
    if not cond:
        raise AssertionError(message)


def check_eq(actual, expected, what):
    if actual != expected:
        raise AssertionError("%s: got %r, want %r" % (what, _short(actual), _short(expected)))


class Skip(Exception):
    """Raised by skip(): the test cannot run here (a tool it needs is not
    installed). The runner reports it as SKIP with the reason and counts it
    apart: a skipped test never counts as passed."""


def skip(reason):
    raise Skip(reason)


def _short(v, limit=600):
    r = repr(v)
    return v if len(r) <= limit else r[:limit] + "...(%d chars)" % len(r)


def wait_until(predicate, timeout, what, interval=0.01):
    """Polls predicate until it returns a true value (returned) or fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Config files.

def free_port():
    """A port that was free a moment ago (another process may still take it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deep_merge(base, overrides):
    out = dict(base)
    for k, v in (overrides or {}).items():
        if v is REMOVE:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _yaml_scalar(v):
    if v is None:
        return "~"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Block-style YAML for nested dicts of scalars and lists (of scalars, or
    of mappings written in flow style)."""
    pad = " " * indent
    lines = []
    for k, v in obj.items():
        if isinstance(v, dict) and v:
            lines.append("%s%s:" % (pad, k))
            lines.append(to_yaml(v, indent + 2))
        elif isinstance(v, dict):
            lines.append("%s%s: {}" % (pad, k))
        elif isinstance(v, (list, tuple)):
            # Items that are mappings or lists go in flow style (JSON is YAML).
            lines.append("%s%s: [%s]" % (pad, k, ", ".join(
                json.dumps(x) if isinstance(x, (dict, list, tuple)) else _yaml_scalar(x) for x in v)))
        else:
            lines.append("%s%s: %s" % (pad, k, _yaml_scalar(v)))
    return "\n".join(lines)


def default_config(listen_port, upstream_url):
    return {
        "listen": "127.0.0.1:%d" % listen_port,
        "upstream": upstream_url,
        "workers": 1,
        "secret_key": SECRET,
        # Short, so stopping a sessiond with a hanging request stays quick.
        "timeouts": {"shutdown": "2s"},
    }


# ---------------------------------------------------------------------------
# The sessiond process.

class StartError(AssertionError):
    pass


class Sessiond:
    """One sessiond process with its config file and captured output.

    config is a dict (written as YAML) or YAML text. Output goes to
    NAME.stdout / NAME.stderr in workdir.
    """

    def __init__(self, workdir, config, env=None, name="sessiond", args=None):
        self.workdir = workdir
        self.name = name
        self.config = config
        self.env = dict(os.environ, **(env or {}))
        self.args = args
        self.proc = None
        self.config_path = os.path.join(workdir, name + ".yaml")
        self.stdout_path = os.path.join(workdir, name + ".stdout")
        self.stderr_path = os.path.join(workdir, name + ".stderr")
        self.term_status = None      # exit status after our SIGTERM, if we sent one
        self.needed_sigkill = False
        self.expect_clean_exit = True
        self.backend = None          # set by TestContext.sessiond when it made one
        self._auto_port = False

    @property
    def port(self):
        return int(str(self.config["listen"]).rsplit(":", 1)[1])

    @property
    def pid(self):
        return self.proc.pid

    @property
    def returncode(self):
        return self.proc.poll() if self.proc else None

    def write_config(self):
        text = self.config if isinstance(self.config, str) else to_yaml(self.config) + "\n"
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, wait=True, timeout=5.0):
        """Starts the process; with wait, returns once the listen port accepts."""
        for attempt in range(3):
            self.write_config()
            args = self.args if self.args is not None else ["-c", self.config_path]
            with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
                self.proc = subprocess.Popen([sessiond_bin()] + args, stdout=out, stderr=err,
                                             stdin=subprocess.DEVNULL, cwd=self.workdir, env=self.env)
            if not wait:
                return self
            try:
                self.wait_ready(timeout)
                return self
            except StartError:
                # Another test may have taken the port we picked: pick again.
                if not (self._auto_port and self.returncode == 1 and attempt < 2):
                    raise
                self.config["listen"] = "127.0.0.1:%d" % free_port()
        return self

    def wait_ready(self, timeout=5.0):
        deadline = time.monotonic() + timeout * SLOW
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise StartError("sessiond exited with status %s before listening; stderr:\n%s"
                                 % (rc, self.stderr_text()[-3000:]))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise StartError("sessiond did not accept on port %d within %.1fs; stderr:\n%s"
                                 % (self.port, timeout * SLOW, self.stderr_text()[-3000:]))
            time.sleep(0.02)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """The exit status, or None if still running after timeout seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace=5.0):
        """SIGTERM, then SIGKILL after grace seconds; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.wait(grace * SLOW)
            if rc is None:
                self.needed_sigkill = True
                self.proc.kill()
                rc = self.proc.wait(5)
            self.term_status = rc
        return self.proc.returncode

    def kill(self):
        """SIGKILL without the clean-exit check."""
        self.expect_clean_exit = False
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stderr_text(self):
        return _read_text(self.stderr_path)

    def stdout_text(self):
        return _read_text(self.stdout_path)

    def sanitizer_report(self):
        text = self.stderr_text()
        for marker in SANITIZER_MARKERS:
            i = text.find(marker)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return None

    # -- /proc views --------------------------------------------------------
    def proc_status(self):
        """/proc/PID/status fields as strings, e.g. status["VmHWM"] == "5120 kB"."""
        out = {}
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
        return out

    def vm_kb(self, field):
        """VmRSS / VmHWM / ... in KiB."""
        return int(self.proc_status()[field].split()[0])

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    # -- clients ------------------------------------------------------------
    def connect(self, timeout=10.0):
        return RawConnection(self.port, timeout=timeout)

    def request(self, method="GET", target="/", headers=None, body=None, **kw):
        """One request on a fresh connection."""
        return client_request(self.port, method, target, headers, body, **kw)

    def problems(self):
        """Why this process makes the test fail, as a list of strings."""
        out = []
        if SECRET in self.stdout_text() + self.stderr_text():
            out.append("%s: the secret_key appears in sessiond's output" % self.name)
        report = self.sanitizer_report()
        if report:
            out.append("%s: sanitizer report on stderr:\n%s" % (self.name, report))
        if self.expect_clean_exit and self.term_status is not None:
            if self.needed_sigkill:
                out.append("%s: still running %.0fs after SIGTERM (killed)" % (self.name, 5.0 * SLOW))
            elif self.term_status != 0:
                out.append("%s: exit status %s after SIGTERM, want 0" % (self.name, self.term_status))
        return out

    def describe(self, lines=30):
        err = self.stderr_text().splitlines()
        return "%s (config %s, exit status %s); last %d stderr lines:\n%s" % (
            self.name, self.config_path, self.returncode, min(lines, len(err)),
            "\n".join("    " + line for line in err[-lines:]))


def _read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def run_cli(args, timeout=10.0, env=None, cwd=None):
    """Runs sessiond with args to completion: CompletedProcess with text stdout/stderr."""
    p = subprocess.run([sessiond_bin()] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout * SLOW, cwd=cwd,
                       env=dict(os.environ, **(env or {})))
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    return p


# ---------------------------------------------------------------------------
# Per-test context.

class TestContext:
    """What a test function receives. Owns everything the test starts."""

    def __init__(self, tmpdir, name):
        self.tmpdir = tmpdir
        self.name = name
        self.processes = []
        self.backends = []
        self.connections = []
        self.cli_runs = []
        self._cleanups = []
        self._counter = 0

    def backend(self):
        """A new in-process backend on a free port."""
        b = Backend()
        self.backends.append(b)
        return b

    def backend_process(self, port=0):
        """A backend subprocess (kill()/start() to simulate an upstream crash)."""
        b = BackendProcess(self.tmpdir, port).start()
        self.backends.append(b)
        return b

    def sessiond(self, upstream=None, overrides=None, env=None, start=True, name=None):
        """Starts sessiond proxying to upstream (a backend or a URL; a new
        in-process backend when None) with the default config merged with
        overrides. Returns the Sessiond once it accepts connections."""
        made_backend = None
        if upstream is None:
            upstream = made_backend = self.backend()
        url = upstream if isinstance(upstream, str) else upstream.url
        overrides = overrides or {}
        config = deep_merge(default_config(free_port(), url), overrides)
        self._counter += 1
        proc = Sessiond(self.tmpdir, config, env=env, name=name or "sessiond%d" % self._counter)
        proc._auto_port = "listen" not in overrides
        proc.backend = made_backend if made_backend is not None else (
            upstream if not isinstance(upstream, str) else None)
        self.processes.append(proc)
        if start:
            proc.start()
        return proc

    def sessiond_raw(self, config_text, args=None, env=None, name=None):
        """A Sessiond for a hand-written config (not started)."""
        self._counter += 1
        proc = Sessiond(self.tmpdir, config_text, env=env, args=args,
                        name=name or "sessiond%d" % self._counter)
        self.processes.append(proc)
        return proc

    def unresponsive_upstream(self):
        """The URL of an upstream that never completes a TCP handshake: a
        listener that never accepts, with its accept queue filled, so the
        kernel drops further SYNs and a connect() hangs until its timeout.
        (A non-routable address such as 10.255.255.1 would do the same on an
        open network, but sandboxes often intercept outbound connections.)"""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(s)
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            probe.connect(("127.0.0.1", port))
            raise AssertionError("could not make an unresponsive upstream: connect() still completes")
        except socket.timeout:
            pass
        finally:
            probe.close()

        def close_all():
            for s in fillers + [listener]:
                s.close()
        self.on_cleanup(close_all)
        return "http://127.0.0.1:%d" % port

    def write_file(self, name, text):
        path = os.path.join(self.tmpdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_cli(self, args, timeout=10.0, env=None):
        p = run_cli(args, timeout=timeout, env=env, cwd=self.tmpdir)
        self.cli_runs.append((args, p))
        return p

    def connect(self, port, timeout=10.0):
        c = RawConnection(port, timeout=timeout)
        self.connections.append(c)
        return c

    def on_cleanup(self, fn):
        self._cleanups.append(fn)

    def close(self):
        """Stops everything; returns the list of problems that fail the test."""
        problems = []
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as e:  # a cleanup failure is reported, not fatal
                problems.append("cleanup %r failed: %r" % (fn, e))
        for c in self.connections:
            c.close()
        for p in self.processes:
            p.stop()
            problems += p.problems()
        for b in self.backends:
            try:
                errors = b.protocol_errors()
            except Exception:
                errors = []  # a killed backend process: nothing to ask
            if errors:
                problems.append("the backend received malformed HTTP from sessiond: %s" % errors[:5])
            b.stop()
        for args, p in self.cli_runs:
            for marker in SANITIZER_MARKERS:
                if marker in p.stderr:
                    problems.append("sanitizer report from `sessiond %s`:\n%s" % (" ".join(args), p.stderr[-3000:]))
                    break
        return problems

    def diagnostics(self):
        return "\n".join(p.describe() for p in self.processes if p.proc is not None)


# ---------------------------------------------------------------------------
# Checks shared by the proxy tests.

# Text that must never appear in an error body sent to a client: source
# locations, OS error strings, internal type names, addresses, the secret.
_INTERNALS = (".cc", ".h:", "errno", "strerror", "connection refused", "reset by peer",
              "connection timed out", "broken pipe", "no route to host", "127.0.0.1", "10.255.255.1", "std::", "exception",
              "status::", "0x", SECRET.lower())


def check_error_response(resp, status, also_forbidden=()):
    """resp is the status, with a short plain-text body free of internals
    (docs/HTTP.md, Statuses: error bodies are short and never include internals)."""
    check_eq(resp.status, status, "status (body %r)" % (resp.body[:200] if resp.body else resp.body))
    ctype = resp.header("Content-Type") or ""
    check(ctype.lower().startswith("text/plain"),
          "%d error Content-Type is %r, want text/plain" % (status, ctype))
    body = (resp.body or b"").decode("latin-1")
    check(len(resp.body or b"") < 200, "%d error body is %d bytes, want < 200" % (status, len(body)))
    lowered = body.lower()
    for word in _INTERNALS + tuple(str(w).lower() for w in also_forbidden):
        check(word not in lowered, "%d error body reveals internals (%r): %r" % (status, word, body))


def echo_headers(resp, name):
    """The values of header `name` as the backend's /echo saw it."""
    name = name.lower()
    return [v for n, v in resp.json()["headers"] if n.lower() == name]
