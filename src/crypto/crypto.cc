#include "crypto/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <pthread.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <utility>

namespace sessiond::crypto {

namespace {

constexpr size_t kSha256BlockSize = 64;

// ---------------------------------------------------------------------------
// Algorithms and per-thread contexts
// ---------------------------------------------------------------------------

// Fetched once per process (thread-safe static init) and never freed: an
// EVP_MD/EVP_CIPHER is immutable and reference counted, so sharing one across
// threads is safe, and fetching per call costs a locked name lookup.
const EVP_MD* Sha256() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

// The mutable contexts of one thread, created on first use and freed when the
// thread exits. Nothing here is reentrant: no function in this file calls
// back into user code while it holds one.
struct ThreadContexts {
  EVP_MD_CTX* md = nullptr;
  EVP_CIPHER_CTX* cipher = nullptr;
  // True once `cipher` holds AES-256-GCM keyed with `cipher_key`, so later
  // inits skip the cipher lookup and, for the same key (the common case: one
  // current secret), the AES key schedule and GHASH setup too.
  bool cipher_ready = false;
  unsigned char cipher_key[kAeadKeySize];

  ~ThreadContexts() {
    EVP_MD_CTX_free(md);
    EVP_CIPHER_CTX_free(cipher);
    OPENSSL_cleanse(cipher_key, sizeof(cipher_key));
  }
};

ThreadContexts& Tls() {
  thread_local ThreadContexts contexts;
  return contexts;
}

EVP_MD_CTX* ThreadMdCtx() {
  ThreadContexts& t = Tls();
  if (t.md == nullptr) t.md = EVP_MD_CTX_new();
  return t.md;
}

// After a failed operation the context may be half-way through a message;
// resetting makes the next call start from scratch.
void ResetThreadGcmCtx() {
  ThreadContexts& t = Tls();
  if (t.cipher != nullptr) EVP_CIPHER_CTX_reset(t.cipher);
  t.cipher_ready = false;
  OPENSSL_cleanse(t.cipher_key, sizeof(t.cipher_key));
}

// True when the two 32-byte keys are equal, in time independent of their
// contents (as CRYPTO_memcmp, but a word at a time: this runs on every
// cookie sealed or opened).
bool SameAeadKey(const unsigned char* a, const unsigned char* b) {
  static_assert(kAeadKeySize % sizeof(uint64_t) == 0, "whole words");
  uint64_t diff = 0;
  for (size_t i = 0; i < kAeadKeySize; i += sizeof(uint64_t)) {
    uint64_t x, y;
    std::memcpy(&x, a + i, sizeof(x));
    std::memcpy(&y, b + i, sizeof(y));
    diff |= x ^ y;
  }
  return diff == 0;
}

// Returns the thread's cipher context initialised for AES-256-GCM with `key`
// and `nonce`, for encryption (enc = 1) or decryption (enc = 0); nullptr on
// failure. Key and nonce sizes are checked by the callers.
EVP_CIPHER_CTX* ThreadGcmCtx(std::string_view key, std::string_view nonce, int enc) {
  ThreadContexts& t = Tls();
  if (t.cipher == nullptr) {
    t.cipher = EVP_CIPHER_CTX_new();
    if (t.cipher == nullptr) return nullptr;
  }
  const auto* k = reinterpret_cast<const unsigned char*>(key.data());
  const auto* iv = reinterpret_cast<const unsigned char*>(nonce.data());
  const EVP_CIPHER* cipher = nullptr;
  if (!t.cipher_ready) {
    cipher = Aes256Gcm();
    if (cipher == nullptr) return nullptr;
  }
  if (t.cipher_ready && SameAeadKey(t.cipher_key, k)) {
    k = nullptr;  // keep the schedule: GCM uses the same one in both directions
  } else {
    std::memcpy(t.cipher_key, k, kAeadKeySize);
  }
  if (EVP_CipherInit_ex2(t.cipher, cipher, k, iv, enc, nullptr) != 1) {
    ResetThreadGcmCtx();
    return nullptr;
  }
  t.cipher_ready = true;
  return t.cipher;
}

// Nonces for Seal, drawn from the CSPRNG in blocks: one RAND_bytes call
// costs about 6,700 instructions whatever its size (the DRBG's locking and
// bookkeeping), more than the whole AES-GCM seal of a cookie. The nonces stay
// uniformly random (a random nonce is what keeps two processes sharing a
// secret from colliding); only the calls are batched. Nonces are public, so
// holding some in memory reveals nothing. A forked child must not hand out
// the nonces its parent will also use: pthread_atfork empties the pool of the
// thread that forked (the only thread a child has).
constexpr size_t kPooledNonces = 64;
struct NoncePool {
  unsigned char bytes[kPooledNonces * kAeadNonceSize];
  size_t used = sizeof(bytes);  // empty
};

NoncePool& ThreadNonces() {
  thread_local NoncePool pool;
  return pool;
}

void ForgetNoncesAfterFork() { ThreadNonces().used = sizeof(NoncePool::bytes); }

bool NextNonce(unsigned char* out) {
  static const bool fork_safe = pthread_atfork(nullptr, nullptr, &ForgetNoncesAfterFork) == 0;
  NoncePool& pool = ThreadNonces();
  if (pool.used == sizeof(pool.bytes) || !fork_safe) {
    if (RAND_bytes(pool.bytes, static_cast<int>(sizeof(pool.bytes))) != 1) return false;
    pool.used = 0;
  }
  std::memcpy(out, pool.bytes + pool.used, kAeadNonceSize);
  pool.used += kAeadNonceSize;
  return true;
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* Bytes(std::string* s) { return reinterpret_cast<unsigned char*>(&(*s)[0]); }

// A SHA-256 context that has absorbed `pad`.
EVP_MD_CTX* NewPaddedState(const unsigned char* pad) {
  const EVP_MD* md = Sha256();
  if (md == nullptr) return nullptr;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return nullptr;
  if (EVP_DigestInit_ex2(ctx, md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx, pad, kSha256BlockSize) != 1) {
    EVP_MD_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

}  // namespace

// ---------------------------------------------------------------------------
// HMAC-SHA256
// ---------------------------------------------------------------------------

// HMAC (RFC 2104) by hand over EVP digests rather than EVP_MAC: with the two
// padded states precomputed, a signature is two EVP_MD_CTX_copy_ex plus the
// hashing itself. Callgrind, OpenSSL 3.0, 80-byte message, instructions per
// HMAC: this 7,800; a keyed EVP_MAC_CTX re-inited per call 8,300;
// EVP_MAC_CTX_dup per call 11,900; a fresh EVP_MAC_CTX per call 19,900;
// HMAC() 22,400. Only the deprecated SHA256_Init/Update/Final would be
// cheaper (6,600), and it may disappear from OpenSSL.
Result<HmacKey> HmacKey::Create(std::string_view key) {
  unsigned char block[kSha256BlockSize] = {0};
  if (key.size() > kSha256BlockSize) {
    unsigned int n = 0;
    const EVP_MD* md = Sha256();
    if (md == nullptr || EVP_Digest(key.data(), key.size(), block, &n, md, nullptr) != 1) {
      return Status::Invalid("HMAC key setup failed");
    }
  } else if (!key.empty()) {
    std::memcpy(block, key.data(), key.size());
  }
  unsigned char ipad[kSha256BlockSize];
  unsigned char opad[kSha256BlockSize];
  for (size_t i = 0; i < kSha256BlockSize; ++i) {
    ipad[i] = block[i] ^ 0x36;
    opad[i] = block[i] ^ 0x5c;
  }
  HmacKey hmac;
  hmac.inner_ = NewPaddedState(ipad);
  hmac.outer_ = NewPaddedState(opad);
  OPENSSL_cleanse(block, sizeof(block));
  OPENSSL_cleanse(ipad, sizeof(ipad));
  OPENSSL_cleanse(opad, sizeof(opad));
  if (hmac.inner_ == nullptr || hmac.outer_ == nullptr) {
    return Status::Invalid("HMAC key setup failed");
  }
  return hmac;
}

HmacKey::HmacKey(HmacKey&& other) noexcept
    : inner_(std::exchange(other.inner_, nullptr)), outer_(std::exchange(other.outer_, nullptr)) {}

HmacKey& HmacKey::operator=(HmacKey&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(inner_);
    EVP_MD_CTX_free(outer_);
    inner_ = std::exchange(other.inner_, nullptr);
    outer_ = std::exchange(other.outer_, nullptr);
  }
  return *this;
}

// EVP_MD_CTX_free cleanses the hash state, which is key material here.
HmacKey::~HmacKey() {
  EVP_MD_CTX_free(inner_);
  EVP_MD_CTX_free(outer_);
}

bool HmacKey::Sign(std::initializer_list<std::string_view> parts, Sha256Digest* out) const {
  if (inner_ == nullptr || outer_ == nullptr) return false;
  EVP_MD_CTX* work = ThreadMdCtx();
  if (work == nullptr || EVP_MD_CTX_copy_ex(work, inner_) != 1) return false;
  for (std::string_view part : parts) {
    if (!part.empty() && EVP_DigestUpdate(work, part.data(), part.size()) != 1) return false;
  }
  unsigned char inner_hash[kSha256Size];
  unsigned int n = 0;
  return EVP_DigestFinal_ex(work, inner_hash, &n) == 1 &&
         EVP_MD_CTX_copy_ex(work, outer_) == 1 &&
         EVP_DigestUpdate(work, inner_hash, sizeof(inner_hash)) == 1 &&
         EVP_DigestFinal_ex(work, out->data(), &n) == 1;
}

Result<std::string> HmacSha256(std::string_view key, std::string_view data) {
  Result<HmacKey> hmac = HmacKey::Create(key);
  if (!hmac.ok()) return hmac.status();
  Sha256Digest digest;
  if (!hmac->Sign(data, &digest)) return Status::Invalid("HMAC computation failed");
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  // Lengths are public; compare the common prefix in constant time anyway so
  // the work done does not depend on where the strings differ.
  const size_t n = a.size() < b.size() ? a.size() : b.size();
  const int diff = n == 0 ? 0 : CRYPTO_memcmp(a.data(), b.data(), n);
  return (diff == 0) & (a.size() == b.size());
}

// ---------------------------------------------------------------------------
// HKDF and random bytes
// ---------------------------------------------------------------------------

Result<std::string> Hkdf(std::string_view ikm, std::string_view salt, std::string_view info,
                         size_t length) {
  if (ikm.empty()) return Status::Invalid("HKDF input key material is empty");
  if (length == 0 || length > 255 * kSha256Size) {
    return Status::Invalid("HKDF output length out of range");
  }
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf == nullptr ? nullptr : EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return Status::Invalid("HKDF unavailable");

  // OSSL_PARAM takes non-const pointers but only reads them for these keys.
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                 const_cast<char*>("SHA256"), 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  const_cast<char*>(ikm.data()), ikm.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<char*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                    const_cast<char*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();

  std::string out(length, '\0');
  const int rc = EVP_KDF_derive(ctx, Bytes(&out), out.size(), params);
  EVP_KDF_CTX_free(ctx);
  if (rc != 1) {
    OPENSSL_cleanse(&out[0], out.size());
    return Status::Invalid("HKDF derivation failed");
  }
  return out;
}

Result<std::string> RandomBytes(size_t n) {
  if (n > INT_MAX) return Status::Invalid("random byte count too large");
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(Bytes(&out), static_cast<int>(n)) != 1) {
    return Status::Unavailable("random number generator failed");
  }
  return out;
}

// ---------------------------------------------------------------------------
// AES-256-GCM
// ---------------------------------------------------------------------------

namespace {

Status SealWithNonceInto(std::string_view key, std::string_view nonce, std::string_view aad,
                         std::string_view plaintext, std::string* out) {
  out->clear();
  if (key.size() != kAeadKeySize) return Status::Invalid("AES-256-GCM key must be 32 bytes");
  if (nonce.size() != kAeadNonceSize) return Status::Invalid("AES-GCM nonce must be 12 bytes");
  if (plaintext.size() > INT_MAX - kAeadOverhead || aad.size() > INT_MAX) {
    return Status::TooLarge("AES-GCM input too large");
  }
  EVP_CIPHER_CTX* ctx = ThreadGcmCtx(key, nonce, 1);
  if (ctx == nullptr) return Status::Invalid("AES-GCM setup failed");

  out->resize(kAeadOverhead + plaintext.size());
  unsigned char* p = Bytes(out);
  std::memcpy(p, nonce.data(), kAeadNonceSize);
  unsigned char* ciphertext = p + kAeadNonceSize;
  unsigned char* tag = ciphertext + plaintext.size();
  int len = 0;
  const bool ok =
      (aad.empty() ||
       EVP_EncryptUpdate(ctx, nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) == 1) &&
      (plaintext.empty() || EVP_EncryptUpdate(ctx, ciphertext, &len, Bytes(plaintext),
                                              static_cast<int>(plaintext.size())) == 1) &&
      EVP_EncryptFinal_ex(ctx, tag, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kAeadTagSize), tag) == 1;
  if (!ok) {
    out->clear();
    ResetThreadGcmCtx();
    return Status::Invalid("AES-GCM encryption failed");
  }
  return Status::OK();
}

}  // namespace

Result<std::string> Seal(std::string_view key, std::string_view aad, std::string_view plaintext) {
  unsigned char nonce[kAeadNonceSize];
  if (!NextNonce(nonce)) {
    return Status::Unavailable("random number generator failed");
  }
  return SealWithNonce(key, std::string_view(reinterpret_cast<const char*>(nonce), sizeof(nonce)),
                       aad, plaintext);
}

Status Seal(std::string_view key, std::string_view aad, std::string_view plaintext, std::string* out) {
  unsigned char nonce[kAeadNonceSize];
  if (!NextNonce(nonce)) {
    out->clear();
    return Status::Unavailable("random number generator failed");
  }
  return SealWithNonceInto(key, std::string_view(reinterpret_cast<const char*>(nonce), sizeof(nonce)), aad,
                           plaintext, out);
}

Result<std::string> SealWithNonce(std::string_view key, std::string_view nonce,
                                  std::string_view aad, std::string_view plaintext) {
  std::string out;
  Status status = SealWithNonceInto(key, nonce, aad, plaintext, &out);
  if (!status.ok()) return status;
  return out;
}

Result<std::string> Open(std::string_view key, std::string_view aad, std::string_view sealed) {
  if (key.size() != kAeadKeySize) return Status::Invalid("AES-256-GCM key must be 32 bytes");
  if (sealed.size() < kAeadOverhead) return Status::Invalid("sealed value too short");
  if (sealed.size() > INT_MAX || aad.size() > INT_MAX) {
    return Status::TooLarge("AES-GCM input too large");
  }
  std::string out;
  if (!Open(key, aad, sealed, &out)) return Status::Invalid("sealed value failed authentication");
  return out;
}

bool Open(std::string_view key, std::string_view aad, std::string_view sealed, std::string* plaintext) {
  plaintext->clear();
  if (key.size() != kAeadKeySize || sealed.size() < kAeadOverhead || sealed.size() > INT_MAX ||
      aad.size() > INT_MAX) {
    return false;
  }
  const std::string_view nonce = sealed.substr(0, kAeadNonceSize);
  const std::string_view ciphertext =
      sealed.substr(kAeadNonceSize, sealed.size() - kAeadOverhead);
  // EVP_CTRL_AEAD_SET_TAG takes a non-const pointer.
  unsigned char tag[kAeadTagSize];
  std::memcpy(tag, sealed.data() + sealed.size() - kAeadTagSize, kAeadTagSize);

  EVP_CIPHER_CTX* ctx = ThreadGcmCtx(key, nonce, 0);
  if (ctx == nullptr) return false;

  plaintext->resize(ciphertext.size());
  int len = 0;
  const bool ok =
      (aad.empty() ||
       EVP_DecryptUpdate(ctx, nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) == 1) &&
      (ciphertext.empty() || EVP_DecryptUpdate(ctx, Bytes(plaintext), &len, Bytes(ciphertext),
                                               static_cast<int>(ciphertext.size())) == 1) &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kAeadTagSize), tag) == 1 &&
      EVP_DecryptFinal_ex(ctx, tag, &len) == 1;
  if (!ok) {
    // Unauthenticated plaintext must not outlive the failed check.
    if (!plaintext->empty()) OPENSSL_cleanse(&(*plaintext)[0], plaintext->size());
    plaintext->clear();
    ResetThreadGcmCtx();
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Encodings
// ---------------------------------------------------------------------------

namespace {

constexpr char kB64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Maps a character to its 6-bit value shifted into place for each of the
// four positions of a group, so a group decodes as the OR of four lookups.
// A character outside the alphabet maps to kBad, which no valid group has.
constexpr uint32_t kBad = 0x80000000u;
struct B64UrlDecodeTable {
  uint32_t at[4][256];
  constexpr B64UrlDecodeTable() : at() {
    for (int p = 0; p < 4; ++p) {
      for (int i = 0; i < 256; ++i) at[p][i] = kBad;
      for (int i = 0; i < 64; ++i) {
        at[p][static_cast<unsigned char>(kB64UrlAlphabet[i])] = static_cast<uint32_t>(i) << (18 - 6 * p);
      }
    }
  }
};
constexpr B64UrlDecodeTable kB64UrlDecode;

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

void AppendBase64Url(std::string* out, std::string_view data) {
  const size_t start = out->size();
  out->resize(start + Base64UrlEncodedSize(data.size()));
  char* p = &(*out)[start];
  const unsigned char* in = Bytes(data);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    *p++ = kB64UrlAlphabet[(v >> 18) & 63];
    *p++ = kB64UrlAlphabet[(v >> 12) & 63];
    *p++ = kB64UrlAlphabet[(v >> 6) & 63];
    *p++ = kB64UrlAlphabet[v & 63];
  }
  const size_t rest = data.size() - i;
  if (rest == 1) {
    const uint32_t v = uint32_t{in[i]} << 16;
    *p++ = kB64UrlAlphabet[(v >> 18) & 63];
    *p++ = kB64UrlAlphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8);
    *p++ = kB64UrlAlphabet[(v >> 18) & 63];
    *p++ = kB64UrlAlphabet[(v >> 12) & 63];
    *p++ = kB64UrlAlphabet[(v >> 6) & 63];
  }
}

std::string Base64UrlEncode(std::string_view data) {
  std::string out;
  AppendBase64Url(&out, data);
  return out;
}

// Four characters (three bytes) per step, four table lookups and no
// branch per group: Open decodes a few hundred characters of cookie on every
// request.
bool Base64UrlDecode(std::string_view text, unsigned char* out) {
  const size_t groups = text.size() / 4;
  const size_t rest = text.size() % 4;
  if (rest == 1) return false;
  const unsigned char* in = Bytes(text);
  const auto& t = kB64UrlDecode.at;
  uint32_t bad = 0;
  for (size_t g = 0; g < groups; ++g, in += 4, out += 3) {
    const uint32_t v = t[0][in[0]] | t[1][in[1]] | t[2][in[2]] | t[3][in[3]];
    bad |= v;
    out[0] = static_cast<unsigned char>(v >> 16);
    out[1] = static_cast<unsigned char>(v >> 8);
    out[2] = static_cast<unsigned char>(v);
  }
  if ((bad & kBad) != 0) return false;
  // A final group of 2 or 3 characters leaves 4 or 2 bits that belong to no
  // byte; a canonical encoding has them zero.
  if (rest == 2) {
    const uint32_t v = t[0][in[0]] | t[1][in[1]];
    if ((v & kBad) != 0 || (v & 0xFFFF) != 0) return false;
    out[0] = static_cast<unsigned char>(v >> 16);
  } else if (rest == 3) {
    const uint32_t v = t[0][in[0]] | t[1][in[1]] | t[2][in[2]];
    if ((v & kBad) != 0 || (v & 0xFF) != 0) return false;
    out[0] = static_cast<unsigned char>(v >> 16);
    out[1] = static_cast<unsigned char>(v >> 8);
  }
  return true;
}

bool Base64UrlDecode(std::string_view text, std::string* out) {
  if (text.size() % 4 == 1) return false;
  out->resize(Base64UrlDecodedSize(text.size()));
  if (out->empty()) return true;
  return Base64UrlDecode(text, Bytes(out));
}

std::string HexEncode(std::string_view data) {
  std::string out(data.size() * 2, '\0');
  for (size_t i = 0; i < data.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(data[i]);
    out[2 * i] = kHexDigits[c >> 4];
    out[2 * i + 1] = kHexDigits[c & 0xF];
  }
  return out;
}

}  // namespace sessiond::crypto
