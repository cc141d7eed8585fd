#include "http/hop_by_hop.h"

#include <string>

namespace sessiond {

void RemoveHopByHop(HeaderList* headers) {
  static const char* const kFixed[] = {"connection", "keep-alive", "te", "trailer", "transfer-encoding",
                                       "upgrade", "content-length"};
  // Connection may name any number of fields; beyond 32 distinct names the
  // rest are ignored (a bound on attacker-controlled work, not a real limit).
  std::string_view named[32];
  size_t named_count = 0;
  for (const Header& h : headers->fields()) {
    if (!EqualsIgnoreCase(h.name, "connection")) continue;
    std::string_view list = h.value;
    while (!list.empty() && named_count < 32) {
      size_t comma = list.find(',');
      std::string_view token = TrimOws(list.substr(0, comma));
      if (!token.empty() && !EqualsIgnoreCase(token, "host")) named[named_count++] = token;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  headers->RemoveIf([&](const Header& h) {
    if (StartsWithIgnoreCase(h.name, "proxy-")) return true;
    for (const char* f : kFixed) {
      if (EqualsIgnoreCase(h.name, f)) return true;
    }
    for (size_t i = 0; i < named_count; ++i) {
      if (EqualsIgnoreCase(h.name, named[i])) return true;
    }
    return false;
  });
}

void SetForwardedHeaders(HeaderList* headers, std::string_view client_ip, std::string_view host) {
  std::string xff;
  for (const Header& f : headers->fields()) {
    if (!EqualsIgnoreCase(f.name, "x-forwarded-for") || f.value.empty()) continue;
    if (!xff.empty()) xff.append(", ");
    xff.append(f.value);
  }
  if (!xff.empty()) xff.append(", ");
  xff.append(client_ip);
  headers->Remove("x-forwarded-for");
  headers->Remove("x-forwarded-proto");
  headers->Remove("x-forwarded-host");
  headers->AppendCopy("X-Forwarded-For", xff);
  headers->AppendCopy("X-Forwarded-Proto", "http");
  if (!host.empty()) headers->AppendCopy("X-Forwarded-Host", host);
}

}  // namespace sessiond
