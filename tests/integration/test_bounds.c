/* test_bounds.c - memory and time the HTTP layers may hold for one peer:
 * one-shot replies waiting on a zero HTTP/2 window (per-connection budget,
 * reset after the idle timeout), HTTP/2 requests that never finish (a
 * deadline per stream), declared bodies that never arrive (no memory until
 * bytes do) and the process-wide cap on buffered request bodies (503).
 *
 * The hostile peers are raw nghttp2 client sessions over blocking-with-poll
 * sockets, so each case controls exactly which frames are sent and which
 * windows are granted; the real sluice binary runs on 127.0.0.1:0. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* ---- a raw HTTP/2 client ------------------------------------------------------ */

#define MAX_ST 2048

struct st {
    int status;
    int rst; /* RST_STREAM error code received, -1 none */
    bool closed;
    size_t data;        /* DATA bytes received */
    char body[4096];    /* the first bytes of the reply body */
    /* Request body to send: the provider defers once it is sent unless "end". */
    const uint8_t *out;
    size_t out_len, out_off;
    bool end;
};

struct h2c {
    int fd;
    nghttp2_session *s;
    struct st st[MAX_ST]; /* by (stream id - 1) / 2 */
    bool dead;
};

static struct st *st_of(struct h2c *c, int32_t id)
{
    size_t i = (size_t)(id - 1) / 2;
    return id > 0 && (id & 1) && i < MAX_ST ? &c->st[i] : NULL;
}

static ssize_t cb_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    struct h2c *c = ud;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return NGHTTP2_ERR_WOULDBLOCK;
    return n < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : n;
}

static int cb_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct st *t = st_of(ud, f->hd.stream_id);
    if (t && f->hd.type == NGHTTP2_RST_STREAM)
        t->rst = (int)f->rst_stream.error_code;
    return 0;
}

static int cb_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    struct st *t = st_of(ud, f->hd.stream_id);
    if (t && nl == 7 && memcmp(name, ":status", 7) == 0)
        t->status = atoi((const char *)value);
    return 0;
}

static int cb_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    struct st *t = st_of(ud, id);
    if (t) {
        size_t room = sizeof t->body - 1 - (t->data < sizeof t->body ? t->data : sizeof t->body - 1);
        memcpy(t->body + (sizeof t->body - 1 - room), data, len < room ? len : room);
        t->data += len;
    }
    return 0;
}

static int cb_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct st *t = st_of(ud, id);
    if (t)
        t->closed = true;
    return 0;
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct st *t = src->ptr;
    size_t n = t->out_len - t->out_off;
    if (n > len)
        n = len;
    memcpy(buf, t->out + t->out_off, n);
    t->out_off += n;
    if (t->out_off == t->out_len) {
        if (t->end)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        else if (n == 0)
            return NGHTTP2_ERR_DEFERRED; /* hold the stream open, send nothing more */
    }
    return (ssize_t)n;
}

/* Connects with SETTINGS_INITIAL_WINDOW_SIZE "window" (the server's send
 * window on our streams); "auto_update" false never grants more. */
static struct h2c *h2c_open(int port, uint32_t window, bool auto_update)
{
    struct h2c *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->fd = tcp_connect(port, 2000);
    cr_assert_geq(c->fd, 0);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    int sndbuf = 4 << 20;
    setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    for (size_t i = 0; i < MAX_ST; i++)
        c->st[i].rst = -1;
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, cb_send);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_close);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    if (!auto_update)
        nghttp2_option_set_no_auto_window_update(opt, 1);
    cr_assert_eq(nghttp2_session_client_new2(&c->s, cbs, c, opt), 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
                                   {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 4096}};
    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 2);
    if (auto_update) /* a large connection window, so big replies flow */
        nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, 1 << 30);
    return c;
}

static void h2c_close(struct h2c *c)
{
    nghttp2_session_del(c->s);
    close(c->fd);
    free(c);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exchanges frames for up to "ms", or until "done(c, arg)" holds. */
static bool h2c_pump_until(struct h2c *c, int ms, bool (*done)(struct h2c *, void *), void *arg)
{
    int64_t end = now_ms() + ms;
    static uint8_t buf[1 << 16];
    while (!c->dead) {
        if (nghttp2_session_send(c->s) != 0)
            c->dead = true;
        if (done && done(c, arg))
            return true;
        int64_t left = end - now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {c->fd, POLLIN | (nghttp2_session_want_write(c->s) ? POLLOUT : 0), 0};
        if (poll(&p, 1, left > 20 ? 20 : (int)left) <= 0)
            continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(c->fd, buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                c->dead = true;
                break;
            }
            if (n > 0 && nghttp2_session_mem_recv(c->s, buf, (size_t)n) < 0)
                c->dead = true;
        }
    }
    return done && done(c, arg);
}

static void h2c_pump(struct h2c *c, int ms) { h2c_pump_until(c, ms, NULL, NULL); }

/* A Kinesis-door POST on a new stream. "body" (borrowed until sent) is sent
 * in full and the stream ended if "end"; otherwise the stream stays open
 * after it. "clen" >= 0 adds a content-length header. Returns the id. */
static int32_t h2c_post(struct h2c *c, const char *op, const void *body, size_t len, bool end,
                        long long clen)
{
    char target[96], cl[32];
    snprintf(target, sizeof target, "Kinesis_20131202.%s", op);
    snprintf(cl, sizeof cl, "%lld", clen);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", "/"),
                        NV(":authority", "127.0.0.1"),
                        NV("content-type", "application/x-amz-json-1.1"),
                        NV("x-amz-target", target), NV("content-length", cl)};
#undef NV
    size_t nnv = clen >= 0 ? 7 : 6;
    int32_t id;
    if (len == 0 && end) {
        id = nghttp2_submit_request(c->s, NULL, nva, nnv, NULL, NULL);
    } else if (len == 0) {
        id = nghttp2_submit_headers(c->s, NGHTTP2_FLAG_NONE, -1, NULL, nva, nnv, NULL);
    } else {
        /* The stream's slot is known only after submission: stage the body
         * in a fresh slot and point the provider at it. */
        static struct st staging;
        staging = (struct st){.rst = -1, .out = body, .out_len = len, .end = end};
        nghttp2_data_provider prd = {.source.ptr = NULL, .read_callback = body_read};
        int32_t next = (int32_t)nghttp2_session_get_next_stream_id(c->s);
        struct st *t = st_of(c, next);
        cr_assert_not_null(t);
        *t = staging;
        prd.source.ptr = t;
        id = nghttp2_submit_request(c->s, NULL, nva, nnv, &prd, NULL);
        cr_assert_eq(id, next);
    }
    cr_assert_gt(id, 0, "submit: %s", nghttp2_strerror(id));
    return id;
}

/* Runs one call to completion; returns the status, the body in *t. */
static int h2c_call(struct h2c *c, const char *op, const char *body, struct st **t)
{
    int32_t id = h2c_post(c, op, body, strlen(body), true, (long long)strlen(body));
    struct st *x = st_of(c, id);
    for (int64_t end = now_ms() + 30000; !x->closed && !c->dead && now_ms() < end;)
        h2c_pump(c, 50);
    if (t)
        *t = x;
    return x->status;
}

/* ---- helpers -------------------------------------------------------------------- */

/* Each test starts its own server here; the suite's fini stops it, also
 * after a failed assertion. */
static struct srv s;

static void stop_srv(void)
{
    if (s.pid > 0 && srv_alive(&s)) {
        cr_expect_eq(srv_stop(&s, 15000), 0, "server exit status (log %s)", s.log);
    } else if (s.pid > 0) {
        cr_expect(false, "server died (log %s)", s.log);
    }
}

TestSuite(bounds, .fini = stop_srv);

static long proc_kb(const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s.pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            v = atol(line + fl + 1);
    if (f)
        fclose(f);
    return v;
}

static bool all_closed(struct h2c *c, void *arg)
{
    const int32_t *ids = arg; /* first, count */
    for (int32_t i = 0; i < ids[1]; i++)
        if (!st_of(c, ids[0] + 2 * i)->closed)
            return false;
    return true;
}

static bool all_sent(struct h2c *c, void *arg)
{
    const int32_t *ids = arg;
    for (int32_t i = 0; i < ids[1]; i++) {
        const struct st *t = st_of(c, ids[0] + 2 * i);
        if (t->out_off < t->out_len)
            return false;
    }
    return !nghttp2_session_want_write(c->s);
}

static bool any_rst(struct h2c *c, void *arg)
{
    const int32_t *ids = arg;
    for (int32_t i = 0; i < ids[1]; i++)
        if (st_of(c, ids[0] + 2 * i)->rst >= 0)
            return true;
    return false;
}

#ifdef __SANITIZE_ADDRESS__
#define SLACK_MB 96 /* quarantine and shadow memory */
#else
#define SLACK_MB 48
#endif

/* ---- one-shot replies against a zero window ------------------------------------------ */

/* A base64 string of "n" bytes of a fixed pattern. */
static char *b64_of(size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out = (n + 2) / 3 * 4;
    char *b = malloc(out + 1);
    for (size_t i = 0; i < out; i++)
        b[i] = a[(i * 7 + i / 61) & 63];
    b[out] = '\0';
    return b;
}

Test(bounds, zero_window_replies_are_bounded_per_connection_and_reset, .timeout = 180)
{
    const char *args[] = {"--idle-timeout", "2s", "--conn-reply-bytes", "4MiB", NULL};
    srv_start(&s, args);

    /* A one-shard stream holding records of ~1 MB: a GetRecords page from
     * TRIM_HORIZON is ~1.3 MB of JSON (the store hands out one such record
     * per read). */
    struct h2c *ok = h2c_open(s.port, 1 << 24, true);
    struct st *t;
    cr_assert_eq(h2c_call(ok, "CreateStream", "{\"StreamName\":\"big\",\"ShardCount\":1}", &t),
                 200, "%s", t->body);
    bool active = false;
    for (int i = 0; i < 100 && !active; i++) {
        h2c_call(ok, "DescribeStreamSummary", "{\"StreamName\":\"big\"}", &t);
        active = strstr(t->body, "ACTIVE") != NULL;
        if (!active)
            h2c_pump(ok, 50);
    }
    cr_assert(active, "stream never became ACTIVE");
    char *data = b64_of(999999);
    size_t blen = strlen(data) + 128;
    char *put = malloc(blen);
    snprintf(put, blen, "{\"StreamName\":\"big\",\"PartitionKey\":\"k\",\"Data\":\"%s\"}", data);
    free(data);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(h2c_call(ok, "PutRecord", put, &t), 200, "%s", t->body);
    free(put);
    cr_assert_eq(h2c_call(ok, "GetShardIterator",
                          "{\"StreamName\":\"big\",\"ShardId\":\"shardId-000000000000\","
                          "\"ShardIteratorType\":\"TRIM_HORIZON\"}",
                          &t),
                 200);
    char *it = strstr(t->body, "\"ShardIterator\":\"");
    cr_assert_not_null(it, "%s", t->body);
    it += 17;
    char getrec[1024];
    snprintf(getrec, sizeof getrec, "{\"ShardIterator\":\"%.*s\"}", (int)strcspn(it, "\""), it);
    /* Warm-up: one full page on the good connection, so the reply's own
     * transient buffers are in the baseline. */
    cr_assert_eq(h2c_call(ok, "GetRecords", getrec, &t), 200, "%s", t->body);
    cr_assert_gt(t->data, (size_t)1 << 20, "%zu bytes: %.300s", t->data, t->body);
    h2c_pump(ok, 300);
    long rss0 = srv_rss_kb(&s);

    /* The hostile peer: window 0 on every stream, 300 GetRecords at once
     * (~400 MB of replies if each were produced). */
    struct h2c *bad = h2c_open(s.port, 0, false);
    const int n = 300;
    int32_t ids[2] = {0, n};
    for (int i = 0; i < n; i++) {
        int32_t id = h2c_post(bad, "GetRecords", getrec, strlen(getrec), true,
                              (long long)strlen(getrec));
        if (i == 0)
            ids[0] = id;
    }
    h2c_pump(bad, 1200);
    long rss1 = srv_rss_kb(&s);
    /* Meanwhile others are served, a full page included. */
    cr_expect(healthz_ok(&s));
    cr_expect_eq(h2c_call(ok, "GetRecords", getrec, &t), 200);
    cr_expect_gt(t->data, (size_t)1 << 20);
    cr_expect_lt(rss1 - rss0, (long)SLACK_MB * 1024,
                 "RSS grew by %ld KiB with %d replies stuck behind a zero window", rss1 - rss0,
                 n);
    size_t headers = 0;
    for (int i = 0; i < n; i++)
        headers += st_of(bad, ids[0] + 2 * i)->status != 0;
    cr_expect_leq(headers, 4, "%zu replies of 1.3 MB produced for a 4 MiB budget", headers);

    /* The peer never opens its window: the stuck reply is reset (CANCEL)
     * after the idle timeout, and the connection's next request runs. */
    cr_expect(h2c_pump_until(bad, 8000, any_rst, ids), "no stream reset after the idle timeout");
    int cancelled = 0;
    for (int i = 0; i < n; i++)
        cancelled += st_of(bad, ids[0] + 2 * i)->rst == NGHTTP2_CANCEL;
    cr_expect_geq(cancelled, 1);
    h2c_pump(bad, 500);
    size_t headers2 = 0;
    for (int i = 0; i < n; i++)
        headers2 += st_of(bad, ids[0] + 2 * i)->status != 0;
    cr_expect_gt(headers2, headers, "no waiting request ran after the reset freed the budget");
    h2c_close(bad);
    h2c_close(ok);
}

/* HTTP/1.1 answers one request at a time and stops reading while its output
 * is over the limit: pipelined GetRecords never read hold one reply. */
Test(bounds, http1_pipelined_replies_are_bounded, .timeout = 120)
{
    srv_start(&s, NULL);
    struct h2c *ok = h2c_open(s.port, 1 << 24, true);
    struct st *t;
    cr_assert_eq(h2c_call(ok, "CreateStream", "{\"StreamName\":\"p\",\"ShardCount\":1}", &t), 200);
    bool active = false;
    for (int i = 0; i < 100 && !active; i++) {
        h2c_call(ok, "DescribeStreamSummary", "{\"StreamName\":\"p\"}", &t);
        active = strstr(t->body, "ACTIVE") != NULL;
        if (!active)
            h2c_pump(ok, 50);
    }
    cr_assert(active);
    char *data = b64_of(999999);
    size_t blen = strlen(data) + 128;
    char *put = malloc(blen);
    snprintf(put, blen, "{\"StreamName\":\"p\",\"PartitionKey\":\"k\",\"Data\":\"%s\"}", data);
    free(data);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(h2c_call(ok, "PutRecord", put, &t), 200);
    free(put);
    cr_assert_eq(h2c_call(ok, "GetShardIterator",
                          "{\"StreamName\":\"p\",\"ShardId\":\"shardId-000000000000\","
                          "\"ShardIteratorType\":\"TRIM_HORIZON\"}",
                          &t),
                 200);
    char *it = strstr(t->body, "\"ShardIterator\":\"") + 17;
    char getrec[1024];
    int glen = snprintf(getrec, sizeof getrec, "{\"ShardIterator\":\"%.*s\"}",
                        (int)strcspn(it, "\""), it);
    cr_assert_eq(h2c_call(ok, "GetRecords", getrec, &t), 200);
    h2c_pump(ok, 300);
    long rss0 = srv_rss_kb(&s);

    char one[1400];
    int olen = snprintf(one, sizeof one,
                        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
                        "X-Amz-Target: Kinesis_20131202.GetRecords\r\nContent-Length: %d\r\n\r\n%s",
                        glen, getrec);
    int fd = tcp_connect(s.port, 2000);
    for (int i = 0; i < 300; i++) /* ~400 MB of replies, never read */
        if (send_all(fd, one, (size_t)olen) != 0)
            break;
    h2c_pump(ok, 1500);
    long rss1 = srv_rss_kb(&s);
    cr_expect(healthz_ok(&s));
    cr_expect_lt(rss1 - rss0, (long)SLACK_MB * 1024, "RSS grew by %ld KiB", rss1 - rss0);
    close(fd);
    h2c_close(ok);
}

/* ---- requests that never finish --------------------------------------------------------- */

Test(bounds, h2_request_without_end_stream_times_out_and_frees_the_stream, .timeout = 60)
{
    const char *args[] = {"--idle-timeout", "1s", "--max-streams", "8", NULL};
    srv_start(&s, args);
    struct h2c *c = h2c_open(s.port, 1 << 20, true);
    h2c_pump(c, 100);
    /* Eight streams (the whole allowance): HEADERS without END_STREAM, one
     * declaring a body, one sending part of it; then nothing. */
    static const char part[] = "{\"Stre";
    int32_t ids[2] = {0, 8};
    for (int i = 0; i < 8; i++) {
        int32_t id = i == 0   ? h2c_post(c, "ListStreams", part, sizeof part - 1, false, 100)
                     : i == 1 ? h2c_post(c, "ListStreams", NULL, 0, false, 100)
                              : h2c_post(c, "ListStreams", NULL, 0, false, -1);
        if (i == 0)
            ids[0] = id;
    }
    int64_t t0 = now_ms();
    cr_expect(h2c_pump_until(c, 6000, all_closed, ids), "stalled streams still open after 6 s");
    int64_t took = now_ms() - t0;
    cr_expect_geq(took, 900, "reset before the deadline (%lld ms)", (long long)took);
    for (int i = 0; i < 8; i++) {
        struct st *t = st_of(c, ids[0] + 2 * i);
        cr_expect_eq(t->status, 408, "stream %d: status %d", ids[0] + 2 * i, t->status);
        cr_expect(strstr(t->body, "RequestTimeoutException") != NULL, "%s", t->body);
    }
    /* The slots are free again: eight complete requests on the same
     * connection are served. */
    int32_t ids2[2] = {0, 8};
    for (int i = 0; i < 8; i++) {
        int32_t id = h2c_post(c, "ListStreams", "{}", 2, true, 2);
        if (i == 0)
            ids2[0] = id;
    }
    cr_expect(h2c_pump_until(c, 5000, all_closed, ids2));
    for (int i = 0; i < 8; i++)
        cr_expect_eq(st_of(c, ids2[0] + 2 * i)->status, 200);
    h2c_close(c);
    cr_expect(healthz_ok(&s));
}

/* A request refused at its HEADERS (413) whose peer never ends it: the
 * stream is reset (NO_ERROR) at the deadline instead of held. */
Test(bounds, h2_refused_request_never_ended_is_reset, .timeout = 60)
{
    const char *args[] = {"--idle-timeout", "1s", NULL};
    srv_start(&s, args);
    struct h2c *c = h2c_open(s.port, 1 << 20, true);
    int32_t ids[2] = {h2c_post(c, "PutRecords", NULL, 0, false, 20 << 20), 1};
    cr_expect(h2c_pump_until(c, 6000, all_closed, ids), "stream still open after 6 s");
    struct st *t = st_of(c, ids[0]);
    cr_expect_eq(t->status, 413);
    cr_expect_eq(t->rst, NGHTTP2_NO_ERROR);
    h2c_close(c);
}

/* The same with a peer whose window is zero: the 408's body cannot go out,
 * so the stream ends by the zero-window rule (CANCEL) one timeout later. */
Test(bounds, h2_timed_out_request_behind_a_zero_window_is_reset, .timeout = 60)
{
    const char *args[] = {"--idle-timeout", "1s", NULL};
    srv_start(&s, args);
    struct h2c *c = h2c_open(s.port, 0, false);
    int32_t ids[2] = {h2c_post(c, "ListStreams", NULL, 0, false, 100), 1};
    cr_expect(h2c_pump_until(c, 6000, all_closed, ids), "stream still open after 6 s");
    struct st *t = st_of(c, ids[0]);
    cr_expect_eq(t->status, 408);
    cr_expect_eq(t->rst, NGHTTP2_CANCEL);
    h2c_close(c);
    cr_expect(healthz_ok(&s));
}

Test(bounds, declared_bodies_that_never_arrive_cost_no_memory, .timeout = 60)
{
    srv_start(&s, NULL); /* --max-body-bytes 10MiB */
    long rss0 = srv_rss_kb(&s), data0 = proc_kb("VmData");
    struct h2c *c[2];
    const int per = 400;
    for (int k = 0; k < 2; k++) {
        c[k] = h2c_open(s.port, 1 << 20, true);
        /* Content-Length 10 MiB and one byte of it, then silence. */
        for (int i = 0; i < per; i++)
            h2c_post(c[k], "PutRecords", "{", 1, false, 10 << 20);
        h2c_pump(c[k], 300);
    }
    h2c_pump(c[0], 300);
    long rss1 = srv_rss_kb(&s), data1 = proc_kb("VmData");
    cr_expect(healthz_ok(&s));
    cr_expect_lt(rss1 - rss0, (long)SLACK_MB * 1024, "RSS grew by %ld KiB", rss1 - rss0);
    /* Virtual size too: reserving the declared length shows there even
     * where the pages are never touched. */
    cr_expect_lt(data1 - data0, 256L * 1024, "VmData grew by %ld KiB for %d declared 10 MiB bodies",
                 data1 - data0, 2 * per);
    for (int k = 0; k < 2; k++)
        h2c_close(c[k]);
    /* HTTP/1.1 the same: 200 connections declaring 10 MiB, sending 1 byte. */
    static const char head[] = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/x-amz-json-1.1\r\n"
                               "X-Amz-Target: Kinesis_20131202.PutRecords\r\n"
                               "Content-Length: 10485760\r\n\r\n{";
    int fds[200];
    for (int i = 0; i < 200; i++) {
        fds[i] = tcp_connect(s.port, 2000);
        cr_assert_geq(fds[i], 0);
        send_all(fds[i], head, sizeof head - 1);
    }
    struct timespec pause = {0, 500 * 1000000L};
    nanosleep(&pause, NULL);
    long rss2 = srv_rss_kb(&s), data2 = proc_kb("VmData");
    cr_expect(healthz_ok(&s));
    cr_expect_lt(rss2 - rss0, (long)SLACK_MB * 1024, "RSS grew by %ld KiB", rss2 - rss0);
    cr_expect_lt(data2 - data0, 256L * 1024,
                 "VmData grew by %ld KiB with 200 HTTP/1.1 bodies of 10 MiB declared",
                 data2 - data0);
    for (int i = 0; i < 200; i++)
        close(fds[i]);
}

/* ---- the process-wide body cap -------------------------------------------------------- */

Test(bounds, global_body_memory_cap_answers_503_and_others_are_served, .timeout = 60)
{
    const char *args[] = {"--max-body-memory", "1MiB", "--max-body-bytes", "512KiB", NULL};
    srv_start(&s, args);
    const size_t big = 300 * 1024;
    uint8_t *body = malloc(big);
    memset(body, 'x', big);
    /* Connection A holds three 300 KiB bodies, unfinished: 900 KiB. */
    struct h2c *a = h2c_open(s.port, 1 << 20, true);
    int32_t held[2] = {0, 3};
    for (int i = 0; i < 3; i++) { /* all its bytes, but no END_STREAM */
        int32_t hid = h2c_post(a, "PutRecords", body, big, false, (long long)big);
        if (i == 0)
            held[0] = hid;
    }
    cr_assert(h2c_pump_until(a, 5000, all_sent, held));
    h2c_pump(a, 500); /* for the server to read them */
    /* Connection B: a fourth such body does not fit. */
    struct h2c *b = h2c_open(s.port, 1 << 20, true);
    int32_t id = h2c_post(b, "PutRecords", body, big, true, (long long)big);
    int32_t one[2] = {id, 1};
    cr_expect(h2c_pump_until(b, 5000, all_closed, one));
    struct st *t = st_of(b, id);
    cr_expect_eq(t->status, 503, "status %d: %s", t->status, t->body);
    cr_expect(strstr(t->body, "ServiceUnavailable") != NULL, "%s", t->body);
    /* Small requests still fit and are served, on B and elsewhere. */
    cr_expect_eq(h2c_call(b, "ListStreams", "{}", &t), 200, "%s", t->body);
    cr_expect(healthz_ok(&s));
    /* HTTP/1.1 gets the same answer. */
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
                      "X-Amz-Target: Kinesis_20131202.PutRecords\r\nContent-Length: %zu\r\n\r\n",
                      big);
    int fd = tcp_connect(s.port, 3000);
    send_all(fd, head, (size_t)hl);
    send_all(fd, body, big);
    char buf[4096];
    bool closed;
    recv_until_close(fd, buf, sizeof buf, &closed);
    close(fd);
    cr_expect(strstr(buf, "HTTP/1.1 503") != NULL, "%s", buf);
    cr_expect(strstr(buf, "ServiceUnavailable") != NULL, "%s", buf);
    /* A's bodies go with its connection: the same request fits again (once
     * the server has seen A close). */
    h2c_close(a);
    int status = 0;
    for (int i = 0; i < 20 && (status == 0 || status == 503); i++) {
        h2c_pump(b, 200);
        id = h2c_post(b, "PutRecords", body, big, true, (long long)big);
        one[0] = id;
        h2c_pump_until(b, 5000, all_closed, one);
        status = st_of(b, id)->status;
    }
    cr_expect(status != 0 && status != 503, "status %d after the holder closed", status);
    h2c_close(b);
    free(body);
}
