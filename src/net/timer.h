// Timer and Deferred: events embedded in their owners (no allocation), the
// one way the proxy arms a timeout or defers work to the next loop turn.
//
// Timer::Arm(d) uses libevent's common-timeout queues
// (event_base_init_common_timeout): every timer armed with the same duration
// joins one queue in deadline order, so arming, re-arming and cancelling cost
// O(1) however many connections wait, instead of O(log n) in the timer heap.
// The durations that come from configuration (client_header, idle, the
// upstream timeouts, the linger time) are few, so each gets its own queue.
// A duration that varies from call to call (a deadline's remainder) goes
// through ArmVaried(), the ordinary heap, so it never takes up a queue.
#pragma once

#include <event2/event.h>
#include <event2/event_struct.h>

#include <chrono>

namespace sessiond {
namespace net {

class Timer {
 public:
  using Callback = void (*)(void* arg);

  Timer(event_base* base, Callback cb, void* arg);
  ~Timer() { Cancel(); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Fires once, `timeout` from now (replacing any earlier arming).
  void Arm(std::chrono::milliseconds timeout);
  void ArmVaried(std::chrono::milliseconds timeout);
  void Cancel();
  bool armed() const { return armed_; }

 private:
  static void Fire(evutil_socket_t, short, void* arg);

  event ev_;
  event_base* base_;
  Callback cb_;
  void* arg_;
  bool armed_ = false;
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
