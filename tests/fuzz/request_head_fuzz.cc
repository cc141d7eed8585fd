// libFuzzer target: the input is a request head (and whatever follows it).
// See head_check.h for the invariants and http_parser_oracle.h for the
// differential check against http-parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http_parser_oracle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sessiond;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (const fuzz::RequestLimits& limits : {fuzz::RoomyRequestLimits(), fuzz::TightRequestLimits()}) {
    HeadParser parser;
    RequestHead req;
    HeadParser::State state;
    fuzz::CheckOneRequestHead(bytes, limits, &parser, &req, &state);
    if (state == HeadParser::State::kDone) fuzz::CompareWithOracle(bytes.substr(0, parser.head_size()), req);
  }
  return 0;
}
