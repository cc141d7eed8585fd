// Server: the main thread. It starts the workers, owns the process-wide
// state they share (metrics, the shared half of the session store, the TLS
// contexts and the session-ticket keys), handles signals (SIGTERM/SIGINT
// drain, SIGHUP reload, which also reloads the TLS certificate and key) and
// runs the admin listener.
#pragma once

#include <event2/event.h>

#include <memory>
#include <string>
#include <vector>

#include "admin/admin_server.h"
#include "observe/metrics.h"
#include "config/config.h"
#include "net/task_queue.h"
#include "net/tls_context.h"
#include "server/worker.h"

namespace sessiond {

class Server {
 public:
  Server(std::shared_ptr<const Config> config, FilterFactoryMaker make_filters);
  // With the whole session runtime: the admin listener then serves /sessions
  // from a store of its own on this thread's loop.
  Server(std::shared_ptr<const Config> config, SessionRuntime sessions);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every listener, starts the workers and runs until a clean shutdown.
  // Returns the process exit code: 0 after a drain, 1 when startup failed
  // (the reason is printed on stderr).
  int Run();

 private:
  static void SignalCb(evutil_socket_t sig, short, void* arg);
  static void TickCb(evutil_socket_t, short, void* arg);
  static void TrimCb(evutil_socket_t, short, void* arg);
  static void RotateCb(evutil_socket_t, short, void* arg);
  // The TLS contexts for `config`: new ones where its settings differ from
  // those in force (`current`), the same objects where they do not.
  Result<WorkerTls> BuildTls(const Config& config, const WorkerTls& current);
  void BeginShutdown();
  void Reload();
  void OnTick();
  // (Re)builds the admin listener's session store for config_.
  void SetUpAdminStore();

  std::shared_ptr<const Config> config_;
  FilterFactoryMaker make_filters_;
  Metrics metrics_;
  event_base* base_ = nullptr;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<event*> signals_;
  event* tick_ = nullptr;
  event* trim_ = nullptr;
  event* rotate_ = nullptr;  // session-ticket key rotation
  std::shared_ptr<net::TicketKeys> ticket_keys_ = std::make_shared<net::TicketKeys>();
  WorkerTls tls_;  // in force
  int trim_ticks_ = 0;
  int trims_after_drop_ = 0;  // trims still due after connections went away
  std::unique_ptr<AdminServer> admin_;
  StoreMaker make_store_;
  std::shared_ptr<EndedSessions> ended_;  // the process's, shared with the session filters
  // The main loop's task queue, for the admin store's completions (the file
  // store's I/O threads post to it). Outlives every store.
  std::shared_ptr<TaskQueue> admin_tasks_;
  bool shutting_down_ = false;
  int64_t shutdown_deadline_ms_ = 0;
  bool forced_ = false;
};

}  // namespace sessiond
