// Instruction counts of HeadParser, for callgrind (no timing: instructions
// are deterministic). Not part of `make test`.
//
//   g++ -std=c++17 -O2 -Isrc tests/perf/head_parser_callgrind.cc src/http/head_parser.cc
//       src/http/message.cc src/http/headers.cc -o build/head_parser_callgrind
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null
//       --toggle-collect='*Measured*' build/head_parser_callgrind request 1000
// (each command on one line).
//
// The Ir total divided by the count is the cost of one StartRequest or
// StartResponse plus the Parse calls of one head (the HeadParser and the
// head are reused, as a connection reuses them). Kinds: request (GET, 10
// headers, a 300-byte Cookie), response (150 bytes), big (a 16 KiB head in
// one call), trickle (the same head one byte per call).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "http/head_parser.h"

using namespace sessiond;

namespace {

std::string TypicalRequest() {
  return "GET /account/orders?page=2&sort=date HTTP/1.1\r\n"
         "Host: shop.example.com\r\n"
         "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0\r\n"
         "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
         "Accept-Language: en-US,en;q=0.5\r\n"
         "Accept-Encoding: gzip, deflate, br\r\n"
         "Referer: https://shop.example.com/account\r\n"
         "Connection: keep-alive\r\n"
         "Cookie: session_id=" + std::string(260, 'A') + "; theme=dark; lang=en-US\r\n"
         "Upgrade-Insecure-Requests: 1\r\n"
         "Cache-Control: max-age=0\r\n"
         "\r\n";
}

std::string TypicalResponse() {
  return "HTTP/1.1 200 OK\r\n"
         "Content-Type: text/html; charset=utf-8\r\n"
         "Content-Length: 5120\r\n"
         "Cache-Control: private, max-age=0\r\n"
         "Date: Tue, 02 Dec 2025 10:00:00 GMT\r\n"
         "\r\n";
}

std::string BigRequest() {
  std::string raw = "POST /upload?x=1 HTTP/1.1\r\nHost: upload.example\r\nContent-Length: 10\r\n";
  for (int i = 0; raw.size() < 16384 - 200; ++i) {
    raw += "X-Field-" + std::to_string(i) + ": " + std::string(static_cast<size_t>(20 + i % 90), 'v') + "\r\n";
  }
  raw += "Cookie: " + std::string(16384 - 2 - 10 - raw.size(), 'c') + "\r\n\r\n";
  return raw;
}

__attribute__((noinline)) HeadParser::State MeasuredRequest(HeadParser* p, const std::string& raw, RequestHead* h) {
  p->StartRequest(16384, 1 << 20);
  return p->Parse(raw.data(), raw.size(), h);
}

__attribute__((noinline)) HeadParser::State MeasuredResponse(HeadParser* p, const std::string& raw, ResponseHead* h) {
  p->StartResponse(16384, false);
  return p->Parse(raw.data(), raw.size(), h);
}

__attribute__((noinline)) HeadParser::State MeasuredTrickle(HeadParser* p, const std::string& raw, RequestHead* h) {
  p->StartRequest(16384, 1 << 20);
  HeadParser::State s = HeadParser::State::kIncomplete;
  for (size_t n = 1; n <= raw.size() && s == HeadParser::State::kIncomplete; ++n) s = p->Parse(raw.data(), n, h);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const char* kind = argc > 1 ? argv[1] : "request";
  const int count = argc > 2 ? atoi(argv[2]) : 1000;
  HeadParser parser;
  RequestHead request;
  ResponseHead response;
  const std::string req = TypicalRequest(), resp = TypicalResponse(), big = BigRequest();
  int done = 0;
  for (int i = 0; i < count; ++i) {
    HeadParser::State s = HeadParser::State::kError;
    if (strcmp(kind, "request") == 0) s = MeasuredRequest(&parser, req, &request);
    if (strcmp(kind, "response") == 0) s = MeasuredResponse(&parser, resp, &response);
    if (strcmp(kind, "big") == 0) s = MeasuredRequest(&parser, big, &request);
    if (strcmp(kind, "trickle") == 0) s = MeasuredTrickle(&parser, big, &request);
    done += s == HeadParser::State::kDone;
  }
  const size_t bytes = strcmp(kind, "response") == 0 ? resp.size() : strcmp(kind, "request") == 0 ? req.size() : big.size();
  printf("%s: %d of %d heads of %zu bytes parsed\n", kind, done, count, bytes);
  return done == count ? 0 : 1;
}
