#include "proxy/exchange.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/log.h"
#include "http/head_writer.h"
#include "http/hop_by_hop.h"
#include "observe/exchange_record.h"
#include "observe/metrics.h"
#include "proxy/client_connection.h"
#include "proxy/read_head.h"

namespace sessiond {

namespace {

// Moves `data` body bytes from the front of `in` to `out`, wrapped in one
// chunk when `chunked` is set. The data bytes themselves are not copied.
void MoveBody(net::Buffer& in, net::Buffer& out, size_t data, bool chunked) {
  if (chunked) {
    char size_line[24];
    const int n = snprintf(size_line, sizeof(size_line), "%zx\r\n", data);
    out.Append(size_line, static_cast<size_t>(n));
  }
  in.MoveTo(out, data);
  if (chunked) out.Append("\r\n", 2);
}

// A client-sent X-Request-Id is kept when it is 1..128 characters of
// [A-Za-z0-9._:-] (UUIDs, hex, most tracing ids); anything else is replaced.
bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > Exchange::kMaxRequestId) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Exchange::Exchange(ProxyHost* host) : host_(host), timer_(host->base(), TimerCb, this) {}

Exchange::~Exchange() { Reset(); }

void Exchange::Reset() {
  if (filter_) filter_factory_->Recycle(filter_);
  filter_ = nullptr;
  filter_factory_.reset();
  upstream_.reset();
  timer_.Cancel();
  request_.Clear();
  response_.Clear();
  request_pin_.Reset();
  response_pin_.Reset();
  conn_ = nullptr;
  config_.reset();
  state_ = State::kIdle;
  request_chunked_out_ = response_chunked_out_ = false;
  request_body_done_ = response_started_ = sent_continue_ = retried_ = false;
  upstream_bytes_seen_ = upstream_eof_ = upstream_error_ = close_client_ = finalized_ = false;
  original_content_length_ = {};
  status_ = 0;
  request_id_len_ = 0;
  response_bytes_ = 0;
  upstream_duration_ = -1;
}

net::Connection& Exchange::client() { return conn_->conn(); }

void Exchange::Start(ClientConnection* conn, std::shared_ptr<const Config> config) {
  conn_ = conn;
  config_ = std::move(config);
  start_ = std::chrono::steady_clock::now();
  PrepareRequestHeaders();
  request_body_.Reset(request_.framing, request_.content_length, config_->limits.max_header_bytes,
                      config_->limits.max_body_bytes);
  request_body_done_ = request_body_.done();
  request_chunked_out_ = request_.framing == BodyFraming::kChunked;
  if (request_body_pending()) conn_->RequestBodyProgress(0);  // starts the body timers

  state_ = State::kRequestFilter;
  if ((filter_factory_ = host_->filters())) {
    filter_ = filter_factory_->Acquire(ExchangeInfo{conn_->client_ip()});
  }
  if (filter_) {
    filter_->OnRequestHead(request_, [this](FilterResult r) { OnRequestFiltered(std::move(r)); });
  } else {
    OnRequestFiltered(FilterResult::Continue());
  }
}

void Exchange::PrepareRequestHeaders() {
  std::optional<std::string_view> rid = request_.headers.Get(HeaderId::kXRequestId);
  if (rid && request_.headers.Count(HeaderId::kXRequestId) == 1 && IsValidRequestId(*rid)) {
    memcpy(request_id_, rid->data(), rid->size());
    request_id_len_ = rid->size();
  } else {
    host_->NextRequestId(request_id_);
    request_id_len_ = ProxyHost::kRequestIdLength;
  }
  request_.headers.Remove(HeaderId::kXRequestId);
  request_.headers.AppendValueCopy("X-Request-Id", request_id());
  RemoveHopByHop(&request_.headers);
  // An HTTP/1.0 request may come without Host; the upstream gets HTTP/1.1,
  // which requires one: use the upstream's own name, as nginx does.
  if (request_.headers.Count(HeaderId::kHost) == 0) {
    request_.headers.AppendValueCopy("Host", config_->upstream.address.text);
  }
  if (request_.expect_continue) request_.headers.Remove(HeaderId::kExpect);  // answered by us, see OnUpstreamConnected
  SetForwardedHeaders(&request_.headers, conn_->client_ip(), request_.host);
}

void Exchange::OnRequestFiltered(FilterResult result) {
  if (state_ != State::kRequestFilter) return;  // aborted meanwhile
  if (result.status != 0) {
    SendLocalReply(result.status, result.body, result.content_type, result.headers);
    return;
  }
  ConnectUpstream(/*allow_pooled=*/true);
}

int Exchange::BufferedBodyIsMalformed() const {
  if (request_body_done_ || request_.framing != BodyFraming::kChunked) return 0;
  net::Buffer& in = conn_->conn().input();
  BodyDecoder probe = request_body_;  // a copy: nothing is consumed
  for (size_t i = 0; i < in.slice_count() && !probe.done(); ++i) {
    std::string_view s = in.slice(i);
    const char* p = s.data();
    size_t left = s.size();
    while (left > 0 && !probe.done()) {
      BodyDecoder::Step step = probe.Next(p, left, left);
      if (probe.failed()) return probe.too_large() ? 413 : 400;
      size_t used = step.framing + step.data;
      if (used == 0) break;
      p += used;
      left -= used;
    }
  }
  return 0;
}

void Exchange::ConnectUpstream(bool allow_pooled) {
  if (int status = BufferedBodyIsMalformed()) {
    Fail(status, "malformed chunked request body");
    return;
  }
  UpstreamPool& pool = host_->pool();
  upstream_bytes_seen_ = false;
  if (allow_pooled) upstream_ = pool.TakeIdle(config_->upstream.address);
  const bool pooled = upstream_ != nullptr;
  if (!upstream_) upstream_ = pool.Connect(config_->upstream.address);
  if (!upstream_) {
    Fail(502, "upstream connect failed");
    return;
  }
  net::Connection& up = upstream_->conn();
  up.set_handler(this);
  // The input holds at most a response head or kOutputHigh of body that the
  // client has not taken yet; the output wakes the pump at kOutputLow.
  up.set_read_limit(std::max<size_t>(kOutputHigh, config_->limits.max_header_bytes + 1));
  up.set_low_mark(kOutputLow);
  if (pooled) {
    OnUpstreamConnected();
  } else {
    state_ = State::kConnecting;
    timer_.Arm(config_->timeouts.upstream_connect);
  }
}

void Exchange::OnUpstreamConnected() {
  if (int status = BufferedBodyIsMalformed()) {  // more of the body may have arrived while connecting
    Fail(status, "malformed chunked request body");
    return;
  }
  state_ = State::kAwaitingHead;
  response_parser_.StartResponse(config_->limits.max_header_bytes, request_.is_head);
  upstream_sent_ = std::chrono::steady_clock::now();
  WriteRequestHead();
  timer_.Arm(config_->timeouts.upstream_response);
  // Expect: 100-continue is answered here, once the body has somewhere to go,
  // so a client holding its body back does not wait for nothing.
  if (request_.expect_continue && !request_body_done_ && !sent_continue_ && client().input().empty()) {
    static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    client().output().Append(kContinue, sizeof(kContinue) - 1);
    client().Flush();
    sent_continue_ = true;
  }
  PumpRequestBody();  // writes the head (and what body there is) at once
}

void Exchange::WriteRequestHead() {
  const size_t size = request_.method.size() + 1 + request_.target.size() + 11 +
                      HeadWriter::HeadersSize(request_.headers) + 30 + HeadWriter::kMaxNumber + 2;
  net::Buffer& out = upstream_->conn().output();
  HeadWriter w(out.Reserve(size), size);
  w.Put(request_.method);
  w.Put(" ");
  w.Put(request_.target);
  w.Put(" HTTP/1.1\r\n");
  w.PutHeaders(request_.headers);
  if (request_.framing == BodyFraming::kLength) {
    w.Put("Content-Length: ");
    w.PutNumber(request_.content_length);
    w.Put("\r\n");
  } else if (request_chunked_out_) {
    w.Put("Transfer-Encoding: chunked\r\n");
  }
  w.Put("\r\n");
  out.Commit(w.size());
}

void Exchange::PumpRequestBody() {
  if (!upstream_) return;
  if (state_ != State::kAwaitingHead && state_ != State::kResponseFilter && state_ != State::kStreaming) return;
  net::Connection& up = upstream_->conn();
  net::Buffer& in = client().input();
  net::Buffer& out = up.output();
  const uint64_t max_body = config_->limits.max_body_bytes;
  const uint64_t body_before = request_body_.body_bytes();
  bool progressed = false;
  while (!request_body_done_) {
    const size_t queued = out.size();
    if (queued >= kOutputHigh) break;  // OnWritable resumes us
    std::string_view front = in.front();
    if (front.empty()) break;
    // Ask for at most one byte past the limit, so an oversize chunked body is
    // detected before more than max_body_bytes reach the upstream.
    uint64_t allowed = max_body - std::min(max_body, request_body_.body_bytes()) + 1;
    size_t room = static_cast<size_t>(std::min<uint64_t>(kOutputHigh - queued, allowed));
    BodyDecoder::Step step = request_body_.Next(front.data(), front.size(), room);
    if (request_body_.failed()) {
      Fail(request_body_.too_large() ? 413 : 400, request_body_.error());
      return;
    }
    if (request_body_.body_bytes() > max_body) {
      Fail(413, "request body over max_body_bytes");
      return;
    }
    if (step.framing == 0 && step.data == 0) break;
    progressed = true;
    in.Consume(step.framing);
    if (step.data) MoveBody(in, out, step.data, request_chunked_out_);
    if (request_body_.done()) {
      if (request_chunked_out_) out.Append("0\r\n\r\n", 5);
      request_body_done_ = true;
    }
  }
  // Whatever is queued (the head, body bytes) goes out now; what the socket
  // does not take, the write event sends, and OnWritable pumps again.
  up.Flush();
  client().RefreshReading();
  if (progressed) {
    conn_->RequestBodyProgress(request_body_.body_bytes() - body_before);
    if (state_ == State::kAwaitingHead) timer_.Arm(config_->timeouts.upstream_response);
  }
  if (!request_body_done_ && conn_->peer_eof() && in.empty()) {
    // The client closed before sending its whole body.
    LOG_DEBUG("client %s closed during the request body", conn_->client_ip().c_str());
    DropUpstream();
    state_ = State::kDone;
    conn_->ExchangeAborted();
  }
}

void Exchange::OnClientReadable() { PumpRequestBody(); }

void Exchange::OnClientDrained() {
  if (state_ == State::kStreaming) PumpResponseBody();
}

void Exchange::TimerCb(void* arg) { static_cast<Exchange*>(arg)->OnTimer(); }

// ---- the upstream connection's events ----

void Exchange::OnReadable(net::Connection*) { OnUpstreamReadable(); }
void Exchange::OnPeerEof(net::Connection*) { OnUpstreamClosed(/*clean_eof=*/true); }
void Exchange::OnError(net::Connection*, int) { OnUpstreamClosed(/*clean_eof=*/false); }
void Exchange::OnWritable(net::Connection*) { PumpRequestBody(); }
void Exchange::OnConnected(net::Connection*) {
  if (state_ == State::kConnecting) OnUpstreamConnected();
}

void Exchange::OnUpstreamReadable() {
  if (!upstream_->conn().input().empty()) upstream_bytes_seen_ = true;
  if (state_ == State::kAwaitingHead) {
    TryParseResponseHead();
  } else if (state_ == State::kStreaming) {
    timer_.Arm(config_->timeouts.upstream_response);
    PumpResponseBody();
  }
  // kResponseFilter: the bytes wait in the (bounded) input buffer.
}

void Exchange::OnUpstreamClosed(bool clean_eof) {
  switch (state_) {
    case State::kConnecting:
      Fail(502, "upstream connect failed");
      return;
    case State::kAwaitingHead:
      // A pooled connection the upstream had just closed: retry once on a
      // fresh connection when nothing of the request body was consumed.
      if (!upstream_bytes_seen_ && upstream_->reused() && !retried_ && request_.framing == BodyFraming::kNone) {
        retried_ = true;
        DropUpstream();
        ConnectUpstream(/*allow_pooled=*/false);
        return;
      }
      Fail(502, clean_eof ? "upstream closed before a complete response head" : "upstream connection error");
      return;
    case State::kResponseFilter:
    case State::kStreaming:
      upstream_eof_ = true;
      upstream_error_ = !clean_eof;
      if (state_ == State::kStreaming) PumpResponseBody();
      return;
    default:
      return;
  }
}

void Exchange::TryParseResponseHead() {
  net::Buffer& in = upstream_->conn().input();
  const size_t limit = config_->limits.max_header_bytes;
  while (true) {
    switch (ReadHead(in, limit, response_parser_, &response_, &response_pin_)) {
      case HeadParser::State::kIncomplete:
        return;
      case HeadParser::State::kError:
        Fail(502, response_parser_.error());
        return;
      case HeadParser::State::kDone:
        break;
    }
    if (response_.status == 101) {
      Fail(502, "upstream switched protocols without an Upgrade request");
      return;
    }
    if (response_.status >= 200) break;
    // 1xx interim responses are dropped; the final one follows.
    response_.Clear();
    response_pin_.Reset();
    response_parser_.StartResponse(limit, request_.is_head);
  }
  upstream_->conn().RefreshReading();
  upstream_duration_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - upstream_sent_).count();

  if (response_.framing == BodyFraming::kNone) {
    if (auto cl = response_.headers.Get(HeaderId::kContentLength)) original_content_length_ = *cl;
  }
  RemoveHopByHop(&response_.headers);
  response_body_.Reset(response_.framing, response_.content_length, config_->limits.max_header_bytes);
  timer_.Arm(config_->timeouts.upstream_response);
  state_ = State::kResponseFilter;
  if (filter_) {
    filter_->OnResponseHead(request_, response_, [this](FilterResult r) { OnResponseFiltered(std::move(r)); });
  } else {
    OnResponseFiltered(FilterResult::Continue());
  }
}

void Exchange::OnResponseFiltered(FilterResult result) {
  if (state_ != State::kResponseFilter) return;  // aborted meanwhile
  if (result.status != 0) {
    DropUpstream();  // the upstream's response is discarded unread
    SendLocalReply(result.status, result.body, result.content_type, result.headers);
    return;
  }
  WriteResponseHead();
  state_ = State::kStreaming;
  PumpResponseBody();
}

// A half-closed client (peer_eof) still gets every request it already sent
// answered: ClientConnection closes once no complete request is left.
bool Exchange::ClientWantsKeepAlive() const { return request_.keep_alive && !host_->shutting_down(); }

void Exchange::WriteResponseHead() {
  const bool http11_client = request_.minor_version == 1;
  const BodyFraming framing = response_.framing;
  response_chunked_out_ =
      (framing == BodyFraming::kChunked || framing == BodyFraming::kUntilClose) && http11_client;
  // An HTTP/1.0 client learns where an unframed body ends only from the close.
  if (framing == BodyFraming::kUntilClose && !http11_client) close_client_ = true;
  if (framing == BodyFraming::kChunked && !http11_client) close_client_ = true;
  if (!ClientWantsKeepAlive()) close_client_ = true;

  const size_t size = 13 + response_.reason.size() + 2 + HeadWriter::HeadersSize(response_.headers) + 30 +
                      HeadWriter::kMaxNumber + original_content_length_.size() + 16 + request_id_len_ + 26 + 2;
  net::Buffer& out = client().output();
  HeadWriter w(out.Reserve(size), size);
  w.Put("HTTP/1.1 ");
  w.PutNumber(static_cast<uint64_t>(response_.status));
  w.Put(" ");
  w.Put(response_.reason);
  w.Put("\r\n");
  w.PutHeaders(response_.headers);
  if (framing == BodyFraming::kLength) {
    w.Put("Content-Length: ");
    w.PutNumber(response_.content_length);
    w.Put("\r\n");
  } else if (response_chunked_out_) {
    w.Put("Transfer-Encoding: chunked\r\n");
  } else if (framing == BodyFraming::kNone && !original_content_length_.empty() && response_.status != 204) {
    w.Put("Content-Length: ");
    w.Put(original_content_length_);
    w.Put("\r\n");
  }
  if (!response_.headers.Get(HeaderId::kXRequestId)) {
    w.Put("X-Request-Id: ");
    w.Put(request_id());
    w.Put("\r\n");
  }
  if (close_client_) {
    w.Put("Connection: close\r\n");
  } else if (!http11_client) {
    w.Put("Connection: keep-alive\r\n");
  }
  w.Put("\r\n");
  out.Commit(w.size());
  status_ = response_.status;
  response_started_ = true;
}

void Exchange::PumpResponseBody() {
  if (state_ != State::kStreaming) return;
  net::Connection& up = upstream_->conn();
  net::Buffer& in = up.input();
  net::Buffer& out = client().output();
  while (!response_body_.done()) {
    const size_t queued = out.size();
    if (queued >= kOutputHigh) break;  // OnClientDrained resumes us
    std::string_view front = in.front();
    if (front.empty()) break;
    BodyDecoder::Step step = response_body_.Next(front.data(), front.size(), kOutputHigh - queued);
    if (response_body_.failed()) {
      Fail(502, response_body_.error());
      return;
    }
    if (step.framing == 0 && step.data == 0) break;
    in.Consume(step.framing);
    if (step.data) MoveBody(in, out, step.data, response_chunked_out_);
    response_bytes_ += step.data;
  }
  if (!response_body_.done() && upstream_eof_ && in.empty()) {
    if (response_body_.framing() == BodyFraming::kUntilClose && !upstream_error_) {
      response_body_.FinishOnEof();
    } else {
      Fail(502, "upstream closed in the middle of the response body");
      return;
    }
  }
  if (response_body_.done()) {
    if (response_chunked_out_) out.Append("0\r\n\r\n", 5);
    FinishResponse();
    return;
  }
  client().Flush();
  up.RefreshReading();
}

void Exchange::FinishResponse() {
  state_ = State::kDone;
  timer_.Cancel();
  if (upstream_) {
    net::Connection& up = upstream_->conn();
    const bool reusable = response_.keep_alive && request_body_done_ && !upstream_eof_ && up.input().empty() &&
                          up.output().empty() && !up.write_pending() && up.error() == 0;
    if (reusable) {
      host_->pool().Release(std::move(upstream_));
    } else {
      DropUpstream();
    }
  }
  if (!request_body_done_) close_client_ = true;  // the rest of the body was never read
  Finalize();
  // After Finalize: a client that has its response finds it already counted
  // and logged.
  client().Flush();
  conn_->ExchangeFinished(!close_client_);
}

void Exchange::OnTimer() {
  Metrics* m = host_->metrics();
  switch (state_) {
    case State::kConnecting:
      if (m) m->timeouts_upstream_connect++;
      Fail(502, "upstream connect timeout");
      return;
    case State::kAwaitingHead:
      if (m) m->timeouts_upstream_response++;
      Fail(504, "upstream response timeout");
      return;
    case State::kStreaming:
      if (m) m->timeouts_upstream_response++;
      Fail(504, "upstream stalled in the response body");
      return;
    default:
      return;
  }
}

void Exchange::OnRequestBodyTimeout() {
  if (Metrics* m = host_->metrics()) m->timeouts_client_body++;
  Fail(408, "client stopped sending the request body");
}

void Exchange::Fail(int status, const char* log_reason) {
  if (state_ == State::kDone) return;
  const bool upstream_side = status == 502 || status == 504;
  if (upstream_side) {
    LOG_WARN("upstream %s: %s (client %s)", config_->upstream.address.text.c_str(), log_reason,
             conn_->client_ip().c_str());
    if (Metrics* m = host_->metrics()) m->upstream_errors++;
  } else {
    LOG_DEBUG("client %s: %d %s", conn_->client_ip().c_str(), status, log_reason);
  }
  DropUpstream();
  if (!response_started_) {
    SendLocalReply(status, std::string_view());
    return;
  }
  // Part of a response is already out: the only honest signal left is to
  // cut the connection, so the client sees a truncated body.
  state_ = State::kDone;
  timer_.Cancel();
  Finalize();
  client().Flush();
  conn_->ExchangeAborted();
}

void Exchange::SendLocalReply(int status, std::string_view body, std::string_view content_type,
                              std::string_view headers) {
  DropUpstream();
  timer_.Cancel();
  if (!request_body_done_) close_client_ = true;
  if (status == 400 || status == 408 || status == 413) close_client_ = true;
  if (!ClientWantsKeepAlive()) close_client_ = true;
  LocalReply reply;
  reply.status = status;
  reply.body = body;
  reply.request_id = request_id();
  reply.close = close_client_;
  reply.head_request = request_.is_head;
  reply.content_type = content_type;
  reply.extra_headers = headers;
  net::Buffer& out = client().output();
  out.Commit(reply.Write(out.Reserve(reply.MaxSize())));
  response_bytes_ = reply.body_bytes_sent();
  status_ = status;
  response_started_ = true;
  state_ = State::kDone;
  Finalize();
  client().Flush();
  conn_->ExchangeFinished(!close_client_);
}

void Exchange::DropUpstream() { upstream_.reset(); }

void Exchange::Abort() {
  DropUpstream();
  timer_.Cancel();
  if (state_ != State::kDone) {
    state_ = State::kDone;
    status_ = 0;  // the client is gone: nothing (more) was delivered
  }
  Finalize();
}

void Exchange::Finalize() {
  if (finalized_) return;
  finalized_ = true;
  if (filter_) filter_->OnComplete(status_);
  AccessLogEntry e;
  e.status = status_;
  e.duration = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const AccessLogFormat format = config_->log.access;
  if (format != AccessLogFormat::kOff) {
    e.client = conn_->client_ip();
    e.method = request_.method;
    e.target = request_.target;
    e.minor_version = request_.minor_version;
    e.bytes = response_bytes_;
    e.upstream_duration = upstream_duration_;
    if (filter_) e.session = filter_->LogTag();
    e.request_id = request_id();
    if (auto v = request_.headers.Get(HeaderId::kReferer)) e.referer = *v;
    if (auto v = request_.headers.Get(HeaderId::kUserAgent)) e.user_agent = *v;
  }
  RecordExchange(host_->metrics(), format, e, /*refused_head=*/false);
}

// ---- ExchangePool ----

ExchangePool::~ExchangePool() {
  for (Exchange* e : free_) delete e;
}

Exchange* ExchangePool::Acquire() {
  if (free_.empty()) return new Exchange(host_);
  Exchange* e = free_.back();
  free_.pop_back();
  if (free_.size() < free_low_) free_low_ = free_.size();
  return e;
}

void ExchangePool::Recycle(Exchange* exchange) {
  exchange->Reset();
  if (free_.size() >= max_free_) {
    delete exchange;
    return;
  }
  if (free_.capacity() == 0) free_.reserve(kMaxFree);
  free_.push_back(exchange);
}

void ExchangePool::set_max_free(size_t max_free) {
  max_free_ = std::min(max_free, kMaxFree);
  while (free_.size() > max_free_) {
    delete free_.back();
    free_.pop_back();
  }
  if (free_low_ > free_.size()) free_low_ = free_.size();
}

void ExchangePool::Trim() {
  // The first free_low_ entries were not taken once since the last Trim.
  const size_t excess = free_low_;
  for (size_t i = 0; i < excess; ++i) delete free_[i];
  free_.erase(free_.begin(), free_.begin() + static_cast<std::ptrdiff_t>(excess));
  free_low_ = free_.size();
}

}  // namespace sessiond
