"""A cookie is bound to its session_cookie_name and to the secret_key.

Single-byte changes, truncations and extensions of every manager's cookie
are covered by test_sessions_cookies.py (_tampered_cookie_is_invalid); this
file adds what it does not: a valid cookie presented under another cookie
name, or to a sessiond with another secret, is `invalid`, even when the
session itself is readable there (the same file store directory, or the
stateless cookie manager). A control sessiond with the same name and secret
accepts the same cookie, so each rejection is due to the name or the key.
"""

import os

from harness import check, check_eq
from session_util import Browser, make_session, start_proxy

OTHER_SECRET = "another-integration-secret-0d9e8f7a6b5c4d3e2f1a0b9c"


def _start(t, manager, name, secret=None, directory=None):
    extra = {"file": {"directory": directory}} if directory else {}
    if secret:
        extra["secret_key"] = secret
    proxy = start_proxy(t, manager, session={"session_cookie_name": name}, extra=extra)
    proxy.cookie_name = name
    return proxy


def _status_of(proxy, name, value):
    return Browser(proxy, cookie=value, name=name).echo()


def _cookie_bound_to_name_and_secret(t, manager):
    directory = os.path.join(t.tmpdir, "shared-sessions") if manager == "file" else None
    minting = _start(t, manager, "sid_a", directory=directory)
    owner = Browser(minting, name="sid_a")
    data = {"user": "ada"}
    make_session(owner, data)
    cookie = owner.cookie

    same = _start(t, manager, "sid_a", directory=directory)
    view = _status_of(same, "sid_a", cookie)
    check_eq((view.status, view.data), ("active", data), "control: same name and secret on another sessiond")

    renamed = _start(t, manager, "sid_b", directory=directory)
    view = _status_of(renamed, "sid_b", cookie)
    check_eq((view.status, view.id, view.data), ("invalid", None, {}), "the sid_a cookie sent as sid_b")

    rekeyed = _start(t, manager, "sid_a", secret=OTHER_SECRET, directory=directory)
    view = _status_of(rekeyed, "sid_a", cookie)
    check_eq((view.status, view.id, view.data), ("invalid", None, {}), "the cookie under another secret_key")

    # Under its own name on the renaming proxy it is just another cookie:
    # forwarded untouched, no session.
    resp = Browser(renamed, name="sid_b").request("/echo", other_cookies=[("sid_a", cookie)])
    headers = resp.json()["headers"]
    check(any(n.lower() == "cookie" and cookie in v for n, v in headers),
          "a cookie of another name was not forwarded as an ordinary cookie")
    check(("X-Session-Status", "none") in [tuple(h) for h in headers], "status for an unrelated cookie")


def test_cookie_bound_to_name_and_secret_cookie(t): _cookie_bound_to_name_and_secret(t, "cookie")
def test_cookie_bound_to_name_and_secret_file(t): _cookie_bound_to_name_and_secret(t, "file")

