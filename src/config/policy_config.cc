// The request policy keys of sessiond.yaml (docs/CONFIGURATION.md, routes;
// csrf; rate_limits; upstream_signature): their syntax, ranges and defaults.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/path_normalize.h"
#include "config/config.h"
#include "config/numbers.h"
#include "config/policy_reader.h"

namespace sessiond {

namespace {

using namespace config_internal;

constexpr size_t kMinSignatureKeyBytes = 32;
constexpr size_t kMaxKeyFileBytes = 64 << 10;
constexpr size_t kMaxRedirectBytes = 2048;
constexpr size_t kMaxMethodBytes = 32;
constexpr size_t kMaxSessionKeyBytes = 256;  // docs/HEADER-PROTOCOL.md, Instructions
constexpr uint64_t kMaxRateCount = 1000000000;

const EnumNames<RouteMatch> kRouteMatchNames = {{"prefix", RouteMatch::kPrefix}, {"exact", RouteMatch::kExact}};
const EnumNames<RateLimitKey> kRateLimitKeyNames = {{"session", RateLimitKey::kSession},
                                                    {"subject", RateLimitKey::kSubject},
                                                    {"client_address", RateLimitKey::kClientAddress}};

// A path written in a rule must already be in the form requests are
// normalised to (base/path_normalize.h), so what is written is what matches.
bool ReadRulePath(Section& sec, const ScalarValue& v, const std::string& what, std::string* out) {
  if (IsCanonicalRulePath(v.text)) {
    *out = v.text;
    return true;
  }
  std::string hint;
  NormalizedPath normal;
  const char* reason = "";
  const PathResult r = NormalizeTarget(v.text, &normal, &reason);
  if (v.text.find('?') != std::string::npos) {
    hint = "; a rule matches the path only, without a query";
  } else if (v.text.find(';') != std::string::npos) {
    hint = "; rules ignore segment parameters (;...), leave them out";
  } else if (r == PathResult::kRefused) {
    hint = std::string("; sessiond refuses requests with this path (") + reason + ")";
  } else if (r == PathResult::kOk && !v.expanded) {
    hint = "; write it as " + normal.target;
  }
  sec.Fail(v.mark, what +
                       ": expected a path in normalised form (docs/HTTP.md, Path normalisation): starting with /, "
                       "no //, no . or .. segments, unreserved characters not percent-encoded" +
                       hint + Section::Got(v));
  return false;
}

void ReadPathList(Section& sec, const char* key, std::vector<std::string>* out) {
  std::optional<std::vector<ScalarValue>> items = sec.StringList(key);
  if (!items) return;
  for (size_t i = 0; i < items->size(); ++i) {
    std::string path;
    if (ReadRulePath(sec, (*items)[i], sec.PathOf(key) + "[" + std::to_string(i) + "]", &path)) {
      out->push_back(std::move(path));
    }
  }
}

bool IsMethodName(const std::string& m) {
  if (m.empty() || m.size() > kMaxMethodBytes) return false;
  for (char c : m) {
    if (!((c >= 'A' && c <= 'Z') || c == '-')) return false;
  }
  return true;
}

bool IsSessionKeyName(const std::string& key) {
  if (key.empty() || key.size() > kMaxSessionKeyBytes) return false;
  for (char c : key) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

// on_denied: redirect: a path on this host, or an absolute http(s) URL with
// a host; printable ASCII without a fragment (sessiond appends the query
// parameter return_to).
bool IsRedirectUrl(const std::string& url) {
  if (url.empty() || url.size() > kMaxRedirectBytes) return false;
  for (char c : url) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '#' || c == '\\') return false;
  }
  if (url[0] == '/') return url.size() == 1 || url[1] != '/';
  size_t host = 0;
  if (url.compare(0, 7, "http://") == 0) {
    host = 7;
  } else if (url.compare(0, 8, "https://") == 0) {
    host = 8;
  } else {
    return false;
  }
  const size_t end = url.find_first_of("/?", host);
  const std::string authority = url.substr(host, end == std::string::npos ? std::string::npos : end - host);
  return !authority.empty() && authority.find('@') == std::string::npos;
}

void ReadRoute(Section& item, RouteRule* rule) {
  if (!item.Has("path")) {
    if (!item.Misspelled("path")) item.Fail(item.mark(), item.PathOf("path") + " is required");
  } else if (std::optional<ScalarValue> v = item.Required("path")) {
    ReadRulePath(item, *v, item.PathOf("path"), &rule->path);
  }
  item.Enum("match", kRouteMatchNames, false, &rule->match);

  if (std::optional<std::vector<ScalarValue>> methods = item.StringList("methods")) {
    for (const ScalarValue& m : *methods) {
      if (!IsMethodName(m.text)) {
        item.Fail(m.mark, item.PathOf("methods") + ": expected a method name in capitals, such as GET or POST" +
                              Section::Got(m));
        continue;
      }
      rule->methods.push_back(m.text);
    }
  }

  switch (item.KindOf("require")) {
    case Section::Kind::kAbsent:
      break;
    case Section::Kind::kList: {
      std::optional<std::vector<ScalarValue>> keys = item.StringList("require");
      if (!keys) break;
      if (keys->empty()) {
        item.Fail(item.ValueMark("require"),
                  item.PathOf("require") + ": an empty list; write none, session or at least one key");
        break;
      }
      rule->require = RouteRequire::kKeys;
      for (const ScalarValue& k : *keys) {
        if (!IsSessionKeyName(k.text)) {
          item.Fail(k.mark, item.PathOf("require") +
                                ": a session key is 1 to 256 bytes without control characters" + Section::Got(k));
          continue;
        }
        rule->keys.push_back(k.text);
      }
      break;
    }
    default: {
      std::optional<ScalarValue> v = item.Required("require");
      if (!v) break;
      if (v->text == "none") {
        rule->require = RouteRequire::kNone;
      } else if (v->text == "session") {
        rule->require = RouteRequire::kSession;
      } else {
        item.Fail(v->mark, item.PathOf("require") +
                               ": expected none, session, or a list of session keys such as [user_id]" +
                               Section::Got(*v));
      }
    }
  }

  if (item.KindOf("on_denied") == Section::Kind::kMapping) {
    Section denied = item.Child("on_denied", {SESSIOND_ON_DENIED_KEYS});
    if (!denied.Has("redirect")) {
      if (!denied.Misspelled("redirect")) {
        denied.Fail(denied.mark(), denied.PathOf("redirect") + " is required in a mapping (or write on_denied: 401)");
      }
    } else if (std::optional<ScalarValue> v = denied.Required("redirect")) {
      if (!IsRedirectUrl(v->text)) {
        denied.Fail(v->mark, denied.PathOf("redirect") +
                                 ": expected a path on this host (/login) or an http:// or https:// URL, printable "
                                 "ASCII without spaces, # or \\, at most 2048 bytes" +
                                 Section::Got(*v));
      } else {
        rule->redirect = v->text;
      }
    }
  } else if (std::optional<ScalarValue> v = item.Required("on_denied")) {
    if (v->text != "401") {
      item.Fail(v->mark, item.PathOf("on_denied") + ": expected 401 or a mapping {redirect: URL}" + Section::Got(*v));
    }
  }
}

bool ParseRate(const std::string& text, RateLimitRule* rule) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return false;
  std::optional<uint64_t> count = ParseDecimal(text.substr(0, slash));
  std::string period = text.substr(slash + 1);
  // "100/s" is "100/1s".
  if (!period.empty() && period.find_first_of("0123456789") == std::string::npos) period = "1" + period;
  std::optional<Millis> d = ParseDuration(period);
  if (!count || *count < 1 || *count > kMaxRateCount || !d || d->count() <= 0) return false;
  rule->count = *count;
  rule->period = *d;
  return true;
}

void ReadRateLimit(Section& item, const SessionConfig& session, RateLimitRule* rule) {
  if (!item.Has("key")) {
    if (!item.Misspelled("key")) {
      item.Fail(item.mark(), item.PathOf("key") + " is required (session, subject or client_address)");
    }
  } else {
    item.Enum("key", kRateLimitKeyNames, false, &rule->key);
    if (!item.failed() && rule->key == RateLimitKey::kSubject && session.subject_key.empty()) {
      // docs/CONFIGURATION.md, rate_limits: a bucket per subject needs the index's key.
      item.Fail(item.ValueMark("key"), item.PathOf("key") +
                                           ": subject needs session.subject_key (with a store manager), which "
                                           "names the session key that holds the user; or use session or "
                                           "client_address");
    }
  }
  if (!item.Has("rate")) {
    if (!item.Misspelled("rate")) item.Fail(item.mark(), item.PathOf("rate") + " is required (e.g. 100/1s)");
  } else if (std::optional<ScalarValue> v = item.Required("rate")) {
    if (!ParseRate(v->text, rule)) {
      item.Fail(v->mark, item.PathOf("rate") +
                             ": expected COUNT/DURATION with COUNT from 1 to 1000000000, such as 100/1s, "
                             "1000/1m or 20/s" +
                             Section::Got(*v));
    } else {
      rule->rate_text = v->text;
    }
  }
  rule->burst = 0;
  item.UInt("burst", 1, kMaxRateCount, &rule->burst);
  if (rule->burst == 0) rule->burst = rule->count;
  ReadPathList(item, "paths", &rule->paths);
  item.Bool("shared", &rule->shared);
  if (rule->shared && session.manager != StoreKind::kRedis) {
    // Only the Redis store is reachable from every instance; the memory and
    // file stores are one process's (or one machine's) and the cookie
    // manager has no store at all.
    item.Fail(item.ValueMark("shared"), item.PathOf("shared") + ": true needs session.manager: redis, whose store " +
                                            "every sessiond instance shares (the manager is " +
                                            ToString(session.manager) +
                                            "); leave shared out for a bucket per process");
  }
}

// Reads at most `limit` bytes of `path` into *out: 0 or an errno value
// (EFBIG when larger).
int ReadKeyFile(const std::string& path, size_t limit, std::string* out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  out->clear();
  char buf[4096];
  int err = 0;
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      break;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > limit) {
      err = EFBIG;
      break;
    }
  }
  close(fd);
  return err;
}

void ReadSignature(Section& sec, UpstreamSignatureConfig* sig) {
  const bool inline_key = sec.Has("key");
  const bool key_file = sec.Has("key_file");
  if (inline_key && key_file) {
    sec.Fail(sec.KeyMark("key_file"), "upstream_signature: key and key_file are both set; use exactly one");
    return;
  }
  const std::string too_short = ": must be at least " + std::to_string(kMinSignatureKeyBytes) +
                                " bytes; run 'sessiond gen-secret' for a good one";
  if (inline_key) {
    std::optional<ScalarValue> v = sec.Required("key");
    if (!v) return;
    if (v->text.size() < kMinSignatureKeyBytes) {
      sec.Fail(v->mark, "upstream_signature.key" + too_short);  // never quotes the value
      return;
    }
    sig->key = std::move(v->text);
  } else if (key_file) {
    std::optional<ScalarValue> v = sec.Required("key_file");
    if (!v) return;
    if (v->text.empty()) {
      sec.Fail(v->mark, "upstream_signature.key_file: must not be empty");
      return;
    }
    std::string bytes;
    if (int err = ReadKeyFile(v->text, kMaxKeyFileBytes, &bytes); err != 0) {
      sec.Fail(v->mark, "upstream_signature.key_file: cannot read " + v->raw + ": " +
                            (err == EFBIG ? "larger than 64 KiB" : std::strerror(err)));
      return;
    }
    // As secret_key_file: one trailing newline is not part of the key.
    if (bytes.size() >= 2 && bytes.compare(bytes.size() - 2, 2, "\r\n") == 0) {
      bytes.resize(bytes.size() - 2);
    } else if (!bytes.empty() && bytes.back() == '\n') {
      bytes.pop_back();
    }
    if (bytes.size() < kMinSignatureKeyBytes) {
      sec.Fail(v->mark, "upstream_signature.key_file: the key in " + v->raw + too_short);
      return;
    }
    sig->key = std::move(bytes);
    sig->key_file = v->text;
  }
}

// A header name for the CSRF token: a token that a client can send and that
// reaches sessiond's check (docs/HTTP.md, Parsing drops names with '_'; the
// X-Session-* names are stripped before anything reads them).
bool IsCsrfHeaderName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  std::string lower;
  for (char c : name) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  static const char* const kReserved[] = {"cookie", "host", "content-length", "transfer-encoding", "connection",
                                          "origin", "sec-fetch-site"};
  for (const char* r : kReserved) {
    if (lower == r) return false;
  }
  return lower.compare(0, 10, "x-session-") != 0;
}

void ReadCsrf(Section& sec, CsrfConfig* csrf) {
  sec.Bool("enabled", &csrf->enabled);
  if (std::optional<ScalarValue> v = sec.Required("header")) {
    if (!IsCsrfHeaderName(v->text)) {
      sec.Fail(v->mark, "csrf.header: expected a header name of letters, digits and -, not an X-Session-* "
                        "name or one sessiond reads itself (Cookie, Origin, ...)" +
                            Section::Got(*v));
    } else {
      csrf->header = v->text;
    }
  }
  ReadPathList(sec, "exempt", &csrf->exempt);
}

std::string JoinList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += items[i];
  }
  return out + "]";
}

}  // namespace

const char* ToString(RateLimitKey key) {
  for (const auto& [name, value] : kRateLimitKeyNames) {
    if (value == key) return name;
  }
  return "?";
}

bool PolicyConfig::matches_paths() const {
  if (!routes.empty() || (csrf.enabled && !csrf.exempt.empty())) return true;
  for (const RateLimitRule& r : rate_limits) {
    if (!r.paths.empty()) return true;
  }
  return false;
}

bool PolicyConfig::any() const {
  return !routes.empty() || csrf.enabled || !rate_limits.empty() || !upstream_signature.key.empty();
}

namespace config_internal {

void ReadPolicy(Section& root, Section& csrf, Section& signature, const SessionConfig& session,
                PolicyConfig* policy) {
  if (std::optional<std::vector<Section>> routes = root.MappingList("routes", {SESSIOND_ROUTE_KEYS})) {
    for (Section& item : *routes) {
      RouteRule rule;
      if (!item.failed()) ReadRoute(item, &rule);
      policy->routes.push_back(std::move(rule));
    }
  }
  ReadCsrf(csrf, &policy->csrf);
  if (std::optional<std::vector<Section>> limits = root.MappingList("rate_limits", {SESSIOND_RATE_LIMIT_KEYS})) {
    for (Section& item : *limits) {
      RateLimitRule rule;
      if (!item.failed()) ReadRateLimit(item, session, &rule);
      policy->rate_limits.push_back(std::move(rule));
    }
  }
  ReadSignature(signature, &policy->upstream_signature);
}

std::vector<std::pair<std::string, std::string>> DescribePolicy(const PolicyConfig& p) {
  std::vector<std::pair<std::string, std::string>> lines;
  if (!p.any()) {  // the summary stays one screen for the common file
    lines.emplace_back("routes, csrf, rate_limits", "none (upstream_signature off)");
    return lines;
  }
  lines.emplace_back("routes", std::to_string(p.routes.size()) + " rule(s)");
  for (size_t i = 0; i < p.routes.size(); ++i) {
    const RouteRule& r = p.routes[i];
    std::string require = r.require == RouteRequire::kNone      ? "none"
                          : r.require == RouteRequire::kSession ? "session"
                                                                : JoinList(r.keys);
    std::string line = std::string(r.match == RouteMatch::kExact ? "exact " : "prefix ") + r.path +
                       (r.methods.empty() ? "" : " " + JoinList(r.methods)) + " require " + require +
                       ", on_denied " + (r.redirect.empty() ? "401" : "redirect " + r.redirect);
    lines.emplace_back("routes[" + std::to_string(i) + "]", line);
  }
  lines.emplace_back("csrf", p.csrf.enabled ? "enabled, header " + p.csrf.header + ", exempt " + JoinList(p.csrf.exempt)
                                            : std::string("off"));
  lines.emplace_back("rate_limits", std::to_string(p.rate_limits.size()) + " limit(s)");
  for (size_t i = 0; i < p.rate_limits.size(); ++i) {
    const RateLimitRule& r = p.rate_limits[i];
    lines.emplace_back("rate_limits[" + std::to_string(i) + "]",
                       std::string(ToString(r.key)) + " " + r.rate_text + " burst " + std::to_string(r.burst) +
                           (r.paths.empty() ? "" : " paths " + JoinList(r.paths)) +
                           (r.shared ? ", shared in redis" : ""));
  }
  lines.emplace_back("upstream_signature",
                     p.upstream_signature.key.empty()
                         ? "off"
                         : "(" + (p.upstream_signature.key_file.empty() ? std::string("set")
                                                                        : "from " + p.upstream_signature.key_file) +
                               ", " + std::to_string(p.upstream_signature.key.size()) + " bytes)");
  return lines;
}

}  // namespace config_internal
}  // namespace sessiond
