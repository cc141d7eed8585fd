// Access rules (src/session/routes.h; docs/HTTP.md, Access rules): how rule
// paths match, which rule decides, what a session must hold, and what a
// refused client gets, return_to included.
#include "session/routes.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "base/path_normalize.h"

namespace sessiond {
namespace {

RouteRule Rule(std::string path, RouteRequire require = RouteRequire::kSession, RouteMatch match = RouteMatch::kPrefix) {
  RouteRule r;
  r.path = std::move(path);
  r.require = require;
  r.match = match;
  return r;
}

std::string KeyOf(std::string_view target) {
  NormalizedPath n;
  REQUIRE(NormalizeTarget(target, &n, nullptr) == PathResult::kOk);
  return n.match_key;
}

TEST_CASE("PathPattern: prefixes match whole segments, without case") {
  PathPattern admin("/admin", false);
  CHECK(admin.Matches("/admin"));
  CHECK(admin.Matches("/admin/"));
  CHECK(admin.Matches("/admin/users/1"));
  CHECK_FALSE(admin.Matches("/administrator"));
  CHECK_FALSE(admin.Matches("/adm"));
  CHECK_FALSE(admin.Matches("/"));
  CHECK_FALSE(admin.Matches("/x/admin"));
  // Written with a trailing slash: the same rule (it covers "/admin" too).
  PathPattern slash("/admin/", false);
  CHECK(slash.Matches("/admin"));
  CHECK(slash.Matches("/admin/x"));
  CHECK_FALSE(slash.Matches("/adminx"));
  // Rule paths compare lower-cased, against lower-cased keys.
  PathPattern upper("/Admin", false);
  CHECK(upper.Matches(KeyOf("/ADMIN/x")));
  PathPattern root("/", false);
  CHECK(root.Matches("/"));
  CHECK(root.Matches("/anything/at/all"));
}

TEST_CASE("PathPattern: exact rules match the path with or without one trailing slash") {
  PathPattern login("/login", true);
  CHECK(login.Matches("/login"));
  CHECK(login.Matches("/login/"));
  CHECK_FALSE(login.Matches("/login/x"));
  CHECK_FALSE(login.Matches("/login//"));
  CHECK_FALSE(login.Matches("/logins"));
  PathPattern root("/", true);
  CHECK(root.Matches("/"));
  CHECK_FALSE(root.Matches("/x"));
}

TEST_CASE("every bypass spelling of /admin reaches the /admin rule (or is refused)") {
  Result<RouteTable> table = RouteTable::Build({Rule("/public", RouteRequire::kNone), Rule("/admin")});
  REQUIRE(table.ok());
  const char* spellings[] = {"/admin", "/ADMIN", "/Admin/", "//admin", "///admin/x", "/admin;x", "/admin;x/y",
                             "/public/../admin", "/public/%2e%2e/admin", "/public/..;/admin", "/%61dmin",
                             "/./admin", "/x/../admin/", "/ADMIN;jsessionid=1", "/;x/admin", "/;/admin"};
  for (const char* s : spellings) {
    CAPTURE(s);
    const Route* r = table->Match("GET", KeyOf(s));
    REQUIRE(r != nullptr);
    CHECK(r->index == 1);
  }
  // These cannot be normalised one way: refused before any rule.
  for (const char* s : {"/admin%2fx", "/public%2f..%2fadmin", "/admin.", "/%c0%ae%c0%ae/admin", "/public\\..\\admin",
                        "/admin%00", "/public/%252e%252e/admin"}) {
    CAPTURE(s);
    NormalizedPath n;
    CHECK(NormalizeTarget(s, &n, nullptr) == PathResult::kRefused);
  }
  CHECK(table->Match("GET", KeyOf("/administrator")) == nullptr);
  CHECK(table->Match("GET", KeyOf("/public/x"))->index == 0);
}

TEST_CASE("RouteTable: the first matching rule wins; methods narrow a rule; GET covers HEAD") {
  RouteRule post = Rule("/api");
  post.methods = {"POST", "DELETE"};
  RouteRule get = Rule("/api", RouteRequire::kNone);
  get.methods = {"GET"};
  Result<RouteTable> table = RouteTable::Build({post, get, Rule("/", RouteRequire::kKeys)});
  REQUIRE(table.ok());
  CHECK(table->Match("POST", "/api/x")->index == 0);
  CHECK(table->Match("DELETE", "/api")->index == 0);
  CHECK(table->Match("GET", "/api/x")->index == 1);
  CHECK(table->Match("HEAD", "/api/x")->index == 1);
  CHECK(table->Match("PUT", "/api/x")->index == 2);  // falls through to the catch-all
  CHECK(table->Match("GET", "/other")->index == 2);
  Result<RouteTable> none = RouteTable::Build({});
  REQUIRE(none.ok());
  CHECK(none->empty());
  CHECK(none->Match("GET", "/") == nullptr);
}

TEST_CASE("RouteTable::Build refuses a rule path that is not in normal form") {
  CHECK_FALSE(RouteTable::Build({Rule("/a/../b")}).ok());
  CHECK_FALSE(RouteTable::Build({Rule("admin")}).ok());
}

TEST_CASE("SatisfiesRoute: none, session, and keys of the session data") {
  Result<RouteTable> table = RouteTable::Build({Rule("/n", RouteRequire::kNone), Rule("/s")});
  REQUIRE(table.ok());
  const Route* none = table->Match("GET", "/n");
  const Route* session = table->Match("GET", "/s");
  CHECK(SatisfiesRoute(*none, false, ""));
  CHECK_FALSE(SatisfiesRoute(*session, false, ""));
  CHECK(SatisfiesRoute(*session, true, ""));

  RouteRule keys_rule = Rule("/k", RouteRequire::kKeys);
  keys_rule.keys = {"user_id", "r\xc3\xb4le"};
  Result<RouteTable> keys_table = RouteTable::Build({keys_rule});
  REQUIRE(keys_table.ok());
  const Route* keys = keys_table->Match("GET", "/k");
  CHECK_FALSE(SatisfiesRoute(*keys, false, R"({"r\u00f4le":1,"user_id":2})"));
  CHECK(SatisfiesRoute(*keys, true, R"({"r\u00f4le":"admin","user_id":2})"));
  CHECK_FALSE(SatisfiesRoute(*keys, true, R"({"user_id":2})"));
  CHECK_FALSE(SatisfiesRoute(*keys, true, "{}"));
  CHECK_FALSE(SatisfiesRoute(*keys, true, ""));
  // A key nested deeper, or a key's name in a value, is not a top-level key.
  CHECK_FALSE(SatisfiesRoute(*keys, true, R"({"a":{"user_id":1,"r\u00f4le":2}})"));
  CHECK_FALSE(SatisfiesRoute(*keys, true, R"({"a":"user_id","b":"r\u00f4le"})"));
  CHECK_FALSE(SatisfiesRoute(*keys, true, R"({"user_id":2,"r\u00f4le")"));  // not session JSON
}

TEST_CASE("AcceptsJson") {
  CHECK(AcceptsJson("application/json"));
  CHECK(AcceptsJson("Application/JSON; charset=utf-8"));
  CHECK(AcceptsJson("text/html, application/json;q=0.9"));
  CHECK(AcceptsJson("application/problem+json"));
  CHECK_FALSE(AcceptsJson("application/json;q=0"));
  CHECK_FALSE(AcceptsJson("application/json; q=0.000"));
  CHECK(AcceptsJson("application/json;q=0.5"));
  CHECK_FALSE(AcceptsJson("*/*"));
  CHECK_FALSE(AcceptsJson("text/html,application/xhtml+xml"));
  CHECK_FALSE(AcceptsJson(""));
}

TEST_CASE("SafeReturnTo keeps paths on this host and replaces everything else by /") {
  for (const char* ok : {"/", "/app", "/app/x?y=1&z=%2F", "/a/b/../c", "/?next=//evil.example"}) {
    CAPTURE(ok);
    CHECK(SafeReturnTo(ok) == ok);
  }
  for (const char* bad : {"//evil.example", "//evil.example/x", "/\\evil.example", "\\\\evil.example",
                          "http://evil.example", "https:evil.example", "javascript:alert(1)", "evil.example",
                          "", "/%2Fevil.example", "/%2fevil.example", "/%5Cevil.example", "/%252F%252Fevil",
                          "%2F%2Fevil.example", "/\t/evil.example", "/%09/evil.example", "/%0d%0a/evil",
                          "/x\r\nLocation: //evil"}) {
    CAPTURE(bad);
    CHECK(SafeReturnTo(bad) == "/");
  }
}

TEST_CASE("DenyRoute: 401 in text or JSON, or a redirect with an encoded return_to") {
  RouteRule redirect = Rule("/app");
  redirect.redirect = "https://login.example/start";
  RouteRule redirect_q = Rule("/q");
  redirect_q.redirect = "/login?from=app";
  Result<RouteTable> table = RouteTable::Build({Rule("/api"), redirect, redirect_q});
  REQUIRE(table.ok());

  FilterResult text = DenyRoute(*table->Match("GET", "/api"), "/api/x", false);
  CHECK(text.status == 401);
  CHECK(text.body == "Unauthorized\n");
  CHECK(text.content_type.empty());
  CHECK(text.headers == "Cache-Control: no-store\r\n");
  FilterResult json = DenyRoute(*table->Match("GET", "/api"), "/api/x", true);
  CHECK(json.status == 401);
  CHECK(json.body == "{\"error\":\"unauthorized\"}\n");
  CHECK(json.content_type == "application/json");

  FilterResult to_login = DenyRoute(*table->Match("GET", "/app"), "/app/page?a=1&b=x y", false);
  CHECK(to_login.status == 302);
  CHECK(to_login.headers ==
        "Location: https://login.example/start?return_to=/app/page%3Fa%3D1%26b%3Dx%20y\r\n"
        "Cache-Control: no-store\r\n");
  FilterResult with_query = DenyRoute(*table->Match("GET", "/q"), "/q", false);
  CHECK(with_query.headers == "Location: /login?from=app&return_to=/q\r\nCache-Control: no-store\r\n");
  // A target that would leave the host becomes "/": no open redirect, and no
  // CR or LF can reach the Location line.
  FilterResult hostile = DenyRoute(*table->Match("GET", "/q"), "//evil.example/q", false);
  CHECK(hostile.headers == "Location: /login?from=app&return_to=/\r\nCache-Control: no-store\r\n");
}

TEST_CASE("AppendQueryEncoded keeps unreserved bytes and '/' only") {
  std::string out;
  AppendQueryEncoded(&out, "/a b?c=d&e#f%\r\n\xc3\xa9~._-");
  CHECK(out == "/a%20b%3Fc%3Dd%26e%23f%25%0D%0A%C3%A9~._-");
}

}  // namespace
}  // namespace sessiond
