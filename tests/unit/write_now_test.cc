// WriteNow: queued bufferevent output sent within the current callback.
#include "proxy/write_now.h"

#include <doctest/doctest.h>
#include <event2/buffer.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

using namespace sessiond;

namespace {

// A loop with the worker's epoll changelist and a socket bufferevent on one end
// of a socketpair; the test reads the other end directly.
struct Pair {
  event_base* base = nullptr;
  bufferevent* bev = nullptr;
  int peer = -1;
  short events = 0;  // what the event callback reported

  explicit Pair(int sndbuf = 0) {
    event_config* cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    if (sndbuf) setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    evutil_make_socket_nonblocking(fds[0]);
    evutil_make_socket_nonblocking(fds[1]);
    peer = fds[1];
    bev = bufferevent_socket_new(base, fds[0], BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(
        bev, nullptr, nullptr, [](bufferevent*, short what, void* arg) { static_cast<Pair*>(arg)->events |= what; },
        this);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
  }
  ~Pair() {
    bufferevent_free(bev);
    if (peer >= 0) close(peer);
    event_base_free(base);
  }
  bool WritePending() { return event_pending(&bev->ev_write, EV_WRITE, nullptr) != 0; }
  std::string ReadPeer() {
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = read(peer, buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
    return got;
  }
};

}  // namespace

TEST_CASE("WriteNow sends a small message at once and withdraws the write event") {
  Pair p;
  bufferevent_write(p.bev, "HTTP/1.1 200 OK\r\n\r\n", 19);
  CHECK(p.WritePending());  // queuing registered interest in EPOLLOUT
  WriteNow(p.bev);
  CHECK(evbuffer_get_length(bufferevent_get_output(p.bev)) == 0);
  CHECK_FALSE(p.WritePending());
  CHECK(p.ReadPeer() == "HTTP/1.1 200 OK\r\n\r\n");  // before the loop ever ran
}

TEST_CASE("WriteNow with nothing queued does nothing") {
  Pair p;
  event_base_loop(p.base, EVLOOP_NONBLOCK);  // the idle write event fires once and is withdrawn
  REQUIRE_FALSE(p.WritePending());
  WriteNow(p.bev);
  CHECK_FALSE(p.WritePending());
  CHECK(p.ReadPeer().empty());
}

TEST_CASE("WriteNow leaves what the socket does not take to the bufferevent, in order") {
  Pair p(/*sndbuf=*/4096);
  std::string big;
  for (int i = 0; big.size() < (4u << 20); ++i) big += std::to_string(i) + ",";
  bufferevent_write(p.bev, big.data(), big.size());
  WriteNow(p.bev);
  const size_t left = evbuffer_get_length(bufferevent_get_output(p.bev));
  CHECK(left > 0);
  CHECK(left < big.size());
  CHECK(p.WritePending());  // the rest still goes out when the socket has room
  std::string got;
  for (int i = 0; i < 100000 && got.size() < big.size(); ++i) {
    got += p.ReadPeer();
    event_base_loop(p.base, EVLOOP_NONBLOCK);
  }
  got += p.ReadPeer();
  CHECK(got.size() == big.size());
  CHECK(got == big);
}

TEST_CASE("WriteNow leaves a write error for the bufferevent to report") {
  signal(SIGPIPE, SIG_IGN);
  Pair p;
  close(p.peer);
  p.peer = -1;
  bufferevent_write(p.bev, "lost", 4);
  WriteNow(p.bev);
  CHECK(evbuffer_get_length(bufferevent_get_output(p.bev)) == 4);  // nothing was dropped silently
  CHECK(p.WritePending());
  for (int i = 0; i < 100 && !(p.events & BEV_EVENT_ERROR); ++i) event_base_loop(p.base, EVLOOP_NONBLOCK);
  CHECK((p.events & BEV_EVENT_ERROR) != 0);
  CHECK((p.events & BEV_EVENT_WRITING) != 0);
}
