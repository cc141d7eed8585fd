"""Packaging and builds (docs/INSTALL.md): make install, the Debian package,
man pages, bash completion, the Dockerfile, the Makefile's output and job
count, and the dependency sets of scripts/install-deps.sh.

None of these needs root: the package is built and inspected here, installed
only by scripts/test-deb.sh (CI, as root). Docker cannot run on the test
machines, so the Dockerfile is checked as text and its configuration with
--check-config.
"""

import os
import re
import shutil
import stat
import subprocess

from harness import REPO, SECRET, check, check_eq, sessiond_bin, skip

MAKE_TIMEOUT = 120


def _make(args, env=None, timeout=MAKE_TIMEOUT):
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("MAKEFLAGS", None)
    full_env.pop("MFLAGS", None)
    full_env.pop("MAKELEVEL", None)  # a make running the tests must not count as our parent
    return subprocess.run(["make", "--no-print-directory"] + args, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)


def _tree(root):
    """Every file and symlink under root, as '/relative/path', sorted."""
    out = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            out.append("/" + os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(out)


def _example_configs():
    return sorted(n for n in os.listdir(os.path.join(REPO, "config")) if re.match(r"sessiond\.\w+\.yaml$", n))


# ---------------------------------------------------------------------------
# make install

def test_make_install_destdir_installs_exactly_the_documented_files(t):
    dest = os.path.join(t.tmpdir, "stage")
    p = _make(["install", "DESTDIR=" + dest, "INSTALL_BIN=" + sessiond_bin()])
    check_eq(p.returncode, 0, "make install exit status (stderr %r)" % p.stderr[-800:])
    want = sorted([
        "/usr/local/bin/sessiond",
        "/usr/local/share/man/man8/sessiond.8",
        "/usr/local/share/man/man5/sessiond.yaml.5",
        "/usr/local/share/doc/sessiond/sessiond.yaml.example",
        "/usr/local/share/doc/sessiond/README.md",
        "/usr/local/share/doc/sessiond/CHANGELOG.md",
        "/usr/local/share/doc/sessiond/LICENSE",
        "/usr/local/lib/systemd/system/sessiond.service",
        "/usr/local/share/bash-completion/completions/sessiond",
        "/usr/local/etc/sessiond/sessiond.yaml",
    ] + ["/usr/local/share/doc/sessiond/examples/" + n for n in _example_configs()])
    check_eq(_tree(dest), want, "files installed by make install DESTDIR=... (PREFIX=/usr/local)")

    binary = os.path.join(dest, "usr/local/bin/sessiond")
    check(os.stat(binary).st_mode & stat.S_IXOTH, "the installed binary is not executable")
    with open(binary, "rb") as a, open(sessiond_bin(), "rb") as b:
        check(a.read() == b.read(), "the installed binary differs from INSTALL_BIN")
    for path in want:
        if path != "/usr/local/bin/sessiond":
            mode = stat.S_IMODE(os.stat(dest + path).st_mode)
            check_eq(oct(mode), oct(0o644), "mode of %s" % path)
    with open(os.path.join(dest, "usr/local/lib/systemd/system/sessiond.service")) as f:
        unit = f.read()
    check("ExecStart=/usr/local/bin/sessiond -c /usr/local/etc/sessiond/sessiond.yaml" in unit,
          "the unit's ExecStart does not name the installed paths")

    # A second install keeps an edited configuration.
    conf = os.path.join(dest, "usr/local/etc/sessiond/sessiond.yaml")
    with open(conf, "w") as f:
        f.write("# edited\n")
    p = _make(["install", "DESTDIR=" + dest, "INSTALL_BIN=" + sessiond_bin()])
    check_eq(p.returncode, 0, "second make install exit status")
    with open(conf) as f:
        check_eq(f.read(), "# edited\n", "configuration after a second make install")


def test_make_install_prefix_usr_puts_the_configuration_in_etc(t):
    dest = os.path.join(t.tmpdir, "stage")
    p = _make(["install", "DESTDIR=" + dest, "PREFIX=/usr", "INSTALL_BIN=" + sessiond_bin()])
    check_eq(p.returncode, 0, "make install PREFIX=/usr exit status (stderr %r)" % p.stderr[-800:])
    files = _tree(dest)
    check("/etc/sessiond/sessiond.yaml" in files, "no /etc/sessiond/sessiond.yaml with PREFIX=/usr: %r" % files)
    check("/usr/bin/sessiond" in files and "/usr/share/man/man8/sessiond.8" in files,
          "PREFIX=/usr layout: %r" % files)


# ---------------------------------------------------------------------------
# The Debian package (built, not installed: scripts/test-deb.sh installs it)

def test_deb_package_declares_its_libraries_conffiles_and_user(t):
    for tool in ("dpkg-deb", "dpkg-shlibdeps"):
        check(shutil.which(tool), "%s is missing (scripts/install-deps.sh test installs dpkg-dev)" % tool)
    out = os.path.join(t.tmpdir, "deb")
    p = subprocess.run([os.path.join(REPO, "scripts", "make-deb.sh"), sessiond_bin()], cwd=REPO, capture_output=True,
                       text=True, timeout=MAKE_TIMEOUT, env=dict(os.environ, DEB_OUT=out), stdin=subprocess.DEVNULL)
    check_eq(p.returncode, 0, "make-deb.sh exit status (stderr %r)" % p.stderr[-800:])
    deb = p.stdout.strip().splitlines()[-1]
    check(deb.startswith(out) and deb.endswith(".deb") and os.path.exists(deb), "make-deb.sh printed %r" % deb)

    def field(name):
        return subprocess.run(["dpkg-deb", "-f", deb, name], capture_output=True, text=True).stdout.strip()
    check_eq(field("Package"), "sessiond", "Package")
    with open(os.path.join(REPO, "VERSION")) as f:
        check_eq(field("Version"), f.read().strip(), "Version")
    depends = field("Depends")
    # What the binary links, as dpkg-shlibdeps names it.
    for lib in ("libevent-2.1", "libssl", "libyaml-cpp", "libhiredis", "libc6"):
        check(re.search(r"(^|, )%s[\w.+-]* \(>= [^)]+\)" % re.escape(lib), depends),
              "Depends lacks %s: %r" % (lib, depends))
    needed = subprocess.run(["objdump", "-p", sessiond_bin()], capture_output=True, text=True).stdout
    check_eq(len(re.findall(r"^\s+NEEDED\s", needed, re.M)) >= len(depends.split(", ")), True,
             "Depends names more packages than the binary links libraries")

    extract = os.path.join(t.tmpdir, "x")
    subprocess.run(["dpkg-deb", "-R", deb, extract], check=True)
    with open(os.path.join(extract, "DEBIAN", "conffiles")) as f:
        check_eq(f.read().split(), ["/etc/sessiond/sessiond.yaml"], "conffiles")
    with open(os.path.join(extract, "DEBIAN", "postinst")) as f:
        postinst = f.read()
    check("useradd --system" in postinst and "sessiond gen-secret" in postinst,
          "postinst does not create the sessiond user and the key")
    with open(os.path.join(extract, "lib", "systemd", "system", "sessiond.service")) as f:
        unit = f.read()
    check(re.search(r"^User=sessiond$", unit, re.M) and not re.search(r"^DynamicUser=", unit, re.M),
          "the packaged unit does not run as User=sessiond")
    check("ExecStart=/usr/bin/sessiond -c /etc/sessiond/sessiond.yaml" in unit, "packaged ExecStart")
    files = _tree(extract)
    for want in ("/usr/bin/sessiond", "/usr/share/man/man8/sessiond.8.gz", "/usr/share/man/man5/sessiond.yaml.5.gz",
                 "/usr/share/doc/sessiond/copyright", "/usr/share/bash-completion/completions/sessiond"):
        check(want in files, "the package lacks %s" % want)
    check(not any(f.startswith("/etc/sessiond/secret") for f in files), "the package ships a key")

    # The packaged configuration is valid once postinst has made the key.
    secret = t.write_file("secret", SECRET + "\n")
    os.chmod(secret, 0o600)
    with open(os.path.join(extract, "etc", "sessiond", "sessiond.yaml")) as f:
        text = f.read()
    check("secret_key_file: /etc/sessiond/secret" in text, "the packaged configuration does not read /etc/sessiond/secret")
    conf = t.write_file("packaged.yaml", text.replace("/etc/sessiond/secret", secret))
    p = t.run_cli(["--check-config", "-c", conf])
    check_eq(p.returncode, 0, "--check-config of the packaged configuration (stderr %r)" % p.stderr[-500:])


# ---------------------------------------------------------------------------
# Man pages, completion, license, changelog

def test_man_pages_render_without_warnings_and_cover_the_options_and_keys(t):
    check(shutil.which("groff"), "groff is missing (scripts/install-deps.sh test installs groff-base)")
    for page in ("sessiond.8", "sessiond.yaml.5"):
        path = os.path.join(REPO, "man", page)
        p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", path], capture_output=True, text=True,
                           env=dict(os.environ, LC_ALL="C.UTF-8"))
        check_eq((p.returncode, p.stderr), (0, ""), "groff -man -ww of %s" % page)
    with open(os.path.join(REPO, "man", "sessiond.8")) as f:
        eight = f.read().replace("\\-", "-")
    for option in re.findall(r"(?<![\w-])(--[a-z-]+|-[a-zA-Z])\b", t.run_cli(["--help"]).stdout):
        check(option in eight, "sessiond(8) does not document %s (from --help)" % option)
    check("gen-secret" in eight, "sessiond(8) does not document gen-secret")
    with open(os.path.join(REPO, "man", "sessiond.yaml.5")) as f:
        five = f.read().replace("\\-", "-")
    with open(os.path.join(REPO, "sessiond.yaml.example")) as f:
        keys = re.findall(r"^\s*([a-z_]+):", f.read(), re.M)
    missing = [k for k in keys if k not in five]
    check(not missing, "sessiond.yaml(5) does not mention %r (keys of sessiond.yaml.example)" % missing)


def _complete(words, cwd):
    """COMPREPLY of the completion for the command line `words` (last = current)."""
    script = ("shopt -s extglob; source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _sessiond; printf '%%s\\n' \"${COMPREPLY[@]}\""
              % (os.path.join(REPO, "scripts", "completion", "sessiond.bash"),
                 " ".join("'%s'" % w for w in words), len(words) - 1))
    p = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=10)
    check_eq(p.returncode, 0, "completion of %r (stderr %r)" % (words, p.stderr))
    return sorted(line for line in p.stdout.splitlines() if line)


def test_bash_completion_offers_options_commands_and_yaml_files(t):
    conf = os.path.join(REPO, "config")
    check_eq(_complete(["sessiond", "--c"], conf), ["--check-config", "--config"], "completion of --c")
    check("gen-secret" in _complete(["sessiond", ""], conf), "gen-secret not offered as a command")
    check("gen-secret" not in _complete(["sessiond", "-t", ""], conf), "gen-secret offered after an option")
    check_eq(_complete(["sessiond", "gen-secret", ""], conf), ["--help"], "completion after gen-secret")
    check_eq(_complete(["sessiond", "-c", "sessiond.re"], conf), ["sessiond.redis.yaml"], "completion of -c FILE")
    check_eq(_complete(["sessiond", "--check-config", "=", "de"], conf), ["demo.yaml"],
             "completion of --check-config=FILE (split at '=')")
    check("README.md" not in _complete(["sessiond", "-c", ""], conf), "-c offers a non-YAML file")


def test_license_and_changelog(t):
    with open(os.path.join(REPO, "LICENSE")) as f:
        text = f.read()
    check(text.startswith("MIT License") and "sessiond authors" in text, "LICENSE is not MIT by the sessiond authors")
    with open(os.path.join(REPO, "CHANGELOG.md")) as f:
        log = f.read()
    with open(os.path.join(REPO, "VERSION")) as f:
        version = f.read().strip()
    check(re.fullmatch(r"\d+\.\d+\.\d+", version), "VERSION is %r" % version)
    check(version in log, "CHANGELOG.md does not mention the version %s" % version)


# ---------------------------------------------------------------------------
# The Dockerfile (checked as text; no Docker daemon on the test machines)

def test_dockerfile_builds_with_the_ci_scripts_and_runs_unprivileged(t):
    # Instructions, continuation lines joined.
    with open(os.path.join(REPO, "Dockerfile")) as f:
        text = re.sub(r"\\\n\s*", " ", "".join(l for l in f if not l.lstrip().startswith("#")))
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    froms = [l for l in lines if l.startswith("FROM ")]
    check_eq(froms, ["FROM debian:bookworm-slim AS build", "FROM debian:bookworm-slim"], "FROM lines (two stages)")
    runs = " ".join(l for l in lines if l.startswith("RUN "))
    check("scripts/install-deps.sh" in runs and "make deb" in runs, "the build stage does not use install-deps.sh and make")
    users = [l.split()[1] for l in lines if l.startswith("USER ")]
    check(users and users[-1] not in ("root", "0"), "the image runs as %r" % users)
    health = [l for l in lines if l.startswith("HEALTHCHECK ")]
    check(len(health) == 1 and "/healthz" in health[0], "no HEALTHCHECK on /healthz: %r" % health)
    check(re.search(r"rm -rf [^&]*/etc/sessiond/secret", runs), "the image keeps the key postinst made")
    with open(os.path.join(REPO, ".dockerignore")) as f:
        ignored = f.read().split()
    check(".git" in ignored and "build" in ignored, ".dockerignore does not exclude .git and build: %r" % ignored)
    # The image's configuration: valid with the two variables it documents.
    conf = os.path.join(REPO, "packaging", "docker", "sessiond.yaml")
    p = t.run_cli(["--check-config", "-c", conf],
                  env={"SESSIOND_UPSTREAM": "http://127.0.0.1:3000", "SESSIOND_SECRET": SECRET})
    check_eq(p.returncode, 0, "--check-config of the image's configuration (stderr %r)" % p.stderr[-400:])
    check(re.search(r"^admin\.listen\s+0\.0\.0\.0:9090$", p.stdout, re.M), "the image's admin port is not 9090")


# ---------------------------------------------------------------------------
# The Makefile: one short line per file, V=1, parallel by default, stripped
# release binary, and the dependency set each target installs.

FAKE_CXX = """#!/bin/sh
# Records when each compile starts and ends; makes the -o file. With
# FAKE_WAIT=1 a compile ends only once two have started (or after 10 s), so
# parallel jobs show as start, start without depending on timing.
out=""
prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out=$a; prev=$a; done
echo "start $out" >> "$FAKE_LOG"
if [ "${FAKE_WAIT:-0}" = 1 ]; then
  i=0
  while [ "$(grep -c '^start' "$FAKE_LOG")" -lt 2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
fi
echo "end $out" >> "$FAKE_LOG"
mkdir -p "$(dirname "$out")" && : > "$out"
"""
_runs = iter(range(1000))


def _fake_compile(t, extra_args, wait=False):
    fake = t.write_file("fake-cxx", FAKE_CXX)
    os.chmod(fake, 0o755)
    run = next(_runs)
    log = os.path.join(t.tmpdir, "cxx-%d.log" % run)
    build = os.path.join(t.tmpdir, "b%d" % run)
    targets = [os.path.join(build, "obj", "src", "base", n) for n in ("json_text.o", "log.o")]
    p = _make(["BUILD=" + build, "CXX=" + fake] + extra_args + targets,
              env={"FAKE_LOG": log, "FAKE_WAIT": "1" if wait else "0"})
    check_eq(p.returncode, 0, "make with a fake compiler (stderr %r)" % p.stderr[-500:])
    with open(log) as f:
        events = [l.split()[0] for l in f.read().splitlines()]
    return p.stdout, events, fake


def test_make_prints_one_short_line_per_file_and_full_commands_with_v1(t):
    out, events, fake = _fake_compile(t, [])
    check_eq(sorted(out.splitlines()), ["  CXX   src/base/json_text.cc", "  CXX   src/base/log.cc"], "make output")
    out, _, _ = _fake_compile(t, ["V=1"])
    lines = out.splitlines()
    check_eq(len(lines), 2, "make V=1 output lines: %r" % lines)
    check(all(l.startswith(fake + " ") and " -c -o " in l and "-Wall" in l for l in lines),
          "make V=1 does not show the full commands: %r" % lines)


def test_make_runs_jobs_in_parallel_unless_told(t):
    if (os.cpu_count() or 1) < 2:
        skip("one CPU, so the default is -j1")
    _, events, _ = _fake_compile(t, [], wait=True)
    check_eq(events[:2], ["start", "start"], "order of compile events by default (both start before either ends)")
    _, events, _ = _fake_compile(t, ["-j1"])
    check_eq(events, ["start", "end", "start", "end"], "order of compile events with -j1")


def test_release_binary_has_no_debug_info_but_a_debug_file(t):
    release = os.path.join(REPO, "build", "release", "sessiond")
    if not os.path.exists(release):
        skip("no release build here (make build); sanitizer builds keep their debug info")
    sections = subprocess.run(["readelf", "-S", "-W", release], capture_output=True, text=True).stdout
    check(".debug_info" not in sections, "the release binary carries .debug_info")
    check(".gnu_debuglink" in sections, "the release binary does not point to its debug file")
    debug = subprocess.run(["readelf", "-S", "-W", release + ".debug"], capture_output=True, text=True).stdout
    check(".debug_info" in debug, "build/release/sessiond.debug has no .debug_info")


FAKE_TOOL = """#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_LOG"
case "$(basename "$0")" in
  dpkg-query) exit 1 ;;   # nothing is installed
  apt-get) [ -e "$SESSIOND_POLICY_RC_D" ] && echo "policy-rc.d present" >> "$FAKE_LOG" ;;
esac
exit 0
"""


def _installed_by(t, sets):
    bindir = os.path.join(t.tmpdir, "fakebin-" + "-".join(sets or ["none"]))
    os.makedirs(bindir)
    for tool in ("dpkg-query", "apt-get", "sudo", "systemctl"):
        path = os.path.join(bindir, tool)
        with open(path, "w") as f:
            f.write(FAKE_TOOL if tool != "sudo" else '#!/bin/sh\nexec "$@"\n')
        os.chmod(path, 0o755)
    log = os.path.join(bindir, "log")
    policy = os.path.join(bindir, "policy-rc.d")
    p = subprocess.run([os.path.join(REPO, "scripts", "install-deps.sh")] + sets, capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, PATH=bindir + ":" + os.environ["PATH"], FAKE_LOG=log,
                                            SESSIOND_POLICY_RC_D=policy))
    check_eq(p.returncode, 0, "install-deps.sh %r (stderr %r)" % (sets, p.stderr))
    with open(log) as f:
        calls = f.read().splitlines()
    installs = [c for c in calls if c.startswith("apt-get install")]
    check_eq(len(installs), 1, "apt-get install calls for %r: %r" % (sets, calls))
    check(not os.path.exists(policy), "install-deps left a policy-rc.d behind")
    return set(installs[0].split()[2:]) - {"-y", "-qq", "--no-install-recommends"}, calls


def test_install_deps_installs_only_the_sets_asked_for(t):
    build, _ = _installed_by(t, ["build"])
    for pkg in ("build-essential", "libevent-dev", "libssl-dev", "libyaml-cpp-dev", "libhiredis-dev"):
        check(pkg in build, "the build set lacks %s" % pkg)
    for pkg in ("redis-server", "nodejs", "chromium", "doctest-dev", "nginx-light"):
        check(pkg not in build, "the build set (plain `make`) installs %s" % pkg)
    default, _ = _installed_by(t, [])
    check_eq(default, build, "install-deps.sh without arguments")
    test, calls = _installed_by(t, ["build", "test"])
    check({"redis-server", "doctest-dev", "nodejs"} <= test, "the test set: %r" % sorted(test))
    # redis-server's own service must not start: policy-rc.d is in place while apt runs.
    check("policy-rc.d present" in calls, "no policy-rc.d while redis-server is installed: %r" % calls)
    check({"nginx-light", "wrk", "systemd"} <= test, "the test set lacks the bench bundle's or the unit check's "
          "tools: %r" % sorted(test))
    # Nor nginx's (port 80), whichever set brings it.
    bench, calls = _installed_by(t, ["bench"])
    check("nginx-light" in bench and "redis-server" not in bench, "the bench set: %r" % sorted(bench))
    check("policy-rc.d present" in calls, "no policy-rc.d while nginx-light is installed: %r" % calls)
    e2e, _ = _installed_by(t, ["e2e"])
    check({"chromium", "chromium-driver"} <= e2e and "redis-server" not in e2e, "the e2e set: %r" % sorted(e2e))


def test_make_targets_ask_for_their_dependency_sets(t):
    want = {"all": "build", "test": "build test", "demo": "build demo", "e2e": "build demo e2e",
            "bench": "build bench", "fuzz": "build fuzz", "deb": "build deb"}
    for target, sets in want.items():
        p = _make(["-n", target], timeout=60)
        asked = re.findall(r"scripts/install-deps\.sh((?: [a-z0-9]+)*)\s*$", p.stdout, re.M)
        check(asked, "make -n %s runs no install-deps.sh: %r" % (target, p.stdout[:400]))
        check_eq(asked[0].strip(), sets, "the sets `make %s` installs" % target)

test_deb_package_declares_its_libraries_conffiles_and_user.sanitizers = False
