#include "crypto/keys.h"

#include <openssl/crypto.h>

#include <utility>

namespace sessiond::crypto {

namespace {

void Wipe(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(&(*s)[0], s->size());
}

// HKDF-SHA256 of `secret` for one purpose into *out.
Status DeriveOne(std::string_view secret, std::string_view info, std::string* out) {
  Result<std::string> key = Hkdf(secret, kKeySalt, info, kDerivedKeySize);
  if (!key.ok()) return key.status();
  *out = std::move(*key);
  return Status::OK();
}

// Precomputes the HMAC state of `raw` into *out.
Status PrepareMac(const std::string& raw, HmacKey* out) {
  Result<HmacKey> key = HmacKey::Create(raw);
  if (!key.ok()) return key.status();
  *out = std::move(*key);
  return Status::OK();
}

}  // namespace

KeySet::~KeySet() {
  Wipe(&cookie_mac);
  Wipe(&cookie_enc);
  Wipe(&store_hash);
  Wipe(&public_id);
}

Result<KeySet> DeriveKeySet(std::string_view secret) {
  if (secret.empty()) return Status::Invalid("secret key is empty");
  KeySet keys;
  for (Status s : {DeriveOne(secret, kInfoCookieMac, &keys.cookie_mac),
                   DeriveOne(secret, kInfoCookieEnc, &keys.cookie_enc),
                   DeriveOne(secret, kInfoStoreHash, &keys.store_hash),
                   DeriveOne(secret, kInfoPublicId, &keys.public_id)}) {
    if (!s.ok()) return s;
  }
  for (Status s : {PrepareMac(keys.cookie_mac, &keys.cookie_mac_key),
                   PrepareMac(keys.store_hash, &keys.store_hash_key),
                   PrepareMac(keys.public_id, &keys.public_id_key)}) {
    if (!s.ok()) return s;
  }
  return keys;
}

}  // namespace sessiond::crypto
