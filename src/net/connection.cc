#include "net/connection.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "net/tls_transport.h"

namespace sessiond {
namespace net {

namespace {

bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

}  // namespace

Connection::Connection(event_base* base, BlockPool* pool) : base_(base), input_(pool), output_(pool) {}

Connection::~Connection() {
  if (fd_ >= 0) {
    event_del(&read_ev_);
    event_del(&write_ev_);
    // A TLS session that ends without an error says so (close_notify, best
    // effort); the transport sends nothing unless it is established.
    if (tls_ && error_ == 0) tls_->Shutdown();
    close(fd_);
  }
}

void Connection::UseTls(std::unique_ptr<TlsTransport> tls) {
  tls_ = std::move(tls);
  if (fd_ < 0) return;
  tls_->Attach(fd_);
  // A client on a socket that is already connected: the handshake starts
  // from the loop (OnConnected once it completes), as after Connect().
  if (!tls_->server() && !connecting_) event_active(&write_ev_, EV_WRITE, 1);
}

bool Connection::tls_handshaking() const { return tls_ && !tls_->open() && error_ == 0; }

void Connection::Adopt(int fd) {
  fd_ = fd;
  if (tls_) tls_->Attach(fd);
  event_assign(&read_ev_, base_, fd, EV_READ | EV_PERSIST, ReadCb, this);
  event_assign(&write_ev_, base_, fd, EV_WRITE | EV_PERSIST, WriteCb, this);
}

bool Connection::Connect(const sockaddr* addr, socklen_t len) {
  const int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  if (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  const int rc = connect(fd, addr, len);
  if (rc != 0 && errno != EINPROGRESS) {
    const int err = errno;
    close(fd);
    errno = err;
    return false;
  }
  Adopt(fd);
  connecting_ = true;
  if (rc == 0) {
    // Connected at once (possible on loopback): still reported from the loop.
    event_active(&write_ev_, EV_WRITE, 1);
  } else {
    ArmWrite();
  }
  return true;
}

void Connection::EnableReading() {
  want_read_ = true;
  UpdateReadEvent();
}

void Connection::DisableReading() {
  want_read_ = false;
  UpdateReadEvent();
}

void Connection::set_read_limit(size_t limit) {
  read_limit_ = limit;
  UpdateReadEvent();
}

void Connection::UpdateReadEvent() {
  const bool want = want_read_ && !stopped_ && !eof_ && fd_ >= 0 && input_.size() < read_limit_;
  if (want == read_armed_) return;
  read_armed_ = want;
  if (want) {
    event_add(&read_ev_, nullptr);
    // Bytes already decrypted (or an end) inside the TLS transport: the
    // socket will not say so.
    if (tls_ && tls_->buffered()) event_active(&read_ev_, EV_READ, 1);
  } else {
    event_del(&read_ev_);
  }
}

void Connection::ArmWrite() {
  if (write_armed_ || stopped_) return;
  write_armed_ = true;
  event_add(&write_ev_, nullptr);
}

void Connection::DisarmWrite() {
  if (!write_armed_) return;
  write_armed_ = false;
  event_del(&write_ev_);
}

void Connection::Stop() {
  stopped_ = true;
  if (fd_ < 0) return;
  event_del(&read_ev_);
  event_del(&write_ev_);
  read_armed_ = false;
  write_armed_ = false;
}

void Connection::Fail(int err) {
  error_ = err;
  Stop();
}

void Connection::ShutdownWrite() {
  if (fd_ < 0) return;
  if (tls_) tls_->Shutdown();
  shutdown(fd_, SHUT_WR);
}

ssize_t Connection::ReadSome() {
  size_t room = 0;
  char* p = input_.ReadRoom(&room);
  const ssize_t n = read(fd_, p, room);
  if (n > 0) {
    input_.Commit(static_cast<size_t>(n));
  } else {
    const int err = errno;
    input_.ReleaseIfEmpty();
    errno = err;
  }
  return n;
}

ssize_t Connection::WriteSome(size_t* wanted) {
  iovec iov[kMaxIovecs];
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<size_t>(output_.Gather(iov, kMaxIovecs));
  *wanted = 0;
  for (size_t i = 0; i < msg.msg_iovlen; ++i) *wanted += iov[i].iov_len;
  // MSG_NOSIGNAL: a peer that is gone is an EPIPE error, not a signal.
  const ssize_t n = sendmsg(fd_, &msg, MSG_NOSIGNAL);
  if (n > 0) output_.Consume(static_cast<size_t>(n));
  return n;
}

void Connection::Flush() {
  if (fd_ < 0 || connecting_ || stopped_ || write_armed_) return;
  if (tls_) {
    TlsFlush();
    return;
  }
  while (!output_.empty()) {
    size_t wanted = 0;
    const ssize_t n = WriteSome(&wanted);
    if (n < 0) {
      if (WouldBlock(errno)) break;
      // Reported from the loop, so the caller's own call stack never sees
      // its handler run (and perhaps free the caller) underneath it.
      Fail(errno);
      error_pending_ = true;
      event_active(&write_ev_, EV_WRITE, 1);
      return;
    }
    // A short write: the socket is full. A whole one may have left more
    // slices than one writev takes.
    if (static_cast<size_t>(n) < wanted) break;
  }
  if (!output_.empty()) ArmWrite();
}

void Connection::ReadCb(evutil_socket_t, short, void* arg) { static_cast<Connection*>(arg)->OnReadEvent(); }
void Connection::WriteCb(evutil_socket_t, short, void* arg) { static_cast<Connection*>(arg)->OnWriteEvent(); }

void Connection::OnReadEvent() {
  if (tls_) {
    OnTlsReadEvent();
    return;
  }
  const ssize_t n = ReadSome();
  if (n > 0) {
    if (input_.size() >= read_limit_) UpdateReadEvent();
    handler_->OnReadable(this);
    return;
  }
  if (n == 0) {
    eof_ = true;
    UpdateReadEvent();
    handler_->OnPeerEof(this);
    return;
  }
  if (WouldBlock(errno)) return;
  const int err = errno;
  Fail(err);
  handler_->OnError(this, err);
}

void Connection::OnWriteEvent() {
  if (error_pending_) {
    error_pending_ = false;
    handler_->OnError(this, error_);
    return;
  }
  if (stopped_) return;
  if (connecting_) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    connecting_ = false;
    if (err != 0) {
      Fail(err);
      handler_->OnError(this, err);
      return;
    }
    if (output_.empty()) DisarmWrite();
    if (tls_) {
      TlsHandshake();  // OnConnected once it completes
      return;
    }
    handler_->OnConnected(this);
    return;
  }
  if (tls_) {
    OnTlsWriteEvent();
    return;
  }
  size_t wanted = 0;
  const ssize_t n = WriteSome(&wanted);
  if (n < 0) {
    if (WouldBlock(errno)) return;
    const int err = errno;
    Fail(err);
    handler_->OnError(this, err);
    return;
  }
  if (output_.empty()) DisarmWrite();
  if (output_.size() <= low_mark_) handler_->OnWritable(this);
}

// ---- TLS (net/tls_transport.h) ----

void Connection::TlsHandshake() {
  switch (tls_->Handshake()) {
    case TlsTransport::Step::kDone:
      if (output_.empty()) DisarmWrite();  // the write event served the handshake only
      if (tls_->server()) {
        handler_->OnTlsEstablished(this);
        if (stopped_) return;
        // The first request may have come with the handshake's last flight,
        // already inside the transport.
        OnTlsReadEvent();
      } else {
        if (tls_->buffered()) event_active(&read_ev_, EV_READ, 1);
        handler_->OnConnected(this);
      }
      return;
    case TlsTransport::Step::kWantRead:
      if (output_.empty()) DisarmWrite();
      if (!read_armed_ && !stopped_) {
        read_armed_ = true;  // UpdateReadEvent sets it right once the handshake is over
        event_add(&read_ev_, nullptr);
      }
      return;
    case TlsTransport::Step::kWantWrite:
      ArmWrite();
      return;
    case TlsTransport::Step::kPlainHttp:
      // Nothing was consumed: the level-triggered read event reports the
      // request's bytes again, now to the plain path.
      tls_.reset();
      handler_->OnPlainHttpOnTls(this);
      return;
    case TlsTransport::Step::kEof:
      eof_ = true;
      UpdateReadEvent();
      handler_->OnPeerEof(this);
      return;
    case TlsTransport::Step::kFailed:
      Fail(EPROTO);
      handler_->OnError(this, EPROTO);
      return;
  }
}

void Connection::OnTlsReadEvent() {
  // Once established, reads go to the transport even after it met an
  // error: an error found behind the last bytes it returned is reported by
  // the next Read, with its own errno.
  if (!tls_->established()) {
    TlsHandshake();
    return;
  }
  if (!read_armed_) return;  // activated while reading was on, turned off since
  const ssize_t n = tls_->Read(input_, read_limit_);
  if (n > 0) {
    if (input_.size() >= read_limit_) {
      UpdateReadEvent();
    } else if (tls_->buffered()) {
      event_active(&read_ev_, EV_READ, 1);  // an end met after these bytes
    }
    handler_->OnReadable(this);
    return;
  }
  if (n == 0) {
    eof_ = true;
    UpdateReadEvent();
    handler_->OnPeerEof(this);
    return;
  }
  if (WouldBlock(errno)) return;
  const int err = errno;
  Fail(err);
  handler_->OnError(this, err);
}

void Connection::TlsFlush() {
  if (!tls_->open()) return;  // written once the handshake completes
  // With partial writes one SSL_write sends one record: go on until the
  // output is empty or the socket is full.
  while (!output_.empty()) {
    size_t wanted = 0;
    const ssize_t n = tls_->Write(output_, &wanted);
    if (n < 0) {
      if (WouldBlock(errno)) break;
      Fail(errno);
      error_pending_ = true;  // reported from the loop, as for a plain write
      event_active(&write_ev_, EV_WRITE, 1);
      return;
    }
    output_.Consume(static_cast<size_t>(n));
  }
  if (!output_.empty()) ArmWrite();
}

void Connection::OnTlsWriteEvent() {
  if (!tls_->open()) {
    TlsHandshake();
    return;
  }
  while (!output_.empty()) {
    size_t wanted = 0;
    const ssize_t n = tls_->Write(output_, &wanted);
    if (n < 0) {
      if (!WouldBlock(errno)) {
        const int err = errno;
        Fail(err);
        handler_->OnError(this, err);
      } else if (output_.size() <= low_mark_) {
        handler_->OnWritable(this);
      }
      return;
    }
    output_.Consume(static_cast<size_t>(n));
  }
  DisarmWrite();
  handler_->OnWritable(this);
}

}  // namespace net
}  // namespace sessiond
