#include "http/upstream_pool.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>

#include "util/log.h"

namespace sessiond {

UpstreamConnection::~UpstreamConnection() {
  if (idle_timer_) event_free(idle_timer_);
  if (bev_) bufferevent_free(bev_);  // BEV_OPT_CLOSE_ON_FREE closes the socket
}

void UpstreamConnection::IdleReadCb(bufferevent* bev, void* arg) {
  // An idle upstream connection must stay silent; anything it sends would be
  // mistaken for the start of the next response.
  auto* conn = static_cast<UpstreamConnection*>(arg);
  conn->pool_->DropIdle(conn);
}

void UpstreamConnection::IdleEventCb(bufferevent* bev, short what, void* arg) {
  auto* conn = static_cast<UpstreamConnection*>(arg);
  conn->pool_->DropIdle(conn);
}

void UpstreamConnection::IdleTimeoutCb(evutil_socket_t, short, void* arg) {
  auto* conn = static_cast<UpstreamConnection*>(arg);
  conn->pool_->DropIdle(conn);
}

UpstreamPool::~UpstreamPool() { Clear(); }

std::unique_ptr<UpstreamConnection> UpstreamPool::TakeIdle(const SocketAddress& address) {
  while (!idle_.empty() && idle_.back()->address_ != address.text) idle_.pop_back();  // closes it
  if (idle_.empty()) return nullptr;
  std::unique_ptr<UpstreamConnection> conn = std::move(idle_.back());
  idle_.pop_back();
  evtimer_del(conn->idle_timer_);
  bufferevent_setcb(conn->bev_, nullptr, nullptr, nullptr, nullptr);
  bufferevent_disable(conn->bev_, EV_READ);
  return conn;
}

std::unique_ptr<UpstreamConnection> UpstreamPool::Connect(const SocketAddress& address) {
  std::unique_ptr<UpstreamConnection> conn(new UpstreamConnection());
  conn->pool_ = this;
  conn->address_ = address.text;
  conn->bev_ = bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE);
  if (!conn->bev_) return nullptr;
  conn->idle_timer_ = evtimer_new(base_, UpstreamConnection::IdleTimeoutCb, conn.get());
  if (!conn->idle_timer_) return nullptr;
  if (bufferevent_socket_connect(conn->bev_, address.sa(), static_cast<int>(address.length)) != 0) {
    return nullptr;
  }
  evutil_socket_t fd = bufferevent_getfd(conn->bev_);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return conn;
}

void UpstreamPool::Release(std::unique_ptr<UpstreamConnection> conn, Millis idle_timeout) {
  if (idle_.size() >= kMaxIdle) return;  // conn closes as it goes out of scope
  ++conn->requests_;
  bufferevent_setcb(conn->bev_, UpstreamConnection::IdleReadCb, nullptr, UpstreamConnection::IdleEventCb,
                    conn.get());
  bufferevent_setwatermark(conn->bev_, EV_READ, 0, 0);
  bufferevent_setwatermark(conn->bev_, EV_WRITE, 0, 0);
  bufferevent_enable(conn->bev_, EV_READ);
  timeval tv{static_cast<time_t>(idle_timeout.count() / 1000),
             static_cast<suseconds_t>((idle_timeout.count() % 1000) * 1000)};
  evtimer_add(conn->idle_timer_, &tv);
  idle_.push_back(std::move(conn));
}

void UpstreamPool::DropIdle(UpstreamConnection* conn) {
  auto it = std::find_if(idle_.begin(), idle_.end(), [conn](const auto& p) { return p.get() == conn; });
  if (it != idle_.end()) idle_.erase(it);  // destroys the connection
}

void UpstreamPool::Clear() { idle_.clear(); }

}  // namespace sessiond
