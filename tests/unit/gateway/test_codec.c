/* test_codec.c - the gateway's one base64 / base64url / UTF-8 module: RFC 4648
 * vectors, every class of malformed text refused, round trips against a
 * bit-at-a-time reference, and the UTF-8 classes of Markus Kuhn's decoder
 * stress test. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

/* ---- references: one bit at a time, obviously right, slow ---------------------- */

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t ref_encode(const char *alpha, bool pad, const uint8_t *src, size_t n, char *dst)
{
    size_t o = 0, bits = n * 8;
    for (size_t b = 0; b < bits; b += 6) {
        unsigned v = 0;
        for (size_t k = 0; k < 6; k++) {
            size_t bit = b + k;
            unsigned x = bit < bits ? (src[bit / 8] >> (7 - bit % 8)) & 1 : 0;
            v = v << 1 | x;
        }
        dst[o++] = alpha[v];
    }
    while (pad && o % 4)
        dst[o++] = '=';
    return o;
}

static uint8_t rnd_byte(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (uint8_t)(*seed >> 16);
}

/* ---- base64: RFC 4648 section 10 ------------------------------------------------ */

static const struct {
    const char *plain, *b64;
} rfc[] = {
    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

Test(base64, rfc4648_vectors)
{
    for (size_t i = 0; i < sizeof rfc / sizeof rfc[0]; i++) {
        size_t pl = strlen(rfc[i].plain), bl = strlen(rfc[i].b64);
        char enc[16];
        cr_assert_eq(gw_base64_encoded_len(pl), bl);
        cr_assert_eq(gw_base64_encode_to((const uint8_t *)rfc[i].plain, pl, enc), bl);
        cr_expect_eq(memcmp(enc, rfc[i].b64, bl), 0, "encode %s", rfc[i].plain);
        size_t ml;
        char *m = gw_base64_encode((const uint8_t *)rfc[i].plain, pl, &ml);
        cr_expect_str_eq(m, rfc[i].b64);
        cr_expect_eq(ml, bl);
        free(m);
        uint8_t dec[16];
        cr_assert_eq(gw_base64_decoded_len(rfc[i].b64, bl), pl);
        cr_expect_eq(gw_base64_decode(rfc[i].b64, bl, dec, pl), (long)pl, "decode %s",
                     rfc[i].b64);
        cr_expect_eq(memcmp(dec, rfc[i].plain, pl), 0);
    }
}

Test(base64, every_byte_value_and_whole_alphabet)
{
    uint8_t all[256 * 3];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (uint8_t)(i / 3 ^ i);
    char enc[1024], ref[1024];
    size_t n = gw_base64_encode_to(all, sizeof all, enc);
    cr_assert_eq(ref_encode(std_alpha, true, all, sizeof all, ref), n);
    cr_assert_eq(memcmp(enc, ref, n), 0);
    /* Every alphabet character decodes to its value. */
    char text[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t out[48];
    cr_assert_eq(gw_base64_decode(text, 64, out, sizeof out), 48);
    char back[64];
    gw_base64_encode_to(out, 48, back);
    cr_expect_eq(memcmp(back, text, 64), 0);
}

/* ---- base64: every class of malformed text ------------------------------------- */

static long dec(const char *s, size_t n)
{
    uint8_t out[64];
    return gw_base64_decode(s, n, out, sizeof out);
}
#define DEC(lit) dec(lit, sizeof lit - 1)

Test(base64, refuses_bad_characters)
{
    cr_expect_eq(DEC("Zm9*"), -1);
    cr_expect_eq(DEC("Zm9-"), -1, "URL alphabet");
    cr_expect_eq(DEC("Zm9_"), -1, "URL alphabet");
    cr_expect_eq(DEC("\xc3\xa9m9v"), -1, "non-ASCII");
    cr_expect_eq(DEC("Zm9v\xffm9v"), -1, "bad byte in the 8-character block loop");
    cr_expect_eq(DEC("Zm9vZm9vZm9\x80"), -1);
    /* A bad character at every position of a 16-character text, so each
     * table and each loop (two groups at a time, one, the last) sees one. */
    for (size_t i = 0; i < 16; i++) {
        char t[] = "Zm9vYmFyZm9vYmFy";
        t[i] = '.';
        cr_expect_eq(dec(t, 16), -1, "bad character at %zu", i);
    }
}

Test(base64, refuses_bad_padding)
{
    cr_expect_eq(DEC("Zg="), -1);
    cr_expect_eq(DEC("Zg"), -1, "unpadded");
    cr_expect_eq(DEC("Z==="), -1);
    cr_expect_eq(DEC("===="), -1);
    cr_expect_eq(DEC("Zm=v"), -1, "pad before a digit");
    cr_expect_eq(DEC("Z=9v"), -1);
    cr_expect_eq(DEC("Zg==Zm9v"), -1, "padding inside the text");
    cr_expect_eq(DEC("Zm8=Zm9v"), -1);
    cr_expect_eq(DEC("Zm9vZg==Zm9vZm9v"), -1, "padding inside the block loop");
    cr_expect_eq(DEC("Zg==="), -1);
    cr_expect_eq(DEC("Zm9vYg=\0"), -1);
}

Test(base64, refuses_non_canonical_pad_bits)
{
    /* "Zg==" is 'f'; "Zh==" .. "Zv==" set bits that padding drops. */
    cr_expect_eq(DEC("Zg=="), 1);
    for (const char *c = "hijklmnopqrstuv"; *c; c++) {
        char t[] = "Zg==";
        t[1] = *c;
        cr_expect_eq(dec(t, 4), -1, "Z%c==", *c);
    }
    cr_expect_eq(DEC("Zm8="), 2);
    cr_expect_eq(DEC("Zm9="), -1);
    cr_expect_eq(DEC("Zm+="), -1);
    cr_expect_eq(DEC("Zm9vZm9vZm9="), -1, "after full groups");
}

Test(base64, refuses_lengths_not_a_multiple_of_4)
{
    for (size_t n = 1; n <= 15; n++) {
        if (n % 4 == 0)
            continue;
        cr_expect_eq(dec("Zm9vYmFyZm9vYmFy", n), -1, "length %zu", n);
    }
}

Test(base64, refuses_embedded_nul_and_whitespace)
{
    cr_expect_eq(DEC("Zm\0v"), -1);
    cr_expect_eq(DEC("Zm9vYmFy\0m9v"), -1);
    cr_expect_eq(DEC("Zm9v Zm8"), -1);
    cr_expect_eq(DEC("Zm9v\nZm8"), -1);
    cr_expect_eq(DEC("Zm9v\r\nZm9"), -1);
    cr_expect_eq(DEC(" Zm9v   "), -1);
    cr_expect_eq(DEC("Zm9\t"), -1);
}

Test(base64, respects_cap_and_writes_nothing_past_the_decoded_length)
{
    uint8_t out[16];
    memset(out, 0xAA, sizeof out);
    cr_expect_eq(gw_base64_decode("Zm9vYmFy", 8, out, 5), -1, "6 bytes into 5");
    cr_expect_eq(gw_base64_decode("Zm9vYmE=", 8, out, 5), 5);
    cr_expect_eq(memcmp(out, "fooba", 5), 0);
    for (size_t i = 5; i < sizeof out; i++)
        cr_expect_eq(out[i], 0xAA, "byte %zu written", i);
    /* 16 characters through the two-groups-at-a-time loop: exactly 12 bytes. */
    memset(out, 0xAA, sizeof out);
    cr_expect_eq(gw_base64_decode("Zm9vYmFyZm9vYmFy", 16, out, 12), 12);
    for (size_t i = 12; i < sizeof out; i++)
        cr_expect_eq(out[i], 0xAA, "byte %zu written", i);
    cr_expect_eq(gw_base64_decode("", 0, NULL, 0), 0);
    /* Every length through every loop and every padding: the wide stores of
     * the block loops must never reach past the decoded length. */
    for (size_t n = 0; n <= 64; n++) {
        uint8_t src[64], dst[80];
        char t[100];
        for (size_t i = 0; i < n; i++)
            src[i] = (uint8_t)(i * 29 + n);
        size_t tl = gw_base64_encode_to(src, n, t);
        memset(dst, 0xAA, sizeof dst);
        cr_assert_eq(gw_base64_decode(t, tl, dst, n), (long)n, "length %zu", n);
        for (size_t i = n; i < sizeof dst; i++)
            cr_assert_eq(dst[i], 0xAA, "length %zu: byte %zu written", n, i);
    }
}

Test(base64, random_round_trips_against_reference)
{
    unsigned seed = 12345;
    uint8_t *src = malloc(1000), *back = malloc(1000);
    char *enc = malloc(1400), *ref = malloc(1400);
    for (size_t n = 0; n <= 1000; n++) {
        for (size_t i = 0; i < n; i++)
            src[i] = rnd_byte(&seed);
        size_t el = gw_base64_encode_to(src, n, enc);
        cr_assert_eq(el, gw_base64_encoded_len(n));
        cr_assert_eq(ref_encode(std_alpha, true, src, n, ref), el, "length %zu", n);
        cr_assert_eq(memcmp(enc, ref, el), 0, "encoding of %zu bytes", n);
        cr_assert_eq(gw_base64_decoded_len(enc, el), n);
        cr_assert_eq(gw_base64_decode(enc, el, back, n), (long)n, "decode of %zu bytes", n);
        cr_assert_eq(memcmp(back, src, n), 0);
        if (n)
            cr_assert_eq(gw_base64_decode(enc, el, back, n - 1), -1, "cap %zu", n - 1);

        size_t ul = gw_base64url_encode_to(src, n, enc);
        cr_assert_eq(ul, gw_base64url_encoded_len(n));
        cr_assert_eq(ref_encode(url_alpha, false, src, n, ref), ul, "url length %zu", n);
        cr_assert_eq(memcmp(enc, ref, ul), 0, "url encoding of %zu bytes", n);
        cr_assert_eq(gw_base64url_decode(enc, ul, back, n), (long)n);
        cr_assert_eq(memcmp(back, src, n), 0);
    }
    free(src);
    free(back);
    free(enc);
    free(ref);
}

/* The AVX2 loops (taken on CPUs that have AVX2) against the scalar code:
 * same text for every length, and the same answer, to the byte, for every
 * byte value at every position of texts long enough to go through the
 * vector loop, padding included. */
static long dec_with(bool simd, const char *t, size_t n, uint8_t *out, size_t cap)
{
    gw_base64_set_simd(simd);
    long r = gw_base64_decode(t, n, out, cap);
    gw_base64_set_simd(true);
    return r;
}

Test(base64, vector_and_scalar_code_agree)
{
    gw_base64_set_simd(true);
    if (!gw_base64_simd())
        cr_skip_test("this CPU has no AVX2: only the scalar code runs here");
    unsigned seed = 777;
    uint8_t src[700], a[700], b[700];
    char ev[960], es[960];
    for (size_t n = 0; n < sizeof src; n++) {
        for (size_t i = 0; i < n; i++)
            src[i] = rnd_byte(&seed);
        size_t lv = gw_base64_encode_to(src, n, ev);
        gw_base64_set_simd(false);
        size_t ls = gw_base64_encode_to(src, n, es);
        gw_base64_set_simd(true);
        cr_assert_eq(lv, ls);
        cr_assert_eq(memcmp(ev, es, lv), 0, "encoding of %zu bytes", n);
        memset(a, 0xAA, sizeof a);
        memset(b, 0xAA, sizeof b);
        cr_assert_eq(dec_with(true, ev, lv, a, n), (long)n);
        cr_assert_eq(dec_with(false, ev, lv, b, n), (long)n);
        cr_assert_eq(memcmp(a, b, sizeof a), 0, "decoding of %zu bytes", n);
    }
    /* 37..45 bytes: texts of 52..60 characters, one vector step and a
     * scalar tail whose last group is padded or not. */
    for (size_t n = 37; n <= 45; n++) {
        for (size_t i = 0; i < n; i++)
            src[i] = rnd_byte(&seed);
        size_t tl = gw_base64_encode_to(src, n, ev);
        for (size_t pos = 0; pos < tl; pos++)
            for (int c = 0; c < 256; c++) {
                memcpy(es, ev, tl);
                es[pos] = (char)c;
                memset(a, 0xAA, sizeof a);
                memset(b, 0xAA, sizeof b);
                long rv = dec_with(true, es, tl, a, sizeof a);
                long rs = dec_with(false, es, tl, b, sizeof b);
                cr_assert_eq(rv, rs, "%zu bytes, byte 0x%02x at %zu: %ld vs %ld", n, c, pos, rv,
                             rs);
                if (rv >= 0)
                    cr_assert_eq(memcmp(a, b, sizeof a), 0, "%zu bytes, 0x%02x at %zu", n, c, pos);
            }
    }
}

/* ---- base64url (tokens) ------------------------------------------------------------- */

Test(base64url, vectors_and_refusals)
{
    uint8_t out[16];
    /* RFC 4648 vectors, unpadded. */
    cr_expect_eq(gw_base64url_decode("Zm9vYg", 6, out, sizeof out), 4);
    cr_expect_eq(memcmp(out, "foob", 4), 0);
    cr_expect_eq(gw_base64url_decode("Zm9vYmE", 7, out, sizeof out), 5);
    cr_expect_eq(gw_base64url_decode("", 0, out, sizeof out), 0);
    const uint8_t fb[] = {0xfb, 0xff};
    char enc[8];
    cr_expect_eq(gw_base64url_encode_to(fb, 2, enc), 3);
    cr_expect_eq(memcmp(enc, "-_8", 3), 0);
    cr_expect_eq(gw_base64url_decode("-_8", 3, out, sizeof out), 2);
    cr_expect_eq(memcmp(out, fb, 2), 0);
    /* refusals */
    cr_expect_eq(gw_base64url_decode("+/8", 3, out, sizeof out), -1, "standard alphabet");
    cr_expect_eq(gw_base64url_decode("Zm9vYg==", 8, out, sizeof out), -1, "padding");
    cr_expect_eq(gw_base64url_decode("Zm9vY", 5, out, sizeof out), -1, "length 1 mod 4");
    cr_expect_eq(gw_base64url_decode("Zh", 2, out, sizeof out), -1, "non-canonical bits");
    cr_expect_eq(gw_base64url_decode("Zm9", 3, out, sizeof out), -1, "non-canonical bits");
    cr_expect_eq(gw_base64url_decode("Zm\0v", 4, out, sizeof out), -1, "NUL");
    cr_expect_eq(gw_base64url_decode("Zm9 ", 4, out, sizeof out), -1, "whitespace");
    cr_expect_eq(gw_base64url_decode("Zm9vYg", 6, out, 3), -1, "cap");
}

/* ---- UTF-8 -------------------------------------------------------------------------- */

#define VALID(lit) gw_utf8_valid(lit, sizeof lit - 1)

Test(utf8, accepts_well_formed_and_boundaries)
{
    cr_expect(VALID(""));
    cr_expect(VALID("plain ASCII"));
    cr_expect(VALID("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), "kosme");
    /* Kuhn 2.1 / 2.2: first and last code point of each length. */
    cr_expect(VALID("\x00"));
    cr_expect(VALID("\x7f"));
    cr_expect(VALID("\xc2\x80"));
    cr_expect(VALID("\xdf\xbf"));
    cr_expect(VALID("\xe0\xa0\x80"));
    cr_expect(VALID("\xef\xbf\xbf"));
    cr_expect(VALID("\xf0\x90\x80\x80"));
    cr_expect(VALID("\xf4\x8f\xbf\xbf"));
    /* Kuhn 2.3: other boundaries (around the surrogates, U+FFFD, U+FFFE). */
    cr_expect(VALID("\xed\x9f\xbf"));
    cr_expect(VALID("\xee\x80\x80"));
    cr_expect(VALID("\xef\xbf\xbd"));
    cr_expect(VALID("\xef\xbf\xbe"));
    cr_expect_eq(gw_utf8_chars("a\xc2\x80\xe0\xa0\x80\xf0\x90\x80\x80", 10), 4);
}

Test(utf8, refuses_malformed)
{
    /* Kuhn 3.1: unexpected continuation bytes. */
    cr_expect_not(VALID("\x80"));
    cr_expect_not(VALID("\xbf"));
    cr_expect_not(VALID("\x80\xbf"));
    cr_expect_not(VALID("a\x80" "b"));
    /* Kuhn 3.2: lonely start characters. */
    cr_expect_not(VALID("\xc2 "));
    cr_expect_not(VALID("\xe0 "));
    cr_expect_not(VALID("\xf0 "));
    cr_expect_not(VALID("\xf8 "));
    cr_expect_not(VALID("\xfc "));
    /* Kuhn 3.3 / 3.4: sequences with the last byte missing, at the end. */
    cr_expect_not(VALID("\xc2"));
    cr_expect_not(VALID("\xe0\xa0"));
    cr_expect_not(VALID("\xf0\x90\x80"));
    cr_expect_not(VALID("\xdf"));
    cr_expect_not(VALID("\xef\xbf"));
    cr_expect_not(VALID("\xf4\x8f\xbf"));
    /* Kuhn 3.5: impossible bytes. */
    cr_expect_not(VALID("\xfe"));
    cr_expect_not(VALID("\xff"));
    cr_expect_not(VALID("\xfe\xfe\xff\xff"));
    /* Kuhn 4.1 / 4.2: overlong forms ('/' and the largest overlongs). */
    cr_expect_not(VALID("\xc0\xaf"));
    cr_expect_not(VALID("\xe0\x80\xaf"));
    cr_expect_not(VALID("\xf0\x80\x80\xaf"));
    cr_expect_not(VALID("\xf8\x80\x80\x80\xaf"));
    cr_expect_not(VALID("\xc1\xbf"));
    cr_expect_not(VALID("\xe0\x9f\xbf"));
    cr_expect_not(VALID("\xf0\x8f\xbf\xbf"));
    /* Kuhn 4.3: overlong NUL. */
    cr_expect_not(VALID("\xc0\x80"));
    cr_expect_not(VALID("\xe0\x80\x80"));
    /* Kuhn 5.1 / 5.2: UTF-16 surrogates, single and paired. */
    cr_expect_not(VALID("\xed\xa0\x80"));
    cr_expect_not(VALID("\xed\xad\xbf"));
    cr_expect_not(VALID("\xed\xb0\x80"));
    cr_expect_not(VALID("\xed\xbf\xbf"));
    cr_expect_not(VALID("\xed\xa0\x80\xed\xb0\x80"));
    /* Above U+10FFFF. */
    cr_expect_not(VALID("\xf4\x90\x80\x80"));
    cr_expect_not(VALID("\xf5\x80\x80\x80"));
    cr_expect_not(VALID("\xf7\xbf\xbf\xbf"));
    /* A continuation byte replaced by a non-continuation one. */
    cr_expect_not(VALID("\xe0\xa0\x41"));
    cr_expect_not(VALID("\xf0\x90\xc0\x80"));
}

/* Every 1-, 2- and 3-byte string against the code-point definition: valid iff
 * it decodes to a sequence of scalar values in shortest form. */
static bool ref_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xc0 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3
                                  : c >= 0xf0 && c < 0xf8 ? 4 : 0;
        if (!len || n - i < len)
            return false;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

Test(utf8, exhaustive_short_strings_match_definition)
{
    uint8_t s[3];
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (uint8_t)a;
        cr_assert_eq(gw_utf8_valid(s, 1), ref_valid(s, 1), "%02x", a);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (uint8_t)b;
            cr_assert_eq(gw_utf8_valid(s, 2), ref_valid(s, 2), "%02x %02x", a, b);
            if (a < 0xe0)
                continue; /* three-byte leads and up: the rest is covered above */
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (uint8_t)c;
                cr_assert_eq(gw_utf8_valid(s, 3), ref_valid(s, 3), "%02x %02x %02x", a, b, c);
            }
        }
    }
    /* Four-byte leads: every second and third byte, a continuation fourth. */
    uint8_t f[4] = {0, 0, 0, 0x80};
    for (unsigned a = 0xf0; a < 0x100; a++)
        for (unsigned b = 0; b < 256; b++)
            for (unsigned c = 0x7f; c < 0xc1; c++) {
                f[0] = (uint8_t)a, f[1] = (uint8_t)b, f[2] = (uint8_t)c;
                cr_assert_eq(gw_utf8_valid(f, 4), ref_valid(f, 4), "%02x %02x %02x 80", a, b,
                             c);
            }
}
