// UpstreamPool (src/proxy/upstream_pool.h) against a real listening socket:
// reuse, the idle cap that follows the recent peak in flight, the idle
// timeout, dropping an idle connection the upstream closes, and the
// opened-connections metric.
#include "proxy/upstream_pool.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <memory>
#include <thread>
#include <vector>

#include "observe/metrics.h"

using namespace sessiond;

namespace {

struct Upstream {
  int listener = -1;
  SocketAddress address;
  Upstream() {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    socklen_t len = sizeof(addr);
    getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    REQUIRE(listen(listener, 512) == 0);
    memcpy(&address.storage, &addr, sizeof(addr));
    address.length = sizeof(addr);
    address.text = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }
  ~Upstream() { close(listener); }
};

// Stands in for the exchange that owns a taken connection.
struct Quiet : net::Connection::Handler {
  int connected = 0;
  void OnReadable(net::Connection*) override {}
  void OnPeerEof(net::Connection*) override {}
  void OnWritable(net::Connection*) override {}
  void OnConnected(net::Connection*) override { ++connected; }
  void OnError(net::Connection*, int) override {}
};

struct Loop {
  Quiet quiet;
  event_base* base = event_base_new();
  net::BlockPool blocks;
  Metrics metrics;
  std::unique_ptr<UpstreamPool> pool = std::make_unique<UpstreamPool>(base, &blocks, &metrics);
  ~Loop() {
    pool.reset();
    event_base_free(base);
  }
  void Spin(int turns = 20) {
    for (int i = 0; i < turns; ++i) {
      event_base_loop(base, EVLOOP_NONBLOCK);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
};

}  // namespace

TEST_CASE("UpstreamPool keeps every released connection while that many were in flight, and reuses them") {
  Upstream up;
  Loop loop;
  std::vector<std::unique_ptr<UpstreamConnection>> taken;
  for (int i = 0; i < 300; ++i) {
    auto c = loop.pool->Connect(up.address);
    REQUIRE(c);
    c->conn().set_handler(&loop.quiet);
    taken.push_back(std::move(c));
  }
  CHECK(loop.metrics.upstream_connections_opened.load() == 300);
  CHECK(loop.pool->in_use() == 300);
  for (int i = 0; i < 500 && loop.quiet.connected < 300; ++i) loop.Spin(1);
  CHECK(loop.quiet.connected == 300);
  for (auto& c : taken) loop.pool->Release(std::move(c));
  taken.clear();
  CHECK(loop.pool->idle_count() == 300);  // a fixed cap of 128 would have closed 172
  CHECK(loop.pool->in_use() == 0);
  for (int i = 0; i < 300; ++i) {
    auto c = loop.pool->TakeIdle(up.address);
    REQUIRE(c);
    CHECK(c->reused());
    taken.push_back(std::move(c));
  }
  CHECK(loop.pool->TakeIdle(up.address) == nullptr);
  CHECK(loop.metrics.upstream_connections_opened.load() == 300);  // no new connects
  for (auto& c : taken) loop.pool->Release(std::move(c));
}

TEST_CASE("UpstreamPool's idle cap decays to the recent peak once the load is gone") {
  Upstream up;
  Loop loop;
  std::vector<std::unique_ptr<UpstreamConnection>> taken;
  for (int i = 0; i < 50; ++i) taken.push_back(loop.pool->Connect(up.address));
  for (auto& c : taken) loop.pool->Release(std::move(c));
  taken.clear();
  CHECK(loop.pool->idle_count() == 50);
  for (int tick = 0; tick < UpstreamPool::kPeakWindow - 1; ++tick) loop.pool->Tick(Millis(60000));
  CHECK(loop.pool->idle_count() == 50);  // the peak is still within the window
  loop.pool->Tick(Millis(60000));
  CHECK(loop.pool->idle_cap() == UpstreamPool::kMinIdle);
  CHECK(loop.pool->idle_count() == UpstreamPool::kMinIdle);
}

TEST_CASE("UpstreamPool closes connections idle longer than the idle timeout") {
  Upstream up;
  Loop loop;
  auto a = loop.pool->Connect(up.address);
  auto b = loop.pool->Connect(up.address);
  loop.pool->Release(std::move(a));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  loop.pool->Release(std::move(b));
  loop.pool->Tick(Millis(20));  // a: 30 ms idle, b: just released
  CHECK(loop.pool->idle_count() == 1);
  loop.pool->Tick(Millis(0));
  CHECK(loop.pool->idle_count() == 0);
}

TEST_CASE("UpstreamPool drops an idle connection the upstream closes, and one to an old address") {
  Upstream up;
  Upstream other;
  Loop loop;
  auto c = loop.pool->Connect(up.address);
  c->conn().set_handler(&loop.quiet);
  loop.Spin();
  int server = accept(up.listener, nullptr, nullptr);
  REQUIRE(server >= 0);
  loop.pool->Release(std::move(c));
  CHECK(loop.pool->idle_count() == 1);
  close(server);  // the upstream ends the idle connection
  for (int i = 0; i < 500 && loop.pool->idle_count() > 0; ++i) loop.Spin(1);
  CHECK(loop.pool->idle_count() == 0);

  loop.pool->Release(loop.pool->Connect(up.address));
  CHECK(loop.pool->TakeIdle(other.address) == nullptr);  // after a reload to another upstream
  CHECK(loop.pool->idle_count() == 0);
  CHECK(loop.blocks.live_count() == 0);  // idle connections hold no buffer memory
}

TEST_CASE("UpstreamPool watches a released connection even if its last reads had paused at the read limit") {
  Upstream up;
  Loop loop;
  auto c = loop.pool->Connect(up.address);
  c->conn().set_handler(&loop.quiet);
  c->conn().set_read_limit(32 << 10);
  loop.Spin();
  int server = accept(up.listener, nullptr, nullptr);
  REQUIRE(server >= 0);
  std::string data(70000, 'z');
  REQUIRE(write(server, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  for (int i = 0; i < 500 && c->conn().input().size() < (32u << 10); ++i) loop.Spin(1);
  REQUIRE(c->conn().input().size() >= (32u << 10));
  REQUIRE(c->conn().input().size() < data.size());  // paused with the rest unread
  c->conn().input().Clear();                           // consumed, without RefreshReading
  loop.pool->Release(std::move(c));
  CHECK(loop.pool->idle_count() == 1);
  // The rest of the bytes are stray bytes for an idle connection: dropped.
  for (int i = 0; i < 500 && loop.pool->idle_count() > 0; ++i) loop.Spin(1);
  CHECK(loop.pool->idle_count() == 0);
  close(server);
}
