// The path_routes fuzz target: path normalisation and rule matching
// (base/path_normalize.h, session/routes.h; docs/HTTP.md, Path
// normalisation; docs/HTTP.md, Access rules).
//
// Input: a request target, then optionally '\n' and rule paths, one per
// line. Checked:
//   - NormalizeTarget agrees with an independent reading of the documented
//     rules (RefNormalize below: units, then segments on a stack): the same
//     verdict, target and match key;
//   - an accepted target is in normal form: it normalises to itself with
//     the same key, its path has no "//", no dot segment, no raw byte
//     >= 0x80, no "\", no "#", no lower-case or malformed %XX, no %2F, %5C,
//     %00 or %3B; its query is the input's, byte for byte;
//   - every rule path that IsCanonicalRulePath accepts (the lines, and a
//     fixed set) matches a key exactly when a segment-by-segment reading
//     says so (prefix and exact), and the RouteTable picks the first such
//     rule;
//   - SafeReturnTo gives the target itself or "/", and never anything that
//     starts with "//" or "/\" or holds a control byte, before or after one
//     round of percent-decoding.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/path_normalize.h"
#include "fuzz_check.h"
#include "session/routes.h"

namespace sessiond {
namespace fuzz {

struct RefUnit {
  unsigned char byte;
  bool encoded;
};

inline int RefHex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline bool RefUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

inline std::string RefLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

struct RefResult {
  PathResult result = PathResult::kRefused;
  std::string target;
  std::string key;
};

inline RefResult RefNormalize(std::string_view target) {
  RefResult r;
  if (target == "*") {
    r.result = PathResult::kNotAPath;
    return r;
  }
  if (target.empty() || target[0] != '/') return r;
  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  std::vector<RefUnit> units;
  for (size_t i = 0; i < path.size();) {
    if (path[i] == '%') {
      if (i + 2 >= path.size()) return r;
      const int hi = RefHex(path[i + 1]);
      const int lo = RefHex(path[i + 2]);
      if (hi < 0 || lo < 0) return r;
      units.push_back({static_cast<unsigned char>(hi * 16 + lo), true});
      i += 3;
    } else {
      units.push_back({static_cast<unsigned char>(path[i]), false});
      i += 1;
    }
  }
  for (size_t i = 0; i < units.size(); ++i) {
    const RefUnit u = units[i];
    if (u.byte == 0 || u.byte == '\\') return r;
    if (u.encoded && (u.byte == '/' || u.byte == ';')) return r;
    if (!u.encoded && u.byte == '#') return r;
    if (u.byte == 0xC0 || u.byte == 0xC1) return r;
    if (i + 1 < units.size()) {
      const unsigned char next = units[i + 1].byte;
      if (u.byte == 0xE0 && next >= 0x80 && next <= 0x9F) return r;
      if (u.byte == 0xF0 && next >= 0x80 && next <= 0x8F) return r;
    }
  }
  // Segments between raw '/' units; the first (before the leading '/') is empty.
  std::vector<std::vector<RefUnit>> segments(1);
  for (const RefUnit& u : units) {
    if (!u.encoded && u.byte == '/') {
      segments.emplace_back();
    } else {
      segments.back().push_back(u);
    }
  }
  static const char kHex[] = "0123456789ABCDEF";
  std::vector<std::string> stack;  // rendered segments
  std::vector<std::string> names;  // their names
  bool trailing = false;
  for (size_t s = 1; s < segments.size(); ++s) {
    std::string rendered, name;
    bool in_params = false;
    for (const RefUnit& u : segments[s]) {
      std::string piece;
      if (RefUnreserved(u.byte)) {
        piece = std::string(1, static_cast<char>(u.byte));
      } else if (u.encoded || u.byte >= 0x80) {
        piece = {'%', kHex[u.byte >> 4], kHex[u.byte & 15]};
      } else {
        piece = std::string(1, static_cast<char>(u.byte));
      }
      if (!u.encoded && u.byte == ';') in_params = true;
      rendered += piece;
      if (!in_params) name += piece;
    }
    const bool last = s + 1 == segments.size();
    if (name == "." || name == "..") {
      if (name == ".." && !stack.empty()) {
        stack.pop_back();
        names.pop_back();
      }
      trailing = last;
      continue;
    }
    if (name.empty()) {
      trailing = last;
      continue;
    }
    if (name.back() == '.' || (name.size() >= 3 && name.compare(name.size() - 3, 3, "%20") == 0)) return r;
    stack.push_back(rendered);
    names.push_back(name);
    trailing = false;
  }
  std::string out = "/", key = "/";
  for (size_t i = 0; i < stack.size(); ++i) {
    out += stack[i];
    key += RefLower(names[i]);
    if (i + 1 < stack.size() || trailing) {
      out += '/';
      key += '/';
    }
  }
  for (size_t k = out.find("%25"); k != std::string::npos; k = out.find("%25", k + 1)) {
    if (k + 4 < out.size() && RefHex(out[k + 3]) >= 0 && RefHex(out[k + 4]) >= 0) return r;
  }
  r.result = PathResult::kOk;
  r.target = out;
  if (q != std::string_view::npos) r.target += target.substr(q);
  r.key = key;
  return r;
}

inline std::vector<std::string> RefSegments(std::string_view path) {
  std::vector<std::string> out;
  for (std::string_view s : SplitOn(path.substr(1), '/')) out.emplace_back(s);
  return out;
}

// A rule path against a match key, segment by segment.
inline bool RefMatches(std::string_view rule_path, bool exact, std::string_view key) {
  std::string rule = RefLower(rule_path);
  if (rule.size() > 1 && rule.back() == '/') rule.pop_back();
  if (rule == "/") return exact ? key == "/" : true;
  const std::vector<std::string> want = RefSegments(rule);
  const std::vector<std::string> have = RefSegments(key);
  if (have.size() < want.size()) return false;
  for (size_t i = 0; i < want.size(); ++i) {
    if (have[i] != want[i]) return false;
  }
  if (!exact) return true;
  return have.size() == want.size() || (have.size() == want.size() + 1 && have.back().empty());
}

inline bool CheckNormalForm(const NormalizedPath& n, std::string_view input) {
  const std::string_view path = n.path();
  FUZZ_CHECK(!path.empty() && path[0] == '/');
  FUZZ_CHECK(path.find("//") == std::string_view::npos);
  FUZZ_CHECK(path.find('\\') == std::string_view::npos && path.find('#') == std::string_view::npos);
  for (size_t i = 0; i < path.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(path[i]);
    FUZZ_CHECK(c < 0x80);
    if (c == '%') {
      FUZZ_CHECK(i + 2 < path.size());
      for (size_t k = i + 1; k <= i + 2; ++k) {
        const char h = path[k];
        FUZZ_CHECK((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F'));
      }
      const std::string_view enc = path.substr(i, 3);
      FUZZ_CHECK(enc != "%2F" && enc != "%5C" && enc != "%00" && enc != "%3B");
    }
  }
  for (std::string_view seg : SplitOn(path.substr(1), '/')) {
    const std::string_view name = seg.substr(0, seg.find(';'));
    FUZZ_CHECK(name != "." && name != "..");
  }
  const size_t q = input.find('?');
  const std::string_view query = q == std::string_view::npos ? std::string_view() : input.substr(q);
  FUZZ_CHECK(n.target.substr(n.path_size) == query);
  NormalizedPath again;
  FUZZ_CHECK(NormalizeTarget(n.target, &again, nullptr) == PathResult::kOk);
  FUZZ_CHECK(again.target == n.target);
  FUZZ_CHECK(again.match_key == n.match_key);
  return true;
}

inline bool CheckReturnTo(std::string_view target) {
  const std::string_view safe = SafeReturnTo(target);
  FUZZ_CHECK(safe == "/" || safe == target);
  std::string decoded;
  for (size_t i = 0; i < safe.size(); ++i) {
    if (safe[i] == '%' && i + 2 < safe.size() && RefHex(safe[i + 1]) >= 0 && RefHex(safe[i + 2]) >= 0) {
      decoded.push_back(static_cast<char>(RefHex(safe[i + 1]) * 16 + RefHex(safe[i + 2])));
      i += 2;
    } else {
      decoded.push_back(safe[i]);
    }
  }
  for (std::string_view s : {safe, std::string_view(decoded)}) {
    FUZZ_CHECK(!s.empty() && s[0] == '/');
    FUZZ_CHECK(s.size() < 2 || (s[1] != '/' && s[1] != '\\'));
    for (char c : s) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  }
  return true;
}

inline bool CheckPathRoutes(std::string_view input) {
  const size_t nl = input.find('\n');
  const std::string_view target = input.substr(0, nl);
  std::vector<std::string> rule_paths = {"/", "/admin", "/admin/", "/a/b", "/%C3%A9", "/A-b.c~_/x"};
  if (nl != std::string_view::npos) {
    for (std::string_view line : SplitOn(input.substr(nl + 1), '\n')) {
      if (IsCanonicalRulePath(line)) rule_paths.emplace_back(line);
    }
  }

  NormalizedPath n;
  const char* reason = nullptr;
  const PathResult result = NormalizeTarget(target, &n, &reason);
  const RefResult ref = RefNormalize(target);
  FUZZ_CHECK(result == ref.result);
  if (result == PathResult::kRefused) FUZZ_CHECK(reason != nullptr && IsPrintableAscii(reason));
  FUZZ_TRY(CheckReturnTo(target));
  if (result != PathResult::kOk) return true;
  FUZZ_CHECK(n.target == ref.target);
  FUZZ_CHECK(n.match_key == ref.key);
  FUZZ_TRY(CheckNormalForm(n, target));
  FUZZ_TRY(CheckReturnTo(n.target));

  std::vector<RouteRule> rules;
  for (bool exact : {false, true}) {
    for (const std::string& p : rule_paths) {
      FUZZ_CHECK(PathPattern(p, exact).Matches(n.match_key) == RefMatches(p, exact, n.match_key));
      RouteRule rule;
      rule.path = p;
      rule.match = exact ? RouteMatch::kExact : RouteMatch::kPrefix;
      rules.push_back(rule);
    }
  }
  // Exact rules first, so the table's first match is not always "/".
  std::vector<RouteRule> ordered(rules.begin() + static_cast<std::ptrdiff_t>(rule_paths.size()), rules.end());
  ordered.insert(ordered.end(), rules.begin() + 1, rules.begin() + static_cast<std::ptrdiff_t>(rule_paths.size()));
  Result<RouteTable> table = RouteTable::Build(ordered);
  FUZZ_CHECK(table.ok());
  const Route* route = table->Match("GET", n.match_key);
  size_t first = ordered.size();
  for (size_t i = 0; i < ordered.size(); ++i) {
    if (RefMatches(ordered[i].path, ordered[i].match == RouteMatch::kExact, n.match_key)) {
      first = i;
      break;
    }
  }
  FUZZ_CHECK((route == nullptr) == (first == ordered.size()));
  if (route) FUZZ_CHECK(route->index == first);
  return true;
}

}  // namespace fuzz
}  // namespace sessiond
