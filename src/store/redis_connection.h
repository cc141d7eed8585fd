// RedisConnection: one connection to one Redis node, built on sessiond's own
// net::Connection with hiredis only formatting commands and parsing replies
// (store/redis_protocol.h).
//
// TLS (redis.tls): with Options::tls the connection speaks TLS through the
// net::Connection's transport, verified against the node's host (see
// store/redis_tls.h). The TLS handshake runs before the Redis handshake below;
// a TLS failure fails the connection like any other, with a message that
// says so and why ("redis: TLS handshake with 10.0.0.5:6379 failed
// (certificate verify failed: ...)"), and tls_failed() set.
//
// Commands are pipelined: Send() appends a command and its callback; replies
// come back in order and each runs its callback once, with the reply (valid
// during the call) or with the failure that ended the connection.
//
// Handshake: AUTH (username and password, or the password alone), SELECT,
// and the optional role checks are queued ahead of every command the moment
// the connection is created, so commands sent while it connects go out in
// the same write, behind them. OnReady() reports the handshake done; a
// failed step fails the connection with Redis's own message (never the
// password).
//
// Writing: commands sent during one loop turn leave in one write at the end
// of the turn. While a batch is in flight, new commands are held until its
// replies are all in (or 64 KiB accumulate), so a busy connection sends one
// batch per round trip: Redis pays one wake-up (epoll, read, write: several
// microseconds) per batch instead of one per command. Redis runs one
// connection's commands in order anyway, so holding them adds at most the
// transit of the replies.
//
// Durability (redis.wait_replicas): commands sent with kWaitReplicas are
// writes that must reach N replicas. One WAIT follows each batch that holds
// any; their replies are held until it answers, then delivered, or failed
// when WAIT confirmed fewer than N replicas (group commit: one WAIT covers
// every write before it on the connection).
//
// Deadlines: every command must be answered within `timeout` of being sent
// (queued) on the connection, and the handshake within `timeout` of the
// start. Replies come in order, so a missed deadline means the connection is
// stuck: every command on it fails with Timeout and the connection closes.
//
// Failure: a connect error, a reset, a protocol error, a handshake refusal or
// a missed deadline fails every pending command (oldest first) and then
// reports OnClosed() once; nothing else is reported afterwards. Callbacks
// never run inside Send() or Start(): a connection that cannot even start
// fails from the event loop.
//
// Callbacks may send more commands on this connection, and the listener or a
// callback may destroy it: the connection then touches nothing of itself
// and drops the callbacks still pending without running them.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/block.h"
#include "net/connection.h"
#include "net/timer.h"
#include "observe/metrics.h"
#include "store/redis_protocol.h"
#include "store/redis_tls.h"

namespace sessiond {

class RedisConnection final : private net::Connection::Handler {
 public:
  using Clock = std::chrono::steady_clock;
  // The reply (null when `status` is not OK), valid only during the call.
  using ReplyCallback = std::function<void(const Status& status, redisReply* reply)>;

  enum class State { kConnecting, kReady, kClosed };

  // Send() flags.
  static constexpr uint32_t kWaitReplicas = 1;  // a write that WAIT must confirm (see the file comment)

  struct Options {
    RedisEndpoint endpoint;
    std::string username;  // AUTH username password; empty: AUTH password
    std::string password;  // empty: no AUTH
    int db = 0;            // SELECT when not 0
    // ROLE must say master (a node Sentinel named, which may have been
    // demoted since).
    bool require_master = false;
    // INFO cluster must not say cluster_enabled:1 (redis.url alone must not
    // point at a cluster node: it would serve only the keys of its slots).
    bool refuse_cluster = false;
    std::chrono::milliseconds timeout{1000};
    int wait_replicas = 0;  // > 0: WAIT wait_replicas wait_timeout after writes
    std::chrono::milliseconds wait_timeout{100};
    RedisMetrics* metrics = nullptr;  // counts WAIT shortfalls and TLS outcomes; may be null
    std::shared_ptr<RedisTls> tls;    // set: TLS (a TCP endpoint only)
  };

  class Listener {
   public:
    // The handshake finished: commands are being answered.
    virtual void OnReady(RedisConnection* conn) = 0;
    // The connection failed and every pending callback has run; it may be
    // destroyed now (and usually is).
    virtual void OnClosed(RedisConnection* conn, const Status& why) = 0;
    // A pub/sub message (an array starting with "message" or "pmessage")
    // on a connection that subscribed.
    virtual void OnPush(RedisConnection* conn, redisReply* message) {}

   protected:
    ~Listener() = default;
  };

  RedisConnection(event_base* base, net::BlockPool* pool, Options options, Listener* listener);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Resolves the endpoint (a host name through getaddrinfo, which blocks),
  // connects and queues the handshake. Call once.
  void Start();

  // Queues a command (RedisCommand::bytes()) that Redis answers with
  // `replies` replies: the callback gets the last (a transaction's EXEC);
  // the others are consumed. On a closed connection the callback fails
  // from the event loop.
  void Send(std::string_view command, ReplyCallback cb, uint32_t flags = 0, int replies = 1);
  // As Send, but ASKING goes first (a cluster ASK redirect): its reply is
  // consumed here (a refused ASKING shows in the reply to the command).
  void SendAsking(std::string_view command, ReplyCallback cb, uint32_t flags = 0, int replies = 1);
  // Sends SUBSCRIBE channel; from then on, messages go to OnPush. The
  // callback gets the subscription's confirmation.
  void Subscribe(std::string_view channel, ReplyCallback cb);

  // Fails every pending command with `why` and reports OnClosed, from the
  // event loop (never inside this call). No-op once closed.
  void Close(const Status& why);

  State state() const { return state_; }
  bool ready() const { return state_ == State::kReady; }
  // Commands sent and not answered yet (handshake included).
  size_t pending() const { return entries_.size() + held_.size(); }
  const RedisEndpoint& endpoint() const { return options_.endpoint; }
  const Options& options() const { return options_; }
  // The connection failed because of TLS (setup, handshake or a TLS error).
  bool tls_failed() const { return tls_failed_; }
  // The TLS session was resumed (valid once ready).
  bool tls_resumed() const;

 private:
  // kSkip: a reply consumed here (ASKING's, a transaction's +OK and +QUEUED).
  enum class Kind : uint8_t { kCommand, kHandshake, kSkip, kWait };
  struct Entry {
    ReplyCallback cb;
    Clock::time_point deadline;
    Kind kind = Kind::kCommand;
    bool needs_wait = false;
    bool sent = false;  // handed to the socket (part of a flushed batch)
  };
  struct Held {
    ReplyCallback cb;
    ReplyPtr reply;
  };

  // net::Connection::Handler
  void OnReadable(net::Connection* conn) override;
  void OnPeerEof(net::Connection* conn) override;
  void OnWritable(net::Connection*) override {}
  void OnConnected(net::Connection* conn) override;
  void OnError(net::Connection* conn, int err) override;

  Status StartTls();
  // TLS done on our side, and the server closed before a single reply.
  bool ClosedAtTlsHandshake() const;
  void FailClosedAtTlsHandshake(const char* what);
  void Append(std::string_view bytes, ReplyCallback cb, Kind kind, bool needs_wait, int replies = 1);
  void QueueHandshake();
  void OnHandshakeReply(const char* step, const Status& st, redisReply* r, bool last);
  void MaybeScheduleFlush();
  void FlushNow();
  void ArmDeadline();
  // Runs the callback of the front entry with this reply.
  // False when the connection was destroyed meanwhile.
  bool Dispatch(ReplyPtr reply);
  void Fail(const Status& why);  // fails everything, then OnClosed
  Status LostReason(const char* what) const;

  static void OnDeadline(void* arg);
  static void OnFlushEvent(void* arg);
  static void OnFailEvent(void* arg);

  event_base* base_;
  Options options_;
  Listener* listener_;
  net::Connection conn_;
  RedisReplyReader reader_;
  net::Timer deadline_timer_;
  net::Deferred flush_event_;
  net::Deferred fail_event_;
  State state_ = State::kConnecting;
  std::deque<Entry> entries_;  // oldest first; sent entries lead
  std::vector<Held> held_;     // replies to writes waiting for their WAIT
  size_t unsent_bytes_ = 0;
  size_t in_flight_ = 0;      // sent entries not answered yet
  size_t unflushed_writes_ = 0;  // kWaitReplicas entries since the last WAIT
  bool flush_scheduled_ = false;
  bool connected_ = false;
  bool subscriber_ = false;
  bool tls_failed_ = false;
  bool got_bytes_ = false;  // any reply bytes arrived
  Status fail_reason_;
  std::string wait_command_;
  // Set while callbacks run: the destructor marks it, so the dispatching
  // code knows to touch nothing more.
  bool* destroyed_ = nullptr;
};

// Resolves an endpoint into a socket address: numeric addresses without
// DNS, names through getaddrinfo (the first answer; blocks).
Status ResolveEndpoint(const RedisEndpoint& endpoint, sockaddr_storage* out, socklen_t* len);

}  // namespace sessiond
