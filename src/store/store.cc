#include "store/store.h"

#include <utility>

namespace sessiond {

namespace {

Status NotSupported() { return Status::Invalid("this session store does not index subjects"); }

}  // namespace

void SessionStore::LoadSession(const StoreKey& key, LoadSessionCallback cb) {
  Load(key, [cb = std::move(cb)](Status status, std::optional<SessionData> data) {
    if (!data) {
      cb(std::move(status), std::nullopt);
      return;
    }
    cb(std::move(status), StoredSession{std::move(*data), SessionMeta{}});
  });
}

void SessionStore::TouchSession(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta&,
                                DoneCallback cb) {
  Touch(key, ttl, std::move(cb));
}

void SessionStore::ListSubject(const std::string&, ListCallback cb) { cb(NotSupported(), {}); }
void SessionStore::RevokeSubject(const std::string&, RevokeCallback cb) { cb(NotSupported(), {}); }
void SessionStore::RevokePublicId(const std::string&, RevokeCallback cb) { cb(NotSupported(), {}); }

}  // namespace sessiond
