/* test_protocols.c - end to end: one port serves HTTP/1.1, h2c (prior
 * knowledge) and h2 over TLS (ALPN), and the two doors answer their error
 * paths. Each test starts the real binary on 127.0.0.1:0 and talks to it
 * with curl, nghttp, h2load or a raw socket. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct srv s;

static void start_tls(void)
{
    memset(&s, 0, sizeof s);
    srv_make_cert(&s);
    const char *args[] = {"--tls-cert", s.cert, "--tls-key", s.key, NULL};
    srv_start(&s, args);
}

static void stop(void)
{
    cr_expect_eq(srv_stop(&s, 15000), 0, "sluice did not exit 0 on SIGTERM");
}

TestSuite(protocols, .init = start_tls, .fini = stop, .timeout = 120);

/* The body's "protocol" field is the server's own view of the connection, and
 * curl's %{http_version} the client's: both must agree. */
Test(protocols, healthz_over_http1)
{
    char out[1024];
    cr_assert_eq(run_cmd(out, sizeof out,
                         "curl -s --http1.1 -w ' %%{http_version} %%{http_code}' "
                         "http://127.0.0.1:%d/healthz",
                         s.port),
                 0);
    cr_expect(strstr(out, "\"status\":\"ok\"") != NULL, "%s", out);
    cr_expect(strstr(out, "\"version\":\"") != NULL, "%s", out);
    cr_expect(strstr(out, "\"protocol\":\"http/1.1\"") != NULL, "%s", out);
    cr_expect(strstr(out, "\"tls\":false") != NULL, "%s", out);
    cr_expect(strstr(out, " 1.1 200") != NULL, "%s", out);
}

Test(protocols, healthz_over_h2c_prior_knowledge)
{
    char out[1024];
    cr_assert_eq(run_cmd(out, sizeof out,
                         "curl -s --http2-prior-knowledge -w ' %%{http_version} %%{http_code}' "
                         "http://127.0.0.1:%d/healthz",
                         s.port),
                 0);
    cr_expect(strstr(out, "\"protocol\":\"h2c\"") != NULL, "%s", out);
    cr_expect(strstr(out, " 2 200") != NULL, "%s", out);
}

Test(protocols, healthz_over_h2_tls_alpn)
{
    char out[8192];
    cr_assert_eq(run_cmd(out, sizeof out,
                         "curl -sk --http2 -v -w ' %%{http_version} %%{http_code}' "
                         "https://127.0.0.1:%d/healthz 2>&1",
                         s.port),
                 0);
    cr_expect(strstr(out, "ALPN: server accepted h2") != NULL, "%s", out);
    cr_expect(strstr(out, "\"protocol\":\"h2\"") != NULL, "%s", out);
    cr_expect(strstr(out, "\"tls\":true") != NULL, "%s", out);
    cr_expect(strstr(out, " 2 200") != NULL, "%s", out);
}

Test(protocols, healthz_over_http1_tls)
{
    char out[8192];
    cr_assert_eq(run_cmd(out, sizeof out,
                         "curl -sk --http1.1 -v -w ' %%{http_version} %%{http_code}' "
                         "https://127.0.0.1:%d/healthz 2>&1",
                         s.port),
                 0);
    cr_expect(strstr(out, "ALPN: server accepted http/1.1") != NULL, "%s", out);
    cr_expect(strstr(out, "\"protocol\":\"http/1.1\"") != NULL, "%s", out);
    cr_expect(strstr(out, "\"tls\":true") != NULL, "%s", out);
    cr_expect(strstr(out, " 1.1 200") != NULL, "%s", out);
}

Test(protocols, nghttp_client_h2c)
{
    char out[4096];
    cr_assert_eq(run_cmd(out, sizeof out, "nghttp -v http://127.0.0.1:%d/healthz 2>&1", s.port), 0,
                 "%s", out);
    cr_expect(strstr(out, ":status: 200") != NULL, "%s", out);
    /* Our SETTINGS: large windows and a stream cap. */
    cr_expect(strstr(out, "SETTINGS_INITIAL_WINDOW_SIZE(0x04):16777216") != NULL, "%s", out);
    cr_expect(strstr(out, "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):1000") != NULL, "%s", out);
}

Test(protocols, h2load_no_failures)
{
    char out[8192];
    cr_assert_eq(run_cmd(out, sizeof out, "h2load -n 20000 -c 10 -m 10 http://127.0.0.1:%d/healthz",
                         s.port),
                 0, "%s", out);
    cr_expect(strstr(out, "20000 succeeded, 0 failed, 0 errored, 0 timeout") != NULL, "%s", out);
    cr_expect(strstr(out, "20000 2xx") != NULL, "%s", out);
}

Test(protocols, h2load_http1_and_tls)
{
    char out[8192];
    cr_assert_eq(run_cmd(out, sizeof out, "h2load --h1 -n 5000 -c 10 -m 1 http://127.0.0.1:%d/healthz",
                         s.port),
                 0, "%s", out);
    cr_expect(strstr(out, "5000 succeeded, 0 failed") != NULL, "%s", out);
    cr_assert_eq(run_cmd(out, sizeof out, "h2load -n 5000 -c 4 -m 10 https://127.0.0.1:%d/healthz",
                         s.port),
                 0, "%s", out);
    cr_expect(strstr(out, "5000 succeeded, 0 failed") != NULL, "%s", out);
    cr_expect(strstr(out, "Application protocol: h2") != NULL, "%s", out);
}

Test(protocols, keepalive_and_pipelining)
{
    int fd = tcp_connect(s.port, 3000);
    const char *two = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    cr_assert_eq(send_all(fd, two, strlen(two)), 0);
    char buf[8192];
    bool closed;
    recv_until_close(fd, buf, sizeof buf, &closed);
    close(fd);
    cr_expect(closed, "server should close after Connection: close");
    int n = 0;
    for (const char *p = buf; (p = strstr(p, "HTTP/1.1 200 OK")) != NULL; p++)
        n++;
    cr_expect_eq(n, 2, "two pipelined replies expected: %s", buf);
    cr_expect(strstr(buf, "x-amzn-requestid: ") != NULL);
    cr_expect(strstr(buf, "date: ") != NULL);
}

Test(protocols, chunked_request_body_then_keepalive)
{
    int fd = tcp_connect(s.port, 3000);
    const char *req = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: Kinesis_20131202.Nope\r\n"
                      "Content-Type: application/x-amz-json-1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "1\r\n{\r\n1\r\n}\r\n0\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    cr_assert_eq(send_all(fd, req, strlen(req)), 0);
    char buf[8192];
    bool closed;
    recv_until_close(fd, buf, sizeof buf, &closed);
    close(fd);
    cr_expect(strstr(buf, "HTTP/1.1 400 Bad Request") != NULL, "%s", buf);
    cr_expect(strstr(buf, "UnknownOperationException") != NULL, "%s", buf);
    cr_expect(strstr(buf, "HTTP/1.1 200 OK") != NULL, "keep-alive after a chunked body: %s", buf);
}

Test(protocols, expect_100_continue_large_body)
{
    char path[400], out[2048];
    snprintf(path, sizeof path, "%s/big.json", s.dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputc('{', f);
    for (int i = 0; i < 3 * 1024 * 1024; i++)
        fputc(' ', f);
    fputc('}', f);
    fclose(f);
    /* curl sends Expect: 100-continue for bodies over 1 MiB and waits. */
    cr_assert_eq(run_cmd(out, sizeof out,
                         "curl -s -v --http1.1 -X POST --data-binary @%s "
                         "-H 'Content-Type: application/x-amz-json-1.1' "
                         "-H 'X-Amz-Target: Kinesis_20131202.Nope' "
                         "-w ' %%{http_code}' http://127.0.0.1:%d/ 2>&1 | "
                         "grep -E '^< HTTP|Expect|UnknownOperation'",
                         path, s.port),
                 0);
    cr_expect(strstr(out, "100 Continue") != NULL, "%s", out);
    cr_expect(strstr(out, "UnknownOperationException") != NULL, "%s", out);
}

/* ---- the doors' error paths ------------------------------------------------- */

Test(protocols, kinesis_door_unknown_target)
{
    char out[4096];
    cr_assert_eq(run_cmd(out, sizeof out,
                         "curl -s -i -X POST -H 'X-Amz-Target: Kinesis_20131202.NoSuchOp' "
                         "-H 'Content-Type: application/x-amz-json-1.1' -d '{}' "
                         "http://127.0.0.1:%d/",
                         s.port),
                 0);
    cr_expect(strstr(out, "HTTP/1.1 400") != NULL, "%s", out);
    cr_expect(strstr(out, "\"__type\":\"UnknownOperationException\"") != NULL, "%s", out);
    cr_expect(strstr(out, "content-type: application/x-amz-json-1.1") != NULL, "%s", out);
    cr_expect(strstr(out, "x-amzn-errortype: UnknownOperationException") != NULL, "%s", out);
}

Test(protocols, kinesis_door_missing_target_and_bad_content_type)
{
    char out[4096];
    run_cmd(out, sizeof out,
            "curl -s -i -X POST -H 'Content-Type: application/x-amz-json-1.1' -d '{}' "
            "http://127.0.0.1:%d/",
            s.port);
    cr_expect(strstr(out, "HTTP/1.1 400") != NULL, "%s", out);
    cr_expect(strstr(out, "UnknownOperationException") != NULL, "%s", out);
    run_cmd(out, sizeof out,
            "curl -s -i -X POST -H 'X-Amz-Target: Kinesis_20131202.ListStreams' "
            "-H 'Content-Type: text/plain' -d '{}' http://127.0.0.1:%d/",
            s.port);
    cr_expect(strstr(out, "HTTP/1.1 404") != NULL, "%s", out);
    cr_expect(strstr(out, "\"__type\":\"UnknownOperationException\"") != NULL, "%s", out);
}

Test(protocols, kinesis_door_wrong_method)
{
    char out[4096];
    run_cmd(out, sizeof out, "curl -s -i http://127.0.0.1:%d/", s.port);
    cr_expect(strstr(out, "HTTP/1.1 405") != NULL, "%s", out);
    cr_expect(strstr(out, "allow: POST") != NULL, "%s", out);
    cr_expect(strstr(out, "\"__type\":\"MethodNotAllowedException\"") != NULL, "%s", out);
}

Test(protocols, rest_door_unknown_path_and_method)
{
    char out[4096];
    run_cmd(out, sizeof out, "curl -s -i --http2-prior-knowledge http://127.0.0.1:%d/v1/nope",
            s.port);
    cr_expect(strstr(out, "HTTP/2 404") != NULL, "%s", out);
    cr_expect(strstr(out, "\"__type\":\"NotFoundException\"") != NULL, "%s", out);
    cr_expect(strstr(out, "content-type: application/json") != NULL, "%s", out);
    run_cmd(out, sizeof out, "curl -s -i -X DELETE http://127.0.0.1:%d/healthz", s.port);
    cr_expect(strstr(out, "HTTP/1.1 405") != NULL, "%s", out);
    cr_expect(strstr(out, "allow: GET, HEAD") != NULL, "%s", out);
}

Test(protocols, head_healthz_has_no_body)
{
    char out[4096];
    cr_assert_eq(run_cmd(out, sizeof out, "curl -s -I http://127.0.0.1:%d/healthz", s.port), 0);
    cr_expect(strstr(out, "HTTP/1.1 200") != NULL, "%s", out);
    cr_expect(strstr(out, "content-length: ") != NULL, "%s", out);
}

/* ---- listening ---------------------------------------------------------------- */

Test(listen, ipv4_and_ipv6_on_ephemeral_ports, .timeout = 60)
{
    struct srv t = {0};
    const char *args[] = {"--listen", "[::1]:0", NULL}; /* after the harness's 127.0.0.1:0 */
    srv_start(&t, args);
    cr_expect_eq(srv_log_count(&t, "\"event\":\"listening\""), 2);
    char out[1024];
    /* The [::1] line is the second one: find its port. */
    int rc = run_cmd(out, sizeof out,
                     "grep '\"listening\"' %s | grep '::1' | sed 's/.*\"port\":\"\\([0-9]*\\)\".*/\\1/'",
                     t.log);
    cr_assert_eq(rc, 0);
    int port6 = atoi(out);
    cr_assert_gt(port6, 0, "%s", out);
    rc = run_cmd(out, sizeof out, "curl -s -g http://[::1]:%d/healthz", port6);
    cr_expect_eq(rc, 0);
    cr_expect(strstr(out, "\"status\":\"ok\"") != NULL, "%s", out);
    cr_expect_eq(srv_stop(&t, 10000), 0);
}

Test(listen, help_and_bad_flags, .timeout = 30)
{
    char out[16384];
    cr_expect_eq(run_cmd(out, sizeof out, "%s --help", SLUICE_BIN), 0);
    cr_expect(strstr(out, "--listen") && strstr(out, "--data-dir") && strstr(out, "--tls-cert") &&
              strstr(out, "--tls-key") && strstr(out, "--log-level") && strstr(out, "SLUICE_LISTEN"));
    cr_expect_eq(run_cmd(out, sizeof out, "%s --no-such-flag 2>&1", SLUICE_BIN), 2);
    cr_expect_eq(run_cmd(out, sizeof out, "%s --max-body-bytes 12 2>&1", SLUICE_BIN), 2);
    cr_expect_eq(run_cmd(out, sizeof out, "%s --listen nonsense 2>&1", SLUICE_BIN), 2);
    cr_expect_eq(run_cmd(out, sizeof out,
                         "SLUICE_IDLE_TIMEOUT=5s SLUICE_LISTEN=127.0.0.1:1,127.0.0.1:2 %s "
                         "--print-config",
                         SLUICE_BIN),
                 0);
    cr_expect(strstr(out, "idle-timeout = 5000ms") != NULL, "%s", out);
    cr_expect(strstr(out, "listen = 127.0.0.1:1,127.0.0.1:2") != NULL, "%s", out);
}
