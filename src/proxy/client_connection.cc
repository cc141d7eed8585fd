#include "proxy/client_connection.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "observe/access_log.h"
#include "observe/metrics.h"
#include "proxy/exchange.h"
#include "http/message.h"
#include "proxy/proxy_host.h"
#include "proxy/upstream_pool.h"
#include "http/exchange_filter.h"
#include "base/log.h"

namespace sessiond {

namespace {

// How long a closing connection keeps reading (and discarding) what the
// client still sends, so that our last response is not destroyed by a TCP
// reset caused by unread input (the "lingering close" of nginx and Apache).
constexpr Millis kLingerTime{2000};

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

// Stop-gap until the connection layer hands HeadParser a buffer of its own:
// copies the input bytes not yet in `bytes` (at most `cap` in all, in
// doubling steps so that a pipelined burst is not copied whole) and resumes
// the parser on them. The parser keeps offsets, so `bytes` may reallocate.
HeadParser::State ParseBufferedHead(evbuffer* in, size_t cap, std::vector<char>* bytes, HeadParser* parser,
                                    RequestHead* out) {
  HeadParser::State state = HeadParser::State::kIncomplete;
  const size_t avail = std::min(evbuffer_get_length(in), cap);
  while (state == HeadParser::State::kIncomplete && bytes->size() < avail) {
    const size_t have = bytes->size();
    const size_t want = std::min(avail, std::max<size_t>(2 * have, 1024));
    bytes->resize(want);
    evbuffer_ptr at;
    evbuffer_ptr_set(in, &at, have, EVBUFFER_PTR_SET);
    evbuffer_copyout_from(in, &at, bytes->data() + have, want - have);
    state = parser->Parse(bytes->data(), want, out);
  }
  return state;
}

}  // namespace

ClientConnection::ClientConnection(ProxyHost* worker, evutil_socket_t fd, const sockaddr* peer)
    : worker_(worker), config_(worker->config()), client_ip_(FormatPeer(peer)) {
  bev_ = bufferevent_socket_new(worker_->base(), fd, BEV_OPT_CLOSE_ON_FREE);
  if (!bev_) evutil_closesocket(fd);
  timer_ = evtimer_new(worker_->base(), TimerCb, this);
  deferred_ = event_new(worker_->base(), -1, 0, DeferredCb, this);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  worker_->Register(this);
}

ClientConnection::~ClientConnection() {
  exchange_.reset();
  finished_.reset();
  if (timer_) event_free(timer_);
  if (deferred_) event_free(deferred_);
  if (bev_) bufferevent_free(bev_);
  worker_->Unregister(this);
}

bool ClientConnection::Start() {
  if (!bev_ || !timer_ || !deferred_) {
    delete this;
    return false;
  }
  bufferevent_setcb(bev_, ReadCb, WriteCb, EventCb, this);
  // Reading pauses once this much input waits unparsed (a head can be at most
  // max_header_bytes; beyond that the pipelined rest waits in the kernel).
  bufferevent_setwatermark(bev_, EV_READ, 0, config_->limits.max_header_bytes + Exchange::kOutputLow);
  bufferevent_setwatermark(bev_, EV_WRITE, Exchange::kOutputLow, 0);
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  header_timer_running_ = true;
  head_started_ = std::chrono::steady_clock::now();
  ArmTimer(config_->timeouts.client_header);
  return true;
}

void ClientConnection::ReadCb(bufferevent*, void* arg) { static_cast<ClientConnection*>(arg)->OnReadable(); }
void ClientConnection::WriteCb(bufferevent*, void* arg) { static_cast<ClientConnection*>(arg)->OnWritable(); }
void ClientConnection::EventCb(bufferevent*, short what, void* arg) {
  static_cast<ClientConnection*>(arg)->OnEvent(what);
}
void ClientConnection::TimerCb(evutil_socket_t, short, void* arg) {
  static_cast<ClientConnection*>(arg)->OnTimer();
}
void ClientConnection::DeferredCb(evutil_socket_t, short, void* arg) {
  static_cast<ClientConnection*>(arg)->OnDeferred();
}

void ClientConnection::OnReadable() {
  switch (state_) {
    case State::kWaitingHead:
      TryStartRequest();
      break;
    case State::kInExchange:
      exchange_->OnClientReadable();
      break;
    case State::kClosingAfterFlush:
    case State::kLingering: {
      evbuffer* in = bufferevent_get_input(bev_);
      evbuffer_drain(in, evbuffer_get_length(in));
      break;
    }
    case State::kClosed:
      break;
  }
}

void ClientConnection::OnWritable() {
  if (state_ == State::kInExchange && exchange_) {
    exchange_->OnClientDrained();
  } else if (state_ == State::kClosingAfterFlush && evbuffer_get_length(bufferevent_get_output(bev_)) == 0) {
    StartLingering();
  }
}

void ClientConnection::OnEvent(short what) {
  if (what & BEV_EVENT_ERROR) {
    // Reset or write failure: the client is gone, nothing can be delivered.
    CloseSoon();
    return;
  }
  if (what & BEV_EVENT_EOF) {
    peer_eof_ = true;
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
}

void ClientConnection::OnTimer() {
  switch (state_) {
    case State::kWaitingHead:
      if (header_timer_running_) {
        // Slowloris defence: a head that does not arrive in time gets no answer.
        LOG_DEBUG("client %s: request head not received within client_header", client_ip_.c_str());
        if (Metrics* m = worker_->metrics()) m->timeouts_client_header++;
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
  finished_.reset();
  if (state_ == State::kClosed) {
    delete this;
    return;
  }
  if (state_ == State::kWaitingHead) {
    if (evbuffer_get_length(bufferevent_get_input(bev_)) > 0 || peer_eof_) {
      TryStartRequest();
    } else {
      header_timer_running_ = false;
      ArmTimer(config_->timeouts.idle);
    }
  }
}

void ClientConnection::TryStartRequest() {
  evbuffer* in = bufferevent_get_input(bev_);
  if (evbuffer_get_length(in) == 0) {
    if (peer_eof_) CloseAfterFlush();  // answered everything it sent
    return;
  }
  if (!header_timer_running_) {
    header_timer_running_ = true;
    head_started_ = std::chrono::steady_clock::now();
    ArmTimer(config_->timeouts.client_header);
  }
  if (!pending_request_) {  // a new head starts
    config_ = worker_->config();  // a reload applies from the next request on
    pending_request_ = std::make_unique<RequestHead>();
    head_bytes_.clear();
    head_parser_.StartRequest(config_->limits.max_header_bytes, config_->limits.max_body_bytes);
  }
  // The parser decides within max_header_bytes plus the empty lines it may
  // skip: it answers at the first byte that rules the head out (docs/HTTP.md,
  // "Parsing"), so a NUL or an HTTP/0.9 request line gets its 400 at once.
  const size_t cap = config_->limits.max_header_bytes + 8;
  const HeadParser::State state = ParseBufferedHead(in, cap, &head_bytes_, &head_parser_, pending_request_.get());
  if (state == HeadParser::State::kIncomplete) {
    if (peer_eof_) CloseAfterFlush();  // an incomplete head and nothing more will come
    return;
  }
  if (state == HeadParser::State::kError) {
    pending_request_.reset();
    RejectRequest(head_parser_.error_status(), head_parser_.error(), head_parser_.is_head_request());
    return;
  }
  evbuffer_drain(in, head_parser_.head_size());
  evtimer_del(timer_);
  header_timer_running_ = false;
  body_deadline_set_ = false;
  state_ = State::kInExchange;
  // The request's views point into head_bytes_, which the exchange now owns
  // (a moved vector keeps its buffer).
  exchange_ = std::make_unique<Exchange>(this, config_, std::move(pending_request_), std::move(head_bytes_));
  head_bytes_ = std::vector<char>();
  exchange_->Start();
}

void ClientConnection::RejectRequest(int status, const char* why, bool is_head_request) {
  LOG_DEBUG("client %s: %d (%s)", client_ip_.c_str(), status, why);
  const double duration =
      header_timer_running_ ? std::chrono::duration<double>(std::chrono::steady_clock::now() - head_started_).count()
                            : 0.0;
  if (Metrics* m = worker_->metrics()) {
    m->bad_requests.fetch_add(1, std::memory_order_relaxed);
    m->requests_by_code[status].fetch_add(1, std::memory_order_relaxed);
    m->request_duration.Observe(duration);
  }
  if (config_->log.access != AccessLogFormat::kOff) {
    // The head was refused, so nothing of it is trusted enough to log.
    AccessLogEntry e;
    e.client = client_ip_;
    e.method = "-";
    e.target = "-";
    e.status = status;
    e.bytes = strlen(ReasonPhrase(status)) + 1;
    e.duration = duration;
    WriteAccessLog(e, config_->log.access);
  }
  const char* reason = ReasonPhrase(status);
  // A response to HEAD carries no body, even one refused before parsing.
  const bool head = is_head_request;
  char response[256];
  int n = snprintf(response, sizeof(response),
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n%s%s",
                   status, reason, strlen(reason) + 1, head ? "" : reason, head ? "" : "\n");
  bufferevent_write(bev_, response, static_cast<size_t>(n));
  CloseAfterFlush();
}

void ClientConnection::ExchangeFinished(bool keep_alive) {
  finished_ = std::move(exchange_);
  ScheduleDeferred();
  if (!keep_alive || worker_->shutting_down()) {
    CloseAfterFlush();
    return;
  }
  state_ = State::kWaitingHead;
  header_timer_running_ = false;
  evtimer_del(timer_);
  // The next pipelined request (if any) starts from OnDeferred, outside the
  // finished exchange's call stack.
}

void ClientConnection::ExchangeAborted() {
  finished_ = std::move(exchange_);
  ScheduleDeferred();
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
  if (left < Millis(0)) left = Millis(0);
  ArmTimer(std::min(left, config_->timeouts.idle));
}

void ClientConnection::BeginShutdown() {
  if (state_ != State::kWaitingHead || evbuffer_get_length(bufferevent_get_input(bev_)) != 0) return;
  // Idle: nothing to answer. With nothing left to send either, close at once
  // (no lingering: the client sent nothing we leave unread).
  if (evbuffer_get_length(bufferevent_get_output(bev_)) == 0) {
    CloseSoon();
  } else {
    CloseAfterFlush();
  }
  // Otherwise the exchange in flight finishes and ExchangeFinished closes.
}

void ClientConnection::CloseAfterFlush() {
  if (state_ == State::kClosed || state_ == State::kLingering) return;
  state_ = State::kClosingAfterFlush;
  ArmTimer(config_->timeouts.idle);  // bound on a client that never reads
  if (evbuffer_get_length(bufferevent_get_output(bev_)) == 0) {
    StartLingering();
  } else {
    bufferevent_setwatermark(bev_, EV_WRITE, 0, 0);  // WriteCb once fully flushed
  }
}

void ClientConnection::StartLingering() {
  state_ = State::kLingering;
  if (peer_eof_) {
    CloseSoon();
    return;
  }
  shutdown(bufferevent_getfd(bev_), SHUT_WR);
  evbuffer* in = bufferevent_get_input(bev_);
  evbuffer_drain(in, evbuffer_get_length(in));
  bufferevent_setwatermark(bev_, EV_READ, 0, 0);
  bufferevent_enable(bev_, EV_READ);
  ArmTimer(kLingerTime);
}

void ClientConnection::CloseSoon() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  if (exchange_) {
    exchange_->Abort();
    finished_ = std::move(exchange_);
  }
  bufferevent_disable(bev_, EV_READ | EV_WRITE);
  evtimer_del(timer_);
  ScheduleDeferred();
}

void ClientConnection::ArmTimer(Millis timeout) {
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  evtimer_add(timer_, &tv);
}

void ClientConnection::ScheduleDeferred() { event_active(deferred_, EV_TIMEOUT, 0); }

}  // namespace sessiond
