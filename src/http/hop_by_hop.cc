#include "http/hop_by_hop.h"

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

}  // namespace sessiond
