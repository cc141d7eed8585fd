/* Preloaded into wrk by scripts/bench.sh (the tls step's tls_handshake
 * scenario), so that every new connection costs a full TLS handshake.
 *
 * wrk reconnects by SSL_clear() on the connection's SSL object, which keeps
 * the last session for the next handshake: against a server that issues
 * tickets, every reconnect is a resumption, and "a new connection per
 * request" would measure resumptions. This wraps SSL_clear to drop that
 * session as well, for every server alike; the benchmark checks the result
 * with sessiond's own count of full and resumed handshakes.
 *
 *   cc -O2 -shared -fPIC -o no_resume.so no_resume.c -ldl -lssl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/ssl.h>
#include <stddef.h>

int SSL_clear(SSL *s) {
  static int (*real)(SSL *) = NULL;
  if (real == NULL) real = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
  int r = real(s);
  SSL_set_session(s, NULL);
  return r;
}
