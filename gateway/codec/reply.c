/* reply.c - the one reply writer (see reply.h): a JSON and a CBOR back end
 * behind one call sequence, the content-type rule, and the error reply.
 *
 * Output goes into space reserved in the evbuffer (evbuffer_reserve_space)
 * and is committed when the window is full or the document ends, so a value
 * costs a bounds check and a memcpy. The nesting stack checks the counts the
 * caller promised; any breach marks the writer failed and every later call
 * does nothing, so a malformed document is never sent. */
#include "reply.h"

#include <cbor/encoding.h>
#include <event2/buffer.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cbor.h"
#include "codec.h"
#include "log.h"

#define CHUNK_FIRST 512
#define CHUNK_MAX (256u * 1024)

/* ---- the content-type rule ---------------------------------------------------- */

bool gw_media_type_is(const char *ct, const char *type)
{
    size_t n = strlen(type);
    return ct && strncasecmp(ct, type, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

enum gw_reply_format gw_reply_format_for(const char *path, const char *content_type,
                                         const char *target)
{
    if (gw_media_type_is(content_type, GW_CT_CBOR))
        return GW_REPLY_CBOR;
    if (target || (path && strcmp(path, "/") == 0))
        return GW_REPLY_AMZ_JSON;
    return GW_REPLY_JSON;
}

enum gw_reply_format gw_reply_format_of(const struct gw_req *req)
{
    return gw_reply_format_for(gw_req_path(req), gw_req_header(req, "content-type"),
                               gw_req_header(req, "x-amz-target"));
}

const char *gw_reply_content_type(enum gw_reply_format f)
{
    switch (f) {
    case GW_REPLY_CBOR: return GW_CT_CBOR;
    case GW_REPLY_AMZ_JSON: return GW_CT_AMZ_JSON;
    case GW_REPLY_JSON: break;
    }
    return GW_CT_JSON;
}

/* ---- output window -------------------------------------------------------------- */

/* The window before anything is reserved: empty, and never committed. */
static char no_window[1];

static void commit(struct gw_reply *w)
{
    if (w->flat)
        return; /* the window is the block itself: nothing to hand over */
    if (w->base != no_window && w->p != w->base) {
        struct evbuffer_iovec v = {.iov_base = w->base, .iov_len = (size_t)(w->p - w->base)};
        if (evbuffer_commit_space(w->out, &v, 1) != 0)
            abort(); /* our own reservation: cannot fail */
    }
    w->base = w->p = w->end = no_window;
}

static void grow(struct gw_reply *w, size_t n)
{
    if (w->flat) {
        size_t used = (size_t)(w->p - (char *)w->flat);
        size_t cap = w->flat_cap * 2 > used + n ? w->flat_cap * 2 : used + n;
        w->flat = realloc(w->flat, cap);
        if (!w->flat)
            abort(); /* allocation failure: fatal, as everywhere (mem.h) */
        w->flat_cap = cap;
        w->base = (char *)w->flat;
        w->p = w->base + used;
        w->end = w->base + cap;
        return;
    }
    commit(w);
    size_t want = n > w->chunk ? n : w->chunk;
    if (w->chunk < CHUNK_MAX)
        w->chunk *= 2;
    struct evbuffer_iovec v;
    if (want > (size_t)EV_SSIZE_MAX || evbuffer_reserve_space(w->out, (ev_ssize_t)want, &v, 1) != 1)
        abort(); /* allocation failure: fatal, as everywhere (mem.h) */
    w->base = w->p = v.iov_base;
    w->end = w->base + v.iov_len;
}

/* Room for "n" bytes at w->p. */
static inline char *room(struct gw_reply *w, size_t n)
{
    if ((size_t)(w->end - w->p) < n)
        grow(w, n);
    return w->p;
}

static inline void put(struct gw_reply *w, const void *s, size_t n)
{
    if (n == 0)
        return;
    memcpy(room(w, n), s, n);
    w->p += n;
}

static inline void put_c(struct gw_reply *w, char c)
{
    *room(w, 1) = c;
    w->p++;
}

/* A CBOR item head written by libcbor (at most 9 bytes). */
#define CBOR_HEAD(w, call)                                                                   \
    do {                                                                                     \
        unsigned char *b_ = (unsigned char *)room((w), 9);                                   \
        size_t n_ = (call);                                                                  \
        if (n_ == 0)                                                                         \
            abort(); /* 9 bytes always suffice */                                            \
        (w)->p += n_;                                                                        \
    } while (0)

/* ---- state ------------------------------------------------------------------------ */

static void start(struct gw_reply *w, struct evbuffer *out, bool own, enum gw_reply_format f)
{
    w->out = out;
    w->own_out = own;
    w->format = f;
    w->cbor = f == GW_REPLY_CBOR;
    w->failed = NULL;
    w->root_done = false;
    w->base = w->p = w->end = no_window;
    w->chunk = CHUNK_FIRST;
    w->depth = 0;
    w->flat = NULL;
    w->flat_cap = 0;
}

void gw_reply_init(struct gw_reply *w, struct gw_req *req)
{
    struct evbuffer *out = evbuffer_new();
    if (!out)
        abort();
    w->req = req;
    start(w, out, true, gw_reply_format_of(req));
}

void gw_reply_init_json(struct gw_reply *w, struct evbuffer *out)
{
    w->req = NULL;
    start(w, out, false, GW_REPLY_JSON);
}

void gw_reply_init_flat(struct gw_reply *w, uint8_t *block, size_t cap, size_t off)
{
    w->req = NULL;
    start(w, NULL, false, GW_REPLY_JSON);
    w->flat = block;
    w->flat_cap = cap;
    w->base = (char *)block;
    w->p = w->base + (off < cap ? off : cap);
    w->end = w->base + cap;
}

static void fail(struct gw_reply *w, const char *why)
{
    if (!w->failed)
        w->failed = why;
}

bool gw_reply_ok(const struct gw_reply *w) { return w->failed == NULL; }

/* Claims the slot for the next value: checks it is due and writes the JSON
 * comma before an array element. Returns false (writes nothing) if the
 * writer has failed or the value is not due. */
static bool slot(struct gw_reply *w)
{
    if (w->failed)
        return false;
    if (w->depth == 0) {
        if (w->root_done) {
            fail(w, "a second top-level value");
            return false;
        }
        return true;
    }
    struct gw_reply_frame *f = &w->st[w->depth - 1];
    if (f->map) {
        if (!f->want_value) {
            fail(w, "a value where a member name is due");
            return false;
        }
        f->want_value = false;
        return true;
    }
    if (f->left == 0) {
        fail(w, "more elements than the array's count");
        return false;
    }
    f->left--;
    if (!f->first && !w->cbor)
        put_c(w, ',');
    f->first = false;
    return true;
}

/* After a scalar value. */
static inline void scalar_done(struct gw_reply *w)
{
    if (w->depth == 0)
        w->root_done = true;
}

/* ---- JSON pieces -------------------------------------------------------------------- */

/* "s" as a JSON string, escaped as jansson's json_dumps (and Jackson) do. */
static void json_str(struct gw_reply *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    put_c(w, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(w, s + run, i - run);
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default: len = 6; break;
        }
        put(w, esc, len);
        run = i + 1;
    }
    put(w, s + run, n - run);
    put_c(w, '"');
}

size_t gw_reply_json_string_len(const char *s, size_t n)
{
    size_t len = n + 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        /* two-character escapes, else \u00XX (json_str) */
        len += c && strchr("\"\\\b\f\n\r\t", c) ? 1 : 5;
    }
    return len;
}

static void json_int(struct gw_reply *w, int64_t v)
{
    char *d = room(w, 20), *d0 = d;
    uint64_t a = (uint64_t)v;
    if (v < 0) {
        *d++ = '-';
        a = 0 - a;
    }
    d += gw_fmt_u64(d, a);
    w->p += d - d0;
}

/* jansson's jsonp_dtostr with precision 15: "%.15g", ".0" appended when the
 * text has neither '.' nor 'e', the exponent without '+' or leading zeros. */
static void json_dtostr(struct gw_reply *w, double v)
{
    char buf[40];
    int len = snprintf(buf, sizeof buf - 3, "%.15g", v);
    if (len < 0 || (size_t)len >= sizeof buf - 3) {
        fail(w, "a real that does not print");
        return;
    }
    size_t n = (size_t)len;
    for (char *c = buf; *c; c++)
        if (*c == ',')
            *c = '.'; /* a locale's decimal comma */
    if (!strchr(buf, '.') && !strchr(buf, 'e')) {
        buf[n++] = '.';
        buf[n++] = '0';
        buf[n] = '\0';
    }
    char *start = strchr(buf, 'e');
    if (start) {
        start++;
        char *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, n - (size_t)(end - buf) + 1);
            n -= (size_t)(end - start);
        }
    }
    put(w, buf, n);
}

/* Epoch seconds with a 3-digit millisecond fraction. */
static void json_time(struct gw_reply *w, int64_t ms)
{
    char *d = room(w, 26), *d0 = d;
    uint64_t a = (uint64_t)ms;
    if (ms < 0) {
        *d++ = '-';
        a = 0 - a;
    }
    d += gw_fmt_u64(d, a / 1000);
    unsigned f = (unsigned)(a % 1000);
    d[0] = '.';
    d[1] = (char)('0' + f / 100);
    d[2] = (char)('0' + f / 10 % 10);
    d[3] = (char)('0' + f % 10);
    d += 4;
    w->p += d - d0;
}

/* ---- CBOR pieces --------------------------------------------------------------------- */

static void cbor_int(struct gw_reply *w, int64_t v)
{
    if (v >= 0)
        CBOR_HEAD(w, cbor_encode_uint((uint64_t)v, b_, 9));
    else
        CBOR_HEAD(w, cbor_encode_negint((uint64_t)(-(v + 1)), b_, 9));
}

static void cbor_text(struct gw_reply *w, const char *s, size_t n)
{
    CBOR_HEAD(w, cbor_encode_string_start(n, b_, 9));
    put(w, s, n);
}

/* ---- the calls ------------------------------------------------------------------------ */

static void open_container(struct gw_reply *w, size_t n, bool map)
{
    if (!slot(w))
        return;
    if (w->depth == GW_REPLY_MAX_DEPTH) {
        fail(w, "nesting deeper than GW_REPLY_MAX_DEPTH");
        return;
    }
    if (w->cbor) {
        if (map)
            CBOR_HEAD(w, cbor_encode_map_start(n, b_, 9));
        else
            CBOR_HEAD(w, cbor_encode_array_start(n, b_, 9));
    } else {
        put_c(w, map ? '{' : '[');
    }
    struct gw_reply_frame *f = &w->st[w->depth++];
    f->left = n;
    f->map = map;
    f->first = true;
    f->want_value = false;
}

void gw_reply_object(struct gw_reply *w, size_t n) { open_container(w, n, true); }
void gw_reply_array(struct gw_reply *w, size_t n) { open_container(w, n, false); }

void gw_reply_end(struct gw_reply *w)
{
    if (w->failed)
        return;
    if (w->depth == 0) {
        fail(w, "an end with nothing open");
        return;
    }
    struct gw_reply_frame *f = &w->st[w->depth - 1];
    if (f->want_value) {
        fail(w, "a member name without its value");
        return;
    }
    if (f->left) {
        fail(w, f->map ? "fewer members than the map's count"
                       : "fewer elements than the array's count");
        return;
    }
    if (!w->cbor)
        put_c(w, f->map ? '}' : ']');
    if (--w->depth == 0)
        w->root_done = true;
}

void gw_reply_key_n(struct gw_reply *w, const char *key, size_t n)
{
    if (w->failed)
        return;
    if (w->depth == 0 || !w->st[w->depth - 1].map) {
        fail(w, "a member name outside a map");
        return;
    }
    struct gw_reply_frame *f = &w->st[w->depth - 1];
    if (f->want_value) {
        fail(w, "a member name where a value is due");
        return;
    }
    if (f->left == 0) {
        fail(w, "more members than the map's count");
        return;
    }
    f->left--;
    f->want_value = true;
    if (w->cbor) {
        cbor_text(w, key, n);
        return;
    }
    if (!f->first)
        put_c(w, ',');
    f->first = false;
    json_str(w, key, n);
    put_c(w, ':');
}

void gw_reply_string_n(struct gw_reply *w, const char *s, size_t n)
{
    if (!slot(w))
        return;
    if (w->cbor)
        cbor_text(w, s, n);
    else
        json_str(w, s, n);
    scalar_done(w);
}

void gw_reply_blob(struct gw_reply *w, const void *p, size_t n)
{
    if (!slot(w))
        return;
    if (w->cbor) {
        CBOR_HEAD(w, cbor_encode_bytestring_start(n, b_, 9));
        put(w, p, n);
    } else {
        /* Encoded straight into the output: no copy per blob. */
        size_t len = gw_base64_encoded_len(n);
        char *d = room(w, len + 2);
        d[0] = '"';
        size_t k = gw_base64_encode_to(p, n, d + 1);
        d[1 + k] = '"';
        w->p += k + 2;
    }
    scalar_done(w);
}

void gw_reply_int(struct gw_reply *w, int64_t v)
{
    if (!slot(w))
        return;
    if (w->cbor)
        cbor_int(w, v);
    else
        json_int(w, v);
    scalar_done(w);
}

void gw_reply_bool(struct gw_reply *w, bool v)
{
    if (!slot(w))
        return;
    if (w->cbor)
        CBOR_HEAD(w, cbor_encode_bool(v, b_, 9));
    else if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
    scalar_done(w);
}

void gw_reply_null(struct gw_reply *w)
{
    if (!slot(w))
        return;
    if (w->cbor)
        CBOR_HEAD(w, cbor_encode_null(b_, 9));
    else
        put(w, "null", 4);
    scalar_done(w);
}

void gw_reply_real(struct gw_reply *w, double v)
{
    if (w->failed)
        return;
    if (!isfinite(v)) {
        fail(w, "a real that is not finite");
        return;
    }
    if (!slot(w))
        return;
    if (w->cbor)
        CBOR_HEAD(w, cbor_encode_double(v, b_, 9));
    else
        json_dtostr(w, v);
    scalar_done(w);
}

void gw_reply_time_ms(struct gw_reply *w, int64_t ms)
{
    if (w->failed)
        return;
    if (ms > GW_CBOR_MAX_TIMESTAMP_MS || ms < -GW_CBOR_MAX_TIMESTAMP_MS) {
        fail(w, "a timestamp out of range");
        return;
    }
    if (!slot(w))
        return;
    if (w->cbor) {
        CBOR_HEAD(w, cbor_encode_tag(1, b_, 9));
        cbor_int(w, ms);
    } else {
        json_time(w, ms);
    }
    scalar_done(w);
}

/* ---- jansson trees ----------------------------------------------------------------- */

/* A base64 "Data" member of a tree, as a CBOR byte string decoded straight
 * into the output. */
static void tree_blob(struct gw_reply *w, const char *s, size_t n)
{
    if (!slot(w))
        return;
    size_t len = gw_base64_decoded_len(s, n);
    CBOR_HEAD(w, cbor_encode_bytestring_start(len, b_, 9));
    uint8_t *d = (uint8_t *)room(w, len);
    long k = gw_base64_decode(s, n, d, len);
    if (k < 0 || (size_t)k != len) {
        fail(w, "a Data member that is not base64");
        return;
    }
    w->p += len;
    scalar_done(w);
}

static void tree(struct gw_reply *w, const json_t *v, enum gw_cbor_kind kind)
{
    if (w->failed)
        return;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        gw_reply_object(w, json_object_size(v));
        const char *k;
        size_t klen;
        json_t *m;
        json_object_keylen_foreach((json_t *)v, k, klen, m) {
            gw_reply_key_n(w, k, klen);
            tree(w, m, gw_cbor_kinesis_kind(NULL, k, klen));
            if (w->failed)
                return;
        }
        gw_reply_end(w);
        return;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        gw_reply_array(w, n);
        for (size_t i = 0; i < n && !w->failed; i++)
            tree(w, json_array_get(v, i), kind);
        gw_reply_end(w);
        return;
    }
    case JSON_STRING:
        if (kind == GW_CBOR_BLOB && w->cbor)
            tree_blob(w, json_string_value(v), json_string_length(v));
        else
            gw_reply_string_n(w, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER: {
        json_int_t x = json_integer_value(v);
        if (kind != GW_CBOR_TIMESTAMP)
            gw_reply_int(w, (int64_t)x);
        else if (x > GW_CBOR_MAX_TIMESTAMP_MS / 1000 || x < -GW_CBOR_MAX_TIMESTAMP_MS / 1000)
            fail(w, "a timestamp out of range");
        else
            gw_reply_time_ms(w, (int64_t)x * 1000);
        return;
    }
    case JSON_REAL: {
        double x = json_real_value(v);
        if (kind != GW_CBOR_TIMESTAMP)
            gw_reply_real(w, x);
        else if (!(fabs(x * 1000.0) <= (double)GW_CBOR_MAX_TIMESTAMP_MS))
            fail(w, "a timestamp out of range");
        else
            gw_reply_time_ms(w, (int64_t)llround(x * 1000.0));
        return;
    }
    case JSON_TRUE:
    case JSON_FALSE:
        gw_reply_bool(w, json_is_true(v));
        return;
    case JSON_NULL:
        gw_reply_null(w);
        return;
    }
    fail(w, "an unknown JSON type");
}

void gw_reply_tree(struct gw_reply *w, const json_t *v)
{
    if (!v) {
        fail(w, "no value");
        return;
    }
    tree(w, v, GW_CBOR_PLAIN);
}

/* ---- ending ---------------------------------------------------------------------------- */

static void check_complete(struct gw_reply *w)
{
    commit(w);
    if (!w->failed && w->depth)
        fail(w, "a map or array left open");
}

int gw_reply_finish(struct gw_reply *w)
{
    check_complete(w);
    if (w->failed) {
        gw_log(GW_LOG_ERROR, "reply_malformed", "JSON document: %s", w->failed);
        return -1;
    }
    return 0;
}

uint8_t *gw_reply_finish_flat(struct gw_reply *w, size_t *end, size_t *cap)
{
    uint8_t *block = w->flat;
    *end = (size_t)(w->p - (char *)block);
    *cap = w->flat_cap;
    w->flat = NULL;
    w->base = w->p = w->end = no_window;
    if (gw_reply_finish(w) != 0) {
        free(block);
        return NULL;
    }
    return block;
}

void gw_reply_discard(struct gw_reply *w)
{
    if (w->flat) {
        free(w->flat);
        w->flat = NULL;
        w->base = w->p = w->end = no_window;
    }
    commit(w);
    if (w->own_out)
        evbuffer_free(w->out);
    w->out = NULL;
}

int gw_reply_send(struct gw_reply *w, int status)
{
    check_complete(w);
    struct gw_req *req = w->req;
    if (w->failed) {
        /* Only our own code can get here: a bug, not the client's doing. */
        gw_log(GW_LOG_ERROR, "reply_malformed", "status=%d: %s", status, w->failed);
        evbuffer_drain(w->out, evbuffer_get_length(w->out));
        struct gw_error err = {0};
        gw_error_set(&err, GW_ERR_INTERNAL_FAILURE, "encode error");
        start(w, w->out, true, w->format);
        gw_reply_error_body(w, &err);
        commit(w);
        gw_resp_header(req, "x-amzn-errortype", gw_error_name(err.type));
        gw_req_note_error(req, err.type);
        status = gw_error_status(err.type);
    }
    gw_resp_header(req, "content-type", gw_reply_content_type(w->format));
    int rc = gw_resp_send_buffer(req, status, w->out);
    evbuffer_free(w->out);
    w->out = NULL;
    return rc;
}

/* ---- errors ------------------------------------------------------------------------------ */

void gw_reply_error_body(struct gw_reply *w, const struct gw_error *err)
{
    size_t n = strlen(err->message);
    gw_reply_object(w, 2);
    gw_reply_key(w, "__type");
    gw_reply_string(w, gw_error_name(err->type));
    gw_reply_key(w, "message");
    if (gw_utf8_valid(err->message, n))
        gw_reply_string_n(w, err->message, n);
    else
        gw_reply_string(w, "(message not printable)");
    gw_reply_end(w);
}

int gw_reply_error(struct gw_req *req, const struct gw_error *err)
{
    struct gw_reply w;
    gw_reply_init(&w, req);
    gw_reply_error_body(&w, err);
    gw_resp_header(req, "x-amzn-errortype", gw_error_name(err->type));
    gw_req_note_error(req, err->type);
    return gw_reply_send(&w, gw_error_status(err->type));
}
