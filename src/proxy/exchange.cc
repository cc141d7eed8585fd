#include "proxy/exchange.h"

#include <errno.h>
#include <netinet/in.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "base/log.h"
#include "http/forwarding.h"
#include "http/head_writer.h"
#include "http/hop_by_hop.h"
#include "http/upgrade.h"
#include "observe/exchange_record.h"
#include "observe/metrics.h"
#include "proxy/client_connection.h"
#include "proxy/read_head.h"
#include "net/tls_transport.h"
#include "proxy/tunnel.h"

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

uint16_t ListenPort(const SocketAddress& a) {
  if (a.sa()->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(a.sa())->sin_port);
  if (a.sa()->sa_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(a.sa())->sin6_port);
  return 0;
}

// At most one line per second for the log lines that clients can trigger at will.
bool LogAllowed(std::atomic<int64_t>& last) {
  const int64_t now = static_cast<int64_t>(time(nullptr));
  int64_t seen = last.load(std::memory_order_relaxed);
  return now != seen && last.compare_exchange_strong(seen, now, std::memory_order_relaxed);
}

std::atomic<int64_t> g_last_malformed_forwarding{0};
std::atomic<int64_t> g_last_loop{0};

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
  upstream_errno_ = 0;
  loop_ = upgrade_ = upgraded_ = false;
  upgrade_request_ = upgrade_response_ = {};
  client_address_len_ = 0;
  scheme_ = {};
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
  if (loop_) {
    if (Metrics* m = host_->metrics()) Inc(m->loops_detected);
    if (LogAllowed(g_last_loop)) {
      LOG_WARN("request loop: a request came back to this sessiond (its Via names it); upstream %s leads back "
               "here; answered 508",
               config_->upstream.address.text.c_str());
    }
    SendLocalReply(508, std::string_view());
    return;
  }
  if (upgrade_ && !OriginAllowed(request_.headers, request_.host, scheme_, config_->websocket.allowed_origins)) {
    if (Metrics* m = host_->metrics()) Inc(m->upgrades_refused_origin);
    LOG_DEBUG("client %.*s: cross-origin upgrade refused (403)", static_cast<int>(client_address_len_),
              client_address_);
    SendLocalReply(403, std::string_view());
    return;
  }
  if ((filter_factory_ = host_->filters())) {
    filter_ = filter_factory_->Acquire(ExchangeInfo{client_address()});
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
  request_.headers.AppendValueCopy(kFieldXRequestId, request_id());
  loop_ = ViaNames(request_.headers, host_->via().substr(4));  // "1.1 " then the pseudonym
  if (std::optional<std::string_view> upgrade = UpgradeRequested(request_)) {
    upgrade_ = !host_->shutting_down();
    upgrade_request_ = *upgrade;
  }
  RemoveHopByHop(&request_.headers);
  if (upgrade_) {
    // Hop-by-hop, so removed above; the upstream gets them afresh.
    request_.headers.Append("Connection", "upgrade");
    request_.headers.Append("Upgrade", upgrade_request_);
  }
  // An HTTP/1.0 request may come without Host; the upstream gets HTTP/1.1,
  // which requires one: use the upstream's own name, as nginx does.
  if (request_.headers.Count(HeaderId::kHost) == 0) {
    request_.headers.AppendValueCopy(kFieldHost, config_->upstream.address.text);
  }
  if (request_.expect_continue) request_.headers.Remove(HeaderId::kExpect);  // answered by us, see OnUpstreamConnected
  ForwardingInput forwarding;
  forwarding.peer = conn_->peer();
  forwarding.trusted = &config_->trusted_proxies;
  forwarding.host = request_.host;
  forwarding.port = ListenPort(config_->listen);
  forwarding.proto = conn_->https() ? "https" : "http";
  ForwardingResult forwarded;
  ApplyForwarding(&request_.headers, forwarding, &forwarded);
  memcpy(client_address_, forwarded.client, forwarded.client_len);
  client_address_len_ = forwarded.client_len;
  scheme_ = forwarded.scheme;
  if (forwarded.malformed && LogAllowed(g_last_malformed_forwarding)) {
    LOG_DEBUG("trusted proxy %s sent a malformed %s header: treated as absent", conn_->client_ip().c_str(),
              forwarded.malformed);
  }
  request_.headers.Append("Via", host_->via());
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
  if (!upstream_) upstream_ = pool.Connect(config_->upstream.address, host_->upstream_tls());
  if (!upstream_) {
    Fail(502, "connect failed", errno);
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
  head_parser_.StartResponse(config_->limits.max_header_bytes, request_.is_head);
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
    LOG_DEBUG_WITH(LogContext(), "client closed the connection during the request body");
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
void Exchange::OnPeerEof(net::Connection*) { OnUpstreamClosed(/*clean_eof=*/true, 0); }
void Exchange::OnError(net::Connection*, int err) { OnUpstreamClosed(/*clean_eof=*/false, err); }
void Exchange::OnWritable(net::Connection*) { PumpRequestBody(); }
void Exchange::OnConnected(net::Connection* conn) {
  if (state_ != State::kConnecting) return;
  if (net::TlsTransport* tls = conn->tls()) {
    if (Metrics* m = host_->metrics()) Inc(m->upstream_tls_handshakes[tls->resumed() ? 1 : 0]);
  }
  OnUpstreamConnected();
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

void Exchange::OnUpstreamClosed(bool clean_eof, int err) {
  switch (state_) {
    case State::kConnecting:
      if (net::TlsTransport* tls = upstream_->conn().tls(); tls && !tls->failure().empty()) {
        // The reason is for the error log only (docs/HTTP.md, TLS to the upstream).
        const std::string reason = "TLS handshake failed (" + tls->failure() + ")";
        Fail(502, reason.c_str());
        return;
      }
      Fail(502, "connect failed", err);
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
      if (clean_eof) {
        Fail(502, "closed the connection before a complete response head");
      } else {
        Fail(502, "connection failed before a complete response head", err);
      }
      return;
    case State::kResponseFilter:
    case State::kStreaming:
      upstream_eof_ = true;
      upstream_error_ = !clean_eof;
      upstream_errno_ = err;
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
    switch (ReadHead(in, limit, head_parser_, &response_, &response_pin_)) {
      case HeadParser::State::kIncomplete:
        return;
      case HeadParser::State::kError: {
        char why[160];
        snprintf(why, sizeof(why), "malformed response head: %s", head_parser_.error());
        Fail(502, why);
        return;
      }
      case HeadParser::State::kDone:
        break;
    }
    if (response_.status == 101) {
      if (!upgrade_) {
        Fail(502, "switched protocols without an Upgrade request");
        return;
      }
      // Only to a protocol the client asked for: a tunnel after anything
      // else would carry bytes the client meant as HTTP (smuggling).
      std::optional<std::string_view> protocol = response_.headers.Get(HeaderId::kUpgrade);
      if (!protocol || response_.headers.Count(HeaderId::kUpgrade) != 1 ||
          !UpgradeAccepted(upgrade_request_, *protocol)) {
        Fail(502, "switched protocols without a matching Upgrade");
        return;
      }
      upgraded_ = true;
      upgrade_response_ = *protocol;
      break;
    }
    if (response_.status >= 200) break;
    // 1xx interim responses are dropped; the final one follows.
    response_.Clear();
    response_pin_.Reset();
    head_parser_.StartResponse(limit, request_.is_head);
  }
  upstream_->conn().RefreshReading();
  upstream_duration_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - upstream_sent_).count();

  if (response_.framing == BodyFraming::kNone && !upgraded_) {
    if (auto cl = response_.headers.Get(HeaderId::kContentLength)) original_content_length_ = *cl;
  }
  RemoveHopByHop(&response_.headers);
  if (upgraded_) {
    response_.headers.Append("Connection", "upgrade");
    response_.headers.Append("Upgrade", upgrade_response_);
  }
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
  if (upgraded_) {
    OpenTunnel();
    return;
  }
  state_ = State::kStreaming;
  PumpResponseBody();
}

void Exchange::OpenTunnel() {
  state_ = State::kDone;
  timer_.Cancel();
  TunnelSpec spec;
  spec.websocket = IsWebSocketUpgrade(upgrade_response_);
  if (filter_) spec.session = filter_->Binding();  // before Finalize: the filter is recycled with the exchange
  spec.idle = config_->timeouts.tunnel_idle;
  spec.max = config_->timeouts.tunnel_max;
  Finalize();
  client().Flush();
  conn_->ExchangeUpgraded(std::move(upstream_), std::move(spec));
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
  if (upgraded_) {
    // Connection: upgrade is among the headers; the connection becomes a tunnel.
  } else if (close_client_) {
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
      char why[160];
      snprintf(why, sizeof(why), "malformed response body: %s", response_body_.error());
      Fail(502, why);
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
      Fail(502, upstream_error_ ? "connection failed in the middle of the response body"
                                : "closed the connection in the middle of the response body",
           upstream_errno_);
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
    // An upstream that was asked to upgrade and declined is not reused: it
    // might still read what follows as the other protocol.
    const bool reusable = response_.keep_alive && request_body_done_ && !upstream_eof_ && !upgrade_ &&
                          up.input().empty() && up.output().empty() && !up.write_pending() && up.error() == 0;
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

// Timeouts are logged with ETIMEDOUT, as nginx logs them, so that one errno
// finds every upstream timeout whichever timer saw it.
void Exchange::OnTimer() {
  Metrics* m = host_->metrics();
  char why[96];
  switch (state_) {
    case State::kConnecting:
      if (m) m->timeouts_upstream_connect++;
      snprintf(why, sizeof(why), "connect timed out after %lld ms (timeouts.upstream_connect)",
               static_cast<long long>(config_->timeouts.upstream_connect.count()));
      Fail(502, why, ETIMEDOUT);
      return;
    case State::kAwaitingHead:
      if (m) m->timeouts_upstream_response++;
      snprintf(why, sizeof(why), "no response head within %lld ms (timeouts.upstream_response)",
               static_cast<long long>(config_->timeouts.upstream_response.count()));
      Fail(504, why, ETIMEDOUT);
      return;
    case State::kStreaming:
      if (m) m->timeouts_upstream_response++;
      snprintf(why, sizeof(why), "response body stalled for %lld ms (timeouts.upstream_response)",
               static_cast<long long>(config_->timeouts.upstream_response.count()));
      Fail(504, why, ETIMEDOUT);
      return;
    default:
      return;
  }
}

void Exchange::OnRequestBodyTimeout() {
  if (Metrics* m = host_->metrics()) m->timeouts_client_body++;
  Fail(408, "client stopped sending the request body");
}

LogDetail Exchange::LogContext() const {
  LogDetail d;
  // The client as forwarding computed it (a trusted proxy's client), or the
  // peer before the request's headers were read.
  d.client = client_address_len_ > 0 ? client_address() : std::string_view(conn_->client_ip());
  d.rid = request_id();
  d.method = request_.method;
  d.target = request_.target;
  d.minor_version = request_.minor_version;
  return d;
}

void Exchange::Fail(int status, const char* log_reason, int err) {
  if (state_ == State::kDone) return;
  const bool upstream_side = status == 502 || status == 504;
  if (upstream_side) {
    if (LogEnabled(LogLevel::kWarn)) {
      LogDetail d = LogContext();
      std::string https_upstream;  // an https upstream is named with its scheme
      if (config_->upstream.https) https_upstream = "https://" + config_->upstream.address.text;
      d.upstream = config_->upstream.https ? std::string_view(https_upstream)
                                           : std::string_view(config_->upstream.address.text);
      d.err = err;
      LogLineWith(LogLevel::kWarn, d, "%s", log_reason);
    }
    if (Metrics* m = host_->metrics()) m->upstream_errors++;
  } else {
    LOG_DEBUG_WITH(LogContext(), "refused the request (%d): %s", status, log_reason);
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
  e.method = request_.method;  // a label of sessiond_requests_total, logged or not
  const AccessLogFormat format = config_->log.access;
  if (format != AccessLogFormat::kOff) {
    e.client = client_address();
    e.target = request_.target;
    e.host = request_.host;
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
