#include "server/task_queue.h"

namespace sessiond {

TaskQueue::TaskQueue(event_base* base) : event_(event_new(base, -1, EV_PERSIST, RunCb, this)) {}

TaskQueue::~TaskQueue() {
  if (event_) event_free(event_);
}

void TaskQueue::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  event_active(event_, EV_TIMEOUT, 0);
}

void TaskQueue::RunCb(evutil_socket_t, short, void* arg) { static_cast<TaskQueue*>(arg)->Run(); }

void TaskQueue::Run() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
}

}  // namespace sessiond
