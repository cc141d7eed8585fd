// The request policy keys (src/config/policy_config.*; docs/CONFIGURATION.md,
// routes; csrf; rate_limits; upstream_signature): defaults that change
// nothing, every value read, and FILE:LINE:COL errors.
#include "config/config.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace sessiond {
namespace {

const std::string kSecret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t";

std::string Minimal(const std::string& extra) {
  return "upstream: http://127.0.0.1:3000\nsecret_key: " + kSecret + "\n" + extra;
}

Result<std::shared_ptr<const Config>> Parse(const std::string& text) {
  return ParseConfig(text, "test.yaml", [](const std::string&) -> std::optional<std::string> { return "x"; });
}

std::string ErrorOf(const std::string& text) {
  auto r = Parse(text);
  return r.ok() ? "" : r.status().message();
}

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST_CASE("policy defaults: no routes, CSRF off, no rate limits, no signature, nothing normalised") {
  auto r = Parse(Minimal(""));
  REQUIRE(r.ok());
  const PolicyConfig& p = (*r)->policy;
  CHECK(p.routes.empty());
  CHECK_FALSE(p.csrf.enabled);
  CHECK(p.csrf.header == "X-CSRF-Token");
  CHECK(p.csrf.exempt.empty());
  CHECK(p.rate_limits.empty());
  CHECK(p.upstream_signature.key.empty());
  CHECK_FALSE(p.any());
  CHECK_FALSE(p.matches_paths());
  // Empty sections are their defaults too.
  auto empty = Parse(Minimal("routes: []\ncsrf: {}\nrate_limits: ~\nupstream_signature: ~\n"));
  REQUIRE(empty.ok());
  CHECK_FALSE((*empty)->policy.any());
}

TEST_CASE("routes: every field read, in order") {
  auto r = Parse(Minimal(
      "routes:\n"
      "  - path: /public\n"
      "    require: none\n"
      "  - path: /api/\n"
      "    match: exact\n"
      "    methods: [POST, DELETE]\n"
      "    require: session\n"
      "    on_denied: 401\n"
      "  - path: /admin\n"
      "    require: [user_id, role]\n"
      "    on_denied: {redirect: \"https://login.example/start?x=1\"}\n"
      "  - {path: /app, on_denied: {redirect: /login}}\n"));
  REQUIRE(r.ok());
  const std::vector<RouteRule>& routes = (*r)->policy.routes;
  REQUIRE(routes.size() == 4);
  CHECK(routes[0].path == "/public");
  CHECK(routes[0].require == RouteRequire::kNone);
  CHECK(routes[0].match == RouteMatch::kPrefix);
  CHECK(routes[1].match == RouteMatch::kExact);
  CHECK(routes[1].methods == std::vector<std::string>{"POST", "DELETE"});
  CHECK(routes[1].require == RouteRequire::kSession);
  CHECK(routes[1].redirect.empty());
  CHECK(routes[2].require == RouteRequire::kKeys);
  CHECK(routes[2].keys == std::vector<std::string>{"user_id", "role"});
  CHECK(routes[2].redirect == "https://login.example/start?x=1");
  CHECK(routes[3].require == RouteRequire::kSession);  // the default
  CHECK(routes[3].redirect == "/login");
  CHECK((*r)->policy.matches_paths());
}

TEST_CASE("routes: errors name the entry, the key and the position") {
  CHECK(ErrorOf(Minimal("routes:\n  - path: /a/../b\n")) ==
        "test.yaml:4:11: routes[0].path: expected a path in normalised form (docs/HTTP.md, Path normalisation): "
        "starting with /, no //, no . or .. segments, unreserved characters not percent-encoded; write it as /b "
        "(got \"/a/../b\")");
  CHECK(Contains(ErrorOf(Minimal("routes:\n  - path: /a%2Fb\n")), "sessiond refuses requests with this path"));
  CHECK(Contains(ErrorOf(Minimal("routes:\n  - path: /a?x=1\n")), "without a query"));
  CHECK(Contains(ErrorOf(Minimal("routes:\n  - path: /a;x\n")), "segment parameters"));
  CHECK(Contains(ErrorOf(Minimal("routes:\n  - require: none\n")), "test.yaml:4:5: routes[0].path is required"));
  CHECK(Contains(ErrorOf(Minimal("routes:\n  - path: /a\n    match: fuzzy\n")),
                 "test.yaml:5:12: routes[0].match: expected one of prefix | exact"));
  CHECK(Contains(ErrorOf(Minimal("routes:\n  - path: /a\n    methods: [get]\n")),
                 "test.yaml:5:15: routes[0].methods: expected a method name in capitals"));
  CHECK(Contains(ErrorOf(Minimal("routes:\n  - path: /a\n    require: admin\n")),
                 "test.yaml:5:14: routes[0].require: expected none, session, or a list of session keys"));
  CHECK(Contains(ErrorOf(Minimal("routes:\n  - path: /a\n    require: []\n")), "routes[0].require: an empty list"));
  CHECK(Contains(ErrorOf(Minimal("routes:\n  - path: /a\n    on_denied: 403\n")),
                 "routes[0].on_denied: expected 401 or a mapping {redirect: URL}"));
  for (const char* bad : {"//evil.example", "javascript:alert(1)", "http://", "https://user@evil.example/",
                          "/login#x", "/log in", "ftp://x.example/"}) {
    CAPTURE(bad);
    CHECK(Contains(ErrorOf(Minimal(std::string("routes:\n  - path: /a\n    on_denied: {redirect: \"") + bad + "\"}\n")),
                   "routes[0].on_denied.redirect: expected a path on this host"));
  }
  CHECK(Contains(ErrorOf(Minimal("routes:\n  - path: /a\n    on_denied: {to: /x}\n")),
                 "unknown key 'routes[0].on_denied.to'"));
  CHECK(Contains(ErrorOf(Minimal("routes:\n  - path: /a\n    requires: session\n")),
                 "unknown key 'routes[0].requires' (did you mean 'require'?)"));
  CHECK(Contains(ErrorOf(Minimal("routes:\n  - /admin\n")),
                 "test.yaml:4:5: routes[0]: expected a mapping of keys, not a single value"));
  CHECK(Contains(ErrorOf(Minimal("routes: /admin\n")), "test.yaml:3:9: routes: expected a list, not a single value"));
  // Every error of the list in one run.
  const std::string two = ErrorOf(Minimal("routes:\n  - path: x\n  - path: /b\n    match: no\n"));
  CHECK(Contains(two, "routes[0].path"));
  CHECK(Contains(two, "routes[1].match"));
}

TEST_CASE("csrf: keys, defaults and errors") {
  auto r = Parse(Minimal("csrf:\n  enabled: true\n  header: X-Token\n  exempt: [/hooks, /api/public]\n"));
  REQUIRE(r.ok());
  const CsrfConfig& c = (*r)->policy.csrf;
  CHECK(c.enabled);
  CHECK(c.header == "X-Token");
  CHECK(c.exempt == std::vector<std::string>{"/hooks", "/api/public"});
  CHECK((*r)->policy.matches_paths());
  for (const char* bad : {"X-Session-Token", "X_CSRF", "Cookie", "origin", "X CSRF", ""}) {
    CAPTURE(bad);
    CHECK(Contains(ErrorOf(Minimal(std::string("csrf:\n  header: \"") + bad + "\"\n")), "csrf.header: expected"));
  }
  CHECK(Contains(ErrorOf(Minimal("csrf:\n  exempt: [hooks]\n")), "test.yaml:4:12: csrf.exempt[0]: expected a path"));
  CHECK(Contains(ErrorOf(Minimal("csrf:\n  enable: true\n")), "unknown key 'csrf.enable' (did you mean 'enabled'?)"));
}

TEST_CASE("rate_limits: rates, bursts, paths and errors") {
  auto r = Parse(Minimal(
      "rate_limits:\n"
      "  - {key: session, rate: 100/1s}\n"
      "  - {key: client_address, rate: 1000/1m, burst: 50, paths: [/login]}\n"
      "  - {key: client_address, rate: 20/s}\n"
      "  - {key: session, rate: 5/1h30m}\n"));
  REQUIRE(r.ok());
  const std::vector<RateLimitRule>& limits = (*r)->policy.rate_limits;
  REQUIRE(limits.size() == 4);
  CHECK(limits[0].key == RateLimitKey::kSession);
  CHECK(limits[0].count == 100);
  CHECK(limits[0].period == std::chrono::seconds(1));
  CHECK(limits[0].burst == 100);  // defaults to the count
  CHECK(limits[1].key == RateLimitKey::kClientAddress);
  CHECK(limits[1].period == std::chrono::minutes(1));
  CHECK(limits[1].burst == 50);
  CHECK(limits[1].paths == std::vector<std::string>{"/login"});
  CHECK(limits[2].period == std::chrono::seconds(1));
  CHECK(limits[3].period == std::chrono::minutes(90));
  CHECK((*r)->policy.matches_paths());
  for (const char* bad : {"100", "0/1s", "100/0s", "x/1s", "100/1", "100/1y", "-1/1s", "1000000001/1s"}) {
    CAPTURE(bad);
    CHECK(Contains(ErrorOf(Minimal(std::string("rate_limits:\n  - {key: session, rate: \"") + bad + "\"}\n")),
                   "rate_limits[0].rate: expected COUNT/DURATION"));
  }
  CHECK(Contains(ErrorOf(Minimal("rate_limits:\n  - {rate: 1/1s}\n")), "rate_limits[0].key is required"));
  CHECK(Contains(ErrorOf(Minimal("rate_limits:\n  - {key: session}\n")), "rate_limits[0].rate is required"));
  CHECK(Contains(ErrorOf(Minimal("rate_limits:\n  - {key: user, rate: 1/1s}\n")),
                 "rate_limits[0].key: expected one of session | subject | client_address"));
  CHECK(ErrorOf(Minimal("rate_limits:\n  - {key: subject, rate: 1/1s}\n")) ==
        "test.yaml:4:11: rate_limits[0].key: subject needs session.subject_key (with a store manager), which names "
        "the session key that holds the user; or use session or client_address");
  auto subject = Parse(Minimal("session: {manager: memory, subject_key: user_id}\n"
                               "rate_limits:\n  - {key: subject, rate: 10/1m}\n"));
  REQUIRE(subject.ok());
  CHECK((*subject)->policy.rate_limits[0].key == RateLimitKey::kSubject);
  CHECK(Contains(ErrorOf(Minimal("rate_limits:\n  - {key: session, rate: 1/1s, burst: 0}\n")),
                 "rate_limits[0].burst: expected an integer from 1"));
}

TEST_CASE("upstream_signature: key or key_file, at least 32 bytes, never quoted") {
  const std::string key(40, 'k');
  auto r = Parse(Minimal("upstream_signature:\n  key: " + key + "\n"));
  REQUIRE(r.ok());
  CHECK((*r)->policy.upstream_signature.key == key);
  CHECK((*r)->policy.any());
  CHECK_FALSE((*r)->policy.matches_paths());

  const std::string short_key = "tooshort-but-secret";
  const std::string err = ErrorOf(Minimal("upstream_signature:\n  key: " + short_key + "\n"));
  CHECK(Contains(err, "test.yaml:4:8: upstream_signature.key: must be at least 32 bytes"));
  CHECK_FALSE(Contains(err, short_key));

  char path[] = "/tmp/sessiond-sigkey-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  const std::string file_key = std::string(36, 'f') + "\n";
  REQUIRE(write(fd, file_key.data(), file_key.size()) == static_cast<ssize_t>(file_key.size()));
  close(fd);
  auto from_file = Parse(Minimal(std::string("upstream_signature:\n  key_file: ") + path + "\n"));
  REQUIRE(from_file.ok());
  CHECK((*from_file)->policy.upstream_signature.key == std::string(36, 'f'));  // newline dropped
  CHECK((*from_file)->policy.upstream_signature.key_file == path);
  CHECK(Contains(ErrorOf(Minimal(std::string("upstream_signature:\n  key_file: ") + path + "\n  key: " + key + "\n")),
                 "key and key_file are both set"));
  unlink(path);
  CHECK(Contains(ErrorOf(Minimal(std::string("upstream_signature:\n  key_file: ") + path + "\n")),
                 "upstream_signature.key_file: cannot read"));
}

TEST_CASE("DescribeConfig shows the policy without the signature key") {
  const std::string key(40, 'k');
  auto r = Parse(Minimal("routes:\n  - {path: /admin, require: [admin]}\ncsrf: {enabled: true}\n"
                         "rate_limits:\n  - {key: session, rate: 10/1s}\nupstream_signature:\n  key: " + key + "\n"));
  REQUIRE(r.ok());
  const std::string text = DescribeConfig(**r);
  CHECK(Contains(text, "prefix /admin require [admin], on_denied 401"));
  CHECK(Contains(text, "enabled, header X-CSRF-Token"));
  CHECK(Contains(text, "session 10/1s burst 10"));
  CHECK(Contains(text, "(set, 40 bytes)"));
  CHECK_FALSE(Contains(text, key));
}

}  // namespace
}  // namespace sessiond
