/* fuzz_frames.h - helpers shared by the store's fuzz targets (fuzz_record.c,
 * fuzz_segment.c): an always-on CHECK, and a pass that gives a byte string
 * correct record CRCs so the fuzzer gets past the checksums to the length,
 * flag and sequence checks behind them. */
#ifndef SLUICE_FUZZ_FRAMES_H
#define SLUICE_FUZZ_FRAMES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "record.h"

/* Always on, unlike assert() (release builds define NDEBUG). */
#include "fuzz_check.h"

static inline uint32_t fz_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void fz_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Walks "p" as frames back to back: each frame whose length field (bytes 0-3)
 * fits in what is left gets its data CRC (bytes 4-7) and header CRC (40-43)
 * recomputed; the walk stops at the first frame that does not fit. The length
 * field itself is left alone, so inconsistent lengths still reach the decoder. */
static inline void fz_fix_crcs(uint8_t *p, size_t n)
{
    size_t off = 0;
    while (n - off >= RECORD_HDR_SIZE) {
        uint8_t *f = p + off;
        uint32_t len = fz_get32(f);
        if (len < RECORD_HDR_SIZE || len > n - off)
            break;
        fz_put32(f + 4, store_i_record_crc32c(0, f + RECORD_HDR_SIZE, len - RECORD_HDR_SIZE));
        fz_put32(f + 40, store_i_record_crc32c(0, f, 40));
        off += len;
    }
}

#endif
