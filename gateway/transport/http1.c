/* http1.c - HTTP/1.1 framing: requests parsed with http_parser (Debian's
 * libhttp-parser), replies written as one-shot (Content-Length) or streamed
 * (chunked), keep-alive, Expect: 100-continue.
 *
 * Upstream: server.c attaches a connection whose first bytes are not the
 * HTTP/2 preface (plain, or TLS with ALPN http/1.1). Downstream: each complete
 * request goes to the dispatcher (router.c) as a struct gw_req.
 *
 * Invariants: one request at a time per connection. While a request is being
 * handled or streamed, parsing stops; pipelined bytes wait in the input buffer,
 * which server.c caps (reading stops past the read watermark). Header bytes
 * are capped by max_header_bytes, bodies by max_body_bytes, the time to the
 * end of the headers by header_timeout_ms. Protocol errors answer once with
 * "Connection: close" and close after the answer is written. */
#include <event2/buffer.h>
#include <http_parser.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conn.h"
#include "log.h"
#include "request-internal.h"

enum h1_state {
    H1_IDLE,     /* between requests */
    H1_HEADERS,  /* request line and headers arriving */
    H1_BODY,     /* body arriving */
    H1_HANDLING, /* dispatched; waiting for the handler's reply */
    H1_STREAMING /* streamed reply in progress */
};

struct h1 {
    struct gw_conn *c;
    http_parser parser;
    enum h1_state state;
    struct gw_req *req;
    /* Header accumulation: fields and values may arrive split across reads. */
    char *field, *value, *url;
    size_t field_len, value_len, url_len, cap_field, cap_value, cap_url;
    bool in_value;
    size_t header_bytes;
    bool keep_alive;
    bool head;         /* HEAD request: no body in the reply */
    bool http10;       /* HTTP/1.0 peer: no chunked encoding */
    bool deferred;     /* streamed reply waiting for gw_resp_resume() */
    bool processing;   /* inside process(): do not re-enter */
    struct evbuffer *stage; /* a one-shot reply, sent whole (write-through) */
    struct gw_error err; /* protocol error detected inside a parser callback */
    /* The segment being parsed and the input's length at its start: how
     * much of a body is already received (on_body). */
    const char *seg;
    size_t seg_avail;
};

static const http_parser_settings settings;
static void process(struct h1 *h);

/* ---- protocol-level error replies ------------------------------------------ */

/* Writes a complete error reply without a request object and closes after it. */
static void reply_error_and_close(struct h1 *h, const struct gw_error *err)
{
    struct evbuffer *out = h->stage;
    char *body = gw_error_json(err);
    char date[64];
    gw_http_date(date, sizeof date);
    int status = gw_error_status(err->type);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                        "x-amzn-errortype: %s\r\ndate: %s\r\ncontent-length: %zu\r\n"
                        "connection: close\r\n\r\n%s",
                        status, gw_http_reason(status), gw_error_name(err->type), date,
                        strlen(body), body);
    free(body);
    gw_log(GW_LOG_DEBUG, "http1_error", "conn=%llu status=%d %s", (unsigned long long)h->c->id,
           status, err->message);
    gw_conn_send_evbuffer(h->c, out);
    gw_req_free(h->req);
    h->req = NULL;
    h->state = H1_IDLE;
    gw_conn_timer(h->c, 0);
    gw_conn_close_after_flush(h->c);
}

/* ---- parser callbacks ------------------------------------------------------ */

static int grow_append(char **buf, size_t *len, size_t *cap, const char *at, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = *cap ? *cap : 64;
        while (ncap < *len + n + 1)
            ncap *= 2;
        *buf = xrealloc(*buf, ncap);
        *cap = ncap;
    }
    memcpy(*buf + *len, at, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static int count_header_bytes(struct h1 *h, size_t n)
{
    h->header_bytes += n;
    if (h->header_bytes > h->c->cfg->max_header_bytes)
        return gw_error_set(&h->err, GW_ERR_HEADERS_TOO_LARGE,
                            "Request line and headers exceed %zu bytes",
                            h->c->cfg->max_header_bytes);
    return 0;
}

static int flush_header(struct h1 *h)
{
    if (h->field_len == 0)
        return 0;
    if (gw_req_add_header(h->req, h->field, h->field_len, h->value ? h->value : "", h->value_len,
                          h->c->cfg->max_header_bytes + 32 * 1024) != 0)
        return gw_error_set(&h->err, GW_ERR_HEADERS_TOO_LARGE, "Too many request headers");
    h->field_len = h->value_len = 0;
    h->in_value = false;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct h1 *h = p->data;
    h->req = gw_req_new(GW_PROTO_HTTP1, h->c->tls, h->c->id, NULL, h, gw_conn_draining_flag(h->c));
    h->state = H1_HEADERS;
    h->header_bytes = 0;
    h->url_len = h->field_len = h->value_len = 0;
    h->in_value = false;
    gw_conn_timer(h->c, h->c->cfg->header_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = p->data;
    if (count_header_bytes(h, n) != 0)
        return -1;
    return grow_append(&h->url, &h->url_len, &h->cap_url, at, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = p->data;
    if (count_header_bytes(h, n) != 0)
        return -1;
    if (h->in_value && flush_header(h) != 0)
        return -1;
    return grow_append(&h->field, &h->field_len, &h->cap_field, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = p->data;
    if (count_header_bytes(h, n) != 0)
        return -1;
    h->in_value = true;
    return grow_append(&h->value, &h->value_len, &h->cap_value, at, n);
}

static const struct gw_req_transport h1_transport;

static int on_headers_complete(http_parser *p)
{
    struct h1 *h = p->data;
    const struct gw_config *cfg = h->c->cfg;
    if (flush_header(h) != 0)
        return -1;
    const char *method = http_method_str((enum http_method)p->method);
    gw_req_set_line(h->req, method, strlen(method), h->url ? h->url : "/", h->url_len);
    h->req->tp = &h1_transport;
    h->head = p->method == HTTP_HEAD;
    h->http10 = p->http_major == 1 && p->http_minor == 0;
    h->state = H1_BODY;
    /* From here the body must keep moving; the idle timeout bounds a stall. */
    gw_conn_timer(h->c, cfg->idle_timeout_ms);
    if ((p->flags & F_CONTENTLENGTH) && p->content_length != ULLONG_MAX) {
        if (p->content_length > gw_conn_body_limit(h->c))
            return gw_error_set(&h->err, GW_ERR_BODY_TOO_LARGE,
                                "Request body of %llu bytes exceeds the limit of %zu bytes",
                                (unsigned long long)p->content_length, gw_conn_body_limit(h->c));
        /* Only a ceiling for the buffer's growth: memory follows the bytes
         * that actually arrive (a peer may declare 10 MiB and send none). */
        gw_req_body_expect(h->req, (size_t)p->content_length);
    }
    const char *expect = gw_req_header(h->req, "expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 && !h->http10 &&
        ((p->flags & F_CHUNKED) || p->content_length > 0))
        gw_conn_send_bytes(h->c, (const uint8_t *)"HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = p->data;
    size_t avail = h->seg_avail - (size_t)(at - h->seg); /* received, from "at" on */
    int rc = gw_req_body_append_avail(h->req, at, n, gw_conn_body_limit(h->c), avail);
    if (rc == GW_BODY_NO_MEMORY)
        return gw_error_set(&h->err, GW_ERR_SERVICE_UNAVAILABLE,
                            "Request bodies held by the server exceed %zu bytes; retry later",
                            h->c->cfg->max_body_memory);
    if (rc != 0)
        return gw_error_set(&h->err, GW_ERR_BODY_TOO_LARGE,
                            "Request body exceeds the limit of %zu bytes",
                            gw_conn_body_limit(h->c));
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct h1 *h = p->data;
    h->keep_alive = http_should_keep_alive(p) && !gw_conn_draining(h->c);
    h->state = H1_HANDLING;
    h->deferred = false;
    gw_conn_timer(h->c, 0);
    /* Stop the parser here: the next pipelined request waits for this reply. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- replies --------------------------------------------------------------- */

static void write_head(struct h1 *h, struct evbuffer *out, struct gw_req *req, bool chunked,
                       size_t content_length)
{
    char date[64];
    gw_http_date(date, sizeof date);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", req->resp.status,
                        gw_http_reason(req->resp.status));
    for (size_t i = 0; i < req->resp.nhdrs; i++)
        evbuffer_add_printf(out, "%s: %s\r\n", req->resp.hdrs[i].name, req->resp.hdrs[i].value);
    evbuffer_add_printf(out, "date: %s\r\nx-amzn-requestid: %s\r\n", date, req->request_id);
    if (chunked)
        evbuffer_add(out, "transfer-encoding: chunked\r\n", 28);
    else if (content_length != SIZE_MAX)
        evbuffer_add_printf(out, "content-length: %zu\r\n", content_length);
    if (!h->keep_alive)
        evbuffer_add(out, "connection: close\r\n", 19);
    evbuffer_add(out, "\r\n", 2);
}

/* The current request is answered in full: free it, then either close or go
 * back to reading the next request. */
static void finish_request(struct h1 *h)
{
    gw_req_free(h->req);
    h->req = NULL;
    h->state = H1_IDLE;
    if (!h->keep_alive) {
        gw_conn_close_after_flush(h->c);
        return;
    }
    http_parser_pause(&h->parser, 0);
    gw_conn_timer(h->c, h->c->cfg->idle_timeout_ms);
    gw_conn_kick(h->c); /* parse any pipelined request on the next pass */
}

static void on_send(struct gw_req *req)
{
    struct h1 *h = req->tp_ctx;
    size_t len = evbuffer_get_length(req->resp.body);
    write_head(h, h->stage, req, false, len);
    if (!h->head)
        evbuffer_add_buffer(h->stage, req->resp.body);
    gw_conn_send_evbuffer(h->c, h->stage);
    finish_request(h);
}

/* Pulls streamed bytes while the output has room (a bounded number of rounds
 * per call so one stream cannot monopolise the loop). */
static void pump(struct h1 *h)
{
    struct gw_req *req = h->req;
    /* Each round's chunk goes out through the stage, so TLS sees it whole
     * (one record, not three) and clear text may be written through. */
    struct evbuffer *out = h->stage;
    for (int round = 0; round < 64 && h->state == H1_STREAMING && !h->deferred; round++) {
        if (gw_conn_output_full(h->c))
            return; /* on_write resumes us */
        size_t room = h->c->cfg->conn_buffer_bytes - gw_conn_output_len(h->c);
        enum gw_pull r = gw_req_pull(req, room);
        size_t n = evbuffer_get_length(req->resp.body);
        if (n > 0 && !h->head) {
            if (!h->http10)
                evbuffer_add_printf(out, "%zx\r\n", n);
            evbuffer_add_buffer(out, req->resp.body);
            if (!h->http10)
                evbuffer_add(out, "\r\n", 2);
        } else {
            evbuffer_drain(req->resp.body, n);
        }
        if (r == GW_PULL_EOF && !h->http10 && !h->head)
            evbuffer_add(out, "0\r\n\r\n", 5);
        gw_conn_send_evbuffer(h->c, out);
        switch (r) {
        case GW_PULL_MORE:
            break;
        case GW_PULL_DEFER:
            h->deferred = true;
            return;
        case GW_PULL_EOF:
            finish_request(h);
            return;
        case GW_PULL_ABORT:
            /* A chunked body cannot carry an error: cut the connection so the
             * client sees an incomplete reply rather than a clean end. */
            h->keep_alive = false;
            gw_req_free(h->req);
            h->req = NULL;
            h->state = H1_IDLE;
            gw_conn_close_after_flush(h->c);
            return;
        }
    }
    if (h->state == H1_STREAMING && !h->deferred)
        gw_conn_kick(h->c); /* more to do: continue on the next pass */
}

static void on_stream(struct gw_req *req)
{
    struct h1 *h = req->tp_ctx;
    h->state = H1_STREAMING;
    if (h->http10)
        h->keep_alive = false;
    write_head(h, h->stage, req, !h->http10, SIZE_MAX);
    gw_conn_send_evbuffer(h->c, h->stage);
    gw_conn_kick(h->c);
}

static void on_resume(struct gw_req *req)
{
    struct h1 *h = req->tp_ctx;
    if (h->deferred) {
        h->deferred = false;
        gw_conn_kick(h->c);
    }
}

static void on_flush(struct gw_req *req)
{
    struct h1 *h = req->tp_ctx;
    if (!h->c->closing && h->state == H1_STREAMING && h->req == req && !h->processing)
        pump(h);
}

static const struct gw_req_transport h1_transport = {on_send, on_stream, on_resume, on_flush};

/* ---- input processing -------------------------------------------------------- */

static void parse_error(struct h1 *h)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    if (!gw_error_isset(&h->err))
        gw_error_set(&h->err, GW_ERR_BAD_REQUEST, "Malformed HTTP/1.1 request: %s",
                     http_errno_description(e));
    reply_error_and_close(h, &h->err);
}

static void process(struct h1 *h)
{
    struct gw_conn *c = h->c;
    if (h->processing)
        return;
    h->processing = true;
    struct evbuffer *in = gw_conn_input(c);
    while (!c->closing && !c->close_on_flush) {
        if (h->state == H1_HANDLING || h->state == H1_STREAMING)
            break;
        if (gw_conn_output_full(c)) {
            gw_conn_pause_read(c); /* on_write resumes reading */
            break;
        }
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        h->seg = v.iov_base;
        h->seg_avail = evbuffer_get_length(in);
        size_t n = http_parser_execute(&h->parser, &settings, v.iov_base, v.iov_len);
        enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
        evbuffer_drain(in, n);
        if (e != HPE_OK && e != HPE_PAUSED) {
            parse_error(h);
            break;
        }
        if (h->state == H1_HANDLING) {
            /* A complete request: hand it over. The handler may answer before
             * returning (on_send then frees it) or later. */
            void *ctx;
            gw_dispatch_fn dispatch = gw_conn_dispatcher(c, &ctx);
            gw_req_dispatch(h->req, dispatch, ctx);
            continue;
        }
        if (n == 0)
            break;
    }
    h->processing = false;
}

/* ---- connection callbacks ------------------------------------------------------ */

static void h1_on_read(struct gw_conn *c) { process(c->proto_state); }

static void h1_on_write(struct gw_conn *c)
{
    struct h1 *h = c->proto_state;
    gw_conn_resume_read(c);
    if (h->state == H1_STREAMING)
        pump(h);
    else
        process(h);
}

static void h1_on_kick(struct gw_conn *c)
{
    struct h1 *h = c->proto_state;
    if (h->state == H1_STREAMING)
        pump(h);
    else
        process(h);
}

static void h1_on_timer(struct gw_conn *c)
{
    struct h1 *h = c->proto_state;
    if (h->state == H1_HEADERS || h->state == H1_BODY) {
        struct gw_error err = {0};
        gw_error_set(&err, GW_ERR_REQUEST_TIMEOUT, "Request not received within %llu ms",
                     (unsigned long long)(h->state == H1_HEADERS ? c->cfg->header_timeout_ms
                                                                 : c->cfg->idle_timeout_ms));
        reply_error_and_close(h, &err);
        return;
    }
    gw_conn_close(c); /* idle keep-alive connection */
}

static void h1_on_drain(struct gw_conn *c)
{
    struct h1 *h = c->proto_state;
    h->keep_alive = false;
    if (h->state == H1_IDLE && evbuffer_get_length(gw_conn_input(c)) == 0)
        gw_conn_close(c);
    else if (h->state == H1_STREAMING)
        gw_conn_kick(c); /* let the stream see gw_req_draining() */
}

static void h1_on_free(struct gw_conn *c)
{
    struct h1 *h = c->proto_state;
    gw_req_free(h->req);
    free(h->field);
    free(h->value);
    free(h->url);
    evbuffer_free(h->stage);
    free(h);
    c->proto_state = NULL;
}

static const struct gw_conn_proto h1_proto = {
    "http/1.1", h1_on_read, h1_on_write, h1_on_timer, h1_on_kick, h1_on_drain, h1_on_free,
};

void gw_http1_attach(struct gw_conn *c)
{
    struct h1 *h = xcalloc(1, sizeof *h);
    h->c = c;
    h->stage = evbuffer_new();
    if (!h->stage)
        abort();
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
    c->proto = &h1_proto;
    c->proto_state = h;
    gw_log(GW_LOG_DEBUG, "proto", "conn=%llu http/1.1", (unsigned long long)c->id);
    process(h);
}
