/* fuzz_record.c - libFuzzer target for store/record.c (one on-disk frame).
 *
 * The first input byte picks a mode; the rest is a run of frames back to back,
 * decoded as segment.c's recovery scan walks a file:
 *   mode & 1  the frames first get correct CRCs (fuzz_frames.h), so the fuzzer
 *             reaches the length and flag checks instead of stopping at CRCs;
 *   mode & 2  decode with verify_data = 0 (frames the store wrote from memory).
 * Invariants asserted for every frame:
 *   - OK: the frame length is within [header, RECORD_MAX_FRAME] and what was
 *     offered, equals record_frame_size() of the decoded sizes, the views lie
 *     inside the frame, store_i_record_peek_* agree with the decoded header,
 *     and store_i_record_encode() of the decoded record reproduces the frame
 *     byte for byte (up to the data CRC when it was not verified) and decodes
 *     again;
 *   - INCOMPLETE: the frame length is 0 when the header is not whole, else
 *     more than offered; every failure carries a reason;
 *   - BAD_DATA only when verifying, with a trusted in-bounds length. */
#include <string.h>

#include "fuzz_frames.h"
#include "record.h"

static void check_ok(const uint8_t *f, size_t avail, size_t flen, const struct store_record *r,
                     int verified)
{
    CHECK(flen >= RECORD_HDR_SIZE && flen <= avail && flen <= RECORD_MAX_FRAME);
    CHECK(r->partition_key.len <= STORE_MAX_PARTITION_KEY);
    CHECK(r->data.len <= STORE_MAX_RECORD_DATA);
    CHECK(flen == record_frame_size(r->partition_key.len, r->data.len, r->has_explicit_hash_key));
    CHECK(r->partition_key.p >= f + RECORD_HDR_SIZE &&
          r->partition_key.p + r->partition_key.len <= f + flen);
    CHECK(r->data.p >= r->partition_key.p + r->partition_key.len && r->data.p + r->data.len == f + flen);
    struct store_seq ps = store_i_record_peek_seq(f);
    CHECK(store_seq_cmp(ps, r->seq) == 0 && ps.shard == r->seq.shard);
    CHECK(store_i_record_peek_arrival(f) == r->arrival_ms);

    struct store_record_in in = {r->partition_key,
                                 r->has_explicit_hash_key ? &r->explicit_hash_key : NULL, r->data};
    uint8_t *enc = malloc(flen);
    CHECK(enc != NULL);
    store_i_record_encode(enc, r->seq, r->arrival_ms, &in);
    if (verified) {
        CHECK(memcmp(enc, f, flen) == 0);
    } else {
        /* The data CRC (4..7) was not checked, so the header CRC (40..43),
         * which covers it, may differ too; everything else must match. */
        CHECK(memcmp(enc, f, 4) == 0);
        CHECK(memcmp(enc + 8, f + 8, 32) == 0);
        CHECK(memcmp(enc + RECORD_HDR_SIZE, f + RECORD_HDR_SIZE, flen - RECORD_HDR_SIZE) == 0);
    }
    struct store_record back;
    size_t blen;
    const char *why = NULL;
    CHECK(store_i_record_decode(enc, flen, 1, &back, &blen, &why) == RECORD_OK);
    CHECK(blen == flen && store_seq_cmp(back.seq, r->seq) == 0);
    CHECK(back.partition_key.len == r->partition_key.len && back.data.len == r->data.len);
    /* Every proper prefix of a whole frame is incomplete, never an error. */
    CHECK(store_i_record_decode(enc, flen - 1, 1, &back, &blen, &why) == RECORD_INCOMPLETE);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    size_t n = size - 1;
    /* A copy of exactly n bytes, so ASan sees any read past the end. */
    uint8_t *buf = malloc(n ? n : 1);
    CHECK(buf != NULL);
    memcpy(buf, data + 1, n);
    if (mode & 1)
        fz_fix_crcs(buf, n);
    int verify = !(mode & 2);

    size_t off = 0;
    while (off < n) {
        struct store_record rec;
        size_t flen = 12345;
        const char *reason = NULL;
        size_t avail = n - off;
        enum record_status rs =
            store_i_record_decode(buf + off, avail, verify, &rec, &flen, &reason);
        if (rs == RECORD_OK) {
            check_ok(buf + off, avail, flen, &rec, verify);
            off += flen;
            continue;
        }
        CHECK(reason != NULL);
        if (rs == RECORD_INCOMPLETE) {
            /* Short of a header: length unknown. Else the header held and
             * announces more than is there. */
            if (avail < RECORD_HDR_SIZE)
                CHECK(flen == 0);
            else
                CHECK(flen > avail && flen <= RECORD_MAX_FRAME);
            break;
        }
        if (rs == RECORD_BAD_DATA) {
            CHECK(verify);
            CHECK(flen >= RECORD_HDR_SIZE && flen <= avail && flen <= RECORD_MAX_FRAME);
            off += flen; /* the length is trusted: the header CRC held */
            continue;
        }
        CHECK(rs == RECORD_BAD_HEADER);
        break;
    }
    free(buf);
    return 0;
}
