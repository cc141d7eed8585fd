// libFuzzer target: the input is a response head (and whatever follows it).
// See head_check.h for the invariants and http_parser_oracle.h for the
// differential check against http-parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http_parser_oracle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sessiond;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (bool request_was_head : {false, true}) {
    HeadParser parser;
    ResponseHead resp;
    HeadParser::State state;
    fuzz::CheckOneResponseHead(bytes, fuzz::kResponseMaxHeaderBytes, request_was_head, &parser, &resp, &state);
    if (state == HeadParser::State::kDone) fuzz::CompareWithOracle(bytes.substr(0, parser.head_size()), resp);
  }
  return 0;
}
