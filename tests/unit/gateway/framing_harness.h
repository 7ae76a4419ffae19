/* framing_harness.h - an in-process gateway for the HTTP/1.1 and HTTP/2
 * framing tests (test_http1.c, test_h2.c): no sockets.
 *
 * A real struct gw_server, with a dispatcher written here, serves one end of
 * a bufferevent_pair through gw_server_adopt() (the same sniffing and the
 * same http1.c/h2.c as an accepted socket); the test speaks the protocol on
 * the other end. The loop is driven by hand, EVLOOP_NONBLOCK passes, always
 * bounded in passes and in wall time.
 *
 * The dispatcher, by path:
 *   /hello          200 "hello world", content-type text/plain
 *   /echo           200 with the request body; x-method: the method
 *   /stream?n=N     streamed reply, pulls "chunk-1".."chunk-N", then EOF
 *   /stream-abort   streamed reply: "partial", then GW_PULL_ABORT
 *   /defer          streamed reply that waits (GW_PULL_DEFER) for defer_push()
 *   /hold           kept by the handler until answer_held() or its abort
 *   /big?n=N        200 with N bytes 'a'..'z' repeated
 * anything else     404 "no route". */
#ifndef SLUICE_TEST_FRAMING_HARNESS_H
#define SLUICE_TEST_FRAMING_HARNESS_H

#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "request.h"
#include "server.h"

#define MAX_HEADER_BYTES 1024
#define MAX_BODY_BYTES 1024

static struct event_base *base;
static struct gw_config cfg;
static struct gw_server *srv;
static struct bufferevent *client; /* our end of the pair */

/* ---- what the dispatcher saw --------------------------------------------------- */

struct seen {
    char method[16], path[64], query[64], host[64], tag[64];
    size_t body_len;
    int proto;
};
static struct seen seen[64];
static int dispatched;
static int aborts;
static char abort_paths[8][64];
static int pulls;

static struct gw_req *held;      /* /hold */
static struct gw_req *deferred;  /* /defer */
static char defer_pending[256];
static bool defer_eof;

static void on_abort(struct gw_req *req, void *ctx)
{
    if (aborts < 8)
        snprintf(abort_paths[aborts], sizeof abort_paths[0], "%s", gw_req_path(req));
    aborts++;
    if (req == held)
        held = NULL;
    if (req == deferred)
        deferred = NULL;
}

struct chunks {
    int n, i;
};

static enum gw_pull pull_chunks(struct gw_req *req, void *ctx, struct evbuffer *out, size_t max)
{
    struct chunks *p = ctx;
    pulls++;
    if (p->i >= p->n)
        return GW_PULL_EOF;
    p->i++;
    evbuffer_add_printf(out, "chunk-%d", p->i);
    return p->i < p->n ? GW_PULL_MORE : GW_PULL_EOF;
}

static enum gw_pull pull_abort(struct gw_req *req, void *ctx, struct evbuffer *out, size_t max)
{
    struct chunks *p = ctx;
    pulls++;
    if (p->i++ == 0) {
        evbuffer_add(out, "partial", 7);
        return GW_PULL_MORE;
    }
    return GW_PULL_ABORT;
}

static enum gw_pull pull_deferred(struct gw_req *req, void *ctx, struct evbuffer *out, size_t max)
{
    pulls++;
    if (defer_pending[0]) {
        evbuffer_add(out, defer_pending, strlen(defer_pending));
        defer_pending[0] = '\0';
    }
    if (defer_eof) {
        deferred = NULL; /* the request is the protocol's again */
        return GW_PULL_EOF;
    }
    return GW_PULL_DEFER;
}

/* Gives the /defer stream "text" (and its end with "eof") and wakes it. */
static void defer_push(const char *text, bool eof)
{
    cr_assert_not_null(deferred, "no /defer request held");
    snprintf(defer_pending, sizeof defer_pending, "%s", text);
    defer_eof = eof;
    gw_resp_resume(deferred);
}

/* Answers the /hold request. */
static void answer_held(int status, const char *body)
{
    cr_assert_not_null(held, "no /hold request held");
    struct gw_req *r = held;
    held = NULL;
    gw_resp_header(r, "content-type", "text/plain");
    cr_assert_eq(gw_resp_send(r, status, body, strlen(body)), 0);
}

static void copy_str(char *dst, size_t cap, const char *s) { snprintf(dst, cap, "%s", s ? s : ""); }

static void dispatch(void *ctx, struct gw_req *req)
{
    const char *path = gw_req_path(req);
    if (dispatched < 64) {
        struct seen *s = &seen[dispatched];
        copy_str(s->method, sizeof s->method, gw_req_method(req));
        copy_str(s->path, sizeof s->path, path);
        copy_str(s->query, sizeof s->query, gw_req_query(req));
        copy_str(s->host, sizeof s->host, gw_req_header(req, "host"));
        copy_str(s->tag, sizeof s->tag, gw_req_header(req, "x-tag"));
        gw_req_body(req, &s->body_len);
        s->proto = gw_req_proto(req);
    }
    dispatched++;
    if (strcmp(path, "/hello") == 0) {
        gw_resp_header(req, "content-type", "text/plain");
        gw_resp_send(req, 200, "hello world", 11);
    } else if (strcmp(path, "/echo") == 0) {
        size_t len;
        const uint8_t *b = gw_req_body(req, &len);
        gw_resp_header(req, "x-method", gw_req_method(req));
        gw_resp_send(req, 200, b, len);
    } else if (strcmp(path, "/stream") == 0 || strcmp(path, "/stream-abort") == 0) {
        struct chunks *p = gw_req_alloc(req, sizeof *p);
        const char *n = gw_req_query_param(req, "n");
        p->n = n ? atoi(n) : 3;
        p->i = 0;
        gw_req_on_abort(req, on_abort, NULL);
        gw_resp_header(req, "content-type", "text/plain");
        gw_resp_stream(req, 200, path[7] ? pull_abort : pull_chunks, p);
    } else if (strcmp(path, "/defer") == 0) {
        deferred = req;
        gw_req_on_abort(req, on_abort, NULL);
        gw_resp_stream(req, 200, pull_deferred, NULL);
    } else if (strcmp(path, "/hold") == 0) {
        held = req;
        gw_req_on_abort(req, on_abort, NULL);
    } else if (strcmp(path, "/big") == 0) {
        const char *n = gw_req_query_param(req, "n");
        size_t len = n ? strtoul(n, NULL, 10) : 0;
        char *b = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            b[i] = (char)('a' + i % 26);
        gw_resp_send(req, 200, b, len);
        free(b);
    } else {
        gw_resp_send(req, 404, "no route", 8);
    }
}

/* ---- the server and the pair ----------------------------------------------------- */

static void harness_config(void)
{
    memset(&cfg, 0, sizeof cfg);
    cfg.max_header_bytes = MAX_HEADER_BYTES;
    cfg.max_body_bytes = MAX_BODY_BYTES;
    /* Long enough never to fire in a test that does not wait for them. */
    cfg.header_timeout_ms = 60000;
    cfg.idle_timeout_ms = 60000;
    cfg.drain_timeout_ms = 60000;
    cfg.max_streams = 16;
    cfg.max_connections = 8;
    cfg.h2_window = 1 << 20;
    cfg.conn_buffer_bytes = 256 * 1024;
    cfg.conn_body_bytes = 64 * 1024 * 1024;
    cfg.conn_reply_bytes = 16 * 1024 * 1024;
    cfg.max_body_memory = 64 * 1024 * 1024;
}

/* Starts the server (with "cfg" as set up) and connects a new pair. */
static void harness_start(void)
{
    gw_log_min = GW_LOG_WARN;
    dispatched = aborts = pulls = 0;
    held = deferred = NULL;
    defer_pending[0] = '\0';
    defer_eof = false;
    base = event_base_new();
    cr_assert_not_null(base);
    struct gw_error err = {0};
    srv = gw_server_new(base, &cfg, dispatch, NULL, &err);
    cr_assert_not_null(srv, "%s", err.message);
    struct bufferevent *pair[2];
    cr_assert_eq(bufferevent_pair_new(base, 0, pair), 0);
    cr_assert_eq(gw_server_adopt(srv, pair[0], "pair"), 0);
    client = pair[1];
    bufferevent_enable(client, EV_READ | EV_WRITE);
    cr_assert_eq(gw_server_connections(srv), 1);
}

static void harness_stop(void)
{
    /* Let pending deferred callbacks and connection frees run first: a
     * bufferevent whose deferred callback is still queued when the base is
     * freed keeps its reference and leaks; and a connection whose free was
     * scheduled (gw_conn_close) must not be freed twice. */
    for (int i = 0; i < 10; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    gw_server_free(srv);
    srv = NULL;
    if (client)
        bufferevent_free(client);
    client = NULL;
    event_base_free(base);
    base = NULL;
}

/* ---- driving the loop -------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs "n" non-blocking loop passes, calling "io" (may be NULL) after each. */
static void spin_io(int n, void (*io)(void))
{
    for (int i = 0; i < n; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (io)
            io();
    }
}

/* Runs passes until "pred" holds: at most 20000 passes and "secs" of wall
 * time, sleeping 1 ms between passes only once 200 have gone by (for timers).
 * Returns whether "pred" held. */
static bool spin_until_io(bool (*pred)(void), void (*io)(void), double secs)
{
    double end = now_s() + secs;
    for (int i = 0; i < 20000; i++) {
        if (pred())
            return true;
        if (now_s() > end)
            break;
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (io)
            io();
        if (i > 200) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
    }
    return pred();
}

static bool conn_closed(void) { return gw_server_connections(srv) == 0; }

#endif
