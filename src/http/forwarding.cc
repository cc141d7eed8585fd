#include "http/forwarding.h"

#include <cstring>
#include <string>

#include "http/message.h"

namespace sessiond {

namespace {

bool IsTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IsOws(char c) { return c == ' ' || c == '\t'; }

bool IsPort(std::string_view v) {
  if (v.empty() || v.size() > 5) return false;
  uint32_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  return n >= 1 && n <= 65535;
}

// One X-Forwarded-For entry: an IPv4 or IPv6 address, "[v6]", or either with
// a ":port" (some balancers add the client's port). nullopt otherwise.
std::optional<IpAddress> ParseForwardedForEntry(std::string_view entry) {
  if (entry.empty()) return std::nullopt;
  if (entry.front() == '[') {
    const size_t close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view rest = entry.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || !IsPort(rest.substr(1)))) return std::nullopt;
    return ParseIpAddress(entry.substr(0, close + 1), /*allow_brackets=*/true);
  }
  const size_t colon = entry.find(':');
  if (colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos) {
    // "a.b.c.d:port": one colon is never an IPv6 address.
    if (!IsPort(entry.substr(colon + 1))) return std::nullopt;
    std::optional<IpAddress> a = ParseIpAddress(entry.substr(0, colon));
    if (!a || a->family != AF_INET) return std::nullopt;
    return a;
  }
  return ParseIpAddress(entry);
}

// The only value of a single-field header `id`, or nullopt when absent or repeated.
std::optional<std::string_view> OnlyValue(const HeaderList& headers, HeaderId id, bool* repeated) {
  std::optional<std::string_view> found;
  *repeated = false;
  for (const Header& h : headers.fields()) {
    if (h.id != id) continue;
    if (found) {
      *repeated = true;
      return std::nullopt;
    }
    found = h.value;
  }
  return found;
}

size_t FormatPort(uint16_t port, char* out) {
  char tmp[8];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + port % 10);
    port /= 10;
  } while (port > 0);
  for (size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return n;
}

void SetClient(ForwardingResult* out, const IpAddress& address) {
  out->client_len = FormatIpAddress(address, out->client);
}

void RemoveForwardingFields(HeaderList* headers) {
  headers->RemoveIf([](const Header& h) {
    return h.id == HeaderId::kXForwardedFor || h.id == HeaderId::kXForwardedProto ||
           h.id == HeaderId::kXForwardedHost || h.id == HeaderId::kXForwardedPort || h.id == HeaderId::kForwarded;
  });
}

}  // namespace

bool IsTrustedPeer(const std::vector<IpNetwork>& networks, const IpAddress& address) {
  for (const IpNetwork& n : networks) {
    if (n.Contains(address)) return true;
  }
  return false;
}

bool IsValidForwarded(std::string_view v) {
  size_t i = 0;
  const size_t n = v.size();
  size_t elements = 0;
  while (true) {
    // One element: pairs separated by ';' (an empty pair is allowed).
    if (++elements > kMaxForwardedFor) return false;
    while (true) {
      while (i < n && IsOws(v[i])) ++i;
      if (i < n && v[i] != ',' && v[i] != ';') {
        const size_t name = i;
        while (i < n && IsTchar(v[i])) ++i;
        if (i == name || i >= n || v[i] != '=') return false;
        ++i;
        if (i < n && v[i] == '"') {
          ++i;
          while (true) {
            if (i >= n) return false;  // unterminated
            const unsigned char c = static_cast<unsigned char>(v[i]);
            if (c == '"') break;
            if (c == '\\') {
              if (++i >= n) return false;
            } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
              return false;
            }
            ++i;
          }
          ++i;  // the closing quote
        } else {
          const size_t value = i;
          while (i < n && IsTchar(v[i])) ++i;
          if (i == value) return false;
        }
        while (i < n && IsOws(v[i])) ++i;
      }
      if (i < n && v[i] == ';') {
        ++i;
        continue;
      }
      break;
    }
    if (i >= n) return true;
    if (v[i] != ',') return false;
    ++i;
  }
}

void ApplyForwarding(HeaderList* headers, const ForwardingInput& in, ForwardingResult* out) {
  char port_text[8];
  const std::string_view port(port_text, FormatPort(in.port, port_text));
  out->malformed = nullptr;
  out->scheme = EqualsIgnoreCase(in.proto, "https") ? "https" : "";
  out->peer_trusted = in.trusted != nullptr && !in.trusted->empty() && IsTrustedPeer(*in.trusted, in.peer);
  SetClient(out, in.peer);
  char peer_text[kMaxIpText];
  memcpy(peer_text, out->client, out->client_len);
  const std::string_view peer(peer_text, out->client_len);

  if (!out->peer_trusted) {
    RemoveForwardingFields(headers);
    headers->AppendValueCopy(kFieldXForwardedFor, peer);
    headers->Append(kFieldXForwardedProto, in.proto);
    if (!in.host.empty()) headers->Append(kFieldXForwardedHost, in.host);
    headers->AppendValueCopy(kFieldXForwardedPort, port);
    return;
  }

  // X-Forwarded-For: every field, in order, is one list.
  std::string chain;
  size_t entries = 0;
  bool chain_ok = true;
  std::optional<IpAddress> client;  // rightmost untrusted so far
  std::optional<IpAddress> leftmost;
  for (const Header& h : headers->fields()) {
    if (h.id != HeaderId::kXForwardedFor || !chain_ok) continue;
    std::string_view list = h.value;
    while (true) {
      const size_t comma = list.find(',');
      const std::string_view entry = TrimOws(list.substr(0, comma));
      std::optional<IpAddress> a = ParseForwardedForEntry(entry);
      if (!a || ++entries > kMaxForwardedFor) {
        chain_ok = false;
        break;
      }
      if (!leftmost) leftmost = a;
      if (!IsTrustedPeer(*in.trusted, *a)) client = a;  // the last one seen is the rightmost
      if (!chain.empty()) chain.append(", ");
      chain.append(entry);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  if (!chain_ok) {
    out->malformed = "X-Forwarded-For";
    chain.clear();
  } else if (client) {
    SetClient(out, *client);
  } else if (leftmost) {
    SetClient(out, *leftmost);  // every entry is a trusted proxy
  }

  bool repeated = false;
  std::optional<std::string_view> proto = OnlyValue(*headers, HeaderId::kXForwardedProto, &repeated);
  const bool keep_proto =
      proto && (EqualsIgnoreCase(*proto, "http") || EqualsIgnoreCase(*proto, "https"));
  if (!keep_proto && (proto || repeated) && !out->malformed) out->malformed = "X-Forwarded-Proto";
  if (keep_proto) out->scheme = EqualsIgnoreCase(*proto, "https") ? "https" : "http";
  std::optional<std::string_view> fhost = OnlyValue(*headers, HeaderId::kXForwardedHost, &repeated);
  const bool keep_host = fhost && !fhost->empty() && IsValidHost(*fhost);
  if (!keep_host && (fhost || repeated) && !out->malformed) out->malformed = "X-Forwarded-Host";
  std::optional<std::string_view> fport = OnlyValue(*headers, HeaderId::kXForwardedPort, &repeated);
  const bool keep_port = fport && IsPort(*fport);
  if (!keep_port && (fport || repeated) && !out->malformed) out->malformed = "X-Forwarded-Port";
  bool keep_forwarded = true;
  for (const Header& h : headers->fields()) {
    if (h.id == HeaderId::kForwarded && !IsValidForwarded(h.value)) keep_forwarded = false;
  }
  if (!keep_forwarded && !out->malformed) out->malformed = "Forwarded";

  headers->RemoveIf([&](const Header& h) {
    switch (h.id) {
      case HeaderId::kXForwardedFor: return true;
      case HeaderId::kXForwardedProto: return !keep_proto;
      case HeaderId::kXForwardedHost: return !keep_host;
      case HeaderId::kXForwardedPort: return !keep_port;
      case HeaderId::kForwarded: return !keep_forwarded;
      default: return false;
    }
  });
  if (!chain.empty()) chain.append(", ");
  chain.append(peer);
  headers->AppendValueCopy(kFieldXForwardedFor, chain);
  if (!keep_proto) headers->Append(kFieldXForwardedProto, in.proto);
  if (!keep_host && !in.host.empty()) headers->Append(kFieldXForwardedHost, in.host);
  if (!keep_port) headers->AppendValueCopy(kFieldXForwardedPort, port);
}

}  // namespace sessiond
