"""The hostile-HTTP corpus (hostile_corpus.py), one test per case.

Each test starts its own sessiond and backend, sends the case's bytes on a
fresh connection and requires (see hostile_corpus.Case):
  - exactly the expected responses, in order; sessiond's own errors short
    plain text (check_error_response); 1xx interim responses where stated;
  - then a closed connection with nothing more on it, or an open one that
    still answers a marker request correctly (framing stayed in sync);
  - at the backend exactly the expected requests (method, target, body,
    completeness, Host, absent headers), nothing else; no byte of anything
    marked "smuggled" unless it is inside an expected body. The harness also
    fails the test when the backend's strict parser saw malformed HTTP.
A failure names the case and shows its raw bytes.

The stubs at the end are generated: `python3 hostile_corpus.py --stubs`.
"""

import ast
import os
import socket
import time

from client import ProtocolError
from harness import check, check_error_response
from hostile_corpus import CASES, REJECTED, MAX_BODY_BYTES, MAX_HEADER_BYTES, by_name

CONFIG = {
    "limits": {"max_header_bytes": MAX_HEADER_BYTES, "max_body_bytes": MAX_BODY_BYTES},
    "timeouts": {"client_header": "3s", "idle": "3s", "upstream_response": "5s", "shutdown": "2s"},
}
# Statuses only sessiond produces in this corpus (the backend answers 200/404).
LOCAL_ERRORS = (400, 405, 408, 413, 431, 505)
MARKER = "/echo?marker"


class CaseFailure(AssertionError):
    pass


def run_case(t, name):
    case = by_name(name)
    proxy = t.sessiond(overrides=CONFIG)
    try:
        refused = _converse(t, proxy, case)
        _check_upstream(proxy, case, [] if refused else case.upstream)
    except (AssertionError, ProtocolError, OSError) as e:
        raise CaseFailure("case %s (%s): %s: %s\n  raw bytes: %r%s" % (
            case.name, case.category, type(e).__name__, e, case.raw[:600],
            "\n  note: " + case.note if case.note else ""))


def _converse(t, proxy, case):
    """Runs the conversation; True when an or_reject case was refused."""
    conn = t.connect(proxy.port, timeout=5)
    for i, part in enumerate(case.parts):
        if i:
            time.sleep(case.gap)
        # A rejection may close the connection while the rest is still being
        # sent; what sessiond answered is checked below either way.
        if not conn.try_send(part):
            break
    if case.half_close:
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    for i, want in enumerate(case.expect):
        method = case.methods[i]
        if want == REJECTED:
            if conn.wait_data(3.0):
                check_error_response(conn.read_response(method, timeout=5), 400)
            break
        resp = conn.read_response(method, timeout=5)
        if i == 0 and case.or_reject and resp.status == 400:
            check_error_response(resp, 400)
            check(conn.wait_closed(3.0), "connection still open 3s after a 400")
            check(not conn.buf, "bytes after the 400: %r" % bytes(conn.buf[:300]))
            return True
        allowed = want if isinstance(want, tuple) else (want,)
        check(resp.status in allowed, "response %d: status %d, want %s (body %r)" % (
            i + 1, resp.status, " or ".join(map(str, allowed)), (resp.body or b"")[:200]))
        if resp.status in LOCAL_ERRORS:
            check_error_response(resp, resp.status)
        if b" HTTP/1.0\r\n" in case.raw:
            check(resp.framing != "chunked", "a chunked response to an HTTP/1.0 request")
        if i == 0 and case.interim is not None:
            got = [r.status for r in resp.interim]
            check(got == case.interim, "interim responses %r, want %r" % (got, case.interim))

    if case.then == "closed":
        check(conn.wait_closed(3.0), "connection still open 3s after the expected responses")
        check(not conn.buf, "bytes after the expected responses: %r" % bytes(conn.buf[:300]))
    else:
        marker = conn.request("GET", MARKER + "-same", timeout=5)
        check(marker.status == 200 and marker.json()["target"] == MARKER + "-same",
              "the connection is out of sync: a marker request got %r %r" % (marker, (marker.body or b"")[:200]))
    return False


def _check_upstream(proxy, case, expected):
    # A fresh request fences the recording: anything of the case that was
    # going to reach the backend has done so by the time this is answered.
    fence = proxy.request("GET", MARKER, timeout=5)
    check(fence.status == 200, "a marker request after the case got %d" % fence.status)
    time.sleep(0.1)  # incomplete requests are recorded when their connection closes
    got = [r for r in proxy.backend.requests() if not r.target.startswith(MARKER)]
    pos = 0
    for want in expected:
        r = got[pos] if pos < len(got) else None
        if r is not None and _matches(r, want):
            _check_forwarded(r, want)
            pos += 1
        elif want.complete:
            raise AssertionError("backend requests %r, want %r (mismatch at %r)" % (got, expected, want))
    check(pos == len(got), "the backend received unexpected requests %r (expected only %r)" % (got[pos:], expected))
    if not any(b"smuggled" in u.body for u in expected):
        for raw in proxy.backend.raw_received():
            check(b"smuggled" not in raw, "bytes of a smuggled request reached the backend: %r" % raw[:400])


def _matches(r, want):
    if r.method != want.method or r.target != want.target:
        return False
    if want.complete:
        return r.complete and r.body == want.body
    return not r.complete and want.body.startswith(r.body)


def _check_forwarded(r, want):
    check(r.version == "HTTP/1.1", "forwarded as %s" % r.version)
    hosts = r.header_values("Host")
    check(len(hosts) == 1, "the backend got %d Host headers: %r" % (len(hosts), hosts))
    if want.host is not None:
        check(hosts[0] == want.host, "Host at the backend %r, want %r" % (hosts[0], want.host))
    names = [n.lower() for n in r.header_names()]
    for name in want.absent:
        check(name not in names, "header %s reached the backend: %r" % (name, r.headers))


def test_corpus_has_one_test_per_case():
    """The stubs below are in sync with the corpus, which has 150+ distinct cases."""
    with open(os.path.abspath(__file__)) as f:
        tree = ast.parse(f.read())
    stubs = {n.name[5:] for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}
    stubs.discard("corpus_has_one_test_per_case")
    names = {c.name for c in CASES}
    check(stubs == names, "stubs without a case: %s; cases without a stub: %s (regenerate with "
          "`python3 hostile_corpus.py --stubs`)" % (sorted(stubs - names), sorted(names - stubs)))
    raws = {(tuple(c.parts), c.half_close) for c in CASES}
    check(len(raws) == len(CASES), "two cases send identical bytes")
    check(len(CASES) >= 150, "only %d corpus cases" % len(CASES))


# ---------------------------------------------------------------------------
# Generated: one test per corpus case.

def test_cl_te(t): run_case(t, 'cl_te')
def test_te_cl(t): run_case(t, 'te_cl')
def test_cl_te_zero_length(t): run_case(t, 'cl_te_zero_length')
def test_te_cl_short_length(t): run_case(t, 'te_cl_short_length')
def test_cl_te_lowercase_names(t): run_case(t, 'cl_te_lowercase_names')
def test_cl_te_uppercase_names(t): run_case(t, 'cl_te_uppercase_names')
def test_cl_te_separated_by_headers(t): run_case(t, 'cl_te_separated_by_headers')
def test_cl_te_http10(t): run_case(t, 'cl_te_http10')
def test_cl_te_on_get(t): run_case(t, 'cl_te_on_get')
def test_te_http10_chunked(t): run_case(t, 'te_http10_chunked')
def test_cl_with_te_chunked(t): run_case(t, 'cl_with_te_chunked')
def test_cl_with_te_upper(t): run_case(t, 'cl_with_te_upper')
def test_cl_with_te_xchunked(t): run_case(t, 'cl_with_te_xchunked')
def test_cl_with_te_chunked_identity(t): run_case(t, 'cl_with_te_chunked_identity')
def test_cl_with_te_trailing_tab(t): run_case(t, 'cl_with_te_trailing_tab')
def test_cl_with_te_extra_leading_space(t): run_case(t, 'cl_with_te_extra_leading_space')
def test_cl_with_te_chunk(t): run_case(t, 'cl_with_te_chunk')
def test_cl_with_te_identity(t): run_case(t, 'cl_with_te_identity')
def test_cl_with_te_gzip(t): run_case(t, 'cl_with_te_gzip')
def test_cl_with_te_gzip_chunked(t): run_case(t, 'cl_with_te_gzip_chunked')
def test_cl_with_te_empty(t): run_case(t, 'cl_with_te_empty')
def test_te_valid_plain(t): run_case(t, 'te_valid_plain')
def test_te_valid_upper(t): run_case(t, 'te_valid_upper')
def test_te_valid_capitalised(t): run_case(t, 'te_valid_capitalised')
def test_te_valid_mixed_case(t): run_case(t, 'te_valid_mixed_case')
def test_te_ows_trailing_tab(t): run_case(t, 'te_ows_trailing_tab')
def test_te_ows_trailing_space(t): run_case(t, 'te_ows_trailing_space')
def test_te_ows_leading_tab(t): run_case(t, 'te_ows_leading_tab')
def test_te_ows_extra_leading_space(t): run_case(t, 'te_ows_extra_leading_space')
def test_te_ows_ows_both_sides(t): run_case(t, 'te_ows_ows_both_sides')
def test_te_invalid_xchunked(t): run_case(t, 'te_invalid_xchunked')
def test_te_invalid_chunkedx(t): run_case(t, 'te_invalid_chunkedx')
def test_te_invalid_chunked_identity(t): run_case(t, 'te_invalid_chunked_identity')
def test_te_invalid_identity_chunked(t): run_case(t, 'te_invalid_identity_chunked')
def test_te_invalid_chunked_twice_in_list(t): run_case(t, 'te_invalid_chunked_twice_in_list')
def test_te_invalid_chunked_twice_in_list_spaced(t): run_case(t, 'te_invalid_chunked_twice_in_list_spaced')
def test_te_invalid_gzip_chunked(t): run_case(t, 'te_invalid_gzip_chunked')
def test_te_invalid_chunk(t): run_case(t, 'te_invalid_chunk')
def test_te_invalid_identity(t): run_case(t, 'te_invalid_identity')
def test_te_invalid_gzip(t): run_case(t, 'te_invalid_gzip')
def test_te_invalid_deflate(t): run_case(t, 'te_invalid_deflate')
def test_te_invalid_empty(t): run_case(t, 'te_invalid_empty')
def test_te_invalid_parameter(t): run_case(t, 'te_invalid_parameter')
def test_te_invalid_quoted(t): run_case(t, 'te_invalid_quoted')
def test_te_invalid_inner_space(t): run_case(t, 'te_invalid_inner_space')
def test_te_invalid_vertical_tab(t): run_case(t, 'te_invalid_vertical_tab')
def test_te_invalid_form_feed(t): run_case(t, 'te_invalid_form_feed')
def test_te_invalid_nul(t): run_case(t, 'te_invalid_nul')
def test_te_invalid_obs_text_prefix(t): run_case(t, 'te_invalid_obs_text_prefix')
def test_te_invalid_kelvin_sign_k(t): run_case(t, 'te_invalid_kelvin_sign_k')
def test_te_invalid_trailing_comma(t): run_case(t, 'te_invalid_trailing_comma')
def test_te_invalid_leading_comma(t): run_case(t, 'te_invalid_leading_comma')
def test_te_duplicated_chunked(t): run_case(t, 'te_duplicated_chunked')
def test_te_duplicated_chunked_identity(t): run_case(t, 'te_duplicated_chunked_identity')
def test_te_duplicated_identity_chunked(t): run_case(t, 'te_duplicated_identity_chunked')
def test_te_duplicated_different_case(t): run_case(t, 'te_duplicated_different_case')
def test_te_line_folded_value(t): run_case(t, 'te_line_folded_value')
def test_te_line_folded_continuation(t): run_case(t, 'te_line_folded_continuation')
def test_te_folded_with_tab(t): run_case(t, 'te_folded_with_tab')
def test_te_space_before_colon(t): run_case(t, 'te_space_before_colon')
def test_te_tab_before_colon(t): run_case(t, 'te_tab_before_colon')
def test_te_name_with_leading_space(t): run_case(t, 'te_name_with_leading_space')
def test_te_name_with_underscore(t): run_case(t, 'te_name_with_underscore')
def test_cl_plain(t): run_case(t, 'cl_plain')
def test_cl_leading_zeros(t): run_case(t, 'cl_leading_zeros')
def test_cl_no_space(t): run_case(t, 'cl_no_space')
def test_cl_ows_both_sides(t): run_case(t, 'cl_ows_both_sides')
def test_cl_zero_on_get(t): run_case(t, 'cl_zero_on_get')
def test_cl_body_on_get(t): run_case(t, 'cl_body_on_get')
def test_cl_exactly_max_body(t): run_case(t, 'cl_exactly_max_body')
def test_cl_body_holds_a_request(t): run_case(t, 'cl_body_holds_a_request')
def test_cl_body_with_nul_bytes(t): run_case(t, 'cl_body_with_nul_bytes')
def test_cl_body_with_crlfs(t): run_case(t, 'cl_body_with_crlfs')
def test_cl_invalid_plus_sign(t): run_case(t, 'cl_invalid_plus_sign')
def test_cl_invalid_minus_sign(t): run_case(t, 'cl_invalid_minus_sign')
def test_cl_invalid_minus_zero(t): run_case(t, 'cl_invalid_minus_zero')
def test_cl_invalid_inner_space(t): run_case(t, 'cl_invalid_inner_space')
def test_cl_invalid_list_equal(t): run_case(t, 'cl_invalid_list_equal')
def test_cl_invalid_list_equal_spaced(t): run_case(t, 'cl_invalid_list_equal_spaced')
def test_cl_invalid_list_different(t): run_case(t, 'cl_invalid_list_different')
def test_cl_invalid_hex(t): run_case(t, 'cl_invalid_hex')
def test_cl_invalid_decimal_point(t): run_case(t, 'cl_invalid_decimal_point')
def test_cl_invalid_exponent(t): run_case(t, 'cl_invalid_exponent')
def test_cl_invalid_empty(t): run_case(t, 'cl_invalid_empty')
def test_cl_invalid_letters(t): run_case(t, 'cl_invalid_letters')
def test_cl_invalid_trailing_letter(t): run_case(t, 'cl_invalid_trailing_letter')
def test_cl_invalid_underscore(t): run_case(t, 'cl_invalid_underscore')
def test_cl_invalid_fullwidth_digit(t): run_case(t, 'cl_invalid_fullwidth_digit')
def test_cl_invalid_vertical_tab(t): run_case(t, 'cl_invalid_vertical_tab')
def test_cl_invalid_nul(t): run_case(t, 'cl_invalid_nul')
def test_cl_invalid_quoted(t): run_case(t, 'cl_invalid_quoted')
def test_cl_invalid_nineteen_digits(t): run_case(t, 'cl_invalid_nineteen_digits')
def test_cl_invalid_nineteen_digits_leading_zeros(t): run_case(t, 'cl_invalid_nineteen_digits_leading_zeros')
def test_cl_invalid_two_to_the_64(t): run_case(t, 'cl_invalid_two_to_the_64')
def test_cl_invalid_wraps_to_5_in_64_bits(t): run_case(t, 'cl_invalid_wraps_to_5_in_64_bits')
def test_cl_invalid_thirty_two_digits(t): run_case(t, 'cl_invalid_thirty_two_digits')
def test_cl_duplicate_equal(t): run_case(t, 'cl_duplicate_equal')
def test_cl_duplicate_different(t): run_case(t, 'cl_duplicate_different')
def test_cl_duplicate_different_case(t): run_case(t, 'cl_duplicate_different_case')
def test_cl_duplicate_zero_then_length(t): run_case(t, 'cl_duplicate_zero_then_length')
def test_cl_space_before_colon(t): run_case(t, 'cl_space_before_colon')
def test_cl_line_folded(t): run_case(t, 'cl_line_folded')
def test_cl_over_max_body(t): run_case(t, 'cl_over_max_body')
def test_cl_huge_eleven_digits(t): run_case(t, 'cl_huge_eleven_digits')
def test_cl_huge_eighteen_digits(t): run_case(t, 'cl_huge_eighteen_digits')
def test_cl_longer_than_data_then_eof(t): run_case(t, 'cl_longer_than_data_then_eof')
def test_cl_shorter_than_data(t): run_case(t, 'cl_shorter_than_data')
def test_cl_name_with_underscore(t): run_case(t, 'cl_name_with_underscore')
def test_chunked_valid_simple(t): run_case(t, 'chunked_valid_simple')
def test_chunked_valid_several_chunks(t): run_case(t, 'chunked_valid_several_chunks')
def test_chunked_valid_uppercase_hex(t): run_case(t, 'chunked_valid_uppercase_hex')
def test_chunked_valid_lowercase_hex(t): run_case(t, 'chunked_valid_lowercase_hex')
def test_chunked_valid_leading_zeros(t): run_case(t, 'chunked_valid_leading_zeros')
def test_chunked_valid_fifteen_digit_size(t): run_case(t, 'chunked_valid_fifteen_digit_size')
def test_chunked_valid_extension(t): run_case(t, 'chunked_valid_extension')
def test_chunked_valid_extension_quoted(t): run_case(t, 'chunked_valid_extension_quoted')
def test_chunked_valid_extension_without_value(t): run_case(t, 'chunked_valid_extension_without_value')
def test_chunked_valid_extension_with_bws(t): run_case(t, 'chunked_valid_extension_with_bws')
def test_chunked_valid_extension_several(t): run_case(t, 'chunked_valid_extension_several')
def test_chunked_valid_extension_on_last_chunk(t): run_case(t, 'chunked_valid_extension_on_last_chunk')
def test_chunked_valid_extension_4000_bytes(t): run_case(t, 'chunked_valid_extension_4000_bytes')
def test_chunked_valid_empty_body(t): run_case(t, 'chunked_valid_empty_body')
def test_chunked_valid_one_byte_chunks(t): run_case(t, 'chunked_valid_one_byte_chunks')
def test_chunked_valid_data_holds_crlf_and_request(t): run_case(t, 'chunked_valid_data_holds_crlf_and_request')
def test_chunked_valid_trailer(t): run_case(t, 'chunked_valid_trailer')
def test_chunked_valid_trailers_several(t): run_case(t, 'chunked_valid_trailers_several')
def test_chunked_valid_trailer_content_length(t): run_case(t, 'chunked_valid_trailer_content_length')
def test_chunked_valid_trailer_transfer_encoding(t): run_case(t, 'chunked_valid_trailer_transfer_encoding')
def test_chunked_valid_trailer_session_data(t): run_case(t, 'chunked_valid_trailer_session_data')
def test_chunked_valid_trailer_empty_value(t): run_case(t, 'chunked_valid_trailer_empty_value')
def test_chunked_valid_exactly_max_body(t): run_case(t, 'chunked_valid_exactly_max_body')
def test_chunked_invalid_size_not_hex(t): run_case(t, 'chunked_invalid_size_not_hex')
def test_chunked_invalid_size_negative(t): run_case(t, 'chunked_invalid_size_negative')
def test_chunked_invalid_size_plus_sign(t): run_case(t, 'chunked_invalid_size_plus_sign')
def test_chunked_invalid_size_0x_prefix(t): run_case(t, 'chunked_invalid_size_0x_prefix')
def test_chunked_invalid_size_inner_space(t): run_case(t, 'chunked_invalid_size_inner_space')
def test_chunked_invalid_size_leading_space(t): run_case(t, 'chunked_invalid_size_leading_space')
def test_chunked_invalid_size_trailing_space(t): run_case(t, 'chunked_invalid_size_trailing_space')
def test_chunked_invalid_size_empty(t): run_case(t, 'chunked_invalid_size_empty')
def test_chunked_invalid_size_sixteen_digits(t): run_case(t, 'chunked_invalid_size_sixteen_digits')
def test_chunked_invalid_size_overflows_64_bits(t): run_case(t, 'chunked_invalid_size_overflows_64_bits')
def test_chunked_invalid_size_twenty_fs(t): run_case(t, 'chunked_invalid_size_twenty_fs')
def test_chunked_invalid_size_line_bare_lf(t): run_case(t, 'chunked_invalid_size_line_bare_lf')
def test_chunked_invalid_size_line_bare_cr(t): run_case(t, 'chunked_invalid_size_line_bare_cr')
def test_chunked_invalid_size_line_nul(t): run_case(t, 'chunked_invalid_size_line_nul')
def test_chunked_invalid_data_longer_than_size(t): run_case(t, 'chunked_invalid_data_longer_than_size')
def test_chunked_invalid_data_without_crlf(t): run_case(t, 'chunked_invalid_data_without_crlf')
def test_chunked_invalid_data_followed_by_bare_lf(t): run_case(t, 'chunked_invalid_data_followed_by_bare_lf')
def test_chunked_invalid_data_followed_by_bare_cr(t): run_case(t, 'chunked_invalid_data_followed_by_bare_cr')
def test_chunked_invalid_last_chunk_bare_lf(t): run_case(t, 'chunked_invalid_last_chunk_bare_lf')
def test_chunked_invalid_final_crlf_bare_lf(t): run_case(t, 'chunked_invalid_final_crlf_bare_lf')
def test_chunked_invalid_extension_bare_lf(t): run_case(t, 'chunked_invalid_extension_bare_lf')
def test_chunked_invalid_extension_bare_cr(t): run_case(t, 'chunked_invalid_extension_bare_cr')
def test_chunked_invalid_extension_nul(t): run_case(t, 'chunked_invalid_extension_nul')
def test_chunked_invalid_extension_over_4096_bytes(t): run_case(t, 'chunked_invalid_extension_over_4096_bytes')
def test_chunked_invalid_trailer_obs_fold(t): run_case(t, 'chunked_invalid_trailer_obs_fold')
def test_chunked_invalid_trailer_bare_lf(t): run_case(t, 'chunked_invalid_trailer_bare_lf')
def test_chunked_invalid_trailer_bare_cr(t): run_case(t, 'chunked_invalid_trailer_bare_cr')
def test_chunked_invalid_trailer_nul(t): run_case(t, 'chunked_invalid_trailer_nul')
def test_chunked_invalid_trailer_without_colon(t): run_case(t, 'chunked_invalid_trailer_without_colon')
def test_chunked_invalid_trailer_space_before_colon(t): run_case(t, 'chunked_invalid_trailer_space_before_colon')
def test_chunked_invalid_trailer_over_max_header_bytes(t): run_case(t, 'chunked_invalid_trailer_over_max_header_bytes')
def test_chunked_over_max_body(t): run_case(t, 'chunked_over_max_body')
def test_chunked_size_announces_over_max_body(t): run_case(t, 'chunked_size_announces_over_max_body')
def test_chunked_size_longer_than_data_then_eof(t): run_case(t, 'chunked_size_longer_than_data_then_eof')
def test_chunked_missing_last_chunk_then_eof(t): run_case(t, 'chunked_missing_last_chunk_then_eof')
def test_chunked_missing_final_crlf_then_eof(t): run_case(t, 'chunked_missing_final_crlf_then_eof')
def test_bare_request_line_ends_with_bare_lf(t): run_case(t, 'bare_request_line_ends_with_bare_lf')
def test_bare_request_line_ends_with_bare_cr(t): run_case(t, 'bare_request_line_ends_with_bare_cr')
def test_bare_request_line_cr_before_version(t): run_case(t, 'bare_request_line_cr_before_version')
def test_bare_request_line_lf_before_version(t): run_case(t, 'bare_request_line_lf_before_version')
def test_bare_request_line_cr_in_target(t): run_case(t, 'bare_request_line_cr_in_target')
def test_bare_request_line_lf_in_target(t): run_case(t, 'bare_request_line_lf_in_target')
def test_bare_request_line_cr_cr_lf(t): run_case(t, 'bare_request_line_cr_cr_lf')
def test_bare_header_line_ends_with_bare_lf(t): run_case(t, 'bare_header_line_ends_with_bare_lf')
def test_bare_header_line_ends_with_bare_cr(t): run_case(t, 'bare_header_line_ends_with_bare_cr')
def test_bare_header_value_bare_cr(t): run_case(t, 'bare_header_value_bare_cr')
def test_bare_header_value_bare_lf(t): run_case(t, 'bare_header_value_bare_lf')
def test_bare_header_value_cr_before_crlf(t): run_case(t, 'bare_header_value_cr_before_crlf')
def test_bare_header_name_bare_lf(t): run_case(t, 'bare_header_name_bare_lf')
def test_bare_header_name_bare_cr(t): run_case(t, 'bare_header_name_bare_cr')
def test_bare_lf_injects_a_header(t): run_case(t, 'bare_lf_injects_a_header')
def test_bare_cr_injects_a_header(t): run_case(t, 'bare_cr_injects_a_header')
def test_bare_leading_bare_lf(t): run_case(t, 'bare_leading_bare_lf')
def test_bare_too_many_leading_empty_lines(t): run_case(t, 'bare_too_many_leading_empty_lines')
def test_bare_head_ends_with_lf_lf(t): run_case(t, 'bare_head_ends_with_lf_lf')
def test_bare_head_ends_with_crlf_lf(t): run_case(t, 'bare_head_ends_with_crlf_lf')
def test_bare_head_ends_with_lf_crlf(t): run_case(t, 'bare_head_ends_with_lf_crlf')
def test_two_leading_empty_lines_are_skipped(t): run_case(t, 'two_leading_empty_lines_are_skipped')
def test_nul_in_method(t): run_case(t, 'nul_in_method')
def test_nul_in_target(t): run_case(t, 'nul_in_target')
def test_nul_in_version(t): run_case(t, 'nul_in_version')
def test_nul_in_header_name(t): run_case(t, 'nul_in_header_name')
def test_nul_in_header_value(t): run_case(t, 'nul_in_header_value')
def test_nul_in_host(t): run_case(t, 'nul_in_host')
def test_nul_before_request_line(t): run_case(t, 'nul_before_request_line')
def test_header_obs_fold_space(t): run_case(t, 'header_obs_fold_space')
def test_header_obs_fold_tab(t): run_case(t, 'header_obs_fold_tab')
def test_header_obs_fold_of_host(t): run_case(t, 'header_obs_fold_of_host')
def test_header_obs_fold_empty_first_line(t): run_case(t, 'header_obs_fold_empty_first_line')
def test_header_space_before_colon(t): run_case(t, 'header_space_before_colon')
def test_header_tab_before_colon(t): run_case(t, 'header_tab_before_colon')
def test_header_empty_name(t): run_case(t, 'header_empty_name')
def test_header_no_colon(t): run_case(t, 'header_no_colon')
def test_header_name_with_space(t): run_case(t, 'header_name_with_space')
def test_header_name_with_parenthesis(t): run_case(t, 'header_name_with_parenthesis')
def test_header_name_with_slash(t): run_case(t, 'header_name_with_slash')
def test_header_name_with_utf8(t): run_case(t, 'header_name_with_utf8')
def test_header_value_with_del(t): run_case(t, 'header_value_with_del')
def test_header_value_with_escape(t): run_case(t, 'header_value_with_escape')
def test_header_host_space_before_colon(t): run_case(t, 'header_host_space_before_colon')
def test_header_value_obs_text_passes(t): run_case(t, 'header_value_obs_text_passes')
def test_header_empty_value_passes(t): run_case(t, 'header_empty_value_passes')
def test_header_duplicated_ordinary_field_passes(t): run_case(t, 'header_duplicated_ordinary_field_passes')
def test_header_tabs_around_host_value(t): run_case(t, 'header_tabs_around_host_value')
def test_header_tab_inside_value_passes(t): run_case(t, 'header_tab_inside_value_passes')
def test_header_many_small_fields_under_limit(t): run_case(t, 'header_many_small_fields_under_limit')
def test_long_head_exactly_max(t): run_case(t, 'long_head_exactly_max')
def test_long_head_one_over_max(t): run_case(t, 'long_head_one_over_max')
def test_long_request_line(t): run_case(t, 'long_request_line')
def test_long_method(t): run_case(t, 'long_method')
def test_long_header_value(t): run_case(t, 'long_header_value')
def test_long_header_name(t): run_case(t, 'long_header_name')
def test_long_many_headers(t): run_case(t, 'long_many_headers')
def test_long_head_never_ends(t): run_case(t, 'long_head_never_ends')
def test_long_request_line_never_ends(t): run_case(t, 'long_request_line_never_ends')
def test_method_get_passes(t): run_case(t, 'method_get_passes')
def test_method_post_passes(t): run_case(t, 'method_post_passes')
def test_method_put_passes(t): run_case(t, 'method_put_passes')
def test_method_delete_passes(t): run_case(t, 'method_delete_passes')
def test_method_patch_passes(t): run_case(t, 'method_patch_passes')
def test_method_options_passes(t): run_case(t, 'method_options_passes')
def test_method_head_passes(t): run_case(t, 'method_head_passes')
def test_method_invalid_lowercase(t): run_case(t, 'method_invalid_lowercase')
def test_method_invalid_capitalised(t): run_case(t, 'method_invalid_capitalised')
def test_method_invalid_unknown(t): run_case(t, 'method_invalid_unknown')
def test_method_invalid_inner_space(t): run_case(t, 'method_invalid_inner_space')
def test_method_invalid_non_token(t): run_case(t, 'method_invalid_non_token')
def test_method_invalid_tab_separator(t): run_case(t, 'method_invalid_tab_separator')
def test_method_invalid_empty(t): run_case(t, 'method_invalid_empty')
def test_method_invalid_utf8(t): run_case(t, 'method_invalid_utf8')
def test_method_connect_rejected(t): run_case(t, 'method_connect_rejected')
def test_version_1_2(t): run_case(t, 'version_1_2')
def test_version_1_9(t): run_case(t, 'version_1_9')
def test_version_2_0(t): run_case(t, 'version_2_0')
def test_version_3_0(t): run_case(t, 'version_3_0')
def test_version_9_9(t): run_case(t, 'version_9_9')
def test_version_0_9_explicit(t): run_case(t, 'version_0_9_explicit')
def test_version_1_10(t): run_case(t, 'version_1_10')
def test_version_01_1(t): run_case(t, 'version_01_1')
def test_version_lowercase(t): run_case(t, 'version_lowercase')
def test_version_no_minor(t): run_case(t, 'version_no_minor')
def test_version_trailing_garbage(t): run_case(t, 'version_trailing_garbage')
def test_version_space(t): run_case(t, 'version_space')
def test_version_trailing_space(t): run_case(t, 'version_trailing_space')
def test_version_backslash(t): run_case(t, 'version_backslash')
def test_version_https(t): run_case(t, 'version_https')
def test_version_arabic_digit(t): run_case(t, 'version_arabic_digit')
def test_version_missing_http09(t): run_case(t, 'version_missing_http09')
def test_version_missing_http09_alone(t): run_case(t, 'version_missing_http09_alone')
def test_request_line_double_space(t): run_case(t, 'request_line_double_space')
def test_request_line_space_before_version(t): run_case(t, 'request_line_space_before_version')
def test_request_line_tabs(t): run_case(t, 'request_line_tabs')
def test_request_line_leading_space(t): run_case(t, 'request_line_leading_space')
def test_request_line_space_in_target(t): run_case(t, 'request_line_space_in_target')
def test_http2_preface(t): run_case(t, 'http2_preface')
def test_absolute_form_plain(t): run_case(t, 'absolute_form_plain')
def test_absolute_form_with_port(t): run_case(t, 'absolute_form_with_port')
def test_absolute_form_https(t): run_case(t, 'absolute_form_https')
def test_absolute_form_uppercase_scheme(t): run_case(t, 'absolute_form_uppercase_scheme')
def test_absolute_form_ipv6(t): run_case(t, 'absolute_form_ipv6')
def test_absolute_form_without_host_header(t): run_case(t, 'absolute_form_without_host_header')
def test_absolute_form_http10(t): run_case(t, 'absolute_form_http10')
def test_absolute_form_no_path(t): run_case(t, 'absolute_form_no_path')
def test_absolute_form_query_without_path(t): run_case(t, 'absolute_form_query_without_path')
def test_absolute_form_userinfo(t): run_case(t, 'absolute_form_userinfo')
def test_absolute_form_ftp_scheme(t): run_case(t, 'absolute_form_ftp_scheme')
def test_absolute_form_empty_host(t): run_case(t, 'absolute_form_empty_host')
def test_asterisk_form_options(t): run_case(t, 'asterisk_form_options')
def test_asterisk_form_get_rejected(t): run_case(t, 'asterisk_form_get_rejected')
def test_asterisk_form_head_rejected(t): run_case(t, 'asterisk_form_head_rejected')
def test_asterisk_form_post_rejected(t): run_case(t, 'asterisk_form_post_rejected')
def test_asterisk_form_delete_rejected(t): run_case(t, 'asterisk_form_delete_rejected')
def test_head_cl_over_max_body(t): run_case(t, 'head_cl_over_max_body')
def test_head_cl_and_te(t): run_case(t, 'head_cl_and_te')
def test_asterisk_with_query_rejected(t): run_case(t, 'asterisk_with_query_rejected')
def test_authority_form_get_rejected(t): run_case(t, 'authority_form_get_rejected')
def test_relative_target_rejected(t): run_case(t, 'relative_target_rejected')
def test_target_obs_text_passes(t): run_case(t, 'target_obs_text_passes')
def test_target_del_rejected(t): run_case(t, 'target_del_rejected')
def test_host_missing_http11(t): run_case(t, 'host_missing_http11')
def test_host_missing_http10(t): run_case(t, 'host_missing_http10')
def test_host_duplicated(t): run_case(t, 'host_duplicated')
def test_host_duplicated_same_value(t): run_case(t, 'host_duplicated_same_value')
def test_host_empty_value(t): run_case(t, 'host_empty_value')
def test_host_with_space(t): run_case(t, 'host_with_space')
def test_host_list(t): run_case(t, 'host_list')
def test_host_with_path(t): run_case(t, 'host_with_path')
def test_http10_default_closes(t): run_case(t, 'http10_default_closes')
def test_http10_keepalive_stays_open(t): run_case(t, 'http10_keepalive_stays_open')
def test_http10_keepalive_mixed_case(t): run_case(t, 'http10_keepalive_mixed_case')
def test_http10_keepalive_and_close(t): run_case(t, 'http10_keepalive_and_close')
def test_http10_keepalive_then_plain_request(t): run_case(t, 'http10_keepalive_then_plain_request')
def test_http10_keepalive_post_with_length(t): run_case(t, 'http10_keepalive_post_with_length')
def test_http10_post_without_length_has_no_body(t): run_case(t, 'http10_post_without_length_has_no_body')
def test_http10_keepalive_chunked_response_closes(t): run_case(t, 'http10_keepalive_chunked_response_closes')
def test_http11_connection_close(t): run_case(t, 'http11_connection_close')
def test_http11_connection_close_uppercase(t): run_case(t, 'http11_connection_close_uppercase')
def test_http11_connection_list_with_close(t): run_case(t, 'http11_connection_list_with_close')
def test_http11_connection_two_fields_with_close(t): run_case(t, 'http11_connection_two_fields_with_close')
def test_http11_connection_closed_is_not_close(t): run_case(t, 'http11_connection_closed_is_not_close')
def test_http11_request_then_half_close(t): run_case(t, 'http11_request_then_half_close')
def test_connection_names_content_length(t): run_case(t, 'connection_names_content_length')
def test_connection_names_transfer_encoding(t): run_case(t, 'connection_names_transfer_encoding')
def test_connection_names_host(t): run_case(t, 'connection_names_host')
def test_upgrade_websocket_answered_200(t): run_case(t, 'upgrade_websocket_answered_200')
def test_upgrade_h2c_not_forwarded(t): run_case(t, 'upgrade_h2c_not_forwarded')
def test_proxy_connection_not_forwarded(t): run_case(t, 'proxy_connection_not_forwarded')
def test_pipeline_two_valid(t): run_case(t, 'pipeline_two_valid')
def test_pipeline_post_between_gets(t): run_case(t, 'pipeline_post_between_gets')
def test_pipeline_head_then_get(t): run_case(t, 'pipeline_head_then_get')
def test_pipeline_chunked_then_get(t): run_case(t, 'pipeline_chunked_then_get')
def test_pipeline_behind_space_before_colon(t): run_case(t, 'pipeline_behind_space_before_colon')
def test_pipeline_behind_bad_version(t): run_case(t, 'pipeline_behind_bad_version')
def test_pipeline_behind_cl_te(t): run_case(t, 'pipeline_behind_cl_te')
def test_pipeline_behind_duplicate_cl(t): run_case(t, 'pipeline_behind_duplicate_cl')
def test_pipeline_behind_oversize_head(t): run_case(t, 'pipeline_behind_oversize_head')
def test_pipeline_behind_oversize_body(t): run_case(t, 'pipeline_behind_oversize_body')
def test_pipeline_behind_http09(t): run_case(t, 'pipeline_behind_http09')
def test_pipeline_behind_bad_chunk(t): run_case(t, 'pipeline_behind_bad_chunk')
def test_pipeline_behind_unknown_method(t): run_case(t, 'pipeline_behind_unknown_method')
def test_pipeline_valid_then_rejected_then_valid(t): run_case(t, 'pipeline_valid_then_rejected_then_valid')
def test_pipeline_behind_connection_close(t): run_case(t, 'pipeline_behind_connection_close')
def test_expect_100_continue_waits_for_body(t): run_case(t, 'expect_100_continue_waits_for_body')
def test_expect_100_continue_mixed_case(t): run_case(t, 'expect_100_continue_mixed_case')
def test_expect_100_continue_body_sent_at_once(t): run_case(t, 'expect_100_continue_body_sent_at_once')
def test_expect_100_continue_chunked(t): run_case(t, 'expect_100_continue_chunked')
def test_expect_100_continue_without_body(t): run_case(t, 'expect_100_continue_without_body')
def test_expect_100_continue_body_too_large(t): run_case(t, 'expect_100_continue_body_too_large')
def test_expect_100_continue_http10_ignored(t): run_case(t, 'expect_100_continue_http10_ignored')
def test_expect_unknown_expectation_forwarded(t): run_case(t, 'expect_unknown_expectation_forwarded')
def test_eof_inside_request_line(t): run_case(t, 'eof_inside_request_line')
def test_eof_inside_headers(t): run_case(t, 'eof_inside_headers')
def test_eof_after_empty_lines(t): run_case(t, 'eof_after_empty_lines')
