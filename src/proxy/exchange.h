// Exchange: one request/response pair through the sidecar.
//
//   Start -> [filter: OnRequestHead] -> connect/take pooled upstream
//         -> send head, stream request body -> read response head
//         -> [filter: OnResponseHead] -> write head, stream response body
//         -> Finish (upstream back to the pool if reusable)
//
// The exchange owns the parsed heads, the filter, the upstream connection
// and the upstream timer. Its ClientConnection owns it and frees it only
// from a deferred callback, so the exchange may report Finished/Aborted from
// anywhere in its own call stack.
//
// Backpressure: body bytes move between the two sides' buffers without
// copying (evbuffer_remove_buffer). A side stops pumping while the other
// side's output buffer holds more than kOutputHigh bytes and resumes from the
// write callback once it has drained below kOutputLow; the input buffers'
// read high-watermarks then stop libevent from reading the socket, so the
// kernel's flow control reaches the sender.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "http/body.h"
#include "http/exchange_filter.h"
#include "http/head_parser.h"
#include "http/message.h"
#include "proxy/upstream_pool.h"

namespace sessiond {

class ClientConnection;

class Exchange {
 public:
  static constexpr size_t kOutputHigh = 256 * 1024;
  static constexpr size_t kOutputLow = 64 * 1024;

  // `request`'s views point into `request_head_bytes`, which the exchange
  // keeps unchanged for its whole life.
  Exchange(ClientConnection* conn, std::shared_ptr<const Config> config, std::unique_ptr<RequestHead> request,
           std::vector<char> request_head_bytes);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  void Start();

  // ---- events relayed by the ClientConnection ----
  void OnClientReadable();  // request body bytes may be waiting
  void OnClientDrained();   // the client's output fell below kOutputLow
  // The client connection is going away: drop the upstream, never touch the
  // connection again.
  void Abort();
  // The client stopped sending the request body for too long.
  void OnRequestBodyTimeout();

  bool request_body_pending() const { return !request_body_done_ && state_ != State::kDone; }
  bool response_started() const { return response_started_; }
  bool done() const { return state_ == State::kDone; }
  int status() const { return status_; }

 private:
  enum class State {
    kRequestFilter,   // waiting for the filter's verdict on the request
    kConnecting,      // waiting for the upstream connect
    kAwaitingHead,    // request sent (body may still stream), waiting for the response head
    kResponseFilter,  // waiting for the filter's verdict on the response
    kStreaming,       // response head sent, streaming its body
    kDone,
  };

  static void UpstreamReadCb(bufferevent* bev, void* arg);
  static void UpstreamWriteCb(bufferevent* bev, void* arg);
  static void UpstreamEventCb(bufferevent* bev, short what, void* arg);
  static void TimerCb(evutil_socket_t, short, void* arg);

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
  void OnUpstreamEvent(short what);
  void TryParseResponseHead();
  void OnResponseFiltered(FilterResult result);
  void WriteResponseHead();
  void PumpResponseBody();
  void FinishResponse();
  void OnTimer();
  // Runs once when the exchange ends, however it ends: metrics, access log,
  // the filter's OnComplete.
  void Finalize();

  // Fails the exchange with a local response when nothing has been sent to
  // the client yet; otherwise cuts the client connection.
  void Fail(int status, const char* log_reason);
  void SendLocalReply(int status, const std::string& body);
  void DropUpstream();
  void ArmTimer(Millis timeout);
  bool ClientWantsKeepAlive() const;

  ClientConnection* conn_;
  std::shared_ptr<const Config> config_;
  std::unique_ptr<RequestHead> request_;
  std::vector<char> request_head_bytes_;  // what request_'s views point into
  std::unique_ptr<ResponseHead> response_;
  std::vector<char> response_head_bytes_;  // what response_'s (or the pending head's) views point into
  HeadParser response_parser_;
  std::unique_ptr<ResponseHead> pending_response_;  // the head being received
  std::shared_ptr<ExchangeFilterFactory> filter_factory_;  // keeps filter_'s factory alive
  ExchangeFilter* filter_ = nullptr;  // from filter_factory_, recycled in the destructor
  std::unique_ptr<UpstreamConnection> upstream_;
  event* timer_ = nullptr;
  State state_ = State::kRequestFilter;

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
  bool close_client_ = false;          // close the client connection after this response
  std::string original_content_length_;  // of a bodiless response (HEAD, 304), passed on
  int status_ = 0;                       // sent to the client
  bool finalized_ = false;
  std::string request_id_;
  uint64_t response_bytes_ = 0;  // body bytes queued to the client
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point upstream_sent_;
  double upstream_duration_ = -1;
};

}  // namespace sessiond
