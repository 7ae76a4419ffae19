/* test_record.c - record.c: frame encode/decode, CRC32C, every failure class. */
#include "helpers.h"
#include "record.h"

Test(record, crc32c_known_vectors)
{
    /* RFC 3720 / iSCSI check value */
    cr_assert_eq(store_i_record_crc32c(0, "123456789", 9), 0xE3069283u);
    uint8_t zeros[32] = {0};
    cr_assert_eq(store_i_record_crc32c(0, zeros, 32), 0x8A9136AAu);
    /* incremental == one shot, across the 8-byte fast path boundary */
    const char *s = "The quick brown fox jumps over the lazy dog";
    uint32_t one = store_i_record_crc32c(0, s, strlen(s));
    for (size_t cut = 0; cut <= strlen(s); cut++)
        cr_assert_eq(
            store_i_record_crc32c(store_i_record_crc32c(0, s, cut), s + cut, strlen(s) - cut), one);
}

static size_t encode(uint8_t *buf, int ehk, size_t dlen)
{
    static uint8_t data[4096];
    for (size_t i = 0; i < dlen; i++) data[i] = (uint8_t)(i * 13);
    struct store_hashkey hk;
    memset(hk.be, 0xAB, 16);
    struct store_record_in r = {{(const uint8_t *)"key-1", 5}, ehk ? &hk : NULL, {data, dlen}};
    struct store_seq seq = {7, 3, 123456789012ull};
    store_i_record_encode(buf, seq, 1700000000123, &r);
    return record_frame_size(5, dlen, ehk);
}

Test(record, roundtrip)
{
    uint8_t buf[8192];
    for (int ehk = 0; ehk < 2; ehk++) {
        size_t len = encode(buf, ehk, 100);
        struct store_record rec;
        size_t flen;
        const char *why;
        cr_assert_eq(store_i_record_decode(buf, len, 1, &rec, &flen, &why), RECORD_OK);
        cr_assert_eq(flen, len);
        cr_assert_eq(rec.seq.gen, 7);
        cr_assert_eq(rec.seq.shard, 3);
        cr_assert_eq(rec.seq.counter, 123456789012ull);
        cr_assert_eq(rec.arrival_ms, 1700000000123);
        cr_assert_eq(rec.has_explicit_hash_key, ehk);
        cr_assert_eq(rec.partition_key.len, 5);
        cr_assert(memcmp(rec.partition_key.p, "key-1", 5) == 0);
        cr_assert_eq(rec.data.len, 100);
        for (size_t i = 0; i < 100; i++) cr_assert_eq(rec.data.p[i], (uint8_t)(i * 13));
        struct store_seq q = store_i_record_peek_seq(buf);
        cr_assert_eq(q.counter, 123456789012ull);
    }
    /* empty data is legal */
    size_t len = encode(buf, 0, 0);
    struct store_record rec;
    size_t flen;
    const char *why;
    cr_assert_eq(store_i_record_decode(buf, len, 1, &rec, &flen, &why), RECORD_OK);
    cr_assert_eq(rec.data.len, 0);
}

Test(record, every_prefix_is_incomplete)
{
    uint8_t buf[512];
    size_t len = encode(buf, 1, 60);
    for (size_t cut = 0; cut < len; cut++) {
        struct store_record rec;
        size_t flen;
        const char *why;
        cr_assert_eq(store_i_record_decode(buf, cut, 1, &rec, &flen, &why), RECORD_INCOMPLETE,
                     "cut %zu", cut);
        cr_assert_eq(flen, cut < RECORD_HDR_SIZE ? 0 : len);
    }
}

Test(record, every_bit_flip_is_detected)
{
    uint8_t buf[512], orig[512];
    size_t len = encode(orig, 1, 60);
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(buf, orig, len);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        struct store_record rec;
        size_t flen;
        const char *why;
        enum record_status st = store_i_record_decode(buf, len, 1, &rec, &flen, &why);
        cr_assert(st == RECORD_BAD_HEADER || st == RECORD_BAD_DATA || st == RECORD_INCOMPLETE,
                  "bit %zu undetected", bit);
        if (bit / 8 >= RECORD_HDR_SIZE)
            cr_assert_eq(st, RECORD_BAD_DATA, "payload bit %zu", bit);
        else
            cr_assert_eq(st, RECORD_BAD_HEADER, "header bit %zu", bit);
    }
    /* without payload verification a payload flip passes (tail reads) */
    memcpy(buf, orig, len);
    buf[len - 1] ^= 1;
    struct store_record rec;
    size_t flen;
    const char *why;
    cr_assert_eq(store_i_record_decode(buf, len, 0, &rec, &flen, &why), RECORD_OK);
}

Test(record, zero_header_is_bad)
{
    uint8_t buf[RECORD_HDR_SIZE] = {0};
    struct store_record rec;
    size_t flen;
    const char *why;
    cr_assert_eq(store_i_record_decode(buf, sizeof buf, 1, &rec, &flen, &why), RECORD_BAD_HEADER);
}
