// libFuzzer target: the configuration loader on arbitrary YAML. See
// config_loader_check.h for the environment and what is checked.
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "config_loader_check.h"

// upstream: http://NAME resolves NAME with getaddrinfo. A fuzzer must not send
// DNS queries (slow, flaky, and noise on the network), so this binary
// replaces the resolver: names ending in ".test" (RFC 2606, never real)
// resolve to 192.0.2.1 (TEST-NET-1), every other name fails. A definition in
// the executable takes precedence over libc's (and ASan's weak interceptor).
extern "C" int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                           struct addrinfo** res) {
  (void)hints;
  const std::string_view name = node ? node : "";
  if (name.size() < 5 || name.substr(name.size() - 5) != ".test") return EAI_NONAME;
  auto* sin = static_cast<sockaddr_in*>(std::calloc(1, sizeof(sockaddr_in)));
  auto* ai = static_cast<addrinfo*>(std::calloc(1, sizeof(addrinfo)));
  if (sin == nullptr || ai == nullptr) {
    std::free(sin);
    std::free(ai);
    return EAI_MEMORY;
  }
  sin->sin_family = AF_INET;
  sin->sin_port = htons(static_cast<uint16_t>(service ? std::atoi(service) : 0));
  sin->sin_addr.s_addr = htonl(0xC0000201);  // 192.0.2.1
  ai->ai_family = AF_INET;
  ai->ai_socktype = SOCK_STREAM;
  ai->ai_addrlen = sizeof(sockaddr_in);
  ai->ai_addr = reinterpret_cast<sockaddr*>(sin);
  *res = ai;
  return 0;
}

extern "C" void freeaddrinfo(struct addrinfo* res) {
  while (res != nullptr) {
    addrinfo* next = res->ai_next;
    std::free(res->ai_addr);
    std::free(res);
    res = next;
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sessiond::fuzz::CheckConfigText(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
