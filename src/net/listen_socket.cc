#include "net/listen_socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace sessiond {

Result<int> ListenSocket(const SocketAddress& addr, bool reuse_port) {
  int fd = socket(addr.sa()->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError(std::string("socket: ") + strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (addr.sa()->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, addr.sa(), addr.length) != 0 || listen(fd, 4096) != 0) {
    Status s = Status::IOError("cannot listen on " + addr.text + ": " + strerror(errno));
    close(fd);
    return s;
  }
  return fd;
}

}  // namespace sessiond
