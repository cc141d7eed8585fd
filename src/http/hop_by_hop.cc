#include "http/hop_by_hop.h"

#include <string>

namespace sessiond {

namespace {

bool IsHopByHop(HeaderId id) {
  switch (id) {
    case HeaderId::kConnection:
    case HeaderId::kKeepAlive:
    case HeaderId::kTe:
    case HeaderId::kTrailer:
    case HeaderId::kTransferEncoding:
    case HeaderId::kUpgrade:
    case HeaderId::kContentLength:
    case HeaderId::kProxyAny:
      return true;
    default:
      return false;
  }
}

}  // namespace

void RemoveHopByHop(HeaderList* headers) {
  // Connection may name any number of fields; beyond 32 names the rest are
  // ignored (a bound on attacker-controlled work, not a real limit). Every
  // token names a field, "close" included (RFC 9110 7.6.1: a field called
  // Close goes with Connection: close; the name is reserved for that reason).
  // Host alone is kept: it is end-to-end and sessiond has already read it.
  std::string_view named[32];
  size_t named_count = 0;
  for (const Header& h : headers->fields()) {
    if (h.id != HeaderId::kConnection) continue;
    std::string_view list = h.value;
    while (!list.empty() && named_count < 32) {
      size_t comma = list.find(',');
      std::string_view token = TrimOws(list.substr(0, comma));
      if (!token.empty() && ClassifyHeader(token) != HeaderId::kHost) {
        named[named_count++] = token;
      }
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  headers->RemoveIf([&](const Header& h) {
    if (IsHopByHop(h.id)) return true;
    for (size_t i = 0; i < named_count; ++i) {
      if (EqualsIgnoreCase(h.name, named[i])) return true;
    }
    return false;
  });
}

void SetForwardedHeaders(HeaderList* headers, std::string_view client_ip, std::string_view host) {
  std::string xff;  // usually just the client's address: no allocation
  for (const Header& f : headers->fields()) {
    if (f.id != HeaderId::kXForwardedFor || f.value.empty()) continue;
    if (!xff.empty()) xff.append(", ");
    xff.append(f.value);
  }
  if (!xff.empty()) xff.append(", ");
  xff.append(client_ip);
  headers->RemoveIf([](const Header& h) {
    return h.id == HeaderId::kXForwardedFor || h.id == HeaderId::kXForwardedProto ||
           h.id == HeaderId::kXForwardedHost;
  });
  headers->AppendValueCopy(kFieldXForwardedFor, xff);
  headers->AppendClassified(kFieldXForwardedProto.name, "http", kFieldXForwardedProto.id);
  if (!host.empty()) headers->AppendClassified(kFieldXForwardedHost.name, host, kFieldXForwardedHost.id);
}

}  // namespace sessiond
