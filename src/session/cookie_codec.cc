#include "session/cookie_codec.h"

#include <charconv>
#include <cstring>
#include <utility>

#include "base/utc_time.h"
#include "crypto/crypto.h"

namespace sessiond {

namespace {

constexpr std::string_view kTokenVersion = "1.";
constexpr std::string_view kSealedVersion = "2.";
constexpr std::string_view kTokenMacLabel = "sessiond-token|v1|";
constexpr std::string_view kSealedAadLabel = "sessiond-cookie|v2|";
constexpr size_t kExpiryBytes = 8;  // big-endian, in the sealed plaintext
constexpr size_t kMaxExpiryDigits = 12;
constexpr size_t kPublicIdBytes = 16;
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
  codec->cookie_name_ = s.cookie_name;
  codec->token_mac_prefix_ = std::string(kTokenMacLabel) + s.cookie_name + "|";
  codec->sealed_aad_ = std::string(kSealedAadLabel) + s.cookie_name;

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

size_t CookieCodec::SealedCookieSize(size_t json_size) const {
  const size_t sealed = crypto::kAeadOverhead + kExpiryBytes + kIdSize + kPublicIdBytes + json_size;
  return name_eq_.size() + kSealedVersion.size() + crypto::Base64UrlEncodedSize(sealed);
}

Result<std::string> CookieCodec::Seal(std::string_view id, int64_t expires_at,
                                      const SessionData& data) const {
  CookieScratch scratch;
  std::string value;
  Status status = Seal(id, expires_at, SerializeSession(data), {}, &scratch, &value);
  if (!status.ok()) return status;
  return value;
}

Status CookieCodec::Seal(std::string_view id, int64_t expires_at, std::string_view json,
                         std::string_view public_id, CookieScratch* scratch, std::string* value) const {
  value->clear();
  if (id.size() != kIdSize) return Status::Invalid("session id has the wrong length");
  if (expires_at < 1 || expires_at > kMaxExpiry) return Status::Invalid("expiry out of range");
  // Refuse before encrypting: the size is known from the JSON length alone.
  const size_t cookie_size = SealedCookieSize(json.size());
  if (cookie_size > kBrowserCookieLimit) {
    return Status::TooLarge("session cookie would be " + std::to_string(cookie_size) +
                            " bytes, over the 4096-byte browser limit");
  }

  // The public id travels inside the sealed value, so reading a session
  // (every request) costs no HMAC; it is recomputed here, under the current
  // secret, unless the caller has it from a cookie sealed under that secret.
  std::string& plain = scratch->plain;
  plain.clear();
  for (int shift = 56; shift >= 0; shift -= 8) {
    plain.push_back(static_cast<char>((static_cast<uint64_t>(expires_at) >> shift) & 0xFF));
  }
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
  plain.append(json);

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
  if (value.size() > kMaxSealedBytes || value.substr(0, kSealedVersion.size()) != kSealedVersion) {
    return;
  }
  std::string& sealed = scratch->sealed;
  if (!crypto::Base64UrlDecode(value.substr(kSealedVersion.size()), &sealed) ||
      sealed.size() < crypto::kAeadOverhead + kExpiryBytes + kIdSize + kPublicIdBytes) {
    return;
  }

  for (size_t i = 0; i < keys_.size(); ++i) {
    if (!crypto::Open(keys_[i].cookie_enc, sealed_aad_, sealed, &scratch->plain)) continue;
    const std::string_view p = scratch->plain;
    uint64_t expiry = 0;
    for (size_t k = 0; k < kExpiryBytes; ++k) expiry = (expiry << 8) | static_cast<unsigned char>(p[k]);
    if (expiry < 1 || expiry > static_cast<uint64_t>(kMaxExpiry)) return;
    const int64_t expires_at = static_cast<int64_t>(expiry);
    if (expires_at > now) {
      const std::string_view json = p.substr(kExpiryBytes + kIdSize + kPublicIdBytes);
      if (decode_data ? !ParseSessionJson(json, &out->data) : !IsSessionJson(json)) return;
      out->json.assign(json);
      out->verdict = CookieVerdict::kValid;
    } else {
      out->verdict = CookieVerdict::kExpired;
    }
    out->id.assign(p.substr(kExpiryBytes, kIdSize));
    crypto::AppendBase64Url(&out->public_id, p.substr(kExpiryBytes + kIdSize, kPublicIdBytes));
    out->expires_at = expires_at;
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
  static constexpr std::string_view kMaxAge = "; Max-Age=";
  static constexpr std::string_view kExpires = "; Expires=";
  char max_age[24];
  char date[kMaxHttpDate];
  size_t max_age_size = 0, date_size = 0;
  if (permanent_) {
    max_age_size = static_cast<size_t>(
        std::to_chars(max_age, max_age + sizeof(max_age), expires_at > now ? expires_at - now : 0).ptr - max_age);
    date_size = static_cast<size_t>(PutHttpDate(date, expires_at) - date);
  }
  // One resize, then every piece copied in place.
  const size_t start = out->size();
  out->resize(start + name_eq_.size() + value.size() + scope_attrs_.size() + flag_attrs_.size() +
              (permanent_ ? kMaxAge.size() + max_age_size + kExpires.size() + date_size : 0));
  char* p = out->data() + start;
  const auto put = [&p](std::string_view piece) {
    std::memcpy(p, piece.data(), piece.size());
    p += piece.size();
  };
  put(name_eq_);
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
  const size_t size = name_eq_.size() + value.size();
  if (size <= kBrowserCookieLimit) return Status::OK();
  return Status::TooLarge("session cookie would be " + std::to_string(size) +
                          " bytes, over the 4096-byte browser limit");
}

}  // namespace sessiond
