// The WebSocket load generator of the benchmark's ws step (scripts/bench.sh):
// CONNS connections, each sending one SIZE-byte binary message (masked, as a
// client must) and waiting for its echo before sending the next, for SECONDS
// after WARMUP seconds; one thread, epoll. Prints one line:
//   messages N seconds S rate R errors E
// where N counts the echoes received in the measured window (each checked:
// a binary frame of SIZE bytes), R = N / S, and E counts connections that
// failed (handshake refused, closed, malformed echo).
//
//   ws_load PORT CONNS SECONDS SIZE [WARMUP] [PATH]
//   cc -O2 -o ws_load ws_load.c
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
  int fd;
  size_t got;    // bytes of the current echo received
  int failed;
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

// A blocking connect and handshake.
static int open_ws(int port, const char* path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr*)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  char req[512];
  int n = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   path, port);
  if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
    close(fd);
    return -1;
  }
  // Byte by byte up to the end of the head: nothing of the echo stream is read.
  char head[4096];
  size_t len = 0;
  while (len < sizeof(head) - 1) {
    if (recv(fd, head + len, 1, 0) != 1) break;
    ++len;
    if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0) break;
  }
  head[len] = '\0';
  if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
    fprintf(stderr, "ws_load: handshake refused: %.80s\n", head);
    close(fd);
    return -1;
  }
  return fd;  // blocking: it is read only after epoll says it is readable
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: ws_load PORT CONNS SECONDS SIZE [WARMUP] [PATH]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const int port = atoi(argv[1]), conns = atoi(argv[2]);
  const double seconds = atof(argv[3]), warmup = argc > 5 ? atof(argv[5]) : 1.0;
  const size_t size = (size_t)atol(argv[4]);
  const char* path = argc > 6 ? argv[6] : "/";
  if (conns <= 0 || size == 0 || size > 65535) {
    fprintf(stderr, "ws_load: CONNS > 0 and 0 < SIZE < 65536\n");
    return 2;
  }
  // The message, masked once: the same frame is sent every time.
  const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
  const size_t header = size < 126 ? 6 : 8;
  unsigned char* frame = malloc(header + size);
  frame[0] = 0x82;
  if (size < 126) {
    frame[1] = (unsigned char)(0x80 | size);
  } else {
    frame[1] = 0x80 | 126;
    frame[2] = (unsigned char)(size >> 8);
    frame[3] = (unsigned char)size;
  }
  memcpy(frame + header - 4, mask, 4);
  for (size_t i = 0; i < size; ++i) frame[header + i] = (unsigned char)('a' + i % 26) ^ mask[i & 3];
  const size_t echo_len = (size < 126 ? 2 : 4) + size;  // unmasked from the server

  int ep = epoll_create1(0);
  struct conn* cs = calloc((size_t)conns, sizeof(*cs));
  int errors = 0, open_conns = 0;
  for (int i = 0; i < conns; ++i) {
    cs[i].fd = open_ws(port, path);
    if (cs[i].fd < 0) {
      cs[i].failed = 1;
      ++errors;
      continue;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    if (send(cs[i].fd, frame, header + size, MSG_NOSIGNAL) != (ssize_t)(header + size)) {
      cs[i].failed = 1;
      ++errors;
      continue;
    }
    ++open_conns;
  }
  unsigned char* buf = malloc(65536 + 16);
  const double start = now(), measure_from = start + warmup, end = measure_from + seconds;
  unsigned long long counted = 0;
  struct epoll_event events[256];
  while (open_conns > 0) {
    const double t = now();
    if (t >= end) break;
    int n = epoll_wait(ep, events, 256, 100);
    for (int k = 0; k < n; ++k) {
      struct conn* c = events[k].data.ptr;
      ssize_t r = recv(c->fd, buf, echo_len - c->got, 0);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        c->failed = 1;
        ++errors;
        --open_conns;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        continue;
      }
      if (c->got == 0 && buf[0] != 0x82) {  // the first byte must start a binary frame
        c->failed = 1;
        ++errors;
        --open_conns;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        continue;
      }
      c->got += (size_t)r;
      if (c->got < echo_len) continue;
      c->got = 0;
      if (now() >= measure_from) ++counted;
      if (send(c->fd, frame, header + size, MSG_NOSIGNAL) != (ssize_t)(header + size)) {
        c->failed = 1;
        ++errors;
        --open_conns;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
      }
    }
  }
  const double measured = now() - measure_from;
  printf("messages %llu seconds %.3f rate %.1f errors %d\n", counted, measured,
         measured > 0 ? (double)counted / measured : 0.0, errors);
  for (int i = 0; i < conns; ++i) {
    if (cs[i].fd >= 0) close(cs[i].fd);
  }
  return errors ? 1 : 0;
}
