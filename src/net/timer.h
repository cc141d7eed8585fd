// Timer and Deferred: events embedded in their owners (no allocation), the
// one way the proxy arms a timeout or defers work to the next loop turn.
//
// Timers are lazy, as nginx's are: Arm() and Cancel() only record the
// deadline when the event already pending would fire no later than it; the
// event then fires early, finds the deadline ahead (or gone) and reschedules
// itself for the rest (or does nothing). A keep-alive connection re-arms its
// timer several times per request (header, idle, upstream response) but
// touches libevent's timer structures about once per timeout period.
//
// When the event must move earlier, it goes through libevent's common-timeout
// queues (event_base_init_common_timeout): every timer armed with the same
// duration joins one queue in deadline order, so adding costs O(1) however
// many connections wait, instead of O(log n) in the timer heap. The durations
// that come from configuration are few, so each gets its own queue; a
// duration that varies from call to call (a deadline's remainder) goes
// through the ordinary heap, so it never takes up a queue.
#pragma once

#include <event2/event.h>
#include <event2/event_struct.h>

#include <chrono>

namespace sessiond {
namespace net {

class Timer {
 public:
  using Callback = void (*)(void* arg);
  using Clock = std::chrono::steady_clock;

  Timer(event_base* base, Callback cb, void* arg);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Calls the callback once, `timeout` from now (replacing any earlier
  // arming). Arm() is for durations from configuration, ArmVaried() for
  // computed ones (see the file comment).
  void Arm(std::chrono::milliseconds timeout) { Set(timeout, /*common=*/true); }
  void ArmVaried(std::chrono::milliseconds timeout) { Set(timeout, /*common=*/false); }
  void Cancel() { armed_ = false; }
  bool armed() const { return armed_; }

 private:
  static void Fire(evutil_socket_t, short, void* arg);
  void Set(std::chrono::milliseconds timeout, bool common);
  void Schedule(std::chrono::milliseconds timeout, bool common);

  event ev_;
  event_base* base_;
  Callback cb_;
  void* arg_;
  bool armed_ = false;    // a deadline is set
  bool pending_ = false;  // the event is scheduled (it may outlive a Cancel)
  Clock::time_point deadline_;  // when the callback is due
  Clock::time_point fires_at_;  // when the pending event fires (<= deadline_ while armed)
  std::chrono::milliseconds cached_{-1};  // the duration of cached_tv_
  const timeval* cached_tv_ = nullptr;
};

// Runs a callback once from the event loop, after the current callback
// returns (for work that must not run inside its own caller's stack).
class Deferred {
 public:
  Deferred(event_base* base, Timer::Callback cb, void* arg);
  ~Deferred() { event_del(&ev_); }
  Deferred(const Deferred&) = delete;
  Deferred& operator=(const Deferred&) = delete;

  void Schedule() { event_active(&ev_, EV_TIMEOUT, 1); }
  void Cancel() { event_del(&ev_); }

 private:
  static void Fire(evutil_socket_t, short, void* arg);

  event ev_;
  Timer::Callback cb_;
  void* arg_;
};

}  // namespace net
}  // namespace sessiond
