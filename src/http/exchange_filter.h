// ExchangeFilter: a step in the path of one request/response exchange, the
// seam where the session logic sits (like an envoy HTTP filter).
//
//   client -> [parse, strip hop-by-hop] -> OnRequestHead -> upstream
//   upstream -> [parse, strip hop-by-hop] -> OnResponseHead -> client
//
// Each call receives a `done` callback and may finish synchronously (call done
// before returning) or later, on the same worker thread, e.g. after a store
// round trip; the exchange waits, holding the request body (or the upstream's
// response body) in bounded buffers meanwhile.
//
// Ownership and cancellation: the exchange takes its filter from the factory
// (Acquire) and hands it back exactly once when it ends (Recycle), after
// OnComplete. If the exchange ends early (client gone, timeout) it is recycled
// while an asynchronous step may be pending; the filter must then make sure
// `done` is never called and nothing touches the exchange again. The exchange
// holds a reference to the factory until then, so a reload that installs a
// new factory never frees one with filters still out.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/message.h"

namespace sessiond {

struct FilterResult {
  // 0: continue the exchange. Otherwise the exchange is answered locally with
  // this status and `body` (short plain text, safe to show a client) instead.
  int status = 0;
  std::string body;
  // A reply's Content-Type; empty: text/plain; charset=utf-8.
  std::string content_type;
  // More header lines of a reply, each "Name: value\r\n" (Location,
  // Retry-After ...); the filter vouches that they are well-formed.
  std::string headers;

  static FilterResult Continue() { return FilterResult(); }
  static FilterResult Reply(int status, std::string body) {
    FilterResult r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
};

using FilterDone = std::function<void(FilterResult)>;

struct ExchangeInfo {
  std::string_view client_ip;  // the client address (docs/HTTP.md, Forwarding and trusted proxies)
};

// The session an exchange leaves behind, as a tunnel opened by that exchange
// (an upgraded connection: docs/HTTP.md, Upgrades and WebSockets) is bound to
// it: the tunnel is closed when that session ends. Opaque to the proxy, which
// only keeps it and hands it back to CheckBindings.
struct SessionBinding {
  std::string id;          // identifies the session within the process; empty: no session
  std::string store_key;   // where a store manager keeps it; empty: no store to ask
  int64_t expires_at = 0;  // Unix seconds; 0: no fixed expiry (the store decides)

  bool bound() const { return !id.empty(); }
};

class ExchangeFilter {
 public:
  virtual ~ExchangeFilter() = default;

  // The request head is parsed and validated, its hop-by-hop headers removed
  // and the X-Forwarded-* headers set. The filter may edit `request.headers`
  // (values it adds must be owned by the list: AppendCopy). `request` stays
  // alive until the exchange ends.
  virtual void OnRequestHead(RequestHead& request, FilterDone done) = 0;

  // The upstream's response head, hop-by-hop headers removed. The filter may
  // edit `response.headers`. A Reply result discards the upstream response
  // (the upstream connection is closed, not reused).
  virtual void OnResponseHead(const RequestHead& request, ResponseHead& response, FilterDone done) = 0;

  // Called when the exchange ends, whatever the outcome: `status` is the
  // status sent to the client (0 if the client vanished first).
  virtual void OnComplete(int status) {}

  // For the access log: a short word describing what the filter did (the
  // session status), or empty.
  virtual std::string_view LogTag() const { return {}; }

  // After OnResponseHead continued: the session the response leaves (the
  // request's, or the one its instructions made), for a tunnel that the
  // exchange opens. Asked only then, so the ordinary path pays nothing.
  virtual SessionBinding Binding() const { return {}; }
};

// Hands out one filter per exchange. One factory per worker; called on that
// worker's thread.
class ExchangeFilterFactory {
 public:
  virtual ~ExchangeFilterFactory() = default;
  // A filter for one exchange. The factory may hand out a recycled object, so
  // a steady stream of requests allocates no filters. Never null.
  virtual ExchangeFilter* Acquire(const ExchangeInfo& info) = 0;
  // Takes back a filter from Acquire once its exchange has ended.
  virtual void Recycle(ExchangeFilter* filter) = 0;

  // Readiness for /readyz: calls `done` (on this worker's thread, possibly
  // before returning) with OK when the filter's dependencies answer.
  virtual void CheckReady(std::function<void(bool ready)> done) { done(true); }

  // Periodic housekeeping (about once a second), e.g. sweeping expired
  // sessions. `index` is the worker's index, so once-per-process work can be
  // left to worker 0.
  virtual void Tick(int worker_index) {}

  // Whether the sessions of open tunnels have ended (expired, destroyed,
  // regenerated, revoked, here or by another process sharing the store):
  // calls `done` once, on this worker's thread and possibly before
  // returning, with one flag per binding, in order (true: ended). A session
  // the filter cannot check (its store does not answer) has not ended.
  // `done` may never be called if the factory is destroyed first.
  using BindingsChecked = std::function<void(std::vector<bool> ended)>;
  virtual void CheckBindings(const std::vector<SessionBinding>& bindings, BindingsChecked done) {
    done(std::vector<bool>(bindings.size(), false));
  }
};

}  // namespace sessiond
