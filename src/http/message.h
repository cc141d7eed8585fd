// Request and response heads: strict parsing of the bytes up to and including
// the blank line, and the framing decision that follows from them.
//
// Parsing is two passes over a complete head (the caller finds "\r\n\r\n"
// first and enforces max_header_bytes):
//   1. ScanHead() validates every byte: CRLF line endings only (a bare CR or
//      bare LF is an error), no NUL or other control characters in values,
//      token-only field names with no whitespace before the colon, no
//      obs-fold continuation lines. Debian's http-parser is built non-strict
//      and would accept all of these, and each is a request-smuggling vector
//      when two parsers disagree.
//   2. http-parser tokenizes the request/status line and fields.
// Then the framing rules (RFC 9112 section 6) are applied with no leniency:
// Content-Length and Transfer-Encoding together, several Content-Length
// fields, a Content-Length that is not plain digits, or a Transfer-Encoding
// other than exactly "chunked" are errors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/headers.h"

namespace sessiond {

enum class BodyFraming {
  kNone,        // no body
  kLength,      // Content-Length bytes
  kChunked,     // chunked transfer coding
  kUntilClose,  // responses only: the body ends when the upstream closes
};

struct RequestHead {
  RequestHead() = default;
  RequestHead(const RequestHead&) = delete;
  RequestHead& operator=(const RequestHead&) = delete;

  std::string raw;  // the head bytes; the views below point into it
  std::string_view method;
  std::string_view target;  // origin-form after normalisation (absolute-form is rewritten)
  std::string rewritten_target;  // storage when absolute-form was rewritten
  int minor_version = 1;  // HTTP/1.<minor>
  bool is_head = false;   // HEAD: the response carries no body
  HeaderList headers;
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;       // the client allows another request on this connection
  bool expect_continue = false;  // Expect: 100-continue (answered by sessiond itself)
  std::string_view host;        // Host (or the authority of an absolute-form target)

  // Back to the state of a new object for the next request, keeping the
  // capacity of the header list.
  void Clear();
};

struct ResponseHead {
  ResponseHead() = default;
  ResponseHead(const ResponseHead&) = delete;
  ResponseHead& operator=(const ResponseHead&) = delete;

  std::string raw;
  int status = 0;
  std::string_view reason;
  int minor_version = 1;
  HeaderList headers;
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;  // the upstream connection may be reused afterwards

  // Back to the state of a new object for the next response, keeping the
  // capacity of the header list.
  void Clear();
};

// Parses a complete request head (ending in "\r\n\r\n"). Returns 0 on success,
// otherwise the HTTP status to answer (400, 405, 413, 505) with a short
// reason for the log in *why (never client bytes).
int ParseRequestHead(std::string raw, uint64_t max_body_bytes, RequestHead* out, const char** why);

// Parses a complete response head. `request_was_head` suppresses the body.
// Returns false with *why on any violation (the caller answers 502).
bool ParseResponseHead(std::string raw, bool request_was_head, ResponseHead* out, const char** why);

// Byte-level validation of a head (see the file comment). Exposed for tests.
// `request` selects request-line or status-line rules for the first line.
bool ScanHead(std::string_view raw, bool request, const char** why);

// Host syntax check (RFC 9110 section 7.2: uri-host [":" port]). Exposed for tests.
bool IsValidHost(std::string_view host);

// Parses Content-Length's value: 1*DIGIT, at most 18 digits. Exposed for tests.
bool ParseContentLength(std::string_view value, uint64_t* out);

// The canned reason phrase for the statuses sessiond itself produces.
const char* ReasonPhrase(int status);

}  // namespace sessiond
