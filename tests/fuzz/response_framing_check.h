// The response_framing fuzz target: arbitrary upstream bytes through the path
// of src/proxy/exchange.cc (TryParseResponseHead, then PumpResponseBody):
// interim 1xx responses are skipped, the final head is parsed, hop-by-hop
// fields are removed, and the body is decoded (Content-Length, chunked, or
// until the upstream closes).
//
// Invariants: the parse agrees with a line-by-line reading (status, reason,
// fields), the framing decision follows RFC 9112 section 6.3 exactly (no body
// for HEAD, 1xx, 204, 304; otherwise chunked, length, or until close), a
// body until close never leaves the connection reusable, and decoding does not
// depend on how the bytes arrive.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http_check_common.h"

namespace sessiond {
namespace fuzz {

inline constexpr size_t kResponseMaxHeaderBytes = 4096;
// Interim responses before the final one; more add nothing new.
inline constexpr int kMaxInterim = 8;

// `raw` is what the parser reported as the head; `resp`'s views point into it.
inline bool CheckResponseHead(const ResponseHead& resp, std::string_view raw, bool request_was_head) {
  FUZZ_CHECK(raw.size() >= 4 && raw.substr(raw.size() - 4) == "\r\n\r\n");
  FUZZ_CHECK(raw.size() <= kResponseMaxHeaderBytes);
  const HeadLines lines = ReadHeadLines(raw);

  // Status line: HTTP/1.x SP 3DIGIT [SP reason].
  const std::string_view line = lines.start_line;
  FUZZ_CHECK(line.size() >= 12 && line.substr(0, 7) == "HTTP/1." && line[8] == ' ');
  FUZZ_CHECK(resp.minor_version == line[7] - '0');
  FUZZ_CHECK(resp.minor_version == 0 || resp.minor_version == 1);
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    FUZZ_CHECK(line[i] >= '0' && line[i] <= '9');
    status = status * 10 + (line[i] - '0');
  }
  FUZZ_CHECK(resp.status == status);
  FUZZ_CHECK(status >= 100 && status <= 599);
  // The reason is copied into the head sent to the client.
  FUZZ_CHECK(!HasCrLfOrNul(resp.reason));
  FUZZ_CHECK(resp.reason == (line.size() > 13 ? line.substr(13) : std::string_view()));
  FUZZ_CHECK(ViewInside(resp.reason, raw));

  FUZZ_TRY(CheckFieldsAndFraming(resp.headers, lines.fields));
  for (const Header& h : resp.headers.fields()) {
    FUZZ_CHECK(ViewInside(h.name, raw));
    FUZZ_CHECK(ViewInside(h.value, raw));
  }

  const auto cl = resp.headers.Get("content-length");
  const auto te = resp.headers.Get("transfer-encoding");
  uint64_t n = 0;
  if (cl) FUZZ_CHECK(PlainDecimal(*cl, &n));
  if (te) FUZZ_CHECK(SameIgnoringCase(*te, "chunked"));
  const bool no_body = request_was_head || status < 200 || status == 204 || status == 304;
  if (no_body) {
    FUZZ_CHECK(resp.framing == BodyFraming::kNone);
  } else if (te) {
    FUZZ_CHECK(resp.framing == BodyFraming::kChunked);
  } else if (cl) {
    FUZZ_CHECK(resp.framing == (n > 0 ? BodyFraming::kLength : BodyFraming::kNone));
    if (n > 0) FUZZ_CHECK(resp.content_length == n);
  } else {
    FUZZ_CHECK(resp.framing == BodyFraming::kUntilClose);
  }

  bool close = false, keep = false;
  for (const Header& h : resp.headers.fields()) {
    if (!SameIgnoringCase(h.name, "connection")) continue;
    close = close || ListHasToken(h.value, "close");
    keep = keep || ListHasToken(h.value, "keep-alive");
  }
  const bool reusable = resp.framing != BodyFraming::kUntilClose &&
                        (resp.minor_version == 1 ? !close : keep && !close);
  FUZZ_CHECK(resp.keep_alive == reusable);
  return true;
}

// Feeds `bytes` as everything the upstream sent for one request, then EOF.
inline bool CheckResponseStream(std::string_view bytes, bool request_was_head) {
  size_t pos = 0;
  for (int n = 0; n <= kMaxInterim; ++n) {
    const std::string_view rest = bytes.substr(pos);
    HeadParser parser;
    parser.StartResponse(kResponseMaxHeaderBytes, request_was_head);
    ResponseHead resp;
    const HeadParser::State state = parser.Parse(rest.data(), rest.size(), &resp);
    if (state == HeadParser::State::kIncomplete) return true;  // 502 at EOF: no complete head
    if (state == HeadParser::State::kError) {
      FUZZ_CHECK(parser.error_status() == 502);
      FUZZ_CHECK(parser.error() != nullptr && *parser.error() != '\0' && IsPrintableAscii(parser.error()));
      return true;
    }
    const size_t head_len = parser.head_size();
    FUZZ_CHECK(head_len <= rest.size());
    FUZZ_TRY(CheckResponseHead(resp, rest.substr(0, head_len), request_was_head));
    if (resp.status == 101) return true;  // 502: no Upgrade was requested
    pos += head_len;
    if (resp.status < 200) continue;  // interim, dropped

    FUZZ_TRY(CheckHopByHop(&resp.headers));
    BodyRun body;
    return DecodeEveryWay(resp.framing, resp.content_length, kResponseMaxHeaderBytes, UINT64_MAX,
                          bytes.substr(pos), /*eof=*/true, &body);
  }
  return true;
}

// Both request kinds: HEAD changes the framing of the same bytes.
inline bool CheckResponseBytes(std::string_view bytes) {
  FUZZ_TRY(CheckResponseStream(bytes, /*request_was_head=*/false));
  return CheckResponseStream(bytes, /*request_was_head=*/true);
}

}  // namespace fuzz
}  // namespace sessiond
