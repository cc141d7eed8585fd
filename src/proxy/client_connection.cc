#include "proxy/client_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>

#include "base/log.h"
#include "http/local_reply.h"
#include "observe/exchange_record.h"
#include "observe/metrics.h"
#include "proxy/exchange.h"
#include "proxy/proxy_host.h"
#include "proxy/read_head.h"

namespace sessiond {

namespace {

// How long a closing connection keeps reading (and discarding) what the
// client still sends, so that our last response is not destroyed by a TCP
// reset caused by unread input (the "lingering close" of nginx and Apache).
constexpr Millis kLingerTime{2000};

// At most this many empty lines before a request line are skipped
// (RFC 9112 section 2.2 allows a server to ignore them).
constexpr int kMaxLeadingEmptyLines = 4;

std::string FormatPeer(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof(buf));
  } else if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, sizeof(buf));
    } else {
      inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
    }
  }
  return buf;
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

ClientConnection::ClientConnection(ProxyHost* worker, int fd, const sockaddr* peer)
    : worker_(worker),
      config_(worker->config()),
      conn_(worker->base(), &worker->blocks()),
      timer_(worker->base(), TimerCb, this),
      deferred_(worker->base(), DeferredCb, this),
      client_ip_(FormatPeer(peer)) {
  conn_.Adopt(fd);
  conn_.set_handler(this);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  worker_->Register(this);
}

ClientConnection::~ClientConnection() {
  // Only a forced stop frees a connection with an exchange in progress; the
  // exchange then just lets go of everything (no response, no log line).
  if (exchange_) worker_->exchanges().Recycle(exchange_);
  if (finished_) worker_->exchanges().Recycle(finished_);
  worker_->Unregister(this);
}

void ClientConnection::Start() {
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
  } else if (state_ == State::kWaitingHead && (!conn_.input().empty() || peer_eof())) {
    TryStartRequest();  // held back while the output was full
  } else if (state_ == State::kClosingAfterFlush && conn_.output().empty()) {
    StartLingering();
  }
}

void ClientConnection::OnError(net::Connection*, int) {
  // Reset or write failure: the client is gone, nothing can be delivered.
  CloseSoon();
}

void ClientConnection::OnTimer() {
  switch (state_) {
    case State::kWaitingHead:
      if (header_timer_running_) {
        // Slowloris defence: a head that does not arrive in time gets no answer.
        LOG_DEBUG("client %s: request head not received within client_header", client_ip_.c_str());
        if (Metrics* m = worker_->metrics()) Inc(m->timeouts_client_header);
      }
      CloseSoon();
      break;
    case State::kInExchange:
      if (exchange_ && exchange_->request_body_pending()) exchange_->OnRequestBodyTimeout();
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
  if (state_ == State::kClosed) {
    delete this;
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

void ClientConnection::RejectRequest(int status, const char* why, bool is_head_request) {
  LOG_DEBUG("client %s: %d (%s)", client_ip_.c_str(), status, why);
  LocalReply reply;
  reply.status = status;
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
  conn_.Stop();
  timer_.Cancel();
  deferred_.Schedule();
}

}  // namespace sessiond
