// Worker: one event-loop thread. It accepts on its own SO_REUSEPORT listener,
// owns every client connection it accepted, its upstream connection pool and
// its session store connection, and runs all their callbacks. Nothing owned
// by a worker is touched by another thread; the only cross-thread entry
// point is Post().
#pragma once

#include <event2/event.h>
#include <event2/listener.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "net/block.h"
#include "net/loop_env.h"
#include "net/task_queue.h"
#include "net/tls_context.h"
#include "proxy/exchange.h"
#include "proxy/proxy_host.h"
#include "proxy/tunnel.h"
#include "proxy/upstream_pool.h"
#include "session/session_filter.h"

namespace sessiond {

class ClientConnection;
struct Metrics;

// The TLS contexts a worker uses (built by the Server from the Config, shared
// by every worker, replaced together on reload). Either may be null.
struct WorkerTls {
  std::shared_ptr<const net::TlsServerContext> listener;  // TLS on the listener
  std::shared_ptr<net::TlsClientContext> upstream;        // an https:// upstream
};

class Worker : public ProxyHost {
 public:
  // At most this many spare buffer blocks (16 KiB each) per worker.
  static constexpr size_t kMaxFreeBlocks = 256;

  Worker(int index, std::shared_ptr<const Config> config, FilterFactoryMaker make_filters, Metrics* metrics,
         WorkerTls tls = {});
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Main thread, before Start(): creates the event base and binds the
  // listening socket (SO_REUSEPORT, so every worker has its own).
  Status Init();
  void Start();  // spawns the thread
  void Join();

  // Thread-safe: runs fn on this worker's loop thread.
  void Post(std::function<void()> fn);

  // Thread-safe. Stops accepting, closes idle connections, lets in-flight
  // exchanges finish; the loop exits when no connection remains.
  void BeginShutdown();
  // Thread-safe. Ends the loop now (after the shutdown deadline).
  void ForceStop();
  // Thread-safe. Installs a new config (and TLS contexts) for new requests
  // and connections; connections already open keep their TLS context.
  void Reload(std::shared_ptr<const Config> config, WorkerTls tls);

  // ---- loop-thread API ----
  int index() const { return index_; }
  event_base* base() const override { return base_; }
  const std::shared_ptr<const Config>& config() const override { return config_; }
  net::BlockPool& blocks() override { return *blocks_; }
  ExchangePool& exchanges() override { return *exchanges_; }
  UpstreamPool& pool() override { return *pool_; }
  const std::shared_ptr<net::TlsClientContext>& upstream_tls() const override { return tls_.upstream; }
  const std::shared_ptr<ExchangeFilterFactory>& filters() override { return filters_; }
  Metrics* metrics() override { return metrics_; }
  bool shutting_down() const override { return shutting_down_; }
  void Register(ClientConnection* conn) override;
  void Unregister(ClientConnection* conn) override;
  TunnelRegistry& tunnels() override { return *tunnels_; }
  std::string_view via() const override;
  // The listening socket (after Init), or -1.
  int listen_fd() const { return listener_ ? evconnlistener_get_fd(listener_) : -1; }
  size_t connection_count() const { return connections_.size(); }
  // Thread-safe: the loop has ended (clean drain or forced stop).
  bool exited() const { return exited_.load(std::memory_order_acquire); }
  // Thread-safe: the store answered the last call of a request or the last
  // readiness ping (about once a second), whichever came last
  // (docs/OPERATIONS.md, Readiness).
  bool ready() const { return ready_.load(std::memory_order_acquire); }

  // A fresh request id: 32 hex characters, unique within this process
  // (a random per-worker prefix and a counter; not a secret).
  void NextRequestId(char* out) override;
  // This worker's loop, for the session step and its store.
  LoopEnv loop_env();

 private:
  static void AcceptCb(evconnlistener* listener, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
  static void TickCb(evutil_socket_t, short, void* arg);
  static void AcceptErrorCb(evconnlistener* listener, void* arg);
  static void ResumeAcceptCb(evutil_socket_t, short, void* arg);
  void OnTick();
  void SizePools();
  void DoShutdown();
  void MaybeExit();

  const int index_;
  std::shared_ptr<const Config> config_;
  WorkerTls tls_;
  FilterFactoryMaker make_filters_;
  Metrics* metrics_;
  event_base* base_ = nullptr;
  evconnlistener* listener_ = nullptr;
  std::unique_ptr<TaskQueue> tasks_;
  event* tick_ = nullptr;
  event* resume_accept_ = nullptr;  // re-enables accepting after fd exhaustion
  int64_t last_accept_warning_ = 0;
  char request_id_prefix_hex_[16] = {};  // random, per worker
  uint64_t request_id_counter_ = 0;
  std::atomic<bool> ready_{false};
  // Store outcomes reported by requests (loop thread only): a ping sent
  // before the latest of them is older news and does not override it.
  uint64_t store_reports_ = 0;
  // The most connections at once during the previous tick and this one: the
  // spare pools are sized to it (SizePools), so they outlive a dip of the
  // connection count shorter than a tick or two (clients reconnecting).
  size_t connection_peaks_[2] = {};
  // Destroyed in this order, after the connections: exchanges and upstream
  // connections hold blocks, so the block pool goes last.
  std::unique_ptr<TunnelRegistry> tunnels_;  // after filters_: a late session check finds it gone
  std::unique_ptr<net::BlockPool> blocks_;
  std::unique_ptr<ExchangePool> exchanges_;
  std::unique_ptr<UpstreamPool> pool_;
  std::shared_ptr<ExchangeFilterFactory> filters_;
  // Every live connection, in no order; each knows its index (host_slot),
  // so both registering and unregistering are O(1) and, once the vector has
  // grown to the peak, allocate nothing.
  std::vector<ClientConnection*> connections_;
  bool shutting_down_ = false;
  std::thread thread_;
  std::atomic<bool> exited_{false};
};

}  // namespace sessiond
