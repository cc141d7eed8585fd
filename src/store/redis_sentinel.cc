#include "store/redis_sentinel.h"

#include <algorithm>

#include "base/log.h"

namespace sessiond {

namespace {

constexpr std::chrono::milliseconds kResubscribeDelay{500};

RedisConnection::Options MasterOptions(const RedisConfig& config) {
  RedisConnection::Options o = DataNodeOptions(config);
  o.require_master = true;
  return o;
}

// "name old-ip old-port new-ip new-port" of a +switch-master message.
bool ParseSwitch(std::string_view text, std::string_view master_name, RedisEndpoint* out) {
  std::vector<std::string_view> words;
  while (!text.empty() && words.size() < 6) {
    const size_t sp = text.find(' ');
    words.push_back(text.substr(0, sp));
    text = sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
  }
  if (words.size() != 5 || words[0] != master_name) return false;
  std::optional<RedisEndpoint> ep = ParseEndpoint(std::string(words[3]) + ":" + std::string(words[4]));
  if (!ep) return false;
  *out = *ep;
  return true;
}

}  // namespace

SentinelRouter::SentinelRouter(const RedisConfig& config, const RedisEnv& env)
    : config_(config),
      env_(env),
      deferred_(env.base),
      data_(env, MasterOptions(config), "master", this, /*auto_reconnect=*/false),
      resolve_timer_(env.base, &SentinelRouter::OnResolveTimer, this),
      subscribe_timer_(env.base, &SentinelRouter::OnSubscribeTimer, this),
      bury_event_(env.base, &SentinelRouter::OnBuryEvent, this) {
  for (const RedisNodeAddress& a : config.sentinel->addresses) {
    RedisEndpoint ep;
    ep.host = a.host;
    ep.port = a.port;
    sentinels_.push_back(ep);
  }
  StartResolve();
}

SentinelRouter::~SentinelRouter() {
  if (destroyed_) *destroyed_ = true;
  if (env_.metrics && sub_) env_.metrics->MoveLink(sub_node_, "sentinel", sub_state_, -1);
}

RedisConnection::Options SentinelRouter::SentinelOptions(const RedisEndpoint& sentinel) const {
  RedisConnection::Options o;
  o.endpoint = sentinel;
  o.username = config_.sentinel->username;
  o.password = config_.sentinel->password;
  o.timeout = config_.timeout;
  o.metrics = env_.metrics;
  o.tls = env_.tls;
  return o;
}

void SentinelRouter::Bury(std::unique_ptr<RedisConnection> conn) {
  if (!conn) return;
  buried_.push_back(std::move(conn));
  bury_event_.Schedule();
}

void SentinelRouter::OnBuryEvent(void* arg) { static_cast<SentinelRouter*>(arg)->buried_.clear(); }

// ------------------------------------------------------------ commands

bool SentinelRouter::CanRetry(const Request& req) const {
  return req.attempts < kMaxAttempts && Clock::now() - req.started < config_.timeout;
}

void SentinelRouter::Execute(std::string_view, RedisCommand command, uint32_t flags, Callback cb) {
  auto req = std::make_shared<Request>();
  req->command = std::move(command);
  req->flags = flags;
  req->cb = std::move(cb);
  req->started = Clock::now();
  if (resolving_) {
    waiting_.push_back(std::move(req));
    return;
  }
  if (!have_master_ || !data_.has_connection()) {
    // No master connection: a new resolution when the backoff allows one
    // (the master may have moved while it was unreachable), else fail fast.
    if (Clock::now() - last_resolve_ >= RedisLink::kMinBackoff) {
      waiting_.push_back(std::move(req));
      StartResolve();
      return;
    }
    Status why = resolve_error_.ok() ? data_.last_error() : resolve_error_;
    deferred_.Add([req, why] { req->cb(why, nullptr); });
    return;
  }
  Send(std::move(req));
}

void SentinelRouter::Send(RequestPtr req) {
  if (!data_.EnsureConnection()) {
    const Status why = data_.last_error();
    deferred_.Add([this, req, why] { Finish(req, why, nullptr); });
    return;
  }
  const uint32_t flags = req->flags;
  const RedisCommand& command = req->command;
  data_.Send(command, [this, req](const Status& st, redisReply* r) { OnReply(req, st, r); }, flags);
}

void SentinelRouter::OnReply(const RequestPtr& req, const Status& st, redisReply* r) {
  ++req->attempts;
  if (!st.ok()) {
    // OnLinkDown follows (after every callback) and resolves again.
    if ((req->flags & kIdempotent) && st.code() != Status::Code::kTimeout && CanRetry(*req)) {
      waiting_.push_back(req);
      return;
    }
    Finish(req, st, nullptr);
    return;
  }
  if (ErrorIs(r, "READONLY") || ErrorIs(r, "MASTERDOWN")) {
    // Sent to a master that has been demoted: it ran nothing.
    if (env_.metrics) Inc(env_.metrics->retries_readonly);
    if (!CanRetry(*req)) {
      Finish(req, Status::Unavailable("redis: " + ReplyText(r)), nullptr);
      return;
    }
    waiting_.push_back(req);
    Resolve();
    return;
  }
  Finish(req, st, r);
}

void SentinelRouter::Finish(const RequestPtr& req, const Status& st, redisReply* r) {
  Callback cb = std::move(req->cb);
  if (cb) cb(st, r);  // last: it may destroy the router
}

void SentinelRouter::FailWaiting(const Status& why) {
  std::deque<RequestPtr> waiting;
  waiting.swap(waiting_);
  bool destroyed = false;
  bool* const outer = destroyed_;
  destroyed_ = &destroyed;
  for (RequestPtr& req : waiting) {
    Finish(req, why, nullptr);
    if (destroyed) {
      if (outer) *outer = true;
      return;
    }
  }
  destroyed_ = outer;
}

void SentinelRouter::DispatchWaiting() {
  std::deque<RequestPtr> waiting;
  waiting.swap(waiting_);
  for (RequestPtr& req : waiting) {
    if (req->attempts > 0 && !CanRetry(*req)) {
      const Status why = Status::Unavailable("redis: no master answered within " +
                                             std::to_string(config_.timeout.count()) + " ms");
      deferred_.Add([this, req, why] { Finish(req, why, nullptr); });
      continue;
    }
    Send(std::move(req));
  }
}

void SentinelRouter::PingAll(std::function<void(Status)> cb) {
  static const RedisCommand kPing = RedisCommand::Format({"PING"});
  Execute({}, kPing, kIdempotent, [cb = std::move(cb)](const Status& st, redisReply* r) {
    if (st.ok() && IsErrorReply(r)) {
      cb(Status::Unavailable("redis: " + ReplyText(r)));
    } else {
      cb(st);
    }
  });
}

// ------------------------------------------------------------ resolution

void SentinelRouter::Resolve() {
  if (resolving_) return;
  const auto since = Clock::now() - last_resolve_;
  if (since >= backoff_) {
    StartResolve();
  } else if (!resolve_timer_.armed()) {
    resolve_timer_.ArmVaried(std::chrono::duration_cast<std::chrono::milliseconds>(backoff_ - since) +
                             std::chrono::milliseconds(1));
  }
}

void SentinelRouter::OnResolveTimer(void* arg) { static_cast<SentinelRouter*>(arg)->Resolve(); }

void SentinelRouter::StartResolve() {
  if (resolving_) return;
  resolve_timer_.Cancel();
  resolving_ = true;
  asked_ = 0;
  resolve_error_ = Status::OK();
  last_resolve_ = Clock::now();
  AskNextSentinel();
}

void SentinelRouter::AskNextSentinel() {
  if (asked_ >= sentinels_.size()) {
    resolving_ = false;
    if (resolve_error_.ok()) resolve_error_ = Status::Unavailable("redis: no sentinel answered");
    const Status why = Status::Unavailable("redis: no sentinel could name master '" + config_.sentinel->master_name +
                                           "' (last: " + resolve_error_.message() + ")");
    resolve_error_ = why;
    // A certificate that does not verify is a configuration error, as for
    // the data nodes (RedisLink).
    if (resolve_tls_failed_) {
      LOG_ERROR("%s", why.message().c_str());
    } else {
      LOG_WARN("%s", why.message().c_str());
    }
    backoff_ = std::min(backoff_ * 2, RedisLink::kMaxBackoff);
    resolve_timer_.ArmVaried(backoff_);
    FailWaiting(why);
    return;
  }
  const size_t index = asked_++;
  Bury(std::move(query_));
  query_ = std::make_unique<RedisConnection>(env_.base, env_.pool, SentinelOptions(sentinels_[index]),
                                            static_cast<RedisConnection::Listener*>(this));
  query_->Start();
  const RedisCommand ask =
      RedisCommand::Format({"SENTINEL", "get-master-addr-by-name", config_.sentinel->master_name});
  query_->Send(ask.bytes(), [this, index](const Status& st, redisReply* r) { OnMasterAddress(index, st, r); });
}

void SentinelRouter::OnMasterAddress(size_t index, const Status& st, redisReply* r) {
  resolve_tls_failed_ = query_ && query_->tls_failed();
  Bury(std::move(query_));  // one question per connection; freed from the loop
  const std::string where = sentinels_[index].Text();
  if (!st.ok()) {
    resolve_error_ = st;
  } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && IsStringReply(r->element[0]) &&
             IsStringReply(r->element[1])) {
    std::optional<RedisEndpoint> master =
        ParseEndpoint(std::string(r->element[0]->str, r->element[0]->len) + ":" +
                      std::string(r->element[1]->str, r->element[1]->len));
    if (master) {
      Resolved(*master, index);
      return;
    }
    resolve_error_ = Status::Unavailable("redis: sentinel " + where + " gave a malformed master address");
  } else if (r->type == REDIS_REPLY_NIL) {
    resolve_error_ = Status::Unavailable("redis: sentinel " + where + " does not know master '" +
                                         config_.sentinel->master_name + "'");
  } else {
    resolve_error_ = Status::Unavailable("redis: sentinel " + where + ": " +
                                         (IsErrorReply(r) ? ReplyText(r) : std::string("unexpected reply")));
  }
  AskNextSentinel();
}

void SentinelRouter::Resolved(const RedisEndpoint& master, size_t index) {
  resolving_ = false;
  backoff_ = RedisLink::kMinBackoff;
  resolve_error_ = Status::OK();
  // The sentinel that answered is asked first next time.
  if (index > 0) std::rotate(sentinels_.begin(), sentinels_.begin() + static_cast<long>(index),
                             sentinels_.begin() + static_cast<long>(index) + 1);
  SwitchTo(master, "named by the sentinels");
  if (!sub_) Subscribe();
  DispatchWaiting();
}

void SentinelRouter::SwitchTo(const RedisEndpoint& master, const char* how) {
  if (have_master_ && master != data_.endpoint()) {
    if (env_.metrics) Inc(env_.metrics->failovers);
    LOG_WARN("redis: master '%s' is now %s (was %s; %s)", config_.sentinel->master_name.c_str(),
             master.Text().c_str(), data_.endpoint().Text().c_str(), how);
  }
  have_master_ = true;
  data_.Retarget(master);
  data_.Connect();
}

void SentinelRouter::OnLinkDown(RedisLink*, const Status&) {
  // Lost or refused (ROLE says replica): ask the sentinels again.
  Resolve();
}

// ------------------------------------------------------------ +switch-master

void SentinelRouter::Subscribe() {
  subscribe_timer_.Cancel();
  const RedisEndpoint& sentinel = sentinels_.front();
  sub_ = std::make_unique<RedisConnection>(env_.base, env_.pool, SentinelOptions(sentinel),
                                          static_cast<RedisConnection::Listener*>(this));
  sub_node_ = sentinel.Text();
  sub_state_ = RedisMetrics::kConnecting;
  if (env_.metrics) env_.metrics->MoveLink(sub_node_, "sentinel", -1, sub_state_);
  sub_->Start();
  sub_->Subscribe("+switch-master", [this](const Status& st, redisReply* r) {
    if (st.ok() && IsErrorReply(r) && sub_) {
      sub_->Close(Status::Unavailable("redis: SUBSCRIBE on sentinel " + sub_node_ + ": " + ReplyText(r)));
    }
  });
}

void SentinelRouter::OnSubscribeTimer(void* arg) {
  auto* self = static_cast<SentinelRouter*>(arg);
  if (self->sub_) return;
  self->Subscribe();
  // Announcements may have been missed while unsubscribed.
  self->Resolve();
}

void SentinelRouter::OnReady(RedisConnection* conn) {
  if (conn != sub_.get()) return;
  if (env_.metrics) env_.metrics->MoveLink(sub_node_, "sentinel", sub_state_, RedisMetrics::kReady);
  sub_state_ = RedisMetrics::kReady;
}

void SentinelRouter::OnClosed(RedisConnection* conn, const Status& why) {
  if (conn != sub_.get()) return;  // a query: its callback already had the failure
  if (env_.metrics) env_.metrics->MoveLink(sub_node_, "sentinel", sub_state_, -1);
  LOG_WARN("redis: lost the +switch-master subscription on sentinel %s: %s", sub_node_.c_str(), why.message().c_str());
  Bury(std::move(sub_));
  subscribe_timer_.Arm(kResubscribeDelay);
}

void SentinelRouter::OnPush(RedisConnection* conn, redisReply* message) {
  if (conn != sub_.get() || message->elements < 3) return;
  const redisReply* channel = message->element[1];
  const redisReply* payload = message->element[2];
  if (!IsStringReply(channel) || !IsStringReply(payload) ||
      std::string_view(channel->str, channel->len) != "+switch-master") {
    return;
  }
  RedisEndpoint master;
  if (!ParseSwitch(std::string_view(payload->str, std::min<size_t>(payload->len, 1024)),
                   config_.sentinel->master_name, &master)) {
    return;
  }
  SwitchTo(master, "+switch-master");
}

}  // namespace sessiond
