#include "net/listen_socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <string_view>

#include "base/ip_address.h"

namespace sessiond {

namespace {

Status Error(const SocketAddress& addr, int err) { return Status::IOError(addr.text + ": " + strerror(err)); }

uint16_t PortOf(const SocketAddress& addr) {
  if (addr.sa()->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(addr.sa())->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(addr.sa())->sin6_port);
}

// /proc/net/tcp writes an address as the hex of its bytes in memory order,
// 32 bits at a time, each word as a host-order number (little-endian here).
bool ParseProcAddress(const char* hex, int family, IpAddress* out) {
  const size_t words = family == AF_INET ? 1 : 4;
  if (strlen(hex) != words * 8) return false;
  out->family = family;
  for (size_t w = 0; w < words; ++w) {
    uint32_t v = 0;
    for (size_t i = 0; i < 8; ++i) {
      const char c = hex[w * 8 + i];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return false;
      v = v << 4 | static_cast<uint32_t>(d);
    }
    memcpy(out->bytes + 4 * w, &v, 4);  // the word back in memory order
  }
  return true;
}

// Field `index` (from 0) of a /proc/net/tcp line, fields being separated by
// blanks; empty when the line has fewer.
std::string_view ProcField(const char* line, int index) {
  const char* p = line;
  for (int i = 0;; ++i) {
    while (*p == ' ' || *p == '\t') ++p;
    if (*p == '\0' || *p == '\n') return {};
    const char* start = p;
    while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n') ++p;
    if (i == index) return std::string_view(start, static_cast<size_t>(p - start));
  }
}

}  // namespace

Result<int> ListenSocket(const SocketAddress& addr, bool reuse_port) {
  int fd = socket(addr.sa()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(addr, errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (addr.sa()->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, addr.sa(), addr.length) != 0 || listen(fd, 4096) != 0) {
    Status s = Error(addr, errno);
    close(fd);
    return s;
  }
  return fd;
}

Status CheckAddressFree(const SocketAddress& addr) {
  int fd = socket(addr.sa()->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(addr, errno);
  // SO_REUSEADDR as the real sockets have it, so a port held only by
  // TIME-WAIT connections of an earlier run is free; a listener is not.
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (addr.sa()->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  const int rc = bind(fd, addr.sa(), addr.length);
  const int err = errno;
  close(fd);
  return rc == 0 ? Status::OK() : Error(addr, err);
}


Status CheckNoOtherListener(const SocketAddress& addr, const std::vector<int>& own) {
  std::set<unsigned long> own_inodes;
  for (int fd : own) {
    struct stat st {};
    if (fstat(fd, &st) == 0) own_inodes.insert(static_cast<unsigned long>(st.st_ino));
  }
  const int family = addr.sa()->sa_family;
  const IpAddress want = IpAddressOf(addr.sa());
  const uint16_t port = PortOf(addr);
  FILE* f = fopen(family == AF_INET ? "/proc/net/tcp" : "/proc/net/tcp6", "re");
  if (!f) return Status::OK();
  char line[512];
  bool other = false;
  if (fgets(line, sizeof(line), f) != nullptr) {  // the column titles
    while (!other && fgets(line, sizeof(line), f) != nullptr) {
      // "  sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode"
      // Only listeners matter, and a busy host has tens of thousands of
      // other lines (TIME-WAIT, ESTABLISHED): the state field decides first,
      // without the full parse below.
      if (ProcField(line, 3) != "0A") continue;  // TCP_LISTEN
      char local[64], remote[64];
      unsigned state = 0, uid = 0, timeout = 0;
      unsigned long inode = 0;
      int slot = 0;
      if (sscanf(line, " %d: %63s %63s %x %*s %*s %*s %u %u %lu", &slot, local, remote, &state, &uid, &timeout,
                 &inode) != 7) {
        continue;
      }
      if (state != 0x0A) continue;  // TCP_LISTEN
      char* colon = strchr(local, ':');
      if (!colon) continue;
      *colon = '\0';
      const unsigned long p = strtoul(colon + 1, nullptr, 16);
      IpAddress a;
      if (p != port || !ParseProcAddress(local, family, &a)) continue;
      // The same address, or a wildcard on either side: they share connections.
      if (!(a == want || a.IsUnspecified() || want.IsUnspecified())) continue;
      if (own_inodes.count(inode) == 0) other = true;
    }
  }
  fclose(f);
  return other ? Error(addr, EADDRINUSE) : Status::OK();
}

}  // namespace sessiond
