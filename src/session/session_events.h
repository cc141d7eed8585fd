// SessionEvents: "this session has ended" notifications, for whatever holds
// state per session beyond the store (WebSocket tunnels, which must close
// when their session is revoked: docs/HEADER-PROTOCOL.md, Subjects).
//
// One object per process. Whoever ends sessions (the session filter after a
// store Apply that revoked or destroyed sessions, the admin listener's
// DELETE /sessions) publishes them; each worker that keeps per-session state
// subscribes once with its own loop's PostFn, and its listener then runs on
// that loop with every batch published by any thread. A revocation made by
// another sessiond instance sharing the store is not seen here: such state
// must also re-check its session on its own schedule (docs/HEADER-PROTOCOL.md,
// Subjects).
//
// Thread-safe. Listeners must not call back into SessionEvents.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "net/loop_env.h"
#include "store/store.h"

namespace sessiond {

class SessionEvents {
 public:
  using Listener = std::function<void(const std::vector<RevokedSession>& ended)>;

  // `listener` runs through `post` (on the subscriber's loop). Returns an id
  // for Unsubscribe.
  uint64_t Subscribe(PostFn post, Listener listener);
  // After it returns no new batch is posted to that listener (one already
  // posted may still run: the subscriber's loop must outlive its queue).
  void Unsubscribe(uint64_t id);
  // Hands `ended` to every subscriber. Nothing happens for an empty list.
  void Publish(const std::vector<RevokedSession>& ended);

  size_t subscribers() const;

 private:
  struct Subscriber {
    PostFn post;
    std::shared_ptr<Listener> listener;
  };
  mutable std::mutex mu_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Subscriber> subscribers_;
};

}  // namespace sessiond
