// Tests of the session filter (src/session/session_filter.h) driven directly,
// without sockets: the cookie manager's read path allocates nothing in steady
// state, the write path seals what the plan says, refused instructions answer
// 502 "Bad Gateway", and pooled filters ignore a store callback that arrives
// after their exchange ended (it must never act on the next exchange).
//
// Allocations are counted with testing::NewCounter (new_counter.h).
#include "session/session_filter.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "http/message.h"
#include "session/cookie_codec.h"
#include "session/ended_sessions.h"
#include "store/memory_store.h"
#include "new_counter.h"

namespace sessiond {
namespace {

using testing::NewCounter;

const std::string kSecret = "filter test secret, 0123456789abcdef0123456789";

std::shared_ptr<Config> MakeConfig(StoreKind manager) {
  auto config = std::make_shared<Config>();
  config->secret_key = kSecret;
  config->session.manager = manager;
  config->session.max_session_bytes = 1000;
  return config;
}

std::shared_ptr<SessionContext> MakeContext(StoreKind manager, std::shared_ptr<SessionStore> store = nullptr,
                                            SessionCreate create = SessionCreate::kLazy) {
  auto ctx = std::make_shared<SessionContext>();
  std::shared_ptr<Config> config = MakeConfig(manager);
  config->session.create = create;
  ctx->config = config;
  Result<std::shared_ptr<const CookieCodec>> codec = CookieCodec::Create(*ctx->config);
  REQUIRE(codec.ok());
  ctx->codec = *codec;
  ctx->store = std::move(store);
  return ctx;
}

// What a FilterDone reported.
struct Outcome {
  bool called = false;
  int calls = 0;
  FilterResult result;
  FilterDone Done() {
    return [this](FilterResult r) {
      called = true;
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

// The session cookie value of a Set-Cookie header (empty when cleared).
std::string CookieValueOf(const std::string& set_cookie) {
  const size_t eq = set_cookie.find('=');
  const size_t semi = set_cookie.find(';');
  REQUIRE(eq != std::string::npos);
  return set_cookie.substr(eq + 1, semi - eq - 1);
}

// One exchange's heads, reused like a connection reuses them.
struct Heads {
  RequestHead request;
  ResponseHead response;
  std::string cookie_header;
  void NewRequest(std::string_view target, std::string_view cookie) {
    request.Clear();
    response.Clear();
    cookie_header.assign(cookie.data(), cookie.size());  // reusing its capacity
    request.target = target;
    request.headers.Append("Host", "example.test");
    request.headers.Append("X-Request-Id", "rid-1");
    if (!cookie_header.empty()) request.headers.Append("Cookie", cookie_header);
    request.headers.Append("X-Session-Data", "{\"spoofed\":true}");
    response.headers.Append("Content-Type", "text/plain");
  }
};

TEST_CASE("the operator new counter counts only inside its scope") {
  int* outside = new int(1);
  long counted = 0;
  {
    NewCounter counter;
    int* inside = new int(2);
    std::string grown(100, 'x');
    counted = counter.count();
    delete inside;
  }
  delete outside;
  CHECK(counted == 2);
}

TEST_CASE("cookie manager read path: a valid cookie, no instructions, no allocation in steady state") {
  // docs/PERFORMANCE.md, Where the instructions go
  auto ctx = MakeContext(StoreKind::kCookie);
  const SessionData data = {{"user", "\"ada\""}, {"cart", "[1,2,3]"}, {"n", "42"}};
  const std::string id(CookieCodec::kIdSize, 'i');
  const int64_t expires_at = static_cast<int64_t>(time(nullptr)) + 3600;
  Result<std::string> sealed = ctx->codec->Seal(id, expires_at, data);
  REQUIRE(sealed.ok());
  Result<std::string> public_id = ctx->codec->PublicId(id);
  REQUIRE(public_id.ok());
  auto factory = NewSessionFilterFactory(ctx);
  Heads heads;
  const std::string cookie = "theme=dark; session_id=" + *sealed + "; lang=en";

  auto exchange = [&](Outcome* request_done, Outcome* response_done) {
    heads.NewRequest("/page", cookie);
    ExchangeFilter* filter = factory->Acquire(ExchangeInfo{"127.0.0.1"});
    filter->OnRequestHead(heads.request, request_done->Done());
    filter->OnResponseHead(heads.request, heads.response, response_done->Done());
    factory->Recycle(filter);
  };
  long cold = 0;
  {
    // The first exchange grows the pooled filter's buffers and the heads'
    // arenas (so the counter does see this path's allocations).
    NewCounter counter;
    Outcome a, b;
    exchange(&a, &b);
    cold = counter.count();
  }
  CHECK(cold > 0);
  for (int warm = 0; warm < 3; ++warm) {
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

  // ... and it did the whole job.
  REQUIRE(request_done.called);
  CHECK(request_done.result.status == 0);
  CHECK(Values(heads.request.headers, "X-Session-Status") == std::vector<std::string>{"active"});
  CHECK(Values(heads.request.headers, "X-Session-Data") == std::vector<std::string>{SerializeSession(data)});
  CHECK(Values(heads.request.headers, "X-Session-Id") == std::vector<std::string>{*public_id});
  CHECK(Values(heads.request.headers, "X-Session-Expires") == std::vector<std::string>{std::to_string(expires_at)});
  CHECK(Values(heads.request.headers, "Cookie") == std::vector<std::string>{"theme=dark; lang=en"});
  REQUIRE(response_done.called);
  CHECK(response_done.result.status == 0);
  CHECK(Values(heads.response.headers, "Set-Cookie").empty());
}

TEST_CASE("cookie manager write path: a Set re-seals the merged session; the next read sees it") {
  // docs/COOKIES.md, When the cookie is set, re-issued or cleared
  auto ctx = MakeContext(StoreKind::kCookie);
  auto factory = NewSessionFilterFactory(ctx);
  Heads heads;
  std::string cookie;
  const auto write = [&](std::string_view name, std::string_view value) {
    heads.NewRequest("/set", cookie.empty() ? "" : "session_id=" + cookie);
    ExchangeFilter* filter = factory->Acquire(ExchangeInfo{"127.0.0.1"});
    Outcome in, out;
    filter->OnRequestHead(heads.request, in.Done());
    heads.response.headers.Append(name, value);
    filter->OnResponseHead(heads.request, heads.response, out.Done());
    factory->Recycle(filter);
    REQUIRE(out.called);
    return out.result;
  };
  REQUIRE(write("X-Session-Set", "{\"b\":2,\"a\":1}").status == 0);
  std::vector<std::string> set = Values(heads.response.headers, "Set-Cookie");
  REQUIRE(set.size() == 1);
  cookie = CookieValueOf(set[0]);
  DecodedCookie first = ctx->codec->Open(cookie, time(nullptr));
  REQUIRE(first.verdict == CookieVerdict::kValid);
  CHECK(first.json == "{\"a\":1,\"b\":2}");

  REQUIRE(write("X-Session-Set", "{\"c\":[3],\"a\":null}").status == 0);
  set = Values(heads.response.headers, "Set-Cookie");
  REQUIRE(set.size() == 1);
  DecodedCookie second = ctx->codec->Open(CookieValueOf(set[0]), time(nullptr));
  REQUIRE(second.verdict == CookieVerdict::kValid);
  CHECK(second.id == first.id);  // a Set keeps the id
  CHECK(second.public_id == first.public_id);
  CHECK(second.expires_at == first.expires_at);  // and the expiry
  CHECK(second.json == "{\"b\":2,\"c\":[3]}");
  cookie = CookieValueOf(set[0]);

  REQUIRE(write("X-Session-Regenerate", "true").status == 0);
  set = Values(heads.response.headers, "Set-Cookie");
  REQUIRE(set.size() == 1);
  DecodedCookie third = ctx->codec->Open(CookieValueOf(set[0]), time(nullptr));
  REQUIRE(third.verdict == CookieVerdict::kValid);
  CHECK(third.id != second.id);
  CHECK(third.public_id != second.public_id);
  CHECK(third.json == second.json);
  Result<std::string> recomputed = ctx->codec->PublicId(third.id);
  REQUIRE(recomputed.ok());
  CHECK(third.public_id == *recomputed);
  cookie = CookieValueOf(set[0]);

  REQUIRE(write("X-Session-Destroy", "true").status == 0);
  set = Values(heads.response.headers, "Set-Cookie");
  REQUIRE(set.size() == 1);
  CHECK(set[0] == ctx->codec->ClearCookie());
}

TEST_CASE("refused instructions answer 502 with only 'Bad Gateway' and change nothing") {
  // docs/HEADER-PROTOCOL.md, Malformed instructions
  for (StoreKind manager : {StoreKind::kCookie, StoreKind::kMemory}) {
    std::shared_ptr<SessionStore> store;
    if (manager == StoreKind::kMemory) store = std::make_shared<MemoryStore>(std::make_shared<MemoryTable>(100));
    auto factory = NewSessionFilterFactory(MakeContext(manager, store));
    for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
             {"X-Session-Set", "{\"a\":"},
             {"X-Session-Set", "[\"secret-value\"]"},
             {"X-Session-Destroy", "maybe"},
             {"X-Session-Set", "{\"big\":\"" + std::string(2000, 'x') + "\"}"}}) {
      CAPTURE(value.substr(0, 20));
      Heads heads;
      heads.NewRequest("/set", "");
      ExchangeFilter* filter = factory->Acquire(ExchangeInfo{"127.0.0.1"});
      Outcome in, out;
      filter->OnRequestHead(heads.request, in.Done());
      heads.response.headers.Append(name, value);
      filter->OnResponseHead(heads.request, heads.response, out.Done());
      factory->Recycle(filter);
      REQUIRE(out.called);
      CHECK(out.calls == 1);
      CHECK(out.result.status == 502);
      CHECK(out.result.body == "Bad Gateway\n");
      CHECK(Values(heads.response.headers, "Set-Cookie").empty());
      CHECK(Values(heads.response.headers, name).empty());  // instructions never reach the client
    }
  }
}

// A store whose calls complete only when the test says so.
class ManualStore : public SessionStore {
 public:
  struct PendingLoad {
    StoreKey key;
    LoadCallback cb;
  };
  struct PendingApply {
    ApplyRequest request;
    ApplyCallback cb;
  };
  std::vector<PendingLoad> loads;
  std::vector<PendingApply> applies;

  void Load(const StoreKey& key, LoadCallback cb) override { loads.push_back({key, std::move(cb)}); }
  void Apply(const ApplyRequest& request, ApplyCallback cb) override { applies.push_back({request, std::move(cb)}); }
  void Touch(const StoreKey&, std::chrono::milliseconds, DoneCallback cb) override { cb(Status::OK()); }
  void Ping(DoneCallback cb) override { cb(Status::OK()); }
};

std::string TokenCookie(const CookieCodec& codec, const std::string& id) {
  Result<std::string> token = codec.EncodeToken(id, static_cast<int64_t>(time(nullptr)) + 3600);
  REQUIRE(token.ok());
  return "session_id=" + *token;
}

TEST_CASE("a pooled filter ignores a late store callback of its previous exchange") {
  // docs/HEADER-PROTOCOL.md, Store failures (the exchange may end while the store is slow)
  auto store = std::make_shared<ManualStore>();
  auto ctx = MakeContext(StoreKind::kMemory, store);
  auto factory = NewSessionFilterFactory(ctx);
  const std::string id_a(CookieCodec::kIdSize, 'a'), id_b(CookieCodec::kIdSize, 'b');

  // Exchange A loads its session; the client goes away before the store answers.
  Heads a;
  a.NewRequest("/a", TokenCookie(*ctx->codec, id_a));
  ExchangeFilter* filter = factory->Acquire(ExchangeInfo{"127.0.0.1"});
  Outcome a_done;
  filter->OnRequestHead(a.request, a_done.Done());
  REQUIRE(store->loads.size() == 1);
  CHECK_FALSE(a_done.called);
  factory->Recycle(filter);

  // Exchange B gets the same (pooled) object and starts its own load.
  ExchangeFilter* again = factory->Acquire(ExchangeInfo{"127.0.0.1"});
  CHECK(again == filter);
  Heads b;
  b.NewRequest("/b", TokenCookie(*ctx->codec, id_b));
  Outcome b_done;
  again->OnRequestHead(b.request, b_done.Done());
  REQUIRE(store->loads.size() == 2);

  // A's answer arrives late: it must not complete B, nor touch either request.
  const size_t b_headers = b.request.headers.size();
  const size_t a_headers = a.request.headers.size();
  store->loads[0].cb(Status::OK(), SessionData{{"owner", "\"a\""}});
  CHECK_FALSE(a_done.called);
  CHECK_FALSE(b_done.called);
  CHECK(b.request.headers.size() == b_headers);
  CHECK(a.request.headers.size() == a_headers);

  // B's own answer completes B with B's data.
  store->loads[1].cb(Status::OK(), SessionData{{"owner", "\"b\""}});
  REQUIRE(b_done.called);
  CHECK(b_done.calls == 1);
  CHECK(Values(b.request.headers, "X-Session-Status") == std::vector<std::string>{"active"});
  CHECK(Values(b.request.headers, "X-Session-Data") == std::vector<std::string>{"{\"owner\":\"b\"}"});

  // B's response writes; its exchange ends before the store acknowledges.
  b.response.headers.Append("X-Session-Set", "{\"k\":1}");
  Outcome b_response;
  again->OnResponseHead(b.request, b.response, b_response.Done());
  REQUIRE(store->applies.size() == 1);
  CHECK(store->applies[0].request.must_exist);
  factory->Recycle(again);

  // Exchange C reuses the object again; B's late Apply result changes nothing of C's.
  ExchangeFilter* third = factory->Acquire(ExchangeInfo{"127.0.0.1"});
  CHECK(third == filter);
  Heads c;
  c.NewRequest("/c", "");
  Outcome c_done;
  third->OnRequestHead(c.request, c_done.Done());
  REQUIRE(c_done.called);  // no cookie: no store call
  Outcome c_response;
  ApplyResult applied;
  applied.exists = true;
  store->applies[0].cb(Status::OK(), applied);
  CHECK_FALSE(b_response.called);
  CHECK(Values(c.response.headers, "Set-Cookie").empty());
  third->OnResponseHead(c.request, c.response, c_response.Done());
  REQUIRE(c_response.called);
  CHECK(c_response.result.status == 0);
  CHECK(Values(c.response.headers, "Set-Cookie").empty());
  factory->Recycle(third);
}

TEST_CASE("a factory destroyed with a store call in flight frees its filters; the store drops the callback") {
  auto store = std::make_shared<ManualStore>();
  auto ctx = MakeContext(StoreKind::kMemory, store);
  auto factory = NewSessionFilterFactory(ctx);
  Heads heads;
  heads.NewRequest("/a", TokenCookie(*ctx->codec, std::string(CookieCodec::kIdSize, 'z')));
  ExchangeFilter* filter = factory->Acquire(ExchangeInfo{"127.0.0.1"});
  Outcome done;
  filter->OnRequestHead(heads.request, done.Done());
  factory->Recycle(filter);
  factory.reset();  // under ASan: no leak of the busy filter
  REQUIRE(store->loads.size() == 1);
  // A real store drops its callbacks when destroyed; this one is kept alive
  // by the test, so drop the callback as a store would (never running it).
  store->loads.clear();
  CHECK_FALSE(done.called);
}

TEST_CASE("store manager: a write of a loaded session is one Apply, and Regenerate moves it to a new key") {
  // docs/HEADER-PROTOCOL.md, Atomicity; docs/COOKIES.md, Store keys
  auto table = std::make_shared<MemoryTable>(100);
  auto store = std::make_shared<MemoryStore>(table);
  auto ctx = MakeContext(StoreKind::kMemory, store);
  auto factory = NewSessionFilterFactory(ctx);
  Heads heads;
  std::string cookie;
  const auto exchange = [&](std::vector<std::pair<std::string, std::string>> instructions) {
    heads.NewRequest("/x", cookie);
    ExchangeFilter* filter = factory->Acquire(ExchangeInfo{"127.0.0.1"});
    Outcome in, out;
    filter->OnRequestHead(heads.request, in.Done());
    REQUIRE(in.called);
    for (const auto& [name, value] : instructions) heads.response.headers.Append(name, value);
    filter->OnResponseHead(heads.request, heads.response, out.Done());
    REQUIRE(out.called);
    CHECK(out.result.status == 0);
    factory->Recycle(filter);
    std::vector<std::string> set = Values(heads.response.headers, "Set-Cookie");
    if (!set.empty()) cookie = "session_id=" + CookieValueOf(set[0]);
    return set;
  };
  REQUIRE(exchange({{"X-Session-Set", "{\"user\":\"ada\"}"}}).size() == 1);
  CHECK(table->size() == 1);
  CHECK(exchange({}).empty());  // a read: no cookie
  CHECK(Values(heads.request.headers, "X-Session-Data") == std::vector<std::string>{"{\"user\":\"ada\"}"});
  CHECK(exchange({{"X-Session-Set", "{\"n\":1}"}}).empty());  // the token is unchanged
  const std::string before = cookie;
  REQUIRE(exchange({{"X-Session-Regenerate", "true"}}).size() == 1);
  CHECK(cookie != before);
  CHECK(table->size() == 1);  // moved, not copied
  CHECK(exchange({}).empty());
  CHECK(Values(heads.request.headers, "X-Session-Data") == std::vector<std::string>{"{\"n\":1,\"user\":\"ada\"}"});
  cookie = before;  // the old id stopped working
  exchange({});
  CHECK(Values(heads.request.headers, "X-Session-Status") == std::vector<std::string>{"none"});
}

TEST_CASE("a new session regenerated in its first response moves from its own key to the new id's key") {
  // docs/HEADER-PROTOCOL.md, Order of application; docs/COOKIES.md, Store keys
  auto store = std::make_shared<ManualStore>();
  auto ctx = MakeContext(StoreKind::kMemory, store, SessionCreate::kAlways);
  auto factory = NewSessionFilterFactory(ctx);
  Heads heads;
  heads.NewRequest("/login", "");
  ExchangeFilter* filter = factory->Acquire(ExchangeInfo{"127.0.0.1"});
  Outcome in, out;
  filter->OnRequestHead(heads.request, in.Done());
  REQUIRE(in.called);
  CHECK(Values(heads.request.headers, "X-Session-Status") == std::vector<std::string>{"new"});
  heads.response.headers.Append("X-Session-Regenerate", "true");
  filter->OnResponseHead(heads.request, heads.response, out.Done());
  REQUIRE(store->applies.size() == 1);
  const ApplyRequest& request = store->applies[0].request;
  REQUIRE(request.new_key.has_value());
  CHECK(*request.new_key != request.key);
  CHECK_FALSE(request.must_exist);  // never stored: nothing to lose to a concurrent request
  ApplyResult applied;
  applied.exists = true;
  store->applies[0].cb(Status::OK(), applied);
  REQUIRE(out.called);
  std::vector<std::string> set = Values(heads.response.headers, "Set-Cookie");
  REQUIRE(set.size() == 1);
  DecodedCookie token = ctx->codec->DecodeToken(CookieValueOf(set[0]), time(nullptr));
  REQUIRE(token.verdict == CookieVerdict::kValid);
  Result<std::string> key = ctx->codec->StoreKey(token.id, 0);
  REQUIRE(key.ok());
  CHECK(*key == *request.new_key);  // the cookie names the session where it now is
  factory->Recycle(filter);
}


// ---- chunks, timeouts, revocation (docs/COOKIES.md, Chunked cookies; docs/HEADER-PROTOCOL.md, Subjects) ----

// One exchange through `factory`: the request with `cookie`, the response
// with `instructions`. Returns the response filter's result.
FilterResult RunExchange(ExchangeFilterFactory& factory, Heads& heads, const std::string& cookie,
                         const std::vector<std::pair<std::string, std::string>>& instructions,
                         const std::string& ua = "") {
  heads.NewRequest("/x", cookie);
  if (!ua.empty()) heads.request.headers.Append("User-Agent", ua);
  ExchangeFilter* filter = factory.Acquire(ExchangeInfo{"198.51.100.9"});
  Outcome in, out;
  filter->OnRequestHead(heads.request, in.Done());
  REQUIRE(in.called);
  for (const auto& [name, value] : instructions) heads.response.headers.Append(name, value);
  filter->OnResponseHead(heads.request, heads.response, out.Done());
  factory.Recycle(filter);
  REQUIRE(out.called);
  return out.result;
}

// The Cookie header a browser sends back after these Set-Cookie values.
std::string CookieHeaderFrom(const std::vector<std::string>& set_cookies) {
  std::string header;
  for (const std::string& s : set_cookies) {
    const std::string pair = s.substr(0, s.find(';'));
    if (pair.back() == '=') continue;  // a cleared cookie
    if (!header.empty()) header += "; ";
    header += pair;
  }
  return header;
}

TEST_CASE("cookie manager: a large session goes out in chunks, comes back whole, and shrinking clears the rest") {
  auto ctx = MakeContext(StoreKind::kCookie);
  std::const_pointer_cast<Config>(ctx->config)->session.max_session_bytes = 65536;
  auto factory = NewSessionFilterFactory(ctx);
  Heads heads;
  const std::string blob = std::string(9000, 'z');
  REQUIRE(RunExchange(*factory, heads, "", {{"X-Session-Set", "{\"blob\":\"" + blob + "\"}"}}).status == 0);
  std::vector<std::string> set = Values(heads.response.headers, "Set-Cookie");
  REQUIRE(set.size() >= 3);
  CHECK(set[0].rfind("session_id=3c", 0) == 0);
  for (size_t k = 1; k < set.size(); ++k) CHECK(set[k].rfind("session_id." + std::to_string(k) + "=", 0) == 0);
  for (const std::string& line : set) CHECK(std::string("Set-Cookie: ").size() + line.size() <= 4096);
  const std::string cookie = "theme=dark; " + CookieHeaderFrom(set);

  REQUIRE(RunExchange(*factory, heads, cookie, {}).status == 0);
  CHECK(Values(heads.request.headers, "X-Session-Status") == std::vector<std::string>{"active"});
  CHECK(Values(heads.request.headers, "X-Session-Data") ==
        std::vector<std::string>{"{\"blob\":\"" + blob + "\"}"});
  CHECK(Values(heads.request.headers, "Cookie") == std::vector<std::string>{"theme=dark"});
  CHECK(Values(heads.response.headers, "Set-Cookie").empty());  // a read sends nothing

  REQUIRE(RunExchange(*factory, heads, cookie, {{"X-Session-Set", "{\"blob\":\"small\"}"}}).status == 0);
  std::vector<std::string> shrunk = Values(heads.response.headers, "Set-Cookie");
  REQUIRE(shrunk.size() == set.size());  // the new cookie and one clear per stale chunk
  CHECK(shrunk[0].rfind("session_id=3.", 0) == 0);
  for (size_t k = 1; k < shrunk.size(); ++k) {
    CHECK(shrunk[k].rfind("session_id." + std::to_string(k) + "=;", 0) == 0);
    CHECK(shrunk[k].find("Max-Age=0") != std::string::npos);
  }

  SUBCASE("a chunk of the cookie changed: invalid, and every chunk is cleared") {
    std::string tampered = cookie;
    const size_t at = tampered.find("session_id.1=") + 20;
    tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
    REQUIRE(RunExchange(*factory, heads, tampered, {}).status == 0);
    CHECK(Values(heads.request.headers, "X-Session-Status") == std::vector<std::string>{"invalid"});
    std::vector<std::string> cleared = Values(heads.response.headers, "Set-Cookie");
    CHECK(cleared.size() == set.size());
    for (const std::string& c : cleared) CHECK(c.find("Max-Age=0") != std::string::npos);
  }
}

TEST_CASE("cookie manager: past the idle timeout the session is expired and its cookie cleared") {
  auto ctx = MakeContext(StoreKind::kCookie);
  std::const_pointer_cast<Config>(ctx->config)->session.idle_timeout = std::chrono::seconds(600);
  auto factory = NewSessionFilterFactory(ctx);
  const int64_t now = static_cast<int64_t>(time(nullptr));
  const std::string id(CookieCodec::kIdSize, 'i');
  Result<std::string> stale = ctx->codec->Seal(id, SealTimes{now + 3600, now - 700, now - 601}, {{"u", "1"}});
  Result<std::string> fresh = ctx->codec->Seal(id, SealTimes{now + 3600, now - 700, now - 10}, {{"u", "1"}});
  REQUIRE(stale.ok());
  REQUIRE(fresh.ok());
  Heads heads;
  REQUIRE(RunExchange(*factory, heads, "session_id=" + *stale, {}).status == 0);
  CHECK(Values(heads.request.headers, "X-Session-Status") == std::vector<std::string>{"expired"});
  CHECK(Values(heads.request.headers, "X-Session-Data") == std::vector<std::string>{"{}"});
  CHECK(Values(heads.response.headers, "Set-Cookie") == std::vector<std::string>{ctx->codec->ClearCookie()});
  REQUIRE(RunExchange(*factory, heads, "session_id=" + *fresh, {}).status == 0);
  CHECK(Values(heads.request.headers, "X-Session-Status") == std::vector<std::string>{"active"});
  // The refresh is due (no threshold): the cookie is re-sealed with the idle window.
  std::vector<std::string> set = Values(heads.response.headers, "Set-Cookie");
  REQUIRE(set.size() == 1);
  DecodedCookie refreshed = ctx->codec->Open(CookieValueOf(set[0]), now);
  REQUIRE(refreshed.verdict == CookieVerdict::kValid);
  CHECK(refreshed.created_at == now - 700);
  CHECK(refreshed.refreshed_at >= now);
  CHECK(refreshed.expires_at <= refreshed.refreshed_at + 600);
}

TEST_CASE("X-Session-Revoke without session.subject_key is refused with 502") {
  // docs/HEADER-PROTOCOL.md, Subjects
  auto store = std::make_shared<MemoryStore>(std::make_shared<MemoryTable>(100));
  auto factory = NewSessionFilterFactory(MakeContext(StoreKind::kMemory, store));
  Heads heads;
  FilterResult r = RunExchange(*factory, heads, "", {{"X-Session-Set", "{\"user_id\":1}"}, {"X-Session-Revoke", "all"}});
  CHECK(r.status == 502);
  CHECK(Values(heads.response.headers, "Set-Cookie").empty());
}

TEST_CASE("store manager: Revoke others ends the subject's other sessions and lists them in EndedSessions") {
  auto table = std::make_shared<MemoryTable>(100);
  auto store = std::make_shared<MemoryStore>(table);
  auto ctx = MakeContext(StoreKind::kMemory, store);
  std::const_pointer_cast<Config>(ctx->config)->session.subject_key = "user_id";
  ctx->ended = std::make_shared<EndedSessions>();
  auto factory = NewSessionFilterFactory(ctx);
  Heads heads;
  std::vector<std::string> cookies;
  std::vector<std::string> public_ids;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(RunExchange(*factory, heads, "", {{"X-Session-Set", "{\"user_id\":7}"}}, "agent/" + std::to_string(i))
                .status == 0);
    std::vector<std::string> set = Values(heads.response.headers, "Set-Cookie");
    REQUIRE(set.size() == 1);
    cookies.push_back("session_id=" + CookieValueOf(set[0]));
  }
  std::vector<SessionListing> listed = table->ListSubject("7");
  REQUIRE(listed.size() == 3);
  CHECK(listed[0].meta.client == "198.51.100.9");
  CHECK(listed[0].meta.public_id.size() == 22);
  CHECK(listed[0].meta.user_agent.rfind("agent/", 0) == 0);
  std::vector<SessionBinding> bindings;
  for (const SessionListing& l : listed) {
    SessionBinding b;
    b.id = l.meta.public_id;  // what a tunnel of that session is bound to
    bindings.push_back(b);
  }

  REQUIRE(RunExchange(*factory, heads, cookies[2], {{"X-Session-Revoke", "others"}}).status == 0);
  CHECK(ctx->ended->size() == 2);
  std::vector<SessionListing> left = table->ListSubject("7");
  REQUIRE(left.size() == 1);  // the session that asked
  std::vector<bool> ended(3, false);
  ctx->ended->Mark(bindings, &ended);
  for (size_t i = 0; i < bindings.size(); ++i) CHECK(ended[i] == (bindings[i].id != left[0].meta.public_id));
  REQUIRE(RunExchange(*factory, heads, cookies[0], {}).status == 0);
  CHECK(Values(heads.request.headers, "X-Session-Status") == std::vector<std::string>{"none"});
  CHECK(Values(heads.response.headers, "Set-Cookie") == std::vector<std::string>{ctx->codec->ClearCookie()});

  // Revoke all ends this session too.
  REQUIRE(RunExchange(*factory, heads, cookies[2], {{"X-Session-Revoke", "all"}}).status == 0);
  ended.assign(3, false);
  ctx->ended->Mark(bindings, &ended);
  CHECK(ended == std::vector<bool>{true, true, true});
  CHECK(table->ListSubject("7").empty());
}

TEST_CASE("every store outcome of a request reaches store_health before the request is answered") {
  // docs/OPERATIONS.md, Readiness: a 503 for a failed store is never followed by a /readyz 200.
  auto store = std::make_shared<ManualStore>();
  auto ctx = MakeContext(StoreKind::kMemory, store);
  std::vector<bool> reports;
  ctx->store_health = [&](bool ok) { reports.push_back(ok); };
  auto factory = NewSessionFilterFactory(ctx);
  const std::string cookie = TokenCookie(*ctx->codec, std::string(CookieCodec::kIdSize, 'h'));

  // A failed load: reported false, then the 503.
  Heads heads;
  heads.NewRequest("/a", cookie);
  ExchangeFilter* filter = factory->Acquire(ExchangeInfo{"127.0.0.1"});
  size_t reports_when_answered = 0;
  int status = -1;
  filter->OnRequestHead(heads.request, [&](FilterResult r) {
    reports_when_answered = reports.size();
    status = r.status;
  });
  REQUIRE(store->loads.size() == 1);
  CHECK(reports.empty());
  store->loads[0].cb(Status::Unavailable("redis: connection refused"), std::nullopt);
  CHECK(status == 503);
  CHECK(reports == std::vector<bool>{false});
  CHECK(reports_when_answered == 1);
  factory->Recycle(filter);

  // A load that succeeds reports true; a write over the size limit is not
  // the store failing, so it reports true as well.
  heads.NewRequest("/b", cookie);
  filter = factory->Acquire(ExchangeInfo{"127.0.0.1"});
  Outcome in;
  filter->OnRequestHead(heads.request, in.Done());
  REQUIRE(store->loads.size() == 2);
  store->loads[1].cb(Status::OK(), SessionData{{"n", "1"}});
  REQUIRE(in.called);
  CHECK(reports == std::vector<bool>{false, true});
  heads.response.headers.Append("X-Session-Set", "{\"k\":2}");
  Outcome out;
  filter->OnResponseHead(heads.request, heads.response, out.Done());
  REQUIRE(store->applies.size() == 1);
  store->applies[0].cb(Status::TooLarge("session would be too large"), ApplyResult());
  REQUIRE(out.called);
  CHECK(out.result.status == 502);
  CHECK(reports == std::vector<bool>{false, true, true});
  factory->Recycle(filter);
}

// ---- tunnels: Binding and CheckBindings (docs/HTTP.md, Upgrades and WebSockets) ----

// One exchange through `factory`: the response carries `instructions`;
// returns the binding the response leaves and updates *cookie.
SessionBinding BindingAfter(ExchangeFilterFactory* factory, Heads* heads, std::string* cookie,
                            std::vector<std::pair<std::string, std::string>> instructions) {
  heads->NewRequest("/ws", *cookie);
  ExchangeFilter* filter = factory->Acquire(ExchangeInfo{"127.0.0.1"});
  Outcome in, out;
  filter->OnRequestHead(heads->request, in.Done());
  REQUIRE(in.called);
  for (const auto& [name, value] : instructions) heads->response.headers.Append(name, value);
  filter->OnResponseHead(heads->request, heads->response, out.Done());
  REQUIRE(out.called);
  REQUIRE(out.result.status == 0);
  SessionBinding b = filter->Binding();
  factory->Recycle(filter);
  std::vector<std::string> set = Values(heads->response.headers, "Set-Cookie");
  if (!set.empty()) *cookie = "session_id=" + CookieValueOf(set[0]);
  return b;
}

std::vector<bool> Check(ExchangeFilterFactory* factory, const std::vector<SessionBinding>& bindings) {
  std::vector<bool> result;
  bool called = false;
  factory->CheckBindings(bindings, [&](std::vector<bool> ended) {
    called = true;
    result = std::move(ended);
  });
  REQUIRE(called);  // the memory store answers at once
  return result;
}

TEST_CASE("cookie manager: a Destroy or Regenerate here ends the sessions bound to it") {
  auto ctx = MakeContext(StoreKind::kCookie);
  ctx->ended = std::make_shared<EndedSessions>();
  auto factory = NewSessionFilterFactory(ctx);
  Heads heads;
  std::string cookie;
  CHECK_FALSE(BindingAfter(factory.get(), &heads, &cookie, {}).bound());  // no session, nothing to bind
  const SessionBinding ada = BindingAfter(factory.get(), &heads, &cookie, {{"X-Session-Set", "{\"user\":\"ada\"}"}});
  REQUIRE(ada.bound());
  CHECK(ada.store_key.empty());
  CHECK(ada.expires_at > static_cast<int64_t>(time(nullptr)));
  const std::string ada_cookie = cookie;
  std::string grace_cookie;
  const SessionBinding grace =
      BindingAfter(factory.get(), &heads, &grace_cookie, {{"X-Session-Set", "{\"user\":\"grace\"}"}});
  REQUIRE(grace.bound());
  CHECK(grace.id != ada.id);
  // A read binds to the same session.
  CHECK(BindingAfter(factory.get(), &heads, &cookie, {}).id == ada.id);
  CHECK(Check(factory.get(), {ada, grace}) == std::vector<bool>{false, false});

  const SessionBinding regenerated = BindingAfter(factory.get(), &heads, &cookie, {{"X-Session-Regenerate", "true"}});
  REQUIRE(regenerated.bound());
  CHECK(regenerated.id != ada.id);
  CHECK(Check(factory.get(), {ada, grace, regenerated}) == std::vector<bool>{true, false, false});
  CHECK_FALSE(BindingAfter(factory.get(), &heads, &cookie, {{"X-Session-Destroy", "true"}}).bound());
  CHECK(Check(factory.get(), {regenerated, grace}) == std::vector<bool>{true, false});
  CHECK(ctx->ended->size() == 2);

  SessionBinding expired = grace;
  expired.expires_at = static_cast<int64_t>(time(nullptr)) - 1;
  CHECK(Check(factory.get(), {expired}) == std::vector<bool>{true});
}

TEST_CASE("store manager: a session gone from the store has ended, whoever removed it") {
  auto table = std::make_shared<MemoryTable>(100);
  auto store = std::make_shared<MemoryStore>(table);
  auto ctx = MakeContext(StoreKind::kMemory, store);  // no EndedSessions: only the store can tell
  auto factory = NewSessionFilterFactory(ctx);
  Heads heads;
  std::string cookie;
  const SessionBinding first = BindingAfter(factory.get(), &heads, &cookie, {{"X-Session-Set", "{\"n\":1}"}});
  REQUIRE(first.bound());
  CHECK_FALSE(first.store_key.empty());
  CHECK(BindingAfter(factory.get(), &heads, &cookie, {{"X-Session-Set", "{\"n\":2}"}}).store_key == first.store_key);
  // Two tunnels of one session: one store call answers both.
  CHECK(Check(factory.get(), {first, first}) == std::vector<bool>{false, false});
  const SessionBinding second = BindingAfter(factory.get(), &heads, &cookie, {{"X-Session-Regenerate", "true"}});
  CHECK(second.store_key != first.store_key);
  CHECK(Check(factory.get(), {first, second}) == std::vector<bool>{true, false});
  // Removed behind sessiond's back (another instance, a revocation).
  CHECK(table->size() == 1);
  ApplyRequest destroy;
  destroy.key = second.store_key;
  destroy.clear = true;
  destroy.ttl = std::chrono::seconds(60);
  store->Apply(destroy, [](Status s, ApplyResult r) { CHECK(s.ok()); CHECK_FALSE(r.exists); });
  CHECK(Check(factory.get(), {second}) == std::vector<bool>{true});
}

TEST_CASE("store manager with a sliding lifetime: the store's expiry decides, not the clock") {
  auto table = std::make_shared<MemoryTable>(100);
  auto store = std::make_shared<MemoryStore>(table);
  auto ctx = MakeContext(StoreKind::kMemory, store);
  std::shared_ptr<Config> config = MakeConfig(StoreKind::kMemory);
  config->session.refresh_each_request = true;
  ctx->config = config;
  auto factory = NewSessionFilterFactory(ctx);
  Heads heads;
  std::string cookie;
  const SessionBinding b = BindingAfter(factory.get(), &heads, &cookie, {{"X-Session-Set", "{\"n\":1}"}});
  CHECK(b.expires_at == 0);
}

}  // namespace
}  // namespace sessiond
