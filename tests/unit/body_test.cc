// BodyDecoder: strict chunked decoding and length/until-close bodies.
#include "http/body.h"

#include <doctest/doctest.h>

#include <string>

using namespace sessiond;

namespace {

// Feeds `wire` in pieces of `piece` bytes; returns the decoded body, or
// "<error: ...>" when the decoder failed.
std::string Decode(BodyFraming framing, uint64_t length, const std::string& wire, size_t piece = 1 << 20,
                   size_t max_data = 1 << 20, bool* done = nullptr) {
  BodyDecoder d;
  d.Reset(framing, length, 1024);
  std::string body;
  size_t pos = 0;
  std::string pending;
  while (pos < wire.size() || !pending.empty()) {
    if (pending.empty() || pos < wire.size()) {
      size_t n = std::min(piece, wire.size() - pos);
      pending.append(wire, pos, n);
      pos += n;
    }
    while (!pending.empty() && !d.done() && !d.failed()) {
      BodyDecoder::Step s = d.Next(pending.data(), pending.size(), max_data);
      if (d.failed()) return std::string("<error: ") + d.error() + ">";
      if (s.framing == 0 && s.data == 0) break;
      body.append(pending, s.framing, s.data);
      pending.erase(0, s.framing + s.data);
    }
    if (d.done() || d.failed() || pos >= wire.size()) break;
  }
  if (done) *done = d.done();
  return body;
}

}  // namespace

TEST_CASE("chunked bodies decode, whole or one byte at a time") {
  const std::string wire = "5\r\nhello\r\n6;name=val\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
  for (size_t piece : {size_t(1), size_t(3), size_t(1000)}) {
    CAPTURE(piece);
    bool done = false;
    CHECK(Decode(BodyFraming::kChunked, 0, wire, piece, 1 << 20, &done) == "hello world");
    CHECK(done);
  }
}

TEST_CASE("data steps respect max_data") {
  bool done = false;
  CHECK(Decode(BodyFraming::kChunked, 0, "a\r\n0123456789\r\n0\r\n\r\n", 100, 3, &done) == "0123456789");
  CHECK(done);
  CHECK(Decode(BodyFraming::kLength, 10, "0123456789EXTRA", 100, 4, &done) == "0123456789");
  CHECK(done);
}

TEST_CASE("chunk sizes in upper case hex and with whitespace before an extension") {
  CHECK(Decode(BodyFraming::kChunked, 0, "A\r\n0123456789\r\n0\r\n\r\n") == "0123456789");
  CHECK(Decode(BodyFraming::kChunked, 0, "3 ;ext\r\nabc\r\n0\r\n\r\n") == "abc");
}

TEST_CASE("malformed chunked framing fails") {
  const char* cases[] = {
      "5\r\nhelloXX0\r\n\r\n",       // junk after chunk data (Debian's http-parser accepts this)
      "5 6\r\nhello\r\n0\r\n\r\n",   // two numbers
      "zz\r\nhello\r\n0\r\n\r\n",    // not hex
      "\r\nhello\r\n0\r\n\r\n",      // empty size
      " 5\r\nhello\r\n0\r\n\r\n",    // leading space
      "5\nhello\r\n0\r\n\r\n",       // bare LF after size
      "5\r\nhello\n0\r\n\r\n",       // bare LF after data
      "0x5\r\nhello\r\n0\r\n\r\n",   // 0x prefix
      "-5\r\nhello\r\n0\r\n\r\n",
      "+5\r\nhello\r\n0\r\n\r\n",
      "1000000000000000\r\n",        // 16 hex digits: too large
      "5 \r\nhello\r\n0\r\n\r\n",    // whitespace without extension
      "0\r\nbad trailer\x01\r\n\r\n",
      "0\r\n\r\r\n",
  };
  for (const char* wire : cases) {
    CAPTURE(wire);
    std::string out = Decode(BodyFraming::kChunked, 0, wire);
    CHECK(out.rfind("<error:", 0) == 0);
  }
}

TEST_CASE("oversized trailers and extensions fail") {
  std::string trailer = "0\r\nX: " + std::string(2000, 'a') + "\r\n\r\n";
  CHECK(Decode(BodyFraming::kChunked, 0, trailer).rfind("<error:", 0) == 0);
  std::string ext = "1;" + std::string(5000, 'e') + "\r\nx\r\n0\r\n\r\n";
  CHECK(Decode(BodyFraming::kChunked, 0, ext).rfind("<error:", 0) == 0);
}

TEST_CASE("an incomplete chunked body is not done") {
  bool done = true;
  CHECK(Decode(BodyFraming::kChunked, 0, "5\r\nhel", 100, 100, &done) == "hel");
  CHECK_FALSE(done);
}

TEST_CASE("until-close bodies end only at EOF") {
  BodyDecoder d;
  d.Reset(BodyFraming::kUntilClose, 0, 0);
  BodyDecoder::Step s = d.Next("abc", 3, 100);
  CHECK(s.data == 3);
  CHECK_FALSE(d.done());
  d.FinishOnEof();
  CHECK(d.done());
  CHECK(d.body_bytes() == 3);
}

TEST_CASE("no body is done at once") {
  BodyDecoder d;
  d.Reset(BodyFraming::kNone, 0, 0);
  CHECK(d.done());
}

TEST_CASE("trailer fields must be token ':' value") {
  CHECK(Decode(BodyFraming::kChunked, 0, "1\r\nx\r\n0\r\nX-T: v\r\n\r\n") == "x");
  CHECK(Decode(BodyFraming::kChunked, 0, "1\r\nx\r\n0\r\nX-T : v\r\n\r\n").rfind("<error:", 0) == 0);
  CHECK(Decode(BodyFraming::kChunked, 0, "1\r\nx\r\n0\r\nno colon\r\n\r\n").rfind("<error:", 0) == 0);
  CHECK(Decode(BodyFraming::kChunked, 0, "1\r\nx\r\n0\r\n folded\r\n\r\n").rfind("<error:", 0) == 0);
}

TEST_CASE("a chunk size beyond max_body_bytes fails as too large before its data") {
  BodyDecoder d;
  d.Reset(BodyFraming::kChunked, 0, 1024, 10);
  std::string wire = "5\r\nhello\r\n6\r\n";
  size_t pos = 0;
  while (pos < wire.size() && !d.failed()) {
    BodyDecoder::Step s = d.Next(wire.data() + pos, wire.size() - pos, 100);
    if (s.framing + s.data == 0) break;
    pos += s.framing + s.data;
  }
  CHECK(d.failed());
  CHECK(d.too_large());
  BodyDecoder ok;
  ok.Reset(BodyFraming::kChunked, 0, 1024, 10);
  ok.Next("a\r\n", 3, 100);
  CHECK_FALSE(ok.failed());
}
