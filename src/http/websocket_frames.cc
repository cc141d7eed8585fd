#include "http/websocket_frames.h"

#include <algorithm>
#include <cstring>

namespace sessiond {

size_t WebSocketFrameTracker::Feed(const char* p, size_t n, bool stop_at_boundary) {
  if (stop_at_boundary && at_boundary()) return 0;
  size_t i = 0;
  while (i < n) {
    if (payload_left_ > 0) {
      const uint64_t take = std::min<uint64_t>(payload_left_, n - i);
      payload_left_ -= take;
      i += static_cast<size_t>(take);
      if (payload_left_ == 0) {
        EndFrame();
        if (stop_at_boundary) return i;
      }
      continue;
    }
    header_[have_++] = static_cast<uint8_t>(p[i++]);
    if (have_ == 2) {
      const uint8_t len7 = header_[1] & 0x7f;
      need_ = static_cast<uint8_t>(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((header_[1] & 0x80) ? 4 : 0));
    }
    if (have_ < 2 || have_ < need_) continue;
    opcode_ = header_[0] & 0x0f;
    const uint8_t len7 = header_[1] & 0x7f;
    if (len7 == 126) {
      payload_left_ = static_cast<uint64_t>(header_[2]) << 8 | header_[3];
    } else if (len7 == 127) {
      payload_left_ = 0;
      for (int k = 2; k < 10; ++k) payload_left_ = payload_left_ << 8 | header_[k];
    } else {
      payload_left_ = len7;
    }
    have_ = 0;
    need_ = 2;
    if (payload_left_ == 0) {
      EndFrame();
      if (stop_at_boundary) return i;
    }
  }
  return i;
}

size_t WriteWebSocketClose(char* out, uint16_t code, std::string_view reason, const uint8_t* mask) {
  reason = reason.substr(0, 123);
  const size_t len = 2 + reason.size();
  size_t n = 0;
  out[n++] = static_cast<char>(0x88);  // FIN, opcode 8
  out[n++] = static_cast<char>((mask ? 0x80 : 0) | len);
  if (mask) {
    memcpy(out + n, mask, 4);
    n += 4;
  }
  char* payload = out + n;
  payload[0] = static_cast<char>(code >> 8);
  payload[1] = static_cast<char>(code & 0xff);
  memcpy(payload + 2, reason.data(), reason.size());
  if (mask) {
    for (size_t k = 0; k < len; ++k) payload[k] = static_cast<char>(payload[k] ^ mask[k % 4]);
  }
  return n + len;
}

}  // namespace sessiond
