#include "base/web_origin.h"

namespace sessiond {

namespace {

constexpr size_t kMaxOrigin = 2048;

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool EqualNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

uint16_t DefaultPort(std::string_view scheme) {
  if (EqualNoCase(scheme, "http") || EqualNoCase(scheme, "ws")) return 80;
  if (EqualNoCase(scheme, "https") || EqualNoCase(scheme, "wss")) return 443;
  return 0;
}

bool IsSchemeChar(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return !first && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.');
}

// reg-name or IPv4 characters (RFC 3986 unreserved and sub-delims, less the
// ones no browser puts in an origin); an IPv6 literal's inside is hex,
// colons and dots.
bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

bool IsV6Char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

// Splits "host[:port]" / "[v6][:port]". *port is 0 without one; false when
// malformed (a port of 0, more than 5 digits or above 65535 included).
bool SplitAuthority(std::string_view text, std::string_view* host, bool* bracketed, uint16_t* port,
                    bool* has_port) {
  *has_port = false;
  *port = 0;
  std::string_view rest;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    *host = text.substr(1, close - 1);
    for (char c : *host) {
      if (!IsV6Char(c)) return false;
    }
    *bracketed = true;
    rest = text.substr(close + 1);
  } else {
    const size_t colon = text.find(':');
    *host = text.substr(0, colon);
    if (host->empty()) return false;
    for (char c : *host) {
      if (!IsHostChar(c)) return false;
    }
    *bracketed = false;
    rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
  }
  if (rest.empty()) return true;
  if (rest[0] != ':' || rest.size() < 2 || rest.size() > 6) return false;
  uint32_t n = 0;
  for (char c : rest.substr(1)) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (n == 0 || n > 65535) return false;
  *port = static_cast<uint16_t>(n);
  *has_port = true;
  return true;
}

}  // namespace

std::optional<WebOrigin> ParseWebOrigin(std::string_view text) {
  if (text.empty() || text.size() > kMaxOrigin) return std::nullopt;
  const size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  WebOrigin out;
  out.scheme = text.substr(0, sep);
  for (size_t i = 0; i < out.scheme.size(); ++i) {
    if (!IsSchemeChar(out.scheme[i], i == 0)) return std::nullopt;
  }
  bool has_port = false;
  if (!SplitAuthority(text.substr(sep + 3), &out.host, &out.bracketed, &out.port, &has_port)) return std::nullopt;
  if (!has_port) out.port = DefaultPort(out.scheme);
  return out;
}

bool WebOrigin::SameAs(const WebOrigin& other) const {
  return EqualNoCase(scheme, other.scheme) && EqualNoCase(host, other.host) && bracketed == other.bracketed &&
         port == other.port;
}

bool WebOrigin::MatchesHost(std::string_view host_header) const {
  std::string_view h;
  bool h_bracketed = false, has_port = false;
  uint16_t h_port = 0;
  if (!SplitAuthority(host_header, &h, &h_bracketed, &h_port, &has_port)) return false;
  if (h_bracketed != bracketed || !EqualNoCase(h, host)) return false;
  if (has_port) return port == h_port;
  // No port in Host: the client used its scheme's default port, so the
  // origin must not name another one.
  return port == 0 || port == DefaultPort(scheme);
}

std::string FormatWebOrigin(const WebOrigin& origin) {
  std::string out;
  for (char c : origin.scheme) out.push_back(Lower(c));
  out += "://";
  if (origin.bracketed) out.push_back('[');
  for (char c : origin.host) out.push_back(Lower(c));
  if (origin.bracketed) out.push_back(']');
  if (origin.port != 0 && origin.port != DefaultPort(origin.scheme)) out += ":" + std::to_string(origin.port);
  return out;
}

}  // namespace sessiond
