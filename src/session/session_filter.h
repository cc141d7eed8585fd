// The session step of every exchange (docs/HEADER-PROTOCOL.md and docs/COOKIES.md).
//
// Request side (OnRequestHead):
//   1. remove every client-sent X-Session-* header (any case, '_' or '-');
//   2. take the session cookie out of Cookie, keep the other cookies;
//   3. verify it (signature, expiry, fallback keys) and, for the store
//      managers, load the session from the store (asynchronously);
//   4. add X-Session-Status, -Id, -Data, -Expires for the backend.
// The request policy (edge_policy.h), when configured, runs around these
// steps: path normalisation, the access rule's lookup and client_address
// rate limits before step 2; the access rule, CSRF and session rate limits
// once the session is known, before step 4; X-Session-Csrf and
// X-Session-Signature after it. The tokens of shared rate limits come from
// the store (asynchronously, like a load) at the step that names them.
// Response side (OnResponseHead):
//   5. read and remove the X-Session-* instruction headers; a malformed batch
//      answers 502 "Bad Gateway" and changes nothing (the error log says why,
//      with the path and the request id: docs/HEADER-PROTOCOL.md, Malformed
//      instructions);
//   6. PlanResponse (session_plan.h) decides what the batch means for this
//      session; the filter carries the plan out: one store call (Apply or
//      Touch) or one seal, and the response waits for the store's
//      acknowledgement;
//   7. set, re-issue or clear the cookie.
//
// The cookie manager's read path (a valid sealed cookie, no instructions in
// the response) allocates nothing once a pooled filter has served a request
// of that size: the cookie is split into views, verified into the filter's
// reused buffers, and the injected values are copied into the request's
// header arena.
//
// Lifetime semantics (docs/HEADER-PROTOCOL.md, Session lifetime):
// - session_expiration_time is the lifetime of a session from its creation
//   (or from its last Regenerate). Writes do not extend it; with
//   session_refresh_each_request every request does (sliding expiry).
// - A new session id is minted for a new session, for Regenerate, and for a
//   Set after Destroy; ids sent by clients are never adopted.
// - A valid cookie whose session is gone from the store is reported as
//   "none" and cleared.
//
// Tunnels (docs/HTTP.md, Upgrades and WebSockets): Binding() names the
// session a 101 leaves, and the factory's CheckBindings says, twice a second
// per worker, whether the sessions of open tunnels have ended: by the clock
// (a fixed expiry), by a Destroy, Regenerate or revocation carried out in
// this process (EndedSessions), or, for the store managers, because the store no longer
// holds them (another instance, a revocation, expiry with sliding lifetimes).
#pragma once

#include <memory>

#include "config/config.h"
#include "http/exchange_filter.h"
#include "net/loop_env.h"
#include "session/cookie_codec.h"
#include "session/ended_sessions.h"
#include "session/edge_policy.h"
#include "store/store.h"
#include "store/token_bucket.h"

namespace sessiond {

struct Metrics;

// What the filters of one worker share. Replaced on reload; exchanges in
// flight keep the previous one alive through their factory.
//
// The store must outlive every filter of the factory and must drop the
// callbacks of calls still in flight when it is destroyed (store.h says all
// stores do): a filter the factory frees never hears from the store again.
struct SessionContext {
  std::shared_ptr<const Config> config;
  std::shared_ptr<const CookieCodec> codec;
  std::shared_ptr<SessionStore> store;  // null for the cookie manager
  // Routes, CSRF, rate limits, upstream signature; null when none is
  // configured. Shared by the workers of one configuration.
  std::shared_ptr<const EdgePolicy> edge;
  // Where shared rate limits take their tokens: the store, when it keeps
  // buckets (the redis store); null otherwise.
  SharedTokenBuckets* buckets = nullptr;
  Metrics* metrics = nullptr;           // may be null (tests)
  // Told the outcome of every store call of a request (LoopEnv::store_health);
  // may be empty (tests).
  std::function<void(bool ok)> store_health;
  // The process's list of sessions ended here (Destroy, Regenerate,
  // revocations), for tunnels (may be null: tests).
  std::shared_ptr<EndedSessions> ended;
};

// Builds the per-worker session step. Called on the worker's thread at start
// and after every reload; returns nullptr for no session step.
using FilterFactoryMaker = std::function<std::unique_ptr<ExchangeFilterFactory>(
    const std::shared_ptr<const Config>&, const LoopEnv& loop, Metrics* metrics)>;

// The per-worker factory of session filters over `context`. Filters are
// pooled: Recycle resets one (a late store callback of its old exchange is
// then ignored, never applied to the next exchange) and keeps up to
// kMaxPooledSessionFilters for reuse, plus any whose store call is still in
// flight (freeing those would leave the store a dangling callback).
inline constexpr size_t kMaxPooledSessionFilters = 256;
std::unique_ptr<ExchangeFilterFactory> NewSessionFilterFactory(std::shared_ptr<SessionContext> context);

// Builds a session store on another loop than a worker's (the admin
// listener's, on the main thread) over the same shared state as the
// workers' stores; null for the cookie manager.
using StoreMaker = std::function<Result<std::shared_ptr<SessionStore>>(const std::shared_ptr<const Config>&,
                                                                        const LoopEnv& loop)>;

// Everything the server wires from the session layer.
struct SessionRuntime {
  FilterFactoryMaker make_filters;
  StoreMaker make_store;
  std::shared_ptr<EndedSessions> ended;  // the process's; never null
};

// Prepares what is built once per process (cookie keys, the shared half of
// the store, the EndedSessions of the process) and returns the per-worker
// factory maker with the rest. Fails (the process should exit 1) when the
// store cannot be set up, e.g. the session directory cannot be created.
Result<SessionRuntime> MakeSessionRuntime(const std::shared_ptr<const Config>& config);
// MakeSessionRuntime's filter maker alone.
Result<FilterFactoryMaker> SessionFilterFactoryMaker(const std::shared_ptr<const Config>& config);

}  // namespace sessiond
