// HeadParser: the parse of one HTTP/1.x request or response head, fed the
// head's bytes as they arrive.
//
// Contract with the caller (the connection that reads the bytes):
// - The bytes of the head, from its first byte, are kept contiguous. Each call
//   to Parse() passes all of them: the same bytes as on the previous call,
//   plus whatever arrived since. They may have moved in memory between calls
//   (the parser keeps offsets, never pointers, across calls).
// - Parse() resumes where the previous call stopped: bytes already examined
//   are not examined again, so a head trickled byte by byte costs about what
//   it costs in one piece.
// - kDone: the head is data[0, head_size()) (leading empty lines included);
//   what follows is body or the next message. `out` then holds the parsed head
//   as views into `data`: the caller keeps those bytes in place and unchanged
//   for as long as `out` is used (the exchange pins them).
// - kError: the head can never become valid (the first byte that rules it
//   out, or the size limit). error_status() is what to answer; error() is a
//   short reason for the log that never quotes the peer's bytes.
//
// Strictness (docs/HTTP.md, "Parsing"): CRLF line endings only, no obs-fold,
// token-only methods and field names, no whitespace before a colon, no
// control bytes in values, HTTP/1.0 or 1.1 only, plus the framing rules of
// RFC 9112 section 6 (Content-Length with Transfer-Encoding, duplicate or
// malformed Content-Length, Transfer-Encoding other than exactly "chunked").
#pragma once

#include <cstddef>
#include <cstdint>

#include "http/message.h"

namespace sessiond {

class HeadParser {
 public:
  enum class State { kIncomplete, kDone, kError };

  // Starts a request head. A head longer than max_head_bytes fails with 431;
  // a Content-Length above max_body_bytes with 413.
  void StartRequest(size_t max_head_bytes, uint64_t max_body_bytes);
  // Starts the head of a response to a request (`request_was_head`: a HEAD
  // request, so the response has no body whatever its framing headers say).
  // Every failure has error_status() 502.
  void StartResponse(size_t max_head_bytes, bool request_was_head);

  State Parse(const char* data, size_t len, RequestHead* out);
  State Parse(const char* data, size_t len, ResponseHead* out);

  size_t head_size() const { return head_size_; }
  int error_status() const { return error_status_; }
  const char* error() const { return error_; }
  // The request line so far starts with "HEAD ": an error answer carries no body.
  bool is_head_request() const { return is_head_request_; }

 private:
  State Fail(int status, const char* why);

  bool request_ = true;
  size_t max_head_bytes_ = 0;
  uint64_t max_body_bytes_ = 0;
  bool request_was_head_ = false;
  size_t scanned_ = 0;  // bytes already examined
  size_t head_size_ = 0;
  int error_status_ = 0;
  const char* error_ = "";
  bool is_head_request_ = false;
};

}  // namespace sessiond
