#include "net/timer.h"

namespace sessiond {
namespace net {

namespace {

timeval ToTimeval(std::chrono::milliseconds d) {
  const long long ms = d.count() < 0 ? 0 : d.count();
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

}  // namespace

Timer::Timer(event_base* base, Callback cb, void* arg) : base_(base), cb_(cb), arg_(arg) {
  event_assign(&ev_, base, -1, 0, Fire, this);
}

void Timer::Arm(std::chrono::milliseconds timeout) {
  if (timeout != cached_) {
    const timeval tv = ToTimeval(timeout);
    // Null once the base has no queue left (libevent allows 256): then the
    // plain timeval below goes to the heap.
    cached_tv_ = event_base_init_common_timeout(base_, &tv);
    cached_ = timeout;
  }
  if (!cached_tv_) {
    ArmVaried(timeout);
    return;
  }
  event_add(&ev_, cached_tv_);
  armed_ = true;
}

void Timer::ArmVaried(std::chrono::milliseconds timeout) {
  const timeval tv = ToTimeval(timeout);
  event_add(&ev_, &tv);
  armed_ = true;
}

void Timer::Cancel() {
  if (!armed_) return;
  event_del(&ev_);
  armed_ = false;
}

void Timer::Fire(evutil_socket_t, short, void* arg) {
  auto* t = static_cast<Timer*>(arg);
  t->armed_ = false;
  t->cb_(t->arg_);
}

Deferred::Deferred(event_base* base, Timer::Callback cb, void* arg) : cb_(cb), arg_(arg) {
  event_assign(&ev_, base, -1, 0, Fire, this);
}

void Deferred::Fire(evutil_socket_t, short, void* arg) {
  auto* d = static_cast<Deferred*>(arg);
  d->cb_(d->arg_);
}

}  // namespace net
}  // namespace sessiond
