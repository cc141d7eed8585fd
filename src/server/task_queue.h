// TaskQueue: lets any thread run a task on one event loop's thread.
//
// Post() appends under a mutex and activates an event on the loop (libevent
// is set up with evthread_use_pthreads, so event_active is thread-safe); the
// loop then runs every queued task, in order. Used for worker reloads and
// shutdown, for the file store's completions and for admin readiness checks.
#pragma once

#include <event2/event.h>

#include <functional>
#include <mutex>
#include <vector>

namespace sessiond {

class TaskQueue {
 public:
  explicit TaskQueue(event_base* base);
  ~TaskQueue();
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  // Thread-safe.
  void Post(std::function<void()> task);

 private:
  static void RunCb(evutil_socket_t, short, void* arg);
  void Run();

  event* event_;
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;  // guarded by mu_
};

}  // namespace sessiond
