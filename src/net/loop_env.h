// LoopEnv: one event loop as seen by the components that run on it (session
// stores, the session step): its libevent base and a way for other threads
// to get work onto it.
#pragma once

#include <event2/event.h>

#include <functional>

namespace sessiond {

// Runs a task on the loop's thread. Thread-safe; used by components that do
// blocking work on other threads (the file store) to complete on the loop.
using PostFn = std::function<void(std::function<void()>)>;

struct LoopEnv {
  event_base* base = nullptr;
  PostFn post;
  int index = 0;  // which worker: once-per-process work is left to index 0
  // Reports the outcome of a session store call made on this loop: false
  // marks the loop's worker not ready (/readyz 503) at once, true ready again
  // (docs/OPERATIONS.md, Readiness). Called on the loop's thread; may be empty.
  std::function<void(bool ok)> store_health;
};

}  // namespace sessiond
