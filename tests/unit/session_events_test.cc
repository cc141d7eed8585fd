// SessionEvents (src/session/session_events.h): the per-worker "session
// ended" notification that tunnels subscribe to.
#include "session/session_events.h"

#include <doctest/doctest.h>

#include <deque>
#include <thread>

namespace sessiond {
namespace {

// A loop stand-in: posted tasks wait until Run().
struct Queue {
  std::deque<std::function<void()>> tasks;
  PostFn post() {
    return [this](std::function<void()> fn) { tasks.push_back(std::move(fn)); };
  }
  void Run() {
    while (!tasks.empty()) {
      auto fn = std::move(tasks.front());
      tasks.pop_front();
      fn();
    }
  }
};

TEST_CASE("every subscriber hears each published batch on its own loop, and none after unsubscribing") {
  SessionEvents events;
  Queue a, b;
  std::vector<std::string> heard_a, heard_b;
  const uint64_t id_a = events.Subscribe(a.post(), [&](const std::vector<RevokedSession>& ended) {
    for (const RevokedSession& s : ended) heard_a.push_back(s.public_id);
  });
  events.Subscribe(b.post(), [&](const std::vector<RevokedSession>& ended) {
    for (const RevokedSession& s : ended) heard_b.push_back(s.key);
  });
  CHECK(events.subscribers() == 2);
  events.Publish({{"k1", "p1"}, {"k2", "p2"}});
  events.Publish({});  // nothing to say: nothing posted
  CHECK(heard_a.empty());  // only when the subscriber's loop runs
  CHECK(a.tasks.size() == 1);
  a.Run();
  b.Run();
  CHECK(heard_a == std::vector<std::string>{"p1", "p2"});
  CHECK(heard_b == std::vector<std::string>{"k1", "k2"});
  events.Unsubscribe(id_a);
  events.Publish({{"k3", "p3"}});
  CHECK(a.tasks.empty());
  b.Run();
  CHECK(heard_b.size() == 3);
}

TEST_CASE("publishing from several threads reaches a subscriber once per batch") {
  SessionEvents events;
  std::mutex mu;
  std::deque<std::function<void()>> tasks;
  int batches = 0;
  events.Subscribe(
      [&](std::function<void()> fn) {
        std::lock_guard<std::mutex> lock(mu);
        tasks.push_back(std::move(fn));
      },
      [&](const std::vector<RevokedSession>&) { ++batches; });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) events.Publish({{"k", "p"}});
    });
  }
  for (std::thread& t : threads) t.join();
  for (auto& fn : tasks) fn();
  CHECK(batches == 200);
}

}  // namespace
}  // namespace sessiond
