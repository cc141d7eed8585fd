// Splitting the request's Cookie header(s): the session cookie is taken out
// for verification, every other cookie goes upstream untouched.
//
// Parsing follows RFC 6265 section 5.4 / 5.2, leniently: pairs are separated
// by ';', whitespace (SP, HTAB) around a pair, a name and a value is ignored,
// the name is everything before the first '=', names compare case-sensitively,
// and a value wrapped in double quotes is returned without them. A pair with
// no '=' is a nameless cookie: it never matches and is forwarded as-is.
//
// Bounds and decisions:
// - Every pair is examined, however many there are, so a session cookie can
//   never slip upstream by hiding behind many others. Cost is one linear pass
//   and output at most twice the input (a bare ';' becomes "; "), whose size
//   the HTTP layer already bounds (limits.max_header_bytes), so no pair-count
//   bound is needed.
// - At most kMaxSessionCookies session values are returned, each at most
//   kMaxSessionCookieBytes long. The caller verifies each candidate
//   cryptographically; the bounds cap that work per request. Cookies over a
//   bound are still removed from the forwarded header and are counted in
//   `ignored_session_cookies`.
// - An empty session value ("session_id=" or "session_id=\"\"") carries
//   nothing to verify: it is removed and not returned (status none, not
//   invalid).
// - A forwarded pair never contains CR, LF or NUL: a non-session pair holding
//   one is dropped (the HTTP layer should have rejected the request already;
//   this keeps a bug there from becoming header injection upstream).
// - Chunks (docs/COOKIES.md, Chunked cookies): a cookie named NAME "." DIGITS
//   belongs to the session cookie too and is never forwarded. NAME.1 to
//   NAME.(kMaxCookieChunks - 1) (canonical decimal) are collected as chunk 1
//   to 7, with how many times each came (a duplicate makes a chunked value
//   invalid); any other NAME.DIGITS, an empty one or one over
//   kMaxSessionCookieBytes is dropped and counted as ignored.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sessiond {

inline constexpr size_t kMaxSessionCookies = 8;
inline constexpr size_t kMaxSessionCookieBytes = 8192;
// NAME plus NAME.1 .. NAME.7: the most cookies one session value may span
// (session.max_cookie_chunks is at most this).
inline constexpr size_t kMaxCookieChunks = 8;

struct CookieSplit {
  // Values of the cookies named exactly like the session cookie, in the order
  // they were sent (browsers send the most specific Path first, so the caller
  // should use the first one that verifies).
  std::vector<std::string> session_values;
  // The other pairs, byte-for-byte and in order, joined with "; ". Empty when
  // nothing remains: the caller then drops the Cookie header.
  std::string forwarded;
  // Session cookies removed but not returned: too long, or beyond
  // kMaxSessionCookies. For a debug log line or a counter.
  size_t ignored_session_cookies = 0;
  // chunks[k] is the value of NAME.k (k = 1..kMaxCookieChunks-1, [0] unused)
  // and chunk_counts[k] how many cookies of that name came.
  std::array<std::string, kMaxCookieChunks> chunks;
  std::array<size_t, kMaxCookieChunks> chunk_counts{};
};

// The session cookies of one request as views into its Cookie header
// values: the allocation-free form the request path uses. Same rules and
// bounds as CookieSplit.
struct SessionCookieViews {
  std::array<std::string_view, kMaxSessionCookies> values;  // [0, count) are set
  size_t count = 0;
  size_t ignored = 0;  // as CookieSplit::ignored_session_cookies
  // As CookieSplit::chunks (the last value when a name came twice) and
  // chunk_counts (saturating at 255).
  std::array<std::string_view, kMaxCookieChunks> chunks;
  std::array<uint8_t, kMaxCookieChunks> chunk_counts{};

  void Clear() {
    count = 0;
    ignored = 0;
    chunk_counts.fill(0);
  }
  // Any NAME.k came.
  bool has_chunks() const {
    for (size_t k = 1; k < kMaxCookieChunks; ++k) {
      if (chunk_counts[k] != 0) return true;
    }
    return false;
  }
};

// Splits one Cookie header value: the session cookie values are added to
// *found (views into `header`, valid as long as it is), every other pair is
// appended to *forwarded, "; "-joined with what it already holds. Call it for
// each Cookie header of a request in order, with the same *found and
// *forwarded (cleared first by the caller, whose capacity they keep). An
// empty name matches no cookie. Accepts any bytes without failing.
void SplitCookieHeader(std::string_view header, std::string_view session_cookie_name, SessionCookieViews* found,
                       std::string* forwarded);

// Feed the value of every Cookie header of one request, in order, then take
// the result. Accepts any bytes without failing.
class CookieSplitter {
 public:
  // An empty name matches no cookie (everything is forwarded).
  explicit CookieSplitter(std::string_view session_cookie_name);
  void Add(std::string_view cookie_header_value);
  // Call once.
  CookieSplit Finish();

 private:
  std::string name_;
  SessionCookieViews found_;
  CookieSplit split_;
};

// One-shot form of CookieSplitter.
CookieSplit SplitCookies(const std::vector<std::string_view>& cookie_header_values,
                         std::string_view session_cookie_name);

}  // namespace sessiond
