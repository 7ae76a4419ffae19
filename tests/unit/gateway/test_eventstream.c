/* test_eventstream.c - unit tests for gateway/eventstream.c.
 *
 * The reference is tests/vectors/eventstream (see its README): every .bin must decode
 * to its .json description, be reproduced byte for byte by the encoder (from
 * the description, and from the Kinesis builders for the messages the gateway
 * sends), and survive truncation at every offset and every single-bit flip.
 * Hand-built malformed messages (with correct CRCs, so the structural checks
 * are what trips) cover each decoder error; oversized inputs cover the
 * encoder's. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventstream.h"

#define VEC_DIR SLUICE_VECTORS_DIR "/eventstream/"

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n ? (size_t)n : 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static uint8_t *read_vec(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, VEC_DIR "%s.bin", name);
    return read_file(path, len);
}

static json_t *read_desc(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, VEC_DIR "%s.json", name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    cr_assert_not_null(j, "%s: %s", path, e.text);
    return j;
}

static size_t hex_decode(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == '-') {
            p++;
            continue;
        }
        unsigned v;
        cr_assert_eq(sscanf(p, "%2x", &v), 1);
        cr_assert_lt(n, cap);
        out[n++] = (uint8_t)v;
        p += 2;
    }
    return n;
}

static size_t b64_decode(const char *s, uint8_t *out)
{
    static const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        const char *c = strchr(a, *s);
        cr_assert_not_null(c);
        acc = acc << 6 | (uint32_t)(c - a);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n;
}

static const char *const described[] = {
    "initial-response",
    "subscribe-to-shard-event-2-records",
    "subscribe-to-shard-event-empty",
    "exception-resource-not-found",
    "exception-resource-in-use",
    "error-internal",
    "all-header-types",
    "empty-message",
};
#define N_DESCRIBED (sizeof described / sizeof described[0])

/* Builds the header array a .json description lists; strings point into
 * "desc" and "scratch" (16 bytes per header for binary/uuid values). */
static size_t headers_from_desc(json_t *desc, struct gw_es_header *hs, uint8_t (*scratch)[64])
{
    json_t *arr = json_object_get(desc, "headers");
    size_t i;
    json_t *jh;
    json_array_foreach(arr, i, jh) {
        struct gw_es_header *h = &hs[i];
        memset(h, 0, sizeof *h);
        h->name = json_string_value(json_object_get(jh, "name"));
        h->name_len = strlen(h->name);
        h->type = (enum gw_es_type)json_integer_value(json_object_get(jh, "type_id"));
        json_t *v = json_object_get(jh, "value");
        switch (h->type) {
        case GW_ES_TYPE_BOOL_TRUE:
        case GW_ES_TYPE_BOOL_FALSE:
            cr_assert_eq(json_is_true(v), h->type == GW_ES_TYPE_BOOL_TRUE);
            break;
        case GW_ES_TYPE_BYTE:
        case GW_ES_TYPE_SHORT:
        case GW_ES_TYPE_INT:
            h->v.i = json_integer_value(v);
            break;
        case GW_ES_TYPE_LONG:
            h->v.i = strtoll(json_string_value(v), NULL, 10);
            break;
        case GW_ES_TYPE_TIMESTAMP:
            h->v.i = json_integer_value(json_object_get(v, "epoch_millis"));
            break;
        case GW_ES_TYPE_BYTES:
            h->v.bytes.p = scratch[i];
            h->v.bytes.len = hex_decode(json_string_value(json_object_get(v, "hex")), scratch[i], 64);
            break;
        case GW_ES_TYPE_STRING:
            h->v.bytes.p = (const uint8_t *)json_string_value(v);
            h->v.bytes.len = json_string_length(v);
            break;
        case GW_ES_TYPE_UUID:
            cr_assert_eq(hex_decode(json_string_value(v), h->v.uuid, 16), 16);
            break;
        }
    }
    return i;
}

static void assert_header_eq(const struct gw_es_header *got, const struct gw_es_header *want)
{
    cr_assert_eq(got->name_len, want->name_len);
    cr_assert(memcmp(got->name, want->name, got->name_len) == 0);
    cr_assert_eq(got->type, want->type, "header %.*s", (int)want->name_len, want->name);
    switch (want->type) {
    case GW_ES_TYPE_BOOL_TRUE:
    case GW_ES_TYPE_BOOL_FALSE:
        break;
    case GW_ES_TYPE_BYTES:
    case GW_ES_TYPE_STRING:
        cr_assert_eq(got->v.bytes.len, want->v.bytes.len);
        cr_assert(memcmp(got->v.bytes.p, want->v.bytes.p, got->v.bytes.len) == 0);
        break;
    case GW_ES_TYPE_UUID:
        cr_assert(memcmp(got->v.uuid, want->v.uuid, 16) == 0);
        break;
    default:
        cr_assert_eq(got->v.i, want->v.i, "header %.*s: %lld != %lld", (int)want->name_len,
                     want->name, (long long)got->v.i, (long long)want->v.i);
    }
}

Test(eventstream, crc32_check_value)
{
    cr_assert_eq(gw_es_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
    /* Incremental use matches one pass. */
    uint32_t c = gw_es_crc32(0, (const uint8_t *)"1234", 4);
    cr_assert_eq(gw_es_crc32(c, (const uint8_t *)"56789", 5), 0xCBF43926u);
}

Test(eventstream, vectors_decode_to_descriptions)
{
    for (size_t k = 0; k < N_DESCRIBED; k++) {
        size_t len;
        uint8_t *bin = read_vec(described[k], &len);
        json_t *desc = read_desc(described[k]);
        char err[128];
        struct gw_es_message m;
        ssize_t n = gw_es_decode(bin, len, &m, err, sizeof err);
        cr_assert_eq(n, (ssize_t)len, "%s: %zd (%s)", described[k], n, err);
        cr_assert_eq(m.total_len, json_integer_value(json_object_get(desc, "total_length")));
        cr_assert_eq(m.headers_len, json_integer_value(json_object_get(desc, "headers_length")));
        cr_assert_eq(strtoul(json_string_value(json_object_get(desc, "prelude_crc32")), NULL, 16),
                     gw_es_crc32(0, bin, 8));
        cr_assert_eq(strtoul(json_string_value(json_object_get(desc, "message_crc32")), NULL, 16),
                     (unsigned long)bin[len - 4] << 24 | bin[len - 3] << 16 | bin[len - 2] << 8 |
                         bin[len - 1]);

        struct gw_es_header want[16];
        uint8_t scratch[16][64];
        size_t nh = headers_from_desc(desc, want, scratch);
        cr_assert_eq(m.n_headers, nh, "%s", described[k]);
        struct gw_es_header_iter it;
        struct gw_es_header got;
        gw_es_header_iter_init(&it, &m);
        for (size_t i = 0; i < nh; i++) {
            cr_assert(gw_es_header_next(&it, &got));
            assert_header_eq(&got, &want[i]);
        }
        cr_assert_not(gw_es_header_next(&it, &got));

        uint8_t payload[1024];
        size_t plen = b64_decode(json_string_value(json_object_get(desc, "payload_base64")), payload);
        cr_assert_eq(m.payload_len, plen);
        cr_assert_eq(plen, (size_t)json_integer_value(json_object_get(desc, "payload_length")));
        cr_assert(memcmp(m.payload, payload, plen) == 0);
        json_t *pj = json_object_get(desc, "payload_json");
        if (pj) {
            json_t *parsed = json_loadb((const char *)m.payload, m.payload_len, 0, NULL);
            cr_assert(json_equal(parsed, pj), "%s: payload JSON differs", described[k]);
            json_decref(parsed);
        }

        /* message_hex is the same bytes once more. */
        uint8_t hexbin[1024];
        cr_assert_eq(hex_decode(json_string_value(json_object_get(desc, "message_hex")), hexbin,
                                sizeof hexbin),
                     len);
        cr_assert(memcmp(hexbin, bin, len) == 0);
        json_decref(desc);
        free(bin);
    }
}

Test(eventstream, vectors_reencode_from_descriptions)
{
    for (size_t k = 0; k < N_DESCRIBED; k++) {
        size_t len;
        uint8_t *bin = read_vec(described[k], &len);
        json_t *desc = read_desc(described[k]);
        struct gw_es_header hs[16];
        uint8_t scratch[16][64];
        size_t nh = headers_from_desc(desc, hs, scratch);
        uint8_t payload[1024];
        size_t plen = b64_decode(json_string_value(json_object_get(desc, "payload_base64")), payload);
        char err[128];
        size_t size;
        cr_assert_eq(gw_es_message_size(hs, nh, plen, &size, err, sizeof err), 0, "%s", err);
        cr_assert_eq(size, len);
        uint8_t out[1024];
        size_t written;
        cr_assert_eq(gw_es_encode(hs, nh, payload, plen, out, size, &written, err, sizeof err), 0,
                     "%s", err);
        cr_assert_eq(written, len);
        cr_assert(memcmp(out, bin, len) == 0, "%s: bytes differ", described[k]);

        /* Reserve/fill/commit produces the same bytes. */
        memset(out, 0xAA, sizeof out);
        size_t off;
        cr_assert_eq(gw_es_encode_head(hs, nh, plen, out, size, &off, err, sizeof err), 0);
        cr_assert_eq(off, GW_ES_PRELUDE_LEN + (size_t)json_integer_value(json_object_get(desc, "headers_length")));
        memcpy(out + off, payload, plen);
        gw_es_encode_finish(out, size);
        cr_assert(memcmp(out, bin, len) == 0);
        json_decref(desc);
        free(bin);
    }
}

static void assert_bytes_eq_vec(const uint8_t *got, size_t got_len, const char *name)
{
    size_t len;
    uint8_t *bin = read_vec(name, &len);
    cr_assert_eq(got_len, len, "%s: %zu != %zu", name, got_len, len);
    cr_assert(memcmp(got, bin, len) == 0, "%s: bytes differ", name);
    free(bin);
}

static const char *payload_of(const char *name)
{
    static char buf[1024];
    json_t *desc = read_desc(name);
    snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(desc, "payload_utf8")));
    json_decref(desc);
    return buf;
}

/* Encodes one message of "hs" (a gw_es_headers_*() set) with "payload". */
static int encode_kinesis(const struct gw_es_headers *hs, const char *payload, uint8_t *out,
                          size_t cap, size_t *n)
{
    char err[128];
    return gw_es_encode(hs->h, hs->n, (const uint8_t *)payload, strlen(payload), out, cap, n, err,
                        sizeof err);
}

/* The header sets subscribe.c frames its messages with reproduce the vectors. */
Test(eventstream, kinesis_builders_reproduce_vectors)
{
    uint8_t out[1024];
    size_t n;
    char err[128];
    struct gw_es_headers hs;

    gw_es_headers_event(&hs, GW_ES_EVENT_INITIAL_RESPONSE);
    cr_assert_eq(encode_kinesis(&hs, "{}", out, sizeof out, &n), 0);
    cr_assert_eq(n, GW_ES_INITIAL_RESPONSE_LEN);
    assert_bytes_eq_vec(out, n, "initial-response");

    const char *names[] = {"subscribe-to-shard-event-2-records", "subscribe-to-shard-event-empty"};
    for (int i = 0; i < 2; i++) {
        const char *p = payload_of(names[i]);
        size_t plen = strlen(p);
        gw_es_headers_event(&hs, GW_ES_EVENT_SUBSCRIBE);
        cr_assert_eq(encode_kinesis(&hs, p, out, sizeof out, &n), 0);
        cr_assert_eq(n, plen + GW_ES_SUBSCRIBE_EVENT_OVERHEAD);
        assert_bytes_eq_vec(out, n, names[i]);
    }

    gw_es_headers_exception(&hs, "ResourceNotFoundException");
    cr_assert_eq(encode_kinesis(&hs, payload_of("exception-resource-not-found"), out, sizeof out,
                                &n),
                 0);
    assert_bytes_eq_vec(out, n, "exception-resource-not-found");
    gw_es_headers_exception(&hs, "ResourceInUseException");
    cr_assert_eq(encode_kinesis(&hs, payload_of("exception-resource-in-use"), out, sizeof out, &n),
                 0);
    assert_bytes_eq_vec(out, n, "exception-resource-in-use");

    cr_assert_eq(gw_es_encode(NULL, 0, NULL, 0, out, sizeof out, &n, err, sizeof err), 0);
    assert_bytes_eq_vec(out, n, "empty-message");

    /* The constants the pump budgets with. */
    gw_es_headers_event(&hs, GW_ES_EVENT_SUBSCRIBE);
    size_t size;
    cr_assert_eq(gw_es_message_size(hs.h, hs.n, 0, &size, err, sizeof err), 0);
    cr_assert_eq(size, GW_ES_SUBSCRIBE_EVENT_OVERHEAD);
}

Test(eventstream, stream_splits_into_messages)
{
    size_t len;
    uint8_t *bin = read_vec("stream-initial-then-event", &len);
    size_t a, b;
    free(read_vec("initial-response", &a));
    free(read_vec("subscribe-to-shard-event-2-records", &b));
    cr_assert_eq(len, a + b);

    char err[128];
    struct gw_es_message m;
    struct gw_es_header h;
    ssize_t n = gw_es_decode(bin, len, &m, err, sizeof err);
    cr_assert_eq(n, (ssize_t)a);
    cr_assert_eq(gw_es_message_find(&m, ":event-type", &h), 0);
    cr_assert_eq(h.v.bytes.len, strlen("initial-response"));
    cr_assert(memcmp(h.v.bytes.p, "initial-response", h.v.bytes.len) == 0);
    cr_assert_eq(gw_es_message_find(&m, ":no-such-header", &h), -1);
    n = gw_es_decode(bin + a, len - a, &m, err, sizeof err);
    cr_assert_eq(n, (ssize_t)b);
    cr_assert_eq(gw_es_message_find(&m, ":event-type", &h), 0);
    cr_assert(memcmp(h.v.bytes.p, "SubscribeToShardEvent", h.v.bytes.len) == 0);

    /* Fed in growing prefixes, the decoder asks for more until each message
     * is complete, and tells how much once it has seen the prelude. */
    size_t off = 0, msgs = 0;
    for (size_t have = 1; off < len; have++) {
        n = gw_es_decode(bin + off, have - off, &m, err, sizeof err);
        if (n == GW_ES_INCOMPLETE) {
            if (have - off >= GW_ES_PRELUDE_LEN)
                cr_assert_eq(m.total_len, msgs == 0 ? a : b);
            else
                cr_assert_eq(m.total_len, 0);
            continue;
        }
        cr_assert_gt(n, 0, "%s", err);
        cr_assert_eq(have - off, (size_t)n);
        off += (size_t)n;
        msgs++;
    }
    cr_assert_eq(msgs, 2);
    free(bin);
}

Test(eventstream, every_prefix_is_incomplete)
{
    for (size_t k = 0; k < N_DESCRIBED; k++) {
        size_t len;
        uint8_t *bin = read_vec(described[k], &len);
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1); /* exact size, so ASan sees over-reads */
            memcpy(copy, bin, cut);
            struct gw_es_message m;
            cr_assert_eq(gw_es_decode(copy, cut, &m, NULL, 0), GW_ES_INCOMPLETE, "%s cut %zu",
                         described[k], cut);
            free(copy);
        }
        free(bin);
    }
}

Test(eventstream, every_bit_flip_is_rejected)
{
    for (size_t k = 0; k < N_DESCRIBED; k++) {
        size_t len;
        uint8_t *bin = read_vec(described[k], &len);
        for (size_t bit = 0; bit < len * 8; bit++) {
            bin[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            struct gw_es_message m;
            char err[128] = "";
            ssize_t n = gw_es_decode(bin, len, &m, err, sizeof err);
            cr_assert_eq(n, -1, "%s bit %zu: %zd", described[k], bit, n);
            cr_assert_neq(err[0], '\0');
            bin[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        free(bin);
    }
}

/* Builds a message from a raw header block and payload with correct CRCs and
 * lengths (or the given lengths when nonzero). */
static size_t forge(uint8_t *out, const void *hdrs, size_t hlen, uint32_t total_override,
                    uint32_t hlen_override)
{
    size_t total = 16 + hlen;
    uint32_t t = total_override ? total_override : (uint32_t)total;
    uint32_t h = hlen_override ? hlen_override : (uint32_t)hlen;
    uint8_t pre[8] = {t >> 24, t >> 16, t >> 8, t, h >> 24, h >> 16, h >> 8, h};
    memcpy(out, pre, 8);
    uint32_t c = gw_es_crc32(0, out, 8);
    uint8_t cb[4] = {c >> 24, c >> 16, c >> 8, c};
    memcpy(out + 8, cb, 4);
    memcpy(out + 12, hdrs, hlen);
    c = gw_es_crc32(0, out, total - 4);
    uint8_t mb[4] = {c >> 24, c >> 16, c >> 8, c};
    memcpy(out + total - 4, mb, 4);
    return total;
}

static void expect_invalid(const uint8_t *buf, size_t len, const char *needle)
{
    struct gw_es_message m;
    char err[128] = "";
    cr_assert_eq(gw_es_decode(buf, len, &m, err, sizeof err), -1, "expected '%s'", needle);
    cr_assert_not_null(strstr(err, needle), "error '%s' lacks '%s'", err, needle);
}

Test(eventstream, malformed_headers_rejected)
{
    uint8_t buf[256];
    size_t n;
    /* The good case first: one string header "a" = "b". */
    n = forge(buf, "\x01" "a" "\x07\x00\x01" "b", 6, 0, 0);
    struct gw_es_message m;
    cr_assert_eq(gw_es_decode(buf, n, &m, NULL, 0), (ssize_t)n);
    cr_assert_eq(m.n_headers, 1);

    n = forge(buf, "\x00\x07\x00\x00", 4, 0, 0);
    expect_invalid(buf, n, "empty name");
    n = forge(buf, "\x05" "ab", 3, 0, 0);
    expect_invalid(buf, n, "name runs past");
    n = forge(buf, "\x01" "a", 2, 0, 0);
    expect_invalid(buf, n, "name runs past");
    n = forge(buf, "\x01" "a" "\x0a", 3, 0, 0);
    expect_invalid(buf, n, "unknown type 10");
    n = forge(buf, "\x01" "a" "\xff", 3, 0, 0);
    expect_invalid(buf, n, "unknown type 255");
    n = forge(buf, "\x01" "a" "\x07\x00", 4, 0, 0);
    expect_invalid(buf, n, "length runs past");
    n = forge(buf, "\x01" "a" "\x07\x00\x05" "abc", 8, 0, 0);
    expect_invalid(buf, n, "value runs past");
    n = forge(buf, "\x01" "a" "\x06\xff\xff", 5, 0, 0);
    expect_invalid(buf, n, "value runs past");
    n = forge(buf, "\x01" "a" "\x05\x00\x00\x00", 6, 0, 0);
    expect_invalid(buf, n, "long value runs past");
    n = forge(buf, "\x01" "a" "\x09" "0123456789abcde", 18, 0, 0);
    expect_invalid(buf, n, "uuid value runs past");
}

Test(eventstream, bad_lengths_rejected_from_prelude_alone)
{
    uint8_t buf[64];
    /* Only the 12-byte prelude is passed: errors must not wait for more. */
    forge(buf, "", 0, 15, 0);
    expect_invalid(buf, 12, "below the minimum");
    forge(buf, "", 0, GW_ES_MAX_MESSAGE_LEN + 1, 0);
    expect_invalid(buf, 12, "over the maximum");
    forge(buf, "", 0, 0xffffffffu, 0);
    expect_invalid(buf, 12, "over the maximum");
    forge(buf, "", 0, 1000, GW_ES_MAX_HEADERS_LEN + 1);
    expect_invalid(buf, 12, "headers length");
    forge(buf, "", 0, 20, 5);
    expect_invalid(buf, 12, "does not fit");
    forge(buf, "", 0, 16, 0xffffffffu);
    expect_invalid(buf, 12, "headers length");
    /* A valid prelude announcing the maximum is just incomplete. */
    forge(buf, "", 0, GW_ES_MAX_MESSAGE_LEN, 0);
    struct gw_es_message m;
    cr_assert_eq(gw_es_decode(buf, 12, &m, NULL, 0), GW_ES_INCOMPLETE);
    cr_assert_eq(m.total_len, GW_ES_MAX_MESSAGE_LEN);
    /* Corrupt prelude CRC. */
    forge(buf, "", 0, 0, 0);
    buf[11] ^= 1;
    expect_invalid(buf, 12, "prelude CRC");
    buf[11] ^= 1;
    buf[15] ^= 1;
    expect_invalid(buf, 16, "message CRC");
}

Test(eventstream, encoder_limits)
{
    char err[128];
    size_t size;
    static char big[70000];
    memset(big, 'x', sizeof big - 1);

    struct gw_es_header h = gw_es_header_string("n", "v");
    h.name_len = 0;
    cr_assert_eq(gw_es_message_size(&h, 1, 0, &size, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "empty name"));

    h = gw_es_header_string(big + sizeof big - 257, "v"); /* 256-byte name */
    cr_assert_eq(gw_es_message_size(&h, 1, 0, &size, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "name of 256 bytes"));
    h = gw_es_header_string(big + sizeof big - 256, "v"); /* 255 is fine */
    cr_assert_eq(gw_es_message_size(&h, 1, 0, &size, err, sizeof err), 0);
    cr_assert_eq(size, 16 + 1 + 255 + 1 + 2 + 1);

    h = gw_es_header_string("n", big + sizeof big - 65536); /* 65535 bytes */
    cr_assert_eq(gw_es_message_size(&h, 1, 0, &size, err, sizeof err), 0);
    h = gw_es_header_string("n", big + sizeof big - 65537);
    cr_assert_eq(gw_es_message_size(&h, 1, 0, &size, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "65536 bytes"));

    struct {
        enum gw_es_type t;
        int64_t ok_lo, ok_hi;
    } ranges[] = {{GW_ES_TYPE_BYTE, INT8_MIN, INT8_MAX},
                  {GW_ES_TYPE_SHORT, INT16_MIN, INT16_MAX},
                  {GW_ES_TYPE_INT, INT32_MIN, INT32_MAX}};
    for (int i = 0; i < 3; i++) {
        h = gw_es_header_int("n", ranges[i].t, ranges[i].ok_lo);
        cr_assert_eq(gw_es_message_size(&h, 1, 0, &size, err, sizeof err), 0);
        h.v.i = ranges[i].ok_hi;
        cr_assert_eq(gw_es_message_size(&h, 1, 0, &size, err, sizeof err), 0);
        h.v.i = ranges[i].ok_hi + 1;
        cr_assert_eq(gw_es_message_size(&h, 1, 0, &size, err, sizeof err), -1);
        h.v.i = ranges[i].ok_lo - 1;
        cr_assert_eq(gw_es_message_size(&h, 1, 0, &size, err, sizeof err), -1);
        cr_assert_not_null(strstr(err, "out of range"));
    }
    h = gw_es_header_int("n", (enum gw_es_type)10, 0);
    cr_assert_eq(gw_es_message_size(&h, 1, 0, &size, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "unknown type"));

    /* Header block over 128 KiB: two 65535-byte values and a bit more. */
    struct gw_es_header many[3];
    for (int i = 0; i < 3; i++)
        many[i] = gw_es_header_string("n", big + sizeof big - 65536);
    cr_assert_eq(gw_es_message_size(many, 3, 0, &size, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "header block"));

    /* Payload: exactly at the message cap is fine, one more is not. */
    cr_assert_eq(gw_es_message_size(NULL, 0, GW_ES_MAX_MESSAGE_LEN - 16, &size, err, sizeof err), 0);
    cr_assert_eq(size, GW_ES_MAX_MESSAGE_LEN);
    cr_assert_eq(gw_es_message_size(NULL, 0, GW_ES_MAX_MESSAGE_LEN - 15, &size, err, sizeof err), -1);
    cr_assert_eq(gw_es_message_size(NULL, 0, SIZE_MAX, &size, err, sizeof err), -1);

    /* Destination too small. */
    uint8_t out[32];
    size_t n;
    cr_assert_eq(gw_es_encode(NULL, 0, (const uint8_t *)"abcd", 4, out, 19, &n, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "buffer"));
    cr_assert_eq(gw_es_encode(NULL, 0, (const uint8_t *)"abcd", 4, out, 20, &n, err, sizeof err), 0);
    cr_assert_eq(n, 20);
}

Test(eventstream, every_type_round_trips_at_extremes)
{
    struct gw_es_header hs[10];
    hs[0] = gw_es_header_int("t", GW_ES_TYPE_BOOL_TRUE, 0);
    hs[1] = gw_es_header_int("f", GW_ES_TYPE_BOOL_FALSE, 0);
    hs[2] = gw_es_header_int("b", GW_ES_TYPE_BYTE, INT8_MIN);
    hs[3] = gw_es_header_int("s", GW_ES_TYPE_SHORT, INT16_MIN);
    hs[4] = gw_es_header_int("i", GW_ES_TYPE_INT, INT32_MIN);
    hs[5] = gw_es_header_int("l", GW_ES_TYPE_LONG, INT64_MIN);
    hs[6] = gw_es_header_int("ts", GW_ES_TYPE_TIMESTAMP, INT64_MAX);
    hs[7] = gw_es_header_string("str", "");
    hs[8] = gw_es_header_int("u", GW_ES_TYPE_UUID, 0);
    for (int i = 0; i < 16; i++)
        hs[8].v.uuid[i] = (uint8_t)(0xf0 + i);
    hs[9] = gw_es_header_int("bin", GW_ES_TYPE_BYTES, 0);
    hs[9].v.bytes.p = (const uint8_t *)"\x00\xff";
    hs[9].v.bytes.len = 2;
    uint8_t out[256];
    size_t n;
    char err[128];
    cr_assert_eq(gw_es_encode(hs, 10, (const uint8_t *)"\x00", 1, out, sizeof out, &n, err, sizeof err), 0);
    struct gw_es_message m;
    cr_assert_eq(gw_es_decode(out, n, &m, err, sizeof err), (ssize_t)n, "%s", err);
    cr_assert_eq(m.n_headers, 10);
    struct gw_es_header_iter it;
    struct gw_es_header got;
    gw_es_header_iter_init(&it, &m);
    for (int i = 0; i < 10; i++) {
        cr_assert(gw_es_header_next(&it, &got));
        assert_header_eq(&got, &hs[i]);
    }
    cr_assert_eq(m.payload_len, 1);
    cr_assert_eq(m.payload[0], 0);
}
