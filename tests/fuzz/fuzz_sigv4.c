/* fuzz_sigv4.c - the SigV4 verifier's parsing and canonicalisation on
 * hostile input: an Authorization header, a path, a query and header values,
 * separated by NUL bytes in the input.
 *
 * Invariants: nothing crashes or reads out of bounds; a header that parses
 * has a 64-hex-digit signature and an 8-digit date; the canonical request is
 * deterministic, and it ends with the signed-header list and the payload
 * hash; signing it twice gives the same signature, which verifies against
 * itself and not against a changed one. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "sigv4.h"

struct hdrs {
    const char *v[4];
};

static const char *hdr(void *ctx, const char *name)
{
    struct hdrs *h = ctx;
    if (strcmp(name, "host") == 0 || strcmp(name, ":authority") == 0) return h->v[0];
    if (strcmp(name, "x-amz-date") == 0) return h->v[1];
    if (strcmp(name, "x-amz-target") == 0) return h->v[2];
    if (strcmp(name, "content-type") == 0) return h->v[3];
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    /* Up to 7 NUL-separated fields, NUL-terminated copies. */
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *f[7] = {"", "/", "", "h", "20150830T123600Z", "K.Op", "application/json"};
    size_t nf = 0;
    for (char *p = buf; nf < 7 && p <= buf + size; nf++) {
        f[nf] = p;
        p += strlen(p) + 1;
    }
    struct gw_sigv4_auth a;
    char why[200];
    int parsed = gw_sigv4_parse(f[0], &a, why, sizeof why);
    if (parsed == 0) {
        CHECK(strlen(a.signature) == 64);
        CHECK(strlen(a.date) == 8);
    } else {
        snprintf(a.signed_headers, sizeof a.signed_headers, "content-type;host;x-amz-date");
        snprintf(a.date, sizeof a.date, "20150830");
        snprintf(a.region, sizeof a.region, "us-east-1");
        snprintf(a.service, sizeof a.service, "kinesis");
    }
    struct hdrs h = {{f[3], f[4], f[5], f[6]}};
    char *c1 = gw_sigv4_canonical_request("POST", f[1], f[2], size & 1, a.signed_headers, hdr, &h,
                                          "e3b0c442", why, sizeof why);
    char *c2 = gw_sigv4_canonical_request("POST", f[1], f[2], size & 1, a.signed_headers, hdr, &h,
                                          "e3b0c442", why, sizeof why);
    CHECK((c1 == NULL) == (c2 == NULL));
    if (c1) {
        CHECK(strcmp(c1, c2) == 0);
        size_t n = strlen(c1), tail = strlen(a.signed_headers) + 1 + 8;
        CHECK(n > tail && strcmp(c1 + n - 8, "e3b0c442") == 0);
        char *sts = gw_sigv4_string_to_sign(f[4], &a, c1);
        uint8_t key[32];
        gw_sigv4_signing_key("secret", a.date, a.region, a.service, key);
        char s1[65], s2[65];
        gw_sigv4_sign(key, sts, s1);
        gw_sigv4_sign(key, sts, s2);
        CHECK(gw_sigv4_equal(s1, s2));
        s2[0] = s2[0] == '0' ? '1' : '0';
        CHECK(!gw_sigv4_equal(s1, s2));
        free(sts);
    }
    free(c1);
    free(c2);
    free(buf);
    return 0;
}
