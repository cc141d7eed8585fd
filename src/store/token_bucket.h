// Token buckets kept where every sessiond instance sees them, for rate limits
// with `shared: true` (docs/HTTP.md, Shared rate limits). The redis store is
// the one store that has them (store/redis_token_bucket.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "base/status.h"

namespace sessiond {

// A bucket gains `count` tokens per `period_ms`, continuously, up to `burst`;
// a bucket nobody has used (or that has refilled and expired) is full.
struct TokenBucketSpec {
  uint64_t count = 1;
  int64_t period_ms = 1000;
  uint64_t burst = 1;
};

struct TokenVerdict {
  bool allowed = true;
  int64_t retry_after_ms = 0;  // when refused: until a token is back (at least 1)
};

class SharedTokenBuckets {
 public:
  using TakeCallback = std::function<void(const Status&, const TokenVerdict&)>;

  // Takes one token from bucket `name`, which the caller makes distinct per
  // limit and key (letters and digits only). The callback runs as a
  // SessionStore's do (store.h): on the worker's thread, once, never inside
  // the call, and not at all when the store is destroyed first. A failure
  // (Unavailable, Timeout) says nothing about the bucket: the caller
  // follows redis.on_error.
  virtual void TakeToken(std::string_view name, const TokenBucketSpec& spec, TakeCallback cb) = 0;

 protected:
  SharedTokenBuckets() = default;
  ~SharedTokenBuckets() = default;
};

}  // namespace sessiond
