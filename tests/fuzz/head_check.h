// The request_head and response_head fuzz targets, without their oracle: a
// head (arbitrary bytes, then whatever follows) through HeadParser in one
// call, under roomy and tight limits.
//
// Invariants (besides no crash, leak or UB): a verdict in one call (never
// kIncomplete when the bytes hold a blank line within the limit); head_size
// within the input; an error with a status of the documented set and a
// printable reason; an accepted head that agrees with the line-by-line
// reading of request_framing_check.h / response_framing_check.h, every view
// inside the input, every field id equal to ClassifyHeader's.
//
// The differential half (a head we accept must parse the same under
// http-parser) is in http_parser_oracle.h: only the fuzz targets link
// http-parser, so this header is the part the unit tests replay.
#pragma once

#include <cstdint>
#include <string_view>

#include "request_framing_check.h"
#include "response_framing_check.h"

namespace sessiond {
namespace fuzz {

// Offset of the end of the first "\r\n\r\n" in `bytes` (after up to
// `skip_lines` leading empty lines), or npos.
inline size_t FirstHeadEnd(std::string_view bytes, int skip_lines) {
  size_t start = 0;
  for (int i = 0; i < skip_lines && bytes.substr(start, 2) == "\r\n"; ++i) start += 2;
  const size_t end = bytes.find("\r\n\r\n", start);
  return end == std::string_view::npos ? end : end + 4;
}

// Bytes of the leading empty lines a request parser skips.
inline size_t SkippedLines(std::string_view bytes) {
  size_t skipped = 0;
  while (skipped < 2 * kLeadingEmptyLines && bytes.substr(skipped, 2) == "\r\n") skipped += 2;
  return skipped;
}

inline bool CheckIds(const HeaderList& headers) {
  for (const Header& h : headers.fields()) FUZZ_CHECK(h.id == ClassifyHeader(h.name));
  return true;
}

// One request head under `limits`. Outputs the parse for the oracle.
inline bool CheckOneRequestHead(std::string_view bytes, const RequestLimits& limits, HeadParser* parser,
                                RequestHead* req, HeadParser::State* state) {
  parser->StartRequest(limits.max_header_bytes, limits.max_body_bytes);
  *state = parser->Parse(bytes.data(), bytes.size(), req);
  switch (*state) {
    case HeadParser::State::kIncomplete: {
      // Nothing wrong so far and no end: no blank line within the limit,
      // and fewer bytes than the limit (else 431).
      const size_t end = FirstHeadEnd(bytes, kLeadingEmptyLines);
      FUZZ_CHECK(end == std::string_view::npos || end > SkippedLines(bytes) + limits.max_header_bytes);
      FUZZ_CHECK(bytes.size() < SkippedLines(bytes) + limits.max_header_bytes);
      return true;
    }
    case HeadParser::State::kError: {
      const int status = parser->error_status();
      FUZZ_CHECK(status == 400 || status == 405 || status == 413 || status == 431 || status == 505);
      FUZZ_CHECK(parser->error() != nullptr && *parser->error() != '\0' && IsPrintableAscii(parser->error()));
      if (parser->is_head_request()) FUZZ_CHECK(bytes.substr(SkippedLines(bytes), 5) == "HEAD ");
      return true;
    }
    case HeadParser::State::kDone:
      break;
  }
  const size_t head_size = parser->head_size();
  FUZZ_CHECK(head_size <= bytes.size());
  FUZZ_CHECK(head_size == FirstHeadEnd(bytes, kLeadingEmptyLines));
  FUZZ_TRY(CheckRequestHead(*req, bytes.substr(0, head_size), limits));
  FUZZ_TRY(CheckIds(req->headers));
  FUZZ_CHECK(parser->is_head_request() == req->is_head);
  return true;
}

inline bool CheckOneResponseHead(std::string_view bytes, size_t max_header_bytes, bool request_was_head,
                                 HeadParser* parser, ResponseHead* resp, HeadParser::State* state) {
  parser->StartResponse(max_header_bytes, request_was_head);
  *state = parser->Parse(bytes.data(), bytes.size(), resp);
  switch (*state) {
    case HeadParser::State::kIncomplete: {
      const size_t end = FirstHeadEnd(bytes, 0);
      FUZZ_CHECK(end == std::string_view::npos || end > max_header_bytes);
      FUZZ_CHECK(bytes.size() < max_header_bytes);
      return true;
    }
    case HeadParser::State::kError:
      FUZZ_CHECK(parser->error_status() == 502);
      FUZZ_CHECK(parser->error() != nullptr && *parser->error() != '\0' && IsPrintableAscii(parser->error()));
      return true;
    case HeadParser::State::kDone:
      break;
  }
  const size_t head_size = parser->head_size();
  FUZZ_CHECK(head_size <= bytes.size());
  FUZZ_CHECK(head_size == FirstHeadEnd(bytes, 0));
  FUZZ_TRY(CheckResponseHead(*resp, bytes.substr(0, head_size), request_was_head));
  FUZZ_TRY(CheckIds(resp->headers));
  return true;
}

// The limits the request_head target runs under: roomy, then tight (the 413
// and 431 decisions).
inline RequestLimits RoomyRequestLimits() { return RequestLimits{16384, 65536}; }
inline RequestLimits TightRequestLimits() { return RequestLimits{256, 8}; }

inline bool CheckRequestHeadBytes(std::string_view bytes) {
  for (const RequestLimits& limits : {RoomyRequestLimits(), TightRequestLimits()}) {
    HeadParser parser;
    RequestHead req;
    HeadParser::State state;
    FUZZ_TRY(CheckOneRequestHead(bytes, limits, &parser, &req, &state));
  }
  return true;
}

inline bool CheckResponseHeadBytes(std::string_view bytes) {
  for (bool request_was_head : {false, true}) {
    HeadParser parser;
    ResponseHead resp;
    HeadParser::State state;
    FUZZ_TRY(CheckOneResponseHead(bytes, kResponseMaxHeaderBytes, request_was_head, &parser, &resp, &state));
  }
  return true;
}

}  // namespace fuzz
}  // namespace sessiond
