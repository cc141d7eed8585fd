// ClientConnection: one accepted client socket, from accept to close.
//
// It reads request heads, answers framing errors itself, and runs the
// requests one at a time through an Exchange. Pipelined requests wait in the
// input buffer until the current exchange has written its whole response,
// so responses always leave in request order. It owns the socket (a
// net::Connection), the header/idle/linger timer and, while a request is in
// progress, an Exchange from the worker's pool; it frees itself (never in the
// middle of its own callback: see CloseSoon) when the connection ends. An
// idle keep-alive connection holds no exchange and no buffer memory.
//
// After an exchange that switched protocols (101, docs/HTTP.md "Upgrades and
// WebSockets") the connection is a Tunnel's: it relays the socket's events to
// it until the tunnel ends, then closes.
//
// Timers: from accept, and from the first byte of every later request, the
// whole head must arrive within timeouts.client_header (slowloris defence:
// the connection is closed without a response). Between requests, an idle
// keep-alive connection is closed after timeouts.idle. While a request body
// is being read, the client gets 408 when it sends nothing for timeouts.idle,
// or when the body misses its deadline: timeouts.client_header from the end
// of the head, extended by 1 ms per byte received (a minimum average rate of
// about 1 KB/s, like Apache's mod_reqtimeout), so a body trickled byte by
// byte cannot hold a connection open forever.
//
// TLS (docs/HTTP.md, TLS): on a TLS listener the connection's transport runs
// the handshake first, within the same client_header deadline as the first
// head. A failed or timed-out handshake is counted and logged (at most one
// line a second for the process) and the connection closed; a plain-HTTP
// request on the TLS port is answered 400 in plain HTTP, saying so.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>

#include "base/ip_address.h"
#include "config/config.h"
#include "net/connection.h"
#include "net/timer.h"
#include "net/tls_context.h"

namespace sessiond {

class Exchange;
class ProxyHost;
class Tunnel;
class UpstreamConnection;
struct TunnelSpec;

class ClientConnection final : private net::Connection::Handler {
 public:
  // Takes ownership of fd (already non-blocking). With `tls`, the client
  // speaks TLS (docs/HTTP.md, TLS).
  ClientConnection(ProxyHost* worker, int fd, const sockaddr* peer,
                   const std::shared_ptr<const net::TlsServerContext>& tls = nullptr);
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Starts reading. The connection frees itself when it ends.
  void Start();

  // ---- for the Exchange ----
  net::Connection& conn() { return conn_; }
  ProxyHost* worker() const { return worker_; }
  // The peer's address (the client, or a proxy in front of sessiond).
  const std::string& client_ip() const { return client_ip_; }
  // The connection came to the TLS listener ("https" in X-Forwarded-Proto).
  bool https() const { return https_; }
  const IpAddress& peer() const { return peer_; }
  // The client closed its sending side (it may still read our response).
  bool peer_eof() const { return conn_.peer_eof(); }
  // The exchange wrote its whole response to the output buffer. `keep_alive`
  // false closes the connection once the output is flushed.
  void ExchangeFinished(bool keep_alive);
  // The exchange cannot continue and has nothing more to send: close now
  // (after flushing what is already queued).
  void ExchangeAborted();
  // The exchange wrote a 101 to the output: the connection becomes a tunnel
  // to `upstream` (started from the loop, outside the exchange's stack).
  void ExchangeUpgraded(std::unique_ptr<UpstreamConnection> upstream, TunnelSpec spec);
  // ---- for the Tunnel ----
  // The tunnel has ended (its last call): close after flushing.
  void TunnelFinished();
  // `bytes` more of the request body arrived (0 when the body starts).
  void RequestBodyProgress(uint64_t bytes);
  // Graceful shutdown: close now if idle, otherwise after the current exchange.
  void BeginShutdown();

  // Storage is recycled per thread: a connection that ends leaves its memory
  // for the next one this thread accepts, up to the spare limit, so a worker
  // whose clients reconnect allocates nothing per connection. The host sets
  // the limit (SetSpareLimit; 0 at first) and lowers it to free the spares;
  // a thread sets it to 0 before it ends. Sanitizer builds do not recycle,
  // so that a use after free stays detectable.
  static void* operator new(size_t size);
  static void operator delete(void* p);
  static constexpr size_t kMaxSpare = 256;
  static void SetSpareLimit(size_t limit);

  // ---- for the host (ProxyHost::Register) ----
  // Where the host keeps this connection in its list of live connections.
  size_t host_slot() const { return host_slot_; }
  void set_host_slot(size_t slot) { host_slot_ = slot; }

 private:
  enum class State { kWaitingHead, kInExchange, kTunnel, kClosingAfterFlush, kLingering, kClosed };

  // The socket's events.
  void OnReadable(net::Connection*) override;
  void OnPeerEof(net::Connection*) override;
  void OnWritable(net::Connection*) override;
  void OnError(net::Connection*, int err) override;
  void OnTlsEstablished(net::Connection*) override;
  void OnPlainHttpOnTls(net::Connection*) override;
  static void TimerCb(void* arg);
  static void DeferredCb(void* arg);
  void OnTimer();
  void OnDeferred();

  // Feeds the input to the head parser; starts an exchange or answers an error.
  void TryStartRequest();
  // Answers a refused head (400, 413, 431, 505...) and closes after flushing.
  // `body` with null data: the reason phrase.
  void RejectRequest(int status, const char* why, bool is_head_request, std::string_view body = {});
  // Counts (and logs, rate-limited) a failed TLS handshake.
  void TlsHandshakeFailed(int kind, const char* why);
  void CloseAfterFlush();
  void StartLingering();
  // Stops all I/O and frees this object from a deferred callback.
  void CloseSoon();
  // Hands an exchange that may still be on the call stack to the deferred
  // callback, which returns it to the worker's pool.
  void Retire(Exchange* exchange);
  // Returns the exchange of a head that never started (not on any stack).
  void DropPendingHead();

  ProxyHost* worker_;
  std::shared_ptr<const Config> config_;  // the config of the current request
  net::Connection conn_;
  net::Timer timer_;
  net::Deferred deferred_;
  IpAddress peer_;
  std::string client_ip_;
  bool https_ = false;
  State state_ = State::kWaitingHead;
  bool header_timer_running_ = false;  // the timer currently counts client_header
  std::chrono::steady_clock::time_point head_started_;  // first byte of the current head
  bool body_deadline_set_ = false;
  std::chrono::steady_clock::time_point body_deadline_;
  Exchange* exchange_ = nullptr;  // the head being read, then the request in progress
  Exchange* finished_ = nullptr;  // recycled in OnDeferred, outside its own call stack
  std::unique_ptr<Tunnel> tunnel_;           // in kTunnel
  bool tunnel_started_ = false;
  std::unique_ptr<Tunnel> finished_tunnel_;  // freed in OnDeferred, outside its own call stack
  size_t host_slot_ = 0;
};

}  // namespace sessiond
