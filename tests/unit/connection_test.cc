// Connection (src/net/connection.h) on a real event_base (with the workers'
// epoll changelist) over socketpairs and loopback TCP: write-first with
// EV_WRITE only after a short write, the read limit as backpressure, EOF,
// errors reported from the loop, connect outcomes, and a handler that frees
// its connection inside a callback.
#include "net/connection.h"

#include <doctest/doctest.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "net/timer.h"

using sessiond::net::BlockPool;
using sessiond::net::Connection;

namespace {

event_base* NewBase() {
  event_config* cfg = event_config_new();
  event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  event_base* base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  return base;
}

struct Recorder : Connection::Handler {
  int readable = 0, eof = 0, writable = 0, connected = 0, errors = 0;
  int last_error = 0;
  std::function<void(Connection*)> on_eof;
  void OnReadable(Connection*) override { ++readable; }
  void OnPeerEof(Connection* c) override {
    ++eof;
    if (on_eof) on_eof(c);
  }
  void OnWritable(Connection*) override { ++writable; }
  void OnConnected(Connection*) override { ++connected; }
  void OnError(Connection*, int err) override {
    ++errors;
    last_error = err;
  }
};

// One end of a socketpair in a Connection; the test drives the other end.
struct Pair {
  event_base* base = NewBase();
  BlockPool pool;
  Recorder rec;
  Connection* conn = nullptr;
  int peer = -1;

  explicit Pair(int sndbuf = 0) {
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    if (sndbuf) setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    peer = fds[1];
    conn = new Connection(base, &pool);
    conn->Adopt(fds[0]);
    conn->set_handler(&rec);
  }
  ~Pair() {
    delete conn;
    if (peer >= 0) close(peer);
    event_base_free(base);
  }
  // Runs loop iterations until `done` or about a second has passed.
  bool RunUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 1000; ++i) {
      if (done()) return true;
      event_base_loop(base, EVLOOP_NONBLOCK);
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return done();
  }
  std::string DrainPeer() {
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = read(peer, buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
    return got;
  }
};

std::string Contents(sessiond::net::Buffer& b) {
  std::string s;
  for (size_t i = 0; i < b.slice_count(); ++i) s.append(b.slice(i));
  return s;
}

}  // namespace

TEST_CASE("Connection::Flush writes a complete message at once, without arming the write event") {
  Pair p;
  p.conn->output().Append("HTTP/1.1 200 OK\r\n\r\n");
  p.conn->Flush();
  CHECK(!p.conn->write_pending());
  CHECK(p.conn->output().empty());
  CHECK(!p.conn->output().holds_memory());
  CHECK(p.DrainPeer() == "HTTP/1.1 200 OK\r\n\r\n");
  event_base_loop(p.base, EVLOOP_NONBLOCK);
  CHECK(p.rec.writable == 0);  // nothing was left for the event loop
}

TEST_CASE("Connection arms EV_WRITE after a short write, finishes from the loop, then disarms") {
  Pair p(4096);
  std::string big(1 << 20, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 23);
  p.conn->output().Append(big);
  p.conn->Flush();
  CHECK(p.conn->write_pending());
  CHECK(p.conn->output().size() > 0);
  std::string got;
  CHECK(p.RunUntil([&] {
    got += p.DrainPeer();
    return got.size() == big.size();
  }));
  CHECK(got == big);
  CHECK(p.RunUntil([&] { return !p.conn->write_pending(); }));
  CHECK(p.rec.writable >= 1);  // told once the output fell to the low mark (0)
  CHECK(p.conn->output().empty());
}

TEST_CASE("Connection::Flush while the write event is armed leaves the writing to the loop, in order") {
  Pair p(4096);
  std::string first(256 << 10, 'a');
  p.conn->output().Append(first);
  p.conn->Flush();
  REQUIRE(p.conn->write_pending());
  p.conn->output().Append("END");
  p.conn->Flush();  // must not write "END" ahead of anything
  std::string got;
  CHECK(p.RunUntil([&] {
    got += p.DrainPeer();
    return got.size() == first.size() + 3;
  }));
  CHECK(got.substr(got.size() - 3) == "END");
  CHECK(got.find_first_not_of('a') == first.size());
}

TEST_CASE("Connection reads once per readiness into the input buffer") {
  Pair p;
  std::string data(60000, 'r');
  REQUIRE(write(p.peer, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  p.conn->EnableReading();
  event_base_loop(p.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);  // one loop turn
  CHECK(p.rec.readable == 1);
  CHECK(p.conn->input().size() > 0);
  CHECK(p.conn->input().size() <= BlockPool::kBlockCapacity);  // one read, one block
  CHECK(p.RunUntil([&] { return p.conn->input().size() >= data.size(); }) );
}

TEST_CASE("Connection stops reading at the read limit and resumes on RefreshReading") {
  Pair p;
  const std::string data(1 << 20, 'q');
  size_t sent = 0;
  auto pump_peer = [&] {
    while (sent < data.size()) {
      ssize_t n = write(p.peer, data.data() + sent, data.size() - sent);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
  };
  p.conn->set_read_limit(64 << 10);
  p.conn->EnableReading();
  for (int i = 0; i < 200; ++i) {
    pump_peer();
    event_base_loop(p.base, EVLOOP_NONBLOCK);
  }
  const size_t held = p.conn->input().size();
  CHECK(held >= (64u << 10));
  CHECK(held < (64u << 10) + BlockPool::kBlockCapacity);  // at most one read past the limit
  CHECK(sent < data.size());                               // the peer is held back by the kernel
  const int reads = p.rec.readable;
  event_base_loop(p.base, EVLOOP_NONBLOCK);
  CHECK(p.rec.readable == reads);  // paused: no more reads
  size_t consumed = 0;
  CHECK(p.RunUntil([&] {
    consumed += p.conn->input().size();
    p.conn->input().Consume(p.conn->input().size());
    p.conn->RefreshReading();
    pump_peer();
    return consumed + p.conn->input().size() == data.size();
  }));
}

TEST_CASE("Connection reports the peer's EOF after its bytes, then stops reading") {
  Pair p;
  REQUIRE(write(p.peer, "last words", 10) == 10);
  shutdown(p.peer, SHUT_WR);
  p.conn->EnableReading();
  CHECK(p.RunUntil([&] { return p.rec.eof == 1; }));
  CHECK(p.rec.readable == 1);
  CHECK(Contents(p.conn->input()) == "last words");
  CHECK(p.conn->peer_eof());
  event_base_loop(p.base, EVLOOP_NONBLOCK);
  CHECK(p.rec.eof == 1);  // not reported again
  // The other direction still works: a half-closed peer can read our answer.
  p.conn->output().Append("answer");
  p.conn->Flush();
  CHECK(p.DrainPeer() == "answer");
}

TEST_CASE("Connection::ShutdownWrite sends FIN after the bytes already written") {
  Pair p;
  p.conn->output().Append("bye");
  p.conn->Flush();
  p.conn->ShutdownWrite();
  char buf[16];
  CHECK(read(p.peer, buf, sizeof(buf)) == 3);
  CHECK(read(p.peer, buf, sizeof(buf)) == 0);  // EOF
}

TEST_CASE("Connection reports a write error from the loop, not inside Flush") {
  Pair p;
  close(p.peer);
  p.peer = -1;
  p.conn->output().Append("to nobody");
  p.conn->Flush();
  CHECK(p.rec.errors == 0);
  CHECK(p.RunUntil([&] { return p.rec.errors == 1; }));
  CHECK(p.rec.last_error == EPIPE);
  CHECK(p.conn->error() == EPIPE);
  event_base_loop(p.base, EVLOOP_NONBLOCK);
  CHECK(p.rec.errors == 1);  // once
}

TEST_CASE("Connection reports a reset as an error") {
  Pair p;
  // AF_UNIX has no RST: TCP for this one, closed by the server with SO_LINGER 0.
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  REQUIRE(listen(listener, 1) == 0);
  Connection c(p.base, &p.pool);
  Recorder rec;
  c.set_handler(&rec);
  REQUIRE(c.Connect(reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
  CHECK(p.RunUntil([&] { return rec.connected == 1; }));
  int server = accept(listener, nullptr, nullptr);
  REQUIRE(server >= 0);
  c.EnableReading();
  c.output().Append("unread by the server");
  c.Flush();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  linger lg{1, 0};
  setsockopt(server, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(server);
  CHECK(p.RunUntil([&] { return rec.errors == 1; }));
  CHECK(rec.last_error == ECONNRESET);
  close(listener);
}

TEST_CASE("Connection::Connect reports success once, and a refused connect as an error") {
  event_base* base = NewBase();
  BlockPool pool;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  REQUIRE(listen(listener, 4) == 0);
  {
    Connection c(base, &pool);
    Recorder rec;
    c.set_handler(&rec);
    REQUIRE(c.Connect(reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
    CHECK(c.connecting());
    for (int i = 0; i < 100 && rec.connected == 0; ++i) event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    CHECK(rec.connected == 1);
    CHECK(!c.connecting());
    for (int i = 0; i < 10; ++i) event_base_loop(base, EVLOOP_NONBLOCK);
    CHECK(rec.connected == 1);
    CHECK(rec.errors == 0);
    CHECK(!c.write_pending());  // connected with nothing to send: write event off
  }
  close(listener);  // now the port refuses
  {
    Connection c(base, &pool);
    Recorder rec;
    c.set_handler(&rec);
    if (c.Connect(reinterpret_cast<sockaddr*>(&addr), sizeof(addr))) {
      for (int i = 0; i < 1000 && rec.errors == 0; ++i) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      CHECK(rec.errors == 1);
      CHECK(rec.last_error == ECONNREFUSED);
      CHECK(rec.connected == 0);
    } else {
      CHECK(errno == ECONNREFUSED);
    }
  }
  event_base_free(base);
}

TEST_CASE("Connection may be freed by its handler inside a callback") {
  Pair p;
  p.rec.on_eof = [&](Connection* c) {
    delete c;
    p.conn = nullptr;
  };
  shutdown(p.peer, SHUT_WR);
  p.conn->EnableReading();
  CHECK(p.RunUntil([&] { return p.rec.eof == 1; }));
  CHECK(p.conn == nullptr);
  CHECK(p.pool.live_count() == 0);
}

TEST_CASE("An idle connection holds no block between messages") {
  Pair p;
  p.conn->EnableReading();
  REQUIRE(write(p.peer, "GET / HTTP/1.1\r\n\r\n", 18) == 18);
  CHECK(p.RunUntil([&] { return p.conn->input().size() == 18; }));
  CHECK(p.pool.live_count() == 1);
  p.conn->input().Consume(18);
  p.conn->output().Append("HTTP/1.1 204 No Content\r\n\r\n");
  p.conn->Flush();
  CHECK(p.pool.live_count() == 0);
  CHECK(!p.conn->input().holds_memory());
  CHECK(!p.conn->output().holds_memory());
}

TEST_CASE("Timer fires once after its timeout; re-arming replaces the deadline; Cancel stops it") {
  event_base* base = NewBase();
  int fired = 0;
  sessiond::net::Timer t(base, [](void* arg) { ++*static_cast<int*>(arg); }, &fired);
  t.Arm(std::chrono::milliseconds(1));
  CHECK(t.armed());
  event_base_loop(base, EVLOOP_ONCE);
  CHECK(fired == 1);
  CHECK(!t.armed());
  t.Arm(std::chrono::milliseconds(1));
  t.Cancel();
  t.ArmVaried(std::chrono::milliseconds(2));
  event_base_loop(base, EVLOOP_ONCE);
  CHECK(fired == 2);
  t.Arm(std::chrono::hours(1));
  t.Arm(std::chrono::milliseconds(1));  // the later arming wins
  event_base_loop(base, EVLOOP_ONCE);
  CHECK(fired == 3);
  t.Arm(std::chrono::milliseconds(1));
  t.Cancel();
  CHECK(event_base_loop(base, EVLOOP_NONBLOCK) >= 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  event_base_loop(base, EVLOOP_NONBLOCK);
  CHECK(fired == 3);
  event_base_free(base);
}

TEST_CASE("Timer re-armed for later does not fire at the earlier deadline (lazy re-arming)") {
  event_base* base = NewBase();
  int fired = 0;
  sessiond::net::Timer t(base, [](void* arg) { ++*static_cast<int*>(arg); }, &fired);
  t.Arm(std::chrono::milliseconds(1));
  t.Arm(std::chrono::milliseconds(400));  // later: the pending event stays, and reschedules itself
  event_base_loop(base, EVLOOP_ONCE);     // the early wake-up
  CHECK(fired == 0);
  CHECK(t.armed());
  event_base_loop(base, EVLOOP_ONCE);
  CHECK(fired == 1);
  CHECK(!t.armed());
  // Cancelled after being scheduled: the event still wakes up, and does nothing.
  t.Arm(std::chrono::milliseconds(1));
  t.Cancel();
  event_base_loop(base, EVLOOP_ONCE);
  CHECK(fired == 1);
  event_base_free(base);
}
