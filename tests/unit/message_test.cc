// Request/response head parsing: the strict scanner, framing decisions and
// every smuggling shape that must be refused before anything is forwarded.
#include "http/message.h"

#include <doctest/doctest.h>

#include <string>

using namespace sessiond;

namespace {

int ParseReq(const std::string& raw, RequestHead* out, uint64_t max_body = 1 << 20) {
  const char* why = nullptr;
  int status = ParseRequestHead(raw, max_body, out, &why);
  if (status != 0) CHECK(why != nullptr);
  return status;
}

int ParseReq(const std::string& raw) {
  RequestHead head;
  return ParseReq(raw, &head);
}

bool ParseResp(const std::string& raw, ResponseHead* out, bool head_request = false) {
  const char* why = nullptr;
  return ParseResponseHead(raw, head_request, out, &why);
}

}  // namespace

TEST_CASE("a simple GET parses into method, target, host and headers in order") {
  RequestHead h;
  REQUIRE(ParseReq("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nx-b:  two  \r\n\r\n", &h) == 0);
  CHECK(h.method == "GET");
  CHECK(h.target == "/a?b=1");
  CHECK(h.host == "example.com");
  CHECK(h.minor_version == 1);
  CHECK(h.keep_alive);
  CHECK(h.framing == BodyFraming::kNone);
  REQUIRE(h.headers.size() == 3);
  CHECK(h.headers.fields()[1].name == "X-A");
  CHECK(h.headers.fields()[2].value == "two");  // OWS trimmed both ends
}

TEST_CASE("an empty header value is kept") {
  RequestHead h;
  REQUIRE(ParseReq("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-After: 1\r\n\r\n", &h) == 0);
  REQUIRE(h.headers.Get("x-empty").has_value());
  CHECK(h.headers.Get("x-empty")->empty());
  CHECK(*h.headers.Get("x-after") == "1");
}

TEST_CASE("body framing: Content-Length and chunked") {
  RequestHead a, b, c;
  REQUIRE(ParseReq("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n", &a) == 0);
  CHECK(a.framing == BodyFraming::kLength);
  CHECK(a.content_length == 42);
  REQUIRE(ParseReq("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", &b) == 0);
  CHECK(b.framing == BodyFraming::kChunked);
  REQUIRE(ParseReq("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &c) == 0);
  CHECK(c.framing == BodyFraming::kNone);
}

TEST_CASE("request smuggling shapes are 400") {
  const char* cases[] = {
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12a\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3 3\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",  // space before colon
      "POST / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n",  // obs-fold / leading space
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",     // obs-fold
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",    // obs-fold with tab
      "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",             // bare LF
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",        // bare CR
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01" "b\r\n\r\n",   // control byte
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n",       // DEL
      "GET /\r\n\r\n",                                       // HTTP/0.9
      "GET / HTTP/1.1\r\n\r\n",                              // no Host
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",       // two Hosts
      "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",                  // double space
      "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",                  // trailing space
      "GET / HTTX/1.1\r\nHost: a\r\n\r\n",
      "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",                  // non-token method
      "GET * HTTP/1.1\r\nHost: a\r\n\r\n",                   // asterisk outside OPTIONS
      "GET foo HTTP/1.1\r\nHost: a\r\n\r\n",                 // not a target form
      "GET / HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n",
  };
  for (const char* raw : cases) {
    CAPTURE(raw);
    CHECK(ParseReq(raw) == 400);
  }
  // NUL inside a value.
  std::string with_nul = std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a") + '\0' + "b\r\n\r\n";
  CHECK(ParseReq(with_nul) == 400);
}

TEST_CASE("other refusals carry their own status") {
  CHECK(ParseReq("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == 505);
  CHECK(ParseReq("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n") == 405);
  RequestHead h;
  CHECK(ParseReq("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", &h, 100) == 413);
  RequestHead ok;
  CHECK(ParseReq("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n", &ok, 100) == 0);
}

TEST_CASE("absolute-form targets become origin-form with their authority as Host") {
  RequestHead h;
  REQUIRE(ParseReq("GET http://other.example:8080/p?q=1 HTTP/1.1\r\nHost: ignored\r\n\r\n", &h) == 0);
  CHECK(h.target == "/p?q=1");
  CHECK(h.host == "other.example:8080");
  CHECK(h.headers.Count("host") == 1);
  RequestHead bare;
  REQUIRE(ParseReq("GET http://h.example HTTP/1.1\r\nHost: h.example\r\n\r\n", &bare) == 0);
  CHECK(bare.target == "/");
  CHECK(ParseReq("GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
}

TEST_CASE("OPTIONS * is accepted") {
  RequestHead h;
  REQUIRE(ParseReq("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &h) == 0);
  CHECK(h.target == "*");
}

TEST_CASE("keep-alive follows the version and Connection tokens") {
  RequestHead a, b, c, d;
  REQUIRE(ParseReq("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n", &a) == 0);
  CHECK_FALSE(a.keep_alive);
  REQUIRE(ParseReq("GET / HTTP/1.0\r\n\r\n", &b) == 0);
  CHECK_FALSE(b.keep_alive);
  REQUIRE(ParseReq("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &c) == 0);
  CHECK(c.keep_alive);
  REQUIRE(ParseReq("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", &d) == 0);
  CHECK(d.expect_continue);
}

TEST_CASE("obs-text in values and targets is allowed (as nginx does)") {
  CHECK(ParseReq("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n") == 0);
}

TEST_CASE("response heads: framing, bodiless statuses and keep-alive") {
  ResponseHead a, b, c, d, e, f;
  REQUIRE(ParseResp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &a));
  CHECK(a.framing == BodyFraming::kLength);
  CHECK(a.keep_alive);
  REQUIRE(ParseResp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &b));
  CHECK(b.framing == BodyFraming::kChunked);
  REQUIRE(ParseResp("HTTP/1.1 200 OK\r\n\r\n", &c));
  CHECK(c.framing == BodyFraming::kUntilClose);
  CHECK_FALSE(c.keep_alive);
  REQUIRE(ParseResp("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", &d));
  CHECK(d.framing == BodyFraming::kNone);
  REQUIRE(ParseResp("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", &e, /*head_request=*/true));
  CHECK(e.framing == BodyFraming::kNone);
  REQUIRE(ParseResp("HTTP/1.1 204\r\n\r\n", &f));  // no reason phrase
  CHECK(f.status == 204);
  CHECK(f.framing == BodyFraming::kNone);
}

TEST_CASE("hostile response heads are refused") {
  const char* cases[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 OK\r\n\r\n",
      "garbage\r\n\r\n",
      "HTTP/1.1 200 OK\nX: 1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
      "HTTP/2 200 OK\r\n\r\n",
  };
  for (const char* raw : cases) {
    CAPTURE(raw);
    ResponseHead r;
    CHECK_FALSE(ParseResp(raw, &r));
  }
}

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
  CHECK(ParseReq("GET / HTTP/1.1\r\nHost: a b\r\n\r\n") == 400);
  CHECK(ParseReq("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n") == 400);
}

TEST_CASE("header names with underscores are dropped, as nginx does by default") {
  RequestHead h;
  REQUIRE(ParseReq("POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\nX_Session_Data: {}\r\nX-Ok: 1\r\n\r\n", &h) == 0);
  CHECK(h.headers.size() == 2);
  CHECK_FALSE(h.headers.Get("content_length").has_value());
  CHECK(h.framing == BodyFraming::kNone);  // an underscore name never frames a body
}

TEST_CASE("Expect: 100-continue counts only for HTTP/1.1") {
  RequestHead h10;
  REQUIRE(ParseReq("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", &h10) == 0);
  CHECK_FALSE(h10.expect_continue);
}
