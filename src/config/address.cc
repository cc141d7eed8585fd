#include "config/address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "config/numbers.h"

namespace sessiond {
namespace config_internal {

namespace {

SocketAddress MakeV4(const in_addr& addr, uint16_t port, const std::string& text) {
  SocketAddress out;
  auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr = addr;
  out.length = sizeof(sockaddr_in);
  out.text = text;
  return out;
}

SocketAddress MakeV6(const in6_addr& addr, uint16_t port, const std::string& text) {
  SocketAddress out;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = addr;
  out.length = sizeof(sockaddr_in6);
  out.text = text;
  return out;
}

bool StartsWithNoCase(const std::string& text, const char* prefix) {
  size_t n = std::strlen(prefix);
  return text.size() >= n && strncasecmp(text.c_str(), prefix, n) == 0;
}

// An address literal (IPv4, [v6], localhost) without DNS; nullopt otherwise.
std::optional<SocketAddress> NumericAddress(const std::string& host, bool bracketed, uint16_t port,
                                            const std::string& text) {
  if (bracketed) {
    in6_addr a6{};
    if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) return MakeV6(a6, port, text);
    return std::nullopt;
  }
  in_addr a4{};
  if (strcasecmp(host.c_str(), "localhost") == 0) {
    a4.s_addr = htonl(INADDR_LOOPBACK);
    return MakeV4(a4, port, text);
  }
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return MakeV4(a4, port, text);
  return std::nullopt;
}

}  // namespace

bool IsPlausibleHostName(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
  });
}

Status SplitHostPort(const std::string& text, uint16_t default_port, std::string* host,
                     bool* bracketed, uint16_t* port) {
  std::string port_text;
  bool has_port = false;
  *bracketed = !text.empty() && text[0] == '[';
  if (*bracketed) {
    size_t close = text.find(']');
    if (close == std::string::npos) return Status::Invalid("missing ']' after the IPv6 address");
    *host = text.substr(1, close - 1);
    std::string rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return Status::Invalid("expected ':port' after ']'");
      has_port = true;
      port_text = rest.substr(1);
    }
  } else {
    size_t colon = text.find(':');
    if (colon != std::string::npos && text.find(':', colon + 1) != std::string::npos) {
      return Status::Invalid("write an IPv6 address in brackets, as [address]:port");
    }
    *host = text.substr(0, colon);
    if (colon != std::string::npos) {
      has_port = true;
      port_text = text.substr(colon + 1);
    }
  }
  if (host->empty()) return Status::Invalid("the host is missing (expected host:port)");
  if (!has_port) {
    if (default_port == 0) return Status::Invalid("the port is missing (expected host:port)");
    *port = default_port;
    return Status::OK();
  }
  std::optional<uint16_t> p = ParsePort(port_text);
  if (!p) return Status::Invalid("the port must be a number from 1 to 65535");
  *port = *p;
  return Status::OK();
}

Result<SocketAddress> ParseListenAddress(const std::string& text) {
  std::string host;
  bool bracketed = false;
  uint16_t port = 0;
  Status s = SplitHostPort(text, 0, &host, &bracketed, &port);
  if (!s.ok()) return s;
  std::optional<SocketAddress> address = NumericAddress(host, bracketed, port, text);
  if (!address) {
    return Status::Invalid(bracketed ? "not a valid IPv6 address between [ and ]"
                                     : "the host must be a numeric IPv4 address, an IPv6 "
                                       "address in brackets, or localhost");
  }
  return *address;
}

Result<UpstreamConfig> ParseUpstreamUrl(const std::string& text) {
  const bool https = StartsWithNoCase(text, "https://");
  if (!https && !StartsWithNoCase(text, "http://")) {
    return Status::Invalid("expected http://host[:port] or https://host[:port]");
  }
  std::string rest = text.substr(std::strlen(https ? "https://" : "http://"));
  if (rest.find('#') != std::string::npos) {
    return Status::Invalid("a #fragment is not supported (expected http[s]://host[:port])");
  }
  if (rest.find('?') != std::string::npos) {
    return Status::Invalid("a ?query is not supported (expected http[s]://host[:port])");
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string::npos) {
    return Status::Invalid("user info (user@) is not supported in the upstream URL");
  }
  if (!path.empty() && path != "/") {
    return Status::Invalid(
        "a path is not supported (expected http[s]://host[:port] or "
        "http[s]://host[:port]/)");
  }

  UpstreamConfig out;
  out.url = text;
  out.https = https;
  bool bracketed = false;
  Status s = SplitHostPort(authority, https ? 443 : 80, &out.host, &bracketed, &out.port);
  if (!s.ok()) return s;

  if (std::optional<SocketAddress> numeric =
          NumericAddress(out.host, bracketed, out.port, authority)) {
    out.address = *numeric;
    return out;
  }
  if (bracketed) return Status::Invalid("not a valid IPv6 address between [ and ]");
  if (!IsPlausibleHostName(out.host)) return Status::Invalid("not a valid host name");

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(out.port);
  int rc = getaddrinfo(out.host.c_str(), port_text.c_str(), &hints, &found);
  if (rc != 0) return Status::Invalid("cannot resolve host " + out.host + ": " + gai_strerror(rc));
  if (found != nullptr && found->ai_addrlen <= sizeof(sockaddr_storage)) {
    std::memcpy(&out.address.storage, found->ai_addr, found->ai_addrlen);
    out.address.length = found->ai_addrlen;
  }
  if (found != nullptr) freeaddrinfo(found);
  if (out.address.length == 0) return Status::Invalid("cannot resolve host " + out.host);
  out.address.text = authority;
  return out;
}

Result<HttpStoreConfig> ParseHttpStoreUrl(const std::string& text) {
  if (StartsWithNoCase(text, "https://")) {
    return Status::Invalid("https is not supported (use http:// to a store on a trusted network)");
  }
  if (!StartsWithNoCase(text, "http://")) return Status::Invalid("expected http://host[:port][/path]");
  const std::string rest = text.substr(std::strlen("http://"));
  const size_t slash = rest.find('/');
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (!path.empty()) {
    for (char c : path) {
      const bool unreserved = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
                              c == '~' || c == '/';
      if (!unreserved) {
        return Status::Invalid("the path may hold only letters, digits, '-', '.', '_', '~' and '/' "
                               "(no query, fragment or %-escapes)");
      }
    }
    if (path.find("//") != std::string::npos || path.find("/./") != std::string::npos ||
        path.find("/../") != std::string::npos || (path.size() >= 2 && path.compare(path.size() - 2, 2, "/.") == 0) ||
        (path.size() >= 3 && path.compare(path.size() - 3, 3, "/..") == 0)) {
      return Status::Invalid("the path may not hold empty, '.' or '..' segments");
    }
  }
  Result<UpstreamConfig> base = ParseUpstreamUrl("http://" + rest.substr(0, slash));
  if (!base.ok()) return base.status();
  HttpStoreConfig out;
  out.url = text;
  out.host = base->host;
  out.port = base->port;
  out.address = base->address;
  out.path_prefix = path;
  return out;
}

std::string FormatSocketAddress(const SocketAddress& address) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (address.storage.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&address.storage);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
    return std::string(buf) + ":" + std::to_string(ntohs(sin->sin_port));
  }
  if (address.storage.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(sin6->sin6_port));
  }
  return "(none)";
}

}  // namespace config_internal
}  // namespace sessiond
