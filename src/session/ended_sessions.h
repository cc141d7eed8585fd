// EndedSessions: the sessions that ended in this process (Destroy,
// Regenerate), by public id, so the tunnels bound to them in every worker
// are closed (docs/HTTP.md, Upgrades and WebSockets), and the sessions a
// revocation ended here (X-Session-Revoke, session.max_sessions_per_subject,
// the admin listener's DELETE /sessions: docs/HEADER-PROTOCOL.md, Subjects). The store managers'
// tunnels are also re-checked against the store, which covers other
// processes; for the cookie manager, whose sessions live only in cookies,
// this list is the only way a logout reaches a WebSocket of the same session.
//
// One per process, shared by the workers' session steps; thread-safe (one
// mutex, taken once per Destroy/Regenerate and once per tunnel check).
// Bounded: an entry is kept until the session would have expired anyway
// (the tunnels' clock check then takes over), and at most kMaxEntries.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "http/exchange_filter.h"
#include "store/store.h"

namespace sessiond {

class EndedSessions {
 public:
  static constexpr size_t kMaxEntries = 100000;

  // Session `public_id` ended; its entry may go after `until` (Unix seconds).
  void Add(const std::string& public_id, int64_t until, int64_t now);
  // Sessions a revocation deleted from the store, whose expiry is not known
  // here: each kept for KeepSeconds(config) from `now`.
  void AddRevoked(const std::vector<RevokedSession>& revoked, int64_t keep_seconds, int64_t now);
  // How long a revoked session could still have lived:
  // session.session_expiration_time (the store's lifetime of a session).
  static int64_t KeepSeconds(const Config& config);
  // Sets ended[i] for every binding whose session is listed.
  void Mark(const std::vector<SessionBinding>& bindings, std::vector<bool>* ended) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, int64_t> until_;
};

}  // namespace sessiond
