// TlsTransport: the TLS of one connection, behind net::Connection's I/O seam
// (docs/ARCHITECTURE.md, TLS).
//
// An OpenSSL SSL object on the connection's own non-blocking socket. The
// Connection drives it from its events: Handshake() until kDone (kWantRead /
// kWantWrite say which event to wait for), then Read() decrypts into the free
// room of the input Buffer and Write() encrypts from the output Buffer's
// slices. Nothing here touches the event loop: a would-block is an EAGAIN,
// and the Connection maps it onto its events.
//
// Server side, the first bytes decide (ClassifyFirstBytes, on a peek that
// consumes nothing): a TLS handshake record starts the handshake; the start
// of an HTTP request line means a plain-HTTP client on the TLS port
// (kPlainHttp: the Connection turns plain so the client can be told, in
// plain HTTP, what went wrong); anything else goes to OpenSSL, which refuses
// it as a failed handshake.
//
// Writes: a short output is gathered into one record of up to 16 KiB
// (staging copy), so a head and a small body leave in one record and one
// system call; a long slice is written directly. A write the socket does not
// take is retried later with the same leading bytes, wherever the output
// buffer holds them by then (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER): the caller
// consumes from the output only what Write() reports written.
//
// Reads: one SSL_read per record while OpenSSL holds undelivered bytes, and
// no system call beyond the one that read them; reading stops at `limit`
// bytes of input (backpressure), leaving the rest inside OpenSSL, and
// buffered() tells the Connection it must come back without waiting for the
// socket.
//
// Not thread-safe: a transport lives on its connection's loop thread.
#pragma once

#include <openssl/ssl.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

#include "net/buffer.h"
#include "net/tls_context.h"

namespace sessiond {
namespace net {

// What the first bytes a client sent on the TLS port look like.
enum class FirstBytes {
  kTls,        // a TLS handshake record (content type 22)
  kPlainHttp,  // the start of an HTTP request line: an upper-case method token, then a space
  kOther,      // anything else: given to OpenSSL, which refuses it
};
// `n` >= 1 bytes as they arrived (at most the first 16 are looked at).
FirstBytes ClassifyFirstBytes(const unsigned char* data, size_t n);

class TlsTransport {
 public:
  enum class Step {
    kDone,       // the handshake is complete
    kWantRead,   // wait until the socket is readable, then call again
    kWantWrite,  // wait until the socket is writable, then call again
    kPlainHttp,  // server: the client speaks plain HTTP (nothing was consumed)
    kEof,        // server: the client closed before sending a single byte
    kFailed,     // the handshake failed: failure() says why
  };

  // A server transport (it sniffs the first bytes). Null if OpenSSL cannot
  // allocate one.
  static std::unique_ptr<TlsTransport> NewServer(std::shared_ptr<const TlsServerContext> context);
  // A client transport (SNI, verification and resumption from `context`).
  static std::unique_ptr<TlsTransport> NewClient(std::shared_ptr<TlsClientContext> context);
  ~TlsTransport();
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  // The socket (non-blocking, connected or connecting); before Handshake().
  void Attach(int fd);

  Step Handshake();
  bool open() const { return state_ == State::kOpen; }
  // The handshake completed, whatever happened since (open() turns false at
  // an error): an error after it is not a failed handshake.
  bool established() const { return established_; }
  bool server() const { return server_; }

  // Decrypts into `in` until OpenSSL has nothing more without a new read of
  // the socket, or `in` holds `limit` bytes. Returns the bytes appended; 0 at
  // the peer's close_notify (or, server side, a TCP close without it); -1
  // with errno: EAGAIN when nothing can be read now, ECONNRESET for a client
  // transport whose peer closed without close_notify (a truncation), EPROTO
  // for a TLS error, or the socket's error.
  ssize_t Read(Buffer& in, size_t limit);
  // Encrypts and sends the first bytes of `out` (at most one write's worth:
  // *wanted says how many it tried). Returns the bytes sent, which the
  // caller then consumes, or -1 with errno (EAGAIN: retry when writable).
  ssize_t Write(const Buffer& out, size_t* wanted);
  // OpenSSL holds bytes (or an end) that Read() would deliver without the
  // socket becoming readable again.
  bool buffered() const;
  // Sends close_notify once, best effort (never blocks, never fails the
  // connection); only on an open transport that met no error.
  void Shutdown();

  // Why the handshake (or the session) failed; empty while nothing failed.
  const std::string& failure() const { return failure_; }
  // The handshake failed because the peer closed the connection mid-way.
  bool closed_during_handshake() const { return closed_; }
  // Server: at least one byte of a handshake arrived (a bare connect and
  // close is not a failed handshake).
  bool saw_bytes() const { return saw_bytes_; }
  // The session was resumed from a ticket (or a cached client session).
  bool resumed() const;
  // "TLSv1.3" ..., for tests and logs.
  const char* version() const;

 private:
  enum class State { kSniff, kHandshake, kOpen, kFailed };
  TlsTransport(SSL* ssl, bool server) : ssl_(ssl), server_(server) {}
  // Turns an SSL_get_error outcome into errno (and failure_), -1.
  ssize_t Error(int ret, int code);
  void RecordFailure(int code);

  SSL* ssl_;
  std::shared_ptr<const void> context_;  // keeps the SSL_CTX's user data alive
  const bool server_;
  State state_ = State::kHandshake;
  int fd_ = -1;
  bool saw_bytes_ = false;
  bool established_ = false;
  bool shut_ = false;
  bool closed_ = false;
  int deferred_ = 0;  // an end met after some bytes were returned: -1 EOF, else its errno
  std::string failure_;
};

}  // namespace net
}  // namespace sessiond
