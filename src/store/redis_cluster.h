// ClusterRouter: the redis store on Redis Cluster (docs/CONFIGURATION.md,
// redis.cluster).
//
// Slot map: CLUSTER SLOTS from any node that answers (the known masters
// first, then the seeds), at start, every kRefreshInterval, and after a
// MOVED, a CLUSTERDOWN or a node failure, never more than once per
// kMinRefreshGap (a reshard answers MOVED for a whole range at once; one
// refresh learns it all).
//
// Routing: a command goes to the master of its key's slot (CRC16 of the
// hash tag, store/redis_protocol.h), over one lazily opened connection per
// master per worker. MOVED patches that slot at once and asks for a
// refresh; ASK sends ASKING and the command to the node named, without
// touching the map (the slot is migrating: only that key has moved);
// TRYAGAIN and CLUSTERDOWN (and READONLY, LOADING, MASTERDOWN of a node in
// a failover) are retried after kRetryDelay. A node that cannot be reached
// is retried after a refresh that routes the slot elsewhere, and fails at
// once when the refresh names it again (the cluster has not noticed yet).
// Every command has kMaxAttempts attempts and, after its first, retries only
// within redis.timeout of its start; a command that timed out is not
// retried (the node is hung: another try would only double the wait).
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "store/redis_router.h"

namespace sessiond {

class ClusterRouter final : public RedisRouter, private RedisLink::Observer {
 public:
  static constexpr std::chrono::milliseconds kRefreshInterval{5000};
  static constexpr std::chrono::milliseconds kMinRefreshGap{200};
  static constexpr std::chrono::milliseconds kRetryDelay{25};

  ClusterRouter(const RedisConfig& config, const RedisEnv& env);
  ~ClusterRouter() override;

  void Execute(std::string_view key, RedisCommand command, uint32_t flags, Callback cb) override;
  void PingAll(std::function<void(Status)> cb) override;
  // A slot map is loaded.
  bool ready() const override { return have_map_; }

 private:
  struct Node {
    RedisEndpoint endpoint;
    std::unique_ptr<RedisLink> link;
    bool in_map = false;  // a master in the current slot map
    bool seed = false;    // from redis.cluster.seeds: kept even when not in the map
  };
  struct Request {
    RedisCommand command;
    uint16_t slot = 0;
    uint32_t flags = 0;
    Callback cb;
    int attempts = 0;
    Clock::time_point started;
    bool asking = false;
    RedisEndpoint ask_target;
    Node* failed_node = nullptr;  // the node it could not reach (compared, never dereferenced)
    bool waited_for_slot = false;  // waited for a map after finding its slot unserved
    Status last_error;
  };
  using RequestPtr = std::shared_ptr<Request>;

  void Dispatch(RequestPtr req);
  void SendTo(Node* node, RequestPtr req);
  void OnReply(const RequestPtr& req, Node* node, const Status& st, redisReply* r);
  bool CanRetry(const Request& req) const;
  void WaitForMap(RequestPtr req, const Status& why);
  void RetryLater(RequestPtr req);
  void Finish(const RequestPtr& req, const Status& st, redisReply* r);

  Node* NodeFor(const RedisEndpoint& endpoint);
  void RequestRefresh();
  void StartRefresh();
  void TryNextCandidate();
  void OnSlots(Node* from, const Status& st, redisReply* r);
  void RefreshDone(const Status& st);
  void DropUnusedNodes();

  static void OnRefreshTimer(void* arg);
  static void OnPeriodicTimer(void* arg);
  static void OnRetryTimer(void* arg);

  const RedisConfig config_;
  RedisEnv env_;
  DeferredCalls deferred_;
  std::unordered_map<std::string, std::unique_ptr<Node>> nodes_;  // by RedisEndpoint::Text()
  std::vector<Node*> slots_;                                      // kClusterSlots; null: unknown
  bool have_map_ = false;
  std::unordered_set<std::string> replicas_;  // replicas in the current map (to see promotions)

  bool refreshing_ = false;
  bool refresh_again_ = false;  // asked for while one ran
  Clock::time_point last_refresh_start_{};
  std::vector<RedisEndpoint> candidates_;
  size_t next_candidate_ = 0;
  Status refresh_error_;
  std::deque<RequestPtr> waiting_;  // for the next slot map
  std::vector<std::function<void(Status)>> waiting_pings_;  // PingAll before the first map
  std::deque<std::pair<Clock::time_point, RequestPtr>> delayed_;  // TRYAGAIN and the like

  net::Timer refresh_timer_;   // a throttled refresh
  net::Timer periodic_timer_;  // kRefreshInterval
  net::Timer retry_timer_;     // delayed_
  bool* destroyed_ = nullptr;
};

}  // namespace sessiond
