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
