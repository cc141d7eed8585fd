// The forwarding headers sessiond sends upstream, and the client address it
// believes (docs/HTTP.md, "Forwarding and trusted proxies").
//
// From a peer that is not in trusted_proxies (every peer, by default), a
// request's X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host,
// X-Forwarded-Port and Forwarded fields are claims anyone can make: all are
// removed and sessiond writes its own (the peer's address, this listener's
// scheme, the request's Host, this listener's port; no Forwarded), and the
// client address is the peer's.
//
// From a trusted peer (a load balancer or TLS terminator in front of
// sessiond) they are kept: X-Forwarded-For gets the peer's address appended,
// and the client address is the rightmost X-Forwarded-For entry that is not
// itself trusted (every entry trusted: the leftmost; none: the peer), as
// nginx's real_ip_recursive does. A header that is malformed counts as absent:
// X-Forwarded-For then holds only the peer, a bad -Proto, -Host or -Port is
// replaced by sessiond's value, a bad Forwarded is removed; `malformed` names
// the first such header for the (debug, rate-limited) log.
//
// Pure: no I/O, no logging. The untrusted path allocates nothing (values go
// to the header list's arena).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/ip_address.h"
#include "http/headers.h"

namespace sessiond {

// At most this many X-Forwarded-For entries (over all its fields) are read
// from a trusted peer; a longer chain counts as malformed.
inline constexpr size_t kMaxForwardedFor = 64;

struct ForwardingInput {
  IpAddress peer;                                   // who connected to sessiond
  const std::vector<IpNetwork>* trusted = nullptr;  // trusted_proxies; null or empty: none
  std::string_view host;                            // the request's Host (absolute-form applied)
  std::string_view proto = "http";                  // this listener's scheme
  uint16_t port = 0;                                // this listener's port
};

struct ForwardingResult {
  bool peer_trusted = false;
  // The client address, in text form.
  char client[kMaxIpText] = {};
  size_t client_len = 0;
  // The first malformed header from a trusted peer ("X-Forwarded-For", ...), or null.
  const char* malformed = nullptr;
  // The scheme the client used, as far as sessiond can tell: "https" on a
  // TLS listener, a trusted peer's (valid) X-Forwarded-Proto in lower case,
  // else empty: a plain listener cannot tell (it may sit behind a TLS
  // terminator it does not trust). The same-origin rule of upgrades reads it
  // (http/upgrade.h). A static string.
  std::string_view scheme;

  std::string_view client_address() const { return std::string_view(client, client_len); }
};

// Rewrites the forwarding fields of `headers` (a request's, hop-by-hop fields
// already removed) and computes the client address.
void ApplyForwarding(HeaderList* headers, const ForwardingInput& in, ForwardingResult* out);

// Whether `address` falls in one of `networks`.
bool IsTrustedPeer(const std::vector<IpNetwork>& networks, const IpAddress& address);

// RFC 7239 section 4 syntax of one Forwarded field value: a list of elements,
// each a ';'-separated list of token=value pairs (value a token or a quoted
// string). OWS around ',' and ';' is tolerated. Exposed for tests.
bool IsValidForwarded(std::string_view value);

}  // namespace sessiond
