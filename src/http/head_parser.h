// HeadParser: the parse of one HTTP/1.x request or response head, fed the
// head's bytes as they arrive. One pass over the bytes validates every byte,
// tokenises the start line and the fields, classifies each field name
// (HeaderId) and applies the framing rules; nothing is copied.
//
// Contract with the caller (the connection that reads the bytes):
// - The bytes of the head, from its first byte, are kept contiguous. Each call
//   to Parse() passes all of them: the same bytes as on the previous call,
//   plus whatever arrived since, and the same `out`. They may have moved in
//   memory between calls (the parser keeps offsets, never pointers, across
//   calls; the fields already appended to `out` are shifted to the new
//   address, one step per field, so a buffer that grows by doubling costs a
//   few passes over the fields in all).
// - Parse() resumes where the previous call stopped: bytes already examined
//   are not examined again, so a head trickled byte by byte costs about what
//   it costs in one piece (bytes_examined() counts the work, for tests).
// - kDone: the head is data[0, head_size()) (leading empty lines included);
//   what follows is body or the next message. `out` then holds the parsed head
//   as views into `data`: the caller keeps those bytes in place and unchanged
//   for as long as `out` is used (the exchange pins them). Only a rewritten
//   absolute-form target lives elsewhere (RequestHead::rewritten_target).
// - kError: the head can never become valid. The parser answers at the first
//   byte that rules the head out (a NUL in the request line, a bare LF, a
//   second Content-Length...), or when max_head_bytes bytes hold no complete
//   head; only the 413 for a Content-Length above max_body_bytes and the 400
//   for an HTTP/1.1 request without Host wait for the end of the head (a
//   framing conflict later in the head is then still reported as such).
//   error_status() is what to answer; error() is a short reason for the log
//   that never quotes the peer's bytes.
// - kIncomplete: more bytes are needed; `out` is not usable yet (the first
//   call empties out->headers and appends fields as they complete; kDone
//   sets every other member of `out`).
//
// Strictness (docs/HTTP.md, "Parsing"): CRLF line endings only (a bare CR or
// LF anywhere is an error), no obs-fold, token-only methods (those
// http-parser knows, case-sensitive) and field names, no whitespace before a
// colon, no control bytes or DEL in the target or in values (HTAB and
// obs-text are allowed in values), "HTTP/d.d" only, 1.0 or 1.1 (505, or 502
// upstream), at most 4 empty lines before a request line, none before a status
// line, plus the framing rules of RFC 9112 section 6: Content-Length with
// Transfer-Encoding, a duplicate or malformed (1..18 plain digits)
// Content-Length, a duplicate Transfer-Encoding or one other than exactly
// "chunked" (in any case), chunked in an HTTP/1.0 request.
#pragma once

#include <cstddef>
#include <cstdint>

#include "http/message.h"

namespace sessiond {

class HeadParser {
 public:
  enum class State { kIncomplete, kDone, kError };

  // Starts a request head. A head longer than max_head_bytes (counted from
  // the request line, leading empty lines excluded) fails with 431; a
  // Content-Length above max_body_bytes with 413.
  void StartRequest(size_t max_head_bytes, uint64_t max_body_bytes);
  // Starts the head of a response to a request (`request_was_head`: a HEAD
  // request, so the response has no body whatever its framing headers say).
  // Every failure has error_status() 502.
  void StartResponse(size_t max_head_bytes, bool request_was_head);

  // The overload must match the Start call (a request head for
  // StartRequest). After kDone or kError, further calls return the same
  // state and look at nothing.
  State Parse(const char* data, size_t len, RequestHead* out);
  State Parse(const char* data, size_t len, ResponseHead* out);

  size_t head_size() const { return head_size_; }
  int error_status() const { return error_status_; }
  const char* error() const { return error_; }
  // The method parsed so far is HEAD: an error answer carries no body.
  bool is_head_request() const { return method_ == Method::kHead; }
  // The work of the scan since the Start call, in bytes: each byte the scan
  // advanced over, plus the bytes of a token read again to interpret it (the
  // method, an absolute-form target, a Content-Length, Transfer-Encoding,
  // Host or Connection value), plus one per field moved to a new address.
  // (The classification of a name and the trimming of a value's OWS read a
  // few bytes again, once per field however the head is fed: not counted.)
  // Deterministic, for tests: a head fed in pieces in place must cost what
  // it costs in one piece; a parser that rescanned on each call would not.
  uint64_t bytes_examined() const { return examined_; }

 private:
  enum class Phase : uint8_t {
    kLeadingLine,   // request: an empty line or the request line starts here
    kLeadingLf,     // request: after the CR of an empty line
    kMethod,
    kTarget,
    kVersion,       // request: "HTTP/d.d" then CR
    kStatusVersion, // response: "HTTP/d.d" then SP
    kStatusCode,    // response: 3 digits then SP or CR
    kReason,
    kStartLineLf,   // after the CR of the start line
    kFieldStart,    // a field line, or the CR of the blank line
    kName,
    kValue,
    kValueLf,       // after the CR of a field line
    kEndLf,         // after the CR of the blank line
    kFinished,      // kDone or kError was returned
  };
  enum class Method : uint8_t { kNone, kOther, kHead, kConnect, kOptions };

  static Method MatchMethod(const unsigned char* p, size_t n);
  template <class Head>
  State Run(const char* data, size_t len, Head* out);
  template <bool kRequest>
  State ScanFields(const char* data, size_t p, size_t e, size_t entry, HeaderList* headers);
  template <bool kRequest>
  bool OnField(HeaderId id, const unsigned char* d, size_t value, size_t end);
  bool OnTarget(const unsigned char* d);
  State FinishRequest(const char* data, RequestHead* out);
  State FinishResponse(const char* data, ResponseHead* out);
  State Fail(int status, const char* why);
  bool Reject(int status, const char* why);  // Fail, for the bool helpers

  // ---- the Start call ----
  bool request_ = true;
  size_t max_head_bytes_ = 0;
  uint64_t max_body_bytes_ = 0;
  bool request_was_head_ = false;

  // ---- scan position (offsets into the caller's bytes) ----
  Phase phase_ = Phase::kFinished;
  State result_ = State::kError;  // once phase_ is kFinished
  bool cleared_out_ = false;   // `out` was cleared by the first Parse call
  uintptr_t base_ = 0;         // address of the bytes on the previous call
  size_t pos_ = 0;             // next byte to examine
  size_t limit_ = 0;           // the head must end before this offset
  size_t start_ = 0;           // first byte of the start line
  int leading_lines_ = 0;      // empty lines skipped before the request line
  size_t token_ = 0;           // first byte of the token being scanned
  size_t name_len_ = 0;        // of the current field
  size_t value_ = 0;           // first byte of the current field's value
  size_t value_end_ = 0;       // its end, trailing OWS included
  HeaderId field_id_ = HeaderId::kOther;
  bool field_underscore_ = false;  // the name holds '_' (dropped in requests)
  uint64_t examined_ = 0;

  // ---- what the head said so far ----
  Method method_ = Method::kNone;
  size_t method_len_ = 0;
  size_t target_ = 0, target_len_ = 0;
  size_t authority_ = 0, authority_len_ = 0;  // absolute-form only
  bool absolute_ = false;
  int minor_version_ = 1;
  int status_ = 0;
  size_t reason_ = 0, reason_len_ = 0;
  bool has_length_ = false, chunked_ = false;
  uint64_t content_length_ = 0;
  int hosts_ = 0;
  size_t host_ = 0, host_len_ = 0;
  bool close_ = false, keep_alive_token_ = false, expect_continue_ = false;

  // ---- the outcome ----
  size_t head_size_ = 0;
  int error_status_ = 500;
  const char* error_ = "head parser used before a Start call";
};

}  // namespace sessiond
