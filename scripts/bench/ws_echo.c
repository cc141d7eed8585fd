// A WebSocket echo server for the benchmark's ws step (scripts/bench.sh): one
// thread, epoll, non-blocking sockets. It answers the RFC 6455 handshake and
// sends every data frame back (unmasked, same opcode), answers Ping with Pong
// and Close with Close. Small and fast so that the proxy in front of it, not
// the echo, is what the benchmark measures. Not a general server: frames are
// at most BUF bytes, extensions and fragmentation are not interpreted.
//
//   ws_echo PORT          prints "ready PORT" once it listens
//   cc -O2 -o ws_echo ws_echo.c -lcrypto
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (256 * 1024)

struct conn {
  int fd;
  int open;          // the handshake is done
  int closing;       // close after the output is written
  size_t in_len;
  size_t out_len, out_off;
  unsigned char in[BUF];
  unsigned char out[BUF + 16];
};

static const char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static void base64(const unsigned char* src, size_t n, char* dst) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0, o = 0;
  for (; i + 2 < n; i += 3) {
    dst[o++] = t[src[i] >> 2];
    dst[o++] = t[((src[i] & 3) << 4) | (src[i + 1] >> 4)];
    dst[o++] = t[((src[i + 1] & 15) << 2) | (src[i + 2] >> 6)];
    dst[o++] = t[src[i + 2] & 63];
  }
  if (i < n) {
    dst[o++] = t[src[i] >> 2];
    if (i + 1 < n) {
      dst[o++] = t[((src[i] & 3) << 4) | (src[i + 1] >> 4)];
      dst[o++] = t[(src[i + 1] & 15) << 2];
    } else {
      dst[o++] = t[(src[i] & 3) << 4];
      dst[o++] = '=';
    }
    dst[o++] = '=';
  }
  dst[o] = '\0';
}

static void drop(int ep, struct conn* c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c);
}

// Writes what is queued; returns -1 when the connection must go.
static int flush_out(int ep, struct conn* c) {
  while (c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN) {  // wait for room, reading nothing meanwhile
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return 0;
      }
      return -1;
    }
    c->out_off += (size_t)n;
  }
  c->out_len = c->out_off = 0;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  return c->closing ? -1 : 0;
}

static int handshake(struct conn* c) {
  unsigned char* end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
  if (!end) return c->in_len < BUF ? 0 : -1;
  *end = '\0';
  const char* key = NULL;
  for (char* line = strstr((char*)c->in, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "Sec-WebSocket-Key:", 18) == 0) {
      key = line + 20;
      while (*key == ' ') ++key;
      break;
    }
  }
  if (!key) return -1;
  char buf[128];
  size_t klen = strcspn(key, "\r ");
  if (klen > 64) return -1;
  memcpy(buf, key, klen);
  memcpy(buf + klen, kGuid, sizeof(kGuid) - 1);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1((unsigned char*)buf, klen + sizeof(kGuid) - 1, digest);
  char accept[64];
  base64(digest, sizeof(digest), accept);
  c->out_len = (size_t)snprintf((char*)c->out, BUF,
                                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                                accept);
  size_t used = (size_t)(end + 4 - c->in);
  memmove(c->in, c->in + used, c->in_len - used);
  c->in_len -= used;
  c->open = 1;
  return 1;
}

// Echoes every complete frame in the input; -1 on a frame it cannot take.
static int echo_frames(struct conn* c) {
  size_t p = 0;
  while (c->in_len - p >= 2) {
    const unsigned char* f = c->in + p;
    uint64_t len = f[1] & 0x7f;
    size_t h = 2;
    if (len == 126) {
      if (c->in_len - p < 4) break;
      len = (uint64_t)f[2] << 8 | f[3];
      h = 4;
    } else if (len == 127) {
      if (c->in_len - p < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = len << 8 | f[2 + i];
      h = 10;
    }
    const int masked = f[1] & 0x80;
    const size_t mh = masked ? 4 : 0;
    if (len > BUF - 16) return -1;
    if (c->in_len - p < h + mh + len) break;
    if (c->out_len + 10 + len > sizeof(c->out)) break;  // write first, then go on
    int opcode = f[0] & 0x0f;
    if (opcode == 0x9) opcode = 0xA;                       // Ping -> Pong
    unsigned char* o = c->out + c->out_len;
    o[0] = (unsigned char)(0x80 | opcode);
    size_t oh;
    if (len < 126) {
      o[1] = (unsigned char)len;
      oh = 2;
    } else if (len < 65536) {
      o[1] = 126;
      o[2] = (unsigned char)(len >> 8);
      o[3] = (unsigned char)len;
      oh = 4;
    } else {
      o[1] = 127;
      for (int i = 0; i < 8; ++i) o[2 + i] = (unsigned char)(len >> (8 * (7 - i)));
      oh = 10;
    }
    const unsigned char* mask = f + h;
    const unsigned char* data = f + h + mh;
    for (size_t i = 0; i < len; ++i) o[oh + i] = masked ? data[i] ^ mask[i & 3] : data[i];
    c->out_len += oh + (size_t)len;
    if (opcode == 0x8) c->closing = 1;
    p += h + mh + (size_t)len;
  }
  memmove(c->in, c->in + p, c->in_len - p);
  c->in_len -= p;
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: ws_echo PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (struct sockaddr*)&a, sizeof(a)) != 0 || listen(ls, 1024) != 0) {
    perror("ws_echo: listen");
    return 1;
  }
  socklen_t al = sizeof(a);
  getsockname(ls, (struct sockaddr*)&a, &al);
  printf("ready %d\n", ntohs(a.sin_port));
  fflush(stdout);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      struct conn* c = events[i].data.ptr;
      if (!c) {
        int fd;
        while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          struct conn* nc = calloc(1, sizeof(*nc));
          nc->fd = fd;
          struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
        continue;
      }
      if (c->out_len > 0) {  // writable again: the rest of the output, then what input is left
        if (flush_out(ep, c) < 0) {
          drop(ep, c);
          continue;
        }
        if (c->out_len > 0) continue;
      } else {
        ssize_t r = recv(c->fd, c->in + c->in_len, BUF - c->in_len, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          drop(ep, c);
          continue;
        }
        if (r < 0) continue;
        c->in_len += (size_t)r;
      }
      if (!c->open) {
        int h = handshake(c);
        if (h < 0) {
          drop(ep, c);
          continue;
        }
        if (h == 0) continue;
      }
      if (echo_frames(c) < 0 || flush_out(ep, c) < 0) drop(ep, c);
    }
  }
}
