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

#include <functional>
#include <memory>
#include <string>

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
  std::string_view client_ip;
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
};

}  // namespace sessiond
