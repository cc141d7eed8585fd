// Exchange: one request/response pair through the sidecar.
//
//   Start -> [filter: OnRequestHead] -> connect/take pooled upstream
//         -> send head, stream request body -> read response head
//         -> [filter: OnResponseHead] -> write head, stream response body
//         -> Finish (upstream back to the pool if reusable)
//
// A request that asks to upgrade (http/upgrade.h) and gets a 101 naming a
// protocol it asked for ends differently: the 101 goes to the client, the
// exchange is logged, and the upstream connection is handed to the
// ClientConnection, which becomes a Tunnel (proxy/tunnel.h). Any other answer
// to it is an ordinary response: the connection stays HTTP, and bytes the
// client sent behind its request are read as the next request.
//
// The exchange owns the parsed heads (their bytes pinned in the connections'
// blocks), the filter, the upstream connection and the upstream timer. Its
// ClientConnection drives it and hands it back to the worker's ExchangePool
// only from a deferred callback, so the exchange may report Finished/Aborted
// from anywhere in its own call stack. Exchanges are reused: the heads' header
// lists and arenas, the timer and the request id buffer stay allocated, so a
// request in steady state allocates nothing here.
//
// Backpressure (docs/ARCHITECTURE.md, "Backpressure"): body bytes move between
// the two sides' buffers without copying (Buffer::MoveTo). A side stops
// pumping while the other side's output holds more than kOutputHigh bytes and
// resumes when a write from the loop has drained it to kOutputLow; each
// connection's read limit then stops reading the socket, so the kernel's flow
// control reaches the sender.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include "base/log.h"
#include "base/ip_address.h"
#include "config/config.h"
#include "http/body.h"
#include "http/exchange_filter.h"
#include "http/head_parser.h"
#include "http/local_reply.h"
#include "http/message.h"
#include "net/block.h"
#include "net/connection.h"
#include "net/timer.h"
#include "proxy/proxy_host.h"
#include "proxy/upstream_pool.h"

namespace sessiond {

class ClientConnection;

class Exchange final : private net::Connection::Handler {
 public:
  static constexpr size_t kOutputHigh = 256 * 1024;
  static constexpr size_t kOutputLow = 64 * 1024;
  static constexpr size_t kMaxRequestId = 128;

  explicit Exchange(ProxyHost* host);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // The head being parsed for this exchange, then the request.
  RequestHead& request() { return request_; }
  // The parser of this exchange's heads: the ClientConnection reads the
  // request head with it, the exchange then the response head (an idle
  // connection holds no parser).
  HeadParser& head_parser() { return head_parser_; }
  // Keeps the request head's bytes (which request() views) valid.
  void PinRequestHead(net::BlockRef pin) { request_pin_ = std::move(pin); }

  // Runs the exchange for `conn` with `config` (the request head is parsed).
  void Start(ClientConnection* conn, std::shared_ptr<const Config> config);

  // ---- events relayed by the ClientConnection ----
  void OnClientReadable();  // request body bytes may be waiting
  void OnClientDrained();   // the client's output fell to kOutputLow
  // The client connection is going away: drop the upstream, never touch the
  // connection again.
  void Abort();
  // The client stopped sending the request body for too long.
  void OnRequestBodyTimeout();

  bool request_body_pending() const { return !request_body_done_ && state_ != State::kDone; }
  // The client's address (docs/HTTP.md, Forwarding and trusted proxies):
  // computed once by Start, for the log, the metrics and the session step.
  std::string_view client_address() const { return std::string_view(client_address_, client_address_len_); }
  bool done() const { return state_ == State::kDone; }
  int status() const { return status_; }

  // Back to the state of a new exchange (called by the pool).
  void Reset();

 private:
  enum class State {
    kIdle,            // not started
    kRequestFilter,   // waiting for the filter's verdict on the request
    kConnecting,      // waiting for the upstream connect
    kAwaitingHead,    // request sent (body may still stream), waiting for the response head
    kResponseFilter,  // waiting for the filter's verdict on the response
    kStreaming,       // response head sent, streaming its body
    kDone,
  };

  // The upstream connection's events.
  void OnReadable(net::Connection*) override;
  void OnPeerEof(net::Connection*) override;
  void OnWritable(net::Connection*) override;
  void OnConnected(net::Connection* conn) override;
  void OnError(net::Connection*, int err) override;
  static void TimerCb(void* arg);

  net::Connection& client();
  void PrepareRequestHeaders();
  // 400 (or 413 for an announced oversize chunk) when the request body bytes
  // already buffered break the chunked framing, else 0. Checked before
  // anything is sent upstream, so that a malformed body that arrived with its
  // head never reaches the backend at all.
  int BufferedBodyIsMalformed() const;
  void OnRequestFiltered(FilterResult result);
  void ConnectUpstream(bool allow_pooled);
  void OnUpstreamConnected();
  void WriteRequestHead();
  void PumpRequestBody();
  void OnUpstreamReadable();
  // `err`: the errno of a failed connection, 0 for a clean close.
  void OnUpstreamClosed(bool clean_eof, int err);
  void TryParseResponseHead();
  void OnResponseFiltered(FilterResult result);
  void WriteResponseHead();
  // The 101 is written: hand the upstream to the client connection's tunnel.
  void OpenTunnel();
  void PumpResponseBody();
  void FinishResponse();
  void OnTimer();
  // Runs once when the exchange ends, however it ends: metrics, access log,
  // the filter's OnComplete.
  void Finalize();

  // Fails the exchange with a local response when nothing has been sent to
  // the client yet; otherwise cuts the client connection. Logs `log_reason`
  // (with the errno `err` when not 0), the client, the request id and the
  // request line (docs/OPERATIONS.md, Error log): at warn, naming the
  // upstream, for a 502 or 504; at debug for a refused client request.
  void Fail(int status, const char* log_reason, int err = 0);
  // The client, request id and request line of this exchange, for a log line.
  LogDetail LogContext() const;
  // `body` with null data: the reason phrase (see http/local_reply.h).
  // `content_type` and `headers`: a filter's reply (FilterResult).
  void SendLocalReply(int status, std::string_view body, std::string_view content_type = {},
                      std::string_view headers = {});
  void DropUpstream();
  bool ClientWantsKeepAlive() const;
  std::string_view request_id() const { return std::string_view(request_id_, request_id_len_); }

  ProxyHost* const host_;
  ClientConnection* conn_ = nullptr;
  std::shared_ptr<const Config> config_;
  RequestHead request_;
  net::BlockRef request_pin_;
  ResponseHead response_;
  net::BlockRef response_pin_;
  HeadParser head_parser_;
  std::shared_ptr<ExchangeFilterFactory> filter_factory_;  // keeps filter_'s factory alive
  ExchangeFilter* filter_ = nullptr;  // from filter_factory_, recycled when the exchange is
  std::unique_ptr<UpstreamConnection> upstream_;
  net::Timer timer_;
  State state_ = State::kIdle;

  BodyDecoder request_body_;
  BodyDecoder response_body_;
  bool request_chunked_out_ = false;   // re-frame the request body as chunked upstream
  bool response_chunked_out_ = false;  // re-frame the response body as chunked to the client
  bool request_body_done_ = false;
  bool response_started_ = false;      // some response bytes went to the client
  bool sent_continue_ = false;
  bool retried_ = false;               // one retry after a stale pooled connection
  bool upstream_bytes_seen_ = false;   // the upstream sent at least one byte
  bool upstream_eof_ = false;          // the upstream closed (its input may still hold bytes)
  bool upstream_error_ = false;        // ... with an error rather than a clean FIN
  int upstream_errno_ = 0;             // ... that error
  bool close_client_ = false;          // close the client connection after this response
  bool finalized_ = false;
  bool loop_ = false;                   // the request came back through this sessiond
  bool upgrade_ = false;                // the client asks to upgrade (http/upgrade.h)
  bool upgraded_ = false;               // the upstream accepted: 101, then a tunnel
  std::string_view upgrade_request_;    // the client's Upgrade value (in the pinned head)
  std::string_view upgrade_response_;   // the 101's Upgrade value (in the pinned response head)
  std::string_view scheme_;             // ForwardingResult::scheme (a static string)
  char client_address_[kMaxIpText];
  size_t client_address_len_ = 0;
  std::string_view original_content_length_;  // of a bodiless response (HEAD, 304), passed on
  int status_ = 0;                             // sent to the client
  char request_id_[kMaxRequestId];
  size_t request_id_len_ = 0;
  uint64_t response_bytes_ = 0;  // body bytes queued to the client
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point upstream_sent_;
  double upstream_duration_ = -1;
};

// A worker's spare exchanges: a bounded free list, sized to the load and
// trimmed like the block pool (net/block.h): set_max_free() frees what is
// over the new bound at once, Trim() what sat unused since the previous Trim.
class ExchangePool {
 public:
  static constexpr size_t kMaxFree = 256;

  explicit ExchangePool(ProxyHost* host, size_t max_free = kMaxFree) : host_(host), max_free_(max_free) {}
  ~ExchangePool();
  ExchangePool(const ExchangePool&) = delete;
  ExchangePool& operator=(const ExchangePool&) = delete;

  Exchange* Acquire();
  // Takes back an exchange that has ended (or never started).
  void Recycle(Exchange* exchange);
  void Trim();
  void set_max_free(size_t max_free);
  size_t free_count() const { return free_.size(); }

 private:
  ProxyHost* host_;
  size_t max_free_;
  std::vector<Exchange*> free_;
  size_t free_low_ = 0;
};

}  // namespace sessiond
