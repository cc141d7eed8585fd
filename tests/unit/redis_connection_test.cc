// RedisConnection (store/redis_connection.h) against a scripted node
// (redis_fake_node.h): how replies are matched to commands when the socket
// takes a batch in pieces.
#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "net/block.h"
#include "redis_fake_node.h"
#include "store/redis_connection.h"
#include "store_test_util.h"

namespace sessiond {
namespace testing {
namespace {

struct Listener : RedisConnection::Listener {
  bool ready = false;
  std::optional<Status> closed;
  void OnReady(RedisConnection*) override { ready = true; }
  void OnClosed(RedisConnection*, const Status& why) override { closed = why; }
};

// What a callback saw: the status, and the reply as text.
struct Seen {
  bool done = false;
  Status status;
  std::string text;
};

RedisConnection::ReplyCallback Record(Seen* seen) {
  return [seen](const Status& st, redisReply* r) {
    seen->done = true;
    seen->status = st;
    if (r && r->str) seen->text.assign(r->str, r->len);
  };
}

TEST_CASE("redis connection: a command appended behind a partial write is answered as that command") {
  // A command sent while a batch is in flight is held (not flushed) until
  // the batch is answered, but its bytes are already in the output buffer.
  // After a partial write the connection's write event drains that buffer,
  // held commands included, so Redis can answer a command the connection
  // had not marked sent yet. That reply is the held command's, never an
  // "unexpected reply" that fails the connection.
  FakeRedisNode node([](const std::vector<std::string>& argv) -> std::string {
    if (argv.empty()) return "-ERR empty\r\n";
    if (argv[0] == "PING") return "+PONG\r\n";
    // SET's reply goes out with GET's, so the client reads both at once.
    if (argv[0] == "SET") return FakeRedisNode::kSilence;
    if (argv[0] == "GET") return "+OK\r\n" + FakeRedisNode::Bulk("v");
    return "-ERR unknown\r\n";
  });
  TestLoop loop;
  net::BlockPool pool;
  Listener listener;
  RedisConnection::Options options;
  options.endpoint.host = "127.0.0.1";
  options.endpoint.port = static_cast<uint16_t>(node.port());
  options.timeout = std::chrono::milliseconds(10000);
  RedisConnection conn(loop.base(), &pool, options, &listener);
  conn.Start();
  REQUIRE(loop.RunUntil([&] { return listener.ready || listener.closed; }));
  REQUIRE(listener.ready);

  // 16 MiB cannot fit in the socket buffers of a reader that has stopped
  // reading: the write stops part-way and the write event takes over.
  node.PauseReading(true);
  const std::string big(16 << 20, 'x');
  Seen set_seen;
  conn.Send(RedisCommand::Format({"SET", "k", big}).bytes(), Record(&set_seen));
  loop.RunFor(std::chrono::milliseconds(100));
  REQUIRE_FALSE(set_seen.done);
  // Held behind the SET in flight, its bytes queued behind the SET's rest.
  Seen get_seen;
  conn.Send(RedisCommand::Format({"GET", "k"}).bytes(), Record(&get_seen));
  node.PauseReading(false);

  REQUIRE(loop.RunUntil([&] { return set_seen.done && get_seen.done; }, std::chrono::milliseconds(20000)));
  CHECK(set_seen.status.ok());
  CHECK(set_seen.text == "OK");
  CHECK_MESSAGE(get_seen.status.ok(), get_seen.status.ToString());
  CHECK(get_seen.text == "v");
  CHECK_FALSE(listener.closed.has_value());
  CHECK(conn.ready());
  CHECK(conn.pending() == 0);

  // The connection goes on answering in order.
  Seen again;
  conn.Send(RedisCommand::Format({"PING"}).bytes(), Record(&again));
  REQUIRE(loop.RunUntil([&] { return again.done; }));
  CHECK(again.status.ok());
  CHECK(again.text == "PONG");
  CHECK(node.count("GET") == 1);
}

}  // namespace
}  // namespace testing
}  // namespace sessiond
