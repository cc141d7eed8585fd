"""The example configs and the systemd unit in config/ are valid and safe.

Every config/*.yaml must pass `sessiond --check-config` in the environment
it is written for (SESSIOND_SECRET set, or the CREDENTIALS_DIRECTORY and
STATE_DIRECTORY that systemd provides) without printing the secret, and
must fail without that environment (the secret is not written in the file).
The unit file must carry the hardening directives, a TimeoutStopSec above
every example's timeouts.shutdown, and pass `systemd-analyze verify` where
that tool exists.
"""

import glob
import os
import re
import shutil
import subprocess

from harness import REPO, SECRET, check, check_eq, sessiond_bin, skip

CONFIG_DIR = os.path.join(REPO, "config")
UNIT_PATH = os.path.join(CONFIG_DIR, "sessiond.service")
CREDENTIAL_NAME = "sessiond-secret"
# A second secret, for the file systemd would pass in; distinct from SECRET
# so a leak of either one is noticed.
FILE_SECRET = "credential-secret-0b9d8e7f6a5c4b3a2f1e0d9c8b7a6f5e4d"


def _configs():
    paths = sorted(glob.glob(os.path.join(CONFIG_DIR, "*.yaml")))
    check(len(paths) >= 5, "want at least 5 example configs in config/, found %r"
          % [os.path.basename(p) for p in paths])
    return paths


def _service_env(t):
    """The environment a config may rely on: SESSIOND_SECRET, and what systemd
    sets for the unit (LoadCredential=, StateDirectory=)."""
    cred = os.path.join(t.tmpdir, "credentials")
    state = os.path.join(t.tmpdir, "state")
    os.makedirs(cred, exist_ok=True)
    os.makedirs(state, exist_ok=True)
    path = os.path.join(cred, CREDENTIAL_NAME)
    with open(path, "w") as f:
        f.write(FILE_SECRET + "\n")
    os.chmod(path, 0o600)
    return {"SESSIOND_SECRET": SECRET, "CREDENTIALS_DIRECTORY": cred, "STATE_DIRECTORY": state}


def _summary(t, path, env):
    """{key: value} of a successful --check-config summary."""
    p = t.run_cli(["--check-config", "-c", path], env=env)
    name = os.path.basename(path)
    check_eq(p.returncode, 0, "--check-config exit status of %s (stderr %r)" % (name, p.stderr[:500]))
    out = p.stdout + p.stderr
    for secret in (SECRET, FILE_SECRET):
        check(secret not in out, "--check-config output of %s contains the secret" % name)
    check("warning" not in p.stderr.lower(), "--check-config of %s warns: %r" % (name, p.stderr[:500]))
    check(re.search(r"\bis valid\b", p.stdout), "no 'is valid' line in the summary of %s: %r"
          % (name, p.stdout[-300:]))
    summary = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^(\S+)\s{2,}(.*)$", line)
        if m:
            summary[m.group(1)] = m.group(2)
    return summary


def _seconds(text):
    """A duration as the summary prints it (250ms, 10s, 1m30s, 1d) in seconds."""
    word = text.strip().split()[0] if text.strip() else ""
    terms = re.findall(r"(\d+)(ms|s|m|h|d)", word)
    check(terms and "".join(n + u for n, u in terms) == word, "unparseable duration %r" % text)
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * unit[u] for n, u in terms)


# ---------------------------------------------------------------------------
# The YAML examples.

def test_every_example_config_passes_check_config_without_printing_the_secret(t):
    env = _service_env(t)
    for path in _configs():
        summary = _summary(t, path, env)
        check("session.manager" in summary, "no session.manager in the summary of %s" % path)


def test_example_config_names_match_their_session_manager(t):
    env = _service_env(t)
    for path in _configs():
        m = re.match(r"^sessiond\.(\w+)\.yaml$", os.path.basename(path))
        if not m:
            continue
        summary = _summary(t, path, env)
        check_eq(summary.get("session.manager"), m.group(1), "session.manager of %s" % os.path.basename(path))


def test_production_examples_use_secure_httponly_cookies(t):
    env = _service_env(t)
    production = [p for p in _configs() if os.path.basename(p).startswith("sessiond.")]
    check_eq(len(production), 4, "number of config/sessiond.*.yaml examples")
    for path in production:
        summary = _summary(t, path, env)
        name = os.path.basename(path)
        check_eq(summary.get("session.session_cookie_secure"), "true", "session_cookie_secure of " + name)
        check_eq(summary.get("session.session_cookie_httponly"), "true", "session_cookie_httponly of " + name)
        check(summary.get("session.session_cookie_samesite") in ("Lax", "Strict"),
              "session_cookie_samesite of %s is %r" % (name, summary.get("session.session_cookie_samesite")))


def test_demo_config_is_plain_http_localhost_with_cookie_manager(t):
    summary = _summary(t, os.path.join(CONFIG_DIR, "demo.yaml"), _service_env(t))
    check_eq(summary.get("session.manager"), "cookie", "demo session.manager")
    check_eq(summary.get("session.session_cookie_secure"), "false", "demo session_cookie_secure")
    check_eq(summary.get("listen"), "127.0.0.1:8080", "demo listen")
    check(summary.get("upstream", "").startswith("http://127.0.0.1:3000"),
          "demo upstream is %r" % summary.get("upstream"))
    # The demo page shows the cookie (document.cookie) and links /metrics.
    check_eq(summary.get("session.session_cookie_httponly"), "false", "demo session_cookie_httponly")
    check_eq(summary.get("admin.listen"), "127.0.0.1:9090", "demo admin.listen")


def test_example_configs_hold_no_secret_and_need_one_from_outside(t):
    """Without SESSIOND_SECRET / CREDENTIALS_DIRECTORY every example fails:
    no key is written in the files themselves."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SESSIOND_SECRET", "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY")}
    for path in _configs():
        name = os.path.basename(path)
        p = subprocess.run([sessiond_bin(), "--check-config", "-c", path], capture_output=True,
                           text=True, timeout=10, env=env, stdin=subprocess.DEVNULL)
        check_eq(p.returncode, 2, "--check-config of %s without the secret's environment (stdout %r)"
                 % (name, p.stdout[-300:]))
        with open(path) as f:
            text = f.read()
        m = re.search(r"^(secret_key|secret_key_file):[ \t]*(.*)$", text, re.M)
        check(m, "%s sets neither secret_key nor secret_key_file" % name)
        check(m.group(2).strip().startswith("${"),
              "%s: %s is %r, want it from the environment (${...})" % (name, m.group(1), m.group(2)))


# ---------------------------------------------------------------------------
# The systemd unit.

def _unit_directives():
    """{key: [values in order]} of the unit file's [Service] section (others too)."""
    directives = {}
    with open(UNIT_PATH) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";", "[")):
                continue
            key, sep, value = line.partition("=")
            check(sep, "malformed unit line %r" % line)
            directives.setdefault(key.strip(), []).append(value.strip())
    return directives


REQUIRED_DIRECTIVES = {
    "DynamicUser": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "NoNewPrivileges": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "MemoryDenyWriteExecute": "yes",
    "LockPersonality": "yes",
    "RestrictNamespaces": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet": "",
    "KillSignal": "SIGTERM",
    "ExecReload": "/bin/kill -HUP $MAINPID",
}


def test_systemd_unit_has_the_hardening_directives(t):
    d = _unit_directives()
    for key, want in REQUIRED_DIRECTIVES.items():
        check(key in d, "sessiond.service lacks %s=" % key)
        check_eq(d[key][-1], want, "sessiond.service %s" % key)
    check("@system-service" in d.get("SystemCallFilter", []),
          "SystemCallFilter=@system-service missing: %r" % d.get("SystemCallFilter"))
    check(d.get("StateDirectory", [""])[-1], "sessiond.service lacks StateDirectory= (file manager)")
    creds = d.get("LoadCredential", [])
    check(any(v.startswith(CREDENTIAL_NAME + ":") for v in creds),
          "no LoadCredential=%s:PATH (the examples read ${CREDENTIALS_DIRECTORY}/%s): %r"
          % (CREDENTIAL_NAME, CREDENTIAL_NAME, creds))
    check(d.get("ExecStart", [""])[-1].split()[0].endswith("/sessiond"), "ExecStart does not run sessiond")


def test_systemd_unit_stop_timeout_exceeds_every_shutdown_timeout(t):
    d = _unit_directives()
    check("TimeoutStopSec" in d, "sessiond.service lacks TimeoutStopSec=")
    stop = d["TimeoutStopSec"][-1]
    m = re.match(r"^(\d+)(s|min)?$", stop)
    check(m, "TimeoutStopSec=%r is not in seconds or minutes" % stop)
    stop_seconds = int(m.group(1)) * (60 if m.group(2) == "min" else 1)
    env = _service_env(t)
    for path in _configs():
        shutdown = _seconds(_summary(t, path, env)["timeouts.shutdown"])
        check(stop_seconds > shutdown, "TimeoutStopSec=%s is not above timeouts.shutdown (%ss) of %s"
              % (stop, shutdown, os.path.basename(path)))


def test_systemd_unit_passes_systemd_analyze_verify(t):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        skip("systemd-analyze is not installed (package systemd); the unit's directive checks still ran")
    # verify insists that ExecStart's binary exists: point it at the build.
    with open(UNIT_PATH) as f:
        text = f.read()
    check("/usr/local/bin/sessiond" in text, "ExecStart does not use /usr/local/bin/sessiond")
    unit = t.write_file("sessiond.service", text.replace("/usr/local/bin/sessiond", sessiond_bin()))
    p = subprocess.run([tool, "verify", unit], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    # verify exits 0 even for unknown keys and unparseable values; it only
    # warns. Any line about our unit counts as a failure.
    complaints = [line for line in (p.stdout + p.stderr).splitlines() if "sessiond.service" in line]
    check_eq(p.returncode, 0, "systemd-analyze verify exit status (output %r)" % (p.stdout + p.stderr)[-800:])
    check(not complaints, "systemd-analyze verify complains: %r" % complaints)
