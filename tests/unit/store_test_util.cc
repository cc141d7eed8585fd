#include "store_test_util.h"

#include <dirent.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <poll.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <deque>
#include <random>
#include <thread>

#include <doctest/doctest.h>

namespace sessiond {
namespace testing {

// ------------------------------------------------------------ TestLoop

struct TestLoop::Inbox {
  std::mutex mu;
  std::deque<std::function<void()>> tasks;
  event* ev = nullptr;  // null once the loop is gone
};

TestLoop::TestLoop() {
  // Posting from another thread needs libevent's locking; harmless to repeat.
  evthread_use_pthreads();
  // A test that writes to a redis-server it just killed must get EPIPE, not die.
  signal(SIGPIPE, SIG_IGN);
  base_ = event_base_new();
  inbox_ = std::make_shared<Inbox>();
  inbox_->ev = event_new(base_, -1, 0, &TestLoop::OnInbox, inbox_.get());
  // Wakes the loop often so RunUntil can check its condition and deadline.
  tick_ = event_new(base_, -1, EV_PERSIST, &TestLoop::OnTick, nullptr);
  const timeval tv{0, 2000};
  event_add(tick_, &tv);
}

TestLoop::~TestLoop() {
  {
    std::lock_guard<std::mutex> lock(inbox_->mu);
    event_free(inbox_->ev);
    inbox_->ev = nullptr;
    inbox_->tasks.clear();
  }
  event_free(tick_);
  event_base_free(base_);
}

PostFn TestLoop::post() const {
  return [inbox = inbox_](std::function<void()> task) {
    std::lock_guard<std::mutex> lock(inbox->mu);
    if (!inbox->ev) return;
    inbox->tasks.push_back(std::move(task));
    event_active(inbox->ev, 0, 0);
  };
}

void TestLoop::OnInbox(evutil_socket_t, short, void* arg) {
  auto* inbox = static_cast<Inbox*>(arg);
  std::deque<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(inbox->mu);
    tasks.swap(inbox->tasks);
  }
  for (auto& task : tasks) task();
}

bool TestLoop::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    event_base_loop(base_, EVLOOP_ONCE);
  }
  return true;
}

void TestLoop::RunFor(std::chrono::milliseconds duration) {
  RunUntil([] { return false; }, duration);
}

// ------------------------------------------------------------ sync wrappers

LoadOutcome LoadSync(TestLoop& loop, SessionStore& store, const StoreKey& key) {
  std::optional<LoadOutcome> out;
  store.Load(key, [&](Status st, std::optional<SessionData> data) { out = LoadOutcome{st, std::move(data)}; });
  REQUIRE(loop.RunUntil([&] { return out.has_value(); }));
  return *out;
}

ApplyOutcome ApplySync(TestLoop& loop, SessionStore& store, const ApplyRequest& request) {
  std::optional<ApplyOutcome> out;
  store.Apply(request, [&](Status st, ApplyResult result) { out = ApplyOutcome{st, std::move(result)}; });
  REQUIRE(loop.RunUntil([&] { return out.has_value(); }));
  return *out;
}

Status TouchSync(TestLoop& loop, SessionStore& store, const StoreKey& key, std::chrono::milliseconds ttl) {
  std::optional<Status> out;
  store.Touch(key, ttl, [&](Status st) { out = st; });
  REQUIRE(loop.RunUntil([&] { return out.has_value(); }));
  return *out;
}

Status PingSync(TestLoop& loop, SessionStore& store) {
  std::optional<Status> out;
  store.Ping([&](Status st) { out = st; });
  REQUIRE(loop.RunUntil([&] { return out.has_value(); }));
  return *out;
}

StoreKey RandomKey() {
  static std::mt19937_64 rng(std::random_device{}());
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  static const char kHex[] = "0123456789abcdef";
  StoreKey key;
  for (int i = 0; i < 64; ++i) key.push_back(kHex[rng() & 0xF]);
  return key;
}

ApplyRequest MakeRequest(const StoreKey& key) {
  ApplyRequest request;
  request.key = key;
  request.ttl = 60s;
  request.max_bytes = 4096;
  request.want_data = true;  // the suite checks what Apply reports
  return request;
}

// ------------------------------------------------------------ TempDir

TempDir::TempDir() {
  char dir[] = "/tmp/sessiond-store-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  path_ = dir;
}

TempDir::~TempDir() {
  for (const std::string& name : List()) unlink((path_ + "/" + name).c_str());
  rmdir(path_.c_str());
}

std::vector<std::string> TempDir::List() const {
  std::vector<std::string> names;
  DIR* dir = opendir(path_.c_str());
  if (!dir) return names;
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

// ------------------------------------------------------------ RedisServer

namespace {

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// Binds `port` on loopback for a moment: true when it is free.
bool PortFree(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// A free port whose cluster bus port (+10000) is free too.
int FreeClusterPort() {
  for (int i = 0; i < 1000; ++i) {
    const int port = FreePort();
    if (port > 0 && port + 10000 <= 65535 && PortFree(port + 10000)) return port;
  }
  return 0;
}

std::string FindRedisServer() {
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/usr/local/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string candidate = dirs.substr(start, end - start) + "/redis-server";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

}  // namespace

std::unique_ptr<RedisServer> RedisServer::Start(std::vector<std::string> extra_args) {
  std::unique_ptr<RedisServer> server(new RedisServer());
  char dir[] = "/tmp/sessiond-redis-XXXXXX";
  if (!mkdtemp(dir)) return nullptr;
  server->dir_ = dir;
  server->socket_path_ = server->dir_ + "/redis.sock";
  const bool cluster = std::find(extra_args.begin(), extra_args.end(), "--cluster-enabled") != extra_args.end();
  server->port_ = cluster ? FreeClusterPort() : FreePort();
  server->extra_args_ = std::move(extra_args);
  if (!server->Spawn()) return nullptr;
  return server;
}

std::unique_ptr<RedisServer> RedisServer::StartTls(const std::string& cert_pem, const std::string& key_pem,
                                                   const std::string& client_ca_pem) {
  std::unique_ptr<RedisServer> server(new RedisServer());
  char dir[] = "/tmp/sessiond-redis-tls-XXXXXX";
  if (!mkdtemp(dir)) return nullptr;
  server->dir_ = dir;
  server->socket_path_ = server->dir_ + "/redis.sock";
  server->port_ = FreePort();
  do {
    server->tls_port_ = FreePort();
  } while (server->tls_port_ == server->port_);
  auto write = [&](const char* name, const std::string& text) {
    const std::string path = server->dir_ + "/" + name;
    FILE* f = fopen(path.c_str(), "w");
    if (!f) return std::string();
    fwrite(text.data(), 1, text.size(), f);
    fclose(f);
    return path;
  };
  // redis-server wants a CA file even when it asks no client certificate.
  server->extra_args_ = {"--tls-port", std::to_string(server->tls_port_), "--tls-cert-file", write("cert.pem", cert_pem),
                         "--tls-key-file", write("key.pem", key_pem), "--tls-ca-cert-file",
                         write("ca.pem", client_ca_pem.empty() ? cert_pem : client_ca_pem), "--tls-auth-clients",
                         client_ca_pem.empty() ? "no" : "yes"};
  if (!server->Spawn()) return nullptr;
  return server;
}

RedisServer::~RedisServer() {
  Stop();
  if (tls_port_ != 0) {
    for (const char* name : {"/cert.pem", "/key.pem", "/ca.pem"}) unlink((dir_ + name).c_str());
  }
  unlink(socket_path_.c_str());
  unlink((dir_ + "/nodes.conf").c_str());  // a cluster node's
  if (!sentinel_conf_.empty()) unlink(sentinel_conf_.c_str());
  rmdir(dir_.c_str());
}

bool RedisServer::Spawn() {
  const std::string binary = FindRedisServer();
  if (binary.empty()) {
    fprintf(stderr, "redis-server not found in PATH\n");
    return false;
  }
  std::vector<std::string> args = {binary, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                   "--unixsocket", socket_path_, "--unixsocketperm", "700",
                                   "--save", "", "--appendonly", "no", "--daemonize", "no",
                                   "--dir", dir_, "--enable-debug-command", "yes"};
  if (!sentinel_conf_.empty()) {
    args = {binary, sentinel_conf_, "--sentinel", "--port", std::to_string(port_), "--bind", "127.0.0.1",
            "--daemonize", "no", "--dir", dir_};
  }
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  // Everything the child needs is prepared before fork: between fork and exec
  // only async-signal-safe calls are allowed.
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    const int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      dup2(null_fd, STDIN_FILENO);
      dup2(null_fd, STDOUT_FILENO);
      dup2(null_fd, STDERR_FILENO);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    timeval tv{0, 200000};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (c && !c->err) {
      auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
      const bool up = reply != nullptr;  // NOAUTH also means it is up
      if (reply) freeReplyObject(reply);
      redisFree(c);
      if (up) return true;
    } else if (c) {
      redisFree(c);
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      fprintf(stderr, "redis-server exited during startup\n");
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  fprintf(stderr, "redis-server did not answer within 5 s\n");
  Stop();
  return false;
}

void RedisServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  unlink(socket_path_.c_str());
}

bool RedisServer::Restart() {
  Stop();
  return Spawn();
}

RedisConfig RedisServer::Config(std::chrono::milliseconds timeout) const {
  RedisConfig config;
  config.host = "127.0.0.1";
  config.port = static_cast<uint16_t>(port_);
  config.timeout = timeout;
  config.key_prefix = "sessiond-test:";
  return config;
}

std::unique_ptr<redisContext, void (*)(redisContext*)> RedisServer::Connect(const std::string& password) const {
  std::unique_ptr<redisContext, void (*)(redisContext*)> c(redisConnect("127.0.0.1", port_), &redisFree);
  if (!c || c->err) return {nullptr, &redisFree};
  if (!password.empty()) {
    auto* reply = static_cast<redisReply*>(redisCommand(c.get(), "AUTH %s", password.c_str()));
    const bool ok = reply && reply->type != REDIS_REPLY_ERROR;
    if (reply) freeReplyObject(reply);
    if (!ok) return {nullptr, &redisFree};
  }
  return c;
}

std::string SessionStoreScript() {
  const char* rel = "examples/python/session_store.py";
  std::vector<std::string> candidates;
  if (const char* src = getenv("SESSIOND_SOURCE_DIR")) candidates.push_back(std::string(src) + "/" + rel);
  candidates.push_back(rel);
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    std::string dir = exe;
    dir = dir.substr(0, dir.rfind('/'));  // build/<variant>
    candidates.push_back(dir + "/../../" + rel);
  }
  for (const std::string& c : candidates) {
    if (access(c.c_str(), R_OK) == 0) return c;
  }
  return "";
}

std::unique_ptr<HttpStoreServer> HttpStoreServer::Start(const std::string& token) {
  const std::string script = SessionStoreScript();
  if (script.empty()) {
    fprintf(stderr, "examples/python/session_store.py not found (set SESSIOND_SOURCE_DIR)\n");
    return nullptr;
  }
  int out[2];
  if (pipe(out) != 0) return nullptr;
  std::vector<std::string> args = {"python3", script, "--port", "0", "--db", ":memory:"};
  if (!token.empty()) {
    args.push_back("--token");
    args.push_back(token);
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return nullptr;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    execvp("python3", argv.data());
    _exit(127);
  }
  close(out[1]);
  std::unique_ptr<HttpStoreServer> server(new HttpStoreServer());
  server->pid_ = pid;
  server->token_ = token;
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    const ssize_t got = read(out[0], buf, sizeof(buf));
    if (got <= 0) break;
    line.append(buf, static_cast<size_t>(got));
  }
  close(out[0]);
  const size_t colon = line.rfind(':');
  if (line.rfind("listening on ", 0) != 0 || colon == std::string::npos) {
    fprintf(stderr, "the reference session store did not start: %s\n", line.c_str());
    return nullptr;
  }
  server->port_ = atoi(line.c_str() + colon + 1);
  return server;
}

HttpStoreServer::~HttpStoreServer() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
}

HttpStoreConfig HttpStoreServer::Config(std::chrono::milliseconds timeout) const {
  HttpStoreConfig config;
  config.host = "127.0.0.1";
  config.port = static_cast<uint16_t>(port_);
  config.url = "http://127.0.0.1:" + std::to_string(port_);
  auto* sin = reinterpret_cast<sockaddr_in*>(&config.address.storage);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(static_cast<uint16_t>(port_));
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  config.address.length = sizeof(sockaddr_in);
  config.address.text = "127.0.0.1:" + std::to_string(port_);
  config.timeout = timeout;
  config.token = token_;
  return config;
}

HttpStoreServer& SharedHttpStore() {
  static std::unique_ptr<HttpStoreServer> server = HttpStoreServer::Start("suite-token-0123456789");
  REQUIRE_MESSAGE(server != nullptr, "could not start examples/python/session_store.py");
  return *server;
}

RedisServer& SharedRedis() {
  static std::unique_ptr<RedisServer> server = RedisServer::Start();
  REQUIRE_MESSAGE(server != nullptr, "could not start redis-server");
  return *server;
}

std::unique_ptr<RedisServer> RedisServer::StartClusterNode() {
  auto node = Start({"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"});
  if (!node) return nullptr;
  auto c = node->Connect();
  if (!c) return nullptr;
  auto* reply = static_cast<redisReply*>(redisCommand(c.get(), "CLUSTER ADDSLOTSRANGE 0 16383"));
  const bool ok = reply && reply->type != REDIS_REPLY_ERROR;
  if (reply) freeReplyObject(reply);
  if (!ok) return nullptr;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    reply = static_cast<redisReply*>(redisCommand(c.get(), "CLUSTER INFO"));
    const bool up = reply && reply->str && strstr(reply->str, "cluster_state:ok");
    if (reply) freeReplyObject(reply);
    if (up) return node;
    usleep(20000);
  }
  return nullptr;
}

std::unique_ptr<RedisServer> RedisServer::StartSentinel(int master_port, const std::string& master_name) {
  std::unique_ptr<RedisServer> server(new RedisServer());
  char dir[] = "/tmp/sessiond-sentinel-XXXXXX";
  if (!mkdtemp(dir)) return nullptr;
  server->dir_ = dir;
  server->port_ = FreePort();
  server->sentinel_conf_ = server->dir_ + "/sentinel.conf";
  FILE* f = fopen(server->sentinel_conf_.c_str(), "w");
  if (!f) return nullptr;
  fprintf(f, "sentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 1000\n", master_name.c_str(),
          master_port, master_name.c_str());
  fclose(f);
  if (!server->Spawn()) return nullptr;
  return server;
}

RedisServer& SharedRedisCluster() {
  static std::unique_ptr<RedisServer> node = RedisServer::StartClusterNode();
  REQUIRE_MESSAGE(node != nullptr, "could not start a one-node redis cluster");
  return *node;
}

}  // namespace testing
}  // namespace sessiond
