// The forwarding headers and the client address (src/http/forwarding.h,
// docs/HTTP.md "Forwarding and trusted proxies").
#include "http/forwarding.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace sessiond;

namespace {

IpAddress A(const char* text) { return *ParseIpAddress(text); }

std::vector<IpNetwork> Networks(std::initializer_list<const char*> list) {
  std::vector<IpNetwork> out;
  std::string why;
  for (const char* n : list) out.push_back(*ParseIpNetwork(n, &why));
  return out;
}

std::vector<std::string> Values(const HeaderList& h, std::string_view name) {
  std::vector<std::string> out;
  for (const Header& f : h.fields()) {
    if (EqualsIgnoreCase(f.name, name)) out.emplace_back(f.value);
  }
  return out;
}

struct Run {
  HeaderList headers;
  ForwardingResult result;
  std::vector<IpNetwork> trusted;

  Run(const char* peer, std::initializer_list<const char*> trusted_list,
      std::initializer_list<std::pair<const char*, const char*>> sent, const char* listener_proto = "http") {
    trusted = Networks(trusted_list);
    headers.Append("Host", "app.example");
    for (const auto& [n, v] : sent) headers.Append(n, v);
    ForwardingInput in;
    in.peer = A(peer);
    in.trusted = &trusted;
    in.host = "app.example";
    in.port = 8080;
    in.proto = listener_proto;
    ApplyForwarding(&headers, in, &result);
  }
  std::vector<std::string> operator[](const char* name) const { return Values(headers, name); }
  std::string client() const { return std::string(result.client_address()); }
};

using V = std::vector<std::string>;

const std::initializer_list<std::pair<const char*, const char*>> kSpoof = {
    {"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-Proto", "https"}, {"X-Forwarded-Host", "shop.example"},
    {"X-Forwarded-Port", "443"},        {"Forwarded", "for=203.0.113.7"}};

}  // namespace

TEST_CASE("an untrusted peer's forwarding headers are all replaced") {
  for (auto trusted : {std::initializer_list<const char*>{}, {"10.0.0.0/8"}}) {
    Run r("127.0.0.1", trusted, kSpoof);
    CHECK(r["X-Forwarded-For"] == V{"127.0.0.1"});
    CHECK(r["X-Forwarded-Proto"] == V{"http"});
    CHECK(r["X-Forwarded-Host"] == V{"app.example"});
    CHECK(r["X-Forwarded-Port"] == V{"8080"});
    CHECK(r["Forwarded"].empty());
    CHECK(r["Host"] == V{"app.example"});  // untouched
    CHECK(r.client() == "127.0.0.1");
    CHECK_FALSE(r.result.peer_trusted);
    CHECK(r.result.malformed == nullptr);
  }
}

TEST_CASE("a trusted peer's forwarding headers are kept, X-Forwarded-For appended to") {
  Run r("10.0.0.2", {"10.0.0.0/8"}, kSpoof);
  CHECK(r.result.peer_trusted);
  CHECK(r["X-Forwarded-For"] == V{"203.0.113.7, 10.0.0.2"});
  CHECK(r["X-Forwarded-Proto"] == V{"https"});
  CHECK(r["X-Forwarded-Host"] == V{"shop.example"});
  CHECK(r["X-Forwarded-Port"] == V{"443"});
  CHECK(r["Forwarded"] == V{"for=203.0.113.7"});
  CHECK(r.client() == "203.0.113.7");
  Run none("10.0.0.2", {"10.0.0.0/8"}, {});
  CHECK(none["X-Forwarded-For"] == V{"10.0.0.2"});
  CHECK(none["X-Forwarded-Proto"] == V{"http"});
  CHECK(none["X-Forwarded-Port"] == V{"8080"});
  CHECK(none.client() == "10.0.0.2");
}

TEST_CASE("the client is the rightmost X-Forwarded-For entry that is not trusted") {
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, {{"X-Forwarded-For", "6.6.6.6, 198.51.100.1, 10.9.9.9"}}).client() ==
        "198.51.100.1");
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, {{"X-Forwarded-For", "10.1.1.1, 10.2.2.2"}}).client() == "10.1.1.1");
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, {{"X-Forwarded-For", "198.51.100.1"}, {"X-Forwarded-For", "10.2.2.2"}})
            .client() == "198.51.100.1");
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, {{"X-Forwarded-For", "[2001:db8::1]:443"}}).client() == "2001:db8::1");
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, {{"X-Forwarded-For", "198.51.100.1:5555"}}).client() == "198.51.100.1");
  CHECK(Run("::1", {"::1", "2001:db8::/32"}, {{"X-Forwarded-For", "2001:db9::1, 2001:db8::9"}}).client() ==
        "2001:db9::1");
}

TEST_CASE("malformed headers from a trusted peer count as absent") {
  struct Case {
    const char* name;
    const char* value;
    const char* header;
    V want;
  };
  const Case cases[] = {
      {"X-Forwarded-For", "nope", "X-Forwarded-For", {"10.0.0.2"}},
      {"X-Forwarded-For", "1.2.3.4,,5.6.7.8", "X-Forwarded-For", {"10.0.0.2"}},
      {"X-Forwarded-For", "1.2.3.4:99999", "X-Forwarded-For", {"10.0.0.2"}},
      {"X-Forwarded-For", "[::1", "X-Forwarded-For", {"10.0.0.2"}},
      {"X-Forwarded-Proto", "gopher", "X-Forwarded-Proto", {"http"}},
      {"X-Forwarded-Host", "a/b", "X-Forwarded-Host", {"app.example"}},
      {"X-Forwarded-Host", "", "X-Forwarded-Host", {"app.example"}},
      {"X-Forwarded-Port", "0", "X-Forwarded-Port", {"8080"}},
      {"X-Forwarded-Port", "65536", "X-Forwarded-Port", {"8080"}},
      {"Forwarded", "for=\"x", "Forwarded", {}},
      {"Forwarded", "=x", "Forwarded", {}},
      {"Forwarded", "for=1.2.3.4 proto=http", "Forwarded", {}},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.name) << ": " << std::string(c.value));
    Run r("10.0.0.2", {"10.0.0.0/8"}, {{c.name, c.value}});
    CHECK(r[c.header] == c.want);
    CHECK(r.client() == "10.0.0.2");
    REQUIRE(r.result.malformed != nullptr);
    CHECK(std::string(r.result.malformed) == c.name);
  }
  Run twice("10.0.0.2", {"10.0.0.0/8"}, {{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Proto", "https"}});
  CHECK(twice["X-Forwarded-Proto"] == V{"http"});
  std::string chain;
  for (size_t i = 0; i <= kMaxForwardedFor; ++i) chain += (i ? ", " : "") + std::string("192.0.2.1");
  Run long_chain("10.0.0.2", {"10.0.0.0/8"}, {{"X-Forwarded-For", chain.c_str()}});
  CHECK(long_chain["X-Forwarded-For"] == V{"10.0.0.2"});
}

TEST_CASE("Forwarded syntax (RFC 7239 section 4)") {
  for (const char* ok : {"for=192.0.2.60;proto=http;by=203.0.113.43", "for=\"[2001:db8:cafe::17]:4711\"",
                         "for=192.0.2.43, for=198.51.100.17", "for=a; proto=https", "for=\"a\\\"b\"", ";for=a;",
                         "for=_hidden, for=unknown"}) {
    INFO(ok);
    CHECK(IsValidForwarded(ok));
  }
  for (const char* bad : {"for", "for=", "=a", "for=a b", "for=\"unterminated", "for=a;;b",
                          "fo r=a", "for=\"\x01\""}) {
    INFO(bad);
    CHECK_FALSE(IsValidForwarded(bad));
  }
}

TEST_CASE("the client's scheme: the TLS listener's, a trusted peer's valid X-Forwarded-Proto, else unknown") {
  using P = std::initializer_list<std::pair<const char*, const char*>>;
  // A plain listener cannot tell from an untrusted peer, whatever it claims.
  CHECK(Run("127.0.0.1", {}, P{}).result.scheme == "");
  CHECK(Run("127.0.0.1", {}, P{{"X-Forwarded-Proto", "https"}}).result.scheme == "");
  CHECK(Run("127.0.0.1", {"10.0.0.0/8"}, P{{"X-Forwarded-Proto", "https"}}).result.scheme == "");
  // sessiond's own TLS listener knows.
  CHECK(Run("127.0.0.1", {}, P{{"X-Forwarded-Proto", "http"}}, "https").result.scheme == "https");
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, P{}, "https").result.scheme == "https");
  // A trusted peer says, in any case; a malformed claim counts as absent.
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, P{{"X-Forwarded-Proto", "HTTPS"}}).result.scheme == "https");
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, P{{"X-Forwarded-Proto", "http"}}).result.scheme == "http");
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, P{{"X-Forwarded-Proto", "http"}}, "https").result.scheme == "http");
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, P{}).result.scheme == "");
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, P{{"X-Forwarded-Proto", "ftp"}}).result.scheme == "");
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, P{{"X-Forwarded-Proto", "ftp"}}, "https").result.scheme == "https");
  CHECK(Run("10.0.0.2", {"10.0.0.0/8"}, P{{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Proto", "https"}})
            .result.scheme == "");
}
