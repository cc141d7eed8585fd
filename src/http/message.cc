#include "http/message.h"

#include <array>

namespace sessiond {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// reg-name and IPv4 bytes: unreserved, sub-delims but ',', and '%' of
// pct-encoded (RFC 3986 section 3.2.2).
constexpr std::array<uint8_t, 256> MakeRegNameBytes() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    for (char x : std::string_view("-._~!$&'()*+;=%")) ok = ok || c == x;
    t[c] = ok;
  }
  return t;
}
constexpr std::array<uint8_t, 256> kRegNameBytes = MakeRegNameBytes();

}  // namespace

bool IsValidHost(std::string_view host) {
  // uri-host [ ":" port ]: reg-name or IPv4 or an IP-literal in brackets.
  // No spaces, lists, paths or userinfo: those would let a client point
  // absolute URLs built from Host somewhere else.
  size_t i = 0;
  if (!host.empty() && host[0] == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (i = 1; i < close; ++i) {
      char c = host[i];
      bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
      if (!ok) return false;
    }
    i = close + 1;
  } else {
    const unsigned char* h = reinterpret_cast<const unsigned char*>(host.data());
    const size_t n = host.size();
    const uint8_t* t = kRegNameBytes.data();
    while (i + 4 <= n && (t[h[i]] & t[h[i + 1]] & t[h[i + 2]] & t[h[i + 3]])) i += 4;
    while (i < n && t[h[i]]) ++i;
    if (i == 0) return false;
  }
  if (i == host.size()) return true;
  if (host[i] != ':' || i + 1 == host.size() || host.size() - i - 1 > 5) return false;
  for (++i; i < host.size(); ++i) {
    if (!IsDigit(host[i])) return false;
  }
  return true;
}

bool ParseContentLength(std::string_view value, uint64_t* out) {
  if (value.empty() || value.size() > 18) return false;
  uint64_t n = 0;
  for (char c : value) {
    if (!IsDigit(c)) return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

void RequestHead::Clear() {
  method = target = host = std::string_view();
  rewritten_target.clear();
  minor_version = 1;
  is_head = false;
  headers.Clear();
  framing = BodyFraming::kNone;
  content_length = 0;
  keep_alive = true;
  expect_continue = false;
}

void ResponseHead::Clear() {
  status = 0;
  reason = std::string_view();
  minor_version = 1;
  headers.Clear();
  framing = BodyFraming::kNone;
  content_length = 0;
  keep_alive = true;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 302: return "Found";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 508: return "Loop Detected";
    default: return "Error";
  }
}

}  // namespace sessiond
