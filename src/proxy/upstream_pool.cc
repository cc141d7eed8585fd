#include "proxy/upstream_pool.h"

#include <errno.h>

#include <algorithm>

#include "net/tls_transport.h"
#include "observe/metrics.h"

namespace sessiond {

UpstreamConnection::UpstreamConnection(UpstreamPool* pool, event_base* base, net::BlockPool* blocks)
    : conn_(base, blocks), pool_(pool) {}

UpstreamConnection::~UpstreamConnection() {
  if (!idle_) --pool_->in_use_;  // an exchange dropped it
}

void UpstreamConnection::OnReadable(net::Connection*) { pool_->DropIdle(this); }
void UpstreamConnection::OnPeerEof(net::Connection*) { pool_->DropIdle(this); }
void UpstreamConnection::OnError(net::Connection*, int) { pool_->DropIdle(this); }

UpstreamPool::~UpstreamPool() { Clear(); }

size_t UpstreamPool::idle_cap() const {
  size_t peak = in_use_;
  for (size_t p : peaks_) peak = std::max(peak, p);
  return std::max(kMinIdle, peak);
}

void UpstreamPool::NoteInUse() {
  ++in_use_;
  size_t& peak = peaks_[peak_slot_];
  if (in_use_ > peak) peak = in_use_;
}

void UpstreamPool::Link(UpstreamConnection* c) {
  c->prev_ = newest_;
  c->next_ = nullptr;
  if (newest_) {
    newest_->next_ = c;
  } else {
    oldest_ = c;
  }
  newest_ = c;
  ++idle_count_;
}

void UpstreamPool::Unlink(UpstreamConnection* c) {
  (c->prev_ ? c->prev_->next_ : oldest_) = c->next_;
  (c->next_ ? c->next_->prev_ : newest_) = c->prev_;
  c->prev_ = c->next_ = nullptr;
  --idle_count_;
}

void UpstreamPool::DropIdle(UpstreamConnection* c) {
  Unlink(c);
  delete c;  // idle_: not counted in use
}

std::unique_ptr<UpstreamConnection> UpstreamPool::TakeIdle(const SocketAddress& address) {
  while (newest_ && newest_->address_ != address.text) DropIdle(newest_);
  if (!newest_) return nullptr;
  UpstreamConnection* c = newest_;
  Unlink(c);
  c->idle_ = false;
  c->conn_.set_handler(nullptr);
  NoteInUse();
  return std::unique_ptr<UpstreamConnection>(c);
}

std::unique_ptr<UpstreamConnection> UpstreamPool::Connect(const SocketAddress& address,
                                                          const std::shared_ptr<net::TlsClientContext>& tls) {
  std::unique_ptr<UpstreamConnection> c(new UpstreamConnection(this, base_, blocks_));
  c->address_ = address.text;
  NoteInUse();  // from here on its destructor counts it out
  if (tls) {
    std::unique_ptr<net::TlsTransport> t = net::TlsTransport::NewClient(tls);
    if (!t) {
      c.reset();
      errno = ENOMEM;  // for the caller's log line
      return nullptr;
    }
    c->conn_.UseTls(std::move(t));
  }
  if (!c->conn_.Connect(address.sa(), static_cast<socklen_t>(address.length))) {
    const int err = errno;
    c.reset();
    errno = err;  // for the caller's log line
    return nullptr;
  }
  if (metrics_) Inc(metrics_->upstream_connections_opened);
  c->conn_.EnableReading();
  return c;
}

void UpstreamPool::Release(std::unique_ptr<UpstreamConnection> conn) {
  UpstreamConnection* c = conn.release();
  --in_use_;
  c->idle_ = true;
  ++c->requests_;
  if (idle_count_ >= idle_cap()) {
    delete c;
    return;
  }
  c->idle_since_ = std::chrono::steady_clock::now();
  c->conn_.set_handler(c);
  // Watch for a close (or stray bytes), even if the exchange's last reads
  // had paused reading at the read limit.
  c->conn_.EnableReading();
  Link(c);
}

void UpstreamPool::Tick(Millis idle_timeout) {
  peak_slot_ = (peak_slot_ + 1) % kPeakWindow;
  peaks_[peak_slot_] = in_use_;
  const size_t cap = idle_cap();
  while (idle_count_ > cap) DropIdle(oldest_);
  const auto oldest_allowed = std::chrono::steady_clock::now() - idle_timeout;
  while (oldest_ && oldest_->idle_since_ <= oldest_allowed) DropIdle(oldest_);
}

void UpstreamPool::Clear() {
  while (oldest_) DropIdle(oldest_);
}

}  // namespace sessiond
