#include "session/routes.h"

#include <cstring>

#include "base/path_normalize.h"
#include "http/headers.h"
#include "store/session_data.h"

namespace sessiond {

namespace {

constexpr char kUpperHex[] = "0123456789ABCDEF";
// Rounds of percent-decoding SafeReturnTo looks through: a page that decodes
// return_to twice must not find "//" either.
constexpr int kReturnToDecodeRounds = 4;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// One round of percent-decoding; false when nothing was decoded.
bool DecodeOnce(std::string_view in, std::string* out) {
  out->clear();
  bool changed = false;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out->push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        changed = true;
        continue;
      }
    }
    out->push_back(in[i]);
  }
  return changed;
}

// A relative reference that stays on this host: starts with one '/', not
// followed by another '/' or a '\' (which browsers read as '/'), and holds
// no control byte (browsers drop tabs and newlines, so "/\t/x" is "//x").
bool IsLocalPath(std::string_view s) {
  if (s.empty() || s[0] != '/') return false;
  if (s.size() > 1 && (s[1] == '/' || s[1] == '\\')) return false;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A q parameter of 0 (q=0, q=0.0, q=0.000) refuses the type.
bool QIsZero(std::string_view params) {
  while (!params.empty()) {
    const size_t semi = params.find(';');
    std::string_view p = Trim(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
    if (p.size() >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
      std::string_view v = p.substr(2);
      if (v.empty() || v[0] != '0') return false;
      for (char c : v.substr(1)) {
        if (c != '.' && c != '0') return false;
      }
      return true;
    }
  }
  return false;
}

// The one comparison of a pattern path (lower-case, no trailing '/' unless
// it is "/") with a match key.
inline bool MatchesPath(const char* path, size_t n, bool exact, std::string_view key) {
  if (n == 1) return exact ? key.size() == 1 : true;  // "/"
  if (key.size() < n || memcmp(key.data(), path, n) != 0) return false;
  if (key.size() == n) return true;
  if (key[n] != '/') return false;  // "/admin" is not a prefix of "/administrator"
  return !exact || key.size() == n + 1;
}

}  // namespace

PathPattern::PathPattern(std::string_view path, bool exact) : exact_(exact) {
  for (char c : path) path_.push_back(Lower(c));
  if (path_.size() > 1 && path_.back() == '/') path_.pop_back();
  if (path_.empty()) path_ = "/";
}

bool PathPattern::Matches(std::string_view key) const { return MatchesPath(path_.data(), path_.size(), exact_, key); }

bool AnyMatches(const std::vector<PathPattern>& patterns, std::string_view match_key) {
  for (const PathPattern& p : patterns) {
    if (p.Matches(match_key)) return true;
  }
  return false;
}

Result<RouteTable> RouteTable::Build(const std::vector<RouteRule>& rules) {
  RouteTable table;
  table.routes_.reserve(rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    const RouteRule& rule = rules[i];
    if (!IsCanonicalRulePath(rule.path)) {
      return Status::Invalid("routes[" + std::to_string(i) + "].path is not in normalised form");
    }
    const bool exact = rule.match == RouteMatch::kExact;
    Route route{PathPattern(rule.path, exact), rule.methods, rule.require, rule.keys, rule.redirect, i};
    // The same path PathPattern keeps, copied into the contiguous table.
    std::string lowered;
    for (char c : rule.path) lowered.push_back(Lower(c));
    if (lowered.size() > 1 && lowered.back() == '/') lowered.pop_back();
    Entry entry;
    entry.offset = static_cast<uint32_t>(table.paths_.size());
    entry.size = static_cast<uint32_t>(lowered.size());
    entry.exact = exact;
    entry.any_method = rule.methods.empty();
    table.paths_ += lowered;
    table.entries_.push_back(entry);
    table.routes_.push_back(std::move(route));
  }
  return table;
}

const Route* RouteTable::Match(std::string_view method, std::string_view match_key) const {
  const char* paths = paths_.data();
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (!MatchesPath(paths + e.offset, e.size, e.exact, match_key)) continue;
    if (e.any_method) return &routes_[i];
    for (const std::string& m : routes_[i].methods) {
      // A rule for GET covers HEAD: a backend answers HEAD as it answers GET.
      if (m == method || (m == "GET" && method == "HEAD")) return &routes_[i];
    }
  }
  return nullptr;
}

bool SatisfiesRoute(const Route& route, bool has_session, std::string_view session_json) {
  switch (route.require) {
    case RouteRequire::kNone:
      return true;
    case RouteRequire::kSession:
      return has_session;
    case RouteRequire::kKeys:
      if (!has_session) return false;
      for (const std::string& key : route.keys) {
        if (!SessionJsonHasKey(session_json.empty() ? std::string_view("{}") : session_json, key)) return false;
      }
      return true;
  }
  return false;
}

bool AcceptsJson(std::string_view accept) {
  while (!accept.empty()) {
    const size_t comma = accept.find(',');
    std::string_view range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    const size_t semi = range.find(';');
    std::string_view type = Trim(range.substr(0, semi));
    const std::string_view params = semi == std::string_view::npos ? std::string_view() : range.substr(semi + 1);
    const bool json = EqualsIgnoreCase(type, "application/json") ||
                      (type.size() > 5 && EqualsIgnoreCase(type.substr(type.size() - 5), "+json"));
    if (json && !QIsZero(params)) return true;
  }
  return false;
}

std::string_view SafeReturnTo(std::string_view target) {
  if (!IsLocalPath(target)) return "/";
  std::string rounds[2];
  std::string_view current = target;
  for (int i = 0; i < kReturnToDecodeRounds; ++i) {
    std::string& next = rounds[i % 2];
    if (!DecodeOnce(current, &next)) break;
    if (!IsLocalPath(next)) return "/";
    current = next;
  }
  return target;
}

void AppendQueryEncoded(std::string* out, std::string_view value) {
  for (char ch : value) {
    const unsigned char c = static_cast<unsigned char>(ch);
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~' || c == '/';
    if (keep) {
      out->push_back(ch);
    } else {
      out->push_back('%');
      out->push_back(kUpperHex[c >> 4]);
      out->push_back(kUpperHex[c & 0xF]);
    }
  }
}

FilterResult DenyRoute(const Route& route, std::string_view target, bool wants_json) {
  if (!route.redirect.empty()) {
    FilterResult r = FilterResult::Reply(302, "Found\n");
    r.headers = "Location: ";
    r.headers += route.redirect;
    r.headers += route.redirect.find('?') == std::string::npos ? "?return_to=" : "&return_to=";
    AppendQueryEncoded(&r.headers, SafeReturnTo(target));
    r.headers += "\r\nCache-Control: no-store\r\n";
    return r;
  }
  FilterResult r = wants_json ? FilterResult::Reply(401, "{\"error\":\"unauthorized\"}\n")
                              : FilterResult::Reply(401, "Unauthorized\n");
  if (wants_json) r.content_type = "application/json";
  r.headers = "Cache-Control: no-store\r\n";
  return r;
}

}  // namespace sessiond
