// libFuzzer target: splitting Cookie headers around the session cookie. See
// cookie_header_check.h for the input format and what is checked.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cookie_header_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sessiond::fuzz::CheckCookieHeaders(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
