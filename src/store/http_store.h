// HttpStore: sessions kept by a service the operator writes, in any
// language, behind the small HTTP protocol of docs/STORE-PROTOCOL.md
// (session.manager: http). examples/python/session_store.py is the
// reference implementation, on SQLite.
//
// The protocol, in short: a session is a JSON record at
// PREFIX/sessions/STORE_KEY, read with GET, written with PUT and removed with
// DELETE; every record has a version (ETag), and writes carry If-Match (or
// If-None-Match: * to create), so a write based on a stale read gets 412 and
// changes nothing. GET PREFIX/sessions?subject=S lists a subject's sessions
// (the store indexes the record's "subject" field), ?public_id=P finds one
// by public id, and GET PREFIX/health answers readiness.
//
// Guarantees, the same as the built-in stores' (store.h):
// - Atomic batches: Apply is read, compute (ApplyToSession), conditional
//   write. On 412 the whole batch is recomputed from a fresh read, at most
//   kMaxAttempts times; then the call fails with Unavailable (the filter
//   answers as for any store outage, by http_store.on_error).
// - Concurrent writes of distinct keys to one session are all kept: each
//   writer's conditional PUT succeeds only on top of every write before it.
// - No resurrection: a write with must_exist to a session found gone writes
//   nothing; a conditional write never creates a record the store deleted.
// - Re-key (Regenerate): the record is written under the new key, then the
//   old one is deleted with If-Match; if the old one changed meanwhile, the
//   new record is deleted again and the batch retried.
// - The size bound is ApplyToSession's, before anything is sent.
//
// Round trips: Load is one GET. Its reply (record and version) is cached
// for a few seconds, so the Touch or Apply that usually follows in the same
// exchange sends only its conditional write; a stale cached version costs
// one 412 and a fresh read, never a wrong write.
//
// Transport: sessiond's own net::Connection and http/ codec (HeadParser,
// BodyDecoder, HeadWriter): HTTP/1.1 with keep-alive, at most
// kMaxConnections per store (one store per worker), further calls queued.
// Every call has http_store.timeout from the moment it is queued (connect
// included). A reused connection that fails before any byte of its answer
// is retried once on a fresh one. Answers are bounded (kMaxResponseBytes).
// Callbacks never run inside the connection's own call stack: they are
// queued and run from a separate loop event, so one may destroy the store;
// destroying the store drops every callback still pending.
//
// The token is sent as "Authorization: Bearer TOKEN" and never logged.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/block.h"
#include "store/store.h"

struct event;

namespace sessiond {


class HttpStore : public SessionStore {
 public:
  static constexpr size_t kMaxConnections = 8;
  // Conditional writes of one batch before giving up; each 412 is followed by
  // a short random pause (up to 1 ms per attempt so far, at most 20 ms), so
  // writers racing on one session spread out instead of colliding again.
  static constexpr int kMaxAttempts = 64;
  static constexpr size_t kMaxResponseBytes = 8u << 20;

  HttpStore(const HttpStoreConfig& config, event_base* base);
  ~HttpStore() override;

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

  // One answer of the store service. `status` is not OK when no answer came
  // (connect failure, timeout, malformed answer); `code` is then 0.
  struct Response {
    Status status;
    int code = 0;
    std::string etag;  // the version, quotes included, as the store sent it
    std::string body;
  };
  using ResponseFn = std::function<void(Response)>;

  // For tests: calls answered since the store was made.
  uint64_t calls() const { return calls_; }

 private:
  class Conn;
  struct Call {
    const char* method = "GET";
    std::string path;  // after the prefix, e.g. "/sessions/<key>"
    std::string body;
    std::string precondition;  // a whole header line ("If-Match: ..."), or empty
    ResponseFn fn;
    std::chrono::steady_clock::time_point deadline;
    bool retried = false;
  };
  struct Cached {
    std::string version;
    StoredSession session;
    int64_t expires_at_ms = 0;
    std::chrono::steady_clock::time_point at;
  };
  struct ApplyOp;
  struct TouchOp;

  // Queues one request; `fn` runs later, from the loop.
  void Send(const char* method, std::string path, std::string body, std::string precondition, ResponseFn fn);
  void Dispatch();
  void Finished(Conn* conn, std::unique_ptr<Call> call, Response response, bool reusable);
  void Complete(std::function<void()> fn);
  // Runs `fn` after `ms` milliseconds unless the store is gone by then.
  void After(int ms, std::function<void()> fn);
  static void OnCompletions(int fd, short what, void* arg);

  // The JSON record of a session (docs/STORE-PROTOCOL.md, Records).
  static std::string RecordJson(const SessionData& data, int64_t expires_at_ms, const SessionMeta& meta);
  // A GET's answer: the live session with its version, nullopt when there
  // is none (404 or expired), or why the answer is unusable.
  static Result<std::optional<Cached>> ParseRecord(const Response& response);
  static Result<std::vector<SessionListing>> ParseListing(const Response& response);
  static Status Unexpected(const char* what, const Response& response);

  void Remember(const StoreKey& key, const Cached& record);
  // The cached record of `key` if fresh; removes it either way.
  std::optional<Cached> TakeCached(const StoreKey& key);

  // Deletes each key (no precondition) and reports those that were there.
  void DeleteAll(std::vector<SessionListing> sessions, RevokeCallback cb);
  void List(const std::string& query, ListCallback cb);

  const HttpStoreConfig config_;
  event_base* const base_;
  net::BlockPool blocks_{16};
  std::string host_header_;
  std::string auth_header_;  // "Authorization: Bearer ...\r\n" or empty
  std::vector<std::unique_ptr<Conn>> conns_;  // open connections, busy or idle
  std::vector<std::unique_ptr<Conn>> dead_;   // closed, freed from the next loop turn
  std::deque<std::unique_ptr<Call>> queue_;
  event* completion_event_ = nullptr;
  std::deque<std::function<void()>> completions_;
  std::unordered_map<StoreKey, Cached> cache_;
  std::list<StoreKey> cache_order_;  // oldest first
  uint64_t calls_ = 0;
  bool shutting_down_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sessiond
