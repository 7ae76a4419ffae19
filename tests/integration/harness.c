/* harness.c - see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void mkdtemp_into(struct srv *s)
{
    snprintf(s->dir, sizeof s->dir, "/tmp/sluice-test-XXXXXX");
    cr_assert_not_null(mkdtemp(s->dir), "mkdtemp");
    snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
}

void srv_make_cert(struct srv *s)
{
    if (!s->dir[0])
        mkdtemp_into(s);
    snprintf(s->cert, sizeof s->cert, "%s/cert.pem", s->dir);
    snprintf(s->key, sizeof s->key, "%s/key.pem", s->dir);
    char out[256];
    int rc = run_cmd(out, sizeof out,
                     "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
                     "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
                     ">/dev/null 2>&1",
                     s->key, s->cert);
    cr_assert_eq(rc, 0, "openssl req failed");
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void srv_start(struct srv *s, const char *const *args)
{
    if (!s->dir[0])
        mkdtemp_into(s);
    char data[300];
    snprintf(data, sizeof data, "%s/data", s->dir);
    const char *argv[64];
    int n = 0;
    argv[n++] = SLUICE_BIN;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--data-dir";
    argv[n++] = data;
    for (int i = 0; args && args[i] && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    /* A restart reuses the directory: never read the previous run's port. */
    unlink(s->log);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork");
    if (pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    s->port = 0;
    for (int i = 0; i < 500 && !s->port; i++) { /* up to 10 s under sanitizers */
        FILE *f = fopen(s->log, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "\"event\":\"listening\"");
            const char *q = p ? strstr(line, "\"port\":\"") : NULL;
            if (q) {
                s->port = atoi(q + 8);
                break;
            }
        }
        if (f)
            fclose(f);
        if (!s->port) {
            cr_assert(srv_alive(s), "sluice exited during startup (log %s)", s->log);
            sleep_ms(20);
        }
    }
    cr_assert_gt(s->port, 0, "no listening line in %s", s->log);
}

bool srv_alive(struct srv *s)
{
    int st;
    return s->pid > 0 && waitpid(s->pid, &st, WNOHANG) == 0;
}

int srv_stop(struct srv *s, int timeout_ms)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    int st;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = 0;
    return -1;
}

long srv_rss_kb(struct srv *s)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

int srv_log_count(struct srv *s, const char *needle)
{
    FILE *f = fopen(s->log, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    if (f)
        fclose(f);
    return n;
}

int run_cmd(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    size_t n = 0;
    if (cap > 0) {
        size_t r;
        char tmp[4096];
        while ((r = fread(tmp, 1, sizeof tmp, p)) > 0) {
            size_t take = r < cap - 1 - n ? r : cap - 1 - n;
            memcpy(out + n, tmp, take);
            n += take;
        }
        out[n] = '\0';
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int tcp_connect(int port, int recv_timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0, "socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    struct timeval tv = {recv_timeout_ms / 1000, (recv_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

size_t recv_until_close(int fd, char *buf, size_t cap, bool *closed)
{
    size_t n = 0;
    *closed = false;
    while (n < cap - 1) {
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r == 0) {
            *closed = true;
            break;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNRESET)
                *closed = true;
            break;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

bool healthz_ok(struct srv *s)
{
    char out[64];
    int rc = run_cmd(out, sizeof out,
                     "curl -s -o /dev/null -w '%%{http_code}' --max-time 5 http://127.0.0.1:%d/healthz",
                     s->port);
    return rc == 0 && strcmp(out, "200") == 0;
}
