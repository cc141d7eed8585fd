#include "redis_fake_node.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

namespace sessiond {
namespace testing {

const std::string FakeRedisNode::kClose = "\x01close";
const std::string FakeRedisNode::kSilence = "\x01silence";

namespace {

void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Parses one RESP command (an array of bulk strings) from the front of
// `buf`; erases it and returns true when complete.
bool TakeCommand(std::string* buf, std::vector<std::string>* argv) {
  argv->clear();
  size_t pos = 0;
  auto line = [&](std::string* out) {
    const size_t end = buf->find("\r\n", pos);
    if (end == std::string::npos) return false;
    *out = buf->substr(pos, end - pos);
    pos = end + 2;
    return true;
  };
  std::string head;
  if (!line(&head) || head.empty() || head[0] != '*') return false;
  const long n = std::strtol(head.c_str() + 1, nullptr, 10);
  for (long i = 0; i < n; ++i) {
    std::string len;
    if (!line(&len) || len.empty() || len[0] != '$') return false;
    const size_t l = static_cast<size_t>(std::strtol(len.c_str() + 1, nullptr, 10));
    if (buf->size() < pos + l + 2) return false;
    argv->push_back(buf->substr(pos, l));
    pos += l + 2;
  }
  buf->erase(0, pos);
  return true;
}

}  // namespace

FakeRedisNode::FakeRedisNode(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  listen(listen_fd_, 64);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FakeRedisNode::~FakeRedisNode() {
  stopping_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  close(listen_fd_);
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (std::thread& t : workers) t.join();
}

void FakeRedisNode::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    ++accepted_;
    std::lock_guard<std::mutex> lock(mu_);
    fds_.push_back(fd);
    workers_.emplace_back([this, fd] { Serve(fd); });
  }
}

void FakeRedisNode::Serve(int fd) {
  std::string buf;
  char chunk[4096];
  std::vector<std::string> argv;
  bool open = true;
  while (open && !stopping_) {
    while (reading_paused_ && !stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    while (open && TakeCommand(&buf, &argv)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        commands_.push_back(argv);
        if (!argv.empty() && argv[0] == "SUBSCRIBE") subscribers_.push_back(fd);
      }
      const std::string reply = handler_(argv);
      if (reply == kClose) {
        open = false;
      } else if (reply != kSilence) {
        WriteAll(fd, reply);
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  subscribers_.erase(std::remove(subscribers_.begin(), subscribers_.end(), fd), subscribers_.end());
  fds_.erase(std::remove(fds_.begin(), fds_.end(), fd), fds_.end());
  close(fd);
}

std::vector<std::vector<std::string>> FakeRedisNode::commands() const {
  std::lock_guard<std::mutex> lock(mu_);
  return commands_;
}

int FakeRedisNode::count(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(std::count_if(commands_.begin(), commands_.end(),
                                        [&](const std::vector<std::string>& c) { return !c.empty() && c[0] == name; }));
}

void FakeRedisNode::Push(const std::string& raw) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : subscribers_) WriteAll(fd, raw);
}

std::string FakeRedisNode::Bulk(const std::string& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }

std::string FakeRedisNode::Array(const std::vector<std::string>& raw_items) {
  std::string out = "*" + std::to_string(raw_items.size()) + "\r\n";
  for (const std::string& item : raw_items) out += item;
  return out;
}

std::string FakeRedisNode::AllSlotsOn(int port) {
  return Array({Array({":0\r\n", ":16383\r\n", Array({Bulk("127.0.0.1"), ":" + std::to_string(port) + "\r\n", Bulk("id")})})});
}

}  // namespace testing
}  // namespace sessiond
