#include "server/server.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include "base/log.h"
#include "net/listen_socket.h"
#include "session/ended_sessions.h"

namespace sessiond {

namespace {

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

constexpr timeval kTick{0, 20000};  // how often the main thread checks the drain

net::TlsServerOptions ServerOptions(const TlsConfig& t) {
  net::TlsServerOptions o;
  o.certificate_pem = t.certificate_pem;
  o.private_key_pem = t.private_key_pem;
  o.min_version = t.min_version;
  o.client_ca_pem = t.client_ca_pem;
  return o;
}

net::TlsClientOptions ClientOptions(const UpstreamTlsConfig& u) {
  net::TlsClientOptions o;
  o.ca_pem = u.ca_pem;
  o.server_name = u.server_name;
  o.client_certificate_pem = u.client_certificate_pem;
  o.client_key_pem = u.client_key_pem;
  return o;
}

}  // namespace

Result<WorkerTls> Server::BuildTls(const Config& config, const WorkerTls& current) {
  WorkerTls out;
  if (config.tls) {
    // Always a new context: the files were read again, perhaps renewed.
    Result<std::shared_ptr<net::TlsServerContext>> server =
        net::TlsServerContext::Create(ServerOptions(*config.tls), ticket_keys_);
    if (!server.ok()) return Status::Invalid("tls: " + server.status().message());
    out.listener = *server;
  }
  if (config.upstream.https) {
    net::TlsClientOptions options = ClientOptions(config.upstream_tls);
    if (current.upstream && current.upstream->options() == options) {
      out.upstream = current.upstream;  // keeps its resumable session and the pooled connections
    } else {
      Result<std::shared_ptr<net::TlsClientContext>> client = net::TlsClientContext::Create(options);
      if (!client.ok()) return Status::Invalid("upstream_tls: " + client.status().message());
      out.upstream = *client;
    }
  }
  return out;
}

Server::Server(std::shared_ptr<const Config> config, FilterFactoryMaker make_filters)
    : config_(std::move(config)), make_filters_(std::move(make_filters)) {}

Server::Server(std::shared_ptr<const Config> config, SessionRuntime sessions)
    : config_(std::move(config)),
      make_filters_(std::move(sessions.make_filters)),
      make_store_(std::move(sessions.make_store)),
      ended_(std::move(sessions.ended)) {}

Server::~Server() {
  admin_.reset();
  make_filters_ = nullptr;  // joins the file store's I/O threads (see Worker::Start)
  make_store_ = nullptr;
  for (event* ev : signals_) event_free(ev);
  if (tick_) event_free(tick_);
  if (trim_) event_free(trim_);
  if (rotate_) event_free(rotate_);
  workers_.clear();
  admin_tasks_.reset();  // after every store that could post to it
  if (base_) event_base_free(base_);
}

void Server::SetUpAdminStore() {
  if (!admin_) return;
  admin_->Configure(*config_);
  if (!make_store_) return;
  // Rebuilt on every load: a reload may change the manager or its settings.
  if (!admin_tasks_) admin_tasks_ = std::make_shared<TaskQueue>(base_);
  LoopEnv loop;
  loop.base = base_;
  loop.post = [tasks = admin_tasks_](std::function<void()> fn) { tasks->Post(std::move(fn)); };
  loop.index = -1;
  Result<std::shared_ptr<SessionStore>> store = make_store_(config_, loop);
  if (!store.ok()) {
    LOG_ERROR("admin: session store setup failed: %s", store.status().message().c_str());
    admin_->SetSessionStore(nullptr, nullptr);
    return;
  }
  Metrics* metrics = &metrics_;
  std::shared_ptr<EndedSessions> ended = ended_;
  const int64_t keep = EndedSessions::KeepSeconds(*config_);
  admin_->SetSessionStore(*store, [metrics, ended, keep](const std::vector<RevokedSession>& revoked) {
    metrics->sessions_revoked.fetch_add(revoked.size(), std::memory_order_relaxed);
    // Their tunnels close on every worker (docs/HTTP.md, Upgrades and
    // WebSockets); the tunnels' store check would find them gone too.
    if (ended) ended->AddRevoked(revoked, keep, static_cast<int64_t>(time(nullptr)));
  });
}

int Server::Run() {
  // No evthread_use_pthreads(): every event base is used by one thread only;
  // cross-thread wake-ups go through TaskQueue's eventfd.
  signal(SIGPIPE, SIG_IGN);
  base_ = event_base_new();
  if (!base_) {
    fprintf(stderr, "sessiond: cannot create an event loop\n");
    return 1;
  }

  // Another process already listening on the port is a start-up failure,
  // even one whose socket has SO_REUSEPORT like ours (docs/OPERATIONS.md,
  // Starting and stopping).
  if (Status free = CheckAddressFree(config_->listen); !free.ok()) {
    fprintf(stderr, "sessiond: %s\n", free.message().c_str());
    return 1;
  }

  // Handle the signals before anything listens: a supervisor that sends
  // SIGTERM as soon as the port accepts must get a clean drain, never the
  // default action. They stay blocked until the handlers are in place and the
  // workers (which inherit the mask, so signals always reach this thread)
  // have started.
  sigset_t handled, old;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &handled, &old);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    event* ev = evsignal_new(base_, sig, SignalCb, this);
    evsignal_add(ev, nullptr);
    signals_.push_back(ev);
  }

  // The admin listener listens before the workers do: once the proxy port
  // accepts (what supervisors and the tests take as "up"), so does the admin
  // port. Its readiness callback runs on this loop, after the workers exist.
  if (config_->admin.listen) {
    admin_ = std::make_unique<AdminServer>(base_, &metrics_, [this] {
      for (auto& w : workers_) {
        if (!w->ready()) return false;
      }
      return true;
    });
    Status s = admin_->Listen(*config_->admin.listen);
    if (!s.ok()) {
      fprintf(stderr, "sessiond: %s\n", s.message().c_str());
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      return 1;
    }
    SetUpAdminStore();
  }

  Result<WorkerTls> tls = BuildTls(*config_, WorkerTls{});
  if (!tls.ok()) {
    fprintf(stderr, "sessiond: %s\n", tls.status().message().c_str());
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return 1;
  }
  tls_ = *tls;
  if (tls_.listener && !ticket_keys_->ok()) {
    LOG_WARN("tls: the random generator failed: no session tickets (every handshake is a full one)");
  }

  for (int i = 0; i < config_->workers; ++i) {
    auto worker = std::make_unique<Worker>(i, config_, make_filters_, &metrics_, tls_);
    Status s = worker->Init();
    if (!s.ok()) {
      fprintf(stderr, "sessiond: %s\n", s.message().c_str());
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      return 1;
    }
    workers_.push_back(std::move(worker));
  }
  // A second sessiond that passed its probe in the moment before ours bound.
  std::vector<int> own;
  for (auto& w : workers_) own.push_back(w->listen_fd());
  if (Status alone = CheckNoOtherListener(config_->listen, own); !alone.ok()) {
    fprintf(stderr, "sessiond: %s\n", alone.message().c_str());
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return 1;
  }

  for (auto& w : workers_) w->Start();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  // glibc keeps freed memory in its arenas; after a burst (10,000 connections
  // opened and dropped) hand the free pages back so RSS returns to baseline.
  metrics_.config_last_reload_success_unix.store(static_cast<int64_t>(time(nullptr)), std::memory_order_relaxed);
  trim_ = event_new(base_, -1, EV_PERSIST, TrimCb, this);
  static const timeval kTrimEvery{2, 0};
  evtimer_add(trim_, &kTrimEvery);
  rotate_ = event_new(base_, -1, EV_PERSIST, RotateCb, this);
  static const timeval kRotateEvery{
      std::chrono::duration_cast<std::chrono::seconds>(net::TicketKeys::kRotateEvery).count(), 0};
  evtimer_add(rotate_, &kRotateEvery);

  LOG_INFO("sessiond listening on %s%s, upstream %s, %d worker(s), manager %s", config_->listen.text.c_str(),
           tls_.listener ? " (TLS)" : "", config_->upstream.url.c_str(), config_->workers,
           ToString(config_->session.manager));
  event_base_dispatch(base_);

  for (auto& w : workers_) w->Join();
  LOG_INFO("sessiond stopped%s", forced_ ? " (shutdown timeout: in-flight requests were cut)" : "");
  return 0;
}

void Server::SignalCb(evutil_socket_t sig, short, void* arg) {
  auto* server = static_cast<Server*>(arg);
  if (sig == SIGHUP) {
    server->Reload();
  } else {
    server->BeginShutdown();
  }
}

void Server::BeginShutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  LOG_INFO("shutting down: draining in-flight requests (up to %lld ms)",
           static_cast<long long>(config_->timeouts.shutdown.count()));
  shutdown_deadline_ms_ = NowMs() + config_->timeouts.shutdown.count();
  for (auto& w : workers_) w->BeginShutdown();
  tick_ = evtimer_new(base_, TickCb, this);
  evtimer_add(tick_, &kTick);
}

void Server::TickCb(evutil_socket_t, short, void* arg) { static_cast<Server*>(arg)->OnTick(); }

// Hands freed memory back within 2 s of connections going away (a burst of
// 10,000 clients, or a few slow readers that held large buffers), and every
// 30 s regardless. malloc_trim walks every arena, so it is not run on every
// tick of a steady state. After a drop it runs on the next two ticks too: the
// workers free their spare exchanges and blocks up to two of their ticks
// after the connections went (Worker::SizePools).
void Server::TrimCb(evutil_socket_t, short, void* arg) {
  auto* s = static_cast<Server*>(arg);
  const int64_t active = s->metrics_.connections_active.load(std::memory_order_relaxed);
  const int64_t peak = s->metrics_.connections_peak.load(std::memory_order_relaxed);
  const bool drop = peak - active >= 16;
  if (drop) s->trims_after_drop_ = 2;
  if (++s->trim_ticks_ >= 15 || drop || s->trims_after_drop_ > 0) {
    malloc_trim(0);
    s->trim_ticks_ = 0;
    if (!drop && s->trims_after_drop_ > 0) --s->trims_after_drop_;
    s->metrics_.connections_peak.store(active, std::memory_order_relaxed);
  }
}

// Session-ticket keys: a fresh one every TicketKeys::kRotateEvery, the one
// before still accepted (net/tls_context.h), shared by every worker and every
// TLS context of the process.
void Server::RotateCb(evutil_socket_t, short, void* arg) { static_cast<Server*>(arg)->ticket_keys_->Rotate(); }

void Server::OnTick() {
  bool all_exited = true;
  for (auto& w : workers_) all_exited = all_exited && w->exited();
  if (all_exited) {
    event_base_loopexit(base_, nullptr);
    return;
  }
  if (!forced_ && NowMs() >= shutdown_deadline_ms_) {
    forced_ = true;
    for (auto& w : workers_) w->ForceStop();
  }
  evtimer_add(tick_, &kTick);
}

void Server::Reload() {
  Result<std::shared_ptr<const Config>> loaded = LoadConfig(config_->source_path);
  if (!loaded.ok()) {
    // One line per configuration error; the first also says what happened.
    const std::string& errors = loaded.status().message();
    size_t start = 0;
    while (start < errors.size()) {
      size_t end = errors.find('\n', start);
      if (end == std::string::npos) end = errors.size();
      fprintf(stderr, "sessiond: %s%.*s\n", start == 0 ? "reload failed, keeping the running configuration: " : "",
              static_cast<int>(end - start), errors.c_str() + start);
      start = end + 1;
    }
    LOG_ERROR("reload failed, keeping the running configuration");
    metrics_.config_last_reload_successful.store(0, std::memory_order_relaxed);
    return;
  }
  std::shared_ptr<const Config> next = *loaded;
  if (next->tls.has_value() != (tls_.listener != nullptr)) {
    // The listener keeps the protocol it started with: a client of this port
    // would otherwise find it changed under its feet.
    LOG_WARN("reload: turning tls on or off needs a restart; the listener stays %s",
             tls_.listener ? "TLS" : "plain HTTP");
    auto kept = std::make_shared<Config>(*next);
    if (tls_.listener) {
      kept->tls = config_->tls;
    } else {
      kept->tls.reset();
    }
    next = kept;
  }
  Result<WorkerTls> tls = BuildTls(*next, tls_);
  if (!tls.ok()) {
    fprintf(stderr, "sessiond: reload failed, keeping the running configuration: %s\n",
            tls.status().message().c_str());
    LOG_ERROR("reload failed, keeping the running configuration (and its TLS certificate)");
    metrics_.config_last_reload_successful.store(0, std::memory_order_relaxed);
    return;
  }
  tls_ = *tls;
  metrics_.config_last_reload_successful.store(1, std::memory_order_relaxed);
  metrics_.config_last_reload_success_unix.store(static_cast<int64_t>(time(nullptr)), std::memory_order_relaxed);
  if (next->listen.text != config_->listen.text || next->workers != config_->workers) {
    LOG_WARN("reload: listen and workers changes need a restart; keeping %s with %d worker(s)",
             config_->listen.text.c_str(), config_->workers);
  }
  config_ = next;
  SetLogLevel(config_->log.level);
  SetLogFormat(config_->log.format);
  for (auto& w : workers_) w->Reload(config_, tls_);
  SetUpAdminStore();
  LOG_INFO("configuration reloaded from %s%s%s", config_->source_path.c_str(),
           tls_.listener ? "; TLS certificate from " : "", tls_.listener ? config_->tls->certificate.c_str() : "");
}

}  // namespace sessiond
