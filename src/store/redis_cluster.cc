#include "store/redis_cluster.h"

#include <algorithm>

#include "base/log.h"

namespace sessiond {

namespace {

Status TooManyAttempts(const Status& last) {
  return Status::Unavailable("redis: gave up after " + std::to_string(RedisRouter::kMaxAttempts) +
                             " attempts (last: " + (last.ok() ? std::string("redirected") : last.message()) + ")");
}

}  // namespace

ClusterRouter::ClusterRouter(const RedisConfig& config, const RedisEnv& env)
    : config_(config),
      env_(env),
      deferred_(env.base),
      slots_(kClusterSlots, nullptr),
      refresh_timer_(env.base, &ClusterRouter::OnRefreshTimer, this),
      periodic_timer_(env.base, &ClusterRouter::OnPeriodicTimer, this),
      retry_timer_(env.base, &ClusterRouter::OnRetryTimer, this) {
  for (const RedisNodeAddress& seed : config.cluster->seeds) {
    RedisEndpoint ep;
    ep.host = seed.host;
    ep.port = seed.port;
    NodeFor(ep)->seed = true;
  }
  StartRefresh();
  periodic_timer_.Arm(kRefreshInterval);
}

ClusterRouter::~ClusterRouter() {
  if (destroyed_) *destroyed_ = true;
  // Links first: their connections drop the callbacks that hold requests.
  for (auto& [name, node] : nodes_) node->link.reset();
}

ClusterRouter::Node* ClusterRouter::NodeFor(const RedisEndpoint& endpoint) {
  const std::string name = endpoint.Text();
  auto it = nodes_.find(name);
  if (it != nodes_.end()) return it->second.get();
  auto node = std::make_unique<Node>();
  node->endpoint = endpoint;
  RedisConnection::Options options = DataNodeOptions(config_);
  options.endpoint = endpoint;
  options.db = 0;
  node->link = std::make_unique<RedisLink>(env_, std::move(options), "master",
                                           static_cast<RedisLink::Observer*>(this), /*auto_reconnect=*/false);
  Node* raw = node.get();
  nodes_.emplace(name, std::move(node));
  return raw;
}

// ------------------------------------------------------------ commands

void ClusterRouter::Execute(std::string_view key, RedisCommand command, uint32_t flags, Callback cb) {
  auto req = std::make_shared<Request>();
  req->command = std::move(command);
  req->slot = KeySlot(key);
  req->flags = flags;
  req->cb = std::move(cb);
  req->started = Clock::now();
  if (!have_map_) {
    // The first map is on its way (or is retried now): wait for it.
    waiting_.push_back(std::move(req));
    RequestRefresh();
    return;
  }
  Dispatch(std::move(req));
}

bool ClusterRouter::CanRetry(const Request& req) const {
  return req.attempts < kMaxAttempts && Clock::now() - req.started < config_.timeout;
}

void ClusterRouter::Dispatch(RequestPtr req) {
  Node* node = nullptr;
  if (req->asking) {
    node = NodeFor(req->ask_target);
  } else {
    node = slots_[req->slot];
    if (!node) {
      const Status why = Status::Unavailable("redis: no cluster node serves slot " + std::to_string(req->slot));
      if (!req->waited_for_slot) {
        req->waited_for_slot = true;
        WaitForMap(std::move(req), why);
      } else {
        deferred_.Add([this, req, why] { Finish(req, why, nullptr); });
      }
      return;
    }
  }
  if (!node->link->EnsureConnection()) {
    // Not sent. After a refresh that still names this node, fail now: the
    // cluster has not noticed the node is gone.
    const Status why = node->link->last_error();
    if (req->failed_node == node || !CanRetry(*req)) {
      deferred_.Add([this, req, why] { Finish(req, why, nullptr); });
      return;
    }
    req->failed_node = node;
    WaitForMap(std::move(req), why);
    return;
  }
  SendTo(node, std::move(req));
}

void ClusterRouter::SendTo(Node* node, RequestPtr req) {
  const bool asking = req->asking;
  const RedisCommand& command = req->command;
  const uint32_t flags = req->flags;
  node->link->Send(command,
                   [this, req, node](const Status& st, redisReply* r) { OnReply(req, node, st, r); }, flags,
                   asking);
}

void ClusterRouter::OnReply(const RequestPtr& req, Node* node, const Status& st, redisReply* r) {
  ++req->attempts;
  RedisMetrics* m = env_.metrics;
  if (!st.ok()) {
    // The connection failed with the command on it.
    RequestRefresh();
    req->failed_node = node;
    if ((req->flags & kIdempotent) && st.code() != Status::Code::kTimeout && CanRetry(*req)) {
      WaitForMap(req, st);
    } else {
      Finish(req, st, nullptr);
    }
    return;
  }
  if (!IsErrorReply(r)) {
    Finish(req, st, r);
    return;
  }
  if (ErrorIs(r, "MOVED") || ErrorIs(r, "ASK")) {
    std::optional<Redirect> redirect = ParseRedirect(r, node->endpoint);
    if (!redirect) {
      Finish(req, Status::Unavailable("redis: bad redirect from " + node->endpoint.Text() + ": " + ReplyText(r)),
             nullptr);
      return;
    }
    req->last_error = Status::Unavailable("redis: " + ReplyText(r));
    if (!CanRetry(*req)) {
      Finish(req, TooManyAttempts(req->last_error), nullptr);
      return;
    }
    if (redirect->ask) {
      if (m) Inc(m->redirects_ask);
      req->asking = true;
      req->ask_target = redirect->target;
    } else {
      if (m) Inc(m->redirects_moved);
      Node* target = NodeFor(redirect->target);
      target->in_map = true;
      slots_[redirect->slot] = target;
      req->asking = false;
      RequestRefresh();
    }
    Dispatch(req);
    return;
  }
  const bool tryagain = ErrorIs(r, "TRYAGAIN");
  const bool clusterdown = ErrorIs(r, "CLUSTERDOWN");
  // A master demoted in a failover (READONLY), a replica still loading, a
  // master whose link to its own master is down: none ran the command.
  const bool failover = ErrorIs(r, "READONLY") || ErrorIs(r, "LOADING") || ErrorIs(r, "MASTERDOWN");
  if (tryagain || clusterdown || failover) {
    if (m) Inc(tryagain ? m->retries_tryagain : clusterdown ? m->retries_clusterdown : m->retries_readonly);
    req->last_error = Status::Unavailable("redis: " + ReplyText(r));
    if (!CanRetry(*req)) {
      Finish(req, req->last_error, nullptr);
      return;
    }
    if (!tryagain) RequestRefresh();
    req->asking = false;
    RetryLater(req);
    return;
  }
  Finish(req, st, r);
}

void ClusterRouter::WaitForMap(RequestPtr req, const Status& why) {
  req->last_error = why;
  req->asking = false;
  waiting_.push_back(std::move(req));
  RequestRefresh();
}

void ClusterRouter::RetryLater(RequestPtr req) {
  delayed_.emplace_back(Clock::now() + kRetryDelay, std::move(req));
  if (!retry_timer_.armed()) retry_timer_.Arm(kRetryDelay);
}

void ClusterRouter::Finish(const RequestPtr& req, const Status& st, redisReply* r) {
  Callback cb = std::move(req->cb);
  if (cb) cb(st, r);  // last: it may destroy the router
}

void ClusterRouter::OnRetryTimer(void* arg) {
  auto* self = static_cast<ClusterRouter*>(arg);
  const Clock::time_point now = Clock::now();
  std::vector<RequestPtr> due;
  while (!self->delayed_.empty() && self->delayed_.front().first <= now + std::chrono::milliseconds(1)) {
    due.push_back(std::move(self->delayed_.front().second));
    self->delayed_.pop_front();
  }
  if (!self->delayed_.empty()) {
    self->retry_timer_.ArmVaried(
        std::chrono::duration_cast<std::chrono::milliseconds>(self->delayed_.front().first - now));
  }
  bool destroyed = false;
  self->destroyed_ = &destroyed;
  for (RequestPtr& req : due) {
    self->Dispatch(std::move(req));
    if (destroyed) return;
  }
  self->destroyed_ = nullptr;
}

void ClusterRouter::PingAll(std::function<void(Status)> cb) {
  if (!have_map_) {
    // Answered once the map is in (or cannot be had).
    waiting_pings_.push_back(std::move(cb));
    RequestRefresh();
    return;
  }
  // One PING per master, sent along its slot's route; the answer is the
  // first failure, or OK when all answered.
  struct Tally {
    size_t left = 0;
    Status first_failure;
    std::function<void(Status)> cb;
  };
  auto tally = std::make_shared<Tally>();
  tally->cb = std::move(cb);
  std::vector<uint16_t> routes;
  std::unordered_set<Node*> seen;
  for (int slot = 0; slot < kClusterSlots; ++slot) {
    Node* n = slots_[slot];
    if (n && seen.insert(n).second) routes.push_back(static_cast<uint16_t>(slot));
  }
  tally->left = routes.size();
  static const RedisCommand kPing = RedisCommand::Format({"PING"});
  for (uint16_t slot : routes) {
    auto req = std::make_shared<Request>();
    req->command = kPing;
    req->slot = slot;
    req->flags = kIdempotent;
    req->started = Clock::now();
    req->cb = [tally](const Status& st, redisReply* r) {
      Status result = st;
      if (st.ok() && IsErrorReply(r)) result = Status::Unavailable("redis: " + ReplyText(r));
      if (!result.ok() && tally->first_failure.ok()) tally->first_failure = result;
      if (--tally->left == 0) tally->cb(tally->first_failure);
    };
    Dispatch(std::move(req));
  }
}

// ------------------------------------------------------------ slot map

void ClusterRouter::RequestRefresh() {
  if (refreshing_) {
    refresh_again_ = true;
    return;
  }
  const auto since = Clock::now() - last_refresh_start_;
  if (since >= kMinRefreshGap) {
    StartRefresh();
  } else if (!refresh_timer_.armed()) {
    refresh_timer_.ArmVaried(std::chrono::duration_cast<std::chrono::milliseconds>(kMinRefreshGap - since) +
                             std::chrono::milliseconds(1));
  }
}

void ClusterRouter::StartRefresh() {
  if (refreshing_) return;
  refreshing_ = true;
  refresh_again_ = false;
  last_refresh_start_ = Clock::now();
  refresh_error_ = Status::OK();
  // Masters already connected first, then the other masters, then the seeds.
  candidates_.clear();
  for (int pass = 0; pass < 3; ++pass) {
    for (const auto& [name, node] : nodes_) {
      const bool ready = node->link->ready();
      const bool pick = pass == 0 ? node->in_map && ready : pass == 1 ? node->in_map && !ready : !node->in_map;
      if (pick) candidates_.push_back(node->endpoint);
    }
  }
  next_candidate_ = 0;
  TryNextCandidate();
}

void ClusterRouter::TryNextCandidate() {
  static const RedisCommand kSlots = RedisCommand::Format({"CLUSTER", "SLOTS"});
  while (next_candidate_ < candidates_.size()) {
    Node* node = NodeFor(candidates_[next_candidate_++]);
    if (!node->link->EnsureConnection()) {
      refresh_error_ = node->link->last_error();
      continue;
    }
    node->link->Send(kSlots, [this, node](const Status& st, redisReply* r) { OnSlots(node, st, r); },
                     kIdempotent);
    return;
  }
  RefreshDone(refresh_error_.ok() ? Status::Unavailable("redis: no cluster node to ask for the slot map")
                                  : refresh_error_);
}

void ClusterRouter::OnSlots(Node* from, const Status& st, redisReply* r) {
  if (!st.ok()) {
    refresh_error_ = st;
    TryNextCandidate();
    return;
  }
  if (IsErrorReply(r)) {
    refresh_error_ = Status::Unavailable("redis: CLUSTER SLOTS on " + from->endpoint.Text() + ": " + ReplyText(r));
    TryNextCandidate();
    return;
  }
  Result<std::vector<SlotRange>> ranges = ParseClusterSlots(r, from->endpoint);
  if (!ranges.ok() || ranges->empty()) {
    refresh_error_ = ranges.ok() ? Status::Unavailable("redis: " + from->endpoint.Text() + " serves no slots")
                                 : ranges.status();
    TryNextCandidate();
    return;
  }
  std::vector<Node*> slots(kClusterSlots, nullptr);
  std::unordered_set<std::string> replicas;
  for (auto& [name, node] : nodes_) node->in_map = false;
  int promoted = 0;
  std::unordered_set<Node*> counted;
  for (const SlotRange& range : *ranges) {
    Node* master = NodeFor(range.master);
    master->in_map = true;
    if (replicas_.count(master->endpoint.Text()) && counted.insert(master).second) ++promoted;
    for (int s = range.first; s <= range.last; ++s) slots[s] = master;
    for (const RedisEndpoint& replica : range.replicas) replicas.insert(replica.Text());
  }
  if (promoted > 0) {
    LOG_WARN("redis: cluster failover: %d replica(s) promoted to master", promoted);
    if (env_.metrics) env_.metrics->failovers.fetch_add(static_cast<uint64_t>(promoted), std::memory_order_relaxed);
  }
  slots_.swap(slots);
  replicas_.swap(replicas);
  have_map_ = true;
  if (env_.metrics) Inc(env_.metrics->slot_map_refreshes);
  RefreshDone(Status::OK());
}

void ClusterRouter::RefreshDone(const Status& st) {
  refreshing_ = false;
  if (!st.ok()) refresh_error_ = st;
  std::deque<RequestPtr> waiting;
  waiting.swap(waiting_);
  bool destroyed = false;
  bool* const outer = destroyed_;
  destroyed_ = &destroyed;
  for (RequestPtr& req : waiting) {
    if (st.ok() && CanRetry(*req)) {
      Dispatch(std::move(req));
    } else {
      Status why = st.ok() ? (req->attempts >= kMaxAttempts ? TooManyAttempts(req->last_error) : req->last_error) : st;
      if (why.ok()) why = Status::Timeout("redis: no answer within " + std::to_string(config_.timeout.count()) + " ms");
      Finish(req, why, nullptr);
    }
    if (destroyed) {
      if (outer) *outer = true;
      return;
    }
  }
  std::vector<std::function<void(Status)>> pings;
  pings.swap(waiting_pings_);
  for (auto& ping : pings) {
    if (st.ok()) {
      PingAll(std::move(ping));
    } else {
      ping(st);
      if (destroyed) {
        if (outer) *outer = true;
        return;
      }
    }
  }
  destroyed_ = outer;
  if (refresh_again_) RequestRefresh();
}

void ClusterRouter::DropUnusedNodes() {
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    Node* node = it->second.get();
    // A node with commands on it stays until they are answered (its
    // callbacks hold requests); it goes at a later tick. Never called from
    // a connection's callback, so no connection is freed inside itself.
    if (!node->in_map && !node->seed && node->link->pending() == 0) {
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
}

void ClusterRouter::OnRefreshTimer(void* arg) { static_cast<ClusterRouter*>(arg)->RequestRefresh(); }

void ClusterRouter::OnPeriodicTimer(void* arg) {
  auto* self = static_cast<ClusterRouter*>(arg);
  self->periodic_timer_.Arm(kRefreshInterval);
  self->DropUnusedNodes();
  self->RequestRefresh();
}

}  // namespace sessiond
