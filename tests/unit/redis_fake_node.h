// FakeRedisNode: a scripted Redis server for the router tests: it answers
// every command with what the test's handler returns (raw RESP), so a test
// can produce redirects, loops, malformed replies, dropped connections and
// sentinel announcements that a real server will not make on cue.
//
// It runs on its own threads with blocking sockets (one per connection), so
// the store under test drives its event loop as usual.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sessiond {
namespace testing {

class FakeRedisNode {
 public:
  // The reply to one command, as raw RESP. kClose closes the connection
  // instead; kSilence answers nothing (a hung server).
  using Handler = std::function<std::string(const std::vector<std::string>& argv)>;
  static const std::string kClose;
  static const std::string kSilence;

  explicit FakeRedisNode(Handler handler);
  ~FakeRedisNode();
  FakeRedisNode(const FakeRedisNode&) = delete;
  FakeRedisNode& operator=(const FakeRedisNode&) = delete;

  int port() const { return port_; }
  // Every command received so far, in order.
  std::vector<std::vector<std::string>> commands() const;
  // How many received commands had this name (case-sensitive, as sent).
  int count(const std::string& name) const;
  // Sends raw RESP to every connection that sent SUBSCRIBE.
  void Push(const std::string& raw);
  // Connections accepted so far.
  int accepted() const { return accepted_.load(); }
  // While paused, connections read nothing more (at most the 4 KiB read in
  // progress), so a client's writes fill the socket buffers and go out in
  // pieces.
  void PauseReading(bool paused) { reading_paused_ = paused; }

  // RESP helpers for handlers.
  static std::string Bulk(const std::string& s);
  static std::string Array(const std::vector<std::string>& raw_items);
  // CLUSTER SLOTS with every slot on one node.
  static std::string AllSlotsOn(int port);

 private:
  void AcceptLoop();
  void Serve(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::atomic<bool> reading_paused_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> fds_;
  std::vector<int> subscribers_;
  std::vector<std::vector<std::string>> commands_;
};

}  // namespace testing
}  // namespace sessiond
