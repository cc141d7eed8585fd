// EndedSessions: the sessions that ended in this process (Destroy,
// Regenerate), by public id, so the tunnels bound to them in every worker
// are closed (docs/HTTP.md, Upgrades and WebSockets). The store managers'
// tunnels are also re-checked against the store, which covers other
// processes; for the cookie manager, whose sessions live only in cookies,
// this list is the only way a logout reaches a WebSocket of the same session.
//
// One per process, shared by the workers' session steps; thread-safe (one
// mutex, taken once per Destroy/Regenerate and once per tunnel check).
// Bounded: an entry is kept until the session would have expired anyway
// (the tunnels' clock check then takes over), and at most kMaxEntries.
// A revocation of a session (e.g. an admin API) can add to it too.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/exchange_filter.h"

namespace sessiond {

class EndedSessions {
 public:
  static constexpr size_t kMaxEntries = 100000;

  // Session `public_id` ended; its entry may go after `until` (Unix seconds).
  void Add(const std::string& public_id, int64_t until, int64_t now);
  // Sets ended[i] for every binding whose session is listed.
  void Mark(const std::vector<SessionBinding>& bindings, std::vector<bool>* ended) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, int64_t> until_;
};

}  // namespace sessiond
