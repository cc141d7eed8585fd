// Rate limits at the edge (docs/HTTP.md, Rate limits): one token bucket per
// key (a session, a client address) per rule of rate_limits:.
//
// A bucket holds at most `burst` tokens and gains `count` tokens per
// `period`, continuously; a request takes one, and a request that finds less
// than one is refused with 429 and Retry-After: the whole seconds until a
// token is back. A new key starts with a full bucket.
//
// One RateLimiter serves every worker of the process (a limit is per process
// whatever `workers` is), behind a lock per shard. A bucket is known by 64
// bits: a keyed SipHash-2-4 of the key (Hash), whose 128-bit key is drawn
// from the CSPRNG when the limiter is built, so a client cannot aim its keys
// at one shard or at another client's bucket; or bits that are random and
// secret already (a session id's, see TakeHashed). The key itself is never
// kept.
//
// Memory is bounded: a bucket that has refilled completely is the same as
// no bucket, so it is dropped (a shard is swept at most once a second, when
// it is used); and each rule keeps at most kMaxBucketsPerRule buckets: when
// a shard is full the buckets seen least recently go first. A reload builds
// a new limiter: buckets start full again.
//
// Thread-safe. Time is passed in (steady clock nanoseconds), so tests drive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "config/policy_config.h"

namespace sessiond {

struct RateDecision {
  bool allowed = true;
  int64_t retry_after_seconds = 0;  // when refused: at least 1
};

class RateLimiter {
 public:
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxBucketsPerRule = 65536;

  // Fails only when the CSPRNG cannot seed the hash key.
  static Result<std::unique_ptr<RateLimiter>> Create(const std::vector<RateLimitRule>& rules);

  // Takes a token from rule `rule`'s bucket for `key` at `now_ns`.
  RateDecision Take(size_t rule, std::string_view key, int64_t now_ns) { return TakeHashed(rule, Hash(key), now_ns); }
  // The same for a key already reduced to 64 bits: Hash(key), or 8 bytes of
  // something already random and secret (a session id, which a client
  // cannot choose).
  RateDecision TakeHashed(size_t rule, uint64_t hash, int64_t now_ns);
  // The keyed hash of a key (SipHash-2-4 under this limiter's random key).
  uint64_t Hash(std::string_view key) const { return SipHash24(hash_key_, key); }

  size_t rules() const { return rules_.size(); }
  // Buckets rule `rule` holds now (tests, and the memory bound).
  size_t bucket_count(size_t rule) const;

  // SipHash-2-4 of `data` under `key` (16 bytes). Exposed for its test vectors.
  static uint64_t SipHash24(const unsigned char key[16], std::string_view data);

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_ns = 0;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<uint64_t, Bucket> buckets;
    int64_t next_sweep_ns = 0;
  };
  struct Rule {
    double per_ns = 0;    // tokens gained per nanosecond
    double capacity = 1;  // burst
    std::unique_ptr<Shard[]> shards;
  };

  RateLimiter() = default;
  // Drops the buckets of `shard` that are full again at `now_ns`; if it is
  // still over its share of kMaxBucketsPerRule, the least recently used too.
  static void Sweep(const Rule& rule, Shard& shard, int64_t now_ns, bool over_cap);

  unsigned char hash_key_[16] = {};
  std::vector<Rule> rules_;
};

}  // namespace sessiond
