// The access log's formats (docs/OPERATIONS.md, Access log).
#include "observe/access_log.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using namespace sessiond;

namespace {

constexpr int64_t kTime = 1795694400;  // 2026-11-26T12:00:00Z

AccessLogEntry Entry() {
  AccessLogEntry e;
  e.client = "203.0.113.7";
  e.method = "GET";
  e.target = "/cart?x=1";
  e.host = "app.example";
  e.minor_version = 1;
  e.status = 200;
  e.bytes = 42;
  e.duration = 0.002;
  e.upstream_duration = 0.001;
  e.session = "active";
  e.request_id = "rid-1";
  e.referer = "https://ref.example/";
  e.user_agent = "curl/8.0";
  return e;
}

nlohmann::json Json(const AccessLogEntry& e) {
  std::string line = FormatAccessLog(e, AccessLogFormat::kJson, kTime);
  REQUIRE(!line.empty());
  CHECK(line.find('\n') == line.size() - 1);
  return nlohmann::json::parse(line);
}

}  // namespace

TEST_CASE("json access log: host, protocol, referer and user agent beside the request fields") {
  nlohmann::json doc = Json(Entry());
  CHECK(doc["time"] == "2026-11-26T12:00:00Z");
  CHECK(doc["client"] == "203.0.113.7");
  CHECK(doc["host"] == "app.example");
  CHECK(doc["method"] == "GET");
  CHECK(doc["path"] == "/cart?x=1");
  CHECK(doc["protocol"] == "HTTP/1.1");
  CHECK(doc["status"] == 200);
  CHECK(doc["bytes"] == 42);
  CHECK(doc["session"] == "active");
  CHECK(doc["request_id"] == "rid-1");
  CHECK(doc["referer"] == "https://ref.example/");
  CHECK(doc["user_agent"] == "curl/8.0");
  CHECK(doc.size() == 14);
}

TEST_CASE("json access log: absent headers are null, HTTP/1.0 is named") {
  AccessLogEntry e = Entry();
  e.host = {};
  e.referer = {};
  e.user_agent = {};
  e.minor_version = 0;
  e.session = {};
  e.upstream_duration = -1;
  nlohmann::json doc = Json(e);
  CHECK(doc["host"].is_null());
  CHECK(doc["referer"].is_null());
  CHECK(doc["user_agent"].is_null());
  CHECK(doc["session"].is_null());
  CHECK(doc["upstream_duration"].is_null());
  CHECK(doc["protocol"] == "HTTP/1.0");
}

TEST_CASE("json access log: client-controlled text stays inside its string") {
  AccessLogEntry e = Entry();
  e.user_agent = "ua\",\"status\":500,\"x\":\"\n";
  e.host = "h\"}\r\n";
  nlohmann::json doc = Json(e);
  CHECK(doc["status"] == 200);
  CHECK(doc["user_agent"] == "ua\",\"status\":500,\"x\":\"\n");
  CHECK(doc["host"] == "h\"}\r\n");
}

TEST_CASE("combined access log: unchanged by the JSON fields") {
  std::string line = FormatAccessLog(Entry(), AccessLogFormat::kCombined, kTime);
  CHECK(line ==
        "203.0.113.7 - - [26/Nov/2026:12:00:00 +0000] \"GET /cart?x=1 HTTP/1.1\" 200 42 \"https://ref.example/\" "
        "\"curl/8.0\" rt=0.002 urt=0.001 session=active rid=rid-1\n");
}
