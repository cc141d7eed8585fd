// The request-side rules of protocol upgrades and loops, pure functions over
// parsed heads (docs/HTTP.md, "Upgrades and WebSockets" and "Loops"):
//
// - A request asks to upgrade when it is HTTP/1.1, has no body, does not ask
//   to close, names "upgrade" among its Connection tokens (any case, any
//   Connection field) and carries exactly one Upgrade field. Upgrade: h2c is
//   never honoured (HTTP/2 cleartext upgrades through a proxy are a known
//   smuggling path): such a request is an ordinary one.
// - A 101 accepts the upgrade only with an Upgrade field whose protocols are
//   all among those the client asked for.
// - A cross-origin handshake is refused: an Origin, when present, must name
//   the request's own origin (its scheme when sessiond knows it, and its
//   host) or one of websocket.allowed_origins.
// - A request whose Via already holds this process's pseudonym has been
//   through this sessiond before: a loop.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace sessiond {

// The client's Upgrade value when `request` asks to upgrade (see above), else nullopt.
std::optional<std::string_view> UpgradeRequested(const RequestHead& request);

// Whether `response_upgrade` (a 101's Upgrade value) names only protocols
// from `requested` (the client's Upgrade value), and at least one. Protocol
// names compare case-insensitively, versions ("name/version") exactly.
bool UpgradeAccepted(std::string_view requested, std::string_view response_upgrade);

// The protocol is WebSocket (RFC 6455: "websocket", any case).
bool IsWebSocketUpgrade(std::string_view upgrade);

// Whether the request's Origin (if any) may open an upgraded connection:
// absent (not a browser), the request's own origin, or listed in `allowed`
// (canonical origins, see base/web_origin.h). The own origin is `scheme`
// (ForwardingResult::scheme: "https", "http", or empty when sessiond cannot
// tell, and then either scheme matches) with the request's host (`host`, the
// Host value). On a TLS listener http://HOST is another origin: a page
// served over plain http (which a network attacker can write) must not ride
// the session cookie into a wss:// socket. Two Origin fields, or an
// unparseable one not listed verbatim ("null"), are refused.
bool OriginAllowed(const HeaderList& headers, std::string_view host, std::string_view scheme,
                   const std::vector<std::string>& allowed);

// Whether a Via field of `headers` names `pseudonym` as one of its
// received-by entries (RFC 9110 section 7.6.3: "1.1 sessiond-1a2b...").
bool ViaNames(const HeaderList& headers, std::string_view pseudonym);

}  // namespace sessiond
