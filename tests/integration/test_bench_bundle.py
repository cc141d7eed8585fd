"""The benchmark's bundle and scale runner (scripts/bench.sh bundle / scale;
docs/PERFORMANCE.md): a folder that runs sessiond, nginx, wrk and
redis-server through its own loader and libraries, on a machine with nothing
but bash, coreutils, awk and /proc.

These need the benchmark's tools (nginx, wrk, redis-server: scripts/install-deps.sh
bench, or test); without them they are reported as skipped, never as passed.
"""

import json
import os
import shutil
import subprocess

from harness import REPO, check, check_eq, sessiond_bin, skip

BENCH = os.path.join(REPO, "scripts", "bench.sh")
TOOLS = ("nginx", "wrk", "redis-server", "taskset")
BINARIES = ("sessiond", "nginx", "wrk", "redis-server", "taskset")


def _require_tools():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        skip("%s not installed (scripts/install-deps.sh test or bench)" % ", ".join(missing))


def _bundle(t):
    """Runs scripts/bench.sh bundle into a fresh folder; returns the folder."""
    out = os.path.join(t.tmpdir, "bundle")
    p = subprocess.run([BENCH, "bundle", out], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, SESSIOND_BIN=sessiond_bin()), stdin=subprocess.DEVNULL)
    check_eq(p.returncode, 0, "exit status of bench.sh bundle (stderr %r)" % p.stderr[-1500:])
    return out


def _loader_cmd(out, binary):
    return [os.path.join(out, "lib", "ld-linux-x86-64.so.2"), "--library-path", os.path.join(out, "lib"),
            os.path.join(out, "bin", binary)]


def test_bundle_runs_every_binary_from_its_own_libraries_with_an_empty_environment(t):
    _require_tools()
    out = _bundle(t)
    for binary in BINARIES:
        check(os.access(os.path.join(out, "bin", binary), os.X_OK), "bin/%s is missing" % binary)
    for name in ("run-scale.sh", "share/lib.sh", "share/report.awk", "share/backend.nginx.conf.in",
                 "share/proxy.nginx.conf.in", "share/sessiond.yaml.in"):
        check(os.path.isfile(os.path.join(out, name)), "%s is missing from the bundle" % name)

    # Every library each binary loads resolves inside the bundle.
    lib = os.path.join(out, "lib")
    for binary in BINARIES:
        p = subprocess.run([os.path.join(lib, "ld-linux-x86-64.so.2"), "--list", "--library-path", lib,
                            os.path.join(out, "bin", binary)], capture_output=True, text=True, timeout=30, env={})
        check_eq(p.returncode, 0, "ld.so --list bin/%s (stderr %r)" % (binary, p.stderr[-500:]))
        for line in p.stdout.splitlines():
            if "=>" not in line:
                continue
            target = line.split("=>", 1)[1].strip().split(" (")[0]
            check(target.startswith(lib + "/"), "bin/%s loads %r from outside the bundle" % (binary, line.strip()))

    p = subprocess.run(_loader_cmd(out, "sessiond") + ["--version"], capture_output=True, text=True,
                       timeout=30, env={})
    check_eq(p.returncode, 0, "bundled sessiond --version exit status (stderr %r)" % p.stderr[-500:])
    check(p.stdout.startswith("sessiond "), "bundled sessiond --version printed %r" % p.stdout[:200])
    p = subprocess.run(_loader_cmd(out, "nginx") + ["-v"], capture_output=True, text=True, timeout=30, env={})
    check("nginx version:" in p.stderr, "bundled nginx -v printed %r" % (p.stdout + p.stderr)[:200])

    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(out) for f in files)
    check(size < 60 * 1024 * 1024, "the bundle is %.1f MiB, over 60 MiB" % (size / 1048576))


def test_scale_runner_runs_from_the_bundle_with_only_bash_coreutils_and_awk(t):
    _require_tools()
    out = _bundle(t)
    results = os.path.join(t.tmpdir, "results")
    # The smallest run that still goes through every step: one worker count,
    # one sweep point, the redis manager, one-second runs.
    env = {"PATH": "/usr/bin:/bin", "BENCH_SECONDS": "1", "BENCH_ROUNDS": "1", "BENCH_WARMUP_SECONDS": "1",
           "BENCH_SCALE_WORKERS": "1", "BENCH_SWEEP": "20", "BENCH_SCALE_CONNECTIONS": "10",
           "BENCH_RESULTS": results, "TMPDIR": t.tmpdir}
    p = subprocess.run(["bash", os.path.join(out, "run-scale.sh")], capture_output=True, text=True,
                       timeout=240, env=env, stdin=subprocess.DEVNULL)
    check_eq(p.returncode, 0, "exit status of run-scale.sh (stderr %r)" % p.stderr[-2000:])
    check_eq(sorted(os.listdir(results)), ["raw.txt", "results.json", "results.txt"], "result files")
    with open(os.path.join(results, "results.json")) as f:
        data = json.load(f)
    got = {(r["scenario"], r["contender"]): r for r in data["results"]}
    for key in (("scale_w1", "nginx"), ("scale_w1", "cookie"), ("scale_w1", "redis"),
                ("sweep_w1_c20", "nginx"), ("sweep_w1_c20", "cookie")):
        check(key in got, "no result for %s / %s in %r" % (key[0], key[1], sorted(got)))
        r = got[key]
        check(r["requests"] > 0 and r["rps"] is not None and r["p99_ms"] is not None,
              "%s / %s: %r" % (key[0], key[1], r))
        check(r["cpu_us_per_request"] is not None, "%s / %s: no CPU time measured" % key)
        check(r["new_upstream_per_request"] is not None, "%s / %s: no upstream connections counted" % key)
        check_eq(r["non2xx"], 0, "%s / %s non-2xx responses" % key)
    check(got[("scale_w1", "redis")]["redis_cpu_us_per_request"] is not None, "no redis-server CPU time measured")
    check_eq(data["problems"], [], "problems the runner reported")
    check(any(b["bar"].startswith("new upstream connections") for b in data["bars"]), "bars: %r" % data["bars"])
    with open(os.path.join(results, "results.txt")) as f:
        text = f.read()
    check("sessiond cookie" in text and "nginx proxy_pass" in text and "bars" in text,
          "results.txt: %r" % text[:2000])
    check(text in p.stdout, "the runner did not print results.txt")
    # Every process it started was stopped, and its temp dir removed, on exit.
    check_eq(_running_from(out), [], "processes of the bundle still running")
    left = [n for n in os.listdir(t.tmpdir) if n.startswith("sessiond-scale.")]
    check_eq(left, [], "temp dirs left behind")


def _running_from(folder):
    """[(pid, command line)] of the processes running the folder's loader (every
    bundled binary runs through it) or naming the folder in their command line
    (nginx rewrites its workers' command lines, not their executable)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            exe = os.readlink("/proc/%s/exe" % pid)
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if exe.startswith(folder + "/") or folder + "/" in cmdline:
            found.append((int(pid), cmdline[:200]))
    return found


test_scale_runner_runs_from_the_bundle_with_only_bash_coreutils_and_awk.exclusive = True
test_scale_runner_runs_from_the_bundle_with_only_bash_coreutils_and_awk.sanitizers = False
test_scale_runner_runs_from_the_bundle_with_only_bash_coreutils_and_awk.timeout = 300
test_bundle_runs_every_binary_from_its_own_libraries_with_an_empty_environment.timeout = 180
