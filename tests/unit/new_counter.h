// NewCounter: counts this thread's calls of the global operator new while an
// instance is alive. The unit-test binary replaces operator new once, in
// new_counter.cc; outside a NewCounter it only forwards to malloc. Used by the
// tests that pin "no allocation per request in steady state".
#pragma once

namespace sessiond {
namespace testing {

class NewCounter {
 public:
  NewCounter();
  ~NewCounter();
  NewCounter(const NewCounter&) = delete;
  NewCounter& operator=(const NewCounter&) = delete;
  // operator new calls on this thread since construction.
  long count() const;
};

}  // namespace testing
}  // namespace sessiond
