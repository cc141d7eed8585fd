// Where the redis store's commands go: one Redis (redis.url), the master
// that Redis Sentinel names (redis.sentinel), or the master of each key's
// slot in Redis Cluster (redis.cluster). A RedisRouter belongs to one worker
// (one event loop) and owns that worker's connections.
//
// The store hands a router whole commands with the key they touch; the
// router picks the node, follows the topology (redirects, failovers), and
// answers with the reply or a failure. What it retries: a command Redis
// answered without running it (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, READONLY,
// LOADING, MASTERDOWN) and a command that never left sessiond; after a
// connection was lost with the command on it, only a command marked
// kIdempotent (it may have run). Every command is bounded by redis.timeout
// per attempt and by kMaxAttempts attempts (docs/CONFIGURATION.md,
// redis.cluster).
//
// Callbacks never run inside Execute(); they run from the event loop, once,
// unless the router is destroyed first (then they are dropped).
#pragma once

#include <event2/event.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "net/block.h"
#include "net/timer.h"
#include "observe/metrics.h"
#include "store/redis_connection.h"

namespace sessiond {

// What a router needs from its worker.
struct RedisEnv {
  event_base* base = nullptr;
  net::BlockPool* pool = nullptr;
  RedisMetrics* metrics = nullptr;  // may be null (tests)
  std::shared_ptr<RedisTls> tls;    // set: every connection speaks TLS (redis.tls)
};

class RedisRouter {
 public:
  using Callback = RedisConnection::ReplyCallback;
  using Clock = std::chrono::steady_clock;

  // Execute() flags.
  static constexpr uint32_t kIdempotent = 1;  // may run twice: resent after a lost connection
  static constexpr uint32_t kWrite = 2;       // WAIT confirms it (redis.wait_replicas)

  // Attempts of one command: the first and its retries and redirects.
  static constexpr int kMaxAttempts = 6;

  virtual ~RedisRouter() = default;
  RedisRouter(const RedisRouter&) = delete;
  RedisRouter& operator=(const RedisRouter&) = delete;

  // Runs `command` (RESP) on the node that serves `key`. The reply may be
  // an error reply other than the ones the router handles itself.
  virtual void Execute(std::string_view key, RedisCommand command, uint32_t flags, Callback cb) = 0;
  // PING on every node that serves keys (one for a single Redis); OK when
  // all answer. For /readyz.
  virtual void PingAll(std::function<void(Status)> cb) = 0;
  // Connected to (every known) master and past the handshake.
  virtual bool ready() const = 0;

  // The router for config.redis: cluster, sentinel or one Redis.
  static std::unique_ptr<RedisRouter> Create(const RedisConfig& config, const RedisEnv& env);

 protected:
  RedisRouter() = default;
};

// Connection options shared by every data node of a config (credentials,
// timeouts, WAIT); the endpoint and role checks are filled in per node.
RedisConnection::Options DataNodeOptions(const RedisConfig& config);

// Runs callbacks from the event loop, in order: failures found inside
// Execute() (no connection, no route) must not run in the caller's stack.
class DeferredCalls {
 public:
  explicit DeferredCalls(event_base* base) : event_(base, &DeferredCalls::Run, this) {}
  ~DeferredCalls() {
    if (destroyed_) *destroyed_ = true;
  }
  void Add(std::function<void()> fn) {
    calls_.push_back(std::move(fn));
    event_.Schedule();
  }

 private:
  static void Run(void* arg);
  net::Deferred event_;
  std::deque<std::function<void()>> calls_;
  bool* destroyed_ = nullptr;
};

// RedisLink: the connection to one node, kept up. It connects on demand and,
// when `auto_reconnect`, after a failure on its own, with backoff (50 ms
// doubling to 2 s). While there is no connection a command fails at once,
// except that one sent at least 50 ms after the last attempt starts a new
// attempt and waits on it (so the first request after Redis returns
// usually succeeds, and a dead Redis is not hammered). One log line per
// distinct failure, one when it recovers. The node's connection state is
// counted in RedisMetrics.
class RedisLink final : private RedisConnection::Listener {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kMinBackoff{50};
  static constexpr std::chrono::milliseconds kMaxBackoff{2000};

  class Observer {
   public:
    virtual void OnLinkReady(RedisLink* link) {}
    // The connection failed (after failing its commands); the link may be
    // destroyed here.
    virtual void OnLinkDown(RedisLink* link, const Status& why) {}

   protected:
    ~Observer() = default;
  };

  // `role` labels the node in metrics ("master", "sentinel").
  RedisLink(const RedisEnv& env, RedisConnection::Options options, const char* role, Observer* observer,
            bool auto_reconnect);
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // True when a command may be sent now: there is a connection, or one
  // was just started because the backoff allows. False: last_error() says
  // why not (fail fast).
  bool EnsureConnection();
  // Sends on the connection; EnsureConnection() must have said true.
  void Send(const RedisCommand& command, RedisConnection::ReplyCallback cb, uint32_t flags, bool asking = false);
  // Starts connecting now when there is no connection.
  void Connect();
  // Points the link at another node (a new master). The old connection
  // finishes the commands already on it and then closes.
  void Retarget(const RedisEndpoint& endpoint);
  // Closes the connection (failing its commands with `why`), resets the backoff.
  void Reset(const Status& why);

  bool ready() const { return conn_ && conn_->ready(); }
  bool has_connection() const { return conn_ != nullptr; }
  size_t pending() const { return conn_ ? conn_->pending() : 0; }
  const RedisEndpoint& endpoint() const { return options_.endpoint; }
  // Why the last attempt failed ("redis: not connected" before any).
  Status last_error() const;
  // True when the handshake found a cluster node (redis.url alone at a cluster).
  bool cluster_mismatch() const { return cluster_mismatch_; }

 private:
  void OnReady(RedisConnection* conn) override;
  void OnClosed(RedisConnection* conn, const Status& why) override;
  void StartConnection();
  void NoteFailure(const Status& why, bool tls_failed);
  void SetState(int state);
  void ReapDraining();
  static void OnReconnectTimer(void* arg);
  static void OnReapTimer(void* arg);

  RedisEnv env_;
  RedisConnection::Options options_;
  const char* role_;
  Observer* observer_;
  const bool auto_reconnect_;
  std::unique_ptr<RedisConnection> conn_;
  std::vector<std::unique_ptr<RedisConnection>> draining_;  // old masters finishing their commands
  Clock::time_point last_attempt_{};
  std::chrono::milliseconds backoff_ = kMinBackoff;
  Status last_error_;
  std::string last_logged_;  // the failure last logged; empty while healthy
  std::string metric_node_;  // the node the state gauge counts us under
  int metric_state_ = -1;
  bool cluster_mismatch_ = false;
  net::Timer reconnect_timer_;
  net::Timer reap_timer_;
};

// One Redis at redis.url.
class StandaloneRouter final : public RedisRouter, private RedisLink::Observer {
 public:
  StandaloneRouter(const RedisConfig& config, const RedisEnv& env);
  ~StandaloneRouter() override;

  void Execute(std::string_view key, RedisCommand command, uint32_t flags, Callback cb) override;
  void PingAll(std::function<void(Status)> cb) override;
  bool ready() const override { return link_.ready(); }

 private:
  void OnLinkDown(RedisLink* link, const Status& why) override;

  RedisEnv env_;
  DeferredCalls deferred_;
  RedisLink link_;
};

}  // namespace sessiond
