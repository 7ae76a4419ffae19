/* h2.c - nghttp2 glue: HTTP/2 server sessions for h2c (prior knowledge) and
 * h2 over TLS.
 *
 * Upstream: server.c attaches a connection that began with the HTTP/2 preface
 * or negotiated ALPN "h2". Downstream: each complete request stream becomes a
 * struct gw_req for the dispatcher; replies go out through nghttp2 data
 * providers that pull from the request (one-shot body or a streamed pull).
 *
 * Back-pressure, both ends: the send callback returns NGHTTP2_ERR_WOULDBLOCK
 * once the socket's output passes conn_buffer_bytes, and the write callback
 * sends again when it drains; while output is over the limit, input is not
 * read. A streamed reply is pulled only when nghttp2 has window for it, so a
 * peer that stops reading one stream costs at most one frame of buffering on
 * that stream (NGHTTP2_ERR_DEFERRED + nghttp2_session_resume_data).
 *
 * A one-shot reply is produced whole (a GetRecords page can be ~14 MB of
 * JSON) and then waits in its request for the peer's window. Those bytes are
 * counted per connection (reply_bytes); past conn_reply_bytes, requests that
 * complete wait in a queue instead of running, and run as replies drain.
 * Frames keep being read meanwhile: the WINDOW_UPDATEs that drain the
 * replies arrive on the same socket.
 *
 * Deadlines, checked by a sweep every idle_timeout/4 while streams are open
 * (a tick counter, not a clock read per frame): a request whose headers and
 * body are not complete within idle_timeout of its first HEADERS is answered
 * 408 and reset; a reply that could not send a byte for idle_timeout because
 * the peer's window stayed at zero is reset (CANCEL). Both free the stream.
 *
 * Limits: SETTINGS_MAX_CONCURRENT_STREAMS, large receive windows (stream and
 * connection, h2_window), header bytes per stream (431), body bytes per stream
 * (413), per connection across streams (503) and across the process
 * (max_body_memory, 503), nghttp2's own flood and reset-rate protections. */
#include <event2/buffer.h>
#include <inttypes.h>
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>

#include "conn.h"
#include "log.h"
#include "request-internal.h"

struct h2s;

/* A deadline is this many sweep ticks (of idle_timeout/4 each) after its
 * mark: between 1 and 1.25 idle timeouts. */
#define SWEEPS_PER_TIMEOUT 4
#define DEADLINE_TICKS (SWEEPS_PER_TIMEOUT + 1)

struct h2 {
    struct gw_conn *c;
    nghttp2_session *s;
    size_t body_bytes;   /* request body bytes buffered across streams */
    size_t reply_bytes;  /* one-shot reply bytes not yet sent, across streams */
    size_t nstreams;
    uint64_t tick;       /* sweeps run so far */
    bool goaway_sent;
    struct h2s *streams; /* doubly linked, for drain and teardown */
    /* Complete requests waiting for reply_bytes to fall under the budget. */
    TAILQ_HEAD(, h2s) waiting;
    /* Frames produced by one nghttp2_session_send(), sent with one write at
     * its end (stage_send); empty between flushes. Bytes are copied into the
     * flat "stage", except a DATA payload that is a large chain of its reply
     * body (a shared fan-out event): that chain is moved into "gather" by
     * pointer, after the stage so far, which is handed over to "gather" too
     * (so order holds and the gathered write has one entry per piece). */
    uint8_t *stage;
    size_t stage_len, stage_cap;
    struct evbuffer *gather;
    bool stage_full; /* on_send_cb refused a frame: more to send after the write */
};

struct h2s {
    struct h2 *h;
    int32_t id;
    struct gw_req *req;
    const char *method, *path; /* pseudo-headers, in the request's arena */
    size_t method_len, path_len;
    size_t body_counted;       /* share of h->body_bytes */
    bool headers_too_large;
    /* Answered by h2.c itself (4xx/5xx). Further DATA is discarded rather
     * than reset: curl drops a complete reply that is followed by
     * RST_STREAM(NO_ERROR) while it is still uploading. */
    bool rejected;
    bool dispatched;
    bool deferred;             /* data provider returned NGHTTP2_ERR_DEFERRED */
    bool pull_deferred;        /* the last pull gave data with GW_PULL_DEFER */
    bool waiting;              /* complete, in h->waiting until the reply budget allows */
    bool rst_after_reply;      /* timed out: reset once the 408 is sent */
    size_t reply_counted;      /* share of h->reply_bytes */
    uint64_t opened_tick;      /* h->tick at HEADERS: the request's deadline */
    uint64_t progress_tick;    /* h->tick when the reply last sent a frame */
    TAILQ_ENTRY(h2s) wlink;
    struct h2s *prev, *next;
};

static void flush(struct h2 *h);
static const struct gw_req_transport h2_transport;

static uint64_t sweep_ms(const struct h2 *h)
{
    uint64_t ms = h->c->cfg->idle_timeout_ms / SWEEPS_PER_TIMEOUT;
    return ms ? ms : 1;
}

/* Reply bytes left the connection (sent, or the stream went away). */
static void release_reply(struct h2 *h, struct h2s *s, size_t n)
{
    if (n > s->reply_counted)
        n = s->reply_counted;
    s->reply_counted -= n;
    h->reply_bytes -= n;
    if (!TAILQ_EMPTY(&h->waiting) && h->reply_bytes < h->c->cfg->conn_reply_bytes)
        gw_conn_kick(h->c); /* run waiting requests (flush) */
}

/* ---- streams ------------------------------------------------------------------ */

static struct h2s *stream_new(struct h2 *h, int32_t id)
{
    struct h2s *s = xcalloc(1, sizeof *s);
    s->h = h;
    s->id = id;
    s->req = gw_req_new(GW_PROTO_H2, h->c->tls, h->c->id, &h2_transport, s,
                        gw_conn_draining_flag(h->c));
    s->opened_tick = h->tick;
    s->next = h->streams;
    if (h->streams)
        h->streams->prev = s;
    h->streams = s;
    /* Not idle while a stream is open: the timer becomes the deadline sweep
     * (armed by the first stream only, so a busy connection pays nothing). */
    gw_conn_count_stream(h->c, 1);
    if (h->nstreams++ == 0)
        gw_conn_timer(h->c, sweep_ms(h));
    return s;
}

static void release_body(struct h2s *s)
{
    s->h->body_bytes -= s->body_counted;
    s->body_counted = 0;
}

static void stream_free(struct h2s *s)
{
    struct h2 *h = s->h;
    release_body(s);
    if (s->waiting)
        TAILQ_REMOVE(&h->waiting, s, wlink);
    release_reply(h, s, s->reply_counted);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    h->nstreams--;
    gw_conn_count_stream(h->c, -1);
    gw_req_free(s->req); /* runs the handler's abort callback if it still holds it */
    free(s);
    if (h->nstreams == 0 && !h->c->closing)
        gw_conn_timer(h->c, h->c->cfg->idle_timeout_ms);
}

/* Answers a stream from h2.c itself (limits), before or instead of dispatch. */
static void reject(struct h2s *s, enum gw_errtype type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reject(struct h2s *s, enum gw_errtype type, const char *fmt, ...)
{
    if (s->rejected || s->dispatched)
        return;
    s->rejected = true;
    gw_conn_count_refused_stream(s->h->c);
    release_body(s);
    gw_req_body_drop(s->req); /* further DATA is discarded, not buffered */
    struct gw_error err = {0};
    va_list ap;
    va_start(ap, fmt);
    gw_error_vset(&err, type, fmt, ap);
    va_end(ap);
    gw_log(GW_LOG_DEBUG, "h2_reject", "conn=%llu stream=%d %s", (unsigned long long)s->h->c->id,
           s->id, err.message);
    gw_resp_error(s->req, &err);
}

/* ---- data providers ------------------------------------------------------------ */

/* In a stream marked gw_resp_shared_pieces(), payload chains at least this
 * large go by reference (fanout.c's pieces are 16 KiB); smaller ones are
 * cheaper to copy than to gather. Other replies are always copied: their
 * bodies are the handler's own buffers, and moving them would only trade a
 * cheap copy for an allocation per frame. */
#define CHAIN_BY_REF 8192

static ssize_t on_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
    struct h2s *s = source->ptr;
    struct gw_req *req = s->req;
    struct evbuffer *body = req->resp.body;
    if (req->resp.state == GW_RESP_STREAM && evbuffer_get_length(body) == 0 && !req->resp.eof) {
        if (s->pull_deferred) {
            /* The handler said, with its data, that nothing more is ready
             * until it calls gw_resp_resume(): no need to ask again. */
            s->pull_deferred = false;
            s->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
        enum gw_pull r = GW_PULL_MORE;
        for (int round = 0; round < 8 && r == GW_PULL_MORE && evbuffer_get_length(body) == 0;
             round++)
            r = gw_req_pull(req, length);
        if (r == GW_PULL_ABORT)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM(INTERNAL_ERROR) */
        if (evbuffer_get_length(body) == 0 && !req->resp.eof) {
            s->deferred = true;
            if (r == GW_PULL_MORE) /* asked to be called again: do so next pass */
                gw_conn_kick(s->h->c);
            return NGHTTP2_ERR_DEFERRED;
        }
        s->pull_deferred = r == GW_PULL_DEFER;
    }
    /* No copy into nghttp2's buffer: on_send_data_cb moves the bytes from
     * "body" to the stage when the frame goes out. Nothing else touches the
     * front of "body" in between (pulls only append). */
    size_t have = evbuffer_get_length(body);
    size_t n = have < length ? have : length;
    /* A frame ends where a large chain of the body ends, so that
     * on_send_data_cb can move it whole. */
    if (req->resp.shared) {
        size_t first = (size_t)evbuffer_get_contiguous_space(body);
        if (first >= CHAIN_BY_REF && first < n)
            n = first;
    }
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == have && (req->resp.state == GW_RESP_ONESHOT || req->resp.eof))
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void submit(struct h2s *s, bool streaming)
{
    struct gw_req *req = s->req;
    size_t n = req->resp.nhdrs + 4;
    nghttp2_nv *nva = xcalloc(n, sizeof *nva);
    char status[8], date[64], clen[24];
    size_t k = 0;
#define NV(nm, val)                                                                            \
    nva[k++] = (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(val), strlen(nm), strlen(val),          \
                            NGHTTP2_NV_FLAG_NONE}
    snprintf(status, sizeof status, "%d", req->resp.status);
    NV(":status", status);
    for (size_t i = 0; i < req->resp.nhdrs; i++)
        NV(req->resp.hdrs[i].name, req->resp.hdrs[i].value);
    gw_http_date(date, sizeof date);
    NV("date", date);
    NV("x-amzn-requestid", req->request_id);
    /* Unique per reply: indexing it would only churn the HPACK table. */
    nva[k - 1].flags = NGHTTP2_NV_FLAG_NO_INDEX;
    size_t blen = evbuffer_get_length(req->resp.body);
    if (!streaming) {
        snprintf(clen, sizeof clen, "%zu", blen);
        NV("content-length", clen);
    }
#undef NV
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = on_data_read};
    bool body = streaming || blen > 0;
    s->progress_tick = s->h->tick; /* a stall is timed from the reply's start */
    if (!streaming) {
        s->reply_counted = blen;
        s->h->reply_bytes += blen;
    }
    int rv = nghttp2_submit_response(s->h->s, s->id, nva, k, body ? &prd : NULL);
    free(nva);
    if (rv != 0) {
        gw_log(GW_LOG_WARN, "h2_submit", "conn=%llu stream=%d: %s",
               (unsigned long long)s->h->c->id, s->id, nghttp2_strerror(rv));
        nghttp2_submit_rst_stream(s->h->s, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    }
    gw_conn_kick(s->h->c);
}

static void on_send(struct gw_req *req) { submit(req->tp_ctx, false); }
static void on_stream(struct gw_req *req) { submit(req->tp_ctx, true); }

static void on_resume(struct gw_req *req)
{
    struct h2s *s = req->tp_ctx;
    s->pull_deferred = false; /* new data: pull again even if not deferred yet */
    if (s->deferred) {
        s->deferred = false;
        nghttp2_session_resume_data(s->h->s, s->id);
        gw_conn_kick(s->h->c);
    }
}

static void on_flush(struct gw_req *req)
{
    struct h2s *s = req->tp_ctx;
    flush(s->h);
}

static const struct gw_req_transport h2_transport = {on_send, on_stream, on_resume, on_flush};

/* ---- nghttp2 callbacks ------------------------------------------------------------ */

/* Room for "n" more bytes in the stage, or false (stage_full) when the
 * connection's output limit is reached. A flat buffer, not an evbuffer: no
 * chain allocated per frame. */
static void stage_grow(struct h2 *h, size_t n)
{
    if (h->stage_len + n > h->stage_cap || !h->stage) {
        size_t cap = h->stage_cap ? h->stage_cap : 16384;
        while (cap < h->stage_len + n)
            cap *= 2;
        h->stage = xrealloc(h->stage, cap);
        h->stage_cap = cap;
    }
}

static bool stage_reserve(struct h2 *h, size_t n)
{
    if (gw_conn_output_len(h->c) + h->stage_len + evbuffer_get_length(h->gather) >=
        h->c->cfg->conn_buffer_bytes) {
        h->stage_full = true;
        return false;
    }
    stage_grow(h, n);
    return true;
}

static void stage_free(const void *data, size_t len, void *arg)
{
    (void)data, (void)len;
    free(arg);
}

/* Hands the flat stage over to "gather": a few bytes (between two shared
 * pieces there is usually only the next DATA frame's 9-byte header) are
 * copied and the stage kept; more go by reference, freed once sent. */
static void stage_handover(struct h2 *h)
{
    if (h->stage_len == 0)
        return;
    if (h->stage_len <= 1024) {
        evbuffer_add(h->gather, h->stage, h->stage_len);
        h->stage_len = 0;
        return;
    }
    if (evbuffer_add_reference(h->gather, h->stage, h->stage_len, stage_free, h->stage) != 0) {
        evbuffer_add(h->gather, h->stage, h->stage_len);
        free(h->stage);
    }
    h->stage = NULL;
    h->stage_len = h->stage_cap = 0;
}

static ssize_t on_send_cb(nghttp2_session *session, const uint8_t *data, size_t length,
                          int flags, void *user_data)
{
    struct h2 *h = user_data;
    if (h->c->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (!stage_reserve(h, length))
        return NGHTTP2_ERR_WOULDBLOCK;
    memcpy(h->stage + h->stage_len, data, length);
    h->stage_len += length;
    return (ssize_t)length;
}

/* A DATA frame whose payload on_data_read left in the reply body (NO_COPY). */
static int on_send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                           size_t length, nghttp2_data_source *source, void *user_data)
{
    struct h2 *h = user_data;
    struct h2s *s = source->ptr;
    if (h->c->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    size_t padlen = frame->data.padlen; /* pad-length byte included; 0 here */
    if (!stage_reserve(h, 9 + length + padlen))
        return NGHTTP2_ERR_WOULDBLOCK;
    uint8_t *p = h->stage + h->stage_len;
    memcpy(p, framehd, 9);
    p += 9;
    if (padlen > 0)
        *p++ = (uint8_t)(padlen - 1);
    struct evbuffer *body = s->req->resp.body;
    if (s->req->resp.shared && length >= CHAIN_BY_REF &&
        (size_t)evbuffer_get_contiguous_space(body) == length) {
        /* The whole first chain: moved, not copied (see struct h2). */
        h->stage_len = (size_t)(p - h->stage);
        stage_handover(h);
        if (evbuffer_remove_buffer(body, h->gather, length) != (int)length)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        stage_grow(h, padlen); /* room for the padding, counted above */
        p = h->stage;
    } else {
        if (evbuffer_remove(body, p, length) != (int)length)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        p += length;
    }
    s->progress_tick = h->tick;
    if (s->reply_counted)
        release_reply(h, s, length);
    if (s->rst_after_reply && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        /* RFC 9113 8.1: a complete reply, then NO_ERROR asks the client to
         * stop sending the request it never finished. */
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    if (padlen > 1) {
        memset(p, 0, padlen - 1);
        p += padlen - 1;
    }
    h->stage_len = (size_t)(p - h->stage);
    return 0;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct h2 *h = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2s *s = stream_new(h, frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct h2 *h = user_data;
    struct h2s *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s || s->headers_too_large || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers are accepted and ignored */
    size_t limit = h->c->cfg->max_header_bytes;
    const char *n = (const char *)name, *v = (const char *)value;
    if (namelen > 0 && n[0] == ':') {
        s->req->header_bytes += namelen + valuelen + 32;
        if (s->req->header_bytes > limit) {
            s->headers_too_large = true;
            return 0;
        }
        if (namelen == 7 && memcmp(n, ":method", 7) == 0) {
            s->method = gw_arena_strndup(&s->req->arena, v, valuelen);
            s->method_len = valuelen;
        } else if (namelen == 5 && memcmp(n, ":path", 5) == 0) {
            s->path = gw_arena_strndup(&s->req->arena, v, valuelen);
            s->path_len = valuelen;
        } else if (namelen == 10 && memcmp(n, ":authority", 10) == 0) {
            /* HTTP/2 has no Host header; handlers see :authority as "host". */
            gw_req_add_header(s->req, "host", 4, v, valuelen, limit);
        }
        return 0;
    }
    if (gw_req_add_header(s->req, n, namelen, v, valuelen, limit) != 0)
        s->headers_too_large = true;
    return 0;
}

static void request_complete(struct h2 *h, struct h2s *s)
{
    if (s->rejected || s->dispatched)
        return;
    if (s->headers_too_large) {
        reject(s, GW_ERR_HEADERS_TOO_LARGE, "Request headers exceed the configured bytes");
        return;
    }
    gw_req_set_line(s->req, s->method ? s->method : "GET", s->method ? s->method_len : 3,
                    s->path ? s->path : "/", s->path ? s->path_len : 1);
    s->dispatched = true;
    if (h->reply_bytes >= h->c->cfg->conn_reply_bytes || !TAILQ_EMPTY(&h->waiting)) {
        /* Replies this connection's peer has not taken yet fill the budget:
         * run this request once they drain (run_waiting), in order. */
        s->waiting = true;
        TAILQ_INSERT_TAIL(&h->waiting, s, wlink);
        return;
    }
    void *ctx;
    gw_dispatch_fn dispatch = gw_conn_dispatcher(h->c, &ctx);
    gw_req_dispatch(s->req, dispatch, ctx);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct h2 *h = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct h2s *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s)
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        request_complete(h, s);
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        /* Headers done, body to come: refuse early what cannot succeed. */
        if (s->headers_too_large) {
            reject(s, GW_ERR_HEADERS_TOO_LARGE, "Request headers exceed the configured bytes");
            return 0;
        }
        const char *cl = gw_req_header(s->req, "content-length");
        if (cl && strtoull(cl, NULL, 10) > gw_conn_body_limit(h->c))
            reject(s, GW_ERR_BODY_TOO_LARGE, "Request body of %s bytes exceeds the limit", cl);
        else if (cl)
            /* A ceiling for the buffer, not a reservation: memory follows
             * the DATA that actually arrives. */
            gw_req_body_expect(s->req, (size_t)strtoull(cl, NULL, 10));
    }
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data)
{
    struct h2 *h = user_data;
    struct h2s *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!s || s->rejected || s->dispatched)
        return 0;
    const struct gw_config *cfg = h->c->cfg;
    if (h->body_bytes + len > cfg->conn_body_bytes) {
        reject(s, GW_ERR_SERVICE_UNAVAILABLE,
               "Too many request body bytes in flight on this connection");
        return 0;
    }
    int rc = gw_req_body_append(s->req, data, len, gw_conn_body_limit(h->c));
    if (rc == GW_BODY_NO_MEMORY) {
        reject(s, GW_ERR_SERVICE_UNAVAILABLE,
               "Request bodies held by the server exceed its memory budget; retry later");
        return 0;
    }
    if (rc != 0) {
        reject(s, GW_ERR_BODY_TOO_LARGE, "Request body exceeds the limit");
        return 0;
    }
    h->body_bytes += len;
    s->body_counted += len;
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct h2s *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s) {
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        stream_free(s);
    }
    return 0;
}

/* ---- session I/O ---------------------------------------------------------------- */

/* Sends the staged frames (one gathered write when pieces went by
 * reference); a stage grown past 64 KiB by a burst is given back rather than
 * kept for the connection's lifetime. */
static void stage_send(struct h2 *h)
{
    if (evbuffer_get_length(h->gather) > 0) {
        stage_handover(h);
        gw_conn_send_evbuffer(h->c, h->gather);
        return;
    }
    gw_conn_send_bytes(h->c, h->stage, h->stage_len);
    h->stage_len = 0;
    if (h->stage_cap > 65536) {
        free(h->stage);
        h->stage = NULL;
        h->stage_cap = 0;
    }
}

/* Runs the requests that waited for the reply budget, oldest first, while
 * the connection is under it (a handler may answer at once and fill it). */
static void run_waiting(struct h2 *h)
{
    struct h2s *s;
    while ((s = TAILQ_FIRST(&h->waiting)) != NULL &&
           h->reply_bytes < h->c->cfg->conn_reply_bytes && !h->c->closing) {
        TAILQ_REMOVE(&h->waiting, s, wlink);
        s->waiting = false;
        void *ctx;
        gw_dispatch_fn dispatch = gw_conn_dispatcher(h->c, &ctx);
        gw_req_dispatch(s->req, dispatch, ctx);
    }
}

static void flush(struct h2 *h)
{
    struct gw_conn *c = h->c;
    if (c->closing || c->close_on_flush)
        return;
    if (!TAILQ_EMPTY(&h->waiting))
        run_waiting(h);
    int rv;
    for (int round = 0;; round++) {
        h->stage_full = false;
        rv = nghttp2_session_send(h->s);
        stage_send(h);
        /* A full stage that the kernel took whole leaves no queued output,
         * so no write callback would come to continue: go on here, a few
         * rounds, then on the next loop pass (fairness to other conns). */
        if (rv != 0 || !h->stage_full || c->closing || gw_conn_output_len(c) > 0)
            break;
        if (round == 3) {
            gw_conn_kick(c);
            break;
        }
    }
    if (rv != 0) {
        gw_log(GW_LOG_DEBUG, "h2_send", "conn=%llu: %s", (unsigned long long)c->id,
               nghttp2_strerror(rv));
        gw_conn_close(c);
        return;
    }
    if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s))
        gw_conn_close_after_flush(c);
}

static void h2_on_read(struct gw_conn *c)
{
    struct h2 *h = c->proto_state;
    struct evbuffer *in = gw_conn_input(c);
    while (!c->closing && !c->close_on_flush && evbuffer_get_length(in) > 0) {
        if (gw_conn_output_full(c)) {
            gw_conn_pause_read(c); /* on_write resumes */
            break;
        }
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        ssize_t rv = nghttp2_session_mem_recv(h->s, v.iov_base, v.iov_len);
        if (rv < 0) {
            gw_log(GW_LOG_DEBUG, "h2_recv", "conn=%llu peer=%s: %s", (unsigned long long)c->id,
                   c->peer, nghttp2_strerror((int)rv));
            /* nghttp2 has queued a GOAWAY for protocol errors: send it, close. */
            nghttp2_session_send(h->s);
            stage_send(h);
            gw_conn_close_after_flush(c);
            return;
        }
        evbuffer_drain(in, (size_t)rv);
    }
    flush(h);
}

static void h2_on_write(struct gw_conn *c)
{
    struct h2 *h = c->proto_state;
    flush(h);
    if (!c->closing && !gw_conn_output_full(c)) {
        gw_conn_resume_read(c);
        if (evbuffer_get_length(gw_conn_input(c)) > 0)
            h2_on_read(c);
    }
}

static void h2_on_kick(struct gw_conn *c) { flush(c->proto_state); }

static void goaway(struct h2 *h)
{
    if (h->goaway_sent)
        return;
    h->goaway_sent = true;
    nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->s),
                          NGHTTP2_NO_ERROR, NULL, 0);
}

/* The deadlines (see the top of this file). Streams are reset through
 * nghttp2, which frees them in on_stream_close when the reset is sent. */
static void sweep(struct h2 *h)
{
    h->tick++;
    int32_t conn_window = nghttp2_session_get_remote_window_size(h->s);
    for (struct h2s *s = h->streams; s; s = s->next) {
        /* Once only: after it, a 408 that a zero window holds up is the
         * stall below. */
        if (!s->dispatched && !s->rst_after_reply &&
            h->tick - s->opened_tick >= DEADLINE_TICKS) {
            s->rst_after_reply = true;
            gw_log(GW_LOG_DEBUG, "h2_timeout", "conn=%llu stream=%d request incomplete",
                   (unsigned long long)h->c->id, s->id);
            if (!s->rejected) {
                reject(s, GW_ERR_REQUEST_TIMEOUT, "Request not received within the idle timeout");
                continue;
            }
            /* Answered earlier (413, 503) but the peer never ended it. */
            if (s->req->resp.state == GW_RESP_ONESHOT &&
                evbuffer_get_length(s->req->resp.body) == 0)
                nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
            continue;
        }
        enum gw_resp_state st = s->req->resp.state;
        if ((st != GW_RESP_ONESHOT && st != GW_RESP_STREAM) ||
            h->tick - s->progress_tick < DEADLINE_TICKS)
            continue;
        if (!nghttp2_session_find_stream(h->s, s->id))
            continue; /* closing */
        /* <= 0: a peer may shrink SETTINGS_INITIAL_WINDOW_SIZE below zero. */
        int32_t w = nghttp2_session_get_stream_remote_window_size(h->s, s->id);
        if (w > 0 && conn_window > 0)
            continue; /* the peer lets it move */
        if (st == GW_RESP_ONESHOT && evbuffer_get_length(s->req->resp.body) == 0)
            continue; /* all sent */
        gw_log(GW_LOG_DEBUG, "h2_stalled", "conn=%llu stream=%d zero window, resetting",
               (unsigned long long)h->c->id, s->id);
        s->progress_tick = h->tick; /* once */
        nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    }
}

static void h2_on_timer(struct gw_conn *c)
{
    struct h2 *h = c->proto_state;
    if (h->nstreams > 0) {
        sweep(h);
        flush(h);
        if (!c->closing && h->nstreams > 0)
            gw_conn_timer(c, sweep_ms(h));
        return;
    }
    gw_log(GW_LOG_DEBUG, "h2_idle", "conn=%llu idle, closing", (unsigned long long)c->id);
    goaway(h);
    flush(h);
    gw_conn_close_after_flush(c);
}

static void h2_on_drain(struct gw_conn *c)
{
    struct h2 *h = c->proto_state;
    goaway(h);
    /* Wake deferred streams so long-lived replies notice the drain. */
    for (struct h2s *s = h->streams; s; s = s->next)
        if (s->deferred) {
            s->deferred = false;
            nghttp2_session_resume_data(h->s, s->id);
        }
    flush(h);
}

static void h2_on_free(struct gw_conn *c)
{
    struct h2 *h = c->proto_state;
    /* Deleting the session closes every stream through on_stream_close, which
     * frees each request (aborting those a handler still holds). */
    nghttp2_session_del(h->s);
    while (h->streams)
        stream_free(h->streams);
    free(h->stage);
    evbuffer_free(h->gather);
    free(h);
    c->proto_state = NULL;
}

static const struct gw_conn_proto h2_proto = {
    "h2", h2_on_read, h2_on_write, h2_on_timer, h2_on_kick, h2_on_drain, h2_on_free,
};

void gw_h2_attach(struct gw_conn *c)
{
    const struct gw_config *cfg = c->cfg;
    struct h2 *h = xcalloc(1, sizeof *h);
    h->c = c;
    h->gather = evbuffer_new();
    if (!h->gather)
        abort();
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, on_send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cbs, on_send_data_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    /* Bound what a peer can make us hold: queued ACKs for its PINGs and
     * SETTINGS, SETTINGS entries, CONTINUATION frames, reset floods. */
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 100);
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
    int rv = nghttp2_session_server_new2(&h->s, cbs, h, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        free(h);
        gw_conn_close(c);
        return;
    }
    c->proto = &h2_proto;
    c->proto_state = h;
    TAILQ_INIT(&h->waiting);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg->h2_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->max_header_bytes},
        /* RFC 9218: no RFC 7540 priority tree to maintain per stream (and no
         * closed streams kept for it); every stream here is equal anyway. */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, (int32_t)cfg->h2_window);
    gw_conn_timer(c, cfg->idle_timeout_ms);
    gw_log(GW_LOG_DEBUG, "proto", "conn=%llu h2", (unsigned long long)c->id);
    h2_on_read(c);
}
