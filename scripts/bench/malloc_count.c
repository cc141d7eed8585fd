/* Allocation counter for scripts/bench.sh (the allocs step), loaded with
 * LD_PRELOAD into the server under test; glibc only.
 *
 *   cc -O2 -shared -fPIC -o malloc_count.so malloc_count.c
 *   LD_PRELOAD=./malloc_count.so MALLOC_COUNT_FILE=/tmp/x SERVER ...
 *   kill -USR2 PID       -> /tmp/x holds the counts so far, one "name N" a line
 *
 * It counts every call of malloc, calloc, realloc, posix_memalign,
 * aligned_alloc and memalign (and, for reference, free) in the whole process,
 * from any thread, with relaxed atomic increments, and passes each call on to
 * glibc's own allocator through the __libc_* entry points glibc exports for
 * exactly this (no dlsym, which itself allocates). Calls made inside glibc go
 * through the same symbols, so they are counted too; libstdc++'s operator new
 * calls malloc (aligned new: aligned_alloc). Not counted: valloc, pvalloc and
 * reallocarray, which glibc serves without these symbols and which neither
 * server under test calls.
 *
 * On the signal (SIGUSR2, or the number in MALLOC_COUNT_SIGNAL: nginx uses
 * SIGUSR2 itself, to change its binary) the handler writes the counts to
 * MALLOC_COUNT_FILE.tmp with write(2) and renames it to MALLOC_COUNT_FILE, so
 * a reader that waits for the file never sees half of it. Only
 * async-signal-safe calls happen in the handler. The counts are a snapshot:
 * the caller takes one before and one after a run and subtracts.
 * A fork()ed child (an nginx worker) inherits the handler and the file name
 * and counts from the parent's values at the fork.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *p);

enum { kMalloc, kCalloc, kRealloc, kPosixMemalign, kAlignedAlloc, kMemalign, kFree, kKinds };
static const char *const kNames[kKinds] = {"malloc", "calloc", "realloc", "posix_memalign",
                                           "aligned_alloc", "memalign", "free"};
static uint64_t counts[kKinds];

static char out_path[4096];
static char tmp_path[4096 + 8];

static void count(int kind) { __atomic_fetch_add(&counts[kind], 1, __ATOMIC_RELAXED); }

void *malloc(size_t size) {
  count(kMalloc);
  return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
  count(kCalloc);
  return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
  count(kRealloc);
  return __libc_realloc(p, size);
}

void free(void *p) {
  if (p) count(kFree);
  __libc_free(p);
}

void *memalign(size_t alignment, size_t size) {
  count(kMemalign);
  return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
  count(kAlignedAlloc);
  return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
  count(kPosixMemalign);
  /* The checks POSIX asks for: a power of two that is a multiple of
   * sizeof(void *). */
  if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
  void *p = __libc_memalign(alignment, size);
  if (!p && size) return ENOMEM;
  *out = p;
  return 0;
}

/* Appends the decimal digits of v to buf at *len (buf has room: the caller
 * sizes it for every line at 20 digits). */
static void put_u64(char *buf, size_t *len, uint64_t v) {
  char digits[20];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) buf[(*len)++] = digits[--n];
}

static void put_str(char *buf, size_t *len, const char *s) {
  size_t n = strlen(s);
  memcpy(buf + *len, s, n);
  *len += n;
}

static void dump(int sig) {
  (void)sig;
  int saved = errno;
  char buf[kKinds * 48];
  size_t len = 0;
  for (int i = 0; i < kKinds; i++) {
    put_str(buf, &len, kNames[i]);
    buf[len++] = ' ';
    put_u64(buf, &len, __atomic_load_n(&counts[i], __ATOMIC_RELAXED));
    buf[len++] = '\n';
  }
  int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    size_t done = 0;
    while (done < len) {
      ssize_t w = write(fd, buf + done, len - done);
      if (w <= 0) break;
      done += (size_t)w;
    }
    close(fd);
    if (done == len) rename(tmp_path, out_path);
  }
  errno = saved;
}

__attribute__((constructor)) static void malloc_count_init(void) {
  const char *path = getenv("MALLOC_COUNT_FILE");
  if (!path || !*path || strlen(path) >= sizeof out_path) return;
  strcpy(out_path, path);
  strcpy(tmp_path, path);
  strcat(tmp_path, ".tmp");
  int sig = SIGUSR2;
  const char *s = getenv("MALLOC_COUNT_SIGNAL");
  if (s && *s) sig = atoi(s);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = dump;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}
