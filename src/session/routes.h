// Access rules at the edge (docs/HTTP.md, Access rules): which requests need
// a session, or certain session keys, before they may reach the backend, and
// what a refused client gets (401, or a redirect to a login page carrying a
// safe return_to).
//
// Rules are matched against the match key of the normalised path
// (base/path_normalize.h), in the order they are written; the first rule
// whose path and methods apply decides, and a request no rule applies to
// passes. Pure and immutable after Build: workers share one RouteTable.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/policy_config.h"
#include "http/exchange_filter.h"

namespace sessiond {

// One path of a rule (or of csrf.exempt, rate_limits[].paths), compared with
// match keys segment by segment, ignoring ASCII case:
//   prefix "/admin" (or "/admin/"): "/admin", "/admin/", "/admin/x", never
//     "/administrator"; prefix "/" matches every path;
//   exact "/login" (or "/login/"): "/login" and "/login/" only (backends
//     that ignore a trailing slash serve both).
class PathPattern {
 public:
  // `path` is a rule path as the configuration holds it (IsCanonicalRulePath).
  PathPattern(std::string_view path, bool exact);
  bool Matches(std::string_view match_key) const;

 private:
  std::string path_;  // lower-cased, without a trailing '/' unless it is "/"
  bool exact_;
};

// True when any of `patterns` (prefixes) matches.
bool AnyMatches(const std::vector<PathPattern>& patterns, std::string_view match_key);

struct Route {
  PathPattern pattern;
  std::vector<std::string> methods;  // empty: every method
  RouteRequire require = RouteRequire::kSession;
  std::vector<std::string> keys;     // RouteRequire::kKeys
  std::string redirect;              // empty: 401
  size_t index = 0;                  // its place in routes:, for logs
};

class RouteTable {
 public:
  RouteTable() = default;
  // Fails (Invalid) on a rule path that is not in normalised form, which
  // the configuration has already refused.
  static Result<RouteTable> Build(const std::vector<RouteRule>& rules);

  // The first rule for `method` and the path's match key; null when none.
  const Route* Match(std::string_view method, std::string_view match_key) const;
  bool empty() const { return routes_.empty(); }

 private:
  // What Match reads for every rule, kept contiguous: the rule's pattern
  // path (as PathPattern keeps it) at paths_[offset, offset + size).
  struct Entry {
    uint32_t offset = 0;
    uint32_t size = 0;
    bool exact = false;
    bool any_method = true;
  };
  std::vector<Entry> entries_;
  std::string paths_;
  std::vector<Route> routes_;
};

// Whether a request passes `route`: require none always; session when the
// request has a session (status active); keys when, moreover, the session's
// data (its X-Session-Data JSON) holds every key at the top level.
bool SatisfiesRoute(const Route& route, bool has_session, std::string_view session_json);

// True when an Accept header value names application/json, or any */*+json
// type, with a q-value above 0. A missing Accept is not JSON.
bool AcceptsJson(std::string_view accept);

// What return_to may carry: `target` when it is a relative reference to a
// path on this host; "/" for anything a browser could read as another host
// or a scheme ("//x", "/\x", "http:", control bytes, and their
// percent-encoded spellings), or that does not start with "/".
std::string_view SafeReturnTo(std::string_view target);

// Appends `value` percent-encoded for a query component: every byte but
// unreserved ones and '/' becomes %XX.
void AppendQueryEncoded(std::string* out, std::string_view value);

// The answer to a request `route` refused: 401 with a short text body (a
// JSON one when `wants_json`), or a 302 to the rule's redirect URL with
// return_to=SafeReturnTo(target) added to its query. Never cached.
FilterResult DenyRoute(const Route& route, std::string_view target, bool wants_json);

}  // namespace sessiond
