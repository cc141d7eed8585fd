// Addresses in the config: listen addresses (numeric, resolved without DNS)
// and the upstream URL (host names resolved once, at load).
// Internal to src/config/.
//
// Errors are Status::Invalid with a message that has no file position and no
// key name: the caller adds both. Messages never repeat the whole input (an
// upstream URL with user info could carry a password).
#pragma once

#include <string>

#include "config/config.h"
#include "base/status.h"

namespace sessiond {
namespace config_internal {

// "A.B.C.D:port", "[v6]:port" or "localhost:port" (= 127.0.0.1); port 1..65535.
Result<SocketAddress> ParseListenAddress(const std::string& text);

// "http://host[:port][/]" or "https://host[:port][/]" (port 80 or 443 by
// default): host is a name (getaddrinfo, first answer), an IPv4
// literal or a [v6] literal; "localhost" is 127.0.0.1 as for listen addresses,
// so an IPv4-only backend is not missed when ::1 happens to be listed first.
Result<UpstreamConfig> ParseUpstreamUrl(const std::string& text);

// "http://host[:port][/prefix]" for http_store.url: as ParseUpstreamUrl, plus
// an optional path prefix of unreserved characters and '/' (no "." or ".."
// segments, no query or fragment), kept without its trailing '/'. Fills
// host, port, path_prefix and address.
Result<HttpStoreConfig> ParseHttpStoreUrl(const std::string& text);

// The numeric form of an address: "127.0.0.1:8080" or "[::1]:8080".
std::string FormatSocketAddress(const SocketAddress& address);

// Splits "host:port" or "[v6]:port" (port may be absent when default_port is
// nonzero). On success `host` has no brackets and `bracketed` tells whether it
// had them. Shared with the redis URL parser.
Status SplitHostPort(const std::string& text, uint16_t default_port, std::string* host,
                     bool* bracketed, uint16_t* port);

// Letters, digits, '-', '.', '_': a host name that needs no escaping anywhere.
bool IsPlausibleHostName(const std::string& host);

}  // namespace config_internal
}  // namespace sessiond
