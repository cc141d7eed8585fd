// Cryptographic primitives of sessiond: thin wrappers over OpenSSL 3.
//
// Everything here runs on the request path of several worker threads at once,
// so the rules are: algorithms (EVP_MD, EVP_CIPHER) are fetched once per
// process and shared read-only; mutable OpenSSL contexts are per thread
// (thread_local) and reused, never created per call. Every function is
// thread-safe. None of them throws; failures come back as a Status (or
// `false`) whose message never contains key material or data.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

#include "base/status.h"

// From <openssl/types.h>; declared here so users of this header do not pull
// in OpenSSL.
struct evp_md_ctx_st;

namespace sessiond::crypto {

inline constexpr size_t kSha256Size = 32;
using Sha256Digest = std::array<unsigned char, kSha256Size>;

// An HMAC-SHA256 key with its inner and outer hash states precomputed (the
// SHA-256 states after absorbing key^ipad and key^opad), so signing costs the
// compression of the message blocks plus one outer block, and no key setup.
// Build one per key when the config loads and keep it.
//
// Thread-safety: Sign() is const and only reads (copies from) the
// precomputed states into a per-thread work context, so one HmacKey may be
// used by any number of threads at once.
class HmacKey {
 public:
  // An empty key: Sign() fails. Exists so holders can be default-built.
  HmacKey() = default;
  // Any key length (longer than 64 bytes is hashed first, per RFC 2104).
  static Result<HmacKey> Create(std::string_view key);

  HmacKey(HmacKey&& other) noexcept;
  HmacKey& operator=(HmacKey&& other) noexcept;
  HmacKey(const HmacKey&) = delete;
  HmacKey& operator=(const HmacKey&) = delete;
  ~HmacKey();

  // HMAC of the concatenation of `parts` (so callers need not build the
  // message in a temporary string). Returns false only when OpenSSL fails
  // (allocation failure) or the key is empty; *out is then unspecified and
  // must not be used.
  [[nodiscard]] bool Sign(std::initializer_list<std::string_view> parts, Sha256Digest* out) const;
  [[nodiscard]] bool Sign(std::string_view data, Sha256Digest* out) const {
    return Sign({data}, out);
  }

 private:
  evp_md_ctx_st* inner_ = nullptr;  // SHA-256 after key ^ ipad
  evp_md_ctx_st* outer_ = nullptr;  // SHA-256 after key ^ opad
};

// One-shot HMAC-SHA256: 32 raw bytes. Sets up the key on every call; code on
// the request path keeps an HmacKey instead.
Result<std::string> HmacSha256(std::string_view key, std::string_view data);

// True when a and b are equal. The time taken depends only on the lengths,
// never on the contents (CRYPTO_memcmp); lengths are not secret.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

// HKDF-SHA256 (RFC 5869), extract-then-expand. `length` is 1..8160 bytes
// (255 * 32); `ikm` must not be empty; salt and info may be.
Result<std::string> Hkdf(std::string_view ikm, std::string_view salt, std::string_view info,
                         size_t length);

// n bytes from OpenSSL's CSPRNG; Unavailable when it cannot deliver.
Result<std::string> RandomBytes(size_t n);

// AES-256-GCM with a 96-bit nonce and a 128-bit tag. The sealed form is
// nonce (12) || ciphertext (same length as the plaintext) || tag (16).
inline constexpr size_t kAeadKeySize = 32;
inline constexpr size_t kAeadNonceSize = 12;
inline constexpr size_t kAeadTagSize = 16;
inline constexpr size_t kAeadOverhead = kAeadNonceSize + kAeadTagSize;

// Encrypts and authenticates `plaintext` and authenticates `aad` under a fresh
// random nonce. Random 96-bit nonces are safe for up to 2^32 seals per key.
Result<std::string> Seal(std::string_view key, std::string_view aad, std::string_view plaintext);
// The same into *out, replacing its contents: a caller that keeps one buffer
// seals without allocating once it has grown. `plaintext` must not overlap
// *out. On failure *out is empty.
Status Seal(std::string_view key, std::string_view aad, std::string_view plaintext, std::string* out);

// As Seal with a caller-chosen nonce: for known-answer tests only. Reusing a
// nonce under one key destroys GCM's confidentiality and authenticity.
Result<std::string> SealWithNonce(std::string_view key, std::string_view nonce,
                                  std::string_view aad, std::string_view plaintext);

// Verifies and decrypts the output of Seal. Invalid when the input is too
// short or anything (nonce, ciphertext, tag, aad, key) differs; no plaintext
// is released unless the tag verifies.
Result<std::string> Open(std::string_view key, std::string_view aad, std::string_view sealed);
// The same into *plaintext, replacing its contents (its capacity is reused,
// so the request path decrypts without allocating). False for every failure,
// and *plaintext is then wiped and empty. `sealed` must not overlap it.
[[nodiscard]] bool Open(std::string_view key, std::string_view aad, std::string_view sealed,
                        std::string* plaintext);

// Base64url (RFC 4648 section 5) without padding.
std::string Base64UrlEncode(std::string_view data);
// Appends the encoding to *out.
void AppendBase64Url(std::string* out, std::string_view data);
// Length of the encoding of n bytes.
constexpr size_t Base64UrlEncodedSize(size_t n) { return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1); }

// Strict decoding: only [A-Za-z0-9_-], no padding, no whitespace, a length
// that is not 1 mod 4, and zero unused bits in the last character, so every
// byte string has exactly one accepted encoding. Returns false otherwise
// (*out is then unspecified). *out is replaced, keeping its capacity.
[[nodiscard]] bool Base64UrlDecode(std::string_view text, std::string* out);
// Length of the decoding of n characters (n must not be 1 mod 4).
constexpr size_t Base64UrlDecodedSize(size_t n) { return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1); }
// The same into out[0, Base64UrlDecodedSize(text.size())), which the caller
// provides.
[[nodiscard]] bool Base64UrlDecode(std::string_view text, unsigned char* out);

// Lowercase hexadecimal.
std::string HexEncode(std::string_view data);

}  // namespace sessiond::crypto
