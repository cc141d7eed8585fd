#include "store/memory_store.h"

#include <algorithm>
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
  const SessionMeta& meta = it->second.meta;
  if (!meta.subject.empty()) {
    auto s = subjects_.find(meta.subject);
    if (s != subjects_.end()) {
      s->second.erase(it->first);
      if (s->second.empty()) subjects_.erase(s);
    }
    auto p = public_ids_.find(meta.public_id);
    if (p != public_ids_.end() && p->second == it->first) public_ids_.erase(p);
  }
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void MemoryTable::Index(const StoreKey& key, const SessionMeta& meta) {
  if (meta.subject.empty()) return;
  subjects_[meta.subject].insert(key);
  if (!meta.public_id.empty()) public_ids_[meta.public_id] = key;
}

void MemoryTable::RevokeLocked(const std::string& subject, const StoreKey* keep, TimePoint now,
                               std::vector<RevokedSession>* out) {
  auto s = subjects_.find(subject);
  if (s == subjects_.end()) return;
  const std::vector<StoreKey> members(s->second.begin(), s->second.end());
  for (const StoreKey& key : members) {
    if (keep && key == *keep) continue;
    auto it = entries_.find(key);
    if (it == entries_.end()) continue;
    if (now < it->second.expires_at) out->push_back(RevokedSession{key, it->second.meta.public_id});
    Erase(it);
  }
}

void MemoryTable::EnforceLimit(const std::string& subject, const StoreKey& keep, uint64_t max, TimePoint now,
                               std::vector<RevokedSession>* out) {
  auto s = subjects_.find(subject);
  if (s == subjects_.end() || s->second.size() <= max) return;
  std::vector<std::pair<int64_t, StoreKey>> others;
  size_t live = 0;
  const std::vector<StoreKey> members(s->second.begin(), s->second.end());
  for (const StoreKey& key : members) {
    auto it = entries_.find(key);
    if (it == entries_.end()) continue;
    if (now >= it->second.expires_at) {
      Erase(it);  // expired: no longer counts
      continue;
    }
    ++live;
    if (key != keep) others.emplace_back(it->second.meta.created_at, key);
  }
  std::sort(others.begin(), others.end());  // oldest first; ties by key, so the choice is stable
  for (size_t i = 0; live > max && i < others.size(); ++i, --live) {
    auto it = entries_.find(others[i].second);
    out->push_back(RevokedSession{it->first, it->second.meta.public_id});
    Erase(it);
  }
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

std::optional<StoredSession> MemoryTable::LoadSession(const StoreKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = FindLive(key, clock_());
  if (it == entries_.end()) return std::nullopt;
  return StoredSession{it->second.data, it->second.meta};
}

Result<ApplyResult> MemoryTable::Apply(const ApplyRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint now = clock_();
  auto it = FindLive(request.key, now);
  std::optional<SessionData> current;
  SessionMeta old_meta;
  if (it != entries_.end()) {
    current = it->second.data;
    old_meta = it->second.meta;
  }
  Result<ApplyResult> result = ApplyToSession(std::move(current), request);
  if (!result.ok()) return result;

  if (it != entries_.end()) Erase(it);
  const StoreKey& target = request.new_key ? *request.new_key : request.key;
  if (result->exists) {
    auto old = entries_.find(target);  // a re-key replaces whatever was there
    if (old != entries_.end()) Erase(old);
    SessionMeta meta = request.meta ? *request.meta : old_meta;
    meta.subject = SubjectOf(result->data, request.subject_key);
    if (meta.subject.empty()) meta.public_id.clear();  // kept for indexed sessions only
    lru_.push_front(target);
    entries_.emplace(target, Entry{result->data, meta, now + request.ttl, lru_.begin()});
    Index(target, meta);
    result->meta = std::move(meta);
  }
  // docs/HEADER-PROTOCOL.md, Subjects: the subject the batch leaves, or the
  // one a deleted session had.
  const std::string& subject = result->exists ? result->meta.subject : old_meta.subject;
  if (request.revoke != RevokeScope::kNone && !subject.empty()) {
    const bool keep_self = request.revoke == RevokeScope::kOthers && result->exists;
    RevokeLocked(subject, keep_self ? &target : nullptr, now, &result->revoked);
    if (!keep_self && result->exists) {
      // kAll ended this session too: it is reported through exists, not revoked.
      result->revoked.erase(std::remove_if(result->revoked.begin(), result->revoked.end(),
                                           [&](const RevokedSession& r) { return r.key == target; }),
                            result->revoked.end());
      result->exists = false;
      result->data.clear();
    }
  }
  if (result->exists && request.max_per_subject > 0 && !result->meta.subject.empty() &&
      result->meta.subject != old_meta.subject) {
    EnforceLimit(result->meta.subject, target, request.max_per_subject, now, &result->revoked);
  }
  if (result->exists) Evict(now, target);
  return result;
}

void MemoryTable::Touch(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta* meta) {
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint now = clock_();
  auto it = FindLive(key, now);
  if (it == entries_.end()) return;
  it->second.expires_at = now + ttl;
  if (meta) {
    SessionMeta& m = it->second.meta;
    m.refreshed_at = meta->refreshed_at;
    m.expires_at = meta->expires_at;
    m.client = meta->client;
    m.user_agent = meta->user_agent;
    if (m.created_at == 0) m.created_at = meta->created_at;
  }
}

std::vector<SessionListing> MemoryTable::ListSubject(const std::string& subject) {
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint now = clock_();
  std::vector<SessionListing> out;
  auto s = subjects_.find(subject);
  if (s == subjects_.end()) return out;
  const std::vector<StoreKey> members(s->second.begin(), s->second.end());
  for (const StoreKey& key : members) {
    auto it = entries_.find(key);
    if (it == entries_.end()) continue;
    if (now >= it->second.expires_at) {
      Erase(it);
      continue;
    }
    out.push_back(SessionListing{key, it->second.meta});
  }
  std::sort(out.begin(), out.end(), [](const SessionListing& a, const SessionListing& b) {
    return a.meta.created_at != b.meta.created_at ? a.meta.created_at < b.meta.created_at : a.key < b.key;
  });
  return out;
}

std::vector<RevokedSession> MemoryTable::RevokeSubject(const std::string& subject) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RevokedSession> out;
  RevokeLocked(subject, nullptr, clock_(), &out);
  return out;
}

std::vector<RevokedSession> MemoryTable::RevokePublicId(const std::string& public_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RevokedSession> out;
  auto p = public_ids_.find(public_id);
  if (p == public_ids_.end()) return out;
  auto it = entries_.find(p->second);
  if (it == entries_.end()) {
    public_ids_.erase(p);
    return out;
  }
  if (clock_() < it->second.expires_at) out.push_back(RevokedSession{it->first, public_id});
  Erase(it);
  return out;
}

size_t MemoryTable::SubjectSize(const std::string& subject) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto s = subjects_.find(subject);
  return s == subjects_.end() ? 0 : s->second.size();
}

uint64_t MemoryTable::SweepExpired() {
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint now = clock_();
  uint64_t removed = 0;
  std::vector<StoreKey> expired;
  for (const auto& [key, entry] : entries_) {
    if (now >= entry.expires_at) expired.push_back(key);
  }
  for (const StoreKey& key : expired) {
    Erase(entries_.find(key));
    ++removed;
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

void MemoryStore::LoadSession(const StoreKey& key, LoadSessionCallback cb) {
  cb(Status::OK(), table_->LoadSession(key));
}

void MemoryStore::TouchSession(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta& meta,
                               DoneCallback cb) {
  table_->Touch(key, ttl, &meta);
  cb(Status::OK());
}

void MemoryStore::ListSubject(const std::string& subject, ListCallback cb) {
  cb(Status::OK(), table_->ListSubject(subject));
}

void MemoryStore::RevokeSubject(const std::string& subject, RevokeCallback cb) {
  cb(Status::OK(), table_->RevokeSubject(subject));
}

void MemoryStore::RevokePublicId(const std::string& public_id, RevokeCallback cb) {
  cb(Status::OK(), table_->RevokePublicId(public_id));
}

void MemoryStore::Ping(DoneCallback cb) { cb(Status::OK()); }

void MemoryStore::SweepExpired() { table_->SweepExpired(); }

}  // namespace sessiond
