/* codec.c - base64, base64url and UTF-8 (see codec.h).
 *
 * The base64 decoder is on the PutRecords hot path (every record's Data, over
 * a million a second): it looks each character up in one of four tables that
 * hold its 6 bits already shifted into place in the 24-bit group, so a group
 * is four loads and three ORs, and a character outside the alphabet sets bit
 * 31, so one OR over the whole text says whether any was bad: no branch per
 * character.
 *
 * On x86-64 CPUs with AVX2 (checked once, at start), standard base64 runs 32
 * characters at a time in vector registers instead (b64_avx2_*, the published
 * pshufb method of Muła and Lemire): base64 was a sixth of the gateway's CPU
 * when it pushes events to many consumers. The vector loops stop before the
 * text's last group; the scalar code does the rest, padding included, and
 * both refuse and accept exactly the same texts (tests compare them). */
#include "codec.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_B64_AVX2 1
#endif

#include "mem.h"

/* ---- tables ----------------------------------------------------------------------- */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#define R4(f, b) f(b), f(b + 1), f(b + 2), f(b + 3)
#define R16(f, b) R4(f, b), R4(f, b + 4), R4(f, b + 8), R4(f, b + 12)
#define R256(f)                                                                                   \
    R16(f, 0x00), R16(f, 0x10), R16(f, 0x20), R16(f, 0x30), R16(f, 0x40), R16(f, 0x50),           \
        R16(f, 0x60), R16(f, 0x70), R16(f, 0x80), R16(f, 0x90), R16(f, 0xa0), R16(f, 0xb0),       \
        R16(f, 0xc0), R16(f, 0xd0), R16(f, 0xe0), R16(f, 0xf0)

/* Standard digit value, or 64 for anything else ('=' and NUL included). */
#define B64V(c)                                                                                   \
    ((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                       \
     : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                                  \
     : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                                  \
     : (c) == '+'               ? 62                                                              \
     : (c) == '/'               ? 63                                                              \
                                : 64)
#define BAD 0x80000000u
#define D0(c) (B64V(c) < 64 ? (uint32_t)B64V(c) << 18 : BAD)
#define D1(c) (B64V(c) < 64 ? (uint32_t)B64V(c) << 12 : BAD)
#define D2(c) (B64V(c) < 64 ? (uint32_t)B64V(c) << 6 : BAD)
#define D3(c) (B64V(c) < 64 ? (uint32_t)B64V(c) : BAD)
static const uint32_t d0[256] = {R256(D0)};
static const uint32_t d1[256] = {R256(D1)};
static const uint32_t d2[256] = {R256(D2)};
static const uint32_t d3[256] = {R256(D3)};

/* URL digit value, or 64. Tokens are short and cold: one table suffices. */
#define UV(c)                                                                                     \
    ((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                       \
     : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                                  \
     : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                                  \
     : (c) == '-'               ? 62                                                              \
     : (c) == '_'               ? 63                                                              \
                                : 64)
/* The explicit cast: clang checks the untaken ?: branches of each entry too
 * (255 - '0' + 52 does not fit a byte) and -Wconstant-conversion would fire. */
#define UV8(c) ((uint8_t)(UV(c)))
static const uint8_t url_val[256] = {R256(UV8)};

/* ---- encoding --------------------------------------------------------------------- */

/* Encodes "n" bytes with "alpha"; the last group is padded with '=' when
 * "pad" (standard base64) and cut short otherwise (base64url tokens). */
static size_t encode(const char *alpha, int pad, const uint8_t *src, size_t n, char *dst)
{
    char *o = dst;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t x = ((uint32_t)src[i] << 16) | ((uint32_t)src[i + 1] << 8) | src[i + 2];
        o[0] = alpha[x >> 18];
        o[1] = alpha[(x >> 12) & 63];
        o[2] = alpha[(x >> 6) & 63];
        o[3] = alpha[x & 63];
        o += 4;
    }
    if (i < n) {
        uint32_t x = (uint32_t)src[i] << 16;
        if (i + 1 < n)
            x |= (uint32_t)src[i + 1] << 8;
        *o++ = alpha[x >> 18];
        *o++ = alpha[(x >> 12) & 63];
        if (i + 1 < n)
            *o++ = alpha[(x >> 6) & 63];
        else if (pad)
            *o++ = '=';
        if (pad)
            *o++ = '=';
    }
    return (size_t)(o - dst);
}

/* Standard base64 by pairs of characters: a 12-bit index gives two output
 * characters at once, so six input bytes are four loads and four 2-byte
 * stores instead of eight single-character ones. Every pushed and read
 * record's Data goes through here. The table is made before main (8 KiB). */
static uint16_t b64_pairs[4096];

static bool use_avx2;

__attribute__((constructor)) static void b64_pairs_init(void)
{
    for (unsigned i = 0; i < 4096; i++) {
        const char two[2] = {b64_std[i >> 6], b64_std[i & 63]};
        memcpy(&b64_pairs[i], two, 2);
    }
#ifdef HAVE_B64_AVX2
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2");
#endif
}

void gw_base64_set_simd(bool on)
{
#ifdef HAVE_B64_AVX2
    use_avx2 = on && __builtin_cpu_supports("avx2");
#else
    (void)on;
#endif
}

bool gw_base64_simd(void) { return use_avx2; }

#ifdef HAVE_B64_AVX2
/* 24 bytes -> 32 characters per step while 28 bytes can be read (the two
 * 16-byte loads overlap). Returns the bytes consumed; "*dst" advances. */
__attribute__((target("avx2"))) static size_t b64_avx2_encode(const uint8_t *src, size_t n,
                                                               char **dst)
{
    /* Per 3-byte group a, b, c, the 32-bit word whose bytes are b a c b: its
     * low half is a:b and its high half b:c, big-endian. */
    const __m256i spread = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10, 1,
                                            0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
    /* Added to a 6-bit value to make its character, chosen by its range
     * (see below): 26..51 -> 'a'-26, 52..61 -> '0'-52, 62 -> '+'-62,
     * 63 -> '/'-63, 0..25 -> 'A'. */
    const __m256i shift = _mm256_setr_epi8(
        71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 65, 0, 0, 71, -4, -4, -4, -4, -4, -4,
        -4, -4, -4, -4, -19, -16, 65, 0, 0);
    char *o = *dst;
    size_t i = 0;
    for (; i + 28 <= n; i += 24) {
        __m256i in = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(src + i + 12)),
                                      _mm_loadu_si128((const __m128i *)(src + i)));
        in = _mm256_shuffle_epi8(in, spread);
        /* The four 6-bit values into bytes 0..3 of each word: a>>2 and
         * b-high:c>>6 by a high multiply, the other two by a low one. */
        __m256i t0 = _mm256_and_si256(in, _mm256_set1_epi32(0x0fc0fc00));
        __m256i t1 = _mm256_mulhi_epu16(t0, _mm256_set1_epi32(0x04000040));
        __m256i t2 = _mm256_and_si256(in, _mm256_set1_epi32(0x003f03f0));
        __m256i t3 = _mm256_mullo_epi16(t2, _mm256_set1_epi32(0x01000010));
        __m256i v = _mm256_or_si256(t1, t3);
        /* Range index: 1..12 for 52..63, 13 for 0..25, 0 for 26..51. */
        __m256i r = _mm256_subs_epu8(v, _mm256_set1_epi8(51));
        __m256i lt26 = _mm256_cmpgt_epi8(_mm256_set1_epi8(26), v);
        r = _mm256_or_si256(r, _mm256_and_si256(lt26, _mm256_set1_epi8(13)));
        v = _mm256_add_epi8(v, _mm256_shuffle_epi8(shift, r));
        _mm256_storeu_si256((__m256i *)o, v);
        o += 32;
    }
    *dst = o;
    return i;
}

/* 32 characters -> 24 bytes per step while the text's last group lies
 * beyond the step (it may hold padding). Returns the characters consumed;
 * "*out" advances; "*bad" is set when a character is outside the alphabet. */
__attribute__((target("avx2"))) static size_t b64_avx2_decode(const uint8_t *in, size_t n,
                                                               uint8_t **out, bool *bad)
{
    /* A character is valid when lut_lo[low nibble] & lut_hi[high nibble] is
     * zero; its value is the character plus roll[high nibble], '/' apart
     * (roll[1]). */
    const __m256i lut_lo = _mm256_setr_epi8(
        0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b,
        0x1a, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b,
        0x1b, 0x1a);
    const __m256i lut_hi = _mm256_setr_epi8(
        0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
        0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
        0x10, 0x10);
    const __m256i roll = _mm256_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0,
                                          0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    /* Each lane's 12 bytes to its front, then the lanes' 12 together. */
    const __m256i pack = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
                                          2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m256i join = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
    const __m256i nib = _mm256_set1_epi8(0x0f);
    __m256i err = _mm256_setzero_si256();
    uint8_t *o = *out;
    size_t i = 0;
    for (; i + 36 <= n; i += 32) {
        __m256i s = _mm256_loadu_si256((const __m256i *)(in + i));
        __m256i hi = _mm256_and_si256(_mm256_srli_epi32(s, 4), nib);
        __m256i lo = _mm256_and_si256(s, nib);
        err = _mm256_or_si256(err, _mm256_and_si256(_mm256_shuffle_epi8(lut_lo, lo),
                                                    _mm256_shuffle_epi8(lut_hi, hi)));
        __m256i slash = _mm256_cmpeq_epi8(s, _mm256_set1_epi8('/'));
        __m256i v = _mm256_add_epi8(s, _mm256_shuffle_epi8(roll, _mm256_add_epi8(slash, hi)));
        /* Four 6-bit values -> one 24-bit value per 32-bit word. */
        v = _mm256_maddubs_epi16(v, _mm256_set1_epi32(0x01400140));
        v = _mm256_madd_epi16(v, _mm256_set1_epi32(0x00011000));
        v = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, pack), join);
        _mm_storeu_si128((__m128i *)o, _mm256_castsi256_si128(v));
        _mm_storel_epi64((__m128i *)(o + 16), _mm256_extracti128_si256(v, 1));
        o += 24;
    }
    if (!_mm256_testz_si256(err, err))
        *bad = true;
    *out = o;
    return i;
}
#endif

size_t gw_base64_encode_to(const uint8_t *src, size_t n, char *dst)
{
    char *o = dst;
    size_t i = 0;
#ifdef HAVE_B64_AVX2
    if (use_avx2 && n >= 28)
        i = b64_avx2_encode(src, n, &o);
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Eight bytes loaded at once (six used), eight characters stored at
     * once; stops while eight can still be read. */
    for (; i + 8 <= n; i += 6) {
        uint64_t x;
        memcpy(&x, src + i, 8);
        x = __builtin_bswap64(x);
        uint64_t w = (uint64_t)b64_pairs[x >> 52] | (uint64_t)b64_pairs[(x >> 40) & 4095] << 16 |
                     (uint64_t)b64_pairs[(x >> 28) & 4095] << 32 |
                     (uint64_t)b64_pairs[(x >> 16) & 4095] << 48;
        memcpy(o, &w, 8);
        o += 8;
    }
#endif
    for (; i + 6 <= n; i += 6) {
        uint32_t a = ((uint32_t)src[i] << 16) | ((uint32_t)src[i + 1] << 8) | src[i + 2];
        uint32_t b = ((uint32_t)src[i + 3] << 16) | ((uint32_t)src[i + 4] << 8) | src[i + 5];
        memcpy(o, &b64_pairs[a >> 12], 2);
        memcpy(o + 2, &b64_pairs[a & 4095], 2);
        memcpy(o + 4, &b64_pairs[b >> 12], 2);
        memcpy(o + 6, &b64_pairs[b & 4095], 2);
        o += 8;
    }
    return (size_t)(o - dst) + encode(b64_std, 1, src + i, n - i, o);
}

char *gw_base64_encode(const uint8_t *data, size_t len, size_t *outlen)
{
    char *out = xmalloc(gw_base64_encoded_len(len) + 1);
    size_t n = gw_base64_encode_to(data, len, out);
    out[n] = '\0';
    if (outlen)
        *outlen = n;
    return out;
}

size_t gw_base64url_encode_to(const uint8_t *src, size_t n, char *dst)
{
    return encode(b64_url, 0, src, n, dst);
}

/* ---- decoding --------------------------------------------------------------------- */

size_t gw_base64_decoded_len(const char *in, size_t inlen)
{
    size_t n = inlen / 4 * 3 + (inlen % 4 ? 3 : 0);
    if (inlen >= 4 && inlen % 4 == 0) {
        if (in[inlen - 1] == '=')
            n--;
        if (in[inlen - 2] == '=')
            n--;
    }
    return n;
}

/* Eight characters (little-endian load order) -> six bytes in memory order
 * in the low 6 bytes of the result's memory image; "*bad" collects BAD. */
static inline uint64_t decode8(uint64_t v, uint32_t *bad)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    uint32_t x0 = d0[v & 0xff] | d1[(v >> 8) & 0xff] | d2[(v >> 16) & 0xff] |
                  d3[(v >> 24) & 0xff];
    uint32_t x1 = d0[(v >> 32) & 0xff] | d1[(v >> 40) & 0xff] | d2[(v >> 48) & 0xff] |
                  d3[v >> 56];
    *bad |= x0 | x1;
    /* Six bytes, big-endian, in the top of a 64-bit word. */
    uint64_t w = ((uint64_t)x0 << 40) | ((uint64_t)x1 << 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

long gw_base64_decode(const char *text, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4 != 0)
        return -1;
    const uint8_t *in = (const uint8_t *)text;
    size_t dlen = n / 4 * 3;
    if (n && in[n - 1] == '=')
        dlen -= in[n - 2] == '=' ? 2 : 1;
    /* Checked up front (the trailing '=' fix the length of any text that
     * decodes at all), so the loops below need no bound. */
    if (dlen > cap)
        return -1;
    uint8_t *o = out;
    uint32_t bad = 0;
    size_t i = 0;
#ifdef HAVE_B64_AVX2
    if (use_avx2 && n >= 36) {
        bool vbad = false;
        i = b64_avx2_decode(in, n, &o, &vbad);
        if (vbad)
            bad |= BAD;
    }
#endif
    /* Every group but the last cannot hold padding: two at a time (one
     * 8-byte load, one 8-byte store that advances 6), then one. The loop
     * stops while two more groups follow, so the 2 bytes stored beyond the
     * 6 land where those groups' output (at least 4 bytes) goes: nothing is
     * written past the decoded length, and no caller needs slack. */
    for (; i + 20 < n; i += 16) { /* the same, unrolled once */
        uint64_t v0, v1;
        memcpy(&v0, in + i, 8);
        memcpy(&v1, in + i + 8, 8);
        uint64_t w0 = decode8(v0, &bad), w1 = decode8(v1, &bad);
        memcpy(o, &w0, 8);
        memcpy(o + 6, &w1, 8);
        o += 12;
    }
    for (; i + 12 < n; i += 8) {
        uint64_t v;
        memcpy(&v, in + i, 8);
        uint64_t w = decode8(v, &bad);
        memcpy(o, &w, 8);
        o += 6;
    }
    for (; i + 4 < n; i += 4) {
        uint32_t x = d0[in[i]] | d1[in[i + 1]] | d2[in[i + 2]] | d3[in[i + 3]];
        bad |= x;
        o[0] = (uint8_t)(x >> 16);
        o[1] = (uint8_t)(x >> 8);
        o[2] = (uint8_t)x;
        o += 3;
    }
    if (n) {
        const uint8_t *t = in + i;
        if (t[3] != '=') {
            uint32_t x = d0[t[0]] | d1[t[1]] | d2[t[2]] | d3[t[3]];
            bad |= x;
            o[0] = (uint8_t)(x >> 16);
            o[1] = (uint8_t)(x >> 8);
            o[2] = (uint8_t)x;
            o += 3;
        } else if (t[2] != '=') { /* xyz= : the low 2 bits of z must be zero */
            uint32_t x = d0[t[0]] | d1[t[1]] | d2[t[2]];
            bad |= x | (x & 0xc0 ? BAD : 0);
            o[0] = (uint8_t)(x >> 16);
            o[1] = (uint8_t)(x >> 8);
            o += 2;
        } else { /* xy== : the low 4 bits of y must be zero */
            uint32_t x = d0[t[0]] | d1[t[1]];
            bad |= x | (x & 0xf000 ? BAD : 0);
            o[0] = (uint8_t)(x >> 16);
            o += 1;
        }
    }
    return bad & BAD ? -1 : (long)(o - out);
}

long gw_base64url_decode(const char *text, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4 == 1)
        return -1;
    const uint8_t *in = (const uint8_t *)text;
    size_t dlen = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (dlen > cap)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t v = url_val[in[i]];
        if (v > 63)
            return -1;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Canonical form only: the bits below the last whole byte must be zero,
     * or two different texts would decode to the same bytes. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}

/* ---- UTF-8 ------------------------------------------------------------------------ */

bool gw_utf8_valid(const void *s, size_t n)
{
    const uint8_t *p = s, *end = p + n;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = gw_utf8_seq(p, end);
        if (!k)
            return false;
        p += k;
    }
    return true;
}

size_t gw_utf8_chars(const void *s, size_t n)
{
    const uint8_t *p = s;
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += (p[i] & 0xc0) != 0x80;
    return c;
}

size_t gw_fmt_u64(char *dst, uint64_t v)
{
    char digits[20];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < nd; i++)
        dst[i] = digits[nd - 1 - i];
    return nd;
}
