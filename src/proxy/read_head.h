// ReadHead: the one place a message head is found in and taken from a
// connection's input, for requests (ClientConnection) and responses
// (Exchange) alike.
//
// The head's bytes are kept contiguous while it is incomplete (the contract
// of http/head_parser.h): Buffer::Contiguous copies only when they straddle
// blocks, and then into a block with room for the rest. At most
// max_head_bytes + 1 bytes are shown to the parser, enough for it to refuse
// a head over the limit, so pipelined bytes after a head are not copied.
// On kDone the head's block is pinned into *pin (the parsed head views its
// bytes, with no copy) and the head is consumed from the input.
#pragma once

#include <algorithm>

#include "http/head_parser.h"
#include "net/buffer.h"

namespace sessiond {

template <class Head>
HeadParser::State ReadHead(net::Buffer& in, size_t max_head_bytes, HeadParser& parser, Head* out,
                           net::BlockRef* pin) {
  if (in.empty()) return HeadParser::State::kIncomplete;
  const size_t len = std::min(in.size(), max_head_bytes + 1);
  const char* data = in.Contiguous(len);
  const HeadParser::State state = parser.Parse(data, len, out);
  if (state == HeadParser::State::kDone) {
    *pin = in.PinFront();
    in.Consume(parser.head_size());
  }
  return state;
}

}  // namespace sessiond
