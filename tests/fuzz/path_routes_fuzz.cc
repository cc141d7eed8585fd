// libFuzzer target: path normalisation and access-rule matching. See
// path_routes_check.h for the input format and what is checked.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "path_routes_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sessiond::fuzz::CheckPathRoutes(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
