// HeadParser: every parsing rule (docs/HTTP.md, "Parsing") in request and
// response form, the early answers, resumption at every split point, views
// after the caller's bytes moved, and the work a trickled head costs.
#include "http/head_parser.h"

#include <doctest/doctest.h>

#include "new_counter.h"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

using namespace sessiond;


namespace {

using State = HeadParser::State;

constexpr size_t kMaxHead = 16384;
constexpr uint64_t kMaxBody = 1 << 20;

// A parse that owns the bytes its head's views point into.
struct Parsed {
  std::string bytes;
  HeadParser parser;
  State state = State::kIncomplete;
  int status() const { return state == State::kError ? parser.error_status() : state == State::kDone ? 0 : -1; }
};

struct ParsedRequest : Parsed {
  RequestHead head;
};

struct ParsedResponse : Parsed {
  ResponseHead head;
};

std::unique_ptr<ParsedRequest> Req(std::string raw, uint64_t max_body = kMaxBody, size_t max_head = kMaxHead) {
  auto p = std::make_unique<ParsedRequest>();
  p->bytes = std::move(raw);
  p->parser.StartRequest(max_head, max_body);
  p->state = p->parser.Parse(p->bytes.data(), p->bytes.size(), &p->head);
  if (p->state == State::kError) {
    CHECK(p->parser.error() != nullptr);
    CHECK(*p->parser.error() != '\0');
  }
  return p;
}

std::unique_ptr<ParsedResponse> Resp(std::string raw, bool head_request = false, size_t max_head = kMaxHead) {
  auto p = std::make_unique<ParsedResponse>();
  p->bytes = std::move(raw);
  p->parser.StartResponse(max_head, head_request);
  p->state = p->parser.Parse(p->bytes.data(), p->bytes.size(), &p->head);
  if (p->state == State::kError) CHECK(*p->parser.error() != '\0');
  return p;
}

// 0 for a complete head, -1 for an incomplete one, else the error status.
int ReqStatus(const std::string& raw, uint64_t max_body = kMaxBody, size_t max_head = kMaxHead) {
  return Req(raw, max_body, max_head)->status();
}
int RespStatus(const std::string& raw, bool head_request = false) { return Resp(raw, head_request)->status(); }

bool Inside(std::string_view v, const std::string& bytes) {
  return v.data() >= bytes.data() && v.data() + v.size() <= bytes.data() + bytes.size();
}

// Everything a parse produced, as owned strings, to compare two parses.
std::string Describe(State state, const HeadParser& parser, const RequestHead& h) {
  std::string s = std::to_string(static_cast<int>(state)) + "|" + std::to_string(parser.error_status()) + "|" +
                  parser.error() + "|" + std::to_string(parser.head_size()) + "|";
  if (state != State::kDone) return s;
  s += std::string(h.method) + "|" + std::string(h.target) + "|" + std::to_string(h.minor_version) + "|" +
       std::string(h.host) + "|" + std::to_string(static_cast<int>(h.framing)) + "|" +
       std::to_string(h.content_length) + "|" + std::to_string(h.keep_alive) + std::to_string(h.expect_continue) +
       std::to_string(h.is_head);
  for (const Header& f : h.headers.fields()) {
    s += "|" + std::string(f.name) + ":" + std::string(f.value) + "#" + std::to_string(static_cast<int>(f.id));
  }
  return s;
}

std::string Describe(State state, const HeadParser& parser, const ResponseHead& h) {
  std::string s = std::to_string(static_cast<int>(state)) + "|" + std::to_string(parser.error_status()) + "|" +
                  parser.error() + "|" + std::to_string(parser.head_size()) + "|";
  if (state != State::kDone) return s;
  s += std::to_string(h.status) + "|" + std::string(h.reason) + "|" + std::to_string(h.minor_version) + "|" +
       std::to_string(static_cast<int>(h.framing)) + "|" + std::to_string(h.content_length) + "|" +
       std::to_string(h.keep_alive);
  for (const Header& f : h.headers.fields()) {
    s += "|" + std::string(f.name) + ":" + std::string(f.value) + "#" + std::to_string(static_cast<int>(f.id));
  }
  return s;
}

void Start(HeadParser* p, RequestHead*) { p->StartRequest(4096, 1000); }
void Start(HeadParser* p, ResponseHead*) { p->StartResponse(4096, false); }

// One-shot versus every two-piece split, versus one byte at a time, each
// also with the bytes copied to a fresh buffer (the old one scribbled over)
// before every call: all must give the same result.
template <class Head>
void CheckEverySplit(const std::string& raw) {
  CAPTURE(raw);
  HeadParser once;
  Head once_head;
  Start(&once, &once_head);
  const State once_state = once.Parse(raw.data(), raw.size(), &once_head);
  const std::string want = Describe(once_state, once, once_head);

  for (size_t split = 0; split <= raw.size(); ++split) {
    CAPTURE(split);
    HeadParser parser;
    Head head;
    Start(&parser, &head);
    State s = parser.Parse(raw.data(), split, &head);
    if (s == State::kIncomplete) s = parser.Parse(raw.data(), raw.size(), &head);
    CHECK(Describe(s, parser, head) == want);
    // In place, a resumed scan reads each byte as often as a one-shot one.
    if (s == State::kDone) CHECK(parser.bytes_examined() == once.bytes_examined());
  }

  for (bool move : {false, true}) {
    CAPTURE(move);
    HeadParser parser;
    Head head;
    Start(&parser, &head);
    State s = State::kIncomplete;
    std::unique_ptr<std::string> buffer;
    for (size_t n = 0; n <= raw.size() && s == State::kIncomplete; ++n) {
      if (move || !buffer) {
        // Moving: a fresh buffer of exactly the bytes passed (ASan catches a
        // read past them).
        auto fresh = std::make_unique<std::string>(move ? raw.substr(0, n) : raw);
        if (buffer) buffer->assign(buffer->size(), '#');  // the old bytes are gone
        buffer = std::move(fresh);
      }
      s = parser.Parse(buffer->data(), n, &head);
    }
    CHECK(Describe(s, parser, head) == want);
    if (s == State::kDone) {
      for (const Header& f : head.headers.fields()) {
        CHECK((Inside(f.name, *buffer) || f.name == "Host"));  // an absolute-form authority's Host
        CHECK(Inside(f.value, *buffer));
      }
    }
  }
}

}  // namespace

// ---- requests: what a good head parses into -----------------------------------

TEST_CASE("head parser: a simple GET parses into method, target, host and headers in order") {
  auto p = Req("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nx-b:  two  \r\n\r\n");
  REQUIRE(p->status() == 0);
  const RequestHead& h = p->head;
  CHECK(h.method == "GET");
  CHECK(h.target == "/a?b=1");
  CHECK(h.host == "example.com");
  CHECK(h.minor_version == 1);
  CHECK(h.keep_alive);
  CHECK_FALSE(h.is_head);
  CHECK(h.framing == BodyFraming::kNone);
  CHECK(p->parser.head_size() == p->bytes.size());
  REQUIRE(h.headers.size() == 3);
  CHECK(h.headers.fields()[0].id == HeaderId::kHost);
  CHECK(h.headers.fields()[1].name == "X-A");
  CHECK(h.headers.fields()[2].value == "two");  // OWS trimmed both ends
  // Views into the caller's bytes, not copies.
  CHECK(Inside(h.method, p->bytes));
  CHECK(Inside(h.target, p->bytes));
  CHECK(Inside(h.host, p->bytes));
  for (const Header& f : h.headers.fields()) {
    CHECK(Inside(f.name, p->bytes));
    CHECK(Inside(f.value, p->bytes));
  }
}

TEST_CASE("head parser: the head ends at the blank line; body and pipelined bytes are left alone") {
  const std::string head = "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
  auto p = Req(head + "helloGET / HTTP/1.1\r\n\r\n");
  REQUIRE(p->status() == 0);
  CHECK(p->parser.head_size() == head.size());
  CHECK(p->head.framing == BodyFraming::kLength);
  CHECK(p->head.content_length == 5);
  // Later calls change nothing.
  CHECK(p->parser.Parse(p->bytes.data(), p->bytes.size(), &p->head) == State::kDone);
  CHECK(p->parser.head_size() == head.size());
}

TEST_CASE("head parser: empty values, tabs inside values and obs-text are kept") {
  auto p = Req("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Ws: \t \r\nX-Tab: a\tb\r\n"
               "X-Latin: caf\xe9 \xff\r\nX-After: 1\r\n\r\n");
  REQUIRE(p->status() == 0);
  CHECK(p->head.target == "/caf\xc3\xa9");
  CHECK(p->head.headers.Get("x-empty")->empty());
  CHECK(p->head.headers.Get("x-ws")->empty());
  CHECK(*p->head.headers.Get("x-tab") == "a\tb");
  CHECK(*p->head.headers.Get("x-latin") == "caf\xe9 \xff");
  CHECK(*p->head.headers.Get("x-after") == "1");
}

TEST_CASE("head parser: long values are read whole (the 16-byte fast path and its tail)") {
  for (size_t n : {0, 1, 15, 16, 17, 31, 32, 33, 300, 1000}) {
    CAPTURE(n);
    std::string value(n, 'v');
    if (n > 20) value[n / 2] = '\t';  // a tab inside a long value
    if (n > 40) value[n / 3] = '\x80';
    const std::string name = "X-Name-Longer-Than-Sixteen-Bytes-" + std::string(n % 20, 'n');
    auto p = Req("GET / HTTP/1.1\r\nHost: a\r\nCookie: " + value + "\r\n" + name + ": 1\r\n\r\n");
    REQUIRE(p->status() == 0);
    CHECK(*p->head.headers.Get("cookie") == value);
    CHECK(p->head.headers.fields()[2].name == name);
  }
  // A control byte at any position of a long value is found.
  for (size_t at = 0; at < 40; ++at) {
    CAPTURE(at);
    std::string value(40, 'v');
    value[at] = '\x01';
    CHECK(ReqStatus("GET / HTTP/1.1\r\nHost: a\r\nX: " + value + "\r\n\r\n") == 400);
    value[at] = '\x7f';
    CHECK(RespStatus("HTTP/1.1 200 OK\r\nX: " + value + "\r\n\r\n") == 502);
  }
}

TEST_CASE("head parser: every field name is classified as ClassifyHeader does") {
  const char* names[] = {"Host", "HOST", "host", "Hosts", "Hos", "Content-Length", "content-LENGTH", "Content-Lengt",
                         "Transfer-Encoding", "transfer-encodinG", "Connection", "Keep-Alive", "TE", "te", "Trailer",
                         "Upgrade", "Proxy-Connection", "Proxy-", "proxy-authorization", "Proxy", "Expect",
                         "Cookie", "Set-Cookie", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
                         "X-Request-Id", "Referer", "User-Agent", "X-Session-Data", "x-session-", "X-Session",
                         "X-Sessionx", "Xysession-a", "X-Request-Ie", "Accept", "Cache-Control", "Cookies",
                         "C", "Content-Length1", "X-Forwarded-Fox", "Upgrade-Insecure-Requests", "Referrer",
                         "User-Agent2", "ExpecT", "!#$%&'*+-.^`|~", "0", "Conn3ction", "C0nnection"};
  for (const char* name : names) {
    CAPTURE(name);
    const HeaderId id = ClassifyHeader(name);
    // A value each framing header accepts; Host only once.
    const char* value = id == HeaderId::kContentLength ? "0" : id == HeaderId::kTransferEncoding ? "chunked" : "v";
    auto q = Req(std::string("GET / HTTP/1.1\r\n") + (id == HeaderId::kHost ? "" : "Host: a\r\n") + name + ": " +
                 value + "\r\n\r\n");
    REQUIRE(q->status() == 0);
    const Header& f = q->head.headers.fields().back();
    CHECK(f.name == name);
    CHECK(f.id == id);
  }
  // Underscore separators classify as session headers in responses (the
  // request side drops such names).
  auto r = Resp("HTTP/1.1 200 OK\r\nX_Session_Set: {}\r\nX-Session_Destroy: true\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(r->status() == 0);
  CHECK(r->head.headers.fields()[0].id == HeaderId::kSessionAny);
  CHECK(r->head.headers.fields()[1].id == HeaderId::kSessionAny);
}

TEST_CASE("head parser: the header list keeps its capacity from one message to the next") {
  std::string raw = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 40; ++i) raw += "X-" + std::to_string(i) + ": v\r\n";
  raw += "\r\n";
  HeadParser parser;
  RequestHead head;
  parser.StartRequest(kMaxHead, kMaxBody);
  REQUIRE(parser.Parse(raw.data(), raw.size(), &head) == State::kDone);
  const size_t capacity = head.headers.fields().capacity();
  CHECK(capacity >= 41);
  const std::string small = "GET / HTTP/1.1\r\nHost: b\r\n\r\n";
  parser.StartRequest(kMaxHead, kMaxBody);
  REQUIRE(parser.Parse(small.data(), small.size(), &head) == State::kDone);
  CHECK(head.headers.size() == 1);  // the first Parse call cleared the old fields
  CHECK(head.host == "b");
  CHECK(head.headers.fields().capacity() == capacity);
}

TEST_CASE("head parser: no allocation per message once the head objects are warm") {
  std::string raw = "GET http://a.example/x?y=1 HTTP/1.1\r\nUser-Agent: t\r\nCookie: " + std::string(300, 'c') + "\r\n";
  for (int i = 0; i < 12; ++i) raw += "X-" + std::to_string(i) + ": value\r\n";
  raw += "\r\n";
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n";
  HeadParser parser;
  RequestHead request;
  ResponseHead resp;
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    long allocations = 0;
    State a, b;
    {
      testing::NewCounter counter;  // the first round sizes the objects
      parser.StartRequest(kMaxHead, kMaxBody);
      a = parser.Parse(raw.data(), raw.size(), &request);
      parser.StartResponse(kMaxHead, false);
      b = parser.Parse(response.data(), response.size(), &resp);
      allocations = counter.count();
    }
    REQUIRE(a == State::kDone);
    REQUIRE(b == State::kDone);
    CHECK(request.headers.size() == 15);
    CHECK(request.target == "/x?y=1");
    if (round > 0) CHECK(allocations == 0);
  }
  // The counter counts: a fresh head allocates its list.
  long fresh_allocations = 0;
  {
    testing::NewCounter counter;
    auto fresh = std::make_unique<RequestHead>();
    fresh_allocations = counter.count();
  }
  CHECK(fresh_allocations >= 2);
}

// ---- requests: methods, targets, versions -------------------------------------

TEST_CASE("head parser: methods are http-parser's set, case-sensitive; CONNECT is 405") {
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "PURGE", "COPY", "LOCK",
                        "MKCOL", "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND",
                        "ACL", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE",
                        "UNSUBSCRIBE", "MKCALENDAR", "LINK", "UNLINK", "SOURCE"}) {
    CAPTURE(m);
    auto p = Req(std::string(m) + " / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(p->status() == 0);
    CHECK(p->head.method == m);
    CHECK(p->head.is_head == (std::string(m) == "HEAD"));
  }
  for (const char* m : {"get", "Get", "FOO", "GETS", "PRI", "HEADX", "G(T", "", "CONNECTX"}) {
    CAPTURE(m);
    CHECK(ReqStatus(std::string(m) + " / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  }
  CHECK(ReqStatus("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n") == 405);
  // 405 as soon as the request line is complete.
  CHECK(ReqStatus("CONNECT a:443 HTTP/1.1\r\n") == 405);
  // The version is checked first.
  CHECK(ReqStatus("CONNECT a:443 HTTP/2.0\r\n") == 505);
}

TEST_CASE("head parser: request line syntax") {
  const char* bad[] = {
      "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",      // double space
      "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",      // space before the version
      "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",      // trailing space
      " GET / HTTP/1.1\r\nHost: a\r\n\r\n",      // leading space
      "GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n",     // tabs
      "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",    // space in the target
      "GET / HTTX/1.1\r\nHost: a\r\n\r\n",
      "GET / http/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.10\r\nHost: a\r\n\r\n",
      "GET / HTTP/01.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1x\r\nHost: a\r\n\r\n",
      "GET / HTTPS/1.1\r\nHost: a\r\n\r\n",
      "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",  // DEL in the target
  };
  for (const char* raw : bad) {
    CAPTURE(raw);
    CHECK(ReqStatus(raw) == 400);
  }
}

TEST_CASE("head parser: HTTP/1.0 and 1.1 only; other versions are 505") {
  auto p10 = Req("GET / HTTP/1.0\r\n\r\n");
  REQUIRE(p10->status() == 0);
  CHECK(p10->head.minor_version == 0);
  for (const char* v : {"HTTP/1.2", "HTTP/1.9", "HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/9.9"}) {
    CAPTURE(v);
    CHECK(ReqStatus(std::string("GET / ") + v + "\r\nHost: a\r\n\r\n") == 505);
    CHECK(ReqStatus(std::string("GET / ") + v + "\r") == 505);  // at once
  }
}

TEST_CASE("head parser: request-target forms") {
  auto opt = Req("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
  REQUIRE(opt->status() == 0);
  CHECK(opt->head.target == "*");
  for (const char* m : {"GET", "HEAD", "POST", "DELETE"}) {
    CHECK(ReqStatus(std::string(m) + " * HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  }
  CHECK(ReqStatus("OPTIONS *?x HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(ReqStatus("GET foo HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(ReqStatus("GET a.example:80 HTTP/1.1\r\nHost: a\r\n\r\n") == 400);  // authority-form
  CHECK(ReqStatus("GET ftp://a.example/ HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  // Refused as soon as the target ends.
  CHECK(ReqStatus("GET foo ") == 400);
}

TEST_CASE("head parser: absolute-form targets become origin-form with their authority as the only Host") {
  auto p = Req("GET http://other.example:8080/p?q=1 HTTP/1.1\r\nHost: ignored\r\nX-A: 1\r\n\r\n");
  REQUIRE(p->status() == 0);
  CHECK(p->head.target == "/p?q=1");
  CHECK(p->head.target.data() == p->head.rewritten_target.data());
  CHECK(p->head.host == "other.example:8080");
  CHECK(p->head.headers.Count(HeaderId::kHost) == 1);
  CHECK(*p->head.headers.Get("host") == "other.example:8080");
  CHECK(p->head.headers.fields().back().name == "Host");
  auto bare = Req("GET HTTP://h.example HTTP/1.1\r\n\r\n");  // no Host needed
  REQUIRE(bare->status() == 0);
  CHECK(bare->head.target == "/");
  auto query = Req("GET https://h.example?x=1 HTTP/1.0\r\n\r\n");
  REQUIRE(query->status() == 0);
  CHECK(query->head.target == "/?x=1");
  auto v6 = Req("GET http://[::1]:8080/x HTTP/1.1\r\n\r\n");
  REQUIRE(v6->status() == 0);
  CHECK(v6->head.host == "[::1]:8080");
  // A malformed Host is irrelevant once the authority replaces it.
  CHECK(ReqStatus("GET http://h.example/ HTTP/1.1\r\nHost: a b\r\n\r\n") == 0);
  // But two Hosts are still two Hosts.
  CHECK(ReqStatus("GET http://h.example/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400);
  for (const char* t : {"http://user@h/", "http://user:pass@h/", "http:///x", "http://", "http://h:/x",
                        "http://h:123456/", "http://h#f/", "http://a b/"}) {
    CAPTURE(t);
    CHECK(ReqStatus(std::string("GET ") + t + " HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  }
}

// ---- requests: Host ------------------------------------------------------------

TEST_CASE("head parser: Host rules") {
  CHECK(ReqStatus("GET / HTTP/1.1\r\n\r\n") == 400);                      // HTTP/1.1 needs Host
  CHECK(ReqStatus("GET / HTTP/1.0\r\n\r\n") == 0);                        // HTTP/1.0 does not
  CHECK(ReqStatus("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n") == 400);   // at once
  CHECK(ReqStatus("GET / HTTP/1.1\r\nHost: a\r\nHOST: a\r\n\r\n") == 400);
  CHECK(ReqStatus("GET / HTTP/1.1\r\nHost: a b\r\n") == 400);            // at once
  CHECK(ReqStatus("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n") == 400);
  CHECK(ReqStatus("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n") == 400);
  CHECK(ReqStatus("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n") == 400);
  auto empty = Req("GET / HTTP/1.1\r\nHost:\r\n\r\n");
  REQUIRE(empty->status() == 0);
  CHECK(empty->head.host.empty());
  auto tabs = Req("GET / HTTP/1.1\r\nHost:\ta.example:81\t\r\n\r\n");
  REQUIRE(tabs->status() == 0);
  CHECK(tabs->head.host == "a.example:81");
}

// ---- framing ---------------------------------------------------------------------

TEST_CASE("head parser: Content-Length and chunked framing") {
  auto a = Req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n");
  REQUIRE(a->status() == 0);
  CHECK(a->head.framing == BodyFraming::kLength);
  CHECK(a->head.content_length == 42);
  auto b = Req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
  REQUIRE(b->status() == 0);
  CHECK(b->head.framing == BodyFraming::kChunked);
  auto c = Req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(c->status() == 0);
  CHECK(c->head.framing == BodyFraming::kNone);
  auto d = Req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \t005 \r\nTransfer-Encoding_x: y\r\n\r\n");
  REQUIRE(d->status() == 0);
  CHECK(d->head.content_length == 5);
  auto e = Req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  chunked\t\r\n\r\n");
  REQUIRE(e->status() == 0);
  CHECK(e->head.framing == BodyFraming::kChunked);
}

TEST_CASE("head parser: request smuggling shapes are 400") {
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
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n",  // 19 digits
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n",
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
      "GET / HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX(A): 1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX-\xc3\xa9: 1\r\n\r\n",
  };
  for (const char* raw : cases) {
    CAPTURE(raw);
    CHECK(ReqStatus(raw) == 400);
  }
  CHECK(ReqStatus(std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a") + '\0' + "b\r\n\r\n") == 400);
}

TEST_CASE("head parser: a Content-Length above max_body_bytes is 413 once the head is complete") {
  CHECK(ReqStatus("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", 100) == 413);
  CHECK(ReqStatus("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n", 100) == 0);
  CHECK(ReqStatus("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n", 100) == 413);
  // Not before: a framing conflict later in the head is still a 400.
  CHECK(ReqStatus("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n", 100) == -1);
  CHECK(ReqStatus("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\nTransfer-Encoding: chunked\r\n\r\n", 100) ==
        400);
  // HEAD: the error answer carries no body.
  auto head = Req("HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", 100);
  CHECK(head->status() == 413);
  CHECK(head->parser.is_head_request());
}

TEST_CASE("head parser: header names with underscores are dropped from requests, as nginx does by default") {
  auto p = Req("POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\nTransfer_Encoding: chunked\r\n"
               "X_Session_Data: {}\r\nX-Ok: 1\r\nHo_st: evil\r\n\r\n");
  REQUIRE(p->status() == 0);
  CHECK(p->head.headers.size() == 2);
  CHECK_FALSE(p->head.headers.Get("content_length").has_value());
  CHECK(p->head.framing == BodyFraming::kNone);  // an underscore name never frames a body
  CHECK(p->head.host == "a");
  // ... but they are still validated.
  CHECK(ReqStatus("GET / HTTP/1.1\r\nHost: a\r\nX_A: \x01\r\n\r\n") == 400);
  // Responses keep them (they are checked by the session layer).
  auto r = Resp("HTTP/1.1 200 OK\r\nX_Y: 1\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(r->status() == 0);
  CHECK(r->head.headers.size() == 2);
}

// ---- keep-alive, Connection, Expect ----------------------------------------------

TEST_CASE("head parser: keep-alive follows the version and the Connection tokens") {
  CHECK(Req("GET / HTTP/1.1\r\nHost: a\r\n\r\n")->head.keep_alive);
  CHECK_FALSE(Req("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n")->head.keep_alive);
  CHECK_FALSE(Req("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n")->head.keep_alive);
  CHECK(Req("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n")->head.keep_alive);
  CHECK_FALSE(Req("GET / HTTP/1.0\r\n\r\n")->head.keep_alive);
  CHECK(Req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")->head.keep_alive);
  CHECK_FALSE(Req("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")->head.keep_alive);
}

TEST_CASE("head parser: Expect: 100-continue counts only for HTTP/1.1") {
  CHECK(Req("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")->head.expect_continue);
  CHECK_FALSE(Req("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")->head.expect_continue);
  CHECK_FALSE(Req("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n")->head.expect_continue);
}

// ---- leading empty lines, limits ----------------------------------------------------

TEST_CASE("head parser: at most four empty lines before a request line are skipped") {
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  for (int n = 0; n <= 4; ++n) {
    CAPTURE(n);
    std::string lines;
    for (int i = 0; i < n; ++i) lines += "\r\n";
    auto p = Req(lines + head);
    REQUIRE(p->status() == 0);
    CHECK(p->parser.head_size() == lines.size() + head.size());
    CHECK(p->head.method == "GET");
  }
  CHECK(ReqStatus("\r\n\r\n\r\n\r\n\r\n" + head) == 400);
  CHECK(ReqStatus("\r\n\r\n\r\n\r\n\r") == 400);  // at once
  CHECK(ReqStatus("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(ReqStatus("\r\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);
  CHECK(ReqStatus("\r\n\r\n") == -1);  // nothing but empty lines: wait
  // Responses have none.
  CHECK(RespStatus("\r\nHTTP/1.1 200 OK\r\n\r\n") == 502);
}

TEST_CASE("head parser: max_header_bytes counts from the request line; one byte more is 431 at once") {
  const std::string base = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: \r\n\r\n";
  const size_t limit = 200;
  const std::string exact = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + std::string(limit - base.size(), 'p') + "\r\n\r\n";
  REQUIRE(exact.size() == limit);
  CHECK(ReqStatus(exact, kMaxBody, limit) == 0);
  CHECK(ReqStatus("\r\n\r\n" + exact, kMaxBody, limit) == 0);  // empty lines do not count
  const std::string over = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + std::string(limit - base.size() + 1, 'p') + "\r\n\r\n";
  CHECK(ReqStatus(over, kMaxBody, limit) == 431);
  // The first `limit` bytes without the end of the head are enough to know.
  CHECK(ReqStatus(over.substr(0, limit), kMaxBody, limit) == 431);
  CHECK(ReqStatus(over.substr(0, limit - 1), kMaxBody, limit) == -1);
  CHECK(ReqStatus("G" + std::string(300, 'G'), kMaxBody, limit) == 431);  // a long method
  CHECK(ReqStatus("GET /" + std::string(300, 'a'), kMaxBody, limit) == 431);
  // A byte error inside the limit is still a 400.
  CHECK(ReqStatus("GET /\x01" + std::string(300, 'a'), kMaxBody, limit) == 400);
  // Responses: 502.
  CHECK(Resp("HTTP/1.1 200 OK\r\nX: " + std::string(300, 'x') + "\r\n\r\n", false, limit)->status() == 502);
  CHECK(Resp("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'x') + "\r\n\r\n", false, limit)->status() == 0);
}

// ---- early answers ---------------------------------------------------------------------

TEST_CASE("head parser: the first byte that rules the head out is answered, without waiting for more") {
  // Each of these is incomplete: only the last byte makes it impossible.
  const std::string nul(1, '\0');
  const char* requests[] = {"G\x01", "GET /\x01", "GET / H\x01", "GET / HTTP/1.1\r\x01", "GET / HTTP/1.1\r\nH\x01",
                            "GET / HTTP/1.1\r\nHost: a\x01", "GET / HTTP/1.1\r\nHost: a\r\n\n",
                            "GET / HTTP/1.1\r\nHost: a\n", "GET / HTTP/1.1\n", "GET /\r", "GET /\n",
                            "GET / HTTP/1.1\r\nHost: a\r\n ", "GET / HTTP/1.1\r\nX :", "GET / HTTP/1.1\r\nX\t",
                            "GET / HTTP/1.1\r\nHost: a\r\n\r\x01", "GET / HTTP/1.1\r\nX: 1\r\nX: 2\rY"};
  for (const char* raw : requests) {
    CAPTURE(raw);
    CHECK(ReqStatus(raw) == 400);
  }
  for (const std::string& raw : {"GE" + nul, "GET /a" + nul, "GET / HTTP/1.1" + nul, "GET / HTTP/1.1\r\nX" + nul,
                                 "GET / HTTP/1.1\r\nX: " + nul}) {
    CAPTURE(raw);
    CHECK(ReqStatus(raw) == 400);
  }
  const char* responses[] = {"HTTP/1.1 200 OK\n", "HTTP/1.1 200 OK\r\nX: 1\n", "HTTP/1.1 200 OK\r\n\n",
                             "HTTP/1.1 2x", "HTTX", "HTTP/1.1 200 O\x01", "HTTP/1.1 200 OK\r\n X",
                             "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n"};
  for (const char* raw : responses) {
    CAPTURE(raw);
    CHECK(RespStatus(raw) == 502);
  }
}

// ---- responses -----------------------------------------------------------------------------

TEST_CASE("head parser: response status line, framing, bodiless statuses and keep-alive") {
  auto a = Resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  REQUIRE(a->status() == 0);
  CHECK(a->head.status == 200);
  CHECK(a->head.reason == "OK");
  CHECK(a->head.framing == BodyFraming::kLength);
  CHECK(a->head.keep_alive);
  CHECK(Inside(a->head.reason, a->bytes));
  auto b = Resp("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  REQUIRE(b->status() == 0);
  CHECK(b->head.framing == BodyFraming::kChunked);
  CHECK(b->head.minor_version == 0);
  CHECK_FALSE(b->head.keep_alive);
  auto c = Resp("HTTP/1.1 200 OK\r\n\r\n");
  REQUIRE(c->status() == 0);
  CHECK(c->head.framing == BodyFraming::kUntilClose);
  CHECK_FALSE(c->head.keep_alive);
  auto d = Resp("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n");
  REQUIRE(d->status() == 0);
  CHECK(d->head.framing == BodyFraming::kNone);
  CHECK(d->head.content_length == 50);
  auto e = Resp("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", /*head_request=*/true);
  REQUIRE(e->status() == 0);
  CHECK(e->head.framing == BodyFraming::kNone);
  auto f = Resp("HTTP/1.1 204\r\n\r\n");  // no reason phrase
  REQUIRE(f->status() == 0);
  CHECK(f->head.status == 204);
  CHECK(f->head.reason.empty());
  auto g = Resp("HTTP/1.1 100 Continue\r\n\r\n");
  REQUIRE(g->status() == 0);
  CHECK(g->head.framing == BodyFraming::kNone);
  auto h = Resp("HTTP/1.1 200  Spaced  Out \r\nContent-Length: 0\r\n\r\n");
  REQUIRE(h->status() == 0);
  CHECK(h->head.reason == " Spaced  Out ");
  CHECK(h->head.framing == BodyFraming::kNone);
  CHECK(h->head.keep_alive);
  auto i = Resp("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n");
  REQUIRE(i->status() == 0);
  CHECK(i->head.keep_alive);
  auto j = Resp("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n");
  REQUIRE(j->status() == 0);
  CHECK_FALSE(j->head.keep_alive);
  auto k = Resp("HTTP/1.1 599 \r\n\r\n");
  REQUIRE(k->status() == 0);
  CHECK(k->head.reason.empty());
}

TEST_CASE("head parser: hostile response heads are 502") {
  const char* cases[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 099 Low\r\n\r\n",
      "HTTP/1.1 600 High\r\n\r\n",
      "HTTP/1.1 OK\r\n\r\n",
      "HTTP/1.1  200 OK\r\n\r\n",
      "garbage\r\n\r\n",
      "HTTP/1.1 200 OK\nX: 1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
      "HTTP/1.1 200 O\x01K\r\n\r\n",
      "HTTP/2 200 OK\r\n\r\n",
      "HTTP/2.0 200 OK\r\n\r\n",
      "HTTP/1.2 200 OK\r\n\r\n",
      "http/1.1 200 OK\r\n\r\n",
  };
  for (const char* raw : cases) {
    CAPTURE(raw);
    CHECK(RespStatus(raw) == 502);
  }
}

// ---- resumption -----------------------------------------------------------------------------

TEST_CASE("head parser: every split point gives the one-shot result, also when the bytes move") {
  const char* requests[] = {
      "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nx-b:  two  \r\nConnection: close\r\n\r\nBODY",
      "\r\n\r\nPOST /p HTTP/1.0\r\nContent-Length: 12\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n",
      "GET http://h.example:81/x?y HTTP/1.1\r\nHost: other\r\nX_Dropped: 1\r\nCookie: " "a=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; b=bbbbbbbbbbbbbbbbbbbbbb\tbbbbbbbb\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-Session-Data: {}\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
      "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\n\n",
      "GET /x\r\n\r\n",
      "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n",  // 413 (limit 1000)
      "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " "0123456789012345678901234567890123456789\r\n",  // incomplete
  };
  for (const char* raw : requests) CheckEverySplit<RequestHead>(raw);
  std::string big = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(5000, 'b') + "\r\n\r\n";  // 431 (4096)
  CheckEverySplit<RequestHead>(big);

  const char* responses[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=b\r\nX_Session_Set: {\"a\":1}\r\n\r\nhello",
      "HTTP/1.0 204\r\nConnection: keep-alive\r\n\r\n",
      "HTTP/1.1 200 Some reason phrase that is longer than sixteen bytes\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: 1\n\r\n",
      "HTTP/1.1 700 OK\r\n\r\n",
  };
  for (const char* raw : responses) CheckEverySplit<ResponseHead>(raw);
}

// A view must stay usable when the caller's buffer grew (and moved) between
// calls: the fields found before the move are shifted with the bytes.
TEST_CASE("head parser: views point into the latest bytes after the buffer moved") {
  const std::string raw = "GET /x HTTP/1.1\r\nHost: a.example\r\nX-One: 1\r\nX-Two: 2\r\n\r\n";
  HeadParser parser;
  RequestHead head;
  parser.StartRequest(kMaxHead, kMaxBody);
  std::vector<char> first(raw.begin(), raw.begin() + 44);  // up to inside X-Two
  REQUIRE(parser.Parse(first.data(), first.size(), &head) == State::kIncomplete);
  REQUIRE(head.headers.size() == 2);
  std::vector<char> second(raw.begin(), raw.end());
  std::fill(first.begin(), first.end(), '#');
  REQUIRE(parser.Parse(second.data(), second.size(), &head) == State::kDone);
  const std::string_view bytes(second.data(), second.size());
  auto inside = [&](std::string_view v) { return v.data() >= bytes.data() && v.data() + v.size() <= bytes.end(); };
  CHECK(head.host == "a.example");
  CHECK(head.target == "/x");
  REQUIRE(head.headers.size() == 3);
  CHECK(head.headers.fields()[0].name == "Host");
  CHECK(head.headers.fields()[1].value == "1");
  CHECK(head.headers.fields()[2].value == "2");
  for (const Header& f : head.headers.fields()) {
    CHECK(inside(f.name));
    CHECK(inside(f.value));
  }
  CHECK(inside(head.method));
  CHECK(inside(head.host));
}

// The work of a trickled head: counted in bytes examined, deterministic. A
// parser that restarted the scan on each call would examine about n^2/2
// bytes for an n-byte head trickled one byte per call.
TEST_CASE("head parser: a 16 KiB head trickled one byte per call costs at most twice the one-shot work") {
  std::string raw = "POST /upload?x=1 HTTP/1.1\r\nHost: upload.example\r\nContent-Length: 10\r\n";
  for (int i = 0; raw.size() < 16384 - 200; ++i) {
    raw += "X-Field-" + std::to_string(i) + ": " + std::string(static_cast<size_t>(20 + i % 90), 'v') + "\r\n";
  }
  raw += "Cookie: " + std::string(16384 - 2 - 10 - raw.size(), 'c') + "\r\n\r\n";
  REQUIRE(raw.size() == 16384);

  HeadParser once;
  RequestHead once_head;
  once.StartRequest(16384, kMaxBody);
  REQUIRE(once.Parse(raw.data(), raw.size(), &once_head) == State::kDone);
  const uint64_t one_shot = once.bytes_examined();
  CHECK(one_shot >= raw.size());  // every byte examined at least once

  // Byte by byte, the bytes in place.
  HeadParser trickle;
  RequestHead trickle_head;
  trickle.StartRequest(16384, kMaxBody);
  State s = State::kIncomplete;
  for (size_t n = 1; n <= raw.size() && s == State::kIncomplete; ++n) s = trickle.Parse(raw.data(), n, &trickle_head);
  REQUIRE(s == State::kDone);
  CHECK(trickle.bytes_examined() <= 2 * one_shot);
  CHECK(trickle_head.headers.size() == once_head.headers.size());

  // Byte by byte into a buffer that grows by doubling (and so moves): the
  // fields already found are shifted on each move, a few passes in all.
  HeadParser moving;
  RequestHead moving_head;
  moving.StartRequest(16384, kMaxBody);
  std::vector<char> buffer;
  s = State::kIncomplete;
  for (size_t n = 0; n < raw.size() && s == State::kIncomplete; ++n) {
    buffer.push_back(raw[n]);
    s = moving.Parse(buffer.data(), buffer.size(), &moving_head);
  }
  REQUIRE(s == State::kDone);
  CHECK(moving.bytes_examined() <= 2 * one_shot);
  CHECK(*moving_head.headers.Get("cookie") == *once_head.headers.Get("cookie"));

  // The measure would catch a restarting parser: parsing each prefix afresh
  // examines far more than twice the one-shot work (first 2000 bytes only).
  uint64_t restarting = 0;
  for (size_t n = 1; n <= 2000; ++n) {
    HeadParser fresh;
    RequestHead fresh_head;
    fresh.StartRequest(16384, kMaxBody);
    REQUIRE(fresh.Parse(raw.data(), n, &fresh_head) == State::kIncomplete);
    restarting += fresh.bytes_examined();
  }
  CHECK(restarting > 2 * one_shot);
}

TEST_CASE("head parser: misuse is an error, not a crash") {
  HeadParser never_started;
  RequestHead head;
  CHECK(never_started.Parse("GET / HTTP/1.1\r\n\r\n", 18, &head) == State::kError);
  HeadParser parser;
  parser.StartRequest(kMaxHead, kMaxBody);
  ResponseHead response;
  CHECK(parser.Parse("HTTP/1.1 200 OK\r\n\r\n", 19, &response) == State::kError);
  HeadParser shrinking;
  shrinking.StartRequest(kMaxHead, kMaxBody);
  CHECK(shrinking.Parse("GET / HT", 8, &head) == State::kIncomplete);
  CHECK(shrinking.Parse("GET / HT", 4, &head) == State::kError);
}
