/* fuzz_base64.c - libFuzzer target for the standard base64 codec (codec.c):
 * its AVX2 loops (on CPUs that have AVX2) against its scalar code.
 *
 * The input is both a text to decode and bytes to encode. Invariants: both
 * paths accept or refuse the text alike and write the same bytes, never
 * more than the decoded length; a text either path accepts encodes back to
 * itself (one accepted text per byte string); both paths encode the input
 * bytes to the same text, which decodes back to them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#include "fuzz_check.h"

#define SLACK 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = gw_base64_decoded_len((const char *)data, size);
    uint8_t *a = malloc(cap + SLACK), *b = malloc(cap + SLACK);
    size_t tcap = gw_base64_encoded_len(size > cap ? size : cap);
    char *ta = malloc(tcap + 1), *tb = malloc(tcap + 1);
    uint8_t *back = malloc(size + 1);
    CHECK(a && b && ta && tb && back);
    memset(a, 0x5a, cap + SLACK);
    memset(b, 0x5a, cap + SLACK);

    gw_base64_set_simd(true);
    long ra = gw_base64_decode((const char *)data, size, a, cap);
    gw_base64_set_simd(false);
    long rb = gw_base64_decode((const char *)data, size, b, cap);
    CHECK(ra == rb);
    CHECK(memcmp(a, b, cap + SLACK) == 0 || ra < 0);
    for (size_t i = cap; i < cap + SLACK; i++)
        CHECK(a[i] == 0x5a && b[i] == 0x5a);
    if (ra >= 0) {
        CHECK((size_t)ra == cap);
        size_t n = gw_base64_encode_to(a, (size_t)ra, ta);
        CHECK(n == size && memcmp(ta, data, size) == 0);
    }

    gw_base64_set_simd(true);
    size_t la = gw_base64_encode_to(data, size, ta);
    gw_base64_set_simd(false);
    size_t lb = gw_base64_encode_to(data, size, tb);
    CHECK(la == lb && la == gw_base64_encoded_len(size) && memcmp(ta, tb, la) == 0);
    gw_base64_set_simd(true);
    CHECK(gw_base64_decode(ta, la, back, size) == (long)size);
    CHECK(memcmp(back, data, size) == 0);

    free(a);
    free(b);
    free(ta);
    free(tb);
    free(back);
    return 0;
}
