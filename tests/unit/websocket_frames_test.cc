// Frame boundaries and sessiond's Close frame (src/http/websocket_frames.h).
#include "http/websocket_frames.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace sessiond;

namespace {

// A frame: FIN + opcode, the length in the shortest form, an optional mask.
std::string Frame(uint8_t opcode, size_t len, bool masked) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  const char mask_bit = masked ? static_cast<char>(0x80) : 0;
  if (len < 126) {
    f.push_back(static_cast<char>(mask_bit | len));
  } else if (len < 65536) {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(len >> 8));
    f.push_back(static_cast<char>(len & 0xff));
  } else {
    f.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((static_cast<uint64_t>(len) >> (8 * i)) & 0xff));
  }
  if (masked) f += "\x01\x02\x03\x04";
  f += std::string(len, 'p');
  return f;
}

}  // namespace

TEST_CASE("boundaries are found whatever the stream's split") {
  const std::string stream = Frame(1, 5, false) + Frame(2, 300, true) + Frame(2, 70000, false) + Frame(9, 0, true) +
                             Frame(8, 2, false);
  const std::vector<size_t> ends = {7, 7 + 308, 7 + 308 + 70010, 7 + 308 + 70010 + 6, stream.size()};
  for (size_t piece : {size_t{1}, size_t{3}, size_t{7}, size_t{4096}, stream.size()}) {
    INFO("pieces of " << piece);
    WebSocketFrameTracker t;
    std::vector<size_t> found;
    size_t pos = 0;
    while (pos < stream.size()) {
      const size_t n = std::min(piece, stream.size() - pos);
      size_t done = 0;
      while (done < n) {
        size_t took = t.Feed(stream.data() + pos + done, n - done, /*stop_at_boundary=*/true);
        if (took == 0) took = t.Feed(stream.data() + pos + done, 1);  // at a boundary: step into the next frame
        done += took;
        if (t.at_boundary()) found.push_back(pos + done);
      }
      pos += n;
    }
    CHECK(found == ends);
    CHECK(t.close_passed());
  }
}

TEST_CASE("feeding without stops follows everything") {
  WebSocketFrameTracker t;
  const std::string s = Frame(1, 10, true) + Frame(1, 3, false).substr(0, 4);
  CHECK(t.Feed(s.data(), s.size()) == s.size());
  CHECK_FALSE(t.at_boundary());
  CHECK_FALSE(t.close_passed());
  CHECK(t.Feed("ab", 2, /*stop_at_boundary=*/true) == 1);  // one payload byte was left
  CHECK(t.at_boundary());
  CHECK(t.Feed("x", 1, /*stop_at_boundary=*/true) == 0);
}

TEST_CASE("a Close frame is not closed until its payload has passed") {
  WebSocketFrameTracker t;
  const std::string close = Frame(8, 2, true);
  t.Feed(close.data(), close.size() - 1);
  CHECK_FALSE(t.close_passed());
  t.Feed(close.data() + close.size() - 1, 1);
  CHECK(t.close_passed());
}

TEST_CASE("sessiond's Close frame, unmasked and masked") {
  char buf[kMaxWsCloseFrame];
  size_t n = WriteWebSocketClose(buf, kWsClosePolicyViolation, "session ended");
  REQUIRE(n == 2 + 2 + 13);
  CHECK(static_cast<uint8_t>(buf[0]) == 0x88);
  CHECK(buf[1] == 15);
  CHECK(static_cast<uint8_t>(buf[2]) == 0x03);
  CHECK(static_cast<uint8_t>(buf[3]) == 0xF0);  // 1008
  CHECK(std::string(buf + 4, 13) == "session ended");
  const uint8_t mask[4] = {0xAA, 0x55, 0x0F, 0xF0};
  n = WriteWebSocketClose(buf, kWsCloseGoingAway, std::string(300, 'r'), mask);
  REQUIRE(n == 2 + 4 + 125);
  CHECK(static_cast<uint8_t>(buf[1]) == (0x80 | 125));
  CHECK((static_cast<uint8_t>(buf[6]) ^ 0xAA) == 0x03);  // 1001, unmasked
  CHECK((static_cast<uint8_t>(buf[7]) ^ 0x55) == 0xE9);
  WebSocketFrameTracker t;
  CHECK(t.Feed(buf, n) == n);
  CHECK(t.at_boundary());
  CHECK(t.close_passed());
}
