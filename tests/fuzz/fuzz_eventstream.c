/* fuzz_eventstream.c - libFuzzer target for gateway/eventstream.c decoding.
 *
 * The first input byte picks a mode; the rest is the byte stream:
 *   mode & 1 == 0  decoded as is (a response body: messages back to back);
 *   mode & 1 == 1  first given correct CRCs, and with mode & 2 a total length
 *                  equal to the input size, so the fuzzer reaches the header
 *                  parser instead of stopping at the CRC checks.
 * Invariants asserted for every message decoded:
 *   - consumed is >= 16 and <= the bytes offered; INCOMPLETE only when fewer
 *     bytes than the announced total length are there; errors have a reason;
 *   - the header iterator yields exactly n_headers headers;
 *   - encode(decode(m)) reproduces m byte for byte, and decodes to the same
 *     headers and payload;
 *   - every proper prefix of a decoded message is INCOMPLETE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventstream.h"

/* Always on, unlike assert() (release builds define NDEBUG). */
#include "fuzz_check.h"

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void check_message(const uint8_t *src, size_t n, const struct gw_es_message *m)
{
    CHECK(m->total_len == n);
    CHECK(m->payload_len == n - 16 - m->headers_len);
    CHECK(m->payload == src + 12 + m->headers_len);

    /* Each header takes at least 3 bytes. */
    struct gw_es_header *hs = malloc((m->n_headers ? m->n_headers : 1) * sizeof *hs);
    struct gw_es_header_iter it;
    size_t k = 0;
    gw_es_header_iter_init(&it, m);
    while (gw_es_header_next(&it, &hs[k])) {
        CHECK(k < m->n_headers);
        CHECK(hs[k].name_len >= 1 && hs[k].name >= (const char *)src &&
               hs[k].name + hs[k].name_len <= (const char *)src + n);
        k++;
    }
    CHECK(k == m->n_headers);

    char err[128];
    size_t size = 0;
    int rc = gw_es_message_size(hs, k, m->payload_len, &size, err, sizeof err);
    CHECK(rc == 0);
    CHECK(size == n);
    uint8_t *out = malloc(size);
    size_t written = 0;
    rc = gw_es_encode(hs, k, m->payload, m->payload_len, out, size, &written, err, sizeof err);
    CHECK(rc == 0 && written == n);
    CHECK(memcmp(out, src, n) == 0);

    struct gw_es_message m2;
    CHECK(gw_es_decode(out, size, &m2, err, sizeof err) == (ssize_t)n);
    CHECK(m2.n_headers == m->n_headers && m2.payload_len == m->payload_len);
    CHECK(memcmp(m2.payload, m->payload, m->payload_len) == 0);
    free(out);
    free(hs);

    /* Prefixes: all of them for small messages, a few for big ones. */
    for (size_t cut = 0; cut < n; cut += n < 512 ? 1 : n / 64 + 1) {
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, src, cut);
        CHECK(gw_es_decode(p, cut, &m2, NULL, 0) == GW_ES_INCOMPLETE);
        free(p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    size_t len = size - 1;
    /* An exact-size copy, so reads past the end trip ASan. */
    uint8_t *buf = malloc(len ? len : 1);
    memcpy(buf, data + 1, len);
    if ((mode & 1) && len >= 12) {
        if (mode & 2)
            put_be32(buf, (uint32_t)len);
        put_be32(buf + 8, gw_es_crc32(0, buf, 8));
        uint32_t total = get_be32(buf);
        if (total >= 16 && total <= len)
            put_be32(buf + total - 4, gw_es_crc32(0, buf, total - 4));
    }

    size_t off = 0;
    while (off < len) {
        struct gw_es_message m;
        char err[128] = "";
        ssize_t n = gw_es_decode(buf + off, len - off, &m, err, sizeof err);
        if (n == GW_ES_INCOMPLETE) {
            CHECK(m.total_len == 0 ? len - off < 12
                                    : (m.total_len > len - off && m.total_len >= 16 &&
                                       m.total_len <= GW_ES_MAX_MESSAGE_LEN));
            break;
        }
        if (n < 0) {
            CHECK(n == -1 && err[0] != '\0');
            break;
        }
        CHECK(n >= 16 && (size_t)n <= len - off);
        check_message(buf + off, (size_t)n, &m);
        off += (size_t)n;
    }
    free(buf);
    return 0;
}
