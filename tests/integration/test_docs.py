"""The docs stay the specification (docs/README.md, Conventions).

- Nothing outside docs/ cites the old external contract document: code,
  tests and scripts cite docs/ sections instead.
- Every YAML key that src/config/config.cc accepts has its own heading in
  docs/CONFIGURATION.md; every key documented there is accepted.
- Every metric name that the admin listener emits (src/admin, src/observe) is
  in the table of docs/OPERATIONS.md, Metrics, and every metric in that table
  is emitted.
- Every citation "docs/<file>.md, <section>" in the repository outside docs/
  names a file that exists and a heading present in it; every relative
  Markdown link in the README and in docs/ points at an existing file and
  heading anchor.

These read source and Markdown only; they start no process. Each check
collects every offender and reports them together.
"""

import os
import re

from harness import check

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DOCS = os.path.join(ROOT, "docs")
SKIP_DIRS = {".git", "build", "__pycache__", "node_modules"}

# Spelled in two parts so this file does not cite what it forbids.
OLD_SPEC_NAME = re.compile(r"\b" + "CON" + "TRACT" + r"\b")
CITATION = re.compile(r"docs/([A-Za-z0-9_.-]+\.md)")
# What may start a continuation line of a comment or docstring.
COMMENT_LEAD = re.compile(r"^\s*(//+|#+|\*+|--|;+|\"\"\"|''')?\s*")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _read(path):
    with open(path, "rb") as f:
        data = f.read()
    if b"\0" in data:
        return None  # binary
    return data.decode("utf-8", errors="replace")


def _repo_files(outside_docs=True):
    """(relative path, text) of every text file of the working tree, build
    outputs and VCS data excluded."""
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        rel_dir = os.path.relpath(dirpath, ROOT)
        if outside_docs and (rel_dir == "docs" or rel_dir.startswith("docs" + os.sep)):
            dirnames[:] = []
            continue
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            text = _read(path)
            if text is not None:
                yield os.path.relpath(path, ROOT), text


def _headings(md_text):
    """The raw heading texts of a Markdown document, code blocks excluded."""
    out, fenced = [], False
    for line in md_text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m and not fenced:
            out.append(m.group(2))
    return out


def _normalise(text):
    return " ".join(text.replace("`", "").split()).lower()


def _slug(heading):
    """The anchor GitHub gives a heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def _anchors(md_text):
    seen, out = {}, set()
    for h in _headings(md_text):
        base = _slug(h)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else "%s-%d" % (base, n))
    return out


def _doc(name):
    path = os.path.join(DOCS, name)
    return _read(path) if os.path.isfile(path) else None


def _section(md_text, heading):
    """The text under `## heading` up to the next heading of level 1 or 2."""
    m = re.search(r"^##\s+%s\s*$" % re.escape(heading), md_text, re.M)
    if not m:
        return None
    end = re.search(r"^#{1,2}\s", md_text[m.end():], re.M)
    return md_text[m.end(): m.end() + end.start()] if end else md_text[m.end():]


def _report(offenders, what):
    check(not offenders, "%d %s:\n  %s" % (len(offenders), what, "\n  ".join(offenders[:60])))


# ---------------------------------------------------------------------------
# (a) No file outside docs/ cites the old contract.

def test_nothing_outside_docs_cites_the_old_contract():
    offenders = []
    files = 0
    for rel, text in _repo_files():
        files += 1
        if rel == "LICENSE":  # legal text: "an action of contract" is no citation
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if OLD_SPEC_NAME.search(line):
                offenders.append("%s:%d: %s" % (rel, n, line.strip()[:100]))
    check(files > 100, "only %d files scanned: is ROOT (%s) the repository?" % (files, ROOT))
    _report(offenders, "lines cite the old contract; cite the docs/ section instead")


# ---------------------------------------------------------------------------
# (b) Configuration keys.

def _string_list(body):
    return re.findall(r'"([A-Za-z0-9_]+)"', body)


def _brace_list(src, arg):
    """The key names of a Root/Child key-list argument: an inline {"a", ...}
    (whose items may be a macro #defined in the same file as a list of string
    literals) or the name of a constant defined in the same file."""
    arg = arg.strip()
    if arg.startswith("{"):
        inner = arg[1:arg.index("}")].strip()
        macro = re.fullmatch(r"[A-Z_][A-Z0-9_]*", inner)
        if macro:
            d = re.search(r"^#define\s+%s\b((?:.*\\\n)*.*)$" % re.escape(inner), src, re.M)
            return _string_list(d.group(1).replace("\\\n", " ")) if d else []
        return _string_list(inner)
    m = re.match(r"[A-Za-z_][A-Za-z0-9_:]*", arg)
    if not m:
        return []
    name = m.group(0).split("::")[-1]
    d = re.search(r"\b%s\s*(?:=\s*)?\{([^}]*)\}" % re.escape(name), src)
    return _string_list(d.group(1)) if d else []


def config_keys():
    """Every key path config.cc accepts: "listen", "session", "session.manager",
    "redis.sentinel.master_name" ... A Child() called on a Section variable
    named after a top-level key (`redis.Child("sentinel", ...)`) is nested
    under that key."""
    src = _read(os.path.join(ROOT, "src", "config", "config.cc"))
    keys = []
    for m in re.finditer(r"\bRoot\(\s*[^,]+,\s*", src):
        keys += _brace_list(src, src[m.end():])
    top = set(keys)
    for m in re.finditer(r'(\w+)\s*(?:\.|->)\s*Child\(\s*"([a-z_]+)"\s*,\s*', src):
        receiver, name = m.group(1), m.group(2)
        path = "%s.%s" % (receiver, name) if receiver in top else name
        keys.append(path)
        keys += ["%s.%s" % (path, k) for k in _brace_list(src, src[m.end():])]
    return sorted(set(keys))


KEY_HEADING = re.compile(r"^[a-z_]+(\.[a-z_]+){0,2}$")


def test_every_config_key_is_documented():
    keys = config_keys()
    # The extractor must understand config.cc; if its layout changes, this
    # fails here instead of passing with nothing to check.
    for expected in ("upstream", "secret_key", "session", "session.manager", "timeouts.idle", "log.level",
                     "redis.sentinel.master_name", "redis.cluster.seeds"):
        check(expected in keys, "key %r not extracted from src/config/config.cc (got %d keys: %s); "
              "update config_keys() in this test" % (expected, len(keys), ", ".join(keys)))
    doc = _doc("CONFIGURATION.md")
    check(doc is not None, "docs/CONFIGURATION.md is missing")
    headings = {_normalise(h) for h in _headings(doc)}
    missing = [k for k in keys if k not in headings]
    _report(missing, "keys accepted by src/config/config.cc have no heading in docs/CONFIGURATION.md")
    # Headings written as `key` or `section.key` must be keys that exist.
    stale = []
    for h in _headings(doc):
        if h.startswith("`") and h.endswith("`") and KEY_HEADING.match(h.strip("`")):
            if h.strip("`") not in keys:
                stale.append(h)
    _report(stale, "keys documented in docs/CONFIGURATION.md are not accepted by src/config/config.cc")


# ---------------------------------------------------------------------------
# (c) Metric names.

METRIC = re.compile(r"\b((?:sessiond|process)_[a-z0-9_]*[a-z0-9])\b")
STRING_LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def emitted_metrics():
    names = set()
    for sub in ("admin", "observe"):
        d = os.path.join(ROOT, "src", sub)
        for name in sorted(os.listdir(d)):
            if name.endswith(".cc"):
                for lit in STRING_LITERAL.findall(_read(os.path.join(d, name))):
                    if lit.endswith(".h"):  # an #include, not a metric
                        continue
                    names.update(METRIC.findall(lit))
    return sorted(names)


def test_every_metric_is_documented():
    emitted = emitted_metrics()
    for expected in ("sessiond_requests_total", "sessiond_store_duration_seconds", "sessiond_connections_active"):
        check(expected in emitted, "metric %r not found in src/admin or src/observe (got %s); "
              "update emitted_metrics() in this test" % (expected, ", ".join(emitted)))
    doc = _doc("OPERATIONS.md")
    check(doc is not None, "docs/OPERATIONS.md is missing")
    table = _section(doc, "Metrics")
    check(table is not None, "docs/OPERATIONS.md has no '## Metrics' section")
    documented = set(re.findall(r"^\|\s*`([a-z0-9_]+)`", table, re.M))
    _report([m for m in emitted if m not in documented],
            "metrics emitted by the admin listener are not in the table of docs/OPERATIONS.md, Metrics")
    _report(sorted(m for m in documented if m not in emitted),
            "metrics in the table of docs/OPERATIONS.md, Metrics are not emitted by src/admin or src/observe")


# ---------------------------------------------------------------------------
# (d) Citations and links.

def _cited_section(lines, i, end):
    """The text after "docs/<file>.md," on line i (from column `end`), joined with
    the next line so that a section name broken over two comment lines is
    read whole."""
    rest = lines[i][end:]
    nxt = COMMENT_LEAD.sub("", lines[i + 1], count=1) if i + 1 < len(lines) else ""
    return " ".join((rest + " " + nxt).split())


def _matches_heading(section, headings):
    """True when `section` is a heading of the file: exactly the quoted text,
    or a heading followed by the end or a non-word character."""
    text = section.replace("`", "")
    q = re.match(r'^"([^"]+)"', text)
    if q:
        return _normalise(q.group(1)) in headings
    low = text.lower()
    for h in headings:
        if low.startswith(h) and (len(low) == len(h) or not (low[len(h)].isalnum() or low[len(h)] == "_")):
            return True
    return False


def citations():
    """(where, file, section or None) for every docs citation outside docs/:
    "docs/<file>.md" alone, or followed by a comma and a section."""
    out = []
    for rel, text in _repo_files():
        lines = text.splitlines()
        for i, line in enumerate(lines):
            for m in CITATION.finditer(line):
                where = "%s:%d" % (rel, i + 1)
                after = line[m.end():]
                if after.startswith(","):
                    out.append((where, m.group(1), _cited_section(lines, i, m.end() + 1)))
                else:
                    out.append((where, m.group(1), None))
    return out


def test_docs_citations_name_existing_sections():
    found = citations()
    check(any(s for _, _, s in found), "no 'docs/<file>.md, Section' citation found at all: is the scan broken?")
    heading_cache = {}
    offenders = []
    for where, name, section in found:
        if name not in heading_cache:
            doc = _doc(name)
            heading_cache[name] = None if doc is None else {_normalise(h) for h in _headings(doc)}
        headings = heading_cache[name]
        if headings is None:
            offenders.append("%s: docs/%s does not exist" % (where, name))
        elif section is not None and not _matches_heading(section, headings):
            offenders.append("%s: docs/%s has no section %r" % (where, name, section[:60]))
    _report(offenders, "citations name a missing docs file or section")


def test_markdown_links_resolve():
    pages = [os.path.join(ROOT, "README.md")]
    pages += [os.path.join(DOCS, n) for n in sorted(os.listdir(DOCS)) if n.endswith(".md")]
    offenders = []
    links = 0
    for page in pages:
        text = _read(page)
        for target in MD_LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            links += 1
            path, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            where = "%s -> %s" % (os.path.relpath(page, ROOT), target)
            if not os.path.exists(dest):
                offenders.append("%s: no such file" % where)
            elif anchor and dest.endswith(".md") and anchor not in _anchors(_read(dest)):
                offenders.append("%s: no such heading" % where)
    check(links > 20, "only %d relative links found in README.md and docs/" % links)
    _report(offenders, "Markdown links point nowhere")
