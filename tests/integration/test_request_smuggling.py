"""Proxy core: ambiguous or malformed requests are rejected, never forwarded.

Every case sends one request (and sometimes a request hidden behind it) in a
single write, then requires: a 400 with a short plain-text body, the client
connection closed after it, no second response, and NOTHING of the request
at the backend: no recorded request and not one byte containing "smuggled"
on any upstream connection (each test's requests carry that word). A
marker request afterwards proves sessiond still serves.
"""

from harness import check, check_eq, check_error_response

HIDDEN = b"GET /admin-smuggled HTTP/1.1\r\nHost: test.local\r\n\r\n"


def _check_rejected(t, raw):
    proxy = t.sessiond(overrides={"timeouts": {"client_header": "3s"}})
    conn = t.connect(proxy.port, timeout=5)
    conn.send(raw)
    check_error_response(conn.read_response(timeout=5), 400)
    check(conn.wait_closed(2.0), "connection still open 2s after the 400")
    check_eq(bytes(conn.buf), b"", "bytes after the 400 (a response to a request behind the rejected one?)")
    # Any forward of the rejected request would have happened by now; the
    # marker request proves sessiond still works and fences the recording.
    check_eq(proxy.request("GET", "/echo?marker").status, 200, "status of a good request afterwards")
    proxy.backend.wait_requests(2, timeout=0.3)
    reqs = proxy.backend.requests()
    check([r.target for r in reqs] == ["/echo?marker"],
          "requests at the backend: %r, want only the marker request" % reqs)
    for raw_conn in proxy.backend.raw_received():
        check(b"smuggled" not in raw_conn, "bytes of the rejected request reached the backend: %r" % raw_conn[:300])


def _post(headers, body):
    head = b"POST /echo?smuggled HTTP/1.1\r\nHost: test.local\r\n"
    return head + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


def _get_with(header_line):
    return b"GET /echo?smuggled HTTP/1.1\r\nHost: test.local\r\n" + header_line + b"\r\n\r\n"


# -- Content-Length and Transfer-Encoding together or malformed ---------------

def test_content_length_with_transfer_encoding_rejected(t):
    body = b"0\r\n\r\n" + HIDDEN
    _check_rejected(t, _post([b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked"], body))


def test_transfer_encoding_with_content_length_rejected(t):
    body = b"0\r\n\r\n" + HIDDEN
    _check_rejected(t, _post([b"Transfer-Encoding: chunked", b"Content-Length: %d" % len(body)], body))


def test_two_different_content_lengths_rejected(t):
    _check_rejected(t, _post([b"Content-Length: 5", b"Content-Length: 6"], b"hello!"))


def test_content_length_list_of_different_values_rejected(t):
    _check_rejected(t, _post([b"Content-Length: 5, 6"], b"hello!"))


def test_content_length_with_letters_rejected(t):
    _check_rejected(t, _post([b"Content-Length: 12a"], b"hello world!"))


def test_negative_content_length_rejected(t):
    _check_rejected(t, _post([b"Content-Length: -1"], b"hello"))


def test_content_length_with_plus_sign_rejected(t):
    _check_rejected(t, _post([b"Content-Length: +5"], b"hello"))


def test_content_length_with_inner_space_rejected(t):
    _check_rejected(t, _post([b"Content-Length:  5 5"], b"hello"))


def test_content_length_overflowing_64_bits_rejected(t):
    _check_rejected(t, _post([b"Content-Length: 184467440737095516160"], b"hello"))


def test_transfer_encoding_gzip_rejected(t):
    _check_rejected(t, _post([b"Transfer-Encoding: gzip"], b"5\r\nhello\r\n0\r\n\r\n"))


def test_transfer_encoding_chunked_identity_rejected(t):
    _check_rejected(t, _post([b"Transfer-Encoding: chunked, identity"], b"5\r\nhello\r\n0\r\n\r\n"))


def test_transfer_encoding_xchunked_rejected(t):
    _check_rejected(t, _post([b"Transfer-Encoding: xchunked"], b"5\r\nhello\r\n0\r\n\r\n"))


def test_transfer_encoding_with_space_before_colon_rejected(t):
    body = b"0\r\n\r\n" + HIDDEN
    _check_rejected(t, _post([b"Transfer-Encoding : chunked", b"Content-Length: %d" % len(body)], body))


# -- malformed chunked bodies -----------------------------------------------

def _chunked(body):
    return _post([b"Transfer-Encoding: chunked"], body)


def test_chunk_size_not_hex_rejected(t):
    _check_rejected(t, _chunked(b"zz\r\nhello\r\n0\r\n\r\n"))


def test_chunk_size_with_inner_space_rejected(t):
    _check_rejected(t, _chunked(b"5 6\r\nhello\r\n0\r\n\r\n"))


def test_chunk_data_without_crlf_rejected(t):
    _check_rejected(t, _chunked(b"5\r\nhelloXX0\r\n\r\n"))


def test_chunk_size_overflow_rejected(t):
    _check_rejected(t, _chunked(b"ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"))


# -- malformed header lines -------------------------------------------------

def test_nul_in_header_value_rejected(t):
    _check_rejected(t, _get_with(b"X-Test: a\x00b"))


def test_bare_cr_in_header_value_rejected(t):
    _check_rejected(t, _get_with(b"X-Test: a\rb"))


def test_bare_lf_in_header_value_rejected(t):
    _check_rejected(t, _get_with(b"X-Test: a\nb"))


def test_obs_fold_with_space_rejected(t):
    _check_rejected(t, _get_with(b"X-Test: a\r\n b"))


def test_obs_fold_with_tab_rejected(t):
    _check_rejected(t, _get_with(b"X-Test: a\r\n\tb"))


def test_space_before_colon_rejected(t):
    _check_rejected(t, _get_with(b"X-Test : a"))


def test_two_host_headers_rejected(t):
    _check_rejected(t, _get_with(b"Host: other.example"))


def test_http09_request_rejected(t):
    _check_rejected(t, b"GET /smuggled\r\n")


def test_pipelined_request_behind_rejected_one_not_forwarded(t):
    _check_rejected(t, _get_with(b"X-Test : a")
                    + b"GET /echo?smuggled-second HTTP/1.1\r\nHost: test.local\r\n\r\n")


def test_pipelined_request_behind_conflicting_lengths_not_forwarded(t):
    _check_rejected(t, _post([b"Content-Length: 3", b"Content-Length: 0"], b"")
                    + b"GET /echo?smuggled-second HTTP/1.1\r\nHost: test.local\r\n\r\n")
