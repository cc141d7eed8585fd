// SentinelRouter: the redis store on a master found through Redis Sentinel
// (docs/CONFIGURATION.md, redis.sentinel), following the Sentinel client
// rules:
//
// - Resolve: ask the sentinels in turn (SENTINEL get-master-addr-by-name);
//   the first that answers moves to the front of the list for next time.
// - Check: the data connection's handshake asks ROLE and refuses a node
//   that is not a master (a sentinel may name a demoted one for a moment).
// - Re-resolve: when the data connection is lost or refused, when a command
//   is answered READONLY (the master was demoted under us), and when a
//   sentinel announces +switch-master for our master: one connection per
//   worker stays subscribed to that channel on the first sentinel.
//
// A new master takes the new commands at once; commands already on the old
// one finish there (a write it refuses with READONLY is sent again to the
// new master: it did not run). Commands that arrive while no master is
// known wait for the resolution (bounded by the sentinels' answers, each
// within redis.timeout); when every sentinel fails they fail, and until
// the next attempt (backoff 50 ms doubling to 2 s) new ones fail at once.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "store/redis_router.h"

namespace sessiond {

class SentinelRouter final : public RedisRouter,
                             private RedisLink::Observer,
                             private RedisConnection::Listener {
 public:
  SentinelRouter(const RedisConfig& config, const RedisEnv& env);
  ~SentinelRouter() override;

  void Execute(std::string_view key, RedisCommand command, uint32_t flags, Callback cb) override;
  void PingAll(std::function<void(Status)> cb) override;
  bool ready() const override { return data_.ready(); }

 private:
  struct Request {
    RedisCommand command;
    uint32_t flags = 0;
    Callback cb;
    int attempts = 0;
    Clock::time_point started;
  };
  using RequestPtr = std::shared_ptr<Request>;

  void Send(RequestPtr req);
  void OnReply(const RequestPtr& req, const Status& st, redisReply* r);
  bool CanRetry(const Request& req) const;
  void Finish(const RequestPtr& req, const Status& st, redisReply* r);
  void FailWaiting(const Status& why);
  void DispatchWaiting();

  // Resolution.
  void Resolve();         // now, or after the backoff when one just ran
  void StartResolve();
  void AskNextSentinel();
  void OnMasterAddress(size_t index, const Status& st, redisReply* r);
  void Resolved(const RedisEndpoint& master, size_t index);
  void SwitchTo(const RedisEndpoint& master, const char* how);
  void Subscribe();
  RedisConnection::Options SentinelOptions(const RedisEndpoint& sentinel) const;
  void Bury(std::unique_ptr<RedisConnection> conn);  // frees it from the loop

  // RedisLink::Observer (the data link)
  void OnLinkDown(RedisLink* link, const Status& why) override;
  // RedisConnection::Listener (sentinel connections)
  void OnReady(RedisConnection* conn) override;
  void OnClosed(RedisConnection* conn, const Status& why) override;
  void OnPush(RedisConnection* conn, redisReply* message) override;

  static void OnResolveTimer(void* arg);
  static void OnSubscribeTimer(void* arg);
  static void OnBuryEvent(void* arg);

  const RedisConfig config_;
  RedisEnv env_;
  DeferredCalls deferred_;
  std::vector<RedisEndpoint> sentinels_;  // the one that answered last first
  RedisLink data_;
  bool have_master_ = false;

  bool resolving_ = false;
  size_t asked_ = 0;  // sentinels asked in this round
  Status resolve_error_;
  bool resolve_tls_failed_ = false;  // resolve_error_ is a TLS failure (logged at error)
  Clock::time_point last_resolve_{};
  std::chrono::milliseconds backoff_ = RedisLink::kMinBackoff;
  std::unique_ptr<RedisConnection> query_;  // the sentinel being asked
  std::unique_ptr<RedisConnection> sub_;    // subscribed to +switch-master
  std::string sub_node_;                    // its sentinel, for metrics
  int sub_state_ = RedisMetrics::kConnecting;
  std::deque<RequestPtr> waiting_;          // for a master

  std::vector<std::unique_ptr<RedisConnection>> buried_;
  net::Timer resolve_timer_;
  net::Timer subscribe_timer_;
  net::Deferred bury_event_;
  bool* destroyed_ = nullptr;
};

}  // namespace sessiond
