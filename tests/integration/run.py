#!/usr/bin/env python3
"""Runs the integration tests: every test_* function of every test_*.py here.

  run.py [-j N] [--timeout S] [--keep] [FILTER...]

Each test runs in its own child process (a new session, so a timeout kills
the test and every process it started) with a fresh temp dir; a failure or
a hang in one never stops the others. Up to N tests run at once; a test
function with the attribute `exclusive = True` (heavy on CPU or timing
sensitive) runs alone after the others. A FILTER keeps the tests whose
"file::function" name contains it.

A test function with `sanitizers = False` does not run in a whole-suite run
against a sanitizer build (SESSIOND_SANITIZE set, no FILTER): it measures
time or capacity under load, or checks something no sanitizer sees
(packaging, the bench bundle), and a binary two to three times slower
measures the sanitizer instead. Those tests still run against the release
build, a FILTER that selects one still runs it (the ThreadSanitizer subset
keeps two Redis fault tests for their cross-thread paths), and the runner
prints how many it left out and why.

Output: one line per test, "PASS name (0.4s)", "FAIL name: reason"
followed by the indented detail, or "SKIP name: reason" (harness.skip(): a
tool the test needs is not installed here), then as the last line
"integration: N passed, M failed". Skipped tests count in neither: they did
not run. Exit status 0 only if at least one test ran and none failed.
"""

import argparse
import ast
import importlib.util
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def discover(filters, sanitized=False):
    """[(file, function, exclusive, timeout)] from the test files' syntax trees,
    so a file that fails to import still lists its tests (and each fails).
    With `sanitized` and no filters, tests marked `sanitizers = False` are
    left out; the second value is how many."""
    tests = []
    left_out = 0
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        with open(os.path.join(HERE, fname)) as f:
            tree = ast.parse(f.read(), fname)
        attrs = {}
        for node in tree.body:
            # test_x.exclusive = True / test_x.timeout = 60
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Attribute)
                    and isinstance(node.targets[0].value, ast.Name)
                    and isinstance(node.value, ast.Constant)):
                attrs[(node.targets[0].value.id, node.targets[0].attr)] = node.value.value
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                name = "%s::%s" % (fname[:-3], node.name)
                if filters and not any(flt in name for flt in filters):
                    continue
                if sanitized and not filters and attrs.get((node.name, "sanitizers"), True) is False:
                    left_out += 1
                    continue
                tests.append((fname, node.name, bool(attrs.get((node.name, "exclusive"))),
                              attrs.get((node.name, "timeout"))))
    return tests, left_out


# ---------------------------------------------------------------------------
# Child: runs one test, writes a JSON result.

def run_child(fname, func_name, result_path, keep):
    sys.path.insert(0, HERE)
    result = {"ok": False, "skipped": False, "reason": "", "detail": ""}
    try:
        from harness import Skip
    except BaseException:
        Skip = ()  # matches nothing; the import fails again below, as the test's failure
    tmpdir = tempfile.mkdtemp(prefix="sessiond-it-%s-" % func_name[5:][:40])
    ctx = None
    try:
        import harness
        ctx = harness.TestContext(tmpdir, func_name)
        spec = importlib.util.spec_from_file_location(fname[:-3], os.path.join(HERE, fname))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = getattr(module, func_name)
        if inspect.signature(fn).parameters:
            fn(ctx)
        else:
            fn()
        result["ok"] = True
    except Skip as e:
        result["ok"] = True
        result["skipped"] = True
        result["reason"] = str(e)[:300] or "skipped"
    except AssertionError as e:
        result["reason"] = str(e).split("\n", 1)[0][:300] or "assertion failed"
        result["detail"] = str(e) + "\n" + _test_frame(e)
    except BaseException as e:
        result["reason"] = "%s: %s" % (type(e).__name__, str(e).split("\n", 1)[0][:300])
        result["detail"] = traceback.format_exc()
    if ctx is not None:
        try:
            problems = ctx.close()
        except BaseException:
            problems = ["harness cleanup crashed:\n" + traceback.format_exc()]
        if problems:
            if result["ok"]:
                result["reason"] = problems[0].split("\n", 1)[0][:300]
            result["ok"] = False
            result["detail"] += "\n" + "\n".join(problems)
        if not result["ok"]:
            result["detail"] += "\n" + ctx.diagnostics() + "\ntemp dir: " + tmpdir
    if result["ok"] and not keep:
        shutil.rmtree(tmpdir, ignore_errors=True)
    with open(result_path, "w") as f:
        json.dump(result, f)


def _test_frame(e):
    """The test-file lines of the traceback, so a failure says where."""
    frames = traceback.extract_tb(e.__traceback__)
    lines = ["  at %s:%d %s" % (os.path.basename(f.filename), f.lineno, (f.line or "").strip())
             for f in frames if os.path.basename(f.filename).startswith("test_")]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Parent: schedules children.

def run_one(test, default_timeout, keep):
    fname, func, _, timeout = test
    timeout = timeout or default_timeout
    fd, result_path = tempfile.mkstemp(prefix="sessiond-it-result-", suffix=".json")
    os.close(fd)
    t0 = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--child", fname, func, result_path]
        + (["--keep"] if keep else []),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    timed_out = False
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(child.pid)
        output, _ = child.communicate()
    _kill_group(child.pid)  # anything the test left behind (its group outlives it)
    elapsed = time.monotonic() - t0
    try:
        with open(result_path) as f:
            result = json.load(f)
    except (OSError, ValueError):
        result = {"ok": False, "reason": "test process died (status %s)" % child.returncode, "detail": ""}
    os.unlink(result_path)
    if timed_out:
        result = {"ok": False, "reason": "timed out after %ds" % timeout, "detail": ""}
    out = output.decode("utf-8", "replace").strip()
    if out and not result["ok"]:
        result["detail"] += "\ntest output:\n" + out[-4000:]
    return "%s::%s" % (fname[:-3], func), result, elapsed


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("IT_JOBS", "4")))
    ap.add_argument("--timeout", type=float, default=120.0, help="per-test timeout in seconds")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs of passing tests")
    ap.add_argument("--list", action="store_true", help="list the selected tests and exit")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("filters", nargs="*")
    args = ap.parse_args()

    if args.child:
        run_child(*args.child, keep=args.keep)
        return 0

    sanitizer = os.environ.get("SESSIOND_SANITIZE", "")
    tests, left_out = discover(args.filters, sanitized=sanitizer not in ("", "0"))
    if left_out:
        print("integration: %d tests left out under the %s sanitizer (sanitizers = False: load, timing "
              "and packaging checks, run against the release build)" % (left_out, sanitizer), flush=True)
    if args.list:
        for fname, func, exclusive, _ in tests:
            print("%s::%s%s" % (fname[:-3], func, " (exclusive)" if exclusive else ""))
        return 0

    lock = threading.Lock()
    counts = {"passed": 0, "failed": 0, "skipped": 0}

    def report(name, result, elapsed):
        with lock:
            if result["ok"] and result.get("skipped"):
                counts["skipped"] += 1
                print("SKIP %s: %s" % (name, result["reason"]), flush=True)
            elif result["ok"]:
                counts["passed"] += 1
                print("PASS %s (%.1fs)" % (name, elapsed), flush=True)
            else:
                counts["failed"] += 1
                print("FAIL %s: %s" % (name, result["reason"]), flush=True)
                detail = result["detail"].strip()
                if detail.startswith(result["reason"]):
                    detail = detail[len(result["reason"]):].lstrip("\n")
                detail = "after %.1fs\n%s" % (elapsed, detail)
                print("\n".join("    " + line for line in detail.splitlines()), flush=True)

    shared = [t for t in tests if not t[2]]
    exclusive = [t for t in tests if t[2]]
    queue = list(shared)

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                test = queue.pop(0)
            report(*run_one(test, args.timeout, args.keep))

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(max(1, args.jobs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for test in exclusive:
        report(*run_one(test, args.timeout, args.keep))

    total = counts["passed"] + counts["failed"]
    print("integration: %d tests in %.0fs" % (total, time.monotonic() - t0), flush=True)
    if counts["skipped"]:
        print("integration: %d skipped (SKIP lines above: what to install to run them)" % counts["skipped"],
              flush=True)
    print("integration: %d passed, %d failed" % (counts["passed"], counts["failed"]), flush=True)
    return 0 if total and not counts["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
