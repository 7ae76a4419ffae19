/* codec.h - the gateway's one implementation of base64 (standard, padded:
 * the wire form of every Kinesis blob), base64url (unpadded: sealed tokens)
 * and UTF-8 validation. Every door (JSON, CBOR, the PutRecords fast scanner,
 * record output, tokens) calls these, so one input is accepted or refused
 * the same way wherever it arrives.
 *
 * Upstream: json.c, cbor.c, putrecords_fast.c, ops_util.c, tests. Downstream:
 * nothing (no allocation except gw_base64_encode's). */
#ifndef SLUICE_CODEC_H
#define SLUICE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- base64, standard alphabet, padded (RFC 4648 section 4) ---------------- */

/* Characters gw_base64_encode_to() writes for "n" bytes (no NUL). */
static inline size_t gw_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}
/* Encodes "n" bytes into "dst" (gw_base64_encoded_len(n) bytes, not
 * NUL-terminated), so callers can write straight into their output buffer.
 * Returns the number of characters written. */
size_t gw_base64_encode_to(const uint8_t *src, size_t n, char *dst);
/* Encodes "len" bytes; returns new NUL-terminated text (free()); its length
 * in "*outlen" if not NULL. */
char *gw_base64_encode(const uint8_t *data, size_t len, size_t *outlen);

/* Strict decoder: the length a multiple of 4; only the 64 alphabet characters
 * (no whitespace, no NUL, no URL alphabet); '=' only as the last one or two
 * characters; the bits that padding drops must be zero, so every byte string
 * has exactly one accepted text. Writes at most "cap" bytes to "out" (it
 * never writes past the decoded length); returns the decoded length, or -1
 * if the text is malformed or decodes to more than "cap" bytes. */
long gw_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t cap);
/* Decoded size of a well-formed text of "inlen" characters (looks at its
 * trailing '='); for malformed text an upper bound of what
 * gw_base64_decode() could write. */
size_t gw_base64_decoded_len(const char *in, size_t inlen);

/* Whether standard base64 runs on AVX2 vectors (chosen at start when the CPU
 * has AVX2); gw_base64_set_simd(false) forces the scalar code, true restores
 * the vectors where the CPU has them. Both give the same results: tests use
 * this to compare them. Not thread-safe: call before other threads start. */
bool gw_base64_simd(void);
void gw_base64_set_simd(bool on);

/* ---- base64url, unpadded (RFC 4648 section 5) ------------------------------ */

/* Characters gw_base64url_encode_to() writes for "n" bytes (no NUL). */
static inline size_t gw_base64url_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}
size_t gw_base64url_encode_to(const uint8_t *src, size_t n, char *dst);
/* Strict: URL alphabet only, no padding, a length that is not 1 mod 4, and
 * zero bits below the last whole byte (canonical). Returns the decoded length
 * or -1 (malformed, or more than "cap" bytes). */
long gw_base64url_decode(const char *in, size_t inlen, uint8_t *out, size_t cap);

/* ---- UTF-8 (RFC 3629) ---------------------------------------------------------- */

/* Length of the well-formed multi-byte sequence starting at "p" (whose first
 * byte is >= 0x80), or 0 if it is not one: a stray continuation byte, an
 * overlong form (C0, C1, E0 80..9F, F0 80..8F), a UTF-16 surrogate
 * (ED A0..BF), a code point above U+10FFFF (F4 90.., F5..FF), or a sequence
 * cut short by "end". Inline: the PutRecords scanner calls it per character. */
static inline size_t gw_utf8_seq(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    size_t avail = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF)
        return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))
            return 0; /* overlong; surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
            return 0; /* overlong; above U+10FFFF */
        return 4;
    }
    return 0;
}
/* Whether "n" bytes are well-formed UTF-8 (NUL bytes are; callers that
 * refuse U+0000 check for it themselves). */
bool gw_utf8_valid(const void *s, size_t n);
/* Characters (code points) in well-formed UTF-8 "s" of "n" bytes. */
size_t gw_utf8_chars(const void *s, size_t n);

/* ---- numbers ------------------------------------------------------------- */

/* Writes "v" in decimal at "dst" (room for 20 digits, no NUL), without
 * printf: replies and events print many. Returns the number of digits. */
size_t gw_fmt_u64(char *dst, uint64_t v);

#endif
