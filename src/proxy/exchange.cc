#include "proxy/exchange.h"

#include <event2/buffer.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "observe/access_log.h"
#include "observe/metrics.h"
#include "proxy/client_connection.h"
#include "http/head_writer.h"
#include "http/hop_by_hop.h"
#include "proxy/write_now.h"
#include "proxy/proxy_host.h"
#include "proxy/upstream_pool.h"
#include "http/exchange_filter.h"
#include "base/log.h"

namespace sessiond {

namespace {

timeval ToTimeval(Millis m) {
  return timeval{static_cast<time_t>(m.count() / 1000), static_cast<suseconds_t>((m.count() % 1000) * 1000)};
}

// Moves `data` body bytes from the front of `in` to `out`, wrapped in one
// chunk when `chunked` is set. The data bytes themselves are not copied.
void MoveBody(evbuffer* in, evbuffer* out, size_t data, bool chunked) {
  if (chunked) evbuffer_add_printf(out, "%zx\r\n", data);
  evbuffer_remove_buffer(in, out, data);
  if (chunked) evbuffer_add(out, "\r\n", 2);
}

// Stop-gap until the connection layer hands HeadParser a buffer of its own:
// copies the input bytes not yet in `bytes` (at most `cap` in all, in
// doubling steps) and resumes the parser on them. The parser keeps offsets,
// so `bytes` may reallocate.
HeadParser::State ParseBufferedHead(evbuffer* in, size_t cap, std::vector<char>* bytes, HeadParser* parser,
                                    ResponseHead* out) {
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

// A HeadWriter over `max_size` bytes reserved at the end of `out`; Commit()
// hands what was written to the buffer.
class EvbufferHead {
 public:
  EvbufferHead(evbuffer* out, size_t max_size) : out_(out) {
    if (evbuffer_reserve_space(out_, static_cast<ev_ssize_t>(max_size), &vec_, 1) == 1 &&
        vec_.iov_len >= max_size) {
      writer_ = HeadWriter(static_cast<char*>(vec_.iov_base), max_size);
    }
  }
  HeadWriter& writer() { return writer_; }
  void Commit() {
    if (!writer_.ok()) return;
    vec_.iov_len = writer_.size();
    evbuffer_commit_space(out_, &vec_, 1);
  }

 private:
  evbuffer* out_;
  evbuffer_iovec vec_{};
  HeadWriter writer_{nullptr, 0};
};

}  // namespace

Exchange::Exchange(ClientConnection* conn, std::shared_ptr<const Config> config,
                   std::unique_ptr<RequestHead> request, std::vector<char> request_head_bytes)
    : conn_(conn), config_(std::move(config)), request_(std::move(request)),
      request_head_bytes_(std::move(request_head_bytes)),
      start_(std::chrono::steady_clock::now()) {
  timer_ = evtimer_new(conn_->worker()->base(), TimerCb, this);
}

Exchange::~Exchange() {
  if (filter_) filter_factory_->Recycle(filter_);
  if (timer_) event_free(timer_);
}

void Exchange::Start() {
  PrepareRequestHeaders();
  request_body_.Reset(request_->framing, request_->content_length, config_->limits.max_header_bytes,
                      config_->limits.max_body_bytes);
  request_body_done_ = request_body_.done();
  request_chunked_out_ = request_->framing == BodyFraming::kChunked;
  if (request_body_pending()) conn_->RequestBodyProgress(0);  // starts the body timers

  state_ = State::kRequestFilter;
  if ((filter_factory_ = conn_->worker()->filters())) {
    filter_ = filter_factory_->Acquire(ExchangeInfo{conn_->client_ip()});
  }
  if (filter_) {
    filter_->OnRequestHead(*request_, [this](FilterResult r) { OnRequestFiltered(std::move(r)); });
  } else {
    OnRequestFiltered(FilterResult::Continue());
  }
}

namespace {

// A client-sent X-Request-Id is kept when it is 1..128 characters of
// [A-Za-z0-9._:-] (UUIDs, hex, most tracing ids); anything else is replaced.
bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

void Exchange::PrepareRequestHeaders() {
  std::optional<std::string_view> rid = request_->headers.Get(HeaderId::kXRequestId);
  if (rid && request_->headers.Count(HeaderId::kXRequestId) == 1 && IsValidRequestId(*rid)) {
    request_id_ = std::string(*rid);
  } else {
    request_id_ = conn_->worker()->NextRequestId();
  }
  request_->headers.Remove(HeaderId::kXRequestId);
  request_->headers.AppendValueCopy("X-Request-Id", request_id_);
  RemoveHopByHop(&request_->headers);
  // An HTTP/1.0 request may come without Host; the upstream gets HTTP/1.1,
  // which requires one: use the upstream's own name, as nginx does.
  if (request_->headers.Count(HeaderId::kHost) == 0) {
    request_->headers.AppendValueCopy("Host", config_->upstream.address.text);
  }
  if (request_->expect_continue) request_->headers.Remove(HeaderId::kExpect);  // answered by us, see OnUpstreamConnected
  SetForwardedHeaders(&request_->headers, conn_->client_ip(), request_->host);
}

void Exchange::OnRequestFiltered(FilterResult result) {
  if (state_ != State::kRequestFilter) return;  // aborted meanwhile
  if (result.status != 0) {
    SendLocalReply(result.status, result.body);
    return;
  }
  ConnectUpstream(/*allow_pooled=*/true);
}

int Exchange::BufferedBodyIsMalformed() const {
  if (request_body_done_ || request_->framing != BodyFraming::kChunked) return 0;
  evbuffer* in = bufferevent_get_input(conn_->bev());
  BodyDecoder probe = request_body_;  // a copy: nothing is consumed
  evbuffer_ptr pos;
  evbuffer_ptr_set(in, &pos, 0, EVBUFFER_PTR_SET);
  evbuffer_iovec vecs[8];
  int n = evbuffer_peek(in, -1, nullptr, vecs, 8);
  for (int i = 0; i < n && i < 8 && !probe.done(); ++i) {
    const char* p = static_cast<const char*>(vecs[i].iov_base);
    size_t left = vecs[i].iov_len;
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
  UpstreamPool& pool = conn_->worker()->pool();
  upstream_bytes_seen_ = false;
  pending_response_.reset();
  if (allow_pooled) upstream_ = pool.TakeIdle(config_->upstream.address);
  bool pooled = upstream_ != nullptr;
  if (!upstream_) upstream_ = pool.Connect(config_->upstream.address);
  if (!upstream_) {
    Fail(502, "upstream connect failed");
    return;
  }
  bufferevent* bev = upstream_->bev();
  bufferevent_setcb(bev, UpstreamReadCb, UpstreamWriteCb, UpstreamEventCb, this);
  if (!pooled) {  // a pooled connection keeps its watermarks and enabled events
    bufferevent_setwatermark(bev, EV_READ, 0, kOutputHigh);
    bufferevent_setwatermark(bev, EV_WRITE, kOutputLow, 0);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
  }
  if (pooled) {
    OnUpstreamConnected();
  } else {
    state_ = State::kConnecting;
    ArmTimer(config_->timeouts.upstream_connect);
  }
}

void Exchange::OnUpstreamConnected() {
  if (int status = BufferedBodyIsMalformed()) {  // more of the body may have arrived while connecting
    Fail(status, "malformed chunked request body");
    return;
  }
  state_ = State::kAwaitingHead;
  upstream_sent_ = std::chrono::steady_clock::now();
  WriteRequestHead();
  ArmTimer(config_->timeouts.upstream_response);
  // Expect: 100-continue is answered here, once the body has somewhere to go,
  // so a client holding its body back does not wait for nothing.
  if (request_->expect_continue && !request_body_done_ && !sent_continue_ &&
      evbuffer_get_length(bufferevent_get_input(conn_->bev())) == 0) {
    static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    bufferevent_write(conn_->bev(), kContinue, sizeof(kContinue) - 1);
    sent_continue_ = true;
  }
  PumpRequestBody();
  // A request whose body is all queued (most have none) goes out now; one
  // still pumping is written by the bufferevent, whose write callback drives
  // the pump.
  if (upstream_ && request_body_done_ && state_ == State::kAwaitingHead) WriteNow(upstream_->bev());
}

void Exchange::WriteRequestHead() {
  const size_t size = request_->method.size() + 1 + request_->target.size() + 11 +
                      HeadWriter::HeadersSize(request_->headers) + 30 + HeadWriter::kMaxNumber + 2;
  EvbufferHead reserved(bufferevent_get_output(upstream_->bev()), size);
  HeadWriter& w = reserved.writer();
  w.Put(request_->method);
  w.Put(" ");
  w.Put(request_->target);
  w.Put(" HTTP/1.1\r\n");
  w.PutHeaders(request_->headers);
  if (request_->framing == BodyFraming::kLength) {
    w.Put("Content-Length: ");
    w.PutNumber(request_->content_length);
    w.Put("\r\n");
  } else if (request_chunked_out_) {
    w.Put("Transfer-Encoding: chunked\r\n");
  }
  w.Put("\r\n");
  reserved.Commit();
}

void Exchange::PumpRequestBody() {
  if (request_body_done_ || !upstream_) return;
  if (state_ != State::kAwaitingHead && state_ != State::kResponseFilter && state_ != State::kStreaming) return;
  evbuffer* in = bufferevent_get_input(conn_->bev());
  evbuffer* out = bufferevent_get_output(upstream_->bev());
  const uint64_t max_body = config_->limits.max_body_bytes;
  const uint64_t body_before = request_body_.body_bytes();
  bool progressed = false;
  while (!request_body_done_) {
    size_t queued = evbuffer_get_length(out);
    if (queued >= kOutputHigh) break;  // UpstreamWriteCb resumes us
    evbuffer_iovec vec;
    if (evbuffer_peek(in, -1, nullptr, &vec, 1) < 1 || vec.iov_len == 0) break;
    // Ask for at most one byte past the limit, so an oversize chunked body is
    // detected before more than max_body_bytes reach the upstream.
    uint64_t allowed = max_body - std::min(max_body, request_body_.body_bytes()) + 1;
    size_t room = static_cast<size_t>(std::min<uint64_t>(kOutputHigh - queued, allowed));
    BodyDecoder::Step step = request_body_.Next(static_cast<const char*>(vec.iov_base), vec.iov_len, room);
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
    evbuffer_drain(in, step.framing);
    if (step.data) MoveBody(in, out, step.data, request_chunked_out_);
    if (request_body_.done()) {
      if (request_chunked_out_) evbuffer_add(out, "0\r\n\r\n", 5);
      request_body_done_ = true;
    }
  }
  if (progressed) {
    conn_->RequestBodyProgress(request_body_.body_bytes() - body_before);
    if (state_ == State::kAwaitingHead) ArmTimer(config_->timeouts.upstream_response);
  }
  if (!request_body_done_ && conn_->peer_eof() && evbuffer_get_length(in) == 0) {
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

void Exchange::UpstreamReadCb(bufferevent*, void* arg) { static_cast<Exchange*>(arg)->OnUpstreamReadable(); }
void Exchange::UpstreamWriteCb(bufferevent*, void* arg) { static_cast<Exchange*>(arg)->PumpRequestBody(); }
void Exchange::UpstreamEventCb(bufferevent*, short what, void* arg) {
  static_cast<Exchange*>(arg)->OnUpstreamEvent(what);
}
void Exchange::TimerCb(evutil_socket_t, short, void* arg) { static_cast<Exchange*>(arg)->OnTimer(); }

void Exchange::OnUpstreamReadable() {
  if (evbuffer_get_length(bufferevent_get_input(upstream_->bev())) > 0) upstream_bytes_seen_ = true;
  if (state_ == State::kAwaitingHead) {
    TryParseResponseHead();
  } else if (state_ == State::kStreaming) {
    ArmTimer(config_->timeouts.upstream_response);
    PumpResponseBody();
  }
  // kResponseFilter: the bytes wait in the (bounded) input buffer.
}

void Exchange::OnUpstreamEvent(short what) {
  if (what & BEV_EVENT_CONNECTED) {
    if (state_ == State::kConnecting) OnUpstreamConnected();
    return;
  }
  const bool clean_eof = (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR);
  switch (state_) {
    case State::kConnecting:
      Fail(502, "upstream connect failed");
      return;
    case State::kAwaitingHead:
      // A pooled connection the upstream had just closed: retry once on a
      // fresh connection when nothing of the request body was consumed.
      if (!upstream_bytes_seen_ && upstream_->reused() && !retried_ &&
          request_->framing == BodyFraming::kNone) {
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
  evbuffer* in = bufferevent_get_input(upstream_->bev());
  const size_t limit = config_->limits.max_header_bytes;
  while (true) {
    if (!pending_response_) {  // a new head starts
      if (evbuffer_get_length(in) == 0) return;
      pending_response_ = std::make_unique<ResponseHead>();
      response_head_bytes_.clear();
      response_parser_.StartResponse(limit, request_->is_head);
    }
    // An impossible head (a bare LF, a NUL...) fails at once, not at the
    // upstream_response timeout.
    const HeadParser::State state =
        ParseBufferedHead(in, limit, &response_head_bytes_, &response_parser_, pending_response_.get());
    if (state == HeadParser::State::kIncomplete) return;
    if (state == HeadParser::State::kError) {
      Fail(502, response_parser_.error());
      return;
    }
    evbuffer_drain(in, response_parser_.head_size());
    std::unique_ptr<ResponseHead> response = std::move(pending_response_);
    if (response->status == 101) {
      Fail(502, "upstream switched protocols without an Upgrade request");
      return;
    }
    if (response->status < 200) continue;  // 1xx interim responses are dropped
    // The response's views point into response_head_bytes_, kept unchanged
    // from here on.
    response_ = std::move(response);
    break;
  }
  upstream_duration_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - upstream_sent_).count();

  if (response_->framing == BodyFraming::kNone) {
    if (auto cl = response_->headers.Get(HeaderId::kContentLength)) original_content_length_ = std::string(*cl);
  }
  RemoveHopByHop(&response_->headers);
  response_body_.Reset(response_->framing, response_->content_length, config_->limits.max_header_bytes);
  ArmTimer(config_->timeouts.upstream_response);
  state_ = State::kResponseFilter;
  if (filter_) {
    filter_->OnResponseHead(*request_, *response_, [this](FilterResult r) { OnResponseFiltered(std::move(r)); });
  } else {
    OnResponseFiltered(FilterResult::Continue());
  }
}

void Exchange::OnResponseFiltered(FilterResult result) {
  if (state_ != State::kResponseFilter) return;  // aborted meanwhile
  if (result.status != 0) {
    DropUpstream();  // the upstream's response is discarded unread
    SendLocalReply(result.status, result.body);
    return;
  }
  WriteResponseHead();
  state_ = State::kStreaming;
  PumpResponseBody();
}

// A half-closed client (peer_eof) still gets every request it already sent
// answered: ClientConnection closes once no complete request is left.
bool Exchange::ClientWantsKeepAlive() const {
  return request_->keep_alive && !conn_->worker()->shutting_down();
}

void Exchange::WriteResponseHead() {
  const bool http11_client = request_->minor_version == 1;
  const BodyFraming framing = response_->framing;
  response_chunked_out_ =
      (framing == BodyFraming::kChunked || framing == BodyFraming::kUntilClose) && http11_client;
  // An HTTP/1.0 client learns where an unframed body ends only from the close.
  if (framing == BodyFraming::kUntilClose && !http11_client) close_client_ = true;
  if (framing == BodyFraming::kChunked && !http11_client) close_client_ = true;
  if (!ClientWantsKeepAlive()) close_client_ = true;

  const size_t size = 13 + response_->reason.size() + 2 + HeadWriter::HeadersSize(response_->headers) +
                      30 + HeadWriter::kMaxNumber + original_content_length_.size() + 16 +
                      request_id_.size() + 26 + 2;
  EvbufferHead reserved(bufferevent_get_output(conn_->bev()), size);
  HeadWriter& w = reserved.writer();
  w.Put("HTTP/1.1 ");
  w.PutNumber(static_cast<uint64_t>(response_->status));
  w.Put(" ");
  w.Put(response_->reason);
  w.Put("\r\n");
  w.PutHeaders(response_->headers);
  if (framing == BodyFraming::kLength) {
    w.Put("Content-Length: ");
    w.PutNumber(response_->content_length);
    w.Put("\r\n");
  } else if (response_chunked_out_) {
    w.Put("Transfer-Encoding: chunked\r\n");
  } else if (framing == BodyFraming::kNone && !original_content_length_.empty() && response_->status != 204) {
    w.Put("Content-Length: ");
    w.Put(original_content_length_);
    w.Put("\r\n");
  }
  if (!response_->headers.Get(HeaderId::kXRequestId)) {
    w.Put("X-Request-Id: ");
    w.Put(request_id_);
    w.Put("\r\n");
  }
  if (close_client_) {
    w.Put("Connection: close\r\n");
  } else if (!http11_client) {
    w.Put("Connection: keep-alive\r\n");
  }
  w.Put("\r\n");
  reserved.Commit();
  status_ = response_->status;
  response_started_ = true;
}

void Exchange::PumpResponseBody() {
  if (state_ != State::kStreaming) return;
  evbuffer* in = bufferevent_get_input(upstream_->bev());
  evbuffer* out = bufferevent_get_output(conn_->bev());
  while (!response_body_.done()) {
    size_t queued = evbuffer_get_length(out);
    if (queued >= kOutputHigh) return;  // OnClientDrained resumes us
    evbuffer_iovec vec;
    if (evbuffer_peek(in, -1, nullptr, &vec, 1) < 1 || vec.iov_len == 0) break;
    BodyDecoder::Step step =
        response_body_.Next(static_cast<const char*>(vec.iov_base), vec.iov_len, kOutputHigh - queued);
    if (response_body_.failed()) {
      Fail(502, response_body_.error());
      return;
    }
    if (step.framing == 0 && step.data == 0) break;
    evbuffer_drain(in, step.framing);
    if (step.data) MoveBody(in, out, step.data, response_chunked_out_);
    response_bytes_ += step.data;
  }
  if (!response_body_.done() && upstream_eof_ && evbuffer_get_length(in) == 0) {
    if (response_body_.framing() == BodyFraming::kUntilClose && !upstream_error_) {
      response_body_.FinishOnEof();
    } else {
      Fail(502, "upstream closed in the middle of the response body");
      return;
    }
  }
  if (response_body_.done()) {
    if (response_chunked_out_) evbuffer_add(out, "0\r\n\r\n", 5);
    FinishResponse();
  }
}

void Exchange::FinishResponse() {
  state_ = State::kDone;
  evtimer_del(timer_);
  if (upstream_) {
    bool reusable = response_->keep_alive && request_body_done_ && !upstream_eof_ &&
                    evbuffer_get_length(bufferevent_get_input(upstream_->bev())) == 0 &&
                    evbuffer_get_length(bufferevent_get_output(upstream_->bev())) == 0;
    if (reusable) {
      bufferevent_enable(upstream_->bev(), EV_READ);  // the idle pool watches for a close
      conn_->worker()->pool().Release(std::move(upstream_));
    } else {
      DropUpstream();
    }
  }
  if (!request_body_done_) close_client_ = true;  // the rest of the body was never read
  Finalize();
  // The response is complete, so nothing waits on the write callback. After
  // Finalize: a client that has its response finds it already counted and logged.
  WriteNow(conn_->bev());
  conn_->ExchangeFinished(!close_client_);
}

void Exchange::ArmTimer(Millis timeout) {
  timeval tv = ToTimeval(timeout);
  evtimer_add(timer_, &tv);
}

void Exchange::OnTimer() {
  switch (state_) {
    case State::kConnecting:
      if (Metrics* m = conn_->worker()->metrics()) m->timeouts_upstream_connect++;
      Fail(502, "upstream connect timeout");
      return;
    case State::kAwaitingHead:
      if (Metrics* m = conn_->worker()->metrics()) m->timeouts_upstream_response++;
      Fail(504, "upstream response timeout");
      return;
    case State::kStreaming:
      if (Metrics* m = conn_->worker()->metrics()) m->timeouts_upstream_response++;
      Fail(504, "upstream stalled in the response body");
      return;
    default:
      return;
  }
}

void Exchange::OnRequestBodyTimeout() {
  if (Metrics* m = conn_->worker()->metrics()) m->timeouts_client_body++;
  Fail(408, "client stopped sending the request body");
}

void Exchange::Fail(int status, const char* log_reason) {
  if (state_ == State::kDone) return;
  const bool upstream_side = status == 502 || status == 504;
  if (upstream_side) {
    LOG_WARN("upstream %s: %s (client %s)", config_->upstream.address.text.c_str(), log_reason,
             conn_->client_ip().c_str());
    if (Metrics* m = conn_->worker()->metrics()) m->upstream_errors++;
  } else {
    LOG_DEBUG("client %s: %d %s", conn_->client_ip().c_str(), status, log_reason);
  }
  DropUpstream();
  if (!response_started_) {
    std::string body = ReasonPhrase(status);
    body.push_back('\n');
    SendLocalReply(status, body);
    return;
  }
  // Part of a response is already out: the only honest signal left is to
  // cut the connection, so the client sees a truncated body.
  state_ = State::kDone;
  evtimer_del(timer_);
  Finalize();
  conn_->ExchangeAborted();
}

void Exchange::SendLocalReply(int status, const std::string& body) {
  DropUpstream();
  evtimer_del(timer_);
  if (!request_body_done_) close_client_ = true;
  if (status == 400 || status == 408 || status == 413) close_client_ = true;
  if (!ClientWantsKeepAlive()) close_client_ = true;
  std::string out;
  out.reserve(160 + body.size());
  char line[160];
  int n = snprintf(line, sizeof(line),
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n", status,
                   ReasonPhrase(status), body.size());
  out.append(line, static_cast<size_t>(n));
  out.append("X-Request-Id: ").append(request_id_).append("\r\n");
  if (close_client_) out.append("Connection: close\r\n");
  out.append("\r\n");
  if (!request_->is_head) {
    out.append(body);
    response_bytes_ = body.size();
  }
  bufferevent_write(conn_->bev(), out.data(), out.size());
  status_ = status;
  response_started_ = true;
  state_ = State::kDone;
  Finalize();
  conn_->ExchangeFinished(!close_client_);
}

void Exchange::DropUpstream() { upstream_.reset(); }

void Exchange::Abort() {
  DropUpstream();
  evtimer_del(timer_);
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
  const double duration = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (Metrics* m = conn_->worker()->metrics()) {
    if (status_ >= 100 && status_ < 600) m->requests_by_code[status_].fetch_add(1, std::memory_order_relaxed);
    m->request_duration.Observe(duration);
  }
  if (config_->log.access == AccessLogFormat::kOff) return;
  AccessLogEntry e;
  e.client = conn_->client_ip();
  e.method = request_->method;
  e.target = request_->target;
  e.minor_version = request_->minor_version;
  e.status = status_;
  e.bytes = response_bytes_;
  e.duration = duration;
  e.upstream_duration = upstream_duration_;
  if (filter_) e.session = filter_->LogTag();
  e.request_id = request_id_;
  if (auto v = request_->headers.Get(HeaderId::kReferer)) e.referer = *v;
  if (auto v = request_->headers.Get(HeaderId::kUserAgent)) e.user_agent = *v;
  WriteAccessLog(e, config_->log.access);
}

}  // namespace sessiond
