/* test_jsbus.c - store/jsbus.c against a real nats-server with JetStream.
 *
 * Each test starts its own standalone server (tests/lib/nats-cluster.sh up
 * --nodes 1) on free loopback ports in a temp directory, and stops it by the
 * PID the script recorded. The test plays the loop thread: pump() polls
 * jsbus_notify_fd and calls jsbus_dispatch. Every wait is a condition with a
 * deadline; the only fixed sleeps check that something does NOT happen. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jsbus.h"

#include "nats_server.h"

static void setup(void)
{
    server_start();
}

static void teardown(void)
{
    server_stop();
}

TestSuite(jsbus, .init = setup, .fini = teardown, .timeout = 120);

/* ---- the loop ---- */

struct logs {
    int warn, info;
};

static void on_log(void *arg, enum store_log_level lvl, const char *msg)
{
    struct logs *l = arg;
    if (l && lvl == STORE_LOG_WARN)
        l->warn++;
    if (l && lvl == STORE_LOG_INFO)
        l->info++;
    fprintf(stderr, "[log %d] %s\n", (int)lvl, msg);
}

static struct jsbus *open_bus(struct logs *l)
{
    struct jsbus_opts o = {.urls = srv_url, .name = "test_jsbus", .log = on_log, .log_arg = l};
    struct jsbus *b = NULL;
    struct store_err err = {0};
    int rc = jsbus_open(&o, &b, &err);
    cr_assert_eq(rc, 0, "jsbus_open: %s", err.msg);
    return b;
}

static void pump_once(struct jsbus *b, int ms)
{
    struct pollfd p = {.fd = jsbus_notify_fd(b), .events = POLLIN};
    if (poll(&p, 1, ms) > 0)
        jsbus_dispatch(b);
}

#define PUMP_UNTIL(b, ms, cond)                                                \
    do {                                                                       \
        int64_t d_ = now_ms() + (ms);                                          \
        while (!(cond) && now_ms() < d_)                                       \
            pump_once((b), 20);                                                \
    } while (0)

/* ---- helpers: streams and publishing ---- */

static void create_stream(struct jsbus *b, const char *name, const char *subjects)
{
    char subj[128], body[256];
    snprintf(subj, sizeof subj, "$JS.API.STREAM.CREATE.%s", name);
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"subjects\":[\"%s\"],\"storage\":\"file\"}", name,
             subjects);
    json_t *reply = NULL;
    struct store_err err = {0};
    int rc = 0;
    /* JetStream may need a moment after a start before it answers */
    for (int i = 0; i < 50; i++) {
        rc = jsbus_request_sync(b, subj, body, strlen(body), 2000, &reply, &err);
        if (rc == 0)
            break;
        sleep_ms(100);
    }
    cr_assert_eq(rc, 0, "stream create: %s", err.msg);
    cr_assert_null(json_object_get(reply, "error"), "stream create error: %s",
                   json_dumps(reply, 0));
    cr_assert_not_null(json_object_get(reply, "config"));
    json_decref(reply);
}

/* One publish: its PubAck (or error) lands here. */
struct pub {
    int calls;
    int code;
    uint64_t seq;
    int64_t order; /* when the ack arrived (global counter) */
};
static int64_t ack_counter;

static void on_pub(void *arg, const struct jsbus_msg *reply, const struct store_err *err)
{
    struct pub *p = arg;
    p->calls++;
    p->order = ++ack_counter;
    if (err) {
        p->code = err->code;
        return;
    }
    p->code = 0;
    json_t *j = json_loadb((const char *)reply->data, reply->len, 0, NULL);
    cr_assert_not_null(j, "PubAck is not JSON");
    cr_assert_null(json_object_get(j, "error"), "PubAck error: %.*s", (int)reply->len,
                   (const char *)reply->data);
    p->seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
    json_decref(j);
}

/* Payload of message "i": "m<i>:" then filler up to "size" bytes. */
static size_t payload(uint64_t i, size_t size, char *buf)
{
    int n = snprintf(buf, size + 1, "m%" PRIu64 ":", i);
    for (size_t k = (size_t)n; k < size; k++)
        buf[k] = (char)('a' + (i + k) % 26);
    return size > (size_t)n ? size : (size_t)n;
}

static void publish_one(struct jsbus *b, const char *subject, uint64_t i, size_t size, struct pub *p)
{
    static char buf[1 << 20];
    char id[32], is[32];
    snprintf(id, sizeof id, "id-%" PRIu64, i);
    snprintf(is, sizeof is, "%" PRIu64, i);
    struct jsbus_hdr h[2] = {{"Nats-Msg-Id", id}, {"X-I", is}};
    size_t len = payload(i, size, buf);
    memset(p, 0, sizeof *p);
    p->code = 1; /* pending */
    struct store_err err = {0};
    int rc = jsbus_request(b, subject, h, 2, buf, len, 5000, on_pub, p, &err);
    cr_assert_eq(rc, 0, "jsbus_request: %s", err.msg);
}

/* Publishes messages from..to (inclusive, X-I and Nats-Msg-Id from the
 * index) and pumps until each has its PubAck; retries failures (the
 * message id makes a retry idempotent) until "ms" runs out. */
static void publish_range(struct jsbus *b, const char *subject, uint64_t from, uint64_t to,
                          size_t size, int ms)
{
    size_t n = (size_t)(to - from + 1);
    struct pub *p = calloc(n, sizeof *p);
    for (size_t k = 0; k < n; k++)
        publish_one(b, subject, from + k, size, &p[k]);
    int64_t deadline = now_ms() + ms;
    for (;;) {
        size_t done = 0;
        for (size_t k = 0; k < n; k++) {
            if (p[k].calls && p[k].code == 0)
                done++;
            else if (p[k].calls && p[k].code != 1)
                publish_one(b, subject, from + k, size, &p[k]);
        }
        if (done == n)
            break;
        cr_assert_lt(now_ms(), deadline, "publishing: %zu of %zu acked", done, n);
        pump_once(b, 20);
    }
    for (size_t k = 0; k < n; k++)
        cr_assert_eq(p[k].seq, from + k, "message %" PRIu64 " got seq %" PRIu64, from + k, p[k].seq);
    free(p);
}

/* ---- a follow's recorder ---- */

struct rec {
    uint64_t *seqs;
    size_t n, cap;
    int bad;
    struct jsbus_follow *f;
    size_t unfollow_at; /* unfollow from inside the callback after this many */
};

static void on_deliver(void *arg, const struct jsbus_msg *m)
{
    struct rec *r = arg;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->seqs = realloc(r->seqs, r->cap * sizeof *r->seqs);
    }
    r->seqs[r->n++] = m->stream_seq;
    /* in this file's streams, stream seq == message index */
    const char *xi = jsbus_msg_header(m, "X-I");
    char want[32];
    int wn = snprintf(want, sizeof want, "m%" PRIu64 ":", m->stream_seq);
    if (!xi || strtoull(xi, NULL, 10) != m->stream_seq || m->len < (size_t)wn ||
        memcmp(m->data, want, (size_t)wn) != 0 || m->time_ns <= 0)
        r->bad++;
    if (r->unfollow_at && r->n == r->unfollow_at) {
        jsbus_unfollow(r->f);
        r->f = NULL;
    }
}

/* Every recorded seq is from, from+1, ..., to: once each, in order. */
static void check_exact(const struct rec *r, uint64_t from, uint64_t to)
{
    cr_assert_eq(r->bad, 0, "%d messages with wrong data or headers", r->bad);
    cr_assert_eq(r->n, (size_t)(to - from + 1), "got %zu messages, want %" PRIu64, r->n,
                 to - from + 1);
    for (size_t k = 0; k < r->n; k++)
        cr_assert_eq(r->seqs[k], from + k, "message %zu: seq %" PRIu64 ", want %" PRIu64, k,
                     r->seqs[k], from + k);
}

/* ======================================================================== */

struct sync_reply {
    int calls;
    int code;
    char msg[256];
    json_t *json;
};

static void on_sync_reply(void *arg, const struct jsbus_msg *reply, const struct store_err *err)
{
    struct sync_reply *s = arg;
    s->calls++;
    if (err) {
        s->code = err->code;
        snprintf(s->msg, sizeof s->msg, "%s", err->msg);
        return;
    }
    s->json = json_loadb((const char *)reply->data, reply->len, 0, NULL);
}

Test(jsbus, stream_create_sync_and_async_two_buses)
{
    struct jsbus *b = open_bus(NULL);
    struct jsbus *b2 = open_bus(NULL);
    cr_assert_eq(jsbus_connected(b), 1);
    create_stream(b, "S1", "s1.>");

    const char *body = "{\"name\":\"S2\",\"subjects\":[\"s2.>\"],\"storage\":\"memory\"}";
    struct sync_reply r = {0};
    struct store_err err = {0};
    cr_assert_eq(jsbus_request(b2, "$JS.API.STREAM.CREATE.S2", NULL, 0, body, strlen(body), 0,
                               on_sync_reply, &r, &err),
                 0);
    cr_assert_eq(r.calls, 0, "callback ran inside jsbus_request");
    PUMP_UNTIL(b2, 10000, r.calls > 0);
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.code, 0, "%s", r.msg);
    cr_assert_not_null(r.json);
    cr_assert_null(json_object_get(r.json, "error"));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "config"), "name")),
                     "S2");
    json_decref(r.json);

    /* an API error object is left for the caller */
    json_t *reply = NULL;
    cr_assert_eq(jsbus_request_sync(b, "$JS.API.STREAM.INFO.NOPE", NULL, 0, 2000, &reply, &err), 0,
                 "%s", err.msg);
    cr_assert_not_null(json_object_get(reply, "error"));
    json_decref(reply);

    /* bad arguments: an error, and no callback */
    cr_assert_eq(jsbus_request(b, "", NULL, 0, NULL, 0, 0, on_sync_reply, &r, &err), STORE_EINVAL);
    cr_assert_null(jsbus_follow(b, "S1", NULL, 0, (jsbus_deliver_fn)on_deliver, NULL, &err));
    cr_assert_eq(err.code, STORE_EINVAL);

    /* closing in the other order than opening */
    jsbus_close(b);
    PUMP_UNTIL(b2, 200, 0);
    cr_assert_eq(jsbus_connected(b2), 1);
    jsbus_close(b2);
}

/* The reply-subject scan: both forms JetStream writes (libnats' parser,
 * natsMsg_GetMetaData, reads a message a subscription delivered only, so the
 * values are spelled out; follow_from_1_and_500_then_live checks the scan
 * against a real server's deliveries), and what it must leave to libnats. */
Test(jsbus, ack_meta_reads_both_reply_forms)
{
    static const struct {
        const char *reply;
        uint64_t seq;
        int64_t ts;
    } ok[] = {
        {"$JS.ACK.sluice-data-1.c1.1.4242.17.1733480000123456789.0", 4242,
         1733480000123456789},
        {"$JS.ACK.hub.ACCHASH.sluice-data-1.c1.3.18446744073709551.2.1733480000123456789.9.r4nd",
         18446744073709551u, 1733480000123456789},
        {"$JS.ACK.hub.ACCHASH.S.C.1.7.7.5.0.tok.extra", 7, 5},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint64_t seq = 0;
        int64_t ts = 0;
        cr_assert_eq(jsbus_ack_meta(ok[i].reply, &seq, &ts), 1, "%s", ok[i].reply);
        cr_expect_eq(seq, ok[i].seq, "%s: %" PRIu64, ok[i].reply, seq);
        cr_expect_eq(ts, ok[i].ts, "%s: %" PRId64, ok[i].reply, ts);
    }
    static const char *bad[] = {
        NULL,
        "",
        "_INBOX.abc.1",
        "$JS.ACK.s.c.1.2.3.4",                      /* 8 tokens */
        "$JS.ACK.s.c.1.2.3.4.5.6",                  /* 10 */
        "$JS.ACK.d.h.s.c.1.2.3.4.5",                /* 11 */
        "$JS.ACK.s.c.1.x2.3.4.5",                   /* not a number */
        "$JS.ACK.s.c.1..3.4.5",                     /* empty */
        "$JS.ACK.s.c.1.12345678901234567890.3.4.5", /* 20 digits */
        "$JS.ACK.s.c.1.9223372036854775808.3.4.5",  /* above INT64_MAX */
        "$JS.ACK.s.c.1.2.3.t4.5",                   /* time not a number */
        "$JS.ACK.s.c.x.2.3.4.5",                    /* delivered not a number */
        "$JS.ACK.s.c.1.2.3.4.-5",                   /* pending not a number */
        "$JS.ACK.a.b.c.d.e.f.g.h.i.j.k.l.m.n",      /* too many tokens */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t seq = 7;
        int64_t ts = 7;
        cr_expect_eq(jsbus_ack_meta(bad[i], &seq, &ts), 0, "%s", bad[i] ? bad[i] : "(null)");
        cr_expect(seq == 7 && ts == 7, "%s: outputs written", bad[i] ? bad[i] : "(null)");
    }
}

Test(jsbus, bad_options)
{
    struct jsbus *b = NULL;
    struct store_err err = {0};
    struct jsbus_opts o = {.urls = ""};
    cr_assert_eq(jsbus_open(&o, &b, &err), STORE_EINVAL);
    /* a port nobody listens on: the script's server is on another one */
    o.urls = "nats://127.0.0.1:1";
    o.connect_timeout_ms = 500;
    cr_assert_eq(jsbus_open(&o, &b, &err), STORE_EUNAVAIL);
    cr_assert_null(b);
    o.urls = srv_url;
    o.tls_ca = "/nonexistent/ca.pem";
    cr_assert_eq(jsbus_open(&o, &b, &err), STORE_EINVAL, "%d %s", err.code, err.msg);
}

Test(jsbus, publish_1000_with_headers)
{
    struct jsbus *b = open_bus(NULL);
    create_stream(b, "T", "t.>");
    enum { N = 1000 };
    struct pub *p = calloc(N, sizeof *p);
    ack_counter = 0;
    for (int i = 0; i < N; i++)
        publish_one(b, "t.a", (uint64_t)i + 1, 100, &p[i]);
    int done = 0;
    int64_t deadline = now_ms() + 30000;
    while (done < N && now_ms() < deadline) {
        pump_once(b, 20);
        done = 0;
        for (int i = 0; i < N; i++)
            done += p[i].calls > 0;
    }
    cr_assert_eq(done, N);
    PUMP_UNTIL(b, 200, 0); /* a duplicate callback would show up here */
    for (int i = 0; i < N; i++) {
        cr_assert_eq(p[i].calls, 1, "publish %d: %d callbacks", i, p[i].calls);
        cr_assert_eq(p[i].code, 0);
        cr_assert_eq(p[i].seq, (uint64_t)i + 1);
        /* acks arrive in stream-seq order */
        cr_assert_eq(p[i].order, (int64_t)i + 1);
    }
    free(p);
    jsbus_close(b);
}

Test(jsbus, follow_from_1_and_500_then_live)
{
    struct jsbus *b = open_bus(NULL);
    create_stream(b, "F", "f.>");
    publish_range(b, "f.a", 1, 1000, 64, 30000);

    struct rec all = {0}, mid = {0};
    struct store_err err = {0};
    all.f = jsbus_follow(b, "F", NULL, 1, on_deliver, &all, &err);
    cr_assert_not_null(all.f, "%s", err.msg);
    mid.f = jsbus_follow(b, "F", "f.a", 500, on_deliver, &mid, &err);
    cr_assert_not_null(mid.f, "%s", err.msg);
    PUMP_UNTIL(b, 30000, all.n >= 1000 && mid.n >= 501);
    PUMP_UNTIL(b, 300, 0);
    check_exact(&all, 1, 1000);
    check_exact(&mid, 500, 1000);
    cr_assert_eq(jsbus_follow_last(all.f), 1000);

    /* new publishes keep coming */
    publish_range(b, "f.a", 1001, 1010, 64, 10000);
    PUMP_UNTIL(b, 10000, all.n >= 1010 && mid.n >= 511);
    PUMP_UNTIL(b, 300, 0);
    check_exact(&all, 1, 1010);
    check_exact(&mid, 500, 1010);
    jsbus_unfollow(all.f);
    jsbus_unfollow(mid.f);
    free(all.seqs);
    free(mid.seqs);
    jsbus_close(b);
}

Test(jsbus, back_pressure_bounds_the_queue)
{
    struct jsbus *b = open_bus(NULL);
    create_stream(b, "BP", "bp.>");
    enum { SIZE = 16 << 10, N = 1280 }; /* 20 MiB */
    for (uint64_t i = 1; i <= N; i += 128)
        publish_range(b, "bp.x", i, i + 127, SIZE, 30000);

    struct rec r = {0};
    struct store_err err = {0};
    r.f = jsbus_follow(b, "BP", NULL, 1, on_deliver, &r, &err);
    cr_assert_not_null(r.f);
    /* The loop does not dispatch: the queue fills to its bound and stays. */
    struct jsbus_follow_stats st;
    int64_t deadline = now_ms() + 30000;
    for (;;) {
        jsbus_follow_stats(r.f, &st);
        if (st.queued_bytes + SIZE + 16 > JSBUS_FOLLOW_MAX_BYTES)
            break;
        cr_assert_lt(now_ms(), deadline, "queue never filled: %zu bytes", st.queued_bytes);
        sleep_ms(10);
    }
    sleep_ms(1500); /* nothing may be added while nobody dispatches */
    jsbus_follow_stats(r.f, &st);
    cr_assert_leq(st.queued_bytes, JSBUS_FOLLOW_MAX_BYTES);
    cr_assert_leq(st.queued_msgs, JSBUS_FOLLOW_MAX_MSGS);
    cr_assert_eq(r.n, 0);

    PUMP_UNTIL(b, 60000, r.n >= N);
    PUMP_UNTIL(b, 300, 0);
    check_exact(&r, 1, N);
    jsbus_follow_stats(r.f, &st);
    cr_assert_leq(st.peak_bytes, JSBUS_FOLLOW_MAX_BYTES);
    cr_assert_leq(st.peak_msgs, JSBUS_FOLLOW_MAX_MSGS);
    cr_assert_eq(st.delivered, N);
    jsbus_unfollow(r.f);
    free(r.seqs);
    jsbus_close(b);
}

Test(jsbus, no_responders_and_timeout)
{
    struct jsbus *b = open_bus(NULL);
    struct sync_reply r = {0};
    struct store_err err = {0};
    int64_t t0 = now_ms();
    cr_assert_eq(jsbus_request(b, "nobody.listens", NULL, 0, "x", 1, 10000, on_sync_reply, &r, &err),
                 0);
    PUMP_UNTIL(b, 5000, r.calls > 0);
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.code, STORE_EUNAVAIL);
    cr_assert(strstr(r.msg, "no responders"), "%s", r.msg);
    cr_assert_lt(now_ms() - t0, 2000, "no responders took %" PRId64 " ms", now_ms() - t0);

    json_t *j = NULL;
    cr_assert_eq(jsbus_request_sync(b, "nobody.listens", NULL, 0, 1000, &j, &err), STORE_EUNAVAIL);

    /* a subscriber that never answers, on its own connection */
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, srv_url), NATS_OK);
    cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, "silent.x"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    struct sync_reply t = {0};
    t0 = now_ms();
    cr_assert_eq(jsbus_request(b, "silent.x", NULL, 0, NULL, 0, 300, on_sync_reply, &t, &err), 0);
    PUMP_UNTIL(b, 5000, t.calls > 0);
    int64_t took = now_ms() - t0;
    cr_assert_eq(t.calls, 1);
    cr_assert_eq(t.code, STORE_EUNAVAIL);
    cr_assert(strstr(t.msg, "timed out"), "%s", t.msg);
    cr_assert_geq(took, 300);
    cr_assert_lt(took, 1500, "timeout fired after %" PRId64 " ms", took);
    PUMP_UNTIL(b, 200, 0);
    cr_assert_eq(t.calls, 1);

    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    jsbus_close(b);
}

Test(jsbus, unfollow_in_callback_and_close_with_pending)
{
    struct jsbus *b = open_bus(NULL);
    create_stream(b, "U", "u.>");
    publish_range(b, "u.a", 1, 100, 32, 30000);
    struct rec r = {0}, keep = {0};
    struct store_err err = {0};
    r.unfollow_at = 10;
    r.f = jsbus_follow(b, "U", NULL, 1, on_deliver, &r, &err);
    cr_assert_not_null(r.f);
    /* left for jsbus_close to free */
    keep.f = jsbus_follow(b, "U", NULL, 1, on_deliver, &keep, &err);
    PUMP_UNTIL(b, 10000, r.n >= 10 && keep.n >= 100);
    publish_range(b, "u.a", 101, 150, 32, 10000);
    PUMP_UNTIL(b, 10000, keep.n >= 150);
    cr_assert_eq(r.n, 10);
    cr_assert_null(r.f);
    check_exact(&keep, 1, 150);

    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, srv_url), NATS_OK);
    cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, "silent.y"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    struct sync_reply p[5] = {{0}};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(jsbus_request(b, "silent.y", NULL, 0, "q", 1, 60000, on_sync_reply, &p[i], &err),
                     0);
    PUMP_UNTIL(b, 200, 0);
    jsbus_close(b);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(p[i].calls, 1);
        cr_assert_eq(p[i].code, STORE_EUNAVAIL);
        cr_assert_str_eq(p[i].msg, "closed");
    }
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    free(r.seqs);
    free(keep.seqs);
}

Test(jsbus, server_restart_reconnects_and_follow_resumes)
{
    struct logs l = {0};
    struct jsbus *b = open_bus(&l);
    create_stream(b, "R", "r.>");
    publish_range(b, "r.a", 1, 100, 32, 30000);
    struct rec r = {0};
    struct store_err err = {0};
    r.f = jsbus_follow(b, "R", NULL, 1, on_deliver, &r, &err);
    PUMP_UNTIL(b, 10000, r.n >= 100);
    check_exact(&r, 1, 100);

    server_kill();
    PUMP_UNTIL(b, 10000, !jsbus_connected(b));
    cr_assert_eq(jsbus_connected(b), 0);
    struct sync_reply q = {0};
    cr_assert_eq(jsbus_request(b, "r.a", NULL, 0, "x", 1, 1000, on_sync_reply, &q, &err), 0);
    PUMP_UNTIL(b, 3000, q.calls > 0);
    cr_assert_eq(q.calls, 1);
    cr_assert_eq(q.code, STORE_EUNAVAIL);
    PUMP_UNTIL(b, 2000, l.warn > 0); /* the disconnect is logged */
    cr_assert_gt(l.warn, 0);

    server_restart();
    PUMP_UNTIL(b, 20000, jsbus_connected(b));
    cr_assert_eq(jsbus_connected(b), 1);
    publish_range(b, "r.a", 101, 200, 32, 30000);
    PUMP_UNTIL(b, 30000, r.n >= 200);
    PUMP_UNTIL(b, 500, 0);
    check_exact(&r, 1, 200);
    cr_assert_gt(l.info, 0);
    jsbus_unfollow(r.f);
    free(r.seqs);
    jsbus_close(b);
}

Test(jsbus, follow_waits_for_a_missing_stream)
{
    struct logs l = {0};
    struct jsbus *b = open_bus(&l);
    struct rec r = {0};
    struct store_err err = {0};
    r.f = jsbus_follow(b, "LATE", NULL, 1, on_deliver, &r, &err);
    cr_assert_not_null(r.f);
    PUMP_UNTIL(b, 10000, l.warn > 0); /* the failed consumer creation is logged */
    cr_assert_gt(l.warn, 0);
    /* two subjects: a NULL filter follows both */
    create_stream(b, "LATE", "late.>\",\"other.>");
    publish_range(b, "late.a", 1, 10, 16, 10000);
    publish_range(b, "other.b", 11, 20, 16, 10000);
    PUMP_UNTIL(b, 10000, r.n >= 20);
    PUMP_UNTIL(b, 300, 0);
    check_exact(&r, 1, 20);
    jsbus_unfollow(r.f);
    free(r.seqs);
    jsbus_close(b);
}
