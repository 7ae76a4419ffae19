/* request.c - struct gw_req: per-request arena, headers, body, and the
 * response API that http1.c and h2.c implement (see request.h).
 *
 * Upstream: http1.c/h2.c create requests and dispatch them. Downstream: the
 * router and the operations answer through gw_resp_*(), which record the
 * reply here and call the protocol's transport hooks. */
#include "request-internal.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "reply.h"

/* Request ids only need to be unique, not secret: a splitmix64 stream seeded
 * once from the OpenSSL DRBG (RAND_bytes per request costs a getpid() and a
 * lock), formatted as a version-4 UUID. */
static uint64_t rid_state;

static uint64_t splitmix64(void)
{
    uint64_t z = (rid_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void make_request_id(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    if (rid_state == 0 && RAND_bytes((unsigned char *)&rid_state, sizeof rid_state) != 1)
        rid_state = (uint64_t)time(NULL);
    unsigned char b[16];
    uint64_t a = splitmix64(), c = splitmix64();
    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

/* Request-body buffers of every request alive, against --max-body-memory.
 * The loop thread is the only one that creates or frees requests. */
static size_t body_memory, body_memory_limit = SIZE_MAX;

struct gw_req *gw_req_new(enum gw_proto proto, bool tls, uint64_t conn_id,
                          const struct gw_req_transport *tp, void *tp_ctx, const bool *draining)
{
    struct gw_req *req = xcalloc(1, sizeof *req);
    gw_arena_init(&req->arena);
    req->proto = proto;
    req->tls = tls;
    req->conn_id = conn_id;
    req->tp = tp;
    req->tp_ctx = tp_ctx;
    req->draining = draining;
    req->method = req->path = req->query = "";
    req->resp.body = evbuffer_new();
    if (!req->resp.body)
        abort();
    make_request_id(req->request_id);
    return req;
}

void gw_req_free(struct gw_req *req)
{
    if (!req)
        return;
    if (req->handler_owned) {
        req->handler_owned = false;
        if (req->abort_fn)
            req->abort_fn(req, req->abort_ctx);
        else
            gw_log(GW_LOG_WARN, "req_leak", "request %s freed while its handler held it",
                   req->request_id);
    }
    evbuffer_free(req->resp.body);
    free(req->hdrs);
    free(req->resp.hdrs);
    free(req->body);
    body_memory -= req->body_cap;
    gw_arena_clear(&req->arena);
    free(req);
}

void gw_req_set_line(struct gw_req *req, const char *method, size_t mlen, const char *target,
                     size_t tlen)
{
    req->method = gw_arena_strndup(&req->arena, method, mlen);
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    req->path = gw_arena_strndup(&req->arena, target, plen);
    req->query = q ? gw_arena_strndup(&req->arena, q + 1, tlen - plen - 1) : "";
}

static void push_hdr(struct gw_hdr **v, size_t *n, size_t *cap, const char *name, const char *value)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = xrealloc(*v, *cap * sizeof **v);
    }
    (*v)[*n].name = name;
    (*v)[*n].value = value;
    (*n)++;
}

int gw_req_add_header(struct gw_req *req, const char *name, size_t nlen, const char *value,
                      size_t vlen, size_t limit)
{
    /* +32 per field as HPACK counts entries, so many empty headers also cost. */
    size_t cost = nlen + vlen + 32;
    if (req->header_bytes + cost > limit)
        return -1;
    req->header_bytes += cost;
    char *n = gw_arena_strndup(&req->arena, name, nlen);
    for (char *p = n; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    push_hdr(&req->hdrs, &req->nhdrs, &req->caphdrs, n, gw_arena_strndup(&req->arena, value, vlen));
    return 0;
}

void gw_req_set_body_memory_limit(size_t bytes) { body_memory_limit = bytes ? bytes : SIZE_MAX; }

void gw_req_body_expect(struct gw_req *req, size_t n) { req->body_hint = n; }

void gw_req_body_drop(struct gw_req *req)
{
    free(req->body);
    body_memory -= req->body_cap;
    req->body = NULL;
    req->body_len = req->body_cap = 0;
}

/* The first buffer of a body: small enough that a stream which declared a
 * large body and sent one byte costs little, large enough that a typical
 * PutRecords body needs only a few doublings. */
#define BODY_FIRST_CAP 16384

int gw_req_body_append_avail(struct gw_req *req, const void *data, size_t len, size_t limit,
                             size_t avail)
{
    if (len > limit || req->body_len > limit - len)
        return GW_BODY_TOO_LARGE;
    size_t need = req->body_len + len;
    if (need > req->body_cap) {
        /* With a declared length the growth is steeper (fewer copies of a
         * large body arriving in 16 KiB DATA frames), as it stops there. */
        size_t cap = !req->body_cap    ? BODY_FIRST_CAP
                     : req->body_hint ? req->body_cap * 4
                                      : req->body_cap * 2;
        if (cap < need)
            cap = need;
        /* Bytes already received but not yet appended are as good as here. */
        if (avail > len && req->body_hint > need) {
            size_t have = avail - len < req->body_hint - need ? req->body_len + avail
                                                              : req->body_hint;
            if (cap < have)
                cap = have;
        }
        /* The declared length is only a ceiling once bytes back it: a body
         * that keeps within it ends in a buffer of exactly that size. */
        if (req->body_hint >= need && cap > req->body_hint)
            cap = req->body_hint;
        if (cap > limit)
            cap = limit;
        if (body_memory - req->body_cap + cap > body_memory_limit)
            return GW_BODY_NO_MEMORY;
        req->body = xrealloc(req->body, cap);
        body_memory = body_memory - req->body_cap + cap;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    return 0;
}

int gw_req_body_append(struct gw_req *req, const void *data, size_t len, size_t limit)
{
    return gw_req_body_append_avail(req, data, len, limit, len);
}

void gw_req_dispatch(struct gw_req *req, gw_dispatch_fn dispatch, void *ctx)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    req->dispatched_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    req->handler_owned = true;
    dispatch(ctx, req);
}

/* ---- accessors ------------------------------------------------------------- */

const char *gw_req_method(const struct gw_req *req) { return req->method; }
const char *gw_req_path(const struct gw_req *req) { return req->path; }
const char *gw_req_query(const struct gw_req *req) { return req->query; }
enum gw_proto gw_req_proto(const struct gw_req *req) { return req->proto; }
bool gw_req_tls(const struct gw_req *req) { return req->tls; }
uint64_t gw_req_conn_id(const struct gw_req *req) { return req->conn_id; }
bool gw_req_draining(const struct gw_req *req) { return req->draining && *req->draining; }
void *gw_req_alloc(struct gw_req *req, size_t n) { return gw_arena_alloc(&req->arena, n); }

const char *gw_req_header(const struct gw_req *req, const char *name)
{
    for (size_t i = 0; i < req->nhdrs; i++)
        if (strcasecmp(req->hdrs[i].name, name) == 0)
            return req->hdrs[i].value;
    return NULL;
}

const uint8_t *gw_req_body(const struct gw_req *req, size_t *len)
{
    *len = req->body_len;
    return req->body ? req->body : (const uint8_t *)"";
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into the arena; '+' is a space in queries. */
static char *decode(struct gw_req *req, const char *s, size_t n)
{
    char *out = gw_arena_alloc(&req->arena, n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
            hexval((unsigned char)s[i + 2]) >= 0) {
            *o++ = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
            i += 2;
        } else if (s[i] == '+') {
            *o++ = ' ';
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

const char *gw_req_query_param(struct gw_req *req, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = req->query;
    while (*p) {
        size_t seg = strcspn(p, "&");
        const char *eq = memchr(p, '=', seg);
        size_t klen = eq ? (size_t)(eq - p) : seg;
        if (klen == nlen && memcmp(p, name, nlen) == 0)
            return eq ? decode(req, eq + 1, seg - klen - 1) : "";
        p += seg;
        if (*p == '&')
            p++;
    }
    return NULL;
}

void gw_req_set_route(struct gw_req *req, const void *op, const char *const *params, size_t n)
{
    req->route.op = op;
    if (n > 4)
        n = 4;
    for (size_t i = 0; i < n; i++)
        req->route.params[i] = params[i];
    req->route.nparams = n;
}

const void *gw_req_op(const struct gw_req *req) { return req->route.op; }

const char *gw_req_param(const struct gw_req *req, size_t i)
{
    return i < req->route.nparams ? req->route.params[i] : NULL;
}

/* ---- responses ------------------------------------------------------------- */

void gw_resp_header(struct gw_req *req, const char *name, const char *value)
{
    char *n = gw_arena_strndup(&req->arena, name, strlen(name));
    for (char *p = n; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    push_hdr(&req->resp.hdrs, &req->resp.nhdrs, &req->resp.caphdrs, n,
             gw_arena_strndup(&req->arena, value, strlen(value)));
}

void gw_req_observe(struct gw_req *req, gw_reply_observer_fn fn, void *ctx)
{
    req->observer = fn;
    req->observer_ctx = ctx;
}

void gw_req_note_error(struct gw_req *req, enum gw_errtype type)
{
    req->errtype = type;
}

uint64_t gw_req_dispatched_ns(const struct gw_req *req)
{
    return req->dispatched_ns;
}

static void observe(struct gw_req *req, int status)
{
    gw_reply_observer_fn fn = req->observer;
    if (!fn)
        return;
    req->observer = NULL;
    fn(req, req->observer_ctx, status, req->errtype);
}

int gw_resp_send(struct gw_req *req, int status, const void *body, size_t len)
{
    if (req->resp.state != GW_RESP_NONE)
        return -1;
    observe(req, status);
    req->resp.state = GW_RESP_ONESHOT;
    req->resp.status = status;
    if (len)
        evbuffer_add(req->resp.body, body, len);
    req->handler_owned = false;
    req->abort_fn = NULL;
    req->tp->on_send(req);
    return 0;
}

int gw_resp_send_buffer(struct gw_req *req, int status, struct evbuffer *body)
{
    if (req->resp.state != GW_RESP_NONE)
        return -1;
    evbuffer_add_buffer(req->resp.body, body);
    return gw_resp_send(req, status, NULL, 0);
}

int gw_resp_error(struct gw_req *req, const struct gw_error *err)
{
    return gw_reply_error(req, err);
}

int gw_resp_stream(struct gw_req *req, int status, gw_pull_fn pull, void *ctx)
{
    if (req->resp.state != GW_RESP_NONE)
        return -1;
    observe(req, status);
    req->resp.state = GW_RESP_STREAM;
    req->resp.status = status;
    req->resp.pull = pull;
    req->resp.pull_ctx = ctx;
    req->tp->on_stream(req);
    return 0;
}

void gw_resp_shared_pieces(struct gw_req *req)
{
    req->resp.shared = true;
}

void gw_resp_resume(struct gw_req *req)
{
    if (req->resp.state == GW_RESP_STREAM && !req->resp.eof)
        req->tp->on_resume(req);
}

void gw_resp_flush(struct gw_req *req)
{
    if (req->tp->on_flush)
        req->tp->on_flush(req);
}

void gw_req_on_abort(struct gw_req *req, gw_abort_fn fn, void *ctx)
{
    req->abort_fn = fn;
    req->abort_ctx = ctx;
}

enum gw_pull gw_req_pull(struct gw_req *req, size_t max)
{
    if (req->resp.eof)
        return GW_PULL_EOF;
    enum gw_pull r = req->resp.pull(req, req->resp.pull_ctx, req->resp.body, max);
    if (r == GW_PULL_EOF || r == GW_PULL_ABORT) {
        req->resp.eof = true;
        req->handler_owned = false;
        req->abort_fn = NULL;
    }
    return r;
}

void gw_http_date(char *buf, size_t len)
{
    /* Formatted once per second: every reply carries a Date header. */
    static time_t cached_at;
    static char cached[40];
    time_t now = time(NULL);
    if (now != cached_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof cached, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_at = now;
    }
    snprintf(buf, len, "%s", cached);
}

const char *gw_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 403: return "Forbidden";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 421: return "Misdirected Request";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}
