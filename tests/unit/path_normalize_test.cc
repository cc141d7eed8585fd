// The normal form of request paths (src/base/path_normalize.h;
// docs/HTTP.md, Path normalisation): every spelling a backend could read as
// another path is either normalised to the one path rules see, or refused.
#include "base/path_normalize.h"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "new_counter.h"

namespace sessiond {
namespace {

struct Normal {
  PathResult result;
  std::string target;
  std::string key;
  std::string reason;
};

Normal Run(std::string_view target) {
  NormalizedPath out;
  const char* reason = "";
  Normal n;
  n.result = NormalizeTarget(target, &out, &reason);
  n.target = out.target;
  n.key = out.match_key;
  n.reason = reason;
  if (n.result == PathResult::kOk) CHECK(out.path() == out.target.substr(0, out.target.find('?')));
  return n;
}

TEST_CASE("path normalisation: dot segments, empty segments and unreserved encodings") {
  struct Case {
    const char* in;
    const char* target;
    const char* key;
  };
  const Case cases[] = {
      {"/", "/", "/"},
      {"/a/b", "/a/b", "/a/b"},
      {"/a/b/", "/a/b/", "/a/b/"},
      {"/admin/../x", "/x", "/x"},
      {"/admin/./x", "/admin/x", "/admin/x"},
      {"/a/b/..", "/a/", "/a/"},
      {"/a/b/.", "/a/b/", "/a/b/"},
      {"/..", "/", "/"},
      {"/../../admin", "/admin", "/admin"},
      {"/%2e%2e/admin", "/admin", "/admin"},
      {"/x/%2E%2e/admin", "/admin", "/admin"},
      {"/x/.%2e/admin", "/admin", "/admin"},
      {"//admin", "/admin", "/admin"},
      {"///admin//x///", "/admin/x/", "/admin/x/"},
      {"/%61dmin", "/admin", "/admin"},
      {"/%7euser/%5f", "/~user/_", "/~user/_"},
      {"/ADMIN", "/ADMIN", "/admin"},
      {"/Admin/X", "/Admin/X", "/admin/x"},
      {"/admin;x", "/admin;x", "/admin"},
      {"/admin;jsessionid=AB/x", "/admin;jsessionid=AB/x", "/admin/x"},
      {"/x/..;/admin", "/admin", "/admin"},
      {"/x/..;jsessionid=1/admin", "/admin", "/admin"},
      {"/x/.;y/admin", "/x/admin", "/x/admin"},
      {"/;x/admin", "/admin", "/admin"},        // a segment of parameters only is an empty segment
      {"/a/;/b/;x", "/a/b/", "/a/b/"},
      {"/a%3ab", "/a%3Ab", "/a%3ab"},
      {"/a%3Ab", "/a%3Ab", "/a%3ab"},
      {"/caf\xc3\xa9", "/caf%C3%A9", "/caf%c3%a9"},
      {"/caf%c3%a9", "/caf%C3%A9", "/caf%c3%a9"},
      {"/a%20b", "/a%20b", "/a%20b"},
      {"/100%25off", "/100%25off", "/100%25off"},
      {"/a?x=/../y#z", "/a?x=/../y#z", "/a"},
      {"/a/../b?q", "/b?q", "/b"},
      {"/?", "/?", "/"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.in);
    Normal n = Run(c.in);
    REQUIRE(n.result == PathResult::kOk);
    CHECK(n.target == c.target);
    CHECK(n.key == c.key);
  }
}

TEST_CASE("path normalisation refuses what backends read in more than one way") {
  const char* refused[] = {
      "/a%2Fb",           // encoded slash
      "/a%2fb",
      "/admin%5c..%5cx",  // encoded backslash
      "/admin\\x",        // raw backslash
      "/a%00b",           // NUL
      "/a%3Bb",           // encoded ';'
      "/admin%252e%252e/x",  // double encoding
      "/a%25%32%65",      // %25 then hex digits (they decode to "2e")
      "/a%",              // malformed encodings
      "/a%4",
      "/a%zz",
      "/a%4g",
      "/admin#frag",      // '#' in the path
      "/%c0%ae%c0%ae/admin",  // overlong '.'
      "/\xc0\xae",
      "/%c1%9c",
      "/%e0%80%ae",       // overlong 3-byte
      "/%f0%80%80%ae",    // overlong 4-byte
      "/admin.",          // trailing dot
      "/admin./x",
      "/x/...",
      "/admin%2e",        // the same, encoded
      "/admin%20",        // trailing space
      "/admin%20/x",
      "",
      "admin",
  };
  for (const char* in : refused) {
    CAPTURE(in);
    Normal n = Run(in);
    CHECK(n.result == PathResult::kRefused);
    CHECK(!n.reason.empty());
  }
}

TEST_CASE("path normalisation: the asterisk-form is not a path") {
  CHECK(Run("*").result == PathResult::kNotAPath);
}

TEST_CASE("path normalisation: valid multi-byte UTF-8 passes; only overlong forms are refused") {
  CHECK(Run("/%e0%a0%80").result == PathResult::kOk);     // U+0800, the first 3-byte code point
  CHECK(Run("/%f0%90%80%80").result == PathResult::kOk);  // U+10000
  CHECK(Run("/%c2%a0").result == PathResult::kOk);
  CHECK(Run("/%e0%9f%bf").result == PathResult::kRefused);
}

TEST_CASE("path normalisation is idempotent: a normalised target normalises to itself") {
  std::mt19937 rng(1234);
  const std::string alphabet = "/.;%2eEfF0aA~_-:@!$&'()*+,=?x\xc3\xa9";
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string in = "/";
    const int len = static_cast<int>(rng() % 24);
    for (int k = 0; k < len; ++k) in.push_back(alphabet[rng() % alphabet.size()]);
    Normal first = Run(in);
    if (first.result != PathResult::kOk) continue;
    ++ok;
    CAPTURE(in);
    Normal second = Run(first.target);
    REQUIRE(second.result == PathResult::kOk);
    CHECK(second.target == first.target);
    CHECK(second.key == first.key);
    // A key is a path without parameters, dot segments or upper case.
    CHECK(first.key.find(';') == std::string::npos);
    CHECK(first.key.find("/./") == std::string::npos);
    CHECK(first.key.find("/../") == std::string::npos);
    CHECK(first.key.find("//") == std::string::npos);
  }
  CHECK(ok > 1000);  // the generator reaches the interesting cases
}

TEST_CASE("IsCanonicalRulePath: rule paths are written in normal form, without parameters or a query") {
  CHECK(IsCanonicalRulePath("/"));
  CHECK(IsCanonicalRulePath("/admin"));
  CHECK(IsCanonicalRulePath("/admin/"));
  CHECK(IsCanonicalRulePath("/Admin"));
  CHECK(IsCanonicalRulePath("/caf%C3%A9"));
  CHECK_FALSE(IsCanonicalRulePath("/caf%c3%a9"));  // lower-case hex is not the normal form
  CHECK_FALSE(IsCanonicalRulePath("admin"));
  CHECK_FALSE(IsCanonicalRulePath("//admin"));
  CHECK_FALSE(IsCanonicalRulePath("/a/../b"));
  CHECK_FALSE(IsCanonicalRulePath("/%61dmin"));
  CHECK_FALSE(IsCanonicalRulePath("/admin;x"));
  CHECK_FALSE(IsCanonicalRulePath("/admin?x"));
  CHECK_FALSE(IsCanonicalRulePath("/admin."));
}

TEST_CASE("path normalisation allocates nothing once its buffers have grown") {
  NormalizedPath out;
  const char* reason = nullptr;
  REQUIRE(NormalizeTarget("/some/long/enough/path/../x;y?query=1", &out, &reason) == PathResult::kOk);
  testing::NewCounter counter;
  for (int i = 0; i < 100; ++i) {
    REQUIRE(NormalizeTarget("/some/long/enough/path/../x;y?query=2", &out, &reason) == PathResult::kOk);
  }
  CHECK(counter.count() == 0);
}

}  // namespace
}  // namespace sessiond
