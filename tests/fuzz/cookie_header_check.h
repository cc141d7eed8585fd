// The cookie_header fuzz target: CookieSplitter on arbitrary Cookie headers.
//
// Input: Cookie header values separated by '\n' (each fed with Add, in
// order); the whole input is also fed as one value, so CR, LF and NUL inside
// a value are exercised too. Each is split for the session cookie names
// "session_id", "a" (short: the fuzzer hits it often) and "" (matches
// nothing).
//
// Invariants: the forwarded value never contains CR, LF or NUL and never a
// pair named exactly like the session cookie or like one of its chunks
// (NAME "." DIGITS; splitting it again finds no session cookie and changes
// nothing); the result equals a plain reading of the documented rules (RFC
// 6265 pairs, SP/HTAB trimmed, quotes stripped, empty values dropped, at
// most kMaxSessionCookies values of at most kMaxSessionCookieBytes, the rest
// counted as ignored; NAME.1 .. NAME.7 collected as chunks with their
// counts, other NAME.DIGITS ignored); the one-shot SplitCookies agrees with
// the incremental splitter.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "session/cookie_header.h"

namespace sessiond {
namespace fuzz {

inline std::string_view TrimCookieWsp(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// -1: not NAME "." DIGITS; 0: such a name outside 1..7 (or not canonical);
// else the chunk index.
inline int ExpectedChunkIndex(std::string_view cookie_name, std::string_view name) {
  if (name.empty() || cookie_name.size() <= name.size() + 1 || cookie_name.substr(0, name.size()) != name ||
      cookie_name[name.size()] != '.') {
    return -1;
  }
  const std::string_view digits = cookie_name.substr(name.size() + 1);
  for (char c : digits) {
    if (c < '0' || c > '9') return -1;
  }
  return digits.size() == 1 && digits[0] >= '1' && digits[0] <= '7' ? digits[0] - '0' : 0;
}

// The header comment of cookie_header.h, read literally.
inline CookieSplit ExpectedSplit(const std::vector<std::string_view>& headers, std::string_view name) {
  CookieSplit out;
  for (std::string_view header : headers) {
    for (std::string_view raw_pair : SplitOn(header, ';')) {
      const std::string_view pair = TrimCookieWsp(raw_pair);
      if (pair.empty()) continue;
      const size_t eq = pair.find('=');
      const int chunk = eq == std::string_view::npos ? -1 : ExpectedChunkIndex(TrimCookieWsp(pair.substr(0, eq)), name);
      if (chunk >= 0) {
        std::string_view value = TrimCookieWsp(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        if (chunk == 0 || value.empty() || value.size() > kMaxSessionCookieBytes) {
          ++out.ignored_session_cookies;
        } else {
          out.chunks[chunk].assign(value);
          if (out.chunk_counts[chunk] < 255) ++out.chunk_counts[chunk];
        }
        continue;
      }
      if (eq != std::string_view::npos && !name.empty() && TrimCookieWsp(pair.substr(0, eq)) == name) {
        std::string_view value = TrimCookieWsp(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        if (value.empty()) continue;
        if (value.size() > kMaxSessionCookieBytes || out.session_values.size() >= kMaxSessionCookies) {
          ++out.ignored_session_cookies;
        } else {
          out.session_values.emplace_back(value);
        }
        continue;
      }
      if (HasCrLfOrNul(pair)) continue;
      if (!out.forwarded.empty()) out.forwarded += "; ";
      out.forwarded += pair;
    }
  }
  return out;
}

inline bool CheckSplit(const std::vector<std::string_view>& headers, std::string_view name) {
  CookieSplitter splitter(name);
  size_t input_bytes = 0;
  for (std::string_view h : headers) {
    splitter.Add(h);
    input_bytes += h.size() + 1;  // each header brings at least a separator
  }
  const CookieSplit got = splitter.Finish();
  const CookieSplit want = ExpectedSplit(headers, name);
  FUZZ_CHECK(!HasCrLfOrNul(got.forwarded));
  FUZZ_CHECK(got.forwarded.size() <= 2 * input_bytes + 2);
  FUZZ_CHECK(got.session_values.size() <= kMaxSessionCookies);
  for (const std::string& v : got.session_values) FUZZ_CHECK(!v.empty() && v.size() <= kMaxSessionCookieBytes);
  FUZZ_CHECK(got.forwarded == want.forwarded);
  FUZZ_CHECK(got.session_values == want.session_values);
  FUZZ_CHECK(got.ignored_session_cookies == want.ignored_session_cookies);
  FUZZ_CHECK(got.chunk_counts == want.chunk_counts);
  for (size_t k = 1; k < kMaxCookieChunks; ++k) {
    if (want.chunk_counts[k] > 0) FUZZ_CHECK(got.chunks[k] == want.chunks[k]);
  }
  if (name.empty()) FUZZ_CHECK(got.session_values.empty() && got.ignored_session_cookies == 0);

  // Nothing named like the session cookie is left to forward.
  for (std::string_view pair : SplitOn(got.forwarded, ';')) {
    const std::string_view p = TrimCookieWsp(pair);
    const size_t eq = p.find('=');
    if (eq != std::string_view::npos && !name.empty()) {
      FUZZ_CHECK(TrimCookieWsp(p.substr(0, eq)) != name);
      FUZZ_CHECK(ExpectedChunkIndex(TrimCookieWsp(p.substr(0, eq)), name) < 0);
    }
  }
  const CookieSplit again = SplitCookies({got.forwarded}, name);
  FUZZ_CHECK(again.session_values.empty() && again.ignored_session_cookies == 0);
  FUZZ_CHECK(again.forwarded == got.forwarded);

  const CookieSplit one_shot = SplitCookies(headers, name);
  FUZZ_CHECK(one_shot.forwarded == got.forwarded && one_shot.session_values == got.session_values &&
             one_shot.ignored_session_cookies == got.ignored_session_cookies &&
             one_shot.chunk_counts == got.chunk_counts && one_shot.chunks == got.chunks);
  return true;
}

inline bool CheckCookieHeaders(std::string_view input) {
  const std::vector<std::string_view> headers = SplitOn(input, '\n');
  for (std::string_view name : {std::string_view("session_id"), std::string_view("a"), std::string_view()}) {
    FUZZ_TRY(CheckSplit(headers, name));
    FUZZ_TRY(CheckSplit({input}, name));
  }
  return true;
}

}  // namespace fuzz
}  // namespace sessiond
