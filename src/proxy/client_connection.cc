#include "proxy/client_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <time.h>

#include <algorithm>
#include <atomic>

#include "base/log.h"
#include "http/local_reply.h"
#include "observe/exchange_record.h"
#include "observe/metrics.h"
#include "proxy/exchange.h"
#include "proxy/proxy_host.h"
#include "proxy/read_head.h"
#include "net/tls_transport.h"
#include "proxy/tunnel.h"

namespace sessiond {

namespace {

// How long a closing connection keeps reading (and discarding) what the
// client still sends, so that our last response is not destroyed by a TCP
// reset caused by unread input (the "lingering close" of nginx and Apache).
constexpr Millis kLingerTime{2000};

// At most this many empty lines before a request line are skipped
// (RFC 9112 section 2.2 allows a server to ignore them).
constexpr int kMaxLeadingEmptyLines = 4;

// The body of the 400 for a plain-HTTP request on the TLS port: the one
// answer a client that got its scheme wrong can read.
constexpr char kPlainHttpOnTls[] = "Bad Request: this port speaks HTTPS; plain HTTP was sent to it\n";

// At most one line a second for the whole process, however many handshakes
// fail (a scanner, a misconfigured client in a loop); the next line says how
// many were left out.
void LogHandshakeFailure(const std::string& client, const char* why) {
  static std::atomic<int64_t> last_second{-1};
  static std::atomic<uint64_t> suppressed{0};
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const int64_t now = ts.tv_sec;
  int64_t last = last_second.load(std::memory_order_relaxed);
  if (last == now || !last_second.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    suppressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const uint64_t more = suppressed.exchange(0, std::memory_order_relaxed);
  if (more > 0) {
    LOG_INFO("client %s: TLS handshake failed (%s); %llu more failed handshakes not logged", client.c_str(), why,
             static_cast<unsigned long long>(more));
  } else {
    LOG_INFO("client %s: TLS handshake failed (%s)", client.c_str(), why);
  }
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
constexpr bool kRecycleStorage = true;
#else
constexpr bool kRecycleStorage = false;
#endif

// The storage of ended connections on this thread, linked through its first
// word. Trivially destructible on purpose: a thread empties it with
// SetSpareLimit(0) before it ends, and nothing runs at thread exit.
struct SpareStorage {
  void* first = nullptr;
  size_t count = 0;
  size_t limit = 0;
};
thread_local SpareStorage t_spare;

}  // namespace

void* ClientConnection::operator new(size_t size) {
  SpareStorage& spare = t_spare;
  if (kRecycleStorage && spare.first != nullptr && size == sizeof(ClientConnection)) {
    void* p = spare.first;
    spare.first = *static_cast<void**>(p);
    --spare.count;
    return p;
  }
  return ::operator new(size);
}

void ClientConnection::operator delete(void* p) {
  if (p == nullptr) return;
  SpareStorage& spare = t_spare;
  if (kRecycleStorage && spare.count < spare.limit) {
    *static_cast<void**>(p) = spare.first;
    spare.first = p;
    ++spare.count;
    return;
  }
  ::operator delete(p);
}

void ClientConnection::SetSpareLimit(size_t limit) {
  SpareStorage& spare = t_spare;
  spare.limit = std::min(limit, kMaxSpare);
  while (spare.count > spare.limit) {
    void* p = spare.first;
    spare.first = *static_cast<void**>(p);
    --spare.count;
    ::operator delete(p);
  }
}

ClientConnection::ClientConnection(ProxyHost* worker, int fd, const sockaddr* peer,
                                   const std::shared_ptr<const net::TlsServerContext>& tls)
    : worker_(worker),
      config_(worker->config()),
      conn_(worker->base(), &worker->blocks()),
      timer_(worker->base(), TimerCb, this),
      deferred_(worker->base(), DeferredCb, this),
      peer_(IpAddressOf(peer)),
      client_ip_(FormatIpAddress(peer_)),
      https_(tls != nullptr) {
  conn_.Adopt(fd);
  conn_.set_handler(this);
  if (tls) {
    // Null only when OpenSSL cannot allocate: Start() then closes.
    if (std::unique_ptr<net::TlsTransport> t = net::TlsTransport::NewServer(tls)) conn_.UseTls(std::move(t));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  worker_->Register(this);
}

ClientConnection::~ClientConnection() {
  // Only a forced stop frees a connection with an exchange in progress; the
  // exchange then just lets go of everything (no response, no log line).
  if (exchange_) worker_->exchanges().Recycle(exchange_);
  if (finished_) worker_->exchanges().Recycle(finished_);
  tunnel_.reset();
  finished_tunnel_.reset();
  worker_->Unregister(this);
}

void ClientConnection::Start() {
  if (https_ && !conn_.tls()) {
    LOG_WARN("client %s: cannot start TLS (out of memory)", client_ip_.c_str());
    CloseSoon();
    return;
  }
  // Reading pauses once this much input waits unparsed (a head can be at most
  // max_header_bytes; beyond that the pipelined rest waits in the kernel).
  conn_.set_read_limit(config_->limits.max_header_bytes + Exchange::kOutputLow);
  conn_.set_low_mark(Exchange::kOutputLow);
  conn_.EnableReading();
  header_timer_running_ = true;
  head_started_ = std::chrono::steady_clock::now();
  timer_.Arm(config_->timeouts.client_header);
}

void ClientConnection::TimerCb(void* arg) { static_cast<ClientConnection*>(arg)->OnTimer(); }
void ClientConnection::DeferredCb(void* arg) { static_cast<ClientConnection*>(arg)->OnDeferred(); }

void ClientConnection::OnReadable(net::Connection*) {
  switch (state_) {
    case State::kWaitingHead:
      TryStartRequest();
      break;
    case State::kInExchange:
      exchange_->OnClientReadable();
      break;
    case State::kTunnel:
      if (tunnel_started_) tunnel_->OnClientReadable();
      break;
    case State::kClosingAfterFlush:
    case State::kLingering:
      conn_.input().Clear();
      conn_.RefreshReading();
      break;
    case State::kClosed:
      break;
  }
}

void ClientConnection::OnPeerEof(net::Connection*) {
  switch (state_) {
    case State::kWaitingHead:
      TryStartRequest();  // a complete pipelined head may still be buffered
      break;
    case State::kInExchange:
      exchange_->OnClientReadable();  // the rest of the body may be buffered
      break;
    case State::kTunnel:
      if (tunnel_started_) tunnel_->OnClientEof();
      break;
    case State::kClosingAfterFlush:
      break;  // keep flushing; the client may still read
    case State::kLingering:
      CloseSoon();
      break;
    case State::kClosed:
      break;
  }
}

void ClientConnection::OnWritable(net::Connection*) {
  if (state_ == State::kInExchange && exchange_) {
    exchange_->OnClientDrained();
  } else if (state_ == State::kTunnel) {
    if (tunnel_started_) tunnel_->OnClientWritable();
  } else if (state_ == State::kWaitingHead && (!conn_.input().empty() || peer_eof())) {
    TryStartRequest();  // held back while the output was full
  } else if (state_ == State::kClosingAfterFlush && conn_.output().empty()) {
    StartLingering();
  }
}

void ClientConnection::OnError(net::Connection*, int) {
  // A failed TLS handshake, or a reset or write failure: the client is gone
  // or cannot be spoken to; nothing can be delivered. Only the first counts
  // as a failed handshake: a client that resets an established session (a
  // browser tab closed mid-WebSocket) has not failed one.
  if (net::TlsTransport* tls = conn_.tls(); tls && !tls->established() && tls->saw_bytes()) {
    TlsHandshakeFailed(tls->closed_during_handshake() ? Metrics::kTlsClosed : Metrics::kTlsProtocol,
                       tls->failure().c_str());
  }
  CloseSoon();
}

void ClientConnection::OnTlsEstablished(net::Connection*) {
  if (Metrics* m = worker_->metrics()) Inc(m->tls_handshakes[conn_.tls()->resumed() ? 1 : 0]);
}

void ClientConnection::OnPlainHttpOnTls(net::Connection*) {
  TlsHandshakeFailed(Metrics::kTlsPlainHttp, "plain HTTP on the TLS port");
  RejectRequest(400, "plain HTTP request on the TLS port", /*is_head_request=*/false,
                std::string_view(kPlainHttpOnTls, sizeof(kPlainHttpOnTls) - 1));
}

void ClientConnection::TlsHandshakeFailed(int kind, const char* why) {
  if (Metrics* m = worker_->metrics()) Inc(m->tls_handshake_failures[kind]);
  LogHandshakeFailure(client_ip_, why);
}

void ClientConnection::OnTimer() {
  switch (state_) {
    case State::kWaitingHead:
      if (header_timer_running_) {
        // Slowloris defence: a head that does not arrive in time gets no answer.
        LogDetail d;
        d.client = client_ip_;
        LOG_DEBUG_WITH(d, "closed the connection: no complete request head within timeouts.client_header");
        if (Metrics* m = worker_->metrics()) Inc(m->timeouts_client_header);
        if (conn_.tls_handshaking()) TlsHandshakeFailed(Metrics::kTlsTimeout, "not completed within client_header");
      }
      CloseSoon();
      break;
    case State::kInExchange:
      if (exchange_ && exchange_->request_body_pending()) exchange_->OnRequestBodyTimeout();
      break;
    case State::kTunnel:  // the tunnel keeps its own timers
      break;
    case State::kClosingAfterFlush:  // the client does not read our last response
    case State::kLingering:
      CloseSoon();
      break;
    case State::kClosed:
      break;
  }
}

void ClientConnection::OnDeferred() {
  if (finished_) {
    worker_->exchanges().Recycle(finished_);
    finished_ = nullptr;
  }
  finished_tunnel_.reset();
  if (state_ == State::kClosed) {
    delete this;
    return;
  }
  if (state_ == State::kTunnel && !tunnel_started_) {
    tunnel_started_ = true;
    tunnel_->Start();
    return;
  }
  if (state_ == State::kWaitingHead) {
    if (!conn_.input().empty() || peer_eof()) {
      TryStartRequest();
    } else if (!exchange_) {
      header_timer_running_ = false;
      timer_.Arm(config_->timeouts.idle);
    }
  }
}

void ClientConnection::Retire(Exchange* exchange) {
  // An exchange retired earlier was retired from another callback, whose
  // stack is gone: it can go back to the pool now.
  if (finished_) worker_->exchanges().Recycle(finished_);
  finished_ = exchange;
  deferred_.Schedule();
}

void ClientConnection::DropPendingHead() {
  worker_->exchanges().Recycle(exchange_);
  exchange_ = nullptr;
}

void ClientConnection::TryStartRequest() {
  // A client that pipelines requests but does not read the responses gets
  // no more answered until its output drains (OnWritable resumes here), and
  // is closed if it reads nothing for timeouts.idle.
  if (conn_.output().size() >= Exchange::kOutputHigh) {
    if (!exchange_) timer_.Arm(config_->timeouts.idle);
    return;
  }
  net::Buffer& in = conn_.input();
  if (!exchange_) {
    for (int i = 0; i < kMaxLeadingEmptyLines && in.size() >= 2; ++i) {
      const char* two = in.Contiguous(2);
      if (two[0] != '\r' || two[1] != '\n') break;
      in.Consume(2);
    }
    if (in.empty()) {
      if (peer_eof()) CloseAfterFlush();  // answered everything it sent
      return;
    }
    if (!header_timer_running_) {
      header_timer_running_ = true;
      head_started_ = std::chrono::steady_clock::now();
      timer_.Arm(config_->timeouts.client_header);
    }
    config_ = worker_->config();  // a reload applies from the next request on
    exchange_ = worker_->exchanges().Acquire();
    exchange_->head_parser().StartRequest(config_->limits.max_header_bytes, config_->limits.max_body_bytes);
  }
  HeadParser& parser = exchange_->head_parser();
  net::BlockRef pin;
  switch (ReadHead(in, config_->limits.max_header_bytes, parser, &exchange_->request(), &pin)) {
    case HeadParser::State::kIncomplete:
      if (peer_eof()) CloseAfterFlush();  // an incomplete head and nothing more will come
      return;
    case HeadParser::State::kError:
      RejectRequest(parser.error_status(), parser.error(), parser.is_head_request());
      return;
    case HeadParser::State::kDone:
      break;
  }
  exchange_->PinRequestHead(std::move(pin));
  conn_.RefreshReading();
  timer_.Cancel();
  header_timer_running_ = false;
  body_deadline_set_ = false;
  state_ = State::kInExchange;
  exchange_->Start(this, config_);
}

void ClientConnection::RejectRequest(int status, const char* why, bool is_head_request, std::string_view body) {
  // The head was refused, so none of it is quoted: the client and the reason.
  LogDetail d;
  d.client = client_ip_;
  LOG_DEBUG_WITH(d, "refused the request head (%d): %s", status, why);
  LocalReply reply;
  reply.status = status;
  reply.body = body;
  reply.close = true;
  reply.head_request = is_head_request;  // a response to HEAD carries no body, even one refused
  AccessLogEntry e;
  // The head was refused, so nothing of it is trusted enough to log.
  e.client = client_ip_;
  e.method = "-";
  e.target = "-";
  e.status = status;
  e.bytes = reply.body_size();
  e.duration = header_timer_running_
                   ? std::chrono::duration<double>(std::chrono::steady_clock::now() - head_started_).count()
                   : 0.0;
  RecordExchange(worker_->metrics(), config_->log.access, e, /*refused_head=*/true);
  net::Buffer& out = conn_.output();
  out.Commit(reply.Write(out.Reserve(reply.MaxSize())));
  conn_.Flush();
  CloseAfterFlush();
}

void ClientConnection::ExchangeFinished(bool keep_alive) {
  Retire(exchange_);
  exchange_ = nullptr;
  if (!keep_alive || worker_->shutting_down()) {
    CloseAfterFlush();
    return;
  }
  state_ = State::kWaitingHead;
  header_timer_running_ = false;
  timer_.Cancel();
  // The next pipelined request (if any) starts from OnDeferred, outside the
  // finished exchange's call stack.
}

void ClientConnection::ExchangeAborted() {
  Retire(exchange_);
  exchange_ = nullptr;
  CloseAfterFlush();
}

void ClientConnection::ExchangeUpgraded(std::unique_ptr<UpstreamConnection> upstream, TunnelSpec spec) {
  Retire(exchange_);
  exchange_ = nullptr;
  state_ = State::kTunnel;
  timer_.Cancel();
  header_timer_running_ = false;
  tunnel_ = std::make_unique<Tunnel>(worker_, this, std::move(upstream), std::move(spec));
  tunnel_started_ = false;
  deferred_.Schedule();  // Retire scheduled it already; OnDeferred starts the tunnel
}

void ClientConnection::TunnelFinished() {
  finished_tunnel_ = std::move(tunnel_);
  deferred_.Schedule();
  state_ = State::kWaitingHead;  // for CloseAfterFlush, which ends every other state
  CloseAfterFlush();
}

void ClientConnection::RequestBodyProgress(uint64_t bytes) {
  if (state_ != State::kInExchange) return;
  const auto now = std::chrono::steady_clock::now();
  if (!body_deadline_set_) {
    body_deadline_set_ = true;
    body_deadline_ = now + config_->timeouts.client_header;
  }
  body_deadline_ += std::chrono::milliseconds(bytes);
  auto left = std::chrono::duration_cast<Millis>(body_deadline_ - now);
  if (left >= config_->timeouts.idle) {
    timer_.Arm(config_->timeouts.idle);
  } else {
    timer_.ArmVaried(std::max(left, Millis(0)));  // a remainder: no common-timeout queue of its own
  }
}

void ClientConnection::BeginShutdown() {
  if (state_ == State::kTunnel) {
    // WebSockets get a Close frame (1001, going away); other protocols keep
    // running until they end or timeouts.shutdown cuts them (docs/HTTP.md,
    // Upgrades and WebSockets). A tunnel not started yet checks on Start.
    if (tunnel_started_ && tunnel_->websocket()) tunnel_->End(kWsCloseGoingAway, "shutdown");
    return;
  }
  if (state_ != State::kWaitingHead || exchange_ || !conn_.input().empty()) return;
  // Idle: nothing to answer. With nothing left to send either, close at once
  // (no lingering: the client sent nothing we leave unread).
  if (conn_.output().empty()) {
    CloseSoon();
  } else {
    CloseAfterFlush();
  }
  // Otherwise the exchange in flight finishes and ExchangeFinished closes.
}

void ClientConnection::CloseAfterFlush() {
  if (state_ == State::kClosed || state_ == State::kLingering) return;
  if (exchange_) DropPendingHead();  // a head that will never be answered
  state_ = State::kClosingAfterFlush;
  // Whatever else the client sent is never answered: discard it as it comes.
  conn_.input().Clear();
  conn_.set_read_limit(SIZE_MAX);
  timer_.Arm(config_->timeouts.idle);  // bound on a client that never reads
  conn_.Flush();
  if (conn_.output().empty()) StartLingering();
  // Otherwise OnWritable lingers once the output is flushed.
}

void ClientConnection::StartLingering() {
  state_ = State::kLingering;
  if (peer_eof()) {
    CloseSoon();
    return;
  }
  conn_.ShutdownWrite();
  conn_.input().Clear();
  conn_.set_read_limit(SIZE_MAX);
  conn_.EnableReading();
  timer_.Arm(kLingerTime);
}

void ClientConnection::CloseSoon() {
  if (state_ == State::kClosed) return;
  const bool in_exchange = state_ == State::kInExchange;
  state_ = State::kClosed;
  if (exchange_) {
    if (in_exchange) exchange_->Abort();
    Retire(exchange_);
    exchange_ = nullptr;
  }
  if (tunnel_) {
    tunnel_->Abort();  // drops the upstream; the tunnel is freed with this connection
    finished_tunnel_ = std::move(tunnel_);
  }
  conn_.Stop();
  timer_.Cancel();
  deferred_.Schedule();
}

}  // namespace sessiond
