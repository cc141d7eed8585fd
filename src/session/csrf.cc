#include "session/csrf.h"

#include <openssl/crypto.h>

#include <cstring>

#include "crypto/keys.h"
#include "http/headers.h"

namespace sessiond {

namespace {

// host[:port] without the scheme's default port, for comparison.
std::string_view WithoutDefaultPort(std::string_view host_port, std::string_view scheme) {
  const std::string_view port = EqualsIgnoreCase(scheme, "https") ? ":443" : ":80";
  if (host_port.size() > port.size() && host_port.substr(host_port.size() - port.size()) == port) {
    host_port.remove_suffix(port.size());
  }
  return host_port;
}

Result<crypto::HmacKey> DeriveTokenKey(std::string_view secret) {
  Result<std::string> raw = crypto::Hkdf(secret, crypto::kKeySalt, crypto::kInfoCsrfToken, crypto::kDerivedKeySize);
  if (!raw.ok()) return raw.status();
  Result<crypto::HmacKey> key = crypto::HmacKey::Create(*raw);
  OPENSSL_cleanse(raw->data(), raw->size());
  return key;
}

}  // namespace

bool IsSameOrigin(std::string_view origin, std::string_view proto, std::string_view host) {
  origin = TrimOws(origin);
  const size_t sep = origin.find("://");
  if (sep == std::string_view::npos || proto.empty() || host.empty()) return false;
  const std::string_view scheme = origin.substr(0, sep);
  const std::string_view authority = origin.substr(sep + 3);
  if (!EqualsIgnoreCase(scheme, proto) || authority.empty()) return false;
  if (authority.find_first_of("/?#@ \\") != std::string_view::npos) return false;
  return EqualsIgnoreCase(WithoutDefaultPort(authority, scheme), WithoutDefaultPort(host, scheme));
}

Result<std::unique_ptr<CsrfGuard>> CsrfGuard::Create(const Config& config) {
  std::unique_ptr<CsrfGuard> guard(new CsrfGuard());
  std::vector<std::string_view> secrets{config.secret_key};
  for (const std::string& s : config.secret_key_fallbacks) secrets.push_back(s);
  for (std::string_view secret : secrets) {
    Result<crypto::HmacKey> key = DeriveTokenKey(secret);
    if (!key.ok()) return key.status();
    guard->keys_.push_back(std::move(*key));
  }
  guard->header_ = config.policy.csrf.header;
  for (const std::string& path : config.policy.csrf.exempt) guard->exempt_.emplace_back(path, /*exact=*/false);
  return guard;
}

bool CsrfGuard::TokenWith(const crypto::HmacKey& key, std::string_view session_id, std::string* out) const {
  crypto::Sha256Digest mac;
  if (!key.Sign(session_id, &mac)) return false;
  out->clear();
  crypto::AppendBase64Url(out, std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
  return true;
}

bool CsrfGuard::Token(std::string_view session_id, std::string* out) const {
  return TokenWith(keys_[0], session_id, out);
}

CsrfTokenCache::~CsrfTokenCache() { OPENSSL_cleanse(entries_, sizeof(entries_)); }

bool CsrfTokenCache::Token(const CsrfGuard& guard, std::string_view session_id, std::string* out) {
  if (session_id.size() != kIdSize) return guard.Token(session_id, out);
  Entry& e = entries_[static_cast<unsigned char>(session_id[0]) % kEntries];
  if (e.used && memcmp(e.id, session_id.data(), kIdSize) == 0) {
    ++hits_;
    out->assign(e.token, kCsrfTokenSize);
    return true;
  }
  if (!guard.Token(session_id, out) || out->size() != kCsrfTokenSize) return false;
  memcpy(e.id, session_id.data(), kIdSize);
  memcpy(e.token, out->data(), kCsrfTokenSize);
  e.used = true;
  return true;
}

bool CsrfGuard::IsUnsafeMethod(std::string_view method) {
  return !(method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE");
}

bool CsrfGuard::Passes(const RequestHead& request, std::string_view session_id, std::string* scratch) const {
  if (std::optional<std::string_view> sent = request.headers.Get(header_)) {
    const std::string_view token = TrimOws(*sent);
    if (token.size() == kCsrfTokenSize) {
      for (const crypto::HmacKey& key : keys_) {
        if (TokenWith(key, session_id, scratch) && crypto::ConstantTimeEqual(token, *scratch)) return true;
      }
    }
  }
  if (std::optional<std::string_view> site = request.headers.Get("Sec-Fetch-Site")) {
    if (EqualsIgnoreCase(TrimOws(*site), "same-origin")) return true;
  }
  if (std::optional<std::string_view> origin = request.headers.Get("Origin")) {
    const std::string_view proto = request.headers.Get(HeaderId::kXForwardedProto).value_or("");
    if (IsSameOrigin(*origin, proto, request.host)) return true;
  }
  return false;
}

}  // namespace sessiond
