// The redis store's routers against scripted nodes (redis_fake_node.h) and
// real servers: cluster redirect edge cases (loops, malformed redirects, ASK
// without a map change, MOVED with one, TRYAGAIN/CLUSTERDOWN retries,
// connections lost mid-redirect, a hung node) and the Sentinel client rules
// (sentinels asked in turn, ROLE checked, +switch-master, READONLY).
#include <doctest/doctest.h>

#include <atomic>

#include "redis_fake_node.h"
#include "store/redis_store.h"
#include "store_test_util.h"

namespace sessiond {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;
using Fake = FakeRedisNode;

std::chrono::milliseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// What every fake node answers the same way; "" for the rest.
std::string Handshake(const std::vector<std::string>& argv) {
  if (argv.empty()) return "-ERR empty\r\n";
  if (argv[0] == "PING") return "+PONG\r\n";
  if (argv[0] == "AUTH" || argv[0] == "SELECT" || argv[0] == "ASKING") return "+OK\r\n";
  return "";
}

RedisConfig ClusterOn(int port, std::chrono::milliseconds timeout = 500ms) {
  RedisConfig config;
  config.timeout = timeout;
  config.key_prefix = "t:";
  config.cluster = RedisClusterConfig{{RedisNodeAddress{"127.0.0.1", static_cast<uint16_t>(port)}}};
  return config;
}

std::string Moved(const std::vector<std::string>& argv, int port, const char* kind = "MOVED") {
  const std::string key = argv.size() > 1 ? argv[1] : "";
  return std::string("-") + kind + " " + std::to_string(KeySlot(key)) + " 127.0.0.1:" + std::to_string(port) + "\r\n";
}

TEST_CASE("redis cluster: a MOVED loop ends after the attempt budget with a clear failure") {
  std::atomic<int> port_a{0}, port_b{0};
  Fake a([&](const std::vector<std::string>& argv) {
    std::string h = Handshake(argv);
    if (!h.empty()) return h;
    if (argv[0] == "CLUSTER") return Fake::AllSlotsOn(port_a);
    return Moved(argv, port_b);
  });
  Fake b([&](const std::vector<std::string>& argv) {
    std::string h = Handshake(argv);
    if (!h.empty()) return h;
    if (argv[0] == "CLUSTER") return Fake::AllSlotsOn(port_a);
    return Moved(argv, port_a);
  });
  port_a = a.port();
  port_b = b.port();
  Fake& seed = a;
  TestLoop loop;
  RedisStore store(ClusterOn(seed.port()), loop.base());
  const auto start = Clock::now();
  LoadOutcome out = LoadSync(loop, store, RandomKey());
  CHECK(out.status.code() == Status::Code::kUnavailable);
  CHECK(out.status.message().find("gave up after") != std::string::npos);
  CHECK(out.status.message().find("MOVED") != std::string::npos);
  CHECK(a.count("HGETALL") + b.count("HGETALL") == RedisRouter::kMaxAttempts);
  CHECK(Since(start) < 2000ms);
}

TEST_CASE("redis cluster: a malformed redirect fails the command, naming the node and the reply") {
  Fake node([&](const std::vector<std::string>& argv) {
    std::string h = Handshake(argv);
    if (!h.empty()) return h;
    if (argv[0] == "CLUSTER") return Fake::AllSlotsOn(node.port());
    return std::string("-MOVED banana\r\n");
  });
  TestLoop loop;
  RedisStore store(ClusterOn(node.port()), loop.base());
  LoadOutcome out = LoadSync(loop, store, RandomKey());
  CHECK(out.status.code() == Status::Code::kUnavailable);
  CHECK(out.status.message().find("bad redirect from 127.0.0.1:" + std::to_string(node.port())) != std::string::npos);
  CHECK(out.status.message().find("MOVED banana") != std::string::npos);
  CHECK(node.count("HGETALL") == 1);
}

TEST_CASE("redis cluster: ASK sends ASKING and the command to the node named, and leaves the map alone") {
  Fake target([&](const std::vector<std::string>& argv) {
    std::string h = Handshake(argv);
    if (!h.empty()) return h;
    return std::string("*0\r\n");  // HGETALL: no such session
  });
  std::atomic<int> asks{0};
  Fake owner([&](const std::vector<std::string>& argv) {
    std::string h = Handshake(argv);
    if (!h.empty()) return h;
    if (argv[0] == "CLUSTER") return Fake::AllSlotsOn(owner.port());
    if (asks++ == 0) return Moved(argv, target.port(), "ASK");
    return std::string("*0\r\n");
  });
  TestLoop loop;
  RedisStore store(ClusterOn(owner.port()), loop.base());
  const StoreKey key = RandomKey();
  LoadOutcome out = LoadSync(loop, store, key);
  REQUIRE(out.status.ok());
  CHECK_FALSE(out.data.has_value());
  const auto sent = target.commands();
  REQUIRE(sent.size() >= 2);
  CHECK(sent[sent.size() - 2] == std::vector<std::string>{"ASKING"});
  CHECK(sent.back() == std::vector<std::string>{"HGETALL", "t:{" + key + "}"});
  // The next command for that slot goes to the owner again.
  REQUIRE(LoadSync(loop, store, key).status.ok());
  CHECK(owner.count("HGETALL") == 2);
  CHECK(target.count("HGETALL") == 1);
}

TEST_CASE("redis cluster: MOVED re-routes the slot at once and the next command goes straight there") {
  std::atomic<bool> moved{false};
  Fake newer([&](const std::vector<std::string>& argv) {
    std::string h = Handshake(argv);
    if (!h.empty()) return h;
    if (argv[0] == "CLUSTER") return Fake::AllSlotsOn(newer.port());
    return std::string("*0\r\n");
  });
  Fake older([&](const std::vector<std::string>& argv) {
    std::string h = Handshake(argv);
    if (!h.empty()) return h;
    if (argv[0] == "CLUSTER") return Fake::AllSlotsOn(moved ? newer.port() : older.port());
    moved = true;
    return Moved(argv, newer.port());
  });
  TestLoop loop;
  RedisMetrics metrics;
  RedisStore store(ClusterOn(older.port()), loop.base(), &metrics);
  const StoreKey key = RandomKey();
  REQUIRE(LoadSync(loop, store, key).status.ok());
  REQUIRE(LoadSync(loop, store, key).status.ok());
  CHECK(older.count("HGETALL") == 1);
  CHECK(newer.count("HGETALL") == 2);
  CHECK(metrics.redirects_moved.load() == 1);
  CHECK(metrics.slot_map_refreshes.load() >= 1);
}

TEST_CASE("redis cluster: TRYAGAIN and CLUSTERDOWN are retried within the budget") {
  std::atomic<int> calls{0};
  Fake node([&](const std::vector<std::string>& argv) {
    std::string h = Handshake(argv);
    if (!h.empty()) return h;
    if (argv[0] == "CLUSTER") return Fake::AllSlotsOn(node.port());
    switch (calls++) {
      case 0: return std::string("-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
      case 1: return std::string("-CLUSTERDOWN The cluster is down\r\n");
      default: return std::string("*0\r\n");
    }
  });
  TestLoop loop;
  RedisMetrics metrics;
  RedisStore store(ClusterOn(node.port()), loop.base(), &metrics);
  LoadOutcome out = LoadSync(loop, store, RandomKey());
  CHECK(out.status.ok());
  CHECK(node.count("HGETALL") == 3);
  CHECK(metrics.retries_tryagain.load() == 1);
  CHECK(metrics.retries_clusterdown.load() == 1);

  SUBCASE("but not forever") {
    Fake down([&](const std::vector<std::string>& argv) {
      std::string h = Handshake(argv);
      if (!h.empty()) return h;
      if (argv[0] == "CLUSTER") return Fake::AllSlotsOn(down.port());
      return std::string("-CLUSTERDOWN The cluster is down\r\n");
    });
    RedisStore stuck(ClusterOn(down.port()), loop.base());
    const auto start = Clock::now();
    LoadOutcome failed = LoadSync(loop, stuck, RandomKey());
    CHECK(failed.status.code() == Status::Code::kUnavailable);
    CHECK(failed.status.message().find("CLUSTERDOWN") != std::string::npos);
    CHECK(Since(start) < 1500ms);
  }
}

TEST_CASE("redis cluster: a connection lost mid-redirect: a read is sent again, and fails when it keeps failing") {
  std::atomic<int> drops{1};
  Fake target([&](const std::vector<std::string>& argv) {
    std::string h = Handshake(argv);
    if (!h.empty()) return h;
    if (argv[0] == "CLUSTER") return Fake::AllSlotsOn(target.port());
    if (drops > 0) {
      --drops;
      return Fake::kClose;
    }
    return std::string("*0\r\n");
  });
  Fake owner([&](const std::vector<std::string>& argv) {
    std::string h = Handshake(argv);
    if (!h.empty()) return h;
    if (argv[0] == "CLUSTER") return Fake::AllSlotsOn(owner.port());
    return Moved(argv, target.port());
  });
  TestLoop loop;
  RedisStore store(ClusterOn(owner.port()), loop.base());
  LoadOutcome out = LoadSync(loop, store, RandomKey());
  CHECK(out.status.ok());
  CHECK(target.count("HGETALL") == 2);

  SUBCASE("always dropped") {
    drops = 1000;
    LoadOutcome failed = LoadSync(loop, store, RandomKey());
    CHECK(failed.status.code() == Status::Code::kUnavailable);
    CHECK(failed.status.message().find("127.0.0.1:" + std::to_string(target.port())) != std::string::npos);
  }
}

TEST_CASE("redis cluster: a hung node fails the command with Timeout once, within redis.timeout") {
  Fake node([&](const std::vector<std::string>& argv) {
    std::string h = Handshake(argv);
    if (!h.empty()) return h;
    if (argv[0] == "CLUSTER") return Fake::AllSlotsOn(node.port());
    return Fake::kSilence;
  });
  TestLoop loop;
  RedisStore store(ClusterOn(node.port(), 300ms), loop.base());
  REQUIRE(PingSync(loop, store).ok());
  const auto start = Clock::now();
  LoadOutcome out = LoadSync(loop, store, RandomKey());
  CHECK(out.status.code() == Status::Code::kTimeout);
  CHECK(Since(start) < 900ms);
  CHECK(node.count("HGETALL") == 1);
}

TEST_CASE("redis cluster: no seed answers: calls fail, and the slot map is loaded once one does") {
  TestLoop loop;
  RedisConfig config = ClusterOn(1);  // port 1: refused
  config.cluster->seeds.push_back(RedisNodeAddress{"127.0.0.1", 2});
  RedisStore store(config, loop.base());
  LoadOutcome out = LoadSync(loop, store, RandomKey());
  CHECK(out.status.code() == Status::Code::kUnavailable);
  CHECK_FALSE(store.ready());
}

// ------------------------------------------------------------ sentinel

// A fake sentinel naming `*master` (a port on 127.0.0.1), or nil when 0.
struct FakeSentinel {
  std::atomic<int> master{0};
  std::atomic<bool> knows{true};
  Fake node{[this](const std::vector<std::string>& argv) {
    std::string h = Handshake(argv);
    if (!h.empty()) return h;
    if (argv[0] == "SENTINEL") {
      if (!knows || master == 0) return std::string("*-1\r\n");
      return Fake::Array({Fake::Bulk("127.0.0.1"), Fake::Bulk(std::to_string(master.load()))});
    }
    if (argv[0] == "SUBSCRIBE") return Fake::Array({Fake::Bulk("subscribe"), Fake::Bulk(argv[1]), ":1\r\n"});
    return std::string("-ERR unknown command\r\n");
  }};
  void Switch(const std::string& name, int from, int to) {
    master = to;
    node.Push(Fake::Array({Fake::Bulk("message"), Fake::Bulk("+switch-master"),
                           Fake::Bulk(name + " 127.0.0.1 " + std::to_string(from) + " 127.0.0.1 " +
                                      std::to_string(to))}));
  }
};

RedisConfig SentinelsAt(const std::vector<int>& ports, const std::string& name = "m") {
  RedisConfig config;
  config.timeout = 500ms;
  config.key_prefix = "t:";
  RedisSentinelConfig s;
  s.master_name = name;
  for (int p : ports) s.addresses.push_back(RedisNodeAddress{"127.0.0.1", static_cast<uint16_t>(p)});
  config.sentinel = s;
  return config;
}

bool KeyExists(RedisServer& server, const std::string& key) {
  auto c = server.Connect();
  auto* r = static_cast<redisReply*>(redisCommand(c.get(), "EXISTS %s", key.c_str()));
  const bool exists = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  if (r) freeReplyObject(r);
  return exists;
}

TEST_CASE("redis sentinel: sentinels are asked in turn, and the one that answered is asked first afterwards") {
  RedisServer& master = SharedRedis();
  FakeSentinel unaware;  // does not know the master
  unaware.knows = false;
  FakeSentinel good;
  good.master = master.port();
  TestLoop loop;
  RedisStore store(SentinelsAt({1, unaware.node.port(), good.node.port()}), loop.base());  // port 1: refused
  const StoreKey key = RandomKey();
  ApplyRequest write = MakeRequest(key);
  write.sets["a"] = "1";
  REQUIRE(ApplySync(loop, store, write).status.ok());
  CHECK(KeyExists(master, "t:" + key));
  CHECK(unaware.node.count("SENTINEL") == 1);
  // The subscription goes to the first sentinel, which is now the good one.
  CHECK(loop.RunUntil([&] { return good.node.count("SUBSCRIBE") == 1; }));
  CHECK(unaware.node.count("SUBSCRIBE") == 0);
}

TEST_CASE("redis sentinel: a named node that is not a master is refused until the sentinels name the master") {
  RedisServer& master = SharedRedis();
  auto replica = RedisServer::Start({"--replicaof", "127.0.0.1", std::to_string(master.port())});
  REQUIRE(replica);
  FakeSentinel sentinel;
  sentinel.master = replica->port();
  TestLoop loop;
  RedisStore store(SentinelsAt({sentinel.node.port()}), loop.base());
  const Status refused = PingSync(loop, store);
  CHECK(refused.code() == Status::Code::kUnavailable);
  CHECK(refused.message().find("is not a master") != std::string::npos);
  sentinel.master = master.port();
  CHECK(loop.RunUntil([&] { return PingSync(loop, store).ok(); }, 5000ms));
}

TEST_CASE("redis sentinel: +switch-master moves new commands to the new master") {
  RedisServer& first = SharedRedis();
  auto second = RedisServer::Start();
  REQUIRE(second);
  FakeSentinel sentinel;
  sentinel.master = first.port();
  TestLoop loop;
  RedisMetrics metrics;
  RedisStore store(SentinelsAt({sentinel.node.port()}), loop.base(), &metrics);
  REQUIRE(PingSync(loop, store).ok());
  REQUIRE(loop.RunUntil([&] { return sentinel.node.count("SUBSCRIBE") == 1; }));
  loop.RunFor(50ms);  // the subscription confirmed
  sentinel.Switch("other-master", first.port(), 1);  // not ours: ignored
  sentinel.Switch("m", first.port(), second->port());
  loop.RunFor(100ms);
  const StoreKey key = RandomKey();
  ApplyRequest write = MakeRequest(key);
  write.sets["a"] = "1";
  REQUIRE(ApplySync(loop, store, write).status.ok());
  CHECK(KeyExists(*second, "t:" + key));
  CHECK_FALSE(KeyExists(first, "t:" + key));
  CHECK(metrics.failovers.load() == 1);
}

TEST_CASE("redis sentinel: READONLY from a demoted master re-resolves and the write runs on the new master") {
  auto old_master = RedisServer::Start();
  auto new_master = RedisServer::Start();
  REQUIRE(old_master);
  REQUIRE(new_master);
  FakeSentinel sentinel;
  sentinel.master = old_master->port();
  TestLoop loop;
  RedisMetrics metrics;
  RedisStore store(SentinelsAt({sentinel.node.port()}), loop.base(), &metrics);
  REQUIRE(PingSync(loop, store).ok());
  // Demoted under us, and no announcement: only READONLY tells.
  auto c = old_master->Connect();
  auto* r = static_cast<redisReply*>(
      redisCommand(c.get(), "REPLICAOF 127.0.0.1 %d", new_master->port()));
  REQUIRE(r);
  freeReplyObject(r);
  sentinel.master = new_master->port();
  const StoreKey key = RandomKey();
  ApplyRequest write = MakeRequest(key);
  write.sets["a"] = "1";
  ApplyOutcome out = ApplySync(loop, store, write);
  REQUIRE(out.status.ok());
  CHECK(KeyExists(*new_master, "t:" + key));
  CHECK(metrics.retries_readonly.load() >= 1);
}

}  // namespace
}  // namespace testing
}  // namespace sessiond
