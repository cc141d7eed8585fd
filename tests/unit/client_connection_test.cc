// ClientConnection's storage (src/proxy/client_connection.h): the memory of
// an ended connection serves the next one on the same thread, up to the
// spare limit, so clients that reconnect cost no allocation. Sanitizer
// builds never recycle (a use after free must stay detectable).
#include "proxy/client_connection.h"

#include <doctest/doctest.h>

#include "new_counter.h"

namespace sessiond {

namespace {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
constexpr bool kRecycles = true;
#else
constexpr bool kRecycles = false;
#endif
}  // namespace

TEST_CASE("ClientConnection storage is reused up to the spare limit, and freed when it is lowered") {
  ClientConnection::SetSpareLimit(1);
  void* a = ClientConnection::operator new(sizeof(ClientConnection));
  void* b = ClientConnection::operator new(sizeof(ClientConnection));
  ClientConnection::operator delete(a);  // kept: one spare
  ClientConnection::operator delete(b);  // over the limit: freed
  long allocations = 0;
  void* c = nullptr;
  {
    testing::NewCounter news;
    c = ClientConnection::operator new(sizeof(ClientConnection));
    allocations = news.count();
  }
  if (kRecycles) {
    CHECK(c == a);
    CHECK(allocations == 0);
  } else {
    CHECK(allocations == 1);
  }
  ClientConnection::operator delete(c);  // a spare again
  ClientConnection::SetSpareLimit(0);    // frees it
  {
    testing::NewCounter news;
    void* d = ClientConnection::operator new(sizeof(ClientConnection));
    allocations = news.count();
    ClientConnection::operator delete(d);
  }
  CHECK(allocations == 1);
}

}  // namespace sessiond
