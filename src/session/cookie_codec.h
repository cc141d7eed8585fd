// CookieCodec: session cookie value <-> session id (or sealed session), the
// keyed store key and public id of a session, and the Set-Cookie header.
//
// Two cookie formats (docs/COOKIES.md, Formats), both URL-safe and authenticated
// with keys derived from secret_key:
//
//   store managers (redis, file, memory): a signed token carrying only the id
//     "1." b64url(id) "." expiry "." b64url(HMAC(cookie_mac,
//         "sessiond-token|v1|" cookie_name "|" id "|" expiry))
//   cookie manager: the whole session, encrypted and authenticated
//     "3." b64url(AES-256-GCM(cookie_enc, nonce,
//         plaintext = flags (1) || expiry (8 bytes, big-endian) || created (8) ||
//                     refreshed (8) || id (32) ||
//                     public id (16: the first half of HMAC(public_id key, id)) ||
//                     session JSON (raw-deflated when flags bit 0 is set),
//         aad = "sessiond-cookie|v3|" cookie_name))
//     Values of the previous format "2." (no flags, created or refreshed)
//     still open; their created and refreshed times are taken as expiry -
//     session_expiration_time (docs/COOKIES.md, Sealed cookie).
//   A sealed value too long for one cookie is split over several
//   (docs/COOKIES.md, Chunked cookies): NAME = "3c" N "." piece 0, NAME.1 =
//   piece 1, ..., NAME.(N-1), the pieces being the base64url text in order;
//   see SessionCookieLines and session/cookie_chunks.h.
//
// The cookie name is authenticated in both, so a value minted for one
// session_cookie_name is invalid under another. Expiry is Unix seconds and is
// authenticated too: the server, not the browser, enforces it.
//
// Key rotation: values are always minted with secret_key (key index 0);
// verification tries secret_key, then each secret_key_fallbacks entry in order
// (index 1..n). A caller that sees key_index > 0 re-issues the cookie and
// re-keys the store entry (StoreKey(id, key_index) -> StoreKey(id, 0)).
//
// Built once per config load and immutable afterwards; every method is const
// and safe to call from any number of threads at once.
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "crypto/keys.h"
#include "store/session_data.h"
#include "base/status.h"

namespace sessiond {

enum class CookieVerdict {
  kValid,    // authentic and not expired
  kExpired,  // authentic, but expires_at <= now
  kInvalid,  // anything else: malformed, forged, tampered, other name or secret
};

// What a cookie value turned out to be. For kInvalid every other field is
// empty/zero. For kExpired id, expires_at and key_index are set, data is not
// decoded (empty).
//
// The Verify overload that fills a caller's DecodedCookie reuses its strings'
// capacity, so a filter that keeps one decodes cookie after cookie without
// allocating.
struct DecodedCookie {
  CookieVerdict verdict = CookieVerdict::kInvalid;
  std::string id;          // raw session id, CookieCodec::kIdSize bytes
  int64_t expires_at = 0;  // Unix seconds
  size_t key_index = 0;    // 0 = secret_key, i = secret_key_fallbacks[i - 1]
  SessionData data;        // cookie manager, kValid only, when asked to decode it
  std::string json;        // cookie manager, kValid only: the sealed JSON, exactly SerializeSession(data)
  std::string public_id;   // cookie manager: PublicId(id) as sealed (empty for tokens)
  // Cookie manager: when the session was created (or last regenerated) and
  // last refreshed, Unix seconds. 0 for tokens (the store keeps them).
  int64_t created_at = 0;
  int64_t refreshed_at = 0;

  // Back to kInvalid with every field empty, keeping the strings' capacity.
  void Clear();
};

// Working memory of Verify and Seal for the cookie manager: the AEAD bytes
// and the plaintext. Kept by the caller (one per filter) so that neither
// allocates once the buffers have grown to a cookie's size.
struct CookieScratch {
  std::string sealed;
  std::string plain;
  std::string inflated;   // a compressed session's JSON
  std::string assembled;  // a chunked value put back together
};

// The times sealed with a cookie-manager session (Unix seconds).
struct SealTimes {
  int64_t expires_at = 0;
  int64_t created_at = 0;    // creation or last Regenerate: the absolute timeout counts from it
  int64_t refreshed_at = 0;  // last sliding refresh (or creation)
};

class CookieCodec {
 public:
  static constexpr size_t kIdSize = 32;
  // Inputs longer than these are rejected unread (kInvalid).
  static constexpr size_t kMaxTokenBytes = 512;
  // A sealed value, chunks put together: kMaxCookieChunks (8) cookies of at
  // most 4096 bytes.
  static constexpr size_t kMaxSealedBytes = 8 * 4096;
  // What browsers store of one cookie: name + "=" + value.
  static constexpr size_t kBrowserCookieLimit = 4096;
  // The most one Set-Cookie line ("Set-Cookie: " name=value and every
  // attribute) may hold: docs/COOKIES.md, Chunked cookies.
  static constexpr size_t kSetCookieLineLimit = 4096;
  // Expiry times are 1..kMaxExpiry (12 decimal digits: beyond year 30000).
  static constexpr int64_t kMaxExpiry = 999999999999;

  // Derives the KeySet of secret_key and of every fallback and prebuilds the
  // Set-Cookie attribute strings. Invalid when a secret is empty or the
  // cookie name, path or domain could break the Set-Cookie header (which
  // config validation should already have refused). Messages name no secret.
  static Result<std::shared_ptr<const CookieCodec>> Create(const Config& config);

  CookieCodec(const CookieCodec&) = delete;
  CookieCodec& operator=(const CookieCodec&) = delete;

  const std::string& cookie_name() const { return cookie_name_; }
  // 1 + the number of fallback secrets.
  size_t key_count() const { return keys_.size(); }

  // A fresh session id: kIdSize bytes from the CSPRNG. Unavailable when the
  // generator fails.
  Result<std::string> NewSessionId() const;

  // now + session_expiration_time, in Unix seconds (at least now + 1).
  int64_t ExpiresAt(int64_t now) const;

  // --- store managers -----------------------------------------------------

  // The signed token for `id`. Invalid when id is not kIdSize bytes or
  // expires_at is outside 1..kMaxExpiry.
  Result<std::string> EncodeToken(std::string_view id, int64_t expires_at) const;

  // Verifies a token. Strict: exact field lengths, canonical base64url and
  // decimal, no extra characters, at most kMaxTokenBytes.
  DecodedCookie DecodeToken(std::string_view value, int64_t now) const;

  // --- cookie manager -----------------------------------------------------

  // The sealed cookie value holding id, expiry and `data` (created and
  // refreshed taken as expires_at - session_expiration_time). TooLarge (see
  // CheckCookieSize) when it needs more than max_cookie_chunks cookies;
  // Invalid for a bad id or expiry; Unavailable when the CSPRNG fails.
  Result<std::string> Seal(std::string_view id, int64_t expires_at, const SessionData& data) const;
  Result<std::string> Seal(std::string_view id, const SealTimes& times, const SessionData& data) const;

  // Verifies and decrypts a sealed value (at most kMaxSealedBytes). The
  // session JSON is read back into SessionData: keys decoded to UTF-8, values
  // exactly as Seal's SessionData held them (compact ASCII-only JSON), the
  // same as an nlohmann parse + dump(-1, ' ', true) gives for such values. A
  // payload that is not one JSON object is kInvalid.
  // With decode_data false the JSON is validated but not turned into a
  // SessionData (result.json holds it): a request that only reads its
  // session never builds the map (see ParseSessionJson).
  DecodedCookie Open(std::string_view value, int64_t now, bool decode_data = true) const;

  // DecodeToken or Open, whichever session.manager calls for.
  DecodedCookie Verify(std::string_view value, int64_t now, bool decode_data = true) const;

  // The request path's Verify: into *out (see DecodedCookie), with the data
  // validated but not decoded (out->json holds it), using *scratch as working
  // memory. Allocates nothing once *out and *scratch have held a cookie of
  // this size, and costs no HMAC for the cookie manager (the public id
  // travels in the sealed value).
  void Verify(std::string_view value, int64_t now, CookieScratch* scratch, DecodedCookie* out) const;

  // The request path's Seal: the sealed value of the session whose JSON form
  // is `json` (SerializeSession's output, or MergeSessionJson's) into *value,
  // replacing it. `public_id` is PublicId(id) when the caller knows it (a
  // cookie that verified under key index 0 for this id carries it), or empty
  // to have it computed (an HMAC). With session.compress the JSON is
  // deflated first when that makes it shorter. Errors as for the other Seal;
  // *value is then empty.
  Status Seal(std::string_view id, const SealTimes& times, std::string_view json, std::string_view public_id,
              CookieScratch* scratch, std::string* value) const;

  // --- chunks (cookie manager) ---------------------------------------------

  // How many cookies the sealed value `value` ("3." ...) needs so that each
  // Set-Cookie line stays within kSetCookieLineLimit: 1 when it fits whole.
  size_t ChunksFor(std::string_view value) const;
  size_t max_chunks() const { return max_chunks_; }
  // The Set-Cookie header values that carry `value`: NAME alone, or NAME
  // and NAME.1 .. NAME.(n-1). Each is handed to emit(header value) in order,
  // built in *buf (reused). Returns how many cookies were emitted (0 when the
  // value needs more than max_cookie_chunks: the caller checked with
  // CheckCookieSize).
  template <class Emit>
  size_t EmitSetCookies(std::string_view value, int64_t expires_at, int64_t now, std::string* buf,
                        Emit&& emit) const;
  // The header value that deletes chunk cookie NAME.k (k >= 1); k = 0 is
  // ClearCookie().
  void AppendClearChunk(std::string* out, size_t k) const;

  // --- keyed names of a session -------------------------------------------

  // The key a store files the session under: 64 lowercase hex characters of
  // HMAC(store_hash[key_index], id). A store dump therefore holds no usable
  // cookie and no id. Invalid when key_index >= key_count().
  Result<std::string> StoreKey(std::string_view id, size_t key_index) const;

  // The X-Session-Id value: base64url of the first 16 bytes of
  // HMAC(public_id of secret_key, id). Stable for an id under one secret;
  // reveals nothing usable.
  Result<std::string> PublicId(std::string_view id) const;

  // --- Set-Cookie -----------------------------------------------------------

  // The Set-Cookie header value for `value`:
  //   name=value; Path=..; [Domain=..;] [Max-Age=N; Expires=<IMF-fixdate>;]
  //   [HttpOnly;] [Secure;] SameSite=..[; Partitioned]
  // Max-Age and Expires appear only when session_permanent is true; Max-Age is
  // expires_at - now (0 if that is negative). One allocation.
  std::string SetCookie(std::string_view value, int64_t expires_at, int64_t now) const;
  // The same, appended to *out (a buffer the caller reuses).
  void AppendSetCookie(std::string* out, std::string_view value, int64_t expires_at, int64_t now) const;

  // The header value that deletes the cookie: empty value, Max-Age=0, Expires
  // at the epoch, and the same Path/Domain/Secure/SameSite/Partitioned as
  // SetCookie (browsers only replace a cookie whose attributes match).
  const std::string& ClearCookie() const { return clear_cookie_; }

  // Store tokens: OK when name=value fits the browser limit; otherwise
  // TooLarge("session cookie would be N bytes, over the 4096-byte browser
  // limit"). Sealed values: OK when ChunksFor(value) <= max_cookie_chunks;
  // otherwise TooLarge("session cookie would need N cookies, over
  // session.max_cookie_chunks (M)").
  Status CheckCookieSize(std::string_view value) const;

 private:
  CookieCodec() = default;

  void DecodeToken(std::string_view value, int64_t now, DecodedCookie* out) const;
  void Open(std::string_view value, int64_t now, bool decode_data, CookieScratch* scratch,
            DecodedCookie* out) const;

  // Digest of the token MAC input under keys_[index].
  bool TokenMac(size_t index, std::string_view id, std::string_view expiry,
                crypto::Sha256Digest* out) const;
  // Length of the sealed value ("3." ...) holding `payload_size` JSON bytes.
  size_t SealedValueSize(size_t payload_size) const;
  // "Set-Cookie: " NAME [".k"] "=" plus the longest attributes: what a line
  // holds besides the value, at its longest (chunk names take 2 more).
  size_t LineOverhead() const { return line_overhead_; }
  size_t PieceBytes() const { return piece_bytes_; }
  void AppendSetCookieNamed(std::string* out, size_t chunk, std::string_view value, int64_t expires_at,
                            int64_t now) const;

  std::vector<crypto::KeySet> keys_;  // [0] = secret_key, then the fallbacks
  StoreKind manager_ = StoreKind::kCookie;
  int64_t expiration_seconds_ = 0;
  bool permanent_ = true;
  bool compress_ = false;
  size_t max_chunks_ = 4;
  uint64_t max_session_bytes_ = 4096;  // bounds a compressed session's inflated size
  size_t line_overhead_ = 0;
  size_t piece_bytes_ = 0;  // base64url characters per chunk

  std::string cookie_name_;
  std::string token_mac_prefix_;  // "sessiond-token|v1|" name "|"
  std::string sealed_aad_;        // "sessiond-cookie|v3|" name
  std::string legacy_aad_;        // "sessiond-cookie|v2|" name (format 2, read only)

  // Set-Cookie pieces, built once: "name=", "; Path=..[; Domain=..]",
  // "; HttpOnly; Secure; SameSite=..[; Partitioned]".
  std::string name_eq_;
  std::string scope_attrs_;
  std::string flag_attrs_;
  std::string clear_cookie_;
};

template <class Emit>
size_t CookieCodec::EmitSetCookies(std::string_view value, int64_t expires_at, int64_t now, std::string* buf,
                                   Emit&& emit) const {
  const size_t n = ChunksFor(value);
  if (n > max_chunks_) return 0;
  if (n == 1) {
    buf->clear();
    AppendSetCookieNamed(buf, 0, value, expires_at, now);
    emit(std::string_view(*buf));
    return 1;
  }
  // "3." B  ->  "3c" n "." B[0, piece) | B[piece, 2 piece) | ...
  const std::string_view body = value.substr(2);
  for (size_t k = 0; k < n; ++k) {
    buf->clear();
    const std::string_view piece = body.substr(std::min(body.size(), k * piece_bytes_), piece_bytes_);
    if (k == 0) {
      char head[4] = {'3', 'c', static_cast<char>('0' + n), '.'};
      std::string joined;  // rare path (large sessions): one small allocation is fine
      joined.reserve(sizeof(head) + piece.size());
      joined.append(head, sizeof(head));
      joined.append(piece);
      AppendSetCookieNamed(buf, 0, joined, expires_at, now);
    } else {
      AppendSetCookieNamed(buf, k, piece, expires_at, now);
    }
    emit(std::string_view(*buf));
  }
  return n;
}

}  // namespace sessiond
