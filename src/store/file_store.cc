#include "store/file_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "base/json_text.h"
#include "store/session_meta_json.h"
#include "base/log.h"
#include "crypto/crypto.h"
#include "store/memory_store.h"

namespace sessiond {

namespace {

constexpr char kLockSuffix[] = ".lock";
// HMAC keys naming index files: not secrets, only domain separation.
constexpr std::string_view kSubjectHashLabel = "sessiond file store subject";
constexpr std::string_view kPublicIdHashLabel = "sessiond file store public id";
constexpr char kTempMarker[] = ".tmp.";
// A temporary file older than this belongs to a write that was interrupted.
constexpr int64_t kStaleTempMs = 60 * 1000;
// Far above any max_session_bytes; a bigger file is treated as corrupt.
constexpr size_t kMaxFileBytes = 64u << 20;

Status ErrnoStatus(const char* what, int err) {
  char buf[128];
  return Status::IOError(std::string("file store: ") + what + ": " + strerror_r(err, buf, sizeof(buf)));
}

int64_t NowUnixMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool FileExists(int dir_fd, const std::string& name) {
  struct stat st;
  return fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

Status WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

// The whole file, or nullopt when it does not exist.
Result<std::optional<std::string>> ReadFileAt(int dir_fd, const std::string& name) {
  const int fd = openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return ErrnoStatus("open session file", errno);
  }
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return ErrnoStatus("read session file", err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileBytes) {
      close(fd);
      return Status::IOError("file store: session file too large");
    }
  }
  close(fd);
  return std::optional<std::string>(std::move(text));
}

// ------------------------------------------------------------ file format

struct SessionFile {
  int64_t expires_at_ms = 0;
  SessionData data;
  SessionMeta meta;  // all zero/empty in files written before metadata
};

std::string FormatMeta(const SessionMeta& m) {
  std::string out = "{\"created\":" + std::to_string(m.created_at) + ",\"refreshed\":" +
                    std::to_string(m.refreshed_at) + ",\"expires\":" + std::to_string(m.expires_at) +
                    ",\"public_id\":";
  AppendJsonString(&out, m.public_id);
  out += ",\"client\":";
  AppendJsonString(&out, m.client);
  out += ",\"user_agent\":";
  AppendJsonString(&out, m.user_agent);
  out += ",\"subject\":";
  AppendJsonString(&out, m.subject);
  out += "}";
  return out;
}

// "meta" is written only when there is any (a session written through the
// bare SessionStore interface has none, and its file stays as it was).
std::string FormatSessionFile(const SessionFile& file) {
  const SessionMeta& m = file.meta;
  const bool has_meta = m.created_at != 0 || m.refreshed_at != 0 || m.expires_at != 0 || !m.public_id.empty() ||
                        !m.client.empty() || !m.user_agent.empty() || !m.subject.empty();
  return "{\"expires_at\":" + std::to_string(file.expires_at_ms) + ",\"data\":" + SerializeSession(file.data) +
         (has_meta ? ",\"meta\":" + FormatMeta(m) : std::string()) + "}\n";
}

// The "meta" object of a session file: the common members
// (session_meta_json.h) plus the subject the file is indexed under.
void ParseMeta(const std::string& text, SessionMeta* m) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  ReadSessionMeta(j, m);
  if (!j.is_object()) return;
  if (auto it = j.find("subject"); it != j.end() && it->is_string()) m->subject = it->get<std::string>();
}

// Finds where each JSON value of a document that nlohmann already accepted
// begins and ends, so session values keep their exact bytes (re-serializing
// them through a JSON library could change numbers or escapes).
class RawScanner {
 public:
  explicit RawScanner(const std::string& text) : s_(text) {}

  bool Consume(char c) {
    SkipSpace();
    if (i_ >= s_.size() || s_[i_] != c) return false;
    ++i_;
    return true;
  }
  // The text of the next value (a string keeps its quotes).
  bool Value(std::string* out) {
    SkipSpace();
    const size_t begin = i_;
    if (i_ >= s_.size()) return false;
    if (s_[i_] == '"') {
      if (!SkipString()) return false;
    } else if (s_[i_] == '{' || s_[i_] == '[') {
      int depth = 0;
      while (i_ < s_.size()) {
        const char c = s_[i_];
        if (c == '"') {
          if (!SkipString()) return false;
          continue;
        }
        ++i_;
        if (c == '{' || c == '[') ++depth;
        if ((c == '}' || c == ']') && --depth == 0) break;
      }
      if (depth != 0) return false;
    } else {
      while (i_ < s_.size() && !strchr(",}] \t\r\n", s_[i_])) ++i_;
    }
    out->assign(s_, begin, i_ - begin);
    return i_ > begin;
  }

 private:
  void SkipSpace() {
    while (i_ < s_.size() && strchr(" \t\r\n", s_[i_]) && s_[i_] != '\0') ++i_;
  }
  bool SkipString() {
    for (++i_; i_ < s_.size(); ++i_) {
      if (s_[i_] == '\\') ++i_;
      else if (s_[i_] == '"') { ++i_; return true; }
    }
    return false;
  }

  const std::string& s_;
  size_t i_ = 0;
};

std::optional<std::string> DecodeJsonString(const std::string& literal) {
  const auto j = nlohmann::json::parse(literal, nullptr, /*allow_exceptions=*/false);
  if (!j.is_string()) return std::nullopt;
  return j.get<std::string>();
}

Result<SessionFile> ParseSessionFile(const std::string& text) {
  const Status corrupt = Status::IOError("file store: corrupt session file");
  if (!nlohmann::json::accept(text)) return corrupt;
  SessionFile file;
  bool have_expiry = false, have_data = false;
  RawScanner scan(text);
  if (!scan.Consume('{')) return corrupt;
  if (scan.Consume('}')) return corrupt;
  do {
    std::string name, value;
    if (!scan.Value(&name) || !scan.Consume(':')) return corrupt;
    if (name == "\"data\"") {
      if (!scan.Consume('{')) return corrupt;
      if (!scan.Consume('}')) {
        do {
          if (!scan.Value(&name) || !scan.Consume(':') || !scan.Value(&value)) return corrupt;
          std::optional<std::string> key = DecodeJsonString(name);
          if (!key) return corrupt;
          file.data[*key] = std::move(value);
        } while (scan.Consume(','));
        if (!scan.Consume('}')) return corrupt;
      }
      have_data = true;
    } else {
      if (!scan.Value(&value)) return corrupt;
      if (name == "\"expires_at\"") {
        const auto j = nlohmann::json::parse(value, nullptr, false);
        if (!j.is_number_integer()) return corrupt;
        file.expires_at_ms = j.get<int64_t>();
        have_expiry = true;
      } else if (name == "\"meta\"") {
        ParseMeta(value, &file.meta);
      }
    }
  } while (scan.Consume(','));
  if (!scan.Consume('}') || !have_expiry || !have_data) return corrupt;
  return file;
}

Result<std::optional<SessionFile>> ReadSession(int dir_fd, const StoreKey& key) {
  Result<std::optional<std::string>> text = ReadFileAt(dir_fd, key);
  if (!text.ok()) return text.status();
  if (!*text) return std::optional<SessionFile>();
  Result<SessionFile> file = ParseSessionFile(**text);
  if (!file.ok()) return file.status();
  return std::optional<SessionFile>(std::move(*file));
}

Status FsyncDirectory(int dir_fd) {
  // Some file systems cannot fsync a directory; their renames are durable
  // without it.
  if (fsync(dir_fd) != 0 && errno != EINVAL) return ErrnoStatus("fsync directory", errno);
  return Status::OK();
}

// Writes `content` as file `name` in one atomic step. With `replaced` set,
// that file is unlinked just before the rename: a re-keyed session's old key
// must stop working even if we crash halfway (losing the session is the safe
// failure; two live ids for one login is not).
Status WriteAtomically(int dir_fd, const std::string& name, const std::string& content,
                       const std::string* replaced) {
  static std::atomic<uint64_t> counter{0};
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = name + kTempMarker + std::to_string(getpid()) + "." + std::to_string(counter++);
    fd = openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return ErrnoStatus("create temporary file", errno);
  Status st = WriteAll(fd, content);
  if (st.ok() && fsync(fd) != 0) st = ErrnoStatus("fsync", errno);
  if (close(fd) != 0 && st.ok()) st = ErrnoStatus("close", errno);
  if (st.ok() && replaced && unlinkat(dir_fd, replaced->c_str(), 0) != 0 && errno != ENOENT) {
    st = ErrnoStatus("unlink session file", errno);
  }
  if (st.ok() && renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    st = ErrnoStatus("rename session file", errno);
  }
  if (!st.ok()) {
    unlinkat(dir_fd, tmp.c_str(), 0);
    return st;
  }
  return FsyncDirectory(dir_fd);
}

Status RemoveSessionFile(int dir_fd, const StoreKey& key) {
  if (unlinkat(dir_fd, key.c_str(), 0) != 0) {
    if (errno == ENOENT) return Status::OK();
    return ErrnoStatus("unlink session file", errno);
  }
  return FsyncDirectory(dir_fd);
}

// ------------------------------------------------------------ locking

// An exclusive flock on "<key>.lock", held for one read-modify-write. See the
// header for why removing lock files is safe.
class SessionLock {
 public:
  // With `wait` false, fails with Unavailable when another writer holds it.
  static Result<SessionLock> Acquire(int dir_fd, const StoreKey& key, bool wait) {
    const std::string name = key + kLockSuffix;
    for (;;) {
      const int fd = openat(dir_fd, name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fd < 0) return ErrnoStatus("open lock file", errno);
      int rc;
      do rc = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
      while (rc != 0 && errno == EINTR);
      if (rc != 0) {
        const int err = errno;
        close(fd);
        if (err == EWOULDBLOCK) return Status::Unavailable("file store: session busy");
        return ErrnoStatus("lock", err);
      }
      struct stat held, now;
      if (fstat(fd, &held) == 0 &&
          fstatat(dir_fd, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 &&
          held.st_dev == now.st_dev && held.st_ino == now.st_ino) {
        return SessionLock(dir_fd, key, fd);
      }
      close(fd);  // the previous holder removed this lock file: retry on a fresh one
    }
  }

  SessionLock(SessionLock&& other) noexcept
      : dir_fd_(other.dir_fd_), key_(std::move(other.key_)), fd_(other.fd_) {
    other.fd_ = -1;
  }
  SessionLock& operator=(SessionLock&&) = delete;

  // Still holding the lock: a session that no longer exists takes its lock
  // file with it.
  ~SessionLock() {
    if (fd_ < 0) return;
    if (!FileExists(dir_fd_, key_)) unlinkat(dir_fd_, (key_ + kLockSuffix).c_str(), 0);
    close(fd_);
  }

 private:
  SessionLock(int dir_fd, StoreKey key, int fd) : dir_fd_(dir_fd), key_(std::move(key)), fd_(fd) {}
  int dir_fd_;
  StoreKey key_;
  int fd_;
};

Status InvalidKey() { return Status::Invalid("file store: malformed session key"); }

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

Status MakeDirectories(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string prefix = path.substr(0, pos);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("create directory", errno);
    }
  }
  return Status::OK();
}

}  // namespace

bool IsValidStoreKey(const StoreKey& key) {
  if (key.size() != 64) return false;
  for (char c : key) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// ------------------------------------------------------------ SessionDirectory

Result<std::shared_ptr<SessionDirectory>> SessionDirectory::Open(const std::string& path) {
  if (path.empty()) return Status::Invalid("file store: empty directory path");
  Status st = MakeDirectories(path);
  if (!st.ok()) return st;
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open directory", errno);
  return std::shared_ptr<SessionDirectory>(new SessionDirectory(path, fd));
}

SessionDirectory::~SessionDirectory() {
  if (public_ids_fd_ >= 0) close(public_ids_fd_);
  if (subjects_fd_ >= 0) close(subjects_fd_);
  close(fd_);
}

int SessionDirectory::IndexDir(const char* name, int* fd, bool create) const {
  std::lock_guard<std::mutex> lock(index_mu_);
  if (*fd >= 0) return *fd;
  if (create && mkdirat(fd_, name, 0700) != 0 && errno != EEXIST) return -1;
  *fd = openat(fd_, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  return *fd;
}

// ------------------------------------------------------------ the subject index

std::string SessionDirectory::IndexName(std::string_view kind, const std::string& value) {
  // Names must not leak the subject or be chosen by it: a keyed hash, in the
  // session files' 64-hex form (docs/OPERATIONS.md, Sessions API).
  Result<std::string> mac = crypto::HmacSha256(kind, value);
  return mac.ok() ? crypto::HexEncode(*mac) : std::string(64, '0');
}

Result<std::vector<StoreKey>> SessionDirectory::Members(const std::string& subject) const {
  std::vector<StoreKey> out;
  const int dir = SubjectsFd(false);
  if (dir < 0) return out;  // nothing was ever indexed
  Result<std::optional<std::string>> text = ReadFileAt(dir, IndexName(kSubjectHashLabel, subject));
  if (!text.ok()) return text.status();
  if (!*text) return out;
  size_t start = 0;
  const std::string& t = **text;
  while (start < t.size()) {
    size_t end = t.find('\n', start);
    if (end == std::string::npos) end = t.size();
    StoreKey key = t.substr(start, end - start);
    if (IsValidStoreKey(key)) out.push_back(std::move(key));
    start = end + 1;
  }
  return out;
}

Status SessionDirectory::IndexAdd(const std::string& subject, const StoreKey& key) {
  const int dir = SubjectsFd(true);
  if (dir < 0) return ErrnoStatus("open the subject index", errno);
  const std::string name = IndexName(kSubjectHashLabel, subject);
  Result<SessionLock> lock = SessionLock::Acquire(dir, name, true);
  if (!lock.ok()) return lock.status();
  Result<std::vector<StoreKey>> members = Members(subject);
  if (!members.ok()) return members.status();
  if (std::find(members->begin(), members->end(), key) != members->end()) return Status::OK();
  std::string text;
  for (const StoreKey& m : *members) text += m + "\n";
  text += key + "\n";
  return WriteAtomically(dir, name, text, nullptr);
}

Status SessionDirectory::IndexRemove(const std::string& subject, const StoreKey& key) {
  const int dir = SubjectsFd(false);
  if (dir < 0) return Status::OK();
  const std::string name = IndexName(kSubjectHashLabel, subject);
  Result<SessionLock> lock = SessionLock::Acquire(dir, name, true);
  if (!lock.ok()) return lock.status();
  Result<std::vector<StoreKey>> members = Members(subject);
  if (!members.ok()) return members.status();
  std::string text;
  bool found = false;
  for (const StoreKey& m : *members) {
    if (m == key) {
      found = true;
    } else {
      text += m + "\n";
    }
  }
  if (!found) return Status::OK();
  if (text.empty()) return RemoveSessionFile(dir, name);
  return WriteAtomically(dir, name, text, nullptr);
}

Status SessionDirectory::PublicIdSet(const std::string& public_id, const StoreKey& key) {
  if (public_id.empty()) return Status::OK();
  const int dir = PublicIdsFd(true);
  if (dir < 0) return ErrnoStatus("open the public id index", errno);
  return WriteAtomically(dir, IndexName(kPublicIdHashLabel, public_id), key, nullptr);
}

void SessionDirectory::PublicIdRemove(const std::string& public_id, const StoreKey& key) {
  if (public_id.empty()) return;
  const int dir = PublicIdsFd(false);
  if (dir < 0) return;
  const std::string name = IndexName(kPublicIdHashLabel, public_id);
  Result<std::optional<std::string>> text = ReadFileAt(dir, name);
  if (text.ok() && *text && **text == key) RemoveSessionFile(dir, name);
}

void SessionDirectory::Unindex(const StoreKey& key, const SessionMeta& meta) {
  if (meta.subject.empty()) return;
  IndexRemove(meta.subject, key);
  PublicIdRemove(meta.public_id, key);
}

Status SessionDirectory::RevokeOne(const StoreKey& key, const std::string& subject, const std::string& public_id,
                                   std::vector<RevokedSession>* revoked) {
  Result<SessionLock> lock = SessionLock::Acquire(fd_, key, true);
  if (!lock.ok()) return lock.status();
  Result<std::optional<SessionFile>> file = ReadSession(fd_, key);
  if (!file.ok()) return file.status();
  const bool matches = *file && (subject.empty() || (*file)->meta.subject == subject) &&
                       (public_id.empty() || (*file)->meta.public_id == public_id);
  if (!matches) {
    // A stale index entry: the session is gone or indexed elsewhere now.
    if (!subject.empty()) IndexRemove(subject, key);
    return Status::OK();
  }
  const SessionMeta meta = (*file)->meta;
  const bool live = (*file)->expires_at_ms > NowUnixMs();
  Status st = RemoveSessionFile(fd_, key);
  if (!st.ok()) return st;
  Unindex(key, meta);
  if (live) revoked->push_back(RevokedSession{key, meta.public_id});
  return Status::OK();
}

void SessionDirectory::Prune(const std::string& subject, const StoreKey& key) {
  Result<SessionLock> lock = SessionLock::Acquire(fd_, key, false);
  if (!lock.ok()) return;  // busy: its writer keeps the index right
  Result<std::optional<SessionFile>> file = ReadSession(fd_, key);
  if (!file.ok()) return;
  if (!*file || (*file)->meta.subject != subject) {
    IndexRemove(subject, key);
  } else if ((*file)->expires_at_ms <= NowUnixMs()) {
    if (RemoveSessionFile(fd_, key).ok()) Unindex(key, (*file)->meta);
  }
}

Status SessionDirectory::EnforceLimit(const std::string& subject, const StoreKey& keep, uint64_t max,
                                      std::vector<RevokedSession>* revoked) {
  Result<std::vector<StoreKey>> members = Members(subject);
  if (!members.ok()) return members.status();
  if (members->size() <= max) return Status::OK();
  const int64_t now = NowUnixMs();
  std::vector<std::pair<int64_t, StoreKey>> others;
  size_t live = 0;
  for (const StoreKey& key : *members) {
    Result<std::optional<SessionFile>> file = ReadSession(fd_, key);
    if (!file.ok()) continue;
    if (!*file || (*file)->meta.subject != subject || (*file)->expires_at_ms <= now) {
      Prune(subject, key);
      continue;
    }
    ++live;
    if (key != keep) others.emplace_back((*file)->meta.created_at, key);
  }
  std::sort(others.begin(), others.end());  // oldest first
  for (size_t i = 0; live > max && i < others.size(); ++i) {
    const size_t before = revoked->size();
    Status st = RevokeOne(others[i].second, subject, "", revoked);
    if (!st.ok()) return st;
    if (revoked->size() > before) --live;
  }
  return Status::OK();
}

Result<std::vector<SessionListing>> SessionDirectory::ListSubject(const std::string& subject) {
  Result<std::vector<StoreKey>> members = Members(subject);
  if (!members.ok()) return members.status();
  const int64_t now = NowUnixMs();
  std::vector<SessionListing> out;
  for (const StoreKey& key : *members) {
    Result<std::optional<SessionFile>> file = ReadSession(fd_, key);
    if (!file.ok()) continue;
    if (!*file || (*file)->meta.subject != subject || (*file)->expires_at_ms <= now) {
      Prune(subject, key);
      continue;
    }
    out.push_back(SessionListing{key, (*file)->meta});
  }
  std::sort(out.begin(), out.end(), [](const SessionListing& a, const SessionListing& b) {
    return a.meta.created_at != b.meta.created_at ? a.meta.created_at < b.meta.created_at : a.key < b.key;
  });
  return out;
}

Result<std::vector<RevokedSession>> SessionDirectory::RevokeSubject(const std::string& subject) {
  Result<std::vector<StoreKey>> members = Members(subject);
  if (!members.ok()) return members.status();
  std::vector<RevokedSession> revoked;
  for (const StoreKey& key : *members) {
    Status st = RevokeOne(key, subject, "", &revoked);
    if (!st.ok()) return st;
  }
  return revoked;
}

Result<std::vector<RevokedSession>> SessionDirectory::RevokePublicId(const std::string& public_id) {
  std::vector<RevokedSession> revoked;
  const int dir = PublicIdsFd(false);
  if (dir < 0) return revoked;
  Result<std::optional<std::string>> key = ReadFileAt(dir, IndexName(kPublicIdHashLabel, public_id));
  if (!key.ok()) return key.status();
  if (!*key || !IsValidStoreKey(**key)) return revoked;
  Status st = RevokeOne(**key, "", public_id, &revoked);
  if (!st.ok()) return st;
  return revoked;
}

Result<std::optional<SessionData>> SessionDirectory::Load(const StoreKey& key) const {
  Result<std::optional<SessionFile>> file = ReadSession(fd_, key);
  if (!file.ok()) return file.status();
  if (!*file || (*file)->expires_at_ms <= NowUnixMs()) return std::optional<SessionData>();
  return std::optional<SessionData>(std::move((*file)->data));
}

Result<std::optional<StoredSession>> SessionDirectory::LoadSession(const StoreKey& key) const {
  Result<std::optional<SessionFile>> file = ReadSession(fd_, key);
  if (!file.ok()) return file.status();
  if (!*file || (*file)->expires_at_ms <= NowUnixMs()) return std::optional<StoredSession>();
  return std::optional<StoredSession>(StoredSession{std::move((*file)->data), std::move((*file)->meta)});
}

Result<ApplyResult> SessionDirectory::Apply(const ApplyRequest& request) {
  const bool rekey = request.new_key && *request.new_key != request.key;
  const StoreKey& target = rekey ? *request.new_key : request.key;
  Result<ApplyResult> result = Status::OK();
  SessionMeta old_meta;
  {
    const StoreKey& first = rekey ? std::min(request.key, *request.new_key) : request.key;
    Result<SessionLock> lock1 = SessionLock::Acquire(fd_, first, true);
    if (!lock1.ok()) return lock1.status();
    std::optional<Result<SessionLock>> lock2;
    if (rekey) {
      lock2.emplace(SessionLock::Acquire(fd_, std::max(request.key, *request.new_key), true));
      if (!lock2->ok()) return lock2->status();
    }

    // A clear does not need the old content, so Destroy works even on a
    // corrupt file (its index entries are then found stale and dropped).
    const int64_t now = NowUnixMs();
    std::optional<SessionData> current;
    Result<std::optional<SessionFile>> file = ReadSession(fd_, request.key);
    if (!file.ok() && (!request.clear || request.must_exist)) return file.status();
    if (file.ok() && *file) {
      old_meta = (*file)->meta;
      if ((*file)->expires_at_ms > now) current = std::move((*file)->data);
    }
    result = ApplyToSession(std::move(current), request);
    if (!result.ok()) return result;

    SessionFile next;
    if (result->exists) {
      next.expires_at_ms = now + request.ttl.count();
      next.data = result->data;
      next.meta = request.meta ? *request.meta : old_meta;
      next.meta.subject = SubjectOf(result->data, request.subject_key);
      // The public id is kept only for indexed sessions, which the admin
      // API lists and revokes by it: a store dump shows no other.
      if (next.meta.subject.empty()) next.meta.public_id.clear();
    }
    const std::string& new_subject = next.meta.subject;
    // Index entries are added before the session file is written, removed
    // after it (see the header).
    if (result->exists && !new_subject.empty()) {
      Status st = IndexAdd(new_subject, target);
      if (st.ok()) st = PublicIdSet(next.meta.public_id, target);
      if (!st.ok()) return st;
    }
    Status st = result->exists ? WriteAtomically(fd_, target, FormatSessionFile(next), rekey ? &request.key : nullptr)
                               : RemoveSessionFile(fd_, request.key);
    if (!st.ok()) return st;
    if (!old_meta.subject.empty() && (!result->exists || rekey || old_meta.subject != new_subject)) {
      IndexRemove(old_meta.subject, request.key);
    }
    if (!old_meta.public_id.empty() &&
        (!result->exists || rekey || new_subject.empty() || old_meta.public_id != next.meta.public_id)) {
      PublicIdRemove(old_meta.public_id, request.key);
    }
    result->meta = next.meta;
  }  // the session locks are released: revocations lock each session alone

  const std::string subject = result->exists ? result->meta.subject : old_meta.subject;
  if (request.revoke != RevokeScope::kNone && !subject.empty()) {
    Result<std::vector<StoreKey>> members = Members(subject);
    if (!members.ok()) return members.status();
    for (const StoreKey& key : *members) {
      if (key == target && result->exists) continue;
      Status st = RevokeOne(key, subject, "", &result->revoked);
      if (!st.ok()) return st;
    }
    if (request.revoke == RevokeScope::kAll && result->exists) {
      std::vector<RevokedSession> self;
      Status st = RevokeOne(target, subject, "", &self);
      if (!st.ok()) return st;
      result->exists = false;
      result->data.clear();
    }
  }
  if (result->exists && request.max_per_subject > 0 && !result->meta.subject.empty() &&
      result->meta.subject != old_meta.subject) {
    Status st = EnforceLimit(result->meta.subject, target, request.max_per_subject, &result->revoked);
    if (!st.ok()) return st;
  }
  return result;
}

Status SessionDirectory::Touch(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta* meta) {
  Result<SessionLock> lock = SessionLock::Acquire(fd_, key, true);
  if (!lock.ok()) return lock.status();
  Result<std::optional<SessionFile>> file = ReadSession(fd_, key);
  if (!file.ok()) return file.status();
  if (!*file) return Status::OK();
  const int64_t now = NowUnixMs();
  if ((*file)->expires_at_ms <= now) {
    Status st = RemoveSessionFile(fd_, key);
    if (st.ok()) Unindex(key, (*file)->meta);
    return st;
  }
  (*file)->expires_at_ms = now + ttl.count();
  if (meta) {
    SessionMeta& m = (*file)->meta;
    m.refreshed_at = meta->refreshed_at;
    m.expires_at = meta->expires_at;
    m.client = meta->client;
    m.user_agent = meta->user_agent;
    if (m.created_at == 0) m.created_at = meta->created_at;
  }
  return WriteAtomically(fd_, key, FormatSessionFile(**file), nullptr);
}

Result<uint64_t> SessionDirectory::SweepExpired() {
  // A fresh open file description: its read offset is ours alone.
  const int list_fd = openat(fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (list_fd < 0) return ErrnoStatus("open directory", errno);
  DIR* dir = fdopendir(list_fd);
  if (!dir) {
    const int err = errno;
    close(list_fd);
    return ErrnoStatus("read directory", err);
  }
  std::vector<std::string> names;
  while (const dirent* entry = readdir(dir)) names.emplace_back(entry->d_name);
  closedir(dir);

  const int64_t now = NowUnixMs();
  uint64_t removed = 0;
  for (const std::string& name : names) {
    if (IsValidStoreKey(name)) {
      Result<std::optional<SessionFile>> file = ReadSession(fd_, name);
      if (!file.ok() || !*file || (*file)->expires_at_ms > now) continue;
      Result<SessionLock> lock = SessionLock::Acquire(fd_, name, false);
      if (!lock.ok()) continue;
      file = ReadSession(fd_, name);  // it may have been renewed before we locked it
      if (!file.ok() || !*file || (*file)->expires_at_ms > now) continue;
      if (RemoveSessionFile(fd_, name).ok()) {
        Unindex(name, (*file)->meta);  // docs/HEADER-PROTOCOL.md, Subjects: expiry leaves the index
        ++removed;
      }
    } else if (EndsWith(name, kLockSuffix) && IsValidStoreKey(name.substr(0, 64)) &&
               name.size() == 64 + strlen(kLockSuffix)) {
      // Taking and releasing the lock removes it when its session is gone.
      if (!FileExists(fd_, name.substr(0, 64))) SessionLock::Acquire(fd_, name.substr(0, 64), false);
    } else if (name.size() > 64 && IsValidStoreKey(name.substr(0, 64)) &&
               name.compare(64, strlen(kTempMarker), kTempMarker) == 0) {
      struct stat st;
      if (fstatat(fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          now - static_cast<int64_t>(st.st_mtime) * 1000 > kStaleTempMs) {
        unlinkat(fd_, name.c_str(), 0);
      }
    }
  }
  if (const int dir = SubjectsFd(false); dir >= 0) SweepIndexDirectory(dir, now);
  if (const int dir = PublicIdsFd(false); dir >= 0) SweepIndexDirectory(dir, now);
  return removed;
}

void SessionDirectory::SweepIndexDirectory(int dir_fd, int64_t now) {
  const int list_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (list_fd < 0) return;
  DIR* dir = fdopendir(list_fd);
  if (!dir) {
    close(list_fd);
    return;
  }
  std::vector<std::string> names;
  while (const dirent* entry = readdir(dir)) names.emplace_back(entry->d_name);
  closedir(dir);
  for (const std::string& name : names) {
    if (EndsWith(name, kLockSuffix) && name.size() == 64 + strlen(kLockSuffix) && IsValidStoreKey(name.substr(0, 64))) {
      if (!FileExists(dir_fd, name.substr(0, 64))) SessionLock::Acquire(dir_fd, name.substr(0, 64), false);
    } else if (name.size() > 64 && IsValidStoreKey(name.substr(0, 64)) &&
               name.compare(64, strlen(kTempMarker), kTempMarker) == 0) {
      struct stat st;
      if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          now - static_cast<int64_t>(st.st_mtime) * 1000 > kStaleTempMs) {
        unlinkat(dir_fd, name.c_str(), 0);
      }
    }
  }
}

// ------------------------------------------------------------ FileWorkerPool

Result<std::shared_ptr<FileWorkerPool>> FileWorkerPool::Create(int threads) {
  std::shared_ptr<FileWorkerPool> pool(new FileWorkerPool());
  try {
    for (int i = 0; i < std::max(threads, 1); ++i) pool->threads_.emplace_back([p = pool.get()] { p->Run(); });
  } catch (const std::exception& e) {
    return Status::IOError(std::string("file store: cannot start I/O threads: ") + e.what());
  }
  return pool;
}

FileWorkerPool::~FileWorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void FileWorkerPool::Submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void FileWorkerPool::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to run
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    task();
    task = nullptr;  // destroy the captures outside the lock too
    lock.lock();
  }
}

// ------------------------------------------------------------ FileStore

Result<std::unique_ptr<FileStore>> FileStore::Open(const std::string& directory,
                                                   std::shared_ptr<FileWorkerPool> pool, PostFn post) {
  Result<std::shared_ptr<SessionDirectory>> dir = SessionDirectory::Open(directory);
  if (!dir.ok()) return dir.status();
  return std::unique_ptr<FileStore>(new FileStore(std::move(*dir), std::move(pool), std::move(post)));
}

FileStore::FileStore(std::shared_ptr<SessionDirectory> dir, std::shared_ptr<FileWorkerPool> pool, PostFn post)
    : dir_(std::move(dir)), pool_(std::move(pool)), post_(std::move(post)) {}

FileStore::~FileStore() { *alive_ = false; }

namespace {

// A store callback, (Status, T), as the callback of a pool job that returns
// Result<T>: a failure passes T{} (nullopt, an empty list, ApplyResult{}).
template <class T, class Callback>
std::function<void(Result<T>)> Answer(Callback cb) {
  return [cb = std::move(cb)](Result<T> r) {
    if (!r.ok()) cb(r.status(), T{});
    else cb(Status::OK(), std::move(*r));
  };
}

}  // namespace

template <class R>
void FileStore::RunOnPool(std::function<R()> work, std::function<void(R)> done) {
  // `done` holds the caller's callback and its captures; it travels to the
  // pool and straight back inside the posted task, so it is only ever run
  // and destroyed on the loop thread.
  pool_->Submit([work = std::move(work), done = std::move(done), post = post_, alive = alive_]() mutable {
    std::optional<R> result;
    try {
      result.emplace(work());
    } catch (const std::exception& e) {
      result.emplace(Status::IOError(std::string("file store: ") + e.what()));
    }
    post([done = std::move(done), result = std::move(*result), alive]() mutable {
      if (*alive) done(std::move(result));
    });
  });
}

void FileStore::PostIfAlive(std::function<void()> task) {
  post_([task = std::move(task), alive = alive_] {
    if (*alive) task();
  });
}

void FileStore::Load(const StoreKey& key, LoadCallback cb) {
  if (!IsValidStoreKey(key)) {
    PostIfAlive([cb = std::move(cb)] { cb(InvalidKey(), std::nullopt); });
    return;
  }
  using T = std::optional<SessionData>;
  RunOnPool<Result<T>>([dir = dir_, key] { return dir->Load(key); }, Answer<T>(std::move(cb)));
}

void FileStore::Apply(const ApplyRequest& request, ApplyCallback cb) {
  if (!IsValidStoreKey(request.key) || (request.new_key && !IsValidStoreKey(*request.new_key))) {
    PostIfAlive([cb = std::move(cb)] { cb(InvalidKey(), ApplyResult{}); });
    return;
  }
  using T = ApplyResult;
  RunOnPool<Result<T>>([dir = dir_, request] { return dir->Apply(request); }, Answer<T>(std::move(cb)));
}

void FileStore::Touch(const StoreKey& key, std::chrono::milliseconds ttl, DoneCallback cb) {
  if (!IsValidStoreKey(key)) {
    PostIfAlive([cb = std::move(cb)] { cb(InvalidKey()); });
    return;
  }
  RunOnPool<Status>([dir = dir_, key, ttl] { return dir->Touch(key, ttl); }, std::move(cb));
}

void FileStore::LoadSession(const StoreKey& key, LoadSessionCallback cb) {
  if (!IsValidStoreKey(key)) {
    PostIfAlive([cb = std::move(cb)] { cb(InvalidKey(), std::nullopt); });
    return;
  }
  using T = std::optional<StoredSession>;
  RunOnPool<Result<T>>([dir = dir_, key] { return dir->LoadSession(key); }, Answer<T>(std::move(cb)));
}

void FileStore::TouchSession(const StoreKey& key, std::chrono::milliseconds ttl, const SessionMeta& meta,
                             DoneCallback cb) {
  if (!IsValidStoreKey(key)) {
    PostIfAlive([cb = std::move(cb)] { cb(InvalidKey()); });
    return;
  }
  RunOnPool<Status>([dir = dir_, key, ttl, meta] { return dir->Touch(key, ttl, &meta); }, std::move(cb));
}

void FileStore::ListSubject(const std::string& subject, ListCallback cb) {
  using T = std::vector<SessionListing>;
  RunOnPool<Result<T>>([dir = dir_, subject] { return dir->ListSubject(subject); }, Answer<T>(std::move(cb)));
}

void FileStore::RevokeSubject(const std::string& subject, RevokeCallback cb) {
  using T = std::vector<RevokedSession>;
  RunOnPool<Result<T>>([dir = dir_, subject] { return dir->RevokeSubject(subject); }, Answer<T>(std::move(cb)));
}

void FileStore::RevokePublicId(const std::string& public_id, RevokeCallback cb) {
  using T = std::vector<RevokedSession>;
  RunOnPool<Result<T>>([dir = dir_, public_id] { return dir->RevokePublicId(public_id); }, Answer<T>(std::move(cb)));
}

void FileStore::Ping(DoneCallback cb) {
  RunOnPool<Status>(
      [dir = dir_] {
        if (access(dir->path().c_str(), W_OK | X_OK) != 0) return ErrnoStatus("directory not writable", errno);
        return Status::OK();
      },
      std::move(cb));
}

void FileStore::Sweep(std::function<void(Status, uint64_t)> cb) {
  using R = Result<uint64_t>;
  RunOnPool<R>([dir = dir_] { return dir->SweepExpired(); },
               [cb = std::move(cb)](R r) { cb(r.status(), r.ok() ? *r : 0); });
}

void FileStore::SweepExpired() {
  Sweep([](Status st, uint64_t removed) {
    if (!st.ok()) LOG_WARN("file store sweep: %s", st.message().c_str());
    else if (removed > 0) LOG_DEBUG("file store sweep: removed %llu expired sessions",
                                    static_cast<unsigned long long>(removed));
  });
}

}  // namespace sessiond
