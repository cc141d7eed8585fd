// RedisStore: sessions in Redis, over one hiredis async connection per worker
// on that worker's libevent loop. Commands are pipelined: a call never waits
// for an earlier one's reply.
//
// Data layout: one HASH per session at key_prefix + StoreKey, with a TTL
// (PEXPIRE). Each session key is one field whose name is the key as a JSON
// string literal, exactly the bytes AppendJsonString emits (quotes included),
// and whose value is the raw JSON value text. Storing the escaped form lets
// the apply script compute SerializedSize from byte lengths alone, and every
// data field starts with '"', so fields that do not are free for bookkeeping:
// field "v" (the layout version, "1") is always present, which keeps a
// session with no keys in existence (Redis deletes an empty hash).
//
// Load is HGETALL; Touch is PEXPIRE; Ping is PING. Apply is one Lua script
// (EVALSHA, falling back to EVAL on NOSCRIPT) that computes the resulting
// session and its size before writing anything, fails with TOOLARGE when it
// is over max_bytes, and otherwise clears, deletes, sets, renames (re-key) and
// sets the TTL in one atomic step.
//
// Metadata and subjects (docs/HEADER-PROTOCOL.md, Subjects): bookkeeping
// fields "m" (the SessionMeta as JSON), "s" (the subject) and "p" (the public
// id) sit beside the data; key_prefix "subject:" S is a sorted set of the
// subject's store keys scored by creation, key_prefix "pid:" P the store key
// of an indexed public id. The apply script keeps them right in the same
// atomic step (and carries out X-Session-Revoke and the per-subject limit
// there); a second script touches with metadata, lists a subject (pruning
// members whose session expired or moved) and revokes by subject or public
// id. The scripts name the index keys themselves, so they need one Redis
// server, not a Cluster.
//
// Failure handling: hiredis has no timeouts, so libevent timers provide them:
// connecting (TCP plus AUTH, SELECT and SCRIPT LOAD, which are pipelined ahead
// of everything else) must finish within redis.timeout, and so must each
// command. A missed deadline fails every command on the connection with
// Timeout and drops it. After a failure the store reconnects with exponential
// backoff (50 ms doubling to 2 s). While there is no connection a call fails
// at once with Unavailable, except that a call made at least 50 ms after the
// last attempt starts a new attempt and is queued on it (so the first request
// after Redis returns usually succeeds, and a dead Redis is not hammered).
//
// Callbacks never run inside hiredis's own call stack: replies are turned
// into results there, and the caller's callbacks run from a separate loop
// event afterwards, so a callback may destroy the store. Destroying the store
// drops the callbacks of calls still in flight without running them.
//
// The password is never logged or put into a Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/store.h"

struct redisAsyncContext;
struct redisReply;
struct event;

namespace sessiond {

class RedisStore : public SessionStore {
 public:
  // Starts connecting at once. `base` is the owning worker's loop.
  RedisStore(const RedisConfig& config, event_base* base);
  ~RedisStore() override;

  void Load(const StoreKey& key, LoadCallback cb) override;
  void Apply(const ApplyRequest& request, ApplyCallback cb) override;
  void Touch(const StoreKey& key, std::chrono::milliseconds ttl, DoneCallback cb) override;
  void Ping(DoneCallback cb) override;
  void LoadSession(const StoreKey& key, LoadSessionCallback cb) override;
  void TouchSession(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta& meta,
                    DoneCallback cb) override;
  bool supports_subjects() const override { return true; }
  void ListSubject(const std::string& subject, ListCallback cb) override;
  void RevokeSubject(const std::string& subject, RevokeCallback cb) override;
  void RevokePublicId(const std::string& public_id, RevokeCallback cb) override;

  // True while connected and past AUTH/SELECT (for tests and metrics).
  bool ready() const { return state_ == State::kReady; }

 private:
  struct Command;
  enum class State { kDisconnected, kConnecting, kReady };
  // Called once per command, inside hiredis's stack: with the reply, or with
  // nullptr and why the command failed. It must only record a result and
  // hand the caller's callback to Complete().
  using ReplyHandler = std::function<void(redisReply*, const Status&)>;

  // Sends a caller's command with a deadline, connecting first if allowed.
  // `script`: the Lua text of an EVALSHA command, resent as EVAL on NOSCRIPT.
  void Submit(std::vector<std::string> argv, ReplyHandler on_reply, const char* script = nullptr);
  // EVALSHA of the subject script in `mode` (see redis_store.cc).
  void SubjectCall(std::vector<std::string> keys_and_args, ReplyHandler on_reply);
  bool Send(redisAsyncContext* ac, Command* cmd, const std::vector<std::string>& argv);
  void Complete(std::function<void()> fn);

  void StartConnect();
  void SendHandshake(std::vector<std::string> argv, const char* what, bool last);
  void ScheduleReconnect();
  // Frees the connection, failing its commands with `reason`. Never called
  // from inside hiredis; code there uses RequestTeardown instead.
  void Teardown(const Status& reason);
  void RequestTeardown(const Status& reason);
  Status FailureReason(const redisAsyncContext* ac) const;
  // Records why the connection failed (for fail-fast calls) and logs it.
  void NoteFailure(const Status& reason);
  std::string Where() const;  // host:port or socket path, for messages

  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnConnect(const redisAsyncContext* ac, int status);
  static void OnDisconnect(const redisAsyncContext* ac, int status);
  static void OnDeadline(int fd, short what, void* arg);
  static void OnConnectTimeout(int fd, short what, void* arg);
  static void OnReconnectTimer(int fd, short what, void* arg);
  static void OnTeardownEvent(int fd, short what, void* arg);
  static void OnCompletions(int fd, short what, void* arg);

  const RedisConfig config_;
  event_base* const base_;
  const std::string script_sha_;
  const std::string subject_sha_;

  redisAsyncContext* ctx_ = nullptr;
  State state_ = State::kDisconnected;
  uint64_t connection_serial_ = 0;  // identifies ctx_ across a deferred teardown
  std::chrono::steady_clock::time_point last_attempt_{};
  std::chrono::milliseconds backoff_;
  // Why the connection being freed failed; read by the NULL-reply callbacks.
  Status dying_reason_;
  Status last_error_;         // why the last attempt failed, for fail-fast calls
  std::string last_logged_;  // the failure last logged; empty while healthy

  uint64_t teardown_serial_ = 0;
  Status teardown_reason_;

  event* connect_timer_ = nullptr;
  event* reconnect_timer_ = nullptr;
  event* teardown_event_ = nullptr;
  event* completion_event_ = nullptr;
  std::deque<std::function<void()>> completions_;
  bool shutting_down_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sessiond
