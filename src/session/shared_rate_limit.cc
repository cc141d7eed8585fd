#include "session/shared_rate_limit.h"

#include <openssl/crypto.h>

#include <map>

#include "crypto/keys.h"

namespace sessiond {

namespace {

// Everything that makes two limits count the same thing: a new field of
// RateLimitRule that changes what a bucket counts belongs here.
std::string RuleIdentity(const RateLimitRule& r) {
  std::string id = "v1 ";
  id += ToString(r.key);
  id += ' ';
  id += std::to_string(r.count);
  id += '/';
  id += std::to_string(r.period.count());
  id += "ms burst ";
  id += std::to_string(r.burst);
  id += " paths";
  for (const std::string& p : r.paths) {
    id += ' ';
    id += p;
  }
  return id;
}

}  // namespace

Result<std::unique_ptr<SharedBucketNames>> SharedBucketNames::Create(const Config& config) {
  std::unique_ptr<SharedBucketNames> names(new SharedBucketNames());
  Result<std::string> raw =
      crypto::Hkdf(config.secret_key, crypto::kKeySalt, crypto::kInfoRateBucket, crypto::kDerivedKeySize);
  if (!raw.ok()) return raw.status();
  Result<crypto::HmacKey> key = crypto::HmacKey::Create(*raw);
  OPENSSL_cleanse(raw->data(), raw->size());
  if (!key.ok()) return key.status();
  names->key_ = std::move(*key);
  // Identical limits in one list are told apart by their order among
  // themselves, so each keeps a bucket of its own.
  std::map<std::string, int> seen;
  for (const RateLimitRule& r : config.policy.rate_limits) {
    std::string id;
    if (r.shared) {
      id = RuleIdentity(r);
      id += " #" + std::to_string(seen[id]++);
    }
    names->rule_ids_.push_back(std::move(id));
    TokenBucketSpec spec;
    spec.count = r.count;
    spec.period_ms = r.period.count();
    spec.burst = r.burst;
    names->specs_.push_back(spec);
  }
  return names;
}

bool SharedBucketNames::Name(size_t rule, std::string_view key, std::string* out) const {
  crypto::Sha256Digest mac;
  if (!key_.Sign({rule_ids_[rule], std::string_view("\0", 1), key}, &mac)) return false;
  static const char kHex[] = "0123456789abcdef";
  out->resize(kNameHexDigits);
  for (size_t i = 0; i < kNameHexDigits / 2; ++i) {
    (*out)[2 * i] = kHex[mac[i] >> 4];
    (*out)[2 * i + 1] = kHex[mac[i] & 0xF];
  }
  return true;
}

}  // namespace sessiond
