#include "session/cookie_codec.h"

#include <zlib.h>

#include <charconv>
#include <cstring>
#include <utility>

#include "base/utc_time.h"
#include "crypto/crypto.h"
#include "session/cookie_header.h"

namespace sessiond {

namespace {

constexpr std::string_view kTokenVersion = "1.";
constexpr std::string_view kSealedVersion = "3.";
constexpr std::string_view kLegacySealedVersion = "2.";
constexpr std::string_view kTokenMacLabel = "sessiond-token|v1|";
constexpr std::string_view kSealedAadLabel = "sessiond-cookie|v3|";
constexpr std::string_view kLegacySealedAadLabel = "sessiond-cookie|v2|";
constexpr size_t kExpiryBytes = 8;  // big-endian, in the sealed plaintext
constexpr size_t kTimeBytes = 8;    // created and refreshed, big-endian
constexpr size_t kFlagBytes = 1;
constexpr unsigned char kFlagDeflated = 0x01;
constexpr size_t kMaxExpiryDigits = 12;
constexpr size_t kPublicIdBytes = 16;
// Format 3's plaintext before the payload: flags, expiry, created,
// refreshed, id, public id.
constexpr size_t kSealedHead = kFlagBytes + kExpiryBytes + 2 * kTimeBytes + CookieCodec::kIdSize + kPublicIdBytes;
// Format 2's: expiry, id, public id.
constexpr size_t kLegacyHead = kExpiryBytes + CookieCodec::kIdSize + kPublicIdBytes;
// Sessions shorter than this are sealed as they are: deflate would not win.
constexpr size_t kMinDeflateBytes = 128;
// "Set-Cookie: ", and the longest "; Max-Age=N; Expires=<date>" (12 digits,
// a date with a 5-digit year).
constexpr size_t kSetCookiePrefix = sizeof("Set-Cookie: ") - 1;
constexpr size_t kMaxAgeAndExpiresBytes = sizeof("; Max-Age=") - 1 + 12 + sizeof("; Expires=") - 1 + 30;
// "3c" N "." ahead of the first piece of a chunked value.
constexpr size_t kChunkHeadBytes = 4;
// The smallest piece a chunk may carry; attributes that leave less are refused.
constexpr size_t kMinPieceBytes = 256;
// "1." b64(id) "." — the token's fixed-length head.
constexpr size_t kTokenIdEnd = kTokenVersion.size() + crypto::Base64UrlEncodedSize(CookieCodec::kIdSize);
constexpr size_t kTokenMacChars = crypto::Base64UrlEncodedSize(crypto::kSha256Size);

std::string_view AsView(const crypto::Sha256Digest& d) {
  return std::string_view(reinterpret_cast<const char*>(d.data()), d.size());
}

// RFC 6265 cookie-name: an RFC 7230 token.
bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F) return false;
    if (std::string_view("()<>@,;:\\\"/[]?={}").find(c) != std::string_view::npos) return false;
  }
  return true;
}

// An attribute value that cannot end the attribute or the header early.
bool IsSafeAttributeValue(std::string_view s) {
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F || c == ';') return false;
  }
  return true;
}

const char* SameSiteName(SameSite v) {
  switch (v) {
    case SameSite::kNone: return "None";
    case SameSite::kLax: return "Lax";
    case SameSite::kStrict: return "Strict";
  }
  return "Lax";
}

// Canonical decimal 1..kMaxExpiry: no sign, no leading zero.
bool ParseExpiry(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > kMaxExpiryDigits || s[0] == '0') return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

char* PutTwoDigits(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10 % 10);
  p[1] = static_cast<char>('0' + v % 10);
  return p + 2;
}

void AppendBigEndian(std::string* out, int64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((static_cast<uint64_t>(v) >> shift) & 0xFF));
  }
}

uint64_t ReadBigEndian(std::string_view p) {
  uint64_t v = 0;
  for (size_t k = 0; k < 8; ++k) v = (v << 8) | static_cast<unsigned char>(p[k]);
  return v;
}

// Raw deflate (no zlib header: the AEAD already authenticates) of `in`
// into *out. False on any zlib failure.
bool Deflate(std::string_view in, std::string* out) {
  z_stream z{};
  // A 4 KiB window and little state: sessions are small, and this runs per
  // response.
  if (deflateInit2(&z, 6, Z_DEFLATED, -12, 5, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  out->resize(deflateBound(&z, in.size()));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out->data());
  z.avail_out = static_cast<uInt>(out->size());
  const int rc = deflate(&z, Z_FINISH);
  out->resize(out->size() - z.avail_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END;
}

// Inflates raw deflate `in` into *out, failing when it would exceed `limit`
// bytes or is not one complete stream.
bool Inflate(std::string_view in, size_t limit, std::string* out) {
  z_stream z{};
  if (inflateInit2(&z, -15) != Z_OK) return false;
  out->resize(limit + 1);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out->data());
  z.avail_out = static_cast<uInt>(out->size());
  const int rc = inflate(&z, Z_FINISH);
  const size_t produced = out->size() - z.avail_out;
  const bool whole = rc == Z_STREAM_END && z.avail_in == 0 && produced <= limit;
  inflateEnd(&z);
  out->resize(whole ? produced : 0);
  return whole;
}

// RFC 7231 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT", written at p
// (at most kMaxHttpDate bytes: the year may have five digits); returns its
// end. Formatted by hand: strftime would follow the process locale, and the
// names are English by definition; ToUtc, not gmtime_r, which takes a
// process-wide lock.
constexpr size_t kMaxHttpDate = 32;
char* PutHttpDate(char* p, int64_t unix_seconds) {
  static const char kDays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (unix_seconds < 0) unix_seconds = 0;
  if (unix_seconds > CookieCodec::kMaxExpiry) unix_seconds = CookieCodec::kMaxExpiry;
  const UtcTime t = ToUtc(unix_seconds);
  std::memcpy(p, kDays[t.weekday], 3);
  p[3] = ',';
  p[4] = ' ';
  p = PutTwoDigits(p + 5, t.day);
  *p++ = ' ';
  std::memcpy(p, kMonths[t.month - 1], 3);
  p[3] = ' ';
  p = std::to_chars(p + 4, p + 10, t.year).ptr;  // 1970 .. about 33658
  *p++ = ' ';
  p = PutTwoDigits(p, t.hour);
  *p++ = ':';
  p = PutTwoDigits(p, t.minute);
  *p++ = ':';
  p = PutTwoDigits(p, t.second);
  std::memcpy(p, " GMT", 4);
  return p + 4;
}

}  // namespace

void DecodedCookie::Clear() {
  verdict = CookieVerdict::kInvalid;
  id.clear();
  expires_at = 0;
  key_index = 0;
  data.clear();
  json.clear();
  public_id.clear();
  created_at = 0;
  refreshed_at = 0;
}

Result<std::shared_ptr<const CookieCodec>> CookieCodec::Create(const Config& config) {
  const SessionConfig& s = config.session;
  if (!IsToken(s.cookie_name)) return Status::Invalid("session cookie name is not a valid token");
  if (!IsSafeAttributeValue(s.cookie_path)) {
    return Status::Invalid("session cookie path contains ';' or a control character");
  }
  if (s.cookie_domain && !IsSafeAttributeValue(*s.cookie_domain)) {
    return Status::Invalid("session cookie domain contains ';' or a control character");
  }

  std::shared_ptr<CookieCodec> codec(new CookieCodec());
  std::vector<const std::string*> secrets = {&config.secret_key};
  for (const std::string& fallback : config.secret_key_fallbacks) secrets.push_back(&fallback);
  for (size_t i = 0; i < secrets.size(); ++i) {
    Result<crypto::KeySet> keys = crypto::DeriveKeySet(*secrets[i]);
    if (!keys.ok()) {
      return Status::Invalid(i == 0 ? "secret_key: " + keys.status().message()
                                    : "secret_key_fallbacks[" + std::to_string(i - 1) +
                                          "]: " + keys.status().message());
    }
    codec->keys_.push_back(std::move(*keys));
  }

  codec->manager_ = s.manager;
  codec->expiration_seconds_ =
      std::chrono::duration_cast<std::chrono::seconds>(s.expiration).count();
  codec->permanent_ = s.permanent;
  codec->compress_ = s.compress;
  codec->max_chunks_ = std::clamp<size_t>(s.max_cookie_chunks, 1, kMaxCookieChunks);
  codec->max_session_bytes_ = s.max_session_bytes;
  codec->cookie_name_ = s.cookie_name;
  codec->token_mac_prefix_ = std::string(kTokenMacLabel) + s.cookie_name + "|";
  codec->sealed_aad_ = std::string(kSealedAadLabel) + s.cookie_name;
  codec->legacy_aad_ = std::string(kLegacySealedAadLabel) + s.cookie_name;

  codec->name_eq_ = s.cookie_name + "=";
  if (!s.cookie_path.empty()) codec->scope_attrs_ = "; Path=" + s.cookie_path;
  if (s.cookie_domain && !s.cookie_domain->empty()) {
    codec->scope_attrs_ += "; Domain=" + *s.cookie_domain;
  }
  if (s.cookie_httponly) codec->flag_attrs_ += "; HttpOnly";
  if (s.cookie_secure) codec->flag_attrs_ += "; Secure";
  codec->flag_attrs_ += std::string("; SameSite=") + SameSiteName(s.cookie_samesite);
  if (s.cookie_partitioned) codec->flag_attrs_ += "; Partitioned";
  codec->clear_cookie_ = codec->name_eq_ + codec->scope_attrs_ +
                         "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT" +
                         codec->flag_attrs_;
  // docs/COOKIES.md, Chunked cookies: every line within kSetCookieLineLimit.
  codec->line_overhead_ = kSetCookiePrefix + codec->name_eq_.size() + codec->scope_attrs_.size() +
                          codec->flag_attrs_.size() + (codec->permanent_ ? kMaxAgeAndExpiresBytes : 0);
  // A chunk's name is NAME.k (2 more bytes); the first piece follows "3cN.".
  const size_t room = kSetCookieLineLimit > codec->line_overhead_ + kChunkHeadBytes
                          ? kSetCookieLineLimit - codec->line_overhead_ - kChunkHeadBytes
                          : 0;
  if (s.manager == StoreKind::kCookie && room < kMinPieceBytes) {
    return Status::Invalid("the session cookie's name and attributes leave no room for its value in a "
                           "4096-byte Set-Cookie line");
  }
  codec->piece_bytes_ = room;
  return std::shared_ptr<const CookieCodec>(std::move(codec));
}

Result<std::string> CookieCodec::NewSessionId() const { return crypto::RandomBytes(kIdSize); }

int64_t CookieCodec::ExpiresAt(int64_t now) const {
  return now + (expiration_seconds_ > 0 ? expiration_seconds_ : 1);
}

// ---------------------------------------------------------------------------
// Store-manager tokens
// ---------------------------------------------------------------------------

bool CookieCodec::TokenMac(size_t index, std::string_view id, std::string_view expiry,
                           crypto::Sha256Digest* out) const {
  return keys_[index].cookie_mac_key.Sign({token_mac_prefix_, id, "|", expiry}, out);
}

Result<std::string> CookieCodec::EncodeToken(std::string_view id, int64_t expires_at) const {
  if (id.size() != kIdSize) return Status::Invalid("session id has the wrong length");
  if (expires_at < 1 || expires_at > kMaxExpiry) return Status::Invalid("expiry out of range");
  char expiry_buf[24];
  const auto r = std::to_chars(expiry_buf, expiry_buf + sizeof(expiry_buf), expires_at);
  const std::string_view expiry(expiry_buf, static_cast<size_t>(r.ptr - expiry_buf));

  crypto::Sha256Digest mac;
  if (!TokenMac(0, id, expiry, &mac)) return Status::Invalid("token MAC computation failed");

  std::string out;
  out.reserve(kTokenIdEnd + 1 + expiry.size() + 1 + kTokenMacChars);
  out.append(kTokenVersion);
  crypto::AppendBase64Url(&out, id);
  out.push_back('.');
  out.append(expiry);
  out.push_back('.');
  crypto::AppendBase64Url(&out, AsView(mac));
  return out;
}

DecodedCookie CookieCodec::DecodeToken(std::string_view value, int64_t now) const {
  DecodedCookie result;
  DecodeToken(value, now, &result);
  return result;
}

void CookieCodec::DecodeToken(std::string_view value, int64_t now, DecodedCookie* out) const {
  out->Clear();
  if (value.size() > kMaxTokenBytes || value.size() < kTokenIdEnd + 1 ||
      value.substr(0, kTokenVersion.size()) != kTokenVersion || value[kTokenIdEnd] != '.') {
    return;
  }
  const std::string_view id_text = value.substr(kTokenVersion.size(), kTokenIdEnd - kTokenVersion.size());
  const std::string_view rest = value.substr(kTokenIdEnd + 1);
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return;
  const std::string_view expiry_text = rest.substr(0, dot);
  const std::string_view mac_text = rest.substr(dot + 1);

  int64_t expires_at = 0;
  crypto::Sha256Digest mac;
  static_assert(crypto::Base64UrlDecodedSize(kTokenMacChars) == crypto::kSha256Size);
  if (mac_text.size() != kTokenMacChars || !ParseExpiry(expiry_text, &expires_at) ||
      !crypto::Base64UrlDecode(id_text, &out->id) || out->id.size() != kIdSize ||
      !crypto::Base64UrlDecode(mac_text, mac.data())) {
    out->id.clear();
    return;
  }

  for (size_t i = 0; i < keys_.size(); ++i) {
    crypto::Sha256Digest expected;
    if (!TokenMac(i, out->id, expiry_text, &expected)) break;
    if (crypto::ConstantTimeEqual(AsView(expected), AsView(mac))) {
      out->verdict = expires_at <= now ? CookieVerdict::kExpired : CookieVerdict::kValid;
      out->expires_at = expires_at;
      out->key_index = i;
      return;
    }
  }
  out->id.clear();
}

// ---------------------------------------------------------------------------
// Cookie-manager sealed values
// ---------------------------------------------------------------------------

size_t CookieCodec::SealedValueSize(size_t payload_size) const {
  return kSealedVersion.size() + crypto::Base64UrlEncodedSize(crypto::kAeadOverhead + kSealedHead + payload_size);
}

size_t CookieCodec::ChunksFor(std::string_view value) const {
  if (line_overhead_ + value.size() <= kSetCookieLineLimit || piece_bytes_ == 0) return 1;
  const size_t body = value.size() > kSealedVersion.size() ? value.size() - kSealedVersion.size() : 0;
  return std::max<size_t>(2, (body + piece_bytes_ - 1) / piece_bytes_);
}

Result<std::string> CookieCodec::Seal(std::string_view id, int64_t expires_at,
                                      const SessionData& data) const {
  const int64_t start = std::max<int64_t>(0, expires_at - expiration_seconds_);
  return Seal(id, SealTimes{expires_at, start, start}, data);
}

Result<std::string> CookieCodec::Seal(std::string_view id, const SealTimes& times, const SessionData& data) const {
  CookieScratch scratch;
  std::string value;
  Status status = Seal(id, times, SerializeSession(data), {}, &scratch, &value);
  if (!status.ok()) return status;
  return value;
}

Status CookieCodec::Seal(std::string_view id, const SealTimes& times, std::string_view json,
                         std::string_view public_id, CookieScratch* scratch, std::string* value) const {
  value->clear();
  if (id.size() != kIdSize) return Status::Invalid("session id has the wrong length");
  if (times.expires_at < 1 || times.expires_at > kMaxExpiry) return Status::Invalid("expiry out of range");
  if (times.created_at < 0 || times.created_at > kMaxExpiry || times.refreshed_at < 0 ||
      times.refreshed_at > kMaxExpiry) {
    return Status::Invalid("session times out of range");
  }
  // docs/COOKIES.md, Compression: deflated only when asked and shorter.
  unsigned char flags = 0;
  std::string_view payload = json;
  if (compress_ && json.size() >= kMinDeflateBytes && Deflate(json, &scratch->inflated) &&
      scratch->inflated.size() < json.size()) {
    flags |= kFlagDeflated;
    payload = scratch->inflated;
  }
  // Refuse before encrypting: the size is known from the payload length alone.
  const size_t value_size = SealedValueSize(payload.size());
  const size_t needed = line_overhead_ + value_size <= kSetCookieLineLimit || piece_bytes_ == 0
                            ? 1
                            : std::max<size_t>(2, (value_size - kSealedVersion.size() + piece_bytes_ - 1) /
                                                      piece_bytes_);
  if (needed > max_chunks_) {
    return Status::TooLarge("session cookie would need " + std::to_string(needed) +
                            " cookies, over session.max_cookie_chunks (" + std::to_string(max_chunks_) + ")");
  }

  // The public id travels inside the sealed value, so reading a session
  // (every request) costs no HMAC; it is recomputed here, under the current
  // secret, unless the caller has it from a cookie sealed under that secret.
  std::string& plain = scratch->plain;
  plain.clear();
  plain.push_back(static_cast<char>(flags));
  AppendBigEndian(&plain, times.expires_at);
  AppendBigEndian(&plain, times.created_at);
  AppendBigEndian(&plain, times.refreshed_at);
  plain.append(id);
  unsigned char raw_public_id[kPublicIdBytes];
  if (public_id.size() == crypto::Base64UrlEncodedSize(kPublicIdBytes) &&
      crypto::Base64UrlDecode(public_id, raw_public_id)) {
    plain.append(reinterpret_cast<const char*>(raw_public_id), kPublicIdBytes);
  } else {
    crypto::Sha256Digest digest;
    if (!keys_[0].public_id_key.Sign(id, &digest)) return Status::Invalid("public id computation failed");
    plain.append(AsView(digest).substr(0, kPublicIdBytes));
  }
  plain.append(payload);

  Status sealed = crypto::Seal(keys_[0].cookie_enc, sealed_aad_, plain, &scratch->sealed);
  if (!sealed.ok()) return sealed;
  value->reserve(kSealedVersion.size() + crypto::Base64UrlEncodedSize(scratch->sealed.size()));
  value->append(kSealedVersion);
  crypto::AppendBase64Url(value, scratch->sealed);
  return Status::OK();
}

DecodedCookie CookieCodec::Open(std::string_view value, int64_t now, bool decode_data) const {
  DecodedCookie result;
  CookieScratch scratch;
  Open(value, now, decode_data, &scratch, &result);
  return result;
}

void CookieCodec::Open(std::string_view value, int64_t now, bool decode_data, CookieScratch* scratch,
                       DecodedCookie* out) const {
  out->Clear();
  if (value.size() > kMaxSealedBytes || value.size() < kSealedVersion.size()) return;
  const bool legacy = value.substr(0, kLegacySealedVersion.size()) == kLegacySealedVersion;
  if (!legacy && value.substr(0, kSealedVersion.size()) != kSealedVersion) return;
  const size_t head = legacy ? kLegacyHead : kSealedHead;
  std::string& sealed = scratch->sealed;
  if (!crypto::Base64UrlDecode(value.substr(kSealedVersion.size()), &sealed) ||
      sealed.size() < crypto::kAeadOverhead + head) {
    return;
  }

  const std::string_view aad = legacy ? legacy_aad_ : sealed_aad_;
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (!crypto::Open(keys_[i].cookie_enc, aad, sealed, &scratch->plain)) continue;
    std::string_view p = scratch->plain;
    unsigned char flags = 0;
    int64_t created = 0, refreshed = 0;
    if (!legacy) {
      flags = static_cast<unsigned char>(p[0]);
      p.remove_prefix(kFlagBytes);
    }
    const uint64_t expiry = ReadBigEndian(p);
    if (expiry < 1 || expiry > static_cast<uint64_t>(kMaxExpiry) || (flags & ~kFlagDeflated) != 0) return;
    const int64_t expires_at = static_cast<int64_t>(expiry);
    p.remove_prefix(kExpiryBytes);
    if (!legacy) {
      const uint64_t c = ReadBigEndian(p), r = ReadBigEndian(p.substr(kTimeBytes));
      if (c > static_cast<uint64_t>(kMaxExpiry) || r > static_cast<uint64_t>(kMaxExpiry)) return;
      created = static_cast<int64_t>(c);
      refreshed = static_cast<int64_t>(r);
      p.remove_prefix(2 * kTimeBytes);
    } else {
      // Format 2 sealed no times: its lifetime started expiry - lifetime ago
      // (docs/COOKIES.md, Sealed cookie).
      created = refreshed = std::max<int64_t>(0, expires_at - expiration_seconds_);
    }
    if (expires_at > now) {
      std::string_view json = p.substr(kIdSize + kPublicIdBytes);
      if (flags & kFlagDeflated) {
        if (!Inflate(json, max_session_bytes_, &scratch->inflated)) return;
        json = scratch->inflated;
      }
      if (decode_data ? !ParseSessionJson(json, &out->data) : !IsSessionJson(json)) return;
      out->json.assign(json);
      out->verdict = CookieVerdict::kValid;
    } else {
      out->verdict = CookieVerdict::kExpired;
    }
    out->id.assign(p.substr(0, kIdSize));
    crypto::AppendBase64Url(&out->public_id, p.substr(kIdSize, kPublicIdBytes));
    out->expires_at = expires_at;
    out->created_at = created;
    out->refreshed_at = refreshed;
    out->key_index = i;
    return;
  }
}

DecodedCookie CookieCodec::Verify(std::string_view value, int64_t now, bool decode_data) const {
  return manager_ == StoreKind::kCookie ? Open(value, now, decode_data) : DecodeToken(value, now);
}

void CookieCodec::Verify(std::string_view value, int64_t now, CookieScratch* scratch, DecodedCookie* out) const {
  if (manager_ == StoreKind::kCookie) {
    Open(value, now, /*decode_data=*/false, scratch, out);
  } else {
    DecodeToken(value, now, out);
  }
}

// ---------------------------------------------------------------------------
// Keyed names
// ---------------------------------------------------------------------------

Result<std::string> CookieCodec::StoreKey(std::string_view id, size_t key_index) const {
  if (key_index >= keys_.size()) return Status::Invalid("store key index out of range");
  crypto::Sha256Digest digest;
  if (!keys_[key_index].store_hash_key.Sign(id, &digest)) {
    return Status::Invalid("store key computation failed");
  }
  return crypto::HexEncode(AsView(digest));
}

Result<std::string> CookieCodec::PublicId(std::string_view id) const {
  crypto::Sha256Digest digest;
  if (!keys_[0].public_id_key.Sign(id, &digest)) {
    return Status::Invalid("public id computation failed");
  }
  return crypto::Base64UrlEncode(AsView(digest).substr(0, kPublicIdBytes));
}

// ---------------------------------------------------------------------------
// Set-Cookie
// ---------------------------------------------------------------------------

std::string CookieCodec::SetCookie(std::string_view value, int64_t expires_at, int64_t now) const {
  std::string out;
  AppendSetCookie(&out, value, expires_at, now);
  return out;
}

void CookieCodec::AppendSetCookie(std::string* out, std::string_view value, int64_t expires_at,
                                  int64_t now) const {
  AppendSetCookieNamed(out, 0, value, expires_at, now);
}

namespace {

// ".K" of chunk cookie NAME.K (docs/COOKIES.md, Chunked cookies); empty for
// the first, NAME itself. Returns its length.
size_t PutChunkSuffix(char* buf, size_t size, size_t chunk) {
  if (chunk == 0) return 0;
  buf[0] = '.';
  return static_cast<size_t>(std::to_chars(buf + 1, buf + size, chunk).ptr - buf);
}

}  // namespace

void CookieCodec::AppendClearChunk(std::string* out, size_t k) const {
  if (k == 0) {
    out->append(clear_cookie_);
    return;
  }
  char suffix[24];
  out->append(cookie_name_);
  out->append(suffix, PutChunkSuffix(suffix, sizeof(suffix), k));
  out->append(clear_cookie_, cookie_name_.size(), std::string::npos);  // from "=" on
}

void CookieCodec::AppendSetCookieNamed(std::string* out, size_t chunk, std::string_view value, int64_t expires_at,
                                       int64_t now) const {
  static constexpr std::string_view kMaxAge = "; Max-Age=";
  static constexpr std::string_view kExpires = "; Expires=";
  char max_age[24];
  char date[kMaxHttpDate];
  char suffix[24];
  size_t max_age_size = 0, date_size = 0;
  const size_t suffix_size = PutChunkSuffix(suffix, sizeof(suffix), chunk);
  if (permanent_) {
    max_age_size = static_cast<size_t>(
        std::to_chars(max_age, max_age + sizeof(max_age), expires_at > now ? expires_at - now : 0).ptr - max_age);
    date_size = static_cast<size_t>(PutHttpDate(date, expires_at) - date);
  }
  // One resize, then every piece copied in place.
  const size_t start = out->size();
  out->resize(start + name_eq_.size() + suffix_size + value.size() + scope_attrs_.size() + flag_attrs_.size() +
              (permanent_ ? kMaxAge.size() + max_age_size + kExpires.size() + date_size : 0));
  char* p = out->data() + start;
  const auto put = [&p](std::string_view piece) {
    std::memcpy(p, piece.data(), piece.size());
    p += piece.size();
  };
  put(cookie_name_);
  put(std::string_view(suffix, suffix_size));
  put(std::string_view("=", 1));
  put(value);
  put(scope_attrs_);
  if (permanent_) {
    put(kMaxAge);
    put(std::string_view(max_age, max_age_size));
    put(kExpires);
    put(std::string_view(date, date_size));
  }
  put(flag_attrs_);
}

Status CookieCodec::CheckCookieSize(std::string_view value) const {
  if (manager_ == StoreKind::kCookie) {
    const size_t needed = ChunksFor(value);
    if (needed <= max_chunks_) return Status::OK();
    return Status::TooLarge("session cookie would need " + std::to_string(needed) +
                            " cookies, over session.max_cookie_chunks (" + std::to_string(max_chunks_) + ")");
  }
  const size_t size = name_eq_.size() + value.size();
  if (size <= kBrowserCookieLimit) return Status::OK();
  return Status::TooLarge("session cookie would be " + std::to_string(size) +
                          " bytes, over the 4096-byte browser limit");
}

}  // namespace sessiond
