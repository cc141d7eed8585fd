// WebSocket framing, as far as a proxy in the middle needs it (RFC 6455
// section 5.2): where one frame ends and the next begins, and a Close frame
// of sessiond's own (docs/HTTP.md, Upgrades and WebSockets).
//
// A tunnel relays bytes untouched; it follows the frame headers going past
// only so that, when it must end a WebSocket (the session ended, shutdown,
// timeouts), it can put a Close frame between two frames instead of into the
// middle of one. Nothing is validated: a peer that sends nonsense only loses
// the clean close (the connection is then cut).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sessiond {

// RFC 6455 section 7.4.1 close codes sessiond sends.
inline constexpr uint16_t kWsCloseGoingAway = 1001;       // shutdown, tunnel timeouts
inline constexpr uint16_t kWsClosePolicyViolation = 1008;  // the session ended

class WebSocketFrameTracker {
 public:
  // Follows up to `n` more bytes of the stream. Returns how many it
  // followed: all `n`, or, with stop_at_boundary, only up to the first frame
  // boundary it reaches (0 when it is at one already).
  size_t Feed(const char* p, size_t n, bool stop_at_boundary = false);
  // Between two frames (or before the first).
  bool at_boundary() const { return have_ == 0 && payload_left_ == 0; }
  // A whole Close frame (opcode 8) has gone past.
  bool close_passed() const { return close_passed_; }

 private:
  void EndFrame() {
    if (opcode_ == 8) close_passed_ = true;
  }

  uint8_t header_[14] = {};
  uint8_t have_ = 0;   // header bytes collected
  uint8_t need_ = 2;   // header bytes this frame has (known after the first two)
  uint8_t opcode_ = 0;
  uint64_t payload_left_ = 0;
  bool close_passed_ = false;
};

// The largest frame WriteWebSocketClose writes.
inline constexpr size_t kMaxWsCloseFrame = 2 + 4 + 125;

// Writes a Close frame carrying `code` and `reason` (cut to 123 bytes) to
// `out` (kMaxWsCloseFrame bytes available) and returns its size. Unmasked
// (server to client) when `mask` is null, else masked with those 4 bytes.
size_t WriteWebSocketClose(char* out, uint16_t code, std::string_view reason, const uint8_t* mask = nullptr);

}  // namespace sessiond
