// LD_PRELOAD shim for wrk, used by bench/tls-vs-caddy.sh (it compiles this
// with cc at run time):
//
//   cc -shared -fPIC -O2 -o handshakes.so bench/tls-vs-caddy-handshakes.c -ldl
//   LD_PRELOAD=./handshakes.so [TLS_BENCH_FULL=1] wrk ...
//
// It counts the TLS handshakes wrk completes, full and resumed, and prints
//
//   HANDSHAKES full=N resumed=M cpu_us=T
//
// on stderr when wrk exits, T being wrk's own CPU time (user + system, all
// threads), which tells how much of the shared CPUs the load generator
// took. With TLS_BENCH_FULL=1 it also makes every
// handshake a full one.
//
// Why: wrk keeps one SSL object per connection slot and, when the server
// closes a connection (Connection: close), reconnects it with SSL_shutdown
// + SSL_clear, which keeps the session. The next SSL_connect offers that
// session and the server resumes it (TLS 1.3 PSK with a fresh ECDHE: no
// certificate, no signature). So plain `wrk -H "Connection: close"`
// measures resumed handshakes, and has no switch to do otherwise. Dropping
// the session before the first handshake message is written makes the
// handshake full, as a new visitor's is. Everything else about wrk is
// unchanged.
//
// Only OpenSSL 1.1+ functions are used (wrk on Debian 12 links libssl.so.3);
// they are declared here so no OpenSSL headers are needed.

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;
int SSL_in_before(const SSL *s);
int SSL_session_reused(const SSL *s);
int SSL_set_session(SSL *s, SSL_SESSION *session);

static int (*real_connect)(SSL *);
static int drop_sessions;
static unsigned long full, resumed;

__attribute__((constructor)) static void init(void) {
  const char *v = getenv("TLS_BENCH_FULL");
  drop_sessions = v != NULL && v[0] == '1';
}

// wrk calls SSL_connect again on every WANT_READ/WANT_WRITE until the
// handshake is done; only the first call of a connection is "in before".
int SSL_connect(SSL *s) {
  if (real_connect == NULL) {
    real_connect = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_connect");
    if (real_connect == NULL) {
      fprintf(stderr, "tls-vs-caddy-handshakes: no SSL_connect to wrap\n");
      abort();
    }
  }
  if (drop_sessions && SSL_in_before(s)) SSL_set_session(s, NULL);
  int r = real_connect(s);
  if (r == 1) {
    if (SSL_session_reused(s)) {
      __atomic_fetch_add(&resumed, 1, __ATOMIC_RELAXED);
    } else {
      __atomic_fetch_add(&full, 1, __ATOMIC_RELAXED);
    }
  }
  return r;
}

__attribute__((destructor)) static void report(void) {
  struct rusage ru;
  long long cpu_us = -1;
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    cpu_us = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
             ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
  }
  fprintf(stderr, "HANDSHAKES full=%lu resumed=%lu cpu_us=%lld\n",
          __atomic_load_n(&full, __ATOMIC_RELAXED),
          __atomic_load_n(&resumed, __ATOMIC_RELAXED), cpu_us);
}
