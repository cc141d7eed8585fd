// CSRF protection at the edge (docs/HEADER-PROTOCOL.md, CSRF token).
//
// Each session has a token derived from it, nothing stored: base64url of
// HMAC-SHA256(K, session id), where K comes from secret_key by HKDF with its
// own purpose (crypto/keys.h, kInfoCsrfToken). sessiond hands it to the
// backend as X-Session-Csrf for the pages it renders. A request with an
// unsafe method (every method but GET, HEAD, OPTIONS and TRACE) that carries
// an active session passes only when
//   - the configured header (csrf.header) holds the session's token, or
//   - Sec-Fetch-Site is same-origin, or
//   - Origin equals the request's own origin (X-Forwarded-Proto as
//     forwarded, "://", Host; default ports ignored);
// otherwise it is answered 403. Tokens are compared in constant time. A token
// of another session, or of this session before a Regenerate, never passes;
// tokens made under a secret_key_fallbacks key still do, so a key rotation
// does not break pages already open.
//
// Immutable after Create; any thread may use it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "http/message.h"
#include "session/routes.h"

namespace sessiond {

inline constexpr std::string_view kHeaderCsrf = "X-Session-Csrf";
// base64url of 32 bytes.
inline constexpr size_t kCsrfTokenSize = 43;

class CsrfGuard {
 public:
  // Derives the token keys from secret_key and its fallbacks.
  static Result<std::unique_ptr<CsrfGuard>> Create(const Config& config);

  // The token of the session whose raw id is `session_id`, into *out
  // (replaced; its capacity is reused). False only when OpenSSL fails.
  bool Token(std::string_view session_id, std::string* out) const;

  // True for the methods the check applies to.
  static bool IsUnsafeMethod(std::string_view method);

  // Whether `request` (unsafe method, a session with raw id `session_id`)
  // passes: the token header, Sec-Fetch-Site or Origin (see above).
  // `scratch` is reused for the expected token.
  bool Passes(const RequestHead& request, std::string_view session_id, std::string* scratch) const;

  // A path under csrf.exempt (by its match key) is never checked.
  bool Exempt(std::string_view match_key) const { return AnyMatches(exempt_, match_key); }
  bool has_exempt() const { return !exempt_.empty(); }

 private:
  CsrfGuard() = default;
  bool TokenWith(const crypto::HmacKey& key, std::string_view session_id, std::string* out) const;

  std::vector<crypto::HmacKey> keys_;  // [0] from secret_key, then the fallbacks
  std::string header_;
  std::vector<PathPattern> exempt_;
};

// The tokens a worker computed last, so a run of requests of one session
// (a page and its assets and calls, on one keep-alive connection) costs one
// HMAC rather than one each: kEntries entries, direct-mapped by the id's
// first byte (ids are CSPRNG output), each holding the whole id it is for.
// Owned by one worker's filter factory, used on its thread only; built per
// configuration, so a reload (which may change the keys) starts it empty.
// The ids are wiped when it is destroyed.
class CsrfTokenCache {
 public:
  static constexpr size_t kEntries = 64;
  CsrfTokenCache() = default;
  CsrfTokenCache(const CsrfTokenCache&) = delete;
  CsrfTokenCache& operator=(const CsrfTokenCache&) = delete;
  ~CsrfTokenCache();

  // guard.Token(session_id, out), from the cache when it holds the id.
  bool Token(const CsrfGuard& guard, std::string_view session_id, std::string* out);
  size_t hits() const { return hits_; }

 private:
  static constexpr size_t kIdSize = 32;  // CookieCodec::kIdSize
  struct Entry {
    bool used = false;
    unsigned char id[kIdSize];
    char token[kCsrfTokenSize];
  };
  Entry entries_[kEntries];
  size_t hits_ = 0;
};

// True when `origin` (an Origin header value) is scheme://host[:port] of the
// request whose forwarded protocol is `proto` and whose Host is `host`:
// compared without case, with :80 (http) and :443 (https) ignored on both.
// "null", a path, or user info never match. Exposed for tests.
bool IsSameOrigin(std::string_view origin, std::string_view proto, std::string_view host);

}  // namespace sessiond
