#include "session/cookie_header.h"

#include <doctest/doctest.h>

#include <random>
#include <string>

namespace sessiond {
namespace {

using Values = std::vector<std::string>;

CookieSplit Split(std::vector<std::string_view> headers, std::string_view name = "session_id") {
  return SplitCookies(headers, name);
}

}  // namespace

TEST_CASE("A typical Cookie header loses only the session cookie") {
  const CookieSplit s = Split({"theme=dark; session_id=tok.en-1_A; lang=en"});
  CHECK(s.session_values == Values{"tok.en-1_A"});
  CHECK(s.forwarded == "theme=dark; lang=en");
  CHECK(s.ignored_session_cookies == 0);
}

TEST_CASE("Several Cookie headers are joined into one forwarded value") {
  const CookieSplit s = Split({"a=1; session_id=x", "b=2", "session_id=y; c=3"});
  CHECK(s.session_values == Values{"x", "y"});
  CHECK(s.forwarded == "a=1; b=2; c=3");
}

TEST_CASE("Duplicate session cookies are all returned in order and all removed") {
  const CookieSplit s = Split({"session_id=first; x=1; session_id=second; session_id=third"});
  CHECK(s.session_values == Values{"first", "second", "third"});
  CHECK(s.forwarded == "x=1");
}

TEST_CASE("Only the session cookie leaves an empty forwarded value") {
  const CookieSplit s = Split({"session_id=abc"});
  CHECK(s.session_values == Values{"abc"});
  CHECK(s.forwarded.empty());
}

TEST_CASE("Quoted session values are returned without the quotes") {
  CHECK(Split({"session_id=\"abc\""}).session_values == Values{"abc"});
  CHECK(Split({"session_id=\"a\"b\""}).session_values == Values{"a\"b"});
  // A lone quote or an unbalanced one is not a quoted value.
  CHECK(Split({"session_id=\""}).session_values == Values{"\""});
  CHECK(Split({"session_id=\"abc"}).session_values == Values{"\"abc"});
  // Other cookies keep their quotes.
  CHECK(Split({"q=\"v\"; session_id=x"}).forwarded == "q=\"v\"");
}

TEST_CASE("A pair without = is forwarded but never matches") {
  const CookieSplit s = Split({"session_id; flag; a=1"});
  CHECK(s.session_values.empty());
  CHECK(s.forwarded == "session_id; flag; a=1");
}

TEST_CASE("Whitespace around pairs, names and values is ignored; inner bytes are kept") {
  const CookieSplit s = Split({"  a=1 ;\tsession_id = v1 \t;b = x y ;  c=\t"});
  CHECK(s.session_values == Values{"v1"});
  CHECK(s.forwarded == "a=1; b = x y; c=");
}

TEST_CASE("Names compare exactly and case-sensitively") {
  const CookieSplit s =
      Split({"Session_Id=a; SESSION_ID=b; session_id2=c; xsession_id=d; session_i=e; session_id=f"});
  CHECK(s.session_values == Values{"f"});
  CHECK(s.forwarded == "Session_Id=a; SESSION_ID=b; session_id2=c; xsession_id=d; session_i=e");
  CHECK(Split({"sid=1; session_id=2"}, "sid").session_values == Values{"1"});
}

TEST_CASE("The value is everything after the first =") {
  const CookieSplit s = Split({"session_id=a=b==; x=y=z"});
  CHECK(s.session_values == Values{"a=b=="});
  CHECK(s.forwarded == "x=y=z");
}

TEST_CASE("Empty session values are removed and not returned") {
  const CookieSplit s = Split({"session_id=; a=1; session_id=\"\"; session_id= "});
  CHECK(s.session_values.empty());
  CHECK(s.forwarded == "a=1");
  CHECK(s.ignored_session_cookies == 0);
}

TEST_CASE("Empty headers and bare separators produce nothing") {
  for (const std::string_view h : {"", ";", ";;;", " ; ;\t; ", "   "}) {
    CAPTURE(h);
    const CookieSplit s = Split({h});
    CHECK(s.session_values.empty());
    CHECK(s.forwarded.empty());
  }
  const CookieSplit s = Split({});
  CHECK(s.session_values.empty());
  CHECK(s.forwarded.empty());
  CHECK(Split({";a=1;;b=2;"}).forwarded == "a=1; b=2");
}

TEST_CASE("An empty session cookie name matches nothing") {
  const CookieSplit s = Split({"=x; a=1; session_id=2"}, "");
  CHECK(s.session_values.empty());
  CHECK(s.forwarded == "=x; a=1; session_id=2");
}

TEST_CASE("Session values over 8192 bytes are removed, counted and not returned") {
  const std::string at_bound(kMaxSessionCookieBytes, 'v');
  const std::string over(kMaxSessionCookieBytes + 1, 'w');
  const std::string header = "session_id=" + over + "; a=1; session_id=" + at_bound;
  const CookieSplit s = Split({header});
  CHECK(s.session_values == Values{at_bound});
  CHECK(s.ignored_session_cookies == 1);
  CHECK(s.forwarded == "a=1");
  // The bound applies to the value without its quotes.
  CHECK(Split({"session_id=\"" + at_bound + "\""}).session_values == Values{at_bound});
}

TEST_CASE("At most 8 session values are returned; the rest are still removed") {
  std::string header;
  for (int i = 0; i < 20; ++i) header += "session_id=v" + std::to_string(i) + "; o" + std::to_string(i) + "=1; ";
  const CookieSplit s = Split({header});
  REQUIRE(s.session_values.size() == kMaxSessionCookies);
  CHECK(s.session_values.front() == "v0");
  CHECK(s.session_values.back() == "v7");
  CHECK(s.ignored_session_cookies == 12);
  CHECK(s.forwarded.find("session_id") == std::string::npos);
  CHECK(s.forwarded.rfind("o0=1; o1=1", 0) == 0);
}

TEST_CASE("A session cookie after thousands of pairs is still removed") {
  std::string header;
  for (int i = 0; i < 5000; ++i) header += "c" + std::to_string(i) + "=x;";
  header += "session_id=late";
  const CookieSplit s = Split({header});
  CHECK(s.session_values == Values{"late"});
  CHECK(s.forwarded.find("session_id") == std::string::npos);
  CHECK(s.forwarded.rfind("c0=x; c1=x", 0) == 0);
}

TEST_CASE("Forwarded pairs never carry CR, LF or NUL") {
  const std::string header = std::string("a=1\r\nX-Evil: 1; b=2; c=\0; d=4; e\n", 34);
  const CookieSplit s = Split({header});
  CHECK(s.forwarded == "b=2; d=4");
}

TEST_CASE("Arbitrary bytes never crash and never leak the session cookie or line breaks") {
  std::mt19937 rng(12345);
  const std::string alphabet = std::string("session_id=;\"\t \r\n\0\x80\xFF" "abc", 23);
  for (int round = 0; round < 3000; ++round) {
    std::string header;
    const size_t len = rng() % 200;
    for (size_t i = 0; i < len; ++i) {
      header.push_back(round % 2 ? static_cast<char>(rng() & 0xFF) : alphabet[rng() % alphabet.size()]);
    }
    const CookieSplit s = Split({header, header});
    // Each kept pair is at least one byte and costs at most one extra byte of
    // separator: the output is at most twice the input.
    CHECK(s.forwarded.size() <= 2 * (2 * header.size()));
    CHECK(s.forwarded.find_first_of(std::string("\r\n\0", 3)) == std::string::npos);
    CHECK(s.session_values.size() <= kMaxSessionCookies);
    // No forwarded pair is a session cookie.
    size_t start = 0;
    while (start <= s.forwarded.size()) {
      size_t end = s.forwarded.find("; ", start);
      if (end == std::string::npos) end = s.forwarded.size();
      const std::string pair = s.forwarded.substr(start, end - start);
      const size_t eq = pair.find('=');
      if (eq != std::string::npos) {
        std::string name = pair.substr(0, eq);
        while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
        CHECK(name != "session_id");
      }
      start = end + 2;
    }
  }
}

TEST_CASE("CookieSplitter fed header by header equals SplitCookies") {
  CookieSplitter splitter("sid");
  splitter.Add("a=1; sid=x");
  splitter.Add("");
  splitter.Add("sid=y;b=2");
  const CookieSplit incremental = splitter.Finish();
  const CookieSplit oneshot = SplitCookies({"a=1; sid=x", "", "sid=y;b=2"}, "sid");
  CHECK(incremental.session_values == Values{"x", "y"});
  CHECK(incremental.session_values == oneshot.session_values);
  CHECK(incremental.forwarded == "a=1; b=2");
  CHECK(incremental.forwarded == oneshot.forwarded);
}

}  // namespace sessiond
