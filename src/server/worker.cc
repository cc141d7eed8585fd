#include "server/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "observe/metrics.h"
#include "crypto/crypto.h"
#include "proxy/client_connection.h"
#include "net/listen_socket.h"
#include "base/log.h"

namespace sessiond {

namespace {

// The process's pseudonym in Via (docs/HTTP.md, Loops): random, so that two
// sessiond instances in a chain never take each other's entry for their own.
const std::string& ProcessVia() {
  static const std::string via = [] {
    uint64_t id = 0;
    if (Result<std::string> r = crypto::RandomBytes(8); r.ok()) memcpy(&id, r->data(), 8);
    if (id == 0) id = static_cast<uint64_t>(getpid()) << 32 ^ static_cast<uint64_t>(time(nullptr));
    char hex[17];
    for (int i = 15; i >= 0; --i, id >>= 4) hex[i] = "0123456789abcdef"[id & 0xF];
    hex[16] = '\0';
    return std::string("1.1 sessiond-") + hex;
  }();
  return via;
}

}  // namespace

std::string_view Worker::via() const { return ProcessVia(); }

Worker::Worker(int index, std::shared_ptr<const Config> config, FilterFactoryMaker make_filters, Metrics* metrics,
               WorkerTls tls)
    : index_(index),
      config_(std::move(config)),
      tls_(std::move(tls)),
      make_filters_(std::move(make_filters)),
      metrics_(metrics) {}

Worker::~Worker() {
  // Connections free themselves through their destructor, which unregisters.
  while (!connections_.empty()) delete connections_.back();
  ClientConnection::SetSpareLimit(0);
  filters_.reset();
  tunnels_.reset();
  pool_.reset();
  exchanges_.reset();
  blocks_.reset();
  if (listener_) evconnlistener_free(listener_);
  tasks_.reset();
  if (tick_) event_free(tick_);
  if (resume_accept_) event_free(resume_accept_);
  if (base_) event_base_free(base_);
}

Status Worker::Init() {
  // The epoll changelist batches event changes until the next epoll_wait, so
  // an add and a delete of the same event in one iteration cost no syscall
  // (a read paused and resumed by the read limit, see net/connection.h). Its
  // one hazard, dup()ed descriptors sharing an epoll registration, does not
  // arise: sessiond never dup()s a socket.
  event_config* cfg = event_config_new();
  if (!cfg) return Status::IOError("cannot create an event loop");
  event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  base_ = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (!base_) return Status::IOError("cannot create an event loop");
  tasks_ = std::make_unique<TaskQueue>(base_);
  if (Status s = tasks_->status(); !s.ok()) return s;
  tick_ = event_new(base_, -1, EV_PERSIST, TickCb, this);
  uint64_t prefix = 0;
  if (Result<std::string> r = crypto::RandomBytes(8); r.ok()) memcpy(&prefix, r->data(), 8);
  for (int i = 15; i >= 0; --i, prefix >>= 4) request_id_prefix_hex_[i] = "0123456789abcdef"[prefix & 0xF];
  Result<int> fd = ListenSocket(config_->listen, /*reuse_port=*/true);
  if (!fd.ok()) return fd.status();
  listener_ = evconnlistener_new(base_, AcceptCb, this, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                 /*backlog=*/0, *fd);  // 0: listen() was called already (4096); -1 would reset it to 128
  if (!listener_) {
    close(*fd);
    return Status::IOError("cannot listen on " + config_->listen.text);
  }
  evconnlistener_set_error_cb(listener_, AcceptErrorCb);
  resume_accept_ = evtimer_new(base_, ResumeAcceptCb, this);
  blocks_ = std::make_unique<net::BlockPool>(kMaxFreeBlocks);
  exchanges_ = std::make_unique<ExchangePool>(this);
  pool_ = std::make_unique<UpstreamPool>(base_, blocks_.get(), metrics_);
  tunnels_ = std::make_unique<TunnelRegistry>(this);
  (void)ProcessVia();  // made on the main thread, before any worker runs
  return Status::OK();
}

void Worker::Start() {
  thread_ = std::thread([this] {
    if (make_filters_) filters_ = make_filters_(config_, loop_env(), metrics_);
    static const timeval kOneSecond{1, 0};
    evtimer_add(tick_, &kOneSecond);
    OnTick();
    event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
    // Anything still open after the loop (forced stop) is freed here, on the
    // thread that owns it.
    while (!connections_.empty()) delete connections_.back();
    ClientConnection::SetSpareLimit(0);
    filters_.reset();
    pool_.reset();
    // Drop this worker's share of process-wide store state (the file store's
    // I/O threads), so the Server can join those threads while every worker's
    // task queue still exists for their last posts.
    make_filters_ = nullptr;
    exited_.store(true, std::memory_order_release);
  });
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::Post(std::function<void()> fn) { tasks_->Post(std::move(fn)); }

LoopEnv Worker::loop_env() {
  LoopEnv env;
  env.base = base_;
  env.post = [this](std::function<void()> fn) { Post(std::move(fn)); };
  env.index = index_;
  env.store_health = [this](bool ok) {
    ++store_reports_;
    ready_.store(ok, std::memory_order_release);
  };
  return env;
}

void Worker::AcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
  auto* worker = static_cast<Worker*>(arg);
  auto* conn = new ClientConnection(worker, fd, addr, worker->tls_.listener);
  conn->Start();  // frees itself when it ends
}

void Worker::TickCb(evutil_socket_t, short, void* arg) { static_cast<Worker*>(arg)->OnTick(); }

void Worker::OnTick() {
  connection_peaks_[0] = connection_peaks_[1];
  connection_peaks_[1] = connections_.size();
  SizePools();
  if (pool_) pool_->Tick(config_->timeouts.idle);
  if (exchanges_) exchanges_->Trim();
  if (blocks_) blocks_->Trim();
  if (!filters_) {
    ready_.store(true, std::memory_order_release);
    return;
  }
  filters_->Tick(index_);
  const uint64_t reports = store_reports_;
  filters_->CheckReady([this, reports](bool ok) {
    if (store_reports_ == reports) ready_.store(ok, std::memory_order_release);
  });
}

void Worker::NextRequestId(char* out) {
  static_assert(kRequestIdLength == 32, "16 hex digits of prefix, 16 of counter");
  static const char kHex[] = "0123456789abcdef";
  memcpy(out, request_id_prefix_hex_, 16);
  uint64_t counter = ++request_id_counter_;
  for (int i = 31; i >= 16; --i, counter >>= 4) out[i] = kHex[counter & 0xF];
}
// accept() failed. Out of file descriptors (or kernel memory) the listening
// socket stays readable, so retrying at once would spin: stop accepting for
// 100 ms, as nginx does, and warn at most every 10 s. The kernel keeps the
// pending connections queued meanwhile.
void Worker::AcceptErrorCb(evconnlistener* listener, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  int err = EVUTIL_SOCKET_ERROR();
  if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) return;
  evconnlistener_disable(listener);
  static const timeval kPause{0, 100000};
  evtimer_add(w->resume_accept_, &kPause);
  const int64_t now = static_cast<int64_t>(time(nullptr));
  if (now - w->last_accept_warning_ >= 10) {
    w->last_accept_warning_ = now;
    LOG_WARN("worker %d: cannot accept connections: %s (pausing accepts; raise the open-file limit)", w->index_,
             strerror(err));
  }
}

void Worker::ResumeAcceptCb(evutil_socket_t, short, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  if (w->listener_ && !w->shutting_down_) evconnlistener_enable(w->listener_);
}

// The spare exchanges and blocks (and the storage of ended connections)
// follow the number of connections: a connection has at most two exchanges
// (one finishing, one starting) and a few blocks in flight. The bound is the
// most connections at once over the last tick or two, so clients that close
// and reconnect (a load balancer recycling its connections, wrk between
// runs) find what their predecessors used, and what is no longer needed goes
// back to malloc within two ticks (the main thread's heap trim, server.cc,
// runs again on the two ticks after a drop). A burst larger than the pools
// (more connections than ExchangePool::kMaxFree) is over when its
// connections are: what it used goes back at once, in time for the first
// heap trim.
void Worker::SizePools() {
  const size_t n = connections_.size();
  if (n > connection_peaks_[1]) connection_peaks_[1] = n;
  const size_t peak = std::max(connection_peaks_[0], connection_peaks_[1]);
  const size_t recent = peak <= ExchangePool::kMaxFree ? peak : n;
  if (exchanges_) exchanges_->set_max_free(std::min<size_t>(ExchangePool::kMaxFree, recent + 16));
  if (blocks_) blocks_->set_max_free(std::min<size_t>(kMaxFreeBlocks, 4 * recent + 16));
  // The calling thread's (the loop's; the destructor's, which empties it).
  ClientConnection::SetSpareLimit(recent + 16);
}

void Worker::Register(ClientConnection* conn) {
  conn->set_host_slot(connections_.size());
  connections_.push_back(conn);
  SizePools();
  if (metrics_) {
    int64_t active = metrics_->connections_active.fetch_add(1, std::memory_order_relaxed) + 1;
    metrics_->connections_total.fetch_add(1, std::memory_order_relaxed);
    int64_t peak = metrics_->connections_peak.load(std::memory_order_relaxed);
    while (active > peak && !metrics_->connections_peak.compare_exchange_weak(peak, active, std::memory_order_relaxed)) {
    }
  }
}

void Worker::Unregister(ClientConnection* conn) {
  // The last connection takes the slot of the one leaving.
  ClientConnection* last = connections_.back();
  connections_[conn->host_slot()] = last;
  last->set_host_slot(conn->host_slot());
  connections_.pop_back();
  SizePools();
  if (metrics_) metrics_->connections_active.fetch_sub(1, std::memory_order_relaxed);
  MaybeExit();
}

void Worker::BeginShutdown() {
  Post([this] { DoShutdown(); });
}

void Worker::DoShutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  if (listener_) {
    evconnlistener_free(listener_);
    listener_ = nullptr;
  }
  // Copy: BeginShutdown may close (and unregister) a connection.
  std::vector<ClientConnection*> conns(connections_);
  for (ClientConnection* c : conns) c->BeginShutdown();
  MaybeExit();
}

void Worker::MaybeExit() {
  if (shutting_down_ && connections_.empty()) event_base_loopexit(base_, nullptr);
}


void Worker::ForceStop() {
  Post([this] { event_base_loopbreak(base_); });
}

void Worker::Reload(std::shared_ptr<const Config> config, WorkerTls tls) {
  Post([this, config = std::move(config), tls = std::move(tls)] {
    // Pooled connections were made with the old address and the old TLS
    // settings (the Server keeps the same client context when they did not
    // change).
    bool upstream_changed = config->upstream.address.text != config_->upstream.address.text ||
                            config->upstream.https != config_->upstream.https || tls.upstream != tls_.upstream;
    config_ = config;
    tls_ = tls;
    if (upstream_changed) pool_->Clear();
    if (make_filters_) filters_ = make_filters_(config_, loop_env(), metrics_);
  });
}

}  // namespace sessiond
