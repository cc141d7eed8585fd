#include "base/path_normalize.h"

namespace sessiond {

namespace {

constexpr char kUpperHex[] = "0123456789ABCDEF";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 unreserved: ALPHA DIGIT "-" "." "_" "~".
bool IsUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

void AppendEncoded(std::string* out, unsigned char b) {
  out->push_back('%');
  out->push_back(kUpperHex[b >> 4]);
  out->push_back(kUpperHex[b & 0xF]);
}

}  // namespace

PathResult NormalizeTarget(std::string_view target, NormalizedPath* out, const char** reason) {
  out->target.clear();
  out->match_key.clear();
  out->path_size = 0;
  auto refuse = [reason](const char* why) {
    if (reason) *reason = why;
    return PathResult::kRefused;
  };
  if (target == "*") return PathResult::kNotAPath;
  if (target.empty() || target[0] != '/') return refuse("not an origin-form target");
  const size_t query_at = target.find('?');
  const std::string_view path = target.substr(0, query_at);
  const size_t n = path.size();

  std::string& o = out->target;
  o.push_back('/');
  size_t i = 1;
  // The lead byte of a multi-byte UTF-8 sequence whose next byte decides
  // whether it is overlong (E0 or F0), else 0.
  unsigned lead = 0;
  for (;;) {
    // One segment: path[i, next raw '/').
    const size_t seg = o.size();  // o ends with '/'
    size_t name_end = std::string::npos;  // where its first raw ';' went in o
    while (i < n && path[i] != '/') {
      unsigned char b = static_cast<unsigned char>(path[i]);
      bool encoded = false;
      if (b == '%') {
        const int hi = i + 1 < n ? HexValue(path[i + 1]) : -1;
        const int lo = i + 2 < n ? HexValue(path[i + 2]) : -1;
        if (hi < 0 || lo < 0) return refuse("malformed percent-encoding in the path");
        b = static_cast<unsigned char>(hi * 16 + lo);
        encoded = true;
        i += 3;
      } else {
        ++i;
      }
      if (b == 0) return refuse("encoded NUL in the path");
      if (b == '\\') return refuse("backslash in the path");
      if (encoded && b == '/') return refuse("encoded / in the path");
      if (encoded && b == ';') return refuse("encoded ; in the path");
      if (!encoded && b == '#') return refuse("# in the path");
      if (b >= 0x80) {
        if (lead != 0 && b < (lead == 0xE0 ? 0xA0 : 0x90)) return refuse("overlong UTF-8 in the path");
        if (b == 0xC0 || b == 0xC1) return refuse("overlong UTF-8 in the path");
        lead = (b == 0xE0 || b == 0xF0) ? b : 0;
        AppendEncoded(&o, b);
        continue;
      }
      lead = 0;
      if (encoded && !IsUnreserved(b)) {
        AppendEncoded(&o, b);
        continue;
      }
      if (!encoded && b == ';' && name_end == std::string::npos) name_end = o.size();
      o.push_back(static_cast<char>(b));
    }
    lead = 0;
    if (name_end == std::string::npos) name_end = o.size();
    const std::string_view name(o.data() + seg, name_end - seg);
    const bool dot = name == ".";
    const bool dot_dot = name == "..";
    if (dot || dot_dot) {
      o.resize(seg);
      if (dot_dot && seg > 1) o.resize(o.rfind('/', seg - 2) + 1);
    } else if (name.empty()) {
      // Only parameters (";x"): a segment with an empty name is an empty
      // segment, dropped with its parameters, or "/;x/admin" would reach a
      // servlet container as "//admin" while rules saw "/;x/admin".
      o.resize(seg);
    } else if (o.size() > seg) {
      const bool ends_badly = (!name.empty() && name.back() == '.') ||
                              (name.size() >= 3 && name.substr(name.size() - 3) == "%20");
      if (ends_badly) return refuse("a path segment ending in a dot or a space");
      if (i < n) o.push_back('/');
    }
    // An empty segment ("//") adds nothing; at the end it is the trailing '/'.
    if (i >= n) break;
    ++i;  // the '/'
  }
  // A '%' (written %25) followed by two hex digits, however each was
  // spelled: a backend that decodes twice would decode those too.
  for (size_t k = o.find("%25"); k != std::string::npos; k = o.find("%25", k + 1)) {
    if (k + 4 < o.size() && HexValue(o[k + 3]) >= 0 && HexValue(o[k + 4]) >= 0) {
      return refuse("double percent-encoding in the path");
    }
  }
  out->path_size = o.size();
  if (query_at != std::string_view::npos) o.append(target.substr(query_at));

  // The match key: parameters dropped, ASCII lower-cased.
  std::string& key = out->match_key;
  bool in_params = false;
  for (size_t k = 0; k < out->path_size; ++k) {
    char c = o[k];
    if (c == '/') {
      in_params = false;
    } else if (c == ';') {
      in_params = true;
    }
    if (in_params) continue;
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    key.push_back(c);
  }
  return PathResult::kOk;
}

bool IsCanonicalRulePath(std::string_view path) {
  if (path.find_first_of("?;") != std::string_view::npos) return false;
  NormalizedPath normal;
  return NormalizeTarget(path, &normal, nullptr) == PathResult::kOk && normal.target == path;
}

}  // namespace sessiond
