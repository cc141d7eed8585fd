// libFuzzer target: the TLS listener's first bytes. See
// tls_first_bytes_check.h for what is checked.
#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tls_first_bytes_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool sigpipe_ignored = (signal(SIGPIPE, SIG_IGN), true);
  (void)sigpipe_ignored;
  sessiond::fuzz::CheckTlsFirstBytes(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
