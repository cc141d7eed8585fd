// libFuzzer target: upstream X-Session-* instruction headers. See
// instruction_parser_check.h for the input format and what is checked.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "instruction_parser_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sessiond::fuzz::CheckInstructions(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
