"""The command line, exit codes and signals (docs/CONFIGURATION.md, Command line;
docs/CONFIGURATION.md, Exit codes; docs/OPERATIONS.md, Signals)."""

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import SECRET, check, check_eq, free_port, sessiond_bin, to_yaml, wait_until

FALLBACK_SECRET = "integration-fallback-5e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b"


def _valid_config(upstream_port=1, listen_port=None):
    return to_yaml({
        "listen": "127.0.0.1:%d" % (listen_port or free_port()),
        "upstream": "http://127.0.0.1:%d" % upstream_port,
        "secret_key": SECRET,
        "secret_key_fallbacks": [FALLBACK_SECRET],
    }) + "\n"


def _check_config_error(t, text, line, col, args_before=("--check-config",)):
    path = t.write_file("bad.yaml", text)
    p = t.run_cli(list(args_before) + ["-c", path])
    check_eq(p.returncode, 2, "exit status for an invalid config (stderr %r)" % p.stderr[:300])
    want = "sessiond: %s:%d:%s: " % (path, line, col if col else "COL")
    pattern = re.escape(want).replace("COL", r"\d+")
    check(re.search(pattern, p.stderr), "stderr %r does not contain %r" % (p.stderr[:500], want))
    check(SECRET not in p.stdout + p.stderr, "the secret appears in the output")


def test_check_config_unknown_key_exits_2_with_position(t):
    _check_config_error(t, _valid_config() + "bogus_key: 1\n", 5, 1)


def test_check_config_unknown_nested_key_exits_2_with_position(t):
    _check_config_error(t, _valid_config() + "timeouts:\n  idle: 5s\n  idel: 5s\n", 7, 3)


def test_check_config_bad_value_exits_2_with_position(t):
    _check_config_error(t, _valid_config() + "limits:\n  max_body_bytes: lots\n", 6, None)


def test_run_with_invalid_config_exits_2_with_position(t):
    _check_config_error(t, _valid_config() + "bogus_key: 1\n", 5, 1, args_before=())


def test_check_config_missing_secret_exits_2(t):
    path = t.write_file("nosecret.yaml", "listen: 127.0.0.1:%d\nupstream: http://127.0.0.1:1\n" % free_port())
    p = t.run_cli(["--check-config", "-c", path])
    check_eq(p.returncode, 2, "exit status without secret_key")
    check(p.stderr.startswith("sessiond: "), "stderr %r does not start with 'sessiond: '" % p.stderr[:200])


def test_check_config_short_secret_exits_2(t):
    path = t.write_file("short.yaml", "listen: 127.0.0.1:%d\nupstream: http://127.0.0.1:1\nsecret_key: tooshort\n"
                        % free_port())
    p = t.run_cli(["--check-config", "-c", path])
    check_eq(p.returncode, 2, "exit status for a 8-byte secret_key")
    check("tooshort" not in p.stdout + p.stderr, "the (short) secret appears in the output")


def test_missing_config_file_exits_2(t):
    p = t.run_cli(["-c", t.tmpdir + "/does-not-exist.yaml"])
    check_eq(p.returncode, 2, "exit status for a missing config file")
    check(p.stderr.startswith("sessiond: "), "stderr %r does not start with 'sessiond: '" % p.stderr[:200])


def test_unknown_option_exits_2(t):
    p = t.run_cli(["--no-such-option"])
    check_eq(p.returncode, 2, "exit status for an unknown option")
    check(p.stderr.startswith("sessiond: "), "stderr %r does not start with 'sessiond: '" % p.stderr[:200])


def test_check_config_prints_summary_without_secrets(t):
    listen_port = free_port()
    path = t.write_file("good.yaml", _valid_config(upstream_port=4321, listen_port=listen_port))
    p = t.run_cli(["--check-config", "-c", path])
    check_eq(p.returncode, 0, "exit status for a valid config (stderr %r)" % p.stderr[:300])
    out = p.stdout + p.stderr
    check(len(p.stdout.strip().splitlines()) >= 3, "summary is %r, want a multi-line summary" % p.stdout)
    check("127.0.0.1:%d" % listen_port in out, "summary does not show the listen address")
    check("4321" in out, "summary does not show the upstream")
    check(SECRET not in out, "summary shows secret_key")
    check(FALLBACK_SECRET not in out, "summary shows a secret_key_fallbacks entry")
    for piece in (SECRET[:16], SECRET[-16:], FALLBACK_SECRET[-16:]):
        check(piece not in out, "summary shows part of a secret (%r)" % piece)


def test_version_and_help_exit_0(t):
    for flag in ("--version", "--help"):
        p = t.run_cli([flag])
        check_eq(p.returncode, 0, "exit status of %s" % flag)
        check(p.stdout.strip(), "%s printed nothing on stdout" % flag)
    check(re.search(r"\d+\.\d+", t.run_cli(["--version"]).stdout), "--version shows no version number")
    check("-c" in t.run_cli(["--help"]).stdout, "--help does not mention -c")


def test_gen_secret_prints_fresh_base64url_secret(t):
    secrets = []
    for _ in range(2):
        p = t.run_cli(["gen-secret"])
        check_eq(p.returncode, 0, "exit status of gen-secret")
        secret = p.stdout.strip()
        check(re.fullmatch(r"[A-Za-z0-9_-]{43,}", secret), "gen-secret printed %r, want >= 43 base64url chars" % secret)
        check(len(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))) >= 32, "secret decodes to < 32 bytes")
        secrets.append(secret)
    check(secrets[0] != secrets[1], "two gen-secret runs printed the same secret")


def test_port_in_use_exits_1(t):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proxy = t.sessiond(overrides={"listen": "127.0.0.1:%d" % port}, start=False)
        proxy.start(wait=False)
        status = proxy.wait(5)
    check_eq(status, 1, "exit status when the listen port is in use")
    err = proxy.stderr_text()
    check(err.startswith("sessiond: "), "stderr %r does not start with 'sessiond: '" % err[:200])


def test_sigterm_exits_0(t):
    proxy = t.sessiond()
    check_eq(proxy.request("GET", "/echo").status, 200, "status")
    proxy.signal(signal.SIGTERM)
    check_eq(proxy.wait(5), 0, "exit status after SIGTERM")


def test_sigint_exits_0(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    check_eq(conn.request("GET", "/echo").status, 200, "status")
    proxy.signal(signal.SIGINT)
    check_eq(proxy.wait(5), 0, "exit status after SIGINT with an idle keep-alive client")


def test_sigterm_finishes_inflight_request_and_stops_accepting(t):
    proxy = t.sessiond(overrides={"timeouts": {"shutdown": "10s"}})
    result = {}

    def slow_request():
        try:
            result["resp"] = proxy.request("GET", "/slow-headers/1500", timeout=10)
        except Exception as e:  # reported by the main thread
            result["error"] = e

    th = threading.Thread(target=slow_request)
    th.start()
    proxy.backend.wait_requests(1, timeout=5)
    proxy.signal(signal.SIGTERM)
    t0 = time.monotonic()

    def refused():
        try:
            socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5).close()
            return False
        except OSError:
            return True
    stopped_accepting = False
    try:
        wait_until(refused, 1.0, "new connections to be refused")
        stopped_accepting = True
    except AssertionError:
        pass
    th.join(10)
    check("error" not in result, "in-flight request failed during shutdown: %r" % result.get("error"))
    check_eq(result["resp"].status, 200, "in-flight request status")
    check(stopped_accepting, "sessiond still accepted connections 1s after SIGTERM")
    check_eq(proxy.wait(5), 0, "exit status after SIGTERM")
    check(time.monotonic() - t0 < 6, "shutdown took %.1fs" % (time.monotonic() - t0))


# ---------------------------------------------------------------------------
# The command line an operator meets first (docs/CONFIGURATION.md, Command line).

def test_help_lists_t_and_check_config_equals(t):
    out = t.run_cli(["--help"]).stdout
    check(re.search(r"^\s*-t, --check-config\b", out, re.M), "--help does not show -t: %r" % out)
    check("--check-config=FILE" in out, "--help does not show --check-config=FILE: %r" % out)
    check("gen-secret" in out, "--help does not mention gen-secret")


def test_t_and_check_config_equals_validate_like_check_config(t):
    path = t.write_file("good.yaml", _valid_config(upstream_port=4321))
    reference = t.run_cli(["--check-config", "-c", path])
    check_eq(reference.returncode, 0, "--check-config -c exit status (stderr %r)" % reference.stderr[:300])
    for args in (["-t", "-c", path], ["--check-config=" + path], ["-t", "--config=" + path]):
        p = t.run_cli(args)
        check_eq(p.returncode, 0, "exit status of %r (stderr %r)" % (args, p.stderr[:300]))
        check_eq(p.stdout, reference.stdout, "summary of %r" % args)
    p = t.run_cli(["--check-config="])
    check_eq(p.returncode, 2, "--check-config= without a file")


def test_gen_secret_help_explains_and_generates_nothing(t):
    for flag in ("--help", "-h"):
        p = t.run_cli(["gen-secret", flag])
        check_eq(p.returncode, 0, "exit status of gen-secret %s" % flag)
        check(p.stdout.startswith("usage: sessiond gen-secret"), "gen-secret %s printed %r" % (flag, p.stdout[:200]))
        check("SESSIOND_SECRET" in p.stdout and "secret_key_file" in p.stdout,
              "gen-secret --help does not show how to use the secret: %r" % p.stdout)
        check(not re.search(r"^[A-Za-z0-9_-]{43}$", p.stdout, re.M), "gen-secret --help printed a secret")
    p = t.run_cli(["gen-secret", "extra"])
    check_eq(p.returncode, 2, "exit status of gen-secret with an extra argument")
    check(p.stderr.startswith("sessiond: "), "stderr %r" % p.stderr[:200])


def _run_without_config_env(t, args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "SESSIOND_CONFIG"}
    return subprocess.run([sessiond_bin()] + args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=10, stdin=subprocess.DEVNULL)


def test_no_config_anywhere_hints_at_the_example(t):
    empty = os.path.join(t.tmpdir, "empty")
    os.mkdir(empty)
    for args in ([], ["--check-config"]):
        p = _run_without_config_env(t, args, empty)
        check_eq(p.returncode, 2, "exit status of %r without any configuration" % args)
        lines = p.stderr.splitlines()
        check(lines and lines[0] == "sessiond: sessiond.yaml: cannot read: No such file or directory",
              "first line %r" % lines[:1])
        check(any(l.startswith("sessiond: hint: ") and "cp sessiond.yaml.example sessiond.yaml" in l
                  for l in lines), "no hint to copy sessiond.yaml.example: %r" % p.stderr)
    # A file named explicitly (-c or $SESSIOND_CONFIG) that is missing is a
    # typo in that name, not a first run: no hint.
    p = _run_without_config_env(t, ["-c", "nope.yaml"], empty)
    check_eq(p.returncode, 2, "exit status for a missing -c file")
    check("sessiond: hint:" not in p.stderr, "hint shown for an explicit -c: %r" % p.stderr)
    p = t.run_cli([], env={"SESSIOND_CONFIG": os.path.join(empty, "nope.yaml")})
    check_eq(p.returncode, 2, "exit status for a missing $SESSIOND_CONFIG file")
    check("sessiond: hint:" not in p.stderr, "hint shown for $SESSIOND_CONFIG: %r" % p.stderr)


def test_version_shows_commit_build_date_and_library_versions(t):
    p = t.run_cli(["--version"])
    check_eq(p.returncode, 0, "exit status of --version")
    lines = p.stdout.splitlines()
    check(re.fullmatch(r"sessiond \d+\.\d+\.\d+", lines[0]), "first line %r" % lines[0])
    fields = dict(re.split(r"\s+", l, maxsplit=1) for l in lines[1:] if l.strip())
    check(re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?|unknown", fields.get("commit", "")),
          "commit line %r" % fields.get("commit"))
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fields.get("built", "")), "built line %r" % fields.get("built"))
    # The versions in use: libevent and OpenSSL at run time, as the libraries report them.
    check(re.match(r"\d+\.\d+\.\d+", fields.get("libevent", "")), "libevent line %r" % fields.get("libevent"))
    check(re.match(r"OpenSSL \d+\.\d+", fields.get("OpenSSL", "")), "OpenSSL line %r" % fields.get("OpenSSL"))
    check(re.match(r"\d+\.\d+\.\d+ \(compile time\)", fields.get("hiredis", "")), "hiredis line %r" % fields.get("hiredis"))
    check(re.match(r"\d+\.\d+\.\d+ \(compile time\)", fields.get("yaml-cpp", "")),
          "yaml-cpp line %r" % fields.get("yaml-cpp"))
    if shutil.which("pkg-config"):
        for pkg, key in (("libevent", "libevent"), ("yaml-cpp", "yaml-cpp"), ("hiredis", "hiredis")):
            q = subprocess.run(["pkg-config", "--modversion", pkg], capture_output=True, text=True)
            if q.returncode == 0:
                check(fields[key].startswith(q.stdout.strip()), "%s %r, pkg-config says %r"
                      % (key, fields[key], q.stdout.strip()))
