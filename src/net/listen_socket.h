// Listening sockets.
#pragma once

#include <vector>

#include "config/config.h"
#include "base/status.h"

namespace sessiond {

// A bound, listening, non-blocking, close-on-exec TCP socket. With
// `reuse_port` (SO_REUSEPORT) several sockets share the address and the
// kernel spreads connections across them: one per worker. IPv6 sockets are
// IPv6-only, so "[::]:8080" and "0.0.0.0:8080" are separate listeners.
// Errors read "ADDRESS: reason" ("127.0.0.1:8080: Address already in use").
Result<int> ListenSocket(const SocketAddress& address, bool reuse_port);

// Before the workers' SO_REUSEPORT sockets are bound: fails with
// "ADDRESS: Address already in use" when any other socket (another process's,
// SO_REUSEPORT or not) already listens on `address`. SO_REUSEPORT alone would
// let a second sessiond join the first one's port and take half of its
// connections (docs/OPERATIONS.md, Starting and stopping). The probe binds
// without SO_REUSEPORT and never listens, so it takes no connection.
Status CheckAddressFree(const SocketAddress& address);

// After binding: fails the same way when a listening socket on `address`
// that is not one of `own` (the fds this process bound) exists: another
// process started in the window between CheckAddressFree and our binds.
// Reads /proc/net/tcp{,6}; OK when they cannot be read.
Status CheckNoOtherListener(const SocketAddress& address, const std::vector<int>& own);

}  // namespace sessiond
