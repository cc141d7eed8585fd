// libFuzzer target: a control byte, then a head fed at every split point.
// See head_split_check.h for the input format and what is checked.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "head_split_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sessiond::fuzz::CheckHeadSplit(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
