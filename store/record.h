/* record.h - pure encode/decode of one on-disk record frame (see record.c). */
#ifndef SLUICE_STORE_RECORD_H
#define SLUICE_STORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define RECORD_HDR_SIZE 44u
#define RECORD_FLAG_EHK 0x01u
/* Largest frame we ever write or accept: header, hash key, key, data. */
#define RECORD_MAX_FRAME (RECORD_HDR_SIZE + 16u + STORE_MAX_PARTITION_KEY + STORE_MAX_RECORD_DATA)

/* Outcome of store_i_record_decode. */
enum record_status {
    RECORD_OK = 0,        /* a whole, verified frame */
    RECORD_INCOMPLETE,    /* the buffer ends inside the frame (header checked if present) */
    RECORD_BAD_HEADER,    /* header CRC or field check failed: length not trustworthy */
    RECORD_BAD_DATA       /* header fine, payload CRC failed: frame length is known */
};

/* CRC32C (Castagnoli) of "len" bytes, continuing from "crc" (start with 0). */
uint32_t store_i_record_crc32c(uint32_t crc, const void *p, size_t len);

/* Bytes a frame with these sizes occupies. */
static inline size_t record_frame_size(size_t pk_len, size_t data_len, int has_ehk)
{
    return RECORD_HDR_SIZE + (has_ehk ? 16u : 0u) + pk_len + data_len;
}

/* Encodes one frame into "dst", which has record_frame_size() bytes. */
void store_i_record_encode(uint8_t *dst, struct store_seq seq, int64_t arrival_ms,
                           const struct store_record_in *rec);

/* Decodes the frame at "p" ("avail" bytes available). On RECORD_OK fills "out"
 * (views borrow "p") and "*frame_len". On RECORD_INCOMPLETE "*frame_len" is the
 * frame length if the header was whole and valid, else 0. On RECORD_BAD_DATA
 * "*frame_len" is the (trusted) frame length. "*reason" gets a static string on
 * any failure. "verify_data" = 0 skips the payload CRC (frames we wrote from
 * memory). */
enum record_status store_i_record_decode(const uint8_t *p, size_t avail, int verify_data,
                                         struct store_record *out, size_t *frame_len,
                                         const char **reason);

/* Reads the sequence number / arrival of a frame known to be valid. */
struct store_seq store_i_record_peek_seq(const uint8_t *frame);
int64_t store_i_record_peek_arrival(const uint8_t *frame);

#endif
