// Chunked session cookies (docs/COOKIES.md, Chunked cookies): a sealed value
// too long for one Set-Cookie line is split over NAME, NAME.1, ...; every
// line stays within 4096 bytes; the chunks are collected from the Cookie
// header and put back together; anything but the exact chunks of one value
// (tampered, reordered, missing, duplicated, mixed with another session's)
// fails to open.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "session/cookie_chunks.h"
#include "session/cookie_codec.h"
#include "session/cookie_header.h"

namespace sessiond {
namespace {

const std::string kSecret = "chunk test secret: 0123456789abcdef0123456789";
constexpr int64_t kNow = 1700000000;
constexpr int64_t kLater = kNow + 86400;

std::shared_ptr<const CookieCodec> Codec(size_t max_chunks = 4, const std::string& name = "session_id",
                                         bool permanent = true) {
  Config config;
  config.secret_key = kSecret;
  config.session.manager = StoreKind::kCookie;
  config.session.max_cookie_chunks = max_chunks;
  config.session.max_session_bytes = 65536;
  config.session.cookie_name = name;
  config.session.permanent = permanent;
  config.session.cookie_domain = "sub.example.com";
  Result<std::shared_ptr<const CookieCodec>> codec = CookieCodec::Create(config);
  REQUIRE(codec.ok());
  return *codec;
}

SessionData DataOfSize(size_t n) { return {{"blob", "\"" + std::string(n, 'x') + "\""}}; }

// The Set-Cookie values that carry `value`.
std::vector<std::string> Lines(const CookieCodec& codec, const std::string& value) {
  std::vector<std::string> lines;
  std::string buf;
  codec.EmitSetCookies(value, kLater, kNow, &buf, [&](std::string_view v) { lines.emplace_back(v); });
  return lines;
}

// "name=value" of a Set-Cookie value.
std::string Pair(const std::string& set_cookie) { return set_cookie.substr(0, set_cookie.find(';')); }

// What the browser sends back for these Set-Cookie values, in this order.
std::string CookieHeader(const std::vector<std::string>& set_cookies) {
  std::string header;
  for (const std::string& s : set_cookies) {
    if (!header.empty()) header += "; ";
    header += Pair(s);
  }
  return header;
}

// The filter's read path: split the header, assemble the first session
// value's chunks, open it.
DecodedCookie Read(const CookieCodec& codec, const std::string& header, std::string* forwarded = nullptr) {
  SessionCookieViews views;
  std::string rest;
  SplitCookieHeader(header, codec.cookie_name(), &views, &rest);
  if (forwarded) *forwarded = rest;
  if (views.count == 0) return DecodedCookie();
  std::string assembled;
  std::string_view value = views.values[0];
  switch (AssembleChunks(value, views, &assembled)) {
    case ChunkAssembly::kSingle: break;
    case ChunkAssembly::kAssembled: value = assembled; break;
    case ChunkAssembly::kInvalid: return DecodedCookie();
  }
  return codec.Open(value, kNow);
}

TEST_CASE("a small session is one cookie; a large one is split into NAME, NAME.1, ... that read back whole") {
  auto codec = Codec();
  Result<std::string> id = codec->NewSessionId();
  REQUIRE(id.ok());
  Result<std::string> small = codec->Seal(*id, kLater, DataOfSize(100));
  REQUIRE(small.ok());
  CHECK(codec->ChunksFor(*small) == 1);
  std::vector<std::string> one = Lines(*codec, *small);
  REQUIRE(one.size() == 1);
  CHECK(Pair(one[0]) == "session_id=" + *small);

  const SessionData big_data = DataOfSize(7000);
  Result<std::string> big = codec->Seal(*id, kLater, big_data);
  REQUIRE(big.ok());
  const size_t n = codec->ChunksFor(*big);
  CHECK(n == 3);
  std::vector<std::string> lines = Lines(*codec, *big);
  REQUIRE(lines.size() == n);
  CHECK(lines[0].rfind("session_id=3c3.", 0) == 0);
  CHECK(lines[1].rfind("session_id.1=", 0) == 0);
  CHECK(lines[2].rfind("session_id.2=", 0) == 0);
  for (const std::string& line : lines) {
    CAPTURE(line.substr(0, 40));
    CHECK(std::string("Set-Cookie: ").size() + line.size() <= 4096);
    CHECK(line.find("; Domain=sub.example.com") != std::string::npos);  // every chunk has the attributes
  }
  std::string forwarded;
  DecodedCookie d = Read(*codec, "theme=dark; " + CookieHeader(lines) + "; lang=en", &forwarded);
  REQUIRE(d.verdict == CookieVerdict::kValid);
  CHECK(d.data == big_data);
  CHECK(d.id == *id);
  CHECK(forwarded == "theme=dark; lang=en");  // no chunk reaches the backend
}

TEST_CASE("every Set-Cookie line stays within 4096 bytes at the edge between one and two cookies") {
  for (bool permanent : {true, false}) {
    auto codec = Codec(4, "sid", permanent);
    Result<std::string> id = codec->NewSessionId();
    REQUIRE(id.ok());
    bool saw_one = false, saw_two = false;
    size_t longest_single = 0;
    for (size_t n = 2700; n < 3100; ++n) {
      Result<std::string> sealed = codec->Seal(*id, kLater, DataOfSize(n));
      REQUIRE(sealed.ok());
      std::vector<std::string> lines = Lines(*codec, *sealed);
      CHECK(lines.size() == codec->ChunksFor(*sealed));
      size_t longest = 0;
      for (const std::string& line : lines) longest = std::max(longest, line.size() + 12);
      CHECK(longest <= 4096);
      saw_one = saw_one || lines.size() == 1;
      saw_two = saw_two || lines.size() == 2;
      if (lines.size() == 1) longest_single = std::max(longest_single, longest);
      CHECK(Read(*codec, CookieHeader(lines)).verdict == CookieVerdict::kValid);
    }
    CHECK(saw_one);
    CHECK(saw_two);
    // One cookie is used as long as it fits: the room kept for Max-Age's
    // longest value (12 digits) and a 5-digit year is all that is left over.
    CHECK(longest_single > 4096 - 16);
  }
}

TEST_CASE("a session needing more than max_cookie_chunks cookies is refused as too large") {
  auto codec = Codec(2);
  Result<std::string> id = codec->NewSessionId();
  REQUIRE(id.ok());
  Result<std::string> sealed = codec->Seal(*id, kLater, DataOfSize(7000));
  REQUIRE_FALSE(sealed.ok());
  CHECK(sealed.status().code() == Status::Code::kTooLarge);
  CHECK(sealed.status().message() == "session cookie would need 3 cookies, over session.max_cookie_chunks (2)");
}

struct TwoSessions {
  std::shared_ptr<const CookieCodec> codec = Codec();
  std::vector<std::string> a, b;
  SessionData data_a = DataOfSize(8000), data_b = {{"blob", "\"" + std::string(8000, 'y') + "\""}};
  TwoSessions() {
    Result<std::string> id_a = codec->NewSessionId(), id_b = codec->NewSessionId();
    REQUIRE(id_a.ok());
    REQUIRE(id_b.ok());
    Result<std::string> va = codec->Seal(*id_a, kLater, data_a), vb = codec->Seal(*id_b, kLater, data_b);
    REQUIRE(va.ok());
    REQUIRE(vb.ok());
    a = Lines(*codec, *va);
    b = Lines(*codec, *vb);
    REQUIRE(a.size() == 3);
    REQUIRE(b.size() == 3);
  }
};

TEST_CASE("chunks: tampered, reordered, missing, duplicated or mixed across sessions are invalid") {
  TwoSessions s;
  REQUIRE(Read(*s.codec, CookieHeader(s.a)).data == s.data_a);
  REQUIRE(Read(*s.codec, CookieHeader(s.b)).data == s.data_b);
  // Cookie order in the header does not matter: names say where each goes.
  CHECK(Read(*s.codec, CookieHeader({s.a[2], s.a[0], s.a[1]})).data == s.data_a);

  SUBCASE("one byte of a chunk changed") {
    for (size_t k = 0; k < 3; ++k) {
      std::vector<std::string> t = s.a;
      const size_t at = t[k].find('=') + 10;
      t[k][at] = t[k][at] == 'A' ? 'B' : 'A';
      CHECK(Read(*s.codec, CookieHeader(t)).verdict == CookieVerdict::kInvalid);
    }
  }
  SUBCASE("two chunks' values swapped") {
    std::vector<std::string> t = s.a;
    const std::string v1 = Pair(t[1]).substr(Pair(t[1]).find('=') + 1);
    const std::string v2 = Pair(t[2]).substr(Pair(t[2]).find('=') + 1);
    CHECK(Read(*s.codec, CookieHeader({t[0], "session_id.1=" + v2, "session_id.2=" + v1})).verdict ==
          CookieVerdict::kInvalid);
  }
  SUBCASE("a chunk missing") {
    CHECK(Read(*s.codec, CookieHeader({s.a[0], s.a[2]})).verdict == CookieVerdict::kInvalid);
    CHECK(Read(*s.codec, CookieHeader({s.a[0], s.a[1]})).verdict == CookieVerdict::kInvalid);
    CHECK(Read(*s.codec, CookieHeader({s.a[1], s.a[2]})).verdict == CookieVerdict::kInvalid);  // no head
  }
  SUBCASE("a chunk sent twice, even with the same value") {
    CHECK(Read(*s.codec, CookieHeader({s.a[0], s.a[1], s.a[1], s.a[2]})).verdict == CookieVerdict::kInvalid);
    CHECK(Read(*s.codec, CookieHeader({s.a[0], s.a[1], s.b[1], s.a[2]})).verdict == CookieVerdict::kInvalid);
  }
  SUBCASE("a chunk of another session") {
    CHECK(Read(*s.codec, CookieHeader({s.a[0], s.b[1], s.a[2]})).verdict == CookieVerdict::kInvalid);
    CHECK(Read(*s.codec, CookieHeader({s.b[0], s.a[1], s.a[2]})).verdict == CookieVerdict::kInvalid);
  }
  SUBCASE("a head announcing a different count") {
    std::vector<std::string> t = s.a;
    t[0].replace(t[0].find("3c3."), 4, "3c2.");
    CHECK(Read(*s.codec, CookieHeader(t)).verdict == CookieVerdict::kInvalid);
    t[0].replace(t[0].find("3c2."), 4, "3c9.");
    CHECK(Read(*s.codec, CookieHeader(t)).verdict == CookieVerdict::kInvalid);
  }
  SUBCASE("the pieces joined into one cookie by the client") {
    std::string joined = "session_id=3.";
    for (size_t k = 0; k < 3; ++k) {
      const std::string p = Pair(s.a[k]);
      std::string v = p.substr(p.find('=') + 1);
      if (k == 0) v = v.substr(4);  // "3c3."
      joined += v;
    }
    // Over one cookie's 8192-byte bound it is not even looked at.
    CHECK(Read(*s.codec, joined).verdict == CookieVerdict::kInvalid);
  }
}

TEST_CASE("a stale higher chunk beside a shorter session does not spoil it") {
  TwoSessions s;
  auto codec = s.codec;
  Result<std::string> id = codec->NewSessionId();
  REQUIRE(id.ok());
  Result<std::string> shorter = codec->Seal(*id, kLater, DataOfSize(5000));
  REQUIRE(shorter.ok());
  std::vector<std::string> lines = Lines(*codec, *shorter);
  REQUIRE(lines.size() == 2);
  lines.push_back(s.a[2]);  // NAME.2 left over from a larger session
  DecodedCookie d = Read(*codec, CookieHeader(lines));
  CHECK(d.verdict == CookieVerdict::kValid);
  CHECK(d.data == DataOfSize(5000));
}

TEST_CASE("the splitter takes every NAME.DIGITS cookie out of the forwarded header") {
  SessionCookieViews views;
  std::string forwarded;
  SplitCookieHeader("a=1; sid.1=x; sid.10=y; sid.0=z; sid.01=w; sid.x=keep; sid.=keep2; sidx.1=keep3; sid.7=v",
                    "sid", &views, &forwarded);
  CHECK(forwarded == "a=1; sid.x=keep; sid.=keep2; sidx.1=keep3");
  CHECK(views.count == 0);
  CHECK(views.chunk_counts[1] == 1);
  CHECK(views.chunks[1] == "x");
  CHECK(views.chunk_counts[7] == 1);
  CHECK(views.ignored == 3);  // sid.10, sid.0, sid.01
  CHECK(views.has_chunks());
  CHECK(AnnouncedChunks("3c4.abc") == 4);
  CHECK(AnnouncedChunks("3c1.abc") == 1);
  CHECK(AnnouncedChunks("3c9.abc") == 1);
  CHECK(AnnouncedChunks("3.abc") == 1);
}

TEST_CASE("AssembleChunks on hostile heads never reads past what it was given") {
  SessionCookieViews views;
  views.chunks[1] = "AAAA";
  views.chunk_counts[1] = 1;
  std::string out;
  for (const char* head : {"3c", "3c2", "3c2.", "3c2.x", "3cA.x", "3c0.x", "3c", "3.x", "c", ""}) {
    CAPTURE(head);
    const ChunkAssembly got = AssembleChunks(head, views, &out);
    const std::string h = head;
    if (h == "3c2.x") {
      CHECK(got == ChunkAssembly::kAssembled);
      CHECK(out == "3.xAAAA");
    } else if (h.rfind("3c", 0) == 0) {
      CHECK(got == ChunkAssembly::kInvalid);
    } else {
      CHECK(got == ChunkAssembly::kSingle);
    }
  }
}

}  // namespace
}  // namespace sessiond
