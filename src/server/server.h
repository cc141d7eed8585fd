// Server: the main thread. It starts the workers, owns the process-wide
// state they share (metrics, the shared half of the session store), handles
// signals (SIGTERM/SIGINT drain, SIGHUP reload) and runs the admin listener.
#pragma once

#include <event2/event.h>

#include <memory>
#include <string>
#include <vector>

#include "admin/admin_server.h"
#include "observe/metrics.h"
#include "config/config.h"
#include "net/task_queue.h"
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
  int trim_ticks_ = 0;
  std::unique_ptr<AdminServer> admin_;
  StoreMaker make_store_;
  std::shared_ptr<SessionEvents> events_;
  // The main loop's task queue, for the admin store's completions (the file
  // store's I/O threads post to it). Outlives every store.
  std::shared_ptr<TaskQueue> admin_tasks_;
  bool shutting_down_ = false;
  int64_t shutdown_deadline_ms_ = 0;
  bool forced_ = false;
};

}  // namespace sessiond
