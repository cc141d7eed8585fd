// redis.url: where the redis store connects, and how to show that without the
// password. Internal to src/config/.
//
//   redis://[[user]:password@]host[:port][/db]   port 6379, db 0 by default;
//                                                host may be [v6]
//   rediss://...                                 the same, over TLS
//   unix:///abs/path.sock[?db=N][&password=P]
//
// User and password are percent-decoded (write '@' as %40, ':' as %3A).
#pragma once

#include <string>

#include "config/config.h"
#include "base/status.h"

namespace sessiond {
namespace config_internal {

// Fills the connection fields of *out (rediss, unix_socket, host, port,
// socket_path, username, password, db); leaves url, key_prefix, timeout and on_error alone.
// The message of an error never contains any part of the URL.
Status ParseRedisUrl(const std::string& url, RedisConfig* out);

// The URL rebuilt from the parsed fields with the password as "***".
std::string MaskedRedisUrl(const RedisConfig& redis);

}  // namespace config_internal
}  // namespace sessiond
