/* putrecords_fast.c - single-pass JSON decoder for PutRecord(s) bodies (see
 * putrecords.h for the contract with the general path in putrecords.c).
 *
 * Upstream: ops_records.c, before gw_body_decode(). Downstream: nothing; all
 * memory comes from the request's arena.
 *
 * One pass over the bytes, no tree. The scanner follows jansson's grammar for
 * json_loadb(JSON_REJECT_DUPLICATES) with an object root, and the member
 * semantics of gw_put_parse_tree(). Whenever the two could differ, or the
 * body is anything but fully valid, it answers 0 ("fall back") and lets the
 * general path decide, so it can only be less permissive, never more. It
 * falls back on:
 *   - any backslash in a key or in a member we read (values are copied raw);
 *     \u escapes anywhere (NUL and surrogate rules live in jansson);
 *   - numbers other than -?(0|[1-9]\d{0,17})(\.\d{1,30})? (no exponent, so no
 *     overflow question), and nesting deeper than MAX_DEPTH;
 *   - objects with more than MAX_UNKNOWN_KEYS unknown members (duplicate
 *     detection is a small linear list);
 *   - any type, constraint or limit the general path would report.
 * Everything it accepts, jansson accepts and gw_put_parse_tree() turns into
 * an equal batch; tests/fuzz/fuzz_putrecords.c checks that differentially.
 *
 * Memory: one scratch block of the body's size (plus slack) holds every
 * copied string (k raw bytes between quotes -> k+1 bytes with the NUL) and
 * every decoded Data (4k base64 characters -> at most 3k bytes), so it can
 * never overflow; the bound is checked anyway. */
#include "putrecords.h"

#include <string.h>

#include "codec.h"
#include "json.h"

enum { MAX_DEPTH = 32, MAX_UNKNOWN_KEYS = 16 };

/* ---- byte classes ------------------------------------------------------------- */

enum { C_ASCII, C_QUOTE, C_BSLASH, C_CTL, C_U2, C_U3, C_U4, C_BAD };

#define CLS(c)                                                                                    \
    ((c) < 0x20     ? C_CTL                                                                       \
     : (c) == '"'   ? C_QUOTE                                                                     \
     : (c) == '\\'  ? C_BSLASH                                                                    \
     : (c) < 0x80   ? C_ASCII                                                                     \
     : (c) < 0xC2   ? C_BAD /* continuation bytes, overlong C0/C1 */                              \
     : (c) < 0xE0   ? C_U2                                                                        \
     : (c) < 0xF0   ? C_U3                                                                        \
     : (c) < 0xF5   ? C_U4                                                                        \
                    : C_BAD)
#define R4(f, b) f(b), f(b + 1), f(b + 2), f(b + 3)
#define R16(f, b) R4(f, b), R4(f, b + 4), R4(f, b + 8), R4(f, b + 12)
#define R256(f)                                                                                   \
    R16(f, 0x00), R16(f, 0x10), R16(f, 0x20), R16(f, 0x30), R16(f, 0x40), R16(f, 0x50),           \
        R16(f, 0x60), R16(f, 0x70), R16(f, 0x80), R16(f, 0x90), R16(f, 0xa0), R16(f, 0xb0),       \
        R16(f, 0xc0), R16(f, 0xd0), R16(f, 0xe0), R16(f, 0xf0)

static const uint8_t cls[256] = {R256(CLS)};

/* ---- scanner ------------------------------------------------------------------- */

struct scan {
    struct gw_req *req;
    const uint8_t *p, *end;
    uint8_t *buf; /* scratch in the arena: strings and decoded data */
    size_t used, cap;
};

static inline void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* After a member or element: "close" ends the container (consumed, 1), a
 * comma goes on to the next one (consumed with the whitespace after it,
 * 0); anything else is malformed (-1). */
static int next_or_close(struct scan *s, char close)
{
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    if (*s->p == close) {
        s->p++;
        return 1;
    }
    if (*s->p != ',')
        return -1;
    s->p++;
    skip_ws(s);
    return 0;
}

/* Of the 8 bytes at "p", flags (bit 7 of each byte, little-endian order)
 * those a string scan must look at: a quote, a backslash, a control
 * character, non-ASCII. The lowest flag is always exact (borrows only run
 * upwards from a true hit), so its position is the first such byte. */
static inline uint64_t swar_special(const uint8_t *p)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v); /* first byte lowest, for the caller's ctz */
#endif
    uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
    uint64_t t = ((q - ones) & ~q) | ((b - ones) & ~b) | ((v - ones * 0x20) & ~v) | v;
    return t & highs;
}

/* Scans a string whose opening quote is just behind "p". Returns a pointer to
 * the closing quote, or NULL (fall back) on: end of input, a control
 * character, UTF-8 that jansson rejects (overlong, surrogates, > U+10FFFF,
 * stray continuation bytes), or a backslash, unless "escapes" allows the
 * simple two-character escapes (never \u). "*cont" gets the number of UTF-8
 * continuation bytes, so characters = bytes - *cont when there are no
 * escapes. */
static const uint8_t *scan_str(const uint8_t *p, const uint8_t *end, bool escapes, size_t *cont)
{
    size_t nc = 0;
    for (;;) {
        while (end - p >= 8) {
            uint64_t m = swar_special(p);
            if (m) {
                p += __builtin_ctzll(m) / 8;
                break;
            }
            p += 8;
        }
        if (p >= end)
            return NULL;
        switch (cls[*p]) {
        case C_ASCII:
            p++;
            break;
        case C_QUOTE:
            *cont = nc;
            return p;
        case C_BSLASH:
            if (!escapes || end - p < 2)
                return NULL;
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                break;
            default:
                return NULL;
            }
            break;
        case C_U2:
        case C_U3:
        case C_U4: {
            size_t k = gw_utf8_seq(p, end);
            if (!k)
                return NULL;
            p += k;
            nc += k - 1;
            break;
        }
        default:
            return NULL;
        }
    }
}

/* Matches the literal "lit" of "n" bytes at the cursor. */
static inline bool literal(struct scan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return false;
    s->p += n;
    return true;
}

static inline bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* A number in an unknown member. Only forms jansson surely accepts (no
 * exponent, integers that fit int64_t) pass; anything else falls back. What
 * follows is checked by the caller (so "01" and "1.2.3" fall back there). */
static bool skip_number(struct scan *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return false;
    if (*s->p == '0') {
        s->p++;
    } else if (is_digit(*s->p)) {
        const uint8_t *start = s->p;
        while (s->p < s->end && is_digit(*s->p))
            s->p++;
        if (s->p - start > 18)
            return false;
    } else {
        return false;
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        const uint8_t *start = s->p;
        while (s->p < s->end && is_digit(*s->p))
            s->p++;
        if (s->p == start || s->p - start > 30)
            return false;
    }
    return !(s->p < s->end && (*s->p == 'e' || *s->p == 'E'));
}

/* ---- members --------------------------------------------------------------------- */

enum ctx { CTX_PUT, CTX_PUTS, CTX_ENTRY, CTX_UNKNOWN };
enum key { K_UNKNOWN, K_STREAM_NAME, K_STREAM_ARN, K_RECORDS, K_DATA, K_PK, K_EHK, K_SEQ };

static enum key key_id(enum ctx ctx, const uint8_t *k, size_t n)
{
#define IS(lit) (n == sizeof lit - 1 && memcmp(k, lit, n) == 0)
    if (ctx == CTX_UNKNOWN)
        return K_UNKNOWN;
    if (ctx != CTX_ENTRY) {
        if (IS("StreamName"))
            return K_STREAM_NAME;
        if (IS("StreamARN"))
            return K_STREAM_ARN;
    }
    if (ctx == CTX_PUTS)
        return IS("Records") ? K_RECORDS : K_UNKNOWN;
    if (IS("Data"))
        return K_DATA;
    if (IS("PartitionKey"))
        return K_PK;
    if (IS("ExplicitHashKey"))
        return K_EHK;
    if (ctx == CTX_PUT && IS("SequenceNumberForOrdering"))
        return K_SEQ;
    return K_UNKNOWN;
#undef IS
}

/* If one of the keys we read starts at "k" (a plain literal, so no scan is
 * needed), returns a pointer to its closing quote; else NULL. Whether the
 * key counts in this object is key_id()'s business. */
static const uint8_t *known_key_end(const uint8_t *k, const uint8_t *end)
{
    size_t avail = (size_t)(end - k);
#define TRY(lit)                                                                                  \
    if (avail >= sizeof lit && memcmp(k, lit "\"", sizeof lit) == 0)                              \
    return k + sizeof lit - 1
    if (!avail)
        return NULL;
    switch (*k) {
    case 'D':
        TRY("Data");
        break;
    case 'P':
        TRY("PartitionKey");
        break;
    case 'E':
        TRY("ExplicitHashKey");
        break;
    case 'R':
        TRY("Records");
        break;
    case 'S':
        TRY("StreamName");
        TRY("StreamARN");
        TRY("SequenceNumberForOrdering");
        break;
    }
    return NULL;
#undef TRY
}

/* What one object yields: the top level (PutRecord, PutRecords) or one entry. */
struct members {
    struct gw_put_entry e;
    bool has_data;
    size_t pk_chars;
    const char *stream_name, *stream_arn, *seq;
    size_t name_chars, arn_chars;
    struct gw_put_entry *entries;
    size_t n;
};

/* A string member we read, or null (absent: "*out" NULL). Copies the raw
 * bytes into the scratch block with a NUL. */
static bool read_string(struct scan *s, const char **out, size_t *bytes, size_t *chars)
{
    *out = NULL;
    *bytes = *chars = 0;
    if (s->p < s->end && *s->p == 'n')
        return literal(s, "null", 4);
    if (s->p >= s->end || *s->p != '"')
        return false; /* wrong type: SerializationException */
    const uint8_t *start = s->p + 1;
    size_t cont;
    const uint8_t *q = scan_str(start, s->end, false, &cont);
    if (!q)
        return false;
    size_t n = (size_t)(q - start);
    if (s->cap - s->used < n + 1)
        return false;
    char *dst = (char *)s->buf + s->used;
    memcpy(dst, start, n);
    dst[n] = '\0';
    s->used += n + 1;
    s->p = q + 1;
    *out = dst;
    *bytes = n;
    *chars = n - cont;
    return true;
}

/* Data: strict canonical padded base64, at most GW_PUT_MAX_DATA decoded
 * bytes, decoded straight into the scratch block. null is absent. */
static bool read_data(struct scan *s, struct members *m)
{
    if (s->p < s->end && *s->p == 'n') {
        m->has_data = false;
        return literal(s, "null", 4);
    }
    if (s->p >= s->end || *s->p != '"')
        return false;
    const uint8_t *in = s->p + 1;
    /* Base64 has no quote, so the first one ends the string; a backslash or
     * anything else outside the alphabet fails the decode below. */
    const uint8_t *q = memchr(in, '"', (size_t)(s->end - in));
    if (!q)
        return false;
    size_t n = (size_t)(q - in);
    if (n % 4 != 0)
        return false;
    if (gw_base64_decoded_len((const char *)in, n) > GW_PUT_MAX_DATA)
        return false;
    /* Malformed base64, or (never, by the scratch block's sizing) too
     * little room: the general path reports it. */
    uint8_t *out = s->buf + s->used;
    long dl = gw_base64_decode((const char *)in, n, out, s->cap - s->used);
    if (dl < 0)
        return false;
    s->used += (size_t)dl;
    s->p = q + 1;
    m->e.data = out;
    m->e.data_len = (size_t)dl;
    m->has_data = true;
    return true;
}

static bool parse_object(struct scan *s, enum ctx ctx, struct members *m, int depth);
static bool read_records(struct scan *s, struct members *m);

/* Any JSON value, validated and discarded. */
static bool skip_value(struct scan *s, int depth)
{
    if (depth > MAX_DEPTH || s->p >= s->end)
        return false;
    switch (*s->p) {
    case '"': {
        size_t cont;
        const uint8_t *q = scan_str(s->p + 1, s->end, true, &cont);
        if (!q)
            return false;
        s->p = q + 1;
        return true;
    }
    case '{':
        s->p++;
        return parse_object(s, CTX_UNKNOWN, NULL, depth + 1);
    case '[':
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return true;
        }
        for (;;) {
            if (!skip_value(s, depth + 1))
                return false;
            int r = next_or_close(s, ']');
            if (r != 0)
                return r > 0;
        }
    case 't':
        return literal(s, "true", 4);
    case 'f':
        return literal(s, "false", 5);
    case 'n':
        return literal(s, "null", 4);
    default:
        return skip_number(s);
    }
}

/* The members of an object whose '{' is just behind the cursor. Known keys
 * (by "ctx") fill "m"; others are validated and skipped. Duplicates of any
 * key fall back, as jansson rejects them. */
static bool parse_object(struct scan *s, enum ctx ctx, struct members *m, int depth)
{
    const uint8_t *ukey[MAX_UNKNOWN_KEYS];
    size_t ulen[MAX_UNKNOWN_KEYS];
    size_t nu = 0;
    unsigned seen = 0;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return true;
    }
    for (;;) {
        if (s->p >= s->end || *s->p != '"')
            return false;
        const uint8_t *k = s->p + 1, *q = NULL;
        if (ctx != CTX_UNKNOWN)
            q = known_key_end(k, s->end);
        if (!q) {
            size_t cont;
            q = scan_str(k, s->end, false, &cont);
            if (!q)
                return false;
        }
        size_t klen = (size_t)(q - k);
        s->p = q + 1;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return false;
        s->p++;
        skip_ws(s);
        enum key id = key_id(ctx, k, klen);
        if (id == K_UNKNOWN) {
            for (size_t i = 0; i < nu; i++)
                if (ulen[i] == klen && memcmp(ukey[i], k, klen) == 0)
                    return false;
            if (nu == MAX_UNKNOWN_KEYS)
                return false;
            ukey[nu] = k;
            ulen[nu++] = klen;
            if (!skip_value(s, depth))
                return false;
        } else {
            if (seen & (1u << id))
                return false;
            seen |= 1u << id;
            size_t bytes, chars;
            bool ok;
            switch (id) {
            case K_STREAM_NAME:
                ok = read_string(s, &m->stream_name, &bytes, &m->name_chars);
                break;
            case K_STREAM_ARN:
                ok = read_string(s, &m->stream_arn, &bytes, &m->arn_chars);
                break;
            case K_RECORDS:
                ok = read_records(s, m);
                break;
            case K_DATA:
                ok = read_data(s, m);
                break;
            case K_PK:
                ok = read_string(s, &m->e.pk, &m->e.pk_len, &m->pk_chars);
                break;
            case K_EHK:
                ok = read_string(s, &m->e.ehk, &bytes, &chars);
                break;
            case K_SEQ:
                ok = read_string(s, &m->seq, &bytes, &chars);
                break;
            default:
                ok = false;
            }
            if (!ok)
                return false;
        }
        int r = next_or_close(s, '}');
        if (r != 0)
            return r > 0;
    }
}

/* One record's members, valid as gw_put_parse_tree()'s parse_entry() wants
 * them: Data present, PartitionKey 1..256 characters, ExplicitHashKey (if
 * given) matching 0|([1-9]\d{0,38}). */
static bool entry_valid(const struct members *m)
{
    return m->has_data && m->e.pk && m->pk_chars >= 1 &&
           m->pk_chars <= GW_PUT_MAX_PARTITION_KEY && (!m->e.ehk || gw_match_hashkey(m->e.ehk));
}

/* Records: a non-empty array of at most GW_PUT_MAX_RECORDS objects. */
static bool read_records(struct scan *s, struct members *m)
{
    if (s->p >= s->end || *s->p != '[')
        return false; /* null (absent, but required) or a wrong type */
    s->p++;
    /* A valid entry takes at least 31 bytes ({"Data":"","PartitionKey":"x"}),
     * so this many slots are enough for any body that can be accepted. */
    size_t cap = (size_t)(s->end - s->p) / 16 + 1;
    if (cap > GW_PUT_MAX_RECORDS)
        cap = GW_PUT_MAX_RECORDS;
    m->entries = gw_req_alloc(s->req, cap * sizeof *m->entries);
    m->n = 0;
    size_t total = 0;
    skip_ws(s);
    if (s->p >= s->end || *s->p == ']')
        return false; /* at least one record */
    for (;;) {
        if (*s->p != '{' || m->n == cap)
            return false;
        s->p++;
        /* Only the entry's fields: key_id() never yields the others here. */
        struct members em;
        em.e = (struct gw_put_entry){0};
        em.has_data = false;
        em.pk_chars = 0;
        if (!parse_object(s, CTX_ENTRY, &em, 1) || !entry_valid(&em))
            return false;
        total += em.e.data_len + em.e.pk_len;
        if (total > GW_PUT_MAX_BATCH_BYTES)
            return false;
        m->entries[m->n++] = em.e;
        int r = next_or_close(s, ']');
        if (r != 0)
            return r > 0;
        if (s->p >= s->end)
            return false;
    }
}

/* StreamName 1..128 characters of [a-zA-Z0-9_.-]; StreamARN 1..2048
 * characters matching the model's pattern. Absent is fine (the caller
 * decides). */
static bool stream_valid(const struct members *m)
{
    if (m->stream_name && (m->name_chars < 1 || m->name_chars > 128 ||
                           !gw_match_name(m->stream_name)))
        return false;
    if (m->stream_arn && (m->arn_chars < 1 || m->arn_chars > 2048 ||
                          !gw_match_stream_arn(m->stream_arn)))
        return false;
    return true;
}

int gw_put_parse_fast(struct gw_req *req, const uint8_t *body, size_t len, bool batch,
                      struct gw_put_batch *out)
{
    memset(out, 0, sizeof *out);
    struct scan s = {.req = req, .p = body, .end = body + len};
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return 0;
    s.p++;
    /* Slack so a miscount can only fall back, never overrun. */
    s.cap = len + 8;
    s.buf = gw_req_alloc(req, s.cap);
    struct members m;
    memset(&m, 0, sizeof m);
    if (!parse_object(&s, batch ? CTX_PUTS : CTX_PUT, &m, 1))
        return 0;
    skip_ws(&s);
    if (s.p != s.end || !stream_valid(&m))
        return 0;
    out->stream_name = m.stream_name;
    out->stream_arn = m.stream_arn;
    if (batch) {
        if (!m.entries)
            return 0; /* Records absent or null */
        out->entries = m.entries;
        out->n = m.n;
        return 1;
    }
    /* PutRecord: one record at the top level; at most 1 MiB + 256
     * characters, so the batch limit cannot bite. */
    if (!entry_valid(&m) || (m.seq && !gw_match_seqnum(m.seq)))
        return 0;
    out->entries = gw_req_alloc(req, sizeof *out->entries);
    out->entries[0] = m.e;
    out->n = 1;
    out->seq_for_ordering = m.seq;
    return 1;
}
