// RedisStore: sessions in Redis (docs/CONFIGURATION.md, redis): one Redis,
// the master Sentinel names, or Redis Cluster, through a RedisRouter
// (store/redis_router.h) that owns this worker's connections. Commands are
// pipelined: a call never waits for an earlier one's reply.
//
// Data layout: one HASH per session, with a TTL (PEXPIRE), at key_prefix +
// StoreKey, or key_prefix + "{" + StoreKey + "}" on a cluster (the hash tag
// keeps whatever else a session ever needs in its slot). Each session key is
// one field whose name is the key as a JSON string literal, exactly the
// bytes AppendJsonString emits (quotes included), and whose value is the raw
// JSON value text. Every data field starts with '"', so fields that do not
// are bookkeeping:
//   v  the layout version, "2"; always present, so a session with no keys
//      still exists (Redis deletes an empty hash)
//   s  the running size: the sum over data fields of len(name) + len(value)
//      + 2, so that SerializedSize is s + 1 (2 with no keys) without
//      reading the session. Layout "1" (before the running size) has no s:
//      the first write recomputes it from the fields.
//
// Load is HGETALL; Touch is PEXPIRE; Ping is PING on every master; a
// Destroy (clear with no sets, no re-key) is DEL. Every other Apply is one
// Lua script (EVALSHA, falling back to EVAL on NOSCRIPT) that reads only
// what it needs: HMGET of v, s and the fields the batch touches; then it
// checks must_exist and the size limit, and writes in one HSET (plus HDEL,
// RENAME when re-keyed, PEXPIRE). A TOOLARGE answer changes nothing.
//
// Re-keying on a cluster: the two keys lie in different slots, which no
// script can touch together, so it takes two steps: a script on the old key
// checks and applies the batch and deletes the session, returning it; the
// second writes it under the new key. A failure between them loses the
// session (the client then needs a new one); it never leaves two copies.
//
// Metadata (docs/HEADER-PROTOCOL.md, Session lifetime): the bookkeeping
// field m holds the SessionMeta as JSON (created, refreshed, expires,
// client, user agent), written with the session when ApplyRequest::meta is
// set (the session filter sets it only when something reads it: without
// timeouts or a subject_key, writes carry none and cost what they did).
// The fast path writes it in its HSET; Load (HGETALL) reads it at no cost.
//
// Subjects (docs/HEADER-PROTOCOL.md, Subjects), when an Apply names a
// subject_key: bookkeeping fields u (the subject the session is indexed
// under) and p (its public id) beside the data; key_prefix "subject:" S is
// a sorted set of the subject's store keys scored by creation time, and
// key_prefix "pid:" P the store key of an indexed public id. Both index keys
// get at least the lifetime of their newest session, and reads check each
// member against its session (u must still name the subject), pruning the
// stale ones: an expired, moved or re-indexed session is never listed or
// revoked, and an index whose sessions all expired expires too.
// Such an Apply never takes the fast path: it is one script that reads the
// whole session (HGETALL) and keeps u, p and m with the data.
// - One Redis and Sentinel: the script also updates the index keys (it names
//   them itself, which one Redis allows), carries out X-Session-Revoke and
//   the per-subject limit, all in one atomic step, as the memory and file
//   stores do; so do TouchSession, ListSubject, RevokeSubject and
//   RevokePublicId, one script each.
// - Cluster: the index keys lie in other slots than the session, so the
//   script changes only the session (its slot) and reports the subject
//   before and after; sessiond then updates the index with commands of one
//   key each (ZREM from the old subject, ZADD to the new with a TTL, the
//   public id's key), revokes the subject's other sessions one conditional
//   DEL each (only while u still names the subject), and enforces the limit.
//   One more round trip for a write of an indexed session, and these steps
//   are not atomic with the session write: a revocation racing a
//   Regenerate or a new login of the same subject may miss the session
//   that was being indexed at that moment, and two logins at once over
//   max_sessions_per_subject may each revoke the other. A failed index step
//   fails the call (the session write stays); the next write of the session
//   indexes it again, and the checks on read drop what is stale, so the
//   index heals itself.
//
// Shared rate-limit buckets (TakeToken) have keys and a script of their own:
// store/redis_token_bucket.h.
//
// The password is never logged or put into a Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "net/block.h"
#include "store/redis_router.h"
#include "store/store.h"
#include "store/token_bucket.h"

namespace sessiond {

class RedisStore : public SessionStore, public SharedTokenBuckets {
 public:
  // Starts connecting at once. `base` is the owning worker's loop;
  // `metrics` may be null. With config.tls, every connection speaks TLS
  // through `tls` (one is made from config.tls when null; see
  // NewRedisTls for one checked first).
  RedisStore(const RedisConfig& config, event_base* base, RedisMetrics* metrics = nullptr,
             std::shared_ptr<RedisTls> tls = nullptr);
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

  // True while the router is connected (for tests and metrics): past the
  // handshake with one Redis or the sentinels' master; a slot map loaded
  // on a cluster.
  bool ready() const { return router_->ready(); }
  // The Redis key of a session.
  std::string RedisKey(const StoreKey& key) const;

  // Shared rate limits: one script on the bucket's key
  // (store/redis_token_bucket.h, where it is defined).
  void TakeToken(std::string_view name, const TokenBucketSpec& spec, TakeCallback cb) override;

 private:
  // Runs an EVALSHA command, and its EVAL form once if the node says
  // NOSCRIPT (its script cache was flushed, or a failover lost it).
  void RunScript(const std::string& key, std::string_view script, RedisCommand evalsha, uint32_t flags,
                 RedisRouter::Callback cb);
  void ApplyScript(const ApplyRequest& request, const std::string& key, const std::string& target, ApplyCallback cb);
  void ApplyRekeyInTwoSteps(const ApplyRequest& request, ApplyCallback cb);
  void ApplyFast(const ApplyRequest& request, const std::string& key, ApplyCallback cb);

  // ---- subjects (see the file comment) ----
  struct IndexChange;
  using RevokedCallback = std::function<void(Status, std::vector<RevokedSession>)>;
  // An Apply with a subject_key: the subject script, then on a cluster the
  // index steps.
  void ApplySubject(const ApplyRequest& request, ApplyCallback cb);
  void ApplySubjectRekeyOnCluster(const ApplyRequest& request, ApplyCallback cb);
  // Runs the subject apply script on `key` (moving it to `target` on one
  // Redis); `taken`: bookkeeping of a session taken from its old key
  // (cluster re-key), else null.
  void RunSubjectScript(const ApplyRequest& request, const std::string& key, const std::string& target,
                        bool session_only, std::shared_ptr<const IndexChange> taken, ApplyCallback cb);
  // Cluster: the index steps after the session's own step.
  void UpdateIndex(std::shared_ptr<IndexChange> change, RevokedCallback done);
  // Cluster: deletes every session of `subject` but `keep` (a store key;
  // empty: none) whose u still names it.
  void RevokeMembers(const std::string& subject, const std::string& keep, RevokedCallback done);
  // Cluster: revokes the oldest sessions of `subject` beyond `max`, never `me`.
  void EnforceLimit(const std::string& subject, const std::string& me, uint64_t max, RevokedCallback done);
  // Cluster: the members of `subject` whose session still names it, in
  // index order, each with its HMGET of u, m and p; prunes the others.
  struct Member;
  void LiveMembers(const std::string& subject, std::function<void(Status, std::vector<Member>)> done);
  // Runs the standalone subject script (EVALSHA) in one of its modes.
  void SubjectCall(std::vector<std::string_view> keys_and_args, RedisRouter::Callback cb);
  std::string IndexKey(const std::string& subject) const { return config_.key_prefix + "subject:" + subject; }
  std::string PidKey(const std::string& public_id) const { return config_.key_prefix + "pid:" + public_id; }

  const RedisConfig config_;
  const bool cluster_;
  // Declared before the router: its connections' buffers hold blocks.
  net::BlockPool pool_;
  std::unique_ptr<RedisRouter> router_;
};

// The TLS of a store for `config` (config.tls set), with its first context
// made: an error (an unusable CA bundle or key pair) shows here, at startup.
Result<std::shared_ptr<RedisTls>> NewRedisTls(const RedisConfig& config);

}  // namespace sessiond
