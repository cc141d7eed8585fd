#include "net/task_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace sessiond {

TaskQueue::TaskQueue(event_base* base) {
  fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ >= 0) {
    event_ = event_new(base, fd_, EV_READ | EV_PERSIST, RunCb, this);
    if (event_) event_add(event_, nullptr);
  }
}

TaskQueue::~TaskQueue() {
  if (event_) event_free(event_);
  if (fd_ >= 0) close(fd_);
}

Status TaskQueue::status() const {
  return event_ ? Status::OK() : Status::IOError("cannot create a task queue (eventfd)");
}

void TaskQueue::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  const uint64_t one = 1;
  ssize_t ignored = write(fd_, &one, sizeof(one));  // EAGAIN only when already signalled
  (void)ignored;
}

void TaskQueue::RunCb(evutil_socket_t fd, short, void* arg) {
  uint64_t count;
  ssize_t ignored = read(fd, &count, sizeof(count));
  (void)ignored;
  static_cast<TaskQueue*>(arg)->Run();
}

void TaskQueue::Run() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
}

}  // namespace sessiond
