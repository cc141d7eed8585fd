#include "net/tls_transport.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace sessiond {
namespace net {

namespace {

// A TLS record holds at most 16 KiB of plaintext: the most worth gathering
// into one write.
constexpr size_t kRecordBytes = 16384;
// A single slice is written directly up to this much per call (OpenSSL cuts
// it into records and, with partial writes, reports each one's progress).
constexpr size_t kMaxDirectWrite = 256 * 1024;
// The most of the first bytes ClassifyFirstBytes looks at: longer than any
// method sessiond's parser accepts, plus the space after it.
constexpr size_t kSniffBytes = 16;

bool IsUpper(unsigned char c) { return c >= 'A' && c <= 'Z'; }

// The reason code of the last error on OpenSSL's queue, and its text.
int LastReason(std::string* text) {
  unsigned long last = 0;
  while (unsigned long e = ERR_get_error()) last = e;
  if (last == 0) return 0;
  if (text) {
    const char* reason = ERR_reason_error_string(last);
    *text = reason ? reason : "TLS error";
  }
  return ERR_GET_REASON(last);
}

}  // namespace

FirstBytes ClassifyFirstBytes(const unsigned char* data, size_t n) {
  if (n == 0) return FirstBytes::kOther;
  if (data[0] == 0x16) return FirstBytes::kTls;
  if (!IsUpper(data[0])) return FirstBytes::kOther;
  const size_t look = std::min(n, kSniffBytes);
  for (size_t i = 1; i < look; ++i) {
    const unsigned char c = data[i];
    if (c == ' ') return FirstBytes::kPlainHttp;
    if (!IsUpper(c) && c != '-' && c != '_') return FirstBytes::kOther;
  }
  // Letters so far and no space yet: a method still arriving, unless it is
  // already longer than any method.
  return look < kSniffBytes ? FirstBytes::kPlainHttp : FirstBytes::kOther;
}

std::unique_ptr<TlsTransport> TlsTransport::NewServer(std::shared_ptr<const TlsServerContext> context) {
  SSL* ssl = SSL_new(context->ctx());
  if (!ssl) return nullptr;
  SSL_set_accept_state(ssl);
  std::unique_ptr<TlsTransport> t(new TlsTransport(ssl, /*server=*/true));
  t->context_ = std::move(context);
  t->state_ = State::kSniff;
  return t;
}

std::unique_ptr<TlsTransport> TlsTransport::NewClient(std::shared_ptr<TlsClientContext> context) {
  SSL* ssl = context->NewSsl();
  if (!ssl) return nullptr;
  std::unique_ptr<TlsTransport> t(new TlsTransport(ssl, /*server=*/false));
  t->context_ = std::move(context);
  return t;
}

TlsTransport::~TlsTransport() { SSL_free(ssl_); }

void TlsTransport::Attach(int fd) {
  fd_ = fd;
  SSL_set_fd(ssl_, fd);
}

TlsTransport::Step TlsTransport::Handshake() {
  if (state_ == State::kOpen) return Step::kDone;
  if (state_ == State::kFailed) return Step::kFailed;
  if (state_ == State::kSniff) {
    unsigned char peek[kSniffBytes];
    ssize_t n;
    do {
      n = recv(fd_, peek, sizeof(peek), MSG_PEEK);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Step::kWantRead;
      failure_ = strerror(errno);
      state_ = State::kFailed;
      return Step::kFailed;
    }
    if (n == 0) return Step::kEof;
    saw_bytes_ = true;
    if (ClassifyFirstBytes(peek, static_cast<size_t>(n)) == FirstBytes::kPlainHttp) return Step::kPlainHttp;
    state_ = State::kHandshake;
  }
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    state_ = State::kOpen;
    established_ = true;
    return Step::kDone;
  }
  const int code = SSL_get_error(ssl_, r);
  if (code == SSL_ERROR_WANT_READ) return Step::kWantRead;
  if (code == SSL_ERROR_WANT_WRITE) return Step::kWantWrite;
  RecordFailure(code);
  state_ = State::kFailed;
  return Step::kFailed;
}

void TlsTransport::RecordFailure(int code) {
  const int saved_errno = errno;
  std::string text;
  const int reason = LastReason(&text);
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) {
    // The peer's certificate: say which check refused it.
    failure_ = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
  } else if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING || (code == SSL_ERROR_SYSCALL && reason == 0 &&
                                                              (saved_errno == 0 || saved_errno == EAGAIN))) {
    failure_ = "connection closed during the handshake";
    closed_ = true;
  } else if (code == SSL_ERROR_ZERO_RETURN) {
    failure_ = "the peer ended the session during the handshake";
    closed_ = true;
  } else if (reason != 0) {
    failure_ = text;
  } else if (code == SSL_ERROR_SYSCALL) {
    failure_ = strerror(saved_errno);
    closed_ = saved_errno == ECONNRESET || saved_errno == EPIPE;
  } else {
    failure_ = "TLS error";
  }
}

ssize_t TlsTransport::Error(int ret, int code) {
  const int saved_errno = errno;
  std::string text;
  const int reason = LastReason(&text);
  int err;
  if (code == SSL_ERROR_ZERO_RETURN) {
    return 0;  // close_notify: a clean end
  } else if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
             (code == SSL_ERROR_SYSCALL && reason == 0 && (ret == 0 || saved_errno == 0))) {
    // The TCP connection ended without close_notify. From a client, as
    // common as it is harmless; from a server, a response delimited by the
    // close could have been cut short, so it is an error.
    if (server_) return 0;
    err = ECONNRESET;
  } else if (code == SSL_ERROR_SYSCALL) {
    err = saved_errno != 0 ? saved_errno : ECONNRESET;
  } else {
    err = EPROTO;
    failure_ = reason != 0 ? text : "TLS error";
  }
  state_ = State::kFailed;  // no close_notify after an error
  errno = err;
  return -1;
}

ssize_t TlsTransport::Read(Buffer& in, size_t limit) {
  ssize_t total = 0;
  while (in.size() < limit && deferred_ == 0) {
    size_t room = 0;
    char* p = in.ReadRoom(&room);
    ERR_clear_error();
    const int n = SSL_read(ssl_, p, static_cast<int>(std::min<size_t>(room, INT_MAX)));
    if (n > 0) {
      in.Commit(static_cast<size_t>(n));
      total += n;
      // Nothing left inside OpenSSL: the socket says when more comes, so no
      // read() is spent to learn that it would block.
      if (!SSL_has_pending(ssl_)) break;
      continue;
    }
    const int code = SSL_get_error(ssl_, n);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) break;
    const ssize_t end = Error(n, code);
    const int err = errno;
    if (total == 0) {
      in.ReleaseIfEmpty();
      errno = err;
      return end;
    }
    deferred_ = end == 0 ? -1 : err;  // reported by the next call
    break;
  }
  if (total > 0) return total;
  in.ReleaseIfEmpty();
  if (deferred_ != 0) {
    const int d = deferred_;
    if (d == -1) return 0;
    errno = d;
    return -1;
  }
  errno = EAGAIN;
  return -1;
}

ssize_t TlsTransport::Write(const Buffer& out, size_t* wanted) {
  static thread_local char staging[kRecordBytes];
  *wanted = 0;
  if (out.empty()) return 0;
  const std::string_view first = out.slice(0);
  const char* data;
  size_t len;
  if (first.size() >= kRecordBytes || out.slice_count() == 1) {
    data = first.data();
    len = std::min(first.size(), kMaxDirectWrite);
  } else {
    len = 0;
    for (size_t i = 0; i < out.slice_count() && len < kRecordBytes; ++i) {
      const std::string_view s = out.slice(i);
      const size_t take = std::min(s.size(), kRecordBytes - len);
      memcpy(staging + len, s.data(), take);
      len += take;
    }
    data = staging;
  }
  *wanted = len;
  ERR_clear_error();
  const int n = SSL_write(ssl_, data, static_cast<int>(len));
  if (n > 0) return n;
  const int code = SSL_get_error(ssl_, n);
  if (code == SSL_ERROR_WANT_WRITE || code == SSL_ERROR_WANT_READ) {
    errno = EAGAIN;
    return -1;
  }
  const ssize_t r = Error(n, code);
  if (r == 0) {  // the peer's close_notify arrived: nothing more can be sent
    state_ = State::kFailed;
    errno = EPIPE;
  }
  return -1;
}

bool TlsTransport::buffered() const { return deferred_ != 0 || SSL_has_pending(ssl_) == 1; }

void TlsTransport::Shutdown() {
  if (state_ != State::kOpen || shut_) return;
  shut_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

bool TlsTransport::resumed() const { return SSL_session_reused(ssl_) == 1; }

const char* TlsTransport::version() const { return SSL_get_version(ssl_); }

}  // namespace net
}  // namespace sessiond
