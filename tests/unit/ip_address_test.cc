// IP addresses and CIDR blocks (src/base/ip_address.h): the trusted_proxies
// list and the X-Forwarded-For walk (docs/HTTP.md, Forwarding and trusted proxies).
#include "base/ip_address.h"

#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

using namespace sessiond;

namespace {

IpAddress A(const char* text) {
  std::optional<IpAddress> a = ParseIpAddress(text, true);
  REQUIRE(a.has_value());
  return *a;
}

IpNetwork N(const char* text) {
  std::string why;
  std::optional<IpNetwork> n = ParseIpNetwork(text, &why);
  INFO(text << ": " << why);
  REQUIRE(n.has_value());
  return *n;
}

std::string Why(const char* text) {
  std::string why;
  CHECK_FALSE(ParseIpNetwork(text, &why).has_value());
  return why;
}

}  // namespace

TEST_CASE("IPv4 addresses print as inet_ntop prints them, for every octet value in every place") {
  for (int place = 0; place < 4; ++place) {
    for (int v = 0; v < 256; ++v) {
      IpAddress a;
      a.family = AF_INET;
      const uint8_t fill[4] = {10, 0, 255, 7};
      memcpy(a.bytes, fill, 4);
      a.bytes[place] = static_cast<uint8_t>(v);
      char want[INET_ADDRSTRLEN];
      REQUIRE(inet_ntop(AF_INET, a.bytes, want, sizeof(want)) != nullptr);
      char out[kMaxIpText];
      const size_t n = FormatIpAddress(a, out);
      CHECK(std::string(out, n) == want);
    }
  }
  CHECK(FormatIpAddress(IpAddress{}).empty());
}

TEST_CASE("addresses parse strictly and print back") {
  CHECK(FormatIpAddress(A("192.0.2.1")) == "192.0.2.1");
  CHECK(FormatIpAddress(A("2001:DB8::1")) == "2001:db8::1");
  CHECK(FormatIpAddress(A("[::1]")) == "::1");
  for (const char* bad : {"", " 1.2.3.4", "1.2.3.4 ", "1.2.3", "1.2.3.256", "01.2.3.4x", "example.com", "::1%lo",
                          "[1.2.3.4]", "1.2.3.4/8", "[::1", "unknown"}) {
    INFO(bad);
    CHECK_FALSE(ParseIpAddress(bad, true).has_value());
  }
  CHECK_FALSE(ParseIpAddress("[::1]", false).has_value());
  CHECK_FALSE(ParseIpAddress(std::string(100, '1')).has_value());  // bounded
}

TEST_CASE("an IPv4-mapped IPv6 address is its IPv4 address") {
  CHECK(A("::ffff:10.1.2.3") == A("10.1.2.3"));
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  REQUIRE(inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr) == 1);
  const IpAddress peer = IpAddressOf(reinterpret_cast<const sockaddr*>(&sin6));
  CHECK(peer.family == AF_INET);
  CHECK(FormatIpAddress(peer) == "127.0.0.1");
  CHECK(N("10.0.0.0/8").Contains(peer) == false);
  CHECK(N("127.0.0.0/8").Contains(peer));
  CHECK(N("::ffff:127.0.0.0/104").Contains(peer));  // the mapped form of 127.0.0.0/8
}

TEST_CASE("CIDR blocks contain what they should, and nothing of the other family") {
  CHECK(N("10.0.0.0/8").Contains(A("10.255.1.2")));
  CHECK_FALSE(N("10.0.0.0/8").Contains(A("11.0.0.0")));
  CHECK(N("192.168.4.0/22").Contains(A("192.168.7.255")));
  CHECK_FALSE(N("192.168.4.0/22").Contains(A("192.168.8.0")));
  CHECK(N("0.0.0.0/0").Contains(A("8.8.8.8")));
  CHECK_FALSE(N("0.0.0.0/0").Contains(A("::1")));
  CHECK(N("1.2.3.4").prefix == 32);
  CHECK(N("1.2.3.4").Contains(A("1.2.3.4")));
  CHECK_FALSE(N("1.2.3.4").Contains(A("1.2.3.5")));
  CHECK(N("2001:db8::/32").Contains(A("2001:db8:ffff::1")));
  CHECK_FALSE(N("2001:db8::/32").Contains(A("2001:db9::1")));
  CHECK(N("::1").prefix == 128);
  CHECK(N("fe80::/10").Contains(A("febf::1")));
  CHECK_FALSE(N("fe80::/10").Contains(A("fec0::1")));
}

TEST_CASE("malformed CIDR blocks say why") {
  CHECK(Why("10.0.0.1/8").find("host bits") != std::string::npos);
  CHECK(Why("10.0.0.0/33").find("out of range") != std::string::npos);
  CHECK(Why("::/129").find("out of range") != std::string::npos);
  CHECK(Why("10.0.0.0/").find("number") != std::string::npos);
  CHECK(Why("10.0.0.0/8x").find("number") != std::string::npos);
  CHECK(Why("10.0.0.0/-1").find("number") != std::string::npos);
  CHECK(Why("example.com/8").find("IPv4 or IPv6") != std::string::npos);
}

TEST_CASE("loopback and unspecified addresses") {
  CHECK(A("127.8.9.10").IsLoopback());
  CHECK(A("::1").IsLoopback());
  CHECK_FALSE(A("::2").IsLoopback());
  CHECK(A("0.0.0.0").IsUnspecified());
  CHECK(A("::").IsUnspecified());
  CHECK_FALSE(IpAddress().IsUnspecified());
}
