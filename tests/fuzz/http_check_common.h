// Checks shared by the request_framing and response_framing fuzz targets:
// an independent line-by-line reading of a parsed head (to catch any
// disagreement between HeadParser and what the proxy forwards),
// BodyDecoder runs under every arrival pattern the exchange can produce, and
// the hop-by-hop / X-Forwarded-* rewrite.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_check.h"
#include "base/ip_address.h"
#include "http/body.h"
#include "http/forwarding.h"
#include "http/head_parser.h"
#include "http/headers.h"
#include "http/hop_by_hop.h"
#include "http/message.h"

namespace sessiond {
namespace fuzz {

// ---- Independent head reading ------------------------------------------------

using FieldCopy = std::pair<std::string, std::string>;

inline char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline bool SameIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

inline std::string_view TrimSpTab(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

inline bool IsTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

inline bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// A value that is safe to write into a forwarded head: HTAB, SP, VCHAR and
// obs-text only, no surrounding whitespace.
inline bool IsCleanFieldValue(std::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (!(u == '\t' || (u >= 0x20 && u != 0x7F))) return false;
  }
  return TrimSpTab(s) == s;
}

// The first line and the (name, trimmed value) fields of a complete head,
// read the simplest possible way: CRLF-separated lines, name before the first
// ':'. Only meaningful for heads the parser accepted.
struct HeadLines {
  std::string_view start_line;
  std::vector<std::pair<std::string_view, std::string_view>> fields;
};

// `v` lies within `bytes` (a view into the parsed bytes, not a copy).
inline bool ViewInside(std::string_view v, std::string_view bytes) {
  return v.data() >= bytes.data() && v.data() + v.size() <= bytes.data() + bytes.size();
}

inline HeadLines ReadHeadLines(std::string_view raw) {
  HeadLines out;
  std::string_view body = raw.substr(0, raw.size() - 4);  // without the final CRLFCRLF
  size_t start = 0;
  bool first = true;
  while (start <= body.size()) {
    size_t end = body.find("\r\n", start);
    if (end == std::string_view::npos) end = body.size();
    std::string_view line = body.substr(start, end - start);
    if (first) {
      out.start_line = line;
      first = false;
    } else {
      size_t colon = line.find(':');
      out.fields.emplace_back(line.substr(0, colon),
                              colon == std::string_view::npos ? std::string_view()
                                                              : TrimSpTab(line.substr(colon + 1)));
    }
    start = end + 2;
  }
  return out;
}

inline std::vector<FieldCopy> Snapshot(const HeaderList& headers) {
  std::vector<FieldCopy> out;
  for (const Header& h : headers.fields()) out.emplace_back(std::string(h.name), std::string(h.value));
  return out;
}

// True when the comma-separated `list` holds `token` (case-insensitive).
inline bool ListHasToken(std::string_view list, std::string_view token) {
  for (std::string_view item : SplitOn(list, ',')) {
    if (SameIgnoringCase(TrimSpTab(item), token)) return true;
  }
  return false;
}

// Content-Length as the contract allows it: 1..18 plain digits.
inline bool PlainDecimal(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

// Checks shared by request and response heads: parsed fields equal the
// simple reading in order, every name is a token, every value is clean, and
// Content-Length / Transfer-Encoding are unambiguous.
inline bool CheckFieldsAndFraming(const HeaderList& headers,
                                  const std::vector<std::pair<std::string_view, std::string_view>>& expected) {
  FUZZ_CHECK(headers.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const Header& h = headers.fields()[i];
    FUZZ_CHECK(h.name == expected[i].first);
    FUZZ_CHECK(h.value == expected[i].second);
    FUZZ_CHECK(IsToken(h.name));
    FUZZ_CHECK(IsCleanFieldValue(h.value));
  }
  const size_t cl = headers.Count("content-length");
  const size_t te = headers.Count("transfer-encoding");
  FUZZ_CHECK(cl <= 1);
  FUZZ_CHECK(te <= 1);
  FUZZ_CHECK(!(cl == 1 && te == 1));
  return true;
}

// ---- Body decoding -------------------------------------------------------------

struct BodyRun {
  bool done = false;
  bool failed = false;
  bool too_large = false;  // failed: chunk sizes announced more than max_body
  size_t consumed = 0;     // framing + data bytes reported before done/failure/end
  std::string data;
  uint64_t body_bytes = 0;
};

// Decodes `wire` the way the exchange does: bytes arrive `piece` at a time;
// after each arrival Next() runs on the unconsumed bytes, each step's
// framing+data is consumed, and a step that makes no progress waits for more
// input. `eof` ends the input after the last byte (FinishOnEof).
inline bool RunDecoder(BodyFraming framing, uint64_t length, uint64_t max_trailer, uint64_t max_body,
                       std::string_view wire, size_t piece, size_t max_data, bool eof, BodyRun* out) {
  BodyDecoder d;
  d.Reset(framing, length, max_trailer, max_body);
  FUZZ_CHECK(!d.failed());
  FUZZ_CHECK(d.framing() == framing);
  FUZZ_CHECK(d.body_bytes() == 0);
  if (framing == BodyFraming::kNone || (framing == BodyFraming::kLength && length == 0)) FUZZ_CHECK(d.done());
  size_t arrived = 0;
  size_t consumed = 0;
  while (true) {
    arrived = std::min(wire.size(), arrived + std::min(piece, wire.size() - arrived));
    while (!d.done() && !d.failed() && consumed < arrived) {
      const size_t avail = arrived - consumed;
      const uint64_t before = d.body_bytes();
      BodyDecoder::Step s = d.Next(wire.data() + consumed, avail, max_data);
      if (d.failed()) {
        FUZZ_CHECK(d.error() != nullptr && *d.error() != '\0');
        FUZZ_CHECK(!d.done());
        break;
      }
      FUZZ_CHECK(!d.too_large());
      // Never more than it was given, never more data than allowed.
      FUZZ_CHECK(s.framing <= avail);
      FUZZ_CHECK(s.data <= avail - s.framing);
      FUZZ_CHECK(s.data <= max_data);
      // A step without progress on available input would stall the exchange
      // forever: it waits for bytes it already has.
      FUZZ_CHECK(s.framing + s.data > 0);
      FUZZ_CHECK(d.body_bytes() == before + s.data);
      out->data.append(wire.substr(consumed + s.framing, s.data));
      consumed += s.framing + s.data;
      if (framing == BodyFraming::kLength) FUZZ_CHECK(d.body_bytes() <= length);
      if (framing == BodyFraming::kChunked) FUZZ_CHECK(d.body_bytes() <= max_body);
    }
    if (d.done() || d.failed() || arrived == wire.size()) break;
  }
  FUZZ_CHECK(d.body_bytes() == out->data.size());
  if (d.done()) {
    // A finished body leaves what follows (the next pipelined message) alone.
    const uint64_t bytes = d.body_bytes();
    BodyDecoder::Step s = d.Next(wire.data() + consumed, wire.size() - consumed, max_data);
    FUZZ_CHECK(s.framing == 0 && s.data == 0);
    FUZZ_CHECK(d.done() && !d.failed());
    FUZZ_CHECK(d.body_bytes() == bytes);
    if (framing == BodyFraming::kLength) FUZZ_CHECK(d.body_bytes() == length && consumed == length);
    if (framing == BodyFraming::kChunked) {
      FUZZ_CHECK(consumed >= 5 && wire.substr(consumed - 4, 4) == "\r\n\r\n");
      FUZZ_CHECK(d.body_bytes() < consumed);
    }
  } else if (!d.failed() && eof) {
    d.FinishOnEof();
    // Only an until-close body may end at EOF; anything else is truncated.
    FUZZ_CHECK(d.done() == (framing == BodyFraming::kUntilClose));
    if (framing == BodyFraming::kUntilClose) FUZZ_CHECK(consumed == wire.size());
  }
  if (framing == BodyFraming::kUntilClose && !d.done()) FUZZ_CHECK(consumed == wire.size());
  if (d.too_large()) FUZZ_CHECK(d.failed() && framing == BodyFraming::kChunked);
  out->done = d.done();
  out->failed = d.failed();
  out->too_large = d.too_large();
  out->consumed = consumed;
  out->body_bytes = d.body_bytes();
  return true;
}

// An independent reading of a body, from the grammar in body.h: a chunk is
// 1..15 hex digits, optional SP/HTAB only before ';', an extension of field
// bytes, CRLF, the data, CRLF; after the zero-size chunk come trailer lines
// (a token, ':', field bytes), each ending in CRLF, then a final CRLF. A
// chunk size beyond what is left of max_body fails at once (too_large).
// `near_limit` is set when the input comes close to the extension or trailer
// bounds, whose exact accounting is the decoder's own.
struct ReferenceBody {
  bool done = false;
  bool failed = false;
  bool too_large = false;
  size_t consumed = 0;
  std::string data;
  bool near_limit = false;
};

inline bool IsFieldByte(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7F);
}

inline int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline ReferenceBody ReadChunked(std::string_view w, uint64_t max_trailer, uint64_t max_body) {
  ReferenceBody r;
  uint64_t total = 0;  // of the chunk sizes so far
  size_t i = 0;
  size_t ext = 0;         // bytes of the current extension
  uint64_t trailer = 0;   // bytes of the trailer section other than LF
  auto finish = [&](bool failed) {
    r.failed = failed;
    r.near_limit = r.near_limit || ext > 4000 || trailer + 64 > max_trailer;
    return r;
  };
  while (true) {
    // chunk-size
    uint64_t size = 0;
    int digits = 0;
    while (i < w.size() && HexDigit(w[i]) >= 0) {
      if (++digits > 15) return finish(true);
      size = size * 16 + static_cast<uint64_t>(HexDigit(w[i++]));
    }
    if (i == w.size()) return finish(false);
    if (digits == 0) return finish(true);
    // [BWS ";" ext] CRLF
    bool ws = false;
    while (i < w.size() && (w[i] == ' ' || w[i] == '\t')) {
      ws = true;
      ++i;
    }
    if (i == w.size()) return finish(false);
    if (w[i] == ';') {
      for (ext = 0, ++i; i < w.size() && w[i] != '\r'; ++i, ++ext) {
        if (!IsFieldByte(w[i])) return finish(true);
      }
      if (i == w.size()) return finish(false);
      r.near_limit = r.near_limit || ext > 4000;
    } else if (ws || w[i] != '\r') {
      return finish(true);
    }
    ++i;  // CR
    if (i == w.size()) return finish(false);
    if (w[i++] != '\n') return finish(true);
    if (size > max_body - total) {
      r.too_large = true;
      return finish(true);
    }
    total += size;
    if (size == 0) break;
    // chunk-data CRLF
    const size_t n = static_cast<size_t>(std::min<uint64_t>(size, w.size() - i));
    r.data.append(w.substr(i, n));
    i += n;
    if (n < size || i == w.size()) return finish(false);
    if (w[i++] != '\r') return finish(true);
    if (i == w.size()) return finish(false);
    if (w[i++] != '\n') return finish(true);
  }
  // trailer-section CRLF
  while (true) {
    if (i == w.size()) return finish(false);
    if (w[i] == '\r') {
      ++trailer;
      ++i;
      if (i == w.size()) return finish(false);
      if (w[i++] != '\n') return finish(true);
      break;
    }
    // field-name ":" field-value
    size_t name = 0;
    for (; i < w.size() && w[i] != ':'; ++i, ++trailer, ++name) {
      if (!IsTokenChar(static_cast<unsigned char>(w[i]))) return finish(true);
    }
    if (i == w.size()) return finish(false);
    if (name == 0) return finish(true);
    for (; i < w.size() && w[i] != '\r'; ++i, ++trailer) {
      if (!IsFieldByte(w[i])) return finish(true);
    }
    if (i == w.size()) return finish(false);
    ++trailer;
    ++i;
    if (i == w.size()) return finish(false);
    if (w[i++] != '\n') return finish(true);
  }
  r.done = true;
  r.consumed = i;
  return finish(false);
}

inline ReferenceBody ReadBody(BodyFraming framing, uint64_t length, uint64_t max_trailer, uint64_t max_body,
                              std::string_view w, bool eof) {
  ReferenceBody r;
  switch (framing) {
    case BodyFraming::kNone:
      r.done = true;
      break;
    case BodyFraming::kLength:
      r.consumed = static_cast<size_t>(std::min<uint64_t>(length, w.size()));
      r.data = std::string(w.substr(0, r.consumed));
      r.done = w.size() >= length;
      break;
    case BodyFraming::kUntilClose:
      r.consumed = w.size();
      r.data = std::string(w);
      r.done = eof;
      break;
    case BodyFraming::kChunked:
      r = ReadChunked(w, max_trailer, max_body);
      break;
  }
  return r;
}

// Decodes under several arrival patterns and flow-control limits; the
// outcome must not depend on how the bytes were split, and must match the
// independent reading above.
inline bool DecodeEveryWay(BodyFraming framing, uint64_t length, uint64_t max_trailer, uint64_t max_body,
                           std::string_view wire, bool eof, BodyRun* reference) {
  constexpr size_t kAll = static_cast<size_t>(-1);
  static const std::pair<size_t, size_t> kWays[] = {{kAll, kAll}, {1, kAll}, {7, 3}, {kAll, 1}, {64, 17}};
  bool first = true;
  for (const auto& [piece, max_data] : kWays) {
    BodyRun run;
    FUZZ_TRY(RunDecoder(framing, length, max_trailer, max_body, wire, piece, max_data, eof, &run));
    if (first) {
      *reference = std::move(run);
      first = false;
      continue;
    }
    FUZZ_CHECK(run.done == reference->done);
    FUZZ_CHECK(run.failed == reference->failed);
    FUZZ_CHECK(run.too_large == reference->too_large);
    FUZZ_CHECK(run.data == reference->data);
    if (!run.failed) FUZZ_CHECK(run.consumed == reference->consumed);
  }
  const ReferenceBody expected = ReadBody(framing, length, max_trailer, max_body, wire, eof);
  if (!expected.near_limit) {
    FUZZ_CHECK(reference->failed == expected.failed);
    FUZZ_CHECK(reference->too_large == expected.too_large);
    FUZZ_CHECK(reference->done == expected.done);
    FUZZ_CHECK(reference->data == expected.data);
    if (expected.done) FUZZ_CHECK(reference->consumed == expected.consumed);
  }
  return true;
}

// ---- Proxy rewrite -------------------------------------------------------------

inline bool IsFixedHopByHop(std::string_view name) {
  static const char* const kFixed[] = {"connection", "keep-alive", "te", "trailer", "transfer-encoding",
                                       "upgrade", "content-length"};
  for (const char* f : kFixed) {
    if (SameIgnoringCase(name, f)) return true;
  }
  return name.size() >= 6 && SameIgnoringCase(name.substr(0, 6), "proxy-");
}

// True when `part` is `whole` with some elements removed (order kept).
inline bool IsSubsequence(const std::vector<FieldCopy>& part, const std::vector<FieldCopy>& whole) {
  size_t j = 0;
  for (const FieldCopy& f : whole) {
    if (j < part.size() && part[j] == f) ++j;
  }
  return j == part.size();
}

// RemoveHopByHop must drop exactly the hop-by-hop fields and those named by
// Connection (Host excepted), and keep everything else in order.
inline bool CheckHopByHop(HeaderList* headers) {
  const std::vector<FieldCopy> before = Snapshot(*headers);
  std::vector<std::string> named;
  for (const FieldCopy& f : before) {
    if (!SameIgnoringCase(f.first, "connection")) continue;
    for (std::string_view item : SplitOn(f.second, ',')) {
      std::string_view token = TrimSpTab(item);
      if (!token.empty() && !SameIgnoringCase(token, "host")) named.emplace_back(token);
    }
  }
  RemoveHopByHop(headers);
  const std::vector<FieldCopy> after = Snapshot(*headers);
  // The implementation honours at most 32 Connection tokens (a work bound);
  // beyond that only the fixed names are certain to go.
  const bool exact = named.size() <= 32;
  std::vector<FieldCopy> expected;
  for (const FieldCopy& f : before) {
    bool drop = IsFixedHopByHop(f.first);
    for (const std::string& n : named) drop = drop || (exact && SameIgnoringCase(f.first, n));
    if (!drop) expected.push_back(f);
  }
  if (exact) {
    FUZZ_CHECK(after == expected);
  } else {
    for (const FieldCopy& f : after) FUZZ_CHECK(!IsFixedHopByHop(f.first));
    FUZZ_CHECK(IsSubsequence(after, before));
  }
  size_t hosts_before = 0, hosts_after = 0;
  for (const FieldCopy& f : before) hosts_before += SameIgnoringCase(f.first, "host");
  for (const FieldCopy& f : after) hosts_after += SameIgnoringCase(f.first, "host");
  FUZZ_CHECK(hosts_after == hosts_before);
  return true;
}

// ApplyForwarding (http/forwarding.h). From an untrusted peer: exactly one
// X-Forwarded-For (the peer), -Proto "http", -Host = host, -Port, no
// Forwarded. From a trusted one: one X-Forwarded-For ending with the peer,
// each of -Proto, -Host, -Port once (kept or sessiond's), and a client
// address that is an IP address. Every other field untouched either way.
inline bool CheckForwarded(HeaderList* headers, std::string_view client_ip, std::string_view host,
                           bool trusted = false) {
  auto is_xf = [](std::string_view n) {
    return SameIgnoringCase(n, "x-forwarded-for") || SameIgnoringCase(n, "x-forwarded-proto") ||
           SameIgnoringCase(n, "x-forwarded-host") || SameIgnoringCase(n, "x-forwarded-port") ||
           SameIgnoringCase(n, "forwarded");
  };
  std::vector<FieldCopy> others_before;
  for (const Header& h : headers->fields()) {
    if (!is_xf(h.name)) others_before.emplace_back(std::string(h.name), std::string(h.value));
  }
  std::string why;
  const std::vector<IpNetwork> networks = {*ParseIpNetwork(client_ip, &why)};
  const std::vector<IpNetwork> none;
  ForwardingInput in;
  in.peer = *ParseIpAddress(client_ip);
  in.trusted = trusted ? &networks : &none;
  in.host = host;
  in.port = 8080;
  ForwardingResult result;
  ApplyForwarding(headers, in, &result);
  std::vector<FieldCopy> others_after;
  for (const Header& h : headers->fields()) {
    FUZZ_CHECK(!HasCrLfOrNul(h.value));
    if (!is_xf(h.name)) others_after.emplace_back(std::string(h.name), std::string(h.value));
  }
  FUZZ_CHECK(others_after == others_before);
  FUZZ_CHECK(result.peer_trusted == trusted);
  FUZZ_CHECK(ParseIpAddress(result.client_address()).has_value());
  FUZZ_CHECK(headers->Count("x-forwarded-for") == 1);
  FUZZ_CHECK(headers->Count("x-forwarded-proto") == 1);
  FUZZ_CHECK(headers->Count("x-forwarded-port") == 1);
  const std::string_view xff = *headers->Get("x-forwarded-for");
  if (!trusted) {
    FUZZ_CHECK(xff == client_ip);
    FUZZ_CHECK(result.client_address() == client_ip);
    FUZZ_CHECK(*headers->Get("x-forwarded-proto") == "http");
    FUZZ_CHECK(*headers->Get("x-forwarded-port") == "8080");
    FUZZ_CHECK(headers->Count("forwarded") == 0);
    FUZZ_CHECK(headers->Count("x-forwarded-host") == (host.empty() ? 0u : 1u));
    if (!host.empty()) FUZZ_CHECK(*headers->Get("x-forwarded-host") == host);
  } else {
    FUZZ_CHECK(xff == client_ip ||
               (xff.size() > client_ip.size() + 2 && xff.substr(xff.size() - client_ip.size() - 2) ==
                                                        std::string(", ") + std::string(client_ip)));
    FUZZ_CHECK(headers->Count("x-forwarded-host") <= 1);
    for (const Header& h : headers->fields()) {
      if (SameIgnoringCase(h.name, "forwarded")) FUZZ_CHECK(IsValidForwarded(h.value));
    }
  }
  return true;
}

}  // namespace fuzz
}  // namespace sessiond
