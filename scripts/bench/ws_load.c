// The WebSocket load generator of the benchmark's ws step (scripts/bench.sh):
// CONNS connections, each sending one SIZE-byte binary message (masked, as a
// client must) and waiting for its echo before sending the next, for SECONDS
// after WARMUP seconds; one thread, epoll. Prints one line:
//   messages N seconds S rate R errors E
// where N counts the echoes received in the measured window (each checked:
// a binary frame of SIZE bytes), R = N / S, and E counts connections that
// failed (handshake refused, closed, malformed echo).
//
// With "tls" after PATH it speaks wss:// (OpenSSL, TLS 1.2 or 1.3 as the
// server prefers, the certificate not verified: a load generator on
// loopback). Reads stay blocking after epoll says readable: OpenSSL reads
// no more than the record it needs (no read-ahead), and a connection has at
// most one echo in flight, so nothing waits hidden inside OpenSSL and a
// record that is still arriving completes at once.
//
//   ws_load PORT CONNS SECONDS SIZE [WARMUP] [PATH] [tls]
//   cc -O2 -o ws_load ws_load.c -lssl -lcrypto
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
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
  SSL* ssl;      // null without tls
  size_t got;    // bytes of the current echo received
  int failed;
};

// Blocking I/O on the socket, through TLS when `ssl` is set: -1 on error,
// 0 at the end.
static ssize_t conn_send(int fd, SSL* ssl, const void* p, size_t n) {
  if (!ssl) return send(fd, p, n, MSG_NOSIGNAL);
  const int r = SSL_write(ssl, p, (int)n);
  return r > 0 ? r : -1;
}

static ssize_t conn_recv(int fd, SSL* ssl, void* p, size_t n) {
  if (!ssl) return recv(fd, p, n, 0);
  const int r = SSL_read(ssl, p, (int)n);
  if (r > 0) return r;
  return SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

// A blocking connect and handshake (TLS first with `tls`: *ssl is set).
static int open_ws(int port, const char* path, SSL_CTX* tls, SSL** ssl) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr*)&a, sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  *ssl = NULL;
  if (tls) {
    *ssl = SSL_new(tls);
    SSL_set_fd(*ssl, fd);
    SSL_set_tlsext_host_name(*ssl, "localhost");
    if (SSL_connect(*ssl) != 1) {
      fprintf(stderr, "ws_load: TLS handshake failed\n");
      ERR_print_errors_fp(stderr);
      SSL_free(*ssl);
      *ssl = NULL;
      close(fd);
      return -1;
    }
  }
  char req[512];
  int n = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   path, port);
  if (conn_send(fd, *ssl, req, (size_t)n) != n) {
    if (*ssl) SSL_free(*ssl);
    *ssl = NULL;
    close(fd);
    return -1;
  }
  // Byte by byte up to the end of the head: nothing of the echo stream is read.
  char head[4096];
  size_t len = 0;
  while (len < sizeof(head) - 1) {
    if (conn_recv(fd, *ssl, head + len, 1) != 1) break;
    ++len;
    if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0) break;
  }
  head[len] = '\0';
  if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
    fprintf(stderr, "ws_load: handshake refused: %.80s\n", head);
    if (*ssl) SSL_free(*ssl);
    *ssl = NULL;
    close(fd);
    return -1;
  }
  return fd;  // blocking: it is read only after epoll says it is readable
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: ws_load PORT CONNS SECONDS SIZE [WARMUP] [PATH] [tls]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const int port = atoi(argv[1]), conns = atoi(argv[2]);
  const double seconds = atof(argv[3]), warmup = argc > 5 ? atof(argv[5]) : 1.0;
  const size_t size = (size_t)atol(argv[4]);
  const char* path = argc > 6 ? argv[6] : "/";
  SSL_CTX* tls = NULL;
  if (argc > 7 && strcmp(argv[7], "tls") == 0) {
    tls = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(tls, TLS1_2_VERSION);
    SSL_CTX_set_verify(tls, SSL_VERIFY_NONE, NULL);
  }
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
    cs[i].fd = open_ws(port, path, tls, &cs[i].ssl);
    if (cs[i].fd < 0) {
      cs[i].failed = 1;
      ++errors;
      continue;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    if (conn_send(cs[i].fd, cs[i].ssl, frame, header + size) != (ssize_t)(header + size)) {
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
      ssize_t r = conn_recv(c->fd, c->ssl, buf, echo_len - c->got);
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
      if (conn_send(c->fd, c->ssl, frame, header + size) != (ssize_t)(header + size)) {
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
    if (cs[i].ssl) SSL_free(cs[i].ssl);
    if (cs[i].fd >= 0) close(cs[i].fd);
  }
  return errors ? 1 : 0;
}
