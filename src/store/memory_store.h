// MemoryStore: sessions in this process's memory, lost on restart.
//
// One MemoryTable is created per process and shared by every worker's
// MemoryStore; the table has its own mutex, so the stores need no locking of
// their own. Every call completes synchronously, before it returns, which also
// makes MemoryStore the fake store of other components' unit tests.
//
// The table is bounded by memory.max_sessions: writing a session beyond that
// evicts the least recently used one (Load, Apply and Touch count as use).
// Expiry is enforced on read (an expired session is absent) and expired
// entries are swept lazily: each write drops expired entries it finds at the
// cold end of the LRU list, and SweepExpired() scans the whole table for a
// timer that wants memory back sooner.
//
// Subjects: the table keeps each session's SessionMeta and two indexes,
// subject -> sessions and public id -> session (indexed sessions only). Every
// removal of an entry (Destroy, re-key, revocation, expiry, eviction) goes
// through one function that also takes it out of both, so the index is
// exact at every moment, under the same lock as the entries.
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "store/store.h"

namespace sessiond {

// The meaning of an ApplyRequest on a session held in memory: shared by the
// memory and file stores (the redis store does the same in Lua).
//
// `current` is the session before the change (nullopt when absent or
// expired). Applies clear, deletes and sets in that order. The session is
// deleted (exists = false) exactly when the request clears it with no sets and
// no new_key (a Destroy); every other request leaves an existing session, even
// an empty one: "Apply with no changes" creates an empty session
// (session_create: always), and deleting the last key keeps the session.
// Fails with CheckSessionSize's TooLarge, and the caller must change nothing,
// when SerializedSize of the result exceeds request.max_bytes (a deletion is
// never too large).
Result<ApplyResult> ApplyToSession(std::optional<SessionData> current, const ApplyRequest& request);

class MemoryTable {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Clock = std::function<TimePoint()>;

  // max_sessions below 1 is treated as 1. `clock` defaults to steady_clock
  // (tests inject a fake one); it is called with the table's lock held.
  explicit MemoryTable(uint64_t max_sessions, Clock clock = nullptr);
  MemoryTable(const MemoryTable&) = delete;
  MemoryTable& operator=(const MemoryTable&) = delete;

  // All methods are thread-safe.
  std::optional<SessionData> Load(const StoreKey& key);
  std::optional<StoredSession> LoadSession(const StoreKey& key);
  Result<ApplyResult> Apply(const ApplyRequest& request);
  // With `meta`, records its refreshed_at, expires_at, client and user agent.
  void Touch(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta* meta = nullptr);

  // Subjects (see the file comment).
  std::vector<SessionListing> ListSubject(const std::string& subject);
  std::vector<RevokedSession> RevokeSubject(const std::string& subject);
  std::vector<RevokedSession> RevokePublicId(const std::string& public_id);
  // Sessions indexed under `subject`, expired ones not yet swept included.
  size_t SubjectSize(const std::string& subject) const;

  // Removes every expired session; returns how many.
  uint64_t SweepExpired();

  // Sessions held, expired ones not yet swept included.
  size_t size() const;

 private:
  struct Entry {
    SessionData data;
    SessionMeta meta;
    TimePoint expires_at;
    std::list<StoreKey>::iterator lru;  // position in lru_
  };
  using Map = std::unordered_map<StoreKey, Entry>;

  // The live entry for key, moved to the front of the LRU list; end() when
  // missing (an expired entry is erased on the way).
  Map::iterator FindLive(const StoreKey& key, TimePoint now);
  // The one way an entry leaves the table: also leaves both indexes.
  void Erase(Map::iterator it);
  void Evict(TimePoint now, const StoreKey& keep);
  void Index(const StoreKey& key, const SessionMeta& meta);
  // Erases every live session of `subject` but `keep` (may be null) into *out.
  void RevokeLocked(const std::string& subject, const StoreKey* keep, TimePoint now,
                    std::vector<RevokedSession>* out);
  // Revokes the oldest sessions of `subject` (never `keep`) while it holds
  // more than `max`.
  void EnforceLimit(const std::string& subject, const StoreKey& keep, uint64_t max, TimePoint now,
                    std::vector<RevokedSession>* out);

  const size_t max_sessions_;
  const Clock clock_;
  mutable std::mutex mu_;
  Map entries_;
  std::list<StoreKey> lru_;  // front = most recently used
  std::unordered_map<std::string, std::unordered_set<StoreKey>> subjects_;
  std::unordered_map<std::string, StoreKey> public_ids_;
};

class MemoryStore : public SessionStore {
 public:
  explicit MemoryStore(std::shared_ptr<MemoryTable> table);

  void Load(const StoreKey& key, LoadCallback cb) override;
  void Apply(const ApplyRequest& request, ApplyCallback cb) override;
  void Touch(const StoreKey& key, std::chrono::milliseconds ttl, DoneCallback cb) override;
  void Ping(DoneCallback cb) override;
  // MemoryTable::SweepExpired; any one worker's store sweeps the whole table.
  void SweepExpired() override;

  void LoadSession(const StoreKey& key, LoadSessionCallback cb) override;
  void TouchSession(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta& meta,
                    DoneCallback cb) override;
  bool supports_subjects() const override { return true; }
  void ListSubject(const std::string& subject, ListCallback cb) override;
  void RevokeSubject(const std::string& subject, RevokeCallback cb) override;
  void RevokePublicId(const std::string& public_id, RevokeCallback cb) override;

  MemoryTable& table() { return *table_; }

 private:
  std::shared_ptr<MemoryTable> table_;
};

}  // namespace sessiond
