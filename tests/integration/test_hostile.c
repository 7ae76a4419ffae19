/* test_hostile.c - hostile peers: garbage, oversized headers, slowloris,
 * oversized bodies, a peer that never reads, HTTP/2 abuse, TLS without a
 * certificate, too many connections, idle connections. Each case checks the
 * clean error or close, and that a normal client is served afterwards. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"

static struct srv s;

static void start_small_limits(void)
{
    memset(&s, 0, sizeof s);
#ifdef __SANITIZE_ADDRESS__
    /* ASan's quarantine (256 MB by default) keeps every freed block for a
     * while, so the gateway's RSS would grow with the requests it answered
     * (as many as the kernel's socket buffers let through: tcp_wmem and
     * tcp_rmem differ by machine), not with what it holds. A small one
     * keeps the memory bounds below about the server. */
    const char *old = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=4", old ? old : "", old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
#endif
    const char *args[] = {"--header-timeout", "600ms", "--idle-timeout", "800ms",
                          "--max-body-bytes", "64KiB", "--max-header-bytes", "8KiB", NULL};
    srv_start(&s, args);
}

static void stop(void)
{
    cr_expect(srv_alive(&s), "server died");
    cr_expect_eq(srv_stop(&s, 15000), 0);
}

TestSuite(hostile, .init = start_small_limits, .fini = stop, .timeout = 120);

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(hostile, garbage_bytes_get_400_and_close)
{
    int fd = tcp_connect(s.port, 3000);
    const char junk[] = "\x01\x02\xff garbage \r\n\r\n\x7f\x80";
    send_all(fd, junk, sizeof junk - 1);
    char buf[4096];
    bool closed;
    recv_until_close(fd, buf, sizeof buf, &closed);
    close(fd);
    cr_expect(strstr(buf, "HTTP/1.1 400") != NULL, "%s", buf);
    cr_expect(strstr(buf, "connection: close") != NULL, "%s", buf);
    cr_expect(closed);
    cr_expect(healthz_ok(&s));
}

Test(hostile, oversized_header_http1_gets_431)
{
    int fd = tcp_connect(s.port, 3000);
    char *req = malloc(64 * 1024);
    int n = snprintf(req, 64 * 1024, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ");
    memset(req + n, 'a', 32 * 1024);
    n += 32 * 1024;
    n += snprintf(req + n, 64 * 1024 - (size_t)n, "\r\n\r\n");
    send_all(fd, req, (size_t)n);
    free(req);
    char buf[4096];
    bool closed;
    recv_until_close(fd, buf, sizeof buf, &closed);
    close(fd);
    cr_expect(strstr(buf, "HTTP/1.1 431") != NULL, "%s", buf);
    cr_expect(strstr(buf, "RequestHeaderFieldsTooLargeException") != NULL, "%s", buf);
    cr_expect(closed);
    cr_expect(healthz_ok(&s));
}

Test(hostile, oversized_header_h2_gets_431)
{
    char path[400], out[256];
    snprintf(path, sizeof path, "%s/big-header.txt", s.dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("x-big: ", f);
    for (int i = 0; i < 20 * 1024; i++)
        fputc('a', f);
    fputs("\n", f);
    fclose(f);
    run_cmd(out, sizeof out,
            "curl -s -o /dev/null -w '%%{http_code}' --http2-prior-knowledge -H @%s "
            "http://127.0.0.1:%d/healthz",
            path, s.port);
    cr_expect_str_eq(out, "431");
    cr_expect(healthz_ok(&s));
}

Test(hostile, slowloris_headers_time_out_with_408)
{
    int fd = tcp_connect(s.port, 5000);
    const char *partial = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    send_all(fd, partial, strlen(partial));
    double t0 = now_s();
    /* Trickle one byte every 100 ms, far past the 600 ms header timeout,
     * while a normal client is served in between. */
    bool served_meanwhile = false;
    for (int i = 0; i < 20; i++) {
        if (send_all(fd, "a", 1) != 0)
            break;
        if (i == 3)
            served_meanwhile = healthz_ok(&s);
        sleep_ms(100);
    }
    char buf[4096];
    bool closed;
    recv_until_close(fd, buf, sizeof buf, &closed);
    double took = now_s() - t0;
    close(fd);
    cr_expect(served_meanwhile, "normal client starved by a slowloris peer");
    cr_expect(strstr(buf, "HTTP/1.1 408") != NULL, "%s", buf);
    cr_expect(closed);
    cr_expect_lt(took, 4.0, "slowloris connection lived %.1fs", took);
    cr_expect(healthz_ok(&s));
}

Test(hostile, silent_connection_closed_after_header_timeout)
{
    int fd = tcp_connect(s.port, 5000);
    char buf[64];
    bool closed;
    recv_until_close(fd, buf, sizeof buf, &closed);
    close(fd);
    cr_expect(closed, "a connection that sends nothing must be closed");
    cr_expect(healthz_ok(&s));
}

Test(hostile, idle_keepalive_connection_closed)
{
    int fd = tcp_connect(s.port, 5000);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[4096];
    bool closed;
    double t0 = now_s();
    recv_until_close(fd, buf, sizeof buf, &closed);
    close(fd);
    cr_expect(strstr(buf, "HTTP/1.1 200") != NULL, "%s", buf);
    cr_expect(closed, "idle keep-alive connection must close after the idle timeout");
    cr_expect_lt(now_s() - t0, 4.0);
}

Test(hostile, declared_body_over_limit_gets_413)
{
    int fd = tcp_connect(s.port, 3000);
    const char *req = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
                      "X-Amz-Target: Kinesis_20131202.ListStreams\r\n"
                      "Content-Length: 1073741824\r\n\r\n{";
    send_all(fd, req, strlen(req));
    char buf[4096];
    bool closed;
    recv_until_close(fd, buf, sizeof buf, &closed);
    close(fd);
    cr_expect(strstr(buf, "HTTP/1.1 413") != NULL, "%s", buf);
    cr_expect(closed);
    cr_expect(healthz_ok(&s));
}

Test(hostile, chunked_body_over_limit_gets_413)
{
    int fd = tcp_connect(s.port, 3000);
    const char *head = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
                       "X-Amz-Target: Kinesis_20131202.ListStreams\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n";
    send_all(fd, head, strlen(head));
    char chunk[8192 + 16];
    int n = snprintf(chunk, sizeof chunk, "2000\r\n");
    memset(chunk + n, 'x', 8192);
    memcpy(chunk + n + 8192, "\r\n", 2);
    for (int i = 0; i < 16; i++) /* 128 KiB > 64 KiB limit */
        if (send_all(fd, chunk, (size_t)n + 8194) != 0)
            break;
    char buf[4096];
    bool closed;
    recv_until_close(fd, buf, sizeof buf, &closed);
    close(fd);
    cr_expect(strstr(buf, "HTTP/1.1 413") != NULL, "%s", buf);
    cr_expect(healthz_ok(&s));
}

Test(hostile, h2_body_over_limit_gets_413)
{
    char path[400], out[256];
    snprintf(path, sizeof path, "%s/body.bin", s.dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 200 * 1024; i++)
        fputc('x', f);
    fclose(f);
    run_cmd(out, sizeof out,
            "curl -s -o /dev/null -w '%%{http_code}' --http2-prior-knowledge --data-binary @%s "
            "-H 'Content-Type: application/x-amz-json-1.1' "
            "-H 'X-Amz-Target: Kinesis_20131202.ListStreams' http://127.0.0.1:%d/",
            path, s.port);
    cr_expect_str_eq(out, "413");
    /* Without Content-Length the cap is hit while the DATA frames stream in. */
    run_cmd(out, sizeof out,
            "cat %s | curl -s -o /dev/null -w '%%{http_code}' --http2-prior-knowledge "
            "--data-binary @- -H 'Transfer-Encoding:' "
            "-H 'Content-Type: application/x-amz-json-1.1' "
            "-H 'X-Amz-Target: Kinesis_20131202.ListStreams' http://127.0.0.1:%d/",
            path, s.port);
    cr_expect_str_eq(out, "413");
    cr_expect(healthz_ok(&s));
}

Test(hostile, peer_that_never_reads_costs_bounded_memory)
{
    long rss0 = srv_rss_kb(&s);
    int fd = tcp_connect(s.port, 2000);
    /* Up to 500,000 pipelined requests (~17 MB) and their ~100 MB of replies,
     * never read: the server must stop reading once its output is full, so
     * our sends stall long before the end. */
    const char *one = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    size_t len = strlen(one);
    char *many = malloc(len * 1000);
    for (int i = 0; i < 1000; i++)
        memcpy(many + (size_t)i * len, one, len);
    struct timeval tv = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int sent = 0;
    for (int i = 0; i < 500; i++) {
        if (send_all(fd, many, len * 1000) != 0)
            break; /* the server stopped reading: our send buffer is full */
        sent++;
    }
    free(many);
    sleep_ms(300);
    cr_expect(healthz_ok(&s), "others must be served while one peer never reads");
    long rss1 = srv_rss_kb(&s);
#ifdef __SANITIZE_ADDRESS__
    /* ASan's quarantine and shadow memory hold freed blocks for a while. */
    const long bound_kb = 64 * 1024;
#else
    const long bound_kb = 16 * 1024;
#endif
    cr_expect_lt(rss1 - rss0, bound_kb, "RSS grew by %ld KiB (sent %d000 requests)", rss1 - rss0,
                 sent);
    cr_expect_lt(sent, 500, "server kept reading a peer that never reads");
    close(fd);
    cr_expect(healthz_ok(&s));
}

/* Raw HTTP/2 frames for abuse cases. */
static void frame(char *out, size_t *n, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
    unsigned char *p = (unsigned char *)out + *n;
    p[0] = (unsigned char)(len >> 16);
    p[1] = (unsigned char)(len >> 8);
    p[2] = (unsigned char)len;
    p[3] = type;
    p[4] = flags;
    p[5] = (unsigned char)(sid >> 24);
    p[6] = (unsigned char)(sid >> 16);
    p[7] = (unsigned char)(sid >> 8);
    p[8] = (unsigned char)sid;
    *n += 9;
}

static bool has_goaway(const char *buf, size_t n)
{
    /* Walk the frames after the server's preface-free start. */
    size_t i = 0;
    while (i + 9 <= n) {
        uint32_t len = ((uint32_t)(unsigned char)buf[i] << 16) |
                       ((uint32_t)(unsigned char)buf[i + 1] << 8) | (unsigned char)buf[i + 2];
        if ((unsigned char)buf[i + 3] == 0x7)
            return true;
        i += 9 + len;
    }
    return false;
}

Test(hostile, h2_garbage_after_preface_gets_goaway)
{
    int fd = tcp_connect(s.port, 3000);
    char buf[8192];
    size_t n = 0;
    memcpy(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    n = 24;
    frame(buf, &n, 0, 0x4, 0, 0); /* empty SETTINGS */
    memcpy(buf + n, "\xde\xad\xbe\xef\x00\x00\x00\x00\x01garbage!", 17);
    n += 17;
    send_all(fd, buf, n);
    bool closed;
    size_t got = recv_until_close(fd, buf, sizeof buf, &closed);
    close(fd);
    cr_expect(has_goaway(buf, got), "expected a GOAWAY frame");
    cr_expect(closed);
    cr_expect(healthz_ok(&s));
}

Test(hostile, h2_ping_flood_is_cut_off)
{
    int fd = tcp_connect(s.port, 3000);
    size_t cap = 24 + 9 + 20000 * 17;
    char *buf = malloc(cap);
    size_t n = 24;
    memcpy(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    frame(buf, &n, 0, 0x4, 0, 0);
    for (int i = 0; i < 20000; i++) {
        frame(buf, &n, 8, 0x6, 0, 0);
        memset(buf + n, 'p', 8);
        n += 8;
    }
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    send_all(fd, buf, n); /* we never read the PING ACKs */
    free(buf);
    sleep_ms(200);
    cr_expect(healthz_ok(&s));
    close(fd);
    cr_expect(srv_alive(&s));
}

Test(hostile, too_many_connections_are_refused)
{
    struct srv t = {0};
    const char *args[] = {"--max-connections", "3", NULL};
    srv_start(&t, args);
    int held[3];
    for (int i = 0; i < 3; i++)
        held[i] = tcp_connect(t.port, 2000);
    sleep_ms(100);
    int extra = tcp_connect(t.port, 2000);
    char buf[64];
    bool closed;
    recv_until_close(extra, buf, sizeof buf, &closed);
    close(extra);
    cr_expect(closed, "a connection over --max-connections must be closed");
    for (int i = 0; i < 3; i++)
        close(held[i]);
    sleep_ms(200);
    cr_expect(healthz_ok(&t));
    cr_expect_eq(srv_stop(&t, 10000), 0);
}

Test(hostile, tls_without_certificate_is_refused_cleanly)
{
    char out[4096];
    int rc = run_cmd(out, sizeof out, "curl -sk --max-time 5 https://127.0.0.1:%d/healthz 2>&1",
                     s.port);
    cr_expect_neq(rc, 0, "TLS must fail without --tls-cert");
    cr_expect_geq(srv_log_count(&s, "\"event\":\"tls_refused\""), 1);
    cr_expect(healthz_ok(&s));
}

/* ---- browser safety ------------------------------------------------------------ */

/* A web page can make a browser send a "simple" cross-origin POST (text/plain
 * or a form type) without asking first: such a POST must change nothing. */
Test(hostile, rest_post_with_a_simple_content_type_changes_nothing)
{
    char out[4096];
    const char *types[] = {"text/plain", "application/x-www-form-urlencoded",
                           "multipart/form-data; boundary=x", NULL};
    for (int i = 0; types[i]; i++) {
        run_cmd(out, sizeof out,
                "curl -s -w ' %%{http_code}' -X POST -H 'Content-Type: %s' "
                "--data-binary '{\"StreamName\":\"forged%d\",\"ShardCount\":1}' "
                "http://127.0.0.1:%d/v1/streams",
                types[i], i, s.port);
        cr_expect(strstr(out, "UnsupportedMediaType") && strstr(out, " 415"), "%s: %s", types[i],
                  out);
    }
    /* Without any type (curl -d sends the form type; --data-binary with
     * no header likewise), and a raw record posted as text/plain. */
    run_cmd(out, sizeof out,
            "curl -s -w ' %%{http_code}' -X POST -H 'Content-Type: text/plain' --data-binary x "
            "'http://127.0.0.1:%d/v1/streams/forged0/records?partitionKey=k'",
            s.port);
    cr_expect(strstr(out, " 415"), "%s", out);
    run_cmd(out, sizeof out, "curl -s http://127.0.0.1:%d/v1/streams", s.port);
    cr_expect(strstr(out, "forged") == NULL, "a forged POST created a stream: %s", out);
    /* The real thing still works. */
    run_cmd(out, sizeof out,
            "curl -s -w ' %%{http_code}' -X POST -H 'Content-Type: application/json' "
            "-d '{\"StreamName\":\"real\",\"ShardCount\":1}' http://127.0.0.1:%d/v1/streams",
            s.port);
    cr_expect(strstr(out, " 200"), "%s", out);
}

/* DNS rebinding: a page on evil.example resolves its name to 127.0.0.1; the
 * browser then sends Host: evil.example. Bound to loopback, the gateway
 * answers only loopback names (and --allowed-hosts). */
Test(hostile, foreign_host_is_misdirected_on_loopback)
{
    char out[4096];
    const char *targets[] = {"/v1/streams", "/healthz", NULL};
    for (int i = 0; targets[i]; i++) {
        run_cmd(out, sizeof out, "curl -s -w ' %%{http_code}' -H 'Host: evil.example:%d' "
                                 "http://127.0.0.1:%d%s",
                s.port, s.port, targets[i]);
        cr_expect(strstr(out, "MisdirectedRequest") && strstr(out, " 421"), "%s: %s", targets[i],
                  out);
    }
    run_cmd(out, sizeof out,
            "curl -s -w ' %%{http_code}' -X POST -H 'Host: evil.example' "
            "-H 'Content-Type: application/x-amz-json-1.1' "
            "-H 'X-Amz-Target: Kinesis_20131202.ListStreams' -d '{}' http://127.0.0.1:%d/",
            s.port);
    cr_expect(strstr(out, " 421"), "the Kinesis door too: %s", out);
    run_cmd(out, sizeof out,
            "curl -s -w ' %%{http_code}' --http2-prior-knowledge -H 'Host: evil.example' "
            "http://127.0.0.1:%d/v1/streams",
            s.port);
    cr_expect(strstr(out, " 421"), "h2c (:authority) too: %s", out);
    const char *fine[] = {"localhost", "127.0.0.1", "[::1]", NULL};
    for (int i = 0; fine[i]; i++) {
        run_cmd(out, sizeof out, "curl -s -w ' %%{http_code}' -H 'Host: %s:%d' "
                                 "http://127.0.0.1:%d/v1/streams",
                fine[i], s.port, s.port);
        cr_expect(strstr(out, " 200"), "%s: %s", fine[i], out);
    }
}

Test(hostile, allowed_hosts_extends_the_loopback_names)
{
    struct srv t = {0};
    const char *args[] = {"--allowed-hosts", "gw.internal,Other.Example", NULL};
    srv_start(&t, args);
    char out[4096];
    run_cmd(out, sizeof out, "curl -s -w ' %%{http_code}' -H 'Host: gw.internal:%d' "
                             "http://127.0.0.1:%d/healthz",
            t.port, t.port);
    cr_expect(strstr(out, " 200"), "%s", out);
    run_cmd(out, sizeof out, "curl -s -w ' %%{http_code}' -H 'Host: other.example' "
                             "http://127.0.0.1:%d/healthz",
            t.port);
    cr_expect(strstr(out, " 200"), "names compare without case: %s", out);
    run_cmd(out, sizeof out, "curl -s -w ' %%{http_code}' -H 'Host: gw.internal.evil' "
                             "http://127.0.0.1:%d/healthz",
            t.port);
    cr_expect(strstr(out, " 421"), "%s", out);
    cr_expect_eq(srv_stop(&t, 10000), 0);
}

/* CORS is off unless --cors-origin names the page's origin: only then do
 * preflights succeed and replies carry Access-Control-Allow-Origin. */
Test(hostile, cors_only_for_listed_origins)
{
    char out[8192];
    /* Off by default (the suite's server has no --cors-origin). */
    run_cmd(out, sizeof out,
            "curl -s -i -X OPTIONS -H 'Origin: https://app.example' "
            "-H 'Access-Control-Request-Method: POST' http://127.0.0.1:%d/v1/streams",
            s.port);
    cr_expect(strstr(out, " 400 ") && !strstr(out, "access-control-allow-origin"), "%s", out);
    struct srv t = {0};
    const char *args[] = {"--cors-origin", "https://app.example,http://localhost:3000", NULL};
    srv_start(&t, args);
    run_cmd(out, sizeof out,
            "curl -s -i -X OPTIONS -H 'Origin: https://app.example' "
            "-H 'Access-Control-Request-Method: POST' "
            "-H 'Access-Control-Request-Headers: content-type, authorization' "
            "http://127.0.0.1:%d/v1/streams",
            t.port);
    cr_expect(strstr(out, " 204 "), "%s", out);
    cr_expect(strstr(out, "access-control-allow-origin: https://app.example"), "%s", out);
    cr_expect(strstr(out, "access-control-allow-headers: content-type, authorization"), "%s", out);
    cr_expect(strstr(out, "access-control-allow-methods: "), "%s", out);
    /* A listed origin reads replies, errors included; streams too. */
    run_cmd(out, sizeof out,
            "curl -s -i -H 'Origin: http://localhost:3000' http://127.0.0.1:%d/v1/streams/none",
            t.port);
    cr_expect(strstr(out, "access-control-allow-origin: http://localhost:3000"), "%s", out);
    cr_expect(strstr(out, "ResourceNotFoundException"), "%s", out);
    /* Another origin: refused preflight, and no CORS headers on replies. */
    run_cmd(out, sizeof out,
            "curl -s -i -X OPTIONS -H 'Origin: https://evil.example' "
            "-H 'Access-Control-Request-Method: DELETE' http://127.0.0.1:%d/v1/streams/x",
            t.port);
    cr_expect(!strstr(out, " 204 ") && !strstr(out, "access-control-allow-origin"), "%s", out);
    run_cmd(out, sizeof out,
            "curl -s -i -H 'Origin: https://app.example.evil' http://127.0.0.1:%d/v1/streams",
            t.port);
    cr_expect(strstr(out, " 200 ") && !strstr(out, "access-control-allow-origin"), "%s", out);
    cr_expect_eq(srv_stop(&t, 10000), 0);
}

/* ---- drain -------------------------------------------------------------------- */

Test(drain, sigterm_sends_goaway_and_exits_zero, .timeout = 60)
{
    struct srv t = {0};
    srv_start(&t, NULL);
    /* An idle h2 session and an idle HTTP/1.1 keep-alive connection. */
    int h2 = tcp_connect(t.port, 5000);
    char buf[8192];
    size_t n = 24;
    memcpy(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    frame(buf, &n, 0, 0x4, 0, 0);
    send_all(h2, buf, n);
    int h1 = tcp_connect(t.port, 5000);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    send_all(h1, req, strlen(req));
    sleep_ms(200);
    cr_assert_eq(kill(t.pid, SIGTERM), 0);
    bool closed;
    size_t got = recv_until_close(h2, buf, sizeof buf, &closed);
    cr_expect(has_goaway(buf, got), "drain must send GOAWAY");
    cr_expect(closed);
    got = recv_until_close(h1, buf, sizeof buf, &closed);
    cr_expect(strstr(buf, "HTTP/1.1 200") != NULL, "%s", buf);
    cr_expect(closed, "idle keep-alive connection closed by the drain");
    close(h1);
    close(h2);
    int status = srv_stop(&t, 10000);
    cr_expect_eq(status, 0, "exit status after drain: %d (log %s)", status, t.log);
    cr_expect_geq(srv_log_count(&t, "\"event\":\"draining\""), 1);
}
