// RedisStore behaviour beyond the shared contract: failure, recovery,
// timeouts, AUTH/SELECT, unix sockets, the data layout and lifetime rules.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store/redis_store.h"
#include "store_test_util.h"

namespace sessiond {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

bool IsUnavailableOrTimeout(const Status& st) {
  return st.code() == Status::Code::kUnavailable || st.code() == Status::Code::kTimeout;
}

ApplyRequest SetOne(const StoreKey& key, const std::string& name, const std::string& value) {
  ApplyRequest request = MakeRequest(key);
  request.sets[name] = value;
  return request;
}

// Runs a command on a blocking connection and returns the reply (owned).
std::unique_ptr<redisReply, void (*)(void*)> Command(redisContext* c, std::vector<std::string> argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const std::string& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  void* reply = redisCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  return {static_cast<redisReply*>(reply), &freeReplyObject};
}

TEST_CASE("redis store: with redis down calls fail fast, and service resumes when it returns") {
  auto server = RedisServer::Start();
  REQUIRE(server);
  TestLoop loop;
  RedisStore store(server->Config(500ms), loop.base());
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(loop, store, SetOne(key, "a", "1")).status.ok());

  server->Stop();
  auto start = Clock::now();
  LoadOutcome failed = LoadSync(loop, store, key);
  CHECK(IsUnavailableOrTimeout(failed.status));
  CHECK(Since(start) < 300ms);
  start = Clock::now();
  CHECK(IsUnavailableOrTimeout(ApplySync(loop, store, SetOne(key, "b", "2")).status));
  CHECK(Since(start) < 300ms);

  SUBCASE("the next request after redis returns reconnects") {
    REQUIRE(server->Restart());
    loop.RunFor(60ms);
    CHECK(PingSync(loop, store).ok());
  }
  SUBCASE("the backoff timer reconnects within 2 s without any request") {
    loop.RunFor(1000ms);  // let the backoff grow
    CHECK_FALSE(store.ready());
    REQUIRE(server->Restart());
    start = Clock::now();
    CHECK(loop.RunUntil([&] { return store.ready(); }, 3000ms));
    CHECK(Since(start) <= 2100ms);
  }
  // The same store object serves again.
  CHECK(ApplySync(loop, store, SetOne(key, "c", "3")).status.ok());
  CHECK(LoadSync(loop, store, key).data == SessionData{{"c", "3"}});
}

TEST_CASE("redis store: a hung redis fails calls with Timeout within redis.timeout, then recovers") {
  auto server = RedisServer::Start();
  REQUIRE(server);
  TestLoop loop;
  RedisStore store(server->Config(300ms), loop.base());
  REQUIRE(PingSync(loop, store).ok());

  auto blocker = server->Connect();
  REQUIRE(blocker);
  redisAppendCommand(blocker.get(), "DEBUG SLEEP 1");
  for (int done = 0; !done;) REQUIRE(redisBufferWrite(blocker.get(), &done) == REDIS_OK);
  loop.RunFor(50ms);  // the server is now asleep

  const auto start = Clock::now();
  int finished = 0;
  Status first, second;
  // Two pipelined commands: both time out together.
  store.Apply(SetOne(RandomKey(), "a", "1"), [&](Status st, ApplyResult) { first = st; ++finished; });
  store.Load(RandomKey(), [&](Status st, std::optional<SessionData>) { second = st; ++finished; });
  REQUIRE(loop.RunUntil([&] { return finished == 2; }));
  CHECK(first.code() == Status::Code::kTimeout);
  CHECK(second.code() == Status::Code::kTimeout);
  CHECK(Since(start) >= 250ms);
  CHECK(Since(start) < 600ms);

  // The reply to the abandoned commands arrives on a dropped connection and
  // must not reach their callbacks (ASan would catch a use after free).
  CHECK(loop.RunUntil([&] { return PingSync(loop, store).ok(); }, 3000ms));
  CHECK(finished == 2);
}

TEST_CASE("redis store: a server that accepts but never answers fails calls with Timeout") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(listen(fd, 16) == 0);  // never accept(): the kernel completes the handshake
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);

  TestLoop loop;
  RedisConfig config;
  config.host = "127.0.0.1";
  config.port = ntohs(addr.sin_port);
  config.timeout = 200ms;
  RedisStore store(config, loop.base());
  const auto start = Clock::now();
  CHECK(PingSync(loop, store).code() == Status::Code::kTimeout);
  CHECK(Since(start) < 500ms);
  close(fd);
}

TEST_CASE("redis store: AUTH with requirepass or an ACL user; a wrong password fails without showing it") {
  auto server = RedisServer::Start({"--requirepass", "s3cret-pw", "--user", "alice", "on", ">alice-pw", "~*", "&*",
                                    "+@all"});
  REQUIRE(server);
  TestLoop loop;

  RedisConfig config = server->Config();
  config.password = "s3cret-pw";
  RedisStore with_password(config, loop.base());
  const StoreKey key = RandomKey();
  CHECK(ApplySync(loop, with_password, SetOne(key, "a", "1")).status.ok());
  CHECK(LoadSync(loop, with_password, key).data == SessionData{{"a", "1"}});

  config.username = "alice";
  config.password = "alice-pw";
  RedisStore as_alice(config, loop.base());
  CHECK(LoadSync(loop, as_alice, key).data == SessionData{{"a", "1"}});

  config.username = "";
  config.password = "wrong-password-value";
  RedisStore wrong(config, loop.base());
  const Status st = PingSync(loop, wrong);
  CHECK(st.code() == Status::Code::kUnavailable);
  CHECK(st.message().find("wrong-password-value") == std::string::npos);
  CHECK_FALSE(wrong.ready());

  config.password = "";
  RedisStore none(config, loop.base());
  CHECK_FALSE(LoadSync(loop, none, key).status.ok());  // NOAUTH
}

TEST_CASE("redis store: SELECT puts sessions in the configured database") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisConfig config = server.Config();
  config.db = 3;
  RedisStore store(config, loop.base());
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(loop, store, SetOne(key, "a", "1")).status.ok());

  auto c = server.Connect();
  REQUIRE(c);
  auto exists = Command(c.get(), {"EXISTS", config.key_prefix + key});
  REQUIRE(exists);
  CHECK(exists->integer == 0);  // not in db 0
  Command(c.get(), {"SELECT", "3"});
  exists = Command(c.get(), {"EXISTS", config.key_prefix + key});
  REQUIRE(exists);
  CHECK(exists->integer == 1);
}

TEST_CASE("redis store: connects over a unix socket") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisConfig config = server.Config();
  config.unix_socket = true;
  config.socket_path = server.socket_path();
  config.port = 1;  // proves the TCP fields are ignored
  RedisStore store(config, loop.base());
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(loop, store, SetOne(key, "a", "1")).status.ok());
  CHECK(LoadSync(loop, store, key).data == SessionData{{"a", "1"}});
}

TEST_CASE("redis store: a missing unix socket fails fast with Unavailable") {
  TestLoop loop;
  RedisConfig config;
  config.unix_socket = true;
  config.socket_path = "/nonexistent/sessiond-test.sock";
  RedisStore store(config, loop.base());
  const auto start = Clock::now();
  CHECK(PingSync(loop, store).code() == Status::Code::kUnavailable);
  CHECK(Since(start) < 100ms);
}

TEST_CASE("redis store: layout is one hash of JSON-escaped fields plus the v and s bookkeeping, with a TTL") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisConfig config = server.Config();
  RedisStore store(config, loop.base());
  const StoreKey key = RandomKey();
  ApplyRequest request = SetOne(key, "caf\xc3\xa9", "[1]");
  request.ttl = 30s;
  REQUIRE(ApplySync(loop, store, request).status.ok());

  auto c = server.Connect();
  REQUIRE(c);
  auto all = Command(c.get(), {"HGETALL", config.key_prefix + key});
  REQUIRE(all);
  REQUIRE(all->type == REDIS_REPLY_ARRAY);
  std::map<std::string, std::string> fields;
  for (size_t i = 0; i + 1 < all->elements; i += 2) {
    fields[std::string(all->element[i]->str, all->element[i]->len)] =
        std::string(all->element[i + 1]->str, all->element[i + 1]->len);
  }
  // s: len("caf\u00e9" quoted) 11 + len("[1]") 3 + 2, so the serialized
  // session {"caf\u00e9":[1]} is s + 1 = 17 bytes.
  CHECK(fields == std::map<std::string, std::string>{{"\"caf\\u00e9\"", "[1]"}, {"v", "2"}, {"s", "16"}});
  CHECK(SerializedSize(SessionData{{"caf\xc3\xa9", "[1]"}}) == 17);
  auto ttl = Command(c.get(), {"PTTL", config.key_prefix + key});
  REQUIRE(ttl);
  CHECK(ttl->integer > 29000);
  CHECK(ttl->integer <= 30000);
}

TEST_CASE("redis store: apply falls back to EVAL after the script cache is flushed") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisStore store(server.Config(), loop.base());
  REQUIRE(PingSync(loop, store).ok());
  auto c = server.Connect();
  REQUIRE(c);
  Command(c.get(), {"SCRIPT", "FLUSH"});
  const StoreKey key = RandomKey();
  CHECK(ApplySync(loop, store, SetOne(key, "a", "1")).status.ok());
  CHECK(LoadSync(loop, store, key).data == SessionData{{"a", "1"}});
}

TEST_CASE("redis store: a callback may destroy the store; later callbacks are dropped") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  auto store = std::make_unique<RedisStore>(server.Config(), loop.base());
  int first = 0, second = 0;
  store->Load(RandomKey(), [&](Status, std::optional<SessionData>) {
    ++first;
    store.reset();
  });
  store->Load(RandomKey(), [&](Status, std::optional<SessionData>) { ++second; });
  REQUIRE(loop.RunUntil([&] { return first == 1; }));
  loop.RunFor(50ms);
  CHECK(second == 0);
}

TEST_CASE("redis store: destroying the store with calls in flight drops their callbacks") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  auto store = std::make_unique<RedisStore>(server.Config(), loop.base());
  int called = 0;
  store->Apply(SetOne(RandomKey(), "a", "1"), [&](Status, ApplyResult) { ++called; });
  store->Ping([&](Status) { ++called; });
  store.reset();
  loop.RunFor(50ms);
  CHECK(called == 0);
}

}  // namespace
}  // namespace testing
}  // namespace sessiond
