// The error log's two formats (docs/OPERATIONS.md, Error log; docs/CONFIGURATION.md, log.format).
#include "base/log.h"

#include <errno.h>
#include <string.h>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

using namespace sessiond;

namespace {

constexpr int64_t kTime = 1795694400;  // 2026-11-26T12:00:00Z

LogDetail UpstreamFailure() {
  LogDetail d;
  d.upstream = "127.0.0.1:3000";
  d.err = ECONNREFUSED;
  d.client = "203.0.113.7";
  d.rid = "5c6f0e0d";
  d.method = "GET";
  d.target = "/cart?x=1";
  d.minor_version = 1;
  return d;
}

std::string Text(std::string_view message, const LogDetail& d, LogLevel level = LogLevel::kWarn) {
  return FormatLogLine(level, LogFormat::kText, kTime, message, d);
}

nlohmann::json Json(std::string_view message, const LogDetail& d, LogLevel level = LogLevel::kWarn) {
  std::string line = FormatLogLine(level, LogFormat::kJson, kTime, message, d);
  REQUIRE(!line.empty());
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  return nlohmann::json::parse(line.substr(0, line.size() - 1));
}

}  // namespace

TEST_CASE("text: a plain line is time, level and message") {
  CHECK(Text("sessiond stopped", LogDetail(), LogLevel::kInfo) == "2026-11-26T12:00:00Z [info] sessiond stopped\n");
}

TEST_CASE("text: an upstream failure names the upstream, the errno text, client, rid and request line") {
  const std::string want = std::string("2026-11-26T12:00:00Z [warn] upstream 127.0.0.1:3000: connect failed (") +
                           std::to_string(ECONNREFUSED) + ": " + strerror(ECONNREFUSED) +
                           "), client=203.0.113.7, rid=5c6f0e0d, \"GET /cart?x=1 HTTP/1.1\"\n";
  CHECK(Text("connect failed", UpstreamFailure()) == want);
}

TEST_CASE("text: the request line escapes control bytes and quotes, and is cut at kMaxLoggedTarget") {
  LogDetail d;
  d.method = "GET";
  static const char kTarget[] = "/a\"b\\c\r\nX\x7f\xff";
  d.target = std::string_view(kTarget, sizeof(kTarget) - 1);
  d.minor_version = 0;
  std::string line = Text("refused", d, LogLevel::kDebug);
  CHECK(line == "2026-11-26T12:00:00Z [debug] refused, \"GET /a\\x22b\\x5Cc\\x0D\\x0AX\\x7F\\xFF HTTP/1.0\"\n");

  std::string long_target = "/" + std::string(1000, 'a');
  d.target = long_target;
  d.minor_version = 1;
  line = Text("refused", d);
  CHECK(line.find("/" + std::string(kMaxLoggedTarget - 1, 'a') + "... HTTP/1.1\"") != std::string::npos);
  CHECK(line.find(std::string(kMaxLoggedTarget, 'a')) == std::string::npos);
}

TEST_CASE("text: control bytes in the message or fields never split the line") {
  LogDetail d;
  d.client = "1.2.3.4\nforged";
  std::string line = Text("a\nb\rc", d);
  CHECK(line == "2026-11-26T12:00:00Z [warn] a?b?c, client=1.2.3.4?forged\n");
}

TEST_CASE("json: one object with time, level, message and the structured fields") {
  nlohmann::json doc = Json("connect failed", UpstreamFailure());
  CHECK(doc["time"] == "2026-11-26T12:00:00Z");
  CHECK(doc["level"] == "warn");
  CHECK(doc["message"] == "connect failed");
  CHECK(doc["upstream"] == "127.0.0.1:3000");
  CHECK(doc["errno"] == ECONNREFUSED);
  CHECK(doc["error"] == strerror(ECONNREFUSED));
  CHECK(doc["client"] == "203.0.113.7");
  CHECK(doc["rid"] == "5c6f0e0d");
  CHECK(doc["request"] == "GET /cart?x=1 HTTP/1.1");
  CHECK(doc.size() == 9);
}

TEST_CASE("json: a plain line has only time, level and message") {
  nlohmann::json doc = Json("configuration reloaded", LogDetail(), LogLevel::kInfo);
  CHECK(doc.size() == 3);
  CHECK(doc["level"] == "info");
  CHECK(doc["message"] == "configuration reloaded");
}

TEST_CASE("json: hostile bytes stay inside their strings") {
  LogDetail d;
  d.method = "GET";
  static const char kTarget[] = "/\"},\"level\":\"error\n\x01\xc3";
  d.target = std::string_view(kTarget, sizeof(kTarget) - 1);
  nlohmann::json doc = Json("x\"y\nz", d, LogLevel::kDebug);
  CHECK(doc["level"] == "debug");
  CHECK(doc["message"] == "x\"y\nz");
  const std::string request = doc["request"];
  CHECK(request.rfind("GET /\"},\"level\":\"error\n\x01", 0) == 0);
  CHECK(request.size() > 10);
  CHECK(doc.size() == 4);
}
