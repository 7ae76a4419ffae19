/* harness.h - starts the real sluice binary on 127.0.0.1:0 for end-to-end
 * tests, reads the bound port from its "listening" log line, runs client
 * commands (curl, nghttp, h2load, openssl) and raw sockets against it. */
#ifndef SLUICE_TEST_HARNESS_H
#define SLUICE_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct srv {
    pid_t pid;
    int port;
    char dir[256];     /* temp dir: data/, log, cert.pem, key.pem */
    char log[300];
    char cert[300], key[300];
};

/* Makes a self-signed certificate for localhost in "s->dir" (openssl CLI). */
void srv_make_cert(struct srv *s);
/* Starts the binary with "args" (NULL-terminated, may be NULL) appended to
 * --listen 127.0.0.1:0 --data-dir DIR/data. Aborts the test on failure. */
void srv_start(struct srv *s, const char *const *args);
/* Sends SIGTERM and waits up to "timeout_ms"; returns the exit status, or -1
 * if it had to be killed. */
int srv_stop(struct srv *s, int timeout_ms);
/* True while the process runs. */
bool srv_alive(struct srv *s);
/* VmRSS of the server in KiB. */
long srv_rss_kb(struct srv *s);
/* Number of lines in the server log containing "needle". */
int srv_log_count(struct srv *s, const char *needle);

/* Runs a shell command, captures up to "cap"-1 bytes of stdout (NUL-ended)
 * and returns its exit status. */
int run_cmd(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A blocking TCP connection to 127.0.0.1:"port" with a receive timeout. */
int tcp_connect(int port, int recv_timeout_ms);
/* Sends all of "buf". Returns 0 or -1. */
int send_all(int fd, const void *buf, size_t len);
/* Reads until EOF, "cap"-1 bytes, or the receive timeout; NUL-terminates.
 * Returns bytes read; *closed says whether EOF was seen. */
size_t recv_until_close(int fd, char *buf, size_t cap, bool *closed);

/* GET /healthz over HTTP/1.1 with curl: true if it answered 200. */
bool healthz_ok(struct srv *s);

#endif
