// libFuzzer target: the input is everything the upstream sends in answer to
// one request. See response_framing_check.h for what is checked.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "response_framing_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sessiond::fuzz::CheckResponseBytes(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
