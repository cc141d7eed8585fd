#include "http/upgrade.h"

#include "base/web_origin.h"

namespace sessiond {

namespace {

// Calls fn(item) for each non-empty comma-separated item (OWS trimmed), at
// most `limit` items; stops early when fn returns true, returning true.
template <class Fn>
bool AnyItem(std::string_view list, size_t limit, Fn fn) {
  size_t seen = 0;
  while (!list.empty() && seen < limit) {
    const size_t comma = list.find(',');
    const std::string_view item = TrimOws(list.substr(0, comma));
    if (!item.empty()) {
      ++seen;
      if (fn(item)) return true;
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

constexpr size_t kMaxItems = 32;

// "name[/version]" protocols equal: the name in any case, the version exactly.
bool SameProtocol(std::string_view a, std::string_view b) {
  const size_t sa = a.find('/'), sb = b.find('/');
  if (!EqualsIgnoreCase(a.substr(0, sa), b.substr(0, sb))) return false;
  const std::string_view va = sa == std::string_view::npos ? std::string_view() : a.substr(sa);
  const std::string_view vb = sb == std::string_view::npos ? std::string_view() : b.substr(sb);
  return va == vb;
}

}  // namespace

std::optional<std::string_view> UpgradeRequested(const RequestHead& request) {
  if (request.minor_version != 1 || request.framing != BodyFraming::kNone || !request.keep_alive) return std::nullopt;
  if (request.headers.Count(HeaderId::kUpgrade) != 1) return std::nullopt;
  const std::string_view value = *request.headers.Get(HeaderId::kUpgrade);
  bool connection_upgrade = false;
  for (const Header& h : request.headers.fields()) {
    if (h.id == HeaderId::kConnection && HasToken(h.value, "upgrade")) connection_upgrade = true;
  }
  if (!connection_upgrade) return std::nullopt;
  bool any = false;
  const bool h2c = AnyItem(value, kMaxItems, [&](std::string_view p) {
    any = true;
    return SameProtocol(p.substr(0, p.find('/')), "h2c");
  });
  if (!any || h2c) return std::nullopt;
  return value;
}

bool UpgradeAccepted(std::string_view requested, std::string_view response_upgrade) {
  bool any = false;
  const bool unrequested = AnyItem(response_upgrade, kMaxItems, [&](std::string_view p) {
    any = true;
    return !AnyItem(requested, kMaxItems, [&](std::string_view r) { return SameProtocol(p, r); });
  });
  return any && !unrequested;
}

bool IsWebSocketUpgrade(std::string_view upgrade) {
  return AnyItem(upgrade, kMaxItems, [](std::string_view p) { return EqualsIgnoreCase(p, "websocket"); });
}

bool OriginAllowed(const HeaderList& headers, std::string_view host, std::string_view scheme,
                   const std::vector<std::string>& allowed) {
  const size_t count = headers.Count(HeaderId::kOrigin);
  if (count == 0) return true;
  if (count > 1) return false;
  const std::string_view value = *headers.Get(HeaderId::kOrigin);
  std::optional<WebOrigin> origin = ParseWebOrigin(value);
  if (!origin) {
    for (const std::string& a : allowed) {
      if (a == value) return true;
    }
    return false;
  }
  if ((scheme.empty() || EqualsIgnoreCase(origin->scheme, scheme)) && origin->MatchesHost(host)) return true;
  for (const std::string& a : allowed) {
    std::optional<WebOrigin> listed = ParseWebOrigin(a);
    if (listed && listed->SameAs(*origin)) return true;
  }
  return false;
}

bool ViaNames(const HeaderList& headers, std::string_view pseudonym) {
  for (const Header& h : headers.fields()) {
    if (h.id != HeaderId::kVia) continue;
    // received-protocol RWS received-by [ RWS comment ]
    if (AnyItem(h.value, kMaxItems, [&](std::string_view entry) {
          const size_t space = entry.find_first_of(" \t");
          if (space == std::string_view::npos) return false;
          std::string_view by = TrimOws(entry.substr(space + 1));
          by = by.substr(0, by.find_first_of(" \t"));
          return by == pseudonym;
        })) {
      return true;
    }
  }
  return false;
}

}  // namespace sessiond
