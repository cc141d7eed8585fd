// SessionStore: the small asynchronous interface every server-side session
// store implements (memory, file, redis). The cookie manager keeps data in the
// cookie itself and needs no store.
//
// Threading: a store object belongs to one worker (one event loop thread).
// All calls are made on that thread, and every callback runs on that thread,
// exactly once, unless the store is destroyed first: destroying a store drops
// the callbacks of calls still in flight without running them (so owners keep
// a store alive while they wait on it). A callback may run before the call
// returns (the memory store completes synchronously); callers must be ready
// for that. State shared by
// several workers (the memory store's table) lives in an object created once
// and handed to each worker's store, guarded by its own lock.
//
// Keys: a StoreKey is the keyed hash of a session id (see CookieCodec), never
// the id or the cookie, so a dump of the store reveals no usable cookie.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "session/session_data.h"
#include "util/status.h"

namespace sessiond {

using StoreKey = std::string;

// Runs a task on the owning worker's loop thread. Thread-safe; used by stores
// that do blocking work on other threads (the file store) to complete there.
using PostFn = std::function<void(std::function<void()>)>;

// One atomic change of one session.
struct ApplyRequest {
  StoreKey key;  // the session to change; need not exist (then it is created)
  // Move the session to new_key in the same atomic step (Regenerate, or
  // re-keying after a secret rotation); the old key stops existing.
  std::optional<StoreKey> new_key;
  // Drop every existing key first (Destroy). With no sets and no new_key the
  // session is simply deleted.
  bool clear = false;
  std::vector<std::string> deletes;                        // then these keys
  std::map<std::string, std::optional<std::string>> sets;  // then these (nullopt deletes)
  std::chrono::milliseconds ttl{0};  // lifetime from now of the resulting session
  uint64_t max_bytes = 0;            // limit on SerializedSize of the result
};

// The outcome of a successful Apply: the session as it is now in the store.
// `exists` is false when the batch deleted the session (Destroy without Set).
struct ApplyResult {
  bool exists = false;
  SessionData data;
};

class SessionStore {
 public:
  using LoadCallback = std::function<void(Status, std::optional<SessionData>)>;
  using ApplyCallback = std::function<void(Status, ApplyResult)>;
  using DoneCallback = std::function<void(Status)>;

  virtual ~SessionStore() = default;
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  // Loads a session. OK + nullopt when it does not exist or has expired.
  // Unavailable/Timeout when the store cannot answer.
  virtual void Load(const StoreKey& key, LoadCallback cb) = 0;

  // Applies one change batch atomically: concurrent Applies to one session
  // that touch different keys both survive (read-modify-write happens inside
  // the store's own atomic step, never in the caller). A result larger than
  // max_bytes changes nothing and fails with TooLarge.
  virtual void Apply(const ApplyRequest& request, ApplyCallback cb) = 0;

  // Extends a session's lifetime (sliding expiry). OK when it does not exist.
  virtual void Touch(const StoreKey& key, std::chrono::milliseconds ttl, DoneCallback cb) = 0;

  // OK when the store answers (for /readyz).
  virtual void Ping(DoneCallback cb) = 0;

  // Housekeeping, called about once a minute on one worker: removes expired
  // sessions that nothing would otherwise delete (the file store's files).
  // Stores whose entries expire by themselves do nothing.
  virtual void SweepExpired() {}

 protected:
  SessionStore() = default;
};

}  // namespace sessiond
