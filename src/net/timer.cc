#include "net/timer.h"

namespace sessiond {
namespace net {

namespace {

// libevent measures time with a coarse monotonic clock cached once per loop
// turn, so an event fires up to a few milliseconds away from the deadline as
// this clock sees it. A deadline that close is due: rescheduling for the
// rest would cost a second wake-up for nothing.
constexpr std::chrono::milliseconds kSlack{5};

timeval ToTimeval(std::chrono::milliseconds d) {
  const long long ms = d.count() < 0 ? 0 : d.count();
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

}  // namespace

Timer::Timer(event_base* base, Callback cb, void* arg) : base_(base), cb_(cb), arg_(arg) {
  event_assign(&ev_, base, -1, 0, Fire, this);
}

Timer::~Timer() {
  if (pending_) event_del(&ev_);
}

void Timer::Set(std::chrono::milliseconds timeout, bool common) {
  const Clock::time_point now = Clock::now();
  deadline_ = now + timeout;
  armed_ = true;
  // The pending event fires no later than the deadline: it will reschedule.
  if (pending_ && fires_at_ <= deadline_) return;
  fires_at_ = deadline_;
  Schedule(timeout, common);
}

void Timer::Schedule(std::chrono::milliseconds timeout, bool common) {
  pending_ = true;
  if (common) {
    if (timeout != cached_) {
      const timeval tv = ToTimeval(timeout);
      // Null once the base has no queue left (libevent allows 256): then the
      // plain timeval below goes to the heap.
      cached_tv_ = event_base_init_common_timeout(base_, &tv);
      cached_ = timeout;
    }
    if (cached_tv_) {
      event_add(&ev_, cached_tv_);
      return;
    }
  }
  const timeval tv = ToTimeval(timeout);
  event_add(&ev_, &tv);
}

void Timer::Fire(evutil_socket_t, short, void* arg) {
  auto* t = static_cast<Timer*>(arg);
  t->pending_ = false;
  if (!t->armed_) return;  // cancelled after it was scheduled
  const Clock::time_point now = Clock::now();
  if (t->deadline_ - now > kSlack) {  // re-armed for later after it was scheduled
    t->fires_at_ = t->deadline_;
    t->Schedule(std::chrono::duration_cast<std::chrono::milliseconds>(t->deadline_ - now), /*common=*/false);
    return;
  }
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
