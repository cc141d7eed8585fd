// libFuzzer target: the input is everything a client sends on one connection.
// See request_framing_check.h for what is checked.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "request_framing_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  sessiond::fuzz::CheckRequestStream(bytes);
  // Tight limits as well: the 413 and 431 decisions, and bodies cut short.
  sessiond::fuzz::RequestLimits tight;
  tight.max_header_bytes = 1024;
  tight.max_body_bytes = 8;
  sessiond::fuzz::CheckRequestStream(bytes, tight);
  return 0;
}
