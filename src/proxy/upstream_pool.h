// UpstreamPool: one worker's keep-alive connections to the upstream.
//
// An exchange takes a connection (idle from the pool, or a new one) and owns
// it exclusively while its request is in flight; afterwards it either hands
// it back with Release() (the response was complete and the upstream allows
// keep-alive) or destroys it. An idle connection that the upstream closes, or
// that sends unsolicited bytes, is closed and dropped from the pool; one idle
// longer than the idle timeout is closed by CloseExpired(), which the worker
// calls once a second (a timestamp per connection instead of a timer keeps
// event-loop work off the request path). Reading stays enabled the whole
// time; taking and releasing only swap the callbacks. Everything runs on the
// worker's loop thread; there are no locks.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace sessiond {

class UpstreamPool;

class UpstreamConnection {
 public:
  ~UpstreamConnection();  // closes the socket
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  bufferevent* bev() const { return bev_; }
  // True when this connection already carried a request: the upstream may have
  // closed it just as we reused it, so a failure before any response byte is
  // worth one retry on a fresh connection.
  bool reused() const { return requests_ > 0; }

 private:
  friend class UpstreamPool;
  UpstreamConnection() = default;
  static void IdleReadCb(bufferevent* bev, void* arg);
  static void IdleEventCb(bufferevent* bev, short what, void* arg);
  bufferevent* bev_ = nullptr;
  std::chrono::steady_clock::time_point idle_since_;
  UpstreamPool* pool_ = nullptr;
  std::string address_;  // the upstream it is connected to, as configured
  int requests_ = 0;
};

class UpstreamPool {
 public:
  // At most this many idle connections per worker; extras are closed.
  static constexpr size_t kMaxIdle = 128;

  explicit UpstreamPool(event_base* base) : base_(base) {}
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // The most recently used idle connection to `address`, or nullptr. Its
  // callbacks are cleared and reading is disabled; the caller installs its
  // own. Idle connections to any other address (the upstream before a
  // reload) are closed on the way.
  std::unique_ptr<UpstreamConnection> TakeIdle(const SocketAddress& address);

  // Starts a non-blocking connect. Returns nullptr when the connect fails
  // immediately. Completion is reported through the bufferevent's event
  // callback (BEV_EVENT_CONNECTED or an error), which the caller installs.
  std::unique_ptr<UpstreamConnection> Connect(const SocketAddress& address);

  // Hands a connection back for reuse.
  void Release(std::unique_ptr<UpstreamConnection> conn);

  // Closes connections idle for longer than `idle_timeout`.
  void CloseExpired(Millis idle_timeout);

  // Closes every idle connection (e.g. the upstream address changed on reload).
  void Clear();

  size_t idle_count() const { return idle_.size(); }

 private:
  friend class UpstreamConnection;
  void DropIdle(UpstreamConnection* conn);

  event_base* base_;
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;  // LIFO: back is the warmest
};

}  // namespace sessiond
