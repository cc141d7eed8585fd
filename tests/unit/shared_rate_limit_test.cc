// Shared rate limits (rate_limits[].shared; docs/HTTP.md, Shared rate
// limits): the key's validation, the buckets' names (alike on every
// instance, secret, distinct per key and limit), and the session filter
// waiting for the store's tokens - 429, redis.on_error, the session's limits
// after its load, late answers - driven with a store whose answers the test
// gives.
#include "session/shared_rate_limit.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "config/policy_reader.h"
#include "observe/metrics.h"
#include "session/cookie_codec.h"
#include "session/edge_policy.h"
#include "session/session_filter.h"

namespace sessiond {
namespace {

const std::string kSecret = "shared rate limit test secret, 0123456789abcdef";

// ---------------------------------------------------------------- config

std::string WithRedis(const std::string& manager, const std::string& limits) {
  return "upstream: http://127.0.0.1:3000\nsecret_key: " + kSecret + "\nsession:\n  manager: " + manager +
         "\nredis:\n  url: redis://127.0.0.1:6379/0\nrate_limits:\n" + limits;
}

Result<std::shared_ptr<const Config>> Parse(const std::string& text) {
  return ParseConfig(text, "test.yaml", [](const std::string&) -> std::optional<std::string> { return "x"; });
}

TEST_CASE("rate_limits[].shared: false by default, true with the redis manager") {
  auto r = Parse(WithRedis("redis", "  - {key: client_address, rate: 5/1s}\n  - {key: session, rate: 5/1s, "
                                    "shared: true}\n  - {key: session, rate: 5/1s, shared: false}\n"));
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  const std::vector<RateLimitRule>& limits = (*r)->policy.rate_limits;
  REQUIRE(limits.size() == 3);
  CHECK_FALSE(limits[0].shared);
  CHECK(limits[1].shared);
  CHECK_FALSE(limits[2].shared);
  // --check-config says which are shared.
  const auto lines = config_internal::DescribePolicy((*r)->policy);
  bool said = false;
  for (const auto& [key, value] : lines) {
    if (key == "rate_limits[1]") said = value.find("shared in redis") != std::string::npos;
    if (key == "rate_limits[0]") CHECK(value.find("shared") == std::string::npos);
  }
  CHECK(said);
}

TEST_CASE("rate_limits[].shared: true with any other manager is an error at the value, saying why") {
  for (const char* manager : {"cookie", "memory", "file"}) {
    const std::string line = "  - {key: client_address, rate: 5/1s, shared: true}";
    const std::string error = [&] {
      auto r = Parse(WithRedis(manager, line + "\n"));
      return r.ok() ? std::string() : r.status().message();
    }();
    // Line 8 of the file; the column of "true".
    const std::string where = "test.yaml:8:" + std::to_string(line.find("true") + 1) + ": ";
    CHECK_MESSAGE(error.find(where + "rate_limits[0].shared: true needs session.manager: redis") != std::string::npos,
                  error);
    CHECK_MESSAGE(error.find(std::string("(the manager is ") + manager + ")") != std::string::npos, error);
  }
  auto bad = Parse(WithRedis("redis", "  - {key: session, rate: 5/1s, shared: maybe}\n"));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("rate_limits[0].shared: expected true or false") != std::string::npos);
}

// ---------------------------------------------------------------- names

RateLimitRule Limit(RateLimitKey key, uint64_t count, std::chrono::milliseconds period, uint64_t burst,
                    bool shared, std::vector<std::string> paths = {}) {
  RateLimitRule r;
  r.key = key;
  r.count = count;
  r.period = period;
  r.burst = burst;
  r.shared = shared;
  r.paths = std::move(paths);
  return r;
}

Config ConfigWith(std::vector<RateLimitRule> rules, const std::string& secret = kSecret) {
  Config c;
  c.secret_key = secret;
  c.session.manager = StoreKind::kRedis;
  c.policy.rate_limits = std::move(rules);
  return c;
}

std::string NameOf(const SharedBucketNames& names, size_t rule, std::string_view key) {
  std::string out;
  REQUIRE(names.Name(rule, key, &out));
  return out;
}

TEST_CASE("shared bucket names: alike on every instance, distinct per key, limit and secret") {
  const RateLimitRule a = Limit(RateLimitKey::kClientAddress, 10, std::chrono::seconds(1), 5, true);
  const RateLimitRule s = Limit(RateLimitKey::kSession, 10, std::chrono::seconds(1), 5, true);
  const RateLimitRule local = Limit(RateLimitKey::kClientAddress, 10, std::chrono::seconds(1), 5, false);
  const Config config = ConfigWith({a, s, local, a});
  auto one = SharedBucketNames::Create(config);
  auto two = SharedBucketNames::Create(config);  // another instance with the same file
  REQUIRE(one.ok());
  REQUIRE(two.ok());
  const std::string name = NameOf(**one, 0, "4192.0.2.1");
  CHECK(name.size() == SharedBucketNames::kNameHexDigits);
  CHECK(name.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(name == NameOf(**two, 0, "4192.0.2.1"));
  // Nothing of the key shows.
  CHECK(name.find("192") == std::string::npos);
  CHECK(name != NameOf(**one, 0, "4192.0.2.2"));  // another client
  CHECK(name != NameOf(**one, 1, "4192.0.2.1"));  // another limit
  CHECK(name != NameOf(**one, 3, "4192.0.2.1"));  // an identical limit keeps its own bucket
  CHECK((*one)->rule_id(2).empty());              // not shared: no bucket in the store
  CHECK((*one)->rule_id(0) != (*one)->rule_id(3));

  // The same limit at another place in another instance's list: the same bucket.
  auto reordered = SharedBucketNames::Create(ConfigWith({s, local, a}));
  REQUIRE(reordered.ok());
  CHECK(NameOf(**reordered, 2, "4192.0.2.1") == name);
  CHECK(NameOf(**reordered, 0, "session-id") == NameOf(**one, 1, "session-id"));

  // A changed limit, or another secret_key: new buckets.
  for (const RateLimitRule& changed :
       {Limit(RateLimitKey::kClientAddress, 11, std::chrono::seconds(1), 5, true),
        Limit(RateLimitKey::kClientAddress, 10, std::chrono::seconds(2), 5, true),
        Limit(RateLimitKey::kClientAddress, 10, std::chrono::seconds(1), 6, true),
        Limit(RateLimitKey::kClientAddress, 10, std::chrono::seconds(1), 5, true, {"/login"}),
        Limit(RateLimitKey::kSession, 10, std::chrono::seconds(1), 5, true)}) {
    auto other = SharedBucketNames::Create(ConfigWith({changed}));
    REQUIRE(other.ok());
    CHECK(NameOf(**other, 0, "4192.0.2.1") != name);
  }
  auto secret = SharedBucketNames::Create(ConfigWith({a}, kSecret + "-rotated"));
  REQUIRE(secret.ok());
  CHECK(NameOf(**secret, 0, "4192.0.2.1") != name);

  // What the store is told of each bucket.
  const TokenBucketSpec& spec = (*one)->spec(1);
  CHECK(spec.count == 10);
  CHECK(spec.period_ms == 1000);
  CHECK(spec.burst == 5);
}

// ---------------------------------------------------------------- the filter

// Loads and token takes wait until the test answers them.
class ManualBucketStore : public SessionStore, public SharedTokenBuckets {
 public:
  struct PendingLoad {
    StoreKey key;
    LoadCallback cb;
  };
  struct PendingTake {
    std::string name;
    TokenBucketSpec spec;
    TakeCallback cb;
  };
  std::vector<PendingLoad> loads;
  std::vector<PendingTake> takes;

  void Load(const StoreKey& key, LoadCallback cb) override { loads.push_back({key, std::move(cb)}); }
  void Apply(const ApplyRequest&, ApplyCallback cb) override { cb(Status::OK(), ApplyResult{}); }
  void Touch(const StoreKey&, std::chrono::milliseconds, DoneCallback cb) override { cb(Status::OK()); }
  void Ping(DoneCallback cb) override { cb(Status::OK()); }
  void TakeToken(std::string_view name, const TokenBucketSpec& spec, TakeCallback cb) override {
    takes.push_back({std::string(name), spec, std::move(cb)});
  }
};

TokenVerdict Allowed() { return TokenVerdict{}; }
TokenVerdict Refused(int64_t ms) {
  TokenVerdict v;
  v.allowed = false;
  v.retry_after_ms = ms;
  return v;
}

struct Outcome {
  int calls = 0;
  FilterResult result;
  FilterDone Done() {
    return [this](FilterResult r) {
      ++calls;
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

struct Proxy {
  std::shared_ptr<Config> config;
  std::shared_ptr<ManualBucketStore> store = std::make_shared<ManualBucketStore>();
  std::unique_ptr<Metrics> metrics = std::make_unique<Metrics>();
  std::shared_ptr<SessionContext> ctx;
  std::unique_ptr<ExchangeFilterFactory> factory;
  std::unique_ptr<SharedBucketNames> names;  // as another instance would name the buckets

  Proxy(std::vector<RateLimitRule> rules, OnStoreError on_error = OnStoreError::kFailClosed,
        bool with_buckets = true, const std::string& subject_key = "") {
    config = std::make_shared<Config>(ConfigWith(std::move(rules)));
    config->redis.on_error = on_error;
    config->session.subject_key = subject_key;
    config->session.max_session_bytes = 1000;
    ctx = std::make_shared<SessionContext>();
    ctx->config = config;
    Result<std::shared_ptr<const CookieCodec>> codec = CookieCodec::Create(*config);
    REQUIRE(codec.ok());
    ctx->codec = *codec;
    Result<std::shared_ptr<const EdgePolicy>> edge = EdgePolicy::Create(*config);
    REQUIRE(edge.ok());
    ctx->edge = *edge;
    ctx->store = store;
    if (with_buckets) ctx->buckets = store.get();
    ctx->metrics = metrics.get();
    factory = NewSessionFilterFactory(ctx);
    auto n = SharedBucketNames::Create(*config);
    REQUIRE(n.ok());
    names = std::move(*n);
  }

  std::string Cookie(const std::string& id) {
    Result<std::string> token = ctx->codec->EncodeToken(id, static_cast<int64_t>(time(nullptr)) + 3600);
    REQUIRE(token.ok());
    return "session_id=" + *token;
  }
  uint64_t rate_limit_errors() const { return metrics->store_errors[Metrics::kRateLimit].load(); }
};

// One exchange: the request side, from a client at `ip`.
struct Exchange {
  RequestHead request;
  std::string cookie;
  ExchangeFilter* filter = nullptr;
  Outcome done;
  Proxy& proxy;

  Exchange(Proxy& p, std::string_view ip, std::string c = "", std::string_view target = "/page")
      : cookie(std::move(c)), proxy(p) {
    request.method = "GET";
    request.target = target;
    request.headers.Append("Host", "shop.example");
    if (!cookie.empty()) request.headers.Append("Cookie", cookie);
    filter = proxy.factory->Acquire(ExchangeInfo{ip});
    filter->OnRequestHead(request, done.Done());
  }
  ~Exchange() { proxy.factory->Recycle(filter); }
};

const RateLimitRule kSharedAddress = Limit(RateLimitKey::kClientAddress, 5, std::chrono::seconds(10), 5, true);

TEST_CASE("shared client_address limit: the request waits for the store's token, then goes on") {
  Proxy proxy({Limit(RateLimitKey::kClientAddress, 100, std::chrono::seconds(1), 100, false), kSharedAddress});
  Exchange ex(proxy, "192.0.2.1");
  CHECK(ex.done.calls == 0);
  REQUIRE(proxy.store->takes.size() == 1);  // the shared limit only; the other is in memory
  CHECK(proxy.store->takes[0].name == NameOf(*proxy.names, 1, "4192.0.2.1"));
  CHECK(proxy.store->takes[0].spec.count == 5);
  CHECK(proxy.store->takes[0].spec.period_ms == 10000);
  CHECK(proxy.store->takes[0].spec.burst == 5);
  proxy.store->takes[0].cb(Status::OK(), Allowed());
  REQUIRE(ex.done.calls == 1);
  CHECK(ex.done.result.status == 0);  // on to the backend
  CHECK(Values(ex.request.headers, "X-Session-Status") == std::vector<std::string>{"none"});
  CHECK(proxy.rate_limit_errors() == 0);
}

TEST_CASE("shared limit: an empty bucket answers 429 with Retry-After in whole seconds") {
  Proxy proxy({kSharedAddress});
  Exchange ex(proxy, "192.0.2.1");
  REQUIRE(proxy.store->takes.size() == 1);
  proxy.store->takes[0].cb(Status::OK(), Refused(1500));
  REQUIRE(ex.done.calls == 1);
  CHECK(ex.done.result.status == 429);
  CHECK(ex.done.result.body == "Too Many Requests\n");
  CHECK(ex.done.result.headers == "Retry-After: 2\r\n");
  CHECK(Values(ex.request.headers, "X-Session-Status").empty());  // never got as far
}

TEST_CASE("two shared limits are taken at once; an empty bucket decides over a failure") {
  Proxy proxy({kSharedAddress, Limit(RateLimitKey::kClientAddress, 50, std::chrono::minutes(1), 50, true)});
  Exchange ex(proxy, "192.0.2.1");
  REQUIRE(proxy.store->takes.size() == 2);  // both before either answers
  CHECK(proxy.store->takes[0].name != proxy.store->takes[1].name);
  proxy.store->takes[1].cb(Status::OK(), Refused(61000));
  CHECK(ex.done.calls == 0);
  proxy.store->takes[0].cb(Status::Unavailable("redis: down"), TokenVerdict{});
  REQUIRE(ex.done.calls == 1);
  CHECK(ex.done.result.status == 429);
  CHECK(ex.done.result.headers == "Retry-After: 61\r\n");
  CHECK(proxy.rate_limit_errors() == 1);
}

TEST_CASE("shared limit with Redis down: 503 under fail_closed, passes (counted) under fail_open") {
  SUBCASE("fail_closed") {
    Proxy proxy({kSharedAddress}, OnStoreError::kFailClosed);
    Exchange ex(proxy, "192.0.2.1");
    REQUIRE(proxy.store->takes.size() == 1);
    proxy.store->takes[0].cb(Status::Unavailable("redis: not connected"), TokenVerdict{});
    REQUIRE(ex.done.calls == 1);
    CHECK(ex.done.result.status == 503);
    CHECK(ex.done.result.body == "session store unavailable\n");
    CHECK(proxy.rate_limit_errors() == 1);
  }
  SUBCASE("fail_open") {
    Proxy proxy({kSharedAddress}, OnStoreError::kFailOpen);
    Exchange ex(proxy, "192.0.2.1");
    REQUIRE(proxy.store->takes.size() == 1);
    proxy.store->takes[0].cb(Status::Timeout("redis: timed out"), TokenVerdict{});
    REQUIRE(ex.done.calls == 1);
    CHECK(ex.done.result.status == 0);
    CHECK(Values(ex.request.headers, "X-Session-Status") == std::vector<std::string>{"none"});
    CHECK(proxy.rate_limit_errors() == 1);
  }
  SUBCASE("a store without buckets is a failure too") {
    Proxy proxy({kSharedAddress}, OnStoreError::kFailClosed, /*with_buckets=*/false);
    Exchange ex(proxy, "192.0.2.1");
    REQUIRE(ex.done.calls == 1);
    CHECK(ex.done.result.status == 503);
  }
}

TEST_CASE("shared session limit: taken after the load, for an active session only, named by the session") {
  Proxy proxy({Limit(RateLimitKey::kSession, 5, std::chrono::seconds(10), 5, true)});
  const std::string id(CookieCodec::kIdSize, 'q');
  Exchange ex(proxy, "192.0.2.1", proxy.Cookie(id));
  REQUIRE(proxy.store->loads.size() == 1);
  CHECK(proxy.store->takes.empty());  // not before the session is known
  proxy.store->loads[0].cb(Status::OK(), SessionData{{"user", "\"ada\""}});
  CHECK(ex.done.calls == 0);
  REQUIRE(proxy.store->takes.size() == 1);
  CHECK(proxy.store->takes[0].name == NameOf(*proxy.names, 0, id));
  proxy.store->takes[0].cb(Status::OK(), Allowed());
  REQUIRE(ex.done.calls == 1);
  CHECK(ex.done.result.status == 0);
  CHECK(Values(ex.request.headers, "X-Session-Status") == std::vector<std::string>{"active"});
  CHECK(Values(ex.request.headers, "X-Session-Data") == std::vector<std::string>{"{\"user\":\"ada\"}"});

  // A session gone from the store is no session: no token.
  Exchange gone(proxy, "192.0.2.1", proxy.Cookie(std::string(CookieCodec::kIdSize, 'r')));
  REQUIRE(proxy.store->loads.size() == 2);
  proxy.store->loads[1].cb(Status::OK(), std::nullopt);
  REQUIRE(gone.done.calls == 1);
  CHECK(proxy.store->takes.size() == 1);
  // No cookie: none either.
  Exchange anonymous(proxy, "192.0.2.1");
  CHECK(anonymous.done.calls == 1);
  CHECK(proxy.store->takes.size() == 1);
}

TEST_CASE("shared subject limit: named by the subject, one bucket for all of a user's sessions") {
  // docs/HTTP.md, Rate limits (key: subject) and Shared rate limits.
  Proxy proxy({Limit(RateLimitKey::kSubject, 5, std::chrono::seconds(10), 5, true)}, OnStoreError::kFailClosed,
              true, "user");
  const std::vector<std::pair<char, SessionData>> sessions = {
      {'a', {{"user", "\"ada\""}}}, {'b', {{"user", "\"ada\""}, {"n", "1"}}}, {'c', {{"user", "\"grace\""}}}};
  for (size_t i = 0; i < sessions.size(); ++i) {
    Exchange ex(proxy, "192.0.2.1", proxy.Cookie(std::string(CookieCodec::kIdSize, sessions[i].first)));
    REQUIRE(proxy.store->loads.size() == i + 1);
    proxy.store->loads[i].cb(Status::OK(), sessions[i].second);
    REQUIRE(proxy.store->takes.size() == i + 1);
    proxy.store->takes[i].cb(Status::OK(), Allowed());
    REQUIRE(ex.done.calls == 1);
    CHECK(ex.done.result.status == 0);
  }
  CHECK(proxy.store->takes[0].name == NameOf(*proxy.names, 0, "ada"));
  CHECK(proxy.store->takes[1].name == proxy.store->takes[0].name);  // ada's other session: the same bucket
  CHECK(proxy.store->takes[2].name == NameOf(*proxy.names, 0, "grace"));
  CHECK(proxy.store->takes[2].name != proxy.store->takes[0].name);
  // A session without the key takes no token.
  Exchange anonymous(proxy, "192.0.2.1", proxy.Cookie(std::string(CookieCodec::kIdSize, 'd')));
  REQUIRE(proxy.store->loads.size() == 4);
  proxy.store->loads[3].cb(Status::OK(), SessionData{{"theme", "\"dark\""}});
  CHECK(anonymous.done.calls == 1);
  CHECK(proxy.store->takes.size() == 3);
}

TEST_CASE("shared limits of both steps: the address's before the load, the session's after it") {
  Proxy proxy({kSharedAddress, Limit(RateLimitKey::kSession, 5, std::chrono::seconds(10), 5, true)});
  const std::string id(CookieCodec::kIdSize, 'w');
  Exchange ex(proxy, "2001:db8::1", proxy.Cookie(id));
  REQUIRE(proxy.store->takes.size() == 1);
  CHECK(proxy.store->loads.empty());  // the address's token first, before any load
  proxy.store->takes[0].cb(Status::OK(), Allowed());
  REQUIRE(proxy.store->loads.size() == 1);
  proxy.store->loads[0].cb(Status::OK(), SessionData{});
  REQUIRE(proxy.store->takes.size() == 2);
  CHECK(proxy.store->takes[1].name == NameOf(*proxy.names, 1, id));
  proxy.store->takes[1].cb(Status::OK(), Refused(400));
  REQUIRE(ex.done.calls == 1);
  CHECK(ex.done.result.status == 429);
  CHECK(ex.done.result.headers == "Retry-After: 1\r\n");
}

TEST_CASE("a token that arrives after its exchange ended is ignored by the pooled filter's next exchange") {
  Proxy proxy({kSharedAddress});
  ExchangeFilter* first = nullptr;
  {
    Exchange ex(proxy, "192.0.2.1");
    first = ex.filter;
    REQUIRE(proxy.store->takes.size() == 1);
  }  // the client went away: recycled with the take in flight
  Exchange next(proxy, "192.0.2.2");
  CHECK(next.filter == first);
  REQUIRE(proxy.store->takes.size() == 2);
  proxy.store->takes[0].cb(Status::OK(), Refused(9000));  // the old exchange's answer
  CHECK(next.done.calls == 0);
  proxy.store->takes[1].cb(Status::OK(), Allowed());
  REQUIRE(next.done.calls == 1);
  CHECK(next.done.result.status == 0);
}

}  // namespace
}  // namespace sessiond
