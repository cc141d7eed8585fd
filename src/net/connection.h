// Connection: one non-blocking stream socket on an event loop, with an input
// and an output Buffer, built on two raw libevent events embedded in it.
//
// Reading: while reading is enabled, each time the socket is readable the
// connection does one read() into the free room of the input buffer's last
// block (no FIONREAD, no second read) and tells its handler. It stops reading
// by itself while the input holds read_limit() bytes or more (backpressure:
// the kernel's receive window then slows the peer); whoever consumes input
// outside the read callback calls RefreshReading() afterwards.
//
// Writing comes first, as in redis: Flush() writes the output at once (one
// writev of up to kMaxIovecs slices). Only when the socket does not take it
// all is the write event armed; it writes the rest as the socket drains, is
// disarmed when the output is empty, and reports OnWritable() whenever a
// write it made leaves the output at or below low_mark(). A connection that
// writes whole messages and never fills the socket never touches epoll for
// writing.
//
// Outgoing connections: Connect() starts a non-blocking connect; its outcome
// is reported once, asynchronously, as OnConnected() or OnError().
//
// Every event is reported with exactly one handler call, which may destroy
// the connection (the connection touches nothing of itself afterwards). A
// write error met by Flush() is reported later, from the event loop, never
// inside the caller's own call.
//
// The socket I/O is confined to ReadSome() and WriteSome(): the seam where a
// TLS transport goes. With UseTls() the connection speaks TLS
// (net/tls_transport.h): a server connection runs its handshake before its
// first OnReadable, a client connection before OnConnected, and from then on
// reads and writes go through the transport with the same events and the same
// contract as above; the write event also serves a handshake that must
// write. A plain connection pays one pointer check per event for this.
#pragma once

#include <event2/event.h>
#include <event2/event_struct.h>
#include <sys/socket.h>

#include <cstddef>
#include <memory>

#include "net/buffer.h"

namespace sessiond {
namespace net {

class TlsTransport;

class Connection {
 public:
  static constexpr int kMaxIovecs = 64;

  class Handler {
   public:
    // New bytes were appended to input().
    virtual void OnReadable(Connection* conn) = 0;
    // The peer closed its sending side: nothing more will be read (input()
    // may still hold bytes not yet consumed). Reading stops.
    virtual void OnPeerEof(Connection* conn) = 0;
    // A write made from the event loop left output() at or below low_mark().
    virtual void OnWritable(Connection* conn) = 0;
    // Connect() completed.
    virtual void OnConnected(Connection* conn) {}
    // The connection failed (connect refused, reset, write error): `err` is
    // the errno. Nothing more can be read or written; all events stop. A
    // failed TLS handshake is EPROTO, with tls()->failure() saying why.
    virtual void OnError(Connection* conn, int err) = 0;
    // TLS, server side: the handshake completed; reading goes on. Must not
    // destroy the connection.
    virtual void OnTlsEstablished(Connection* conn) {}
    // TLS, server side: the client's first bytes are a plain-HTTP request.
    // The connection is plain from now on (tls() is null) and its bytes are
    // still unread: they come with the next OnReadable. Must not destroy the
    // connection.
    virtual void OnPlainHttpOnTls(Connection* conn) {}

   protected:
    ~Handler() = default;
  };

  Connection(event_base* base, BlockPool* pool);
  ~Connection();  // closes the socket
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Takes ownership of a connected, non-blocking socket.
  void Adopt(int fd);
  // Starts connecting to `addr`. False (errno set) when it fails at once.
  bool Connect(const sockaddr* addr, socklen_t len);
  // Speaks TLS through `tls` (TlsTransport::NewServer or NewClient): after
  // Adopt() for a server connection; for a client, before Connect(), or
  // after Adopt() of a connected socket (the handshake then starts from the
  // loop and OnConnected reports its end).
  void UseTls(std::unique_ptr<TlsTransport> tls);
  // The TLS transport, or null for a plain connection.
  TlsTransport* tls() const { return tls_.get(); }
  // TLS was started and its handshake has not completed (nor failed).
  bool tls_handshaking() const;

  void set_handler(Handler* handler) { handler_ = handler; }
  Handler* handler() const { return handler_; }

  Buffer& input() { return input_; }
  Buffer& output() { return output_; }
  int fd() const { return fd_; }

  // Reading is off until enabled.
  void EnableReading();
  void DisableReading();
  bool reading_enabled() const { return want_read_; }
  void set_read_limit(size_t limit);
  size_t read_limit() const { return read_limit_; }
  // Resumes reading paused by the read limit once the input is below it.
  void RefreshReading() { UpdateReadEvent(); }

  // Writes the output now (see the file comment).
  void Flush();
  size_t low_mark() const { return low_mark_; }
  void set_low_mark(size_t mark) { low_mark_ = mark; }
  // The write event is armed: the socket did not take everything.
  bool write_pending() const { return write_armed_; }

  // Half-close: sends FIN after what the socket has already taken (and TLS's
  // close_notify before it).
  void ShutdownWrite();
  // Stops every event (the socket stays open until destruction).
  void Stop();

  bool connecting() const { return connecting_; }
  bool peer_eof() const { return eof_; }
  int error() const { return error_; }

 private:
  static void ReadCb(evutil_socket_t, short, void* arg);
  static void WriteCb(evutil_socket_t, short, void* arg);
  void OnReadEvent();
  void OnWriteEvent();

  // The I/O seam. ReadSome: bytes read into input_, 0 at EOF, -1 with errno.
  // WriteSome: one writev of the first slices of output_ (*wanted bytes);
  // the bytes written (and consumed), -1 with errno.
  ssize_t ReadSome();
  ssize_t WriteSome(size_t* wanted);

  // The TLS side of the events (net/tls_transport.h).
  void OnTlsReadEvent();
  void OnTlsWriteEvent();
  void TlsHandshake();
  void TlsFlush();

  void UpdateReadEvent();
  void ArmWrite();
  void DisarmWrite();
  void Fail(int err);  // records the error and stops every event

  event_base* base_;
  Handler* handler_ = nullptr;
  int fd_ = -1;
  event read_ev_;
  event write_ev_;
  Buffer input_;
  Buffer output_;
  std::unique_ptr<TlsTransport> tls_;
  size_t read_limit_ = SIZE_MAX;
  size_t low_mark_ = 0;
  bool want_read_ = false;
  bool read_armed_ = false;
  bool write_armed_ = false;
  bool connecting_ = false;
  bool eof_ = false;
  bool stopped_ = false;
  bool error_pending_ = false;  // a Flush() error waiting for the event loop to report it
  int error_ = 0;
};

}  // namespace net
}  // namespace sessiond
