// AdminServer: the admin listener (docs/OPERATIONS.md, Admin endpoints), on the main thread.
//
//   GET /         the list of endpoints (text/plain)
//   GET /healthz  200 "ok" while the process runs
//   GET /readyz   200 "ready" when every worker is ready (its last store call or
//                 ping, whichever came last, succeeded), else 503
//   GET /metrics  Prometheus text format (text/plain; version=0.0.4)
//   GET    /sessions?subject=S   a subject's sessions (JSON)
//   DELETE /sessions?subject=S   revokes them all
//   DELETE /sessions/PUBLIC_ID   revokes one indexed session
//
// Any other path is 404; methods other than GET/HEAD are 405 with
// "Allow: GET, HEAD" (text/plain), except on /sessions (GET, HEAD, DELETE)
// and /sessions/ID (DELETE). It uses libevent's evhttp: these are tiny local
// requests, nothing streams, and evhttp's limits (headers, body) are set small.
//
// admin.token (docs/OPERATIONS.md, Sessions API): when set, every request
// but /healthz and /readyz needs "Authorization: Bearer TOKEN" (401
// otherwise), compared in constant time over SHA-256 digests so neither the
// bytes nor the length of the token leak. Without a token /sessions answers
// 403: listing and revoking sessions is never open to whoever reaches the
// port.
//
// The /sessions calls go to a store on this (the main) thread's loop over
// the workers' shared state (SetSessionStore); they answer asynchronously,
// and a client that goes away first is simply not answered.
#pragma once

#include <event2/event.h>

#include <functional>
#include <string>

#include <memory>
#include <unordered_map>
#include <vector>

#include "observe/metrics.h"
#include "config/config.h"
#include "base/status.h"
#include "store/store.h"

struct evhttp;
struct evhttp_request;
struct evhttp_connection;

namespace sessiond {

class AdminServer {
 public:
  // `ready` is called on the main thread for /readyz.
  AdminServer(event_base* base, const Metrics* metrics, std::function<bool()> ready);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  Status Listen(const SocketAddress& address);

  // The token and subject key of the running configuration (on reload too).
  void Configure(const Config& config);
  // The store /sessions works on (null: the cookie manager) and who hears of
  // revoked sessions (the server lists them in EndedSessions, so their
  // tunnels close). Replaces any earlier store;
  // calls still in flight on it are dropped unanswered.
  void SetSessionStore(std::shared_ptr<SessionStore> store,
                       std::function<void(const std::vector<RevokedSession>&)> on_revoked);

 private:
  static void HandleCb(evhttp_request* req, void* arg);
  static void ConnectionClosedCb(evhttp_connection* conn, void* arg);
  void Handle(evhttp_request* req);
  bool Authorized(evhttp_request* req) const;
  void HandleSessions(evhttp_request* req, const std::string& path, const std::string& query);
  // Keeps `req` answerable until its connection closes; the returned flag
  // turns false when it does.
  std::shared_ptr<bool> Track(evhttp_request* req);

  event_base* base_;
  const Metrics* metrics_;
  std::function<bool()> ready_;
  evhttp* http_ = nullptr;
  std::string token_digest_;  // SHA-256 of admin.token; empty: no token
  std::string subject_key_;
  bool cookie_manager_ = true;
  std::shared_ptr<SessionStore> store_;
  std::function<void(const std::vector<RevokedSession>&)> on_revoked_;
  std::unordered_map<evhttp_connection*, std::vector<std::shared_ptr<bool>>> open_requests_;
};

// The /metrics body.
std::string RenderMetrics(const Metrics& metrics);

// The GET /sessions body (docs/OPERATIONS.md, Sessions API).
std::string RenderSessionListing(const std::string& subject, const std::vector<SessionListing>& sessions);

}  // namespace sessiond
