// RedisTls: the TLS of the redis store's connections (docs/CONFIGURATION.md,
// redis.tls), on sessiond's own TLS transport (net/tls_context.h).
//
// Every connection is verified against the name it is meant to reach:
// redis.tls.server_name when set, otherwise the host of the node as sessiond
// connects to it (redis.url's host, a sentinel's address, the master a
// sentinel names, a node of a cluster's slot map or of a redirect), checked
// against the certificate's DNS names, or its IP addresses for an address.
// A net::TlsClientContext verifies one name, so there is one context per
// name, made on first use and kept: it also keeps the node's latest TLS
// session, so a reconnect resumes instead of running a full handshake.
// No ALPN is offered (Redis has no protocol name to offer; "http/1.1" could
// mislead a TLS proxy in front of it).
//
// One RedisTls belongs to one store (one worker); a reload makes a new store
// and so a new RedisTls from the new files. Thread-safe all the same.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "base/status.h"
#include "config/config.h"
#include "net/tls_context.h"

namespace sessiond {

class RedisTls {
 public:
  // At most this many names keep a context; past it the table starts
  // afresh (a cluster that announced that many hosts; connections already
  // made keep theirs).
  static constexpr size_t kMaxContexts = 256;

  // Builds the first context (for redis.tls.server_name, or for the URL's
  // host), so an unusable CA bundle or key pair fails here, at startup.
  static Result<std::shared_ptr<RedisTls>> Create(const ClientTlsConfig& config, const std::string& first_host);
  // As Create, but unchecked: a context that cannot be made fails the
  // connections that need it (ContextFor's error).
  static std::shared_ptr<RedisTls> New(const ClientTlsConfig& config);

  // The context that verifies `host` (a node's host as sessiond connects to
  // it), or redis.tls.server_name when that is set.
  Result<std::shared_ptr<net::TlsClientContext>> ContextFor(const std::string& host);

  // Contexts made so far (for tests).
  size_t contexts() const;

 private:
  explicit RedisTls(const ClientTlsConfig& config);

  net::TlsClientOptions options_;  // server_name: the fixed name, or empty
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<net::TlsClientContext>> by_name_;
};

}  // namespace sessiond
