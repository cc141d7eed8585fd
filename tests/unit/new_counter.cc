#include "new_counter.h"

#include <cstdlib>
#include <new>

namespace {

thread_local bool g_counting = false;
thread_local long g_news = 0;

void* CountedAlloc(std::size_t n) {
  if (g_counting) ++g_news;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}

}  // namespace

namespace sessiond {
namespace testing {

NewCounter::NewCounter() {
  g_news = 0;
  g_counting = true;
}
NewCounter::~NewCounter() { g_counting = false; }
long NewCounter::count() const { return g_news; }

}  // namespace testing
}  // namespace sessiond

// GCC cannot see that this operator new is malloc underneath, so it takes
// free() in the matching delete for a mismatch.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) { return CountedAlloc(n); }
void* operator new[](std::size_t n) { return CountedAlloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
// The nothrow forms too (std::stable_sort's temporary buffer uses them): left
// to the runtime, they would allocate with its new and be freed here with
// free(), which AddressSanitizer reports as an alloc-dealloc mismatch.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (g_counting) ++g_news;
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& tag) noexcept { return operator new(n, tag); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
#pragma GCC diagnostic pop
