// TaskQueue: lets any thread run a task on one event loop's thread.
//
// Post() appends under a mutex and wakes the loop through an eventfd; the
// loop then runs every queued task, in order. Waking through a file
// descriptor (rather than event_active from another thread) means libevent
// needs no locking of its own (no evthread_use_pthreads), which keeps a lock
// and unlock off every event operation on the request path. Used for worker
// reloads and shutdown, for the file store's completions.
#pragma once

#include <event2/event.h>

#include <functional>
#include <mutex>
#include <vector>

#include "base/status.h"

namespace sessiond {

class TaskQueue {
 public:
  explicit TaskQueue(event_base* base);
  ~TaskQueue();
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  // OK unless the eventfd or its event could not be created.
  Status status() const;

  // Thread-safe.
  void Post(std::function<void()> task);

 private:
  static void RunCb(evutil_socket_t fd, short, void* arg);
  void Run();

  int fd_ = -1;
  event* event_ = nullptr;
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;  // guarded by mu_
};

}  // namespace sessiond
