/* test_streaming.c - the streamed-reply API end to end, over HTTP/1.1
 * (chunked), h2c and h2+TLS, with back-pressure.
 *
 * The server runs in-process on its own thread with a test operation table
 * (the binary has no streaming operation yet; SubscribeToShard will be one),
 * so the test can count exactly how many bytes the protocol layer pulled from
 * a handler while the client refuses to read. Clients are real: curl, h2load,
 * raw sockets and an nghttp2 client session that never reads. */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "harness.h"
#include "ops.h"
#include "router.h"
#include "server.h"

#define CHUNK 4096

static atomic_size_t stall_pulled;
static atomic_int aborts, drained;

struct stream_state {
    size_t total, sent; /* bytes */
    bool infinite;
};

/* Byte "pos" of a stream is 'a' + (pos / CHUNK) % 26, however the protocol
 * layer slices the pulls (its "max" may be anything). */
static enum gw_pull pull_chunks(struct gw_req *req, void *ctx, struct evbuffer *out, size_t max)
{
    struct stream_state *st = ctx;
    if (gw_req_draining(req))
        return GW_PULL_EOF; /* long-lived replies end cleanly on drain */
    if (!st->infinite && st->sent == st->total)
        return GW_PULL_EOF;
    size_t n = CHUNK - st->sent % CHUNK;
    if (n > max)
        n = max;
    if (!st->infinite && n > st->total - st->sent)
        n = st->total - st->sent;
    char buf[CHUNK];
    memset(buf, 'a' + (int)((st->sent / CHUNK) % 26), n);
    evbuffer_add(out, buf, n);
    if (st->infinite)
        atomic_fetch_add(&stall_pulled, n);
    st->sent += n;
    return GW_PULL_MORE;
}

static void on_abort(struct gw_req *req, void *ctx) { atomic_fetch_add(&aborts, 1); }

/* GET /stream?chunks=N: N chunks of 4 KiB, chunk i filled with 'a'+i%26
 * (whole chunks: the pulls here always get max >= 4 KiB except on h2, where
 * a frame may split one; content stays position-determined for chunks sent
 * whole, and the tests compare sizes plus the first and last bytes). */
static void op_stream(struct gw_app *app, struct gw_req *req)
{
    struct stream_state *st = gw_req_alloc(req, sizeof *st);
    const char *n = gw_req_query_param(req, "chunks");
    *st = (struct stream_state){.total = (n ? strtoul(n, NULL, 10) : 10) * CHUNK};
    gw_req_on_abort(req, on_abort, NULL);
    gw_resp_header(req, "content-type", "application/octet-stream");
    gw_resp_stream(req, 200, pull_chunks, st);
}

/* GET /stall: never ends (until drain); counts every byte pulled. */
static void op_stall(struct gw_app *app, struct gw_req *req)
{
    struct stream_state *st = gw_req_alloc(req, sizeof *st);
    *st = (struct stream_state){.infinite = true};
    gw_req_on_abort(req, on_abort, NULL);
    gw_resp_stream(req, 200, pull_chunks, st);
}

/* GET /ticks: five 1-byte events 20 ms apart, produced from a timer: the pull
 * defers between ticks and the timer resumes it. */
struct ticks {
    struct gw_req *req;
    struct event *timer;
    int ready, sent;
    bool gone;
};

static void ticks_free(struct ticks *t)
{
    event_free(t->timer);
    free(t);
}

static enum gw_pull pull_ticks(struct gw_req *req, void *ctx, struct evbuffer *out, size_t max)
{
    struct ticks *t = ctx;
    while (t->sent < t->ready) {
        evbuffer_add_printf(out, "%d", t->sent);
        t->sent++;
    }
    if (t->sent == 5) {
        ticks_free(t);
        return GW_PULL_EOF;
    }
    return GW_PULL_DEFER;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct ticks *t = arg;
    t->ready++;
    gw_resp_resume(t->req);
    if (t->ready < 5) {
        struct timeval tv = {0, 20000};
        evtimer_add(t->timer, &tv);
    }
}

static void ticks_abort(struct gw_req *req, void *ctx)
{
    atomic_fetch_add(&aborts, 1);
    ticks_free(ctx);
}

static struct event_base *base;

static void op_ticks(struct gw_app *app, struct gw_req *req)
{
    struct ticks *t = calloc(1, sizeof *t);
    t->req = req;
    t->timer = evtimer_new(base, on_tick, t);
    struct timeval tv = {0, 20000};
    evtimer_add(t->timer, &tv);
    gw_req_on_abort(req, ticks_abort, t);
    gw_resp_stream(req, 200, pull_ticks, t);
}

/* GET /parked: a one-shot reply sent 50 ms later (as a PutRecords reply
 * waits for its fsync). */
struct parked {
    struct gw_req *req;
    struct event *timer;
};

static void on_parked(evutil_socket_t fd, short what, void *arg)
{
    struct parked *p = arg;
    gw_resp_send(p->req, 200, "parked-ok", 9);
    event_free(p->timer);
    free(p);
}

static void parked_abort(struct gw_req *req, void *ctx)
{
    struct parked *p = ctx;
    atomic_fetch_add(&aborts, 1);
    event_free(p->timer);
    free(p);
}

static void op_parked(struct gw_app *app, struct gw_req *req)
{
    struct parked *p = calloc(1, sizeof *p);
    p->req = req;
    p->timer = evtimer_new(base, on_parked, p);
    const char *ms = gw_req_query_param(req, "ms");
    long d = ms ? atol(ms) : 50;
    struct timeval tv = {d / 1000, (d % 1000) * 1000};
    evtimer_add(p->timer, &tv);
    gw_req_on_abort(req, parked_abort, p);
}

static const struct gw_op test_ops[] = {
    {NULL, "GET", "/stream", .handler = op_stream},
    {NULL, "GET", "/stall", .handler = op_stall},
    {NULL, "GET", "/ticks", .handler = op_ticks},
    {NULL, "GET", "/parked", .handler = op_parked},
    {NULL, "GET", "/healthz", .handler = op_healthz},
    {0},
};

/* ---- the in-process server ------------------------------------------------------ */

static struct gw_config cfg;
static struct gw_server *srv;
static struct gw_app app;
static pthread_t loop_thread;
static int port;
static struct srv certs; /* only for the certificate files */

static void *run_loop(void *arg)
{
    event_base_dispatch(base);
    return NULL;
}

static void setup(void)
{
    evthread_use_pthreads();
    memset(&certs, 0, sizeof certs);
    srv_make_cert(&certs);
    char *argv[] = {"sluice", "--listen", "127.0.0.1:0", "--tls-cert", certs.cert,
                    "--tls-key", certs.key, "--conn-buffer-bytes", "64KiB",
                    "--log-level", "warn"};
    FILE *null = fopen("/dev/null", "w");
    cr_assert_eq(gw_config_load(&cfg, 11, argv, null, null), GW_CONFIG_OK);
    fclose(null);
    gw_log_level_parse(cfg.log_level, &gw_log_min);
    base = event_base_new();
    struct gw_error err = {0};
    app = (struct gw_app){.cfg = &cfg, .ops = test_ops};
    srv = gw_server_new(base, &cfg, gw_router_dispatch, &app, &err);
    cr_assert_not_null(srv, "%s", err.message);
    app.srv = srv;
    cr_assert_eq(gw_server_listen(srv, &err), 0, "%s", err.message);
    port = gw_server_port(srv, 0);
    atomic_store(&stall_pulled, 0);
    atomic_store(&aborts, 0);
    atomic_store(&drained, 0);
    pthread_create(&loop_thread, NULL, run_loop, NULL);
}

static void on_drained(void *arg)
{
    atomic_store(&drained, 1);
    event_base_loopexit(base, NULL);
}

static void do_drain(evutil_socket_t fd, short what, void *arg)
{
    gw_server_drain(srv, on_drained, NULL);
}

static void teardown(void)
{
    static const struct timeval zero = {0, 0};
    event_base_once(base, -1, EV_TIMEOUT, do_drain, NULL, &zero);
    pthread_join(loop_thread, NULL);
    gw_server_free(srv);
    event_base_free(base);
    gw_config_clear(&cfg);
}

TestSuite(streaming, .init = setup, .fini = teardown, .timeout = 120);

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Downloads /stream?chunks=N with curl "flags" and checks every byte. */
static void check_stream(const char *flags, const char *scheme, size_t chunks, const char *want_version)
{
    char path[400], out[256];
    snprintf(path, sizeof path, "%s/out.bin", certs.dir);
    int rc = run_cmd(out, sizeof out,
                     "curl -sk %s -o %s -w '%%{http_version} %%{http_code}' "
                     "'%s://127.0.0.1:%d/stream?chunks=%zu'",
                     flags, path, scheme, port, chunks);
    cr_assert_eq(rc, 0, "curl failed: %s", out);
    cr_expect_str_eq(out, want_version);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    size_t total = 0;
    int c, bad = 0;
    while ((c = fgetc(f)) != EOF) {
        /* The h2 data provider may cut a pulled chunk across frames but
         * never reorders: byte i belongs to chunk i / CHUNK. */
        if (c != 'a' + (int)((total / CHUNK) % 26))
            bad++;
        total++;
    }
    fclose(f);
    cr_expect_eq(total, chunks * CHUNK, "%s: got %zu bytes", flags, total);
    cr_expect_eq(bad, 0, "%s: %d bytes out of place", flags, bad);
}

Test(streaming, chunked_http1)
{
    check_stream("--http1.1", "http", 500, "1.1 200");
}

Test(streaming, h2c)
{
    check_stream("--http2-prior-knowledge", "http", 500, "2 200");
}

Test(streaming, h2_tls)
{
    check_stream("--http2", "https", 500, "2 200");
}

Test(streaming, http1_tls)
{
    check_stream("--http1.1", "https", 200, "1.1 200");
}

Test(streaming, deferred_pull_resumed_by_timer)
{
    char out[256];
    cr_assert_eq(run_cmd(out, sizeof out, "curl -s --http2-prior-knowledge http://127.0.0.1:%d/ticks",
                         port), 0);
    cr_expect_str_eq(out, "01234");
    cr_assert_eq(run_cmd(out, sizeof out, "curl -s --http1.1 http://127.0.0.1:%d/ticks", port), 0);
    cr_expect_str_eq(out, "01234");
}

Test(streaming, parked_one_shot_reply)
{
    char out[256];
    cr_assert_eq(run_cmd(out, sizeof out, "curl -s --http2-prior-knowledge http://127.0.0.1:%d/parked",
                         port), 0);
    cr_expect_str_eq(out, "parked-ok");
    cr_assert_eq(run_cmd(out, sizeof out, "curl -s http://127.0.0.1:%d/parked", port), 0);
    cr_expect_str_eq(out, "parked-ok");
}

Test(streaming, client_gone_before_parked_reply_aborts_handler)
{
    char out[256];
    /* curl gives up after 100 ms; the reply would come at 1 s. */
    run_cmd(out, sizeof out, "curl -s --max-time 0.1 http://127.0.0.1:%d/parked?ms=1000", port);
    run_cmd(out, sizeof out,
            "curl -s --max-time 0.1 --http2-prior-knowledge http://127.0.0.1:%d/parked?ms=1000",
            port);
    sleep_ms(300);
    cr_expect_eq(atomic_load(&aborts), 2, "each dropped request must abort its handler");
}

Test(streaming, many_streams_multiplexed_on_one_connection)
{
    char out[8192];
    cr_assert_eq(run_cmd(out, sizeof out,
                         "h2load -n 200 -c 1 -m 100 'http://127.0.0.1:%d/stream?chunks=20'", port),
                 0, "%s", out);
    cr_expect(strstr(out, "200 succeeded, 0 failed, 0 errored") != NULL, "%s", out);
    cr_expect(strstr(out, "200 2xx") != NULL, "%s", out);
}

Test(streaming, http1_reader_that_never_reads_bounds_the_pull)
{
    int fd = tcp_connect(port, 2000);
    int small = 4096; /* keep the kernel's buffers small so the bound is tight */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const char *req = "GET /stall HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    send_all(fd, req, strlen(req));
    sleep_ms(1000);
    size_t a = atomic_load(&stall_pulled);
    sleep_ms(500);
    size_t b = atomic_load(&stall_pulled);
    cr_expect_eq(a, b, "pulls continued while the peer read nothing (%zu -> %zu)", a, b);
    /* 64 KiB output limit + kernel socket buffers (server send buffer up to a
     * few MiB on loopback); an unbounded pump would be gigabytes by now. */
    cr_expect_lt(b, (size_t)8 << 20, "pulled %zu bytes for a peer that reads nothing", b);
    cr_expect_gt(b, 0);
    char out[64];
    run_cmd(out, sizeof out, "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/healthz", port);
    cr_expect_str_eq(out, "200", "others are served meanwhile");
    close(fd);
    sleep_ms(200);
    cr_expect_eq(atomic_load(&aborts), 1, "closing the connection aborts the stream");
}

/* An nghttp2 client that opens /stall with a 64 KiB stream window and never
 * reads a byte of the reply: HTTP/2 flow control must stop the pull. */
static ssize_t cl_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    int fd = *(int *)ud;
    return send_all(fd, data, len) == 0 ? (ssize_t)len : NGHTTP2_ERR_CALLBACK_FAILURE;
}

Test(streaming, h2_stream_that_never_reads_bounds_the_pull)
{
    int fd = tcp_connect(port, 2000);
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, cl_send);
    nghttp2_session *s;
    nghttp2_session_client_new(&s, cbs, &fd);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535}};
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, 1);
    char authority[32];
    snprintf(authority, sizeof authority, "127.0.0.1:%d", port);
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)authority, 10, strlen(authority), 0},
        {(uint8_t *)":path", (uint8_t *)"/stall", 5, 6, 0},
    };
    cr_assert_gt(nghttp2_submit_request(s, NULL, nva, 4, NULL, NULL), 0);
    cr_assert_eq(nghttp2_session_send(s), 0);
    sleep_ms(800);
    size_t pulled = atomic_load(&stall_pulled);
    /* The window is 64 KiB; the server may hold one more pulled chunk. */
    cr_expect_leq(pulled, 65535 + CHUNK, "pulled %zu bytes past a 64 KiB window", pulled);
    cr_expect_gt(pulled, 0);
    /* The socket is never read, yet the server serves other clients. */
    char out[64];
    run_cmd(out, sizeof out,
            "curl -s --http2-prior-knowledge -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/healthz",
            port);
    cr_expect_str_eq(out, "200");
    nghttp2_session_del(s);
    close(fd);
    sleep_ms(200);
    cr_expect_eq(atomic_load(&aborts), 1);
}

Test(streaming, drain_ends_long_lived_streams_cleanly)
{
    char path[400];
    snprintf(path, sizeof path, "%s/curl.out", certs.dir);
    char cmd[600];
    /* A slow reader on an endless stream, in the background. */
    snprintf(cmd, sizeof cmd,
             "curl -s --http2-prior-knowledge --limit-rate 4M -o /dev/null "
             "-w '%%{http_code} %%{exitcode}' http://127.0.0.1:%d/stall > %s 2>&1 &",
             port, path);
    cr_assert_eq(system(cmd), 0);
    sleep_ms(500);
    static const struct timeval zero = {0, 0};
    event_base_once(base, -1, EV_TIMEOUT, do_drain, NULL, &zero);
    for (int i = 0; i < 200 && !atomic_load(&drained); i++)
        sleep_ms(50);
    cr_expect(atomic_load(&drained), "drain did not finish");
    /* curl still reads what the kernel buffers hold (a few MiB at 4 MB/s). */
    char out[64] = "";
    for (int i = 0; i < 100 && !out[0]; i++) {
        sleep_ms(100);
        run_cmd(out, sizeof out, "cat %s", path);
    }
    cr_expect_str_eq(out, "200 0", "the stream must end cleanly (curl exit 0)");
}
