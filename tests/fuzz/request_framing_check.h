// The request_framing fuzz target: arbitrary client bytes through the path a
// client connection takes (HeadParser on the buffered bytes, then the
// exchange's request body pump), one pipelined request after another.
//
// For every head the parser accepts, the parse must agree with a plain
// line-by-line reading (no field, target or version that two parsers could
// read differently: the root of request smuggling), framing must be
// unambiguous, the proxy rewrite must drop exactly the hop-by-hop fields, and
// the body must decode the same way however the bytes arrive.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http_check_common.h"

namespace sessiond {
namespace fuzz {

struct RequestLimits {
  size_t max_header_bytes = 4096;
  uint64_t max_body_bytes = 65536;
};

inline constexpr std::string_view kFuzzClientIp = "192.0.2.7";
// Bounds the work per input; a longer pipeline adds nothing new.
inline constexpr int kMaxPipelined = 8;
// As head_parser.cc's kMaxLeadingEmptyLines.
inline constexpr int kLeadingEmptyLines = 4;

// `head` is what the parser reported as the head (data[0, head_size())),
// leading empty lines included; `req`'s views point into it.
inline bool CheckRequestHead(const RequestHead& req, std::string_view head, const RequestLimits& limits) {
  FUZZ_CHECK(head.size() >= 4 && head.substr(head.size() - 4) == "\r\n\r\n");
  std::string_view raw = head;
  for (int i = 0; i < kLeadingEmptyLines && raw.substr(0, 2) == "\r\n"; ++i) raw.remove_prefix(2);
  FUZZ_CHECK(raw.size() <= limits.max_header_bytes);
  const HeadLines lines = ReadHeadLines(raw);

  // Request line: method SP target SP HTTP/1.x, nothing else.
  const std::string_view line = lines.start_line;
  const size_t sp1 = line.find(' ');
  FUZZ_CHECK(sp1 != std::string_view::npos);
  const size_t sp2 = line.find(' ', sp1 + 1);
  FUZZ_CHECK(sp2 != std::string_view::npos);
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  FUZZ_CHECK(IsToken(method));
  FUZZ_CHECK(req.method == method);
  FUZZ_CHECK(ViewInside(req.method, head));
  FUZZ_CHECK(req.is_head == (method == "HEAD"));
  FUZZ_CHECK(method != "CONNECT");
  FUZZ_CHECK(version.size() == 8 && version.substr(0, 7) == "HTTP/1.");
  FUZZ_CHECK(req.minor_version == version[7] - '0');
  FUZZ_CHECK(req.minor_version == 0 || req.minor_version == 1);

  // The forwarded target: origin-form or OPTIONS *, no byte that could end
  // the request line early.
  FUZZ_CHECK(!req.target.empty());
  for (char c : req.target) FUZZ_CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7F);
  const bool absolute = !req.rewritten_target.empty();
  if (absolute) {
    FUZZ_CHECK(req.target == req.rewritten_target);
    FUZZ_CHECK(req.target[0] == '/');
    FUZZ_CHECK(SameIgnoringCase(target.substr(0, 7), "http://") || SameIgnoringCase(target.substr(0, 8), "https://"));
    FUZZ_CHECK(!req.host.empty());
    FUZZ_CHECK(ViewInside(req.host, target));
  } else {
    FUZZ_CHECK(req.target == target);
    FUZZ_CHECK(ViewInside(req.target, head));
    FUZZ_CHECK(target[0] == '/' || (target == "*" && method == "OPTIONS"));
  }

  // Fields as written, except that an absolute-form authority replaces Host
  // and names holding '_' are dropped (message.cc: like nginx, since many
  // backends read '_' and '-' as the same byte).
  std::vector<std::pair<std::string_view, std::string_view>> expected;
  for (const auto& f : lines.fields) {
    if (absolute && SameIgnoringCase(f.first, "host")) continue;
    if (f.first.find('_') != std::string_view::npos) continue;
    expected.push_back(f);
  }
  if (absolute) expected.emplace_back("Host", req.host);
  FUZZ_TRY(CheckFieldsAndFraming(req.headers, expected));
  for (const Header& h : req.headers.fields()) {
    FUZZ_CHECK(ViewInside(h.value, head));
    FUZZ_CHECK(ViewInside(h.name, head) || (absolute && h.name == "Host"));
  }

  // Framing.
  const auto cl = req.headers.Get("content-length");
  const auto te = req.headers.Get("transfer-encoding");
  switch (req.framing) {
    case BodyFraming::kChunked:
      FUZZ_CHECK(te && SameIgnoringCase(*te, "chunked"));
      FUZZ_CHECK(req.minor_version == 1);
      break;
    case BodyFraming::kLength: {
      uint64_t n = 0;
      FUZZ_CHECK(cl && PlainDecimal(*cl, &n));
      FUZZ_CHECK(n == req.content_length && n > 0 && n <= limits.max_body_bytes);
      break;
    }
    case BodyFraming::kNone: {
      uint64_t n = 1;
      FUZZ_CHECK(!te);
      FUZZ_CHECK(!cl || (PlainDecimal(*cl, &n) && n == 0));
      break;
    }
    case BodyFraming::kUntilClose:
      FUZZ_CHECK(!"a request body never runs until close");
  }

  // Exactly one Host in HTTP/1.1, and req.host is it.
  const size_t hosts = req.headers.Count("host");
  FUZZ_CHECK(hosts <= 1);
  if (req.minor_version == 1) FUZZ_CHECK(hosts == 1);
  FUZZ_CHECK(req.host == (hosts ? *req.headers.Get("host") : std::string_view()));
  // Host ends up in X-Forwarded-Host and in URLs the backend builds: no
  // whitespace, list, path, query or userinfo.
  FUZZ_CHECK(req.host.find_first_of(" \t,/?#@\\") == std::string_view::npos);

  bool close = false, keep = false;
  for (const Header& h : req.headers.fields()) {
    if (!SameIgnoringCase(h.name, "connection")) continue;
    close = close || ListHasToken(h.value, "close");
    keep = keep || ListHasToken(h.value, "keep-alive");
  }
  FUZZ_CHECK(req.keep_alive == (req.minor_version == 1 ? !close : keep && !close));
  return true;
}

// Feeds `bytes` as everything a client sent, then EOF.
inline bool CheckRequestStream(std::string_view bytes, const RequestLimits& limits = RequestLimits()) {
  size_t pos = 0;
  for (int n = 0; n < kMaxPipelined; ++n) {
    const std::string_view rest = bytes.substr(pos);
    HeadParser parser;
    parser.StartRequest(limits.max_header_bytes, limits.max_body_bytes);
    RequestHead req;
    const HeadParser::State state = parser.Parse(rest.data(), rest.size(), &req);
    if (state == HeadParser::State::kIncomplete) return true;
    if (state == HeadParser::State::kError) {
      const int status = parser.error_status();
      FUZZ_CHECK(status == 400 || status == 405 || status == 413 || status == 431 || status == 505);
      FUZZ_CHECK(parser.error() != nullptr && *parser.error() != '\0' && IsPrintableAscii(parser.error()));
      return true;
    }
    const size_t head_len = parser.head_size();
    FUZZ_CHECK(head_len <= rest.size());
    FUZZ_TRY(CheckRequestHead(req, rest.substr(0, head_len), limits));
    FUZZ_TRY(CheckHopByHop(&req.headers));
    // Both ways (by the parity of the head size): an untrusted peer, and the peer as a trusted proxy.
    FUZZ_TRY(CheckForwarded(&req.headers, kFuzzClientIp, req.host, /*trusted=*/(head_len & 1) != 0));

    BodyRun body;
    FUZZ_TRY(DecodeEveryWay(req.framing, req.content_length, limits.max_header_bytes, limits.max_body_bytes,
                            rest.substr(head_len), /*eof=*/true, &body));
    if (!body.done || body.body_bytes > limits.max_body_bytes) return true;  // 400, 413 or truncated
    pos += head_len + body.consumed;
    if (!req.keep_alive) return true;
  }
  return true;
}

}  // namespace fuzz
}  // namespace sessiond
