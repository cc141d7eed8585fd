// Building the configured session store.
//
// Stores are per worker (one per event loop), but some state must exist once
// per process: the memory store's table (every worker must see every
// session) and the file store's I/O threads. CreateSharedStoreState builds
// that once at startup; CreateStore is then called on each worker with it.
//
// A config reload that changes session.manager or a store section needs new
// shared state and new stores; the old ones stay valid until dropped.
#pragma once

#include <memory>

#include "store/store.h"

namespace sessiond {

class MemoryTable;
class FileWorkerPool;
struct Metrics;

struct SharedStoreState {
  std::shared_ptr<MemoryTable> memory_table;  // manager: memory
  std::shared_ptr<FileWorkerPool> file_pool;  // manager: file
};

// What the configured manager needs once per process (empty for cookie and
// redis). Fails when the I/O threads cannot be started.
Result<std::shared_ptr<SharedStoreState>> CreateSharedStoreState(const Config& config);

// The store for one worker whose loop is `base`; `post` runs a task on that
// loop (thread-safe). Returns a null pointer for the cookie manager, which
// needs no store. Fails when the file store's directory cannot be created or
// opened, or when `shared` lacks what the manager needs.
// `metrics` (may be null) receives the redis store's node and topology
// counts.
Result<std::unique_ptr<SessionStore>> CreateStore(const Config& config, event_base* base, PostFn post,
                                                  std::shared_ptr<SharedStoreState> shared,
                                                  Metrics* metrics = nullptr);

}  // namespace sessiond
