#include "session/ended_sessions.h"

#include <chrono>

namespace sessiond {

void EndedSessions::Add(const std::string& public_id, int64_t until, int64_t now) {
  if (public_id.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (until_.size() >= kMaxEntries) {
    for (auto it = until_.begin(); it != until_.end();) {
      it = it->second < now ? until_.erase(it) : std::next(it);
    }
    // Still full of live entries: the oldest cannot be told apart cheaply;
    // dropping any one only lets its tunnels run to their own expiry.
    if (until_.size() >= kMaxEntries) until_.erase(until_.begin());
  }
  until_[public_id] = until;
}

void EndedSessions::AddRevoked(const std::vector<RevokedSession>& revoked, int64_t keep_seconds, int64_t now) {
  for (const RevokedSession& r : revoked) Add(r.public_id, now + keep_seconds, now);
}

int64_t EndedSessions::KeepSeconds(const Config& config) {
  return std::chrono::duration_cast<std::chrono::seconds>(config.session.expiration).count() + 1;
}

void EndedSessions::Mark(const std::vector<SessionBinding>& bindings, std::vector<bool>* ended) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (until_.empty()) return;
  for (size_t i = 0; i < bindings.size(); ++i) {
    if (until_.count(bindings[i].id)) (*ended)[i] = true;
  }
}

size_t EndedSessions::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return until_.size();
}

}  // namespace sessiond
