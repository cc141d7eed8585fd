// Shared rate-limit buckets in Redis (src/store/redis_token_bucket.h;
// docs/HTTP.md, Shared rate limits): the key and command, the reply reader,
// and the script on a real redis-server - a burst then refusals with the
// time until a token is back, refills, expiry of idle buckets, a flushed
// script cache, a cluster node, and a Redis that is down.
#include "store/redis_token_bucket.h"

#include <doctest/doctest.h>

#include <string>
#include <thread>

#include "store/redis_store.h"
#include "store_test_util.h"

namespace sessiond {
namespace testing {
namespace {

struct TakeOutcome {
  Status status;
  TokenVerdict verdict;
};

TakeOutcome TakeSync(TestLoop& loop, RedisStore& store, const std::string& name, const TokenBucketSpec& spec) {
  bool done = false;
  TakeOutcome out;
  store.TakeToken(name, spec, [&](const Status& st, const TokenVerdict& v) {
    done = true;
    out.status = st;
    out.verdict = v;
  });
  CHECK_FALSE(done);  // never inside the call (store/token_bucket.h)
  REQUIRE(loop.RunUntil([&] { return done; }));
  return out;
}

TokenBucketSpec Spec(uint64_t count, int64_t period_ms, uint64_t burst) {
  TokenBucketSpec s;
  s.count = count;
  s.period_ms = period_ms;
  s.burst = burst;
  return s;
}

// A name no other test run uses (the shared server keeps its keys).
std::string FreshName() { return RandomKey().substr(0, 32); }

ReplyPtr ParseResp(const std::string& resp) {
  RedisReplyReader reader;
  REQUIRE(reader.Feed(resp.data(), resp.size()));
  ReplyPtr r = reader.Next();
  REQUIRE(r != nullptr);
  return r;
}

std::unique_ptr<redisReply, void (*)(void*)> Command(redisContext* c, const std::vector<std::string>& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const std::string& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  void* reply = redisCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  return {static_cast<redisReply*>(reply), &freeReplyObject};
}

TEST_CASE("token bucket key: the prefix, rate: and the name as the hash tag") {
  CHECK(TokenBucketKey("sessiond:", "0123abcd") == "sessiond:rate:{0123abcd}");
  // Cluster routes it by the name alone, whatever the prefix.
  CHECK(KeySlot(TokenBucketKey("a:", "0123abcd")) == KeySlot("0123abcd"));
  CHECK(KeySlot(TokenBucketKey("other-prefix:", "0123abcd")) == KeySlot("0123abcd"));
  // Never a session's key: those are the prefix and 64 hex digits.
  CHECK(TokenBucketKey("p:", std::string(64, 'a')).rfind("p:rate:{", 0) == 0);
}

TEST_CASE("token bucket command: EVALSHA of the script on the key with count, period and burst") {
  const RedisCommand cmd = TokenBucketCommand("p:rate:{ab}", Spec(100, 60000, 20));
  const std::string bytes(cmd.bytes());
  CHECK(bytes.rfind("*7\r\n$7\r\nEVALSHA\r\n$40\r\n", 0) == 0);
  CHECK(bytes.find("\r\n$1\r\n1\r\n$11\r\np:rate:{ab}\r\n$3\r\n100\r\n$5\r\n60000\r\n$2\r\n20\r\n") !=
        std::string::npos);
  // The EVAL form carries the script itself (after NOSCRIPT).
  const std::string eval(cmd.WithScript(kTokenBucketScript).bytes());
  CHECK(eval.rfind("*7\r\n$4\r\nEVAL\r\n", 0) == 0);
  CHECK(eval.find("redis.call('TIME')") != std::string::npos);
  // Zero (never configured) is read as one: no division by zero in the script.
  const std::string zero(TokenBucketCommand("k", Spec(0, 0, 0)).bytes());
  CHECK(zero.find("\r\n$1\r\nk\r\n$1\r\n1\r\n$1\r\n1\r\n$1\r\n1\r\n") != std::string::npos);
}

TEST_CASE("token bucket reply: {1, 0} or {0, ms}; anything else is Unavailable") {
  Result<TokenVerdict> ok = ParseTokenBucketReply(ParseResp("*2\r\n:1\r\n:0\r\n").get());
  REQUIRE(ok.ok());
  CHECK(ok->allowed);
  Result<TokenVerdict> no = ParseTokenBucketReply(ParseResp("*2\r\n:0\r\n:1500\r\n").get());
  REQUIRE(no.ok());
  CHECK_FALSE(no->allowed);
  CHECK(no->retry_after_ms == 1500);
  Result<TokenVerdict> floor = ParseTokenBucketReply(ParseResp("*2\r\n:0\r\n:0\r\n").get());
  REQUIRE(floor.ok());
  CHECK(floor->retry_after_ms == 1);  // a refusal always says when
  for (const char* bad : {"-ERR boom\r\n", "*1\r\n:1\r\n", "*3\r\n:1\r\n:0\r\n:0\r\n", "*2\r\n$1\r\n1\r\n:0\r\n",
                          ":1\r\n", "$-1\r\n", "*2\r\n:1\r\n*0\r\n"}) {
    Result<TokenVerdict> r = ParseTokenBucketReply(ParseResp(bad).get());
    CHECK_MESSAGE(r.status().code() == Status::Code::kUnavailable, bad);
  }
  CHECK(ParseTokenBucketReply(ParseResp("-ERR boom\r\n").get()).status().message().find("ERR boom") !=
        std::string::npos);
}

TEST_CASE("redis token bucket: the burst, then refusals that say when a token is back") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisStore store(server.Config(), loop.base());
  const std::string name = FreshName(), other = FreshName();
  const TokenBucketSpec spec = Spec(3, 3600 * 1000, 3);  // one token per 1200 s
  for (int i = 0; i < 3; ++i) {
    TakeOutcome t = TakeSync(loop, store, name, spec);
    REQUIRE(t.status.ok());
    CHECK_MESSAGE(t.verdict.allowed, "token " << i + 1 << " of the burst");
  }
  TakeOutcome refused = TakeSync(loop, store, name, spec);
  REQUIRE(refused.status.ok());
  CHECK_FALSE(refused.verdict.allowed);
  CHECK(refused.verdict.retry_after_ms > 1199000);
  CHECK(refused.verdict.retry_after_ms <= 1200000);
  // Another name is another bucket.
  CHECK(TakeSync(loop, store, other, spec).verdict.allowed);

  // The layout: t (server microseconds) and n (tokens), and a TTL until full.
  auto c = server.Connect();
  REQUIRE(c);
  const std::string key = TokenBucketKey(server.Config().key_prefix, name);
  auto n = Command(c.get(), {"HGET", key, "n"});
  REQUIRE(n->type == REDIS_REPLY_STRING);
  CHECK(std::stod(n->str) < 0.01);  // empty, less what refilled since
  auto t = Command(c.get(), {"HGET", key, "t"});
  REQUIRE(t->type == REDIS_REPLY_STRING);
  CHECK(std::string(t->str).find_first_not_of("0123456789") == std::string::npos);
  auto ttl = Command(c.get(), {"PTTL", key});
  REQUIRE(ttl->type == REDIS_REPLY_INTEGER);
  CHECK(ttl->integer > 3500 * 1000);  // 3 tokens at 1200 s each
  CHECK(ttl->integer <= 3600 * 1000 + 1);
}

TEST_CASE("redis token bucket: tokens come back with time, and a full bucket expires") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisStore store(server.Config(), loop.base());
  const std::string name = FreshName();
  const TokenBucketSpec spec = Spec(1000, 1000, 2);  // one token per ms
  CHECK(TakeSync(loop, store, name, spec).verdict.allowed);
  CHECK(TakeSync(loop, store, name, spec).verdict.allowed);
  // However fast the next take is, it waits at most a ms for its token.
  TakeOutcome next = TakeSync(loop, store, name, spec);
  if (!next.verdict.allowed) CHECK(next.verdict.retry_after_ms == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // at least 20 tokens' time: full again
  auto c = server.Connect();
  REQUIRE(c);
  const std::string key = TokenBucketKey(server.Config().key_prefix, name);
  CHECK(Command(c.get(), {"EXISTS", key})->integer == 0);  // a full bucket is no bucket
  CHECK(TakeSync(loop, store, name, spec).verdict.allowed);
  CHECK(TakeSync(loop, store, name, spec).verdict.allowed);
}

TEST_CASE("redis token bucket: works again after the script cache is flushed") {
  RedisServer& server = SharedRedis();
  TestLoop loop;
  RedisStore store(server.Config(), loop.base());
  const std::string name = FreshName();
  const TokenBucketSpec spec = Spec(1, 3600 * 1000, 2);
  CHECK(TakeSync(loop, store, name, spec).verdict.allowed);
  auto c = server.Connect();
  REQUIRE(c);
  REQUIRE(Command(c.get(), {"SCRIPT", "FLUSH"})->type == REDIS_REPLY_STATUS);
  TakeOutcome t = TakeSync(loop, store, name, spec);  // NOSCRIPT, then EVAL
  REQUIRE(t.status.ok());
  CHECK(t.verdict.allowed);
  CHECK_FALSE(TakeSync(loop, store, name, spec).verdict.allowed);  // the same bucket throughout
}

TEST_CASE("redis token bucket: on a cluster node") {
  RedisServer& node = SharedRedisCluster();
  RedisConfig config = node.Config();
  config.cluster = RedisClusterConfig{{RedisNodeAddress{"127.0.0.1", static_cast<uint16_t>(node.port())}}};
  TestLoop loop;
  RedisStore store(config, loop.base());
  const std::string name = FreshName();
  const TokenBucketSpec spec = Spec(1, 3600 * 1000, 1);
  TakeOutcome first = TakeSync(loop, store, name, spec);
  REQUIRE(first.status.ok());
  CHECK(first.verdict.allowed);
  CHECK_FALSE(TakeSync(loop, store, name, spec).verdict.allowed);
}

TEST_CASE("redis token bucket: a Redis that is down fails the take; it says nothing of the bucket") {
  auto server = RedisServer::Start();
  REQUIRE(server);
  TestLoop loop;
  RedisStore store(server->Config(300ms), loop.base());
  const std::string name = FreshName();
  const TokenBucketSpec spec = Spec(1, 3600 * 1000, 1);
  CHECK(TakeSync(loop, store, name, spec).verdict.allowed);
  server->Stop();
  TakeOutcome down = TakeSync(loop, store, name, spec);
  CHECK((down.status.code() == Status::Code::kUnavailable || down.status.code() == Status::Code::kTimeout));
  // Back (empty: nothing persisted): a full bucket again.
  REQUIRE(server->Restart());
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {  // the reconnect backoff is at most 2 s
    TakeOutcome t = TakeSync(loop, store, name, spec);
    served = t.status.ok() && t.verdict.allowed;
    if (!served) loop.RunFor(60ms);
  }
  CHECK(served);
}

}  // namespace
}  // namespace testing
}  // namespace sessiond
