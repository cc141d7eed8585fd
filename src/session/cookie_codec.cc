#include "session/cookie_codec.h"

#include <charconv>
#include <ctime>
#include <utility>

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

void AppendDecimal(std::string* out, int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

void AppendTwoDigits(std::string* out, int v) {
  out->push_back(static_cast<char>('0' + v / 10 % 10));
  out->push_back(static_cast<char>('0' + v % 10));
}

// RFC 7231 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT". Formatted by
// hand: strftime would follow the process locale, and the names are English
// by definition.
void AppendHttpDate(std::string* out, int64_t unix_seconds) {
  static const char kDays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  // Clamped so gmtime_r cannot fail (a 64-bit time_t covers the range).
  if (unix_seconds < 0) unix_seconds = 0;
  if (unix_seconds > CookieCodec::kMaxExpiry) unix_seconds = CookieCodec::kMaxExpiry;
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  out->append(kDays[(tm.tm_wday % 7 + 7) % 7], 3);
  out->append(", ");
  AppendTwoDigits(out, tm.tm_mday);
  out->push_back(' ');
  out->append(kMonths[(tm.tm_mon % 12 + 12) % 12], 3);
  out->push_back(' ');
  AppendDecimal(out, int64_t{tm.tm_year} + 1900);
  out->push_back(' ');
  AppendTwoDigits(out, tm.tm_hour);
  out->push_back(':');
  AppendTwoDigits(out, tm.tm_min);
  out->push_back(':');
  AppendTwoDigits(out, tm.tm_sec);
  out->append(" GMT");
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Reads the session JSON of a sealed cookie back into SessionData: the
// inverse of SerializeSession. Keys are decoded (JSON escapes to UTF-8);
// values are kept verbatim, since SerializeSession wrote each stored value
// as it was, already compact ASCII-only JSON.
//
// Why not nlohmann-json: this runs on every request of the cookie manager,
// and a full parse plus a dump() of every value cost about 45,000
// instructions for a 200-byte session against a few thousand here. The
// payload has passed AES-GCM authentication, so it is our own output; the
// reader checks only as much structure as it needs to split it safely, and
// anything unexpected makes the cookie invalid. Every index is bounds-checked
// so even a forged payload cannot make it misbehave.
class SessionJsonReader {
 public:
  explicit SessionJsonReader(std::string_view text) : s_(text) {}

  // False when the text is not one JSON object; *out is then partial. With
  // out == nullptr the text is only validated.
  bool Read(SessionData* out) {
    if (!Consume('{')) return false;
    if (Consume('}')) return AtEnd();
    std::string key;
    for (;;) {
      key.clear();
      if (!ReadString(&key) || !Consume(':')) return false;
      const size_t start = i_;
      if (!SkipValue()) return false;
      if (out) (*out)[key] = std::string(s_.substr(start, i_ - start));
      if (Consume(',')) continue;
      return Consume('}') && AtEnd();
    }
  }

 private:
  bool AtEnd() const { return i_ == s_.size(); }

  bool Consume(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  bool ReadHex4(uint32_t* out) {
    if (s_.size() - i_ < 4) return false;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      uint32_t d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return false;
      v = (v << 4) | d;
    }
    *out = v;
    return true;
  }

  // A JSON string at i_, decoded into *out (when not null).
  bool ReadString(std::string* out) {
    if (!Consume('"')) return false;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        if (out) out->push_back(c);
        continue;
      }
      if (i_ >= s_.size()) return false;
      const char e = s_[i_++];
      char plain = 0;
      switch (e) {
        case '"': case '\\': case '/': plain = e; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          if (!ReadHex4(&cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // must pair with a low surrogate
            uint32_t low = 0;
            if (!Consume('\\') || !Consume('u') || !ReadHex4(&low) || low < 0xDC00 ||
                low > 0xDFFF) {
              return false;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return false;
          }
          if (out) AppendUtf8(out, cp);
          continue;
        }
        default: return false;
      }
      if (out) out->push_back(plain);
    }
    return false;  // unterminated
  }

  // Advances over one JSON value: a string, an object or array (brackets
  // counted, strings skipped whole), or a bare literal/number.
  bool SkipValue() {
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '"') return ReadString(nullptr);
    if (c == '{' || c == '[') {
      size_t depth = 0;
      while (i_ < s_.size()) {
        const char d = s_[i_];
        if (d == '"') {
          if (!ReadString(nullptr)) return false;
          continue;
        }
        ++i_;
        if (d == '{' || d == '[') {
          ++depth;
        } else if (d == '}' || d == ']') {
          if (--depth == 0) return true;
        }
      }
      return false;
    }
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}') {
      if (std::string_view("0123456789+-.eEtrufalsn").find(s_[i_]) == std::string_view::npos) {
        return false;
      }
      ++i_;
    }
    return i_ > start;
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

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
  if (value.size() > kMaxTokenBytes || value.size() < kTokenIdEnd + 1 ||
      value.substr(0, kTokenVersion.size()) != kTokenVersion || value[kTokenIdEnd] != '.') {
    return result;
  }
  const std::string_view id_text = value.substr(kTokenVersion.size(), kTokenIdEnd - kTokenVersion.size());
  const std::string_view rest = value.substr(kTokenIdEnd + 1);
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return result;
  const std::string_view expiry_text = rest.substr(0, dot);
  const std::string_view mac_text = rest.substr(dot + 1);

  int64_t expires_at = 0;
  std::string id;
  std::string mac;
  if (mac_text.size() != kTokenMacChars || !ParseExpiry(expiry_text, &expires_at) ||
      !crypto::Base64UrlDecode(id_text, &id) || id.size() != kIdSize ||
      !crypto::Base64UrlDecode(mac_text, &mac) || mac.size() != crypto::kSha256Size) {
    return result;
  }

  for (size_t i = 0; i < keys_.size(); ++i) {
    crypto::Sha256Digest expected;
    if (!TokenMac(i, id, expiry_text, &expected)) return result;
    if (crypto::ConstantTimeEqual(AsView(expected), mac)) {
      result.verdict = expires_at <= now ? CookieVerdict::kExpired : CookieVerdict::kValid;
      result.id = std::move(id);
      result.expires_at = expires_at;
      result.key_index = i;
      return result;
    }
  }
  return result;
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
  if (id.size() != kIdSize) return Status::Invalid("session id has the wrong length");
  if (expires_at < 1 || expires_at > kMaxExpiry) return Status::Invalid("expiry out of range");
  const std::string json = SerializeSession(data);
  // Refuse before encrypting: the size is known from the JSON length alone.
  const size_t cookie_size = SealedCookieSize(json.size());
  if (cookie_size > kBrowserCookieLimit) {
    return Status::TooLarge("session cookie would be " + std::to_string(cookie_size) +
                            " bytes, over the 4096-byte browser limit");
  }

  // The public id travels inside the sealed value, so reading a session
  // (every request) costs no HMAC; it is recomputed here, under the current
  // secret, whenever the cookie is issued.
  crypto::Sha256Digest public_id;
  if (!keys_[0].public_id_key.Sign(id, &public_id)) return Status::Invalid("public id computation failed");
  std::string plaintext;
  plaintext.reserve(kExpiryBytes + kIdSize + kPublicIdBytes + json.size());
  for (int shift = 56; shift >= 0; shift -= 8) {
    plaintext.push_back(static_cast<char>((static_cast<uint64_t>(expires_at) >> shift) & 0xFF));
  }
  plaintext.append(id);
  plaintext.append(AsView(public_id).substr(0, kPublicIdBytes));
  plaintext.append(json);

  Result<std::string> sealed = crypto::Seal(keys_[0].cookie_enc, sealed_aad_, plaintext);
  if (!sealed.ok()) return sealed.status();
  std::string out;
  out.reserve(kSealedVersion.size() + crypto::Base64UrlEncodedSize(sealed->size()));
  out.append(kSealedVersion);
  crypto::AppendBase64Url(&out, *sealed);
  return out;
}

bool ParseSessionJson(std::string_view json, SessionData* out) {
  out->clear();
  if (SessionJsonReader(json).Read(out)) return true;
  out->clear();
  return false;
}

DecodedCookie CookieCodec::Open(std::string_view value, int64_t now, bool decode_data) const {
  DecodedCookie result;
  if (value.size() > kMaxSealedBytes || value.substr(0, kSealedVersion.size()) != kSealedVersion) {
    return result;
  }
  std::string sealed;
  if (!crypto::Base64UrlDecode(value.substr(kSealedVersion.size()), &sealed) ||
      sealed.size() < crypto::kAeadOverhead + kExpiryBytes + kIdSize + kPublicIdBytes) {
    return result;
  }

  for (size_t i = 0; i < keys_.size(); ++i) {
    Result<std::string> plain = crypto::Open(keys_[i].cookie_enc, sealed_aad_, sealed);
    if (!plain.ok()) continue;
    const std::string& p = *plain;
    uint64_t expiry = 0;
    for (size_t k = 0; k < kExpiryBytes; ++k) expiry = (expiry << 8) | static_cast<unsigned char>(p[k]);
    if (expiry < 1 || expiry > static_cast<uint64_t>(kMaxExpiry)) return result;
    const int64_t expires_at = static_cast<int64_t>(expiry);
    if (expires_at > now) {
      const std::string_view json = std::string_view(p).substr(kExpiryBytes + kIdSize + kPublicIdBytes);
      if (!SessionJsonReader(json).Read(decode_data ? &result.data : nullptr)) {
        result.data.clear();
        return result;
      }
      result.json = std::string(json);
      result.verdict = CookieVerdict::kValid;
    } else {
      result.verdict = CookieVerdict::kExpired;
    }
    result.id = p.substr(kExpiryBytes, kIdSize);
    result.public_id = crypto::Base64UrlEncode(std::string_view(p).substr(kExpiryBytes + kIdSize, kPublicIdBytes));
    result.expires_at = expires_at;
    result.key_index = i;
    return result;
  }
  return result;
}

DecodedCookie CookieCodec::Verify(std::string_view value, int64_t now, bool decode_data) const {
  return manager_ == StoreKind::kCookie ? Open(value, now, decode_data) : DecodeToken(value, now);
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
  constexpr size_t kMaxAgeAndExpires = sizeof("; Max-Age=") + 20 + sizeof("; Expires=") + 40;
  std::string out;
  out.reserve(name_eq_.size() + value.size() + scope_attrs_.size() + flag_attrs_.size() +
              (permanent_ ? kMaxAgeAndExpires : 0));
  out.append(name_eq_);
  out.append(value);
  out.append(scope_attrs_);
  if (permanent_) {
    out.append("; Max-Age=");
    AppendDecimal(&out, expires_at > now ? expires_at - now : 0);
    out.append("; Expires=");
    AppendHttpDate(&out, expires_at);
  }
  out.append(flag_attrs_);
  return out;
}

Status CookieCodec::CheckCookieSize(std::string_view value) const {
  const size_t size = name_eq_.size() + value.size();
  if (size <= kBrowserCookieLimit) return Status::OK();
  return Status::TooLarge("session cookie would be " + std::to_string(size) +
                          " bytes, over the 4096-byte browser limit");
}

}  // namespace sessiond
