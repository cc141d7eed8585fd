// ClientConnection: one accepted client socket, from accept to close.
//
// It reads request heads, answers framing errors itself, and runs the
// requests one at a time through an Exchange. Pipelined requests wait in the
// input buffer until the current exchange has written its whole response,
// so responses always leave in request order. It owns the exchange, the
// header/idle/linger timer and the socket, and frees itself (never in the
// middle of its own callback: see CloseSoon) when the connection ends.
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
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "http/head_parser.h"

namespace sessiond {

class Exchange;
class ProxyHost;

class ClientConnection {
 public:
  // Takes ownership of fd (already non-blocking).
  ClientConnection(ProxyHost* worker, evutil_socket_t fd, const sockaddr* peer);
  ~ClientConnection();
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Returns false when the connection could not be set up (it is then freed).
  bool Start();

  // ---- for the Exchange ----
  bufferevent* bev() const { return bev_; }
  ProxyHost* worker() const { return worker_; }
  const std::string& client_ip() const { return client_ip_; }
  // The client closed its sending side (it may still read our response).
  bool peer_eof() const { return peer_eof_; }
  // The exchange wrote its whole response to the output buffer. `keep_alive`
  // false closes the connection once the output is flushed.
  void ExchangeFinished(bool keep_alive);
  // The exchange cannot continue and has nothing more to send: close now
  // (after flushing what is already queued).
  void ExchangeAborted();
  // `bytes` more of the request body arrived (0 when the body starts).
  void RequestBodyProgress(uint64_t bytes);
  // Graceful shutdown: close now if idle, otherwise after the current exchange.
  void BeginShutdown();

 private:
  enum class State { kWaitingHead, kInExchange, kClosingAfterFlush, kLingering, kClosed };

  static void ReadCb(bufferevent* bev, void* arg);
  static void WriteCb(bufferevent* bev, void* arg);
  static void EventCb(bufferevent* bev, short what, void* arg);
  static void TimerCb(evutil_socket_t, short, void* arg);
  static void DeferredCb(evutil_socket_t, short, void* arg);

  void OnReadable();
  void OnWritable();
  void OnEvent(short what);
  void OnTimer();
  void OnDeferred();

  // Looks for a complete head in the input; starts an exchange or answers an error.
  void TryStartRequest();
  // Answers a framing error (400, 413, 431, 505...) and closes after flushing.
  void RejectRequest(int status, const char* why, bool is_head_request = false);
  void CloseAfterFlush();
  void StartLingering();
  // Stops all I/O and frees this object from a deferred callback.
  void CloseSoon();
  void ArmTimer(Millis timeout);
  void ScheduleDeferred();

  ProxyHost* worker_;
  std::shared_ptr<const Config> config_;  // the config of the current request
  bufferevent* bev_ = nullptr;
  event* timer_ = nullptr;
  event* deferred_ = nullptr;
  std::string client_ip_;
  State state_ = State::kWaitingHead;
  bool peer_eof_ = false;
  bool header_timer_running_ = false;  // the timer currently counts client_header
  // The head being received: parser state, the request it fills, and the
  // copy of its bytes that the request's views point into.
  HeadParser head_parser_;
  std::unique_ptr<RequestHead> pending_request_;
  std::vector<char> head_bytes_;
  std::chrono::steady_clock::time_point head_started_;  // first byte of the current head
  bool body_deadline_set_ = false;
  std::chrono::steady_clock::time_point body_deadline_;
  std::unique_ptr<Exchange> exchange_;
  std::unique_ptr<Exchange> finished_;  // freed in OnDeferred, outside its own call stack
};

}  // namespace sessiond
