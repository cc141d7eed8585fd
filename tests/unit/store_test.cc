// The SessionStore interface contract, one suite run against every store:
// MemoryStore, FileStore (in a temporary directory) and RedisStore (against a
// real redis-server). Memory-specific behaviour (LRU, expiry sweep, threads
// sharing one table) is at the end; file and redis specifics have their own
// files.
#include <doctest/doctest.h>
#include <netinet/in.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <ctime>
#include <thread>
#include <type_traits>

#include "store/file_store.h"
#include "store/http_store.h"
#include "store/memory_store.h"
#include "store/redis_store.h"
#include "store_test_util.h"
#include "tls_test_util.h"

namespace sessiond {
namespace testing {
namespace {

struct MemoryFixture {
  TestLoop loop;
  std::shared_ptr<MemoryTable> table = std::make_shared<MemoryTable>(10000);
  std::unique_ptr<SessionStore> NewStore() { return std::make_unique<MemoryStore>(table); }
};

struct FileFixture {
  TestLoop loop;
  TempDir dir;
  std::shared_ptr<FileWorkerPool> pool = *FileWorkerPool::Create(3);
  std::unique_ptr<SessionStore> NewStore() {
    Result<std::unique_ptr<FileStore>> store = FileStore::Open(dir.path(), pool, loop.post());
    REQUIRE(store.ok());
    return std::move(*store);
  }
};

struct RedisFixture {
  TestLoop loop;
  RedisServer& server = SharedRedis();
  std::unique_ptr<SessionStore> NewStore() {
    return std::make_unique<RedisStore>(server.Config(), loop.base());
  }
};

// The reference store of examples/python, through sessiond's http store
// (docs/STORE-PROTOCOL.md): the same suite as the built-in stores.
struct HttpFixture {
  TestLoop loop;
  HttpStoreServer& server = SharedHttpStore();
  std::unique_ptr<SessionStore> NewStore() { return std::make_unique<HttpStore>(server.Config(), loop.base()); }
};

// The same store through Redis Cluster (one node holding every slot; the
// cluster's own tests have more) and through Sentinel.
struct RedisClusterFixture {
  TestLoop loop;
  RedisServer& node = SharedRedisCluster();
  std::unique_ptr<SessionStore> NewStore() {
    RedisConfig config = node.Config();
    config.cluster = RedisClusterConfig{{RedisNodeAddress{"127.0.0.1", static_cast<uint16_t>(node.port())}}};
    return std::make_unique<RedisStore>(config, loop.base());
  }
};

struct RedisSentinelFixture {
  TestLoop loop;
  RedisServer& master = SharedRedis();
  std::unique_ptr<SessionStore> NewStore() {
    static std::unique_ptr<RedisServer> sentinel = RedisServer::StartSentinel(master.port(), "contract");
    REQUIRE(sentinel);
    RedisConfig config = master.Config();
    RedisSentinelConfig s;
    s.master_name = "contract";
    s.addresses = {RedisNodeAddress{"127.0.0.1", static_cast<uint16_t>(sentinel->port())}};
    config.sentinel = s;
    return std::make_unique<RedisStore>(config, loop.base());
  }
};

// The same store over TLS (rediss://, the server verified against a test
// CA, by IP address).
struct RedisTlsFixture {
  TestLoop loop;
  std::unique_ptr<SessionStore> NewStore() {
    static const TestCa ca("store contract CA");
    static const PemPair leaf = ca.Issue("redis", {"localhost"}, {"127.0.0.1"});
    static std::unique_ptr<RedisServer> server = RedisServer::StartTls(leaf.cert, leaf.key);
    REQUIRE(server);
    RedisConfig config = server->Config();
    config.port = static_cast<uint16_t>(server->tls_port());
    config.rediss = true;
    config.tls = ClientTlsConfig{};
    config.tls->ca_pem = ca.ca().cert;
    return std::make_unique<RedisStore>(config, loop.base());
  }
};

#define STORE_TEST(name)                                                                                       \
  TEST_CASE_TEMPLATE("store contract: " name, F, MemoryFixture, FileFixture, RedisFixture, RedisClusterFixture, \
                     RedisSentinelFixture, RedisTlsFixture, HttpFixture)
// Stores that index subjects (docs/HEADER-PROTOCOL.md, Subjects).
#define SUBJECT_TEST(name)                                                                                       \
  TEST_CASE_TEMPLATE("store contract, subjects: " name, F, MemoryFixture, FileFixture, RedisFixture,              \
                     RedisClusterFixture, RedisSentinelFixture, RedisTlsFixture, HttpFixture)

// Values are stored as their exact JSON text, whatever it looks like.
const SessionData kSample = {
    {"user", "\"ada\""}, {"cart", "[1,2,{\"x\":null}]"}, {"n", "1.50e2"}, {"ok", "true"},
    {"caf\xc3\xa9", "\"\\u00e9\""}, {"quote\"back\\slash", "{}"}, {"", "0"},
};

ApplyRequest SetAll(const StoreKey& key, const SessionData& data) {
  ApplyRequest request = MakeRequest(key);
  for (const auto& [k, v] : data) request.sets[k] = v;
  return request;
}

STORE_TEST("loading a missing session is OK and empty") {
  F f;
  auto store = f.NewStore();
  LoadOutcome out = LoadSync(f.loop, *store, RandomKey());
  CHECK(out.status.ok());
  CHECK_FALSE(out.data.has_value());
}

STORE_TEST("apply then load returns exactly the data written") {
  F f;
  auto store = f.NewStore();
  const StoreKey key = RandomKey();
  ApplyOutcome applied = ApplySync(f.loop, *store, SetAll(key, kSample));
  REQUIRE(applied.status.ok());
  CHECK(applied.result.exists);
  CHECK(applied.result.data == kSample);
  LoadOutcome loaded = LoadSync(f.loop, *store, key);
  REQUIRE(loaded.status.ok());
  REQUIRE(loaded.data.has_value());
  CHECK(*loaded.data == kSample);

  // A second store over the same backend sees it too.
  auto other = f.NewStore();
  LoadOutcome again = LoadSync(f.loop, *other, key);
  REQUIRE(again.data.has_value());
  CHECK(*again.data == kSample);
}

STORE_TEST("a null set deletes that key and sets merge into the session") {
  F f;
  auto store = f.NewStore();
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(f.loop, *store, SetAll(key, {{"a", "1"}, {"b", "2"}})).status.ok());
  ApplyRequest request = MakeRequest(key);
  request.sets["b"] = std::nullopt;
  request.sets["c"] = "3";
  ApplyOutcome out = ApplySync(f.loop, *store, request);
  REQUIRE(out.status.ok());
  const SessionData expected = {{"a", "1"}, {"c", "3"}};
  CHECK(out.result.data == expected);
  CHECK(LoadSync(f.loop, *store, key).data == expected);
}

STORE_TEST("deletes apply before sets, and deleting every key keeps an empty session") {
  F f;
  auto store = f.NewStore();
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(f.loop, *store, SetAll(key, {{"a", "1"}, {"b", "2"}, {"c", "3"}})).status.ok());

  ApplyRequest request = MakeRequest(key);
  request.deletes = {"a", "c", "missing"};
  request.sets["c"] = "33";  // set after delete: the set wins
  ApplyOutcome out = ApplySync(f.loop, *store, request);
  REQUIRE(out.status.ok());
  CHECK(out.result.data == SessionData{{"b", "2"}, {"c", "33"}});

  request = MakeRequest(key);
  request.deletes = {"b", "c"};
  out = ApplySync(f.loop, *store, request);
  REQUIRE(out.status.ok());
  CHECK(out.result.exists);
  CHECK(out.result.data.empty());
  LoadOutcome loaded = LoadSync(f.loop, *store, key);
  REQUIRE(loaded.data.has_value());
  CHECK(loaded.data->empty());
}

STORE_TEST("an apply with no changes creates an empty session") {
  F f;
  auto store = f.NewStore();
  const StoreKey key = RandomKey();
  ApplyOutcome out = ApplySync(f.loop, *store, MakeRequest(key));
  REQUIRE(out.status.ok());
  CHECK(out.result.exists);
  LoadOutcome loaded = LoadSync(f.loop, *store, key);
  REQUIRE(loaded.data.has_value());
  CHECK(loaded.data->empty());
}

STORE_TEST("clear without sets deletes the session") {
  F f;
  auto store = f.NewStore();
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(f.loop, *store, SetAll(key, {{"a", "1"}})).status.ok());
  ApplyRequest request = MakeRequest(key);
  request.clear = true;
  request.deletes = {"a"};
  ApplyOutcome out = ApplySync(f.loop, *store, request);
  REQUIRE(out.status.ok());
  CHECK_FALSE(out.result.exists);
  CHECK(out.result.data.empty());
  LoadOutcome loaded = LoadSync(f.loop, *store, key);
  CHECK(loaded.status.ok());
  CHECK_FALSE(loaded.data.has_value());
}

STORE_TEST("clear with sets leaves only the new keys") {
  F f;
  auto store = f.NewStore();
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(f.loop, *store, SetAll(key, {{"a", "1"}, {"b", "2"}})).status.ok());
  ApplyRequest request = SetAll(key, {{"z", "26"}});
  request.clear = true;
  ApplyOutcome out = ApplySync(f.loop, *store, request);
  REQUIRE(out.status.ok());
  CHECK(out.result.exists);
  CHECK(out.result.data == SessionData{{"z", "26"}});
  CHECK(LoadSync(f.loop, *store, key).data == SessionData{{"z", "26"}});
}

STORE_TEST("new_key moves the session with its changes and the old key is gone") {
  F f;
  auto store = f.NewStore();
  const StoreKey old_key = RandomKey(), new_key = RandomKey();
  REQUIRE(ApplySync(f.loop, *store, SetAll(old_key, {{"a", "1"}})).status.ok());
  ApplyRequest request = SetAll(old_key, {{"b", "2"}});
  request.new_key = new_key;
  ApplyOutcome out = ApplySync(f.loop, *store, request);
  REQUIRE(out.status.ok());
  CHECK(out.result.data == SessionData{{"a", "1"}, {"b", "2"}});
  CHECK_FALSE(LoadSync(f.loop, *store, old_key).data.has_value());
  CHECK(LoadSync(f.loop, *store, new_key).data == SessionData{{"a", "1"}, {"b", "2"}});

  SUBCASE("clear with new_key and no sets moves an empty session (Destroy + Regenerate)") {
    const StoreKey third = RandomKey();
    ApplyRequest destroy = MakeRequest(new_key);
    destroy.clear = true;
    destroy.new_key = third;
    ApplyOutcome moved = ApplySync(f.loop, *store, destroy);
    REQUIRE(moved.status.ok());
    CHECK(moved.result.exists);
    CHECK_FALSE(LoadSync(f.loop, *store, new_key).data.has_value());
    LoadOutcome loaded = LoadSync(f.loop, *store, third);
    REQUIRE(loaded.data.has_value());
    CHECK(loaded.data->empty());
  }
  SUBCASE("re-keying a missing session creates it under the new key") {
    const StoreKey fresh = RandomKey(), target = RandomKey();
    ApplyRequest create = SetAll(fresh, {{"x", "1"}});
    create.new_key = target;
    REQUIRE(ApplySync(f.loop, *store, create).status.ok());
    CHECK_FALSE(LoadSync(f.loop, *store, fresh).data.has_value());
    CHECK(LoadSync(f.loop, *store, target).data == SessionData{{"x", "1"}});
  }
}

STORE_TEST("a session expires after its ttl") {
  F f;
  auto store = f.NewStore();
  const StoreKey key = RandomKey();
  ApplyRequest request = SetAll(key, {{"a", "1"}});
  request.ttl = 250ms;
  REQUIRE(ApplySync(f.loop, *store, request).status.ok());
  CHECK(LoadSync(f.loop, *store, key).data.has_value());
  f.loop.RunFor(400ms);
  LoadOutcome loaded = LoadSync(f.loop, *store, key);
  CHECK(loaded.status.ok());
  CHECK_FALSE(loaded.data.has_value());
}

STORE_TEST("touch extends a session's lifetime and does not create missing ones") {
  F f;
  auto store = f.NewStore();
  const StoreKey key = RandomKey();
  ApplyRequest request = SetAll(key, {{"a", "1"}});
  // Generous margins: a loaded CI machine must not make the Touch itself late.
  request.ttl = 1s;
  REQUIRE(ApplySync(f.loop, *store, request).status.ok());
  CHECK(TouchSync(f.loop, *store, key, 60s).ok());
  f.loop.RunFor(1300ms);
  CHECK(LoadSync(f.loop, *store, key).data == SessionData{{"a", "1"}});

  const StoreKey missing = RandomKey();
  CHECK(TouchSync(f.loop, *store, missing, 60s).ok());
  CHECK_FALSE(LoadSync(f.loop, *store, missing).data.has_value());
}

STORE_TEST("a result over max_bytes changes nothing, and the limit is exact") {
  F f;
  auto store = f.NewStore();
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(f.loop, *store, SetAll(key, {{"a", "1"}})).status.ok());

  // Keys whose JSON form is longer than their bytes: the size must count the
  // escaped form (quotes, backslashes, control characters, \u escapes,
  // surrogate pairs) exactly as SerializedSize does.
  ApplyRequest request = SetAll(key, {{"q\"b\\s", "\"v\""},
                                      {"ctl\x01\n", "2"},
                                      {"caf\xc3\xa9", "3"},
                                      {"emoji\xf0\x9f\x98\x80", "[4]"},
                                      {"", "5"}});
  request.deletes = {"a"};
  SessionData expected;
  ApplyChanges(&expected, false, request.deletes, request.sets);
  const uint64_t size = SerializedSize(expected);

  request.max_bytes = size - 1;
  ApplyOutcome refused = ApplySync(f.loop, *store, request);
  CHECK(refused.status.code() == Status::Code::kTooLarge);
  CHECK(refused.status.message() == "session would be " + std::to_string(size) +
                                        " bytes, over max_session_bytes (" + std::to_string(size - 1) + ")");
  CHECK(LoadSync(f.loop, *store, key).data == SessionData{{"a", "1"}});

  SUBCASE("a too large re-key leaves both keys as they were") {
    request.new_key = RandomKey();
    CHECK(ApplySync(f.loop, *store, request).status.code() == Status::Code::kTooLarge);
    CHECK(LoadSync(f.loop, *store, key).data == SessionData{{"a", "1"}});
    CHECK_FALSE(LoadSync(f.loop, *store, *request.new_key).data.has_value());
  }
  SUBCASE("exactly max_bytes is accepted") {
    request.max_bytes = size;
    ApplyOutcome accepted = ApplySync(f.loop, *store, request);
    REQUIRE(accepted.status.ok());
    CHECK(accepted.result.data == expected);
    CHECK(LoadSync(f.loop, *store, key).data == expected);
  }
}

STORE_TEST("ping answers OK") {
  F f;
  auto store = f.NewStore();
  CHECK(PingSync(f.loop, *store).ok());
}

STORE_TEST("30 concurrent applies of distinct keys to one session lose nothing") {
  F f;
  std::vector<std::unique_ptr<SessionStore>> stores;
  for (int i = 0; i < 3; ++i) stores.push_back(f.NewStore());
  const StoreKey key = RandomKey();
  int done = 0, failed = 0;
  // Every apply is issued before any completes: pipelined on each redis
  // connection and interleaved across connections / file I/O threads.
  for (int i = 0; i < 30; ++i) {
    ApplyRequest request = SetAll(key, {{"k" + std::to_string(i), std::to_string(i)}});
    stores[i % 3]->Apply(request, [&](Status st, ApplyResult) {
      ++done;
      if (!st.ok()) ++failed;
    });
  }
  REQUIRE(f.loop.RunUntil([&] { return done == 30; }));
  CHECK(failed == 0);
  LoadOutcome loaded = LoadSync(f.loop, *stores[0], key);
  REQUIRE(loaded.data.has_value());
  CHECK(loaded.data->size() == 30);
  for (int i = 0; i < 30; ++i) CHECK(loaded.data->count("k" + std::to_string(i)) == 1);
}

// ------------------------------------------------------------ memory only

struct FakeClock {
  MemoryTable::TimePoint now{};
  MemoryTable::Clock fn() {
    return [this] { return now; };
  }
};

TEST_CASE("memory store: max_sessions evicts the least recently used session") {
  auto table = std::make_shared<MemoryTable>(3);
  MemoryStore store(table);
  TestLoop loop;
  const StoreKey k1 = RandomKey(), k2 = RandomKey(), k3 = RandomKey(), k4 = RandomKey();
  for (const StoreKey& k : {k1, k2, k3}) REQUIRE(ApplySync(loop, store, SetAll(k, {{"a", "1"}})).status.ok());
  REQUIRE(LoadSync(loop, store, k1).data.has_value());  // k1 is now more recent than k2
  REQUIRE(ApplySync(loop, store, SetAll(k4, {{"a", "1"}})).status.ok());
  CHECK(table->size() == 3);
  CHECK_FALSE(LoadSync(loop, store, k2).data.has_value());
  CHECK(LoadSync(loop, store, k1).data.has_value());
  CHECK(LoadSync(loop, store, k3).data.has_value());
  CHECK(LoadSync(loop, store, k4).data.has_value());
}

TEST_CASE("memory store: expired sessions are absent on load and removed by the sweep") {
  FakeClock clock;
  auto table = std::make_shared<MemoryTable>(100, clock.fn());
  MemoryStore store(table);
  TestLoop loop;
  const StoreKey short_lived = RandomKey(), long_lived = RandomKey(), unread = RandomKey();
  ApplyRequest request = SetAll(short_lived, {{"a", "1"}});
  request.ttl = 10s;
  REQUIRE(ApplySync(loop, store, request).status.ok());
  request.key = unread;
  REQUIRE(ApplySync(loop, store, request).status.ok());
  request.key = long_lived;
  request.ttl = 60s;
  REQUIRE(ApplySync(loop, store, request).status.ok());

  clock.now += 9999ms;
  CHECK(LoadSync(loop, store, short_lived).data.has_value());
  clock.now += 1ms;
  CHECK_FALSE(LoadSync(loop, store, short_lived).data.has_value());
  CHECK(table->size() == 2);  // the load dropped it; `unread` is still held
  SUBCASE("directly") { CHECK(table->SweepExpired() == 1); }
  SUBCASE("through the SessionStore interface") { static_cast<SessionStore&>(store).SweepExpired(); }
  CHECK(table->size() == 1);
  CHECK(LoadSync(loop, store, long_lived).data.has_value());
}

TEST_CASE("memory store: threads with their own stores sharing one table lose no keys") {
  auto table = std::make_shared<MemoryTable>(1000);
  const StoreKey key = RandomKey();
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      MemoryStore store(table);  // one per worker, as in sessiond
      for (int i = 0; i < 25; ++i) {
        ApplyRequest request = SetAll(key, {{std::to_string(t) + "." + std::to_string(i), "1"}});
        store.Apply(request, [&](Status st, ApplyResult) {
          if (!st.ok()) ++failed;
        });
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(failed == 0);
  std::optional<SessionData> data = table->Load(key);
  REQUIRE(data.has_value());
  CHECK(data->size() == 100);
}


// Regression: a write that raced a Destroy (or Regenerate) of the same session
// brought the destroyed session back, undoing a logout.
STORE_TEST("must_exist: a change to a session that is gone writes nothing") {
  F f;
  auto store = f.NewStore();
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(f.loop, *store, SetAll(key, {{"a", "1"}})).status.ok());
  ApplyRequest destroy = MakeRequest(key);
  destroy.clear = true;
  REQUIRE(ApplySync(f.loop, *store, destroy).status.ok());

  ApplyRequest late = SetAll(key, {{"late", "1"}});
  late.must_exist = true;
  ApplyOutcome out = ApplySync(f.loop, *store, late);
  REQUIRE(out.status.ok());
  CHECK_FALSE(out.result.exists);
  CHECK_FALSE(LoadSync(f.loop, *store, key).data.has_value());

  SUBCASE("and a re-key of a gone session creates nothing either") {
    ApplyRequest rekey = MakeRequest(key);
    rekey.must_exist = true;
    const StoreKey target = RandomKey();
    rekey.new_key = target;
    ApplyOutcome moved = ApplySync(f.loop, *store, rekey);
    REQUIRE(moved.status.ok());
    CHECK_FALSE(moved.result.exists);
    CHECK_FALSE(LoadSync(f.loop, *store, target).data.has_value());
  }
}

STORE_TEST("must_exist: a change to a live session applies as usual") {
  F f;
  auto store = f.NewStore();
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(f.loop, *store, SetAll(key, {{"a", "1"}})).status.ok());
  ApplyRequest write = SetAll(key, {{"b", "2"}});
  write.must_exist = true;
  ApplyOutcome out = ApplySync(f.loop, *store, write);
  REQUIRE(out.status.ok());
  CHECK(out.result.exists);
  CHECK(LoadSync(f.loop, *store, key).data == SessionData{{"a", "1"}, {"b", "2"}});
}


// ------------------------------------------------------------ subjects

int64_t NowSeconds() { return static_cast<int64_t>(time(nullptr)); }

// A session write of `user` with metadata, indexed by "user_id".
ApplyRequest LoginAs(const StoreKey& key, const std::string& user, int64_t created,
                     const std::string& public_id) {
  ApplyRequest request = SetAll(key, {{"user_id", "\"" + user + "\""}, {"cart", "[1]"}});
  request.subject_key = "user_id";
  SessionMeta meta;
  meta.created_at = created;
  meta.refreshed_at = created;
  meta.expires_at = created + 60;
  meta.public_id = public_id;
  meta.client = "203.0.113.7";
  meta.user_agent = "Test/1.0";
  request.meta = meta;
  return request;
}

std::vector<SessionListing> ListSync(TestLoop& loop, SessionStore& store, const std::string& subject) {
  std::optional<std::vector<SessionListing>> out;
  store.ListSubject(subject, [&](Status st, std::vector<SessionListing> l) {
    REQUIRE(st.ok());
    out = std::move(l);
  });
  REQUIRE(loop.RunUntil([&] { return out.has_value(); }));
  return *out;
}

std::vector<RevokedSession> RevokeSubjectSync(TestLoop& loop, SessionStore& store, const std::string& subject) {
  std::optional<std::vector<RevokedSession>> out;
  store.RevokeSubject(subject, [&](Status st, std::vector<RevokedSession> r) {
    REQUIRE(st.ok());
    out = std::move(r);
  });
  REQUIRE(loop.RunUntil([&] { return out.has_value(); }));
  return *out;
}

std::vector<RevokedSession> RevokePublicIdSync(TestLoop& loop, SessionStore& store, const std::string& pid) {
  std::optional<std::vector<RevokedSession>> out;
  store.RevokePublicId(pid, [&](Status st, std::vector<RevokedSession> r) {
    REQUIRE(st.ok());
    out = std::move(r);
  });
  REQUIRE(loop.RunUntil([&] { return out.has_value(); }));
  return *out;
}

std::vector<StoreKey> Keys(const std::vector<SessionListing>& listing) {
  std::vector<StoreKey> keys;
  for (const SessionListing& l : listing) keys.push_back(l.key);
  return keys;
}

// Public ids unique to each test (`tag`): the redis and http suites share
// one server across tests.
std::string Pid(const std::string& tag, int i) {
  std::string p = "p" + tag + "x" + std::to_string(i);
  p.resize(22, 'x');
  return p;
}

SUBJECT_TEST("a session is indexed under its subject and listed with its metadata, oldest first") {
  F f;
  const std::string tag = RandomKey().substr(0, 8);
  auto store = f.NewStore();
  REQUIRE(store->supports_subjects());
  const std::string user = "ada-" + RandomKey().substr(0, 8);
  const StoreKey k1 = RandomKey(), k2 = RandomKey(), other = RandomKey();
  const int64_t t = NowSeconds();
  ApplyOutcome first = ApplySync(f.loop, *store, LoginAs(k1, user, t - 100, Pid(tag, 1)));
  REQUIRE(first.status.ok());
  CHECK(first.result.meta.subject == user);
  REQUIRE(ApplySync(f.loop, *store, LoginAs(k2, user, t - 50, Pid(tag, 2))).status.ok());
  REQUIRE(ApplySync(f.loop, *store, LoginAs(other, user + "-not", t, Pid(tag, 3))).status.ok());
  std::vector<SessionListing> listing = ListSync(f.loop, *store, user);
  REQUIRE(listing.size() == 2);
  CHECK(Keys(listing) == std::vector<StoreKey>{k1, k2});
  CHECK(listing[0].meta.public_id == Pid(tag, 1));
  CHECK(listing[0].meta.created_at == t - 100);
  CHECK(listing[0].meta.client == "203.0.113.7");
  CHECK(listing[0].meta.user_agent == "Test/1.0");
  // Load reports the metadata too (one round trip).
  std::optional<StoredSession> loaded;
  store->LoadSession(k2, [&](Status st, std::optional<StoredSession> s) {
    REQUIRE(st.ok());
    loaded = std::move(s);
  });
  REQUIRE(f.loop.RunUntil([&] { return loaded.has_value(); }));
  CHECK(loaded->meta.created_at == t - 50);
  CHECK(loaded->meta.public_id == Pid(tag, 2));
  CHECK(loaded->data.at("user_id") == "\"" + user + "\"");
  // A second store over the same backend sees the same index.
  auto again = f.NewStore();
  CHECK(Keys(ListSync(f.loop, *again, user)) == std::vector<StoreKey>{k1, k2});
}

SUBJECT_TEST("the index follows Set, Delete, Destroy and re-key") {
  F f;
  const std::string tag = RandomKey().substr(0, 8);
  auto store = f.NewStore();
  const std::string a = "a-" + RandomKey().substr(0, 8), b = "b-" + RandomKey().substr(0, 8);
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(f.loop, *store, LoginAs(key, a, NowSeconds(), Pid(tag, 1))).status.ok());
  CHECK(Keys(ListSync(f.loop, *store, a)) == std::vector<StoreKey>{key});

  // Set moves it to another subject.
  ApplyRequest change = SetAll(key, {{"user_id", "\"" + b + "\""}});
  change.subject_key = "user_id";
  REQUIRE(ApplySync(f.loop, *store, change).status.ok());
  CHECK(ListSync(f.loop, *store, a).empty());
  CHECK(Keys(ListSync(f.loop, *store, b)) == std::vector<StoreKey>{key});

  // Re-key (Regenerate) moves the entry with it.
  const StoreKey moved = RandomKey();
  ApplyRequest rekey = MakeRequest(key);
  rekey.subject_key = "user_id";
  rekey.new_key = moved;
  rekey.must_exist = true;
  REQUIRE(ApplySync(f.loop, *store, rekey).status.ok());
  CHECK(Keys(ListSync(f.loop, *store, b)) == std::vector<StoreKey>{moved});

  // Deleting the key takes it out of the index; the session goes on.
  ApplyRequest del = MakeRequest(moved);
  del.subject_key = "user_id";
  del.deletes = {"user_id"};
  ApplyOutcome out = ApplySync(f.loop, *store, del);
  REQUIRE(out.status.ok());
  CHECK(out.result.exists);
  CHECK(out.result.meta.subject.empty());
  CHECK(ListSync(f.loop, *store, b).empty());

  // Destroy of an indexed session empties its subject.
  REQUIRE(ApplySync(f.loop, *store, LoginAs(moved, a, NowSeconds(), Pid(tag, 2))).status.ok());
  CHECK(ListSync(f.loop, *store, a).size() == 1);
  ApplyRequest destroy = MakeRequest(moved);
  destroy.subject_key = "user_id";
  destroy.clear = true;
  REQUIRE(ApplySync(f.loop, *store, destroy).status.ok());
  CHECK(ListSync(f.loop, *store, a).empty());
  CHECK(RevokePublicIdSync(f.loop, *store, Pid(tag, 2)).empty());
}

SUBJECT_TEST("revoke others keeps this session; revoke all ends it too") {
  F f;
  const std::string tag = RandomKey().substr(0, 8);
  auto store = f.NewStore();
  const std::string user = "u-" + RandomKey().substr(0, 8);
  const StoreKey k1 = RandomKey(), k2 = RandomKey(), k3 = RandomKey();
  const int64_t t = NowSeconds();
  for (auto [k, i] : {std::pair{k1, 1}, std::pair{k2, 2}, std::pair{k3, 3}}) {
    REQUIRE(ApplySync(f.loop, *store, LoginAs(k, user, t - 10 + i, Pid(tag, i))).status.ok());
  }
  ApplyRequest others = SetAll(k3, {{"pw_changed", "true"}});
  others.subject_key = "user_id";
  others.must_exist = true;
  others.revoke = RevokeScope::kOthers;
  ApplyOutcome out = ApplySync(f.loop, *store, others);
  REQUIRE(out.status.ok());
  CHECK(out.result.exists);
  REQUIRE(out.result.revoked.size() == 2);
  std::vector<std::string> pids = {out.result.revoked[0].public_id, out.result.revoked[1].public_id};
  std::sort(pids.begin(), pids.end());
  CHECK(pids == std::vector<std::string>{Pid(tag, 1), Pid(tag, 2)});
  CHECK_FALSE(LoadSync(f.loop, *store, k1).data.has_value());
  CHECK_FALSE(LoadSync(f.loop, *store, k2).data.has_value());
  CHECK(LoadSync(f.loop, *store, k3).data.has_value());
  CHECK(Keys(ListSync(f.loop, *store, user)) == std::vector<StoreKey>{k3});

  REQUIRE(ApplySync(f.loop, *store, LoginAs(k1, user, t, Pid(tag, 4))).status.ok());
  ApplyRequest all = MakeRequest(k3);
  all.subject_key = "user_id";
  all.must_exist = true;
  all.revoke = RevokeScope::kAll;
  ApplyOutcome gone = ApplySync(f.loop, *store, all);
  REQUIRE(gone.status.ok());
  CHECK_FALSE(gone.result.exists);
  CHECK(gone.result.revoked.size() == 1);  // k1; this session is reported through exists
  CHECK_FALSE(LoadSync(f.loop, *store, k3).data.has_value());
  CHECK(ListSync(f.loop, *store, user).empty());
}

SUBJECT_TEST("max_per_subject revokes the oldest sessions beyond the limit when one joins") {
  F f;
  const std::string tag = RandomKey().substr(0, 8);
  auto store = f.NewStore();
  const std::string user = "m-" + RandomKey().substr(0, 8);
  std::vector<StoreKey> keys;
  const int64_t t = NowSeconds();
  for (int i = 0; i < 4; ++i) {
    keys.push_back(RandomKey());
    ApplyRequest login = LoginAs(keys.back(), user, t - 100 + i, Pid(tag, i));
    login.max_per_subject = 2;
    ApplyOutcome out = ApplySync(f.loop, *store, login);
    REQUIRE(out.status.ok());
    CHECK(out.result.revoked.size() == (i < 2 ? 0u : 1u));
  }
  CHECK(Keys(ListSync(f.loop, *store, user)) == std::vector<StoreKey>{keys[2], keys[3]});
  CHECK_FALSE(LoadSync(f.loop, *store, keys[0]).data.has_value());
  // A write to a session already in the subject revokes nothing.
  ApplyRequest write = SetAll(keys[2], {{"x", "1"}});
  write.subject_key = "user_id";
  write.max_per_subject = 1;
  ApplyOutcome out = ApplySync(f.loop, *store, write);
  REQUIRE(out.status.ok());
  CHECK(out.result.revoked.empty());
}

SUBJECT_TEST("RevokeSubject and RevokePublicId end indexed sessions and report them") {
  F f;
  const std::string tag = RandomKey().substr(0, 8);
  auto store = f.NewStore();
  const std::string user = "r-" + RandomKey().substr(0, 8);
  const StoreKey k1 = RandomKey(), k2 = RandomKey(), k3 = RandomKey();
  const std::string p1 = Pid(tag, 100 + std::rand() % 1000), p2 = Pid(tag, 2000 + std::rand() % 1000);
  REQUIRE(ApplySync(f.loop, *store, LoginAs(k1, user, NowSeconds(), p1)).status.ok());
  REQUIRE(ApplySync(f.loop, *store, LoginAs(k2, user, NowSeconds(), p2)).status.ok());
  REQUIRE(ApplySync(f.loop, *store, LoginAs(k3, user + "x", NowSeconds(), Pid(tag, 7))).status.ok());
  std::vector<RevokedSession> one = RevokePublicIdSync(f.loop, *store, p1);
  REQUIRE(one.size() == 1);
  CHECK(one[0].key == k1);
  CHECK_FALSE(LoadSync(f.loop, *store, k1).data.has_value());
  CHECK(RevokePublicIdSync(f.loop, *store, p1).empty());
  std::vector<RevokedSession> rest = RevokeSubjectSync(f.loop, *store, user);
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].key == k2);
  CHECK(ListSync(f.loop, *store, user).empty());
  CHECK(LoadSync(f.loop, *store, k3).data.has_value());  // another subject is untouched
}

SUBJECT_TEST("an expired session leaves its subject's listing") {
  F f;
  const std::string tag = RandomKey().substr(0, 8);
  auto store = f.NewStore();
  const std::string user = "e-" + RandomKey().substr(0, 8);
  const StoreKey short_lived = RandomKey(), long_lived = RandomKey();
  ApplyRequest brief = LoginAs(short_lived, user, NowSeconds(), Pid(tag, 1));
  brief.ttl = 300ms;
  REQUIRE(ApplySync(f.loop, *store, brief).status.ok());
  REQUIRE(ApplySync(f.loop, *store, LoginAs(long_lived, user, NowSeconds(), Pid(tag, 2))).status.ok());
  CHECK(ListSync(f.loop, *store, user).size() == 2);
  f.loop.RunFor(500ms);
  CHECK(Keys(ListSync(f.loop, *store, user)) == std::vector<StoreKey>{long_lived});
  // The limit counts only live sessions.
  ApplyRequest third = LoginAs(RandomKey(), user, NowSeconds(), Pid(tag, 3));
  third.max_per_subject = 2;
  ApplyOutcome out = ApplySync(f.loop, *store, third);
  REQUIRE(out.status.ok());
  CHECK(out.result.revoked.empty());
}

SUBJECT_TEST("a revocation racing a write, a Regenerate and another revocation brings nothing back") {
  F f;
  const std::string tag = RandomKey().substr(0, 8);
  std::vector<std::unique_ptr<SessionStore>> stores;
  for (int i = 0; i < 3; ++i) stores.push_back(f.NewStore());
  const std::string user = "x-" + RandomKey().substr(0, 8);
  const StoreKey a = RandomKey(), b = RandomKey(), c = RandomKey(), c_moved = RandomKey();
  const int64_t t = NowSeconds();
  REQUIRE(ApplySync(f.loop, *stores[0], LoginAs(a, user, t - 3, Pid(tag, 1))).status.ok());
  REQUIRE(ApplySync(f.loop, *stores[0], LoginAs(b, user, t - 2, Pid(tag, 2))).status.ok());
  REQUIRE(ApplySync(f.loop, *stores[0], LoginAs(c, user, t - 1, Pid(tag, 3))).status.ok());

  // All at once: a revokes its others; b writes; c is regenerated; then b
  // revokes its others too.
  int done = 0;
  ApplyRequest revoke_a = MakeRequest(a);
  revoke_a.subject_key = "user_id";
  revoke_a.must_exist = true;
  revoke_a.revoke = RevokeScope::kOthers;
  ApplyRequest write_b = SetAll(b, {{"late", "1"}});
  write_b.subject_key = "user_id";
  write_b.must_exist = true;
  ApplyRequest regen_c = MakeRequest(c);
  regen_c.subject_key = "user_id";
  regen_c.must_exist = true;
  regen_c.new_key = c_moved;
  ApplyRequest revoke_b = MakeRequest(b);
  revoke_b.subject_key = "user_id";
  revoke_b.must_exist = true;
  revoke_b.revoke = RevokeScope::kOthers;
  auto count = [&](Status st, ApplyResult) {
    CHECK(st.ok());
    ++done;
  };
  stores[0]->Apply(revoke_a, count);
  stores[1]->Apply(write_b, count);
  stores[2]->Apply(regen_c, count);
  stores[1]->Apply(revoke_b, count);
  REQUIRE(f.loop.RunUntil([&] { return done == 4; }));

  // Whatever the order, at most one session of the subject is left, and the
  // listing is exactly what exists. On a cluster the index is updated after
  // the session's own step (docs/CONFIGURATION.md, redis.cluster, and
  // redis_store.h): a revocation may miss the session a Regenerate was
  // moving at that moment, and only that one.
  constexpr bool kAtomic = !std::is_same_v<F, RedisClusterFixture>;
  std::vector<StoreKey> alive;
  for (const StoreKey& k : {a, b, c, c_moved}) {
    if (LoadSync(f.loop, *stores[0], k).data.has_value()) alive.push_back(k);
  }
  if (kAtomic || std::find(alive.begin(), alive.end(), c_moved) == alive.end()) {
    CHECK(alive.size() <= 1);
  } else {
    CHECK(alive.size() <= 2);
  }
  std::vector<StoreKey> listed = Keys(ListSync(f.loop, *stores[0], user));
  std::sort(listed.begin(), listed.end());
  std::sort(alive.begin(), alive.end());
  CHECK(listed == alive);
  CHECK_FALSE(LoadSync(f.loop, *stores[0], c).data.has_value());  // the old id never comes back
}

SUBJECT_TEST("8 concurrent writers to one session: every acknowledged write is kept") {
  F f;
  const std::string tag = RandomKey().substr(0, 8);
  std::vector<std::unique_ptr<SessionStore>> stores;
  for (int i = 0; i < 8; ++i) stores.push_back(f.NewStore());
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(f.loop, *stores[0], SetAll(key, {{"start", "0"}})).status.ok());
  constexpr int kRounds = 6;
  int done = 0;
  std::vector<std::string> kept, failures;
  // Each writer sends its next write as soon as the last one is answered:
  // eight writes in flight on one session all the time.
  std::function<void(int, int)> write = [&](int w, int round) {
    const std::string name = "w" + std::to_string(w) + "r" + std::to_string(round);
    ApplyRequest request = SetAll(key, {{name, std::to_string(round)}});
    request.must_exist = true;
    stores[w]->Apply(request, [&, w, round, name](Status st, ApplyResult r) {
      ++done;
      if (st.ok() && r.exists) kept.push_back(name);
      if (!st.ok()) failures.push_back(st.ToString());
      if (round + 1 < kRounds) write(w, round + 1);
    });
  };
  for (int w = 0; w < 8; ++w) write(w, 0);
  REQUIRE(f.loop.RunUntil([&] { return done == 8 * kRounds; }, 60s));
  CAPTURE(failures.empty() ? std::string() : failures.front());
  CHECK(kept.size() == 8 * kRounds);
  LoadOutcome loaded = LoadSync(f.loop, *stores[0], key);
  REQUIRE(loaded.data.has_value());
  for (const std::string& name : kept) CHECK(loaded.data->count(name) == 1);
  CHECK(loaded.data->size() == kept.size() + 1);
}
}  // namespace
}  // namespace testing
}  // namespace sessiond

namespace sessiond {
namespace testing {
namespace {

// docs/STORE-PROTOCOL.md, Round trips: the cookie read path costs one call.
TEST_CASE("http store: a load is one round trip, and the write after it in the same exchange one more") {
  TestLoop loop;
  HttpStore store(SharedHttpStore().Config(), loop.base());
  const StoreKey key = RandomKey();
  REQUIRE(ApplySync(loop, store, SetAll(key, {{"a", "1"}})).status.ok());
  const uint64_t before = store.calls();
  REQUIRE(LoadSync(loop, store, key).data.has_value());
  CHECK(store.calls() == before + 1);
  std::optional<StoredSession> loaded;
  store.LoadSession(key, [&](Status st, std::optional<StoredSession> s) {
    REQUIRE(st.ok());
    loaded = std::move(s);
  });
  REQUIRE(loop.RunUntil([&] { return loaded.has_value(); }));
  CHECK(store.calls() == before + 2);
  SessionMeta meta;
  meta.refreshed_at = 5;
  std::optional<Status> touched;
  store.TouchSession(key, 60s, meta, [&](Status st) { touched = st; });
  REQUIRE(loop.RunUntil([&] { return touched.has_value(); }));
  CHECK(touched->ok());
  CHECK(store.calls() == before + 3);  // the conditional PUT alone: the load's version was cached
}

TEST_CASE("http store: a service that is not there fails every call with Unavailable") {
  TestLoop loop;
  HttpStoreConfig config = SharedHttpStore().Config(300ms);
  auto* sin = reinterpret_cast<sockaddr_in*>(&config.address.storage);
  sin->sin_port = htons(1);  // nothing listens on port 1
  HttpStore store(config, loop.base());
  LoadOutcome out = LoadSync(loop, store, RandomKey());
  CHECK(out.status.code() == Status::Code::kUnavailable);
  CHECK_FALSE(PingSync(loop, store).ok());
}

TEST_CASE("http store: the wrong token is an outage, not an empty store") {
  TestLoop loop;
  HttpStoreConfig config = SharedHttpStore().Config();
  config.token = "wrong-token";
  HttpStore store(config, loop.base());
  LoadOutcome out = LoadSync(loop, store, RandomKey());
  CHECK(out.status.code() == Status::Code::kUnavailable);
  CHECK(out.status.message().find("401") != std::string::npos);
  CHECK(out.status.message().find("wrong-token") == std::string::npos);
}

}  // namespace
}  // namespace testing
}  // namespace sessiond
