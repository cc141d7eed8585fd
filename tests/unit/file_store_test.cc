// FileStore behaviour beyond the shared contract: the files it leaves,
// restarts, the sweep, key validation, and writers in other threads and
// processes.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "store/file_store.h"
#include "store_test_util.h"

namespace sessiond {
namespace testing {
namespace {

struct FileEnv {
  TestLoop loop;
  TempDir dir;
  std::shared_ptr<FileWorkerPool> pool = *FileWorkerPool::Create(2);
  std::unique_ptr<FileStore> Open() {
    Result<std::unique_ptr<FileStore>> store = FileStore::Open(dir.path(), pool, loop.post());
    REQUIRE(store.ok());
    return std::move(*store);
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(dir.path() + "/" + name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(dir.path() + "/" + name) << text;
  }
};

ApplyRequest SetOne(const StoreKey& key, const std::string& name, const std::string& value) {
  ApplyRequest request = MakeRequest(key);
  request.sets[name] = value;
  return request;
}

int64_t NowUnixMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

TEST_CASE("file store: a session is one file in the documented format, with no temporary files left") {
  FileEnv env;
  auto store = env.Open();
  const StoreKey key = RandomKey();
  for (int i = 0; i < 5; ++i) {
    REQUIRE(ApplySync(env.loop, *store, SetOne(key, "k" + std::to_string(i), "1.0e1")).status.ok());
  }
  CHECK(env.dir.List() == std::vector<std::string>{key, key + ".lock"});

  const std::string text = env.Read(key);
  const std::string prefix = "{\"expires_at\":";
  REQUIRE(text.compare(0, prefix.size(), prefix) == 0);
  const int64_t expires_at = std::stoll(text.substr(prefix.size()));
  CHECK(expires_at > NowUnixMs() + 55000);
  CHECK(expires_at <= NowUnixMs() + 60000);
  CHECK(text.substr(text.find(",\"data\":")) ==
        ",\"data\":{\"k0\":1.0e1,\"k1\":1.0e1,\"k2\":1.0e1,\"k3\":1.0e1,\"k4\":1.0e1}}\n");
  struct stat st;
  REQUIRE(stat((env.dir.path() + "/" + key).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  SUBCASE("destroying the session removes its file and its lock file") {
    ApplyRequest destroy = MakeRequest(key);
    destroy.clear = true;
    REQUIRE(ApplySync(env.loop, *store, destroy).status.ok());
    CHECK(env.dir.List().empty());
  }
  SUBCASE("re-keying leaves only the new key's files") {
    const StoreKey new_key = RandomKey();
    ApplyRequest rekey = MakeRequest(key);
    rekey.new_key = new_key;
    REQUIRE(ApplySync(env.loop, *store, rekey).status.ok());
    CHECK(env.dir.List() == std::vector<std::string>{new_key, new_key + ".lock"});
  }
  SUBCASE("a refused (too large) write leaves the files as they were") {
    ApplyRequest big = SetOne(key, "big", std::string(5000, '1'));
    CHECK(ApplySync(env.loop, *store, big).status.code() == Status::Code::kTooLarge);
    CHECK(env.dir.List() == std::vector<std::string>{key, key + ".lock"});
    CHECK(env.Read(key) == text);
  }
}

TEST_CASE("file store: operations on missing sessions leave no lock files") {
  FileEnv env;
  auto store = env.Open();
  const StoreKey key = RandomKey();
  CHECK(TouchSync(env.loop, *store, key, 1s).ok());
  CHECK_FALSE(LoadSync(env.loop, *store, key).data.has_value());
  ApplyRequest too_big = SetOne(key, "big", std::string(5000, '1'));
  CHECK_FALSE(ApplySync(env.loop, *store, too_big).status.ok());
  CHECK(env.dir.List().empty());
}

TEST_CASE("file store: sessions survive a restart") {
  FileEnv env;
  const StoreKey key = RandomKey();
  {
    auto store = env.Open();
    REQUIRE(ApplySync(env.loop, *store, SetOne(key, "user", "\"ada\"")).status.ok());
  }
  auto pool = *FileWorkerPool::Create(1);  // a new process would have new everything
  TestLoop loop;
  Result<std::unique_ptr<FileStore>> reopened = FileStore::Open(env.dir.path(), pool, loop.post());
  REQUIRE(reopened.ok());
  CHECK(LoadSync(loop, **reopened, key).data == SessionData{{"user", "\"ada\""}});
}

TEST_CASE("file store: the sweep removes expired sessions and leftovers, and keeps live sessions") {
  FileEnv env;
  auto store = env.Open();
  const StoreKey expired = RandomKey(), live = RandomKey(), orphan = RandomKey();
  ApplyRequest request = SetOne(expired, "a", "1");
  request.ttl = 100ms;
  REQUIRE(ApplySync(env.loop, *store, request).status.ok());
  REQUIRE(ApplySync(env.loop, *store, SetOne(live, "a", "1")).status.ok());
  env.Write(orphan + ".lock", "");                        // a crashed writer's lock file
  env.Write(live + ".tmp.99999.1", "{");                   // a crashed writer's temporary file
  const std::string tmp_path = env.dir.path() + "/" + live + ".tmp.99999.1";
  const timespec old_times[2] = {{time(nullptr) - 600, 0}, {time(nullptr) - 600, 0}};
  REQUIRE(utimensat(AT_FDCWD, tmp_path.c_str(), old_times, 0) == 0);
  env.Write(live + ".tmp.99999.2", "{");                   // a write in progress: too young to remove
  env.Write("README", "not ours");                         // foreign files are left alone
  env.loop.RunFor(150ms);

  std::optional<std::pair<Status, uint64_t>> swept;
  store->Sweep([&](Status st, uint64_t removed) { swept.emplace(st, removed); });
  REQUIRE(env.loop.RunUntil([&] { return swept.has_value(); }));
  CHECK(swept->first.ok());
  CHECK(swept->second == 1);
  std::vector<std::string> expected = {"README", live, live + ".lock", live + ".tmp.99999.2"};
  std::sort(expected.begin(), expected.end());
  CHECK(env.dir.List() == expected);
  CHECK(LoadSync(env.loop, *store, live).data == SessionData{{"a", "1"}});
}

TEST_CASE("file store: SweepExpired through the SessionStore interface removes expired sessions") {
  FileEnv env;
  auto store = env.Open();
  ApplyRequest request = SetOne(RandomKey(), "a", "1");
  request.ttl = 50ms;
  REQUIRE(ApplySync(env.loop, *store, request).status.ok());
  env.loop.RunFor(100ms);
  REQUIRE_FALSE(env.dir.List().empty());
  static_cast<SessionStore&>(*store).SweepExpired();
  CHECK(env.loop.RunUntil([&] { return env.dir.List().empty(); }, 2s));
}

TEST_CASE("file store: keys that are not 64 lowercase hex digits are refused before touching the disk") {
  FileEnv env;
  auto store = env.Open();
  const StoreKey good = RandomKey();
  for (const StoreKey& bad : {std::string("../../etc/passwd"), std::string(64, 'A'), good.substr(1),
                              good + "0", std::string(62, 'a') + "/.", std::string(), good.substr(0, 63) + "g"}) {
    CAPTURE(bad);
    CHECK_FALSE(IsValidStoreKey(bad));
    CHECK(LoadSync(env.loop, *store, bad).status.code() == Status::Code::kInvalid);
    CHECK(ApplySync(env.loop, *store, SetOne(bad, "a", "1")).status.code() == Status::Code::kInvalid);
    CHECK(TouchSync(env.loop, *store, bad, 1s).code() == Status::Code::kInvalid);
    ApplyRequest rekey = SetOne(good, "a", "1");
    rekey.new_key = bad;
    CHECK(ApplySync(env.loop, *store, rekey).status.code() == Status::Code::kInvalid);
  }
  CHECK(IsValidStoreKey(good));
  CHECK(env.dir.List().empty());
}

TEST_CASE("file store: a corrupt file fails the load with IOError, and a Destroy still removes it") {
  FileEnv env;
  auto store = env.Open();
  const StoreKey key = RandomKey();
  env.Write(key, "{\"expires_at\":99999999999999,\"data\":{\"a\":");
  CHECK(LoadSync(env.loop, *store, key).status.code() == Status::Code::kIOError);
  CHECK(ApplySync(env.loop, *store, SetOne(key, "b", "1")).status.code() == Status::Code::kIOError);
  ApplyRequest destroy = MakeRequest(key);
  destroy.clear = true;
  CHECK(ApplySync(env.loop, *store, destroy).status.ok());
  CHECK(env.dir.List().empty());
}

TEST_CASE("file store: the directory is created 0700, and an impossible one is a Status") {
  TempDir parent;
  const std::string path = parent.path() + "/sessions";
  {
    auto pool = *FileWorkerPool::Create(1);
    TestLoop loop;
    Result<std::unique_ptr<FileStore>> store = FileStore::Open(path + "/nested", pool, loop.post());
    REQUIRE(store.ok());
    struct stat st;
    REQUIRE(stat((path + "/nested").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    CHECK(PingSync(loop, **store).ok());
  }
  rmdir((path + "/nested").c_str());
  rmdir(path.c_str());

  Result<std::shared_ptr<SessionDirectory>> bad = SessionDirectory::Open("/dev/null/sessions");
  CHECK(bad.status().code() == Status::Code::kIOError);
}

TEST_CASE("file store: destroying the store drops callbacks in flight but finishes the write") {
  FileEnv env;
  auto store = env.Open();
  const StoreKey key = RandomKey();
  int called = 0;
  store->Apply(SetOne(key, "a", "1"), [&](Status, ApplyResult) { ++called; });
  store.reset();
  env.pool.reset();  // runs every queued task before returning
  env.loop.RunFor(20ms);
  CHECK(called == 0);
  Result<std::shared_ptr<SessionDirectory>> dir = SessionDirectory::Open(env.dir.path());
  REQUIRE(dir.ok());
  Result<std::optional<SessionData>> data = (*dir)->Load(key);
  REQUIRE(data.ok());
  CHECK(*data == std::optional<SessionData>(SessionData{{"a", "1"}}));
}

TEST_CASE("file store: threads and another process writing one session lose nothing") {
  TempDir dir;
  const StoreKey key = RandomKey();
  int start_pipe[2];
  REQUIRE(pipe(start_pipe) == 0);

  // Fork before this test starts any thread: the child then owns a clean
  // copy of a single-threaded process and may use the blocking API freely.
  fflush(stdout);  // or the child's exit could print buffered output twice
  fflush(stderr);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    char go;
    close(start_pipe[1]);
    int failures = read(start_pipe[0], &go, 1) == 1 ? 0 : 1;
    Result<std::shared_ptr<SessionDirectory>> files = SessionDirectory::Open(dir.path());
    for (int i = 0; files.ok() && i < 15; ++i) {
      if (!(*files)->Apply(SetOne(key, "child." + std::to_string(i), "1")).ok()) ++failures;
    }
    _exit(files.ok() && failures == 0 ? 0 : 1);
  }
  close(start_pipe[0]);

  Result<std::shared_ptr<SessionDirectory>> files = SessionDirectory::Open(dir.path());
  REQUIRE(files.ok());
  std::atomic<bool> go{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < 10; ++i) {
        if (!(*files)->Apply(SetOne(key, "thread" + std::to_string(t) + "." + std::to_string(i), "1")).ok()) {
          ++failures;
        }
      }
    });
  }
  TestLoop loop;
  auto pool = *FileWorkerPool::Create(3);
  auto store = std::move(*FileStore::Open(dir.path(), pool, loop.post()));
  int done = 0;

  go = true;
  REQUIRE(write(start_pipe[1], "g", 1) == 1);
  close(start_pipe[1]);
  for (int i = 0; i < 15; ++i) {
    store->Apply(SetOne(key, "store." + std::to_string(i), "1"), [&](Status st, ApplyResult) {
      ++done;
      if (!st.ok()) ++failures;
    });
  }
  REQUIRE(loop.RunUntil([&] { return done == 15; }));
  for (std::thread& t : threads) t.join();
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(failures == 0);

  LoadOutcome loaded = LoadSync(loop, *store, key);
  REQUIRE(loaded.data.has_value());
  CHECK(loaded.data->size() == 15 + 20 + 15);
  CHECK(dir.List() == std::vector<std::string>{key, key + ".lock"});
}

}  // namespace
}  // namespace testing
}  // namespace sessiond
