"""Configuration error messages as an operator sees them, compared exactly
(docs/CONFIGURATION.md, Errors).

Each tests/integration/config_errors/NAME.yaml is checked with
`sessiond --check-config -c NAME.yaml` from its own directory, so the file
name in the messages is stable, and stderr must equal NAME.stderr byte for
byte: every error of the file, one "sessiond: FILE:LINE:COL: message" line
each, in file order. An empty NAME.stderr means the file is valid (exit 0).
SESSIOND_SECRET is set (to the harness secret, never printed); the variable
unset_secret_variable.yaml names is not.
"""

import glob
import os
import shutil
import subprocess

from harness import HERE, SECRET, check, check_eq, sessiond_bin

SNAPSHOTS = os.path.join(HERE, "config_errors")


def _snapshots():
    names = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(SNAPSHOTS, "*.yaml")))
    check(len(names) >= 8, "want at least 8 snapshots in %s, found %r" % (SNAPSHOTS, names))
    return names


def _run(t, name, args_before):
    shutil.copy(os.path.join(SNAPSHOTS, name + ".yaml"), t.tmpdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_DEMO_UNSET")}
    env["SESSIOND_SECRET"] = SECRET
    return subprocess.run([sessiond_bin()] + args_before + ["-c", name + ".yaml"], cwd=t.tmpdir, env=env,
                          capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)


def _compare(t, args_before):
    mismatches = []
    for name in _snapshots():
        with open(os.path.join(SNAPSHOTS, name + ".stderr")) as f:
            want = f.read()
        p = _run(t, name, args_before)
        want_status = 2 if want else 0
        if p.stderr != want or p.returncode != want_status:
            mismatches.append("%s: exit %d (want %d)\n--- stderr\n%s--- want\n%s"
                              % (name, p.returncode, want_status, p.stderr, want))
        check(SECRET not in p.stdout + p.stderr, "%s: the secret appears in the output" % name)
    check(not mismatches, "%d snapshot(s) differ:\n%s" % (len(mismatches), "\n".join(mismatches)))


def test_check_config_error_messages_match_the_snapshots(t):
    _compare(t, ["--check-config"])


def test_starting_with_a_bad_config_prints_the_same_errors(t):
    """sessiond -c FILE (no --check-config) refuses to start with the same
    lines; the valid snapshot is skipped (it would start serving)."""
    mismatches = []
    for name in _snapshots():
        with open(os.path.join(SNAPSHOTS, name + ".stderr")) as f:
            want = f.read()
        if not want:
            continue
        p = _run(t, name, [])
        if p.stderr != want or p.returncode != 2:
            mismatches.append("%s: exit %d\n%s" % (name, p.returncode, p.stderr))
    check(not mismatches, "sessiond -c differs from the snapshots:\n%s" % "\n".join(mismatches))


def test_check_config_equals_and_t_forms_give_the_same_errors(t):
    _compare(t, ["-t"])
    p = _run(t, "bare_duration", [])
    env = dict(os.environ, SESSIOND_SECRET=SECRET)
    q = subprocess.run([sessiond_bin(), "--check-config=bare_duration.yaml"], cwd=t.tmpdir, env=env,
                       capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    check_eq(q.returncode, 2, "--check-config=FILE exit status for an invalid file")
    check_eq(q.stderr, p.stderr, "--check-config=FILE stderr")
