/* record.c - pure encode/decode of one on-disk record frame; no I/O.
 *
 * Upstream: shard.c encodes frames into a chunk at append time; segment.c and
 * cursor.c decode them when scanning and reading segments. Everything here is
 * a pure function of its arguments (the CRC implementation is chosen once).
 *
 * Frame layout (all integers little-endian):
 *
 *   0       4       8       12      16              24              32  33  34  36      40      44
 *   +-------+-------+-------+-------+---------------+---------------+---+---+---+-------+-------+
 *   | len   | dcrc  | gen   | shard | counter       | arrival_ms    |flg|rsv|pkl| dlen  | hcrc  |
 *   +-------+-------+-------+-------+---------------+---------------+---+---+---+-------+-------+
 *   | explicit hash key (16 bytes, only if flg & 1) | partition key (pkl) | data (dlen)        |
 *   +-----------------------------------------------+---------------------+--------------------+
 *
 *   len    total frame bytes = 44 + (16 if flg&1) + pkl + dlen
 *   hcrc   CRC32C of bytes [0, 40) (including dcrc): protects len, so a flipped
 *          length bit is detected rather than mistaken for a torn tail
 *   dcrc   CRC32C of bytes [44, len)
 *   gen/shard/counter  the sequence number (see store.h)
 *   rsv    0
 *
 * Invariant: a frame that decodes RECORD_OK is exactly what store_i_record_encode wrote.
 */
#include "record.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

/* ---- little-endian helpers ---------------------------------------------- */

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- CRC32C --------------------------------------------------------------- */

static uint32_t crc_table[8][256];
static int crc_mode; /* 0 = not chosen, 1 = table, 2 = sse4.2 */

static void crc_init_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = get32(p) ^ crc, hi = get32(p + 4);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = ~crc & 0xffffffffu;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif

static void crc_choose(void)
{
    crc_init_table();
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        __atomic_store_n(&crc_mode, 2, __ATOMIC_RELEASE);
        return;
    }
#endif
    __atomic_store_n(&crc_mode, 1, __ATOMIC_RELEASE);
}

uint32_t store_i_record_crc32c(uint32_t crc, const void *p, size_t len)
{
    int mode = __atomic_load_n(&crc_mode, __ATOMIC_ACQUIRE);
    if (mode == 0) {
        /* Benign race: both threads compute identical tables. */
        crc_choose();
        mode = __atomic_load_n(&crc_mode, __ATOMIC_ACQUIRE);
    }
#if defined(__x86_64__)
    if (mode == 2)
        return crc_hw(crc, p, len);
#endif
    return crc_sw(crc, p, len);
}

/* ---- encode / decode ------------------------------------------------------ */

void store_i_record_encode(uint8_t *dst, struct store_seq seq, int64_t arrival_ms,
                           const struct store_record_in *rec)
{
    int ehk = rec->explicit_hash_key != NULL;
    size_t len = record_frame_size(rec->partition_key.len, rec->data.len, ehk);
    put32(dst + 0, (uint32_t)len);
    put32(dst + 8, seq.gen);
    put32(dst + 12, seq.shard);
    put64(dst + 16, seq.counter);
    put64(dst + 24, (uint64_t)arrival_ms);
    dst[32] = ehk ? RECORD_FLAG_EHK : 0;
    dst[33] = 0;
    dst[34] = (uint8_t)rec->partition_key.len;
    dst[35] = (uint8_t)(rec->partition_key.len >> 8);
    put32(dst + 36, (uint32_t)rec->data.len);
    uint8_t *q = dst + RECORD_HDR_SIZE;
    if (ehk) {
        memcpy(q, rec->explicit_hash_key->be, 16);
        q += 16;
    }
    if (rec->partition_key.len)
        memcpy(q, rec->partition_key.p, rec->partition_key.len);
    q += rec->partition_key.len;
    if (rec->data.len)
        memcpy(q, rec->data.p, rec->data.len);
    put32(dst + 4, store_i_record_crc32c(0, dst + RECORD_HDR_SIZE, len - RECORD_HDR_SIZE));
    put32(dst + 40, store_i_record_crc32c(0, dst, 40)); /* last: it covers dcrc too */
}

static enum record_status check_header(const uint8_t *p, size_t *frame_len, const char **reason)
{
    if (get32(p + 40) != store_i_record_crc32c(0, p, 40)) {
        *reason = "header checksum mismatch";
        return RECORD_BAD_HEADER;
    }
    uint32_t len = get32(p);
    uint8_t flags = p[32];
    size_t pkl = (size_t)p[34] | (size_t)p[35] << 8;
    uint32_t dlen = get32(p + 36);
    if ((flags & ~RECORD_FLAG_EHK) || p[33] != 0) {
        *reason = "unknown flags";
        return RECORD_BAD_HEADER;
    }
    if (pkl > STORE_MAX_PARTITION_KEY || dlen > STORE_MAX_RECORD_DATA ||
        len != record_frame_size(pkl, dlen, flags & RECORD_FLAG_EHK)) {
        *reason = "inconsistent lengths";
        return RECORD_BAD_HEADER;
    }
    *frame_len = len;
    return RECORD_OK;
}

enum record_status store_i_record_decode(const uint8_t *p, size_t avail, int verify_data,
                                         struct store_record *out, size_t *frame_len,
                                         const char **reason)
{
    *frame_len = 0;
    if (avail < RECORD_HDR_SIZE) {
        *reason = "incomplete header";
        return RECORD_INCOMPLETE;
    }
    size_t len;
    enum record_status st = check_header(p, &len, reason);
    if (st != RECORD_OK)
        return st;
    *frame_len = len;
    if (avail < len) {
        *reason = "incomplete frame";
        return RECORD_INCOMPLETE;
    }
    if (verify_data &&
        get32(p + 4) != store_i_record_crc32c(0, p + RECORD_HDR_SIZE, len - RECORD_HDR_SIZE)) {
        *reason = "data checksum mismatch";
        return RECORD_BAD_DATA;
    }
    out->seq.gen = get32(p + 8);
    out->seq.shard = get32(p + 12);
    out->seq.counter = get64(p + 16);
    out->arrival_ms = (int64_t)get64(p + 24);
    const uint8_t *q = p + RECORD_HDR_SIZE;
    out->has_explicit_hash_key = (p[32] & RECORD_FLAG_EHK) != 0;
    if (out->has_explicit_hash_key) {
        memcpy(out->explicit_hash_key.be, q, 16);
        q += 16;
    }
    out->partition_key.p = q;
    out->partition_key.len = (size_t)p[34] | (size_t)p[35] << 8;
    q += out->partition_key.len;
    out->data.p = q;
    out->data.len = get32(p + 36);
    return RECORD_OK;
}

struct store_seq store_i_record_peek_seq(const uint8_t *frame)
{
    struct store_seq s = {get32(frame + 8), get32(frame + 12), get64(frame + 16)};
    return s;
}

int64_t store_i_record_peek_arrival(const uint8_t *frame)
{
    return (int64_t)get64(frame + 24);
}
