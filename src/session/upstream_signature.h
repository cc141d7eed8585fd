// The signature of what sessiond tells the backend (docs/HEADER-PROTOCOL.md,
// Signed session headers): with upstream_signature configured, every
// forwarded request carries
//
//   X-Session-Signature: t=<Unix seconds>,v1=<64 lower-case hex digits>
//
// v1 being HMAC-SHA256(key, canonical text), the canonical text:
//
//   "sessiond-signature-v1\n"
//   t "\n"
//   method "\n"
//   target "\n"                      exactly as forwarded (normalised when
//                                    routes are configured)
//   then, for every X-Session-* header of the forwarded request but
//   X-Session-Signature, sorted by lower-cased name (bytewise; headers of one
//   name in the order forwarded):
//   lower-cased name ":" value "\n"
//
// A backend reached directly, not through sessiond, sees no valid signature
// and can refuse the request; a backend also refuses a signature older than
// its max age, so a captured request cannot be replayed for long. The key is
// the configured bytes themselves, shared with the backend.
//
// Immutable after Create; any thread may use it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/crypto.h"
#include "http/headers.h"

namespace sessiond {

inline constexpr std::string_view kHeaderSignature = "X-Session-Signature";

class UpstreamSigner {
 public:
  static Result<std::unique_ptr<UpstreamSigner>> Create(std::string_view key);

  // Appends the canonical text of a request to *out (see above). Headers
  // other than X-Session-* (by HeaderId::kSessionAny) are not part of it.
  static void AppendCanonical(std::string* out, int64_t t, std::string_view method, std::string_view target,
                              const HeaderList& headers);

  // The X-Session-Signature value for the request as it will be forwarded,
  // into *value; `scratch` holds the canonical text. False only when
  // OpenSSL fails.
  bool Sign(int64_t t, std::string_view method, std::string_view target, const HeaderList& headers,
            std::string* scratch, std::string* value) const;

 private:
  explicit UpstreamSigner(crypto::HmacKey key) : key_(std::move(key)) {}
  crypto::HmacKey key_;
};

}  // namespace sessiond
