#include "store/redis_connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

#include "net/tls_transport.h"

namespace sessiond {

namespace {

// Held commands go out anyway once this much waits behind a batch in flight.
constexpr size_t kMaxHeldBytes = 64 * 1024;

bool IsPush(const redisReply* r) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 || !IsStringReply(r->element[0])) return false;
  const std::string_view kind(r->element[0]->str, r->element[0]->len);
  return kind == "message" || kind == "pmessage";
}

std::string MsText(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

}  // namespace

Status ResolveEndpoint(const RedisEndpoint& endpoint, sockaddr_storage* out, socklen_t* len) {
  std::memset(out, 0, sizeof(*out));
  if (endpoint.unix_socket()) {
    auto* un = reinterpret_cast<sockaddr_un*>(out);
    if (endpoint.unix_path.size() >= sizeof(un->sun_path)) {
      return Status::Unavailable("redis: socket path too long: " + endpoint.unix_path);
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, endpoint.unix_path.c_str(), endpoint.unix_path.size() + 1);
    *len = static_cast<socklen_t>(sizeof(sockaddr_un));
    return Status::OK();
  }
  // As for the upstream: "localhost" is 127.0.0.1, whatever /etc/hosts lists first.
  const std::string host = endpoint.host == "localhost" ? "127.0.0.1" : endpoint.host;
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(endpoint.port);
    *len = sizeof(sockaddr_in);
    return Status::OK();
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(endpoint.port);
    *len = sizeof(sockaddr_in6);
    return Status::OK();
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res) {
    return Status::Unavailable("redis: cannot resolve " + endpoint.host + ": " + gai_strerror(rc));
  }
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  *len = static_cast<socklen_t>(res->ai_addrlen);
  freeaddrinfo(res);
  if (out->ss_family == AF_INET) {
    v4->sin_port = htons(endpoint.port);
  } else if (out->ss_family == AF_INET6) {
    v6->sin6_port = htons(endpoint.port);
  } else {
    return Status::Unavailable("redis: no usable address for " + endpoint.host);
  }
  return Status::OK();
}

RedisConnection::RedisConnection(event_base* base, net::BlockPool* pool, Options options, Listener* listener)
    : base_(base),
      options_(std::move(options)),
      listener_(listener),
      conn_(base, pool),
      deadline_timer_(base, &RedisConnection::OnDeadline, this),
      flush_event_(base, &RedisConnection::OnFlushEvent, this),
      fail_event_(base, &RedisConnection::OnFailEvent, this) {
  conn_.set_handler(this);
  if (options_.wait_replicas > 0) {
    wait_command_ = std::string(RedisCommand::Format({"WAIT", std::to_string(options_.wait_replicas),
                                                      std::to_string(options_.wait_timeout.count())})
                                    .bytes());
  }
}

RedisConnection::~RedisConnection() {
  if (destroyed_) *destroyed_ = true;
}

Status RedisConnection::StartTls() {
  const std::string where = options_.endpoint.Text();
  if (options_.endpoint.unix_socket()) return Status::Unavailable("redis: no TLS on a unix socket (" + where + ")");
  Result<std::shared_ptr<net::TlsClientContext>> context = options_.tls->ContextFor(options_.endpoint.host);
  if (!context.ok()) return Status::Unavailable(context.status().message());
  std::unique_ptr<net::TlsTransport> transport = net::TlsTransport::NewClient(*context);
  if (!transport) return Status::Unavailable("redis: TLS to " + where + ": out of memory");
  conn_.UseTls(std::move(transport));
  return Status::OK();
}

bool RedisConnection::tls_resumed() const { return conn_.tls() && conn_.tls()->resumed(); }

void RedisConnection::Start() {
  QueueHandshake();
  sockaddr_storage addr;
  socklen_t len = 0;
  Status st = ResolveEndpoint(options_.endpoint, &addr, &len);
  if (st.ok() && options_.tls) {
    st = StartTls();
    tls_failed_ = !st.ok();
  }
  if (st.ok() && !conn_.Connect(reinterpret_cast<const sockaddr*>(&addr), len)) {
    st = Status::Unavailable("redis: cannot connect to " + options_.endpoint.Text() + ": " + std::strerror(errno));
  }
  if (!st.ok()) {
    fail_reason_ = st;
    fail_event_.Schedule();
    return;
  }
  conn_.EnableReading();
}

void RedisConnection::QueueHandshake() {
  std::vector<std::pair<RedisCommand, const char*>> steps;
  if (!options_.password.empty()) {
    if (options_.username.empty()) {
      steps.emplace_back(RedisCommand::Format({"AUTH", options_.password}), "AUTH");
    } else {
      steps.emplace_back(RedisCommand::Format({"AUTH", options_.username, options_.password}), "AUTH");
    }
  }
  if (options_.db != 0) steps.emplace_back(RedisCommand::Format({"SELECT", std::to_string(options_.db)}), "SELECT");
  if (options_.require_master) steps.emplace_back(RedisCommand::Format({"ROLE"}), "ROLE");
  if (options_.refuse_cluster) steps.emplace_back(RedisCommand::Format({"INFO", "cluster"}), "INFO");
  if (steps.empty()) steps.emplace_back(RedisCommand::Format({"PING"}), "PING");
  for (size_t i = 0; i < steps.size(); ++i) {
    const char* what = steps[i].second;
    const bool last = i + 1 == steps.size();
    Append(steps[i].first.bytes(),
           [this, what, last](const Status& st, redisReply* r) { OnHandshakeReply(what, st, r, last); },
           Kind::kHandshake, false);
  }
}

void RedisConnection::OnHandshakeReply(const char* step, const Status& st, redisReply* r, bool last) {
  if (!st.ok() || state_ != State::kConnecting) return;  // failing: the commands say why
  const std::string where = options_.endpoint.Text();
  if (std::strcmp(step, "ROLE") == 0) {
    const bool master = r->type == REDIS_REPLY_ARRAY && r->elements > 0 && IsStringReply(r->element[0]) &&
                        std::string_view(r->element[0]->str, r->element[0]->len) == "master";
    if (!master) {
      Fail(Status::Unavailable("redis: " + where + " is not a master" +
                               (IsErrorReply(r) ? " (ROLE: " + ReplyText(r) + ")" : std::string())));
      return;
    }
  } else if (std::strcmp(step, "INFO") == 0) {
    // An error (INFO forbidden by an ACL) proves nothing: carry on.
    if (IsStringReply(r) && std::string_view(r->str, r->len).find("cluster_enabled:1") != std::string_view::npos) {
      Fail(Status::Unavailable("redis: " + where +
                               " is a Redis Cluster node: set redis.cluster.seeds to use a cluster "
                               "(redis.url alone is for a single Redis)"));
      return;
    }
  } else if (IsErrorReply(r)) {
    // Redis's message (e.g. WRONGPASS), never the password.
    Fail(Status::Unavailable(std::string("redis: ") + step + " failed on " + where + ": " + ReplyText(r)));
    return;
  }
  if (!last) return;
  state_ = State::kReady;
  if (conn_.tls() && options_.metrics) Inc(tls_resumed() ? options_.metrics->tls_resumed : options_.metrics->tls_full);
  listener_->OnReady(this);
}

void RedisConnection::Send(std::string_view command, ReplyCallback cb, uint32_t flags, int replies) {
  Append(command, std::move(cb), Kind::kCommand, (flags & kWaitReplicas) != 0 && options_.wait_replicas > 0,
         replies);
}

void RedisConnection::SendAsking(std::string_view command, ReplyCallback cb, uint32_t flags, int replies) {
  static const RedisCommand kAsking = RedisCommand::Format({"ASKING"});
  Append(kAsking.bytes(), nullptr, Kind::kSkip, false);
  Send(command, std::move(cb), flags, replies);
}

void RedisConnection::Subscribe(std::string_view channel, ReplyCallback cb) {
  subscriber_ = true;
  const RedisCommand cmd = RedisCommand::Format({"SUBSCRIBE", channel});
  Append(cmd.bytes(), std::move(cb), Kind::kCommand, false);
}

void RedisConnection::Close(const Status& why) {
  if (state_ == State::kClosed) return;
  if (fail_reason_.ok()) fail_reason_ = why;
  fail_event_.Schedule();
}

void RedisConnection::Append(std::string_view bytes, ReplyCallback cb, Kind kind, bool needs_wait, int replies) {
  const bool was_empty = entries_.empty();
  const Clock::time_point deadline = Clock::now() + options_.timeout;
  for (int i = 1; i < replies; ++i) entries_.push_back(Entry{nullptr, deadline, Kind::kSkip, false, false});
  entries_.push_back(Entry{std::move(cb), deadline, kind, needs_wait, false});
  if (state_ == State::kClosed) {
    fail_event_.Schedule();  // fails it with the reason the connection closed
    return;
  }
  conn_.output().Append(bytes);
  unsent_bytes_ += bytes.size();
  if (needs_wait) ++unflushed_writes_;
  if (was_empty) ArmDeadline();
  MaybeScheduleFlush();
}

void RedisConnection::MaybeScheduleFlush() {
  if (!connected_ || flush_scheduled_ || unsent_bytes_ == 0) return;
  if (in_flight_ > 0 && unsent_bytes_ < kMaxHeldBytes) return;  // goes when the batch in flight is answered
  flush_scheduled_ = true;
  flush_event_.Schedule();
}

void RedisConnection::FlushNow() {
  flush_scheduled_ = false;
  if (state_ == State::kClosed || !connected_) return;
  if (unflushed_writes_ > 0) {
    conn_.output().Append(wait_command_);
    unsent_bytes_ += wait_command_.size();
    entries_.push_back(Entry{nullptr, Clock::now() + options_.timeout, Kind::kWait, false, false});
    unflushed_writes_ = 0;
  }
  for (auto it = entries_.rbegin(); it != entries_.rend() && !it->sent; ++it) {
    it->sent = true;
    ++in_flight_;
  }
  unsent_bytes_ = 0;
  conn_.Flush();
}

void RedisConnection::ArmDeadline() {
  if (entries_.empty()) {
    deadline_timer_.Cancel();
    return;
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(entries_.front().deadline - Clock::now());
  deadline_timer_.ArmVaried(left.count() > 0 ? left : std::chrono::milliseconds(0));
}

void RedisConnection::OnConnected(net::Connection*) {
  connected_ = true;
  if (unsent_bytes_ > 0) FlushNow();
}

void RedisConnection::OnReadable(net::Connection*) {
  net::Buffer& in = conn_.input();
  got_bytes_ = got_bytes_ || !in.empty();
  while (!in.empty()) {
    const std::string_view piece = in.front();
    if (!reader_.Feed(piece.data(), piece.size())) {
      Fail(Status::Unavailable("redis: bad reply from " + options_.endpoint.Text() + ": " + reader_.error()));
      return;
    }
    in.Consume(piece.size());
  }
  bool destroyed = false;
  bool* const outer = destroyed_;
  destroyed_ = &destroyed;
  while (state_ != State::kClosed) {
    ReplyPtr reply = reader_.Next();
    if (!reply) {
      if (!reader_.error().empty()) {
        destroyed_ = outer;
        Fail(Status::Unavailable("redis: bad reply from " + options_.endpoint.Text() + ": " + reader_.error()));
        return;
      }
      break;
    }
    const bool alive = Dispatch(std::move(reply));
    if (destroyed || !alive) {
      if (outer) *outer = true;
      return;
    }
  }
  destroyed_ = outer;
  if (state_ == State::kClosed) return;
  ArmDeadline();
  MaybeScheduleFlush();
}

bool RedisConnection::Dispatch(ReplyPtr reply) {
  bool* const flag = destroyed_;  // set by OnReadable
  if (subscriber_ && IsPush(reply.get())) {
    listener_->OnPush(this, reply.get());
    return !*flag;
  }
  if (entries_.empty()) {
    Fail(Status::Unavailable("redis: unexpected reply from " + options_.endpoint.Text()));
    return !*flag;
  }
  if (!entries_.front().sent) {
    // Its bytes went out before FlushNow: after a partial write the
    // connection's write event drains the whole output buffer, commands
    // appended since included. Redis answers in order, so this reply is the
    // front entry's.
    entries_.front().sent = true;
    ++in_flight_;
  }
  Entry e = std::move(entries_.front());
  entries_.pop_front();
  --in_flight_;
  switch (e.kind) {
    case Kind::kSkip:
      // An ASKING or a +QUEUED refused shows in the reply that follows
      // (the command's, or EXEC's -EXECABORT).
      return true;
    case Kind::kWait: {
      Status st;
      if (reply->type != REDIS_REPLY_INTEGER) {
        st = Status::Unavailable("redis: WAIT failed on " + options_.endpoint.Text() + ": " + ReplyText(reply.get()));
      } else if (reply->integer < options_.wait_replicas) {
        if (options_.metrics) {
          options_.metrics->wait_shortfalls.fetch_add(held_.size(), std::memory_order_relaxed);
        }
        st = Status::Unavailable("redis: WAIT confirmed " + std::to_string(reply->integer) + " of " +
                                 std::to_string(options_.wait_replicas) + " replicas within " +
                                 MsText(options_.wait_timeout) + " on " + options_.endpoint.Text());
      }
      std::vector<Held> held;
      held.swap(held_);
      for (Held& h : held) {
        h.cb(st, st.ok() ? h.reply.get() : nullptr);
        if (*flag) return false;
      }
      return true;
    }
    case Kind::kCommand:
    case Kind::kHandshake:
      break;
  }
  if (e.needs_wait && !IsErrorReply(reply.get())) {
    held_.push_back(Held{std::move(e.cb), std::move(reply)});
    return true;
  }
  if (e.cb) e.cb(Status::OK(), reply.get());
  return !*flag;
}

void RedisConnection::OnPeerEof(net::Connection*) {
  if (ClosedAtTlsHandshake()) {
    FailClosedAtTlsHandshake("closed by the server");
    return;
  }
  Fail(LostReason("closed by the server"));
}

bool RedisConnection::ClosedAtTlsHandshake() const {
  return conn_.tls() && connected_ && state_ == State::kConnecting && !got_bytes_;
}

void RedisConnection::FailClosedAtTlsHandshake(const char* what) {
  // TLS 1.3: a server that refuses the client's certificate does so after
  // the client's handshake has ended, with an alert and a close; the close
  // (a reset: the Redis handshake's commands were unread) often arrives
  // instead of the alert. No reply came, so nothing but TLS ran.
  tls_failed_ = true;
  Fail(Status::Unavailable("redis: TLS handshake with " + options_.endpoint.Text() + " failed (" + what +
                           " as the handshake ended: a client certificate missing or refused? "
                           "See redis.tls.client_certificate)"));
}

void RedisConnection::OnError(net::Connection*, int err) {
  if (const net::TlsTransport* tls = conn_.tls(); tls && !tls->failure().empty()) {
    tls_failed_ = true;
    const std::string where = options_.endpoint.Text();
    // Before the Redis handshake is done the TLS handshake is what failed,
    // also when the server refused the client certificate after the
    // client's last flight (TLS 1.3: the client has finished by then).
    if (state_ == State::kConnecting) {
      Fail(Status::Unavailable("redis: TLS handshake with " + where + " failed (" + tls->failure() + ")"));
    } else {
      Fail(LostReason(("TLS error (" + tls->failure() + ")").c_str()));
    }
    return;
  }
  if (!connected_) {
    Fail(Status::Unavailable("redis: cannot connect to " + options_.endpoint.Text() + ": " + std::strerror(err)));
  } else if (ClosedAtTlsHandshake()) {
    FailClosedAtTlsHandshake(std::strerror(err));
  } else {
    Fail(LostReason(std::strerror(err)));
  }
}

Status RedisConnection::LostReason(const char* what) const {
  return Status::Unavailable("redis: connection to " + options_.endpoint.Text() + " lost: " + what);
}

void RedisConnection::Fail(const Status& why) {
  const bool report = state_ != State::kClosed;
  if (report && tls_failed_ && state_ == State::kConnecting && options_.metrics) Inc(options_.metrics->tls_failed);
  if (report) {
    state_ = State::kClosed;
    fail_reason_ = why;
    conn_.Stop();
    deadline_timer_.Cancel();
    flush_event_.Cancel();
    flush_scheduled_ = false;
  }
  std::vector<Held> held;
  held.swap(held_);
  std::deque<Entry> entries;
  entries.swap(entries_);
  in_flight_ = 0;
  unsent_bytes_ = 0;
  unflushed_writes_ = 0;

  bool destroyed = false;
  bool* const outer = destroyed_;
  destroyed_ = &destroyed;
  for (Held& h : held) {
    h.cb(why, nullptr);
    if (destroyed) break;
  }
  for (Entry& e : entries) {
    if (destroyed) break;
    if (e.cb) e.cb(why, nullptr);
  }
  if (destroyed) {
    if (outer) *outer = true;
    return;
  }
  destroyed_ = outer;
  if (report) listener_->OnClosed(this, why);  // last: it may destroy us
}

void RedisConnection::OnDeadline(void* arg) {
  auto* self = static_cast<RedisConnection*>(arg);
  if (self->entries_.empty() || self->state_ == State::kClosed) return;
  const auto now = Clock::now();
  if (self->entries_.front().deadline > now + std::chrono::milliseconds(1)) {
    self->ArmDeadline();
    return;
  }
  const std::string where = self->options_.endpoint.Text();
  if (self->state_ == State::kConnecting) {
    self->Fail(Status::Timeout("redis: connecting to " + where + " timed out after " + MsText(self->options_.timeout)));
  } else {
    self->Fail(Status::Timeout("redis: command to " + where + " timed out after " + MsText(self->options_.timeout)));
  }
}

void RedisConnection::OnFlushEvent(void* arg) { static_cast<RedisConnection*>(arg)->FlushNow(); }

void RedisConnection::OnFailEvent(void* arg) {
  auto* self = static_cast<RedisConnection*>(arg);
  self->Fail(self->fail_reason_.ok() ? Status::Unavailable("redis: connection closed") : self->fail_reason_);
}

}  // namespace sessiond
