// sessiond_requests_total{code,method} (docs/OPERATIONS.md, Metrics): the
// method label is one of a fixed set, so clients cannot grow the label space.
#include "observe/metrics.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "admin/admin_server.h"
#include "observe/exchange_record.h"

using namespace sessiond;

namespace {

void Answer(Metrics* m, std::string_view method, int status) {
  AccessLogEntry e;
  e.method = method;
  e.status = status;
  RecordExchange(m, AccessLogFormat::kOff, e, /*refused_head=*/false);
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("MethodIndex names the standard methods exactly and everything else other") {
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}) {
    CAPTURE(m);
    const int i = Metrics::MethodIndex(m);
    CHECK(i != Metrics::kOtherMethod);
    CHECK(std::string(Metrics::MethodName(i)) == m);
  }
  for (const char* m : {"get", "Get", "PROPFIND", "BREW", "-", "", "GETX", "GE"}) {
    CAPTURE(m);
    CHECK(Metrics::MethodIndex(m) == Metrics::kOtherMethod);
  }
  CHECK(std::string(Metrics::MethodName(Metrics::kOtherMethod)) == "other");
}

TEST_CASE("requests_total is counted by code and method and rendered with both labels") {
  auto m = std::make_unique<Metrics>();
  Answer(m.get(), "GET", 200);
  Answer(m.get(), "GET", 200);
  Answer(m.get(), "POST", 201);
  Answer(m.get(), "GET", 404);
  Answer(m.get(), "BREW", 200);
  Answer(m.get(), "XYZZY", 200);
  Answer(m.get(), "-", 400);  // a refused head
  Answer(m.get(), "GET", 0);   // the client vanished: not counted
  const std::string text = RenderMetrics(*m);
  CHECK(Count(text, "sessiond_requests_total{code=\"200\",method=\"GET\"} 2\n") == 1);
  CHECK(Count(text, "sessiond_requests_total{code=\"201\",method=\"POST\"} 1\n") == 1);
  CHECK(Count(text, "sessiond_requests_total{code=\"404\",method=\"GET\"} 1\n") == 1);
  CHECK(Count(text, "sessiond_requests_total{code=\"200\",method=\"other\"} 2\n") == 1);
  CHECK(Count(text, "sessiond_requests_total{code=\"400\",method=\"other\"} 1\n") == 1);
  CHECK(Count(text, "sessiond_requests_total{") == 5);
  CHECK(Count(text, "BREW") == 0);
}
