// AdminServer: the admin listener (docs/OPERATIONS.md, Admin endpoints), on the main thread.
//
//   GET /         the list of endpoints (text/plain)
//   GET /healthz  200 "ok" while the process runs
//   GET /readyz   200 "ready" when every worker is ready (its last store call or
//                 ping, whichever came last, succeeded), else 503
//   GET /metrics  Prometheus text format (text/plain; version=0.0.4)
//
// Any other path is 404; methods other than GET/HEAD are 405 with
// "Allow: GET, HEAD" (text/plain), whatever the path. It uses
// libevent's evhttp: these are tiny local requests, nothing streams, and
// evhttp's limits (headers, body) are set small.
#pragma once

#include <event2/event.h>

#include <functional>
#include <string>

#include "observe/metrics.h"
#include "config/config.h"
#include "base/status.h"

struct evhttp;
struct evhttp_request;

namespace sessiond {

class AdminServer {
 public:
  // `ready` is called on the main thread for /readyz.
  AdminServer(event_base* base, const Metrics* metrics, std::function<bool()> ready);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  Status Listen(const SocketAddress& address);

 private:
  static void HandleCb(evhttp_request* req, void* arg);
  void Handle(evhttp_request* req);

  event_base* base_;
  const Metrics* metrics_;
  std::function<bool()> ready_;
  evhttp* http_ = nullptr;
};

// The /metrics body.
std::string RenderMetrics(const Metrics& metrics);

}  // namespace sessiond
