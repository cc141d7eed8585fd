#include "server/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "admin/metrics.h"
#include "http/client_connection.h"
#include "util/log.h"

namespace sessiond {

namespace {

// Creates a bound, listening, non-blocking socket with SO_REUSEPORT, so that
// every worker accepts on its own socket and the kernel spreads connections.
Result<int> ListenSocket(const SocketAddress& addr) {
  int fd = socket(addr.sa()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError(std::string("socket: ") + strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (addr.sa()->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, addr.sa(), addr.length) != 0 || listen(fd, 4096) != 0) {
    Status s = Status::IOError("cannot listen on " + addr.text + ": " + strerror(errno));
    close(fd);
    return s;
  }
  return fd;
}

}  // namespace

Worker::Worker(int index, std::shared_ptr<const Config> config, FilterFactoryMaker make_filters, Metrics* metrics)
    : index_(index), config_(std::move(config)), make_filters_(std::move(make_filters)), metrics_(metrics) {}

Worker::~Worker() {
  // Connections free themselves through their destructor, which unregisters.
  while (!connections_.empty()) delete *connections_.begin();
  filters_.reset();
  pool_.reset();
  if (listener_) evconnlistener_free(listener_);
  if (posted_ev_) event_free(posted_ev_);
  if (base_) event_base_free(base_);
}

Status Worker::Init() {
  base_ = event_base_new();
  if (!base_) return Status::IOError("cannot create an event loop");
  posted_ev_ = event_new(base_, -1, EV_PERSIST, PostedCb, this);
  Result<int> fd = ListenSocket(config_->listen);
  if (!fd.ok()) return fd.status();
  listener_ = evconnlistener_new(base_, AcceptCb, this, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, *fd);
  if (!listener_) {
    close(*fd);
    return Status::IOError("cannot listen on " + config_->listen.text);
  }
  pool_ = std::make_unique<UpstreamPool>(base_);
  return Status::OK();
}

void Worker::Start() {
  thread_ = std::thread([this] {
    if (make_filters_) filters_ = make_filters_(config_, *this);
    event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
    // Anything still open after the loop (forced stop) is freed here, on the
    // thread that owns it.
    while (!connections_.empty()) delete *connections_.begin();
    filters_.reset();
    pool_.reset();
    exited_.store(true, std::memory_order_release);
  });
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  event_active(posted_ev_, EV_TIMEOUT, 0);
}

void Worker::PostedCb(evutil_socket_t, short, void* arg) { static_cast<Worker*>(arg)->RunPosted(); }

void Worker::RunPosted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) task();
}

void Worker::AcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
  auto* worker = static_cast<Worker*>(arg);
  auto* conn = new ClientConnection(worker, fd, addr);
  conn->Start();  // frees itself on failure
}

void Worker::Register(ClientConnection* conn) {
  connections_.insert(conn);
  if (metrics_) {
    metrics_->connections_active.fetch_add(1, std::memory_order_relaxed);
    metrics_->connections_total.fetch_add(1, std::memory_order_relaxed);
  }
}

void Worker::Unregister(ClientConnection* conn) {
  connections_.erase(conn);
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
  std::vector<ClientConnection*> conns(connections_.begin(), connections_.end());
  for (ClientConnection* c : conns) c->BeginShutdown();
  MaybeExit();
}

void Worker::MaybeExit() {
  if (shutting_down_ && connections_.empty()) event_base_loopexit(base_, nullptr);
}

void Worker::ForceStop() {
  Post([this] { event_base_loopbreak(base_); });
}

void Worker::Reload(std::shared_ptr<const Config> config) {
  Post([this, config = std::move(config)] {
    bool upstream_changed = config->upstream.address.text != config_->upstream.address.text;
    config_ = config;
    if (upstream_changed) pool_->Clear();
    if (make_filters_) filters_ = make_filters_(config_, *this);
  });
}

}  // namespace sessiond
