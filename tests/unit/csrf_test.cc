// CSRF tokens and checks (src/session/csrf.h; docs/HEADER-PROTOCOL.md, CSRF
// token): the token is the session's own, and an unsafe request passes only
// with it, with Sec-Fetch-Site: same-origin, or with its own Origin.
#include "session/csrf.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>

#include "crypto/crypto.h"
#include "crypto/keys.h"

namespace sessiond {
namespace {

const std::string kSecret = "csrf test secret 0123456789abcdef0123456789";
const std::string kOldSecret = "csrf test OLD secret 0123456789abcdef012345";

std::unique_ptr<CsrfGuard> Guard(const std::string& secret, std::vector<std::string> fallbacks = {}) {
  Config config;
  config.secret_key = secret;
  config.secret_key_fallbacks = std::move(fallbacks);
  config.policy.csrf.enabled = true;
  config.policy.csrf.exempt = {"/hooks"};
  Result<std::unique_ptr<CsrfGuard>> guard = CsrfGuard::Create(config);
  REQUIRE(guard.ok());
  return std::move(*guard);
}

std::string TokenOf(const CsrfGuard& guard, std::string_view id) {
  std::string token;
  REQUIRE(guard.Token(id, &token));
  return token;
}

struct Request {
  RequestHead head;
  Request(std::initializer_list<std::pair<std::string, std::string>> headers, std::string_view host = "shop.example")
      : fields(headers) {
    head.method = "POST";
    head.target = "/cart";
    head.host = host;
    head.headers.Append("X-Forwarded-Proto", "http");
    for (const auto& [n, v] : fields) head.headers.Append(n, v);
  }
  std::vector<std::pair<std::string, std::string>> fields;
};

const std::string kId(32, 'a');
const std::string kOtherId(32, 'b');

TEST_CASE("the CSRF token is HMAC-SHA256 of the session id under a key derived for it, base64url") {
  auto guard = Guard(kSecret);
  const std::string token = TokenOf(*guard, kId);
  CHECK(token.size() == kCsrfTokenSize);
  Result<std::string> key = crypto::Hkdf(kSecret, crypto::kKeySalt, crypto::kInfoCsrfToken, 32);
  REQUIRE(key.ok());
  Result<std::string> mac = crypto::HmacSha256(*key, kId);
  REQUIRE(mac.ok());
  CHECK(token == crypto::Base64UrlEncode(*mac));
  CHECK(TokenOf(*guard, kId) == token);           // derived, not random: stable per session
  CHECK(TokenOf(*guard, kOtherId) != token);      // per session
  CHECK(TokenOf(*Guard(kOldSecret), kId) != token);  // per secret
}

TEST_CASE("CSRF: the session's token passes; missing, wrong, other-session or malformed tokens do not") {
  auto guard = Guard(kSecret);
  std::string scratch;
  const std::string token = TokenOf(*guard, kId);
  CHECK(guard->Passes(Request({{"X-CSRF-Token", token}}).head, kId, &scratch));
  CHECK(guard->Passes(Request({{"x-csrf-token", " " + token + " "}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"X-CSRF-Token", ""}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"X-CSRF-Token", TokenOf(*guard, kOtherId)}}).head, kId, &scratch));
  std::string flipped = token;
  flipped[10] = flipped[10] == 'A' ? 'B' : 'A';
  CHECK_FALSE(guard->Passes(Request({{"X-CSRF-Token", flipped}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"X-CSRF-Token", token.substr(1)}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"X-CSRF-Token", token + "A"}}).head, kId, &scratch));
  // The token in another header (say, a form field's name) does not count.
  CHECK_FALSE(guard->Passes(Request({{"X-XSRF-Token", token}}).head, kId, &scratch));
}

TEST_CASE("CSRF: a token made under a fallback secret still passes; one under an unknown secret does not") {
  auto rotated = Guard(kSecret, {kOldSecret});
  std::string scratch;
  const std::string old_token = TokenOf(*Guard(kOldSecret), kId);
  CHECK(rotated->Passes(Request({{"X-CSRF-Token", old_token}}).head, kId, &scratch));
  CHECK_FALSE(Guard(kSecret)->Passes(Request({{"X-CSRF-Token", old_token}}).head, kId, &scratch));
  // New tokens come from the current secret.
  CHECK(TokenOf(*rotated, kId) == TokenOf(*Guard(kSecret), kId));
}

TEST_CASE("CSRF: Sec-Fetch-Site same-origin passes; same-site, cross-site and none do not") {
  auto guard = Guard(kSecret);
  std::string scratch;
  CHECK(guard->Passes(Request({{"Sec-Fetch-Site", "same-origin"}}).head, kId, &scratch));
  CHECK(guard->Passes(Request({{"Sec-Fetch-Site", "Same-Origin"}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"Sec-Fetch-Site", "same-site"}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"Sec-Fetch-Site", "cross-site"}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"Sec-Fetch-Site", "none"}}).head, kId, &scratch));
  // Cross-site with the right token: the token decides.
  CHECK(guard->Passes(Request({{"Sec-Fetch-Site", "cross-site"}, {"X-CSRF-Token", TokenOf(*guard, kId)}}).head, kId,
                      &scratch));
}

TEST_CASE("CSRF: an Origin equal to the request's own origin passes; any other does not") {
  auto guard = Guard(kSecret);
  std::string scratch;
  CHECK(guard->Passes(Request({{"Origin", "http://shop.example"}}).head, kId, &scratch));
  CHECK(guard->Passes(Request({{"Origin", "http://shop.example:80"}}).head, kId, &scratch));
  CHECK(guard->Passes(Request({{"Origin", "HTTP://Shop.Example"}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"Origin", "https://shop.example"}}).head, kId, &scratch));  // scheme
  CHECK_FALSE(guard->Passes(Request({{"Origin", "http://evil.example"}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"Origin", "http://shop.example.evil.example"}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"Origin", "http://shop.example:8080"}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"Origin", "null"}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"Origin", "http://evil.example@shop.example"}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"Origin", ""}}).head, kId, &scratch));
  CHECK_FALSE(guard->Passes(Request({{"Origin", "http://shop.example"}}, "").head, kId, &scratch));  // no Host
}

TEST_CASE("IsSameOrigin") {
  CHECK(IsSameOrigin("https://a.example", "https", "a.example:443"));
  CHECK(IsSameOrigin("https://a.example:443", "https", "a.example"));
  CHECK(IsSameOrigin("http://[::1]:8080", "http", "[::1]:8080"));
  CHECK_FALSE(IsSameOrigin("https://a.example", "http", "a.example"));
  CHECK_FALSE(IsSameOrigin("https://a.example/", "https", "a.example"));
  CHECK_FALSE(IsSameOrigin("https://a.example", "", "a.example"));
  CHECK_FALSE(IsSameOrigin("a.example", "https", "a.example"));
}

TEST_CASE("CSRF: which methods are checked, and exempt paths") {
  for (const char* m : {"POST", "PUT", "PATCH", "DELETE", "PROPPATCH", "MKCOL"}) CHECK(CsrfGuard::IsUnsafeMethod(m));
  for (const char* m : {"GET", "HEAD", "OPTIONS", "TRACE"}) CHECK_FALSE(CsrfGuard::IsUnsafeMethod(m));
  auto guard = Guard(kSecret);
  CHECK(guard->Exempt("/hooks"));
  CHECK(guard->Exempt("/hooks/stripe"));
  CHECK_FALSE(guard->Exempt("/hooksx"));
  CHECK_FALSE(guard->Exempt("/cart"));
}

}  // namespace
}  // namespace sessiond

namespace sessiond {
namespace {

TEST_CASE("CsrfTokenCache gives exactly the guard's token, from the cache for a repeated session") {
  auto guard = Guard(kSecret);
  CsrfTokenCache cache;
  std::string token;
  REQUIRE(cache.Token(*guard, kId, &token));
  CHECK(token == TokenOf(*guard, kId));
  CHECK(cache.hits() == 0);
  REQUIRE(cache.Token(*guard, kId, &token));
  CHECK(token == TokenOf(*guard, kId));
  CHECK(cache.hits() == 1);
  // Another id in the same slot (same first byte) replaces it; never the other's token.
  std::string same_slot = kId;
  same_slot[31] = 'z';
  REQUIRE(cache.Token(*guard, same_slot, &token));
  CHECK(token == TokenOf(*guard, same_slot));
  CHECK(token != TokenOf(*guard, kId));
  REQUIRE(cache.Token(*guard, kId, &token));
  CHECK(token == TokenOf(*guard, kId));
  CHECK(cache.hits() == 1);
  // Ids of another size are never cached.
  REQUIRE(cache.Token(*guard, "short", &token));
  REQUIRE(cache.Token(*guard, "short", &token));
  CHECK(token == TokenOf(*guard, "short"));
  CHECK(cache.hits() == 1);
}

}  // namespace
}  // namespace sessiond
