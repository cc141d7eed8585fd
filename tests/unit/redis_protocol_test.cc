// The redis wire pieces of store/redis_protocol.h: CRC16 key slots (checked
// against a real cluster node's CLUSTER KEYSLOT), hash tags, redirect and
// CLUSTER SLOTS parsing, the bounded reply reader, command formatting.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "store/redis_protocol.h"
#include "store_test_util.h"

namespace sessiond {
namespace testing {
namespace {

// The one reply in `resp` (which must hold exactly one).
ReplyPtr Parse(const std::string& resp) {
  RedisReplyReader reader;
  REQUIRE(reader.Feed(resp.data(), resp.size()));
  ReplyPtr r = reader.Next();
  REQUIRE(r);
  return r;
}

TEST_CASE("redis protocol: CRC16 is XMODEM, the check value of \"123456789\" is 0x31C3") {
  CHECK(Crc16("123456789") == 0x31C3);
  CHECK(Crc16("") == 0);
  CHECK(KeySlot("123456789") == (0x31C3 & 16383));
}

TEST_CASE("redis protocol: hash tags: the first {...} that is not empty decides the slot") {
  CHECK(KeySlot("{user1000}.following") == KeySlot("user1000"));
  CHECK(KeySlot("{user1000}.followers") == KeySlot("{user1000}.following"));
  CHECK(KeySlot("foo{}{bar}") == KeySlot("foo{}{bar}"));      // empty first tag: whole key
  CHECK(KeySlot("foo{}{bar}") != KeySlot("bar"));
  CHECK(KeySlot("foo{{bar}}zap") == KeySlot("{bar"));         // from the first { to the first } after it
  CHECK(KeySlot("foo{bar}{zap}") == KeySlot("bar"));
  CHECK(KeySlot("sessiond:{ab12}") == KeySlot("ab12"));
}

TEST_CASE("redis protocol: KeySlot agrees with CLUSTER KEYSLOT of a cluster node") {
  RedisServer& node = SharedRedisCluster();
  auto c = node.Connect();
  REQUIRE(c);
  std::vector<std::string> keys = {"", "a", "123456789", "{", "}", "{}", "}{", "{a}", "x{a}y", "{{a}}", "a{}b{c}",
                                   "sessiond:{0123456789abcdef}", "\xff\xfe{\x01}", std::string("nul\0key", 7)};
  for (int i = 0; i < 200; ++i) keys.push_back("sessiond:" + RandomKey());
  for (int i = 0; i < 50; ++i) keys.push_back("sessiond:{" + RandomKey() + "}");
  for (const std::string& key : keys) {
    const char* argv[] = {"CLUSTER", "KEYSLOT", key.data()};
    const size_t lens[] = {7, 7, key.size()};
    auto* reply = static_cast<redisReply*>(redisCommandArgv(c.get(), 3, argv, lens));
    REQUIRE(reply);
    REQUIRE(reply->type == REDIS_REPLY_INTEGER);
    CHECK_MESSAGE(KeySlot(key) == reply->integer, "key ", key);
    freeReplyObject(reply);
  }
}

TEST_CASE("redis protocol: MOVED and ASK redirects") {
  RedisEndpoint from;
  from.host = "10.0.0.9";
  from.port = 7000;
  std::optional<Redirect> r = ParseRedirect(Parse("-MOVED 3999 127.0.0.1:6381\r\n").get(), from);
  REQUIRE(r);
  CHECK_FALSE(r->ask);
  CHECK(r->slot == 3999);
  CHECK(r->target.host == "127.0.0.1");
  CHECK(r->target.port == 6381);

  r = ParseRedirect(Parse("-ASK 16383 ::1:7002\r\n").get(), from);
  REQUIRE(r);
  CHECK(r->ask);
  CHECK(r->target.host == "::1");
  CHECK(r->target.Text() == "[::1]:7002");

  r = ParseRedirect(Parse("-MOVED 12 :7005\r\n").get(), from);  // a node that does not know its address
  REQUIRE(r);
  CHECK(r->target.host == "10.0.0.9");
  CHECK(r->target.port == 7005);

  r = ParseRedirect(Parse("-MOVED 12 redis-2.internal:6379\r\n").get(), from);
  REQUIRE(r);
  CHECK(r->target.host == "redis-2.internal");

  for (const char* bad : {"-MOVED\r\n", "-MOVED 3999\r\n", "-MOVED 16384 127.0.0.1:1\r\n", "-MOVED -1 a:1\r\n",
                          "-MOVED 1 127.0.0.1\r\n", "-MOVED 1 127.0.0.1:0\r\n", "-MOVED 1 127.0.0.1:65536\r\n",
                          "-MOVED 1 127.0.0.1:1 extra\r\n", "-MOVED x 127.0.0.1:1\r\n", "-MOVEDX 1 a:1\r\n",
                          "-ERR MOVED 1 a:1\r\n", "+MOVED 1 a:1\r\n", "-ASK 1 [::1:1\r\n", "-ASK 1 a b:1\r\n"}) {
    CHECK_MESSAGE(!ParseRedirect(Parse(bad).get(), from).has_value(), bad);
  }
}

TEST_CASE("redis protocol: CLUSTER SLOTS with Redis 7's fourth node field, unknown hosts and replicas") {
  RedisEndpoint from;
  from.host = "10.1.1.1";
  from.port = 7000;
  // Two ranges: the first with a Redis 7 node entry (id and a map of
  // metadata) and a replica, the second a node whose host is empty ("?" in
  // some versions means unknown too).
  const std::string resp =
      "*2\r\n"
      "*4\r\n:0\r\n:5460\r\n"
      "*4\r\n$9\r\n127.0.0.1\r\n:7001\r\n$3\r\nid1\r\n*2\r\n$8\r\nhostname\r\n$2\r\nh1\r\n"
      "*3\r\n$9\r\n127.0.0.1\r\n:7004\r\n$3\r\nid4\r\n"
      "*3\r\n:5461\r\n:16383\r\n"
      "*3\r\n$0\r\n\r\n:7002\r\n$3\r\nid2\r\n";
  Result<std::vector<SlotRange>> ranges = ParseClusterSlots(Parse(resp).get(), from);
  REQUIRE(ranges.ok());
  REQUIRE(ranges->size() == 2);
  CHECK((*ranges)[0].first == 0);
  CHECK((*ranges)[0].last == 5460);
  CHECK((*ranges)[0].master.Text() == "127.0.0.1:7001");
  REQUIRE((*ranges)[0].replicas.size() == 1);
  CHECK((*ranges)[0].replicas[0].Text() == "127.0.0.1:7004");
  CHECK((*ranges)[1].master.Text() == "10.1.1.1:7002");

  for (const char* bad : {":1\r\n", "*1\r\n:1\r\n", "*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\na\r\n:1\r\n",
                          "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\na\r\n:1\r\n",
                          "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\na\r\n:0\r\n",
                          "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n:1\r\n:1\r\n", "*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\na\r\n",
                          "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$3\r\na b\r\n:1\r\n"}) {
    CHECK_MESSAGE(!ParseClusterSlots(Parse(bad).get(), from).ok(), bad);
  }
}

TEST_CASE("redis protocol: ParseEndpoint") {
  CHECK(ParseEndpoint("127.0.0.1:6379")->Text() == "127.0.0.1:6379");
  CHECK(ParseEndpoint("[::1]:6379")->host == "::1");
  CHECK(ParseEndpoint("fe80::1:6379")->host == "fe80::1");
  CHECK(ParseEndpoint("name:1")->port == 1);
  for (const char* bad : {"", ":", "a", "a:", "a:0", "a:70000", "a:1x", "[::1]6379", "[::1:6379", "a b:1", "a/b:1"}) {
    CHECK_MESSAGE(!ParseEndpoint(bad).has_value(), bad);
  }
}

TEST_CASE("redis protocol: replies split anywhere are put back together") {
  const std::string resp = "+OK\r\n:-42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n-ERR bad\r\n";
  for (size_t step = 1; step <= resp.size(); ++step) {
    RedisReplyReader reader;
    std::vector<ReplyPtr> replies;
    for (size_t i = 0; i < resp.size(); i += step) {
      REQUIRE(reader.Feed(resp.data() + i, std::min(step, resp.size() - i)));
      while (ReplyPtr r = reader.Next()) replies.push_back(std::move(r));
    }
    REQUIRE(replies.size() == 6);
    CHECK(replies[0]->type == REDIS_REPLY_STATUS);
    CHECK(replies[1]->integer == -42);
    CHECK(std::string(replies[2]->str, replies[2]->len) == "hello");
    CHECK(replies[3]->type == REDIS_REPLY_NIL);
    CHECK(replies[4]->elements == 2);
    CHECK(replies[4]->element[0]->element[0]->integer == 1);
    CHECK(ErrorIs(replies[5].get(), "ERR"));
  }
}

TEST_CASE("redis protocol: the reader refuses what a broken server could make it allocate") {
  SUBCASE("an array announced with more elements than any reply of ours") {
    RedisReplyReader reader;
    const std::string resp = "*" + std::to_string(RedisReplyReader::kMaxElements + 1) + "\r\n";
    reader.Feed(resp.data(), resp.size());
    CHECK_FALSE(reader.Next());
    CHECK_FALSE(reader.error().empty());
  }
  SUBCASE("a bulk string that never ends is refused once kMaxPending bytes wait") {
    RedisReplyReader reader;
    const std::string head = "$9999999999999\r\n";
    REQUIRE(reader.Feed(head.data(), head.size()));
    const std::string chunk(1 << 20, 'x');
    bool refused = false;
    for (size_t fed = 0; fed <= RedisReplyReader::kMaxPending + chunk.size() && !refused; fed += chunk.size()) {
      refused = !reader.Feed(chunk.data(), chunk.size());
      if (!refused) CHECK_FALSE(reader.Next());
    }
    CHECK(refused);
    CHECK(reader.error().find("MiB") != std::string::npos);
  }
  SUBCASE("nesting deeper than hiredis's 7 levels") {
    RedisReplyReader reader;
    std::string resp;
    for (int i = 0; i < 10; ++i) resp += "*1\r\n";
    resp += ":1\r\n";
    reader.Feed(resp.data(), resp.size());
    CHECK_FALSE(reader.Next());
    CHECK_FALSE(reader.error().empty());
  }
  SUBCASE("a type byte that is not RESP") {
    RedisReplyReader reader;
    reader.Feed("HTTP/1.1 400\r\n", 14);
    CHECK_FALSE(reader.Next());
    CHECK_FALSE(reader.error().empty());
    CHECK_FALSE(reader.Feed("+OK\r\n", 5));  // unusable from then on
  }
}

TEST_CASE("redis protocol: commands, transactions and the EVAL form of an EVALSHA") {
  const RedisCommand get = RedisCommand::Format({"GET", std::string_view("k\0y", 3)});
  CHECK(get.bytes() == std::string_view("*2\r\n$3\r\nGET\r\n$3\r\nk\0y\r\n", 22));
  CHECK(get.replies() == 1);

  const RedisCommand tx = RedisCommand::Transaction({get, RedisCommand::Format({"PING"})});
  CHECK(tx.bytes() == std::string("*1\r\n$5\r\nMULTI\r\n") + std::string(get.bytes()) + "*1\r\n$4\r\nPING\r\n" +
                          "*1\r\n$4\r\nEXEC\r\n");
  CHECK(tx.replies() == 4);

  const std::string sha(40, 'a');
  const RedisCommand evalsha = RedisCommand::Format({"EVALSHA", sha, "1", "key", "arg"});
  const RedisCommand eval = evalsha.WithScript("return 1");
  CHECK(eval.bytes() == RedisCommand::Format({"EVAL", "return 1", "1", "key", "arg"}).bytes());
  CHECK(get.WithScript("return 1").empty());
  CHECK(RedisCommand::Format({"EVALSHA", "short", "0"}).WithScript("x").empty());
}

}  // namespace
}  // namespace testing
}  // namespace sessiond
