// The SessionStore interface contract, one suite run against every store:
// MemoryStore, FileStore (in a temporary directory) and RedisStore (against a
// real redis-server). Memory-specific behaviour (LRU, expiry sweep, threads
// sharing one table) is at the end; file and redis specifics have their own
// files.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "store/file_store.h"
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
                     RedisSentinelFixture, RedisTlsFixture)

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

}  // namespace
}  // namespace testing
}  // namespace sessiond
