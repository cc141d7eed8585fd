// ProxyHost: what the proxy layer needs from the thread that runs it.
//
// A ClientConnection and its Exchanges live on one event loop and reach the
// rest of the process only through this interface (implemented by
// server/Worker), so the proxy layer never depends on how threads are wired.
// Every call is made on the host's loop thread.
#pragma once

#include <event2/event.h>

#include <cstddef>
#include <memory>
#include <string_view>

#include "config/config.h"

namespace sessiond {

namespace net {
class BlockPool;
class TlsClientContext;
}
class ClientConnection;
class ExchangeFilterFactory;
class ExchangePool;
class TunnelRegistry;
class UpstreamPool;
struct Metrics;

class ProxyHost {
 public:
  // Characters of a generated request id.
  static constexpr size_t kRequestIdLength = 32;

  virtual ~ProxyHost() = default;

  virtual event_base* base() const = 0;
  // The configuration new requests use (replaced on reload).
  virtual const std::shared_ptr<const Config>& config() const = 0;
  // The loop's buffer memory; outlives every connection of the loop.
  virtual net::BlockPool& blocks() = 0;
  // Exchanges (with their heads and header lists) for reuse across requests
  // and connections, so an idle connection holds none.
  virtual ExchangePool& exchanges() = 0;
  virtual UpstreamPool& pool() = 0;
  // TLS to the upstream (an https:// upstream), or null (replaced on reload).
  virtual const std::shared_ptr<net::TlsClientContext>& upstream_tls() const = 0;
  // The session step, or null for none. An exchange keeps a copy of the
  // pointer until it has recycled its filter (a reload may replace it).
  virtual const std::shared_ptr<ExchangeFilterFactory>& filters() = 0;
  // May be null (tests).
  virtual Metrics* metrics() = 0;
  // Graceful shutdown has begun: finish the current exchange, then close.
  virtual bool shutting_down() const = 0;
  // Writes a fresh request id (kRequestIdLength hex characters, unique
  // within the process) to `out`.
  virtual void NextRequestId(char* out) = 0;
  // Every live client connection is registered, so shutdown can reach it.
  // The host may keep its own index in the connection (host_slot).
  virtual void Register(ClientConnection* conn) = 0;
  virtual void Unregister(ClientConnection* conn) = 0;
  // The loop's open tunnels (upgraded connections).
  virtual TunnelRegistry& tunnels() = 0;
  // The Via entry this process adds to forwarded requests, "1.1 sessiond-"
  // and 16 random hex digits, the same in every worker (docs/HTTP.md, Loops).
  virtual std::string_view via() const = 0;
};

}  // namespace sessiond
