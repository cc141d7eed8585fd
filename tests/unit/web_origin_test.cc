// Web origins (src/base/web_origin.h): the same-origin rule for upgrades
// (docs/HTTP.md, Upgrades and WebSockets).
#include "base/web_origin.h"

#include <doctest/doctest.h>

using namespace sessiond;

namespace {

WebOrigin O(const char* text) {
  std::optional<WebOrigin> o = ParseWebOrigin(text);
  INFO(text);
  REQUIRE(o.has_value());
  return *o;
}

}  // namespace

TEST_CASE("origins parse as browsers send them") {
  CHECK(O("https://app.example").port == 443);
  CHECK(O("http://app.example").port == 80);
  CHECK(O("http://app.example:8080").port == 8080);
  CHECK(O("http://[::1]:8080").bracketed);
  CHECK(O("http://[::1]:8080").host == "::1");
  CHECK(O("chrome-extension://abcdef").port == 0);
  for (const char* bad : {"", "null", "app.example", "http://", "http://app.example/", "http://app.example/path",
                          "http://user@app.example", "http://app.example:0", "http://app.example:65536",
                          "http://app.example:123456", "http://[::1", "http://[zz]", "1http://a", "http://a b",
                          "http://a:"}) {
    INFO(bad);
    CHECK_FALSE(ParseWebOrigin(bad).has_value());
  }
}

TEST_CASE("an origin matches its own Host, default ports included") {
  CHECK(O("http://app.example").MatchesHost("app.example"));
  CHECK(O("https://app.example").MatchesHost("app.example"));
  CHECK(O("HTTP://APP.example").MatchesHost("app.EXAMPLE"));
  CHECK(O("http://app.example:80").MatchesHost("app.example"));
  CHECK(O("http://app.example").MatchesHost("app.example:80"));
  CHECK(O("http://app.example:8080").MatchesHost("app.example:8080"));
  CHECK(O("http://[::1]:8080").MatchesHost("[::1]:8080"));
  CHECK_FALSE(O("http://app.example:8080").MatchesHost("app.example"));
  CHECK_FALSE(O("http://app.example").MatchesHost("app.example:8080"));
  CHECK_FALSE(O("http://evil.example").MatchesHost("app.example"));
  CHECK_FALSE(O("http://app.example.evil").MatchesHost("app.example"));
  CHECK_FALSE(O("http://app.example").MatchesHost("app.example.evil"));
  CHECK_FALSE(O("http://[::1]:8080").MatchesHost("::1:8080"));
  CHECK_FALSE(O("http://app.example").MatchesHost(""));
}

TEST_CASE("canonical form and comparison") {
  CHECK(FormatWebOrigin(O("HTTPS://App.Example:443")) == "https://app.example");
  CHECK(FormatWebOrigin(O("http://[::1]:8080")) == "http://[::1]:8080");
  CHECK(O("https://app.example").SameAs(O("https://APP.example:443")));
  CHECK_FALSE(O("https://app.example").SameAs(O("http://app.example")));
  CHECK_FALSE(O("https://app.example").SameAs(O("https://app.example:8443")));
}
