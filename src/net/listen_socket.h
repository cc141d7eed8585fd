// Listening sockets.
#pragma once

#include "config/config.h"
#include "base/status.h"

namespace sessiond {

// A bound, listening, non-blocking, close-on-exec TCP socket. With
// `reuse_port` (SO_REUSEPORT) several sockets share the address and the
// kernel spreads connections across them: one per worker. IPv6 sockets are
// IPv6-only, so "[::]:8080" and "0.0.0.0:8080" are separate listeners.
Result<int> ListenSocket(const SocketAddress& address, bool reuse_port);

}  // namespace sessiond
