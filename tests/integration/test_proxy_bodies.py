"""Proxy core: request and response bodies in every framing, streaming, memory."""

import os
import time

from client import build_request
from harness import SANITIZED, check, check_eq
from recording import pattern, pattern_sha256


def test_content_length_request_body_reaches_backend_intact(t):
    proxy = t.sessiond()
    body = pattern(1 << 20)
    resp = proxy.request("POST", "/echo", body=body, timeout=30)
    check_eq(resp.status, 200, "status")
    (req,) = proxy.backend.requests("/echo")
    check(req.complete, "backend request incomplete: %s" % req.error)
    check_eq(len(req.body), len(body), "body length at the backend")
    check(req.body == body, "body bytes at the backend differ from what the client sent")
    check_eq(req.header("Content-Length"), str(len(body)), "Content-Length at the backend")


def test_chunked_request_body_is_reframed_intact(t):
    proxy = t.sessiond()
    chunks = [b"a", pattern(100), pattern(65536, offset=7), b"xyz", pattern(200000, offset=3)]
    body = b"".join(chunks)
    conn = t.connect(proxy.port, timeout=30)
    conn.send(build_request("POST", "/echo", body=chunks, chunked=True))
    resp = conn.read_response("POST")
    check_eq(resp.status, 200, "status")
    (req,) = proxy.backend.requests("/echo")
    check(req.complete, "backend request incomplete: %s" % req.error)
    check(req.body == body, "body at the backend (%d bytes) differs from the %d bytes sent"
          % (len(req.body), len(body)))
    check(req.framing in ("chunked", "length"), "backend framing %r" % req.framing)
    if req.framing == "length":
        check_eq(req.header("Content-Length"), str(len(body)), "Content-Length of the re-framed body")
    check(conn.is_open(), "client connection closed after a chunked request")


def test_content_length_response_body_passes_intact(t):
    proxy = t.sessiond()
    n = 5 * 1000 * 1000 + 17
    resp = proxy.request("GET", "/bytes/%d" % n, keep_body=False, timeout=30)
    check_eq(resp.status, 200, "status")
    check_eq((resp.body_length, resp.body_sha256), (n, pattern_sha256(n)), "body length and sha256")


def test_chunked_response_body_passes_intact(t):
    proxy = t.sessiond()
    n, k = 200, 7919
    resp = proxy.request("GET", "/chunked/%d/%d" % (n, k), keep_body=False, timeout=30)
    check_eq(resp.status, 200, "status")
    check_eq((resp.body_length, resp.body_sha256), (n * k, pattern_sha256(n * k)), "body length and sha256")


def test_chunked_response_with_trailer_passes_intact(t):
    proxy = t.sessiond()
    conn = t.connect(proxy.port)
    resp = conn.request("GET", "/chunked/3/1000?trailer=1")
    check_eq((resp.status, resp.body_sha256), (200, pattern_sha256(3000)), "status and body sha256")
    resp = conn.request("GET", "/echo?after-trailer")
    check_eq(resp.json()["target"], "/echo?after-trailer", "request after a response with a trailer")


def test_close_delimited_response_passes_intact(t):
    proxy = t.sessiond()
    for target, n in (("/close-delimited/1000000", 1000000), ("/close-delimited/3000?bare=1", 3000)):
        resp = proxy.request("GET", target, keep_body=False, timeout=30)
        check_eq(resp.status, 200, "%s status" % target)
        check_eq((resp.body_length, resp.body_sha256), (n, pattern_sha256(n)), "%s body" % target)


def test_response_body_streams_before_upstream_finishes(t):
    proxy = t.sessiond()
    first = []
    t0 = time.monotonic()
    resp = proxy.request("GET", "/slow-body/6/1000/250",
                         on_progress=lambda n: first or first.append(time.monotonic() - t0))
    total = time.monotonic() - t0
    check_eq((resp.status, resp.body_sha256), (200, pattern_sha256(6000)), "status and body")
    check(total >= 1.2, "the slow body took %.2fs, the backend needs 1.25s" % total)
    check(first and first[0] < total - 0.6,
          "first body byte after %.2fs of %.2fs: the response was buffered, not streamed"
          % (first[0] if first else -1, total))


def test_large_response_to_slow_reader_keeps_memory_bounded(t):
    """256 MiB through sessiond to a client reading ~30 MB/s: the body must
    arrive intact and sessiond's peak RSS (VmHWM) stay under 64 MiB, which
    needs backpressure (stop reading upstream while the client is behind).

    Under sanitizers (SESSIOND_SANITIZE) the absolute RSS includes shadow
    memory and allocator overhead, so the growth of VmHWM over its value after
    start-up is bounded instead, and ASan's quarantine of freed memory (256 MiB
    by default, which would count every freed buffer as resident) is capped.
    """
    env = {}
    if SANITIZED:
        env["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16").lstrip(":")
    proxy = t.sessiond(env=env)
    check_eq(proxy.request("GET", "/echo").status, 200, "warm-up status")
    baseline = proxy.vm_kb("VmHWM")
    n = 256 << 20
    conn = t.connect(proxy.port, timeout=30)
    conn.send(build_request("GET", "/bytes/%d" % n))
    t0 = time.monotonic()
    resp = conn.read_response(timeout=75, keep_body=False, chunk_size=65536, reader_delay=0.002)
    elapsed = time.monotonic() - t0
    peak = proxy.vm_kb("VmHWM")
    check_eq(resp.status, 200, "status")
    check_eq(resp.body_length, n, "body length")
    check_eq(resp.body_sha256, pattern_sha256(n), "body sha256")
    check(elapsed < 60, "256 MiB took %.1fs (want < 60s)" % elapsed)
    limit = 64 * 1024
    if SANITIZED:
        check(peak - baseline < limit, "VmHWM grew by %d KiB (from %d to %d) while streaming 256 MiB; want < %d"
              % (peak - baseline, baseline, peak, limit))
    else:
        check(peak < limit, "VmHWM %d KiB while streaming 256 MiB; want < %d KiB" % (peak, limit))


test_large_response_to_slow_reader_keeps_memory_bounded.exclusive = True
test_large_response_to_slow_reader_keeps_memory_bounded.timeout = 180


def test_upstream_killed_and_restarted_is_used_again(t):
    backend = t.backend_process()
    proxy = t.sessiond(backend)
    check_eq(proxy.request("GET", "/echo").status, 200, "status before the upstream dies")
    backend.kill()
    resp = proxy.request("GET", "/echo")
    check_eq(resp.status, 502, "status while the upstream is down")
    backend.start()
    resp = proxy.request("GET", "/echo?again")
    check_eq(resp.status, 200, "status of the first request after the upstream restarted")
    check_eq(resp.json()["target"], "/echo?again", "target after restart")
