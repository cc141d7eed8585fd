// The names and sizes of the buckets of shared rate limits (rate_limits[]
// with `shared: true`; docs/HTTP.md, Shared rate limits), whose tokens the
// session filter takes from the Redis store (store/token_bucket.h).
//
// Every sessiond instance with the same secret_key and the same limit must
// name a key's bucket alike, and a dump of Redis must not show client
// addresses or anything of a session id. So a bucket's name is 32 hex digits
// of an HMAC-SHA256, under a key derived from secret_key for this purpose
// alone, over what identifies the limit (key kind, rate, burst, paths, and
// its number among identical limits) and the key (a client address key, a
// session id, a subject). Instances with the same limit share its bucket wherever it
// stands in their lists; a changed limit (or secret_key) starts new buckets,
// and the old ones expire.
//
// Immutable after Create: safe to use from every worker.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "store/token_bucket.h"

namespace sessiond {

class SharedBucketNames {
 public:
  static constexpr size_t kNameHexDigits = 32;

  // For config.policy.rate_limits (rules without `shared` get no name).
  // Fails only when the key cannot be derived.
  static Result<std::unique_ptr<SharedBucketNames>> Create(const Config& config);

  // The bucket of shared rule `rule` for `key`, into *out (kNameHexDigits
  // lowercase hex digits). False only when the HMAC fails.
  bool Name(size_t rule, std::string_view key, std::string* out) const;
  // What the store needs to know of rule `rule`'s buckets.
  const TokenBucketSpec& spec(size_t rule) const { return specs_[rule]; }
  // What identifies rule `rule` across instances (exposed for tests).
  const std::string& rule_id(size_t rule) const { return rule_ids_[rule]; }

 private:
  SharedBucketNames() = default;

  crypto::HmacKey key_;
  std::vector<std::string> rule_ids_;
  std::vector<TokenBucketSpec> specs_;
};

}  // namespace sessiond
