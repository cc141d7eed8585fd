#include "proxy/tunnel.h"

#include <algorithm>

#include "base/log.h"
#include "observe/metrics.h"
#include "proxy/client_connection.h"
#include "proxy/exchange.h"
#include "proxy/proxy_host.h"

namespace sessiond {

namespace {

// Follows the first `n` bytes of `in` with `frames`; with stop_at_boundary,
// only up to the first frame boundary. Returns the bytes followed.
size_t FollowFrames(WebSocketFrameTracker& frames, const net::Buffer& in, size_t n, bool stop_at_boundary) {
  size_t done = 0;
  for (size_t i = 0; i < in.slice_count() && done < n; ++i) {
    const std::string_view s = in.slice(i);
    const size_t want = std::min(s.size(), n - done);
    const size_t took = frames.Feed(s.data(), want, stop_at_boundary);
    done += took;
    if (took < want) break;
  }
  return done;
}

}  // namespace

Tunnel::Tunnel(ProxyHost* host, ClientConnection* client, std::unique_ptr<UpstreamConnection> upstream,
               TunnelSpec spec)
    : host_(host),
      client_(client),
      upstream_(std::move(upstream)),
      spec_(std::move(spec)),
      idle_timer_(host->base(), IdleCb, this),
      life_timer_(host->base(), LifeCb, this) {
  upstream_->conn().set_handler(this);
  id_ = host_->tunnels().Add(this);
}

Tunnel::~Tunnel() {
  ReportBytes();
  host_->tunnels().Remove(this);
}

net::Connection& Tunnel::client() { return client_->conn(); }

void Tunnel::Start() {
  started_ = true;
  // Each input holds at most what its other side's output may take, so a
  // slow reader stops its writer (see the file comment of exchange.h).
  for (net::Connection* c : {&client(), &upstream()}) {
    c->set_read_limit(Exchange::kOutputHigh);
    c->set_low_mark(Exchange::kOutputLow);
    c->EnableReading();
  }
  idle_timer_.Arm(spec_.idle);
  life_timer_.Arm(spec_.max);
  client_eof_ = client().peer_eof();
  upstream_eof_ = upstream().peer_eof();
  if (upstream().error() != 0) {
    Finish("upstream connection error");
    return;
  }
  PumpUp();
  PumpDown();
  CheckEnds();
  // Opened while the worker drains: a WebSocket is told to go away at once.
  if (!finished_ && spec_.websocket && host_->shutting_down()) End(kWsCloseGoingAway, "shutdown");
}

void Tunnel::PumpUp() {
  if (!started_ || finished_) return;
  net::Buffer& in = client().input();
  net::Buffer& out = upstream().output();
  bool moved = false;
  while (!in.empty() && out.size() < Exchange::kOutputHigh) {
    const size_t n = std::min(in.size(), Exchange::kOutputHigh - out.size());
    if (spec_.websocket) FollowFrames(to_upstream_frames_, in, n, /*stop_at_boundary=*/false);
    in.MoveTo(out, n);
    bytes_up_ += n;
    moved = true;
  }
  if (moved) {
    upstream().Flush();
    idle_timer_.Arm(spec_.idle);
  }
  client().RefreshReading();
  // Ending: the client's Close reply has gone on to the backend.
  if (close_sent_ && to_upstream_frames_.close_passed()) Finish("WebSocket closed by sessiond");
}

void Tunnel::PumpDown() {
  if (!started_ || finished_) return;
  net::Buffer& in = upstream().input();
  net::Buffer& out = client().output();
  if (close_sent_) {  // nothing goes to the client after our Close
    in.Clear();
    upstream().RefreshReading();
    return;
  }
  bool moved = false;
  while (!in.empty() && out.size() < Exchange::kOutputHigh) {
    size_t n = std::min(in.size(), Exchange::kOutputHigh - out.size());
    if (spec_.websocket) {
      const size_t followed = FollowFrames(to_client_frames_, in, n, /*stop_at_boundary=*/ending_);
      if (ending_) n = followed;
    }
    if (n == 0) break;
    in.MoveTo(out, n);
    bytes_down_ += n;
    moved = true;
    if (ending_ && to_client_frames_.at_boundary()) break;
  }
  if (ending_ && to_client_frames_.at_boundary()) {
    char* p = out.Reserve(kMaxWsCloseFrame);
    out.Commit(WriteWebSocketClose(p, close_code_, close_code_ == kWsClosePolicyViolation ? "session ended" : ""));
    close_sent_ = true;
    moved = true;
    in.Clear();
  }
  if (moved) {
    client().Flush();
    idle_timer_.Arm(spec_.idle);
  }
  upstream().RefreshReading();
  if (close_sent_ && client_eof_) Finish("WebSocket closed by sessiond");
}

void Tunnel::CheckEnds() {
  if (!started_ || finished_) return;
  if (client_eof_ && !upstream_shut_ && client().input().empty() && upstream().output().empty()) {
    upstream().ShutdownWrite();
    upstream_shut_ = true;
  }
  if (upstream_eof_ && !client_shut_ && !close_sent_ && upstream().input().empty() && client().output().empty()) {
    client().ShutdownWrite();
    client_shut_ = true;
  }
  if (upstream_shut_ && client_shut_) Finish("closed by both sides");
}

void Tunnel::OnClientReadable() {
  PumpUp();
  CheckEnds();
}

void Tunnel::OnClientEof() {
  client_eof_ = true;
  if (ending_ && close_sent_) {
    Finish("WebSocket closed by sessiond");
    return;
  }
  PumpUp();
  CheckEnds();
}

void Tunnel::OnClientWritable() {
  PumpDown();
  CheckEnds();
}

void Tunnel::OnReadable(net::Connection*) {
  PumpDown();
  CheckEnds();
}

void Tunnel::OnPeerEof(net::Connection*) {
  upstream_eof_ = true;
  if (ending_ && close_sent_) {
    Finish("WebSocket closed by sessiond");
    return;
  }
  PumpDown();
  CheckEnds();
}

void Tunnel::OnWritable(net::Connection*) {
  PumpUp();
  CheckEnds();
}

void Tunnel::OnError(net::Connection*, int err) { Finish("upstream connection error"); }

void Tunnel::IdleCb(void* arg) { static_cast<Tunnel*>(arg)->End(kWsCloseGoingAway, "timeouts.tunnel_idle"); }

void Tunnel::LifeCb(void* arg) {
  auto* t = static_cast<Tunnel*>(arg);
  if (t->ending_) {
    t->Finish("no clean WebSocket close within 1 s");
  } else {
    t->End(kWsCloseGoingAway, "timeouts.tunnel_max");
  }
}

void Tunnel::End(uint16_t ws_code, const char* why) {
  if (!started_ || finished_ || ending_) return;
  LOG_DEBUG("client %s: tunnel %llu ended (%s)", client_->client_ip().c_str(), static_cast<unsigned long long>(id_),
            why);
  if (!spec_.websocket) {
    Finish(why);
    return;
  }
  ending_ = true;
  close_code_ = ws_code;
  idle_timer_.Cancel();
  life_timer_.Arm(kCloseWait);
  PumpDown();  // the Close goes out at the next frame boundary
}

void Tunnel::Abort() {
  finished_ = true;
  idle_timer_.Cancel();
  life_timer_.Cancel();
  upstream_.reset();
}

void Tunnel::Finish(const char* why) {
  if (finished_) return;
  finished_ = true;
  idle_timer_.Cancel();
  life_timer_.Cancel();
  if (!ending_) LOG_DEBUG("client %s: tunnel %llu %s", client_->client_ip().c_str(),
                          static_cast<unsigned long long>(id_), why);
  upstream().Flush();
  upstream_.reset();
  client_->TunnelFinished();  // last: retires this tunnel
}

void Tunnel::ReportBytes() {
  Metrics* m = host_->metrics();
  if (m && bytes_up_) m->tunnel_bytes_upstream.fetch_add(bytes_up_, std::memory_order_relaxed);
  if (m && bytes_down_) m->tunnel_bytes_client.fetch_add(bytes_down_, std::memory_order_relaxed);
  bytes_up_ = bytes_down_ = 0;
}

// ---- TunnelRegistry ----

TunnelRegistry::TunnelRegistry(ProxyHost* host)
    : host_(host), timer_(host->base(), TimerCb, this), alive_(std::make_shared<bool>(true)) {}

TunnelRegistry::~TunnelRegistry() { *alive_ = false; }

uint64_t TunnelRegistry::Add(Tunnel* tunnel) {
  const uint64_t id = next_id_++;
  tunnels_[id] = tunnel;
  if (!timer_.armed()) timer_.Arm(kCheckPeriod);
  if (Metrics* m = host_->metrics()) {
    m->tunnels_active.fetch_add(1, std::memory_order_relaxed);
    Inc(m->tunnels_opened);
  }
  return id;
}

void TunnelRegistry::Remove(Tunnel* tunnel) {
  if (tunnels_.erase(tunnel->id()) == 0) return;
  if (Metrics* m = host_->metrics()) m->tunnels_active.fetch_sub(1, std::memory_order_relaxed);
}

void TunnelRegistry::TimerCb(void* arg) {
  auto* r = static_cast<TunnelRegistry*>(arg);
  r->CheckSessions();
  if (!r->tunnels_.empty()) r->timer_.Arm(kCheckPeriod);
}

void TunnelRegistry::CheckSessions() {
  for (auto& [id, t] : tunnels_) t->ReportBytes();
  const auto now = std::chrono::steady_clock::now();
  if (checking_ && now - check_started_ < kCheckGiveUp) return;
  std::vector<uint64_t> ids;
  std::vector<SessionBinding> bindings;
  for (auto& [id, t] : tunnels_) {
    if (!t->session().bound()) continue;
    ids.push_back(id);
    bindings.push_back(t->session());
  }
  std::shared_ptr<ExchangeFilterFactory> filters = host_->filters();
  if (ids.empty() || !filters) return;
  checking_ = true;
  check_started_ = now;
  const uint64_t generation = ++generation_;
  filters->CheckBindings(bindings, [this, alive = alive_, generation, ids](std::vector<bool> ended) {
    if (*alive) OnChecked(generation, ids, std::move(ended));
  });
}

void TunnelRegistry::OnChecked(uint64_t generation, const std::vector<uint64_t>& ids, std::vector<bool> ended) {
  if (generation != generation_) return;  // an answer given up on
  checking_ = false;
  for (size_t i = 0; i < ids.size() && i < ended.size(); ++i) {
    if (!ended[i]) continue;
    auto it = tunnels_.find(ids[i]);
    if (it == tunnels_.end()) continue;
    if (Metrics* m = host_->metrics()) Inc(m->tunnels_session_ended);
    it->second->End(kWsClosePolicyViolation, "its session ended");
  }
}

}  // namespace sessiond
