// Web origins (RFC 6454) as sent in the Origin header of a WebSocket
// handshake, and the same-origin rule sessiond applies to upgrades
// (docs/HTTP.md, Upgrades and WebSockets; docs/CONFIGURATION.md,
// websocket.allowed_origins).
//
// Shared by the configuration (which validates and normalises the
// allowed_origins list once) and the proxy (which checks each handshake).
// Bounded and allocation-free on the request path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sessiond {

struct WebOrigin {
  std::string_view scheme;  // as written (compare case-insensitively)
  std::string_view host;    // without brackets for an IPv6 literal
  bool bracketed = false;
  uint16_t port = 0;        // the explicit port, or the scheme's default (0 when it has none)

  // Scheme, host and effective port equal (scheme and host case-insensitively).
  bool SameAs(const WebOrigin& other) const;
  // Whether this origin names the authority of a Host header value
  // ("example.com", "example.com:8080", "[::1]:8080"): the same host, and
  // the Host's port, or, for a Host without one, the scheme's default port.
  // The scheme is not compared here: whether the request's scheme is known
  // is the caller's to say (http/upgrade.h, OriginAllowed).
  bool MatchesHost(std::string_view host_header) const;
};

// "scheme://host[:port]" with no path, query, user info or trailing slash
// (what browsers send). Views into `text`. nullopt for anything else,
// including the opaque origin "null".
std::optional<WebOrigin> ParseWebOrigin(std::string_view text);

// The canonical text of an origin: lower-case scheme and host, the port only
// when it is not the scheme's default ("https://app.example", "http://[::1]:8080").
std::string FormatWebOrigin(const WebOrigin& origin);

}  // namespace sessiond
