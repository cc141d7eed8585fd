// The request policy in the session filter (src/session/edge_policy.h): the
// normalised target is what goes upstream, refusals answer before the
// backend, X-Session-Csrf and X-Session-Signature are added last, and the
// cookie read path with routes, CSRF and a rate limit allocates nothing in
// steady state.
#include "session/edge_policy.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "crypto/crypto.h"
#include "session/cookie_codec.h"
#include "session/session_filter.h"
#include "new_counter.h"

namespace sessiond {
namespace {

using testing::NewCounter;

const std::string kSecret = "edge policy test secret, 0123456789abcdef012";
const std::string kSignatureKey = "edge policy signature key 0123456789abcdef";

struct Outcome {
  bool called = false;
  FilterResult result;
  FilterDone Done() {
    return [this](FilterResult r) {
      called = true;
      result = std::move(r);
    };
  }
};

std::vector<std::string> Values(const HeaderList& headers, std::string_view name) {
  std::vector<std::string> out;
  for (const Header& h : headers.fields()) {
    if (EqualsIgnoreCase(h.name, name)) out.emplace_back(h.value);
  }
  return out;
}

RouteRule Rule(std::string path, RouteRequire require, std::vector<std::string> keys = {}) {
  RouteRule r;
  r.path = std::move(path);
  r.require = require;
  r.keys = std::move(keys);
  return r;
}

std::shared_ptr<Config> PolicyConfigFor(int rules) {
  auto config = std::make_shared<Config>();
  config->secret_key = kSecret;
  config->session.max_session_bytes = 1000;
  PolicyConfig& p = config->policy;
  p.routes.push_back(Rule("/public", RouteRequire::kNone));
  p.routes.push_back(Rule("/admin", RouteRequire::kKeys, {"admin"}));
  RouteRule login = Rule("/app", RouteRequire::kSession);
  login.redirect = "/login";
  p.routes.push_back(login);
  for (int i = 3; i < rules; ++i) p.routes.push_back(Rule("/area" + std::to_string(i), RouteRequire::kSession));
  p.csrf.enabled = true;
  p.csrf.exempt = {"/hooks"};
  RateLimitRule limit;
  limit.key = RateLimitKey::kSession;
  limit.count = 1000000;
  limit.burst = 1000000;
  p.rate_limits.push_back(limit);
  p.upstream_signature.key = kSignatureKey;
  return config;
}

struct Proxy {
  std::shared_ptr<SessionContext> ctx;
  std::unique_ptr<ExchangeFilterFactory> factory;
  std::string cookie;       // a session cookie of {"user":"ada"} (and admin when asked)
  std::string session_id;

  explicit Proxy(std::shared_ptr<Config> config, bool admin = false) {
    ctx = std::make_shared<SessionContext>();
    ctx->config = config;
    Result<std::shared_ptr<const CookieCodec>> codec = CookieCodec::Create(*config);
    REQUIRE(codec.ok());
    ctx->codec = *codec;
    Result<std::shared_ptr<const EdgePolicy>> edge = EdgePolicy::Create(*config);
    REQUIRE(edge.ok());
    ctx->edge = *edge;
    factory = NewSessionFilterFactory(ctx);
    session_id = std::string(CookieCodec::kIdSize, 's');
    SessionData data = {{"user", "\"ada\""}};
    if (admin) data["admin"] = "true";
    Result<std::string> sealed = ctx->codec->Seal(session_id, static_cast<int64_t>(time(nullptr)) + 3600, data);
    REQUIRE(sealed.ok());
    cookie = "session_id=" + *sealed;
  }
};

// One exchange's heads, reused like a connection reuses them.
struct Heads {
  RequestHead request;
  ResponseHead response;
  std::string target, cookie;
  std::vector<std::pair<std::string, std::string>> extra;

  void NewRequest(std::string_view method, std::string_view t, std::string_view c) {
    request.Clear();
    response.Clear();
    target.assign(t.data(), t.size());
    cookie.assign(c.data(), c.size());
    request.method = method;
    request.target = target;
    request.host = "shop.example";
    request.headers.Append("Host", "shop.example");
    request.headers.Append("X-Forwarded-Proto", "http");
    if (!cookie.empty()) request.headers.Append("Cookie", cookie);
    for (const auto& [n, v] : extra) request.headers.Append(n, v);
    request.headers.Append("X-Session-Signature", "t=1,v1=forged");  // stripped like any X-Session-*
  }
};

// Runs the request side only; returns what the filter answered.
FilterResult RequestSide(Proxy& proxy, Heads& heads, std::string_view method, std::string_view target,
                         bool with_cookie, std::string_view client_ip = "192.0.2.1") {
  heads.NewRequest(method, target, with_cookie ? std::string_view(proxy.cookie) : std::string_view());
  ExchangeFilter* filter = proxy.factory->Acquire(ExchangeInfo{client_ip});
  Outcome done;
  filter->OnRequestHead(heads.request, done.Done());
  proxy.factory->Recycle(filter);
  REQUIRE(done.called);
  return done.result;
}

TEST_CASE("the backend gets the normalised target, and refused paths get 400") {
  Proxy proxy(PolicyConfigFor(3));
  Heads heads;
  CHECK(RequestSide(proxy, heads, "GET", "/public/./x/../y;p?q=/../z", false).status == 0);
  CHECK(heads.request.target == "/public/y;p?q=/../z");
  FilterResult bad = RequestSide(proxy, heads, "GET", "/public/a%2Fb", false);
  CHECK(bad.status == 400);
  CHECK(bad.body == "Bad Request\n");
}

TEST_CASE("access rules through the filter: 401, keys, redirect, none") {
  Proxy user(PolicyConfigFor(3));
  Proxy admin(PolicyConfigFor(3), /*admin=*/true);
  Heads heads;
  CHECK(RequestSide(user, heads, "GET", "/admin/x", false).status == 401);
  CHECK(RequestSide(user, heads, "GET", "/admin/x", true).status == 401);  // a session without the key
  CHECK(RequestSide(admin, heads, "GET", "/public/../ADMIN//x", true).status == 0);
  FilterResult to_login = RequestSide(user, heads, "GET", "/app/../app/page?x=1", false);
  CHECK(to_login.status == 302);
  CHECK(to_login.headers.find("Location: /login?return_to=/app/page%3Fx%3D1\r\n") == 0);
  CHECK(RequestSide(user, heads, "GET", "/app/page", true).status == 0);
  CHECK(RequestSide(user, heads, "GET", "/public", false).status == 0);
  CHECK(RequestSide(user, heads, "GET", "/elsewhere", false).status == 0);  // no rule: passes
  heads.extra = {{"Accept", "application/json"}};
  FilterResult json = RequestSide(user, heads, "GET", "/admin", false);
  CHECK(json.status == 401);
  CHECK(json.content_type == "application/json");
}

TEST_CASE("CSRF through the filter: unsafe requests of a session need the token; the backend gets it") {
  Proxy proxy(PolicyConfigFor(3));
  Heads heads;
  REQUIRE(RequestSide(proxy, heads, "GET", "/page", true).status == 0);
  const std::vector<std::string> tokens = Values(heads.request.headers, "X-Session-Csrf");
  REQUIRE(tokens.size() == 1);
  const std::string token = tokens[0];
  CHECK(RequestSide(proxy, heads, "POST", "/cart", true).status == 403);
  CHECK(RequestSide(proxy, heads, "POST", "/cart", false).status == 0);  // no session: nothing to forge
  CHECK(RequestSide(proxy, heads, "POST", "/hooks/stripe", true).status == 0);  // exempt
  CHECK(RequestSide(proxy, heads, "GET", "/cart", true).status == 0);
  heads.extra = {{"X-CSRF-Token", token}};
  CHECK(RequestSide(proxy, heads, "POST", "/cart", true).status == 0);
  heads.extra = {{"X-CSRF-Token", "A" + token.substr(1)}};
  CHECK(RequestSide(proxy, heads, "DELETE", "/cart", true).status == 403);
  heads.extra = {{"Origin", "http://shop.example"}};
  CHECK(RequestSide(proxy, heads, "PUT", "/cart", true).status == 0);
  heads.extra = {{"Origin", "http://evil.example"}};
  CHECK(RequestSide(proxy, heads, "PUT", "/cart", true).status == 403);
  // Without a session there is no X-Session-Csrf.
  heads.extra.clear();
  REQUIRE(RequestSide(proxy, heads, "GET", "/page", false).status == 0);
  CHECK(Values(heads.request.headers, "X-Session-Csrf").empty());
}

TEST_CASE("X-Session-Signature signs what is forwarded; a client's one is replaced") {
  Proxy proxy(PolicyConfigFor(3));
  Heads heads;
  REQUIRE(RequestSide(proxy, heads, "GET", "/public/../page", true).status == 0);
  const std::vector<std::string> sig = Values(heads.request.headers, "X-Session-Signature");
  REQUIRE(sig.size() == 1);
  CHECK(heads.request.headers.fields().back().name == "X-Session-Signature");  // the last header
  const size_t comma = sig[0].find(",v1=");
  REQUIRE(sig[0].compare(0, 2, "t=") == 0);
  REQUIRE(comma != std::string::npos);
  const int64_t t = std::stoll(sig[0].substr(2, comma - 2));
  CHECK(std::llabs(t - static_cast<int64_t>(time(nullptr))) <= 2);
  std::string text;
  UpstreamSigner::AppendCanonical(&text, t, "GET", "/page", heads.request.headers);
  CHECK(text.find("x-session-csrf:") != std::string::npos);
  CHECK(text.find("x-session-status:active\n") != std::string::npos);
  Result<std::string> mac = crypto::HmacSha256(kSignatureKey, text);
  REQUIRE(mac.ok());
  CHECK(sig[0].substr(comma + 4) == crypto::HexEncode(*mac));
}

TEST_CASE("client_address and session rate limits answer 429 with Retry-After") {
  auto config = PolicyConfigFor(3);
  config->policy.rate_limits.clear();
  RateLimitRule per_address;
  per_address.key = RateLimitKey::kClientAddress;
  per_address.count = 2;
  per_address.period = std::chrono::hours(1);
  per_address.burst = 2;
  per_address.paths = {"/api"};
  RateLimitRule per_session = per_address;
  per_session.key = RateLimitKey::kSession;
  per_session.paths.clear();
  per_session.burst = per_session.count = 3;
  config->policy.rate_limits = {per_address, per_session};
  Proxy proxy(config);
  Heads heads;
  CHECK(RequestSide(proxy, heads, "GET", "/api/x", false, "192.0.2.1").status == 0);
  CHECK(RequestSide(proxy, heads, "GET", "/API/y", false, "192.0.2.1").status == 0);
  FilterResult limited = RequestSide(proxy, heads, "GET", "/api", false, "192.0.2.1");
  CHECK(limited.status == 429);
  CHECK(limited.headers == "Retry-After: 1800\r\n");
  CHECK(RequestSide(proxy, heads, "GET", "/elsewhere", false, "192.0.2.1").status == 0);  // not under /api
  CHECK(RequestSide(proxy, heads, "GET", "/api", false, "192.0.2.2").status == 0);        // another client
  // IPv6 clients are keyed by their /64.
  CHECK(RequestSide(proxy, heads, "GET", "/api", false, "2001:db8:1:2::1").status == 0);
  CHECK(RequestSide(proxy, heads, "GET", "/api", false, "2001:db8:1:2::ffff").status == 0);
  CHECK(RequestSide(proxy, heads, "GET", "/api", false, "2001:db8:1:2:aaaa::1").status == 429);
  CHECK(RequestSide(proxy, heads, "GET", "/api", false, "2001:db8:1:3::1").status == 0);
  // The session's own bucket, whatever the address.
  for (int i = 0; i < 3; ++i) CHECK(RequestSide(proxy, heads, "GET", "/page", true, "198.51.100.7").status == 0);
  CHECK(RequestSide(proxy, heads, "GET", "/page", true, "198.51.100.8").status == 429);
  CHECK(RequestSide(proxy, heads, "GET", "/page", false, "198.51.100.8").status == 0);
}

TEST_CASE("subject rate limits: one bucket per user, shared by its sessions; none without the key") {
  // docs/CONFIGURATION.md, rate_limits: key: subject.
  auto config = PolicyConfigFor(3);
  config->session.subject_key = "user";
  RateLimitRule per_subject;
  per_subject.key = RateLimitKey::kSubject;
  per_subject.count = per_subject.burst = 3;
  per_subject.period = std::chrono::hours(1);
  config->policy.rate_limits = {per_subject};
  Proxy proxy(config);
  auto seal = [&](char id_byte, const SessionData& data) {
    Result<std::string> sealed = proxy.ctx->codec->Seal(std::string(CookieCodec::kIdSize, id_byte),
                                                        static_cast<int64_t>(time(nullptr)) + 3600, data);
    REQUIRE(sealed.ok());
    return "session_id=" + *sealed;
  };
  const std::string ada_laptop = seal('a', {{"user", "\"ada\""}});
  const std::string ada_phone = seal('b', {{"user", "\"ada\""}, {"cart", "[1]"}});
  const std::string grace = seal('c', {{"user", "\"grace\""}});
  const std::string numeric = seal('d', {{"user", "7"}});
  const std::string numeric_text = seal('e', {{"user", "\"7\""}});  // the same subject as 7
  const std::string anonymous = seal('f', {{"theme", "\"dark\""}});
  auto status = [&](const std::string& cookie) {
    Heads heads;
    heads.NewRequest("GET", "/page", cookie);
    ExchangeFilter* filter = proxy.factory->Acquire(ExchangeInfo{"192.0.2.1"});
    Outcome done;
    filter->OnRequestHead(heads.request, done.Done());
    proxy.factory->Recycle(filter);
    REQUIRE(done.called);
    return done.result.status;
  };
  // ada's two sessions share three tokens.
  CHECK(status(ada_laptop) == 0);
  CHECK(status(ada_phone) == 0);
  CHECK(status(ada_laptop) == 0);
  CHECK(status(ada_phone) == 429);
  CHECK(status(ada_laptop) == 429);
  // Another user has a bucket of their own.
  for (int i = 0; i < 3; ++i) CHECK(status(grace) == 0);
  CHECK(status(grace) == 429);
  // A JSON integer and its digits as a string are one subject.
  for (int i = 0; i < 3; ++i) CHECK(status(i % 2 ? numeric : numeric_text) == 0);
  CHECK(status(numeric) == 429);
  // A session without the key, and no session at all, are not limited by it.
  for (int i = 0; i < 10; ++i) {
    CHECK(status(anonymous) == 0);
    CHECK(status("") == 0);
  }
}

TEST_CASE("EdgePolicy::Create refuses subject rate limits without session.subject_key") {
  auto config = PolicyConfigFor(3);
  RateLimitRule per_subject;
  per_subject.key = RateLimitKey::kSubject;
  per_subject.count = per_subject.burst = 3;
  config->policy.rate_limits = {per_subject};
  CHECK_FALSE(EdgePolicy::Create(*config).ok());
  config->session.subject_key = "user";
  CHECK(EdgePolicy::Create(*config).ok());
}

TEST_CASE("EdgePolicy::Create: nothing configured, nothing built") {
  Config config;
  config.secret_key = kSecret;
  Result<std::shared_ptr<const EdgePolicy>> edge = EdgePolicy::Create(config);
  REQUIRE(edge.ok());
  CHECK(edge->get() == nullptr);
}

TEST_CASE("cookie read path with 10 routes, CSRF, a rate limit and the signature allocates nothing when warm") {
  // docs/PERFORMANCE.md, Where the instructions go
  Proxy proxy(PolicyConfigFor(10));
  Heads heads;
  auto exchange = [&](Outcome* request_done, Outcome* response_done) {
    heads.NewRequest("GET", "/area9/page/../index;x?q=1", proxy.cookie);
    ExchangeFilter* filter = proxy.factory->Acquire(ExchangeInfo{"192.0.2.1"});
    filter->OnRequestHead(heads.request, request_done->Done());
    filter->OnResponseHead(heads.request, heads.response, response_done->Done());
    proxy.factory->Recycle(filter);
  };
  for (int warm = 0; warm < 4; ++warm) {
    Outcome a, b;
    exchange(&a, &b);
  }
  Outcome request_done, response_done;
  long news = 0;
  {
    NewCounter counter;
    exchange(&request_done, &response_done);
    news = counter.count();
  }
  CHECK(news == 0);
  REQUIRE(request_done.called);
  CHECK(request_done.result.status == 0);
  CHECK(heads.request.target == "/area9/index;x?q=1");
  CHECK(Values(heads.request.headers, "X-Session-Csrf").size() == 1);
  CHECK(Values(heads.request.headers, "X-Session-Signature").size() == 1);
  REQUIRE(response_done.called);
  CHECK(response_done.result.status == 0);
}

}  // namespace
}  // namespace sessiond
