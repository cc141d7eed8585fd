#include "session/session_events.h"

#include <memory>
#include <utility>

namespace sessiond {

uint64_t SessionEvents::Subscribe(PostFn post, Listener listener) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_id_++;
  subscribers_.emplace(id, Subscriber{std::move(post), std::make_shared<Listener>(std::move(listener))});
  return id;
}

void SessionEvents::Unsubscribe(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  subscribers_.erase(id);
}

void SessionEvents::Publish(const std::vector<RevokedSession>& ended) {
  if (ended.empty()) return;
  std::vector<Subscriber> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, subscriber] : subscribers_) targets.push_back(subscriber);
  }
  // Posted outside the lock: a PostFn may take its loop's own lock.
  auto batch = std::make_shared<const std::vector<RevokedSession>>(ended);
  for (Subscriber& s : targets) {
    s.post([listener = s.listener, batch] { (*listener)(*batch); });
  }
}

size_t SessionEvents::subscribers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return subscribers_.size();
}

}  // namespace sessiond
