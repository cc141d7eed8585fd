// LocalReply (src/http/local_reply.h): the one format of sessiond's own answers.
#include "http/local_reply.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using sessiond::LocalReply;

namespace {

std::string Render(const LocalReply& r) {
  std::vector<char> buf(r.MaxSize());
  size_t n = r.Write(buf.data());
  CHECK(n <= r.MaxSize());
  return std::string(buf.data(), n);
}

}  // namespace

TEST_CASE("LocalReply: a refused head, closing, with the reason as its body") {
  LocalReply r;
  r.status = 431;
  CHECK(Render(r) ==
        "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 32\r\nConnection: close\r\n\r\nRequest Header Fields Too Large\n");
  CHECK(r.body_size() == 32);
  CHECK(r.body_bytes_sent() == 32);
}

TEST_CASE("LocalReply: an exchange's reply carries its request id, and keep-alive omits Connection") {
  LocalReply r;
  r.status = 403;
  r.body = "forbidden\n";
  r.request_id = "abc-123";
  r.close = false;
  CHECK(Render(r) ==
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n"
        "X-Request-Id: abc-123\r\n\r\nforbidden\n");
}

TEST_CASE("LocalReply: a response to HEAD announces the body's length but carries none") {
  LocalReply r;
  r.status = 502;
  r.head_request = true;
  const std::string out = Render(r);
  CHECK(out.find("Content-Length: 12\r\n") != std::string::npos);
  CHECK(out.substr(out.size() - 4) == "\r\n\r\n");
  CHECK(r.body_bytes_sent() == 0);
}

TEST_CASE("LocalReply: an empty body is empty, not the reason phrase") {
  std::string empty;
  LocalReply r;
  r.status = 204;
  r.body = empty;
  CHECK(r.body_size() == 0);
  CHECK(Render(r).find("Content-Length: 0\r\n") != std::string::npos);
}

TEST_CASE("LocalReply: a filter's reply with its own content type and header lines") {
  LocalReply r;
  r.status = 302;
  r.body = "Found\n";
  r.content_type = "application/json";
  r.extra_headers = "Location: /login?return_to=/x\r\nCache-Control: no-store\r\n";
  r.close = false;
  CHECK(Render(r) ==
        "HTTP/1.1 302 Found\r\nContent-Type: application/json\r\nContent-Length: 6\r\n"
        "Location: /login?return_to=/x\r\nCache-Control: no-store\r\n\r\nFound\n");
  r.status = 429;
  r.content_type = {};
  r.extra_headers = "Retry-After: 3\r\n";
  r.body = {};
  CHECK(Render(r) ==
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 18\r\n"
        "Retry-After: 3\r\n\r\nToo Many Requests\n");
}
