// The cookie_decoder fuzz target: CookieCodec::Verify (DecodeToken / Open) on
// arbitrary cookie values, for both cookie formats, with one fallback secret.
//
// A fuzzer cannot forge a MAC or an AEAD tag, so random values only ever reach
// the pre-authentication parsing. Two input modes therefore mint values with
// the real keys, to reach what happens after authentication:
//   'T' k <32-byte id> <expiry text>  a token whose MAC is correct for
//       exactly these bytes (k & 1 selects secret or fallback). Oracle: it is
//       accepted iff the expiry is canonical decimal 1..kMaxExpiry.
//   'R' k <plaintext>  a sealed value whose AEAD is correct for any
//       plaintext (expiry || id || JSON): the session-JSON reader then sees
//       arbitrary authenticated bytes and must neither misbehave nor accept a
//       bad expiry.
// Anything else is a cookie value exactly as a client sent it.
//
// For every verdict: an invalid result carries nothing; a good one has a
// well-formed id and expiry; re-encoding the returned id/expiry (and data)
// gives a value that verifies to the same thing under the current key, and
// for tokens signed with the current key it is byte-identical (one accepted
// encoding per token). A value minted for one cookie name never verifies
// under another.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"
#include "crypto/crypto.h"
#include "crypto/keys.h"
#include "fuzz_check.h"
#include "session/cookie_codec.h"

namespace sessiond {
namespace fuzz {

inline constexpr int64_t kFuzzNow = 1700000000;
inline constexpr std::string_view kFuzzSecret = "fuzz-secret-key-0123456789abcdef-0123456789";
inline constexpr std::string_view kFuzzFallback = "fuzz-old-secret-0123456789abcdef-0123456789";
inline constexpr std::string_view kFuzzCookieName = "session_id";

inline Config CodecConfig(StoreKind manager, std::string_view name, std::string_view secret,
                          std::string_view fallback) {
  Config c;
  c.secret_key = std::string(secret);
  if (!fallback.empty()) c.secret_key_fallbacks.emplace_back(fallback);
  c.session.manager = manager;
  c.session.cookie_name = std::string(name);
  return c;
}

struct FuzzCodecs {
  std::shared_ptr<const CookieCodec> token;   // manager redis: signed tokens
  std::shared_ptr<const CookieCodec> sealed;  // manager cookie: sealed sessions
  std::shared_ptr<const CookieCodec> token_other_name;
  std::shared_ptr<const CookieCodec> sealed_other_name;
  crypto::KeySet keys[2];  // of kFuzzSecret and kFuzzFallback, to mint values
  bool ok = false;
};

// Built once per process (key derivation is the slow part).
inline const FuzzCodecs& Codecs() {
  static const FuzzCodecs* codecs = [] {
    auto* c = new FuzzCodecs();
    auto make = [](StoreKind kind, std::string_view name) -> std::shared_ptr<const CookieCodec> {
      auto r = CookieCodec::Create(CodecConfig(kind, name, kFuzzSecret, kFuzzFallback));
      return r.ok() ? *r : nullptr;
    };
    c->token = make(StoreKind::kRedis, kFuzzCookieName);
    c->sealed = make(StoreKind::kCookie, kFuzzCookieName);
    c->token_other_name = make(StoreKind::kRedis, "other_session");
    c->sealed_other_name = make(StoreKind::kCookie, "other_session");
    auto k0 = crypto::DeriveKeySet(kFuzzSecret);
    auto k1 = crypto::DeriveKeySet(kFuzzFallback);
    c->ok = c->token && c->sealed && c->token_other_name && c->sealed_other_name && k0.ok() && k1.ok();
    if (k0.ok()) c->keys[0] = std::move(*k0);
    if (k1.ok()) c->keys[1] = std::move(*k1);
    return c;
  }();
  return *codecs;
}

// A token signed with keys[key] for exactly these id bytes and expiry text.
inline std::string MintToken(size_t key, std::string_view id, std::string_view expiry) {
  crypto::Sha256Digest mac{};
  std::string prefix = "sessiond-token|v1|" + std::string(kFuzzCookieName) + "|";
  if (!Codecs().keys[key].cookie_mac_key.Sign({prefix, id, "|", expiry}, &mac)) return "";
  std::string out = "1.";
  crypto::AppendBase64Url(&out, id);
  out += ".";
  out += expiry;
  out += ".";
  crypto::AppendBase64Url(&out, std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
  return out;
}

// A sealed value whose tag is valid for `plaintext` under keys[key]. A fixed
// nonce keeps runs reproducible (these values never protect anything).
inline std::string MintSealed(size_t key, std::string_view plaintext) {
  const std::string aad = "sessiond-cookie|v2|" + std::string(kFuzzCookieName);
  auto sealed = crypto::SealWithNonce(Codecs().keys[key].cookie_enc, std::string(crypto::kAeadNonceSize, '\0'),
                                      aad, plaintext);
  return sealed.ok() ? "2." + crypto::Base64UrlEncode(*sealed) : std::string();
}

inline bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

inline bool CheckDecoded(const DecodedCookie& d, const CookieCodec& codec) {
  if (d.verdict == CookieVerdict::kInvalid) {
    FUZZ_CHECK(d.id.empty() && d.expires_at == 0 && d.key_index == 0 && d.data.empty());
    return true;
  }
  FUZZ_CHECK(d.id.size() == CookieCodec::kIdSize);
  FUZZ_CHECK(d.expires_at >= 1 && d.expires_at <= CookieCodec::kMaxExpiry);
  FUZZ_CHECK(d.key_index < codec.key_count());
  FUZZ_CHECK((d.verdict == CookieVerdict::kExpired) == (d.expires_at <= kFuzzNow));
  if (d.verdict == CookieVerdict::kExpired) FUZZ_CHECK(d.data.empty());
  return true;
}

// Re-encoding what a token verified to.
inline bool CheckTokenRoundTrip(std::string_view value, const DecodedCookie& d, const CookieCodec& codec) {
  Result<std::string> again = codec.EncodeToken(d.id, d.expires_at);
  FUZZ_CHECK(again.ok());
  if (d.key_index == 0) FUZZ_CHECK(*again == value);  // exactly one accepted encoding
  const DecodedCookie d2 = codec.DecodeToken(*again, kFuzzNow);
  FUZZ_CHECK(d2.verdict == d.verdict && d2.id == d.id && d2.expires_at == d.expires_at && d2.key_index == 0);
  const std::string set_cookie = codec.SetCookie(*again, d.expires_at, kFuzzNow);
  FUZZ_CHECK(set_cookie.rfind(std::string(kFuzzCookieName) + "=" + *again + ";", 0) == 0);
  FUZZ_CHECK(IsPrintableAscii(set_cookie));
  return true;
}

// Re-sealing what a sealed value opened to.
inline bool CheckSealedRoundTrip(const DecodedCookie& d, const CookieCodec& codec) {
  const SessionData data = d.verdict == CookieVerdict::kValid ? d.data : SessionData();
  Result<std::string> again = codec.Seal(d.id, d.expires_at, data);
  if (!again.ok()) {
    // Only a session too large for a browser cookie may be refused.
    FUZZ_CHECK(again.status().code() == Status::Code::kTooLarge);
    return true;
  }
  FUZZ_CHECK(codec.CheckCookieSize(*again).ok());
  const DecodedCookie d2 = codec.Open(*again, kFuzzNow);
  FUZZ_CHECK(d2.verdict == d.verdict && d2.id == d.id && d2.expires_at == d.expires_at && d2.key_index == 0);
  bool keys_utf8 = true;
  for (const auto& [key, value] : data) keys_utf8 = keys_utf8 && IsValidUtf8(key);
  // Keys are re-encoded as JSON, so only valid UTF-8 survives byte for byte
  // (invalid bytes become U+FFFD; such keys exist only in forged payloads).
  if (keys_utf8) FUZZ_CHECK(d2.data == data);
  else FUZZ_CHECK(d2.data.size() <= data.size());
  return true;
}

inline bool CheckCookieValue(std::string_view value) {
  const FuzzCodecs& c = Codecs();
  FUZZ_CHECK(c.ok);
  const DecodedCookie token = c.token->Verify(value, kFuzzNow);
  const DecodedCookie sealed = c.sealed->Verify(value, kFuzzNow);
  FUZZ_TRY(CheckDecoded(token, *c.token));
  FUZZ_TRY(CheckDecoded(sealed, *c.sealed));
  FUZZ_CHECK(token.verdict == CookieVerdict::kInvalid || sealed.verdict == CookieVerdict::kInvalid);
  if (token.verdict != CookieVerdict::kInvalid) FUZZ_TRY(CheckTokenRoundTrip(value, token, *c.token));
  if (sealed.verdict != CookieVerdict::kInvalid) FUZZ_TRY(CheckSealedRoundTrip(sealed, *c.sealed));
  // The cookie name is authenticated: nothing minted for session_id is
  // accepted under another name.
  FUZZ_CHECK(c.token_other_name->Verify(value, kFuzzNow).verdict == CookieVerdict::kInvalid);
  FUZZ_CHECK(c.sealed_other_name->Verify(value, kFuzzNow).verdict == CookieVerdict::kInvalid);
  return true;
}

inline bool IsCanonicalExpiry(std::string_view s) {
  if (s.empty() || s.size() > 12 || s[0] == '0') return false;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
  }
  return true;
}

inline int64_t DecimalValue(std::string_view s) {
  int64_t v = 0;
  for (char ch : s) v = v * 10 + (ch - '0');
  return v;
}

inline bool CheckCookieInput(std::string_view input) {
  const FuzzCodecs& c = Codecs();
  FUZZ_CHECK(c.ok);
  if (input.size() >= 2 && input[0] == 'T') {
    const size_t key = static_cast<unsigned char>(input[1]) & 1u;
    std::string id(input.substr(2, CookieCodec::kIdSize));
    id.resize(CookieCodec::kIdSize, '\0');
    const std::string_view expiry = input.size() > 34 ? input.substr(34) : std::string_view();
    const std::string value = MintToken(key, id, expiry);
    FUZZ_CHECK(!value.empty());
    const DecodedCookie d = c.token->DecodeToken(value, kFuzzNow);
    if (IsCanonicalExpiry(expiry)) {
      FUZZ_CHECK(d.verdict != CookieVerdict::kInvalid);
      FUZZ_CHECK(d.id == id && d.expires_at == DecimalValue(expiry) && d.key_index == key);
    } else {
      FUZZ_CHECK(d.verdict == CookieVerdict::kInvalid);
    }
    return CheckCookieValue(value);
  }
  if (input.size() >= 2 && input[0] == 'R') {
    const size_t key = static_cast<unsigned char>(input[1]) & 1u;
    const std::string_view plain = input.substr(2);
    const std::string value = MintSealed(key, plain);
    FUZZ_CHECK(!value.empty());
    const DecodedCookie d = c.sealed->Open(value, kFuzzNow);
    constexpr size_t kHead = 8 + CookieCodec::kIdSize + 16;  // expiry || id || public id
    uint64_t expiry = 0;
    for (size_t i = 0; i < 8 && i < plain.size(); ++i) expiry = (expiry << 8) | static_cast<unsigned char>(plain[i]);
    const bool in_range = expiry >= 1 && expiry <= static_cast<uint64_t>(CookieCodec::kMaxExpiry);
    if (plain.size() < kHead || !in_range || value.size() > CookieCodec::kMaxSealedBytes) {
      FUZZ_CHECK(d.verdict == CookieVerdict::kInvalid);
    } else if (static_cast<int64_t>(expiry) <= kFuzzNow) {
      FUZZ_CHECK(d.verdict == CookieVerdict::kExpired);
    }
    if (d.verdict != CookieVerdict::kInvalid) {
      FUZZ_CHECK(d.id == plain.substr(8, CookieCodec::kIdSize));
      FUZZ_CHECK(static_cast<uint64_t>(d.expires_at) == expiry && d.key_index == key);
    }
    return CheckCookieValue(value);
  }
  return CheckCookieValue(input);
}

}  // namespace fuzz
}  // namespace sessiond
