/* eventstream.c - application/vnd.amazon.eventstream encode/decode (pure).
 *
 * Owns the byte layout of event-stream messages (docs/protocol.md §2).
 * On the data path subscribe.c calls the encoder once per SubscribeToShard
 * message (initial-response, SubscribeToShardEvent, exception): it sizes the
 * message, has the prelude and headers written into a buffer of exactly that
 * size, writes its JSON payload after them and has the CRC appended; h2.c
 * then carries the bytes as DATA frames. The decoder serves the C test
 * client and the fuzz target. Invariants: no allocation, no I/O, no state;
 * the encoder only produces messages the decoder accepts, and
 * encode(decode(m)) == m byte for byte (the format has no optional parts).
 *
 * One message, all integers big-endian:
 *
 *   0               4               8              12
 *   +---------------+---------------+---------------+
 *   | total_length  | headers_length|  prelude_crc  |   prelude: CRC32 of bytes 0..7
 *   +---------------+---------------+---------------+
 *   | headers (headers_length bytes) ...            |
 *   +-----------------------------------------------+
 *   | payload (total - headers_length - 16 bytes)   |
 *   +---------------+-------------------------------+
 *   |  message_crc  |   CRC32 of bytes 0..total-5 (prelude and its CRC included)
 *   +---------------+
 *
 * One header:
 *
 *   +----------+----------------+------+------------------------------+
 *   | name_len | name           | type | value                        |
 *   |  uint8   | name_len bytes | u8   | by type (below)              |
 *   +----------+----------------+------+------------------------------+
 *
 *   type 0 true, 1 false: no value      type 6 bytes, 7 string: uint16 len + bytes
 *   type 2 int8, 3 int16, 4 int32       type 8 timestamp: int64 ms since epoch
 *   type 5 int64                        type 9 uuid: 16 bytes
 *
 * CRC32 is the IEEE one (reflected, init/final 0xffffffff), zlib's crc32();
 * libdeflate computes it (with PCLMUL/AVX where the CPU has them: 11.5 GB/s
 * against zlib 1.2.13's 3.9 GB/s here), once per framed event.
 */
#include "eventstream.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <libdeflate.h>

/* ---- low-level helpers -------------------------------------------------- */

static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static uint8_t *put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return p + n;
}

uint32_t gw_es_crc32(uint32_t crc, const uint8_t *p, size_t len)
{
    return libdeflate_crc32(crc, p, len);
}

/* Size of a fixed-size value of type "t", or -1 for variable/unknown types. */
static int fixed_value_len(unsigned t)
{
    static const int8_t len[] = {0, 0, 1, 2, 4, 8, -1, -1, 8, 16};
    return t < sizeof len ? len[t] : -1;
}

static const char *type_name(unsigned t)
{
    static const char *const names[] = {"true",  "false",  "byte",      "short", "integer",
                                        "long",  "bytes",  "string",    "timestamp", "uuid"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* ---- encoding ----------------------------------------------------------- */

/* Validates header "h" (index "i" for messages) and returns its encoded size
 * in "*size". */
static int header_size(const struct gw_es_header *h, size_t i, size_t *size, char *errbuf,
                       size_t errlen)
{
    if (h->name_len == 0 || h->name == NULL)
        return fail(errbuf, errlen, "header %zu: empty name", i);
    if (h->name_len > GW_ES_MAX_HEADER_NAME_LEN)
        return fail(errbuf, errlen, "header %zu: name of %zu bytes (max %d)", i, h->name_len,
                    GW_ES_MAX_HEADER_NAME_LEN);
    size_t n = 1 + h->name_len + 1;
    int64_t lo = 0, hi = 0;
    switch (h->type) {
    case GW_ES_TYPE_BOOL_TRUE:
    case GW_ES_TYPE_BOOL_FALSE:
    case GW_ES_TYPE_UUID:
    case GW_ES_TYPE_LONG:
    case GW_ES_TYPE_TIMESTAMP:
        break;
    case GW_ES_TYPE_BYTE:
        lo = INT8_MIN, hi = INT8_MAX;
        break;
    case GW_ES_TYPE_SHORT:
        lo = INT16_MIN, hi = INT16_MAX;
        break;
    case GW_ES_TYPE_INT:
        lo = INT32_MIN, hi = INT32_MAX;
        break;
    case GW_ES_TYPE_BYTES:
    case GW_ES_TYPE_STRING:
        if (h->v.bytes.len > GW_ES_MAX_HEADER_VALUE_LEN)
            return fail(errbuf, errlen, "header %zu: %s value of %zu bytes (max %d)", i,
                        type_name(h->type), h->v.bytes.len, GW_ES_MAX_HEADER_VALUE_LEN);
        if (h->v.bytes.len > 0 && h->v.bytes.p == NULL)
            return fail(errbuf, errlen, "header %zu: NULL value", i);
        *size = n + 2 + h->v.bytes.len;
        return 0;
    default:
        return fail(errbuf, errlen, "header %zu: unknown type %d", i, (int)h->type);
    }
    if (lo != hi && (h->v.i < lo || h->v.i > hi))
        return fail(errbuf, errlen, "header %zu: %s value %lld out of range", i,
                    type_name(h->type), (long long)h->v.i);
    *size = n + (size_t)fixed_value_len(h->type);
    return 0;
}

int gw_es_message_size(const struct gw_es_header *headers, size_t n_headers,
                       size_t payload_len, size_t *size, char *errbuf, size_t errlen)
{
    size_t hlen = 0;
    for (size_t i = 0; i < n_headers; i++) {
        size_t one = 0;
        if (header_size(&headers[i], i, &one, errbuf, errlen) != 0)
            return -1;
        hlen += one;
        /* Checked per header so the sum cannot overflow. */
        if (hlen > GW_ES_MAX_HEADERS_LEN)
            return fail(errbuf, errlen, "header block over %u bytes", GW_ES_MAX_HEADERS_LEN);
    }
    if (payload_len > GW_ES_MAX_MESSAGE_LEN - GW_ES_MIN_MESSAGE_LEN - hlen)
        return fail(errbuf, errlen, "message over %u bytes (payload %zu, headers %zu)",
                    GW_ES_MAX_MESSAGE_LEN, payload_len, hlen);
    *size = GW_ES_MIN_MESSAGE_LEN + hlen + payload_len;
    return 0;
}

static uint8_t *put_header(uint8_t *p, const struct gw_es_header *h)
{
    *p++ = (uint8_t)h->name_len;
    memcpy(p, h->name, h->name_len);
    p += h->name_len;
    *p++ = (uint8_t)h->type;
    switch (h->type) {
    case GW_ES_TYPE_BYTES:
    case GW_ES_TYPE_STRING:
        p = put_be(p, h->v.bytes.len, 2);
        if (h->v.bytes.len)
            memcpy(p, h->v.bytes.p, h->v.bytes.len);
        return p + h->v.bytes.len;
    case GW_ES_TYPE_UUID:
        memcpy(p, h->v.uuid, 16);
        return p + 16;
    default:
        /* Two's complement truncation to the type's width; range was checked. */
        return put_be(p, (uint64_t)h->v.i, (size_t)fixed_value_len(h->type));
    }
}

int gw_es_encode_head(const struct gw_es_header *headers, size_t n_headers,
                      size_t payload_len, uint8_t *dst, size_t dstlen,
                      size_t *payload_off, char *errbuf, size_t errlen)
{
    size_t total;
    if (gw_es_message_size(headers, n_headers, payload_len, &total, errbuf, errlen) != 0)
        return -1;
    if (dstlen < total)
        return fail(errbuf, errlen, "buffer of %zu bytes for a %zu-byte message", dstlen, total);
    size_t hlen = total - payload_len - GW_ES_MIN_MESSAGE_LEN;
    uint8_t *p = put_be(dst, total, 4);
    p = put_be(p, hlen, 4);
    p = put_be(p, gw_es_crc32(0, dst, 8), 4);
    for (size_t i = 0; i < n_headers; i++)
        p = put_header(p, &headers[i]);
    *payload_off = (size_t)(p - dst);
    return 0;
}

void gw_es_encode_finish(uint8_t *dst, size_t size)
{
    put_be(dst + size - 4, gw_es_crc32(0, dst, size - 4), 4);
}

int gw_es_encode(const struct gw_es_header *headers, size_t n_headers,
                 const uint8_t *payload, size_t payload_len, uint8_t *dst,
                 size_t dstlen, size_t *written, char *errbuf, size_t errlen)
{
    size_t off;
    if (gw_es_encode_head(headers, n_headers, payload_len, dst, dstlen, &off, errbuf,
                          errlen) != 0)
        return -1;
    if (payload_len)
        memcpy(dst + off, payload, payload_len);
    *written = off + payload_len + 4;
    gw_es_encode_finish(dst, *written);
    return 0;
}

struct gw_es_header gw_es_header_string(const char *name, const char *value)
{
    struct gw_es_header h = {.name = name, .name_len = strlen(name), .type = GW_ES_TYPE_STRING};
    h.v.bytes.p = (const uint8_t *)value;
    h.v.bytes.len = strlen(value);
    return h;
}

struct gw_es_header gw_es_header_int(const char *name, enum gw_es_type type, int64_t value)
{
    struct gw_es_header h = {.name = name, .name_len = strlen(name), .type = type};
    h.v.i = value;
    return h;
}

/* ---- Kinesis messages --------------------------------------------------- */

void gw_es_headers_event(struct gw_es_headers *hs, const char *event_type)
{
    hs->h[0] = gw_es_header_string(":message-type", "event");
    hs->h[1] = gw_es_header_string(":event-type", event_type);
    hs->h[2] = gw_es_header_string(":content-type", "application/json");
    hs->n = 3;
}

void gw_es_headers_exception(struct gw_es_headers *hs, const char *exception_type)
{
    hs->h[0] = gw_es_header_string(":message-type", "exception");
    hs->h[1] = gw_es_header_string(":exception-type", exception_type);
    hs->h[2] = gw_es_header_string(":content-type", "application/json");
    hs->n = 3;
}


/* ---- decoding ----------------------------------------------------------- */

/* Parses one header at "*pp" (not past "end") into "*h" and advances "*pp".
 * Returns 0 or -1 with a reason; "i" is the header's index for messages. */
static int parse_header(const uint8_t **pp, const uint8_t *end, size_t i,
                        struct gw_es_header *h, char *errbuf, size_t errlen)
{
    const uint8_t *p = *pp;
    size_t name_len = *p++;
    if (name_len == 0)
        return fail(errbuf, errlen, "header %zu: empty name", i);
    /* name + type byte */
    if ((size_t)(end - p) < name_len + 1)
        return fail(errbuf, errlen, "header %zu: name runs past the header block", i);
    h->name = (const char *)p;
    h->name_len = name_len;
    p += name_len;
    unsigned type = *p++;
    h->type = (enum gw_es_type)type;
    if (type == GW_ES_TYPE_BYTES || type == GW_ES_TYPE_STRING) {
        if (end - p < 2)
            return fail(errbuf, errlen, "header %zu: %s length runs past the header block", i,
                        type_name(type));
        size_t vlen = (size_t)p[0] << 8 | p[1];
        p += 2;
        if ((size_t)(end - p) < vlen)
            return fail(errbuf, errlen, "header %zu: %s value runs past the header block", i,
                        type_name(type));
        h->v.bytes.p = p;
        h->v.bytes.len = vlen;
        p += vlen;
    } else {
        int n = fixed_value_len(type);
        if (n < 0)
            return fail(errbuf, errlen, "header %zu: unknown type %u", i, type);
        if (end - p < n)
            return fail(errbuf, errlen, "header %zu: %s value runs past the header block", i,
                        type_name(type));
        switch (type) {
        case GW_ES_TYPE_BYTE:
            h->v.i = (int8_t)p[0];
            break;
        case GW_ES_TYPE_SHORT:
            h->v.i = (int16_t)(uint16_t)((unsigned)p[0] << 8 | p[1]);
            break;
        case GW_ES_TYPE_INT:
            h->v.i = (int32_t)get_be32(p);
            break;
        case GW_ES_TYPE_LONG:
        case GW_ES_TYPE_TIMESTAMP:
            h->v.i = (int64_t)get_be64(p);
            break;
        case GW_ES_TYPE_UUID:
            memcpy(h->v.uuid, p, 16);
            break;
        default: /* booleans */
            h->v.i = type == GW_ES_TYPE_BOOL_TRUE;
            break;
        }
        p += n;
    }
    *pp = p;
    return 0;
}

ssize_t gw_es_decode(const uint8_t *src, size_t len, struct gw_es_message *msg,
                     char *errbuf, size_t errlen)
{
    memset(msg, 0, sizeof *msg);
    if (len < GW_ES_PRELUDE_LEN)
        return GW_ES_INCOMPLETE;
    uint32_t total = get_be32(src);
    uint32_t hlen = get_be32(src + 4);
    uint32_t pcrc = get_be32(src + 8);
    uint32_t crc = gw_es_crc32(0, src, 8);
    if (crc != pcrc)
        return fail(errbuf, errlen, "prelude CRC mismatch (got 0x%08x, computed 0x%08x)", pcrc,
                    crc);
    if (total < GW_ES_MIN_MESSAGE_LEN)
        return fail(errbuf, errlen, "total length %u below the minimum of %d", total,
                    GW_ES_MIN_MESSAGE_LEN);
    if (total > GW_ES_MAX_MESSAGE_LEN)
        return fail(errbuf, errlen, "total length %u over the maximum of %u", total,
                    GW_ES_MAX_MESSAGE_LEN);
    if (hlen > GW_ES_MAX_HEADERS_LEN)
        return fail(errbuf, errlen, "headers length %u over the maximum of %u", hlen,
                    GW_ES_MAX_HEADERS_LEN);
    if (hlen > total - GW_ES_MIN_MESSAGE_LEN)
        return fail(errbuf, errlen, "headers length %u does not fit in total length %u", hlen,
                    total);
    msg->total_len = total;
    if (len < total)
        return GW_ES_INCOMPLETE;

    uint32_t mcrc = get_be32(src + total - 4);
    crc = gw_es_crc32(0, src, total - 4);
    if (crc != mcrc)
        return fail(errbuf, errlen, "message CRC mismatch (got 0x%08x, computed 0x%08x)", mcrc,
                    crc);

    const uint8_t *p = src + GW_ES_PRELUDE_LEN, *end = p + hlen;
    size_t n = 0;
    while (p < end) {
        struct gw_es_header h;
        if (parse_header(&p, end, n, &h, errbuf, errlen) != 0)
            return -1;
        n++;
    }
    msg->headers_len = hlen;
    msg->headers = src + GW_ES_PRELUDE_LEN;
    msg->n_headers = n;
    msg->payload = end;
    msg->payload_len = total - hlen - GW_ES_MIN_MESSAGE_LEN;
    return (ssize_t)total;
}

void gw_es_header_iter_init(struct gw_es_header_iter *it, const struct gw_es_message *msg)
{
    it->_p = msg->headers;
    it->_end = msg->headers ? msg->headers + msg->headers_len : NULL;
}

int gw_es_header_next(struct gw_es_header_iter *it, struct gw_es_header *h)
{
    if (it->_p == NULL || it->_p >= it->_end)
        return 0;
    /* The block was validated by gw_es_decode(); a failure here means the
     * caller built the iterator from something else, so just stop. */
    if (parse_header(&it->_p, it->_end, 0, h, NULL, 0) != 0) {
        it->_p = it->_end;
        return 0;
    }
    return 1;
}

int gw_es_message_find(const struct gw_es_message *msg, const char *name,
                       struct gw_es_header *h)
{
    size_t len = strlen(name);
    struct gw_es_header_iter it;
    gw_es_header_iter_init(&it, msg);
    while (gw_es_header_next(&it, h))
        if (h->name_len == len && memcmp(h->name, name, len) == 0)
            return 0;
    return -1;
}
