// Request and response heads: what HeadParser (http/head_parser.h) makes of
// the bytes up to and including the blank line, and the framing decision that
// follows from them. The views point into the caller's bytes (see the
// contract in head_parser.h), never into a copy.
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

// Host syntax check (RFC 9110 section 7.2: uri-host [":" port]). Exposed for tests.
bool IsValidHost(std::string_view host);

// Parses Content-Length's value: 1*DIGIT, at most 18 digits. Exposed for tests.
bool ParseContentLength(std::string_view value, uint64_t* out);

// The canned reason phrase for the statuses sessiond itself produces.
const char* ReasonPhrase(int status);

}  // namespace sessiond
