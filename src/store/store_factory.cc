#include "store/store_factory.h"

#include <algorithm>

#include "observe/metrics.h"
#include "store/file_store.h"
#include "store/http_store.h"
#include "store/memory_store.h"
#include "store/redis_store.h"

namespace sessiond {

Result<std::shared_ptr<SharedStoreState>> CreateSharedStoreState(const Config& config) {
  auto shared = std::make_shared<SharedStoreState>();
  switch (config.session.manager) {
    case StoreKind::kMemory:
      shared->memory_table = std::make_shared<MemoryTable>(config.memory.max_sessions);
      break;
    case StoreKind::kFile: {
      // File work is short (one small file, one fsync), so a few threads
      // cover many workers; more would only contend on the disk.
      Result<std::shared_ptr<FileWorkerPool>> pool = FileWorkerPool::Create(std::clamp(config.workers, 2, 4));
      if (!pool.ok()) return pool.status();
      shared->file_pool = std::move(*pool);
      break;
    }
    case StoreKind::kRedis:
      // Each worker's store makes its own TLS contexts (a reload with new
      // files makes new stores); this one checks, at startup, that they
      // can be made.
      if (config.redis.tls) {
        Result<std::shared_ptr<RedisTls>> tls = NewRedisTls(config.redis);
        if (!tls.ok()) return tls.status();
      }
      break;
    case StoreKind::kHttp:
    case StoreKind::kCookie:
      break;
  }
  return shared;
}

Result<std::unique_ptr<SessionStore>> CreateStore(const Config& config, event_base* base, PostFn post,
                                                  std::shared_ptr<SharedStoreState> shared, Metrics* metrics) {
  switch (config.session.manager) {
    case StoreKind::kCookie:
      return std::unique_ptr<SessionStore>();
    case StoreKind::kRedis: {
      std::shared_ptr<RedisTls> tls;
      if (config.redis.tls) {
        Result<std::shared_ptr<RedisTls>> made = NewRedisTls(config.redis);
        if (!made.ok()) return made.status();
        tls = std::move(*made);
      }
      return std::unique_ptr<SessionStore>(
          new RedisStore(config.redis, base, metrics ? &metrics->redis : nullptr, std::move(tls)));
    }
    case StoreKind::kHttp:
      if (config.http_store.url.empty()) return Status::Invalid("http store: http_store.url is not set");
      return std::unique_ptr<SessionStore>(new HttpStore(config.http_store, base));
    case StoreKind::kMemory:
      if (!shared || !shared->memory_table) return Status::Invalid("memory store: no shared table");
      return std::unique_ptr<SessionStore>(new MemoryStore(shared->memory_table));
    case StoreKind::kFile: {
      if (!shared || !shared->file_pool) return Status::Invalid("file store: no I/O threads");
      Result<std::unique_ptr<FileStore>> store = FileStore::Open(config.file.directory, shared->file_pool,
                                                                 std::move(post));
      if (!store.ok()) return store.status();
      return std::unique_ptr<SessionStore>(std::move(*store));
    }
  }
  return Status::Invalid("unknown session manager");
}

}  // namespace sessiond
