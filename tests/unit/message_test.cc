// The helpers of message.h: Content-Length values, Host syntax, reason
// phrases. The head parser's own rules are in head_parser_test.cc.
#include "http/message.h"

#include <doctest/doctest.h>

#include <string>

using namespace sessiond;

TEST_CASE("ParseContentLength accepts only plain digits") {
  uint64_t n = 0;
  CHECK(ParseContentLength("0", &n));
  CHECK(n == 0);
  CHECK(ParseContentLength("123456789012345678", &n));
  CHECK(n == 123456789012345678ULL);
  CHECK_FALSE(ParseContentLength("", &n));
  CHECK_FALSE(ParseContentLength("1234567890123456789", &n));  // 19 digits
  CHECK_FALSE(ParseContentLength(" 1", &n));
  CHECK_FALSE(ParseContentLength("0x10", &n));
}

TEST_CASE("Host must be a host and optional port, nothing else") {
  for (const char* ok : {"a", "example.com", "example.com:8080", "127.0.0.1:1", "[::1]", "[::1]:443", "xn--bcher-kva.example"}) {
    CAPTURE(ok);
    CHECK(IsValidHost(ok));
  }
  for (const char* bad : {"", "a b", "a,b", "a/b", "user@a", "a:", "a:123456", "a:8x", "[::1", "[zz]", ":80", "a?b"}) {
    CAPTURE(bad);
    CHECK_FALSE(IsValidHost(bad));
  }
}

TEST_CASE("ReasonPhrase covers the statuses sessiond produces") {
  CHECK(std::string(ReasonPhrase(400)) == "Bad Request");
  CHECK(std::string(ReasonPhrase(431)) == "Request Header Fields Too Large");
  CHECK(std::string(ReasonPhrase(505)) == "HTTP Version Not Supported");
  CHECK(std::string(ReasonPhrase(299)) == "Error");
}

TEST_CASE("RequestHead::Clear and ResponseHead::Clear return to a new object's state") {
  RequestHead r;
  r.method = "GET";
  r.rewritten_target = "/x";
  r.target = r.rewritten_target;
  r.headers.AppendCopy("X", "1");
  r.framing = BodyFraming::kChunked;
  r.keep_alive = false;
  r.Clear();
  CHECK(r.method.empty());
  CHECK(r.target.empty());
  CHECK(r.rewritten_target.empty());
  CHECK(r.headers.size() == 0);
  CHECK(r.framing == BodyFraming::kNone);
  CHECK(r.keep_alive);
  ResponseHead s;
  s.status = 200;
  s.headers.AppendCopy("X", "1");
  s.keep_alive = false;
  s.Clear();
  CHECK(s.status == 0);
  CHECK(s.headers.size() == 0);
  CHECK(s.keep_alive);
}
