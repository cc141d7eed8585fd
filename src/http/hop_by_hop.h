// Header rewriting at the proxy boundary, both directions.
#pragma once

#include <string_view>

#include "http/headers.h"

namespace sessiond {

// Removes the hop-by-hop fields (RFC 9110 section 7.6.1): Connection and every
// field it names, Keep-Alive, TE, Trailer, Upgrade, Proxy-*; and the framing
// fields (Transfer-Encoding, Content-Length), which the exchange writes itself
// after re-framing the body. A Connection token naming Host is ignored: Host
// is end-to-end and required. Called before the session step adds its
// headers, so a client's "Connection: X-Session-Data" cannot remove them.
void RemoveHopByHop(HeaderList* headers);

// The forwarding headers (X-Forwarded-*, Forwarded) are set by
// ApplyForwarding (http/forwarding.h).

}  // namespace sessiond
