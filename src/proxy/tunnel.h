// Tunnel: an upgraded connection (a WebSocket, or another protocol a client
// asked for with Upgrade and the backend accepted with 101), after the
// handshake: bytes relayed both ways untouched (docs/HTTP.md, "Upgrades and
// WebSockets").
//
// - Zero-copy with backpressure both ways, as an exchange's bodies: bytes
//   move from one connection's input to the other's output with
//   Buffer::MoveTo; a direction stops while the receiving output holds
//   kOutputHigh bytes and resumes when it drains to kOutputLow, and each
//   connection stops reading at its read limit, so a slow reader holds back
//   its writer through TCP flow control and memory stays bounded.
// - Half-close: a side's FIN is passed on (shutdown(SHUT_WR)) once what it
//   sent before has been written; the tunnel ends when both directions are
//   closed, or at once when either side fails.
// - Timeouts: timeouts.tunnel_idle without a byte either way, and
//   timeouts.tunnel_max in all.
// - Ending a WebSocket from the middle (the session ended, shutdown, the
//   timeouts): a Close frame with a code (1008 for the session, 1001 else) is
//   put between two server frames to the client, nothing more goes to the
//   client after it, the client's Close reply is relayed to the backend, then
//   both connections close; a client that does not answer within kCloseWait,
//   or a frame that does not complete by then, is cut. Any other protocol is
//   simply closed.
//
// The tunnel is owned by its ClientConnection, which relays the client
// socket's events; the tunnel is the handler of the upstream socket. It ends
// by calling ClientConnection::TunnelFinished (its last action), which
// retires it to a deferred callback. Open tunnels are listed in the worker's
// TunnelRegistry, which checks their sessions twice a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "config/config.h"
#include "http/exchange_filter.h"
#include "http/websocket_frames.h"
#include "net/connection.h"
#include "net/timer.h"
#include "proxy/upstream_pool.h"

namespace sessiond {

class ClientConnection;
class ProxyHost;

struct TunnelSpec {
  bool websocket = false;  // the protocol is WebSocket: frames are followed for a clean close
  SessionBinding session;  // the session the handshake left; unbound: none
  Millis idle{std::chrono::minutes(5)};
  Millis max{std::chrono::hours(24)};
};

class Tunnel final : private net::Connection::Handler {
 public:
  // How long a WebSocket being ended waits for a frame to complete and for
  // the client's Close reply.
  static constexpr Millis kCloseWait{1000};

  Tunnel(ProxyHost* host, ClientConnection* client, std::unique_ptr<UpstreamConnection> upstream, TunnelSpec spec);
  ~Tunnel();
  Tunnel(const Tunnel&) = delete;
  Tunnel& operator=(const Tunnel&) = delete;

  // Starts relaying: bytes already buffered on either side (a client's bytes
  // pipelined behind its upgrade request, a backend's first frames) go first.
  void Start();

  // ---- the client socket's events, relayed by the ClientConnection ----
  void OnClientReadable();
  void OnClientEof();
  void OnClientWritable();

  // Ends the tunnel for `why` (for the log): a WebSocket gets a Close frame
  // with `ws_code` first (see the file comment). Safe to call more than once.
  void End(uint16_t ws_code, const char* why);
  // The client connection is going away (closed or failed): drop the
  // upstream at once and never call the ClientConnection again.
  void Abort();

  uint64_t id() const { return id_; }
  bool websocket() const { return spec_.websocket; }
  const SessionBinding& session() const { return spec_.session; }
  // Adds the bytes relayed since the last call to the metrics.
  void ReportBytes();

 private:
  // The upstream socket's events.
  void OnReadable(net::Connection*) override;
  void OnPeerEof(net::Connection*) override;
  void OnWritable(net::Connection*) override;
  void OnError(net::Connection*, int err) override;
  static void IdleCb(void* arg);
  static void LifeCb(void* arg);

  net::Connection& client();
  net::Connection& upstream() { return upstream_->conn(); }
  void PumpUp();    // client -> upstream
  void PumpDown();  // upstream -> client
  // Half-closes whichever direction has its FIN due, and finishes when both have.
  void CheckEnds();
  void Finish(const char* why);

  ProxyHost* const host_;
  ClientConnection* const client_;
  std::unique_ptr<UpstreamConnection> upstream_;
  TunnelSpec spec_;
  uint64_t id_ = 0;
  net::Timer idle_timer_;
  net::Timer life_timer_;  // tunnel_max, then kCloseWait while ending
  WebSocketFrameTracker to_client_frames_;
  WebSocketFrameTracker to_upstream_frames_;
  bool client_eof_ = false;    // the client sent FIN
  bool upstream_eof_ = false;  // the upstream sent FIN
  bool upstream_shut_ = false;  // FIN passed on to the upstream
  bool client_shut_ = false;    // FIN passed on to the client
  bool ending_ = false;         // End() was called
  bool close_sent_ = false;     // our Close frame is queued to the client
  uint16_t close_code_ = 0;
  bool started_ = false;
  bool finished_ = false;
  uint64_t bytes_up_ = 0, bytes_down_ = 0;  // not yet reported
};

// TunnelRegistry: the open tunnels of one worker, by id, and the twice-a-second
// check of their sessions (docs/HTTP.md, Upgrades and WebSockets): the worker's
// session step (ExchangeFilterFactory::CheckBindings) says which sessions have
// ended, and their tunnels are ended with a 1008 Close. Loop-thread only.
class TunnelRegistry {
 public:
  static constexpr Millis kCheckPeriod{500};
  // A check still unanswered after this long (a store call lost in a reload)
  // no longer holds back the next.
  static constexpr Millis kCheckGiveUp{5000};

  explicit TunnelRegistry(ProxyHost* host);
  ~TunnelRegistry();
  TunnelRegistry(const TunnelRegistry&) = delete;
  TunnelRegistry& operator=(const TunnelRegistry&) = delete;

  // Returns the tunnel's id.
  uint64_t Add(Tunnel* tunnel);
  void Remove(Tunnel* tunnel);
  size_t size() const { return tunnels_.size(); }
  // Ends every tunnel (graceful shutdown: a 1001 Close for WebSockets).
  void EndAll(uint16_t ws_code, const char* why);

 private:
  static void TimerCb(void* arg);
  void CheckSessions();
  void OnChecked(uint64_t generation, const std::vector<uint64_t>& ids, std::vector<bool> ended);

  ProxyHost* const host_;
  net::Timer timer_;
  std::unordered_map<uint64_t, Tunnel*> tunnels_;
  uint64_t next_id_ = 1;
  uint64_t generation_ = 0;  // of the check in flight
  bool checking_ = false;
  std::chrono::steady_clock::time_point check_started_;
  // Cleared by the destructor: a late CheckBindings answer finds it gone.
  std::shared_ptr<bool> alive_;
};

}  // namespace sessiond
