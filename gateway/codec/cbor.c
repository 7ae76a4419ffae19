/* cbor.c - application/x-amz-cbor-1.1 bodies <-> jansson trees (pure).
 *
 * Owns the mapping between CBOR items and json_t values described in cbor.h.
 * Upstream: the Kinesis door (router.c) hands a CBOR request body to
 * gw_cbor_decode() before the operation runs; replies are written by
 * reply.c's CBOR back end. gw_cbor_encode() is the inverse mapping, kept for
 * the tests and fuzz targets that build CBOR requests and check round trips
 * (and as the reference reply.c matches). Downstream: libcbor's
 * streaming decoder (cbor_stream_decode, one item head per call) and its
 * cbor_encode_* helpers; jansson for the tree. We do not use cbor_load(): it
 * allocates what the input declares (a 4-byte header can announce 2^32 array
 * elements) before we could apply a limit. Driving the streaming decoder
 * ourselves means every limit is checked before anything is allocated and the
 * json_t tree is built in one pass.
 *
 * Invariants of the decoder: every container is attached to its parent as
 * soon as it opens, so on error freeing the root frees everything; the frame
 * stack never exceeds max_depth entries plus one for a string being
 * assembled from chunks; once "failed" is set, callbacks do nothing.
 */
#include "cbor.h"

#include <cbor/callbacks.h>
#include <cbor/encoding.h>
#include <cbor/streaming.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define SELF_DESCRIBE_TAG 55799
#define EPOCH_TAG 1

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

static void fmt_err(char *errbuf, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void fmt_err(char *errbuf, size_t errlen, const char *fmt, va_list ap)
{
    if (errbuf && errlen)
        vsnprintf(errbuf, errlen, fmt, ap);
}

/* ---- decoding ----------------------------------------------------------- */

enum frame_type { F_ARRAY, F_MAP, F_BYTES, F_TEXT };

struct frame {
    enum frame_type type;
    bool indefinite;
    uint64_t remaining; /* definite containers: elements (arrays) or pairs (maps) left */
    json_t *json;       /* F_ARRAY, F_MAP: borrowed, owned by the parent or root */
    enum gw_cbor_kind kind; /* arrays: inherited from their member; maps: current key's */
    char *key;          /* F_MAP: pending key (owned), NULL when a key is expected */
    size_t key_len;
};

struct dec {
    const struct gw_cbor_opts *o;
    struct frame *stack;
    size_t depth;       /* frames in use */
    size_t max_frames;  /* max_depth + 1 (a chunked string inside the deepest map) */
    size_t items;
    size_t offset;      /* input offset of the item being decoded, for messages */
    json_t *root;
    bool done;          /* the root map is complete */
    bool failed;
    bool epoch_tag;     /* a tag 1 waits for its number */
    uint8_t *chunks;    /* an indefinite string being assembled */
    size_t chunks_len, chunks_cap;
    char *errbuf;
    size_t errlen;
};

static void dfail(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void dfail(struct dec *d, const char *fmt, ...)
{
    if (d->failed)
        return;
    d->failed = true;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    fmt_err(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (d->errbuf && d->errlen)
        snprintf(d->errbuf, d->errlen, "CBOR: %s at byte %zu", msg, d->offset);
}

static struct frame *top(struct dec *d)
{
    return d->depth ? &d->stack[d->depth - 1] : NULL;
}

enum item { I_NUMBER, I_TEXT, I_BYTES, I_TEXT_START, I_BYTES_START, I_CONTAINER, I_OTHER, I_TAG,
            I_BREAK };

/* Common checks before an item is handled; returns false if it must be
 * ignored (already failed, or it fails now). */
static bool begin_item(struct dec *d, enum item it)
{
    if (d->failed)
        return false;
    if (it != I_BREAK && ++d->items > d->o->max_items) {
        dfail(d, "more than %zu data items", d->o->max_items);
        return false;
    }
    struct frame *f = top(d);
    if (f && (f->type == F_BYTES || f->type == F_TEXT)) {
        bool ok = it == I_BREAK || (f->type == F_TEXT ? it == I_TEXT : it == I_BYTES);
        if (!ok)
            dfail(d, "indefinite-length %s string holds a chunk of another type",
                  f->type == F_TEXT ? "text" : "byte");
        return ok;
    }
    if (d->epoch_tag && it != I_NUMBER) {
        dfail(d, "tag 1 (epoch time) must wrap a number");
        return false;
    }
    if (d->depth == 0 && it != I_CONTAINER && it != I_TAG) {
        dfail(d, "body must be a CBOR map");
        return false;
    }
    if (f && f->type == F_MAP && f->key == NULL && it != I_TEXT && it != I_TEXT_START &&
        it != I_BREAK) {
        dfail(d, "map key is not a text string");
        return false;
    }
    return true;
}

static void close_frames(struct dec *d);

/* Attaches the finished value "v" (taken) to the open container on top. */
static void attach(struct dec *d, json_t *v)
{
    if (v == NULL) {
        dfail(d, "out of memory");
        return;
    }
    struct frame *f = top(d);
    if (f->type == F_ARRAY) {
        if (json_array_append_new(f->json, v) != 0) {
            dfail(d, "cannot append to array");
            return;
        }
    } else {
        /* Keys are checked for duplicates when they arrive (see set_key). */
        int rc = json_object_setn_new_nocheck(f->json, f->key, f->key_len, v);
        free(f->key);
        f->key = NULL;
        if (rc != 0) {
            dfail(d, "cannot set map member");
            return;
        }
    }
    if (!f->indefinite)
        f->remaining--;
}

/* Pops every definite container on top that has all its elements. */
static void close_frames(struct dec *d)
{
    while (!d->failed && d->depth > 0) {
        struct frame *f = top(d);
        if (f->indefinite || f->remaining > 0)
            return;
        d->depth--;
    }
    if (!d->failed && d->depth == 0 && d->root)
        d->done = true;
}

static void set_key(struct dec *d, const uint8_t *s, size_t n)
{
    struct frame *f = top(d);
    if (memchr(s, 0, n)) {
        dfail(d, "map key contains U+0000");
        return;
    }
    if (json_object_getn(f->json, (const char *)s, n)) {
        dfail(d, "duplicate map key \"%.*s\"", (int)(n > 64 ? 64 : n), (const char *)s);
        return;
    }
    f->key = xrealloc(NULL, n + 1);
    memcpy(f->key, s, n);
    f->key[n] = '\0';
    f->key_len = n;
    f->kind = d->o->kind ? d->o->kind(d->o->kind_ctx, f->key, n) : GW_CBOR_PLAIN;
}

/* Delivers a complete text string: a map key or a value. */
static void text_done(struct dec *d, const uint8_t *s, size_t n)
{
    if (!gw_utf8_valid(s, n)) {
        dfail(d, "text string is not valid UTF-8");
        return;
    }
    struct frame *f = top(d);
    if (f->type == F_MAP && f->key == NULL) {
        set_key(d, s, n);
        return;
    }
    if (!(d->o->flags & GW_CBOR_ALLOW_NUL) && memchr(s, 0, n)) {
        dfail(d, "text string contains U+0000");
        return;
    }
    attach(d, json_stringn_nocheck((const char *)s, n));
    close_frames(d);
}

static void bytes_done(struct dec *d, const uint8_t *s, size_t n)
{
    size_t blen = gw_base64_encoded_len(n);
    char *b = xrealloc(NULL, blen);
    gw_base64_encode_to(s, n, b);
    attach(d, json_stringn_nocheck(b, blen));
    free(b);
    close_frames(d);
}

/* The kind that applies to a value placed in the top container now. */
static enum gw_cbor_kind value_kind(struct dec *d)
{
    struct frame *f = top(d);
    return f ? f->kind : GW_CBOR_PLAIN;
}

static void number_done(struct dec *d, json_t *v, double as_double)
{
    if (d->epoch_tag || value_kind(d) == GW_CBOR_TIMESTAMP) {
        d->epoch_tag = false;
        json_decref(v);
        if (fabs(as_double) > (double)GW_CBOR_MAX_TIMESTAMP_MS) {
            dfail(d, "timestamp out of range");
            return;
        }
        v = json_real(as_double / 1000.0);
    }
    attach(d, v);
    close_frames(d);
}

static void on_uint(struct dec *d, uint64_t u)
{
    if (!begin_item(d, I_NUMBER))
        return;
    if (u > INT64_MAX) {
        dfail(d, "integer %llu out of range", (unsigned long long)u);
        return;
    }
    number_done(d, json_integer((json_int_t)u), (double)u);
}

/* CBOR negative integers carry n for the value -1 - n. */
static void on_negint(struct dec *d, uint64_t n)
{
    if (!begin_item(d, I_NUMBER))
        return;
    if (n > INT64_MAX) {
        dfail(d, "integer -1-%llu out of range", (unsigned long long)n);
        return;
    }
    int64_t v = -1 - (int64_t)n;
    number_done(d, json_integer((json_int_t)v), (double)v);
}

static void on_double(struct dec *d, double x)
{
    if (!begin_item(d, I_NUMBER))
        return;
    if (!isfinite(x)) {
        dfail(d, "non-finite float");
        return;
    }
    number_done(d, json_real(x), x);
}

static void cb_uint8(void *c, uint8_t v) { on_uint(c, v); }
static void cb_uint16(void *c, uint16_t v) { on_uint(c, v); }
static void cb_uint32(void *c, uint32_t v) { on_uint(c, v); }
static void cb_uint64(void *c, uint64_t v) { on_uint(c, v); }
static void cb_negint8(void *c, uint8_t v) { on_negint(c, v); }
static void cb_negint16(void *c, uint16_t v) { on_negint(c, v); }
static void cb_negint32(void *c, uint32_t v) { on_negint(c, v); }
static void cb_negint64(void *c, uint64_t v) { on_negint(c, v); }
static void cb_float(void *c, float v) { on_double(c, v); }
static void cb_double(void *c, double v) { on_double(c, v); }

static void chunk_append(struct dec *d, const uint8_t *s, size_t n)
{
    /* Chunks come from the input, so their total is bounded by max_size. */
    if (d->chunks_cap - d->chunks_len < n) {
        size_t cap = d->chunks_cap ? d->chunks_cap : 64;
        while (cap - d->chunks_len < n)
            cap *= 2;
        d->chunks = xrealloc(d->chunks, cap);
        d->chunks_cap = cap;
    }
    if (n)
        memcpy(d->chunks + d->chunks_len, s, n);
    d->chunks_len += n;
}

static void cb_string(void *c, cbor_data s, size_t n)
{
    struct dec *d = c;
    if (!begin_item(d, I_TEXT))
        return;
    if (top(d)->type == F_TEXT)
        chunk_append(d, s, n);
    else
        text_done(d, s, n);
}

static void cb_bytes(void *c, cbor_data s, size_t n)
{
    struct dec *d = c;
    if (!begin_item(d, I_BYTES))
        return;
    if (top(d)->type == F_BYTES)
        chunk_append(d, s, n);
    else
        bytes_done(d, s, n);
}

static bool push(struct dec *d, struct frame f)
{
    if (d->depth == d->max_frames) {
        dfail(d, "nesting deeper than %zu", d->o->max_depth);
        return false;
    }
    d->stack[d->depth++] = f;
    return true;
}

static void string_start(struct dec *d, enum frame_type t)
{
    d->chunks_len = 0;
    push(d, (struct frame){.type = t, .indefinite = true});
}

static void cb_string_start(void *c)
{
    if (begin_item(c, I_TEXT_START))
        string_start(c, F_TEXT);
}

static void cb_bytes_start(void *c)
{
    if (begin_item(c, I_BYTES_START))
        string_start(c, F_BYTES);
}

/* Opens an array or map: "count" elements/pairs, or indefinite. */
static void container_start(struct dec *d, bool is_map, bool indefinite, uint64_t count)
{
    if (!begin_item(d, I_CONTAINER))
        return;
    if (d->depth == 0 && (!is_map || d->root)) {
        dfail(d, "body must be a CBOR map");
        return;
    }
    /* Only the container frames count towards max_depth; max_frames leaves
     * room for one chunked string inside the deepest container. */
    if (d->depth + 1 > d->o->max_depth) {
        dfail(d, "nesting deeper than %zu", d->o->max_depth);
        return;
    }
    /* Each element is at least one more item: reject impossible counts now. */
    if (!indefinite) {
        uint64_t left = d->o->max_items - d->items;
        if (count > left || (is_map && count > left / 2)) {
            dfail(d, "%s of %llu entries exceeds the item limit", is_map ? "map" : "array",
                  (unsigned long long)count);
            return;
        }
    }
    json_t *j = is_map ? json_object() : json_array();
    enum gw_cbor_kind kind = is_map ? GW_CBOR_PLAIN : value_kind(d);
    if (d->depth == 0) {
        if (j == NULL) {
            dfail(d, "out of memory");
            return;
        }
        d->root = j;
    } else {
        json_incref(j); /* keep our borrowed pointer valid through attach() */
        attach(d, j);
        json_decref(j);
        if (d->failed)
            return;
    }
    if (!indefinite && count == 0) {
        close_frames(d);
        return;
    }
    push(d, (struct frame){.type = is_map ? F_MAP : F_ARRAY,
                           .indefinite = indefinite,
                           .remaining = count,
                           .json = j,
                           .kind = kind});
}

static void cb_array_start(void *c, size_t n) { container_start(c, false, false, n); }
static void cb_indef_array_start(void *c) { container_start(c, false, true, 0); }
static void cb_map_start(void *c, size_t n) { container_start(c, true, false, n); }
static void cb_indef_map_start(void *c) { container_start(c, true, true, 0); }

static void cb_tag(void *c, uint64_t tag)
{
    struct dec *d = c;
    if (!begin_item(d, I_TAG))
        return;
    if (tag == SELF_DESCRIBE_TAG)
        return;
    if (tag != EPOCH_TAG) {
        dfail(d, "unsupported tag %llu", (unsigned long long)tag);
        return;
    }
    if (d->depth == 0) {
        dfail(d, "body must be a CBOR map");
        return;
    }
    d->epoch_tag = true;
}

static void simple_value(struct dec *d, json_t *v)
{
    if (!begin_item(d, I_OTHER)) {
        json_decref(v);
        return;
    }
    attach(d, v);
    close_frames(d);
}

static void cb_null(void *c) { simple_value(c, json_null()); }
static void cb_bool(void *c, bool b) { simple_value(c, json_boolean(b)); }

static void cb_undefined(void *c)
{
    struct dec *d = c;
    if (begin_item(d, I_OTHER))
        dfail(d, "undefined is not supported");
}

static void cb_break(void *c)
{
    struct dec *d = c;
    if (!begin_item(d, I_BREAK))
        return;
    struct frame *f = top(d);
    if (f == NULL || !f->indefinite) {
        dfail(d, "unexpected break");
        return;
    }
    if (f->type == F_MAP && f->key != NULL) {
        dfail(d, "map key without a value");
        return;
    }
    d->depth--;
    /* No chunk yet means no buffer: hand over a valid empty string. */
    const uint8_t *s = d->chunks_len ? d->chunks : (const uint8_t *)"";
    if (f->type == F_TEXT)
        text_done(d, s, d->chunks_len);
    else if (f->type == F_BYTES)
        bytes_done(d, s, d->chunks_len);
    else
        close_frames(d);
}

static const struct cbor_callbacks callbacks = {
    .uint8 = cb_uint8,
    .uint16 = cb_uint16,
    .uint32 = cb_uint32,
    .uint64 = cb_uint64,
    .negint8 = cb_negint8,
    .negint16 = cb_negint16,
    .negint32 = cb_negint32,
    .negint64 = cb_negint64,
    .byte_string_start = cb_bytes_start,
    .byte_string = cb_bytes,
    .string = cb_string,
    .string_start = cb_string_start,
    .indef_array_start = cb_indef_array_start,
    .array_start = cb_array_start,
    .indef_map_start = cb_indef_map_start,
    .map_start = cb_map_start,
    .tag = cb_tag,
    .float2 = cb_float,
    .float4 = cb_float,
    .float8 = cb_double,
    .undefined = cb_undefined,
    .null = cb_null,
    .boolean = cb_bool,
    .indef_break = cb_break,
};

static void resolve_opts(const struct gw_cbor_opts *in, struct gw_cbor_opts *o)
{
    *o = in ? *in : (struct gw_cbor_opts){0};
    if (o->max_depth == 0)
        o->max_depth = GW_CBOR_DEFAULT_MAX_DEPTH;
    if (o->max_depth > GW_CBOR_MAX_DEPTH_LIMIT)
        o->max_depth = GW_CBOR_MAX_DEPTH_LIMIT;
    if (o->max_items == 0)
        o->max_items = GW_CBOR_DEFAULT_MAX_ITEMS;
    if (o->max_size == 0)
        o->max_size = GW_CBOR_DEFAULT_MAX_SIZE;
}

int gw_cbor_decode(const uint8_t *buf, size_t len, const struct gw_cbor_opts *opts,
                   json_t **out, char *errbuf, size_t errlen)
{
    struct gw_cbor_opts o;
    resolve_opts(opts, &o);
    struct dec d = {.o = &o, .errbuf = errbuf, .errlen = errlen};
    *out = NULL;
    if (len > o.max_size) {
        dfail(&d, "body of %zu bytes exceeds the limit of %zu", len, o.max_size);
        return -1;
    }
    d.max_frames = o.max_depth + 1;
    d.stack = xrealloc(NULL, d.max_frames * sizeof *d.stack);

    while (!d.failed && !d.done) {
        if (d.offset == len) {
            dfail(&d, len ? "truncated body" : "empty body");
            break;
        }
        struct cbor_decoder_result r =
            cbor_stream_decode(buf + d.offset, len - d.offset, &callbacks, &d);
        if (d.failed)
            break;
        if (r.status == CBOR_DECODER_NEDATA) {
            dfail(&d, "truncated item");
            break;
        }
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0) {
            dfail(&d, "malformed item (initial byte 0x%02x)", buf[d.offset]);
            break;
        }
        d.offset += r.read;
    }
    if (!d.failed && d.offset != len)
        dfail(&d, "%zu trailing bytes after the map", len - d.offset);

    for (size_t i = 0; i < d.depth; i++)
        if (d.stack[i].type == F_MAP)
            free(d.stack[i].key);
    free(d.stack);
    free(d.chunks);
    if (d.failed) {
        json_decref(d.root);
        return -1;
    }
    *out = d.root;
    return 0;
}

/* ---- encoding ----------------------------------------------------------- */

struct enc {
    const struct gw_cbor_opts *o;
    uint8_t *buf;
    size_t len, cap;
    char *errbuf;
    size_t errlen;
};

static int efail(struct enc *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int efail(struct enc *e, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    fmt_err(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (e->errbuf && e->errlen)
        snprintf(e->errbuf, e->errlen, "CBOR encode: %s", msg);
    return -1;
}

/* Makes room for "n" more bytes. The output limit is checked by the
 * callers against what they actually write. */
static void reserve(struct enc *e, size_t n)
{
    if (e->cap - e->len >= n)
        return;
    size_t cap = e->cap ? e->cap : 256;
    while (cap - e->len < n)
        cap *= 2;
    e->buf = xrealloc(e->buf, cap);
    e->cap = cap;
}

static int over_limit(struct enc *e)
{
    return efail(e, "output exceeds %zu bytes", e->o->max_size);
}

/* Item heads are at most 9 bytes; libcbor writes them into reserved space. */
#define HEAD(e, call)                                                                        \
    do {                                                                                     \
        reserve((e), 9);                                                                     \
        size_t n_ = (call);                                                                  \
        if (n_ == 0)                                                                         \
            return efail((e), "libcbor could not encode an item head");                      \
        (e)->len += n_;                                                                      \
        if ((e)->len > (e)->o->max_size)                                                     \
            return over_limit(e);                                                            \
    } while (0)

#define OUT(e) ((e)->buf + (e)->len), ((e)->cap - (e)->len)

static int put_raw(struct enc *e, const void *p, size_t n)
{
    /* Checked before reserving, so a huge string is refused unallocated. */
    if (n > e->o->max_size - e->len)
        return over_limit(e);
    reserve(e, n);
    if (n)
        memcpy(e->buf + e->len, p, n);
    e->len += n;
    return 0;
}

static int put_int(struct enc *e, int64_t v)
{
    if (v >= 0)
        HEAD(e, cbor_encode_uint((uint64_t)v, OUT(e)));
    else
        HEAD(e, cbor_encode_negint((uint64_t)(-(v + 1)), OUT(e)));
    return 0;
}

static int put_text(struct enc *e, const char *s, size_t n)
{
    HEAD(e, cbor_encode_string_start(n, OUT(e)));
    return put_raw(e, s, n);
}

static int put_bytes(struct enc *e, const uint8_t *p, size_t n)
{
    HEAD(e, cbor_encode_bytestring_start(n, OUT(e)));
    return put_raw(e, p, n);
}

static int enc_blob(struct enc *e, const char *s, size_t n, const char *key)
{
    uint8_t *tmp = xrealloc(NULL, n / 4 * 3);
    long dn = gw_base64_decode(s, n, tmp, n / 4 * 3);
    if (dn < 0) {
        free(tmp);
        return efail(e, "member \"%s\" is not valid base64", key ? key : "");
    }
    int rc = put_bytes(e, tmp, (size_t)dn);
    free(tmp);
    return rc;
}

static int enc_timestamp(struct enc *e, const json_t *v, const char *key)
{
    const int64_t max = GW_CBOR_MAX_TIMESTAMP_MS;
    int64_t ms;
    if (json_is_integer(v)) {
        json_int_t s = json_integer_value(v);
        if (s > max / 1000 || s < -max / 1000)
            return efail(e, "timestamp \"%s\" out of range", key ? key : "");
        ms = (int64_t)s * 1000;
    } else {
        double x = json_real_value(v) * 1000.0;
        if (!(fabs(x) <= (double)max))
            return efail(e, "timestamp \"%s\" out of range", key ? key : "");
        ms = llround(x);
    }
    HEAD(e, cbor_encode_tag(EPOCH_TAG, OUT(e)));
    return put_int(e, ms);
}

static int enc_value(struct enc *e, const json_t *v, enum gw_cbor_kind kind, size_t depth,
                     const char *key)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (depth >= e->o->max_depth)
            return efail(e, "nesting deeper than %zu", e->o->max_depth);
        HEAD(e, cbor_encode_map_start(json_object_size(v), OUT(e)));
        const char *k;
        size_t klen;
        json_t *m;
        json_object_keylen_foreach((json_t *)v, k, klen, m) {
            if (put_text(e, k, klen) != 0)
                return -1;
            enum gw_cbor_kind mk = e->o->kind ? e->o->kind(e->o->kind_ctx, k, klen) : GW_CBOR_PLAIN;
            if (enc_value(e, m, mk, depth + 1, k) != 0)
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        if (depth >= e->o->max_depth)
            return efail(e, "nesting deeper than %zu", e->o->max_depth);
        size_t n = json_array_size(v);
        HEAD(e, cbor_encode_array_start(n, OUT(e)));
        for (size_t i = 0; i < n; i++)
            if (enc_value(e, json_array_get(v, i), kind, depth + 1, key) != 0)
                return -1;
        return 0;
    }
    case JSON_STRING:
        if (kind == GW_CBOR_BLOB)
            return enc_blob(e, json_string_value(v), json_string_length(v), key);
        return put_text(e, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        if (kind == GW_CBOR_TIMESTAMP)
            return enc_timestamp(e, v, key);
        return put_int(e, (int64_t)json_integer_value(v));
    case JSON_REAL:
        if (kind == GW_CBOR_TIMESTAMP)
            return enc_timestamp(e, v, key);
        HEAD(e, cbor_encode_double(json_real_value(v), OUT(e)));
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        HEAD(e, cbor_encode_bool(json_is_true(v), OUT(e)));
        return 0;
    case JSON_NULL:
        HEAD(e, cbor_encode_null(OUT(e)));
        return 0;
    }
    return efail(e, "unknown JSON type");
}

int gw_cbor_encode(const json_t *root, const struct gw_cbor_opts *opts, uint8_t **out,
                   size_t *out_len, char *errbuf, size_t errlen)
{
    struct gw_cbor_opts o;
    resolve_opts(opts, &o);
    struct enc e = {.o = &o, .errbuf = errbuf, .errlen = errlen};
    *out = NULL;
    *out_len = 0;
    if (root == NULL)
        return efail(&e, "no value");
    if (enc_value(&e, root, GW_CBOR_PLAIN, 0, NULL) != 0) {
        free(e.buf);
        return -1;
    }
    *out = e.buf ? e.buf : xrealloc(NULL, 1);
    *out_len = e.len;
    return 0;
}

/* ---- the Kinesis schema -------------------------------------------------- */

enum gw_cbor_kind gw_cbor_kinesis_kind(void *ctx, const char *key, size_t key_len)
{
    static const struct {
        const char *name;
        enum gw_cbor_kind kind;
    } members[] = {
        {"Data", GW_CBOR_BLOB},
        {"ApproximateArrivalTimestamp", GW_CBOR_TIMESTAMP},
        {"StreamCreationTimestamp", GW_CBOR_TIMESTAMP},
        {"ConsumerCreationTimestamp", GW_CBOR_TIMESTAMP},
        {"Timestamp", GW_CBOR_TIMESTAMP},
    };
    (void)ctx;
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
        if (strlen(members[i].name) == key_len && memcmp(members[i].name, key, key_len) == 0)
            return members[i].kind;
    return GW_CBOR_PLAIN;
}
