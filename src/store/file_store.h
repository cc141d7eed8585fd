// FileStore: one file per session in file.directory; sessions survive a
// restart, and several sessiond processes may share one directory.
//
// Layout: the session with StoreKey K lives in the file K (0600, in a 0700
// directory) holding {"expires_at":<unix ms>,"data":<SerializeSession>}\n,
// values embedded as their raw JSON text. Expiry uses the wall clock because
// the files outlive the process.
//
// Atomicity: a write goes to "K.tmp.<unique>" in the same directory, is
// fsync'ed, renamed over K, and the directory is fsync'ed, so a reader sees
// the old or the new file, never a torn one, and readers take no lock.
// Every read-modify-write (Apply, Touch, the sweep's delete) holds an
// exclusive flock on "K.lock", so concurrent writers to one session, threads
// or other processes, never lose each other's keys. A re-key locks both keys
// in lexical order, so two re-keys cannot deadlock.
//
// Lock files: a lock file exists only while its session file exists or while
// an operation holds it; whoever finds the session gone at the end of its
// locked step unlinks the lock file while still holding it. A waiter that then
// acquires the unlinked file notices (its inode no longer matches the path)
// and retries on a fresh one, so removing lock files never lets two writers in.
// The sweep also removes lock files a crashed process left behind.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace sessiond {

// True when `key` is exactly 64 lowercase hex digits, the only names the file
// store will touch (no path separators, dots or other tricks).
bool IsValidStoreKey(const StoreKey& key);

// A few threads that run blocking file I/O off the event loops. Created once
// per process and shared by every worker's FileStore.
class FileWorkerPool {
 public:
  // Starts `threads` threads (at least 1).
  static Result<std::shared_ptr<FileWorkerPool>> Create(int threads);
  // Runs every task already submitted, then joins the threads. PostFns that
  // queued tasks capture must stay callable until it returns.
  ~FileWorkerPool();
  FileWorkerPool(const FileWorkerPool&) = delete;
  FileWorkerPool& operator=(const FileWorkerPool&) = delete;

  // Thread-safe. Tasks run in submission order on some pool thread; a task
  // must not throw.
  void Submit(std::function<void()> task);

 private:
  FileWorkerPool() = default;
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// The blocking half of the file store: every operation on the session files,
// synchronous, callable from any thread or process at once. FileStore runs
// these on a FileWorkerPool.
class SessionDirectory {
 public:
  // Creates the directory (0700, parents too) when missing and opens it.
  static Result<std::shared_ptr<SessionDirectory>> Open(const std::string& path);
  ~SessionDirectory();
  SessionDirectory(const SessionDirectory&) = delete;
  SessionDirectory& operator=(const SessionDirectory&) = delete;

  // nullopt when missing or expired. IOError on a failed read or a corrupt
  // file (the file is left alone for an operator to inspect).
  Result<std::optional<SessionData>> Load(const StoreKey& key) const;
  Result<ApplyResult> Apply(const ApplyRequest& request);
  Status Touch(const StoreKey& key, std::chrono::milliseconds ttl);

  // Removes expired session files, lock files without a session (left by a
  // crash) and temporary files older than a minute (an interrupted write).
  // Files busy with another writer are skipped until the next sweep.
  // Returns how many expired sessions were removed.
  Result<uint64_t> SweepExpired();

  const std::string& path() const { return path_; }

 private:
  SessionDirectory(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  const std::string path_;
  const int fd_;  // the directory; every file is opened relative to it
};

class FileStore : public SessionStore {
 public:
  // `post` completes each call on this worker's loop thread.
  static Result<std::unique_ptr<FileStore>> Open(const std::string& directory,
                                                 std::shared_ptr<FileWorkerPool> pool, PostFn post);
  // Calls still in flight finish their file work, but their callbacks are
  // dropped (destroyed on the loop thread without running).
  ~FileStore() override;

  // A malformed key fails with Invalid before any file is touched.
  void Load(const StoreKey& key, LoadCallback cb) override;
  void Apply(const ApplyRequest& request, ApplyCallback cb) override;
  void Touch(const StoreKey& key, std::chrono::milliseconds ttl, DoneCallback cb) override;
  // OK when the directory is still there and writable.
  void Ping(DoneCallback cb) override;

  // SessionDirectory::SweepExpired on the pool; for a periodic timer on one
  // worker (one sweeper per directory is enough).
  void Sweep(std::function<void(Status, uint64_t removed)> cb);
  // Sweep() with the outcome logged (a failure as a warning).
  void SweepExpired() override;

 private:
  FileStore(std::shared_ptr<SessionDirectory> dir, std::shared_ptr<FileWorkerPool> pool, PostFn post);

  // Runs `work` on the pool and then `done` with its result on the loop
  // thread, unless this store was destroyed in between.
  template <class R>
  void RunOnPool(std::function<R()> work, std::function<void(R)> done);

  // Runs `task` on the loop thread unless this store is gone by then.
  void PostIfAlive(std::function<void()> task);

  std::shared_ptr<SessionDirectory> dir_;
  std::shared_ptr<FileWorkerPool> pool_;
  PostFn post_;
  // Read and written only on the loop thread.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sessiond
