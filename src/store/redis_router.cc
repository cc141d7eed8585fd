#include "store/redis_router.h"

#include <algorithm>

#include "base/log.h"
#include "store/redis_cluster.h"
#include "store/redis_sentinel.h"

namespace sessiond {

namespace {

constexpr std::chrono::milliseconds kReapInterval{100};

RedisConnection::Options WithEnv(RedisConnection::Options options, const RedisEnv& env) {
  options.metrics = env.metrics;
  options.tls = env.tls;
  return options;
}

}  // namespace

RedisConnection::Options DataNodeOptions(const RedisConfig& config) {
  RedisConnection::Options o;
  o.username = config.username;
  o.password = config.password;
  o.db = config.db;
  o.timeout = config.timeout;
  o.wait_replicas = config.wait_replicas;
  o.wait_timeout = config.wait_timeout;
  return o;
}

std::unique_ptr<RedisRouter> RedisRouter::Create(const RedisConfig& config, const RedisEnv& env) {
  if (config.cluster) return std::make_unique<ClusterRouter>(config, env);
  if (config.sentinel) return std::make_unique<SentinelRouter>(config, env);
  return std::make_unique<StandaloneRouter>(config, env);
}

// ---------------------------------------------------------------- DeferredCalls

void DeferredCalls::Run(void* arg) {
  auto* self = static_cast<DeferredCalls*>(arg);
  std::deque<std::function<void()>> calls;
  calls.swap(self->calls_);
  bool destroyed = false;
  self->destroyed_ = &destroyed;
  for (std::function<void()>& fn : calls) {
    fn();
    if (destroyed) return;  // a call destroyed the owner: drop the rest
  }
  self->destroyed_ = nullptr;
}

// ---------------------------------------------------------------- RedisLink

RedisLink::RedisLink(const RedisEnv& env, RedisConnection::Options options, const char* role, Observer* observer,
                     bool auto_reconnect)
    : env_(env),
      options_(WithEnv(std::move(options), env)),
      role_(role),
      observer_(observer),
      auto_reconnect_(auto_reconnect),
      reconnect_timer_(env.base, &RedisLink::OnReconnectTimer, this),
      reap_timer_(env.base, &RedisLink::OnReapTimer, this) {}

RedisLink::~RedisLink() {
  SetState(-1);
  // Destroying the connections drops their callbacks (store.h: a store
  // being destroyed drops the calls in flight).
  conn_.reset();
  draining_.clear();
}

Status RedisLink::last_error() const {
  return last_error_.ok() ? Status::Unavailable("redis: not connected to " + options_.endpoint.Text()) : last_error_;
}

void RedisLink::SetState(int state) {
  if (!env_.metrics) return;
  const std::string node = state >= 0 ? options_.endpoint.Text() : metric_node_;
  if (state >= 0 && metric_state_ >= 0 && node != metric_node_) {
    env_.metrics->MoveLink(metric_node_, role_, metric_state_, -1);  // retargeted: leave the old node
    metric_state_ = -1;
  }
  env_.metrics->MoveLink(node, role_, metric_state_, state);
  metric_state_ = state;
  metric_node_ = node;
}

void RedisLink::StartConnection() {
  reconnect_timer_.Cancel();
  last_attempt_ = Clock::now();
  conn_ = std::make_unique<RedisConnection>(env_.base, env_.pool, options_, static_cast<Listener*>(this));
  SetState(RedisMetrics::kConnecting);
  conn_->Start();
}

void RedisLink::Connect() {
  if (!conn_) StartConnection();
}

bool RedisLink::EnsureConnection() {
  if (conn_) return true;
  if (Clock::now() - last_attempt_ < kMinBackoff) return false;
  StartConnection();
  return true;
}

void RedisLink::Send(const RedisCommand& command, RedisConnection::ReplyCallback cb, uint32_t flags, bool asking) {
  const uint32_t conn_flags = (flags & RedisRouter::kWrite) ? RedisConnection::kWaitReplicas : 0;
  if (asking) {
    conn_->SendAsking(command.bytes(), std::move(cb), conn_flags, command.replies());
  } else {
    conn_->Send(command.bytes(), std::move(cb), conn_flags, command.replies());
  }
}

void RedisLink::Retarget(const RedisEndpoint& endpoint) {
  if (endpoint == options_.endpoint) return;
  options_.endpoint = endpoint;
  backoff_ = kMinBackoff;
  last_attempt_ = {};
  if (conn_) {
    // Commands already on the old master finish there (a demoted master
    // answers writes with READONLY, which the router sends again).
    if (conn_->pending() > 0) {
      draining_.push_back(std::move(conn_));
      reap_timer_.Arm(kReapInterval);
    } else {
      conn_.reset();
    }
  }
  SetState(auto_reconnect_ ? RedisMetrics::kDown : -1);
}

void RedisLink::Reset(const Status& why) {
  backoff_ = kMinBackoff;
  if (conn_) conn_->Close(why);
}

void RedisLink::ReapDraining() {
  draining_.erase(std::remove_if(draining_.begin(), draining_.end(),
                                 [](const std::unique_ptr<RedisConnection>& c) {
                                   return c->pending() == 0 || c->state() == RedisConnection::State::kClosed;
                                 }),
                  draining_.end());
  if (!draining_.empty()) reap_timer_.Arm(kReapInterval);
}

void RedisLink::OnReapTimer(void* arg) { static_cast<RedisLink*>(arg)->ReapDraining(); }

void RedisLink::OnReady(RedisConnection* conn) {
  if (conn != conn_.get()) return;  // a draining one
  backoff_ = kMinBackoff;
  last_error_ = Status::OK();
  SetState(RedisMetrics::kReady);
  // Only a recovery is news; every worker connecting at startup is not.
  if (!last_logged_.empty()) LOG_INFO("redis: connected to %s again", options_.endpoint.Text().c_str());
  last_logged_.clear();
  if (observer_) observer_->OnLinkReady(this);
}

void RedisLink::OnClosed(RedisConnection* conn, const Status& why) {
  if (conn != conn_.get()) {
    // A draining connection ended: drop it (not from inside its own call).
    reap_timer_.Arm(std::chrono::milliseconds(0));
    return;
  }
  if (why.message().find("is a Redis Cluster node") != std::string::npos) {
    cluster_mismatch_ = true;
    if (env_.metrics) Inc(env_.metrics->cluster_url_mismatch);
  }
  // Freed from the loop: this call runs inside the connection.
  const bool tls_failed = conn->tls_failed();
  draining_.push_back(std::move(conn_));
  reap_timer_.Arm(std::chrono::milliseconds(0));
  NoteFailure(why, tls_failed);
  SetState(RedisMetrics::kDown);
  if (auto_reconnect_) {
    reconnect_timer_.ArmVaried(backoff_);
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  }
  if (observer_) observer_->OnLinkDown(this, why);  // last: it may destroy us
}

void RedisLink::NoteFailure(const Status& why, bool tls_failed) {
  last_error_ = why;
  // One line per distinct failure, not one per retry every 2 s. A cluster
  // node at redis.url is a configuration error, and so is, almost always, a
  // TLS failure (a certificate that does not verify): said as one.
  if (why.message() == last_logged_) return;
  if (cluster_mismatch_ || tls_failed) {
    LOG_ERROR("%s", why.message().c_str());
  } else {
    LOG_WARN("%s", why.message().c_str());
  }
  last_logged_ = why.message();
}

void RedisLink::OnReconnectTimer(void* arg) {
  auto* self = static_cast<RedisLink*>(arg);
  if (!self->conn_) self->StartConnection();
}

// ---------------------------------------------------------------- StandaloneRouter

namespace {

RedisConnection::Options StandaloneOptions(const RedisConfig& config) {
  RedisConnection::Options o = DataNodeOptions(config);
  if (config.unix_socket) {
    o.endpoint.unix_path = config.socket_path;
  } else {
    o.endpoint.host = config.host;
    o.endpoint.port = config.port;
  }
  o.refuse_cluster = true;
  return o;
}

}  // namespace

StandaloneRouter::StandaloneRouter(const RedisConfig& config, const RedisEnv& env)
    : env_(env), deferred_(env.base), link_(env, StandaloneOptions(config), "master", this, true) {
  link_.Connect();
}

StandaloneRouter::~StandaloneRouter() = default;

void StandaloneRouter::Execute(std::string_view, RedisCommand command, uint32_t flags, Callback cb) {
  if (!link_.EnsureConnection()) {
    deferred_.Add([cb = std::move(cb), why = link_.last_error()] { cb(why, nullptr); });
    return;
  }
  auto on_reply = [this, cb = std::move(cb)](const Status& st, redisReply* r) {
    // A cluster node behind redis.url answers keys of other slots with
    // MOVED: never fail silently (the handshake's INFO usually caught it).
    if (st.ok() && (ErrorIs(r, "MOVED") || ErrorIs(r, "ASK"))) {
      if (env_.metrics) Inc(env_.metrics->cluster_url_mismatch);
      const Status mismatch = Status::Unavailable(
          "redis: " + link_.endpoint().Text() +
          " is a Redis Cluster node: set redis.cluster.seeds to use a cluster (redis.url alone is for a single "
          "Redis)");
      LOG_ERROR("%s", mismatch.message().c_str());
      cb(mismatch, nullptr);
      return;
    }
    cb(st, r);
  };
  link_.Send(command, std::move(on_reply), flags);
}

void StandaloneRouter::PingAll(std::function<void(Status)> cb) {
  static const RedisCommand kPing = RedisCommand::Format({"PING"});
  Execute({}, kPing, kIdempotent, [cb = std::move(cb)](const Status& st, redisReply* r) {
    if (st.ok() && IsErrorReply(r)) {
      cb(Status::Unavailable("redis: " + ReplyText(r)));
    } else {
      cb(st);
    }
  });
}

void StandaloneRouter::OnLinkDown(RedisLink*, const Status&) {}

}  // namespace sessiond
