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
//
// Metadata and subjects (docs/HEADER-PROTOCOL.md, Subjects): each file also
// holds "meta" (times, public id, client, user agent and the subject it is
// indexed under). The index is two subdirectories of files named by a
// keyed hash (64 hex digits, like session files, so the same locking and
// atomic writes apply):
//   subjects/<hash(subject)>      one member store key per line
//   public_ids/<hash(public id)>  the store key of an indexed session
// An index file is changed only under its own lock, which may be taken
// while holding session locks but never the other way round, so no two
// writers wait on each other in a cycle. A member is added before its
// session file is written and removed after, so a crash leaves an extra
// entry, never a missing one; readers check every entry against the
// session file itself (and prune stale ones under the session's lock).
// Revocations run after the revoking Apply has released its own session
// lock: each revoked session is then locked, re-read and deleted alone.
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
  Result<std::optional<StoredSession>> LoadSession(const StoreKey& key) const;
  Result<ApplyResult> Apply(const ApplyRequest& request);
  // With `meta`, also records its refreshed_at, expires_at, client and user agent.
  Status Touch(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta* meta = nullptr);

  // Subjects (see the file comment).
  Result<std::vector<SessionListing>> ListSubject(const std::string& subject);
  Result<std::vector<RevokedSession>> RevokeSubject(const std::string& subject);
  Result<std::vector<RevokedSession>> RevokePublicId(const std::string& public_id);

  // Removes expired session files, lock files without a session (left by a
  // crash) and temporary files older than a minute (an interrupted write).
  // Files busy with another writer are skipped until the next sweep.
  // Returns how many expired sessions were removed.
  Result<uint64_t> SweepExpired();

  const std::string& path() const { return path_; }

 private:
  SessionDirectory(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  // The index subdirectories, created on first use (a directory that never
  // indexes a subject holds only session files): -1 when absent and not
  // `create`d, or when creating fails.
  int SubjectsFd(bool create) const { return IndexDir(kSubjectsDirName, &subjects_fd_, create); }
  int PublicIdsFd(bool create) const { return IndexDir(kPublicIdsDirName, &public_ids_fd_, create); }
  int IndexDir(const char* name, int* fd, bool create) const;
  static constexpr const char* kSubjectsDirName = "subjects";
  static constexpr const char* kPublicIdsDirName = "public_ids";

  // The index file's name for a subject or public id.
  static std::string IndexName(std::string_view kind, const std::string& value);
  Result<std::vector<StoreKey>> Members(const std::string& subject) const;
  Status IndexAdd(const std::string& subject, const StoreKey& key);
  Status IndexRemove(const std::string& subject, const StoreKey& key);
  Status PublicIdSet(const std::string& public_id, const StoreKey& key);
  void PublicIdRemove(const std::string& public_id, const StoreKey& key);
  // Locks `key`, and deletes its session when it is live and indexed under
  // `subject` (any subject when empty) with `public_id` (any when empty);
  // an index entry found stale on the way is dropped. True in *revoked when
  // a live session was deleted.
  Status RevokeOne(const StoreKey& key, const std::string& subject, const std::string& public_id,
                   std::vector<RevokedSession>* revoked);
  // Drops index entries of `subject` whose session is gone or moved (under
  // each session's lock, skipping busy ones).
  void Prune(const std::string& subject, const StoreKey& key);
  Status EnforceLimit(const std::string& subject, const StoreKey& keep, uint64_t max,
                      std::vector<RevokedSession>* revoked);
  // Removes an expired session's index entries (its lock held).
  void Unindex(const StoreKey& key, const SessionMeta& meta);
  void SweepIndexDirectory(int dir_fd, int64_t now);

  const std::string path_;
  const int fd_;  // the directory; every file is opened relative to it
  mutable std::mutex index_mu_;  // guards the two below
  mutable int subjects_fd_ = -1;
  mutable int public_ids_fd_ = -1;
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
  void LoadSession(const StoreKey& key, LoadSessionCallback cb) override;
  void TouchSession(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta& meta,
                    DoneCallback cb) override;
  bool supports_subjects() const override { return true; }
  void ListSubject(const std::string& subject, ListCallback cb) override;
  void RevokeSubject(const std::string& subject, RevokeCallback cb) override;
  void RevokePublicId(const std::string& public_id, RevokeCallback cb) override;
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
