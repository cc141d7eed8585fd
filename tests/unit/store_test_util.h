// Test support for the session store tests: an event loop to drive until
// callbacks complete, synchronous wrappers around the store calls, and a real
// redis-server child process.
#pragma once

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "store/store.h"

namespace sessiond {
namespace testing {

using namespace std::chrono_literals;

// One libevent loop plus a thread-safe PostFn onto it, like a worker's.
class TestLoop {
 public:
  TestLoop();
  ~TestLoop();
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;

  event_base* base() const { return base_; }
  // Stays safe to call after the loop is gone (the task is then dropped).
  PostFn post() const;
  // Runs the loop until done() holds or `timeout` passes; returns done().
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s);
  void RunFor(std::chrono::milliseconds duration);

 private:
  struct Inbox;
  static void OnInbox(evutil_socket_t, short, void* arg);
  static void OnTick(evutil_socket_t, short, void*) {}

  event_base* base_;
  event* tick_;
  std::shared_ptr<Inbox> inbox_;
};

// Synchronous wrappers: issue the call, drive the loop until its callback
// ran (failing the test if it never does), return what it reported.
struct LoadOutcome {
  Status status;
  std::optional<SessionData> data;
};
struct ApplyOutcome {
  Status status;
  ApplyResult result;
};
LoadOutcome LoadSync(TestLoop& loop, SessionStore& store, const StoreKey& key);
ApplyOutcome ApplySync(TestLoop& loop, SessionStore& store, const ApplyRequest& request);
Status TouchSync(TestLoop& loop, SessionStore& store, const StoreKey& key, std::chrono::milliseconds ttl);
Status PingSync(TestLoop& loop, SessionStore& store);

// A fresh random StoreKey (64 hex digits).
StoreKey RandomKey();
// An ApplyRequest for `key` with a 60 s ttl and a 4096-byte limit, asking
// for the resulting data (want_data).
ApplyRequest MakeRequest(const StoreKey& key);

// A fresh private directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  // Names of the entries in the directory (without . and ..), sorted.
  std::vector<std::string> List() const;

 private:
  std::string path_;
};

// A redis-server child process (no persistence) on a free TCP port and a
// unix socket in a private temporary directory. It dies with the test
// process (PR_SET_PDEATHSIG), so a crashed test leaves no server behind.
class RedisServer {
 public:
  // Starts it and waits until it answers PING; nullptr (with a message on
  // stderr) when it cannot.
  static std::unique_ptr<RedisServer> Start(std::vector<std::string> extra_args = {});
  // A one-node Redis Cluster: cluster mode, every slot its own, state ok.
  static std::unique_ptr<RedisServer> StartClusterNode();
  // A sentinel (quorum 1) monitoring the master on master_port.
  static std::unique_ptr<RedisServer> StartSentinel(int master_port, const std::string& master_name);
  // A server that also listens for TLS on tls_port() (the plain port stays
  // for the test's own checks), with this certificate and key; clients must
  // present a certificate `client_ca_pem` signed when it is not empty.
  static std::unique_ptr<RedisServer> StartTls(const std::string& cert_pem, const std::string& key_pem,
                                               const std::string& client_ca_pem = "");
  ~RedisServer();

  // Kills the server (SIGKILL) and reaps it.
  void Stop();
  // Starts it again on the same port and socket; true once it answers.
  bool Restart();

  int port() const { return port_; }
  int tls_port() const { return tls_port_; }
  const std::string& socket_path() const { return socket_path_; }
  // A RedisConfig pointing at this server over TCP with a short timeout.
  RedisConfig Config(std::chrono::milliseconds timeout = 500ms) const;

  // A blocking connection for checks from the test (nullptr on failure);
  // authenticated when `password` is not empty.
  std::unique_ptr<redisContext, void (*)(redisContext*)> Connect(const std::string& password = "") const;

 private:
  RedisServer() = default;
  bool Spawn();

  int port_ = 0;
  int tls_port_ = 0;
  pid_t pid_ = -1;
  std::string dir_;
  std::string socket_path_;
  std::vector<std::string> extra_args_;
  std::string sentinel_conf_;  // set for a sentinel
};

// The redis-server shared by the interface suite, started on first use.
RedisServer& SharedRedis();
// The one-node cluster shared by the interface suite's cluster run.
RedisServer& SharedRedisCluster();

// The reference HTTP session store (examples/python/session_store.py) as a
// child process on a free port, over an in-memory SQLite database. Dies
// with the test process.
class HttpStoreServer {
 public:
  // nullptr (with a message on stderr) when python3 or the script is missing
  // or it does not say where it listens within 10 s.
  static std::unique_ptr<HttpStoreServer> Start(const std::string& token = "");
  ~HttpStoreServer();
  int port() const { return port_; }
  // An HttpStoreConfig pointing at it.
  HttpStoreConfig Config(std::chrono::milliseconds timeout = 2000ms) const;

 private:
  HttpStoreServer() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string token_;
};

// The store shared by the interface suite, started on first use.
HttpStoreServer& SharedHttpStore();
// examples/python/session_store.py, found from the working directory or the
// test binary's location; empty when not found.
std::string SessionStoreScript();

}  // namespace testing
}  // namespace sessiond
