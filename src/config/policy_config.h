// The request policy settings of sessiond.yaml: access rules (`routes`),
// CSRF protection (`csrf`), rate limits (`rate_limits`) and the signature of
// the session headers sent upstream (`upstream_signature`). Every default
// keeps the behaviour of a file without them (docs/CONFIGURATION.md, routes;
// csrf; rate_limits; upstream_signature). Part of Config (config.h), parsed
// by policy_config.cc with the rest of the file.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sessiond {

enum class RouteMatch { kPrefix, kExact };
enum class RouteRequire { kNone, kSession, kKeys };

// One entry of `routes:`.
struct RouteRule {
  // The path in normalised form (IsCanonicalRulePath), as written; a prefix
  // rule ending in "/" is the same rule as without it.
  std::string path;
  RouteMatch match = RouteMatch::kPrefix;
  // Methods the rule applies to; empty: every method. A rule naming GET
  // applies to HEAD too.
  std::vector<std::string> methods;
  RouteRequire require = RouteRequire::kSession;
  std::vector<std::string> keys;  // kKeys: top-level keys the session data must hold
  // on_denied: 401, or a redirect to this URL (an absolute http(s) URL or a
  // path) with a return_to parameter when non-empty.
  std::string redirect;
};

struct CsrfConfig {
  bool enabled = false;
  std::string header = "X-CSRF-Token";  // where clients send the token
  std::vector<std::string> exempt;      // path prefixes (normalised form) never checked
};

enum class RateLimitKey { kSession, kSubject, kClientAddress };
const char* ToString(RateLimitKey key);

// One entry of `rate_limits:`: a token bucket per key.
struct RateLimitRule {
  RateLimitKey key = RateLimitKey::kClientAddress;
  uint64_t count = 0;                          // tokens added per `period` ...
  std::chrono::milliseconds period{1000};      // ... ("100/1s": 100 per second)
  uint64_t burst = 0;                          // bucket size; defaults to `count`
  std::vector<std::string> paths;              // path prefixes; empty: every path
  std::string rate_text;                       // as written, for messages and the summary
  // The bucket lives in the Redis store, shared by every sessiond instance
  // on it (docs/HTTP.md, Shared rate limits); needs session.manager: redis.
  bool shared = false;
};

struct UpstreamSignatureConfig {
  // The HMAC-SHA256 key (raw bytes, at least 32); empty: no signature. Never
  // log, print or put in an error message.
  std::string key;
  std::string key_file;  // the path when key_file was used
};

struct PolicyConfig {
  std::vector<RouteRule> routes;
  CsrfConfig csrf;
  std::vector<RateLimitRule> rate_limits;
  UpstreamSignatureConfig upstream_signature;

  // Whether anything matches request paths, and so whether the path is
  // normalised (and the normalised target forwarded): routes, csrf.exempt
  // or a rate limit with paths (docs/HTTP.md, Path normalisation).
  bool matches_paths() const;
  bool any() const;
};

}  // namespace sessiond
