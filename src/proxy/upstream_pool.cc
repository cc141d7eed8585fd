#include "proxy/upstream_pool.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>

#include "base/log.h"

namespace sessiond {

UpstreamConnection::~UpstreamConnection() {
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


UpstreamPool::~UpstreamPool() { Clear(); }

std::unique_ptr<UpstreamConnection> UpstreamPool::TakeIdle(const SocketAddress& address) {
  while (!idle_.empty() && idle_.back()->address_ != address.text) idle_.pop_back();  // closes it
  if (idle_.empty()) return nullptr;
  std::unique_ptr<UpstreamConnection> conn = std::move(idle_.back());
  idle_.pop_back();
  bufferevent_setcb(conn->bev_, nullptr, nullptr, nullptr, nullptr);
  return conn;
}

std::unique_ptr<UpstreamConnection> UpstreamPool::Connect(const SocketAddress& address) {
  std::unique_ptr<UpstreamConnection> conn(new UpstreamConnection());
  conn->pool_ = this;
  conn->address_ = address.text;
  conn->bev_ = bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE);
  if (!conn->bev_) return nullptr;
  if (bufferevent_socket_connect(conn->bev_, address.sa(), static_cast<int>(address.length)) != 0) {
    return nullptr;
  }
  evutil_socket_t fd = bufferevent_getfd(conn->bev_);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return conn;
}

void UpstreamPool::Release(std::unique_ptr<UpstreamConnection> conn) {
  if (idle_.size() >= kMaxIdle) return;  // conn closes as it goes out of scope
  ++conn->requests_;
  conn->idle_since_ = std::chrono::steady_clock::now();
  // Reading stays enabled (the exchange left it so): an idle connection that
  // the upstream closes or writes to is noticed at once.
  bufferevent_setcb(conn->bev_, UpstreamConnection::IdleReadCb, nullptr, UpstreamConnection::IdleEventCb,
                    conn.get());
  idle_.push_back(std::move(conn));
}

void UpstreamPool::CloseExpired(Millis idle_timeout) {
  const auto oldest = std::chrono::steady_clock::now() - idle_timeout;
  // LIFO: the front holds the connections idle the longest.
  size_t expired = 0;
  while (expired < idle_.size() && idle_[expired]->idle_since_ <= oldest) ++expired;
  idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(expired));
}

void UpstreamPool::DropIdle(UpstreamConnection* conn) {
  auto it = std::find_if(idle_.begin(), idle_.end(), [conn](const auto& p) { return p.get() == conn; });
  if (it != idle_.end()) idle_.erase(it);  // destroys the connection
}

void UpstreamPool::Clear() { idle_.clear(); }

}  // namespace sessiond
