// UpstreamPool: one worker's keep-alive connections to the upstream.
//
// An exchange takes a connection (idle from the pool, or a new one) and owns
// it exclusively while its request is in flight; afterwards it either hands
// it back with Release() (the response was complete and the upstream allows
// keep-alive) or destroys it. Reading stays enabled the whole time: an idle
// connection that the upstream closes, resets or writes to (anything it sent
// would be mistaken for the next response) is closed and dropped at once.
//
// How many stay idle follows the load, so connections are reused however
// many requests are in flight (docs/PERFORMANCE.md): the cap on idle
// connections is the highest number in flight at once during the last
// kPeakWindow ticks (at least kMinIdle). A fixed cap below the number in
// flight would close connections after every response and open new ones for
// the next requests: a connect per request and a TIME-WAIT storm. Tick(),
// once a second from the worker, closes the idle connections over the cap
// and those idle longer than the idle timeout (a timestamp per connection,
// checked from the oldest: no timer per connection). Everything runs on the
// worker's loop thread; there are no locks.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "config/config.h"
#include "net/connection.h"
#include "net/tls_context.h"

namespace sessiond {

class UpstreamPool;
struct Metrics;

class UpstreamConnection final : private net::Connection::Handler {
 public:
  ~UpstreamConnection();  // closes the socket
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  net::Connection& conn() { return conn_; }
  // True when this connection already carried a request: the upstream may have
  // closed it just as we reused it, so a failure before any response byte is
  // worth one retry on a fresh connection.
  bool reused() const { return requests_ > 0; }

 private:
  friend class UpstreamPool;
  UpstreamConnection(UpstreamPool* pool, event_base* base, net::BlockPool* blocks);

  // While idle in the pool, any event means the connection is unusable.
  void OnReadable(net::Connection*) override;
  void OnPeerEof(net::Connection*) override;
  void OnWritable(net::Connection*) override {}
  void OnError(net::Connection*, int) override;

  net::Connection conn_;
  UpstreamPool* pool_;
  std::string address_;  // the upstream it is connected to, as configured
  int requests_ = 0;
  bool idle_ = false;
  std::chrono::steady_clock::time_point idle_since_;
  UpstreamConnection* prev_ = nullptr;  // the idle list, oldest first
  UpstreamConnection* next_ = nullptr;
};

class UpstreamPool {
 public:
  static constexpr size_t kMinIdle = 8;
  static constexpr int kPeakWindow = 10;

  UpstreamPool(event_base* base, net::BlockPool* blocks, Metrics* metrics)
      : base_(base), blocks_(blocks), metrics_(metrics) {}
  ~UpstreamPool();  // closes the idle connections; none may be in use
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // The most recently used idle connection to `address`, or nullptr. Its
  // handler is cleared (the caller installs its own); reading stays enabled.
  // Idle connections to any other address (the upstream before a reload) are
  // closed on the way.
  std::unique_ptr<UpstreamConnection> TakeIdle(const SocketAddress& address);

  // Starts a non-blocking connect (reading enabled), with a TLS handshake
  // after it when `tls` is set. Returns nullptr, with errno saying why, when
  // the connect fails at once; otherwise the outcome is reported to the
  // handler the caller installs (OnConnected, once any handshake has
  // completed, or OnError).
  std::unique_ptr<UpstreamConnection> Connect(const SocketAddress& address,
                                              const std::shared_ptr<net::TlsClientContext>& tls = nullptr);

  // Hands a connection back for reuse (its buffers must be empty).
  void Release(std::unique_ptr<UpstreamConnection> conn);

  // Once a second: advances the peak window, then closes idle connections
  // over the cap and those idle for longer than `idle_timeout`.
  void Tick(Millis idle_timeout);

  // Closes every idle connection (e.g. the upstream address changed on reload).
  void Clear();

  size_t idle_count() const { return idle_count_; }
  size_t in_use() const { return in_use_; }
  // The current cap on idle connections.
  size_t idle_cap() const;

 private:
  friend class UpstreamConnection;
  void Link(UpstreamConnection* c);    // appends to the idle list (newest)
  void Unlink(UpstreamConnection* c);
  void DropIdle(UpstreamConnection* c);  // unlinks and destroys
  void NoteInUse();

  event_base* base_;
  net::BlockPool* blocks_;
  Metrics* metrics_;
  UpstreamConnection* oldest_ = nullptr;
  UpstreamConnection* newest_ = nullptr;
  size_t idle_count_ = 0;
  size_t in_use_ = 0;
  size_t peaks_[kPeakWindow] = {};  // most in use at once, per tick
  int peak_slot_ = 0;
};

}  // namespace sessiond
