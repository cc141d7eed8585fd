// The upgrade path without sockets (docs/HTTP.md, Upgrades and WebSockets):
// what the exchange decides from a client's upgrade request (and the bytes it
// pipelined behind it) and the backend's answer (and the bytes that follow
// it), and how a tunnel follows WebSocket frames in both streams.
//
// Input: "<request bytes>\x00\x00<response bytes>" (no separator: the
// response is empty). The request bytes are a request head and whatever the
// client sent after it; the response bytes are the backend's head and what
// followed.
//
// Invariants:
// - UpgradeRequested agrees with an independent reading of the rules
//   (HTTP/1.1, no body, no close, a Connection token "upgrade" in any field,
//   exactly one Upgrade with at least one protocol and none named h2c), and
//   returns the Upgrade field's value;
// - UpgradeAccepted holds exactly when every protocol of the 101's Upgrade
//   is one the client asked for (name in any case, version exact), and there
//   is at least one;
// - OriginAllowed: no Origin is always allowed; an https Origin built from
//   the request's own valid Host is allowed when the scheme is unknown or
//   https, refused when it is http;
// - ViaNames never finds a pseudonym that is not in the input;
// - the bytes the tunnel would relay first (after each head) are exactly the
//   input after the head, untouched;
// - WebSocketFrameTracker finds the same frame boundaries fed in one piece,
//   byte by byte, and stopping at each boundary, and they agree with an
//   independent walk of the frame headers; a Close frame written at a
//   boundary is seen as one whole Close frame by a fresh tracker.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "http/head_parser.h"
#include "http/headers.h"
#include "http/message.h"
#include "http/upgrade.h"
#include "http/websocket_frames.h"

namespace sessiond {
namespace fuzz {

inline constexpr size_t kUpgradeMaxHead = 8192;

inline std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  return out;
}

// Comma-separated items, OWS trimmed, empty ones dropped.
inline std::vector<std::string> Items(std::string_view list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    std::string_view item = list.substr(start, end - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    start = end + 1;
  }
  return out;
}

inline bool SameProtocolRef(const std::string& a, const std::string& b) {
  const size_t sa = a.find('/'), sb = b.find('/');
  const std::string va = sa == std::string::npos ? "" : a.substr(sa);
  const std::string vb = sb == std::string::npos ? "" : b.substr(sb);
  return LowerCopy(a.substr(0, sa)) == LowerCopy(b.substr(0, sb)) && va == vb;
}

// "name" or "name:port": at most 253 letters, digits, '.', '-' (a DNS name;
// longer origins are refused), and a port 1..65535.
inline bool IsPlainHost(std::string_view host) {
  const size_t colon = host.find(':');
  const std::string_view name = host.substr(0, colon);
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return false;
  }
  if (colon == std::string_view::npos) return true;
  const std::string_view port = host.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  unsigned n = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  return n >= 1 && n <= 65535;
}

inline bool CheckUpgradeDecision(const RequestHead& req) {
  size_t upgrades = 0;
  bool connection_upgrade = false;
  std::string value;
  for (const Header& h : req.headers.fields()) {
    const std::string name = LowerCopy(h.name);
    if (name == "upgrade") {
      ++upgrades;
      value = std::string(h.value);
    }
    if (name == "connection") {
      for (const std::string& t : Items(h.value)) connection_upgrade = connection_upgrade || LowerCopy(t) == "upgrade";
    }
  }
  bool h2c = false;
  const std::vector<std::string> protocols = Items(value);
  for (const std::string& p : protocols) h2c = h2c || LowerCopy(p.substr(0, p.find('/'))) == "h2c";
  // At most 32 items are read by the implementation; the oracle looks at all,
  // so only heads within that bound are compared.
  if (protocols.size() > 32) return true;
  const bool want = req.minor_version == 1 && req.framing == BodyFraming::kNone && req.keep_alive &&
                    upgrades == 1 && connection_upgrade && !protocols.empty() && !h2c;
  const std::optional<std::string_view> got = UpgradeRequested(req);
  FUZZ_CHECK(got.has_value() == want);
  if (got) FUZZ_CHECK(*got == value);
  return true;
}

inline bool CheckAcceptance(std::string_view requested, std::string_view answered) {
  const std::vector<std::string> asked = Items(requested), given = Items(answered);
  if (asked.size() > 32 || given.size() > 32) return true;
  bool want = !given.empty();
  for (const std::string& g : given) {
    bool found = false;
    for (const std::string& a : asked) found = found || SameProtocolRef(g, a);
    want = want && found;
  }
  FUZZ_CHECK(UpgradeAccepted(requested, answered) == want);
  return true;
}

// Frame ends by an independent walk of the headers; stops at an incomplete frame.
inline std::vector<size_t> FrameEnds(std::string_view s) {
  std::vector<size_t> ends;
  size_t p = 0;
  while (p + 2 <= s.size()) {
    const unsigned char b1 = static_cast<unsigned char>(s[p + 1]);
    size_t header = 2;
    uint64_t len = b1 & 0x7f;
    if (len == 126) {
      header += 2;
      if (p + header > s.size()) break;
      len = (static_cast<unsigned char>(s[p + 2]) << 8) | static_cast<unsigned char>(s[p + 3]);
    } else if (len == 127) {
      header += 8;
      if (p + header > s.size()) break;
      len = 0;
      for (size_t i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(s[p + 2 + i]);
    }
    if (b1 & 0x80) header += 4;
    if (p + header > s.size() || len > s.size() - p - header) break;
    p += header + static_cast<size_t>(len);
    ends.push_back(p);
  }
  return ends;
}

inline bool CheckFrames(std::string_view s) {
  const std::vector<size_t> want = FrameEnds(s);
  // One piece.
  WebSocketFrameTracker whole;
  FUZZ_CHECK(whole.Feed(s.data(), s.size()) == s.size());
  FUZZ_CHECK(whole.at_boundary() == (s.empty() || (!want.empty() && want.back() == s.size())));
  // Byte by byte, noting where a boundary is reached.
  WebSocketFrameTracker bytes;
  std::vector<size_t> seen;
  for (size_t i = 0; i < s.size(); ++i) {
    FUZZ_CHECK(bytes.Feed(s.data() + i, 1) == 1);
    if (bytes.at_boundary()) seen.push_back(i + 1);
  }
  FUZZ_CHECK(seen == want);
  FUZZ_CHECK(bytes.close_passed() == whole.close_passed());
  // Stopping at each boundary, as a tunnel that is ending does.
  WebSocketFrameTracker stops;
  std::vector<size_t> stopped;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t took = stops.Feed(s.data() + pos, s.size() - pos, /*stop_at_boundary=*/true);
    if (took == 0) took = stops.Feed(s.data() + pos, 1);
    FUZZ_CHECK(took > 0);
    pos += took;
    if (stops.at_boundary()) stopped.push_back(pos);
  }
  FUZZ_CHECK(stopped == want);
  // sessiond's Close at the last boundary: a whole Close frame to any reader.
  if (!want.empty() || s.empty()) {
    const size_t at = s.empty() ? 0 : want.back();
    std::string with_close(s.substr(0, at));
    char frame[kMaxWsCloseFrame];
    const uint8_t mask[4] = {1, 2, 3, 4};
    with_close.append(frame, WriteWebSocketClose(frame, kWsClosePolicyViolation, s.substr(0, 200),
                                                 (s.size() & 1) ? mask : nullptr));
    WebSocketFrameTracker reader;
    reader.Feed(with_close.data(), with_close.size());
    FUZZ_CHECK(reader.at_boundary());
    FUZZ_CHECK(reader.close_passed());
  }
  return true;
}

inline bool CheckUpgradePath(std::string_view input) {
  const size_t sep = input.find(std::string_view("\0\0", 2));
  const std::string_view request_bytes = input.substr(0, sep);
  const std::string_view response_bytes = sep == std::string_view::npos ? std::string_view() : input.substr(sep + 2);

  HeadParser parser;
  parser.StartRequest(kUpgradeMaxHead, 1 << 20);
  RequestHead req;
  if (parser.Parse(request_bytes.data(), request_bytes.size(), &req) != HeadParser::State::kDone) {
    return CheckFrames(request_bytes);  // the stream the tunnel would follow anyway
  }
  FUZZ_TRY(CheckUpgradeDecision(req));
  const std::string_view pipelined = request_bytes.substr(parser.head_size());
  FUZZ_CHECK(pipelined.data() == request_bytes.data() + parser.head_size());

  // Origin: absent is allowed; the request's own origin is allowed, with the
  // scheme unknown or named; the other scheme only while it is unknown.
  const std::vector<std::string> no_list;
  if (req.headers.Count(HeaderId::kOrigin) == 0) {
    for (std::string_view scheme : {"", "http", "https"}) {
      FUZZ_CHECK(OriginAllowed(req.headers, req.host, scheme, no_list));
    }
  }
  if (IsPlainHost(req.host)) {
    HeaderList own;
    const std::string origin = "https://" + std::string(req.host);
    own.Append("Origin", origin);
    FUZZ_CHECK(OriginAllowed(own, req.host, "", no_list));
    FUZZ_CHECK(OriginAllowed(own, req.host, "https", no_list));
    FUZZ_CHECK(!OriginAllowed(own, req.host, "http", no_list));
  }
  const std::string pseudonym = "sessiond-5eed5eed5eed5eed";
  if (input.find(pseudonym) == std::string_view::npos) FUZZ_CHECK(!ViaNames(req.headers, pseudonym));

  const std::optional<std::string_view> requested = UpgradeRequested(req);
  HeadParser response_parser;
  response_parser.StartResponse(kUpgradeMaxHead, req.is_head);
  ResponseHead resp;
  if (response_parser.Parse(response_bytes.data(), response_bytes.size(), &resp) == HeadParser::State::kDone) {
    const std::string_view after = response_bytes.substr(response_parser.head_size());
    FUZZ_CHECK(after.data() == response_bytes.data() + response_parser.head_size());
    if (requested && resp.headers.Count(HeaderId::kUpgrade) == 1) {
      FUZZ_TRY(CheckAcceptance(*requested, *resp.headers.Get(HeaderId::kUpgrade)));
    }
    FUZZ_TRY(CheckFrames(after));
  }
  return CheckFrames(pipelined);
}

}  // namespace fuzz
}  // namespace sessiond
