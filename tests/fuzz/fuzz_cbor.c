/* fuzz_cbor.c - libFuzzer target for gateway/cbor.c.
 *
 * Input: a CBOR request body. Invariants:
 *   - decode either succeeds with an object, or fails with a reason and no tree;
 *   - without a schema: decode -> encode -> decode gives an equal tree, and
 *     encoding that tree again gives the same bytes (the encoding is canonical);
 *   - with the Kinesis schema (blobs, timestamps): whatever the encoder
 *     accepts, the decoder accepts, and one more cycle is a fixpoint. The
 *     encoder may refuse only a blob member that is not valid base64 (a text
 *     string passed through) or an out-of-range timestamp. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbor.h"

/* Always on, unlike assert() (release builds define NDEBUG). */
#include "fuzz_check.h"

static json_t *decode(const uint8_t *p, size_t n, const struct gw_cbor_opts *o)
{
    json_t *j = (json_t *)1;
    char err[256] = "";
    int rc = gw_cbor_decode(p, n, o, &j, err, sizeof err);
    if (rc != 0) {
        CHECK(rc == -1 && j == NULL && err[0] != '\0');
        return NULL;
    }
    CHECK(json_is_object(j));
    return j;
}

static uint8_t *encode(const json_t *j, const struct gw_cbor_opts *o, size_t *n, char *err)
{
    uint8_t *out = (uint8_t *)1;
    int rc = gw_cbor_encode(j, o, &out, n, err, 256);
    CHECK((rc == 0) == (out != NULL));
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    /* Exact-size copy so over-reads trip ASan even under replay. */
    uint8_t *in = malloc(size ? size : 1);
    memcpy(in, data, size);

    static const struct gw_cbor_opts plain = {0};
    json_t *j1 = decode(in, size, &plain);
    if (j1) {
        size_t n1, n2;
        uint8_t *c1 = encode(j1, &plain, &n1, err);
        CHECK(c1 != NULL);
        json_t *j2 = decode(c1, n1, &plain);
        CHECK(j2 != NULL && json_equal(j1, j2));
        uint8_t *c2 = encode(j2, &plain, &n2, err);
        CHECK(c2 != NULL && n2 == n1 && memcmp(c1, c2, n1) == 0);
        free(c1);
        free(c2);
        json_decref(j2);
        json_decref(j1);
    }

    static const struct gw_cbor_opts kinesis = {.kind = gw_cbor_kinesis_kind};
    json_t *k1 = decode(in, size, &kinesis);
    if (k1) {
        size_t n1, n2, n3;
        uint8_t *c1 = encode(k1, &kinesis, &n1, err);
        if (c1 == NULL) {
            CHECK(strstr(err, "not valid base64") || strstr(err, "out of range"));
        } else {
            json_t *k2 = decode(c1, n1, &kinesis);
            CHECK(k2 != NULL);
            uint8_t *c2 = encode(k2, &kinesis, &n2, err);
            CHECK(c2 != NULL);
            json_t *k3 = decode(c2, n2, &kinesis);
            CHECK(k3 != NULL && json_equal(k2, k3));
            uint8_t *c3 = encode(k3, &kinesis, &n3, err);
            CHECK(c3 != NULL && n3 == n2 && memcmp(c2, c3, n2) == 0);
            free(c3);
            json_decref(k3);
            free(c2);
            json_decref(k2);
            free(c1);
        }
        json_decref(k1);
    }
    free(in);
    return 0;
}
