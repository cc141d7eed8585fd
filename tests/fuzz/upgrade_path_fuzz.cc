// libFuzzer target: an upgrade request with the bytes pipelined behind it,
// and the backend's answer with the bytes that follow (see
// upgrade_path_check.h for the input format and the invariants).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "upgrade_path_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sessiond::fuzz::CheckUpgradePath(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
