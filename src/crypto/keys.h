// KeySet: the independent keys sessiond derives from one configured secret.
//
// Each purpose gets its own 32-byte key from HKDF-SHA256 (fixed salt, one info
// string per purpose), so knowing or misusing one key (say, the store-key
// hash, which a store dump exposes indirectly) tells nothing about another
// (the cookie MAC key). Derived once when the config loads; the MAC keys are
// kept as HmacKey with their padded states precomputed, so the request path
// does no key setup.
#pragma once

#include <string>
#include <string_view>

#include "crypto/crypto.h"
#include "base/status.h"

namespace sessiond::crypto {

// HKDF parameters. Changing any of them changes every derived key, which
// invalidates every issued cookie and store key: a new info string means a new
// purpose, never a new spelling of an old one.
inline constexpr std::string_view kKeySalt = "sessiond/v1";
inline constexpr std::string_view kInfoCookieMac = "sessiond cookie mac";
inline constexpr std::string_view kInfoCookieEnc = "sessiond cookie enc";
inline constexpr std::string_view kInfoStoreHash = "sessiond store hash";
inline constexpr std::string_view kInfoPublicId = "sessiond public id";
// The CSRF token key (session/csrf.h), derived on its own by the CSRF guard.
inline constexpr std::string_view kInfoCsrfToken = "sessiond csrf token";
// The names of shared rate-limit buckets (session/shared_rate_limit.h).
inline constexpr std::string_view kInfoRateBucket = "sessiond rate bucket";
inline constexpr size_t kDerivedKeySize = 32;

// Immutable after DeriveKeySet; safe to read from any thread. Move-only; the
// raw key bytes are wiped when it is destroyed.
struct KeySet {
  // Raw derived keys, kDerivedKeySize bytes each.
  std::string cookie_mac;  // MAC of store-manager tokens
  std::string cookie_enc;  // AES-256-GCM key of cookie-manager values
  std::string store_hash;  // keyed hash of session ids into store keys
  std::string public_id;   // keyed hash of session ids into X-Session-Id

  // Precomputed HMAC states of the three MAC keys above.
  HmacKey cookie_mac_key;
  HmacKey store_hash_key;
  HmacKey public_id_key;

  KeySet() = default;
  KeySet(KeySet&&) = default;
  KeySet& operator=(KeySet&&) = default;
  KeySet(const KeySet&) = delete;
  KeySet& operator=(const KeySet&) = delete;
  ~KeySet();
};

// Derives every key of the set from `secret` (the raw configured secret).
// Fails only when the secret is empty or OpenSSL fails; the message never
// contains the secret.
Result<KeySet> DeriveKeySet(std::string_view secret);

}  // namespace sessiond::crypto
