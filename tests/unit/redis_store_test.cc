// RedisStore behaviour beyond the shared contract: failure, recovery,
// timeouts, AUTH/SELECT, unix sockets, the data layout and lifetime rules.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store/redis_store.h"
#include "store/session_data.h"
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


// ------------------------------------------------------------ the write fast path

// The hash of a session, every field (bookkeeping included).
std::map<std::string, std::string> HashOf(redisContext* c, const std::string& key) {
  auto all = Command(c, {"HGETALL", key});
  std::map<std::string, std::string> fields;
  if (!all || all->type != REDIS_REPLY_ARRAY) return fields;
  for (size_t i = 0; i + 1 < all->elements; i += 2) {
    fields[std::string(all->element[i]->str, all->element[i]->len)] =
        std::string(all->element[i + 1]->str, all->element[i + 1]->len);
  }
  return fields;
}

// The running size the layout promises: sum of name + value + 2 over data fields.
long long ExactS(const std::map<std::string, std::string>& fields) {
  long long s = 0;
  for (const auto& [name, value] : fields) {
    if (!name.empty() && name[0] == '"') s += static_cast<long long>(name.size() + value.size() + 2);
  }
  return s;
}

long long CommandCalls(redisContext* c, const std::string& command) {
  auto info = Command(c, {"INFO", "commandstats"});
  if (!info || !info->str) return -1;
  const std::string text(info->str, info->len);
  const std::string tag = "cmdstat_" + command + ":calls=";
  const size_t at = text.find(tag);
  return at == std::string::npos ? 0 : std::atoll(text.c_str() + at + tag.size());
}

// A write as the session filter makes it after loading the session.
ApplyRequest LoadedWrite(const StoreKey& key, const std::string& loaded_json,
                         std::map<std::string, std::optional<std::string>> sets) {
  ApplyRequest request = MakeRequest(key);
  request.want_data = false;
  request.must_exist = true;
  request.sets = std::move(sets);
  request.loaded = std::string_view(loaded_json);
  request.keeps_expiry = true;
  return request;
}

TEST_CASE("redis store: a write from the loaded session is one transaction, keeps s exact and the TTL") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisConfig config = server.Config();
  RedisStore store(config, loop.base());
  auto c = server.Connect();
  REQUIRE(c);
  const StoreKey key = RandomKey();
  ApplyRequest create = SetOne(key, "a", "\"x\"");
  create.ttl = 50s;
  REQUIRE(ApplySync(loop, store, create).status.ok());
  LoadOutcome loaded = LoadSync(loop, store, key);
  REQUIRE(loaded.data);
  const std::string json = SerializeSession(*loaded.data);

  const long long evalsha_before = CommandCalls(c.get(), "evalsha") + CommandCalls(c.get(), "eval");
  const long long exec_before = CommandCalls(c.get(), "exec");
  ApplyRequest write = LoadedWrite(key, json, {{"b", "[1,2]"}, {"a", "\"yy\""}});
  write.ttl = 10s;  // restated only: keeps_expiry
  ApplyOutcome out = ApplySync(loop, store, write);
  REQUIRE(out.status.ok());
  CHECK(out.result.exists);
  CHECK(CommandCalls(c.get(), "exec") == exec_before + 1);
  CHECK(CommandCalls(c.get(), "evalsha") + CommandCalls(c.get(), "eval") == evalsha_before);

  const auto fields = HashOf(c.get(), config.key_prefix + key);
  REQUIRE(fields.count("s"));
  CHECK(std::stoll(fields.at("s")) == ExactS(fields));
  CHECK(LoadSync(loop, store, key).data == SessionData{{"a", "\"yy\""}, {"b", "[1,2]"}});
  auto ttl = Command(c.get(), {"PTTL", config.key_prefix + key});
  REQUIRE(ttl);
  CHECK(ttl->integer > 40000);  // still the 50 s of the creation, not the restated 10 s

  SUBCASE("and a write that moves the expiry sets it") {
    const std::string now_json = SerializeSession(*LoadSync(loop, store, key).data);
    ApplyRequest refresh = LoadedWrite(key, now_json, {{"c", "3"}});
    refresh.keeps_expiry = false;
    refresh.ttl = 10s;
    REQUIRE(ApplySync(loop, store, refresh).status.ok());
    ttl = Command(c.get(), {"PTTL", config.key_prefix + key});
    REQUIRE(ttl);
    CHECK(ttl->integer <= 10000);
    CHECK(ttl->integer > 5000);
  }
  SUBCASE("and deletes alone") {
    const std::string now_json = SerializeSession(*LoadSync(loop, store, key).data);
    ApplyRequest del = LoadedWrite(key, now_json, {});
    del.deletes = {"a", "missing"};
    REQUIRE(ApplySync(loop, store, del).status.ok());
    const auto after = HashOf(c.get(), config.key_prefix + key);
    CHECK(std::stoll(after.at("s")) == ExactS(after));
    CHECK(LoadSync(loop, store, key).data == SessionData{{"b", "[1,2]"}});
  }
}

TEST_CASE("redis store: metadata rides in the fast path's HSET; without it the session has no m field") {
  // redis_store.h, Metadata: no command more for it.
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisConfig config = server.Config();
  RedisStore store(config, loop.base());
  auto c = server.Connect();
  REQUIRE(c);
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(loop, store, SetOne(key, "a", "1")).status.ok());
  CHECK(HashOf(c.get(), config.key_prefix + key).count("m") == 0);
  std::string json = SerializeSession(*LoadSync(loop, store, key).data);

  SessionMeta meta;
  meta.created_at = 1700000000;
  meta.refreshed_at = 1700000100;
  meta.expires_at = 1700003600;
  meta.client = "192.0.2.1";
  meta.user_agent = "agent \"quoted\"";
  const long long exec_before = CommandCalls(c.get(), "exec");
  const long long hset_before = CommandCalls(c.get(), "hset");
  const long long script_before = CommandCalls(c.get(), "evalsha") + CommandCalls(c.get(), "eval");
  ApplyRequest write = LoadedWrite(key, json, {{"b", "2"}});
  write.meta = meta;
  REQUIRE(ApplySync(loop, store, write).status.ok());
  CHECK(CommandCalls(c.get(), "exec") == exec_before + 1);
  CHECK(CommandCalls(c.get(), "hset") == hset_before + 1);
  CHECK(CommandCalls(c.get(), "evalsha") + CommandCalls(c.get(), "eval") == script_before);
  std::optional<StoredSession> stored;
  store.LoadSession(key, [&](Status st, std::optional<StoredSession> s) {
    REQUIRE(st.ok());
    stored = std::move(s);
    REQUIRE(stored);
  });
  REQUIRE(loop.RunUntil([&] { return stored.has_value(); }));
  CHECK(stored->data == SessionData{{"a", "1"}, {"b", "2"}});
  CHECK(stored->meta.created_at == 1700000000);
  CHECK(stored->meta.refreshed_at == 1700000100);
  CHECK(stored->meta.expires_at == 1700003600);
  CHECK(stored->meta.client == "192.0.2.1");
  CHECK(stored->meta.user_agent == "agent \"quoted\"");
  CHECK(stored->meta.subject.empty());
  const auto fields = HashOf(c.get(), config.key_prefix + key);
  CHECK(std::stoll(fields.at("s")) == ExactS(fields));  // m is bookkeeping, not counted

  // A batch that only deletes still records the metadata.
  json = SerializeSession(stored->data);
  ApplyRequest del = LoadedWrite(key, json, {});
  del.deletes = {"a"};
  meta.refreshed_at = 1700000200;
  del.meta = meta;
  REQUIRE(ApplySync(loop, store, del).status.ok());
  CHECK(HashOf(c.get(), config.key_prefix + key).at("m").find("1700000200") != std::string::npos);
}

TEST_CASE("redis store: with a subject_key the session keeps u, p and m, and one Redis has the index keys") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisConfig config = server.Config();
  RedisStore store(config, loop.base());
  auto c = server.Connect();
  REQUIRE(c);
  const StoreKey key = RandomKey();
  const std::string user = "u-" + RandomKey().substr(0, 10);
  const std::string pid = "pid" + RandomKey().substr(0, 19);
  ApplyRequest login = SetOne(key, "user_id", "\"" + user + "\"");
  login.subject_key = "user_id";
  SessionMeta meta;
  meta.created_at = 1700000000;
  meta.public_id = pid;
  login.meta = meta;
  ApplyOutcome out = ApplySync(loop, store, login);
  REQUIRE(out.status.ok());
  CHECK(out.result.meta.subject == user);
  const auto fields = HashOf(c.get(), config.key_prefix + key);
  CHECK(fields.at("v") == "2");
  CHECK(std::stoll(fields.at("s")) == ExactS(fields));
  CHECK(fields.at("u") == user);
  CHECK(fields.at("p") == pid);
  CHECK(fields.count("m") == 1);
  auto score = Command(c.get(), {"ZSCORE", config.key_prefix + "subject:" + user, key});
  REQUIRE(score);
  REQUIRE(score->str);
  CHECK(std::string(score->str, score->len) == "1700000000");
  auto owner = Command(c.get(), {"GET", config.key_prefix + "pid:" + pid});
  REQUIRE(owner);
  REQUIRE(owner->str);
  CHECK(std::string(owner->str, owner->len) == key);
  for (const std::string& index : {config.key_prefix + "subject:" + user, config.key_prefix + "pid:" + pid}) {
    auto ttl = Command(c.get(), {"PTTL", index});
    REQUIRE(ttl);
    CHECK(ttl->integer > 0);  // index keys expire too
  }

  // Taking the key away leaves u, p and both index keys.
  ApplyRequest drop = MakeRequest(key);
  drop.subject_key = "user_id";
  drop.deletes = {"user_id"};
  REQUIRE(ApplySync(loop, store, drop).status.ok());
  const auto after = HashOf(c.get(), config.key_prefix + key);
  CHECK(after.count("u") == 0);
  CHECK(after.count("p") == 0);
  CHECK(after.count("m") == 1);  // the metadata stays
  auto gone = Command(c.get(), {"EXISTS", config.key_prefix + "subject:" + user, config.key_prefix + "pid:" + pid});
  REQUIRE(gone);
  CHECK(gone->integer == 0);
}

TEST_CASE("redis store: a concurrent write between load and write: both kept within the limit, "
          "the later refused and undone over it") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisConfig config = server.Config();
  RedisStore store(config, loop.base());
  RedisStore other(config, loop.base());
  auto c = server.Connect();
  REQUIRE(c);
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(loop, store, SetOne(key, "a", "1")).status.ok());
  const std::string stale = SerializeSession(*LoadSync(loop, store, key).data);

  SUBCASE("within the limit") {
    REQUIRE(ApplySync(loop, other, SetOne(key, "b", "2")).status.ok());
    ApplyOutcome out = ApplySync(loop, store, LoadedWrite(key, stale, {{"c", "3"}}));
    REQUIRE(out.status.ok());
    CHECK(out.result.exists);
    CHECK(LoadSync(loop, store, key).data == SessionData{{"a", "1"}, {"b", "2"}, {"c", "3"}});
  }
  SUBCASE("over the limit together") {
    const std::string big(2500, 'x');
    REQUIRE(ApplySync(loop, other, SetOne(key, "b", "\"" + big + "\"")).status.ok());
    // Alone (as loaded) it fits in 4096; with b it does not.
    ApplyRequest late = LoadedWrite(key, stale, {{"c", "\"" + big + "\""}, {"a", "22"}});
    ApplyOutcome out = ApplySync(loop, store, late);
    CHECK(out.status.code() == Status::Code::kTooLarge);
    CHECK(LoadSync(loop, store, key).data == SessionData{{"a", "1"}, {"b", "\"" + big + "\""}});
  }
  SUBCASE("the same key written by both: the later write wins") {
    REQUIRE(ApplySync(loop, other, SetOne(key, "a", "\"longer value\"")).status.ok());
    REQUIRE(ApplySync(loop, store, LoadedWrite(key, stale, {{"a", "2"}})).status.ok());
    CHECK(LoadSync(loop, store, key).data == SessionData{{"a", "2"}});
  }
  const auto fields = HashOf(c.get(), config.key_prefix + key);
  REQUIRE(fields.count("s"));
  CHECK(std::stoll(fields.at("s")) == ExactS(fields));
}

TEST_CASE("redis store: a session destroyed between load and write stays gone, and no fragment is left") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisConfig config = server.Config();
  RedisStore store(config, loop.base());
  auto c = server.Connect();
  REQUIRE(c);
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(loop, store, SetOne(key, "a", "1")).status.ok());
  const std::string json = SerializeSession(*LoadSync(loop, store, key).data);
  ApplyRequest destroy = MakeRequest(key);
  destroy.clear = true;
  REQUIRE(ApplySync(loop, store, destroy).status.ok());

  ApplyOutcome out = ApplySync(loop, store, LoadedWrite(key, json, {{"late", "1"}}));
  REQUIRE(out.status.ok());
  CHECK_FALSE(out.result.exists);
  CHECK_FALSE(LoadSync(loop, store, key).data.has_value());  // also after the DEL of the fragment
  auto exists = Command(c.get(), {"EXISTS", config.key_prefix + key});
  REQUIRE(exists);
  CHECK(exists->integer == 0);
}

TEST_CASE("redis store: a hash without v (a fragment) is no session") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisConfig config = server.Config();
  RedisStore store(config, loop.base());
  auto c = server.Connect();
  REQUIRE(c);
  const StoreKey key = RandomKey();
  Command(c.get(), {"HSET", config.key_prefix + key, "\"late\"", "1", "s", "10"});
  CHECK_FALSE(LoadSync(loop, store, key).data.has_value());
}

TEST_CASE("redis store: a session of layout 1 (no running size) is upgraded by its first write") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisConfig config = server.Config();
  RedisStore store(config, loop.base());
  auto c = server.Connect();
  REQUIRE(c);
  const StoreKey key = RandomKey();
  const std::string redis_key = config.key_prefix + key;
  Command(c.get(), {"HSET", redis_key, "v", "1", "\"a\"", "\"old\""});
  Command(c.get(), {"PEXPIRE", redis_key, "60000"});
  LoadOutcome loaded = LoadSync(loop, store, key);
  REQUIRE(loaded.data == SessionData{{"a", "\"old\""}});

  SUBCASE("through the fast path") {
    const std::string json = SerializeSession(*loaded.data);
    REQUIRE(ApplySync(loop, store, LoadedWrite(key, json, {{"b", "2"}})).status.ok());
  }
  SUBCASE("through the script") { REQUIRE(ApplySync(loop, store, SetOne(key, "b", "2")).status.ok()); }
  const auto fields = HashOf(c.get(), redis_key);
  CHECK(fields.at("v") == "2");
  CHECK(std::stoll(fields.at("s")) == ExactS(fields));
  CHECK(LoadSync(loop, store, key).data == SessionData{{"a", "\"old\""}, {"b", "2"}});
}

TEST_CASE("redis store: a stale load that looks over the limit leaves the decision to the script") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisConfig config = server.Config();
  RedisStore store(config, loop.base());
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(loop, store, SetOne(key, "a", "1")).status.ok());
  // As if loaded before a big key was deleted.
  const std::string stale = SerializeSession(SessionData{{"a", "1"}, {"big", "\"" + std::string(4000, 'x') + "\""}});
  ApplyOutcome out = ApplySync(loop, store, LoadedWrite(key, stale, {{"b", "2"}}));
  REQUIRE(out.status.ok());
  CHECK(LoadSync(loop, store, key).data == SessionData{{"a", "1"}, {"b", "2"}});
  // And one that is over the limit for real is refused, changing nothing.
  const std::string now = SerializeSession(*LoadSync(loop, store, key).data);
  out = ApplySync(loop, store, LoadedWrite(key, now, {{"c", "\"" + std::string(5000, 'y') + "\""}}));
  CHECK(out.status.code() == Status::Code::kTooLarge);
  CHECK(LoadSync(loop, store, key).data == SessionData{{"a", "1"}, {"b", "2"}});
}

}  // namespace
}  // namespace testing
}  // namespace sessiond
