// IP addresses and networks as plain values, for the trusted_proxies list
// (docs/CONFIGURATION.md, trusted_proxies) and the X-Forwarded-For walk
// (docs/HTTP.md, Forwarding and trusted proxies).
//
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket
// reports for an IPv4 peer) is stored as the IPv4 address, so one rule
// "10.0.0.0/8" matches a peer whichever socket family it came through.
// Parsing is strict and bounded: numeric literals only, no names, no zone
// ids, no surrounding whitespace.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sessiond {

struct IpAddress {
  // AF_INET (bytes[0..4) used) or AF_INET6; AF_UNSPEC for none.
  int family = AF_UNSPEC;
  uint8_t bytes[16] = {};

  bool valid() const { return family != AF_UNSPEC; }
  bool operator==(const IpAddress& o) const;
  bool operator!=(const IpAddress& o) const { return !(*this == o); }
  // The loopback networks: 127.0.0.0/8 and ::1.
  bool IsLoopback() const;
  // 0.0.0.0 or ::.
  bool IsUnspecified() const;
};

// "192.0.2.1" or "2001:db8::1" (an IPv4-mapped one is folded to IPv4). With
// `allow_brackets`, "[2001:db8::1]" too. nullopt for anything else.
std::optional<IpAddress> ParseIpAddress(std::string_view text, bool allow_brackets = false);

// The address of a socket address (AF_INET or AF_INET6), folded as above;
// an invalid IpAddress for any other family.
IpAddress IpAddressOf(const sockaddr* sa);

// The usual text form ("192.0.2.1", "2001:db8::1"); at most kMaxIpText bytes
// (INET6_ADDRSTRLEN less the NUL), written to `out`, returning the length.
inline constexpr size_t kMaxIpText = 45;
size_t FormatIpAddress(const IpAddress& address, char* out);
std::string FormatIpAddress(const IpAddress& address);

// A CIDR block: "10.0.0.0/8", "2001:db8::/32"; a bare address is a /32 or
// /128. Host bits below the prefix must be zero ("10.0.0.1/8" is refused as a
// likely typo, as ip(8) does not but most firewalls do).
struct IpNetwork {
  IpAddress base;
  int prefix = 0;

  bool Contains(const IpAddress& address) const;
};

// nullopt with *why set to a short reason (never quoting the input) for
// anything that is not one CIDR block.
std::optional<IpNetwork> ParseIpNetwork(std::string_view text, std::string* why);

}  // namespace sessiond
