// BodyDecoder: incremental, strict decoding of a message body's framing
// (Content-Length, chunked, or until-close), shared by the request and the
// response direction.
//
// The decoder never copies body bytes. Next() looks at the unconsumed input
// and says how many leading bytes are framing (chunk-size lines, CRLFs,
// trailers: to be discarded) and how many following bytes are body data (to
// be moved to the other side, e.g. with evbuffer_remove_buffer). The caller
// consumes exactly that much before calling again. This keeps a 256 MiB body
// streaming through fixed-size buffers with zero copies for the data.
//
// Chunked decoding is strict (RFC 9112 section 7.1): hex sizes only, at most
// 15 digits, whitespace only before a ';' extension, CRLF (never bare LF)
// after the size line and after the data, bounded extensions and trailers.
// Trailer fields are validated and dropped. Any violation is a framing error:
// the connection cannot be resynchronised and must be closed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "http/message.h"

namespace sessiond {

class BodyDecoder {
 public:
  struct Step {
    size_t framing = 0;  // leading bytes to discard
    size_t data = 0;     // then this many body bytes
  };

  // `max_trailer_bytes` bounds the trailer section of a chunked body.
  // `max_body_bytes` fails a chunked body (too_large()) as soon as a chunk
  // size announces more than that in total, before its data arrives.
  void Reset(BodyFraming framing, uint64_t content_length, uint64_t max_trailer_bytes,
             uint64_t max_body_bytes = UINT64_MAX);

  // See the file comment. `max_data` caps the data of this step (flow control).
  Step Next(const char* in, size_t len, size_t max_data);

  // For kUntilClose: the peer closed, so the body is complete.
  void FinishOnEof();

  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kError; }
  // The failure was a chunk size beyond max_body_bytes (answer 413, not 400).
  bool too_large() const { return too_large_; }
  const char* error() const { return error_; }
  uint64_t body_bytes() const { return body_bytes_; }
  BodyFraming framing() const { return framing_; }

 private:
  enum class State {
    kLength, kUntilClose,
    kSize, kSizeBws, kExt, kSizeLf, kData, kDataCr, kDataLf,
    kTrailerStart, kTrailerName, kTrailer, kTrailerLf, kFinalLf,
    kDone, kError,
  };
  Step Fail(const char* why, Step step);

  BodyFraming framing_ = BodyFraming::kNone;
  State state_ = State::kDone;
  uint64_t remaining_ = 0;  // of the Content-Length or of the current chunk
  uint64_t body_bytes_ = 0;
  int size_digits_ = 0;
  size_t line_bytes_ = 0;     // of the current extension
  uint64_t trailer_bytes_ = 0;
  uint64_t max_trailer_bytes_ = 0;
  uint64_t max_body_bytes_ = UINT64_MAX;
  bool too_large_ = false;
  const char* error_ = nullptr;
};

}  // namespace sessiond
