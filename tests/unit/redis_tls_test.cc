// The redis store over TLS (docs/CONFIGURATION.md, redis.tls) against a real
// redis-server with a TLS port and a test CA made in memory: verification of
// the CA and the name (the node's host by default, redis.tls.server_name
// when set), client certificates, ACL users, the failure's message and
// metrics, and resumption on a reconnect. RedisTls's context table on its
// own first. The store contract suite also runs over TLS (store_test.cc).
#include "store/redis_tls.h"

#include <doctest/doctest.h>
#include <hiredis/hiredis.h>

#include <string>

#include "observe/metrics.h"
#include "store/redis_store.h"
#include "store_test_util.h"
#include "tls_test_util.h"

namespace sessiond {
namespace testing {
namespace {

bool StartsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct Pki {
  TestCa ca{"redis tls test CA"};
  PemPair server = ca.Issue("redis", {"localhost"}, {"127.0.0.1"});
  PemPair client = ca.Issue("sessiond", {"sessiond"}, {});
};

const Pki& TestPki() {
  static const Pki pki;
  return pki;
}

ClientTlsConfig TlsWithCa(const std::string& ca_pem = TestPki().ca.ca().cert) {
  ClientTlsConfig t;
  t.ca_pem = ca_pem;
  return t;
}

RedisConfig TlsConfig(const RedisServer& server, ClientTlsConfig tls = TlsWithCa()) {
  RedisConfig config = server.Config();
  config.port = static_cast<uint16_t>(server.tls_port());
  config.rediss = true;
  config.tls = std::move(tls);
  return config;
}

// One command on the server's plain port, for checks and CLIENT KILL.
std::string PlainCommand(const RedisServer& server, const char* command) {
  auto c = server.Connect();
  REQUIRE(c);
  auto* reply = static_cast<redisReply*>(redisCommand(c.get(), command));
  REQUIRE(reply);
  std::string out = reply->str ? std::string(reply->str, reply->len) : std::to_string(reply->integer);
  freeReplyObject(reply);
  return out;
}

}  // namespace

TEST_CASE("RedisTls: one context per name verified, or one for redis.tls.server_name; errors name the host") {
  std::shared_ptr<RedisTls> tls = RedisTls::New(TlsWithCa());
  auto a = tls->ContextFor("10.0.0.1");
  auto b = tls->ContextFor("10.0.0.2");
  auto a_again = tls->ContextFor("10.0.0.1");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(a_again.ok());
  CHECK(a->get() == a_again->get());
  CHECK(a->get() != b->get());
  CHECK((*a)->options().server_name == "10.0.0.1");
  CHECK((*b)->options().server_name == "10.0.0.2");
  CHECK((*a)->options().alpn.empty());  // Redis is no HTTP server
  CHECK(tls->contexts() == 2);

  ClientTlsConfig fixed = TlsWithCa();
  fixed.server_name = "redis.internal";
  std::shared_ptr<RedisTls> one = RedisTls::New(fixed);
  auto x = one->ContextFor("10.0.0.1");
  auto y = one->ContextFor("node-7.example");
  REQUIRE(x.ok());
  REQUIRE(y.ok());
  CHECK(x->get() == y->get());
  CHECK((*x)->options().server_name == "redis.internal");
  CHECK(one->contexts() == 1);

  // The table is bounded: past kMaxContexts names it starts afresh.
  for (size_t i = 0; i < RedisTls::kMaxContexts + 3; ++i) {
    REQUIRE(tls->ContextFor("host-" + std::to_string(i)).ok());
  }
  CHECK(tls->contexts() <= RedisTls::kMaxContexts);

  auto bad = RedisTls::Create(TlsWithCa("not a certificate"), "cache.internal");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "redis: TLS for cache.internal: no PEM certificate in the CA bundle");
  ClientTlsConfig mismatched = TlsWithCa();
  mismatched.client_certificate_pem = TestPki().client.cert;
  mismatched.client_key_pem = TestPki().server.key;
  auto pair = RedisTls::Create(mismatched, "127.0.0.1");
  REQUIRE_FALSE(pair.ok());
  CHECK(pair.status().message() ==
        "redis: TLS for 127.0.0.1: the private key does not match the certificate");
  CHECK(RedisTls::Create(TlsWithCa(), "127.0.0.1").ok());
}

TEST_CASE("redis store over TLS: sessions written and read; a reconnect resumes the TLS session") {
  auto server = RedisServer::StartTls(TestPki().server.cert, TestPki().server.key);
  REQUIRE(server);
  TestLoop loop;
  RedisMetrics metrics;
  RedisStore store(TlsConfig(*server), loop.base(), &metrics);
  const StoreKey key = RandomKey();
  ApplyRequest req = MakeRequest(key);
  req.sets = {{"user", "\"alice\""}};
  ApplyOutcome applied = ApplySync(loop, store, req);
  REQUIRE_MESSAGE(applied.status.ok(), applied.status.message());
  LoadOutcome loaded = LoadSync(loop, store, key);
  REQUIRE(loaded.status.ok());
  REQUIRE(loaded.data.has_value());
  CHECK(loaded.data == SessionData{{"user", "\"alice\""}});
  CHECK(metrics.tls_full.load() == 1);
  CHECK(metrics.tls_resumed.load() == 0);
  CHECK(metrics.tls_failed.load() == 0);
  // The data went through the TLS port: the plain port sees the same key.
  CHECK(PlainCommand(*server, ("EXISTS " + store.RedisKey(key)).c_str()) == "1");

  // Redis drops the connection; the next one resumes the session Redis
  // handed out (its session cache), with no full handshake.
  CHECK(PlainCommand(*server, "CLIENT KILL TYPE normal") != "0");
  REQUIRE(loop.RunUntil([&] { return !store.ready(); }));
  REQUIRE(loop.RunUntil([&] { return PingSync(loop, store).ok() && store.ready(); }));
  CHECK(metrics.tls_resumed.load() == 1);
  CHECK(metrics.tls_full.load() == 1);
  CHECK(LoadSync(loop, store, key).data.has_value());
}

TEST_CASE("redis store over TLS: a CA or a name that does not verify fails every call, saying why") {
  auto server = RedisServer::StartTls(TestPki().server.cert, TestPki().server.key);
  REQUIRE(server);
  const std::string where = "127.0.0.1:" + std::to_string(server->tls_port());
  TestLoop loop;
  RedisMetrics metrics;
  RedisConfig config;
  std::string reason;
  SUBCASE("a CA that did not sign the server's certificate") {
    static const TestCa other("another CA");
    config = TlsConfig(*server, TlsWithCa(other.ca().cert));
    reason = "certificate verify failed: unable to get local issuer certificate";
  }
  SUBCASE("a name the certificate does not carry") {
    ClientTlsConfig t = TlsWithCa();
    t.server_name = "redis.example.org";
    config = TlsConfig(*server, t);
    reason = "certificate verify failed: hostname mismatch";
  }
  SUBCASE("the system's CAs, which do not know the test CA") {
    config = TlsConfig(*server, ClientTlsConfig{});
    reason = "certificate verify failed: unable to get local issuer certificate";
  }
  RedisStore store(config, loop.base(), &metrics);
  LoadOutcome loaded = LoadSync(loop, store, RandomKey());
  CHECK(loaded.status.code() == Status::Code::kUnavailable);
  CHECK(loaded.status.message() == "redis: TLS handshake with " + where + " failed (" + reason + ")");
  CHECK(PingSync(loop, store).code() == Status::Code::kUnavailable);
  CHECK(metrics.tls_failed.load() >= 1);
  CHECK(metrics.tls_full.load() == 0);
  CHECK_FALSE(store.ready());
}

TEST_CASE("redis store over TLS: the server's name defaults to the host connected to") {
  auto server = RedisServer::StartTls(TestPki().server.cert, TestPki().server.key);
  REQUIRE(server);
  TestLoop loop;
  // "localhost" is a DNS name of the certificate, verified as a name (and
  // sent as SNI); 127.0.0.1 is one of its IP addresses.
  for (const char* host : {"localhost", "127.0.0.1"}) {
    CAPTURE(host);
    RedisConfig config = TlsConfig(*server);
    config.host = host;
    RedisStore store(config, loop.base());
    CHECK(PingSync(loop, store).ok());
  }
}

TEST_CASE("redis store over TLS: client certificates, and an ACL user over TLS") {
  auto server = RedisServer::StartTls(TestPki().server.cert, TestPki().server.key, TestPki().ca.ca().cert);
  REQUIRE(server);
  const std::string where = "127.0.0.1:" + std::to_string(server->tls_port());
  TestLoop loop;
  {
    RedisMetrics metrics;
    RedisStore without(TlsConfig(*server), loop.base(), &metrics);
    const Status st = PingSync(loop, without);
    CHECK(st.code() == Status::Code::kUnavailable);
    // TLS 1.3: the server refuses after the client's last flight, before
    // any reply to the Redis handshake; still the TLS handshake failing.
    CHECK_MESSAGE(StartsWith(st.message(), "redis: TLS handshake with " + where + " failed ("), st.message());
    CHECK(metrics.tls_failed.load() >= 1);
  }
  ClientTlsConfig with_cert = TlsWithCa();
  with_cert.client_certificate_pem = TestPki().client.cert;
  with_cert.client_key_pem = TestPki().client.key;
  {
    RedisStore with(TlsConfig(*server, with_cert), loop.base());
    CHECK(PingSync(loop, with).ok());
  }
  // AUTH username password over the same TLS.
  CHECK(PlainCommand(*server, "ACL SETUSER app on >app-pw ~* +@all") == "OK");
  RedisConfig acl = TlsConfig(*server, with_cert);
  acl.username = "app";
  acl.password = "app-pw";
  {
    RedisStore store(acl, loop.base());
    const StoreKey key = RandomKey();
    ApplyRequest req = MakeRequest(key);
    req.sets = {{"n", "1"}};
    CHECK(ApplySync(loop, store, req).status.ok());
    CHECK(LoadSync(loop, store, key).data.has_value());
  }
  acl.password = "wrong-pw";
  RedisStore refused(acl, loop.base());
  const Status st = PingSync(loop, refused);
  CHECK(st.code() == Status::Code::kUnavailable);
  CHECK(Contains(st.message(), "AUTH failed on " + where));
  CHECK_FALSE(Contains(st.message(), "wrong-pw"));
}

}  // namespace testing
}  // namespace sessiond
