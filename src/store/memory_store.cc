#include "store/memory_store.h"

#include <utility>

namespace sessiond {

Result<ApplyResult> ApplyToSession(std::optional<SessionData> current, const ApplyRequest& request) {
  const bool destroy = request.clear && request.sets.empty() && !request.new_key;
  if (destroy || (request.must_exist && !current)) return ApplyResult{};
  ApplyResult result;
  result.exists = true;
  if (current) result.data = std::move(*current);
  ApplyChanges(&result.data, request.clear, request.deletes, request.sets);
  if (Status size = CheckSessionSize(SerializedSize(result.data), request.max_bytes); !size.ok()) return size;
  return result;
}

// ---------------------------------------------------------------- MemoryTable

namespace {

// How many entries at the cold end of the LRU list each write inspects for
// expiry: enough to keep up with a steady stream of abandoned sessions
// without making a write walk the table.
constexpr int kSweepPerWrite = 2;

}  // namespace

MemoryTable::MemoryTable(uint64_t max_sessions, Clock clock)
    : max_sessions_(max_sessions < 1 ? 1 : static_cast<size_t>(max_sessions)),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {}

MemoryTable::Map::iterator MemoryTable::FindLive(const StoreKey& key, TimePoint now) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return it;
  if (now >= it->second.expires_at) {
    Erase(it);
    return entries_.end();
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it;
}

void MemoryTable::Erase(Map::iterator it) {
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void MemoryTable::Evict(TimePoint now, const StoreKey& keep) {
  for (int i = 0; i < kSweepPerWrite && !lru_.empty(); ++i) {
    auto it = entries_.find(lru_.back());
    if (it->first == keep || now < it->second.expires_at) break;
    Erase(it);
  }
  while (entries_.size() > max_sessions_ && lru_.back() != keep) {
    Erase(entries_.find(lru_.back()));
  }
}

std::optional<SessionData> MemoryTable::Load(const StoreKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = FindLive(key, clock_());
  if (it == entries_.end()) return std::nullopt;
  return it->second.data;
}

Result<ApplyResult> MemoryTable::Apply(const ApplyRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint now = clock_();
  auto it = FindLive(request.key, now);
  std::optional<SessionData> current;
  if (it != entries_.end()) current = it->second.data;
  Result<ApplyResult> result = ApplyToSession(std::move(current), request);
  if (!result.ok()) return result;

  if (it != entries_.end()) Erase(it);
  if (!result->exists) return result;

  const StoreKey& target = request.new_key ? *request.new_key : request.key;
  auto old = entries_.find(target);  // a re-key replaces whatever was there
  if (old != entries_.end()) Erase(old);
  lru_.push_front(target);
  entries_.emplace(target, Entry{result->data, now + request.ttl, lru_.begin()});
  Evict(now, target);
  return result;
}

void MemoryTable::Touch(const StoreKey& key, std::chrono::milliseconds ttl) {
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint now = clock_();
  auto it = FindLive(key, now);
  if (it != entries_.end()) it->second.expires_at = now + ttl;
}

uint64_t MemoryTable::SweepExpired() {
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint now = clock_();
  uint64_t removed = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now >= it->second.expires_at) {
      lru_.erase(it->second.lru);
      it = entries_.erase(it);
      ++removed;
    } else {
      ++it;
    }
  }
  return removed;
}

size_t MemoryTable::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

// ---------------------------------------------------------------- MemoryStore

MemoryStore::MemoryStore(std::shared_ptr<MemoryTable> table) : table_(std::move(table)) {}

void MemoryStore::Load(const StoreKey& key, LoadCallback cb) {
  cb(Status::OK(), table_->Load(key));
}

void MemoryStore::Apply(const ApplyRequest& request, ApplyCallback cb) {
  Result<ApplyResult> result = table_->Apply(request);
  if (!result.ok()) {
    cb(result.status(), ApplyResult{});
    return;
  }
  cb(Status::OK(), std::move(*result));
}

void MemoryStore::Touch(const StoreKey& key, std::chrono::milliseconds ttl, DoneCallback cb) {
  table_->Touch(key, ttl);
  cb(Status::OK());
}

void MemoryStore::Ping(DoneCallback cb) { cb(Status::OK()); }

void MemoryStore::SweepExpired() { table_->SweepExpired(); }

}  // namespace sessiond
